"""The exported backend against vLLM 0.33.0's real classes, on CPU: a throwaway venv gets the
vllm wheel without its dependencies (vLLM pins torch 2.14; the local torch 2.13 CPU wheel is
used instead) plus the few packages needed to import vllm.v1.attention.backend and its registry.
Skipped only when the package registry cannot be reached (and says so)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VLLM = "vllm==0.33.0"
DEPS = ["torch==2.13.0", "packaging", "numpy", "psutil", "pyzmq", "urllib3", "regex", "transformers"]


def _venv() -> Path:
    from workbench.config.paths import cache_dir
    d = Path(os.environ.get("WORKBENCH_VLLM_VENV") or cache_dir() / "vllm-0.33.0-venv")
    py = d / "bin" / "python"
    if (d / ".ready").exists():
        return py
    subprocess.run([sys.executable, "-m", "venv", str(d)], check=True)
    for args in (["--no-deps", VLLM], DEPS):
        p = subprocess.run([str(py), "-m", "pip", "install", "-q", *args], capture_output=True, text=True)
        if p.returncode != 0:
            text = p.stderr + p.stdout
            if any(s in text for s in ("Could not find a version", "No matching distribution", "Failed to establish",
                                       "Temporary failure in name resolution", "Network is unreachable")):
                pytest.skip(f"package registry unreachable, cannot fetch {args[-1]}: {text.strip().splitlines()[-1]}")
            raise AssertionError(f"pip install {args} failed:\n{text[-2000:]}")
    (d / ".ready").write_text("")
    return py


def test_backend_against_vllm_classes(tmp_path):
    py = _venv()
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path)}
    out = tmp_path / "pkg"
    p = subprocess.run([sys.executable, "-m", "workbench", "export", "--study", "h100-llama-3.1-8b-tp1-bf16-blk16-default",
                        "--storage", f"sqlite:///{ROOT / 'tests/fixtures/h100-2026-11-21/studies.db'}", "--out", str(out),
                        "--json"], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    pkg = json.loads(p.stdout)["package"]
    probe = subprocess.run([str(py), str(ROOT / "tests/vllm_probe.py"), str(out), pkg], capture_output=True, text=True)
    assert probe.returncode == 0, probe.stdout + probe.stderr[-3000:]
    r = json.loads(probe.stdout.strip().splitlines()[-1])
    assert r["vllm"] == "0.33.0" and r["ok"]
    assert r["abstract_left"] == [] and r["signature_mismatches"] == []
    assert r["registered_path"] == f"{pkg}.vllm_backend.WorkbenchDecodeBackend"
    assert r["head_sizes"] == [128] and r["block_sizes"] == [16]
