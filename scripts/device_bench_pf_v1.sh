#!/usr/bin/env bash
# Issue 6 v1 on one GPU: `workbench bench` (tuned = STUDY if given, else the built-in sweep), then the
# L2 prefetch map (staged and register layouts), each under its own time limit.
# usage: scripts/device_bench_pf_v1.sh TAG [STUDY]
set -uo pipefail
source scripts/device_env.sh
export COLUMNS=230
TAG=$1; STUDY=${2:-}
SECONDS=0
if [ -n "$STUDY" ]; then
  cp results/issue6-h100/v1/studies.db /tmp/studies.db
  ARGS="--study $STUDY --storage sqlite:////tmp/studies.db"
else ARGS=""; fi
timeout 300 python3 -m workbench bench $ARGS --out $OUT/bench-$TAG.json --plot $OUT/bench-$TAG.png > $OUT/bench-$TAG.txt 2> /tmp/bench.err
echo "bench rc=$? ${SECONDS}s"
grep -E "geomean|^note: (flex|tuned)" $OUT/bench-$TAG.txt | cut -c1-200
timeout $((580 - SECONDS)) python3 -m workbench bench --prefetch-map --out $OUT/pfmap-$TAG.json > $OUT/pfmap-$TAG.txt 2> /tmp/pf.err
echo "pfmap rc=$? ${SECONDS}s"; tail -30 $OUT/pfmap-$TAG.txt; tail -2 /tmp/pf.err
