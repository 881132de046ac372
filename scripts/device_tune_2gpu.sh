#!/usr/bin/env bash
# Issue 4 on an H200x2 host: two devices, one worker each, one study (journal file).
set -uo pipefail
source scripts/device_env.sh
export WORKBENCH_CACHE=/tmp/wbcache WORKBENCH_HOME=/tmp/wbhome PYTHONUNBUFFERED=1
nvidia-smi -L
SECONDS=0
python3 -m workbench tune --gpu h200 --model llama-3.1-8b --devices 0,1 --suite quick --trials 48 --study two-gpus > $OUT/tune-2gpu.txt 2>&1
echo "rc=$? ${SECONDS}s"
python3 - <<'PY' | tee $OUT/integrity.txt
import collections, optuna
from workbench.study import open_storage
from workbench.paths import user_data_dir
url = f"journal:///{user_data_dir() / 'studies.journal'}"
ts = optuna.load_study(study_name="two-gpus", storage=open_storage(url)).get_trials(deepcopy=False)
nums = [t.number for t in ts]
print("storage", url)
print("trials", len(ts), "unique numbers", len(set(nums)), "== 0..n-1:", sorted(nums) == list(range(len(ts))))
print("states", dict(collections.Counter(t.state.name for t in ts)))
print("per device", dict(collections.Counter(t.user_attrs.get("device") for t in ts)))
print("told with a measurement or failure", sum(("measurement" in t.user_attrs) or ("failure" in t.user_attrs) for t in ts))
print("seeds", dict(collections.Counter(t.user_attrs.get("seed") for t in ts if t.user_attrs.get("seed"))))
keys = collections.Counter(t.user_attrs.get("measurement", {}).get("key") for t in ts if "repeat_of" not in t.user_attrs and "measurement" in t.user_attrs)
print("variants measured twice (not reused)", sum(1 for k, c in keys.items() if c > 1))
PY
tail -25 $OUT/tune-2gpu.txt
