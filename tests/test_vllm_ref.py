"""vLLM's own kernel as a reference: fetch/patch logic (on a synthetic sdist, no network), the
variant rules, and (with nvcc and the real sdist reachable or prepared) that it compiles."""
import hashlib
import io
import shutil
import tarfile

import pytest

from workbench.kernel import vllm_ref
from workbench.errors import WorkbenchError
from workbench.kernel.references import baseline, named, paper, simple

KERNEL = """
template <int X> __device__ void paged_attention_kernel() {
  for (int block_idx = 0; block_idx < 4; ++block_idx) {
    const int64_t physical_block_number =
        static_cast<int64_t>(block_table[block_idx]);
  }
  for (int block_idx = 0; block_idx < 4; ++block_idx) {
    const int64_t physical_block_number =
        static_cast<int64_t>(block_table[block_idx]);
  }
}
template <int X>
__global__ void paged_attention_v2_reduce_kernel(
    int* out) {}
"""


def _sdist(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, text in files.items():
            data = text.encode()
            ti = tarfile.TarInfo(f"vllm-{vllm_ref.VERSION}/{name}")
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def test_patch_inserts_the_prefetch_hooks_and_makes_reduce_a_device_function():
    out = vllm_ref._patch(KERNEL)
    assert out.count("cp.async.bulk.prefetch.L2.global") == 2
    assert "WB_PF_DIST > 0 && WB_PF_K" in out and "WB_PF_DIST > 0 && WB_PF_V" in out
    k_hook, v_hook = out.index("WB_PF_K"), out.index("WB_PF_V")
    assert out.index("k_cache + wb_pf", k_hook) < v_hook < out.index("v_cache + wb_pf", v_hook)
    assert "__device__ void paged_attention_v2_reduce_kernel(" in out and "__global__" not in out
    with pytest.raises(WorkbenchError, match="not the expected file"):
        vllm_ref._patch(KERNEL.replace("block_table[block_idx]", "bt[i]", 1))


def test_prepare_checks_the_pin_and_extracts_only_kernel_headers(tmp_path, monkeypatch):
    data = _sdist({"csrc/attention/attention_kernels.cuh": KERNEL, "csrc/attention/x.cu": "no",
                   "csrc/cuda_compat.h": "#pragma once", "vllm/__init__.py": ""})
    with pytest.raises(WorkbenchError, match="sha256"):
        vllm_ref.prepare(tmp_path / "src", data)
    monkeypatch.setattr(vllm_ref, "SDIST_SHA256", hashlib.sha256(data).hexdigest())
    root = vllm_ref.prepare(tmp_path / "src", data)
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == ["SOURCE.json", "csrc/attention/attention_kernels.cuh", "csrc/cuda_compat.h",
                     "stubs/ATen/cuda/CUDAContext.h", "stubs/c10/cuda/CUDAGuard.h", "stubs/torch/all.h"]
    assert "cp.async.bulk.prefetch" in (root / "csrc/attention/attention_kernels.cuh").read_text()
    monkeypatch.setenv("WORKBENCH_VLLM_SRC", str(root))
    assert vllm_ref.ensure_source(download=False) == root
    monkeypatch.setenv("WORKBENCH_VLLM_SRC", str(tmp_path / "missing"))
    with pytest.raises(WorkbenchError, match="WORKBENCH_VLLM_SRC"):
        vllm_ref.ensure_source(download=False)


def test_reference_variants_and_their_rules():
    assert baseline().label == "baseline" and paper().label == "paper"
    assert baseline().algorithm == "vllm" and baseline() == simple().with_(algorithm="vllm")
    assert named("paper") == paper() and paper().prefetch_distance == 1
    assert baseline().is_valid() and paper().is_valid()
    assert "128 threads" in " ".join(baseline().with_(heads_per_cta=2).invalid_reasons())
    assert "no style knobs" in " ".join(baseline().with_(stages=3).invalid_reasons())
    assert baseline().smem_bytes(512) == 2048 and baseline().smem_bytes(16) == 4 * 2 * 128   # logits or the warp reduction
    with pytest.raises(WorkbenchError, match="unknown named variant"):
        named("vllm2")


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
def test_vllm_reference_compiles(cubin_cache):
    """Needs the real sdist: downloaded (network) or prepared (WORKBENCH_VLLM_SRC)."""
    try:
        vllm_ref.ensure_source(download=True)
    except WorkbenchError as e:
        pytest.skip(f"vLLM sdist unreachable here: {e}")
    from workbench.kernel.build import build_variant
    for v in (baseline(), paper(), baseline(dtype="fp16"), baseline().with_(partition="none")):
        r = build_variant(v, "sm_90a")
        assert r.ok, r.error
        assert set(r.resources) >= {"wb_decode_full"} and all(x.spill_stores == 0 for x in r.resources.values())
