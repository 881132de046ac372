#!/usr/bin/env bash
# Device recipe: A/B of a change to `workbench refine` on saved studies, one host, one call: per study
# `bench` with its stored refinement (before), `refine --again` (the new rule, timed afresh), `bench`
# again (after), PEERS rows (default tuned,tuned-graph,fa3) at GRAPH_LEN (default 32864).
#   SUITES="model:tp:study:db ..."  db: a results/ path (.db or .db.gz)
#   BENCH_SUITES (default bench): the bench suites timed before and after, e.g. "bench e2e" (files <when>-e2e.*)
#   SETS="NAME=VALUE ...": the refine and the after bench run with these workbench.kernel.variant constants
#     (scripts/wb_with.py), the before bench without: a launch rule A/B with picks re-chosen for it
# Carry as device_bench_suites.sh: .offline/activate.sh, the optuna/sqlalchemy/alembic/colorlog/mako
# wheels and .peers/fa3.tar.xz. Writes $OUT/<study>/{before,after}.{json,txt}, refine.txt, s.db (past 8 files: all in $OUT/refine-ab.tgz).
set -uo pipefail
source scripts/device_env.sh
fa3_only || echo "no FA3 bundle: its rows say why"
export COLUMNS=200
SECONDS=0
GL=${GRAPH_LEN:-32864}
WB_BEFORE=(python3 -m workbench)
if [ -n "${SETS:-}" ]; then WB_AFTER=(python3 scripts/wb_with.py "$SETS"); else WB_AFTER=("${WB_BEFORE[@]}"); fi
for S in ${SUITES:?model:tp:study:db ...}; do
  IFS=: read -r m tp study db <<< "$S"
  W=/tmp/wbrefab/$study; rm -rf $W; mkdir -p $W $OUT/$study
  case $db in *.gz) gunzip -c "$db" > $W/s.db ;; *) cp "$db" $W/s.db ;; esac
  bench() {
    local su t; local -a wb
    if [ $1 = before ]; then wb=("${WB_BEFORE[@]}"); else wb=("${WB_AFTER[@]}"); fi
    for su in ${BENCH_SUITES:-bench}; do
      t=$1$([ $su = bench ] || echo -$su)
      timeout ${BENCH_S:-150} "${wb[@]}" bench --model $m --tp $tp --study $study --storage sqlite:///$W/s.db \
        --suite $su --peers ${PEERS:-tuned,tuned-graph,fa3} --graph-len $GL --out $OUT/$study/$t.json \
        > $OUT/$study/$t.txt 2> $W/bench-$t.err
      echo "== $study $t rc=$? ${SECONDS}s"; grep -E "geomean|below|ragged" $OUT/$study/$t.txt; tail -2 $W/bench-$t.err
    done
  }
  [ "${SKIP_BEFORE:-0}" = 1 ] || bench before
  timeout ${REFINE_S:-240} "${WB_AFTER[@]}" refine --study $study --storage sqlite:///$W/s.db --graph-len $GL --again \
    > $OUT/$study/refine.txt 2> $W/refine.err
  echo "== $study refine rc=$? ${SECONDS}s"; tail -2 $W/refine.err; grep -E "changed by refinement" $OUT/$study/refine.txt
  bench after
  cp $W/s.db $OUT/$study/s.db
done
echo "done ${SECONDS}s"
pack_out refine-ab
