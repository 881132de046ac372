"""Tuning on a real GPU: broken variants (a write 4 TB out of bounds, wrong values) fail their
trials only; the worker restarts; the study goes on and never picks them."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.gpu          # conftest skips it, saying why, without a CUDA device


def test_faulty_variants_fail_alone(tmp_path):
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path)}
    cmd = [sys.executable, "-m", "workbench", "tune", "--gpu", "auto", "--model", "llama-3.1-8b",
           "--space", str(ROOT / "tests/fixtures/fault-space.yaml"), "--suite", "quick", "--profile", "none",
           "--trials", "12", "--trials-per-batch", "4", "--trial-timeout", "30", "--study", "faults", "--seed", "3", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    s = json.loads(proc.stdout)
    res = Path(os.environ.get("WB_RESULTS", tmp_path))
    res.mkdir(parents=True, exist_ok=True)          # run alone, no earlier GPU test made it
    (res / "gpu-faults-summary.json").write_text(json.dumps(s, indent=1))
    reasons = " ".join(f["reason"] for f in s["failures"])
    assert s["trials_run"] == 12
    assert "crash" in reasons or "launch" in reasons, reasons        # the illegal address was caught
    assert "check" in reasons, reasons                               # the wrong values were caught
    assert s["complete"] >= 1 and s["best"]["variant"].get("fault", "none") == "none"
    assert all(r["variant"].get("fault", "none") == "none" for r in s["top"])
    assert all(r["variant"].get("fault", "none") == "none" for r in s["dispatch"]["rows"])
