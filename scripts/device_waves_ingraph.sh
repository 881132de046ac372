#!/usr/bin/env bash
# Device recipe (perf-notes v24): the scheduled grid's item slots (empty slot CTAs cost the captured form
# 1.5 us at 70b b8x4k / b16x1k: scripts/probe_forms.py) A/B'd with `bench --in-graph` (tight spread), one
# host, tuned-graph vs FA3. RUNS="model:suite:label:sets ..." (sets: wb_with.py constants joined by ",",
# "-" for none); session 23's band-worst studies. Carry .offline and .peers/fa3.tar.xz.
set -uo pipefail
SECONDS=0
source scripts/device_env.sh
fa3_only || echo "no FA3 bundle"
export COLUMNS=200
RUNS=${RUNS:-"70b:fewctas:A:- 70b:fewctas:W1:SCHED_FEW_WAVES=1 70b:fewctas:W2:SCHED_FEW_WAVES=2 70b:bench:A:- 70b:bench:W1:SCHED_FEW_WAVES=1 qwen:fewctas:A:- qwen:fewctas:W1:SCHED_FEW_WAVES=1 qwen:bench:A:- qwen:bench:W1:SCHED_FEW_WAVES=1 llama:bench:A:- llama:bench:G2:GRAPH_SCHED_WAVES=2 llama:e2e:A:- llama:e2e:G2:GRAPH_SCHED_WAVES=2"}
for run in $RUNS; do
  IFS=: read -r M su L sets <<< "$run"
  band_worst $M || continue
  W=/tmp/wbw/$M; mkdir -p $W
  [ -f $W/s.db ] || db_copy "$db" $W/s.db
  [ $SECONDS -gt ${STOP_S:-540} ] && { echo "skipped $run: ${SECONDS}s"; continue; }
  wb=(python3 -m workbench)
  [ "$sets" != - ] && wb=(python3 scripts/wb_with.py "${sets//,/ }")
  t=$M-$su-$L
  timeout ${BENCH_S:-100} "${wb[@]}" bench --model $model --tp $tp --study $study --storage sqlite:///$W/s.db \
    --suite $su --peers tuned-graph,fa3 --graph-len 32864 --in-graph --out $OUT/$t.json > $OUT/$t.txt 2> $W/err
  echo "== $t ($sets) rc=$? ${SECONDS}s"; grep -E "geomean speedup" $OUT/$t.txt; tail -1 $W/err
  if [ $L != A ] && [ -f $OUT/$M-$su-A.json ]; then
    python3 -m workbench compare $OUT/$M-$su-A.json $OUT/$t.json --peer tuned-graph --vs fa3 2>/dev/null | tail -${CMP_TAIL:-26}
  fi
done
for f in $OUT/*.json; do gzip -f $f; done
echo "done ${SECONDS}s"
pack_out waves
