"""What the GPU ran at while something was measured: SM / memory clocks, temperature, power and the
reasons the driver gave for holding clocks down, sampled through NVML on a background thread.

Why: two engines measured one after the other on the same GPU can run at different clocks, and a
ratio between them then measures the clocks too. Session 25 found one vLLM engine's GEMMs (prefill
and decode alike, attention no part of them) 5–8% slower than the same kernels in the engine before
it, with nothing on record to say whether the clocks differed. The next host, sampled, ran every
engine at the same SM clock: so the clocks are now on record beside every ratio.
"""
from __future__ import annotations

import os
import statistics
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

# nvmlClocksEventReasons bits (nvml.h) -> short names; "idle" and "applications setting" are normal
_REASONS = {0x1: "idle", 0x2: "app-clocks", 0x4: "sw-power-cap", 0x8: "hw-slowdown", 0x10: "sync-boost",
            0x20: "sw-thermal", 0x40: "hw-thermal", 0x80: "hw-power-brake", 0x100: "display-clocks"}


def reason_names(mask: int) -> list[str]:
    return [n for b, n in _REASONS.items() if mask & b]


@dataclass
class ClockStats:
    """Summary of the samples taken over one measured window (None where NVML gave nothing)."""
    samples: int = 0
    seconds: float = 0.0
    sm_mhz_median: float | None = None
    sm_mhz_min: float | None = None
    sm_mhz_max: float | None = None
    mem_mhz_median: float | None = None
    temp_c_max: float | None = None
    power_w_median: float | None = None
    reasons: list[str] = field(default_factory=list)    # every non-idle reason seen in any sample
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ClockStats":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def short(self) -> str:
        if not self.samples:
            return f"no clock samples ({self.error or 'NVML unavailable'})"
        why = f", held down by {'/'.join(self.reasons)}" if self.reasons else ""
        temp = f", ≤ {self.temp_c_max:.0f} °C" if self.temp_c_max is not None else ""
        power = f", {self.power_w_median:.0f} W" if self.power_w_median is not None else ""
        return (f"SM {self.sm_mhz_median:.0f} MHz ({self.sm_mhz_min:.0f}–{self.sm_mhz_max:.0f}), memory "
                f"{self.mem_mhz_median:.0f} MHz{temp}{power}{why}")


Row = tuple[float, float, float, float | None, float | None, int]   # t, sm, mem, temp, power, reasons


def summarize(rows: list[Row], seconds: float, error: str = "") -> ClockStats:
    """rows: (perf_counter time, sm_mhz, mem_mhz, temp_c, power_w, reasons_mask) per sample."""
    rows = [r[1:] for r in rows]
    s = ClockStats(samples=len(rows), seconds=round(seconds, 3), error=error)
    if not rows:
        return s
    sm = [r[0] for r in rows]
    s.sm_mhz_median, s.sm_mhz_min, s.sm_mhz_max = statistics.median(sm), min(sm), max(sm)
    s.mem_mhz_median = statistics.median(r[1] for r in rows)
    temps = [r[2] for r in rows if r[2] is not None]
    s.temp_c_max = max(temps) if temps else None
    power = [r[3] for r in rows if r[3] is not None]
    s.power_w_median = statistics.median(power) if power else None
    mask = 0
    for r in rows:
        mask |= r[4]
    s.reasons = [n for n in reason_names(mask) if n != "idle"]
    return s


def _handle(pynvml: Any) -> Any:
    """The NVML device this process's CUDA device 0 is (NVML ignores CUDA_VISIBLE_DEVICES)."""
    first = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    if first.startswith("GPU-") or first.startswith("MIG-"):
        return pynvml.nvmlDeviceGetHandleByUUID(first)
    return pynvml.nvmlDeviceGetHandleByIndex(int(first) if first.isdigit() else 0)


class ClockSampler:
    """`with ClockSampler() as c: ...; c.stats` — samples every `period_s` until the block ends
    (NVML calls go through ctypes, which releases the GIL: the measured loop is not held up).
    Never raises: without NVML the stats say why and hold no samples."""

    def __init__(self, period_s: float = 0.05):
        self.period_s = period_s
        self.stats = ClockStats()
        self._rows: list[Row] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error = ""
        self._t0 = 0.0

    def _read(self, nv: Any, h: Any) -> Row:
        t = time.perf_counter()
        sm = float(nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM))
        mem = float(nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM))
        try:
            temp: float | None = float(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))
        except Exception:
            temp = None
        try:
            power: float | None = nv.nvmlDeviceGetPowerUsage(h) / 1000.0
        except Exception:
            power = None
        try:
            get = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
                nv.nvmlDeviceGetCurrentClocksThrottleReasons
            mask = int(get(h))
        except Exception:
            mask = 0
        return t, sm, mem, temp, power, mask

    def _loop(self, nv: Any, h: Any) -> None:
        while not self._stop.is_set():
            try:
                self._rows.append(self._read(nv, h))
            except Exception as e:            # a sample that fails ends sampling, not the measurement
                self._error = f"{type(e).__name__}: {e}"[:200]
                return
            self._stop.wait(self.period_s)

    def __enter__(self) -> "ClockSampler":
        self._t0 = time.perf_counter()
        if os.environ.get("WORKBENCH_CLOCKS", "1") == "0":     # to A/B the sampler's own cost
            self._error = "sampling off (WORKBENCH_CLOCKS=0)"
            return self
        try:
            import pynvml as nv
            nv.nvmlInit()
            h = _handle(nv)
        except Exception as e:
            self._error = f"NVML unavailable ({type(e).__name__}: {e})"[:200]
            return self
        self._thread = threading.Thread(target=self._loop, args=(nv, h), daemon=True, name="wb-clocks")
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        self.stats = summarize(list(self._rows), time.perf_counter() - self._t0, self._error)

    def between(self, t0: float, t1: float) -> ClockStats:
        """The samples taken in [t0, t1] (perf_counter times, e.g. a decode window); all of them if
        none falls inside (a window shorter than the sampling period)."""
        inside = [r for r in self._rows if t0 <= r[0] <= t1]
        return summarize(inside or list(self._rows), (t1 - t0) if inside else self.stats.seconds, self._error)
