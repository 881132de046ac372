"""nvcc -> one cubin per variant, cached on disk, with the ptxas resource report kept beside it.

Cache key: kernel source hash + knobs + arch + nvcc version + flags. A compile error is a
recorded failure (BuildResult.status == "failed"), never an exception.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

from workbench.errors import WorkbenchError
from workbench.config.paths import cache_dir, kernels_dir
from workbench.kernel.variant import Variant, parse_arch

KERNEL_SOURCE = "decode.cu"
NVCC_FLAGS = ("-O3", "-std=c++17", "-Xptxas", "-v", "--threads", "1")


@dataclass(frozen=True)
class FunctionResources:
    registers: int = 0
    shared_static: int = 0
    stack_frame: int = 0
    spill_stores: int = 0
    spill_loads: int = 0


@dataclass
class BuildResult:
    variant: Variant
    arch: str
    status: str                      # built | cached | failed | invalid
    cubin: str = ""
    resources: dict[str, FunctionResources] = field(default_factory=dict)
    error: str = ""
    seconds: float = 0.0
    cache_key: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("built", "cached")

    @property
    def spills(self) -> int:
        return sum(r.spill_stores + r.spill_loads for r in self.resources.values())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["variant"] = self.variant.to_dict()
        d["name"] = self.variant.name
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BuildResult":
        res = {k: FunctionResources(**v) for k, v in d.get("resources", {}).items()}
        return cls(variant=Variant.from_dict(d["variant"]), arch=d["arch"], status=d["status"],
                   cubin=d.get("cubin", ""), resources=res, error=d.get("error", ""),
                   seconds=d.get("seconds", 0.0), cache_key=d.get("cache_key", ""))


def find_nvcc() -> str:
    for cand in (os.environ.get("CUDACXX"), shutil.which("nvcc"),
                 os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "bin", "nvcc")):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    raise WorkbenchError("nvcc not found: install the CUDA toolkit and put nvcc on PATH "
                         "(or set CUDACXX / CUDA_HOME)")


@lru_cache(maxsize=None)
def nvcc_version(nvcc: str) -> str:
    out = subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"release ([\d.]+), V([\d.]+)", out)
    return m.group(2) if m else out.strip().splitlines()[-1] if out.strip() else "unknown"


def source_hash() -> str:
    h = hashlib.sha256()
    for p in sorted(kernels_dir().glob("*.cu*")):
        if p.name == "vllm_ref.cu":          # the reference kernel has its own key (vllm_ref.py)
            continue
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def gencode(arch: str) -> str:
    parse_arch(arch)
    num = arch[3:]
    return f"-gencode=arch=compute_{num},code=sm_{num}"


def define_map(v: Variant) -> dict[str, int]:
    """The preprocessor constants (WB_*) that make variant v out of kernels/decode.cu."""
    d = {
        "WB_HEAD": v.head_size, "WB_BLOCK": v.block_size, "WB_DTYPE": 0 if v.dtype == "fp16" else 1,
        "WB_THREADS": v.threads, "WB_QPC": v.heads_per_cta,
        "WB_PARTITION": v.partition,   # -1 = vLLM rule, -2 = auto (the same codes in decode.cu)
        "WB_PF_DIST": v.prefetch_distance,
        "WB_PF_K": int("k" in v.prefetch_target), "WB_PF_V": int("v" in v.prefetch_target),
        "WB_PF_OP": {"none": 0, "bulk": 0, "line": 1}[v.prefetch_op],
        "WB_PF_HINT": {"none": 0, "evict_first": 1, "evict_last": 2}[v.prefetch_hint],
    }
    if v.algorithm == "onepass":
        d["WB_ALGO"] = 1
    if v.k_load == 8:
        d["WB_KLOAD8"] = 1
    if v.vllm_math:
        d["WB_VLLM_MATH"] = 1
    if v.serial:
        d["WB_SERIAL"] = 1
    if v.reduce == "fused":
        d["WB_FUSED_REDUCE"] = 1
    if v.stages:
        d["WB_STAGES"] = v.stages
    if v.mma:
        d["WB_MMA"] = 1
    if v.unified_ring:
        d["WB_UNIFIED"] = 1
    if v.graph_walk:
        d["WB_GRAPH_WALK"] = 1
    if v.graph_sched:
        d["WB_GRAPH_SCHED"] = 1
    if v.fault != "none":
        d["WB_FAULT"] = {"oob_write": 1, "wrong_values": 2, "hang": 3}[v.fault]
    return d


def defines(v: Variant) -> list[str]:
    return [f"-D{k}={val}" for k, val in define_map(v).items()]


def cache_key(v: Variant, arch: str, nvcc: str, src_hash: str) -> str:
    blob = json.dumps({"knobs": v.to_dict(), "arch": arch, "nvcc": nvcc_version(nvcc),
                       "src": src_hash, "flags": NVCC_FLAGS}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


_PTXAS_FUNC = re.compile(r"Compiling entry function '(\w+)'")
_PTXAS_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_PTXAS_USED = re.compile(r"Used (\d+) registers(?:.*?(\d+) bytes smem)?")


def parse_ptxas(log: str) -> dict[str, FunctionResources]:
    """ptxas -v output -> per entry function registers / static smem / stack / spills."""
    out: dict[str, dict[str, int]] = {}
    cur = None
    for line in log.splitlines():
        if m := _PTXAS_FUNC.search(line):
            cur = m.group(1)
            out[cur] = {}
        elif cur and (m := _PTXAS_FRAME.search(line)):
            out[cur].update(stack_frame=int(m.group(1)), spill_stores=int(m.group(2)),
                            spill_loads=int(m.group(3)))
        elif cur and (m := _PTXAS_USED.search(line)):
            out[cur].update(registers=int(m.group(1)), shared_static=int(m.group(2) or 0))
    return {k: FunctionResources(**v) for k, v in out.items()}


def build_variant(v: Variant, arch: str = "sm_90a", *, nvcc: str | None = None,
                  src_hash: str | None = None, force: bool = False) -> BuildResult:
    reasons = v.invalid_reasons(arch)
    if reasons:
        return BuildResult(v, arch, "invalid", error="; ".join(reasons))
    nvcc = nvcc or find_nvcc()
    if v.algorithm == "vllm":
        from workbench.kernel import vllm_ref
        try:
            src_hash = vllm_ref.source_hash()
            ref_root = vllm_ref.ensure_source()   # found or fetched once, before the cache lookup
        except WorkbenchError as e:
            return BuildResult(v, arch, "failed", error=str(e))
    src_hash = src_hash or source_hash()
    key = cache_key(v, arch, nvcc, src_hash)
    d = cache_dir() / "cubins" / arch
    d.mkdir(parents=True, exist_ok=True)
    cubin, meta = d / f"{key}.cubin", d / f"{key}.json"
    if not force and cubin.exists() and meta.exists():
        try:
            r = BuildResult.from_dict(json.loads(meta.read_text()))
            r.status, r.cubin = "cached", str(cubin)
            return r
        except (ValueError, KeyError, TypeError):
            pass  # unreadable record: rebuild
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="wb-nvcc-") as tmp:
        out = Path(tmp) / "k.cubin"
        if v.algorithm == "vllm":
            from workbench.kernel import vllm_ref
            cmd = vllm_ref.compile_command(nvcc, gencode(arch), NVCC_FLAGS, v, out, ref_root)
        else:
            cmd = [nvcc, "-cubin", gencode(arch), *NVCC_FLAGS, *defines(v), "-o", str(out),
                   str(kernels_dir() / KERNEL_SOURCE)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        secs = time.perf_counter() - t0
        if proc.returncode != 0 or not out.exists():
            err = (proc.stderr or proc.stdout).strip()
            tail = "\n".join(err.splitlines()[-12:])
            return BuildResult(v, arch, "failed", error=tail, seconds=secs, cache_key=key)
        r = BuildResult(v, arch, "built", resources=parse_ptxas(proc.stderr + proc.stdout),
                        seconds=secs, cache_key=key)
        # write the record first, the cubin last: a cubin on disk implies a complete record
        tmp_meta = meta.with_suffix(f".json.{os.getpid()}.tmp")
        rec = r.to_dict()
        rec["cubin"] = str(cubin)
        tmp_meta.write_text(json.dumps(rec, indent=1))
        os.replace(tmp_meta, meta)
        shutil.move(str(out), str(cubin.with_suffix(f".cubin.{os.getpid()}.tmp")))
        os.replace(cubin.with_suffix(f".cubin.{os.getpid()}.tmp"), cubin)
    r.cubin = str(cubin)
    return r


def build_source(source: str, arch: str, defs: dict[str, int] | None = None) -> str:
    """Compile a helper kernel of kernels/ (e.g. the read probe) to a cached cubin; its path.

    Unlike variants, a helper that fails to compile is a broken install: raise."""
    nvcc = find_nvcc()
    src = kernels_dir() / source
    flags = [f"-D{k}={v}" for k, v in sorted((defs or {}).items())]
    key = hashlib.sha256(json.dumps([src.read_text(), arch, flags, nvcc_version(nvcc)]).encode()).hexdigest()[:20]
    d = cache_dir() / "cubins" / arch
    d.mkdir(parents=True, exist_ok=True)
    cubin = d / f"{Path(source).stem}-{key}.cubin"
    if not cubin.exists():
        tmp = cubin.with_suffix(f".{os.getpid()}.tmp")
        proc = subprocess.run([nvcc, "-cubin", gencode(arch), "-O3", "-std=c++17", *flags, "-o", str(tmp), str(src)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise WorkbenchError(f"nvcc failed on {src}: {proc.stderr.strip()[-500:]}")
        os.replace(tmp, cubin)
    return str(cubin)


def trace_cubin(v: Variant, arch: str) -> str:
    """Variant v built with WB_TRACE (decode.cu's timer stamps, read back by scripts/probe_chain.py): a
    cubin of its own, beside the variant's untraced one."""
    return build_source(KERNEL_SOURCE, arch, {**define_map(v), "WB_TRACE": 1})


@dataclass(frozen=True)
class BuildSummary:
    built: int
    cached: int
    invalid: int
    failed: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def summarize(results: Iterable[BuildResult]) -> BuildSummary:
    counts = {"built": 0, "cached": 0, "invalid": 0, "failed": 0}
    for r in results:
        counts[r.status] += 1
    return BuildSummary(**counts)


def build_many(variants: Iterable[Variant], arch: str = "sm_90a", *, jobs: int | None = None,
               progress: bool = False, force: bool = False,
               on_result: Callable[[BuildResult], None] | None = None) -> list[BuildResult]:
    """Build variants in parallel (nvcc processes); results in input order."""
    variants = list(variants)
    nvcc = find_nvcc()
    parse_arch(arch)
    src = source_hash()
    jobs = jobs or os.cpu_count() or 2
    results: list[BuildResult | None] = [None] * len(variants)

    bar = None
    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        bar = Progress(TextColumn("[bold]compile[/] {task.description}"), BarColumn(),
                       MofNCompleteColumn(), TimeRemainingColumn(), transient=False)
        task = bar.add_task(arch, total=len(variants))
        bar.start()
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futs = {pool.submit(build_variant, v, arch, nvcc=nvcc, src_hash=src, force=force): i
                    for i, v in enumerate(variants)}
            for fut in as_completed(futs):
                r = fut.result()
                results[futs[fut]] = r
                if on_result:
                    on_result(r)
                if bar:
                    bar.advance(task)
    finally:
        if bar:
            bar.stop()
    return [r for r in results if r is not None]
