"""The Typer app, its consoles and the entry point; commands live in the sibling modules."""
from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.text import Text

from workbench import __version__
from workbench.errors import WorkbenchError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Profile and autotune vLLM's paged-attention decode kernel.")
out = Console(width=None if sys.stdout.isatty() else 160)  # pipes: no 80-column squeeze
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        out.print(f"workbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="print the version and exit")) -> None:
    """Profile and autotune vLLM's paged-attention decode kernel."""


def main() -> None:
    # typer (standalone) handles usage errors itself (exit 2); ours are WorkbenchError
    try:
        app()
    except WorkbenchError as e:
        from workbench.tune.storage import mask_url      # whoever raised it: no password on the screen
        # soft wrap: a path or command in the message stays one copyable piece in a log or pipe
        err.print(Text("error: ", style="bold red") + Text(mask_url(str(e))), soft_wrap=True)
        raise SystemExit(2)
    except KeyboardInterrupt:
        err.print("aborted")
        raise SystemExit(130)

