"""What GPU a measurement ran on: recorded with every result."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class GpuInfo:
    name: str
    driver: str
    cuda_runtime: str
    torch: str
    compute_capability: str
    sm_count: int
    l2_bytes: int
    sm_clock_mhz: int = 0        # at the time of reading (nvidia-ml-py), 0 if unknown
    mem_clock_mhz: int = 0
    uuid: str = ""

    @property
    def arch(self) -> str:
        major, minor = self.compute_capability.split(".")
        return f"sm_{major}{minor}" + ("a" if major == "9" else "")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GpuInfo":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def _nvml(index: int) -> dict[str, Any]:
    try:
        import pynvml
    except ImportError:
        return {}
    try:
        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(index)
        drv = pynvml.nvmlSystemGetDriverVersion()
        uuid = pynvml.nvmlDeviceGetUUID(h)
        return {"driver": drv.decode() if isinstance(drv, bytes) else drv,
                "uuid": uuid.decode() if isinstance(uuid, bytes) else uuid,
                "sm_clock_mhz": pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM),
                "mem_clock_mhz": pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_MEM)}
    except Exception:  # NVML missing or not permitted: record what torch knows
        return {}


def gpu_info(index: int = 0) -> GpuInfo:
    import torch

    p = torch.cuda.get_device_properties(index)
    extra = _nvml(index)
    return GpuInfo(name=p.name, driver=extra.get("driver", "unknown"),
                   cuda_runtime=str(torch.version.cuda), torch=torch.__version__,
                   compute_capability=f"{p.major}.{p.minor}", sm_count=p.multi_processor_count,
                   l2_bytes=int(getattr(p, "L2_cache_size", 0)), sm_clock_mhz=extra.get("sm_clock_mhz", 0),
                   mem_clock_mhz=extra.get("mem_clock_mhz", 0), uuid=extra.get("uuid", ""))


def device_names() -> list[str]:
    """Names of the visible NVIDIA GPUs through NVML: no CUDA context in the calling process
    (the tuner's workers own the contexts). Empty when there is none (or no driver)."""
    try:
        import pynvml
        pynvml.nvmlInit()
    except Exception:
        return []
    try:
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            n = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i))
            out.append(n.decode() if isinstance(n, bytes) else n)
        return out
    except Exception:
        return []
