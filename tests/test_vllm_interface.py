"""The exported backend against the real classes of both vLLM API generations it serves, on CPU:
vLLM 0.26.0 (what the GPU hosts run: get_kv_cache_shape / get_kv_cache_stride_order) and 0.33.0
(customize_spec / KV-cache layouts). Each gets a throwaway venv with the vllm wheel installed
without its dependencies (both pin another torch; the local torch 2.13.0 CPU wheel is used) plus
the few packages needed to import vllm.v1.attention.backend, its registry and kv_cache_interface.
tests/vllm_probe.py runs there and reports one named check per property (classes, signatures,
CUDA-graph support, the builder's preallocated workspace, capture / eager metadata, the KV-cache
tensor vLLM allocates and our views of it, forward's plumbing, registration). Skipped only when
the package registry cannot be reached (and says so)."""
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STUDY = "h100-llama-3.1-8b-tp1-bf16-blk16-default"
DB = ROOT / "tests/fixtures/h100-2026-11-21/studies.db"
VERSIONS = ("0.26.0", "0.33.0")
DEPS = ["torch==2.13.0", "packaging", "numpy", "psutil", "pyzmq", "urllib3", "regex", "transformers",
        # vLLM 0.33's AttentionImplBase.__new__ imports vllm.config, which needs these
        "cbor2", "aiohttp", "requests", "openai-harmony", "openai"]
CHECKS = ("classes", "signatures", "api", "support", "cudagraph_support", "builder_workspace", "capture_metadata",
          "eager_metadata", "eager_plan", "kv_layout", "impl_arguments", "forward_plumbing", "kv_update_plumbing", "registration")
OFFLINE = ("Could not find a version", "No matching distribution", "Failed to establish",
           "Temporary failure in name resolution", "Network is unreachable")


def _venv(version: str) -> Path:
    """A venv with vllm==version (no deps) and DEPS; made once, kept under the workbench cache
    (or WORKBENCH_VLLM_VENV_DIR)."""
    from workbench.config.paths import cache_dir
    d = Path(os.environ.get("WORKBENCH_VLLM_VENV_DIR") or cache_dir()) / f"vllm-{version}-venv"
    py = d / "bin" / "python"
    if (d / ".ready").exists():
        return py
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(d)], check=True)
    for args in (["--no-deps", f"vllm=={version}"], DEPS):
        p = subprocess.run([str(py), "-m", "pip", "install", "-q", *args], capture_output=True, text=True)
        if p.returncode != 0:
            text = p.stderr + p.stdout
            if any(s in text for s in OFFLINE):
                pytest.skip(f"package registry unreachable, cannot fetch {args[-1]}: {text.strip().splitlines()[-1]}")
            raise AssertionError(f"pip install {args} failed:\n{text[-2000:]}")
    (d / ".ready").write_text("")
    return py


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vllm-export")
    out = tmp / "pkg"
    p = subprocess.run([sys.executable, "-m", "workbench", "export", "--study", STUDY, "--storage", f"sqlite:///{DB}",
                        "--out", str(out), "--json"], capture_output=True, text=True,
                       env={**os.environ, "WORKBENCH_HOME": str(tmp)})
    assert p.returncode == 0, p.stderr
    return out, json.loads(p.stdout)["package"]


