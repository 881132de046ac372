"""The `workbench` command: parse arguments, call the library, render. No logic here."""
from workbench.cli import bench_cmds, build_cmds, doctor_cmds, inspect_cmds, measure_cmds, tune_cmds  # noqa: F401  (register commands)
from workbench.cli.app import app, main

__all__ = ["app", "main"]
