#!/usr/bin/env bash
# Device recipe (session 21): follow-up of device_sched_whole.sh. On whole items the scheduled kernel
# ran b32 x 4k in 137.1 us at 1 wave of item slots (144.8 at 8) where the whole-sequence kernel
# runs 130.0; ncu: the same busiest-SM active cycles (224k vs 222k) but 245k elapsed vs 229k.
# Do the empty item slots explain it, and how does the default plan fare with fewer slots (its items
# walked by fewer CTAs)? Two calls (results/h200-2026-11-30-sched-slots/2-waves, 3-within-wave):
#   SET=slots   0 waves (exactly one slot per sequence: no empty CTAs), 1, 2, 4; ncu at 0 and 1;
#   SET=within  (after SET=slots ran it in 131.3 with no empty slot) is it the empty slots or a grid
#               past one wave of CTAs (400 > 396)? 0.98 and 0.8 waves: empty slots within one wave.
set -uo pipefail
SECONDS=0
source scripts/device_env.sh
fa3_only || echo "no FA3 bundle"
K="algorithm=onepass,threads=128,partition=auto,heads_per_cta=4,stages=2,mma=1;algorithm=twopass,threads=256,partition=auto,heads_per_cta=4,stages=2,mma=1;algorithm=onepass,threads=128,partition=none,heads_per_cta=4,stages=2,mma=1"
S=${SHAPES:-32x4096 8x16384 64x1024 32x1024 64x4096 r32x200-32768}
N="algorithm=onepass,threads=128,stages=2,mma=1,heads_per_cta=4,partition=auto"
P="python3 scripts/probe_ncu.py"
PROBE_TAIL=19
if [ "${SET:-slots}" = slots ]; then
  ragged_probe waves-w0-items1 PLAN_MAX_PARTS=1 SCHED_WAVES=0
  for w in 0 1 2 4; do ragged_probe waves-w$w SCHED_WAVES=$w; done
  NCU_S=150 GRAPH_LEN=32864 FORCE_SCHED=1 PLAN_MAX_PARTS=1 SCHED_WAVES=0 ncu_probe w0-items1 $P "$N" b32x4096
  NCU_S=150 GRAPH_LEN=32864 FORCE_SCHED=1 SCHED_WAVES=1 ncu_probe w1 $P "$N" b32x4096
else
  for t in 098:0.98 080:0.8 150:1.5; do ragged_probe waves-w${t%%:*}-items1 PLAN_MAX_PARTS=1 SCHED_WAVES=${t#*:}; done
  ragged_probe waves-w098 SCHED_WAVES=0.98
  NCU_S=150 GRAPH_LEN=32864 FORCE_SCHED=1 PLAN_MAX_PARTS=1 SCHED_WAVES=0.98 ncu_probe w098-items1 $P "$N" b32x4096
fi
echo "done ${SECONDS}s"
pack_out sched-waves
