"""`workbench bench`: our variants and what users would pick instead, side by side on one suite
of decode shapes, cold L2 for all, against the floor (KV bytes ÷ the measured read ceiling)."""
from __future__ import annotations

import gc
import json
import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import WorkbenchError

OURS = ("baseline", "paper", "simple", "simple-pf", "tuned")
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


def geomean(xs: list[float]) -> float | None:
    xs = [x for x in xs if x and x > 0 and x == x]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else None


def summary(run: BenchRun) -> dict[str, Any]:
    by: dict[tuple[str, str], PeerResult] = {(r.peer, r.shape): r for r in run.results}
    shapes = list(dict.fromkeys(r.shape for r in run.results))
    out: dict[str, Any] = {"geomean_speedup_of_tuned": {}, "efficiency_geomean": {}}
    for p in run.peers:
        effs = [by[(p, s)].efficiency for s in shapes if (p, s) in by and by[(p, s)].efficiency]
        out["efficiency_geomean"][p] = geomean(effs)
        if p == "tuned":
            continue
        ratios = [by[(p, s)].median_us / by[("tuned", s)].median_us for s in shapes
                  if (p, s) in by and ("tuned", s) in by and by[(p, s)].median_us and by[("tuned", s)].median_us]
        out["geomean_speedup_of_tuned"][p] = geomean(ratios)
    for ref in ("baseline", "simple"):
        out[f"shapes_where_tuned_is_slower_than_{ref}"] = [
            s for s in shapes if ("tuned", s) in by and (ref, s) in by and by[("tuned", s)].median_us
            and by[(ref, s)].median_us and by[("tuned", s)].median_us > by[(ref, s)].median_us]
    return out


def _ours(name: str, spec: Any, info: Any, ceiling: float, launches: int, pick: Callable[[Any], Any] | None,
          shape: dict[str, Any]) -> PeerResult:
    from .build import build_variant
    from .check import check_variant
    from .launch import load
    from .timing import time_variant
    from .peers import PeerUnavailable
    from .variant import REFERENCES, named
    v = pick(spec) if name == "tuned" else named(name, **shape)
    b = build_variant(v, info.arch)
    if not b.ok and name in REFERENCES:        # vLLM's own kernel: its source may be out of reach
        raise PeerUnavailable(f"vLLM's own kernel did not build: {b.error.splitlines()[-1] if b.error else b.status}")
    if not b.ok:
        raise WorkbenchError(f"{v.name} does not build: {b.error}")
    k = load(b, 0)
    try:
        # the fp32 reference gathers the whole batch: checked up to CHECK_MAX_BYTES of KV
        ck = check_variant(k, spec, "cuda") if spec.kv_bytes <= CHECK_MAX_BYTES else None
        t = time_variant(k, spec, info, launches=launches, ceiling_gbps=ceiling)
    finally:
        k.close()
    bad = ck is not None and not ck.ok
    return PeerResult(peer=name, shape="", batch=0, context=0, kv_bytes=spec.kv_bytes, median_us=t.median_us,
                      p10_us=t.p10_us, p90_us=t.p90_us, rel_error=None if ck is None else (ck.rel_error if ck.ok else math.nan),
                      variant=v.name, method=t.method, note=f"check {ck.status}: {ck.detail}" if bad else "")


def run_bench(*, heads: Any, dtype: str, block_size: int, suite: Any, peers: list[str], launches: int,
              pick: Callable[[Any], Any] | None, progress: Callable[[str], None], tuned_note: str,
              save: Callable[[BenchRun], None] | None = None) -> BenchRun:
    import torch

    from .ceiling import read_ceiling
    from .gpuinfo import gpu_info
    from .peers import PEERS, PeerUnavailable
    from .timing import time_calls

    if not torch.cuda.is_available():
        raise WorkbenchError("no CUDA device visible: `workbench bench` measures on a GPU")
    info = gpu_info(0)
    ceiling = read_ceiling(0)
    shape = {"head_size": heads.head_size, "block_size": block_size, "dtype": dtype}
    min_bytes = 4 * max(info.l2_bytes, 1 << 20)
    results: list[PeerResult] = []
    notes = [tuned_note] if tuned_note else []
    told: set[str] = set()
    for b, spec in suite.specs(heads, dtype, block_size):
        floor_us = spec.kv_bytes / (ceiling.gbps * 1e9) * 1e6
        for p in peers:
            progress(f"{b.label} · {p}")
            r = PeerResult(peer=p, shape=b.label, batch=b.batch, context=b.context, kv_bytes=spec.kv_bytes)
            try:
                if p in OURS:
                    got = _ours(p, spec, info, ceiling.gbps, launches, pick, shape)
                    got.shape, got.batch, got.context = b.label, b.batch, b.context
                    r = got
                else:
                    calls, note, err = PEERS[p](spec, min_bytes, check=spec.kv_bytes <= CHECK_MAX_BYTES)
                    samples, method = time_calls(calls, info, launches=launches, name=f"{p} :: {b.label}")
                    q = statistics.quantiles(samples, n=10)
                    r.median_us, r.p10_us, r.p90_us = statistics.median(samples), q[0], q[-1]
                    r.rel_error, r.method = err, method
                    if p not in told:              # once per peer (copies differ per shape)
                        notes.append(f"{p}: {note.rsplit(', ', 1)[0]}")
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


