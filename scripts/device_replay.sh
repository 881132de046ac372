#!/usr/bin/env bash
# Device recipe (perf-notes v23 Left 2): is the bench's k for our rows an artefact of timing them eagerly?
# One call, one host: the GPU test of `bench --replay-ours` (graph replay of our launch, as FA3's rows are
# timed), then the e2e suite benched four ways: graph bound 1104 (a 1k-only engine's) and 32864 (a 32k
# server's), each with our rows eager and by replay; FA3 in every bench (its spread across the four runs
# is the call's repeat noise). Last, the 32864 replay bench is left as /tmp/wbe2e/bench-e2e.json for a
# following `STAGE=run` of device_e2e.sh on the same warm host (its k then comes from replays).
# Needs .offline and .peers carried (and .vllm/part1 when the next call is an e2e run).
# Usage: STUDY=h200-train DB=results/.../studies-llama-3.1-8b.db.gz bash scripts/device_replay.sh
set -uo pipefail
SECONDS=0
source scripts/device_env.sh
export COLUMNS=200
W=/tmp/wbe2e; mkdir -p $W
peers_or_fa3
[ -d .vllm/part1 ] && { source scripts/vllm_activate.sh .vllm >/dev/null 2>&1; echo "vLLM part1 unpacked"; }
STUDY=${STUDY:-h200-train}
db_copy "$DB" $W/studies.db
timeout 150 python3 -m pytest -q -s -p no:cacheprovider tests/test_gpu_correctness.py -k replay > $OUT/gputest-replay.txt 2>&1
echo "gputest replay rc=$? ${SECONDS}s"; tail -3 $OUT/gputest-replay.txt
python3 -m workbench export --study $STUDY --storage sqlite:///$W/studies.db --out $W/pkg --json > $W/export.json 2> $W/export.err
echo "export rc=$? ${SECONDS}s"
for L in 1104 32864; do
  for R in eager replay; do
    [ $SECONDS -gt ${STOP_S:-470} ] && { echo "bench $L $R skipped: ${SECONDS}s"; continue; }
    timeout ${BENCH_S:-120} python3 -m workbench bench --study $STUDY --storage sqlite:///$W/studies.db --suite e2e \
      --peers tuned,tuned-graph,fa3 --graph-len $L $([ $R = replay ] && echo --replay-ours) \
      --out $W/bench-$L-$R.json > $W/bench-$L-$R.txt 2> $W/bench-$L-$R.err
    echo "bench $L $R rc=$? ${SECONDS}s"; tail -2 $W/bench-$L-$R.err
  done
done
cp $W/bench-32864-replay.json $W/bench-e2e.json
tar czf $OUT/benches.tgz -C $W $(cd $W && ls bench-*-*.json bench-*-*.txt bench-*-*.err export.err)
python3 - $W <<'PY'
import json, sys
w = sys.argv[1]
runs = {}
for L in (1104, 32864):
    for r in ("eager", "replay"):
        try:
            runs[(L, r)] = json.load(open(f"{w}/bench-{L}-{r}.json"))
        except (OSError, ValueError):
            pass
def us(run, peer):
    return {r["shape"]: r["median_us"] for r in run.get("results", []) if r["peer"] == peer and r.get("median_us")}
cols = [(k, p) for k in runs for p in ("tuned", "tuned-graph", "fa3")]
labels = []
for k in runs:
    for l in us(runs[k], "fa3"):
        if l not in labels:
            labels.append(l)
print("µs, cold L2, median of 30; columns: bound/timing/peer")
print(f"{'shape':>10} " + " ".join(f"{str(k[0])[:5]+k[1][0]+':'+p[:6]:>13}" for k, p in cols))
for l in labels:
    print(f"{l:>10} " + " ".join(f"{us(runs[k], p).get(l, float('nan')):13.1f}" for k, p in cols))
PY
