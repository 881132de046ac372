#!/usr/bin/env bash
# Device recipe (issue 12): `workbench refine` on a committed study, then `bench` of the bench suite
# (out of sample: no refine shape is a bench shape) with the refined and the unrefined dispatch, FA3
# beside each. One call, ~5 min on the H200. Carry .offline and .peers.
# Usage: DB=results/h200-2026-11-28-v6/studies.db STUDY=h200-train bash scripts/device_refine.sh
#        (BENCHES=refined: only the refined bench; PEERS=tuned,fa3,flashinfer,...: the bench's peers;
#         GRAPH_LEN=32864: refine's graph picks and bench's tuned-graph row at that bound, e.g. with
#         SUITE=e2e PEERS=tuned,tuned-graph,fa3: the graph picks against a DB refined without them;
#         REFINE_ARGS="--again --margin 0.06": more refine options; BENCH_ARGS=--in-graph: more bench options;
#         DB may be a .db.gz)
set -uo pipefail
source scripts/device_env.sh
source scripts/peers_activate.sh ${PEERS_DIR:-.peers} >/dev/null 2>&1 || echo "peers bundle missing: FA3 will say why"
export COLUMNS=200
STUDY=${STUDY:-h200-train}; DB=${DB:-results/h200-2026-11-28-v6/studies.db}
SECONDS=0
db_copy "$DB" /tmp/refine.db && db_copy "$DB" /tmp/unrefined.db
timeout ${REFINE_S:-240} python3 -m workbench refine --study $STUDY --storage sqlite:////tmp/refine.db ${GRAPH_LEN:+--graph-len $GRAPH_LEN} ${REFINE_ARGS:-} \
  > $OUT/refine.txt 2> $OUT/refine.err
echo "refine rc=$? ${SECONDS}s"; tail -3 $OUT/refine.err; cp /tmp/refine.db $OUT/studies-refined.db
for T in ${BENCHES:-refined unrefined}; do
  D=/tmp/refine.db; [ $T = unrefined ] && D=/tmp/unrefined.db
  timeout ${BENCH_S:-120} python3 -m workbench bench --study $STUDY --storage sqlite:///$D --suite ${SUITE:-bench} \
    --peers ${PEERS:-tuned,fa3} ${GRAPH_LEN:+--graph-len $GRAPH_LEN} ${BENCH_ARGS:-} --out $OUT/bench-$T.json > $OUT/bench-$T.txt 2> $OUT/bench-$T.err
  echo "bench $T rc=$? ${SECONDS}s"; grep -E "geomean|below" $OUT/bench-$T.txt
done
cat $OUT/refine.txt | tail -40
# the device returns at most 8 files: everything else in one archive (the refined study among them)
tar czf $OUT/refine-extra.tgz -C $OUT studies-refined.db $(cd $OUT && ls *.err 2>/dev/null) && rm -f $OUT/studies-refined.db $OUT/*.err
