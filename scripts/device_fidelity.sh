#!/usr/bin/env bash
# Issue 6 prerequisite: how far are `baseline` / `paper` from vLLM's own kernel (FACTS.md table),
# and do vLLM's K read (8-byte thread-group loads) / one-block-in-flight loop close the gap?
set -uo pipefail
source scripts/device_env.sh
V="baseline,paper,threads=128;partition=vllm;k_load=8;serial=1,threads=128;partition=vllm;k_load=8;serial=1;prefetch_distance=1;prefetch_target=kv,threads=128;partition=vllm;k_load=8,threads=128;partition=vllm;serial=1"
run() { python3 -m workbench measure --variants "$V" --batch $1 --context $2 --heads $3 --kv-heads $4 --out /tmp/f-$1-$2-$3-$4 > /dev/null 2>$OUT/err-$1-$2-$3-$4.txt || tail -3 $OUT/err-$1-$2-$3-$4.txt; }
run 1 4096 32 8; run 8 4096 32 8; run 64 4096 32 8; run 1 32768 32 8; run 16 16384 32 8; run 256 1024 32 8
run 8 4096 64 8; run 8 4096 32 32; run 64 4096 8 1
python3 - <<'PY' | tee $OUT/fidelity.txt
import glob, json
vllm = {(1,4096,32,8):(43,25),(8,4096,32,8):(149,102),(64,4096,32,8):(1089,799),(1,32768,32,8):(171,108),
        (16,16384,32,8):(897,715),(256,1024,32,8):(922,733),(8,4096,64,8):(245,181),(8,4096,32,32):(224,194),(64,4096,8,1):(245,185)}
print(f"{'shape':>22} | vLLM base/paper | " + " | ".join(["baseline","paper","k8+serial","k8+serial+pf1","k8","serial"]))
for key,(vb,vp) in vllm.items():
    b,c,h,kh = key
    try: d = json.load(open(f"/tmp/f-{b}-{c}-{h}-{kh}/results.json"))
    except Exception as e: print(key, "missing", e); continue
    ms = [r["median_us"] for r in d["results"]]
    print(f"{b:>4}x{c:<6} {h}/{kh:<3}     | {vb:>5} / {vp:<5} | " + " | ".join(f"{m:8.1f}" for m in ms)
          + f" | base/vLLM {ms[0]/vb:.2f} k8s/vLLM {ms[2]/vb:.2f} paper/vLLM {ms[1]/vp:.2f} k8s+pf/vLLM {ms[3]/vp:.2f}")
PY
