"""Where trials are measured. `WorkerBackend`: a worker process on one GPU (workbench.tune.worker),
restarted after a crash, killed by a watchdog when a trial hangs. `ReplayBackend`: answers from
recorded real measurements (JSON), so the tuning loop can be tested on a machine without a GPU.
Both: setup() once, measure(build) per trial, profile(measurements) per batch, measure_peer(name)
once per study (FA3 beside the study: tune.peer_timing)."""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from workbench.errors import WorkbenchError
from workbench.tune.trial import Measurement
from workbench.tune.worker import TEST_MEASURE_ENV
from workbench.kernel.variant import Variant


# what _request returns instead of a reply
_TIMEOUT = "timeout"          # no line within the time allowed: the watchdog fires
_GONE = "gone"                # the protocol stream ended (or could not be written): the process died
_GARBLED = "garbled"          # a line that is not a JSON reply


class WorkerBackend:
    """One worker process on `device`; the watchdog allows `trial_timeout` seconds per trial.

    `test_measure` (tests only): "module:function" that the worker calls instead of verifying
    and timing on the GPU (see workbench.tune.worker), so the crash / restart / watchdog code
    here runs on a machine without one."""

    def __init__(self, device: int, setup: dict[str, Any], *, trial_timeout: float = 120.0,
                 setup_timeout: float = 600.0, log: Path | None = None, profile: str = "ncu",
                 profile_dir: Path | None = None, profile_spec: dict[str, Any] | None = None,
                 test_measure: str | None = None):
        self.device = device
        self.test_measure = test_measure
        self._setup_req = {**setup, "op": "setup", "device": device}
        self.trial_timeout = trial_timeout
        self.setup_timeout = setup_timeout
        self.log = log
        self.profile_mode = profile
        self.profile_dir = profile_dir
        self.profile_spec = profile_spec
        self.proc: subprocess.Popen | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.gpu: dict[str, Any] = {}
        self.ceiling: dict[str, Any] = {}
        self.restarts = 0

    # ---- process management ---------------------------------------------------------------
    def _start(self) -> None:
        err = open(self.log, "a") if self.log else subprocess.DEVNULL
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop(TEST_MEASURE_ENV, None)
        if self.test_measure:
            env[TEST_MEASURE_ENV] = self.test_measure
        self.proc = subprocess.Popen([sys.executable, "-m", "workbench.tune.worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=err, text=True, env=env,
                                     start_new_session=True)
        self._lines = queue.Queue()
        q, out = self._lines, self.proc.stdout

        def pump() -> None:
            for line in out:
                q.put(line)
            q.put(None)
        threading.Thread(target=pump, daemon=True).start()
        r = self._request(self._setup_req, self.setup_timeout)
        if not isinstance(r, dict) or not r.get("ok"):
            why = (f"worker gave no answer to setup in {self.setup_timeout:.0f} s" if r == _TIMEOUT else
                   f"worker died during setup ({self._exit_status()})" if r == _GONE else
                   "worker answered setup with an unreadable line" if r == _GARBLED else
                   r.get("error", "setup failed"))
            self.stop()
            raise WorkbenchError(f"GPU {self.device}: {why}" + (f" (log: {self.log})" if self.log else ""))
        self.gpu, self.ceiling = r["gpu"], r["ceiling"]

    def _request(self, req: dict[str, Any], timeout: float) -> dict[str, Any] | str:
        """Send, wait for one reply: the reply, or _TIMEOUT (the watchdog fired: no line in
        `timeout` s), _GONE (the protocol stream ended: the process died) or _GARBLED."""
        assert self.proc and self.proc.stdin
        try:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return _GONE
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            return _TIMEOUT
        if line is None:
            return _GONE
        try:
            reply = json.loads(line)
        except ValueError:
            return _GARBLED
        return reply if isinstance(reply, dict) else _GARBLED

    def _exit_status(self) -> str:
        """How the worker ended, once its protocol stream closed (its exit may trail the close)."""
        if self.proc is None:
            return "gone"
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            return "stream closed, process still running"
        if rc < 0:
            try:
                return f"killed by {signal.Signals(-rc).name}"
            except ValueError:
                return f"killed by signal {-rc}"
        return f"exited with status {rc} without answering"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)    # a hung kernel ignores anything gentler
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None

    def setup(self) -> None:
        if not self.alive():
            self._start()

    # ---- trials ------------------------------------------------------------------------------
    def measure(self, build: Any) -> Measurement:
        self.setup()
        t0 = time.monotonic()
        r = self._request({"op": "measure", "build": build.to_dict()}, self.trial_timeout)
        v: Variant = build.variant
        if not isinstance(r, dict):
            # the watchdog's verdict is the missing line, not whether the process still runs
            # (a dead worker's stream can close before its exit status is there to see)
            if r == _TIMEOUT:
                stage, why = "hang", f"no answer in {self.trial_timeout:.0f} s: worker killed (watchdog)"
            elif r == _GONE:
                stage, why = "crash", f"worker process died ({self._exit_status()})"
            else:
                stage, why = "crash", "worker answered with an unreadable line: killed"
            self.stop()
            self.restarts += 1
            return Measurement.failure(v, stage, why + " and restarted", device=self.device,
                                       gpu=self.gpu.get("name", ""))
        if not r.get("ok"):
            if r.get("fatal"):
                self.stop()
                self.restarts += 1
            return Measurement.failure(v, "launch", r.get("error", "?"), device=self.device, gpu=self.gpu.get("name", ""))
        m = Measurement.from_dict(r["measurement"])
        if r.get("fatal"):
            self.stop()                                # its context is gone; next trial restarts it
            self.restarts += 1
        m.seconds = time.monotonic() - t0
        return m

    def measure_peer(self, peer: str) -> Any:
        """A peer (FA3) timed by the worker on the suite's buckets (tune.peer_timing). Its reason
        when it cannot load; a worker it takes down is restarted for the next trial."""
        from workbench.tune.peer_timing import FAILED, PeerTiming
        self.setup()
        r = self._request({"op": "peer", "peer": peer}, self.setup_timeout)
        if isinstance(r, dict) and r.get("ok"):
            return PeerTiming.from_dict(r["peer"])
        why = (r.get("error", "?") if isinstance(r, dict) else
               f"no answer in {self.setup_timeout:.0f} s" if r == _TIMEOUT else f"worker process died "
               f"({self._exit_status()})" if r == _GONE else "worker answered with an unreadable line")
        if not isinstance(r, dict) or r.get("fatal"):
            self.stop()
            self.restarts += 1
        return PeerTiming(peer=peer, status=FAILED, reason=why[:300], gpu=self.gpu.get("name", ""))

    def profile(self, ms: list[Measurement], on_stage: Callable[[str], None] | None = None) -> str:
        """ncu (or nsys) over the passing variants of a batch, on the suite's profile shape; one
        profiler process per batch so its start-up is paid once. Fills m.ncu / m.nsys_us."""
        todo = [m for m in ms if m.ok]
        if not todo or self.profile_mode == "none" or not self.profile_spec:
            return ""
        from workbench.measure.job import Job
        job = Job(variants=[m.variant for m in todo], workloads=[self.profile_spec], launches=1, warmup=1,
                  device=self.device, ceiling=False, profiler=self.profile_mode)
        d = (self.profile_dir or Path(".")) / f"gpu{self.device}-{time.strftime('%H%M%S')}-{todo[0].key[:6]}"
        try:
            if self.profile_mode == "ncu":
                from workbench.measure.ncu import profile_job
                _, metrics, _ = profile_job(job, d, launches=1)
                by = {mm.nvtx_range: mm.to_dict() for mm in metrics}
            else:
                from workbench.measure.nsys import trace_job
                _, ranges, note = trace_job(Job(**{**job.to_dict(), "launches": 10}), d)
                if ranges is None:
                    return f"nsys: {note}"
                by = {r.nvtx_range: {"nsys_us": r.median_launch_us} for r in ranges}
        except WorkbenchError as e:
            return f"{self.profile_mode}: {e}"
        from workbench.measure.timing import nvtx_range_name
        from workbench.measure.workload import WorkloadSpec
        wl = WorkloadSpec.from_dict(self.profile_spec).label
        missing = []
        for m in todo:
            got = by.get(nvtx_range_name(m.label, wl))
            if got and self.profile_mode == "ncu":
                m.ncu = got
            elif got:
                m.nsys_us = got["nsys_us"]
            else:
                missing.append(m.label)
        return f"{self.profile_mode}: no kernels captured for {', '.join(missing)}" if missing else ""

    def close(self) -> None:
        if self.alive():
            try:
                assert self.proc and self.proc.stdin
                self.proc.stdin.write('{"op": "quit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=20)
            except Exception:
                pass
        self.stop()


class ReplayBackend:
    needs_build = False

    """Measurements recorded on a real GPU, replayed by variant key (tests, demos).

    File: {"recorded": "...", "gpu": {...}, "ceiling": {...}, "measurements": [Measurement dicts]}.
    A variant that was never recorded fails with stage "not-recorded"."""

    def __init__(self, path: str | Path, device: int = 0, delay: float = 0.0):
        p = Path(path)
        try:
            d = json.loads(p.read_text())
        except (OSError, ValueError) as e:
            raise WorkbenchError(f"{p}: not a readable replay file ({e})") from None
        self.source = str(p)
        self.device = device
        self.delay = delay
        self.gpu = d.get("gpu", {})
        self.ceiling = d.get("ceiling", {})
        self.recorded = d.get("recorded", "")
        self._by_key = {m["key"]: m for m in d.get("measurements", [])}
        self._peers = d.get("peers") or {}          # FA3 timed beside them, where it was
        # one real failure per test-only fault kind, played back for any variant with that fault
        self._fault = {m["variant"].get("fault"): m for m in d.get("measurements", [])
                       if m["variant"].get("fault", "none") != "none"}
        self.restarts = 0
        self.needs_build = False

    def setup(self) -> None:
        pass

    def measure(self, build: Any) -> Measurement:
        v = build.variant
        if self.delay:
            time.sleep(self.delay)
        rec = self._by_key.get(v.key)
        if rec is None and v.fault in self._fault:
            f = self._fault[v.fault]
            return Measurement.failure(v, f["stage"], f"{f['reason']} (recorded for {f['name']})",
                                       device=self.device, gpu=self.gpu.get("name", ""))
        if rec is None:
            return Measurement.failure(v, "not-recorded", f"{v.name} is not in {self.source}",
                                       device=self.device, gpu=self.gpu.get("name", ""))
        m = Measurement.from_dict(rec)
        m.device = self.device
        return m

    def measure_peer(self, peer: str) -> Any:
        """The peer's timings recorded with the measurements ("peers": {name: PeerTiming dict});
        a replay without them answers that it was not recorded (as a host without FA3 would)."""
        from workbench.tune.peer_timing import UNAVAILABLE, PeerTiming
        if peer in self._peers:
            return PeerTiming.from_dict(self._peers[peer])
        return PeerTiming(peer=peer, status=UNAVAILABLE, reason=f"not recorded in {self.source}",
                          gpu=self.gpu.get("name", ""))

    def profile(self, ms: list[Measurement], on_stage: Callable[[str], None] | None = None) -> str:
        return ""                     # recorded measurements carry their ncu metrics already

    def close(self) -> None:
        pass
