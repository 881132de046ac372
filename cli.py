"""The `workbench` command (top-level shim, as the product brief asks): the commands live in
workbench/cli/. `python cli.py ARGS` runs the same as `workbench ARGS`."""
from workbench.cli import app, main

__all__ = ["app", "main"]

if __name__ == "__main__":
    main()
