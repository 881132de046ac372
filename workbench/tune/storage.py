"""The Optuna side of tuning: storages (SQLite default, JournalStorage file, PostgreSQL), the
study's config, the search space as Optuna parameters, seeds, and trial bookkeeping.

Objective: geometric-mean latency over the suite's buckets (minimise). The L2 demand hit rate is
stored and shown, not optimised: it is reproducible but rewards redundant L2 traffic (re-reads,
prefetches that duplicate demand loads) and runs against latency (docs/perf-notes.md, issue 14).
Studies made with it as a second objective (maximise) still resume. A trial that fails (build,
check, launch, crash, hang) is told FAIL with its reason stored, so it can never be best.
"""
from __future__ import annotations

import os
import re
import socket
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.config.paths import user_data_dir
from workbench.tune.trial import Measurement

DIRECTIONS = ("minimize",)


_URL = re.compile(r"[A-Za-z][\w+.-]*://[^\s'\"<>]*")
_QUERY_SECRET = re.compile(r"([?&;][^=&;#\s]*(?:password|passwd|pwd|secret|token)[^=&;#\s]*=)[^&;#\s]*", re.I)


def _mask_one(url: str) -> str:
    scheme, _, rest = url.partition("://")
    user, colon, _ = rest.partition(":")
    at = rest.rfind("@")                         # the password may hold '@', ':', '/' and '?' itself
    if colon and at > len(user) and not re.search(r"[/?#@]", user):   # user:PASSWORD@host...
        rest = f"{user}:***{rest[at:]}"
    return _QUERY_SECRET.sub(r"\1***", f"{scheme}://{rest}")


def mask_url(text: str) -> str:
    """Never show a password: every URL in `text` (a storage URL, or a message quoting one) with
    its user:PASSWORD@ and ?password=… (&password=…) replaced by ***. Text without one is unchanged.
    postgresql://u:p@ss@host/db -> postgresql://u:***@host/db."""
    return _URL.sub(lambda m: _mask_one(m.group(0)), text)


def require_optuna() -> Any:
    """The optuna module, or one clear message: it is what every study command stands on."""
    try:
        import optuna
    except ImportError as e:
        raise WorkbenchError(f"optuna is not installed ({e}): `pip install optuna` (tune, worker, export, "
                             "inspect study: and bench --study keep their studies with it)") from None
    return optuna


def default_stores() -> list[tuple[str, Path]]:
    """The two default stores, as (URL, file): one-device runs use SQLite, several devices a journal."""
    d = user_data_dir()
    return [(f"sqlite:///{d / 'studies.db'}", d / "studies.db"), (f"journal:///{d / 'studies.journal'}", d / "studies.journal")]


def default_storage(multi_device: bool) -> str:
    # one process, several devices: a journal file takes concurrent writers without SQLite's locks
    return default_stores()[1 if multi_device else 0][0]


def _study_names(url: str) -> list[str]:
    return [s.study_name for s in open_storage(url).get_all_studies()]


def default_home(name: str) -> str | None:
    """The default store that holds study `name` (whichever backend made it), or None."""
    for url, path in default_stores():
        if path.exists() and name in _study_names(url):
            return url
    return None


def open_storage(url: str) -> Any:
    require_optuna()
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
        for attempt in range(5):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return RDBStorage(url, **kw)
            except Exception as e:
                # two processes opening one new database both create its schema: the loser's
                # insert of the schema version fails (UNIQUE alembic_version); the schema is
                # there by then, so opening again succeeds
                if "alembic_version" not in str(e) or attempt == 4:
                    raise
                time.sleep(0.2)
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
    storage_url: str = field(repr=False)     # may carry a password: never in a repr
    created: bool = False

    @property
    def name(self) -> str:
        return self.study.study_name


