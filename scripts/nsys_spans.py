"""Attention's span on the GPU timeline, per launch, from an nsys capture (perf-notes v24: the bench's
µs of a launch vs the time its kernels take inside vLLM's decode step).

  python3 scripts/nsys_spans.py e2e   CAPTURE.sqlite[.xz]    (a `workbench e2e` share capture)
  python3 scripts/nsys_spans.py bench CAPTURE.sqlite[.xz]    (`nsys profile ... workbench bench`:
                                                              scripts/device_bench_nsys.sh)

e2e: in each NVTX range of the capture (one per grid point), every KV-cache write and the run of
attention kernels after it: medians of the write, the gap to the first attention kernel, the span
from its start to the last one's end, and the gap to the next kernel. bench: every attention launch
(our decode kernel with its reduce, FA3's main kernel with its combine): the span, the gap since
the previous kernel ended, and the period from one launch's start to the next, per (kernels, grid).
Kernel classes as `workbench e2e` counts them (e2e.attention_share.classify)."""
from __future__ import annotations

import lzma
import re
import shutil
import sqlite3
import statistics as st
import sys
import tempfile
from collections import defaultdict

from workbench.e2e.attention_share import classify


def _open(path: str) -> sqlite3.Connection:
    if path.endswith(".xz"):
        tmp = tempfile.NamedTemporaryFile(suffix=".sqlite", delete=False)
        with lzma.open(path) as f, tmp:
            shutil.copyfileobj(f, tmp)
        path = tmp.name
    return sqlite3.connect(path)


def _kernels(con: sqlite3.Connection, lo: int = 0, hi: int = 1 << 62) -> list[tuple[int, int, str, tuple]]:
    names = dict(con.execute("select id, value from StringIds"))
    rows = con.execute("select start, end, demangledName, gridX, gridY, gridZ from CUPTI_ACTIVITY_KIND_KERNEL "
                       "where start >= ? and end <= ? order by start", (lo, hi))
    return [(a, z, names[n], (gx, gy, gz)) for a, z, n, gx, gy, gz in rows]


def _med(xs: list[int]) -> str:
    return f"{st.median(xs) / 1e3:7.2f}" if xs else "    n/a"


def e2e(con: sqlite3.Connection) -> None:
    ranges = con.execute("select text, start, end from NVTX_EVENTS where text like 'wb_e2e:%' order by start")
    print(f"{'point':>12} {'n':>5} {'write':>7} {'gap':>7} {'span':>7} {'gap':>7}  attention kernels (µs, medians)")
    for text, lo, hi in ranges.fetchall():
        ks = _kernels(con, lo, hi)
        rows = []
        for i, (a, z, n, _) in enumerate(ks):
            if classify(n) != "kv_write":
                continue
            j = i + 1
            while j < len(ks) and classify(ks[j][2]) == "attention":
                j += 1
            if j == i + 1 or j >= len(ks):
                continue
            run = ks[i + 1:j]
            rows.append((z - a, run[0][0] - z, max(k[1] for k in run) - run[0][0], ks[j][0] - max(k[1] for k in run),
                         "+".join(_short(k[2]) for k in run)))
        if rows:
            names = st.mode([r[4] for r in rows])
            print(f"{text.split(':', 1)[1]:>12} {len(rows):5d} {_med([r[0] for r in rows])} {_med([r[1] for r in rows])} "
                  f"{_med([r[2] for r in rows])} {_med([r[3] for r in rows])}  {names}")


def bench(con: sqlite3.Connection) -> None:
    ks = _kernels(con)
    groups: dict[tuple, list[tuple[int, int, int]]] = defaultdict(list)
    second = re.compile(r"wb_reduce|Combine")          # a launch's second kernel: our reduce, FA3's combine
    for i, (a, z, n, g) in enumerate(ks):
        if classify(n) != "attention" or "wb_plan" in n or second.search(n):
            continue
        nxt = ks[i + 1] if i + 1 < len(ks) and second.search(ks[i + 1][2]) else None
        end = max(z, nxt[1]) if nxt else z
        key = (_short(n) + ("+" + _short(nxt[2]) if nxt else ""), g, nxt[3] if nxt else None)
        groups[key].append((a, end, ks[i - 1][1] if i else a))
    print(f"{'launch (kernels, grids)':72} {'n':>5} {'span':>7} {'gap':>7} {'period':>7}  (µs, medians)")
    for key, v in sorted(groups.items(), key=lambda kv: kv[1][0][0]):
        if len(v) < 20:
            continue
        per = [v[j + 1][0] - v[j][0] for j in range(len(v) - 1)]
        print(f"{str(key)[:72]:72} {len(v):5d} {_med([e - s for s, e, _ in v])} {_med([s - p for s, _, p in v])} {_med(per)}")


def _short(name: str) -> str:
    base = name.split("(")[0]
    return "fa3-combine" if "Combine" in base else "fa3-main" if "Mainloop" in base or "FlashAttnFwd" in base else base[-20:]


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in ("e2e", "bench"):
        sys.exit(__doc__)
    con = _open(sys.argv[2])
    (e2e if sys.argv[1] == "e2e" else bench)(con)


if __name__ == "__main__":
    main()
