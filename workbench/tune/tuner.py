"""The tuning loop: ask Optuna for variants, build them (nvcc, in parallel per batch), measure each
on a worker (or a replay backend), profile the batch with ncu, tell Optuna. One loop per device,
all on one study; events go to an observer (the TUI, or plain lines).

Budget: `trials` new trials for this run, and `timeout` seconds of wall time (no new batch starts
after it, a batch is sized so it should end before it).
"""
from __future__ import annotations

import contextlib
import random
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from workbench.errors import WorkbenchError
from workbench.config.profiles import GpuProfile, HeadShape
from workbench.kernel.space import Space
from workbench.tune.storage import (StudyHandle, completed, failures, frozen_trial, mask_url, open_study, owner,
                                     pareto_numbers, recover_stale, references, requeue_trial, save_reference, tell)
from workbench.tune.claims import claim_or_reuse
from workbench.tune.encoding import RandomTrial, choices, enqueue_seeds, seeds, suggest_variant
from workbench.tune.peer_timing import FA3, PeerTiming, measure_fa3, stored as stored_peers, why_absent
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
    storage: str = field(repr=False)      # may carry a password: shown only through mask_url
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
    emulation: dict[str, Any] | None = None   # EmulationPlan.to_dict() when tuning for a smaller GPU

    @property
    def shape(self) -> dict[str, Any]:
        return {"head_size": self.heads.head_size, "block_size": self.block_size, "dtype": self.dtype}

    def study_config(self) -> dict[str, Any]:
        return {"gpu": self.gpu.name, "device_name": self.device_name, "model": self.heads.model, "tp": self.heads.tp,
                "heads": self.heads.to_dict(), "dtype": self.dtype, "block_size": self.block_size,
                "arch": self.gpu.arch, "suite_name": self.suite.name, "suite": self.suite.to_dict(),
                "space_name": self.space.name, "space": self.space.to_dict(), "profile": self.profile,
                **({"emulation": self.emulation} if self.emulation else {})}


@dataclass
class TuneSummary:
    study: str
    storage: str
    elapsed_s: float
    trials_run: int                       # trials that measured a variant: what --trials counts
    complete: int
    failed: int
    repeats: int                          # told trials that reused a measurement (not counted against --trials)
    top: list[dict[str, Any]]
    pareto: list[int]
    best: dict[str, Any] | None
    dispatch: dict[str, Any] | None
    failures: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    references: dict[str, Any] = field(default_factory=dict)    # baseline / paper: vLLM's own kernel
    peers: dict[str, Any] = field(default_factory=dict)         # fa3: PeerTiming dict (timed, or why not)
    interrupted: bool = False             # Ctrl-C: stopped early; the same command resumes
    requeued: list[int] = field(default_factory=list)           # trials in flight, failed and enqueued again
    ruled_out: int = 0                    # trials the suite ruled out unbuilt (not counted against --trials)
    told: int = 0                         # every trial this run told: trials_run + repeats + ruled_out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


FREE_PER_TRIAL = 2      # trials that measure nothing may number up to this many per --trials ...
FREE_MIN = 32           # ... or this many, whichever is more
DRY_BATCHES = 3         # a device stops after this many batches in a row that measured nothing new
EXPLORE_DRAWS = 512     # after a batch that measured nothing new: random draws to find unmeasured variants


class Budget:
    """`trials` counts trials that measure a variant (a failed build or check included). Trials
    that measure nothing -- a repeat of a variant measured before (TPE re-proposes its favourites:
    59 of 300 trials of the H200 v6 tune) or a variant the suite rules out before it is built (163
    of 300 there) -- are told but refunded, up to max(FREE_PER_TRIAL x trials, FREE_MIN) of them,
    so `--trials 300` measures 300 variants where the space has them."""

    def __init__(self, trials: int, timeout: float):
        self.trials, self.timeout = trials, timeout
        self.t0 = time.monotonic()
        self.claimed = 0
        self.done = 0
        self.free = 0                     # trials refunded so far
        self.free_cap = max(FREE_PER_TRIAL * trials, FREE_MIN)
        self._lock = threading.Lock()
        self.per_trial = 3.0              # running estimate of seconds per trial (batch sizing)

    def refund(self, n: int) -> int:
        """Give back up to n claimed trials that measured nothing; returns how many were refunded."""
        with self._lock:
            n = max(0, min(n, self.free_cap - self.free))
            self.free += n
            self.claimed -= n
            return n

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


