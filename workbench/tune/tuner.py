"""The tuning loop: ask Optuna for variants, build them (nvcc, in parallel per batch), measure each
on a worker (or a replay backend), profile the batch with ncu, tell Optuna. One loop per device,
all on one study; events go to an observer (the TUI, or plain lines).

Budget: `trials` new trials for this run, and `timeout` seconds of wall time (no new batch starts
after it, a batch is sized so it should end before it).
"""
from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from workbench.errors import WorkbenchError
from workbench.config.profiles import GpuProfile, HeadShape
from workbench.kernel.space import Space
from workbench.tune.storage import StudyHandle, completed, failures, open_study, owner, pareto_numbers, recover_stale, references, save_reference, tell
from workbench.tune.encoding import choices, enqueue_seeds, seeds, suggest_variant
from workbench.measure.suite import Suite
from workbench.tune.trial import Measurement


@dataclass
class TuneConfig:
    gpu: GpuProfile
    heads: HeadShape
    dtype: str
    block_size: int
    suite: Suite
    space: Space
    study: str
    storage: str
    trials: int = 160
    timeout: float = 420.0
    profile: str = "ncu"
    devices: tuple[int, ...] = (0,)
    batch: int = 8
    trial_timeout: float = 60.0
    launches: int = 30
    seed: int | None = None
    workdir: Path = Path(".")
    device_name: str = ""                 # the real GPU (labels every result)
    role: str = "tune"                    # "worker" joins a study and never enqueues seeds

    @property
    def shape(self) -> dict[str, Any]:
        return {"head_size": self.heads.head_size, "block_size": self.block_size, "dtype": self.dtype}

    def study_config(self) -> dict[str, Any]:
        return {"gpu": self.gpu.name, "device_name": self.device_name, "model": self.heads.model, "tp": self.heads.tp,
                "heads": self.heads.to_dict(), "dtype": self.dtype, "block_size": self.block_size,
                "arch": self.gpu.arch, "suite_name": self.suite.name, "suite": self.suite.to_dict(),
                "space_name": self.space.name, "space": self.space.to_dict(), "profile": self.profile}


@dataclass
class TuneSummary:
    study: str
    storage: str
    elapsed_s: float
    trials_run: int
    complete: int
    failed: int
    repeats: int
    top: list[dict[str, Any]]
    pareto: list[int]
    best: dict[str, Any] | None
    dispatch: dict[str, Any] | None
    failures: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    references: dict[str, Any] = field(default_factory=dict)    # baseline / paper: vLLM's own kernel

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Budget:
    def __init__(self, trials: int, timeout: float):
        self.trials, self.timeout = trials, timeout
        self.t0 = time.monotonic()
        self.claimed = 0
        self.done = 0
        self._lock = threading.Lock()
        self.per_trial = 3.0              # running estimate of seconds per trial (batch sizing)

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def left_s(self) -> float:
        return self.timeout - self.elapsed()

    def claim(self, want: int, reserve_s: float) -> int:
        with self._lock:
            n = min(want, self.trials - self.claimed)
            fit = int((self.left_s() - reserve_s) / max(self.per_trial, 0.1))
            n = max(0, min(n, fit if self.claimed else max(1, fit)))
            self.claimed += n
            return n

    def record(self, seconds: float) -> None:
        with self._lock:
            self.done += 1
            self.per_trial = 0.7 * self.per_trial + 0.3 * seconds if self.done > 1 else seconds


Observer = Callable[[dict[str, Any]], None]