def tuned_picker(study: str | None, storage: str | None, heads: Any, dtype: str, block_size: int,
                 arch: str) -> tuple[Callable[[Any], Any], str]:
    """The study's dispatch table, or (no study) the best of a small built-in sweep per shape."""
    from .variant import Variant
    if study:
        from .dispatch import build_dispatch
        from .study import completed, default_storage, open_study, references
        from .suite import Suite
        h = open_study(study, storage or default_storage(False), None, create=False)
        cfg = h.study.user_attrs.get("config") or {}
        if cfg.get("heads", {}).get("num_heads") != heads.num_heads or cfg.get("heads", {}).get("num_kv_heads") != heads.num_kv_heads \
                or cfg.get("dtype") != dtype or cfg.get("block_size") != block_size:
            raise WorkbenchError(f"study {study!r} was tuned for {cfg.get('model')} tp{cfg.get('tp')} {cfg.get('dtype')} "
                                 f"block {cfg.get('block_size')}: bench that shape (--model/--tp) or pick another study")
        table = build_dispatch(study, cfg, completed(h.study), references(h.study))
        s = Suite.from_dict(cfg["suite"])
        by = {f"b{r.bucket['batch']}x{r.bucket['context']}": Variant.from_dict(r.variant) for r in table.rows}
        return (lambda spec: by[s.bucket_for(spec.num_seqs, spec.max_seq_len).label],
                f"tuned = dispatch table of study {study} ({len(table.rows)} buckets)")
    return _sweep_picker(heads, dtype, block_size, arch), "tuned = best of a built-in sweep per shape (no --study)"


def _sweep_picker(heads: Any, dtype: str, block_size: int, arch: str) -> Callable[[Any], Any]:
    import torch

    from .build import build_many
    from .gpuinfo import gpu_info
    from .launch import load
    from .timing import time_variant
    from .variant import Variant
    g = heads.group
    # one CTA per GQA group when it fits (group 7 for qwen2.5-7b: 7, not a power of two)
    hpc = g if g <= 8 else max(x for x in (1, 2, 4, 8) if g % x == 0)
    base = dict(head_size=heads.head_size, block_size=block_size, dtype=dtype)
    # register-load layouts the first H100 study liked, and their cp.async-staged counterparts
    # (stages 3-4 won 1.1-1.2x from 134 MB up in scripts/stages_probe.py)
    cands = [Variant(**base, threads=t, heads_per_cta=q, partition=p, prefetch_distance=d,
                     prefetch_target="kv" if d else "none", stages=st)
             for t, q, p, d, st in ((128, hpc, -1, 1, 0), (128, hpc, 1024, 1, 0), (256, min(2, hpc), -1, 0, 0),
                                    (256, min(2, hpc), 256, 0, 0), (128, hpc, 1024, 0, 3), (128, hpc, 1024, 0, 4),
                                    (128, hpc, -1, 0, 3), (256, hpc, -1, 0, 4), (256, min(2, hpc), 256, 0, 3),
                                    (128, hpc, 256, 0, 3))]
    cands = [c for c in dict.fromkeys(cands) if c.is_valid(arch)]
    built = [b for b in build_many(cands, arch) if b.ok]
    info = gpu_info(0)
    cache: dict[str, Any] = {}

    def pick(spec: Any) -> Any:
        if spec.label not in cache:
            best = None
            for b in built:
                k = load(b, 0)
                try:
                    t = time_variant(k, spec, info, launches=30).median_us
                except Exception:
                    t = math.inf
                finally:
                    k.close()
                if best is None or t < best[0]:
                    best = (t, b.variant)
            cache[spec.label] = best[1]
            torch.cuda.empty_cache()
        return cache[spec.label]
    return pick


