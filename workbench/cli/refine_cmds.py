"""`workbench refine`: settle each bucket's close calls off its centre (tune.refine)."""
from __future__ import annotations

import json
from typing import Optional

import typer

from workbench.cli.app import app, err, out
from workbench.tune.refine import GRAPH_LEN, GRAPH_RULE, REFINE_ALT_MARGIN, REFINE_MARGIN, REFINE_ROUNDS, REFINE_TOP


@app.command("refine")
def refine_cmd(
    study: str = typer.Option(..., help="a tuned study"),
    storage: Optional[str] = typer.Option(None, help="its storage URL (default: the default store that holds it)"),
    margin: float = typer.Option(REFINE_MARGIN, help="candidates: within this fraction of the bucket's best at its centre"),
    top: int = typer.Option(REFINE_TOP, help="at most this many distinct variants per bucket"),
    alt_margin: float = typer.Option(REFINE_ALT_MARGIN, help="also the fastest variant of each CTA shape (heads per "
                                                             "CTA, whole or split) within this fraction at the centre "
                                                             "(0: none); each bucket's bands of batch sizes may pick them"),
    launches: int = typer.Option(30, help="timed launches per variant, shape and round (>= 30)"),
    rounds: int = typer.Option(REFINE_ROUNDS, help="interleaved rounds per shape"),
    graph_len: int = typer.Option(GRAPH_LEN, help="graph picks: each batch row's captured launches timed graph-bound "
                                                  "at this many tokens (vLLM's max_model_len); 0: none"),
    graph_rule: str = typer.Option(GRAPH_RULE, help="a batch row's graph pick: geomean (lowest geomean over its shapes), "
                                                    "worst (the least loss at its worst shape against the fastest there) or "
                                                    "band (the row's captured batch sizes in bands, each taking the lowest "
                                                    "geomean at its own measured batch; band-worst: the least loss at its worst "
                                                    "shape there). Another rule on stored timings "
                                                    "is chosen again without measuring"),
    graph_neighbours: bool = typer.Option(True, "--graph-neighbours/--no-graph-neighbours",
                                          help="each batch row's graph candidates include its neighbouring rows' "
                                               "long-context picks (a refinement stored without them measures again)"),
    graph_split_forms: bool = typer.Option(True, "--graph-split-forms/--no-graph-split-forms",
                                           help="... and the split form of each whole-sequence pick of the row and "
                                                "its bands (same CTA work, split: a captured launch must split; a "
                                                "refinement stored without them measures again)"),
    again: bool = typer.Option(False, "--again", help="measure again even where the stored refinement has the "
                                                      "same candidates"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of tables"),
) -> None:
    """Time each bucket's close calls again at its centre and between its centre and edges (cold L2,
    interleaved), and let the fastest take the bucket; then pick per batch row the variant vLLM's
    captured decode graphs run (graph-bound at --graph-len): export, bench and tune then use them."""
    from rich.progress import Progress

    from workbench.tune.refine import refine_study
    from workbench.tune.storage import default_home, default_storage, require_optuna
    from workbench.ui.report import dispatch_table, refine_table

    require_optuna()
    storage = storage or default_home(study) or default_storage(False)
    with Progress(transient=True, console=err) as prog:
        task = prog.add_task("refine", total=None)
        ref, table, measured = refine_study(study, storage, margin=margin, top=top, launches=launches, rounds=rounds,
                                            again=again, graph_len=graph_len, graph_rule=graph_rule, alt_margin=alt_margin,
                                            graph_neighbours=graph_neighbours, graph_split_forms=graph_split_forms,
                                            progress=lambda s: prog.update(task, description=s))
    if not measured:
        err.print(f"study {study} was refined on {ref.gpu} ({ref.created}) with these candidates: shown, not "
                  f"measured again (--again to measure)", highlight=False)
    if ref.stale_rules():
        err.print(f"note: {ref.stale_rules()}", highlight=False)
    if as_json:
        print(json.dumps({"refinement": ref.to_dict(), "dispatch": table.to_dict()}, indent=1))
        return
    out.print(refine_table(ref.to_dict()))
    out.print(dispatch_table(table.to_dict()))
    changed = [r.bucket for r in ref.rows if r.changed]
    out.print(f"{len(changed)} of {len(ref.rows)} bucket(s) changed by refinement"
              + (f": {', '.join(changed)}" if changed else "")
              + (f" · graph picks changed for {sum(r.changed for r in ref.graph_rows)} of {len(ref.graph_rows)} "
                 f"batch row(s)" if ref.graph_rows else "") + f" · {ref.seconds:.0f} s · saved on study {study}",
              highlight=False)
