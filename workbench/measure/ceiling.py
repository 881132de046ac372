"""The GPU's achievable HBM read bandwidth, probed once per GPU + driver and cached.

Efficiency everywhere = KV bytes read / time / this ceiling.
"""
from __future__ import annotations

import ctypes
import json
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

from workbench.measure.gpuinfo import GpuInfo, gpu_info
from workbench.config.paths import cache_dir

PROBE_BYTES = 4 << 30        # far past any L2: every read goes to HBM


@dataclass(frozen=True)
class Ceiling:
    gbps: float                 # median read bandwidth, GB/s (1e9 bytes)
    p10_gbps: float
    p90_gbps: float
    bytes_read: int
    launches: int
    gpu: str
    driver: str
    measured_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cache_file():
    return cache_dir() / "ceilings.json"


def cached_ceiling(info: GpuInfo) -> Ceiling | None:
    try:
        d = json.loads(_cache_file().read_text())[f"{info.name}|{info.driver}"]
        return Ceiling(**d)
    except (OSError, KeyError, ValueError, TypeError):
        return None


def read_ceiling(device_index: int = 0, *, refresh: bool = False, launches: int = 20) -> Ceiling:
    """Median over `launches` of one read pass over a 4 GiB buffer (16-byte loads)."""
    import torch

    from workbench.kernel.build import build_source
    from workbench.kernel.launch import Module

    info = gpu_info(device_index)
    if not refresh and (c := cached_ceiling(info)):
        return c
    mod = Module(build_source("readprobe.cu", info.arch), device_index)
    dev = torch.device("cuda", device_index)
    free, _ = torch.cuda.mem_get_info(device_index)
    nbytes = min(PROBE_BYTES, free // 3) // 16 * 16
    buf = torch.randint(-2**31, 2**31 - 1, (nbytes // 4,), dtype=torch.int32, device=dev)
    sink = torch.zeros(4, dtype=torch.int32, device=dev)
    args = [ctypes.c_void_p(buf.data_ptr()), ctypes.c_longlong(nbytes // 16), ctypes.c_void_p(sink.data_ptr())]
    grid = (info.sm_count * 4, 1, 1)
    stream = torch.cuda.current_stream(dev).cuda_stream
    for _ in range(3):
        mod.launch("wb_read_probe", grid, 512, 0, args, stream)
    times = []
    for _ in range(launches):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        mod.launch("wb_read_probe", grid, 512, 0, args, stream)
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e) / 1e3)
    mod.close()
    del buf
    bw = sorted(nbytes / t / 1e9 for t in times)
    q = statistics.quantiles(bw, n=10)
    c = Ceiling(gbps=statistics.median(bw), p10_gbps=q[0], p90_gbps=q[-1], bytes_read=nbytes,
                launches=launches, gpu=info.name, driver=info.driver,
                measured_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    f = _cache_file()
    try:
        all_ = json.loads(f.read_text())
    except (OSError, ValueError):
        all_ = {}
    all_[f"{info.name}|{info.driver}"] = c.to_dict()
    f.write_text(json.dumps(all_, indent=1))
    return c
