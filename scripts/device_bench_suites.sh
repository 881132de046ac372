#!/usr/bin/env bash
# Device recipe: `workbench bench` of saved studies (no tuning, no refine: the stored dispatch tables as
# they are), PEERS rows (default tuned,tuned-graph,fa3), one model after another in one call.
# Carry the wheels `workbench` imports (optuna, sqlalchemy, alembic, colorlog, mako, nvtx and
# .offline/activate.sh fit beside .peers/fa3.tar.xz under the 64 MiB transfer limit) and FA3.
#   SUITES="model:tp:study:db ..."  db: a results/ path (.db or .db.gz)
# SUITE=e2e: the e2e grid's shapes (the kernel ratios k of `workbench e2e`); TAG: a suffix for the output names.
# Default: the three studies the ragged batches were weakest on (2026-11-29).
#   GRAPH_LEN=32864 for studies refined with graph picks at that bound (their tuned-graph row takes them):
#   SUITES="llama-3.1-70b:8:h200-llama-3.1-70b-tp8:results/h200-2026-11-29-eager-plan/picks-final/models-llama-3.1-70b.db.gz"
set -uo pipefail
source scripts/device_env.sh
fa3_only || echo "no FA3 bundle: its rows say why"
export COLUMNS=200
SECONDS=0
SUITES=${SUITES:-"llama-3.1-70b:8:h200-llama-3.1-70b-tp8:results/h200-2026-11-29-70b-onepass/models.db.gz qwen2.5-7b:1:h200-qwen2.5-7b-tp1:results/h200-2026-11-29-qwen-pad/models.db.gz llama-3.1-8b:1:h200-train:results/h200-2026-11-29-s2/studies.db"}
for S in $SUITES; do
  IFS=: read -r m tp study db <<< "$S"
  W=/tmp/wbsuites/$study; mkdir -p $W
  if [ ! -f $W/s.db ]; then
    case $db in *.gz) gunzip -c "$db" > $W/s.db ;; *) cp "$db" $W/s.db ;; esac
  fi
  # OLD_GATE=1: the graph-bound plan only where the grid is many waves (before 2026-11-29), for an A/B
  SETS=""; tag=""
  [ "${OLD_GATE:-0}" = 1 ] && tag=-oldgate && SETS="SCHED_MIN_SEQS=1073741824"
  timeout ${BENCH_S:-240} python3 scripts/wb_with.py "$SETS" bench --model $m --tp $tp --study $study --storage sqlite:///$W/s.db \
    --suite ${SUITE:-bench} --peers ${PEERS:-tuned,tuned-graph,fa3} ${GRAPH_LEN:+--graph-len $GRAPH_LEN} --out $OUT/bench-$study$tag${TAG:-}.json > $OUT/bench-$study$tag${TAG:-}.txt 2> $W/bench.err
  echo "== $study rc=$? ${SECONDS}s"; grep -E "geomean|below" $OUT/bench-$study$tag${TAG:-}.txt; tail -2 $W/bench.err
done
echo "done ${SECONDS}s"
pack_out bench-suites
