"""The graph-bound launch forms side by side (issue 13): one variant on uniform and ragged batches,
bounded at max_model_len as vLLM's captured graphs are, cold L2, one process, FA3 beside them.

  python3 scripts/probe_sched.py OUT.json "knobs" [batch x context ...]   (ragged: 62x1024+1x30000)
Columns: per-shape (the launch for the batch's own longest sequence), full (the grid for the
bound, each sequence split by its own length: the default package), walk (graph_walk), sched
(graph_sched: the step planned on the device by wb_plan), with the plan's partition and items.
"""
from __future__ import annotations

import json
import statistics
import sys

BOUND = 32864


def main() -> None:
    import torch

    from workbench.bench.peers.fa3 import fa3
    from workbench.config.profiles import head_shape, load_model
    from workbench.kernel.build import build_many
    from workbench.kernel.launch import load
    from workbench.kernel.variant import Variant, parse_knobs
    from workbench.measure.gpuinfo import gpu_info
    from workbench.measure.timing import time_calls, time_variant
    from workbench.measure.workload import WorkloadSpec, build_rotation

    out_path, knobs = sys.argv[1:3]
    shapes = [(s, tuple(n for part in s.split("+") for c, n in [map(int, part.split("x"))] for _ in range(c)))
              for s in (sys.argv[3:] or ["64x1024", "32x4096"])]
    heads = head_shape(load_model("llama-3.1-8b"))
    info = gpu_info(0)
    v = Variant.from_dict({**parse_knobs(knobs), "head_size": heads.head_size})
    forms = {"full": v, "walk": v.walking(), "sched": v.scheduling()}
    builds = build_many(list(forms.values()), info.arch)
    bad = [b for b in builds if not b.ok]
    if bad:
        raise SystemExit(f"build failed: {(bad[0].error or '')[-600:]}")
    ks = {name: load(b, 0) for name, b in zip(forms, builds)}
    rows = []
    print(f"{'shape':>24} {'fa3':>8} {'shape':>8} {'full':>8} {'walk':>8} {'sched':>8}  plan", flush=True)
    for label, lens in shapes:
        spec = WorkloadSpec(seq_lens=lens, num_heads=heads.num_heads, num_kv_heads=heads.num_kv_heads)
        rot = build_rotation(spec, "cuda", 4 * info.l2_bytes)
        calls, _, _ = fa3(spec, 4 * info.l2_bytes, check=False)
        fa = statistics.median(time_calls(calls, info, launches=30, name=f"fa3 {label}")[0])
        del calls
        row = {"shape": label, "fa3": fa}
        row["shape_us"] = time_variant(ks["full"], spec, info, launches=30, rotation=rot).median_us
        for name, k in ks.items():
            row[name] = time_variant(k, spec, info, launches=30, rotation=rot, launch_len=BOUND,
                                     per_seq_split=True).median_us
        k = ks["sched"]                                   # what the plan chose for this batch
        ws = k.workspace(spec.num_seqs, spec.num_heads, BOUND)
        k.plan(ws, rot[0].seq_lens, spec.num_heads, spec.num_kv_heads, BOUND)
        n, pt, _, mx = ws.sched[:4].tolist()
        grid_x = k.grid_x(spec.num_heads, spec.num_kv_heads)
        sh = k.sched_shape(grid_x, spec.num_seqs, BOUND)        # None: this batch runs the plain grid
        own = ks["full"].auto_tokens(grid_x * spec.num_seqs, spec.max_seq_len)     # the per-shape launch's
        row.update(plan_items=n, plan_tokens=pt, shape_tokens=own,
                   **({"cap": sh.cap, "cap_tokens": sh.part_tokens, "slots": sh.slots} if sh else {}))
        rows.append(row)
        print(f"{label:>24} {fa:8.1f} {row['shape_us']:8.1f} {row['full']:8.1f} {row['walk']:8.1f} {row['sched']:8.1f}"
              f"  {n} items of {pt} tokens (per shape {own}), " + (f"{sh.cap} slots of {sh.part_tokens}, {sh.slots} CTAs "
                                                                    "resident" if sh else "plain grid"), flush=True)
        del rot, ws
        torch.cuda.empty_cache()
    json.dump({"variant": v.name, "gpu": info.to_dict(), "bound": BOUND, "rows": rows}, open(out_path, "w"), indent=1)


if __name__ == "__main__":
    main()
