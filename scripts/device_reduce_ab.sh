#!/usr/bin/env bash
# Device recipe: a change to the reduce kernel (kernels/decode.cu) A/B in one call: scripts/probe_ragged.py
# with the kernel before (.ab/decode-old.cu, carried) and after, on the shapes where a sequence has
# many partitions (b1 long contexts, ragged batches with one long sequence) and a few where it has few.
# Carry .offline (slim), .peers/fa3.tar.xz and .ab.
set -uo pipefail
source scripts/device_env.sh
fa3_only || echo "no FA3 bundle"
SECONDS=0
C="stages=2,mma=1"
for form in old new; do
  kernel_form $form
  MODEL=llama-3.1-8b timeout 200 python3 scripts/probe_ragged.py $OUT/reduce-8b-$form.json \
    "algorithm=twopass,threads=256,partition=auto,heads_per_cta=4,$C;algorithm=onepass,threads=128,partition=auto,heads_per_cta=4,$C" \
    ${S8:-1x16384 1x32768 8x16384 32x4096 r8x200-16384 r32x200-32768} > $OUT/reduce-8b-$form.txt 2>&1
  echo "== 8b $form rc=$? ${SECONDS}s"
  MODEL=qwen2.5-7b timeout 200 python3 scripts/probe_ragged.py $OUT/reduce-qwen-$form.json \
    "algorithm=onepass,threads=128,partition=auto,heads_per_cta=8,$C" \
    ${SQ:-1x32768 8x16384 r8x200-16384 r32x200-32768} > $OUT/reduce-qwen-$form.txt 2>&1
  echo "== qwen $form rc=$? ${SECONDS}s"
done
kernel_form new
for f in $OUT/reduce-*.txt; do echo "== $f"; grep -v Warning $f | tail -14; done
echo "done ${SECONDS}s"
