"""`baseline` / `paper` and vLLM-style variants (k_load 8, 16-bit operands, one block in flight)
vs vLLM's own kernel on the FACTS.md shapes; correctness of each on a ragged batch."""
import json
import sys

import torch

from workbench.build import build_many
from workbench.ceiling import read_ceiling
from workbench.check import check_variant
from workbench.gpuinfo import gpu_info
from workbench.launch import load
from workbench.timing import time_variant
from workbench.variant import baseline, paper
from workbench.workload import WorkloadSpec, build_rotation

info = gpu_info(0)
ceil = read_ceiling(0)
b, p = baseline(), paper()
vs = {"baseline": b, "paper": p,
      "b+k8+vmath": b.with_(k_load=8, vllm_math=True), "b+k8+vmath+serial": b.with_(k_load=8, vllm_math=True, serial=True),
      "p+k8+vmath": p.with_(k_load=8, vllm_math=True), "p+k8+vmath+serial": p.with_(k_load=8, vllm_math=True, serial=True)}
builds = dict(zip(vs, build_many(list(vs.values()), info.arch)))
ks = {n: load(bb, 0) for n, bb in builds.items()}
out = {"gpu": info.to_dict(), "rows": [], "checks": {}}
for n, k in ks.items():
    for kh, h in ((8, 32), (32, 32), (1, 8)):
        c = check_variant(k, WorkloadSpec(seq_lens=(1000, 17, 4096, 333, 9000), num_heads=h, num_kv_heads=kh, seed=3), "cuda")
        out["checks"][f"{n} {h}/{kh}"] = [c.status, c.rel_error]
        if not c.ok:
            print("FAIL", n, h, kh, c.detail)
print("checks:", {k: f"{v[0]} {v[1]:.1e}" for k, v in out["checks"].items()})
vllm = {(1, 4096, 32, 8): (43, 25), (8, 4096, 32, 8): (149, 102), (64, 4096, 32, 8): (1089, 799), (1, 32768, 32, 8): (171, 108),
        (16, 16384, 32, 8): (897, 715), (256, 1024, 32, 8): (922, 733), (8, 4096, 64, 8): (245, 181), (8, 4096, 32, 32): (224, 194),
        (64, 4096, 8, 1): (245, 185)}
print(f"{'shape':>16} | vLLM b/p | " + " | ".join(f"{n:>17}" for n in vs))
for (bs, ctx, h, kh), (vb, vp) in vllm.items():
    spec = WorkloadSpec.uniform(bs, ctx, num_heads=h, num_kv_heads=kh)
    rot = build_rotation(spec, "cuda", 4 * info.l2_bytes)
    t = {n: time_variant(k, spec, info, launches=50, rotation=rot).median_us for n, k in ks.items()}
    del rot
    torch.cuda.empty_cache()
    ratio = {n: t[n] / (vb if n.startswith("b") else vp) for n in t}
    out["rows"].append({"shape": spec.label, "vllm": [vb, vp], "us": t, "ratio_to_vllm": ratio})
    print(f"{bs:>4}x{ctx:<6}{h:>3}/{kh:<2} | {vb:>4}/{vp:<4}| " + " | ".join(f"{t[n]:7.1f} ({ratio[n]:.2f})" for n in vs), flush=True)
json.dump(out, open(sys.argv[1], "w"), indent=1)
