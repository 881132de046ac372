"""A non-editable wheel carries kernels/, profiles/, tuning/ and cli.py inside `workbench`."""
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
    assert "workbench/cli.py" in names and "workbench/data/kernels/decode.cu" in names
    assert "workbench/data/tuning/spaces/default.yaml" in names
    assert not any(n.startswith(("kernels/", "tuning/", "profiles/", "cli.py")) for n in names)
    entry = [n for n in names if n.endswith("entry_points.txt")]
    assert "workbench = workbench.__main__:main" in zipfile.ZipFile(wheel).read(entry[0]).decode()


def test_unpacked_wheel_finds_its_data(wheel, tmp_path):
    zipfile.ZipFile(wheel).extractall(tmp_path)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from workbench.paths import kernels_dir, tuning_dir;"
            "from workbench.space import load_space; print(kernels_dir()); print(load_space().name)")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert str(tmp_path) in r.stdout and "default" in r.stdout
    r = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                        "from workbench.__main__ import _load_cli; print(_load_cli().__name__)", str(tmp_path)],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "workbench.cli", r.stderr
