"""The measuring process: a JSON job (variants x workloads) in, a results JSON out.

Run directly, or under ncu / nsys by the drivers in ncu.py / nsys.py:
    python -m workbench.measure.job JOB.json RESULTS.json
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.kernel.variant import Variant
from workbench.measure.workload import WorkloadSpec

RESULTS_KIND = "workbench-results"

# One launch of a variant is one main kernel (wb_decode_full, or wb_decode_split) followed, for a
# split-K launch with reduce "kernel", by wb_reduce; a fused-reduce split-K launch is one kernel.
# How many kernels a launch makes depends on the variant *and* the shape (partition vllm / auto
# pick whole or split per launch), so profilers cut launches by kernel name, never by a count.
FOLLOWER_KERNELS = ("wb_reduce", "wb_reduce_sched")   # the scheduled form's reduce follows wb_decode_sched


def split_launches(names: list[str]) -> list[list[int]]:
    """Indices of kernels (in launch order) grouped into launches: a launch begins at every kernel
    that is not a follower (the split-K reduce); a follower joins the launch before it."""
    out: list[list[int]] = []
    for i, n in enumerate(names):
        if out and n in FOLLOWER_KERNELS:
            out[-1].append(i)
        else:
            out.append([i])
    return out


@dataclass
class Job:
    variants: list[dict[str, Any]]
    workloads: list[dict[str, Any]]
    launches: int = 50
    warmup: int = 5
    device: int = 0
    ceiling: bool = True
    profiler: str = "none"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Results:
    gpu: dict[str, Any]
    results: list[dict[str, Any]]
    ceiling: dict[str, Any] | None = None
    profiler: str = "none"
    created: str = ""
    profile: dict[str, Any] = field(default_factory=dict)   # metrics merged in by a driver
    kind: str = RESULTS_KIND

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path) -> None:
        p = Path(path)
        tmp = p.with_suffix(p.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1))
        tmp.replace(p)

    @classmethod
    def load(cls, path: str | Path) -> "Results":
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise WorkbenchError(f"{path}: not a readable results JSON ({e})") from None
        if not isinstance(d, dict) or d.get("kind") != RESULTS_KIND:
            raise WorkbenchError(f"{path}: not a workbench results file")
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def run_job(job: Job) -> Results:
    import torch

    from workbench.kernel.build import build_many
    from workbench.measure.ceiling import read_ceiling
    from workbench.measure.gpuinfo import gpu_info
    from workbench.kernel.launch import load
    from workbench.measure.timing import time_variant

    if not torch.cuda.is_available():
        raise WorkbenchError("no CUDA device visible: measuring needs a GPU")
    torch.cuda.set_device(job.device)
    info = gpu_info(job.device)
    ceiling = read_ceiling(job.device) if job.ceiling else None
    variants = [Variant.from_dict(v) for v in job.variants]
    builds = build_many(variants, info.arch)
    results = []
    for b in builds:
        if not b.ok:
            raise WorkbenchError(f"{b.variant.name} did not build: {b.error}")
        k = load(b, job.device)
        for wd in job.workloads:
            spec = WorkloadSpec.from_dict(wd)
            r = time_variant(k, spec, info, launches=job.launches, warmup=job.warmup,
                             ceiling_gbps=ceiling.gbps if ceiling else 0.0,
                             hold=job.profiler != "ncu")
            results.append(r.to_dict())
        k.close()
    return Results(gpu=info.to_dict(), results=results, ceiling=ceiling.to_dict() if ceiling else None,
                   profiler=job.profiler, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m workbench.measure.job JOB.json RESULTS.json", file=sys.stderr)
        return 2
    try:
        job = Job(**json.loads(Path(argv[0]).read_text()))
        run_job(job).save(argv[1])
    except WorkbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
