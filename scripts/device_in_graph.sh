#!/usr/bin/env bash
# Device recipe (perf-notes v24): the bench suites timed both ways in one call on one host: the default
# (one launch per timed call: ours eager, the peers one CUDA graph per launch) and `--in-graph` (every
# row as one CUDA graph of a launch per rotation copy, back to back, as attention runs inside vLLM's
# decode graph). First the GPU test of the timings (tests/test_gpu_correctness.py -k replay).
# Runs: RUNS="M:suite ..." (M: qwen | 70b | llama, session 23's band-worst studies: device_env.sh band_worst);
# default: the three on the bench suite (session 24's headline tables), 70b and qwen on fewctas, the 8b on e2e.
# FORMS: the timings, each run per suite (default: "default in-graph"); a form ending in -contig also
# passes --pages contiguous (e.g. FORMS="in-graph in-graph-contig": the page order A/B, session 27); one
# holding -kvw also --kv-write (each launch after a KV-write stand-in: FORMS="in-graph in-graph-kvw"); one
# holding -fused also --fused-write (the peers pay the stand-in, ours write the token fused: session 28).
# Carry .offline and .peers/fa3.tar.xz.
set -uo pipefail
SECONDS=0
source scripts/device_env.sh
fa3_only || echo "no FA3 bundle: its rows say why"
export COLUMNS=200
RUNS=${RUNS:-"llama:bench 70b:bench qwen:bench 70b:fewctas qwen:fewctas llama:e2e"}
if [ "${SKIP_TEST:-0}" != 1 ]; then
  timeout 150 python3 -m pytest -q -s -p no:cacheprovider tests/test_gpu_correctness.py -k replay > $OUT/gputest-timings.txt 2>&1
  echo "gputest timings rc=$? ${SECONDS}s"; grep -E "µs|passed|failed|Error" $OUT/gputest-timings.txt | head -8
fi
for S in $RUNS; do
  IFS=: read -r M suite <<< "$S"
  band_worst $M || continue
  m=$model
  W=/tmp/wbsuites/$study; mkdir -p $W
  [ -f $W/s.db ] || db_copy "$db" $W/s.db
  for T in ${FORMS:-default in-graph}; do
    [ $SECONDS -gt ${STOP_S:-520} ] && { echo "skipped $m $suite $T: ${SECONDS}s"; continue; }
    N=$OUT/$m-$suite-$T
    timeout ${BENCH_S:-150} python3 -m workbench bench --model $m --tp $tp --study $study --storage sqlite:///$W/s.db \
      --suite $suite --peers ${PEERS:-tuned,tuned-graph,fa3} --graph-len ${GRAPH_LEN:-32864} \
      $([[ $T = in-graph* ]] && echo --in-graph) $([[ $T = *-contig ]] && echo --pages contiguous) \
      $([[ $T = *-kvw* ]] && echo --kv-write) $([[ $T = *-fused* ]] && echo --fused-write) \
      --out $N.json > $N.txt 2> $W/bench.err
    echo "== $m $suite $T rc=$? ${SECONDS}s"; grep -E "geomean" $N.txt; tail -1 $W/bench.err
    gzip -f $N.json
  done
done
echo "done ${SECONDS}s"
pack_out in-graph
