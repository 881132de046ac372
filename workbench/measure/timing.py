"""Cold-L2 timing of one variant on one workload: CUDA events around each launch.

Cold by construction: launches rotate over disjoint copies of the batch's KV blocks spanning
>= 4x the device's L2. The stream is held by a blocking kernel (kernels/blocker.cu, released
through a pinned host flag) while the host enqueues every timed launch, so host launch overhead
never shows up between a launch's start and end events. Each timed
region is one NVTX range (domain `workbench`) named after the variant, so an Nsight capture can
be cut per variant.
"""
from __future__ import annotations

import statistics
import time
from functools import lru_cache
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from workbench.measure.gpuinfo import GpuInfo
from workbench.measure.workload import WorkloadSpec

NVTX_DOMAIN = "workbench"
MIN_LAUNCHES = 30


@dataclass
class TimingResult:
    variant: dict[str, Any]
    variant_name: str
    label: str
    workload: dict[str, Any]
    workload_label: str
    median_us: float
    p10_us: float
    p90_us: float
    mean_us: float
    launches: int
    kv_bytes: int
    gbps: float
    split: bool
    rotation_copies: int
    pool_bytes: int
    gpu: dict[str, Any]
    ceiling_gbps: float = 0.0
    efficiency: float = 0.0
    nvtx_range: str = ""
    method: str = "cuda-events per launch, cold L2 (rotating block tables), all launches queued first"
    recorded_at: str = ""
    samples_us: list[float] = field(default_factory=list)

    @property
    def spread(self) -> float:
        """(p90 - p10) / median."""
        return (self.p90_us - self.p10_us) / self.median_us if self.median_us else float("nan")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["spread"] = self.spread
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TimingResult":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def nvtx_range_name(variant_label: str, workload_label: str) -> str:
    # ncu's --nvtx-include treats '/' as the range separator and '@' as the domain one
    return f"{variant_label} :: {workload_label}".replace("/", "-").replace("@", "_")


class _Range:
    """NVTX push/pop in the workbench domain; a no-op when the nvtx package is missing."""

    def __init__(self, name: str):
        self.name = name
        try:
            import nvtx
            self._nvtx = nvtx
        except ImportError:
            self._nvtx = None

    def __enter__(self):
        if self._nvtx:
            self._nvtx.push_range(message=self.name, domain=NVTX_DOMAIN)
        return self

    def __exit__(self, *exc):
        if self._nvtx:
            self._nvtx.pop_range(domain=NVTX_DOMAIN)


@lru_cache(maxsize=None)
def _blocker(device_index: int, arch: str) -> Any:
    """The blocking kernel's module, loaded once per device (it lives as long as the process)."""
    from workbench.kernel.build import build_source
    from workbench.kernel.launch import Module
    return Module(build_source("blocker.cu", arch), device_index)


class _Gate:
    """A kernel that holds the current stream until the host opens the gate (a pinned flag)."""

    TIMEOUT_NS = 2_000_000_000

    def __init__(self, device_index: int, arch: str):
        import torch

        self._mod = _blocker(device_index, arch)
        self._flag = torch.zeros(1, dtype=torch.int32, pin_memory=True)   # mapped: UVA pointer works on device
        self._stream = torch.cuda.current_stream().cuda_stream

    def hold(self) -> None:
        import ctypes
        self._flag[0] = 0
        self._mod.launch("wb_block_until", (1, 1, 1), 1, 0,
                         [ctypes.c_void_p(self._flag.data_ptr()), ctypes.c_ulonglong(self.TIMEOUT_NS)], self._stream)

    def release(self) -> None:
        self._flag[0] = 1


