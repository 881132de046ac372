#!/usr/bin/env bash
# Device recipe (issue 12, "the other model suites"): a hopper-space tune per model on the train
# suite, then `refine` and a `bench` of the bench suite (out of sample) against FA3 for each, in
# stages that fit 10-minute calls on one warm host (it keeps /tmp between back-to-back calls).
#   STAGE=tune   needs .offline/: one tune of TUNE_S seconds per model into /tmp/wbmodels/models.db
#   STAGE=bench  needs .offline/ (kept from the tune call) and .peers/: refine, with graph picks at
#                GRAPH_LEN (default 32864; 0: none) for the packages' captured launches, and bench,
#                PEERS (default tuned,tuned-graph,fa3); REFINE=0: bench the stored dispatch as it is;
#                BENCH_ARGS: more `bench` options (e.g. --in-graph); STUDY_GPU=h200: bench the studies of
#                that GPU's profile on this one (REFINE=0: refine refuses a study of another GPU)
# W: the host folder of the run (default /tmp/wbmodels; another one keeps a second DB apart on a warm host)
# MODELS: model[:tp] words, default the issue's four: qwen2.5-7b (28/4), llama-3.1-70b:8 (8/1 per
# GPU), gemma-2-9b (16/8 d256), llama-2-7b (32/32, MHA). DB=<models.db> seeds /tmp from a saved run.
# TRIALS is high so TUNE_S bounds the tune (a 600-trial 70b run ended after 101 s: its trials were
# mostly invalid asks, 2026-11-29).
# Usage: STAGE=tune TUNE_S=105 bash scripts/device_models.sh   (carry .offline)
#        STAGE=bench bash scripts/device_models.sh              (carry .peers)
set -uo pipefail
source scripts/device_env.sh
export COLUMNS=200
GPU=${GPU:-h200}; W=${W:-/tmp/wbmodels}; mkdir -p $W
MODELS=${MODELS:-qwen2.5-7b llama-3.1-70b:8 gemma-2-9b llama-2-7b}
SPACE=${SPACE:-tuning/spaces/hopper.yaml}
if [ -n "${DB:-}" ] && [ ! -f $W/models.db ]; then       # a saved run's models.db, or its .db.gz under results/
  case $DB in *.gz) gunzip -c "$DB" > $W/models.db ;; *) cp "$DB" $W/models.db && chmod u+w $W/models.db ;; esac
fi
SECONDS=0
case ${STAGE:-tune} in
tune)
  for M in $MODELS; do
    m=${M%%:*}; tp=1; [ "$M" != "$m" ] && tp=${M#*:}; S=$GPU-$m-tp$tp
    timeout $((${TUNE_S:-105} + 60)) python3 -m workbench tune --gpu $GPU --model $m --tp $tp --suite train \
      --space $SPACE --trials ${TRIALS:-20000} --timeout ${TUNE_S:-105} --profile none --study $S \
      --storage sqlite:///$W/models.db --json > $OUT/tune-$S.json 2> $W/tune-$S.err
    echo "tune $S rc=$? ${SECONDS}s"; tail -2 $W/tune-$S.err
    python3 - "$OUT/tune-$S.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(" trials", d.get("n_complete", d.get("complete")), "failed", d.get("n_failed", d.get("failed")),
      "best", (d.get("best") or (d.get("top") or [{}])[0]).get("name"))
PY
  done
  cp $W/models.db $OUT/models.db
  tar czf $OUT/tune-logs.tgz -C $W $(cd $W && ls *.err) ;;
bench)
  source scripts/peers_activate.sh ${PEERS_DIR:-.peers} >/dev/null 2>&1 || fa3_only || echo "peers bundle missing: FA3 will say why"
  for M in $MODELS; do
    m=${M%%:*}; tp=1; [ "$M" != "$m" ] && tp=${M#*:}; S=${STUDY_GPU:-$GPU}-$m-tp$tp
    if [ "${REFINE:-1}" = 1 ]; then
      timeout ${REFINE_S:-150} python3 -m workbench refine --study $S --storage sqlite:///$W/models.db --graph-len ${GRAPH_LEN:-32864} \
        > $W/refine-$S.txt 2> $W/refine-$S.err
      echo "refine $S rc=$? ${SECONDS}s"
    fi
    timeout ${BENCH_S:-150} python3 -m workbench bench --model $m --tp $tp --study $S --storage sqlite:///$W/models.db \
      --suite bench --peers ${PEERS:-tuned,tuned-graph,fa3} --graph-len ${GRAPH_LEN:-32864} ${BENCH_ARGS:-} --out $OUT/bench-$S.json > $W/bench-$S.txt 2> $W/bench-$S.err
    echo "bench $S rc=$? ${SECONDS}s"; grep -E "geomean|below" $W/bench-$S.txt; tail -2 $W/bench-$S.err
  done
  cp $W/models.db $OUT/models.db
  tar czf $OUT/models-logs.tgz -C $W $(cd $W && ls *.err *.txt) ;;
esac
echo "done ${SECONDS}s"
