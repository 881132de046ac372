"""Is this host ready for the main job? One row per dependency: ok / missing / warn + the fix."""
from __future__ import annotations

import importlib
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class Check:
    name: str
    status: str          # ok | missing | warn
    detail: str
    fix: str = ""
    required: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def _module(name: str, pip: str, required: bool = False) -> Check:
    try:
        m = importlib.import_module(name)
        return Check(name, "ok", str(getattr(m, "__version__", "installed")), required=required)
    except Exception as e:  # an import can fail in many ways (ABI, missing .so)
        return Check(name, "missing", f"{type(e).__name__}: {e}"[:120], f"pip install {pip}", required)


def _gpu() -> Check:
    try:
        import torch
        if not torch.cuda.is_available():
            return Check("GPU", "missing", "torch sees no CUDA device", "run on a host with an NVIDIA GPU and driver", True)
        from workbench.measure.gpuinfo import gpu_info
        g = gpu_info(0)
        return Check("GPU", "ok", f"{g.name} ({g.arch}, {g.sm_count} SMs, L2 {g.l2_bytes >> 20} MiB), "
                     f"driver {g.driver}, CUDA runtime {g.cuda_runtime}", required=True)
    except Exception as e:
        return Check("GPU", "missing", str(e)[:120], "install the NVIDIA driver and a CUDA build of torch", True)


def _nvcc() -> Check:
    from workbench.kernel.build import find_nvcc, nvcc_version
    from workbench.errors import WorkbenchError
    try:
        n = find_nvcc()
        return Check("nvcc", "ok", f"{nvcc_version(n)} ({n})", required=True)
    except WorkbenchError as e:
        return Check("nvcc", "missing", "not found", str(e), True)


