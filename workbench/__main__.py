"""Entry point of the `workbench` command.

An installed wheel carries cli.py as workbench/cli.py; a source checkout (or editable install)
has it at the repository root.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path


def _load_cli():
    try:
        from . import cli  # type: ignore[attr-defined]
        return cli
    except ImportError:
        path = Path(__file__).resolve().parent.parent / "cli.py"
        spec = importlib.util.spec_from_file_location("workbench_cli", path)
        if spec is None or spec.loader is None:
            raise SystemExit(f"workbench: cli.py not found at {path} (broken install?)")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod


def main() -> None:
    _load_cli().main()


if __name__ == "__main__":
    main()
