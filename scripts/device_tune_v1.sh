#!/usr/bin/env bash
# Issue 6 v1: the main job with the staged-tiles space, as a user types it; study DB comes back.
set -uo pipefail
source scripts/device_env.sh
export WORKBENCH_HOME=$OUT/home COLUMNS=160
SECONDS=0
timeout 570 python3 -m workbench tune --gpu h100 --model llama-3.1-8b --json > $OUT/tune-summary.json 2> $OUT/tune.err
echo "tune rc=$? ${SECONDS}s"
cp $WORKBENCH_HOME/last-screen.txt $OUT/ 2>/dev/null || find $WORKBENCH_HOME -name last-screen.txt -exec cp {} $OUT/ \;
tail -3 $OUT/tune.err
python3 - <<'PY'
import json; import os; d = json.load(open(os.environ["OUT"] + "/tune-summary.json"))
print({k: d.get(k) for k in ("study", "trials_run", "complete", "failed", "elapsed_s")})
for r in d["dispatch"]["rows"]:
    print(r["bucket"]["batch"], r["bucket"]["context"], r.get("median_us"), r["variant"].get("threads"), r["variant"].get("heads_per_cta"), r["variant"].get("partition"), r["variant"].get("stages", 0), r["variant"].get("prefetch_distance"))
PY
ls -la $WORKBENCH_HOME