@contextlib.contextmanager
def _ctrl_c_stops(stop: threading.Event, interrupted: threading.Event) -> Iterator[None]:
    """The first Ctrl-C (SIGINT) asks the loop to stop cleanly: no new batch, the trials in flight
    finished or re-queued. A second one aborts at once (KeyboardInterrupt). Only the main thread
    can take signals; elsewhere a KeyboardInterrupt still reaches run_tune's join loop."""
    def on_sigint(signum: int, frame: Any) -> None:
        if interrupted.is_set():
            raise KeyboardInterrupt
        interrupted.set()
        stop.set()
    try:
        prev = signal.getsignal(signal.SIGINT)
        if prev is signal.SIG_IGN:       # the parent wants SIGINT ignored (a background job): so be it
            prev = None
        else:
            signal.signal(signal.SIGINT, on_sigint)
    except ValueError:                   # not the main thread
        prev = None
    try:
        yield
    finally:
        if prev is not None:
            signal.signal(signal.SIGINT, prev)


def run_tune(cfg: TuneConfig, make_backend: Callable[[int], Any], observe: Observer,
             stop: threading.Event | None = None) -> TuneSummary:
    stop = stop or threading.Event()
    interrupted = threading.Event()
    with _ctrl_c_stops(stop, interrupted):
        return _run_tune(cfg, make_backend, observe, stop, interrupted)