@functools.lru_cache(maxsize=None)
def _probe(version: str, out: Path, pkg: str) -> dict:
    py = _venv(version)
    p = subprocess.run([str(py), str(ROOT / "tests/vllm_probe.py"), str(out), pkg], capture_output=True, text=True)
    try:
        r = json.loads(p.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise AssertionError(f"the probe under vLLM {version} crashed:\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}") from None
    assert r["vllm"] == version
    return r


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("version", VERSIONS)
def test_backend_against_vllm(exported, version, check):
    out, pkg = exported
    r = _probe(version, out, pkg)
    assert check in r["checks"], f"the probe ran no check {check!r}: {sorted(r['checks'])}"
    c = r["checks"][check]
    assert c["ok"], f"vLLM {version}, {check}: {json.dumps(c, indent=1, default=str)[:4000]}"


@pytest.mark.parametrize("version", VERSIONS)
def test_probe_covers_everything(exported, version):
    r = _probe(version, *exported)
    assert set(r["checks"]) == set(CHECKS) and r["api"] == {"0.26.0": "shape", "0.33.0": "spec"}[version]
    assert r["failed"] == []


def test_workspace_bound_matches_every_launch(exported):
    """The builder preallocates workspace_floats(...): the corner evaluation must equal the largest
    num_seqs * num_heads * partitions of any launch (dispatch picks, fallbacks included), found by
    brute force over small grids of batch sizes and lengths."""
    out, pkg_name = exported
    sys.path.insert(0, str(out))
    try:
        import importlib
        pkg = importlib.import_module(pkg_name)
        for heads, kv_heads in ((32, 8), (8, 1), (64, 8)):
            for rows, max_len in ((20, 10000), (70, 2100), (1, 100)):
                brute = max(n * heads * pkg.launch_parts(n, heads, kv_heads, length)
                            for n in range(1, rows + 1) for length in range(1, max_len + 1))
                # the captured launches: bounded at max_len with their batch row's graph pick
                brute = max(brute, max(n * heads * pkg.launch_parts(n, heads, kv_heads, max_len,
                                                                    pkg.pick_graph_variant(n, max_len))
                                       for n in range(1, rows + 1)))
                assert pkg.workspace_rows(rows, heads, kv_heads, max_len) == brute, (heads, rows, max_len)
        # every variant the table uses, at the lengths a captured graph launches with
        for n in (1, 8, 64, 512):
            assert pkg.launch_parts(n, 32, 8, 131072) > 0          # a long context always splits
        assert pkg.workspace_floats(0, 32, 8, 4096, 128) == 0
    finally:
        sys.path.remove(str(out))
        for m in [m for m in sys.modules if m == pkg_name or m.startswith(pkg_name + ".")]:
            del sys.modules[m]


def test_python_partitions_match_the_launcher(exported, tmp_path):
    """The package's Python mirror of the launcher's partition rules (split_parts: what the vLLM
    builder sizes its workspace with) against the compiled launcher itself (launch.cuh host code,
    one program per partition knob of the package): equal for fixed partitions and vLLM's rule.
    (Auto partitions, knob -2, are counted by the launcher per launch and device; the op asks it.)"""
    import importlib
    import re
    import shutil as sh
    from workbench.kernel.build import find_nvcc
    nvcc = find_nvcc()
    if not nvcc:
        pytest.skip("nvcc not installed")
    out, pkg_name = exported
    csrc = out / pkg_name / "csrc"
    work = tmp_path / "csrc"
    sh.copytree(csrc, work)
    by_knob: dict[int, tuple[int, str]] = {}
    for cu in sorted(work.glob("v*.cu"), key=lambda p: int(p.stem[1:])):
        knob = int(re.search(r"#define WB_PARTITION (-?\d+)", cu.read_text()).group(1))
        by_knob.setdefault(knob, (int(cu.stem[1:]), cu.read_text()))
    seqs, heads, lens = (1, 3, 16, 17, 64, 300), (8, 32, 64), (1, 511, 512, 513, 4096, 8192, 8193, 131072)
    sys.path.insert(0, str(out))
    try:
        pkg = importlib.import_module(pkg_name)
        for knob, (idx, src) in sorted(by_knob.items()):
            calls = [f'printf("%d\\n", wb_split_parts_v{idx}({n}, {h}, {L}));' for n in seqs for h in heads for L in lens]
            prog = work / f"probe{idx}.cu"
            prog.write_text("#include <cstdio>\n" + src + "int main() {\n" + "\n".join(calls) + "\nreturn 0;\n}\n")
            exe = work / f"probe{idx}"
            p = subprocess.run([nvcc, "-O0", "-std=c++17", "-gencode=arch=compute_90a,code=sm_90a", "-I", str(work),
                                str(prog), "-o", str(exe)], capture_output=True, text=True)
            assert p.returncode == 0, p.stderr[-3000:]
            got = [int(x) for x in subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()]
            if knob == -2:
                continue
            want = [pkg.split_parts(idx, n, h, L) for n in seqs for h in heads for L in lens]
            assert got == want, (knob, [(a, b) for a, b in zip(got, want) if a != b][:5])
    finally:
        sys.path.remove(str(out))
        for m in [m for m in sys.modules if m == pkg_name or m.startswith(pkg_name + ".")]:
            del sys.modules[m]
