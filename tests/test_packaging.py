"""A non-editable wheel carries kernels/, profiles/ and tuning/ inside `workbench` (as workbench/data/)
and the CLI package; nothing with a generic name reaches site-packages."""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {r.stderr.strip().splitlines()[-1:]}")
    return next(out.glob("workbench-*.whl"))


def test_wheel_contents(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "workbench/cli/__init__.py" in names and "workbench/data/kernels/decode.cu" in names
    assert "workbench/data/tuning/spaces/default.yaml" in names
    assert "workbench/data/kernels/export/pkg/vllm_backend.py" in names and "workbench/data/profiles/gpus/h100.yaml" in names
    assert not any(n.startswith(("kernels/", "tuning/", "profiles/", "cli.py")) for n in names)
    entry = [n for n in names if n.endswith("entry_points.txt")]
    assert "workbench = workbench.__main__:main" in zipfile.ZipFile(wheel).read(entry[0]).decode()


def test_unpacked_wheel_finds_its_data(wheel, tmp_path):
    zipfile.ZipFile(wheel).extractall(tmp_path)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from workbench.config.paths import kernels_dir, tuning_dir;"
            "from workbench.kernel.space import load_space; print(kernels_dir()); print(load_space().name)")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert str(tmp_path) in r.stdout and "default" in r.stdout
    r = subprocess.run([sys.executable, "-m", "workbench", "--version"], capture_output=True, text=True,
                       cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert r.returncode == 0 and r.stdout.startswith("workbench "), r.stderr
