#!/usr/bin/env bash
# Device recipe (perf-notes v28): the `read` bound (the shape's paged KV read alone, bench.peers.read)
# beside our rows and the peers vLLM runs, in-graph, cold L2, on session 23's band-worst studies.
# First the read kernel's GPU test, then the same test with one tile per CTA skipped (it must fail).
# Carry .offline and .peers (FlashInfer for flashinfer-tc / xqa; FA3 alone also works: they say why).
set -uo pipefail
SECONDS=0
source scripts/device_env.sh
peers_or_fa3
export COLUMNS=220
T=tests/test_peers.py
timeout 150 python3 -m pytest -q -p no:cacheprovider $T -k read_bound > $OUT/gputest-read.txt 2>&1
echo "gputest read rc=$? ${SECONDS}s"; tail -1 $OUT/gputest-read.txt
cp kernels/readprobe.cu /tmp/readprobe.cu
sed -i 's/      if (tt < t1) {/      if (tt + 1 < t1) {/' kernels/readprobe.cu
cmp -s kernels/readprobe.cu /tmp/readprobe.cu && echo "BROKEN FORM NOT MADE"
timeout 150 python3 -m pytest -q -p no:cacheprovider $T -k read_bound_reads > $OUT/gputest-read-broken.txt 2>&1
echo "gputest read, a tile skipped: rc=$? (must be 1)"; tail -1 $OUT/gputest-read-broken.txt
cp /tmp/readprobe.cu kernels/readprobe.cu
cp workbench/bench/peers/read.py /tmp/read.py
sed -i 's/lambda _t=table, _r=self:/lambda:/' workbench/bench/peers/read.py
cmp -s workbench/bench/peers/read.py /tmp/read.py && echo "BROKEN FORM NOT MADE"
timeout 150 python3 -m pytest -q -p no:cacheprovider $T -k read_bound_reads > $OUT/gputest-read-broken2.txt 2>&1
echo "gputest read, calls without their tables: rc=$? (must be 1)"; tail -1 $OUT/gputest-read-broken2.txt
cp /tmp/read.py workbench/bench/peers/read.py
SKIP_TEST=1 FORMS=in-graph RUNS=${RUNS1:-llama:bench} PEERS=${PEERS1:-tuned,tuned-graph,fa3-packed,flashinfer-tc,xqa,read} \
  STOP_S=120 BENCH_S=${BENCH1_S:-240} bash scripts/device_in_graph.sh
SKIP_TEST=1 FORMS=in-graph RUNS=${RUNS2:-"qwen:bench 70b:bench llama:e2e"} PEERS=${PEERS2:-tuned,tuned-graph,fa3-packed,read} \
  STOP_S=$(( ${DEADLINE_S:-470} - SECONDS )) bash scripts/device_in_graph.sh
echo "done ${SECONDS}s"
pack_out read-bound
