#!/usr/bin/env bash
# Device recipe (perf-notes v31): where the end of a >= 1 GB launch goes. probe_chain.py with RAW=1 (each
# CTA's SM, start, first tile and end) on the bench's >= 1 GB llama-3.1-8b shapes for the variant the tables
# pick there, then the same shapes with forced finer partitions (PARTS: more waves, dealt by the hardware as
# SMs free up; none: skip), then (SCHED_TOO=1) the scheduled kernel on the same batches. Carry [".offline"].
# Prints the probe lines and scripts/tail_report.py's reading.
set -uo pipefail
source scripts/device_env.sh
SECONDS=0
K=${K:-"algorithm=onepass,threads=128,heads_per_cta=4,partition=auto,stages=2,mma=true"}
S=${S:-"b8x32768 b16x16384 b64x4096 b256x1024"}
RAW=1 REPLAYS=${REPLAYS:-10} timeout 240 python3 scripts/probe_chain.py $OUT/tail-own.json "$K" $S > $OUT/tail-own.txt 2>&1
echo "own rc=$? ${SECONDS}s"; grep -E "^b" $OUT/tail-own.txt
if [ "${SCHED_TOO:-0}" = 1 ]; then
  SCHED=1 RAW=1 REPLAYS=${REPLAYS:-10} timeout 240 python3 scripts/probe_chain.py $OUT/tail-sched.json "$K" $S > $OUT/tail-sched.txt 2>&1
  echo "sched rc=$? ${SECONDS}s"; grep -E "^b|^    T" $OUT/tail-sched.txt
  grep -E "^    T" $OUT/tail-own.txt
fi
for part in ${PARTS:-1024 512}; do
  [ "$part" = none ] && continue
  PART=$part REPLAYS=${REPLAYS:-10} timeout 150 python3 scripts/probe_chain.py $OUT/tail-p$part.json "$K" ${PS:-b8x32768 b64x4096} \
    > $OUT/tail-p$part.txt 2>&1
  echo "part $part rc=$? ${SECONDS}s"; grep -E "^b" $OUT/tail-p$part.txt
done
gzip -f $OUT/*.json
python3 scripts/tail_report.py $OUT/tail-own.json.gz $(ls $OUT/tail-sched.json.gz 2>/dev/null)
