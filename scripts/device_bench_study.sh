#!/usr/bin/env bash
# `workbench bench` on the device with tuned = a committed study's dispatch table.
# usage: scripts/device_bench_study.sh STUDIES_DB STUDY TAG   (writes $OUT/bench-TAG.{json,png,txt})
set -uo pipefail
source scripts/device_env.sh
export COLUMNS=230
cp "$1" /tmp/studies.db
SECONDS=0
timeout 575 python3 -m workbench bench --study "$2" --storage sqlite:////tmp/studies.db \
  --out $OUT/bench-$3.json --plot $OUT/bench-$3.png > $OUT/bench-$3.txt 2> /tmp/bench.err
echo "rc=$? ${SECONDS}s"
tail -45 $OUT/bench-$3.txt; grep -v -i "xformers\|python\|memory-eff\|reinstall" /tmp/bench.err | tail -5
