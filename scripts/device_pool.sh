#!/usr/bin/env bash
# Is the gap to vLLM's numbers (FACTS.md: 12 GB pool, random block tables) a TLB effect of pool
# size? baseline / paper at the FACTS shapes, block tables drawn from a 12 GB pool.
set -uo pipefail
source scripts/device_env.sh
run() { python3 -m workbench measure --variants baseline,paper --batch $1 --context $2 --heads $3 --kv-heads $4 --pool-gb 12 --out /tmp/p-$1-$2-$3-$4 > /dev/null 2>$OUT/e.txt || tail -3 $OUT/e.txt; }
run 1 4096 32 8; run 8 4096 32 8; run 64 4096 32 8; run 1 32768 32 8; run 16 16384 32 8; run 256 1024 32 8
run 8 4096 64 8; run 8 4096 32 32; run 64 4096 8 1
python3 - <<'PY' | tee $OUT/pool12.txt
import json
vllm = {(1,4096,32,8):(43,25),(8,4096,32,8):(149,102),(64,4096,32,8):(1089,799),(1,32768,32,8):(171,108),
        (16,16384,32,8):(897,715),(256,1024,32,8):(922,733),(8,4096,64,8):(245,181),(8,4096,32,32):(224,194),(64,4096,8,1):(245,185)}
print("shape | vLLM base/paper | ours (12 GB pool) base/paper | base÷vLLM | paper÷vLLM | pool blocks")
for (b,c,h,kh),(vb,vp) in vllm.items():
    try: d = json.load(open(f"/tmp/p-{b}-{c}-{h}-{kh}/results.json"))
    except Exception as e: print(b,c,h,kh,"missing",e); continue
    mb, mp = d["results"][0]["median_us"], d["results"][1]["median_us"]
    print(f"{b}x{c} {h}/{kh} | {vb} / {vp} | {mb:.1f} / {mp:.1f} | {mb/vb:.2f} | {mp/vp:.2f} | {d['results'][0]['workload']['num_blocks']}")
PY
