"""a = attention's share of a decode step, from an Nsight Systems capture of the real engine.

Why nsys (and not torch.profiler): decode steps run as CUDA graphs; `nsys profile
--cuda-graph-trace=node` records every kernel node of a graph launch with its own GPU start / end
and name, which is documented and independent of vLLM's profiler plumbing, and it needs no change
to the engine's settings. (torch.profiler sees kernels inside graphs only as far as its kineto /
CUPTI build reports graph nodes, and vLLM would have to be started with a profiler config.)

How: the runner runs in mode "profile" under `nsys profile -t cuda,nvtx --cuda-graph-trace=node`
with VLLM_ENABLE_V1_MULTIPROCESSING=0 (engine in the runner's process: one process to trace), and
per grid point wraps `profile_steps` steps of the all-sequences-decoding window in an NVTX range
"wb_e2e:<label>". Here, from the capture's SQLite export: every kernel that starts inside a range
(GPU and host share nsys's timeline; a step's kernels trail its launch by less than a step, and in
the steady state a window shifted by that lag holds the same steps), split into attention, KV-cache
write and the rest by name. Per step:

    a_kernels = attention kernel time ÷ all kernel time             (from the capture alone)
    a         = attention kernel time ÷ the measured step time      (mean ITL of the unprofiled run)

Kernel time is time on the timeline, not a sum of durations: a kernel launched with programmatic
dependent launch (PDL, as the exported package's are) starts while the kernel before it still runs
and waits inside, so its recorded duration holds the other kernel's tail. Summing durations counted
that tail twice (session 25: CUSTOM's attention at b32x1k came out at 2449 µs a step, 76 µs a layer,
where its kernels take 39). So: all kernel time = the union of the kernels' intervals; attention's
time = the time in which only attention kernels run; what overlaps other kernels counts as theirs
(it would run without the attention kernel): KV write before attention, other kernels before both.

`a` is the one the prediction uses: the measured step also holds host gaps and everything else
that attention does not speed up. Node-level graph tracing slows the step a little, which is why
the denominator comes from the run without nsys; kernel durations are not affected.
"""
from __future__ import annotations

import re
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.measure.nsys import timeline_split

from .results import ShareResult
from .runner_args import NVTX_PREFIX

# Kernel names (demangled) of the attention of each backend the grid runs. The KV-cache write
# (reshape_and_cache*) is vLLM's op under every backend: counted apart, not as attention.
KV_WRITE = re.compile(r"reshape_and_cache|concat_and_cache", re.I)
ATTENTION = {
    "FLASH_ATTN": re.compile(r"flash::|FlashAttn|flash_fwd|flash_attn|prepare_varlen_num_blocks", re.I),
    "TRITON_ATTN": re.compile(r"unified_attention|reduce_segments|kernel_paged_attention", re.I),
    "FLASHINFER": re.compile(r"BatchDecode|BatchPrefill|xqa|trtllm.*(?:fmha|decode|attention)"
                             r"|flashinfer::.*(?:decode|prefill|attention)", re.I),
    # the exported package's kernels; wb_plan (the step's device schedule, once a step) is attention's
    # work as FA3's prepare_varlen_num_blocks is (session 25: it was counted as "other", ~5 µs a step)
    "CUSTOM": re.compile(r"\bwb_(?:decode|reduce|plan)", re.I),
}


OTHER_KEPT = 16      # non-attention kernel names kept per share (a Llama decode step has ~12)


def classify(name: str) -> str:
    """'kv_write', 'attention' or 'other' for one kernel name."""
    if KV_WRITE.search(name):
        return "kv_write"
    if any(p.search(name) for p in ATTENTION.values()):
        return "attention"
    return "other"


@dataclass
class KernelWindow:
    label: str
    start_ns: int
    end_ns: int
    kernels: int = 0
    total_ns: int = 0              # the union of all kernel intervals (busy time)
    attention_ns: int = 0          # time in which only attention kernels run
    kv_write_ns: int = 0           # time in which only KV-cache writes run
    duration_sum_ns: int = 0       # plain sum of durations (> total_ns where kernels overlap)
    by_name: dict[str, int] = field(default_factory=dict)   # attention kernels: name -> summed ns
    other_by_name: dict[str, list[int]] = field(default_factory=dict)  # other kernels: name -> [launches, summed ns]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def exclusive_times(intervals: list[tuple[int, int, str]],
                    precedence: tuple[str, ...] = ("other", "kv_write")) -> tuple[int, dict[str, int]]:
    """(busy, {kind: ns}) of a window's kernels (measure.nsys.timeline_split): where kinds overlap the
    time is the other kernel's, then the KV write's (a PDL attention kernel waiting inside the KV
    write or a GEMM), so the kinds add up to busy and attention keeps only its own."""
    return timeline_split(intervals, precedence)


