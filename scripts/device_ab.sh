#!/usr/bin/env bash
# Device recipe: a kernel change A/B in one call. The "before" kernel source sits in .ab/decode.cu
# (ignored; write it with `mkdir -p .ab && git show HEAD:kernels/decode.cu > .ab/decode.cu`, carry
# [".offline", ".peers", ".ab"]). GPU correctness of the working tree's kernel first (TESTS, a -k
# expression), then probe_variants on SUITE for KNOBS with the new source, the old one, and the
# new one again (FA3 timed beside each, so each pass is read as x FA3 and host drift shows as a
# difference between the two "new" passes). Prints one line per shape: x FA3 new / old / new.
# The device returns at most 8 files per call: tar $OUT into one file at the end of the command.
set -uo pipefail
source scripts/device_env.sh
peers_or_fa3 >/dev/null 2>&1
export COLUMNS=200 WB_RESULTS=$OUT
SUITE=${SUITE:-bench}
KNOBS=${KNOBS:-"threads=128,heads_per_cta=4,partition=auto,stages=3,mma=1;threads=256,heads_per_cta=4,partition=auto,stages=4,mma=1;threads=256,heads_per_cta=2,partition=auto,stages=3,mma=1"}
SECONDS=0
if [ -n "${TESTS:-}" ]; then
  timeout ${TESTS_S:-240} python3 -m pytest -q -s -p no:cacheprovider tests/test_gpu_correctness.py -k "$TESTS" \
    > $OUT/ab-tests.txt 2>&1
  echo "tests rc=$? ${SECONDS}s"; grep -E "^\[|passed|failed|Error" $OUT/ab-tests.txt | head -24
fi
[ -f .ab/decode.cu ] || { echo "no .ab/decode.cu: nothing to compare with"; exit 1; }
cp kernels/decode.cu /tmp/ab-new.cu
probe() {   # $1 = label
  timeout ${PROBE_S:-150} python3 scripts/probe_variants.py $OUT/probe-$1.json $SUITE "$KNOBS" > $OUT/probe-$1.txt 2>&1
  echo "probe $1 rc=$? ${SECONDS}s"; grep -E "^\[" $OUT/probe-$1.txt
}
probe new1
cp .ab/decode.cu kernels/decode.cu; probe old; cp /tmp/ab-new.cu kernels/decode.cu
probe new2
python3 - "$OUT" <<'PY'
import json, math, sys
d = {k: json.load(open(f"{sys.argv[1]}/probe-{k}.json")) for k in ("new1", "old", "new2")}
names = d["new1"]["variants"]
print(f"{'shape':<16}" + "".join(f"{'[%d] new/old/new x FA3' % i:>28}" for i in range(len(names))))
logs = {k: {n: [] for n in names} for k in d}
for rows in zip(*(d[k]["rows"] for k in d)):
    line = f"{rows[0]['shape']:<16}"
    for n in names:
        xs = [r["fa3"]["us"] / r[n]["us"] for r in rows]
        for k, x in zip(d, xs): logs[k][n].append(math.log(x))
        line += f"{xs[0]:>12.3f}{xs[1]:>8.3f}{xs[2]:>8.3f}"
    print(line)
for i, n in enumerate(names):
    g = {k: math.exp(sum(v[n]) / len(v[n])) for k, v in logs.items()}
    print(f"[{i}] {n}: geomean x FA3 new {g['new1']:.3f} / old {g['old']:.3f} / new {g['new2']:.3f}")
PY
