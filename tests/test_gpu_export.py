"""The exported package on a real GPU: a short tune, `workbench export --wheel` (builds the torch
extension), install the wheel, then tests/export_check.py: ops vs the fp32 reference on every
bucket of the suite (and vLLM's v1/v2 signatures on a ragged batch), latency within 5% of
workbench's own launcher for the same variants."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.gpu          # conftest skips it, saying why, without a CUDA device


def test_exported_package_builds_matches_and_keeps_speed(tmp_path):
    res = Path(os.environ.get("WB_RESULTS", tmp_path))
    res.mkdir(parents=True, exist_ok=True)          # run first on a fresh host, nothing made it yet
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path)}
    run = lambda args, **kw: subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,  # noqa: E731
                                            text=True, env=env, **kw)
    p = run(["tune", "--gpu", "auto", "--model", "llama-3.1-8b", "--trials", "24", "--study", "exp", "--json"])
    assert p.returncode == 0, p.stderr[-3000:]
    # WB_KEEP_EXPORT=DIR keeps the package and its installed wheel for a later compute-sanitizer run
    keep = Path(os.environ.get("WB_KEEP_EXPORT", tmp_path))
    out = keep / "export"
    # the default package runs the schedule (export_check plans each step first); WB_EXPORT_FLAGS: e.g.
    # --no-graph-sched (the plain graph-bound grid) or --graph-walk
    p = run(["export", "--study", "exp", "--out", str(out), "--wheel", "--json",
             *os.environ.get("WB_EXPORT_FLAGS", "").split()])
    (res / "export-build.log").write_text((out / "build.log").read_text() if (out / "build.log").exists() else p.stderr)
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(p.stdout)
    (res / "export-tree.txt").write_text("\n".join(r["files"]))
    site = keep / "site"
    p = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), r["wheel"]],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([sys.executable, str(ROOT / "tests/export_check.py"), str(out), str(res / "export-check.json")],
                       capture_output=True, text=True, env={**env, "PYTHONPATH": f"{site}:{env.get('PYTHONPATH', '')}"})
    (res / "export-check.txt").write_text(p.stdout + p.stderr[-3000:])
    assert p.returncode == 0, p.stdout + p.stderr[-3000:]
