#!/usr/bin/env bash
# Device recipe (session 21): one item slot per sequence where whole sequences fill half to one wave
# of the scheduled kernel's slots (Variant.SCHED_FIT_FILL), and wb_plan's cost counting the walk
# where items outnumber slots. A/B in one call, FA3 beside, on the llama-3.1-8b graph picks:
#   old: HEAD's kernel (.ab/decode-old.cu, carried), the rule off (SCHED_FIT=2);
#   new: this tree's kernel and rule (one wave of slots for such batches; wb_plan runs an
#        about-uniform batch whole in such a grid).
# Earlier calls (results/h200-2026-11-30-sched-slots): the walk cost alone moved nothing; one slot
# per sequence took b32 x 4k 137.4 -> 131.2 us (FA3 130.8) but a ragged r32 1000-4000 78.3 -> 85.0
# (FA3 80.9); one wave of slots kept the ragged rows and left b32 x 4k split (138.3).
# Then test_gpu_correctness on this tree (the planned graph-bound launches against the reference).
# Carry the slim .offline, .peers/fa3.tar.xz and .ab.
set -uo pipefail
SECONDS=0
source scripts/device_env.sh
fa3_only || echo "no FA3 bundle"
K="algorithm=onepass,threads=128,partition=auto,heads_per_cta=4,stages=2,mma=1;algorithm=twopass,threads=256,partition=auto,heads_per_cta=4,stages=2,mma=1;algorithm=onepass,threads=128,partition=none,heads_per_cta=4,stages=2,mma=1"
S=${SHAPES:-32x4096 32x1024 32x16384 32x32768 40x4096 30x3800+2x4096 26x4096 64x4096 8x16384 r32x200-32768 r32x1000-4000 r32x2000-8000 r40x200-16384 r40x500-2000}
PROBE_TAIL=34
kernel_form old; ragged_probe fit-old SCHED_FIT=2
kernel_form new; ragged_probe fit-new
timeout $((560 - SECONDS)) python3 -m pytest -q -s -p no:cacheprovider tests/test_gpu_correctness.py > $OUT/test_gpu_correctness.txt 2>&1
echo "== test_gpu_correctness rc=$? ${SECONDS}s"; tail -3 $OUT/test_gpu_correctness.txt
echo "done ${SECONDS}s"
pack_out sched-fit
