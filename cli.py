"""The `workbench` command: parse arguments, call the library, render. No logic here."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from workbench.errors import WorkbenchError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Profile and autotune vLLM's paged-attention decode kernel.")
out = Console(width=None if sys.stdout.isatty() else 160)  # pipes: no 80-column squeeze
err = Console(stderr=True)


@app.command("compile")
def compile_cmd(
    space: Optional[Path] = typer.Option(None, help="search space YAML (default: tuning/spaces/default.yaml)"),
    arch: str = typer.Option("sm_90a", help="target arch, e.g. sm_90a, sm_90, sm_80"),
    head_size: Optional[int] = typer.Option(None, help="override the space's head size"),
    dtype: Optional[str] = typer.Option(None, help="override the space's dtype (bf16|fp16)"),
    block_size: Optional[int] = typer.Option(None, help="override the space's KV block size"),
    group: Optional[int] = typer.Option(None, help="GQA group size (drops heads_per_cta above it)"),
    jobs: Optional[int] = typer.Option(None, help="parallel nvcc processes (default: CPU count)"),
    force: bool = typer.Option(False, help="rebuild even if cached"),
    as_json: bool = typer.Option(False, "--json", help="print a JSON summary instead of tables"),
) -> None:
    """Build every valid variant of a space into cached cubins; print counts."""
    from workbench.build import build_many, summarize
    from workbench.space import enumerate_space, load_space

    sp = load_space(space)
    en = enumerate_space(sp, arch, head_size=head_size, block_size=block_size, dtype=dtype, group=group)
    results = build_many(en.valid, arch, jobs=jobs, progress=not as_json and out.is_terminal, force=force)
    s = summarize(results)
    failed = [r for r in results if r.status == "failed"]
    if as_json:
        print(json.dumps({"space": sp.source, "arch": arch, **s.to_dict(), "invalid": len(en.invalid),
                          "failures": [{"variant": r.variant.name, "error": r.error} for r in failed]}))
    else:
        t = Table(title=f"{sp.name} space for {arch}")
        for c in ("built", "cached", "invalid", "failed"):
            t.add_column(c, justify="right")
        t.add_row(str(s.built), str(s.cached), str(len(en.invalid)), str(s.failed))
        out.print(t)
        spills = [r for r in results if r.ok and r.spills]
        if spills:
            out.print(f"{len(spills)} variant(s) spill registers (see `workbench compile --json`)")
        for r in failed[:5]:
            out.print(Text(f"FAILED {r.variant.name}:\n{r.error}", style="red"))
    if failed:
        raise typer.Exit(1)


@app.command("variant")
def variant_cmd(
    name: str = typer.Argument(..., help="baseline, paper (vLLM's own kernel), simple, simple-pf, or knob=value pairs separated by commas"),
    arch: str = typer.Option("sm_90a"),
    head_size: int = typer.Option(128),
    dtype: str = typer.Option("bf16"),
    block_size: int = typer.Option(16),
) -> None:
    """Show one variant: knobs, validity on an arch, and its ptxas report (builds if needed)."""
    from workbench.build import build_variant
    from workbench.variant import Variant, named

    if "=" in name:
        knobs = dict(kv.split("=", 1) for kv in name.split(","))
        v = Variant.from_dict({"head_size": head_size, "dtype": dtype, "block_size": block_size, **knobs})
    else:
        v = named(name, head_size, block_size, dtype)
    r = build_variant(v, arch)
    t = Table(title=f"{v.label}  ({v.key})")
    t.add_column("knob"); t.add_column("value")
    for k, val in v.to_dict().items():
        t.add_row(k, str(val))
    t.add_row("build", f"{r.status} {r.error}".strip())
    out.print(t)
    if r.resources:
        rt = Table(title="ptxas")
        for c in ("function", "registers", "smem static", "stack", "spill st/ld"):
            rt.add_column(c)
        for f, res in r.resources.items():
            rt.add_row(f, str(res.registers), str(res.shared_static), str(res.stack_frame),
                       f"{res.spill_stores}/{res.spill_loads}")
        out.print(rt)


@app.command("measure")
def measure_cmd(
    variants: str = typer.Option("baseline,paper", help="comma-separated: baseline, paper, simple, simple-pf, or a knob=value;... spec"),
    batch: int = typer.Option(8), context: int = typer.Option(4096),
    heads: int = typer.Option(32), kv_heads: int = typer.Option(8), head_size: int = typer.Option(128),
    dtype: str = typer.Option("bf16"), block_size: int = typer.Option(16),
    launches: int = typer.Option(50, help="timed launches per variant (>= 30)"),
    profile: str = typer.Option("none", help="none | ncu | nsys | all"),
    out_dir: Path = typer.Option(Path("wb-measure"), "--out", help="directory for results.json and captures"),
    pool_gb: float = typer.Option(0.0, help="KV pool size in GB the block tables draw from (0: just what the "
                                             "rotation needs; a serving engine's pool is tens of GB)"),
) -> None:
    """Time variants with a cold L2 (and capture them under ncu / nsys); write results.json."""
    from workbench.measure import Job
    from workbench.report import results_table
    from workbench.session import measure
    from workbench.variant import Variant, named
    from workbench.workload import WorkloadSpec

    if profile not in ("none", "ncu", "nsys", "all"):
        raise WorkbenchError(f"--profile {profile!r}: use none, ncu, nsys or all")
    if launches < 30:
        raise WorkbenchError("--launches must be >= 30 (medians of fewer launches are noise)")
    vs = []
    for item in variants.split(","):
        if "=" in item:
            knobs = dict(kv.split("=", 1) for kv in item.split(";"))
            vs.append(Variant.from_dict({"head_size": head_size, "dtype": dtype, "block_size": block_size, **knobs}))
        else:
            vs.append(named(item.strip(), head_size, block_size, dtype))
    spec = WorkloadSpec.uniform(batch, context, num_heads=heads, num_kv_heads=kv_heads, head_size=head_size,
                                block_size=block_size, dtype=dtype)
    if pool_gb < 0:
        raise WorkbenchError("--pool-gb must be >= 0")
    if pool_gb:
        spec = WorkloadSpec(**{**spec.to_dict(), "num_blocks": max(spec.blocks_needed, int(pool_gb * 1e9 // spec.block_bytes))})
    job = Job(variants=[v.to_dict() for v in vs], workloads=[spec.to_dict()], launches=launches)
    res, notes = measure(job, out_dir, profile)
    out.print(results_table(res))
    for n in notes:
        out.print(n)
    out.print(f"results: {out_dir / 'results.json'}")


def _run_tune(cfg, notes, replay, replay_delay, as_json) -> None:
    from workbench.plan import backend_factory
    from workbench.report import dispatch_table, top_table
    from workbench.study import mask_url
    from workbench.tui import LiveView, PlainView
    from workbench.tuner import run_tune

    live = out.is_terminal and not as_json
    view = LiveView(out) if live else PlainView(err if as_json else out)
    if not as_json:
        out.print(f"study {cfg.study} in {mask_url(cfg.storage)} · logs and captures in {cfg.workdir}")
    for n in notes:
        view({"type": "note", "text": n})
    from workbench.tui import screen_text
    try:
        s = run_tune(cfg, backend_factory(cfg, replay, replay_delay), view)
    finally:
        view.close()
        (cfg.workdir / "last-screen.txt").write_text(screen_text(view.st))
    s.notes[:0] = notes
    if as_json:
        print(json.dumps(s.to_dict(), indent=1))
        return
    out.print(top_table(s))
    if s.dispatch:
        out.print(dispatch_table(s.dispatch))
    if s.best:
        out.print(f"best (fastest on the Pareto front): trial #{s.best['trial']} {s.best['name']} · "
                  f"{s.best['geomean_us']:.1f} µs geomean", highlight=False)
    out.print(f"final screen: {cfg.workdir / 'last-screen.txt'}")
    out.print(f"{s.trials_run} trials this run ({s.repeats} repeats reused) in {s.elapsed_s:.0f} s · study: "
              f"{s.complete} complete, {s.failed} failed · `workbench export --study {cfg.study}` next")


@app.command("tune")
def tune_cmd(
    gpu: str = typer.Option("auto", help="GPU profile (h100, h200, h20, a100, l40s) or auto"),
    model: str = typer.Option(..., help="model profile, e.g. llama-3.1-8b"),
    tp: int = typer.Option(1, help="tensor-parallel degree: heads per GPU = heads / tp"),
    dtype: str = typer.Option("bf16"), block_size: int = typer.Option(16),
    trials: int = typer.Option(160, help="new trials for this run"),
    timeout: float = typer.Option(420.0, help="seconds: no trial starts after this"),
    study: Optional[str] = typer.Option(None, help="study name (default: gpu-model-tp-dtype-block-suite)"),
    storage: Optional[str] = typer.Option(None, help="sqlite:///F, journal:///F or postgresql://... (default: "
                                                     "SQLite in the user data dir; a journal file for several devices)"),
    profile: str = typer.Option("ncu", help="ncu (L2 objective) | nsys | none"),
    devices: str = typer.Option("0", help="GPU indices, one worker each: 0,1,..."),
    allow_mismatch: bool = typer.Option(False, help="tune although the attached GPU is not --gpu"),
    suite: str = typer.Option("default", help="workload suite name or YAML"),
    space: Optional[Path] = typer.Option(None, help="search space YAML"),
    batch: int = typer.Option(8, help="trials per ask/profile batch per device"),
    trial_timeout: float = typer.Option(60.0, help="watchdog: seconds one trial may take"),
    replay: Optional[Path] = typer.Option(None, help="answer from recorded measurements (no GPU)"),
    replay_delay: float = typer.Option(0.0, hidden=True),
    seed: Optional[int] = typer.Option(None, help="sampler seed"),
    as_json: bool = typer.Option(False, "--json", help="plain progress on stderr, a JSON summary on stdout"),
) -> None:
    """Search kernel variants for a GPU and model with Optuna (latency, L2 demand hit rate)."""
    from workbench.plan import make_config

    cfg, notes = make_config(gpu=gpu, model=model, tp=tp, dtype=dtype, block_size=block_size, trials=trials,
                             timeout=timeout, study=study, storage=storage, profile=profile, devices=devices,
                             allow_mismatch=allow_mismatch, suite=suite, space=str(space) if space else None,
                             batch=batch, trial_timeout=trial_timeout, replay=replay, seed=seed)
    _run_tune(cfg, notes, replay, replay_delay, as_json)


@app.command("worker")
def worker_cmd(
    study: str = typer.Option(..., help="an existing study (made by `workbench tune`)"),
    storage: str = typer.Option(..., help="the study's storage URL (postgresql://... across hosts)"),
    devices: str = typer.Option("0"), trials: int = typer.Option(64), timeout: float = typer.Option(420.0),
    batch: int = typer.Option(8), trial_timeout: float = typer.Option(60.0),
    allow_mismatch: bool = typer.Option(False),
    replay: Optional[Path] = typer.Option(None, help="answer from recorded measurements (no GPU)"),
    replay_delay: float = typer.Option(0.0, hidden=True),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Join a study from this host: measure trials on local GPUs with the study's own config."""
    from workbench.plan import config_from_study

    cfg = config_from_study(study, storage, devices=devices, trials=trials, timeout=timeout, batch=batch,
                            trial_timeout=trial_timeout, replay=replay, allow_mismatch=allow_mismatch)
    _run_tune(cfg, [], replay, replay_delay, as_json)


