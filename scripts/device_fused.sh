#!/usr/bin/env bash
# Device recipe (perf-notes v26): the step's KV-cache write fused into the decode kernel, on one warm
# host in two back-to-back calls (it keeps /tmp between them).
#   STAGE=check  carry .offline (and .vllm/part1: unpacked for the next call): the GPU correctness test
#                of the fused write (tests/test_gpu_correctness.py -k fused_kv), the study's package
#                exported and installed as `workbench e2e` installs it, tests/export_check.py --check-only
#                on it (every variant, graph-bound, the fused write), then scripts/probe_fused_write.py:
#                the kernel alone / after a write kernel / with the write fused, in-graph, FA3 beside.
#   STAGE=e2e    carry .vllm/part2: `workbench e2e` CUSTOM (fused) + FLASH_ATTN, then CUSTOM again with
#                WB_FUSED_KV_WRITE=0 (vLLM's write kernel before each layer) on the same FLASH_ATTN run
#                (its folder copied, CUSTOM's result dropped); prints the three side by side.
#                E2E_BATCHES (1,8,32,64) x E2E_CONTEXTS (1k,4k); SEED: FLASH_ATTN's attention shares.
# Usage: DB=results/h200-2026-11-30-s23/9-band-worst/studies-llama-3.1-8b.db.gz STAGE=check bash scripts/device_fused.sh
#        SEED=results/h200-2026-11-29-band/e2e.json.gz BENCH_JSON=bench-e2e.json STAGE=e2e bash scripts/device_fused.sh
set -uo pipefail
SECONDS=0
source scripts/device_env.sh
export COLUMNS=200
W=/tmp/wbe2e; mkdir -p $W
STUDY=${STUDY:-h200-train}
case ${STAGE:-check} in
check)
  [ -d .vllm/part1 ] && { source scripts/vllm_activate.sh .vllm > $OUT/vllm-part1.txt 2>&1 || true; tail -2 $OUT/vllm-part1.txt; }
  fa3_only || echo "FA3 not carried: the probe runs without it"
  timeout 200 python3 -m pytest -q -s -p no:cacheprovider tests/test_gpu_correctness.py -k fused_kv > $OUT/gputest-fused.txt 2>&1
  echo "gputest rc=$? ${SECONDS}s"; grep -E "^\[|passed|failed|Error" $OUT/gputest-fused.txt | head -20
  db_copy "${DB:?}" $W/studies.db
  python3 -m workbench export --study $STUDY --storage sqlite:///$W/studies.db --out $W/pkg --json > $OUT/export.json 2> $OUT/export.err
  echo "export rc=$? ${SECONDS}s"; tail -2 $OUT/export.err
  python3 - <<'PY' > $OUT/install.txt 2>&1
from pathlib import Path
from workbench.e2e.install import install_package
p = install_package("/tmp/wbe2e/pkg", "/tmp/wbe2e/run-fused/site", log=Path("/tmp/wbe2e/install.log"))
print(p.to_dict())
PY
  echo "install rc=$? ${SECONDS}s"; tail -2 $OUT/install.txt
  PYTHONPATH=$W/run-fused/site:${PYTHONPATH:-} timeout 200 python3 tests/export_check.py $W/pkg $OUT/export-check.json --check-only \
    > $OUT/export-check.txt 2>&1
  echo "export_check rc=$? ${SECONDS}s"; grep -E "fused|graph-bound|worst|Error" $OUT/export-check.txt | tail -6
  [ "${SKIP_PROBE:-0}" = 1 ] && { pack_out fused-check; exit 0; }
  STUDY=$STUDY DB=$W/studies.db timeout $((590 - SECONDS)) python3 scripts/probe_fused_write.py $OUT/probe-fused.json \
    ${SHAPES:-b1x1024 b8x1024 b32x1024 b64x1024 b8x4096 b32x4096} > $OUT/probe-fused.txt 2>&1
  echo "probe rc=$? ${SECONDS}s"; grep -v Warning $OUT/probe-fused.txt | tail -9
  ;;
e2e)
  source scripts/vllm_activate.sh .vllm || { echo "vLLM bundle incomplete"; exit 3; }
  [ -n "${BENCH_JSON:-}" ] && cp "$BENCH_JSON" $W/bench-e2e.json
  e2e() {  # RUN BACKENDS [env...]
    local run=$1 be=$2; shift 2
    env "$@" timeout $((590 - SECONDS)) python3 -m workbench e2e --package $W/pkg --bench $W/bench-e2e.json \
      --bench-ref ${BENCH_REF:-fa3-packed} --out $W/$run ${SEED:+--shares-from $SEED} --backends $be --share-backends none \
      --steps ${STEPS:-128} --timeout ${CHILD_S:-250} --batches ${E2E_BATCHES:-1,8,32,64} --contexts ${E2E_CONTEXTS:-1k,4k} \
      > $OUT/e2e-$run.txt 2> $OUT/e2e-$run.err
    echo "e2e $run rc=$? ${SECONDS}s"; grep -E "^\[|tok/s" $OUT/e2e-$run.err | tail -12
  }
  e2e run-fused CUSTOM,FLASH_ATTN
  rm -rf $W/run-sep; cp -r $W/run-fused $W/run-sep
  python3 - $W/run-sep/e2e.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); d["results"].pop("CUSTOM", None); json.dump(d, open(sys.argv[1], "w"))
PY
  rm -f $W/run-sep/backends/CUSTOM.json
  e2e run-sep CUSTOM WB_FUSED_KV_WRITE=0
  python3 - $W/run-fused/e2e.json $W/run-sep/e2e.json <<'PY'
import json, sys
def pts(path, b):
    d = json.load(open(path))
    return {f"b{p['batch']}x{p['context']}": p for p in d.get("results", {}).get(b, {}).get("points", [])}
f, fu, se = pts(sys.argv[1], "FLASH_ATTN"), pts(sys.argv[1], "CUSTOM"), pts(sys.argv[2], "CUSTOM")
print(f"{'point':>10} {'FA ITL':>8} {'fused ITL':>9} {'sep ITL':>8} {'fused/FA':>9} {'sep/FA':>7} {'sep/fused':>9}  (tok/s ratios; ITL ms)")
for k in sorted(f, key=lambda s: tuple(int(x) for x in s[1:].split("x"))):
    a, b, c = f[k], fu.get(k, {}), se.get(k, {})
    r = lambda x: x.get("tok_s", float("nan")) / a["tok_s"] if x.get("tok_s") else float("nan")
    print(f"{k:>10} {a.get('itl_mean_ms', float('nan')):8.3f} {b.get('itl_mean_ms', float('nan')):9.3f} "
          f"{c.get('itl_mean_ms', float('nan')):8.3f} {r(b):9.3f} {r(c):7.3f} {r(c) / r(b) if r(b) else float('nan'):9.3f}")
PY
  tar czf $OUT/e2e-runs.tgz -C $W run-fused/e2e.json run-fused/logs run-fused/backends run-sep/e2e.json run-sep/logs run-sep/backends 2>/dev/null
  ;;
esac
pack_out fused-${STAGE:-check}
