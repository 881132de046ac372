"""Issue 6, v1: does staging K/V tiles through a cp.async ring (the `stages` knob) beat register
loads? Correctness first (ragged, split, GQA 1-8, heads 64-256, fp16/bf16, block 16/32), then per
shape the best of a layout grid with stages 0 vs 2/3/4, cold L2, 30 launches each.
usage: python scripts/stages_probe.py OUT_DIR"""
import itertools, json, sys, time
import torch
from workbench.build import build_many
from workbench.ceiling import read_ceiling
from workbench.check import check_variant
from workbench.gpuinfo import gpu_info
from workbench.launch import load
from workbench.timing import time_variant
from workbench.variant import Variant
from workbench.workload import WorkloadSpec, build_rotation

out = sys.argv[1]
info = gpu_info(0)
ceil = read_ceiling(0).gbps
# ---- correctness
checks = []
cv = [Variant(threads=t, heads_per_cta=q, partition=p, stages=s, head_size=h, block_size=b, dtype=d)
      for (t, q, p, s, h, b, d) in ((128, 4, -1, 3, 128, 16, "bf16"), (64, 2, 256, 2, 128, 16, "bf16"),
                                    (256, 1, 1024, 4, 128, 16, "fp16"), (128, 8, 512, 2, 128, 16, "bf16"),
                                    (128, 2, 0, 3, 64, 32, "bf16"), (128, 1, -1, 2, 256, 16, "bf16"),
                                    (512, 4, 256, 2, 96, 16, "fp16"), (64, 4, 1024, 3, 128, 32, "bf16"))]
shapes = [dict(seq_lens=(1, 17, 300, 1000, 4097)), dict(seq_lens=(9000, 33)), dict(seq_lens=(20000,))]
for b in build_many(cv, info.arch):
    v = b.variant
    if not b.ok:
        checks.append((v.name, "build", b.error[-300:])); continue
    k = load(b, 0)
    for g in (1, 4, 8):
        if v.heads_per_cta > g: continue
        for sh in shapes:
            spec = WorkloadSpec(num_heads=8 * g if g < 8 else 32, num_kv_heads=8 if g < 8 else 4, head_size=v.head_size,
                                block_size=v.block_size, dtype=v.dtype, **sh)
            r = check_variant(k, spec)
            checks.append((v.name, spec.label, r.status, r.rel_error, r.detail))
    k.close()
bad = [c for c in checks if c[2] != "pass"]
print(f"correctness: {len(checks) - len(bad)}/{len(checks)} pass", *bad[:10], sep="\n")
# ---- timing grid
grid = [Variant(threads=t, heads_per_cta=q, partition=p, stages=s)
        for t, q, p, s in itertools.product((64, 128, 256), (1, 2, 4), (-1, 256, 1024), (0, 2, 3, 4))]
built = [b for b in build_many(grid, info.arch) if b.ok]
print(f"{len(built)} of {len(grid)} grid variants built")
rows, res = [], {}
for B, L in ((1, 4096), (1, 32768), (8, 1024), (8, 4096), (16, 4096), (8, 16384), (16, 16384), (64, 4096), (256, 1024)):
    spec = WorkloadSpec.uniform(B, L, num_heads=32, num_kv_heads=8)
    rot = build_rotation(spec, "cuda", 4 * info.l2_bytes)
    t0 = time.time()
    best = {}
    for b in built:
        v = b.variant
        k = load(b, 0)
        try:
            us = time_variant(k, spec, info, launches=30, rotation=rot, warmup_s=0.01).median_us
        except Exception as e:
            us = float("inf")
        k.close()
        res.setdefault(spec.label, {})[v.name] = us
        key = "s0" if v.stages == 0 else "staged"
        if key not in best or us < best[key][0]:
            best[key] = (us, v.name)
    floor = spec.kv_bytes / (ceil * 1e9) * 1e6
    s0, st = best["s0"], best["staged"]
    rows.append(f"{B:>4}x{L:<6} {spec.kv_bytes/1e6:7.0f} MB | s0 {s0[0]:8.1f} ({floor/s0[0]:.2f}) {s0[1]:44} | staged {st[0]:8.1f} ({floor/st[0]:.2f}) {st[1]:48} | x{s0[0]/st[0]:.3f}  [{time.time()-t0:.0f}s]")
    print(rows[-1], flush=True)
    del rot
    torch.cuda.empty_cache()
json.dump({"gpu": info.to_dict(), "ceiling_gbps": ceil, "checks": checks, "times": res, "rows": rows},
          open(f"{out}/stages-probe.json", "w"), indent=1)
print("\n".join(rows))
