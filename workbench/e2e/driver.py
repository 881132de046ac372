"""`run_e2e`: the whole e2e run, from the model profile to the table.

1. write the model's config.json (random weights: no download), plan the grid;
2. install the exported package into OUT/site (if given) for the children's PYTHONPATH;
3. per backend, one child process (`python -m workbench.e2e.runner`), FLASH_ATTN first; a backend
   that fails (vLLM missing, backend refused, engine died) is recorded with its reason and the
   run goes on; the run's JSON is saved after every backend;
4. attention's share a per point: the reference backend (and any other asked for) once more, in
   one process under nsys (attention_share.py);
5. k from a bench JSON (prediction.py), the table and the plot (compare.py).
A saved OUT/e2e.json of the same model / settings / grid is resumed: backends and points already
measured are not measured again, and a call may name a subset of backends (the run keeps the
union), so a long grid can be measured one backend per call.
"""
from __future__ import annotations

import math
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from workbench.errors import WorkbenchError

from .child import run_child
from .correctness import Tolerances
from .grid import (DEFAULT_BATCHES, DEFAULT_CONTEXTS, GridPlan, engine_limits,
                   estimate_kv_capacity_tokens, plan_grid)
from .results import REFERENCE, REPEAT, BackendResult, E2eRun, ShareResult, repeat_key
from .runner_args import RunnerArgs
from .settings import EngineSettings