def _table(con: sqlite3.Connection, name: str) -> bool:
    return bool(con.execute("select 1 from sqlite_master where type='table' and name=?", (name,)).fetchone())


def _columns(con: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in con.execute(f"pragma table_info({table})")}


def window_kernels(sqlite_path: str | Path, prefix: str = NVTX_PREFIX) -> dict[str, KernelWindow]:
    """Per NVTX range named prefix+label: the kernels that start inside it, classified."""
    p = Path(sqlite_path)
    if not p.exists():
        raise WorkbenchError(f"{p}: file not found")
    con = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
    try:
        for t in ("NVTX_EVENTS", "CUPTI_ACTIVITY_KIND_KERNEL"):
            if not _table(con, t):
                raise WorkbenchError(f"{p}: no {t} table (capture with `nsys profile -t cuda,nvtx`)")
        strings = dict(con.execute("select id, value from StringIds")) if _table(con, "StringIds") else {}
        ncols = _columns(con, "NVTX_EVENTS")
        text_id = "textId" if "textId" in ncols else "NULL"
        windows: dict[str, KernelWindow] = {}
        for start, end, text, tid in con.execute(
                f"select start, end, coalesce(text, ''), {text_id} from NVTX_EVENTS "
                "where end is not null and end > start order by start"):
            name = text or strings.get(tid, "")
            if name.startswith(prefix):
                label = name[len(prefix):]
                windows[label] = KernelWindow(label=label, start_ns=int(start), end_ns=int(end))
        kcols = _columns(con, "CUPTI_ACTIVITY_KIND_KERNEL")
        name_col = "demangledName" if "demangledName" in kcols else "shortName"
        for w in windows.values():
            spans: list[tuple[int, int, str]] = []
            for s, e, nid in con.execute(f"select start, end, {name_col} from CUPTI_ACTIVITY_KIND_KERNEL "
                                         "where start >= ? and start < ?", (w.start_ns, w.end_ns)):
                kname = strings.get(nid, str(nid)) if isinstance(nid, int) else str(nid)
                dur = int(e) - int(s)
                w.kernels += 1
                w.duration_sum_ns += dur
                kind = classify(kname)
                spans.append((int(s), int(e), kind))
                short = kname if len(kname) <= 120 else kname[:117] + "..."
                if kind == "attention":
                    w.by_name[short] = w.by_name.get(short, 0) + dur
                elif kind == "other":
                    c = w.other_by_name.setdefault(short, [0, 0])
                    c[0] += 1
                    c[1] += dur
            w.total_ns, own = exclusive_times(spans)
            w.attention_ns, w.kv_write_ns = own.get("attention", 0), own.get("kv_write", 0)
        return windows
    finally:
        con.close()


def share_from_window(backend: str, batch: int, context: int, w: KernelWindow | None, steps: int,
                      step_ms: float | None) -> ShareResult:
    """Per-step figures of one window; `a` only where the unprofiled step time is known."""
    r = ShareResult(backend=backend, batch=batch, context=context, steps=steps)
    if w is None or w.kernels == 0 or steps < 1:
        r.status = "failed"
        r.reason = "no kernels captured in the decode window" if w is not None else "no NVTX window in the capture"
        return r
    r.attention_us_per_step = w.attention_ns / 1e3 / steps
    r.kv_write_us_per_step = w.kv_write_ns / 1e3 / steps
    r.kernel_us_per_step = w.total_ns / 1e3 / steps
    r.a_kernels = w.attention_ns / w.total_ns
    r.attention_kernels = [n for n, _ in sorted(w.by_name.items(), key=lambda x: -x[1])[:5]]
    # the rest by name (the largest OTHER_KEPT): where two engines' non-attention time parts, per kernel
    top = sorted(w.other_by_name.items(), key=lambda x: -x[1][1])[:OTHER_KEPT]
    r.other_kernels = {n: [c / steps, ns / 1e3 / steps] for n, (c, ns) in top}
    if w.attention_ns == 0:
        r.status, r.reason = "failed", "no attention kernel recognised in the window (see attention_share.ATTENTION)"
        return r
    if step_ms:
        r.a = min(1.0, r.attention_us_per_step / (step_ms * 1e3))
    return r


def nsys_command(nsys: str, report_base: Path, runner_cmd: list[str]) -> list[str]:
    return [nsys, "profile", "-t", "cuda,nvtx", "--cuda-graph-trace=node", "--sample=none", "--cpuctxsw=none",
            "-o", str(report_base), "--force-overwrite", "true", *runner_cmd]