def make_sampler(seed: int | None = None) -> Any:
    optuna = require_optuna()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # multivariate/group/constant_liar are "experimental"
        return optuna.samplers.TPESampler(multivariate=True, group=True, constant_liar=True,
                                          n_startup_trials=8, seed=seed)


def _defaults_other_than(url: str) -> list[tuple[str, Path]]:
    """The default stores to look in too when `url` is one of them (a study lives in one default
    store, made by whichever backend its first run used: export, inspect, bench, a later tune
    find it by name in either)."""
    stores = default_stores()
    if url not in [u for u, _ in stores]:
        return []
    return [(u, p) for u, p in stores if u != url and p.exists()]


def open_study(name: str, storage_url: str, config: dict[str, Any] | None, *, create: bool = True,
               seed: int | None = None) -> StudyHandle:
    """Create (atomically: only one creator wins) or load a study; check its config matches."""
    optuna = require_optuna()
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
            for url, _ in _defaults_other_than(storage_url):
                if name in _study_names(url):
                    return open_study(name, url, config, create=False, seed=seed)
            where = [storage_url, *(u for u, _ in _defaults_other_than(storage_url))]
            known = sorted({s for u in where for s in _study_names(u)})
            raise WorkbenchError(f"no study {name!r} in {' or '.join(mask_url(u) for u in where)}; studies there: "
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
        # the space and suite are compared by content below (where the study holds it), not by name
        by_name = [k for k, whole in (("suite_name", "suite"), ("space_name", "space"))
                   if not (have and have.get(whole) and config.get(whole))]
        diff = [k for k in ("gpu", "model", "tp", "dtype", "block_size", *by_name)
                if have and have.get(k) != config.get(k)]
        if diff:
            raise WorkbenchError(f"study {name!r} was made for " +
                                 ", ".join(f"{k}={have.get(k)}" for k in diff) +
                                 f" (now {', '.join(f'{k}={config.get(k)}' for k in diff)}); "
                                 "pick another --study name")
        if have:
            _check_same_space_and_suite(name, have, config)
    return StudyHandle(study, storage_url, created)


def _changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out = []
    for k in [*old, *(k for k in new if k not in old)]:
        if k not in new:
            out.append(f"{k} {old[k]} -> (removed)")
        elif k not in old:
            out.append(f"{k} (new) -> {new[k]}")
        elif old[k] != new[k]:
            out.append(f"{k} {old[k]} -> {new[k]}")
    return out


def _check_same_space_and_suite(name: str, have: dict[str, Any], config: dict[str, Any]) -> None:
    """An edited space (or suite) under the same name: Optuna cannot continue the study (its
    parameters' choices are fixed) and its trials would not compare. Refused before any trial is
    asked, with what changed and the two ways on."""
    old_sp, new_sp = (have.get("space") or {}).get("knobs"), (config.get("space") or {}).get("knobs")
    if old_sp is not None and new_sp is not None and old_sp != new_sp:
        stored = user_data_dir() / "runs" / re.sub(r"[^\w.-]", "_", name) / "space-of-study.yaml"
        try:
            import yaml
            stored.parent.mkdir(parents=True, exist_ok=True)
            stored.write_text(f"# the search space study {name} was made with (written by workbench tune)\n" +
                              yaml.safe_dump({"name": have["space"].get("name", "stored"), "knobs": old_sp,
                                              **({"shape": have["space"]["shape"]} if have["space"].get("shape") else {})},
                                             sort_keys=False, default_flow_style=None))
            way = f"tune with the space it was made with: --space {stored}"
        except OSError:
            way = f"restore the space it was made with ({have['space'].get('source') or 'see `workbench inspect`'})"
        raise WorkbenchError(f"study {name!r} was made with another search space (space "
                             f"{have['space'].get('name')}: {'; '.join(_changes(old_sp, new_sp))}); a study keeps "
                             f"its space. Either pick a new --study name for the edited space, or {way}")
    keys = ("batches", "contexts", "check", "profile", "max_kv_gb")
    old_su, new_su = have.get("suite"), config.get("suite")
    if old_su and new_su and any(old_su.get(k) != new_su.get(k) for k in keys):
        ch = _changes({k: old_su.get(k) for k in keys}, {k: new_su.get(k) for k in keys})
        raise WorkbenchError(f"study {name!r} was made with another workload suite (suite {old_su.get('name')}: "
                             f"{'; '.join(ch)}); its trials would not compare. Either pick a new --study name, or "
                             f"restore the suite it was made with ({old_su.get('source') or old_su.get('name')})")


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
        requeue_trial(h, t, "interrupted: its process was killed")
        requeued.append(t.number)
    return requeued, finish


def requeue_trial(h: StudyHandle, t: Any, why: str) -> None:
    """A RUNNING trial (FrozenTrial) this run will not finish: FAIL with `why` (a reason starting
    "interrupted" keeps it out of the failures), its parameters enqueued again so the next run
    measures them first."""
    from optuna.trial import TrialState
    h.study._storage.set_trial_user_attr(t._trial_id, "failure", why)
    h.study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
    if t.params:
        attrs: dict[str, Any] = {"retry_of": t.number}
        if "seed" in t.user_attrs:
            attrs["seed"] = t.user_attrs["seed"]
        h.study.enqueue_trial(t.params, user_attrs=attrs, skip_if_exists=False)


def frozen_trial(h: StudyHandle, number: int) -> Any:
    return h.study._storage.get_trial(_trial_id(h, number))


def tell(h: StudyHandle, trial: Any, m: Measurement) -> None:
    """`trial`: an optuna Trial, or a trial number (finishing a recovered trial)."""
    from optuna.trial import TrialState
    set_attr = (trial.set_user_attr if not isinstance(trial, int) else
                lambda k, v: h.study._storage.set_trial_user_attr(_trial_id(h, trial), k, v))
    set_attr("measurement", m.to_dict())
    if m.ok:
        hit = m.l2_demand_hit
        set_attr("l2_measured", hit is not None)
        values = [m.geomean_us] + ([hit if hit is not None else 0.0] if len(h.study.directions) == 2 else [])
        h.study.tell(trial, values, skip_if_finished=True)
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


def open_tuned(study: str, storage: str) -> tuple[StudyHandle, dict[str, Any], list[tuple[int, Measurement]]]:
    """A study `workbench tune` made, with its config and completed trials, or one clear message."""
    h = open_study(study, storage, None, create=False)
    cfg = h.study.user_attrs.get("config")
    if not cfg:
        raise WorkbenchError(f"study {study!r} was not made by `workbench tune` (no config on it)")
    done = completed(h.study)
    if not done:
        raise WorkbenchError(f"study {study!r} has no completed trial: run `workbench tune` first")
    return h, cfg, done


def references(study: Any) -> dict[str, Measurement]:
    """`baseline` / `paper` (vLLM's own kernel) measured beside this study, by label."""
    return {k: Measurement.from_dict(d) for k, d in (study.user_attrs.get("references") or {}).items()}


def save_reference(h: StudyHandle, m: Measurement) -> None:
    refs = dict(h.study.user_attrs.get("references") or {})
    refs[m.label] = m.to_dict()
    h.study.set_user_attr("references", refs)


def failures(study: Any) -> list[tuple[int, str, str]]:
    """Trials whose variant failed (build, check, launch, crash, hang); not those a stopped run
    re-queued ("interrupted: …": their parameters were enqueued again)."""
    from optuna.trial import TrialState
    return [(t.number, (t.user_attrs.get("measurement") or {}).get("name", "?"), t.user_attrs.get("failure", "?"))
            for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
            if not t.user_attrs.get("failure", "").startswith("interrupted")]


def pareto_numbers(study: Any) -> set[int]:
    try:
        return {t.number for t in study.best_trials}
    except Exception:                # no complete trial yet
        return set()