RUN_FILE = "e2e.json"
DEFAULT_BACKENDS = ("CUSTOM", "FLASH_ATTN", "TRITON_ATTN", "FLASHINFER")
CHILD_ENV_DEFAULTS = {                 # as the offline hosts need them (shared/offline-gpu/VLLM.md)
    "VLLM_USE_FLASHINFER_SAMPLER": "0",
    "VLLM_NO_USAGE_STATS": "1",
    "VLLM_HOST_IP": "127.0.0.1",
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def _stderr(msg: str) -> None:
    print(f"e2e: {msg}", file=sys.stderr, flush=True)


def _workbench_root() -> str:
    import workbench
    return str(Path(workbench.__file__).resolve().parent.parent)


def child_env(site_dir: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    for k, v in CHILD_ENV_DEFAULTS.items():
        env.setdefault(k, v)
    paths = [p for p in (site_dir, _workbench_root(), env.get("PYTHONPATH")) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra or {})
    return env


def gpu_memory_bytes() -> int | None:
    """Total memory of GPU 0 through NVML (no CUDA context in this process: the children need it all)."""
    try:
        import pynvml
        pynvml.nvmlInit()
        return int(pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(0)).total)
    except Exception:
        return None


def _git_commit() -> str:
    try:
        p = subprocess.run(["git", "-C", _workbench_root(), "rev-parse", "--short", "HEAD"], capture_output=True,
                           text=True, timeout=10)
        return p.stdout.strip() if p.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def _order(backends: list[str], reference: str) -> list[str]:
    names = [b.strip().upper() for b in backends if b.strip()]
    if not names:
        raise WorkbenchError("give at least one backend (e.g. CUSTOM,FLASH_ATTN,TRITON_ATTN)")
    return [reference] + [b for b in dict.fromkeys(names) if b != reference]


def _failure_reason(rc: int | None, tail: str, log: str) -> str:
    if rc is None:
        return f"timed out (log {log})"
    lines = [ln for ln in tail.splitlines() if ln.strip()]
    err = next((ln for ln in reversed(lines) if "Error" in ln or "error" in ln), lines[-1] if lines else "")
    return f"the runner exited {rc}: {err.strip()[:400]} (log {log})"


def _load_backend(path: Path) -> BackendResult | None:
    if not path.exists():
        return None
    try:
        return BackendResult.load(path)
    except WorkbenchError:
        return None


def reused_shares(run: E2eRun, path: str, plan: Any) -> int:
    """Take the reference backend's attention shares (a per point) of an earlier run into `run` where it
    has none at that point of `plan`; returns how many. Only the reference's: another backend's capture
    is of its own package and host, and beside this run's ITL it says nothing (session 22's seeded run
    kept a CUSTOM capture of session 15's package). Any grid: points the file lacks get no prediction."""
    try:
        src = E2eRun.load(path)
    except WorkbenchError as e:
        raise WorkbenchError(f"--shares-from {e}") from None
    if (src.model or {}).get("model") != (run.model or {}).get("model"):
        raise WorkbenchError(f"--shares-from {path}: a run of {(src.model or {}).get('model')!r}, this one is of "
                             f"{(run.model or {}).get('model')!r}")
    labels = {pt.label for pt in plan.points}
    have = {s.label for s in run.shares if s.backend == run.reference}
    got = [s for s in src.shares if s.backend == run.reference and s.status == "ok" and s.label in labels - have]
    run.shares += got
    note = (f"attention shares of {run.reference} at {len(got)} point(s) from {path} (captured "
            f"{src.created or '?'} on {(src.provenance or {}).get('gpu') or '?'}), not captured in this run")
    if got and note not in run.notes:
        run.notes.append(note)
    return len(got)


# what must be equal for an earlier run's greedy ids to stand beside this run's: the same random weights
# and seed (hence the same prompts) on the same model and cache layout
FLOOR_SETTINGS = ("weights", "seed", "dtype", "block_size")


def reused_floor(run: E2eRun, path: str, tol: Tolerances) -> int:
    """The ids floor of an earlier run: how closely its floor backend (TRITON_ATTN) followed its reference,
    per point, for the points where this run does not measure the floor backend itself. The reference is
    reproducible across engine runs with the same weights and seed (FLASH_ATTN's ids 88-94% and
    log-probs 100% the same between 2026-11-30's and 2026-12-01's runs), vLLM's second backend is not
    (38-44%), so "as close to FLASH_ATTN as TRITON_ATTN" transfers, and saves an engine run per grid.
    Returns how many points it holds."""
    from .correctness import agreement
    try:
        src = E2eRun.load(path)
    except WorkbenchError as e:
        raise WorkbenchError(f"--floor-from {e}") from None
    name = tol.ids_floor_backend
    if (src.model or {}).get("model") != (run.model or {}).get("model"):
        raise WorkbenchError(f"--floor-from {path}: a run of {(src.model or {}).get('model')!r}, this one is of "
                             f"{(run.model or {}).get('model')!r}")
    differ = [k for k in FLOOR_SETTINGS if src.settings.get(k) != run.settings.get(k)]
    if differ:
        what = ", ".join(f"{k} {src.settings.get(k)!r} vs {run.settings.get(k)!r}" for k in differ)
        raise WorkbenchError(f"--floor-from {path}: its engine settings differ ({what}): greedy ids of other "
                             "weights or prompts are no floor for these")
    ref, fl = src.results.get(src.reference), src.results.get(name)
    pts = {}
    for p in (fl.points if fl else []):
        r = ref.point(p.batch, p.context) if ref else None
        if p.status == "ok" and p.outputs is not None and r is not None and r.outputs is not None:
            pts[p.label] = agreement(r.outputs, p.outputs, tol).to_dict()
    if not pts:
        raise WorkbenchError(f"--floor-from {path}: no point where both {src.reference} and {name} kept their "
                             f"outputs (run `workbench e2e --backends {name},...` once to make one)")
    run.floor = {"backend": name, "from": str(path), "created": src.created,
                 "gpu": (src.provenance or {}).get("gpu"), "points": pts}
    note = (f"ids floor: {name} against {src.reference} at {len(pts)} point(s) from {path} (measured "
            f"{src.created or '?'} on {run.floor['gpu'] or '?'}), used where this run does not measure {name}")
    run.notes = [n for n in run.notes if not n.startswith("ids floor: ")] + [note]
    return len(pts)


def run_e2e(model: str, package_dir_or_wheel: str | None, backends: list[str] | None, grid: Any,
            out_dir: str | Path, bench_json: str | None = None, *,
            decode_steps: int = 128,
            gpu_memory_utilization: float = 0.90,
            block_size: int = 16,
            weights: str = "gpt2:0.02",
            seed: int = 0,
            share_backends: list[str] | None = None,
            shares_from: str | None = None,
            floor_from: str | None = None,
            reference_twice: bool = False,
            bench_ours: str = "auto",
            bench_ref: str = "fa3",
            tolerances: Tolerances = Tolerances(),
            fresh: bool = False,
            plot: bool = True,
            child_timeout_s: float | None = None,
            gpu_memory: int | None = None,
            max_model_len: int | None = None,
            python: str = sys.executable,
            runner_module: str = "workbench.e2e.runner",
            progress: Callable[[str], None] = _stderr) -> E2eRun:
    """Run (or resume) an e2e comparison and return it; OUT/e2e.json holds it, OUT/e2e.png its plot.

    grid: (batches, contexts), a GridPlan, or None for batch {1, 8, 32, 64} × context {1k, 4k, 16k, 32k}.
    share_backends: backends whose attention share is captured under nsys (default: FLASH_ATTN only;
    [] skips nsys). shares_from: an earlier run's e2e.json (or .json.gz) whose reference-backend shares
    give a where this run has none (reused_shares). floor_from: an earlier run's e2e.json (same weights and
    seed) whose floor backend's ids agreement stands in where this run does not measure it (reused_floor).
    gpu_memory: bytes, for planning which points fit
    (default: read through NVML). reference_twice: the reference runs again after the other backends
    (results key FLASH_ATTN#2), so each ratio is to the mean of a run before and one after, and the
    table shows how far the reference moved between them (whole-engine runs move 2-4% between
    runs: perf-notes v21). A call that measures another backend measures the repeat again after it.
    """
    from .model_config import write_model_dir

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = _order(backends or list(DEFAULT_BACKENDS), REFERENCE)
    mdir = write_model_dir(model, out / "model")
    batches, contexts = (list(DEFAULT_BATCHES), list(DEFAULT_CONTEXTS)) if grid is None else \
        ([p.batch for p in grid.points], [p.context for p in grid.points]) if isinstance(grid, GridPlan) else \
        (list(grid[0]), list(grid[1]))
    base = EngineSettings(max_model_len=1, max_num_seqs=1, block_size=block_size,
                          gpu_memory_utilization=gpu_memory_utilization, weights=weights, seed=seed)
    total = gpu_memory if gpu_memory is not None else gpu_memory_bytes()
    cap = None if total is None else estimate_kv_capacity_tokens(total, gpu_memory_utilization,
                                                                 mdir.param_count * 2, mdir.kv_bytes_per_token)
    plan = plan_grid(batches, contexts, decode_steps=decode_steps, block_size=block_size, kv_capacity_tokens=cap,
                     max_position_embeddings=mdir.max_position_embeddings,
                     max_num_batched_tokens=base.max_num_batched_tokens, kv_bytes_per_token=mdir.kv_bytes_per_token)
    if isinstance(grid, GridPlan):          # exactly the points asked for
        keep = {p.label for p in grid.points}
        plan.points = [p for p in plan.points if p.label in keep]
        plan.skipped = [s for s in plan.skipped if s.label in keep]
    plan.note = ("KV capacity estimated from GPU memory (the runner re-checks with the engine's real KV cache)"
                 if cap is not None else "GPU memory unknown here: the runner checks each point against the engine's KV cache")
    for s in plan.skipped:
        progress(f"skip {s.label}: {s.reason}")
    max_len, max_seqs = engine_limits(plan.points, decode_steps, base.max_num_batched_tokens, block_size)
    if max_model_len is not None:
        # the server's own bound: vLLM captures its decode graphs at max_model_len, so a 1k-4k grid run
        # at the grid's own (short) bound does not measure what a 32k server runs (perf-notes v9)
        if max_model_len < max_len:
            raise WorkbenchError(f"--max-model-len {max_model_len} is shorter than the grid needs ({max_len} tokens: "
                                 "the longest context, the decode steps and a block)")
        if max_model_len > mdir.max_position_embeddings:
            raise WorkbenchError(f"--max-model-len {max_model_len} is past the model's max_position_embeddings "
                                 f"({mdir.max_position_embeddings})")
        max_len = math.ceil(max_model_len / block_size) * block_size
    settings = EngineSettings(**{**base.to_dict(), "max_model_len": max_len, "max_num_seqs": max_seqs})
    grid_doc = {**plan.to_dict(), "requested": {"batches": sorted(set(batches)), "contexts": sorted(set(contexts))}}

    run = E2eRun(model=mdir.to_dict(), backends=names, settings=settings.to_dict(), grid=grid_doc,
                 decode_steps=decode_steps, tolerances=tolerances.to_dict(),
                 package={"source": str(Path(package_dir_or_wheel).resolve())} if package_dir_or_wheel else {},
                 created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    path = out / RUN_FILE
    old = E2eRun.load(path) if path.exists() and not fresh else None
    if old is not None:
        if old.identity() != run.identity():
            raise WorkbenchError(f"{path} holds a run with other settings (model, engine settings, grid, steps or "
                                 "package): resume it with the same arguments, start afresh (--fresh), or choose "
                                 "another --out")
        run.results, run.shares, run.created = old.results, old.shares, old.created or run.created
        run.floor = old.floor
        run.backends = _order(old.backends + names, REFERENCE)      # a call may measure a subset
        run.notes = [n for n in old.notes if not n.startswith("resumed")]
        done = [n for n, r in old.results.items() if r.status == "ok"]
        run.notes.append(f"resumed {time.strftime('%Y-%m-%d %H:%M')}: done before: {', '.join(done) or 'nothing'}")
        progress(f"resuming {path}: {', '.join(done) or 'nothing'} done before")

    site = None
    if package_dir_or_wheel:
        from .install import install_package, source_stamp
        progress(f"installing {package_dir_or_wheel} into {out / 'site'}")
        pkg = install_package(package_dir_or_wheel, out / "site", python=python, log=out / "logs" / "install.log")
        site = pkg.site_dir
        stamp = source_stamp(Path(package_dir_or_wheel))
        if old is not None and old.package.get("stamp") not in (None, stamp):
            if "CUSTOM" in run.results:
                run.results.pop("CUSTOM")
                run.notes.append("the package changed since the saved run: CUSTOM measured again")
            # ... and its nsys captures, also where a seeded run (results cleared, shares kept) brought them:
            # another package's kernel times beside this one's ITL made the step breakdown nonsense
            # (session 22: "attention +818 µs/step" at b1 x 32k, where the kernel is 6% faster)
            if any(sh.backend == "CUSTOM" for sh in run.shares):
                run.shares = [sh for sh in run.shares if sh.backend != "CUSTOM"]
                run.notes.append("the package changed since the saved run: CUSTOM's attention shares (captured with "
                                 "the other package) dropped")
        run.package = {**run.package, **pkg.to_dict(), "source": run.package["source"], "stamp": stamp}
        progress(f"package {pkg.dist} {pkg.version}{' (already installed)' if pkg.reused else ''}: "
                 f"{'; '.join(pkg.entry_points)}")
    elif "CUSTOM" in names:
        note = "no package given: CUSTOM is whatever registers it in this environment (if anything)"
        if note not in run.notes:
            run.notes.append(note)
    if shares_from:
        reused_shares(run, shares_from, plan)
    if floor_from:
        reused_floor(run, floor_from, tolerances)
    env = child_env(site)
    if "FLASHINFER" in names:
        # the FlashInfer that vLLM's backend will import, against the release vLLM pins (0.26.0: 0.6.14): the
        # bench peers' 0.7.2 on the path first would be measured silently otherwise
        from .flashinfer_pin import flashinfer_pin
        fp = flashinfer_pin()
        note = f"FLASHINFER: {fp.problem}" if fp.problem else f"FLASHINFER: flashinfer-python {fp.have}"
        progress(note)
        run.notes = [n for n in run.notes if not n.startswith("FLASHINFER: ")] + [note]
    if bench_json:
        from .prediction import load_kernel_ratios
        kr = load_kernel_ratios(bench_json, ours=bench_ours, ref=bench_ref,
                                heads={"num_heads": mdir.num_heads, "num_kv_heads": mdir.num_kv_heads,
                                       "head_size": mdir.head_size},
                                dtype={"bfloat16": "bf16", "float16": "fp16"}.get(settings.dtype, settings.dtype),
                                block_size=block_size)
        run.bench = kr.to_dict()
        missing = [p.label for p in plan.points if kr.k(p.batch, p.context) is None]
        note = (f"the bench JSON has no {kr.ours}/{bench_ref} pair at {', '.join(missing)}: no prediction "
                "there (bench a suite that holds these shapes)")
        if missing and note not in run.notes:
            run.notes.append(note)
    _save(run, path)

    old_term = _term_as_exit()
    try:
        n = len(names) + reference_twice
        measured = False
        for i, name in enumerate(names):                          # this call's backends; the run keeps all
            measured |= _measure_backend(run, name, i, n, plan, mdir.path, mdir.vocab_size, settings, decode_steps,
                                         out, env, python, runner_module, child_timeout_s, progress)
            _save(run, path)
        if reference_twice:
            again = repeat_key(REFERENCE)
            note = f"{again}: measured again after this call's backends (it brackets them in time)"
            if measured and run.results.pop(again, None) is not None and note not in run.notes:
                run.notes.append(note)
            _measure_backend(run, REFERENCE, len(names), n, plan, mdir.path, mdir.vocab_size, settings, decode_steps,
                             out, env, python, runner_module, child_timeout_s, progress, key=again)
            _save(run, path)
        for name in (share_backends if share_backends is not None else [REFERENCE]):
            _attention_share(run, name.upper(), plan, mdir.path, mdir.vocab_size, settings, decode_steps, out, env,
                             python, runner_module, child_timeout_s, progress)
            _save(run, path)
    finally:
        _restore_term(old_term)
    _finish(run, out, plot, progress)
    _save(run, path)
    return run


def _exit_on_term(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _term_as_exit() -> Any:
    """SIGTERM (e.g. `timeout`) unwinds like Ctrl-C, so a child's process group is killed on the way out."""
    try:
        return signal.signal(signal.SIGTERM, _exit_on_term)
    except ValueError:                   # not the main thread
        return None


def _restore_term(old: Any) -> None:
    if old is not None:
        try:
            signal.signal(signal.SIGTERM, old)
        except ValueError:
            pass


def _save(run: E2eRun, path: Path) -> None:
    from .compare import rows, summary
    rs = rows(run)
    run.table = [r.to_dict() for r in rs]
    run.summary = summary(run, rs)
    run.save(path)


def _measure_backend(run: E2eRun, name: str, i: int, n: int, plan: GridPlan, model_dir: str, vocab: int,
                     settings: EngineSettings, decode_steps: int, out: Path, env: dict[str, str], python: str,
                     runner_module: str, timeout_s: float | None, progress: Callable[[str], None],
                     key: str | None = None) -> bool:
    """Backend `name`'s points not measured yet, in one child, kept under results[key] (default: name; the
    reference's second run: repeat_key). Whether a child ran."""
    key = key or name
    prev = run.results.get(key)
    done = prev.done_labels() if prev else set()
    todo = [p for p in plan.points if p.label not in done]
    if prev is not None and prev.status == "ok" and not todo:
        progress(f"[{i + 1}/{n}] {key}: done before")
        return False
    if not todo:
        return False
    stem = key.replace(REPEAT, "-2")
    rfile = out / "backends" / f"{stem}.json"
    args = RunnerArgs(model_dir=model_dir, backend=name, vocab_size=vocab, points=[p.to_dict() for p in todo],
                      settings=settings.to_dict(), decode_steps=decode_steps, out=str(rfile),
                      previous=prev.to_dict() if prev else {})
    afile = out / "backends" / f"{stem}.args.json"
    afile.parent.mkdir(parents=True, exist_ok=True)
    args.save(afile)
    progress(f"[{i + 1}/{n}] {key}: {len(todo)} point(s) ({', '.join(p.label for p in todo)})")
    ex = run_child([python, "-m", runner_module, str(afile)], env=env, log=out / "logs" / f"{stem}.log",
                   progress=lambda s: progress(f"  {s}"), timeout_s=timeout_s)
    res = _load_backend(rfile)
    if res is None:
        res = prev or BackendResult(backend=name)
        res.status, res.reason = "failed", _failure_reason(ex.returncode, ex.tail, ex.log)
    elif ex.returncode != 0 and res.status in ("pending", "partial") and not res.reason:
        res.status, res.reason = "failed" if not res.points else "partial", \
            _failure_reason(ex.returncode, ex.tail, ex.log)
    res.log = ex.log
    run.results[key] = res
    ok = sum(1 for p in res.points if p.status == "ok")
    progress(f"[{i + 1}/{n}] {key}: {res.status}{f' ({res.reason})' if res.reason else ''}; {ok} point(s) "
             f"measured, {ex.seconds:.0f} s")
    return True


def _attention_share(run: E2eRun, name: str, plan: GridPlan, model_dir: str, vocab: int, settings: EngineSettings,
                     decode_steps: int, out: Path, env: dict[str, str], python: str, runner_module: str,
                     timeout_s: float | None, progress: Callable[[str], None]) -> None:
    from .attention_share import nsys_command, share_from_window, window_kernels
    measured = run.results.get(name)
    pts = [p for p in plan.points
           if measured is not None and (mp := measured.point(p.batch, p.context)) is not None and mp.status == "ok"
           and not ((s := run.share(name, p.batch, p.context)) is not None and s.status == "ok")]
    if not pts:
        return
    from workbench.measure.nsys import export_sqlite, find_nsys
    nsys = find_nsys()
    if nsys is None:
        note = ("nsys not found: attention share a not measured (put Nsight Systems on PATH, e.g. "
                "`source .offline/activate.sh`, or set NSYS)")
        if note not in run.notes:
            run.notes.append(note)
        progress(note)
        return
    d = out / "nsys" / name
    d.mkdir(parents=True, exist_ok=True)
    rfile = d / "windows.json"
    if rfile.exists():
        rfile.unlink()
    args = RunnerArgs(model_dir=model_dir, backend=name, vocab_size=vocab, points=[p.to_dict() for p in pts],
                      settings=settings.to_dict(), decode_steps=decode_steps, out=str(rfile), mode="profile")
    afile = d / "args.json"
    args.save(afile)
    rep = d / "capture"
    progress(f"{name}: attention share under nsys at {len(pts)} point(s)")
    ex = run_child(nsys_command(nsys, rep, [python, "-m", runner_module, str(afile)]),
                   env={**env, "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}, log=out / "logs" / f"nsys-{name}.log",
                   progress=lambda s: progress(f"  {s}"), timeout_s=timeout_s)
    windows = _load_backend(rfile)
    report = rep.with_suffix(".nsys-rep")
    reason = ""
    kw: dict[str, Any] = {}
    if not report.exists():
        reason = (f"nsys wrote no report (QdstrmImporter needs libdw1/libelf1; log {ex.log}): "
                  + ex.tail.splitlines()[-1][:200] if ex.tail else "")
    else:
        try:
            kw = window_kernels(export_sqlite(nsys, report))
        except WorkbenchError as e:
            reason = str(e)
    for p in pts:
        wp = windows.point(p.batch, p.context) if windows else None
        mp = measured.point(p.batch, p.context) if measured else None
        if reason or wp is None or wp.status != "ok":
            sr = ShareResult(backend=name, batch=p.batch, context=p.context, status="failed",
                             reason=reason or (wp.reason if wp else f"the profiled runner wrote nothing ({ex.log})"))
        else:
            sr = share_from_window(name, p.batch, p.context, kw.get(p.label), wp.window_steps,
                                   mp.itl_mean_ms if mp else None)
        run.shares = [s for s in run.shares if not (s.backend == name and s.label == p.label)] + [sr]
        if sr.status == "ok":
            progress(f"  {name} {p.label}: attention {sr.attention_us_per_step:.0f} µs/step, a = "
                     f"{sr.a if sr.a is not None else float('nan'):.3f} (of kernel time {sr.a_kernels:.3f})")
        else:
            progress(f"  {name} {p.label}: no share ({sr.reason})")


def _finish(run: E2eRun, out: Path, plot: bool, progress: Callable[[str], None]) -> None:
    eng = next((r.engine for n in [run.reference, *run.backends] if (r := run.results.get(n)) and r.engine), {})
    run.provenance = {"gpu": eng.get("gpu", ""), "vllm": eng.get("vllm", ""), "torch": eng.get("torch", ""),
                      "python": eng.get("python", ""), "package": run.package.get("dist", ""),
                      "package_version": run.package.get("version", ""), "engine_settings": run.settings,
                      "host": platform.node(), "workbench_commit": _git_commit(),
                      "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if plot and any(r.points for r in run.results.values()):
        from .compare import plot as draw
        try:
            draw(run, out / "e2e.png")
        except WorkbenchError as e:
            run.notes.append(str(e))
            progress(str(e))
