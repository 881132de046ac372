#!/usr/bin/env bash
# Device recipe: a test must be able to fail. On the device's copy of the tree, apply BREAK (a sed
# expression) to FILE (default kernels/decode.cu), run the GPU tests (TESTS file, -k K): they must
# fail. Then restore the file and run them again: they must pass. The cubin cache is keyed by the
# source's hash, so the broken kernel is built afresh and the restored one is the committed cubin.
#   BREAK='/ring0 + w \* RING_STRIDE/s/w < NW;/w < NW - 1;/' K=tensor_core_path bash scripts/device_break.sh
# Carry .offline. Prints "break caught" (exit 0) only when broken fails and restored passes.
set -uo pipefail
SECONDS=0
source scripts/device_env.sh
F=${FILE:-kernels/decode.cu}; T=tests/${TESTS:-test_gpu_correctness}.py
: "${BREAK:?give BREAK, a sed expression}" "${K:?give K, a pytest -k filter}"
cp "$F" /tmp/break.orig
sed -i "$BREAK" "$F"
if cmp -s "$F" /tmp/break.orig; then echo "BREAK changed nothing in $F"; exit 2; fi
diff /tmp/break.orig "$F" > $OUT/break.diff; cat $OUT/break.diff
timeout ${BREAK_S:-240} python3 -m pytest -q -s -p no:cacheprovider $T -k "$K" > $OUT/broken.txt 2>&1; broken=$?
cp /tmp/break.orig "$F"
echo "broken: rc=$broken ${SECONDS}s"; grep -E "^FAILED|passed|failed" $OUT/broken.txt | tail -6
timeout ${BREAK_S:-240} python3 -m pytest -q -s -p no:cacheprovider $T -k "$K" > $OUT/restored.txt 2>&1; restored=$?
echo "restored: rc=$restored ${SECONDS}s"; grep -E "passed|failed" $OUT/restored.txt | tail -2
if [ $broken -ne 0 ] && [ $restored -eq 0 ]; then echo "break caught"; else echo "break NOT caught"; exit 1; fi
