#!/usr/bin/env bash
# Device recipe (prepared in session 20, run in session 21: results/h200-2026-11-30-sched-slots/1-whole, perf-notes
# v19): the 537 MB gap, perf-notes v18 Left 1.
# At llama-3.1-8b b32 x 4k the whole-sequence kernel runs 129 us, FA3 132 and the package's captured
# launch 138 (its plan: 3 items of 1408 tokens per sequence). Is it the plan's choice (a), or does the
# scheduled kernel lose on whole items anyway (b: v17's floor probe, 556 vs 491 us at b32 x 16k)?
# One call:
#   1. probe_ragged.py, FA3 beside, on the graph picks of the e2e grid's batch rows and two
#      whole-sequence variants:
#      - the default plan;
#      - the plan held to one item per sequence (PLAN_MAX_PARTS=1), at 8 waves of item slots
#        (the default) and at 1 (SCHED_WAVES=1).
#   2. ncu at b32 x 4k:
#      - the whole kernel against the scheduled one on whole items;
#      - per-SM active cycles and CTAs launched, at 8 and 1 waves of slots.
# Carry .offline (slim, with the nvtx wheel for ncu) and .peers/fa3.tar.xz.
set -uo pipefail
SECONDS=0
source scripts/device_env.sh
fa3_only || echo "no FA3 bundle"
K="algorithm=onepass,threads=128,partition=auto,heads_per_cta=4,stages=2,mma=1;algorithm=twopass,threads=256,partition=auto,heads_per_cta=4,stages=2,mma=1;algorithm=onepass,threads=128,partition=none,heads_per_cta=4,stages=2,mma=1;algorithm=onepass,threads=256,partition=none,heads_per_cta=4,stages=2,mma=1"
S=${SHAPES:-32x4096 8x16384 32x16384 64x1024 32x1024 r32x200-32768}
PROBE_TAIL=26
ragged_probe whole-plan
ragged_probe whole-items1 PLAN_MAX_PARTS=1
ragged_probe whole-items1-w1 PLAN_MAX_PARTS=1 SCHED_WAVES=1
N="algorithm=onepass,threads=128,stages=2,mma=1,heads_per_cta=4"
P="python3 scripts/probe_ncu.py"
NCU_S=150 ncu_probe whole $P "$N,partition=none" b32x4096
NCU_S=150 GRAPH_LEN=32864 FORCE_SCHED=1 PLAN_MAX_PARTS=1 ncu_probe items1 $P "$N,partition=auto" b32x4096
NCU_S=150 GRAPH_LEN=32864 FORCE_SCHED=1 PLAN_MAX_PARTS=1 SCHED_WAVES=1 ncu_probe items1-w1 $P "$N,partition=auto" b32x4096
NCU_S=150 GRAPH_LEN=32864 FORCE_SCHED=1 ncu_probe plan $P "$N,partition=auto" b32x4096
python3 scripts/ncu_details.py $OUT/ncu-whole.csv $OUT/ncu-items1.csv $OUT/ncu-items1-w1.csv $OUT/ncu-plan.csv
echo "done ${SECONDS}s"
pack_out sched-whole