def _run_tune(cfg: TuneConfig, make_backend: Callable[[int], Any], observe: Observer, stop: threading.Event,
              interrupted: threading.Event) -> TuneSummary:
    from workbench.kernel.build import build_many

    h = open_study(cfg.study, cfg.storage, cfg.study_config(), seed=cfg.seed)    # WorkbenchError without optuna
    from optuna.trial import TrialState

    ch = choices(cfg.space, cfg.heads.group, cfg.gpu.prefetch)
    notes = []
    rec, finish = recover_stale(h)
    unfinished = dict(finish)             # recovered, measured, not yet told: see settle_recovered
    if rec:
        notes.append(f"re-queued {len(rec)} trial(s) killed while being measured: {rec}")
    if finish:
        notes.append(f"finishing {len(finish)} trial(s) measured by a killed run: {[n for n, _ in finish]}")
    # seeds: enqueued by the study's creator; a later `tune` fills in only what is missing (its
    # creator died first); workers never enqueue, so racing joiners cannot duplicate them
    if h.created or cfg.role == "tune":
        notes += enqueue_seeds(h, seeds(cfg.shape, cfg.heads.group, cfg.gpu.prefetch), ch)
    budget = Budget(cfg.trials, cfg.timeout)
    observe({"type": "start", "config": cfg.study_config(), "storage": mask_url(cfg.storage), "study": h.name,
             "created": h.created, "trials": cfg.trials, "timeout": cfg.timeout, "devices": list(cfg.devices),
             "prior_complete": len(completed(h.study)), "notes": notes})
    for n in notes:
        observe({"type": "note", "text": n})
    lock = threading.Lock()                      # Optuna ask/tell from several device threads
    known: dict[str, tuple[int, Measurement]] = {m.key: (n, m) for n, m in completed(h.study)}
    # every variant this study has asked (measured, failed, ruled out): what exploring skips
    seen: set[str] = {t.user_attrs["measurement"].get("key", "") for t in h.study.get_trials(deepcopy=False)
                      if isinstance(t.user_attrs.get("measurement"), dict)}
    stats = {"run": 0, "repeats": 0, "unbuilt": 0}
    exhausted: list[int] = []               # devices that stopped: the sampler proposed nothing new
    errors: list[BaseException] = []
    requeued: list[int] = []

    def requeue(t: Any, why: str) -> None:
        """An asked trial the run will not finish: FAIL with `why`, its parameters enqueued again
        (the next run measures them first). Call with `lock` held."""
        t.set_user_attr("failure", why)
        h.study.tell(t, state=TrialState.FAIL, skip_if_finished=True)
        if t.params:
            attrs: dict[str, Any] = {"retry_of": t.number}
            if "seed" in t.user_attrs:
                attrs["seed"] = t.user_attrs["seed"]
            h.study.enqueue_trial(t.params, user_attrs=attrs, skip_if_exists=False)
        requeued.append(t.number)

    def device_loop(dev: int) -> None:
        backend = make_backend(dev)
        pending: dict[int, Any] = {}             # asked, not yet told: never left RUNNING
        try:
            if stop.is_set():
                return
            observe({"type": "stage", "device": dev, "stage": "setup", "text": "starting worker, building workloads"})
            backend.setup()
            observe({"type": "device", "device": dev, "gpu": getattr(backend, "gpu", {}),
                     "ceiling": getattr(backend, "ceiling", {})})
            with lock:                      # provenance for export: driver, CUDA, torch of the tuned GPU
                if getattr(backend, "gpu", None) and "gpu_info" not in h.study.user_attrs:
                    h.study.set_user_attr("gpu_info", backend.gpu)
                    h.study.set_user_attr("ceiling", getattr(backend, "ceiling", {}))
            if dev == cfg.devices[0] and cfg.role == "tune" and not stop.is_set():
                for n in measure_references(cfg, h, backend, lock, observe):
                    notes.append(n)
                    observe({"type": "note", "text": n})
            if dev == cfg.devices[0] and cfg.role == "tune" and not stop.is_set():
                for n in measure_fa3(h, backend, lock, observe, dev):      # × FA3 beside × baseline
                    notes.append(n)
                    observe({"type": "note", "text": n})
            if dev == cfg.devices[0] and finish and not stop.is_set():
                todo = [m for _, m in finish if m.ok and m.ncu is None]
                if todo and cfg.profile != "none":
                    backend.profile(todo)
                with lock:
                    for n, m in finish:
                        tell(h, n, m)
                        unfinished.pop(n, None)
                        if m.ok:
                            known.setdefault(m.key, (n, m))
            dry = 0                        # batches in a row that measured nothing new
            rng = random.Random(f"{cfg.seed}-{dev}")
            drawn: list[dict[str, Any]] = []     # explore()'s params, enqueued one by one as asked
            while not stop.is_set():
                if dry >= DRY_BATCHES:
                    with lock:
                        exhausted.append(dev)
                    break
                n = budget.claim(cfg.batch, reserve_s=15.0 if cfg.profile != "none" else 2.0)
                if n == 0:
                    break
                with lock:
                    asked = []
                    for _ in range(n):
                        if drawn:                # enqueued just before its ask: none is left WAITING
                            h.study.enqueue_trial(drawn.pop(0), user_attrs={"explore": True}, skip_if_exists=False)
                        t = h.study.ask()
                        pending[t.number] = t
                        t.set_user_attr("owner", owner())
                        t.set_user_attr("device", dev)
                        try:
                            v = suggest_variant(t, ch, cfg.shape)
                        except WorkbenchError as e:   # a knob combination the Variant rules refuse
                            v = None
                            t.set_user_attr("failure", f"invalid: {e}")
                            h.study.tell(t, state=TrialState.FAIL)
                            pending.pop(t.number)
                            continue
                        asked.append((t, v))
                        seen.add(v.key)
                if not asked:
                    budget.refund(n)             # every ask was a combination the Variant rules refuse
                    dry += 1
                    continue
                # variants the suite's shapes rule out fail now, unbuilt, with the worker's reason
                prejudged = {t.number: why for t, v in asked if (why := suite_rejection(cfg, v))}
                tobuild = [v for t, v in asked if t.number not in prejudged]
                observe({"type": "stage", "device": dev, "stage": "compile", "text": f"{len(tobuild)} variant(s)"})
                built = iter(build_many(tobuild, cfg.gpu.arch) if getattr(backend, "needs_build", True)
                             else [_unbuilt(v, cfg.gpu.arch) for v in tobuild])
                builds = [None if t.number in prejudged else next(built) for t, _ in asked]
                # (trial, measurement, repeat of: None | ("study", n) measured before | ("batch", n) in this batch)
                results: list[tuple[Any, Measurement, tuple[str, int] | None]] = []
                batch: dict[str, tuple[int, Measurement]] = {}
                for (t, v), b in zip(asked, builds):
                    if stop.is_set():
                        break
                    prev, whence = known.get(v.key), "study"
                    if prev is None:
                        prev, whence = batch.get(v.key), "batch"
                    if prev is not None:                   # measured before (in this study or batch): reuse
                        m = Measurement.from_dict(prev[1].to_dict())
                        t.set_user_attr("repeat_of", prev[0])
                        results.append((t, m, (whence, prev[0])))
                        continue
                    if t.number in prejudged:
                        m = Measurement.failure(v, "rejected", prejudged[t.number], device=dev)
                    elif b.status == "invalid":
                        m = Measurement.failure(v, "invalid", b.error, device=dev)
                    else:
                        # measured elsewhere meanwhile, or being measured now (another device or
                        # worker was handed the same variant): wait for that result and reuse it
                        got = claim_or_reuse(h.study, t, v.key, owner(), lock=lock, stop=stop,
                                             patience=max(2 * cfg.trial_timeout, cfg.trial_timeout + 60))
                        if stop.is_set():
                            break                      # not measured: re-queued below
                        if got is not None:
                            m = Measurement.from_dict(got[1].to_dict())
                            with lock:                 # stored now: its claim is released at once
                                t.set_user_attr("repeat_of", got[0])
                                t.set_user_attr("measurement", m.to_dict())
                            results.append((t, m, ("study", got[0])))
                            continue
                        observe({"type": "stage", "device": dev, "stage": "verify+time", "trial": t.number,
                                 "text": f"#{t.number} {v.label}"})
                        t0 = time.monotonic()
                        m = backend.measure(b)
                        budget.record(time.monotonic() - t0)
                        if not m.ok and stop.is_set():
                            break                      # a failure while stopping may be the stop's doing: re-queued
                    with lock:                           # stored now: a kill -9 before tell loses nothing
                        t.set_user_attr("measurement", m.to_dict())
                    results.append((t, m, None))
                    if m.ok:
                        batch[v.key] = (t.number, m)
                fresh = [m for _, m, rep in results if rep is None and m.ok]
                profiled = cfg.profile == "none" or not fresh
                if fresh and cfg.profile != "none" and not stop.is_set():
                    observe({"type": "stage", "device": dev, "stage": f"profile ({cfg.profile})",
                             "text": f"{len(fresh)} variant(s)"})
                    note = backend.profile(fresh)
                    profiled = True
                    if note:
                        observe({"type": "note", "text": note})
                with lock:
                    for t, m, rep in results:
                        if m.ok and not profiled and (rep is None or rep[0] == "batch"):
                            # stopped before the batch was profiled: its L2 objective is missing
                            requeue(t, "interrupted: the run stopped before this trial was profiled")
                            pending.pop(t.number)
                            continue
                        tell(h, t, m)
                        pending.pop(t.number)
                        stats["run"] += 1
                        stats["repeats"] += rep is not None
                        stats["unbuilt"] += rep is None and t.number in prejudged
                        if m.ok and rep is None:
                            known.setdefault(m.key, (t.number, m))
                        observe({"type": "result", "device": dev, "trial": t.number, "measurement": m.to_dict(),
                                 "repeat": rep is not None, "elapsed": budget.elapsed(),
                                 "done": stats["run"] - stats["repeats"] - stats["unbuilt"]})   # counted ones
                    for t, _ in asked[len(results):]:         # asked but stopped before measuring
                        requeue(t, "interrupted: the run stopped before this trial was measured")
                        pending.pop(t.number)
                # what measured nothing goes back to the budget: repeats, variants the suite ruled
                # out unbuilt, asks the Variant rules refused (told FAIL above, never built), and
                # trials re-queued by a stop (the run ends anyway)
                measured_new = sum(1 for t, _, rep in results if rep is None and t.number not in prejudged)
                budget.refund(n - measured_new)
                dry = 0 if measured_new else dry + 1
                if dry and not stop.is_set():
                    # the sampler asked only known variants (TPE concentrates on its best: the H200
                    # v7 tune stopped after 71 of ~190 measurable variants): the next batch takes
                    # unmeasured ones drawn at random; none left to draw is a space exhausted
                    with lock:
                        drawn = explore(h, ch, cfg, seen, rng, cfg.batch)
                    if not drawn:
                        dry = DRY_BATCHES
            observe({"type": "stage", "device": dev, "stage": "idle", "text": "done"})
        except BaseException as e:        # surfaced by the main thread
            errors.append(e)
            stop.set()
        finally:
            try:
                with lock:                # whatever stopped this loop, no trial stays RUNNING
                    for t in pending.values():
                        requeue(t, "interrupted: " + (f"the run stopped on an error ({type(errors[0]).__name__})"
                                                      if errors else "the run stopped"))
            except Exception:             # the storage itself failed: the next run's recover_stale re-queues them
                pass
            backend.close()

    def settle_recovered() -> None:
        """Trials recovered from a killed run that this run did not get to finish (a Ctrl-C or an
        error before the first device's worker was up): never left RUNNING. Told with their stored
        measurement where it needs no profiling, else failed and queued again, like a batch
        stopped before its profile."""
        with lock:
            for n, m in sorted(unfinished.items()):
                if m.ok and m.ncu is None and cfg.profile != "none":
                    requeue_trial(h, frozen_trial(h, n), "interrupted: the run stopped before this recovered "
                                                         "trial was profiled")
                    requeued.append(n)
                else:
                    tell(h, n, m)
                unfinished.pop(n)

    threads = [threading.Thread(target=device_loop, args=(d,), daemon=True) for d in cfg.devices]
    for th in threads:
        th.start()
    said = False
    try:
        try:
            for th in threads:
                while th.is_alive():
                    th.join(timeout=0.2)
                    if interrupted.is_set() and not said:
                        said = True
                        observe({"type": "note", "text": "Ctrl-C: stopping; trials in flight are finished or "
                                                         "re-queued (Ctrl-C again aborts at once)"})
        except KeyboardInterrupt:         # no signal handler here (not the main thread), or a second Ctrl-C
            if not interrupted.is_set():
                interrupted.set()
                stop.set()
                for th in threads:
                    th.join(timeout=60)
            else:
                raise
    finally:                              # also on the abort: a few writes, and nothing left RUNNING
        if unfinished:
            try:
                settle_recovered()
            except Exception:             # the storage itself failed: the next run's recover_stale does it
                pass
    if errors:
        e = errors[0]
        raise e if isinstance(e, WorkbenchError) else WorkbenchError(f"tuning stopped: {type(e).__name__}: "
                                                                     f"{mask_url(str(e))}")
    if interrupted.is_set():
        notes.append(f"interrupted: finished trials are saved; {len(requeued)} trial(s) in flight re-queued "
                     f"{sorted(requeued)}: the same command resumes (it runs them first)")
    if exhausted:
        notes.append(f"stopped early: the space is exhausted for this suite (every variant it holds is measured "
                     f"or ruled out by the suite's shapes; {len(completed(h.study))} complete trials in the study)")
    if budget.free >= budget.free_cap:
        notes.append(f"{budget.free} trials measured nothing (repeats, variants the suite rules out): the most "
                     f"a run refunds; later ones counted against --trials")
    s = summarize(h, cfg.storage, budget.elapsed(), stats["run"] - stats["repeats"] - stats["unbuilt"],
                  stats["repeats"], notes)
    s.ruled_out, s.told = stats["unbuilt"], stats["run"]
    s.interrupted, s.requeued = interrupted.is_set(), sorted(requeued)
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


