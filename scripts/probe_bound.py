"""Where a graph-bound launch's time goes against the per-shape one for the same batch (perf-notes v31):
one variant (its plain build), in-graph and cold L2, launched bounded at L with and without the per-sequence
split (what a CUDA graph captured for max_model_len runs: per_seq_split, the plain grid with seq_fill).

  python3 scripts/probe_bound.py OUT.json "knobs" b8x32768 ...    env BOUNDS (own,32784,32864), PER (both, 0, 1),
  SCHED=1 (the variant's scheduled build, the schedule forced on where a launch splits per sequence)
"""
from __future__ import annotations

import json
import os
import sys


def main() -> None:
    import torch

    from probe_common import load_knobs, scheduled_form
    from workbench.config.profiles import heads_from_text
    from workbench.measure.gpuinfo import gpu_info
    from workbench.measure.timing import time_variant
    from workbench.measure.workload import WorkloadSpec, build_rotation

    out_path, knobs = sys.argv[1:3]
    heads = heads_from_text(os.environ.get("PROBE_MODEL", "llama-3.1-8b"))
    info = gpu_info(0)
    (k,) = load_knobs(knobs, heads.head_size, info.arch, form=scheduled_form(os.environ.get("SCHED") == "1"))
    rows = []
    for label in sys.argv[3:]:
        n, ctx = (int(x) for x in label[1:].split("x"))
        spec = WorkloadSpec.uniform(n, ctx, num_heads=heads.num_heads, num_kv_heads=heads.num_kv_heads,
                                    head_size=heads.head_size)
        rot = build_rotation(spec, "cuda", 4 * info.l2_bytes)
        row = {"shape": label}
        for b in os.environ.get("BOUNDS", "own,32784,32864").split(","):
            L = ctx if b == "own" else int(b)
            for per in (False, True) if os.environ.get("PER", "both") == "both" else (os.environ["PER"] == "1",):
                t = time_variant(k, spec, info, launches=30, rotation=rot, in_graph=True, launch_len=L, per_seq_split=per)
                row[f"{b}{'-per' if per else ''}"] = t.median_us
        rows.append(row)
        print(label, "  ".join(f"{key} {v:.2f}" for key, v in row.items() if key != "shape"), flush=True)
        del rot
        torch.cuda.empty_cache()
    json.dump({"variant": k.variant.name, "gpu": info.to_dict(), "rows": rows}, open(out_path, "w"), indent=1)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
