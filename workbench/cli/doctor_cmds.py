"""`workbench doctor`: can this host run the main job?"""
from __future__ import annotations

import json

import typer
from rich.table import Table
from rich.text import Text

from workbench.cli.app import app, out


@app.command("doctor")
def doctor_cmd(as_json: bool = typer.Option(False, "--json", help="print JSON instead of tables"),
               no_probe: bool = typer.Option(False, "--no-probe", help="skip running ncu/nsys on a tiny program")) -> None:
    """Check this host: GPU, driver, CUDA, nvcc, ncu (+ counter permission), nsys, Python packages."""
    from workbench.doctor import blocking, main_job_ready, run_checks

    checks = run_checks(probe_profilers=not no_probe)
    ready = main_job_ready(checks)
    missing = [c.name for c in blocking(checks)]
    if as_json:
        print(json.dumps({"ready": ready, "missing": missing, "checks": [c.to_dict() for c in checks]}, indent=1))
    else:
        t = Table(title="workbench doctor")
        for c in ("check", "status", "detail", "how to fix"):
            t.add_column(c)
        colour = {"ok": "green", "warn": "yellow", "missing": "red"}
        for c in checks:
            t.add_row(c.name + (" *" if c.required else ""), f"[{colour[c.status]}]{c.status}[/]", Text(c.detail), Text(c.fix))
        out.print(t)
        out.print("* needed by the main job (`workbench tune`, default --profile ncu). " +
                  ("Ready." if ready else f"The main job cannot run here: {', '.join(missing)} "
                   f"{'is' if len(missing) == 1 else 'are'} missing or not usable (see 'how to fix')."
                   + (" Without ncu, `workbench tune --profile none` still runs (no L2 objective)."
                      if "ncu" in missing else "")), highlight=False)
    if not ready:
        raise typer.Exit(1)
