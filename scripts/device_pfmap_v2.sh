#!/usr/bin/env bash
# Issue 6 v2: the L2 prefetch map again on the PDL kernel (staged and register layouts).
# usage: scripts/device_pfmap_v2.sh TAG
set -uo pipefail
source scripts/device_env.sh
export COLUMNS=230
TAG=$1
SECONDS=0
timeout 580 python3 -m workbench bench --prefetch-map --out $OUT/pfmap-$TAG.json > $OUT/pfmap-$TAG.txt 2> /tmp/pf.err
echo "pfmap rc=$? ${SECONDS}s"; tail -30 $OUT/pfmap-$TAG.txt; tail -2 /tmp/pf.err
