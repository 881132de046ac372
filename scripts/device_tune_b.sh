#!/usr/bin/env bash
# Device call B for issue 4: the main job, exactly as a user runs it, in a pseudo-terminal
# (so the live TUI path runs); final screen, summary JSON and study DB come back in $OUT.
set -uo pipefail
source scripts/device_env.sh
export WORKBENCH_CACHE=/tmp/wbcache WORKBENCH_HOME=/tmp/wbhome PYTHONUNBUFFERED=1 COLUMNS=150 LINES=60
SECONDS=0
if command -v script >/dev/null; then
  script -qfec "python3 -m workbench tune --gpu h100 --model llama-3.1-8b" /tmp/tui.log > /dev/null
else
  python3 -m workbench tune --gpu h100 --model llama-3.1-8b > /tmp/tui.log 2>&1
fi
echo "tune rc=$? wall ${SECONDS}s"
d=/tmp/wbhome/runs/h100-llama-3.1-8b-tp1-bf16-blk16-default
cp $d/last-screen.txt $OUT/
# the end of the terminal stream (top-5, dispatch table, best) without escape codes
sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' /tmp/tui.log | tr -d '\r' | tail -60 > $OUT/tune-tail.txt
python3 -m workbench tune --gpu h100 --model llama-3.1-8b --trials 1 --json > $OUT/summary.json 2> $OUT/resume.txt
cp /tmp/wbhome/studies.db $OUT/
tail -3 $OUT/resume.txt; grep -c . $OUT/resume.txt
cat $OUT/tune-tail.txt | tail -45