def run_tune(cfg: TuneConfig, make_backend: Callable[[int], Any], observe: Observer,
             stop: threading.Event | None = None) -> TuneSummary:
    from optuna.trial import TrialState

    from workbench.kernel.build import build_many

    stop = stop or threading.Event()
    h = open_study(cfg.study, cfg.storage, cfg.study_config(), seed=cfg.seed)
    ch = choices(cfg.space, cfg.heads.group, cfg.gpu.prefetch)
    notes = []
    rec, finish = recover_stale(h)
    if rec:
        notes.append(f"re-queued {len(rec)} trial(s) killed while being measured: {rec}")
    if finish:
        notes.append(f"finishing {len(finish)} trial(s) measured by a killed run: {[n for n, _ in finish]}")
    # seeds: enqueued by the study's creator; a later `tune` fills in only what is missing (its
    # creator died first); workers never enqueue, so racing joiners cannot duplicate them
    if h.created or cfg.role == "tune":
        notes += enqueue_seeds(h, seeds(cfg.shape, cfg.heads.group, cfg.gpu.prefetch), ch)
    budget = Budget(cfg.trials, cfg.timeout)
    observe({"type": "start", "config": cfg.study_config(), "storage": cfg.storage, "study": h.name,
             "created": h.created, "trials": cfg.trials, "timeout": cfg.timeout, "devices": list(cfg.devices),
             "prior_complete": len(completed(h.study)), "notes": notes})
    for n in notes:
        observe({"type": "note", "text": n})
    lock = threading.Lock()                      # Optuna ask/tell from several device threads
    known: dict[str, tuple[int, Measurement]] = {m.key: (n, m) for n, m in completed(h.study)}
    stats = {"run": 0, "repeats": 0}
    errors: list[BaseException] = []

    def device_loop(dev: int) -> None:
        backend = make_backend(dev)
        try:
            observe({"type": "stage", "device": dev, "stage": "setup", "text": "starting worker, building workloads"})
            backend.setup()
            observe({"type": "device", "device": dev, "gpu": getattr(backend, "gpu", {}),
                     "ceiling": getattr(backend, "ceiling", {})})
            with lock:                      # provenance for export: driver, CUDA, torch of the tuned GPU
                if getattr(backend, "gpu", None) and "gpu_info" not in h.study.user_attrs:
                    h.study.set_user_attr("gpu_info", backend.gpu)
                    h.study.set_user_attr("ceiling", getattr(backend, "ceiling", {}))
            if dev == cfg.devices[0] and cfg.role == "tune":
                for n in measure_references(cfg, h, backend, lock, observe):
                    notes.append(n)
                    observe({"type": "note", "text": n})
            if dev == cfg.devices[0] and finish:
                todo = [m for _, m in finish if m.ok and m.ncu is None]
                if todo and cfg.profile != "none":
                    backend.profile(todo)
                with lock:
                    for n, m in finish:
                        tell(h, n, m)
                        if m.ok:
                            known.setdefault(m.key, (n, m))
            while not stop.is_set():
                n = budget.claim(cfg.batch, reserve_s=15.0 if cfg.profile != "none" else 2.0)
                if n == 0:
                    break
                with lock:
                    asked = []
                    for _ in range(n):
                        t = h.study.ask()
                        t.set_user_attr("owner", owner())
                        t.set_user_attr("device", dev)
                        try:
                            v = suggest_variant(t, ch, cfg.shape)
                        except WorkbenchError as e:   # a knob combination the Variant rules refuse
                            v = None
                            t.set_user_attr("failure", f"invalid: {e}")
                            h.study.tell(t, state=TrialState.FAIL)
                            continue
                        asked.append((t, v))
                if not asked:
                    continue
                observe({"type": "stage", "device": dev, "stage": "compile", "text": f"{len(asked)} variant(s)"})
                builds = build_many([v for _, v in asked], cfg.gpu.arch) if getattr(backend, "needs_build", True) \
                    else [_unbuilt(v, cfg.gpu.arch) for _, v in asked]
                results: list[tuple[Any, Measurement, bool]] = []
                for (t, v), b in zip(asked, builds):
                    if stop.is_set():
                        break
                    prev = known.get(v.key)
                    if prev is not None:                   # measured before in this study: reuse
                        m = Measurement.from_dict(prev[1].to_dict())
                        t.set_user_attr("repeat_of", prev[0])
                        results.append((t, m, True))
                        continue
                    if b.status == "invalid":
                        m = Measurement.failure(v, "invalid", b.error, device=dev)
                    else:
                        observe({"type": "stage", "device": dev, "stage": "verify+time", "trial": t.number,
                                 "text": f"#{t.number} {v.label}"})
                        t0 = time.monotonic()
                        m = backend.measure(b)
                        budget.record(time.monotonic() - t0)
                    with lock:                           # stored now: a kill -9 before tell loses nothing
                        t.set_user_attr("measurement", m.to_dict())
                    results.append((t, m, False))
                fresh = [m for _, m, rep in results if not rep and m.ok]
                if fresh and cfg.profile != "none":
                    observe({"type": "stage", "device": dev, "stage": f"profile ({cfg.profile})",
                             "text": f"{len(fresh)} variant(s)"})
                    note = backend.profile(fresh)
                    if note:
                        observe({"type": "note", "text": note})
                with lock:
                    for t, m, rep in results:
                        tell(h, t, m)
                        stats["run"] += 1
                        stats["repeats"] += rep
                        if m.ok and not rep:
                            known.setdefault(m.key, (t.number, m))
                        observe({"type": "result", "device": dev, "trial": t.number, "measurement": m.to_dict(),
                                 "repeat": rep, "done": stats["run"], "elapsed": budget.elapsed()})
                    for t, _ in asked[len(results):]:         # asked but stopped before measuring
                        t.set_user_attr("failure", "not measured: the run was stopped")
                        h.study.tell(t, state=TrialState.FAIL)
            observe({"type": "stage", "device": dev, "stage": "idle", "text": "done"})
        except BaseException as e:        # surfaced by the main thread
            errors.append(e)
            stop.set()
        finally:
            backend.close()

    threads = [threading.Thread(target=device_loop, args=(d,), daemon=True) for d in cfg.devices]
    for th in threads:
        th.start()
    try:
        for th in threads:
            while th.is_alive():
                th.join(timeout=0.2)
    except KeyboardInterrupt:
        stop.set()
        for th in threads:
            th.join(timeout=60)
        notes.append("interrupted: finished trials are saved; re-run the same command to resume")
    if errors:
        e = errors[0]
        raise e if isinstance(e, WorkbenchError) else WorkbenchError(f"tuning stopped: {type(e).__name__}: {e}")
    s = summarize(h, cfg.storage, budget.elapsed(), stats["run"], stats["repeats"], notes)
    observe({"type": "finish", "summary": s.to_dict()})
    return s