def _timed(run: Any, *, launches: int, min_warmup: int, warmup_s: float, name: str, hold: bool,
           device_index: int, arch: str) -> list[float]:
    """Warm up (a time, not a count: clocks ramp up from idle), then `launches` event-timed calls
    of run(i), i counting on so rotation copies alternate; with `hold`, all are queued behind the
    gate first. The gate kernel is launched before the NVTX range opens, so profilers do not
    attribute it to the variant. Returns µs per call."""
    import torch

    t_end = time.perf_counter() + warmup_s
    i = 0
    # the current stream, not the device: under emulation (greenctx.py) a throttle kernel runs
    # on another stream until told to stop, and a device-wide sync would wait for it
    stream = torch.cuda.current_stream()
    while i < min_warmup or time.perf_counter() < t_end:
        run(i)
        i += 1
        if i % 8 == 0:
            stream.synchronize()
    stream.synchronize()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(launches)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(launches)]
    gate = _Gate(device_index, arch) if hold else None
    if gate:
        gate.hold()
    with _Range(name):
        for k in range(launches):
            starts[k].record()
            run(i + k)
            ends[k].record()
        if gate:
            gate.release()
        stream.synchronize()
    return [a.elapsed_time(b) * 1e3 for a, b in zip(starts, ends)]


