"""Where a graph-bound launch loses to a per-shape one (issue 13's last 5%): time one variant on a
few batches per shape and bounded at several launch lengths (the grid grows with the bound: more
empty partitions, and shared memory sized for a longer partition), per-sequence split on. If the
time grows with the bound at a fixed smem size, the empty CTAs cost; if it jumps where the
partition (shared memory, slots) changes, the slots do.

  python3 scripts/probe_graph_bound.py OUT.json "knobs" [batch x context ...]
  e.g. scripts/probe_graph_bound.py /tmp/g.json "threads=128,heads_per_cta=4,partition=auto,stages=3,mma=1" 64x1024 32x4096
  a ragged batch: 62x1024+1x30000+1x9000 (counts x lengths, joined by +)
Prints µs per (shape, bound) -- the variant built with graph_walk (its split grid walks long sequences,
Params.grid_parts), and the variant as given (a grid sized for the bound) beside it -- with the
launch's partition tokens, grid partitions and SM slots.
"""
from __future__ import annotations

import json
import sys

BOUNDS = (None, 4096, 8192, 16384, 32864)


def main() -> None:
    from workbench.config.profiles import head_shape, load_model
    from workbench.kernel.build import build_many
    from workbench.kernel.launch import load
    from workbench.kernel.variant import Variant, parse_knobs
    from workbench.measure.gpuinfo import gpu_info
    from workbench.measure.timing import time_variant
    from workbench.measure.workload import WorkloadSpec

    out_path, knobs = sys.argv[1:3]
    shapes = [(s, tuple(n for part in s.split("+") for c, n in [map(int, part.split("x"))] for _ in range(c)))
              for s in (sys.argv[3:] or ["64x1024", "32x4096", "8x4096", "1x1024"])]
    heads = head_shape(load_model("llama-3.1-8b"))
    info = gpu_info(0)
    v = Variant.from_dict({**parse_knobs(knobs), "head_size": heads.head_size})
    b, bw = build_many([v, v.walking()], info.arch)
    if not (b.ok and bw.ok):
        raise SystemExit(f"build failed: {(b.error or bw.error or '')[-400:]}")
    k, kw = load(b, 0), load(bw, 0)
    occ = k.occupancy()
    rows = []
    for label, lens in shapes:
        batch, ctx = len(lens), max(lens)
        spec = WorkloadSpec(seq_lens=lens, num_heads=heads.num_heads, num_kv_heads=heads.num_kv_heads)
        ctas = batch * heads.num_kv_heads * -(-(heads.num_heads // heads.num_kv_heads) // v.heads_per_cta)
        for bound in BOUNDS:
            if bound is not None and bound < ctx:
                continue
            L = bound or ctx
            ptok = v.auto_tokens(ctas, L, occ) if v.partition == -2 else v.split_tokens()
            slots = occ.sm_count * occ.blocks_per_sm(v.smem_bytes(ptok or L), ptok == 0)
            t = time_variant(kw, spec, info, launches=30, launch_len=bound, per_seq_split=bound is not None)
            row = {"shape": label if "+" in label else f"b{batch}x{ctx}", "bound": bound, "us": t.median_us, "p10": t.p10_us, "p90": t.p90_us,
                   "part_tokens": ptok, "grid_parts": -(-L // ptok) if ptok else 1, "slots": slots, "ctas": ctas}
            if bound is not None and v.graph_forms_apply:                # the same split, grid sized for the bound
                fill = v.seq_fill(ctas, L, ptok, occ) if ptok else 0
                row["walk_parts"] = v.graph_parts(ctas, L, ptok, fill, occ) if fill else row["grid_parts"]
                tp = time_variant(k, spec, info, launches=30, launch_len=bound, per_seq_split=True)
                row.update(full_us=tp.median_us, full_p10=tp.p10_us, full_p90=tp.p90_us)
            rows.append(row)
            print(f"{row['shape']:>10} bound {str(bound):>6}: {t.median_us:8.1f} us"
                  + (f" (full grid {row['full_us']:8.1f}, walk grid {row['walk_parts']:>3})" if "full_us" in row
                     else " " * 37)
                  + f"  partition {ptok:>5} tokens, {row['grid_parts']:>3} grid partitions, {slots:>4} slots for "
                  f"{ctas} CTAs per partition", flush=True)
    k.close()
    kw.close()
    json.dump({"variant": v.name, "gpu": info.to_dict(), "rows": rows}, open(out_path, "w"), indent=1)


if __name__ == "__main__":
    main()
