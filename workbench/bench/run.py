"""`workbench bench`: our variants and what users would pick instead, side by side on one suite
of decode shapes, cold L2 for all, against the floor (KV bytes ÷ the measured read ceiling)."""
from __future__ import annotations

import dataclasses
import gc
import json
import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from workbench.errors import WorkbenchError
from workbench.measure.suite import RaggedShape
from workbench.measure.stats import geomean
from workbench.tune.refine import GRAPH_LEN     # the tuned-graph row's bound: refine's graph picks are timed there

# rows built from kernels/: vLLM 0.10.2's own kernel (baseline, paper), ours (simple, simple-pf, tuned);
# tuned-graph = the tuned table launched as the exported vLLM backend's CUDA graphs launch it: the
# variant picked for (batch, graph_len) or the batch row's graph pick of `workbench refine`, the launch
# bounded at graph_len (vLLM's max_model_len), each sequence split by its own length (per_seq_split)
KERNEL_ROWS = ("baseline", "paper", "simple", "simple-pf", "tuned", "tuned-graph")
CHECK_MAX_BYTES = 1_100_000_000


@dataclass
class PeerResult:
    peer: str
    shape: str
    batch: int
    context: int
    kv_bytes: int
    median_us: float | None = None
    p10_us: float | None = None
    p90_us: float | None = None
    efficiency: float | None = None          # floor ÷ median
    rel_error: float | None = None
    variant: str = ""
    method: str = ""
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BenchRun:
    gpu: dict[str, Any]
    ceiling: dict[str, Any]
    heads: dict[str, Any]
    dtype: str
    block_size: int
    suite: dict[str, Any]
    peers: list[str]
    results: list[PeerResult]
    created: str
    notes: list[str] = field(default_factory=list)
    kind: str = "workbench-bench"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["summary"] = summary(self)
        return d

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> "BenchRun":
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise WorkbenchError(f"{path}: not a readable bench JSON ({e})") from None
        if d.get("kind") != "workbench-bench":
            raise WorkbenchError(f"{path}: not a workbench bench file")
        d.pop("summary", None)
        d["results"] = [PeerResult(**r) for r in d["results"]]
        return cls(**d)


FLASHINFER_PEERS = ("flashinfer", "flashinfer-tc", "xqa")    # FlashInfer's decode kernels
READ = "read"               # a measured bound (bench.peers.read), not attention: no speedup of tuned over it
CEILING_TARGET_BYTES = 10**9    # issue 12: >= 0.97 of the read ceiling "at >= 1 GB of KV"


