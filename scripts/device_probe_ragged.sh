#!/usr/bin/env bash
# Device recipe: scripts/probe_ragged.py on the suites where few CTAs share the GPU (carry .offline;
# FA3 beside when .peers/fa3.tar.xz came too or is unpacked on the warm host).
set -uo pipefail
source scripts/device_env.sh
fa3_only || echo "no FA3 bundle: its column is nan"
SECONDS=0
R="r32x200-32768 r8x200-16384 r64x100-8192"
OP="algorithm=onepass,threads=128,partition=auto,stages=2,mma=1"
TP="algorithm=twopass,threads=256,partition=auto,stages=2,mma=1"
run() { local tag=$1 model=$2 tp=$3 knobs=$4; shift 4
  MODEL=$model TP=$tp SCHED_WAVES=${SCHED_WAVES:-} timeout ${EACH_S:-200} python3 scripts/probe_ragged.py $OUT/ragged-$tag${SCHED_WAVES:+-w$SCHED_WAVES}.json "$knobs" "$@" \
    > $OUT/ragged-$tag${SCHED_WAVES:+-w$SCHED_WAVES}.txt 2>&1
  echo "== $tag rc=$? ${SECONDS}s"; cat $OUT/ragged-$tag${SCHED_WAVES:+-w$SCHED_WAVES}.txt | grep -v Warning | tail -40
}
for W in ${WHAT:-70b}; do
case $W in
70b) run 70b llama-3.1-70b 8 "$OP,heads_per_cta=8;$OP,heads_per_cta=4" \
       $R 1x4096 8x4096 16x16384 32x4096 64x4096 64x1024 256x1024 ;;
qwen) run qwen qwen2.5-7b 1 "$OP,heads_per_cta=8;$TP,heads_per_cta=7" $R 8x4096 32x4096 64x1024 ;;
8b) run 8b llama-3.1-8b 1 "$TP,heads_per_cta=4;$OP,heads_per_cta=4" $R 1x4096 8x4096 32x4096 64x1024 ;;
u) run u-70b llama-3.1-70b 8 "$OP,heads_per_cta=4" $R 8x1024 16x4096 64x1024
   run u-8b llama-3.1-8b 1 "$TP,heads_per_cta=4" $R 8x1024 8x4096 64x1024
   run u-qwen qwen2.5-7b 1 "$OP,heads_per_cta=8" $R 8x4096 64x1024 ;;
esac
done
echo "done ${SECONDS}s"
