"""The emulation on the GPU (plan: workbench/measure/emulation.py; kernels: kernels/emulate.cu).

`Emulation(plan, device).start()` makes a CUDA green context holding the target's SMs (and one of
the SMs left), an L2 hold (persisting lines over a set-aside region) and a throttle calibrated so
the read ceiling inside the green context is the target's. `with emu.measuring():` then runs the
throttle and makes the green context's stream torch's current stream, so variant launches, CUDA
events, the timing gate and graph replays all land on the target's SMs.

Inside `measuring()` nothing may synchronise the whole device: the throttle runs until told to
stop, so a device-wide sync would wait for it (timing.py synchronises streams for this reason).
GPU imports happen inside functions: this module imports on a machine without CUDA.
"""
from __future__ import annotations

import ctypes
import statistics
import time
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Iterator

from workbench.errors import WorkbenchError
from workbench.measure.emulation import EmulationPlan, calibrate, hold_every, throttle_period_ns

THROTTLE_BYTES = 2 << 30          # streamed by the throttle: far past any L2
PROBE_BYTES = 4 << 30
# A timed region (one trial's buckets, one peer's shape) lasts seconds; a throttle still running
# after this was left by a dead host or a device-wide synchronize inside measuring(): it stops
# itself and the region is reported as not emulated (an error, never a silent wrong number).
THROTTLE_TIMEOUT_NS = 30 * 10**9


def _drv() -> Any:
    from workbench.kernel.launch import _driver
    return _driver()


def _ok(result: Any, what: str) -> Any:
    from workbench.kernel.launch import _check
    try:
        return _check(result, what)
    except Exception as e:              # driver refusals here are host limits a user should read
        raise WorkbenchError(f"emulation: {e}") from None


class GreenSplit:
    """The device's SMs split in two green contexts: `sms` for the measured work, the rest for the
    throttle (`rest_sms`, 0 when nothing is left). Each has one non-blocking stream."""

    def __init__(self, device_index: int, sms: int):
        from workbench.kernel.launch import ensure_context

        drv = _drv()
        ensure_context(device_index)     # the primary context first: green ones retain it
        dev = _ok(drv.cuDeviceGet(device_index), "cuDeviceGet")
        res = _ok(drv.cuDeviceGetDevResource(dev, drv.CUdevResourceType.CU_DEV_RESOURCE_TYPE_SM),
                  "cuDeviceGetDevResource")
        groups, _, rest = _ok(drv.cuDevSmResourceSplitByCount(1, res, 0, sms), "cuDevSmResourceSplitByCount")
        self.device_sms = int(res.sm.smCount)
        self.sms = int(groups[0].sm.smCount)
        self.rest_sms = int(rest.sm.smCount)
        self._ctxs: list[Any] = []
        self.stream = self._make(dev, groups[0])
        self.rest_stream = self._make(dev, rest) if self.rest_sms else None

    def _make(self, dev: Any, resource: Any) -> Any:
        drv = _drv()
        desc = _ok(drv.cuDevResourceGenerateDesc([resource], 1), "cuDevResourceGenerateDesc")
        g = _ok(drv.cuGreenCtxCreate(desc, dev, drv.CUgreenCtxCreate_flags.CU_GREEN_CTX_DEFAULT_STREAM),
                "cuGreenCtxCreate")
        self._ctxs.append(g)
        return _ok(drv.cuGreenCtxStreamCreate(g, drv.CUstream_flags.CU_STREAM_NON_BLOCKING, 0),
                   "cuGreenCtxStreamCreate")

    def close(self) -> None:
        drv = _drv()
        for s in (self.stream, self.rest_stream):
            if s is not None:
                drv.cuStreamDestroy(s)
        for g in self._ctxs:
            drv.cuGreenCtxDestroy(g)
        self._ctxs = []


def probe_green(device_index: int = 0, sms: int = 80) -> dict[str, Any]:
    """Doctor and the device script: do green contexts work here, and what does asking for `sms` give."""
    try:
        s = GreenSplit(device_index, sms)
    except Exception as e:
        return {"ok": False, "asked": sms, "error": str(e)}
    out = {"ok": True, "asked": sms, "sms": s.sms, "rest_sms": s.rest_sms, "device_sms": s.device_sms}
    s.close()
    return out


