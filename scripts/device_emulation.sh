#!/usr/bin/env bash
# Device recipe (issue 16): emulating a smaller Hopper on a bigger one, checked on an H200 in one run
# (~6 minutes at most; every stage has its own timeout and a failed stage does not stop the next).
#   1 green contexts: SMs obtained for 8..132, our kernels (and a CUDA graph) confined to the group
#   2 read ceilings: full GPU, 80 SMs, 80 SMs + throttle calibrated to the H20 (spec x efficiency,
#     4.0 TB/s) and the H100 (3.02 TB/s measured); 132 SMs + shared throttle + 10 MB L2 hold (H100);
#     warm-read bandwidth by working set (the L2 hold's knee)
#   3 SM axis alone: the tune seeds on the quick suite at 132 vs 72 (66 asked) vs 80 SMs, with the
#     wave count's prediction
#   4 `workbench tune --gpu h20` (12 trials, quick suite), `export` (its label), `bench --gpu h20`
# Prerequisites: run from the repository root with .offline/ (and .peers/ for FA3 / FlashInfer)
# carried. Usage: bash scripts/device_emulation.sh    Results: $OUT (JSON per stage, all.tgz, table).
set -uo pipefail
source scripts/device_env.sh
source scripts/peers_activate.sh .peers >/dev/null 2>&1 || echo "peers bundle missing: bench peers will say why"
export COLUMNS=200
FINAL=$OUT; W=/tmp/emuout; rm -rf $W; mkdir -p $W; export OUT=$W      # at most 8 files come back: gathered at the end
SECONDS=0
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader | tee $W/gpu.txt
python3 -c "import cuda.bindings, torch; print('cuda-bindings', cuda.bindings.__version__, 'torch', torch.__version__)" | tee -a $W/gpu.txt
stage() {   # stage NAME SECONDS CMD...: run with a timeout, log, keep going
  local name=$1 t=$2; shift 2
  if [ $SECONDS -gt ${BUDGET_S:-340} ]; then echo "$name skipped: ${SECONDS}s spent"; return; fi
  timeout $t "$@" > $W/$name.log 2> $W/$name.err
  echo "$name rc=$? ${SECONDS}s"; tail -3 $W/$name.err | sed 's/^/  /'
}
stage green 45 python3 scripts/device_emulation.py green
stage ceilings 75 python3 scripts/device_emulation.py ceilings
stage smaxis 60 python3 scripts/device_emulation.py smaxis
STUDY=h20-emu-h200-llama-3.1-8b-tp1-bf16-blk16-quick
stage tune 120 python3 -m workbench tune --gpu h20 --model llama-3.1-8b --suite quick --trials 12 --timeout 60 \
  --profile none --storage sqlite:///$W/emu.db --json
python3 - <<'PY' > $W/tune-summary.txt 2>&1
import json, os
d = json.load(open(os.environ["OUT"] + "/tune.log"))
print("study", d.get("study"), "complete", d.get("complete"), "failed", d.get("failed"))
for n in d.get("notes", [])[:12]:
    print("note:", n[:400])
print("best", (d.get("best") or {}).get("name"), (d.get("best") or {}).get("geomean_us"))
for r in ((d.get("dispatch") or {}).get("rows") or [])[:8]:
    print("  ", r.get("bucket"), r.get("name", r.get("variant")), r.get("median_us"))
PY
cat $W/tune-summary.txt | head -24
stage export 30 python3 -m workbench export --study $STUDY --storage sqlite:///$W/emu.db --out /tmp/emu-pkg
grep -m3 -i "emulation" /tmp/emu-pkg/README.md 2>/dev/null | sed 's/^/  README: /'
cp /tmp/emu-pkg/README.md $W/export-README.md 2>/dev/null
stage bench 90 python3 -m workbench bench --gpu h20 --study $STUDY --storage sqlite:///$W/emu.db --suite quick \
  --peers simple,tuned,fa3,flashinfer --launches 30 --out $W/bench.json
python3 scripts/device_emulation.py table > $W/table.txt 2>&1
# back: the stage JSONs, the bench, everything else in one archive, the table
for f in emu-green.json emu-ceilings.json emu-smaxis.json bench.json table.txt; do cp $W/$f $FINAL/ 2>/dev/null; done
tar czf $FINAL/all.tgz -C $W --exclude=emu.db . 2>/dev/null; cp $W/emu.db $FINAL/ 2>/dev/null
echo "total ${SECONDS}s"
grep -E "tuned vs|read ceiling inside|note: measured for" $W/bench.log 2>/dev/null | head -6
cat $W/table.txt