def summary(run: BenchRun) -> dict[str, Any]:
    by: dict[tuple[str, str], PeerResult] = {(r.peer, r.shape): r for r in run.results}
    shapes = list(dict.fromkeys(r.shape for r in run.results))

    def speedup(ours: str, p: str) -> float | None:
        """geomean of p's time ÷ ours over the shapes both ran"""
        return geomean([by[(p, s)].median_us / by[(ours, s)].median_us for s in shapes
                        if (p, s) in by and (ours, s) in by and by[(p, s)].median_us and by[(ours, s)].median_us])

    out: dict[str, Any] = {"efficiency_geomean": {
        p: geomean([by[(p, s)].efficiency for s in shapes if (p, s) in by and by[(p, s)].efficiency])
        for p in run.peers}}
    out["geomean_speedup_of_tuned"] = {p: speedup("tuned", p) for p in run.peers if p not in ("tuned", READ)}
    # the shapes a geomean leaves out (either side failed or was skipped): a geomean over fewer shapes
    # than the suite's must say so (a KeyError in the picker once dropped 3 of 18 silently)
    out["geomean_missing_shapes_of_tuned"] = {
        p: [s for s in shapes if not ((p, s) in by and ("tuned", s) in by and by[(p, s)].median_us
                                      and by[("tuned", s)].median_us)]
        for p in run.peers if p not in ("tuned", "floor", READ)}
    out["shapes"] = len(shapes)
    if "tuned-graph" in run.peers:             # what vLLM runs through the exported backend, vs each peer
        out["geomean_speedup_of_tuned_graph"] = {p: speedup("tuned-graph", p) for p in run.peers
                                                 if p not in ("tuned", "tuned-graph", READ)}
    if READ in run.peers:
        # each row's time ÷ the paged read alone: the most a kernel reading the KV this way could gain on that row
        out["geomean_over_read"] = {p: speedup(READ, p) for p in run.peers if p != READ}
    # issue 12's second target: against the best of FlashInfer's kernels (CUDA cores, tensor cores,
    # XQA through FlashInfer's API) shape by shape, not against each one
    fi = [p for p in FLASHINFER_PEERS if p in run.peers]
    if fi and "tuned" in run.peers:
        ratios = []
        for s in shapes:
            ts = [by[(p, s)].median_us for p in fi if (p, s) in by and by[(p, s)].median_us]
            if ts and ("tuned", s) in by and by[("tuned", s)].median_us:
                ratios.append(min(ts) / by[("tuned", s)].median_us)
        out["geomean_speedup_of_tuned_vs_best_flashinfer"] = {"peers": fi, "geomean": geomean(ratios)}
    # issue 12's ragged target ("no worse than FA3"), per row of ours: FA3's time ÷ ours per ragged batch.
    # FA3 is the row on vLLM's own packed cache where the run has it (what FLASH_ATTN runs), else `fa3`
    fa3 = next((p for p in ("fa3-packed", "fa3") if p in run.peers), None)
    ragged = [RaggedShape(**r).label for r in (run.suite or {}).get("ragged") or ()]
    if fa3:
        out["fa3_peer"] = fa3
    if fa3 and ragged:
        out["ragged_speedup_vs_fa3"] = {
            p: {s: by[(fa3, s)].median_us / by[(p, s)].median_us for s in ragged
                if (p, s) in by and (fa3, s) in by and by[(p, s)].median_us and by[(fa3, s)].median_us}
            for p in ("tuned", "tuned-graph") if p in run.peers}
    if fa3 and "tuned" in run.peers:
        out["shapes_where_tuned_is_below_0.98_of_fa3"] = [
            s for s in shapes if ("tuned", s) in by and (fa3, s) in by and by[("tuned", s)].median_us
            and by[(fa3, s)].median_us and by[(fa3, s)].median_us / by[("tuned", s)].median_us < 0.98]
    # issue 12's ceiling target: >= 0.97 of the read ceiling on every shape of >= 1 GB of KV
    out["shapes_of_1gb_below_0.97_of_the_ceiling"] = {
        p: {s: by[(p, s)].efficiency for s in shapes if (p, s) in by and by[(p, s)].kv_bytes >= CEILING_TARGET_BYTES
            and by[(p, s)].efficiency and by[(p, s)].efficiency < 0.97}
        for p in ("tuned", "tuned-graph") if p in run.peers}
    for ref in ("baseline", "simple"):
        out[f"shapes_where_tuned_is_slower_than_{ref}"] = [
            s for s in shapes if ("tuned", s) in by and (ref, s) in by and by[("tuned", s)].median_us
            and by[(ref, s)].median_us and by[("tuned", s)].median_us > by[(ref, s)].median_us]
    return out


def _measuring(emu: Any) -> Any:
    """The emulation's timed region (greenctx.Emulation.measuring), or nothing."""
    import contextlib
    return emu.measuring() if emu is not None else contextlib.nullcontext()


