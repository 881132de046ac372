#!/usr/bin/env bash
# Device recipe: why a uniform batch in a graph-bound (scheduled, split) launch loses to the
# whole-sequence kernel (llama-3.1-8b b32 x 4k on the H200: onepass t128 q4 auto-sched 138-142 us,
# the same variant whole 129-131, FA3 133-135): ncu of both beside FA3. Carry .offline (with the
# nvtx wheel) and .peers/fa3.tar.xz.
set -uo pipefail
source scripts/device_env.sh
fa3_only || echo "no FA3 bundle"
SECONDS=0
N="algorithm=onepass,threads=128,stages=2,mma=1,heads_per_cta=4"
ncu_probe whole python3 scripts/probe_ncu.py "$N,partition=none" ${SHAPES:-b32x4096}
GRAPH_LEN=32864 ncu_probe sched python3 scripts/probe_ncu.py "$N,partition=auto" ${SHAPES:-b32x4096}
GRAPH_LEN=4096 ncu_probe bound4k python3 scripts/probe_ncu.py "$N,partition=auto" ${SHAPES:-b32x4096}
python3 scripts/ncu_details.py $OUT/ncu-whole.csv $OUT/ncu-sched.csv $OUT/ncu-bound4k.csv
echo "done ${SECONDS}s"
