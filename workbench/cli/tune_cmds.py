"""`workbench tune`, `workbench worker` and `workbench export`."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from workbench.cli.app import app, err, out


def _run_tune(cfg, notes, replay, replay_delay, as_json) -> None:
    from workbench.tune.plan import backend_factory
    from workbench.ui.report import dispatch_table, top_table
    from workbench.tune.storage import mask_url
    from workbench.ui.tui import LiveView, PlainView
    from workbench.tune.tuner import run_tune

    live = out.is_terminal and not as_json
    view = LiveView(out) if live else PlainView(err if as_json else out)
    if not as_json:
        out.print(f"study {cfg.study} in {mask_url(cfg.storage)} · logs and captures in {cfg.workdir}")
    for n in notes:
        view({"type": "note", "text": n})
    from workbench.ui.tui import screen_text
    try:
        s = run_tune(cfg, backend_factory(cfg, replay, replay_delay), view)
    except KeyboardInterrupt:          # a second Ctrl-C: aborted mid-batch
        err.print(f"aborted: finished trials are saved; the next run re-queues the trials in flight. To resume, "
                  f"run the same command: {_same_command(cfg)}", highlight=False, soft_wrap=True)
        raise typer.Exit(130)
    finally:
        view.close()
        (cfg.workdir / "last-screen.txt").write_text(mask_url(screen_text(view.st)))
    s.notes[:0] = notes
    if as_json:
        print(json.dumps(s.to_dict(), indent=1))
        _interrupted(cfg, s)
        return
    out.print(top_table(s))
    if s.dispatch:
        out.print(dispatch_table(s.dispatch))
    if s.best:
        out.print(f"best (fastest on the Pareto front): trial #{s.best['trial']} {s.best['name']} · "
                  f"{s.best['geomean_us']:.1f} µs geomean", highlight=False)
    out.print(f"final screen: {cfg.workdir / 'last-screen.txt'}")
    out.print(f"{s.trials_run} trials measured this run ({s.repeats} repeats reused, {s.ruled_out} ruled out by the "
              f"suite unbuilt: neither counts against --trials) in {s.elapsed_s:.0f} s · study: "
              f"{s.complete} complete, {s.failed} failed · `workbench export --study {cfg.study}` next")
    _interrupted(cfg, s)


def _same_command(cfg) -> str:
    """The command line of this run (passwords masked), to resume with."""
    import shlex
    import sys

    from workbench.tune.storage import mask_url
    args = sys.argv[1:]
    if args and args[0] in ("tune", "worker"):
        return mask_url(shlex.join(["workbench", *args]))
    return f"`workbench tune ... --study {shlex.quote(cfg.study)}` as before"


def _interrupted(cfg, s) -> None:
    """Ctrl-C: say what happened and how to resume; exit 130 (the shell's code for SIGINT)."""
    if not s.interrupted:
        return
    err.print(f"interrupted after {s.trials_run} trial(s) of {cfg.trials}: finished trials are saved, "
              f"{len(s.requeued)} in flight re-queued. To resume, run the same command: {_same_command(cfg)}",
              highlight=False, soft_wrap=True)
    raise typer.Exit(130)


@app.command("tune")
def tune_cmd(
    gpu: str = typer.Option("auto", help="GPU profile (h100, h200, h20, a100, l40s) or auto"),
    model: str = typer.Option(..., help="model profile, e.g. llama-3.1-8b"),
    tp: int = typer.Option(1, help="tensor-parallel degree: heads per GPU = heads / tp"),
    dtype: str = typer.Option("bf16", help="bf16 or fp16"), block_size: int = typer.Option(16, help="KV block (page) size in tokens"),
    trials: int = typer.Option(160, help="trials that measure a variant this run (>= 1; repeats and variants the "
                                            "suite rules out are not counted; Ctrl-C stops cleanly, the same command resumes)"),
    timeout: float = typer.Option(420.0, help="seconds: no trial starts after this"),
    study: Optional[str] = typer.Option(None, help="study name (default: gpu-model-tp-dtype-block-suite)"),
    storage: Optional[str] = typer.Option(None, help="sqlite:///F, journal:///F or postgresql://... (default: the "
                                                     "default store that holds --study; a new study: SQLite in the "
                                                     "user data dir, a journal file for several devices)"),
    profile: str = typer.Option("ncu", help="ncu (L2 objective) | nsys | none"),
    devices: str = typer.Option("0", help="GPU indices, one worker each: 0,1,..."),
    allow_mismatch: bool = typer.Option(False, help="tune although the attached GPU is not --gpu (and cannot "
                                                    "emulate it): results labelled with the attached GPU"),
    emulate: Optional[bool] = typer.Option(None, "--emulate/--no-emulate",
                                           help="emulate a smaller --gpu of the same architecture on the attached "
                                                "one (its SMs in a green context, HBM throttled, L2 held); default: "
                                                "whenever the attached GPU can"),
    suite: str = typer.Option("default", help="workload suite name or YAML"),
    space: Optional[Path] = typer.Option(None, help="search space YAML"),
    trials_per_batch: int = typer.Option(8, "--trials-per-batch", help="trials asked, measured and profiled together "
                                                                       "per device (>= 1)"),
    trial_timeout: float = typer.Option(60.0, help="watchdog: seconds one trial may take (> 0)"),
    replay: Optional[Path] = typer.Option(None, help="answer from recorded measurements (no GPU)"),
    replay_delay: float = typer.Option(0.0, hidden=True),
    seed: Optional[int] = typer.Option(None, help="sampler seed"),
    as_json: bool = typer.Option(False, "--json", help="plain progress on stderr, a JSON summary on stdout"),
) -> None:
    """Search kernel variants for a GPU and model with Optuna (latency, L2 demand hit rate)."""
    from workbench.tune.plan import make_config

    cfg, notes = make_config(gpu=gpu, model=model, tp=tp, dtype=dtype, block_size=block_size, trials=trials,
                             timeout=timeout, study=study, storage=storage, profile=profile, devices=devices,
                             allow_mismatch=allow_mismatch, suite=suite, space=str(space) if space else None,
                             batch=trials_per_batch, trial_timeout=trial_timeout, replay=replay, seed=seed,
                             emulate=emulate)
    _run_tune(cfg, notes, replay, replay_delay, as_json)


@app.command("worker")
def worker_cmd(
    study: str = typer.Option(..., help="an existing study (made by `workbench tune`)"),
    storage: str = typer.Option(..., help="the study's storage URL (postgresql://... across hosts)"),
    devices: str = typer.Option("0", help="GPU indices, e.g. 0 or 0,1"), trials: int = typer.Option(64, help="trials that measure a variant (repeats and variants the suite rules out are not counted)"), timeout: float = typer.Option(420.0, help="stop after this many seconds"),
    trials_per_batch: int = typer.Option(8, "--trials-per-batch", help="trials measured together"),
    trial_timeout: float = typer.Option(60.0, help="seconds before a trial is declared hung"),
    allow_mismatch: bool = typer.Option(False, help="tune even if the attached GPU is not --gpu"),
    replay: Optional[Path] = typer.Option(None, help="answer from recorded measurements (no GPU)"),
    replay_delay: float = typer.Option(0.0, hidden=True),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of tables"),
) -> None:
    """Join a study from this host: measure trials on local GPUs with the study's own config."""
    from workbench.tune.plan import config_from_study

    cfg = config_from_study(study, storage, devices=devices, trials=trials, timeout=timeout, batch=trials_per_batch,
                            trial_timeout=trial_timeout, replay=replay, allow_mismatch=allow_mismatch)
    _run_tune(cfg, [], replay, replay_delay, as_json)


@app.command("export")
def export_cmd(
    study: str = typer.Option(..., help="a tuned study"),
    storage: Optional[str] = typer.Option(None, help="its storage URL (default: the default store that holds it, "
                                                     "SQLite or journal, in the user data dir)"),
    out_dir: Path = typer.Option(..., "--out", help="directory for the package source"),
    name: Optional[str] = typer.Option(None, help="Python package name (default wb_<gpu>_<model>)"),
    wheel: bool = typer.Option(False, "--wheel", help="also build the wheel (needs CUDA torch and nvcc here)"),
    gpu: Optional[str] = typer.Option(None, help="refuse a study tuned for another GPU profile"),
    graph_walk: bool = typer.Option(False, "--graph-walk", help="graph-bound launches walk long sequences: faster "
                                    "on uniform short batches, slower on ragged ones (docs/perf-notes.md v7)"),
    graph_sched: Optional[bool] = typer.Option(None, "--graph-sched/--no-graph-sched", help="graph-bound launches "
                                               "run a schedule the vLLM backend plans on the device each step "
                                               "(default, unless --graph-walk; docs/perf-notes.md v8, v9)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of tables"),
) -> None:
    """Write the study's dispatch table as a pip-installable vLLM attention backend package."""
    from workbench.export.package import export_study
    from workbench.tune.storage import default_home, default_storage, mask_url, require_optuna

    require_optuna()
    storage = storage or default_home(study) or default_storage(False)    # the study's default location
    r = export_study(study, storage, out_dir, name=name, wheel=wheel, gpu=gpu, graph_walk=graph_walk,
                     graph_sched=graph_sched)
    if as_json:
        print(json.dumps(r.to_dict(), indent=1))
        return
    out.print(f"package {r.package} ({len(r.variants)} variant(s)) written to {r.out} from study {study} "
              f"in {mask_url(storage)}", highlight=False)
    for f in r.files:
        out.print(f"  {f}", highlight=False)
    for n in r.notes:
        out.print(f"note: {n}", highlight=False)
    if r.wheel:
        out.print(f"wheel: {r.wheel} (build log {r.build_log})")
    out.print(f"install: pip install --no-build-isolation {r.out}   ·   serve: vllm serve MODEL --attention-backend CUSTOM")
