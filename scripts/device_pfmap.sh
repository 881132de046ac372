#!/usr/bin/env bash
# Issue 6: the L2 prefetch map on this GPU (bench suite, 12 layouts x distances 0/1/2/4).
set -uo pipefail
source scripts/device_env.sh
export COLUMNS=200
SECONDS=0
timeout 560 python3 -m workbench bench --prefetch-map --out $OUT/prefetch-map.json > $OUT/prefetch-map.txt 2> $OUT/pf.err
echo "rc=$? ${SECONDS}s"; cat $OUT/prefetch-map.txt; tail -3 $OUT/pf.err
