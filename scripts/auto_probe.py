"""Does `partition: auto` (the wave model) beat the fixed partition the tuner picked, between
bucket centres? Times t128 q4 s3 with partition auto / 1024 / 512 on the shapes the model says it
wins, cold L2, median of 3 x 50 launches each, and prints a table. GPU host; no arguments.
(docs/perf-notes.md v3.1 quotes its output.)"""
import json
import os
import statistics

from workbench.kernel.build import build_many
from workbench.kernel.launch import load
from workbench.kernel.variant import Variant
from workbench.measure.gpuinfo import gpu_info
from workbench.measure.timing import time_variant
from workbench.measure.workload import WorkloadSpec, build_rotation

info = gpu_info(0)
kw = dict(head_size=128, block_size=16, dtype="bf16", threads=128, heads_per_cta=4, stages=3)
vs = [Variant(**kw, partition=p) for p in ("auto", 1024, 512)]
ks = {b.variant.partition: load(b) for b in build_many(vs, "sm_90a")}
rows = []
for B, L in [(16, 4096), (64, 1024), (8, 16384), (1, 32768), (32, 8192), (4, 4096)]:
    spec = WorkloadSpec.uniform(B, L, num_heads=32, num_kv_heads=8, **{k: kw[k] for k in ("head_size", "block_size", "dtype")})
    rot = build_rotation(spec, "cuda", 4 * info.l2_bytes)
    row = {"shape": spec.label}
    for p, k in ks.items():
        row[p] = statistics.median(time_variant(k, spec, info, launches=50, rotation=rot).median_us for _ in range(3))
    auto = ks[-2]
    t = auto.auto_tokens((spec.num_kv_heads) * spec.num_seqs, spec.max_seq_len)
    row["auto_tokens"] = t
    rows.append(row)
    print(f"{row['shape']:12s} auto {row[-2]:8.1f} (tokens {t})  p1024 {row[1024]:8.1f}  p512 {row[512]:8.1f}  auto/p1024 {row[-2]/row[1024]:.3f}", flush=True)
json.dump(rows, open(os.path.join(os.environ.get("OUT", "."), "auto-probe.json"), "w"), indent=1, default=str)
