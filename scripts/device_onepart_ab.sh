#!/usr/bin/env bash
# Device recipe: the one-partition direct write (kernels/decode.cu, 2026-11-29) A/B on the e2e grid's
# shapes, llama-3.1-8b's study, tuned-graph and FA3, the kernel before (.ab/decode-old.cu, carried)
# and after in one call; then the GPU correctness tests of the split launch forms on the new kernel.
#   STUDY=h200-train DB=results/...db.gz; carry .offline (slim), .peers/fa3.tar.xz and .ab
set -uo pipefail
source scripts/device_env.sh
fa3_only || echo "no FA3 bundle"
SECONDS=0
S="llama-3.1-8b:1:${STUDY:-h200-train}:${DB:-results/h200-2026-11-29-bands/edges/studies-llama-3.1-8b.db.gz}"
for form in old new; do
  kernel_form $form
  SUITES=$S SUITE=e2e PEERS=tuned-graph,fa3 GRAPH_LEN=32864 TAG=-e2e-$form bash scripts/device_bench_suites.sh 2>&1 | tail -3
done
kernel_form new
for f in $OUT/bench-*-e2e-*.txt; do echo "== $f"; sed -n '1,30p' $f | grep -E "^│|geomean"; done
TESTS=test_gpu_correctness K="${K:-graph_bound or eager_plans or would_not_split or sequence_lengths or empty_sequences or onepass_fused or padded_ctas}" \
  BUDGET=${BUDGET:-560} bash scripts/device_gputests.sh 2>&1 | tail -8
echo "done ${SECONDS}s"