def plot(run: BenchRun, path: str | Path) -> Path:
    from .report import pyplot
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 5))
    for p in run.peers:
        pts = sorted((r.kv_bytes / 1e6, r.efficiency) for r in run.results if r.peer == p and r.efficiency)
        if pts:
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", label=p, linestyle="none" if len(pts) < 2 else "-")
    ax.axhline(1.0, color="k", lw=0.8, ls="--", label="floor (read ceiling)")
    ax.set_xscale("log")
    ax.set_xlabel("KV bytes per decode step (MB)")
    ax.set_ylabel("efficiency = floor ÷ latency")
    ax.set_title(f"{run.gpu.get('name')} · {run.heads.get('model')} ({run.heads.get('num_heads')}/"
                 f"{run.heads.get('num_kv_heads')} d{run.heads.get('head_size')}) {run.dtype} · cold L2")
    ax.grid(alpha=.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


# ---- the L2 prefetch map ----------------------------------------------------------------------
PF_DISTANCES = (0, 1, 2, 4)


def prefetch_layouts(group: int) -> list[dict[str, Any]]:
    hpcs = sorted({1, group if group <= 8 else max(x for x in (1, 2, 4, 8) if group % x == 0)})
    return [dict(threads=t, heads_per_cta=q, partition=p, stages=s) for t in (128, 256) for q in hpcs
            for p in ("vllm", 256, 1024) for s in (0, 4)]


def run_prefetch_map(*, heads: Any, dtype: str, block_size: int, suite: Any, launches: int,
                     progress: Callable[[str], None]) -> dict[str, Any]:
    """Per shape: the best variant without prefetch and the best with it, over the same grid of
    layouts (threads × heads per CTA × split-K) × distances {1, 2, 4} of K+V bulk prefetch."""
    import torch

    from .build import build_many
    from .ceiling import read_ceiling
    from .gpuinfo import gpu_info
    from .launch import load
    from .timing import time_variant
    from .variant import Variant
    from .workload import build_rotation

    if not torch.cuda.is_available():
        raise WorkbenchError("no CUDA device visible: the prefetch map measures on a GPU")
    info = gpu_info(0)
    ceiling = read_ceiling(0)
    op = "bulk" if int(info.arch[3:5]) >= 90 else "line"
    vs = [Variant(head_size=heads.head_size, block_size=block_size, dtype=dtype, **l, prefetch_distance=d,
                  prefetch_target="kv" if d else "none", prefetch_op=op if d else "none")
          for l in prefetch_layouts(heads.group) for d in PF_DISTANCES]
    builds = [b for b in build_many(vs, info.arch) if b.ok]
    kernels = [load(b, 0) for b in builds]
    rows = []
    try:
        for b, spec in suite.specs(heads, dtype, block_size):
            progress(b.label)
            rot = build_rotation(spec, "cuda", 4 * max(info.l2_bytes, 1 << 20))
            times = []
            for i, k in enumerate(kernels):
                try:
                    t = time_variant(k, spec, info, launches=launches, ceiling_gbps=ceiling.gbps, rotation=rot,
                                     warmup_s=0.05 if i == 0 else 0.005)
                    times.append((t.median_us, k.variant))
                except Exception:             # e.g. whole-sequence logits too long for shared memory
                    continue
            del rot
            torch.cuda.empty_cache()
            off = min((x for x in times if x[1].prefetch_distance == 0), key=lambda x: x[0])
            on = min((x for x in times if x[1].prefetch_distance > 0), key=lambda x: x[0])
            floor = spec.kv_bytes / (ceiling.gbps * 1e9) * 1e6
            rows.append({"shape": b.label, "kv_bytes": spec.kv_bytes, "best_without_us": off[0],
                         "best_without": off[1].name, "best_with_us": on[0], "best_with": on[1].name,
                         "prefetch_gain": off[0] / on[0], "eff_without": floor / off[0], "eff_with": floor / on[0],
                         "variants_timed": len(times)})
    finally:
        for k in kernels:
            k.close()
    return {"kind": "workbench-prefetch-map", "gpu": info.to_dict(), "ceiling": ceiling.to_dict(),
            "heads": heads.to_dict(), "dtype": dtype, "block_size": block_size, "suite": suite.to_dict(),
            "layouts": prefetch_layouts(heads.group), "distances": list(PF_DISTANCES), "prefetch_op": op,
            "rows": rows, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def prefetch_table(m: dict[str, Any]) -> Any:
    from rich.table import Table
    t = Table(title=f"L2 prefetch map · {m['gpu'].get('name')} · {m['heads'].get('model')} "
              f"({m['heads'].get('num_heads')}/{m['heads'].get('num_kv_heads')}) · best of {len(m['layouts'])} layouts "
              f"× distances {m['distances']} (K+V, {m['prefetch_op']}) · cold L2", title_justify="left")
    for c in ("shape", "KV MB", "best without µs", "best with µs", "with ÷ without", "verdict", "best with"):
        t.add_column(c, justify="left" if c in ("shape", "verdict", "best with") else "right")
    for r in m["rows"]:
        g = r["prefetch_gain"]
        verdict = "helps" if g > 1.02 else "hurts" if g < 0.98 else "neutral (±2%)"
        t.add_row(r["shape"], f"{r['kv_bytes'] / 1e6:.0f}", f"{r['best_without_us']:.1f}", f"{r['best_with_us']:.1f}",
                  f"{1 / g:.3f}", verdict, r["best_with"].split("-", 2)[-1])
    return t
