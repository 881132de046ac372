"""Turn `workbench tune` / `workbench worker` arguments into a TuneConfig, checking everything a
user can get wrong before any GPU work starts (one clear message each)."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.config.paths import user_data_dir
from workbench.config.profiles import GpuProfile, HeadShape, head_shape, load_model, resolve_gpu
from workbench.measure.emulation import plan_emulation, resolve_target
from workbench.kernel.space import Space, enumerate_space, load_space
from workbench.measure.suite import Suite, load_suite
from workbench.tune.tuner import TuneConfig
from workbench.kernel.variant import BLOCK_SIZES, DTYPES

PROFILE_MODES = ("ncu", "nsys", "none")


def parse_devices(text: str) -> tuple[int, ...]:
    if not re.fullmatch(r"\d+(,\d+)*", text.strip()):
        raise WorkbenchError(f"--devices {text!r}: give GPU indices like 0 or 0,1,2")
    devs = tuple(int(x) for x in text.split(","))
    if len(set(devs)) != len(devs):
        raise WorkbenchError(f"--devices {text!r} names a GPU twice")
    return devs


def attached(devices: tuple[int, ...], replay: Path | None) -> str:
    """The real GPU's name (all listed devices must be the same kind)."""
    if replay:
        try:
            return json.loads(Path(replay).read_text())["gpu"]["name"]
        except (OSError, ValueError, KeyError) as e:
            raise WorkbenchError(f"{replay}: not a replay file ({e})") from None
    from workbench.measure.gpuinfo import device_names
    names = device_names()
    if not names:
        raise WorkbenchError("no NVIDIA GPU visible (NVML found none): `workbench tune` measures on a GPU; "
                             "run it on a GPU host (`workbench doctor` checks one)")
    bad = [d for d in devices if d >= len(names)]
    if bad:
        raise WorkbenchError(f"--devices {','.join(map(str, bad))}: only {len(names)} GPU(s) visible "
                             f"(0..{len(names) - 1})")
    kinds = {names[d] for d in devices}
    if len(kinds) > 1:
        raise WorkbenchError(f"--devices mixes GPU kinds ({', '.join(sorted(kinds))}); tune one kind per study")
    return kinds.pop()


def check_budget(*, trials: int, timeout: float, batch: int, trial_timeout: float) -> None:
    """The numbers of `tune` / `worker` that a typo can make meaningless (0 trials per batch ran no
    trial and exited 0; a watchdog of 0 s fails every trial)."""
    if trials < 1:
        raise WorkbenchError(f"--trials must be >= 1 (got {trials}): the number of new trials for this run")
    if batch < 1:
        raise WorkbenchError(f"--trials-per-batch must be >= 1 (got {batch}): trials measured and profiled "
                             "together per device (default 8)")
    if not timeout > 0:
        raise WorkbenchError(f"--timeout must be > 0 seconds (got {timeout:g})")
    if not trial_timeout > 0:
        raise WorkbenchError(f"--trial-timeout must be > 0 seconds (got {trial_timeout:g}): how long one trial "
                             "may run before the watchdog kills it (default 60)")


def default_study(gpu: GpuProfile, heads: HeadShape, dtype: str, block: int, suite: Suite,
                  emulated_on: str = "") -> str:
    """emulated_on: the attached GPU's profile when emulating, so an emulated study never shares a
    name (and trials) with one measured on the real GPU."""
    g = f"{gpu.name}-emu-{emulated_on}" if emulated_on else gpu.name
    return f"{g}-{heads.model}-tp{heads.tp}-{dtype}-blk{block}-{suite.name}"


def emulate_mode(emulate: bool | None) -> str:
    """--emulate / --no-emulate / neither -> 'on' / 'off' / 'auto'."""
    return "auto" if emulate is None else ("on" if emulate else "off")


