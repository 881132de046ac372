"""Ragged batches where few CTAs share the GPU (issue 12: 70b TP8 r32 at 0.66x FA3): does the step
planned on the device (wb_plan: partition size from the batch's real lengths) beat the plain
per-sequence grid, and what does it cost on uniform batches? One process, cold L2, FA3 beside.

  MODEL=llama-3.1-70b TP=8 python3 scripts/probe_ragged.py OUT.json "knobs;knobs..." SHAPE...
  SHAPE: 64x1024 (uniform), r32x200-32768 (the bench suite's ragged batch, seed 1), 62x1024+1x30000
PLAN_MAX_PARTS=1: the plan gives each sequence one item (the scheduled kernel on whole sequences);
SCHED_WAVES=N: the scheduled grid's item slots in waves of CTAs (Variant's GRAPH_SCHED_WAVES);
SCHED_FIT=2: no batch fits one wave (Variant's SCHED_FIT_FILL: its gate and its one wave of slots off)
Columns per variant: shape (the per-shape launch, as `bench`'s tuned row), shape+plan (the same
bound, each sequence split on the device by the plan), full (bounded at BOUND, per-sequence
split: the package's captured graph today), sched (bounded at BOUND, planned). The plan is forced
on (Variant.schedules' wave gate off) so both forms run on every shape.
"""
from __future__ import annotations

import json
import os
import statistics
import sys

BOUND = 32864


def lengths(label: str) -> tuple[int, ...]:
    from workbench.measure.suite import RaggedShape
    if label.startswith("r"):
        b, span = label[1:].split("x")
        lo, hi = span.split("-")
        return RaggedShape(int(b), int(lo), int(hi)).lengths()
    return tuple(n for part in label.split("+") for c, n in [map(int, part.split("x"))] for _ in range(c))


def main() -> None:
    import torch

    import workbench.kernel.variant as variant_mod
    from workbench.bench.peers.fa3 import fa3
    from workbench.config.profiles import head_shape, load_model
    from probe_common import capped, load_knobs
    from workbench.kernel.variant import Variant
    from workbench.measure.gpuinfo import gpu_info
    from workbench.measure.timing import time_calls, time_variant
    from workbench.measure.workload import WorkloadSpec, build_rotation

    variant_mod.GRAPH_WALK_WAVES = 0          # plan every split launch (the gate is what is under test)
    if os.environ.get("SCHED_WAVES"):           # the scheduled grid's item slots, in waves of CTAs
        variant_mod.GRAPH_SCHED_WAVES = float(os.environ["SCHED_WAVES"])
    if os.environ.get("SCHED_FIT"):             # Variant's SCHED_FIT_FILL (2: nothing fits one wave)
        variant_mod.SCHED_FIT_FILL = float(os.environ["SCHED_FIT"])
    out_path, knob_list = sys.argv[1:3]
    shapes = [(s, lengths(s)) for s in sys.argv[3:]]
    heads = head_shape(load_model(os.environ.get("MODEL", "llama-3.1-8b")), tp=int(os.environ.get("TP", "1")))
    info = gpu_info(0)
    ks = load_knobs(knob_list, heads.head_size, info.arch, Variant.scheduling)
    if os.environ.get("PLAN_MAX_PARTS"):        # e.g. 1: the scheduled kernel on whole sequences (perf-notes v18)
        ks = [capped(k, int(os.environ["PLAN_MAX_PARTS"])) for k in ks]
    vs = [k.variant for k in ks]
    rows = []
    print(f"{heads.num_heads}/{heads.num_kv_heads} heads, bound {BOUND}", flush=True)
    print(f"{'shape':>16} {'fa3':>7} | {'variant':>44} {'shape':>7} {'s+plan':>7} {'full':>7} {'sched':>7}  plan",
          flush=True)
    for label, lens in shapes:
        spec = WorkloadSpec(seq_lens=lens, num_heads=heads.num_heads, num_kv_heads=heads.num_kv_heads)
        rot = build_rotation(spec, "cuda", 4 * info.l2_bytes)
        try:                                    # FA3 beside where its bundle is on the host
            calls, _, _ = fa3(spec, 4 * info.l2_bytes, check=False)
            fa = statistics.median(time_calls(calls, info, launches=30, name=f"fa3 {label}")[0])
            del calls
        except Exception:                       # noqa: BLE001 - the probe's own columns still count
            fa = float("nan")
        for v, k in zip(vs, ks):
            row = {"shape": label, "tokens": sum(lens), "fa3": fa, "variant": v.name}
            row["shape_us"] = time_variant(k, spec, info, launches=30, rotation=rot).median_us
            for name, L, sched in (("s+plan", None, True), ("full", BOUND, False), ("sched", BOUND, True)):
                try:
                    kk = k if sched else plain(k)
                    row[name] = time_variant(kk, spec, info, launches=30, rotation=rot, launch_len=L,
                                             per_seq_split=True).median_us
                except Exception as e:                    # noqa: BLE001
                    row[name] = None
                    row.setdefault("errors", []).append(f"{name}: {str(e)[:160]}")
            n = pt = 0                          # a whole-sequence variant has no plan (the reference)
            if v.graph_sched:
                ws = k.workspace(spec.num_seqs, spec.num_heads, BOUND)
                k.plan(ws, rot[0].seq_lens, spec.num_heads, spec.num_kv_heads, BOUND)
                n, pt, _, mx = ws.sched[:4].tolist()
                del ws
            row.update(plan_items=n, plan_tokens=pt)
            rows.append(row)
            f = lambda x: f"{x:7.1f}" if isinstance(x, float) else f"{'-':>7}"   # noqa: E731
            print(f"{label:>16} {fa:7.1f} | {v.name[-44:]:>44} {f(row.get('shape_us'))} {f(row.get('s+plan'))} "
                  f"{f(row.get('full'))} {f(row.get('sched'))}  {n} x {pt}  {row.get('errors', '')}", flush=True)
        del rot
        torch.cuda.empty_cache()
    json.dump({"gpu": info.to_dict(), "bound": BOUND, "heads": [heads.num_heads, heads.num_kv_heads], "rows": rows},
              open(out_path, "w"), indent=1)


_PLAIN: dict[int, object] = {}


def plain(k):   # noqa: ANN001, ANN201 - the same module, launched as the plain per-sequence grid
    """The loaded kernel with its schedule gate closed: Variant.schedules is False for it."""
    import copy
    if id(k) not in _PLAIN:
        p = copy.copy(k)
        p._sched = {}
        p.sched_shape = lambda grid_x, num_seqs, max_seq_len: None      # type: ignore[method-assign]
        _PLAIN[id(k)] = p
    return _PLAIN[id(k)]


if __name__ == "__main__":
    main()
