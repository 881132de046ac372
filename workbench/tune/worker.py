"""The measuring worker: one process per GPU, owning its CUDA context, so a variant that wrecks
the context (illegal address) or hangs takes down this process only; the tuner restarts it.

Protocol: one JSON object per line on stdin; one JSON reply per line on the protocol stream
(the process's original stdout; anything else printed goes to stderr).
    {"op": "setup", "device": 0, "buckets": [[label, spec], ...], "checks": [spec, ...],
     "launches": 30}                      -> {"ok": true, "gpu": {...}, "ceiling": {...}}
    {"op": "measure", "build": {...}}     -> {"ok": true, "measurement": {...}, "fatal": bool}
    {"op": "peer", "peer": "fa3"}         -> {"ok": true, "peer": {...}}  (tune.peer_timing.PeerTiming)
    {"op": "quit"}
A reply with "fatal": true means the context is gone: the worker exits after sending it.

Test-only seam: with WORKBENCH_TEST_MEASURE=module:function in its environment (set by
WorkerBackend(test_measure=...)), setup touches no GPU and `measure` calls function(state,
request) -> (Measurement, fatal) instead of verifying and timing on the GPU, so tests can drive
this process, and the backend's crash / restart / watchdog code, on a machine without one.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from typing import Any

from workbench.errors import VariantRejected, WorkbenchError
from workbench.tune.trial import OK, BucketTiming, Measurement

TEST_MEASURE_ENV = "WORKBENCH_TEST_MEASURE"     # tests only: see the module docstring


class _State:
    def __init__(self) -> None:
        self.device = 0
        self.info: Any = None
        self.ceiling: Any = None
        self.buckets: list[tuple[str, Any]] = []
        self.checks: list[Any] = []
        self.launches = 30
        self.rotations: dict[str, Any] = {}
        self.emu: Any = None             # an Emulation (measure/greenctx.py) when tuning for a smaller GPU


def _setup(st: _State, req: dict[str, Any]) -> dict[str, Any]:
    import torch

    from workbench.measure.ceiling import read_ceiling
    from workbench.measure.gpuinfo import gpu_info
    from workbench.measure.workload import WorkloadSpec, build_rotation

    if not torch.cuda.is_available():
        raise WorkbenchError("no CUDA device visible to the worker")
    st.device = int(req.get("device", 0))
    torch.cuda.set_device(st.device)
    st.info = gpu_info(st.device)
    if req.get("emulation"):           # timing runs inside it; rotation pools sized by the target's L2
        from workbench.measure.greenctx import start_emulation
        st.emu = start_emulation(req["emulation"], st.device)
        st.info, st.ceiling = st.emu.gpu_info(), st.emu.ceiling()
    else:
        st.ceiling = read_ceiling(st.device)
    st.buckets = [(label, WorkloadSpec.from_dict(s)) for label, s in req["buckets"]]
    st.checks = [WorkloadSpec.from_dict(s) for s in req.get("checks", [])]
    st.launches = int(req.get("launches", 30))
    # every bucket's rotation pool is built once and reused by every trial
    min_bytes = 4 * max(st.info.l2_bytes, 1 << 20)
    for label, spec in st.buckets:
        st.rotations[label] = build_rotation(spec, f"cuda:{st.device}", min_bytes)
    torch.cuda.synchronize()
    gpu = {**st.info.to_dict(), **({"emulation": st.emu.plan.to_dict()} if st.emu else {})}
    return {"ok": True, "gpu": gpu, "ceiling": st.ceiling.to_dict()}


def _context_alive() -> bool:
    import torch
    try:
        torch.cuda.synchronize()
        torch.zeros(1, device="cuda").add_(1).item()
        return True
    except Exception:                          # sticky CUDA error: this context is done
        return False


def _measure(st: _State, req: dict[str, Any]) -> tuple[Measurement, bool]:
    from workbench.kernel.build import BuildResult
    from workbench.measure.check import check_variant
    from workbench.kernel.launch import load
    from workbench.measure.timing import time_variant

    b = BuildResult.from_dict(req["build"])
    v = b.variant
    t0 = time.perf_counter()
    gpu = st.info.name
    if not b.ok:
        return Measurement.failure(v, "build", b.error or b.status, gpu=gpu, device=st.device), False
    try:
        k = load(b, st.device, st.emu.sms if st.emu else None)
    except Exception as e:                     # bad cubin / driver refusal
        return Measurement.failure(v, "load", str(e), gpu=gpu, device=st.device), not _context_alive()
    try:
        worst = 0.0
        for spec in st.checks:
            c = check_variant(k, spec, f"cuda:{st.device}")
            if not c.ok:
                stage = {"rejected": "rejected", "fault": "launch"}.get(c.status, "check")
                fatal = c.status == "fault" and not _context_alive()
                return Measurement.failure(v, "crash" if fatal else stage, f"{spec.label}: {c.detail}",
                                           gpu=gpu, device=st.device), fatal
            worst = max(worst, c.rel_error)
        timings = []
        with st.emu.measuring() if st.emu else contextlib.nullcontext():     # checks above stay outside
            for i, (label, spec) in enumerate(st.buckets):
                try:
                    r = time_variant(k, spec, st.info, launches=st.launches, ceiling_gbps=st.ceiling.gbps,
                                     device=f"cuda:{st.device}", rotation=st.rotations[label],
                                     warmup_s=0.05 if i == 0 else 0.01)
                except VariantRejected as e:
                    return Measurement.failure(v, "rejected", f"{label}: {e}", gpu=gpu, device=st.device), False
                timings.append(BucketTiming(bucket=label, median_us=r.median_us, p10_us=r.p10_us, p90_us=r.p90_us,
                                            kv_bytes=r.kv_bytes, efficiency=r.efficiency, split=r.split))
    except Exception as e:                     # launch failure mid-timing
        fatal = not _context_alive()
        return Measurement.failure(v, "crash" if fatal else "launch", str(e).strip().splitlines()[-1][:500],
                                   gpu=gpu, device=st.device), fatal
    finally:
        try:
            k.close()
        except Exception:
            pass
    return Measurement(variant=v.to_dict(), key=v.key, name=v.name, label=v.label, status=OK,
                       timings=timings, max_rel_error=worst, seconds=time.perf_counter() - t0,
                       device=st.device, gpu=gpu), False


def _peer(st: _State, req: dict[str, Any]) -> dict[str, Any]:
    """A peer (FA3) timed on this worker's buckets, as `workbench bench` times it: the × FA3 of
    tune's tables (tune.peer_timing). Never raises: a peer that cannot load says why."""
    from workbench.tune.peer_timing import time_peer
    info = st.info
    min_bytes = 4 * max(getattr(info, "l2_bytes", 0), 1 << 20)
    emu = getattr(st, "emu", None)          # tuning for a smaller GPU: the peer is timed inside it too,
    timer = None                            # but built outside (building syncs the device: it would
    if emu is not None:                     # wait on the throttle)
        timer = emu.peer_timer()
    p = time_peer(req.get("peer", "fa3"), st.buckets, info, ceiling_gbps=getattr(st.ceiling, "gbps", 0.0),
                  launches=st.launches, min_bytes=min_bytes, timer=timer)
    return {"ok": True, "peer": p.to_dict()}


