"""Profile one of our variants beside FA3 on the same shapes, for ncu (issue 12: where the gap is).

Run under ncu (cold L2: ncu flushes caches before each profiled kernel):
  ncu --clock-control none --nvtx --nvtx-include "probe/" --section SpeedOfLight ... \
      [PROBE_MODEL=qwen2.5-7b] python3 scripts/probe_ncu.py VARIANT b8x32768 b64x1024 ...
Each shape launches ours once and FA3 once inside an NVTX range named probe (after an unprofiled
warm-up outside it), so the report holds exactly those kernels, labelled by the kernel names.
GRAPH_LEN=32864: ours is launched as a captured graph runs it (bounded there, each sequence split
by its own length, the step planned first where the variant schedules: Variant.scheduling()).
FORCE_SCHED=1: planned on every split launch; SCHED_WAVES=N: item slots for N waves of CTAs;
PLAN_MAX_PARTS=1: one item per sequence (the scheduled kernel on whole sequences).
"""
from __future__ import annotations

import sys


def main() -> None:
    import nvtx
    import torch

    from workbench.bench.peers.fa3 import fa3
    from workbench.kernel.build import build_variant
    from workbench.kernel.launch import load
    from workbench.kernel.variant import Variant, parse_knobs
    from workbench.measure.gpuinfo import gpu_info
    from workbench.measure.workload import WorkloadSpec, build_rotation

    import os

    from workbench.config.profiles import heads_from_text

    # PROBE_MODEL=model[:tp] or Q/KV[/D] (default llama-3.1-8b): whose heads the shapes have, e.g. qwen2.5-7b, 16/4
    heads = heads_from_text(os.environ.get("PROBE_MODEL", "llama-3.1-8b"))   # model[:tp] or Q/KV[/D]
    info = gpu_info(0)
    v = Variant.from_dict({**parse_knobs(sys.argv[1]), "head_size": heads.head_size})
    graph_len = int(os.environ.get("GRAPH_LEN", "0"))
    if graph_len:
        v = v.scheduling()
    import workbench.kernel.variant as variant_mod
    if os.environ.get("FORCE_SCHED"):          # the step plan on every split launch (as probe_ragged.py's sched column)
        variant_mod.GRAPH_WALK_WAVES = 0
    if os.environ.get("SCHED_WAVES"):          # the scheduled grid's item slots, in waves of CTAs
        variant_mod.GRAPH_SCHED_WAVES = float(os.environ["SCHED_WAVES"])
    k = load(build_variant(v, info.arch), 0)
    if graph_len and os.environ.get("PLAN_MAX_PARTS"):       # 1: the scheduled kernel on whole sequences
        from probe_common import capped
        k = capped(k, int(os.environ["PLAN_MAX_PARTS"]))
    for label in sys.argv[2:]:
        b, c = label[1:].split("x")
        spec = WorkloadSpec.uniform(int(b), int(c), num_heads=heads.num_heads, num_kv_heads=heads.num_kv_heads,
                                    head_size=heads.head_size)
        w, tables = build_rotation(spec, "cuda", 1)
        out = torch.empty_like(w.query)
        L = max(graph_len, spec.max_seq_len)
        ws = k.step_workspace(w.seq_lens, spec.num_heads, spec.num_kv_heads, L, bool(graph_len))

        def ours() -> None:
            k(out, w.query, w.key_cache, w.value_cache, spec.num_kv_heads, w.scale, tables[0], w.seq_lens,
              L, workspace=ws, per_seq_split=bool(graph_len))
        calls, _, _ = fa3(spec, 1, check=False)
        for f in (ours, calls[0]):
            f()
        torch.cuda.synchronize()
        with nvtx.annotate("probe"):
            ours()
            calls[0]()
            torch.cuda.synchronize()
        print(label, "done", flush=True)
        del calls, w, tables, out, ws
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