def _ours(name: str, spec: Any, info: Any, ceiling: float, launches: int, pick: Callable[[Any], Any] | None,
          shape: dict[str, Any], emu: Any = None, graph_len: int = GRAPH_LEN, graph_walk: bool = False,
          graph_sched: bool | None = None, replay: bool = False, in_graph: bool = False,
          between: Callable[[], Any] | None = None, fused_write: bool = False) -> PeerResult:
    from workbench.measure.check import check_variant
    from workbench.measure.timing import time_variant
    from workbench.kernel.references import named
    from workbench.kernel.variant import graph_form, ragged
    from types import SimpleNamespace
    graph = name == "tuned-graph"
    bound = max(graph_len, spec.max_seq_len) if graph else None
    v = pick(spec) if name == "tuned" else pick(SimpleNamespace(num_seqs=spec.num_seqs, max_seq_len=bound, graph=True)) \
        if graph else named(name, **shape)
    how = dict(launch_len=bound, per_seq_split=True) if graph else {}
    walk, sched = graph_form(graph_walk, graph_sched)
    if graph:                                  # as `export` with the same flags builds it (time_variant plans)
        v = v.graph_built(walk, sched)
    elif name == "tuned":                      # the package's eager launches: scheduled builds plan ragged batches
        v = v.graph_built(False, sched)
    k = None
    if name == "tuned" and ragged(spec.seq_lens) and getattr(pick, "table", None) is not None:
        # a ragged batch: the package's eager step plans it at its own bound with the batch size's graph pick
        # (refined on ragged batches too) where that schedules, else the table's pick where it does
        # (vllm_backend._plan_eager); the table's uniform-shape picks can be whole-sequence or 8-CTA ones
        g = pick(SimpleNamespace(num_seqs=spec.num_seqs, max_seq_len=graph_len, graph=True)).graph_built(False, sched)
        gk = _loaded(g, info, name, emu)
        if gk.plans_eager(spec.seq_lens, spec.num_heads, spec.num_kv_heads):
            v, k = g, gk
        else:
            gk.close()
    k = k or _loaded(v, info, name, emu)
    if name == "tuned" and k.plans_eager(spec.seq_lens, spec.num_heads, spec.num_kv_heads):
        # a ragged batch: the package's eager step plans it at its own bound (vllm_backend.build)
        how = dict(per_seq_split=True)
    try:
        # the fp32 reference gathers the whole batch: checked up to CHECK_MAX_BYTES of KV
        ck = check_variant(k, spec, "cuda", **how) if spec.kv_bytes <= CHECK_MAX_BYTES else None
        if emu is not None:                    # the rotation built outside the timed (throttled) region
            from workbench.measure.workload import build_rotation
            rot = build_rotation(spec, "cuda", 4 * max(info.l2_bytes, 1 << 20))
            with _measuring(emu):
                t = time_variant(k, spec, info, launches=launches, ceiling_gbps=ceiling, rotation=rot, **how)
        else:
            # --fused-write: our kernels write the step's token themselves; vLLM's own kernel cannot, so it
            # pays the write kernel before it, as the peers do
            fuse = fused_write and v.algorithm != "vllm"
            t = time_variant(k, spec, info, launches=launches, ceiling_gbps=ceiling, replay=replay,
                             in_graph=in_graph, between=None if fuse else between, fused_write=fuse,
                             charge_between=fused_write, **how)
    finally:
        k.close()
    bad = ck is not None and not ck.ok
    return PeerResult(peer=name, shape="", batch=0, context=0, kv_bytes=spec.kv_bytes, median_us=t.median_us,
                      p10_us=t.p10_us, p90_us=t.p90_us, rel_error=None if ck is None else (ck.rel_error if ck.ok else math.nan),
                      variant=v.name, method=t.method + (f"; launch bounded at {bound} tokens, per-sequence split"
                                                          if graph else "; planned (ragged batch)" if how else ""),
                      note=f"check {ck.status}: {ck.detail}" if bad else "")


def _loaded(v: Any, info: Any, name: str, emu: Any) -> Any:
    """v built and loaded for bench row `name` (a clear error where it does not build)."""
    from workbench.bench.peers.common import PeerUnavailable
    from workbench.kernel.build import build_variant
    from workbench.kernel.launch import load
    from workbench.kernel.references import REFERENCES
    b = build_variant(v, info.arch)
    if not b.ok and name in REFERENCES:        # vLLM's own kernel: its source may be out of reach
        raise PeerUnavailable(f"vLLM's own kernel did not build: {b.error.splitlines()[-1] if b.error else b.status}")
    if not b.ok:
        raise WorkbenchError(f"{v.name} does not build: {b.error}")
    return load(b, 0, emu.sms if emu is not None else None)


