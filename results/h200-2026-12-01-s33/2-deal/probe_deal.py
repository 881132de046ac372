"""The dealt plan (perf-notes v31) against the static one and the plain grid, per shape, in-graph and cold
L2 as bench times (one CUDA graph of a launch per rotation copy), each dealt form first checked against
fp32. Forms of each variant (its -sched build), the launch bounded at the batch's own longest sequence:

  plain    the per-shape launch as `tuned` runs it today (the plain split grid for a uniform batch)
  static   the scheduled kernel forced on, wb_plan's static plan, the item slots sched_shape gives (4-8 waves)
  dealt    the same grid with the dealt plan (SCHED_DEAL_MIN=DEAL_MIN): one wave of slots claims, the rest leave
  dealt1   the dealt plan on a grid of one wave of item slots (no slots that leave at once)
  claimA   as claim1, each claim one item ahead (issued before the item's body) and the counters zeroed by the reduce
  dealtA   the dealt plan so (one wave of slots, claims one ahead)
  claim1   wb_plan's static items on one wave of item slots that claim the rest (SCHED_DEAL_CLAIM=2): no empty slots
  hw       the dealt plan's items, a slot each (SCHED_DEAL_CLAIM=0): the hardware deals them in the plan's order
  a form may name its own small items and tail: dealt:512:100, hw:256:100 (tokens, per mille)

  python3 scripts/probe_deal.py OUT.json "knobs;knobs" b8x32768 b64x4096 ...
  env: BOUND (graph-bound launches there; plain then = the form the rules pick), DEAL_MIN (2048), DEAL_SMALL (256), DEAL_TAIL (200), FORMS (plain,static,dealt,dealt1), LAUNCHES (30)
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys


def main() -> None:
    import torch

    import workbench.kernel.variant as vm
    from probe_common import load_knobs
    from workbench.config.profiles import heads_from_text
    from workbench.measure.check import check_variant
    from workbench.measure.gpuinfo import gpu_info
    from workbench.measure.timing import time_variant
    from workbench.measure.workload import WorkloadSpec, build_rotation

    out_path, knobs = sys.argv[1:3]
    labels = sys.argv[3:]
    forms = os.environ.get("FORMS", "plain,static,dealt,dealt1").split(",")
    launches = int(os.environ.get("LAUNCHES", "30"))
    bound = int(os.environ.get("BOUND", "0"))          # 0: each batch's own longest; else graph-bound there
    deal = (int(os.environ.get("DEAL_MIN", "2048")), int(os.environ.get("DEAL_SMALL", "256")),
            int(os.environ.get("DEAL_TAIL", "200")))
    heads = heads_from_text(os.environ.get("PROBE_MODEL", "llama-3.1-8b"))
    info = gpu_info(0)
    ks = load_knobs(knobs, heads.head_size, info.arch, form=lambda v: v.scheduling())
    orig_schedules, orig_shape = vm.Variant.schedules, vm.Variant.sched_shape

    def set_form(form: str, k) -> None:
        k._sched.clear()
        name, *par = form.split(":")
        vm.Variant.schedules = orig_schedules if form == "plain" else (lambda self, *a, **kw: True)
        vm.Variant.sched_shape = orig_shape
        small = int(par[0]) if par else deal[1]
        if name == "hw":
            def every_item(self, grid_x, num_seqs, launch_len, occ):
                sh = orig_shape(self, grid_x, num_seqs, launch_len, occ)
                # exactly the plan's items for a uniform batch (wb_plan's dealt arithmetic): no empty slots
                tail, length = vm.SCHED_DEAL_TAIL, launch_len
                r = sh.slots // max(grid_x, 1)
                share = min(-(-num_seqs * length // r), length) * (1000 - tail) // 1000
                big = max(small, min(share, sh.part_tokens) // small * small)
                f = length * (1000 - tail) // 1000 // big
                cap = num_seqs * (f + -(-(length - f * big) // small))
                return dataclasses.replace(sh, cap=cap, key=vm.sched_key(num_seqs, launch_len, sh.part_tokens, cap,
                                                                          sh.slots))
            vm.Variant.sched_shape = every_item
        if name in ("dealt1", "claim1", "claimA", "dealtA"):
            def one_wave(self, grid_x, num_seqs, launch_len, occ):
                sh = orig_shape(self, grid_x, num_seqs, launch_len, occ)
                cap = max(1, sh.slots // max(grid_x, 1))
                return dataclasses.replace(sh, cap=cap, key=vm.sched_key(num_seqs, launch_len, sh.part_tokens, cap,
                                                                          sh.slots))
            vm.Variant.sched_shape = one_wave
        on = name in ("dealt", "dealt1", "hw", "dealtA")
        vm.SCHED_DEAL_MIN = deal[0] if on else 0
        vm.SCHED_DEAL_SMALL = small
        vm.SCHED_DEAL_TAIL = int(par[1]) if len(par) > 1 else deal[2]
        vm.SCHED_DEAL_CLAIM = {"hw": 0, "claim1": 2, "claimA": 3, "dealtA": 3}.get(name, 1)

    rows = []
    print(f"{'shape':10} {'variant':50} " + " ".join(f"{f:>12}" for f in forms) + "   (us; dealt: plan)", flush=True)
    for label in labels:
        n, ctx = (int(x) for x in label[1:].split("x"))
        spec = WorkloadSpec.uniform(n, ctx, num_heads=heads.num_heads, num_kv_heads=heads.num_kv_heads,
                                    head_size=heads.head_size)
        rot = build_rotation(spec, "cuda", 4 * info.l2_bytes)
        for k in ks:
            row = {"shape": label, "variant": k.variant.name, "deal": deal}
            for form in forms:
                set_form(form, k)
                per = form != "plain" or bool(bound)
                if form != "plain":
                    c = check_variant(k, spec, per_seq_split=True, launch_len=bound or None)
                    row[f"{form}_check"] = c.to_dict()
                    if not c.ok:
                        print(f"  CHECK FAILED {label} {form}: {c.status} {c.detail} err {c.rel_error}", flush=True)
                        row[form] = None
                        continue
                t = time_variant(k, spec, info, launches=launches, rotation=rot, in_graph=True, per_seq_split=per,
                                 launch_len=bound or None)
                row[form] = t.median_us
                row[f"{form}_p10_p90"] = (t.p10_us, t.p90_us)
                if form.split(":")[0] in ("dealt", "dealt1", "hw", "claim1", "claimA", "dealtA"):
                    ws = k.step_workspace(rot[0].seq_lens, spec.num_heads, spec.num_kv_heads, bound or spec.max_seq_len, True)
                    h = ws.sched[:8].tolist()
                    row[f"{form}_plan"] = {"items": h[0], "big": h[1], "small": h[4], "tail": h[5], "slots": h[6]}
            set_form("plain", ks[0])
            rows.append(row)
            plans = "  ".join(f"{f}: {row[f + '_plan']['items']}x{row[f + '_plan']['big']}/{row[f + '_plan']['small']}"
                              for f in forms if f + "_plan" in row)
            print(f"{label:10} {k.variant.name[:50]:50} " + " ".join(
                f"{row[f]:12.2f}" if row.get(f) else f"{'-':>12}" for f in forms) + "   " + plans, flush=True)
        del rot
        torch.cuda.empty_cache()
    json.dump({"gpu": info.to_dict(), "forms": forms, "rows": rows}, open(out_path, "w"), indent=1)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
