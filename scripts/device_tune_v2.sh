#!/usr/bin/env bash
# Issue 6 v2 on an H100: baseline / paper (vLLM's own kernel) recorded into the test fixtures,
# then the main job on the bench suite (dispatch buckets = the bench's shapes), as a user types it.
set -uo pipefail
source scripts/device_env.sh
export WORKBENCH_HOME=/tmp/home COLUMNS=160
SECONDS=0
cp tests/fixtures/h100-2026-11-21/replay.json $OUT/replay.json
python3 scripts/record_replay.py --add-references $OUT/replay.json > /tmp/refs-replay.log 2>&1
echo "replay refs rc=$? ${SECONDS}s"; tail -4 /tmp/refs-replay.log
cp tests/fixtures/h100-2026-11-21/studies.db $OUT/fixture-studies.db
python3 scripts/add_references.py h100-llama-3.1-8b-tp1-bf16-blk16-default sqlite:///$OUT/fixture-studies.db > /tmp/refs-study.log 2>&1
echo "study refs rc=$? ${SECONDS}s"; tail -4 /tmp/refs-study.log
left=$((585 - SECONDS))
timeout $left python3 -m workbench tune --gpu h100 --model llama-3.1-8b --suite bench --trials 400 \
  --timeout $((left - 45)) --json > $OUT/tune-summary.json 2> /tmp/tune.err
echo "tune rc=$? ${SECONDS}s"
tail -3 /tmp/tune.err
cp $WORKBENCH_HOME/studies.db $OUT/studies.db
find $WORKBENCH_HOME -name last-screen.txt -exec cp {} $OUT/ \;
tar czf $OUT/logs.tgz /tmp/refs-replay.log /tmp/refs-study.log /tmp/tune.err $WORKBENCH_HOME/runs 2>/dev/null
python3 - <<'PY'
import json, os
d = json.load(open(os.environ["OUT"] + "/tune-summary.json"))
print({k: d.get(k) for k in ("study", "trials_run", "complete", "failed", "elapsed_s")}, d.get("references"))
for r in d["dispatch"]["rows"]:
    v = r["variant"]
    print(f'b{r["bucket"]["batch"]}x{r["bucket"]["context"]} {r["median_us"]:.1f}us eff {r["efficiency"]:.2f} '
          f'x{r["speedup_baseline"] or 0:.2f} base  t{v.get("threads")} q{v.get("heads_per_cta")} p{v.get("partition")} '
          f's{v.get("stages", 0)} pf{v.get("prefetch_distance")} {v.get("reduce", "")}')
PY
