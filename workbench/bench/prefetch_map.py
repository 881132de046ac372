"""bench.prefetch_map (split from bench.py)."""
from __future__ import annotations

import time
from typing import Any, Callable

from workbench.errors import WorkbenchError


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

    from workbench.kernel.build import build_many
    from workbench.measure.ceiling import read_ceiling
    from workbench.measure.gpuinfo import gpu_info
    from workbench.kernel.launch import load
    from workbench.measure.timing import time_variant
    from workbench.kernel.variant import Variant
    from workbench.measure.workload import build_rotation

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
