"""`workbench refine`: settle each bucket's close calls off its centre (tune.refine)."""
from __future__ import annotations

import json
from typing import Optional

import typer

from workbench.cli.app import app, err, out
from workbench.errors import WorkbenchError
from workbench.tune.refine import REFINE_MARGIN, REFINE_ROUNDS, REFINE_TOP


@app.command("refine")
def refine_cmd(
    study: str = typer.Option(..., help="a tuned study"),
    storage: Optional[str] = typer.Option(None, help="its storage URL (default: the default store that holds it)"),
    margin: float = typer.Option(REFINE_MARGIN, help="candidates: within this fraction of the bucket's best at its centre"),
    top: int = typer.Option(REFINE_TOP, help="at most this many distinct variants per bucket"),
    launches: int = typer.Option(30, help="timed launches per variant, shape and round (>= 30)"),
    rounds: int = typer.Option(REFINE_ROUNDS, help="interleaved rounds per shape"),
    again: bool = typer.Option(False, "--again", help="measure again even where the stored refinement has the "
                                                      "same candidates"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of tables"),
) -> None:
    """Time each bucket's close calls again at its centre and between its centre and edges (cold L2,
    interleaved), and let the fastest take the bucket: export, bench and tune then use it."""
    from rich.progress import Progress

    from workbench.measure.gpuinfo import device_names
    from workbench.measure.suite import shape_label
    from workbench.tune.dispatch import build_dispatch
    from workbench.tune.refine import (ATTR, REFINE_KEEP, candidates, gpu_timer, run_refine, stored)
    from workbench.tune.storage import completed, default_home, default_storage, open_study, references, require_optuna
    from workbench.ui.report import dispatch_table, refine_table

    if not 0 <= margin <= 0.5:
        raise WorkbenchError("--margin must be between 0 and 0.5")
    if top < 1 or rounds < 1 or launches < 30:
        raise WorkbenchError("--top and --rounds must be >= 1, --launches >= 30")
    require_optuna()
    storage = storage or default_home(study) or default_storage(False)
    h = open_study(study, storage, None, create=False)
    cfg = h.study.user_attrs.get("config")
    if not cfg:
        raise WorkbenchError(f"study {study!r} was not made by `workbench tune` (no config on it)")
    if cfg.get("emulation"):
        raise WorkbenchError(f"study {study!r} was tuned under an emulation of {cfg['gpu']}: refine times on the "
                             "attached GPU as it is, so it does not refine emulated studies")
    done = completed(h.study)
    if not done:
        raise WorkbenchError(f"study {study!r} has no completed trial: run `workbench tune` first")
    base = build_dispatch(study, cfg, done, references(h.study))          # the centre's picks, unrefined
    picks = {shape_label(r.bucket["batch"], r.bucket["context"]): r.key for r in base.rows}
    have = stored(h.study)
    same = have is not None and not again and all(
        {c.key for c in candidates(done, r.bucket, have.margin, have.top)} <= {c.key for c in r.candidates}
        for r in have.rows) and {r.bucket for r in have.rows} == set(picks) and have.margin == margin \
        and have.top == top
    if same:
        ref = have
        err.print(f"study {study} was refined on {have.gpu} ({have.created}) with these candidates: shown, not "
                  f"measured again (--again to measure)", highlight=False)
    else:
        devs = device_names()
        if not devs:
            raise WorkbenchError("no NVIDIA GPU visible: `workbench refine` measures on a GPU")
        if cfg.get("device_name") and devs[0] != cfg["device_name"]:
            raise WorkbenchError(f"study {study!r} was tuned on {cfg['device_name']}, this GPU is {devs[0]}: "
                                 "refine it on its own GPU")
        with Progress(transient=True, console=err) as prog:
            task = prog.add_task("refine", total=None)
            ref = run_refine(study, cfg, done, study_picks=picks, gpu=devs[0], margin=margin, top=top,
                             keep=REFINE_KEEP, launches=launches, rounds=rounds, timer=gpu_timer(cfg["arch"]),
                             progress=lambda s: prog.update(task, description=s))
        h.study.set_user_attr(ATTR, ref.to_dict())
    table = build_dispatch(study, cfg, done, references(h.study), refined=ref.picks())
    if as_json:
        print(json.dumps({"refinement": ref.to_dict(), "dispatch": table.to_dict()}, indent=1))
        return
    out.print(refine_table(ref.to_dict()))
    out.print(dispatch_table(table.to_dict()))
    changed = [r.bucket for r in ref.rows if r.changed]
    out.print(f"{len(changed)} of {len(ref.rows)} bucket(s) changed by refinement"
              + (f": {', '.join(changed)}" if changed else "") + f" · {ref.seconds:.0f} s · saved on study {study}",
              highlight=False)
