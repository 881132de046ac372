"""The real worker process (workbench.tune.worker) driven by the real WorkerBackend on a machine
without a GPU: the worker's measuring function is replaced, through the test-only seam
`WorkerBackend(test_measure="module:function")`, by `fake_measure` below, which crashes, hangs,
exits, fails fatally or succeeds depending on the variant's thread count. Everything else -- the
process, its protocol, the watchdog, the restarts -- is the production code.

This module is imported twice: by pytest, and by each worker process (as `test_worker`, with
this directory on PYTHONPATH) to find `fake_measure`.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from workbench.kernel.variant import Variant
from workbench.tune.trial import OK, BucketTiming, Measurement

HERE = Path(__file__).resolve().parent
TRIAL_TIMEOUT = 3.0

# threads -> what the fake measuring function does with a variant of that many threads
ACTIONS = {64: "ok", 96: "segv", 160: "hang", 192: "exit", 224: "fatal", 288: "raise", 320: "abort"}


def fake_measure(st, req):
    """Runs inside the worker process in place of verify + time on the GPU."""
    from workbench.kernel.build import BuildResult
    v = BuildResult.from_dict(req["build"]).variant
    what = ACTIONS[v.threads]
    if what == "segv":                       # a kernel fault that takes the process down
        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(60)
    if what == "abort":
        os._exit(134)
    if what == "hang":                       # a kernel that never returns
        time.sleep(3600)
    if what == "exit":                       # a library that exits the process, status 0, mid-batch
        sys.exit(0)
    if what == "raise":
        raise RuntimeError("unexpected error in the measuring code")
    if what == "fatal":                      # the worker's own verdict: context gone, reply then exit
        return Measurement.failure(v, "crash", "illegal address (fake)", device=st.device), True
    t = BucketTiming(bucket="b1x1024", median_us=float(v.threads), p10_us=v.threads - 1.0,
                     p90_us=v.threads + 1.0, kv_bytes=1 << 20, efficiency=0.5, split=True)
    return Measurement(variant=v.to_dict(), key=v.key, name=v.name, label=v.label, status=OK, timings=[t],
                       max_rel_error=0.0, device=st.device, gpu=f"pid {os.getpid()}"), False


def _build(threads):
    from workbench.kernel.build import BuildResult
    return BuildResult(variant=Variant(threads=threads), arch="sm_90a", status="cached")


@pytest.fixture
def backend(monkeypatch):
    from workbench.tune.backend import WorkerBackend
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    b = WorkerBackend(0, {"buckets": [], "checks": [], "launches": 30}, trial_timeout=TRIAL_TIMEOUT,
                      setup_timeout=60, profile="none", test_measure="test_worker:fake_measure")
    yield b
    b.close()


def _pid_gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_crash_hang_exit_each_reported_restarted_and_the_rest_complete(backend):
    # a batch as the tuner runs it: failures in the middle, successes after each
    plan = [64, 96, 64, 160, 64, 192, 64, 224, 64, 288, 64, 320, 64]
    want = {64: ("ok", ""), 96: ("failed", "crash"), 160: ("failed", "hang"), 192: ("failed", "crash"),
            224: ("failed", "crash"), 288: ("failed", "launch"), 320: ("failed", "crash")}
    why = {96: "killed by SIGSEGV", 160: f"no answer in {TRIAL_TIMEOUT:.0f} s", 192: "exited with status 0",
           320: "exited with status 134", 224: "illegal address", 288: "RuntimeError: unexpected error"}
    import torch
    gpu = torch.cuda.is_available()
    backend.setup()
    assert backend.gpu["name"].startswith("test worker")
    pids, got = [], []
    for threads in plan:
        pid = backend.proc.pid if backend.alive() else None
        t0 = time.monotonic()
        # the worker's exception path asks torch whether the CUDA context survived: its first
        # import of torch may take longer than the short watchdog this test uses elsewhere
        backend.trial_timeout = 120 if threads == 288 else TRIAL_TIMEOUT
        m = backend.measure(_build(threads))
        got.append((threads, m.status, m.stage))
        assert (m.status, m.stage) == want[threads], (threads, m.stage, m.reason)
        if threads in why:
            assert why[threads] in m.reason, (threads, m.reason)
        if m.ok:
            assert m.timings[0].median_us == threads and m.gpu == f"pid {backend.proc.pid}"
            pids.append(backend.proc.pid)
        elif threads != 288 or not gpu:
            # the process is gone (an exception only ends it when the CUDA context is unusable,
            # as on this CPU-only host), and the next trial gets a new one
            assert pid is not None and _pid_gone(pid) and not backend.alive()
        if threads == 160:                  # the watchdog fires on time, not much later
            assert TRIAL_TIMEOUT <= time.monotonic() - t0 < TRIAL_TIMEOUT + 15
    assert [s for _, s, _ in got].count("ok") == 7             # every trial after a failure completed
    assert backend.restarts == 5 + (not gpu)                    # segv, hang, exit, fatal, abort (+ raise)
    assert len(set(pids)) == 6 + (not gpu)                      # a fresh worker after each of them


def test_worker_that_dies_during_setup_is_an_error_not_a_hang(monkeypatch):
    from workbench.errors import WorkbenchError
    from workbench.tune.backend import WorkerBackend
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    b = WorkerBackend(0, {"buckets": []}, trial_timeout=TRIAL_TIMEOUT, setup_timeout=60, profile="none",
                      test_measure="test_worker:no_such_function")
    t0 = time.monotonic()
    with pytest.raises(WorkbenchError, match="worker died during setup"):
        b.setup()
    assert time.monotonic() - t0 < 30 and b.proc is None


def test_the_seam_is_off_unless_asked(monkeypatch):
    """A stray WORKBENCH_TEST_MEASURE in the environment never reaches a production worker."""
    from workbench.tune import backend as be
    seen = {}

    class P:
        def __init__(self, *a, env=None, **k):
            seen.update(env)
            raise OSError("not started")
    monkeypatch.setenv("WORKBENCH_TEST_MEASURE", "test_worker:fake_measure")
    monkeypatch.setattr(be.subprocess, "Popen", P)
    with pytest.raises(OSError):
        be.WorkerBackend(0, {}, profile="none").setup()
    assert "WORKBENCH_TEST_MEASURE" not in seen
