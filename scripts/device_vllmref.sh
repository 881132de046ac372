#!/usr/bin/env bash
# Historical (session 3): written for the names of then -- baseline/paper = today's simple/simple-pf,
# vllm/vllm-paper = today's baseline/paper. Kept as the record of how results/issue6-*/ were made.
# Issue 6 fidelity, settled against the real thing: vLLM 0.10.2's own kernel (`vllm`, and
# `vllm-paper` = the paper's prefetch patched into it) built from its sdist, measured in our
# harness next to `baseline` / `paper` on the FACTS.md shapes; correctness first; ncu of 8x4k.
set -uo pipefail
source scripts/device_env.sh
python3 - <<'PY' 2>&1 | tee $OUT/vllmref-check.txt
import torch
from workbench.variant import named
from workbench.build import build_variant
from workbench.launch import load
from workbench.check import check_variant
from workbench.workload import WorkloadSpec
shapes = [WorkloadSpec(seq_lens=(1, 17, 300, 1000), num_heads=32, num_kv_heads=8),
          WorkloadSpec(seq_lens=(4097, 9000, 33), num_heads=32, num_kv_heads=8),
          WorkloadSpec(seq_lens=(20000,), num_heads=32, num_kv_heads=8),
          WorkloadSpec(seq_lens=(700, 2048), num_heads=32, num_kv_heads=32),
          WorkloadSpec(seq_lens=(5000, 77), num_heads=8, num_kv_heads=1, dtype="fp16")]
for n in ("vllm", "vllm-paper"):
    for dt in ("bf16", "fp16"):
        b = build_variant(named(n, dtype=dt), "sm_90a")
        print(n, dt, b.status, b.error[-300:], {k: r.registers for k, r in b.resources.items()})
        k = load(b)
        for s in shapes:
            if s.dtype != dt: continue
            r = check_variant(k, s)
            print(f"  {r.status:5} {s.label:40} err {r.rel_error:.2e} {r.detail}")
        k.close()
PY
V="baseline,paper,vllm,vllm-paper"
run() { python3 -m workbench measure --variants "$V" --batch $1 --context $2 --heads $3 --kv-heads $4 --out /tmp/f-$1-$2-$3-$4 > /dev/null 2>$OUT/err-$1-$2-$3-$4.txt || tail -3 $OUT/err-$1-$2-$3-$4.txt; }
run 1 4096 32 8; run 8 4096 32 8; run 64 4096 32 8; run 1 32768 32 8; run 16 16384 32 8; run 256 1024 32 8
run 8 4096 64 8; run 8 4096 32 32; run 64 4096 8 1
python3 -m workbench measure --variants "baseline,vllm" --batch 8 --context 4096 --profile ncu --out /tmp/ncu84 > $OUT/ncu-8x4k.txt 2>&1
python3 -m workbench inspect /tmp/ncu84/results.json --compare baseline --compare vllm > $OUT/ncu-compare.txt 2>&1
mkdir -p $OUT/json; for d in /tmp/f-*; do cp $d/results.json $OUT/json/$(basename $d).json; done
python3 - <<'PY' | tee $OUT/fidelity-vllmref.txt
import glob, json
facts = {(1,4096,32,8):(43,25),(8,4096,32,8):(149,102),(64,4096,32,8):(1089,799),(1,32768,32,8):(171,108),
        (16,16384,32,8):(897,715),(256,1024,32,8):(922,733),(8,4096,64,8):(245,181),(8,4096,32,32):(224,194),(64,4096,8,1):(245,185)}
print(f"{'shape':>19} | FACTS vLLM b/p | {'baseline':>8} {'paper':>8} {'vllm':>8} {'vllm-pf':>8} | base/vllm paper/vllm-pf | vllm/FACTS vllm-pf/FACTS")
for key,(fb,fp) in facts.items():
    b,c,h,kh = key
    try: d = json.load(open(f"/tmp/f-{b}-{c}-{h}-{kh}/results.json"))
    except Exception as e: print(key, "missing", e); continue
    m = {r["label"]: r["median_us"] for r in d["results"]}
    print(f"{b:>4}x{c:<6} {h:>2}/{kh:<2} | {fb:>5} / {fp:<5} | {m['baseline']:8.1f} {m['paper']:8.1f} {m['vllm']:8.1f} {m['vllm-paper']:8.1f} |"
          f" {m['baseline']/m['vllm']:9.2f} {m['paper']/m['vllm-paper']:14.2f} | {m['vllm']/fb:10.2f} {m['vllm-paper']/fp:13.2f}")
PY
cat $OUT/ncu-compare.txt | head -30
