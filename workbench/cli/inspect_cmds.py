"""`workbench inspect`: results, ncu/nsys captures and studies."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from workbench.cli.app import app, out
from workbench.errors import WorkbenchError


@app.command("inspect")
def inspect_cmd(
    target: str = typer.Argument(..., help="results .json, .ncu-rep, ncu raw .csv, nsys .sqlite/.nsys-rep, "
                                           "or study:NAME[#TRIAL]"),
    storage: Optional[str] = typer.Option(None, help="storage of a study: target (default: the default store that "
                                                     "holds it, SQLite or journal, in the user data dir)"),
    compare: Optional[list[str]] = typer.Option(None, "--compare", help="two variant labels: --compare baseline --compare paper"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="PNG: latency and demand L2 hit vs prefetch distance"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of tables"),
) -> None:
    """Show L2 metrics (demand hit rate, DRAM bytes, duration, efficiency) of a capture. No GPU needed."""
    from workbench.ui import inspect as ins
    from workbench.ui.plots import results_plot
    from workbench.ui.report import results_table, rows

    kind, data = ins.load_target(target, storage)
    if compare and len(compare) != 2:
        raise WorkbenchError("--compare takes exactly two variant labels (give --compare twice)")
    if (compare or plot) and kind != "results":
        raise WorkbenchError("--compare and --plot need a results .json (from `workbench measure`)")
    if kind == "results":
        payload = ins.compare(data, *compare) if compare else rows(data)
        if plot:
            out.print(f"plot: {results_plot(data, plot)}")
        if as_json:
            print(json.dumps(payload, indent=1))
        elif compare:
            t = Table(title=f"{compare[0]} (A) vs {compare[1]} (B)")
            for c in ("workload", "metric", "A", "B", "B/A"):
                t.add_column(c)
            for r in payload:
                f = lambda x: "–" if x is None or x != x else (f"{x:.4g}" if isinstance(x, float) else str(x))  # noqa: E731
                t.add_row(r["workload"], r["metric"], f(r["a"]), f(r["b"]), f(r["b_over_a"]))
            out.print(t)
        else:
            out.print(results_table(data))
        return
    recs = ins.ncu_rows(data) if kind == "ncu" else data if kind == "study" else [r.to_dict() for r in data]
    if as_json:
        print(json.dumps(recs, indent=1))
        return
    t = Table(title=f"{Path(target).name if kind != 'study' else target} ({kind})")
    cols = list(dict.fromkeys(k for r in recs for k in r))
    for c in cols:
        t.add_column(c)
    for r in recs:
        t.add_row(*[f"{v:.4g}" if isinstance(v, float) else "" if v is None else str(v)
                    for v in (r.get(c) for c in cols)])
    out.print(t)