def graph_sm_ids(module: Any, capture: Any, replay: Any, blocks: int, spin_ns: int = 200_000) -> list[int]:
    """The SM each CTA of a CUDA graph ran on (kernels/emulate.cu wb_emu_smid, -1: never ran): the
    graph captured on torch stream `capture`, replayed on torch stream `replay`. Green contexts hold
    their SMs for direct launches; whether a graph's kernels do depends on where it was captured."""
    import torch

    out = torch.full((blocks,), -1, dtype=torch.int32, device=capture.device)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g, stream=capture):
        module.launch("wb_emu_smid", (blocks, 1, 1), 32, 0, [ctypes.c_void_p(out.data_ptr()),
                                                             ctypes.c_ulonglong(spin_ns)], capture.cuda_stream)
    out.fill_(-1)
    torch.cuda.synchronize()
    with torch.cuda.stream(replay):
        g.replay()
    replay.synchronize()
    return out.tolist()


def _plain_stream() -> Any:
    drv = _drv()
    return _ok(drv.cuStreamCreate(drv.CUstream_flags.CU_STREAM_NON_BLOCKING), "cuStreamCreate")


class Emulation:
    """One device's emulation of `plan`; start() once, measuring() around every timed region."""

    def __init__(self, plan: EmulationPlan, device_index: int = 0, *, calibrate_to: float | None = None):
        self.plan = plan
        self.device_index = device_index
        self.calibrate_to = calibrate_to         # a read ceiling goal other than the plan's (validation)
        self.split: GreenSplit | None = None
        self.rate_gbps = 0.0
        self._running = False
        self._graphs_confined: bool | None = None

    # ---- setup --------------------------------------------------------------------------------
    def start(self) -> "Emulation":
        import torch

        from workbench.kernel.build import build_source
        from workbench.kernel.launch import Module, device_attr
        from workbench.measure.gpuinfo import gpu_info

        torch.cuda.set_device(self.device_index)
        info = gpu_info(self.device_index)
        self.info = info
        dev = torch.device("cuda", self.device_index)
        self._emu = Module(build_source("emulate.cu", info.arch), self.device_index)
        self._probe = Module(build_source("readprobe.cu", info.arch), self.device_index)
        p = self.plan
        if p.splits:
            self.split = GreenSplit(self.device_index, p.sms)
            self._measure_stream = self.split.stream
        else:
            self._measure_stream = _plain_stream()
        self.sms = self.split.sms if self.split else info.sm_count
        self.placement = p.throttle_placement
        if self.placement == "outside" and not (self.split and self.split.rest_stream is not None):
            self.placement = "shared"
        self._throttle_stream = (self.split.rest_stream if self.placement == "outside" else _plain_stream())
        throttle_sms = self.split.rest_sms if self.placement == "outside" else info.sm_count
        # outside: 4 CTAs of 256 per SM keep enough bytes in flight; shared: 1 CTA of 256 per SM
        # (8 of 64 warps, 8K of 64K registers: the least that still pulls ~2 TB/s at full tilt),
        # the rest of each SM left to the measured work
        self._throttle_grid = throttle_sms * (4 if self.placement == "outside" else 1)
        self._throttle_block = 256
        self.stream = torch.cuda.ExternalStream(int(self._measure_stream), device=dev)
        self._flag = torch.zeros(2, dtype=torch.int32, pin_memory=True)   # [stop, timed out], mapped
        self._sink = torch.zeros(4, dtype=torch.int32, device=dev)
        # what the throttle streams (a hold alone needs only a trickle, so a smaller buffer)
        nbuf = THROTTLE_BYTES if p.throttles or self.calibrate_to else (256 << 20 if p.l2_hold_mb > 0 else 0)
        self._buf = torch.randint(-2**31, 2**31 - 1, (nbuf // 4,), dtype=torch.int32, device=dev) if nbuf else None
        self._hold, hold_bytes = None, 0
        if p.l2_hold_mb > 0:
            hold_bytes = self._set_up_hold(int(p.l2_hold_mb * 2**20), device_attr)
        free, _ = torch.cuda.mem_get_info(self.device_index)
        n = min(PROBE_BYTES, free // 4) // 16 * 16
        self._probe_buf = torch.randint(-2**31, 2**31 - 1, (n // 4,), dtype=torch.int32, device=dev)
        torch.cuda.synchronize()
        full = self._ceiling(self._plain_probe_stream(), info.sm_count, 0.0)
        free_inside = self._ceiling(self._measure_stream, self.sms, 0.0)
        goal = self.calibrate_to or p.ceiling_goal(full)
        samples: list[tuple[float, float]] = []
        achieved = free_inside
        if p.throttles or self.calibrate_to:
            self.rate_gbps, achieved, samples = calibrate(
                lambda r: self._ceiling(self._measure_stream, self.sms, r), goal, max_rate=full)
        elif hold_bytes:
            achieved = self._ceiling(self._measure_stream, self.sms, 0.0)
        self.plan = p.with_measured(sms=self.sms, rest_sms=self.split.rest_sms if self.split else 0,
                                    placement=self.placement, attached_ceiling_gbps=full,
                                    free_gbps=free_inside, goal_gbps=goal, achieved_gbps=achieved,
                                    throttle_gbps=self.rate_gbps, calibration=samples,
                                    l2_hold_bytes=hold_bytes, device=info.name, driver=info.driver)
        return self

    def _set_up_hold(self, want: int, device_attr: Any) -> int:
        """Set aside `want` bytes of L2 for persisting lines and mark a region of that size
        persisting on the throttle's stream; touch it once. Returns the bytes held (capped by the
        device's persisting maximum)."""
        import torch

        drv = _drv()
        cap = device_attr(self.device_index, "MAX_PERSISTING_L2_CACHE_SIZE")
        win = device_attr(self.device_index, "MAX_ACCESS_POLICY_WINDOW_SIZE")
        n = min(want, cap, win) // 16 * 16
        if n <= 0:
            return 0
        _ok(drv.cuCtxSetLimit(drv.CUlimit.CU_LIMIT_PERSISTING_L2_CACHE_SIZE, n), "cuCtxSetLimit(persisting L2)")
        self._hold = torch.zeros(n // 4, dtype=torch.int32, device=torch.device("cuda", self.device_index))
        v = drv.CUstreamAttrValue()
        w = v.accessPolicyWindow
        w.base_ptr, w.num_bytes, w.hitRatio = self._hold.data_ptr(), n, 1.0
        w.hitProp = drv.CUaccessProperty.CU_ACCESS_PROPERTY_PERSISTING
        w.missProp = drv.CUaccessProperty.CU_ACCESS_PROPERTY_STREAMING
        v.accessPolicyWindow = w
        _ok(drv.cuStreamSetAttribute(self._throttle_stream,
                                     drv.CUstreamAttrID.CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW, v),
            "cuStreamSetAttribute(access policy window)")
        args = [ctypes.c_void_p(self._hold.data_ptr()), ctypes.c_longlong(n // 16), ctypes.c_void_p(self._sink.data_ptr())]
        self._emu.launch("wb_emu_touch", (self._throttle_grid, 1, 1), 256, 0, args, int(self._throttle_stream))
        _ok(drv.cuStreamSynchronize(self._throttle_stream), "cuStreamSynchronize")
        return n

    def _plain_probe_stream(self) -> Any:
        if not hasattr(self, "_full_stream"):
            self._full_stream = _plain_stream()
        return self._full_stream

    # ---- the throttle -------------------------------------------------------------------------
    def _throttle_on(self, rate_gbps: float) -> None:
        if self._buf is None or (rate_gbps <= 0 and self._hold is None):
            return
        threads = self._throttle_grid * self._throttle_block
        period = throttle_period_ns(threads, rate_gbps)
        buf = self._buf
        hold16 = self._hold.numel() // 4 if self._hold is not None else 0
        every = hold_every(hold16 * 16, threads, period)
        self._flag[0] = self._flag[1] = 0
        args = [ctypes.c_void_p(buf.data_ptr()), ctypes.c_longlong(buf.numel() // 4),
                ctypes.c_void_p(self._flag.data_ptr()), ctypes.c_double(period),
                ctypes.c_void_p(self._hold.data_ptr() if self._hold is not None else 0), ctypes.c_longlong(hold16),
                ctypes.c_int(every), ctypes.c_ulonglong(THROTTLE_TIMEOUT_NS), ctypes.c_void_p(self._sink.data_ptr())]
        self._emu.launch("wb_emu_throttle", (self._throttle_grid, 1, 1), self._throttle_block, 0, args,
                         int(self._throttle_stream))
        self._running = True
        time.sleep(0.002)                 # the throttle's CTAs resident before the measured work starts

    def _throttle_off(self) -> None:
        if not self._running:
            return
        self._flag[0] = 1
        _ok(_drv().cuStreamSynchronize(self._throttle_stream), "cuStreamSynchronize(throttle)")
        self._running = False
        if int(self._flag[1]):
            raise WorkbenchError(f"emulation: the throttle stopped itself after {THROTTLE_TIMEOUT_NS // 10**9} s "
                                 "inside a timed region, so that region ran unthrottled (a device-wide "
                                 "synchronize inside measuring() waits for the throttle: build and check "
                                 "outside it, time inside)")

    def graphs_confined(self) -> bool:
        """Whether a CUDA graph captured on the measuring stream runs on the green context's SMs only
        (peers are timed as graph replays). Checked once, on the device: one captured on an
        ordinary stream and replayed here did not stay (H200, 2026-11-28: 132 SMs seen, not 80)."""
        if self._graphs_confined is None and self.split is None:
            self._graphs_confined = True           # all SMs: nothing to leave
        if self._graphs_confined is None:
            try:
                seen = set(graph_sm_ids(self._emu, self.stream, self.stream, self.info.sm_count * 4)) - {-1}
                self._graphs_confined = 0 < len(seen) <= self.sms
            except Exception:                   # capture refused on this stream: time eagerly
                import torch
                torch.cuda.synchronize()
                self._graphs_confined = False
        return self._graphs_confined

    def peer_timer(self) -> Any:
        """measure.timing.time_calls as it must run for peers inside the emulation: captured on the
        green stream (eager calls there when a graph would leave its SMs), replays throttled."""
        import functools

        from workbench.measure.timing import time_calls
        return functools.partial(time_calls, stream=self.stream, timed=self.measuring,
                                 graphs=self.graphs_confined())

    @contextmanager
    def measuring(self, rate_gbps: float | None = None) -> Iterator[Any]:
        """Run the throttle (at the calibrated rate) and make the green context's stream torch's
        current stream for the block; yields that stream."""
        import torch

        self._throttle_on(self.rate_gbps if rate_gbps is None else rate_gbps)
        try:
            with torch.cuda.stream(self.stream):
                yield self.stream
        finally:
            self._throttle_off()

    # ---- read ceiling -------------------------------------------------------------------------
    def _ceiling(self, stream: Any, sms: int, rate_gbps: float, launches: int = 10) -> float:
        """Median read bandwidth (GB/s) of the read probe on `stream` over `sms` SMs, beside a
        throttle at `rate_gbps`."""
        import torch

        dev = torch.device("cuda", self.device_index)
        ext = torch.cuda.ExternalStream(int(stream), device=dev)
        nbytes = self._probe_buf.numel() * 4
        args = [ctypes.c_void_p(self._probe_buf.data_ptr()), ctypes.c_longlong(nbytes // 16),
                ctypes.c_void_p(self._sink.data_ptr())]
        bw = []
        self._throttle_on(rate_gbps)
        try:
            for i in range(launches + 2):
                s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                s.record(ext)
                self._probe.launch("wb_read_probe", (sms * 4, 1, 1), 512, 0, args, int(stream))
                e.record(ext)
                e.synchronize()
                if i >= 2:
                    bw.append(nbytes / (s.elapsed_time(e) / 1e3) / 1e9)
        finally:
            self._throttle_off()
        return statistics.median(bw)

    def read_ceiling(self) -> float:
        """The read ceiling inside the emulation, measured now (throttle at the calibrated rate)."""
        return self._ceiling(self._measure_stream, self.sms, self.rate_gbps)

    def ceiling(self) -> Any:
        """A Ceiling (ceiling.py) for results: the achieved read ceiling inside the emulation."""
        from workbench.measure.ceiling import Ceiling
        m = self.plan.measured
        return Ceiling(gbps=m["achieved_gbps"], p10_gbps=m["achieved_gbps"], p90_gbps=m["achieved_gbps"],
                       bytes_read=self._probe_buf.numel() * 4, launches=10,
                       gpu=f"{self.info.name} emulating {self.plan.target} ({self.sms} SMs)",
                       driver=self.info.driver, measured_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    def gpu_info(self) -> Any:
        """The attached GPU's info with the SM count and L2 the measured work gets (rotation pools
        are sized from the target's L2; the name stays the real GPU's)."""
        return replace(self.info, sm_count=self.sms, l2_bytes=int(self.plan.l2_mb * 2**20))

    def close(self) -> None:
        drv = _drv()
        self._throttle_off()
        if self._hold is not None:
            drv.cuCtxResetPersistingL2Cache()
            drv.cuCtxSetLimit(drv.CUlimit.CU_LIMIT_PERSISTING_L2_CACHE_SIZE, 0)
            self._hold = None
        if self.split:
            self.split.close()
            self.split = None


def start_emulation(plan: dict[str, Any] | EmulationPlan, device_index: int = 0) -> Emulation:
    p = plan if isinstance(plan, EmulationPlan) else EmulationPlan.from_dict(plan)
    return Emulation(p, device_index).start()
