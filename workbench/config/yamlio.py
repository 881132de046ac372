"""YAML loading with errors that name the file and line."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError


def load_yaml(path: str | Path) -> Any:
    import yaml

    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise WorkbenchError(f"{p}: file not found") from None
    except OSError as e:
        raise WorkbenchError(f"{p}: cannot read ({e.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{p}:{mark.line + 1}:{mark.column + 1}" if mark else str(p)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise WorkbenchError(f"{where}: broken YAML ({problem}); fix the file and retry") from None
