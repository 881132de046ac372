"""Install an exported package (its source tree or wheel) into a site directory of its own.

`pip install --no-deps --no-build-isolation --no-index --target SITE SRC`: nothing is fetched (the
GPU hosts have no registry), the CUDA extension of a source tree builds against the torch and nvcc
installed here, and the dist-info lands beside the package, so vLLM finds the
`vllm.general_plugins` entry point through importlib.metadata once SITE is on PYTHONPATH (the
children get it there). A stamp file skips reinstalling the same source on a resumed run.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

PLUGIN_GROUP = "vllm.general_plugins"


@dataclass(frozen=True)
class InstalledPackage:
    source: str
    site_dir: str
    dist: str
    version: str
    entry_points: list[str] = field(default_factory=list)    # "name = module:attr" of vllm.general_plugins
    reused: bool = False

    @property
    def name(self) -> str:
        return self.dist.replace("-", "_")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["name"] = self.name
        return d


def source_stamp(src: Path) -> dict[str, Any]:
    """Identifies a source: its path and the newest modification time of its files."""
    def built(p: Path) -> bool:           # what a build writes into the tree does not change the source
        rel = p.relative_to(src).parts
        return rel[0] in ("build", "dist") or any(x == "__pycache__" or x.endswith(".egg-info") for x in rel) \
            or p.suffix == ".so"

    files = [src] if src.is_file() else [p for p in src.rglob("*") if p.is_file() and not built(p)]
    return {"source": str(src.resolve()), "mtime": max((p.stat().st_mtime for p in files), default=0.0),
            "files": len(files)}


def plugins_in(site_dir: Path) -> list[tuple[str, str, list[str]]]:
    """(dist name, version, ["name = value", ...]) of every distribution in site_dir with a vLLM plugin."""
    from importlib.metadata import distributions
    out = []
    for d in distributions(path=[str(site_dir)]):
        eps = [f"{e.name} = {e.value}" for e in d.entry_points if e.group == PLUGIN_GROUP]
        if eps:
            out.append((d.metadata["Name"], d.version, eps))
    return out


def install_package(src: str | Path, site_dir: str | Path, *, python: str = sys.executable,
                    log: Path | None = None) -> InstalledPackage:
    s, site = Path(src), Path(site_dir)
    if not s.exists():
        raise WorkbenchError(f"package {s} not found: pass the folder `workbench export` wrote, or its wheel")
    if s.is_file() and s.suffix != ".whl":
        raise WorkbenchError(f"{s}: not a wheel; pass the export folder or a .whl")
    if s.is_dir() and not ((s / "pyproject.toml").exists() or (s / "setup.py").exists()):
        raise WorkbenchError(f"{s} holds no pyproject.toml / setup.py: pass the folder `workbench export` wrote")
    stamp_file = site / ".wb-install.json"
    stamp = source_stamp(s)
    if stamp_file.exists():
        try:
            same = json.loads(stamp_file.read_text()) == stamp
        except ValueError:
            same = False
        found = plugins_in(site) if same else []
        if same and len(found) == 1:
            dist, version, eps = found[0]
            return InstalledPackage(source=str(s), site_dir=str(site), dist=dist, version=version, entry_points=eps,
                                    reused=True)
    if site.exists():
        shutil.rmtree(site)
    site.mkdir(parents=True)
    cmd = [python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--no-compile",
           "--target", str(site), str(s)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"$ {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-1200:]
        raise WorkbenchError(f"installing {s} failed (pip exit {proc.returncode}; nvcc and a CUDA torch are needed "
                             f"to build a source tree){f' — log {log}' if log else ''}:\n{tail}")
    found = plugins_in(site)
    if len(found) != 1:
        raise WorkbenchError(f"{s} installed, but {len(found)} distributions in {site} declare a "
                             f"{PLUGIN_GROUP} entry point (expected 1): is it a `workbench export` package?")
    dist, version, eps = found[0]
    stamp_file.write_text(json.dumps(stamp))
    return InstalledPackage(source=str(s), site_dir=str(site), dist=dist, version=version, entry_points=eps)
