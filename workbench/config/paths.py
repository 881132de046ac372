"""Where the data directories (kernels/, profiles/, tuning/) and the caches live.

A wheel carries the data directories as `workbench.data.<name>` (setuptools' package-dir
mapping, found through importlib); a source checkout reads them from the
repository root.
"""
from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]


def data_dir(name: str) -> Path:
    import importlib
    try:                                   # installed: a data package (namespace: no __init__.py)
        for p in importlib.import_module(f"workbench.data.{name}").__path__:
            if Path(p).is_dir():
                return Path(p)
    except ModuleNotFoundError:
        pass
    if (_REPO / name).is_dir() and (_REPO / "workbench").is_dir():
        return _REPO / name
    raise FileNotFoundError(f"workbench data directory {name!r} not found (broken install?)")


def kernels_dir() -> Path:
    return data_dir("kernels")


def tuning_dir() -> Path:
    return data_dir("tuning")


def profiles_dir() -> Path:
    return data_dir("profiles")


def cache_dir() -> Path:
    """Per-user cache (cubins, ceilings); WORKBENCH_CACHE overrides."""
    env = os.environ.get("WORKBENCH_CACHE")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "workbench"
    base.mkdir(parents=True, exist_ok=True)
    return base


def user_data_dir() -> Path:
    """Per-user data (studies); WORKBENCH_HOME overrides."""
    env = os.environ.get("WORKBENCH_HOME")
    base = Path(env) if env else Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "workbench"
    base.mkdir(parents=True, exist_ok=True)
    return base