def _ncu(probe: bool) -> Check:
    from workbench.errors import WorkbenchError
    from workbench.measure.ncu import find_ncu, ncu_version
    try:
        n = find_ncu()
    except WorkbenchError:
        return Check("ncu", "missing", "not found", "install Nsight Compute (ships with the CUDA toolkit); "
                     "or tune with --profile none (no L2 objective)", True)
    v = ncu_version(n)
    if not probe:
        return Check("ncu", "ok", f"{v} (counter permission not probed: no GPU)", required=True)
    code = "import torch; x=torch.ones(1<<20, device='cuda'); (x*2).sum().item()"
    p = subprocess.run([n, "--clock-control", "none", "--metrics", "gpu__time_duration.sum", "-c", "1",
                        sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if "ERR_NVGPUCTRPERM" in p.stdout + p.stderr:
        return Check("ncu", "warn", f"{v}: no permission to read GPU counters (ERR_NVGPUCTRPERM)",
                     "run as root or load the driver with NVreg_RestrictProfilingToAdminUsers=0; "
                     "or tune with --profile none (no L2 objective)", True)
    ok = "gpu__time_duration.sum" in p.stdout
    return Check("ncu", "ok" if ok else "warn", f"{v}: counters {'readable' if ok else 'not read'}",
                 "" if ok else (p.stderr or p.stdout).strip()[-160:], True)


def _nsys(probe: bool) -> Check:
    from workbench.measure.nsys import find_nsys
    n = find_nsys()
    if not n:
        return Check("nsys", "missing", "not found", "install Nsight Systems (optional: captures are skipped)")
    if not probe:
        return Check("nsys", "ok", f"{n} (report writing not probed: no GPU)")
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "t"
        subprocess.run([n, "profile", "-t", "cuda", "-o", str(out), "--force-overwrite", "true", sys.executable, "-c",
                        "import torch; torch.ones(8, device='cuda').sum().item()"], capture_output=True, text=True, timeout=300)
        ok = out.with_suffix(".nsys-rep").exists()
    return Check("nsys", "ok" if ok else "warn", f"{n}: {'writes reports' if ok else 'cannot build its report'}",
                 "" if ok else "QdstrmImporter needs libdw1 and libelf1 (apt install libdw1 libelf1)")


def _vllm_source() -> Check:
    """baseline / paper are vLLM's own kernel: its source must be prepared or downloadable."""
    from workbench.errors import WorkbenchError
    from workbench.kernel.vllm_ref import VERSION, ensure_source
    try:
        return Check(f"vLLM {VERSION} kernel source", "ok", f"{ensure_source(download=False)} (baseline / paper)")
    except WorkbenchError as e:
        return Check(f"vLLM {VERSION} kernel source", "warn", "not prepared: fetched on first use (needs network)",
                     str(e).split(": ", 1)[-1][:200])


def _peers() -> list[Check]:
    """The kernels `workbench bench` compares with (found without importing them or CUDA)."""
    from workbench.bench.peers import peer_status
    out = []
    for st in peer_status():
        if st.get("available"):
            out.append(Check(f"peer {st['name']}", "ok", str(st.get("version") or "found")))
        else:
            out.append(Check(f"peer {st['name']}", "warn", str(st.get("reason") or "not found"),
                             str(st.get("provide") or "")))
    return out


def _vllm() -> Check:
    """vLLM for `workbench e2e` and the exported backend (0.26 on torch 2.11 hosts, 0.33 on 2.14)."""
    import importlib.metadata
    import importlib.util
    try:
        version = importlib.metadata.version("vllm")
    except importlib.metadata.PackageNotFoundError:
        version = None
    if version is None or importlib.util.find_spec("vllm") is None:
        return Check("vllm", "warn", "not installed (needed by `workbench e2e`, not by tune)",
                     "pip install vllm (its pinned torch), or on an offline host: bash scripts/bundle_vllm.sh, "
                     "then source scripts/vllm_activate.sh .vllm")
    supported = version.startswith(("0.26.", "0.33."))
    return Check("vllm", "ok" if supported else "warn", f"{version}" + ("" if supported else
                 " (the exported backend is tested against 0.26 and 0.33)"))


def vllm_flashinfer() -> Check | None:
    """FlashInfer as vLLM's FLASHINFER backend needs it (a backend `workbench e2e` runs): the release the
    installed vLLM pins. None where vLLM is not installed (the vllm check says so). The bench's FlashInfer
    peers may be another release (0.7.2): that is the peers' check."""
    from workbench.e2e.flashinfer_pin import BUNDLE_HINT, flashinfer_pin
    p = flashinfer_pin()
    if p.vllm is None:
        return None
    name = "vllm FLASHINFER backend"
    if p.problem:
        what = p.problem + (": `e2e --backends ...,FLASHINFER` cannot run it" if p.have is None else "")
        return Check(name, "warn", what, BUNDLE_HINT)
    return Check(name, "ok", f"flashinfer-python {p.have}" + (" (vLLM's pin)" if p.pin else ""))


def _green(probe: bool) -> Check:
    """Green contexts (CUDA 12.4+ driver, Hopper): what `tune --gpu SMALLER` emulates with."""
    name = "green contexts (emulation)"
    if not probe:
        return Check(name, "warn", "not probed: no GPU")
    try:
        from workbench.config.profiles import known, load_gpu
        from workbench.measure.emulation import plan_emulation
        from workbench.measure.gpuinfo import gpu_info
        from workbench.measure.greenctx import probe_green
        g = gpu_info(0)
        can = []
        for n in known("gpus"):
            try:
                can.append(f"{n} ({plan_emulation(load_gpu(n), g.name).sms} SMs)")
            except Exception:
                pass
        r = probe_green(0, 80 if g.sm_count > 80 else max(8, g.sm_count // 2))
    except Exception as e:
        return Check(name, "warn", f"{type(e).__name__}: {e}"[:160], "needs cuda-bindings >= 12.4 and a driver with "
                     "green contexts; without them `tune --gpu` refuses a GPU that is not attached")
    if not r["ok"]:
        return Check(name, "warn", f"do not work here: {r['error']}"[:160],
                     "`tune --gpu` for a smaller GPU needs them (driver >= 550, cuda-bindings >= 12.4)")
    return Check(name, "ok", f"asked {r['asked']} SMs, got {r['sms']} (+{r['rest_sms']} left); can emulate: "
                 f"{', '.join(can) or 'no known profile'}")


def run_checks(probe_profilers: bool = True) -> list[Check]:
    checks: list[Callable[[], Check]] = [
        _gpu, _nvcc,
        lambda: _module("torch", "torch", True),
        lambda: _module("cuda.bindings", "cuda-bindings", True),
        lambda: _module("pynvml", "nvidia-ml-py"),
        lambda: _module("nvtx", "nvtx"),
        lambda: _module("optuna", "optuna", True),          # tune keeps its study in optuna
        lambda: _module("xformers", "xformers"),
        _vllm_source,
    ]
    out = [c() for c in checks]
    gpu_ok = out[0].status == "ok"
    out.insert(2, _ncu(probe_profilers and gpu_ok))
    out.insert(3, _nsys(probe_profilers and gpu_ok))
    fi = vllm_flashinfer()
    return out + [_green(gpu_ok), _vllm()] + ([fi] if fi else []) + _peers()


def main_job_ready(checks: list[Check]) -> bool:
    """`workbench tune` as its defaults run it (--profile ncu: the L2 objective needs ncu)."""
    return not blocking(checks)


def blocking(checks: list[Check]) -> list[Check]:
    """What the main job needs and this host lacks."""
    return [c for c in checks if c.required and c.status != "ok"]