def explore(h: StudyHandle, ch: dict[str, list[Any]], cfg: TuneConfig, seen: set[str], rng: random.Random,
            n: int) -> list[dict[str, Any]]:
    """Up to n parameter sets of variants drawn uniformly from the space that this study has not
    asked and the suite's shapes do not rule out (at most EXPLORE_DRAWS draws); they are marked
    seen. Call with the study lock held."""
    got: list[dict[str, Any]] = []
    for _ in range(EXPLORE_DRAWS):
        if len(got) >= n:
            break
        t = RandomTrial(rng)
        try:
            v = suggest_variant(t, ch, cfg.shape)
        except WorkbenchError:               # a combination the Variant rules refuse
            continue
        if v.key in seen or suite_rejection(cfg, v):
            continue
        seen.add(v.key)
        got.append(t.params)
    return got


def suite_rejection(cfg: TuneConfig, v: Any) -> str:
    """Why the suite's own shapes rule `v` out, known before it is built ("" when they do not): a
    whole-sequence launch whose logits cannot fit in shared memory at the suite's longest check or
    bucket. The worker would say the same after compiling it (87 of the 150 trials of the H200 v5
    tune were such variants, each compiled first); checks first, then buckets, as the worker runs them."""
    from workbench.errors import VariantRejected
    from workbench.kernel.variant import parse_arch, smem_optin
    limit = smem_optin(parse_arch(cfg.gpu.arch))
    specs = [(s.label, s) for s in cfg.suite.check_specs(cfg.heads, cfg.dtype, cfg.block_size)] + \
        [(b.label, s) for b, s in cfg.suite.specs(cfg.heads, cfg.dtype, cfg.block_size)]
    for label, spec in specs:
        try:
            v.check_workload(spec.num_seqs, spec.num_heads, spec.num_kv_heads, spec.head_size, spec.max_seq_len, limit)
        except VariantRejected as e:
            return f"{label}: {e}"
    return ""