# How a run timed its rows, one note each (workbench compare reads them back: bench.compare.form_of)
FORM_NOTES = {
    "in-graph": "timing: every row as one CUDA graph of a launch per rotation copy, back to back, replay ÷ "
                "launches (--in-graph: attention as it runs inside vLLM's decode graph)",
    "kv-write": "timing: each launch after a KV-write stand-in kernel (one copy of the step's new K and V), "
                "as attention follows the KV-cache write in vLLM's step; the stand-in's own time subtracted",
    "fused-write": "timing: every row is attention plus the step's KV-cache write as its backend runs it "
                   "(--fused-write): the peers (and vLLM's own kernel) after a KV-write stand-in kernel, its time "
                   "included; our kernels with the write fused into the launch, as the exported backend runs them",
    "pages contiguous": "pages: contiguous (each sequence's KV blocks in order, sequence after sequence, every row)",
}


def check_write_forms(in_graph: bool, kv_write: bool, fused_write: bool) -> None:
    """--kv-write / --fused-write: each times the in-graph form, and they are two timings of one write."""
    if (kv_write or fused_write) and not in_graph:
        raise WorkbenchError(f"--{'kv' if kv_write else 'fused'}-write times the in-graph form: add --in-graph")
    if kv_write and fused_write:
        raise WorkbenchError("--kv-write and --fused-write are two timings of the KV write: choose one")


def timing_form(in_graph: bool, kv_write: bool, pages: str, fused_write: bool = False) -> list[str]:
    """The FORM_NOTES keys of a run timed with these options (none: the default form)."""
    return [k for k, on in (("in-graph", in_graph), ("kv-write", kv_write), ("fused-write", fused_write),
                            ("pages contiguous", pages == "contiguous")) if on]


