#!/usr/bin/env bash
# Device recipe: llama-3.1-8b's graph picks (split, scheduled) beside the whole-sequence variants
# they replaced, on the e2e grid's uniform shapes and the suite's ragged ones (scripts/probe_ragged.py;
# carry .offline and .peers/fa3.tar.xz). Question: what does a short uniform batch lose in a graph
# bounded at 32k to the split kernel + reduce, and does writing one-partition sequences directly fix it.
set -uo pipefail
source scripts/device_env.sh
fa3_only || echo "no FA3 bundle: its column is nan"
SECONDS=0
C="stages=2,mma=1,heads_per_cta=4"
K="algorithm=twopass,threads=256,partition=auto,$C;algorithm=onepass,threads=128,partition=auto,$C"
K="$K;algorithm=onepass,threads=256,partition=none,$C;algorithm=onepass,threads=128,partition=none,$C"
S=${SHAPES:-"8x1024 8x4096 8x16384 32x1024 32x4096 32x16384 64x1024 r32x200-32768 r8x200-16384"}
for W in ${WAVES:-8}; do
  SCHED_WAVES=$W timeout ${EACH_S:-300} python3 scripts/probe_ragged.py $OUT/onepart-w$W.json "$K" $S \
    > $OUT/onepart-w$W.txt 2>&1
  echo "== waves $W rc=$? ${SECONDS}s"; grep -v Warning $OUT/onepart-w$W.txt | tail -45
done
echo "done ${SECONDS}s"
