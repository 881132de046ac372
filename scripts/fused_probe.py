"""Fused split-K reduce: correctness (ragged batches, repeated launches on one workspace) and
latency vs the two-kernel reduce, on the shapes where the reduce matters (cold L2)."""
import json
import sys

import torch

from workbench.build import build_many
from workbench.ceiling import read_ceiling
from workbench.gpuinfo import gpu_info
from workbench.launch import load
from workbench.reference import reference_decode, relative_error
from workbench.timing import time_variant
from workbench.variant import Variant
from workbench.workload import WorkloadSpec, build_workload

info = gpu_info(0)
ceil = read_ceiling(0)
base = dict(head_size=128, block_size=16, dtype="bf16")
layouts = [dict(threads=64, heads_per_cta=2, partition="vllm"), dict(threads=128, heads_per_cta=4, partition=1024, prefetch_distance=1, prefetch_target="kv"),
           dict(threads=256, heads_per_cta=2, partition=256), dict(threads=128, heads_per_cta=4, partition=256),
           dict(threads=128, heads_per_cta=4, partition=512), dict(threads=256, heads_per_cta=4, partition=256),
           dict(threads=128, heads_per_cta=1, partition="vllm")]
vs = []
for l in layouts:
    vs += [Variant(**base, **l), Variant(**base, **l, reduce="fused")]
builds = build_many(vs, info.arch)
assert all(b.ok for b in builds), [b.error for b in builds if not b.ok]
out = {"gpu": info.to_dict(), "ceiling": ceil.gbps, "checks": [], "timings": []}
# correctness: ragged lengths, 3 launches on one shared workspace (counters must reset)
for b in builds[1::2]:
    k = load(b, 0)
    for lens in ((1000, 17, 4096, 333, 9000), (32768,), (5,) * 7, (2049, 4097, 1, 16384)):
        spec = WorkloadSpec(seq_lens=lens, seed=len(lens))
        w = build_workload(spec, "cuda")
        ref = reference_decode(w.query, w.key_cache, w.value_cache, w.block_tables, w.seq_lens, w.scale, 8)
        ws = k.workspace(spec.num_seqs, spec.num_heads, spec.max_seq_len)
        errs = []
        for _ in range(3):
            o = w.new_output()
            k(o, w.query, w.key_cache, w.value_cache, 8, w.scale, w.block_tables, w.seq_lens, spec.max_seq_len, workspace=ws)
            torch.cuda.synchronize()
            errs.append(relative_error(o, ref) if not torch.isnan(o).any() else float("nan"))
        out["checks"].append({"variant": b.variant.name, "lens": lens, "errs": errs})
        ok = all(e < 1e-2 for e in errs)
        print(("ok  " if ok else "FAIL"), b.variant.name, lens, ["%.2e" % e for e in errs], flush=True)
    k.close()
print(f"{'shape':>10} {'variant':>44} {'kernel-reduce µs':>16} {'fused µs':>9} {'speedup':>7} {'eff fused':>9}")
for bsz, ctx in ((1, 4096), (8, 4096), (1, 32768), (8, 16384), (16, 16384), (8, 32768), (64, 4096), (1, 16384)):
    spec = WorkloadSpec.uniform(bsz, ctx)
    for i in range(0, len(builds), 2):
        ts = []
        for b in builds[i:i + 2]:
            k = load(b, 0)
            try:
                ts.append(time_variant(k, spec, info, launches=50, ceiling_gbps=ceil.gbps))
            except Exception as e:
                ts.append(None)
            k.close()
        if None in ts:
            continue
        out["timings"].append({"shape": spec.label, "variant": builds[i].variant.name, "kernel_us": ts[0].median_us,
                               "fused_us": ts[1].median_us, "eff_fused": ts[1].efficiency, "eff_kernel": ts[0].efficiency})
        print(f"{bsz:>4}x{ctx:<6} {builds[i].variant.name:>44} {ts[0].median_us:16.1f} {ts[1].median_us:9.1f} "
              f"{ts[0].median_us / ts[1].median_us:7.2f} {ts[1].efficiency:9.2f}", flush=True)
    torch.cuda.empty_cache()
json.dump(out, open(sys.argv[1], "w"), indent=1)
