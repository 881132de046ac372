"""Ships the top-level data directories and cli.py inside the `workbench` package of a wheel.

kernels/, profiles/ and tuning/ are data, not Python packages: they land in
site-packages/workbench/data/ (generic names must not reach site-packages); cli.py becomes
workbench/cli.py. A source checkout or editable install reads them from the repository root.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DATA_DIRS = ("kernels", "profiles", "tuning")


class BuildPyWithData(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        pkg = Path(self.build_lib) / "workbench"
        shutil.copy2(ROOT / "cli.py", pkg / "cli.py")
        for name in DATA_DIRS:
            dest = pkg / "data" / name
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(ROOT / name, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildPyWithData})
