"""The Optuna side of tuning: storages (SQLite default, JournalStorage file, PostgreSQL), the
study's config, the search space as Optuna parameters, seeds, and trial bookkeeping.

Objectives: geometric-mean latency over the suite's buckets (minimise) and L2 hit rate of demand
loads on the profile shape (maximise). A trial that fails (build, check, launch, crash, hang) is
told FAIL with its reason stored, so it can never be on the Pareto front or best.
"""
from __future__ import annotations

import os
import re
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.config.paths import user_data_dir
from workbench.tune.trial import Measurement

DIRECTIONS = ("minimize", "maximize")


def mask_url(url: str) -> str:
    """Never print a password: postgresql://user:secret@host -> postgresql://user:***@host."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def default_storage(multi_device: bool) -> str:
    d = user_data_dir()
    # one process, several devices: a journal file takes concurrent writers without SQLite's locks
    return f"journal:///{d / 'studies.journal'}" if multi_device else f"sqlite:///{d / 'studies.db'}"


def open_storage(url: str) -> Any:
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend

    if url.startswith("journal://") or url.endswith((".journal", ".jsonl")):
        path = Path(url.removeprefix("journal://")) if url.startswith("journal://") else Path(url)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        except OSError as e:
            raise WorkbenchError(f"cannot open journal storage {path}: {e.strerror}") from None
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if not re.match(r"^(sqlite|postgresql|postgres|mysql)(\+\w+)?://", url):
        raise WorkbenchError(f"storage {mask_url(url)!r} not understood: use sqlite:///FILE, "
                             "journal:///FILE or postgresql://USER:PASS@HOST/DB")
    try:
        kw: dict[str, Any] = {}
        if not url.startswith("sqlite"):
            kw["engine_kwargs"] = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return RDBStorage(url, **kw)
    except ImportError as e:
        cause = e.__cause__ or e
        raise WorkbenchError(f"storage {mask_url(url)}: database driver missing "
                             f"({getattr(cause, 'name', None) or cause}); for PostgreSQL "
                             "`pip install 'psycopg[binary]'`") from None
    except Exception as e:                       # sqlalchemy OperationalError etc.
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise WorkbenchError(f"storage {mask_url(url)} unreachable: {mask_url(msg)[:300]}") from None


# ---- study ----------------------------------------------------------------------------------
@dataclass
class StudyHandle:
    study: Any
    storage_url: str
    created: bool

    @property
    def name(self) -> str:
        return self.study.study_name


def make_sampler(seed: int | None = None) -> Any:
    import optuna
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # multivariate/group/constant_liar are "experimental"
        return optuna.samplers.TPESampler(multivariate=True, group=True, constant_liar=True,
                                          n_startup_trials=8, seed=seed)


def open_study(name: str, storage_url: str, config: dict[str, Any] | None, *, create: bool = True,
               seed: int | None = None) -> StudyHandle:
    """Create (atomically: only one creator wins) or load a study; check its config matches."""
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(storage_url)
    created = False
    try:
        if not create:
            raise optuna.exceptions.DuplicatedStudyError
        study = optuna.create_study(study_name=name, storage=storage, directions=list(DIRECTIONS),
                                    sampler=make_sampler(seed))
        created = True
        if config is not None:
            study.set_user_attr("config", config)
            study.set_user_attr("created", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    except optuna.exceptions.DuplicatedStudyError:
        try:
            study = optuna.load_study(study_name=name, storage=storage, sampler=make_sampler(seed))
        except KeyError:
            known = [s.study_name for s in optuna.get_all_study_summaries(storage)]
            raise WorkbenchError(f"no study {name!r} in {mask_url(storage_url)}; studies there: "
                                 f"{', '.join(known) or 'none'}") from None
    except WorkbenchError:
        raise
    except Exception as e:
        raise WorkbenchError(f"storage {mask_url(storage_url)}: {mask_url(str(e).splitlines()[0])[:300]}") from None
    if config is not None and not created:
        have = study.user_attrs.get("config")
        if have is None:
            # a racing creator has not written it yet
            for _ in range(50):
                time.sleep(0.1)
                have = study.user_attrs.get("config")
                if have:
                    break
        diff = [k for k in ("gpu", "model", "tp", "dtype", "block_size", "suite_name", "space_name")
                if have and have.get(k) != config.get(k)]
        if diff:
            raise WorkbenchError(f"study {name!r} was made for " +
                                 ", ".join(f"{k}={have.get(k)}" for k in diff) +
                                 f" (now {', '.join(f'{k}={config.get(k)}' for k in diff)}); "
                                 "pick another --study name")
    return StudyHandle(study, storage_url, created)


def owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def recover_stale(h: StudyHandle) -> tuple[list[int], list[tuple[int, Measurement]]]:
    """RUNNING trials whose owner process (on this host) is gone -- killed mid-run. A trial whose
    measurement was already stored is returned to be profiled and told; one killed while being
    measured is marked FAIL and its parameters are enqueued again.
    Returns (re-queued trial numbers, [(trial number, measurement) to finish])."""
    from optuna.trial import TrialState
    host = socket.gethostname()
    requeued, finish = [], []
    for t in h.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        own = t.user_attrs.get("owner", "")
        ohost, _, opid = own.rpartition(":")
        if ohost != host or not opid.isdigit() or _pid_alive(int(opid)):
            continue
        h.study._storage.set_trial_user_attr(t._trial_id, "owner", owner())   # claim it
        if t.user_attrs.get("measurement"):
            finish.append((t.number, Measurement.from_dict(t.user_attrs["measurement"])))
            continue
        h.study._storage.set_trial_user_attr(t._trial_id, "failure", "interrupted: its process was killed")
        h.study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
        if t.params:
            attrs = {"retry_of": t.number}
            if "seed" in t.user_attrs:
                attrs["seed"] = t.user_attrs["seed"]
            h.study.enqueue_trial(t.params, user_attrs=attrs)
        requeued.append(t.number)
    return requeued, finish


def tell(h: StudyHandle, trial: Any, m: Measurement) -> None:
    """`trial`: an optuna Trial, or a trial number (finishing a recovered trial)."""
    from optuna.trial import TrialState
    set_attr = (trial.set_user_attr if not isinstance(trial, int) else
                lambda k, v: h.study._storage.set_trial_user_attr(_trial_id(h, trial), k, v))
    set_attr("measurement", m.to_dict())
    if m.ok:
        hit = m.l2_demand_hit
        set_attr("l2_measured", hit is not None)
        h.study.tell(trial, [m.geomean_us, hit if hit is not None else 0.0], skip_if_finished=True)
    else:
        set_attr("failure", f"{m.stage}: {m.reason}")
        h.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)


def _trial_id(h: StudyHandle, number: int) -> int:
    return h.study._storage.get_trial_id_from_study_id_trial_number(h.study._study_id, number)


def completed(study: Any) -> list[tuple[int, Measurement]]:
    from optuna.trial import TrialState
    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        d = t.user_attrs.get("measurement")
        if d:
            out.append((t.number, Measurement.from_dict(d)))
    return out


def references(study: Any) -> dict[str, Measurement]:
    """`baseline` / `paper` (vLLM's own kernel) measured beside this study, by label."""
    return {k: Measurement.from_dict(d) for k, d in (study.user_attrs.get("references") or {}).items()}


def save_reference(h: StudyHandle, m: Measurement) -> None:
    refs = dict(h.study.user_attrs.get("references") or {})
    refs[m.label] = m.to_dict()
    h.study.set_user_attr("references", refs)


def failures(study: Any) -> list[tuple[int, str, str]]:
    from optuna.trial import TrialState
    return [(t.number, (t.user_attrs.get("measurement") or {}).get("name", "?"), t.user_attrs.get("failure", "?"))
            for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))]


def pareto_numbers(study: Any) -> set[int]:
    try:
        return {t.number for t in study.best_trials}
    except Exception:                # no complete trial yet
        return set()