def widen_block_table(table: Any, tokens: int, block_size: int) -> Any:
    """A block table as wide as `tokens` tokens need (as vLLM's: max_model_len / block), the new
    columns 2^30 so that a kernel reading past a sequence's own blocks faults."""
    import torch
    wide = torch.full((table.shape[0], -(-tokens // block_size)), 1 << 30, dtype=table.dtype, device=table.device)
    wide[:, : table.shape[1]] = table
    return wide


def time_variant(kernel: Any, spec: WorkloadSpec, info: GpuInfo, *, launches: int = 50, warmup: int = 5,
                 ceiling_gbps: float = 0.0, device: Any = "cuda", hold: bool = True,
                 rotation: tuple[Any, list[Any]] | None = None, warmup_s: float = 0.05,
                 launch_len: int | None = None, per_seq_split: bool = False, replay: bool = False,
                 in_graph: bool = False, between: Callable[[], Any] | None = None,
                 fused_write: bool = False, charge_between: bool = False) -> TimingResult:
    """`hold=False` under ncu: it serialises launches, so a held stream would wait for its timeout.
    `replay`: each rotation copy's launch captured once into a CUDA graph and the replays timed, as
    `time_calls` times the peers and as vLLM's decode graphs run our kernels (PDL edges included);
    default: eager launches, event-timed, all queued first. `in_graph`: one CUDA graph holding a launch
    per rotation copy, back to back as a decode step's graph runs them, each replay ÷ the launches
    (time_calls(in_graph=True)), each after `between` if given (time_calls).
    `fused_write`: each launch also writes the step's new token of every sequence into the cache, as the
    exported backend's decode kernel does (`LoadedVariant(kv_new=)`: the token as the cache holds it, so
    the timed KV stays the same). `charge_between`: `between`'s time kept in the samples (time_calls).
    `rotation`: a (workload, block tables) pair from build_rotation to reuse across variants.
    `warmup_s`: clocks ramp up from idle over tens of ms; later shapes of a busy worker need less.
    `launch_len`: bound the launch there instead of at the longest sequence (block tables widened,
    the new columns poisoned), as a CUDA graph captured at max_model_len does; `per_seq_split`:
    with it, auto variants split each sequence by its own length (LoadedVariant.__call__)."""
    import torch

    from workbench.measure.workload import build_rotation

    launches = max(launches, 1)
    w, tables = rotation or build_rotation(spec, device, 4 * max(info.l2_bytes, 1 << 20))
    out = torch.empty_like(w.query)
    v = kernel.variant
    L = max(launch_len or 0, spec.max_seq_len)
    if L > spec.max_seq_len:
        tables = [widen_block_table(t, L, spec.block_size) for t in tables]
    # the step's schedule (if any) planned once outside the timed replays, as vLLM's builder does per
    # step (every rotation copy has the same lengths)
    ws = kernel.step_workspace(w.seq_lens, spec.num_heads, spec.num_kv_heads, L, per_seq_split)
    extra = {"per_seq_split": True} if per_seq_split else {}
    writes = None
    if fused_write:
        from workbench.measure.workload import new_tokens
        writes = [new_tokens(w, t) for t in tables]      # a widened table's extra columns are never read

    def launch(i: int) -> None:
        kernel(out, w.query, w.key_cache, w.value_cache, spec.num_kv_heads, w.scale, tables[i % len(tables)],
               w.seq_lens, L, workspace=ws, **extra, **({"kv_new": writes[i % len(writes)]} if writes else {}))

    name = nvtx_range_name(v.label, spec.label)
    method = TimingResult.method
    if replay or in_graph:
        import functools
        samples, method = time_calls([functools.partial(launch, i) for i in range(len(tables))], info,
                                     launches=launches, name=name, warmup_s=warmup_s, in_graph=in_graph,
                                     between=between, charge_between=charge_between)
        method = method.replace("(rotating copies)", "(rotating block tables)")
    else:
        samples = _timed(launch, launches=launches, min_warmup=warmup, warmup_s=warmup_s, name=name, hold=hold,
                         device_index=kernel.device_index, arch=info.arch)
    med = statistics.median(samples)
    q = statistics.quantiles(samples, n=10) if len(samples) >= 2 else [med] * 9
    gbps = spec.kv_bytes / (med * 1e-6) / 1e9
    return TimingResult(
        variant=v.to_dict(), variant_name=v.name, label=v.label, workload=spec.to_dict(),
        workload_label=spec.label, median_us=med, p10_us=q[0], p90_us=q[-1],
        mean_us=statistics.fmean(samples), launches=launches, kv_bytes=spec.kv_bytes, gbps=gbps,
        split=ws is not None, rotation_copies=len(tables),
        pool_bytes=w.key_cache.numel() * 2 * w.key_cache.element_size(), gpu=info.to_dict(),
        ceiling_gbps=ceiling_gbps, efficiency=gbps / ceiling_gbps if ceiling_gbps else 0.0,
        nvtx_range=name, recorded_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"), samples_us=samples, method=method)


def time_calls(calls: list[Any], info: GpuInfo, *, launches: int = 50, name: str = "",
               graphs: bool = True, warmup_s: float = 0.05, stream: Any = None,
               timed: Callable[[], Any] | None = None, in_graph: bool = False,
               between: Callable[[], Any] | None = None, charge_between: bool = False) -> tuple[list[float], str]:
    """Cold-L2 timing of any GPU work (peers): `calls[i]` runs one launch over rotation copy i.
    Each call is captured once into a CUDA graph (host overhead out of the picture even for
    Python-heavy ops); replays are timed with events, all queued behind the gate. Falls back to
    plain calls when capture fails. Returns (samples in µs, method).
    `in_graph`: all calls captured into one graph instead, one after another (in turn, repeated to
    at least IN_GRAPH_MIN_LAUNCHES launches), and a sample is a replay ÷ the launches. A graph of one
    launch pays the graph's launch and the events around it (~2-3 µs on an H200, session 26: 1.6-1.9
    µs from the previous graph's last kernel to the first kernel alone); kernels inside one graph
    follow each other ~0.4 µs apart, as attention does between the KV write and the next GEMM in
    vLLM's decode graph. Cold L2 holds: each launch reads its own copy and the copies together are
    >= 4x L2.
    `between` (in_graph only): a small op captured before every launch, as vLLM's step runs the KV-cache
    write before each layer's attention; its own per-launch time (a graph of it alone, same count) is
    subtracted. Back to back, a launch can overlap the previous one's tail where both use PDL; after
    another kernel it cannot. Session 27, a copy kernel in between: FA3 and ours each moved -0.2 to +0.9 µs.
    `charge_between`: the op's time stays in every sample (bench --fused-write: a row is attention plus the
    step's KV write as its backend runs it).
    An emulation (measure.greenctx) passes `stream`, its green context's stream: calls are warmed
    up and captured there, because a graph's kernels keep the context they were captured in (one
    captured on an ordinary stream ran on all 132 SMs of an H200 when replayed on an 80-SM green
    stream); and `timed`, its measuring(): only the replays run inside it, since capture
    synchronises the device, which would wait on the throttle."""
    import contextlib

    import torch

    if between is not None and not in_graph:
        raise ValueError("time_calls: `between` belongs to the in-graph form")
    launched = _graph_launches(calls)            # the in-graph form's launches, in graph order
    with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
        if between is not None:
            between()
        for c in calls:                          # compile / autotune / allocate outside any graph
            c()
        torch.cuda.current_stream().synchronize()     # not the device: see _timed
        runners, method = list(calls), "cuda-events per launch, cold L2 (rotating copies), all queued first"
        if graphs:
            try:
                gs = []
                s = stream if stream is not None else torch.cuda.Stream()   # capture off the current stream
                if s is not stream:
                    s.wait_stream(torch.cuda.current_stream())
                step = [f for c in launched for f in ((between, c) if between is not None else (c,))]
                for group in ([step] if in_graph else [[c] for c in calls]):
                    g = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(g, stream=s):
                        for c in group:
                            c()
                    gs.append(g)
                if s is not stream:
                    torch.cuda.current_stream().wait_stream(s)
                runners = [g.replay for g in gs]
                n = len(launched)
                method = (f"CUDA graph of {n} launches back to back (rotation copies in turn), replay ÷ {n}, "
                          if in_graph else "CUDA graph replay per launch, ") + method.split(", ", 1)[1]
            except Exception as e:              # an op that syncs or allocates oddly: time it eagerly
                torch.cuda.current_stream().synchronize()
                if in_graph:                     # the step form is a graph or nothing: say so, do not mix forms
                    raise RuntimeError(f"in-graph timing: the launches do not capture into one CUDA graph "
                                       f"({type(e).__name__}: {e})") from None
                method += f" (no CUDA graph: {type(e).__name__})"
    # eager ops may synchronise inside: holding the stream would then stall until the timeout
    with timed() if timed is not None else contextlib.nullcontext():
        samples = _timed(lambda i: runners[i % len(runners)](), launches=launches, min_warmup=3, warmup_s=warmup_s,
                         name=name.replace("/", "-").replace("@", "_"), hold=method.startswith("CUDA graph"),
                         device_index=torch.cuda.current_device(), arch=info.arch)
    if in_graph:
        samples = [x / len(launched) for x in samples]
        if between is not None and charge_between:
            method += "; each launch after the step's KV-write stand-in, its time included"
        elif between is not None and method.startswith("CUDA graph"):
            alone, _ = time_calls([between], info, launches=launches, name=f"{name} (between)", warmup_s=warmup_s,
                                  stream=stream, timed=timed, in_graph=True)
            base = statistics.median(alone)
            samples = [x - base for x in samples]
            method += f"; each launch after the step's KV-write stand-in, its own {base:.2f} µs subtracted"
    return samples, method


# A decode step's graph holds a launch per layer (32 for llama-3.1-8b). A graph of two launches
# (a large shape's rotation is 2 copies) would charge each launch half the graph's own start
# (~2 us on an H200, session 26), which vLLM's step pays once for all layers.
IN_GRAPH_MIN_LAUNCHES = 16


def _graph_launches(calls: list[Any]) -> list[Any]:
    """The rotation's calls in turn, repeated until one graph holds IN_GRAPH_MIN_LAUNCHES. Cold L2
    still holds: between two turns of one copy every other copy is read, and the copies together
    span >= 4x L2 (>= 2x L2 without it, even at 2 copies)."""
    reps = -(-IN_GRAPH_MIN_LAUNCHES // max(1, len(calls)))
    return list(calls) * reps