@app.command("export")
def export_cmd(
    study: str = typer.Option(..., help="a tuned study"),
    storage: Optional[str] = typer.Option(None, help="its storage URL (default: the user SQLite)"),
    out_dir: Path = typer.Option(..., "--out", help="directory for the package source"),
    name: Optional[str] = typer.Option(None, help="Python package name (default wb_<gpu>_<model>)"),
    wheel: bool = typer.Option(False, "--wheel", help="also build the wheel (needs CUDA torch and nvcc here)"),
    gpu: Optional[str] = typer.Option(None, help="refuse a study tuned for another GPU profile"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Write the study's dispatch table as a pip-installable vLLM attention backend package."""
    from workbench.export import export_study
    from workbench.study import default_storage, mask_url

    r = export_study(study, storage or default_storage(False), out_dir, name=name, wheel=wheel, gpu=gpu)
    if as_json:
        print(json.dumps(r.to_dict(), indent=1))
        return
    out.print(f"package {r.package} ({len(r.variants)} variant(s)) written to {r.out} from study {study} "
              f"in {mask_url(storage or default_storage(False))}", highlight=False)
    for f in r.files:
        out.print(f"  {f}", highlight=False)
    if r.wheel:
        out.print(f"wheel: {r.wheel} (build log {r.build_log})")
    out.print(f"install: pip install --no-build-isolation {r.out}   ·   serve: vllm serve MODEL --attention-backend CUSTOM")


@app.command("bench")
def bench_cmd(
    gpu: str = typer.Option("auto", help="GPU profile the attached GPU must match (auto: any known)"),
    model: str = typer.Option("llama-3.1-8b", help="model whose heads the suite uses"),
    tp: int = typer.Option(1), dtype: str = typer.Option("bf16"), block_size: int = typer.Option(16),
    suite: str = typer.Option("bench", help="suite name or YAML (batch x context grid)"),
    peers: str = typer.Option("baseline,paper,simple,simple-pf,tuned,xformers,sdpa,flex",
                              help="comma-separated; baseline / paper = vLLM 0.10.2's own kernel without / with "
                                   "the paper's prefetch (built from its sdist); simple / simple-pf = ours in "
                                   "vLLM's decomposition"),
    study: Optional[str] = typer.Option(None, help="tuned = this study's dispatch table (else a quick sweep)"),
    storage: Optional[str] = typer.Option(None),
    launches: int = typer.Option(30, help="timed launches per peer and shape (>= 30)"),
    out_file: Path = typer.Option(Path("bench.json"), "--out", help="JSON of the run"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="PNG: efficiency vs KV bytes, one line per peer"),
    prefetch_map: bool = typer.Option(False, "--prefetch-map", help="instead: best with vs without L2 prefetch per shape"),
) -> None:
    """Our kernels vs xformers, SDPA (unpaged) and FlexAttention on one suite, cold L2, vs the floor."""
    from rich.progress import Progress

    from workbench.bench import plot as bench_plot, run_bench, tuned_picker
    from workbench.gpuinfo import device_names
    from workbench.peers import PEERS
    from workbench.profiles import head_shape, load_model, resolve_gpu
    from workbench.report import bench_table
    from workbench.suite import load_suite

    names = [p.strip() for p in peers.split(",") if p.strip()]
    from workbench.bench import OURS
    bad = [p for p in names if p not in (*OURS, *PEERS)]
    if bad:
        raise WorkbenchError(f"--peers: unknown {', '.join(bad)}; choose from {', '.join((*OURS, *PEERS))}")
    if launches < 30:
        raise WorkbenchError("--launches must be >= 30")
    heads = head_shape(load_model(model), tp)
    su = load_suite(suite)
    devs = device_names()
    if not devs:
        raise WorkbenchError("no NVIDIA GPU visible: `workbench bench` measures on a GPU")
    g, note = resolve_gpu(gpu, devs[0])
    if prefetch_map:
        from workbench.bench import prefetch_table, run_prefetch_map
        with Progress(transient=True, console=err) as prog:
            task = prog.add_task("prefetch map", total=len(su.specs(heads, dtype, block_size)))
            m = run_prefetch_map(heads=heads, dtype=dtype, block_size=block_size, suite=su, launches=launches,
                                 progress=lambda s: prog.update(task, advance=1, description=s))
        out_file.write_text(json.dumps(m, indent=1))
        out.print(prefetch_table(m))
        out.print(f"results: {out_file}")
        return
    pick, tuned_note = (tuned_picker(study, storage, heads, dtype, block_size, g.arch) if "tuned" in names
                        else (None, ""))
    skipped = su.skipped_buckets(heads, dtype, block_size)
    with Progress(transient=True, console=err) as prog:
        task = prog.add_task("bench", total=len(su.specs(heads, dtype, block_size)) * len(names))
        run = run_bench(heads=heads, dtype=dtype, block_size=block_size, suite=su, peers=names, launches=launches,
                        pick=pick, tuned_note=tuned_note, save=lambda r: r.save(out_file),
                        progress=lambda s: prog.update(task, advance=1, description=s))
    if skipped:
        run.notes.append(f"shapes over the suite's max_kv_gb skipped: {', '.join(skipped)}")
    run.save(out_file)
    out.print(bench_table(run))
    sm = run.to_dict()["summary"]
    for p, v in sm["geomean_speedup_of_tuned"].items():
        out.print(f"tuned vs {p}: geomean speedup {v:.2f}×" if v else f"tuned vs {p}: –")
    out.print("efficiency geomean: " + ", ".join(f"{p} {v:.2f}" for p, v in sm["efficiency_geomean"].items() if v))
    for ref in ("baseline", "simple"):
        if sm[f"shapes_where_tuned_is_slower_than_{ref}"]:
            out.print(f"tuned slower than {ref} on: {', '.join(sm[f'shapes_where_tuned_is_slower_than_{ref}'])}")
    for n in run.notes:
        out.print(f"note: {n}", highlight=False)
    if plot:
        out.print(f"plot: {bench_plot(run, plot)}")
    out.print(f"results: {out_file}")


@app.command("inspect")
def inspect_cmd(
    target: str = typer.Argument(..., help="results .json, .ncu-rep, ncu raw .csv, nsys .sqlite/.nsys-rep, "
                                           "or study:NAME[#TRIAL]"),
    storage: Optional[str] = typer.Option(None, help="storage of a study: target (default: the user SQLite)"),
    compare: Optional[list[str]] = typer.Option(None, "--compare", help="two variant labels: --compare baseline --compare paper"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="PNG: latency and demand L2 hit vs prefetch distance"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of tables"),
) -> None:
    """Show L2 metrics (demand hit rate, DRAM bytes, duration, efficiency) of a capture. No GPU needed."""
    from workbench import inspect as ins
    from workbench.report import results_table, rows

    kind, data = ins.load_target(target, storage)
    if compare and len(compare) != 2:
        raise WorkbenchError("--compare takes exactly two variant labels (give --compare twice)")
    if (compare or plot) and kind != "results":
        raise WorkbenchError("--compare and --plot need a results .json (from `workbench measure`)")
    if kind == "results":
        payload = ins.compare(data, *compare) if compare else rows(data)
        if plot:
            out.print(f"plot: {ins.plot(data, plot)}")
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


@app.command("doctor")
def doctor_cmd(as_json: bool = typer.Option(False, "--json"),
               no_probe: bool = typer.Option(False, "--no-probe", help="skip running ncu/nsys on a tiny program")) -> None:
    """Check this host: GPU, driver, CUDA, nvcc, ncu (+ counter permission), nsys, Python packages."""
    from workbench.doctor import main_job_ready, run_checks

    checks = run_checks(probe_profilers=not no_probe)
    ready = main_job_ready(checks)
    if as_json:
        print(json.dumps({"ready": ready, "checks": [c.to_dict() for c in checks]}, indent=1))
    else:
        t = Table(title="workbench doctor")
        for c in ("check", "status", "detail", "how to fix"):
            t.add_column(c)
        colour = {"ok": "green", "warn": "yellow", "missing": "red"}
        for c in checks:
            t.add_row(c.name + (" *" if c.required else ""), f"[{colour[c.status]}]{c.status}[/]", Text(c.detail), Text(c.fix))
        out.print(t)
        out.print("* needed by the main job. " + ("Ready." if ready else "The main job cannot run here."))
    if not ready:
        raise typer.Exit(1)


def main() -> None:
    # typer (standalone) handles usage errors itself (exit 2); ours are WorkbenchError
    try:
        app()
    except WorkbenchError as e:
        err.print(Text("error: ", style="bold red") + Text(str(e)))
        raise SystemExit(2)
    except KeyboardInterrupt:
        err.print("aborted")
        raise SystemExit(130)


if __name__ == "__main__":
    main()
