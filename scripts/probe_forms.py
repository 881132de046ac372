"""Where the captured form of one variant loses to its per-shape launch (perf-notes v24: at 70b TP8
b8 x 4k-12k the same variant runs 13.3 us per shape and 14.8 bounded at 32864, FA3 14.3).

  PROBE_MODEL=llama-3.1-70b:8 python3 scripts/probe_forms.py OUT.json "knobs" b8x4096 b16x1024 ...

One binary (the variant built as `export` builds it: Variant.scheduling()), each shape launched
three ways, each timed in one CUDA graph of a launch per rotation copy (bench --in-graph):
  shape  the per-shape launch (bounded at the batch's longest sequence, the auto plan on the host);
  own    bounded there too but per-sequence split, planned on the device where it schedules;
  bound  bounded at GRAPH_LEN (default 32864), per-sequence split: what vLLM's graph replays.
Beside each: the host plan's partition and slots, or the device plan's (read back from the
schedule: items, partition tokens) and the launch's item slots. If `own` ~ `shape`, the bound costs;
if `own` ~ `bound`, the scheduled form itself does.
"""
from __future__ import annotations

import json
import os
import sys


def main() -> None:
    import torch

    from workbench.config.profiles import heads_from_text
    from probe_common import load_knobs
    from workbench.measure.gpuinfo import gpu_info
    from workbench.measure.timing import time_variant
    from workbench.measure.workload import WorkloadSpec, build_rotation

    out_path, knobs = sys.argv[1:3]
    heads = heads_from_text(os.environ.get("PROBE_MODEL", "llama-3.1-8b"))
    bound = int(os.environ.get("GRAPH_LEN", "32864"))
    info = gpu_info(0)
    (k,) = load_knobs(knobs, heads.head_size, info.arch, lambda v: v.scheduling())
    v = k.variant
    occ = k.occupancy()
    gx = k.grid_x(heads.num_heads, heads.num_kv_heads)
    rows = []
    for label in sys.argv[3:]:
        n, ctx = (int(x) for x in label[1:].split("x"))
        spec = WorkloadSpec.uniform(n, ctx, num_heads=heads.num_heads, num_kv_heads=heads.num_kv_heads,
                                    head_size=heads.head_size)
        for form, L, per_seq in (("shape", None, False), ("own", ctx, True), ("bound", bound, True)):
            t = time_variant(k, spec, info, launches=30, launch_len=L, per_seq_split=per_seq, in_graph=True)
            row = {"shape": label, "form": form, "us": t.median_us, "p10": t.p10_us, "p90": t.p90_us}
            Lr = L or ctx
            sh = k.sched_shape(gx, n, Lr) if per_seq else None
            if sh is not None:
                w, tables = build_rotation(spec, "cuda", 1)
                ws = k.step_workspace(w.seq_lens, spec.num_heads, spec.num_kv_heads, Lr, True)
                torch.cuda.synchronize()
                items, pt, _, mx = (int(x) for x in ws.sched[:4].tolist())
                row.update(plan="device", items=items, part_tokens=pt, pt_cap=sh.part_tokens, slots=sh.slots,
                           cap=sh.cap, ctas=items * gx)
                del w, tables, ws
            else:
                ptok = v.auto_tokens(gx * n, Lr, occ)
                parts = -(-ctx // ptok) if ptok > 0 else 1
                row.update(plan="host", part_tokens=ptok, items=n * parts, ctas=n * parts * gx,
                           slots=v.split_slots(ptok, occ) if ptok > 0 else None)
            rows.append(row)
            print(f"{label:>10} {form:>5}: {t.median_us:8.2f} us [{t.p10_us:.2f}-{t.p90_us:.2f}]  {row['plan']:>6} plan: "
                  f"partition {row['part_tokens']}, {row['items']} items = {row['ctas']} CTAs"
                  + (f", slots {row['slots']}" if row.get("slots") else "")
                  + (f", item slots {row['cap']} (pt cap {row['pt_cap']})" if "cap" in row else ""), flush=True)
            torch.cuda.empty_cache()
    k.close()
    json.dump({"variant": v.name, "heads": heads.to_dict(), "gpu": info.to_dict(), "rows": rows},
              open(out_path, "w"), indent=1)


if __name__ == "__main__":
    main()
