"""onepass (online softmax, K+V of a block together) vs twopass: correctness over shapes and
layouts, then cold-L2 latency on the bench shapes for the same layouts."""
import itertools
import json
import sys

import torch

from workbench.build import build_many
from workbench.ceiling import read_ceiling
from workbench.check import check_variant
from workbench.gpuinfo import gpu_info
from workbench.launch import load
from workbench.timing import time_variant
from workbench.variant import Variant
from workbench.workload import WorkloadSpec, build_rotation

info = gpu_info(0)
ceil = read_ceiling(0)
out = {"gpu": info.to_dict(), "ceiling": ceil.gbps, "checks": [], "timings": []}
# correctness: head sizes, block sizes, dtypes, layouts, ragged lengths incl. long unsplit ones
cvs = []
for hd, blk, dt in ((128, 16, "bf16"), (128, 32, "fp16"), (64, 16, "bf16"), (256, 16, "bf16"), (96, 16, "fp16")):
    for t, q, p, d in ((128, 1, "vllm", 0), (128, 4, 1024, 1), (256, 2, 256, 2), (64, 4, "none", 0), (512, 4, 512, 4)):
        cvs.append(Variant(head_size=hd, block_size=blk, dtype=dt, algorithm="onepass", threads=t, heads_per_cta=q,
                           partition=p, prefetch_distance=d, prefetch_target="kv" if d else "none"))
cvs = [v for v in cvs if v.is_valid(info.arch)]
bad = 0
for b in build_many(cvs, info.arch):
    assert b.ok, b.error
    k = load(b, 0)
    v = b.variant
    for lens, h, kh in (((1000, 17, 4096, 333, 9000), 32, 8), ((1,), 32, 8), ((40000,), 16, 4), ((7, 129, 2048), 28, 4)):
        if v.heads_per_cta > h // kh:
            continue
        spec = WorkloadSpec(seq_lens=lens, num_heads=h, num_kv_heads=kh, head_size=v.head_size, block_size=v.block_size,
                            dtype=v.dtype, seed=sum(lens) % 97)
        c = check_variant(k, spec, "cuda")
        out["checks"].append({"variant": v.name, "workload": spec.label, "status": c.status, "err": c.rel_error})
        if not c.ok:
            bad += 1
            print("FAIL", v.name, spec.label, c.status, c.detail, flush=True)
    k.close()
print(f"onepass checks: {len(out['checks'])}, failed {bad}", flush=True)
# latency: same layouts, twopass vs onepass, bench shapes
layouts = [dict(threads=128, heads_per_cta=4, partition=1024, prefetch_distance=1, prefetch_target="kv"),
           dict(threads=128, heads_per_cta=4, partition="vllm", prefetch_distance=1, prefetch_target="kv"),
           dict(threads=128, heads_per_cta=4, partition=256), dict(threads=256, heads_per_cta=4, partition=512),
           dict(threads=128, heads_per_cta=2, partition="vllm"), dict(threads=64, heads_per_cta=4, partition=256),
           dict(threads=128, heads_per_cta=4, partition="none"), dict(threads=256, heads_per_cta=2, partition=256)]
vs = [Variant(head_size=128, block_size=16, dtype="bf16", algorithm=a, **l) for l in layouts for a in ("twopass", "onepass")]
builds = build_many(vs, info.arch)
kernels = [load(b, 0) for b in builds]
print(f"{'shape':>10} | " + " | ".join(f"L{i} 2p/1p" for i in range(len(layouts))) + " | best 2p | best 1p | gain")
for bsz, ctx in itertools.product((1, 8, 16, 64, 256), (1024, 4096, 16384, 32768)):
    spec = WorkloadSpec.uniform(bsz, ctx)
    if spec.kv_bytes > 9e9:
        continue
    rot = build_rotation(spec, "cuda", 4 * info.l2_bytes)
    row = []
    for i, k in enumerate(kernels):
        try:
            row.append(time_variant(k, spec, info, launches=30, rotation=rot, ceiling_gbps=ceil.gbps,
                                    warmup_s=0.05 if i == 0 else 0.005).median_us)
        except Exception:
            row.append(float("inf"))
    del rot
    torch.cuda.empty_cache()
    two, one = min(row[0::2]), min(row[1::2])
    floor = spec.kv_bytes / (ceil.gbps * 1e3)
    out["timings"].append({"shape": spec.label, "us": row, "best_twopass": two, "best_onepass": one,
                           "eff_twopass": floor / two, "eff_onepass": floor / one})
    print(f"{bsz:>4}x{ctx:<6}| " + " | ".join(f"{row[2*i]:6.1f}/{row[2*i+1]:6.1f}" for i in range(len(layouts)))
          + f" | {two:7.1f} ({floor/two:.2f}) | {one:7.1f} ({floor/one:.2f}) | {two/one:.2f}", flush=True)
for k in kernels:
    k.close()
json.dump(out, open(sys.argv[1], "w"), indent=1)
