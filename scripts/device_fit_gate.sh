#!/usr/bin/env bash
# Device recipe (session 21): the schedule for graph-bound onepass launches whose whole sequences
# fill half to one wave (Variant.fits_one_wave; launch.cuh wb_sched_shape), in one call:
#   1. tests/export_check.py on the llama-3.1-8b e2e study's exported package (ops vs the fp32
#      reference at every dispatch row, graph-bound and eager-planned; schedule keys equal to
#      workbench's launcher);
#   2. `workbench bench` tuned-graph vs FA3 on the e2e grid and on the bench suite, the rule off
#      (SCHED_FIT_FILL = 2: the launches of before) and on, one after the other on one host.
# Carry .offline (activate.sh and the wheels) and .peers/fa3.tar.xz.
set -uo pipefail
SECONDS=0
export CHECK_S=${CHECK_S:-185} TAIL=14
STUDY=${STUDY:-h200-train} DB=${DB:-results/h200-2026-11-29-bands/edges/studies-llama-3.1-8b.db.gz} \
  bash scripts/device_export_check.sh
source scripts/device_env.sh
fa3_only || echo "no FA3 bundle"
export COLUMNS=200
W=/tmp/wbfit; mkdir -p $W; gunzip -c ${DB:-results/h200-2026-11-29-bands/edges/studies-llama-3.1-8b.db.gz} > $W/s.db
for suite in e2e bench; do
  for form in off on; do
    [ $SECONDS -gt ${BUDGET:-330} ] && { echo "skip $suite-$form: ${SECONDS}s"; continue; }
    timeout $((${BUDGET:-330} + 20 - SECONDS)) python3 scripts/wb_with.py "$([ $form = off ] && echo SCHED_FIT_FILL=2)" bench --study ${STUDY:-h200-train} --storage sqlite:///$W/s.db \
      --suite $suite --peers tuned-graph,fa3 --graph-len 32864 --out $OUT/bench-$suite-$form.json \
      > $OUT/bench-$suite-$form.txt 2> $W/bench-$suite-$form.err
    echo "== $suite $form rc=$? ${SECONDS}s"; grep -E "geomean|below" $OUT/bench-$suite-$form.txt; tail -2 $W/bench-$suite-$form.err
  done
done
echo "done ${SECONDS}s"
pack_out fit-gate