def _test_hooks(spec: str) -> tuple[Any, Any]:
    """(setup, measure) for the test-only seam: no GPU at setup, `module:function` measures."""
    import importlib

    mod, _, fn = spec.partition(":")
    measure = getattr(importlib.import_module(mod), fn)

    def setup(st: _State, req: dict[str, Any]) -> dict[str, Any]:
        from workbench.measure.workload import WorkloadSpec
        st.device = int(req.get("device", 0))
        st.buckets = [(label, WorkloadSpec.from_dict(s)) for label, s in req.get("buckets", [])]
        return {"ok": True, "gpu": {"name": f"test worker ({spec})"}, "ceiling": {}}
    return setup, measure


def main() -> int:
    setup, measure = _setup, _measure
    if os.environ.get(TEST_MEASURE_ENV):
        setup, measure = _test_hooks(os.environ[TEST_MEASURE_ENV])
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)                              # stray prints (libraries) must not corrupt the protocol
    sys.stdout = sys.stderr
    st = _State()

    def reply(obj: dict[str, Any]) -> None:
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        op = req.get("op")
        try:
            if op == "setup":
                reply(setup(st, req))
            elif op == "measure":
                m, fatal = measure(st, req)
                reply({"ok": True, "measurement": m.to_dict(), "fatal": fatal})
                if fatal:
                    return 3
            elif op == "peer":
                reply(_peer(st, req))
            elif op == "quit":
                return 0
            else:
                reply({"ok": False, "error": f"unknown op {op!r}"})
        except WorkbenchError as e:
            reply({"ok": False, "error": str(e)})
        except Exception as e:                 # never die silently: the tuner gets the reason
            reply({"ok": False, "error": f"{type(e).__name__}: {e}", "fatal": not _context_alive()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