def run_bench(*, heads: Any, dtype: str, block_size: int, suite: Any, peers: list[str], launches: int,
              pick: Callable[[Any], Any] | None, progress: Callable[[str], None], tuned_note: str,
              save: Callable[[BenchRun], None] | None = None, emu: Any = None,
              graph_len: int = GRAPH_LEN, graph_walk: bool = False, graph_sched: bool | None = None,
              replay_ours: bool = False, in_graph: bool = False, pages: str = "scattered",
              kv_write: bool = False, fused_write: bool = False) -> BenchRun:
    """emu: a started greenctx.Emulation: every timed region (ours and the peers') runs inside it.
    replay_ours: our rows timed as the peers are, by CUDA-graph replay of each launch (not with emu).
    in_graph: every row, ours and the peers', timed as one CUDA graph of a launch per rotation copy,
    back to back as in a decode step's graph (measure.timing.time_calls; not with emu).
    kv_write (with in_graph): each launch after a KV-write stand-in kernel, as attention follows the
    KV-cache write in vLLM's step (measure.workload.kv_write_standin), its own time subtracted.
    fused_write (with in_graph): every row is attention plus the step's KV write as its backend runs
    it: the peers after the stand-in, its time kept; our rows with the write fused into the launch
    (the exported backend's forward_includes_kv_cache_update).
    pages: the block ids of every row's KV (measure.workload.PAGE_ORDERS), one order for all rows.
    graph_len: the launch bound of the tuned-graph row (the max_model_len vLLM runs with);
    graph_walk: that row's auto variants built with Variant.graph_walk (`export --graph-walk`);
    graph_sched: with Variant.graph_sched (as `export` builds by default; None: unless graph_walk), the
    schedule planned per shape."""
    import torch

    from workbench.measure.ceiling import read_ceiling
    from workbench.measure.gpuinfo import gpu_info
    from workbench.bench.peers import PEERS
    from workbench.bench.peers.common import PeerUnavailable
    from workbench.measure.timing import time_calls
    from workbench.measure.workload import kv_write_standin

    if not torch.cuda.is_available():
        raise WorkbenchError("no CUDA device visible: `workbench bench` measures on a GPU")
    info = emu.gpu_info() if emu is not None else gpu_info(0)
    ceiling = emu.ceiling() if emu is not None else read_ceiling(0)
    shape = {"head_size": heads.head_size, "block_size": block_size, "dtype": dtype}
    min_bytes = 4 * max(info.l2_bytes, 1 << 20)
    results: list[PeerResult] = []
    notes = [tuned_note] if tuned_note else []
    if emu is not None:
        notes.append(emu.plan.provenance().replace("tuned for", "measured for", 1))
    check_write_forms(in_graph, kv_write, fused_write)
    notes += [FORM_NOTES[f] for f in timing_form(in_graph, kv_write, pages, fused_write)]
    told: set[str] = set()
    for b, spec in suite.bench_specs(heads, dtype, block_size):
        spec = dataclasses.replace(spec, pages=pages)
        between = kv_write_standin(spec, "cuda") if kv_write or fused_write else None
        extra = {"between": between, "charge_between": fused_write} if between is not None else {}
        floor_us = spec.kv_bytes / (ceiling.gbps * 1e9) * 1e6
        for p in peers:
            progress(f"{b.label} · {p}")
            r = PeerResult(peer=p, shape=b.label, batch=b.batch, context=b.context, kv_bytes=spec.kv_bytes)
            try:
                if p in KERNEL_ROWS:
                    got = _ours(p, spec, info, ceiling.gbps, launches, pick, shape, emu, graph_len, graph_walk,
                                graph_sched, replay_ours, in_graph, between, fused_write)
                    got.shape, got.batch, got.context = b.label, b.batch, b.context
                    r = got
                else:
                    calls, note, err = PEERS[p](spec, min_bytes, check=spec.kv_bytes <= CHECK_MAX_BYTES)
                    timer = emu.peer_timer() if emu is not None else time_calls
                    samples, method = timer(calls, info, launches=launches, name=f"{p} :: {b.label}", in_graph=in_graph,
                                            **extra)
                    q = statistics.quantiles(samples, n=10)
                    r.median_us, r.p10_us, r.p90_us = statistics.median(samples), q[0], q[-1]
                    r.rel_error, r.method = err, method
                    run_note = note.rsplit(', ', 1)[0]     # copies differ per shape
                    if p == READ:                          # and the read's launch form: the row's variant
                        from workbench.bench.peers.read import split_note
                        run_note, r.variant = split_note(note)
                    if p not in told:              # once per peer
                        notes.append(f"{p}: {run_note}")
                        told.add(p)
                    del calls
            except PeerUnavailable as e:
                r.note = str(e)
                if f"{p}:{e}" not in told:
                    notes.append(f"{p} not run: {e}")
                    told.add(f"{p}:{e}")
            except Exception as e:              # a peer that breaks on one shape must not end the run
                msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
                r.note = f"failed: {type(e).__name__}: {msg}"
                notes.append(f"{p} failed on {b.label}: {type(e).__name__}: {msg}")
                torch.cuda.synchronize()
            r.efficiency = floor_us / r.median_us if r.median_us else None
            results.append(r)
            gc.collect()
            torch.cuda.empty_cache()
        results.append(PeerResult(peer="floor", shape=b.label, batch=b.batch, context=b.context,
                                  kv_bytes=spec.kv_bytes, median_us=floor_us, efficiency=1.0,
                                  method=f"KV bytes ÷ read ceiling {ceiling.gbps:.0f} GB/s"))
        if save:                              # after every shape: a killed run keeps what it measured
            save(_run(info, ceiling, heads, dtype, block_size, suite, peers, results, notes))
    return _run(info, ceiling, heads, dtype, block_size, suite, peers, results, notes)


def _run(info: Any, ceiling: Any, heads: Any, dtype: str, block_size: int, suite: Any, peers: list[str],
         results: list[PeerResult], notes: list[str]) -> BenchRun:
    return BenchRun(gpu=info.to_dict(), ceiling=ceiling.to_dict(), heads=heads.to_dict(), dtype=dtype,
                    block_size=block_size, suite=suite.to_dict(), peers=list(peers), results=results,
                    created=time.strftime("%Y-%m-%dT%H:%M:%S%z"), notes=notes)


