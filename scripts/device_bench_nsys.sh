#!/usr/bin/env bash
# Device recipe (perf-notes v24): the bench's timed launches under nsys, to set the bench's event-timed
# µs of ours and of FA3 beside the kernels' own span on the GPU timeline (first kernel start to last
# kernel end of a launch), as the e2e breakdown reads the engine's. Small shapes (scripts/probe-small1k.yaml):
# there the engine's span of our launch (8.4 µs at b1x1k, session 25) and the bench's µs (10.4-11.0) part.
# Needs .offline (with deb/ for nsys) and .peers/fa3.tar.xz carried; DB and STUDY as device_replay.sh.
set -uo pipefail
SECONDS=0
source scripts/device_env.sh
export COLUMNS=200
W=/tmp/wbn; mkdir -p $W
peers_or_fa3
STUDY=${STUDY:-h200-train}
db_copy "$DB" $W/studies.db
for R in eager replay; do
  timeout 200 nsys profile --trace cuda,nvtx --cuda-graph-trace node -o $W/bench-$R --force-overwrite true \
    python3 -m workbench bench --study $STUDY --storage sqlite:///$W/studies.db --suite scripts/probe-small1k.yaml \
    --peers tuned,tuned-graph,fa3 --graph-len ${GRAPH_LEN:-1104} $([ $R = replay ] && echo --replay-ours) \
    --out $W/bench-$R.json > $W/bench-$R.txt 2> $W/bench-$R.err
  echo "nsys bench $R rc=$? ${SECONDS}s"; tail -2 $W/bench-$R.err
  nsys export --type sqlite -o $W/bench-$R.sqlite --force-overwrite true $W/bench-$R.nsys-rep > /dev/null 2>&1
  echo "export rc=$? ${SECONDS}s"
  xz -T0 -6 -c $W/bench-$R.sqlite > $OUT/bench-$R.sqlite.xz
done
tar czf $OUT/bench.tgz -C $W $(cd $W && ls bench-*.json bench-*.txt bench-*.err)
ls -la $OUT