def _unbuilt(v: Any, arch: str) -> Any:
    """A build record for backends that need no cubin (replay): only the validity verdict."""
    from workbench.kernel.build import BuildResult
    why = v.invalid_reasons(arch)
    return BuildResult(variant=v, arch=arch, status="invalid" if why else "cached", error="; ".join(why))


def top_rows(done: list[tuple[int, Measurement]], k: int, pareto: set[int],
             refs: dict[str, Measurement] | None = None, fa3: PeerTiming | None = None) -> list[dict[str, Any]]:
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
                     "speedup_fa3": fa3.speedup(m) if fa3 and fa3.ok else None,
                     "efficiency_mean": sum(eff) / len(eff) if eff else None,
                     "l2_demand_hit": m.l2_demand_hit, "pareto": n in pareto})
    return rows


def summarize(h: StudyHandle, storage: str, elapsed: float, run: int, repeats: int, notes: list[str]) -> TuneSummary:
    from workbench.tune.dispatch import study_dispatch
    done = completed(h.study)
    refs = references(h.study)
    peers = stored_peers(h.study)
    fa3 = peers.get(FA3)
    par = pareto_numbers(h.study)
    fails = failures(h.study)
    dispatch = None
    best = None
    if done:
        from workbench.measure.suite import shape_label
        from workbench.tune.refine import REFINE_MARGIN, close_calls, stored
        d = study_dispatch(h.name, h.study, h.study.user_attrs.get("config", {}), done, fa3)
        dispatch = d.to_dict()
        close = close_calls(done, [shape_label(r.bucket["batch"], r.bucket["context"]) for r in d.rows])
        have = stored(h.study)
        if close and have is None:
            notes = [*notes, f"{len(close)} of {len(d.rows)} bucket(s) have close calls (variants within "
                             f"{REFINE_MARGIN:.0%} at the centre: {', '.join(close)}): `workbench refine --study "
                             f"{h.name}` times them again off the centre and lets the fastest take the bucket"]
        elif have is not None and not have.graph_rows:
            # refined before graph picks existed (or with --graph-len 0): captured graphs run the long-context pick
            notes = [*notes, f"study {h.name} has no graph picks: vLLM's captured decode graphs run the pick for "
                             f"(batch, max_model_len) at every context; `workbench refine --study {h.name} "
                             f"--graph-len <max_model_len>` picks per batch row what they should run"]
        front = [(n, m) for n, m in done if n in par] or done
        n, m = min(front, key=lambda x: x[1].geomean_us)
        best = {"trial": n, "name": m.name, "variant": m.variant, "geomean_us": m.geomean_us,
                "l2_demand_hit": m.l2_demand_hit}
    return TuneSummary(study=h.name, storage=mask_url(storage), elapsed_s=elapsed, trials_run=run,
                       complete=len(done), failed=len(fails), repeats=repeats, top=top_rows(done, 5, par, refs, fa3),
                       pareto=sorted(par), best=best, dispatch=dispatch,
                       failures=[{"trial": n, "variant": v, "reason": r} for n, v, r in fails], notes=notes,
                       references={k: {"name": m.name, "geomean_us": m.geomean_us, "l2_demand_hit": m.l2_demand_hit}
                                   for k, m in refs.items()},
                       peers={FA3: {**(fa3.to_dict() if fa3 else {}), "why_absent": None if fa3 and fa3.ok
                                    else why_absent(fa3)}})

