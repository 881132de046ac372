#!/usr/bin/env bash
# Device recipe: the package `workbench export --wheel` makes from a saved study, installed and run through
# tests/export_check.py (ops vs the fp32 reference on every row of its dispatch table, bands included, at the
# row's batch; latency vs workbench's launcher; graph-bound and eager-planned launches).
#   STUDY=<name> DB=<results/...db or .db.gz>   carry as device_bench_suites.sh (no FA3 needed)
# Writes $OUT/export-check.{txt,json}, $OUT/export-build.log.
set -uo pipefail
source scripts/device_env.sh
SECONDS=0
W=/tmp/wbexp; rm -rf $W; mkdir -p $W
case ${DB:?a saved study} in *.gz) gunzip -c "$DB" > $W/s.db ;; *) cp "$DB" $W/s.db ;; esac
python3 -m workbench export --study ${STUDY:?its name} --storage sqlite:///$W/s.db --out $W/export --wheel --json \
  > $W/export.json 2> $W/export.err
echo "export rc=$? ${SECONDS}s"; tail -3 $W/export.err
cp $W/export/build.log $OUT/export-build.log 2>/dev/null
WHL=$(python3 -c "import json; print(json.load(open('$W/export.json'))['wheel'])")
python3 -m pip install -q --no-deps --target $W/site "$WHL" && echo "installed ${SECONDS}s"
PYTHONPATH=$W/site:${PYTHONPATH:-} timeout ${CHECK_S:-420} python3 tests/export_check.py $W/export $OUT/export-check.json \
  > $OUT/export-check.txt 2>&1
echo "export_check rc=$? ${SECONDS}s"; tail -${TAIL:-40} $OUT/export-check.txt
