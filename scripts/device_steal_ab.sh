#!/usr/bin/env bash
# Device recipe (perf-notes v24): scheduled launches claim items past their slots (decode.cu
# wb_decode_sched, counters reset by wb_reduce_sched). First the GPU tests of the scheduled path, then
# `bench --in-graph` tuned-graph vs FA3, one host: A = the previous kernel (.ab/decode-old.cu, carried)
# with the stock constants; S = this kernel, stock; S1 = this kernel with one wave of item slots for
# few-CTAs batches (SCHED_FEW_WAVES=1). RUNS="model:suite:label ..." Carry .offline, .peers/fa3.tar.xz
# and .ab/decode-old.cu.
set -uo pipefail
SECONDS=0
source scripts/device_env.sh
fa3_only || echo "no FA3 bundle"
export COLUMNS=200
if [ "${SKIP_TEST:-0}" != 1 ]; then
  timeout 200 python3 -m pytest -q -s -p no:cacheprovider tests/test_gpu_correctness.py \
    -k "${K:-claimed or graph_bound_launches or plan_runs or planned_where}" > $OUT/gputests.txt 2>&1
  echo "gputests rc=$? ${SECONDS}s"; grep -E "items|passed|failed|Error|assert" $OUT/gputests.txt | head -12
fi
D=results/h200-2026-11-30-s23/9-band-worst
RUNS=${RUNS:-"70b:fewctas:A 70b:fewctas:S1 70b:fewctas:S 70b:bench:A 70b:bench:S1 qwen:fewctas:A qwen:fewctas:S1 qwen:bench:A qwen:bench:S1 llama:e2e:A llama:e2e:S"}
for run in $RUNS; do
  IFS=: read -r M su L <<< "$run"
  case $M in
    qwen)  model=qwen2.5-7b; tp=1; study=h200-qwen2.5-7b-tp1; db=$D/models-qwen2.5-7b.db.gz ;;
    70b)   model=llama-3.1-70b; tp=8; study=h200-llama-3.1-70b-tp8; db=$D/models-llama-3.1-70b.db.gz ;;
    llama) model=llama-3.1-8b; tp=1; study=h200-train; db=$D/studies-llama-3.1-8b.db.gz ;;
  esac
  W=/tmp/wbs/$M; mkdir -p $W
  [ -f $W/s.db ] || gunzip -c $db > $W/s.db
  [ $SECONDS -gt ${STOP_S:-500} ] && { echo "skipped $run: ${SECONDS}s"; continue; }
  if [ $L = A ]; then kernel_form old; else kernel_form new; fi
  wb=(python3 -m workbench)
  [ $L = S1 ] && wb=(python3 scripts/wb_with.py "SCHED_FEW_WAVES=1")
  t=$M-$su-$L
  timeout ${BENCH_S:-100} "${wb[@]}" bench --model $model --tp $tp --study $study --storage sqlite:///$W/s.db \
    --suite $su --peers tuned-graph,fa3 --graph-len 32864 --in-graph --out $OUT/$t.json > $OUT/$t.txt 2> $W/err
  echo "== $t rc=$? ${SECONDS}s"; grep -E "geomean speedup" $OUT/$t.txt; tail -1 $W/err
  if [ $L != A ] && [ -f $OUT/$M-$su-A.json ]; then
    python3 -m workbench compare $OUT/$M-$su-A.json $OUT/$t.json --peer tuned-graph --vs fa3 2>/dev/null | tail -4
  fi
done
kernel_form new
for f in $OUT/*.json; do gzip -f $f; done
echo "done ${SECONDS}s"
pack_out steal
