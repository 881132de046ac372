#!/usr/bin/env bash
# Device recipe: two saved studies of one model (A, B: results/ paths, .db or .db.gz) benched in one call
# on one host, `workbench bench` tuned-graph vs FA3 on SUITES_LIST (default "bench e2e"), then compared
# per shape (`workbench compare`). MODEL/TP/STUDY as `bench` takes them (default llama-3.1-8b, 1, h200-train).
# Carry .offline/activate.sh + wheels and .peers/fa3.tar.xz. Writes $OUT/<suite>-{A,B}.{json,txt}.
set -uo pipefail
SECONDS=0
source scripts/device_env.sh
fa3_only || echo "no FA3 bundle"
export COLUMNS=200
for X in A B; do
  db=${!X:?two studies: A=... B=...}; W=/tmp/wbstab/$X; mkdir -p $W
  case $db in *.gz) gunzip -c "$db" > $W/s.db ;; *) cp "$db" $W/s.db ;; esac
done
for suite in ${SUITES_LIST:-bench e2e}; do
  for X in A B; do
    timeout ${BENCH_S:-120} python3 -m workbench bench --model ${MODEL:-llama-3.1-8b} --tp ${TP:-1} --study ${STUDY:-h200-train} \
      --storage sqlite:////tmp/wbstab/$X/s.db --suite $suite --peers tuned-graph,fa3 --graph-len ${GRAPH_LEN:-32864} \
      --out $OUT/$suite-$X.json > $OUT/$suite-$X.txt 2> /tmp/wbstab/$X/$suite.err
    echo "== $suite $X rc=$? ${SECONDS}s"; grep -E "geomean|ragged" $OUT/$suite-$X.txt; tail -2 /tmp/wbstab/$X/$suite.err
  done
  python3 -m workbench compare $OUT/$suite-A.json $OUT/$suite-B.json --peer tuned-graph --vs fa3 2>/dev/null | tail -30
done
echo "done ${SECONDS}s"
