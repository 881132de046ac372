#!/usr/bin/env bash
# Device recipe (session 21): follow-up of device_sched_whole.sh. On whole items the scheduled kernel
# ran b32 x 4k in 137.1 us at 1 wave of item slots (144.8 at 8) where the whole-sequence kernel
# runs 130.0; ncu: the same busiest-SM active cycles (224k vs 222k) but 245k elapsed vs 229k.
# Second call: no empty slots (SCHED_WAVES=0) ran it in 131.3. Is it the empty slots or a grid past one
# wave of CTAs (400 > 396)? 0.98 and 0.8 waves: empty slots within one wave.
# Does the slot count explain it (0 waves: exactly one slot per sequence, no empty CTAs), and how
# does the default plan fare with fewer slots (its items walked by fewer CTAs)?
set -uo pipefail
SECONDS=0
source scripts/device_env.sh
fa3_only || echo "no FA3 bundle"
K="algorithm=onepass,threads=128,partition=auto,heads_per_cta=4,stages=2,mma=1;algorithm=twopass,threads=256,partition=auto,heads_per_cta=4,stages=2,mma=1;algorithm=onepass,threads=128,partition=none,heads_per_cta=4,stages=2,mma=1"
S=${SHAPES:-32x4096 8x16384 64x1024 32x1024 64x4096 r32x200-32768}
run() { local tag=$1; shift
  env "$@" timeout 150 python3 scripts/probe_ragged.py $OUT/waves-$tag.json "$K" $S > $OUT/waves-$tag.txt 2>&1
  echo "== $tag rc=$? ${SECONDS}s"; grep -v Warning $OUT/waves-$tag.txt | tail -19
}
run w098-items1 PLAN_MAX_PARTS=1 SCHED_WAVES=0.98
run w080-items1 PLAN_MAX_PARTS=1 SCHED_WAVES=0.8
run w150-items1 PLAN_MAX_PARTS=1 SCHED_WAVES=1.5
run w098 SCHED_WAVES=0.98
N="algorithm=onepass,threads=128,stages=2,mma=1,heads_per_cta=4"
P="python3 scripts/probe_ncu.py"
NCU_S=150 GRAPH_LEN=32864 FORCE_SCHED=1 PLAN_MAX_PARTS=1 SCHED_WAVES=0.98 ncu_probe w098-items1 $P "$N,partition=auto" b32x4096
echo "done ${SECONDS}s"
pack_out sched-waves
