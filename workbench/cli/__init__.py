"""The `workbench` command: parse arguments, call the library, render. No logic here."""
from workbench.cli import (bench_cmds, build_cmds, doctor_cmds, e2e_cmds, inspect_cmds,  # noqa: F401  (register commands)
                           measure_cmds, refine_cmds, tune_cmds)
from workbench.cli.app import app, main

__all__ = ["app", "main"]