def measure_references(cfg: TuneConfig, h: StudyHandle, backend: Any, lock: threading.Lock,
                       observe: Observer) -> list[str]:
    """`baseline` / `paper` (vLLM's own kernel, without / with the paper's prefetch) measured once
    per study on the same suite and worker as the trials: every speedup is quoted against them.
    Kept in the study's user attributes, not as trials, so the sampler never sees them."""
    from workbench.kernel.build import build_many
    from workbench.kernel.references import NAMED, REFERENCES
    with lock:
        have = references(h.study)
    todo = [NAMED[r](**cfg.shape) for r in REFERENCES if r not in have]
    if not todo:
        observe({"type": "references", "measurements": [m.to_dict() for m in have.values()]})
        return []
    observe({"type": "stage", "device": cfg.devices[0], "stage": "references",
             "text": "vLLM's own kernel: " + ", ".join(v.label for v in todo)})
    builds = build_many(todo, cfg.gpu.arch) if getattr(backend, "needs_build", True) \
        else [_unbuilt(v, cfg.gpu.arch) for v in todo]
    notes, got = [], []
    for b in builds:
        if not b.ok:
            why = b.error.splitlines()[0][:300] if b.error else ""
            notes.append(f"reference {b.variant.label} unavailable ({b.status}){': ' + why if why else ''}")
            continue
        m = backend.measure(b)
        if not m.ok:
            notes.append(f"reference {m.label} failed at {m.stage}: {m.reason[:300]}")
            continue
        got.append(m)
    if got and cfg.profile != "none":
        note = backend.profile(got)
        if note:
            notes.append(note)
    with lock:
        for m in got:
            save_reference(h, m)
    if got or have:
        observe({"type": "references", "measurements": [m.to_dict() for m in [*have.values(), *got]]})
    return notes


def _unbuilt(v: Any, arch: str) -> Any:
    """A build record for backends that need no cubin (replay): only the validity verdict."""
    from workbench.kernel.build import BuildResult
    why = v.invalid_reasons(arch)
    return BuildResult(variant=v, arch=arch, status="invalid" if why else "cached", error="; ".join(why))


def top_rows(done: list[tuple[int, Measurement]], k: int, pareto: set[int],
             refs: dict[str, Measurement] | None = None) -> list[dict[str, Any]]:
    base = (refs or {}).get("baseline")
    rows, seen = [], set()
    for n, m in sorted(done, key=lambda x: x[1].geomean_us):
        if m.key in seen:                 # a repeat of a variant already listed
            continue
        seen.add(m.key)
        if len(rows) == k:
            break
        eff = [t.efficiency for t in m.timings if t.efficiency]
        rows.append({"trial": n, "name": m.name, "label": m.label, "variant": m.variant,
                     "geomean_us": m.geomean_us,
                     "speedup_baseline": (base.geomean_us / m.geomean_us) if base else None,
                     "efficiency_mean": sum(eff) / len(eff) if eff else None,
                     "l2_demand_hit": m.l2_demand_hit, "pareto": n in pareto})
    return rows


def summarize(h: StudyHandle, storage: str, elapsed: float, run: int, repeats: int, notes: list[str]) -> TuneSummary:
    from workbench.tune.dispatch import build_dispatch
    from workbench.tune.storage import mask_url
    done = completed(h.study)
    refs = references(h.study)
    par = pareto_numbers(h.study)
    fails = failures(h.study)
    dispatch = None
    best = None
    if done:
        d = build_dispatch(h.name, h.study.user_attrs.get("config", {}), done, refs)
        dispatch = d.to_dict()
        front = [(n, m) for n, m in done if n in par] or done
        n, m = min(front, key=lambda x: x[1].geomean_us)
        best = {"trial": n, "name": m.name, "variant": m.variant, "geomean_us": m.geomean_us,
                "l2_demand_hit": m.l2_demand_hit}
    return TuneSummary(study=h.name, storage=mask_url(storage), elapsed_s=elapsed, trials_run=run,
                       complete=len(done), failed=len(fails), repeats=repeats, top=top_rows(done, 5, par, refs),
                       pareto=sorted(par), best=best, dispatch=dispatch,
                       failures=[{"trial": n, "variant": v, "reason": r} for n, v, r in fails], notes=notes,
                       references={k: {"name": m.name, "geomean_us": m.geomean_us, "l2_demand_hit": m.l2_demand_hit}
                                   for k, m in refs.items()})

