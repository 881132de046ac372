"""Read probe_chain.py's RAW rows (scripts/device_tail.sh): per shape, how the CTAs' ends spread and
whether the late ones share something -- their SM, how many CTAs that SM ran, a late start.

  python3 scripts/tail_report.py tail-own.json.gz
"""
from __future__ import annotations

import collections
import gzip
import json
import statistics
import sys


def report(row: dict) -> str:
    raw = row["raw"]                                   # [cta, sm, T0, T2, T7] ns
    ends = sorted(r[4] for r in raw if r[4] > 0)
    n = len(ends)
    q = lambda f: ends[min(n - 1, int(f * n))] / 1e3   # noqa: E731
    per_sm = collections.defaultdict(list)
    for r in raw:
        per_sm[r[1]].append(r)
    late = [r for r in raw if r[4] >= ends[int(0.95 * n)]]
    lines = [f"{row['shape']} {row['variant']} part {row['part'] or 'own'}: {n} CTAs on {len(per_sm)} SMs, "
             f"ends p5 {q(0.05):.1f} p50 {q(0.5):.1f} p95 {q(0.95):.1f} max {ends[-1] / 1e3:.1f} us"]
    by_count = collections.defaultdict(list)
    for sm, rs in per_sm.items():
        by_count[len(rs)].append(max(r[4] for r in rs) / 1e3)
    lines.append("  SMs by CTAs run: " + ", ".join(
        f"{c} CTAs: {len(v)} SMs, last end median {statistics.median(v):.1f} max {max(v):.1f}"
        for c, v in sorted(by_count.items())))
    sm_last = sorted(((max(r[4] for r in rs) / 1e3, sm) for sm, rs in per_sm.items()), reverse=True)
    lines.append("  latest SMs: " + " ".join(f"{sm}:{t:.1f}" for t, sm in sm_last[:8]) +
                 f"  earliest: " + " ".join(f"{sm}:{t:.1f}" for t, sm in sm_last[-4:]))
    dur = [(r[4] - r[2]) / 1e3 for r in raw if r[4] > 0]
    late_dur = [(r[4] - r[2]) / 1e3 for r in late]
    lines.append(f"  CTA life median {statistics.median(dur):.1f} us; the late 5%: start median "
                 f"{statistics.median(r[2] for r in late) / 1e3:.1f} us, life {statistics.median(late_dur):.1f} us, "
                 f"on {len({r[1] for r in late})} SMs")
    return "\n".join(lines)


def main() -> None:
    for path in sys.argv[1:]:
        d = json.load(gzip.open(path) if path.endswith(".gz") else open(path))
        for row in d["rows"]:
            if "raw" in row:
                print(report(row))


if __name__ == "__main__":
    main()