def make_config(*, gpu: str, model: str, tp: int = 1, dtype: str = "bf16", block_size: int = 16,
                trials: int = 160, timeout: float = 420.0, study: str | None = None, storage: str | None = None,
                profile: str = "ncu", devices: str = "0", allow_mismatch: bool = False,
                suite: str = "default", space: str | None = None, batch: int = 8, trial_timeout: float = 60.0,
                replay: Path | None = None, seed: int | None = None,
                emulate: bool | None = None) -> tuple[TuneConfig, list[str]]:
    from workbench.tune.storage import require_optuna
    notes: list[str] = []
    check_budget(trials=trials, timeout=timeout, batch=batch, trial_timeout=trial_timeout)
    require_optuna()                   # before any other work: the study lives in optuna
    if dtype not in DTYPES:
        raise WorkbenchError(f"--dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    if block_size not in BLOCK_SIZES:
        raise WorkbenchError(f"--block-size {block_size}: use one of {', '.join(map(str, BLOCK_SIZES))}")
    if profile not in PROFILE_MODES:
        raise WorkbenchError(f"--profile {profile!r}: use one of {', '.join(PROFILE_MODES)}")
    heads = head_shape(load_model(model), tp)
    su = load_suite(suite)
    sp = load_space(space)
    devs = parse_devices(devices)
    if not replay:                     # checked first: a host without nvcc cannot tune at all
        from workbench.kernel.build import find_nvcc
        find_nvcc()
    real = attached(devs, replay)
    mode = emulate_mode(emulate)
    if replay and mode == "on":
        raise WorkbenchError("--emulate needs a GPU: a replay answers from recorded measurements")
    # a replay measures nothing, so nothing is emulated: the pre-emulation rule applies
    g, plan, note = resolve_target(gpu, real, emulate="off" if replay else mode, allow_mismatch=allow_mismatch)
    if note:
        notes.append(note)
    notes.append(f"target {g.describe()}")
    if plan:
        notes.append("emulation: timed launches run in a green context of "
                     f"{plan.sms} SMs{', beside an HBM throttle' if plan.throttles else ''}"
                     f"{f', {plan.l2_hold_mb:g} MB of L2 held' if plan.l2_hold_mb else ''}; correctness checks "
                     "run on the whole GPU" + ("; ncu captures run outside the emulation (their L2 and "
                                               "duration are the attached GPU's)" if profile == "ncu" else ""))
    en = enumerate_space(sp, g.arch, head_size=heads.head_size, block_size=block_size, dtype=dtype, group=heads.group)
    if not en.valid:
        why = en.invalid[0][1][0] if en.invalid else "no variant"
        raise WorkbenchError(f"the space {sp.name} has no valid variant for head size {heads.head_size}, block "
                             f"{block_size}, {dtype} on {g.arch} (e.g. {why}); use another --space")
    if not replay:
        if profile == "ncu":
            from workbench.measure.ncu import find_ncu
            find_ncu()
    skipped = su.skipped_buckets(heads, dtype, block_size)
    if skipped:
        notes.append(f"suite {su.name}: buckets over max_kv_gb skipped: {', '.join(skipped)}")
    name = study or default_study(g, heads, dtype, block_size, su, plan.attached_profile if plan else "")
    if storage is None:
        # one default location per study: continue it where it is (SQLite or journal), else a new
        # study goes to SQLite (one device) or a journal file (several devices in one process)
        from workbench.tune.storage import default_home, default_storage
        storage = default_home(name) or default_storage(len(devs) > 1)
    work = user_data_dir() / "runs" / re.sub(r"[^\w.-]", "_", name)
    work.mkdir(parents=True, exist_ok=True)
    cfg = TuneConfig(gpu=g, heads=heads, dtype=dtype, block_size=block_size, suite=su, space=sp, study=name,
                     storage=storage, trials=trials, timeout=timeout, profile=profile, devices=devs, batch=batch,
                     trial_timeout=trial_timeout, seed=seed, workdir=work, device_name=real,
                     emulation=plan.to_dict() if plan else None)
    return cfg, notes


def config_from_study(study: str, storage: str, *, devices: str = "0", trials: int = 64, timeout: float = 420.0,
                      batch: int = 8, trial_timeout: float = 60.0, replay: Path | None = None,
                      allow_mismatch: bool = False) -> TuneConfig:
    """`workbench worker`: join an existing study with the config stored in it."""
    from workbench.tune.storage import open_study
    check_budget(trials=trials, timeout=timeout, batch=batch, trial_timeout=trial_timeout)
    h = open_study(study, storage, None, create=False)
    c = h.study.user_attrs.get("config")
    if not c:
        raise WorkbenchError(f"study {study!r} holds no workbench config: start it with `workbench tune`")
    devs = parse_devices(devices)
    real = attached(devs, replay)
    emu = None
    if c.get("emulation") and not replay:   # a study tuned by emulation is joined by emulation alone
        from workbench.config.profiles import load_gpu
        g = load_gpu(c["gpu"])
        emu = plan_emulation(g, real).to_dict()
    else:
        g, _ = resolve_gpu(c["gpu"], real, allow_mismatch)
    heads = HeadShape(**c["heads"])
    work = user_data_dir() / "runs" / re.sub(r"[^\w.-]", "_", study)
    work.mkdir(parents=True, exist_ok=True)
    return TuneConfig(gpu=g, heads=heads, dtype=c["dtype"], block_size=c["block_size"], suite=Suite.from_dict(c["suite"]),
                      space=Space.from_dict(c["space"]), study=study, storage=storage, trials=trials, timeout=timeout,
                      profile=c.get("profile", "ncu") if not replay else "none", devices=devs, batch=batch,
                      trial_timeout=trial_timeout, workdir=work, device_name=real, role="worker", emulation=emu)


def backend_factory(cfg: TuneConfig, replay: Path | None = None, replay_delay: float = 0.0) -> Any:
    from workbench.tune.backend import ReplayBackend, WorkerBackend
    if replay:
        return lambda dev: ReplayBackend(replay, dev, delay=replay_delay)
    specs = cfg.suite.specs(cfg.heads, cfg.dtype, cfg.block_size)
    setup: dict[str, Any] = {"buckets": [[b.label, s.to_dict()] for b, s in specs],
                             "checks": [s.to_dict() for s in cfg.suite.check_specs(cfg.heads, cfg.dtype, cfg.block_size)],
                             "launches": cfg.launches, **({"emulation": cfg.emulation} if cfg.emulation else {})}
    prof = cfg.suite.profile_spec(cfg.heads, cfg.dtype, cfg.block_size).to_dict()
    return lambda dev: WorkerBackend(dev, setup, trial_timeout=cfg.trial_timeout, log=cfg.workdir / f"worker-gpu{dev}.log",
                                     profile=cfg.profile, profile_dir=cfg.workdir / "profiles", profile_spec=prof)
