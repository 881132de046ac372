#!/usr/bin/env bash
# Device recipe (session 24, perf-notes v22): launch-rule and graph-rule A/Bs of saved studies in one
# call, `bench` tuned-graph vs FA3 per model, one host, then `workbench compare` of consecutive runs.
#   RUNS="model:label:sets ..."   model: qwen | 70b | llama (study and DBs below); label: A = the study as
#     session 23 left it (5-sparse / 4-70b-refine), B.. = its 9-band-worst copy (`refine --graph-rule
#     band-worst`, no GPU); sets: scripts/wb_with.py constants joined by "," (e.g.
#     SCHED_FIT_FEW=1,SCHED_WHOLE_MAX=4096), "-" for none.
#   SUITES_LIST (default "bench"; llama also runs e2e unless LLAMA_SUITES says otherwise)
# Carry .offline/activate.sh + wheels and .peers/fa3.tar.xz. Writes $OUT/<model>-<label>[-<suite>].{json,txt}.
set -uo pipefail
SECONDS=0
source scripts/device_env.sh
fa3_only || echo "no FA3 bundle"
export COLUMNS=200
R=results/h200-2026-11-30-s23
RUNS=${RUNS:-"qwen:A:- qwen:B:- qwen:C:SCHED_FIT_FEW=1 70b:A:- 70b:B:- 70b:C:SCHED_FIT_FEW=1"}
prev=""
for run in $RUNS; do
  IFS=: read -r M L sets <<< "$run"
  case $M in
    qwen)  model=qwen2.5-7b; tp=1; study=h200-qwen2.5-7b-tp1; suites=${SUITES_LIST:-bench}
           A=$R/5-sparse/h200-qwen2.5-7b-tp1/studies.db.gz; B=$R/9-band-worst/models-qwen2.5-7b.db.gz ;;
    70b)   model=llama-3.1-70b; tp=8; study=h200-llama-3.1-70b-tp8; suites=${SUITES_LIST:-bench}
           A=$R/4-70b-refine/models-llama-3.1-70b.db.gz; B=$R/9-band-worst/models-llama-3.1-70b.db.gz ;;
    llama) model=llama-3.1-8b; tp=1; study=h200-train; suites=${LLAMA_SUITES:-bench e2e}
           A=$R/5-sparse/h200-train/studies.db.gz; B=$R/9-band-worst/studies-llama-3.1-8b.db.gz ;;
  esac
  W=/tmp/wbfew/$M-$L; mkdir -p $W
  gunzip -c "$([ $L = A ] && echo $A || echo $B)" > $W/s.db
  wb=(python3 -m workbench)
  [ "$sets" != - ] && wb=(python3 scripts/wb_with.py "${sets//,/ }")
  for su in $suites; do
    t=$M-$L$([ $su = bench ] || echo -$su)
    timeout ${BENCH_S:-120} "${wb[@]}" bench --model $model --tp $tp --study $study --storage sqlite:///$W/s.db \
      --suite $su --peers tuned-graph,fa3 --graph-len 32864 --out $OUT/$t.json > $OUT/$t.txt 2> $W/err-$su
    echo "== $t ($sets) rc=$? ${SECONDS}s"; grep -E "geomean speedup" $OUT/$t.txt; tail -2 $W/err-$su
    p=${prev%%:*}
    if [ -n "$prev" ] && [ "$p" = $M ]; then
      pt=$M-${prev#*:}$([ $su = bench ] || echo -$su)
      echo "-- $pt -> $t"
      python3 -m workbench compare $OUT/$pt.json $OUT/$t.json --peer tuned-graph --vs fa3 2>/dev/null | tail -${CMP_TAIL:-28}
    fi
  done
  prev=$M:$L
done
echo "done ${SECONDS}s"
pack_out fit-few
