"""nvcc builds: the whole default space for sm_90a (a variant that fails to compile fails CI),
a shape sample, a sm_80 sample, the cache, and compile errors recorded rather than raised."""
import os
import shutil

import pytest

from workbench.kernel import build as build_mod
from workbench.kernel.build import build_many, build_variant, parse_ptxas, summarize
from workbench.kernel.space import enumerate_space, load_space, stratified_sample
from workbench.kernel.variant import HEAD_SIZES, Variant
from workbench.kernel.references import simple, simple_pf

pytestmark = pytest.mark.skipif(shutil.which("nvcc") is None and not os.environ.get("CUDACXX"),
                                reason="nvcc not installed")


def _assert_all_built(results):
    failed = [(r.variant.name, r.error) for r in results if not r.ok]
    assert not failed, failed[:3]


CI_COMPILE_COUNT = 1200


@pytest.mark.slow
def test_default_space_compiles_for_sm90a(cubin_cache):
    """CI (2 cores) compiles a stratified sample of the space, every knob value at least 6 times, about
    CI_COMPILE_COUNT variants (a quarter of the space when it was 4900: the space grows with every knob,
    CI's 90 minutes do not); WORKBENCH_COMPILE_ALL=1 (the GPU host, 16 cores) compiles all of it."""
    en = enumerate_space(load_space(), "sm_90a")
    todo = en.valid if os.environ.get("WORKBENCH_COMPILE_ALL") == "1" else \
        stratified_sample(en.valid, min(0.25, CI_COMPILE_COUNT / len(en.valid)))
    todo = list({v.key: v for v in [*todo, simple()]}.values())
    results = build_many(todo, "sm_90a")
    _assert_all_built(results)
    s = summarize(results)
    print(f"\ndefault space sm_90a: {len(todo)} of {len(en.valid)} compiled: {s.built} built, {s.cached} cached, "
          f"{len(en.invalid)} invalid, {s.failed} failed")
    assert s.built + s.cached == len(todo) and len(en.valid) >= 1000
    by = {r.variant: r for r in results}
    assert set(by[simple()].resources) == {"wb_decode_full", "wb_decode_split", "wb_reduce"}
    assert by[simple()].resources["wb_decode_full"].registers > 0


def test_every_shape_compiles(cubin_cache):
    """All head sizes x block sizes x dtypes: simple, simple-pf and a grouped split-K variant."""
    vs = []
    for h in HEAD_SIZES:
        for b in (16, 32):
            for dt in ("bf16", "fp16"):
                vs += [simple(h, b, dt), simple_pf(h, b, dt),
                       Variant(head_size=h, block_size=b, dtype=dt, threads=256, heads_per_cta=4, partition=512,
                               prefetch_distance=2, prefetch_target="kv", prefetch_hint="evict_last")]
    _assert_all_built(build_many([v for v in vs if v.is_valid()], "sm_90a"))


def test_other_algorithms_and_knobs_compile(cubin_cache):
    """onepass at every shape, the fused reduce, the vLLM-style knobs, the test-only faults, the
    tensor-core paths (twopass and onepass) and the unified ring."""
    vs = []
    for h in HEAD_SIZES:
        for b in (16, 32):
            for dt in ("bf16", "fp16"):
                vs += [Variant(head_size=h, block_size=b, dtype=dt, algorithm="onepass", threads=128, heads_per_cta=q,
                               partition=p, prefetch_distance=d, prefetch_target="kv" if d else "none")
                       for q, p, d in ((1, "vllm", 0), (4, 1024, 1), (2, "none", 2))]
    vs += [simple().with_(reduce="fused"), simple_pf().with_(heads_per_cta=4, partition=256, reduce="fused"),
           simple().with_(k_load=8, serial=True, vllm_math=True), simple_pf().with_(k_load=8, vllm_math=True),
           *(simple().with_(fault=f) for f in ("oob_write", "wrong_values", "hang"))]
    # the tensor-core path and the unified ring at every head size and both dtypes (block 16)
    vs += [Variant(head_size=h, dtype=dt, threads=t, heads_per_cta=q, partition=p, stages=st, mma=m, unified_ring=u)
           for h in HEAD_SIZES for dt in ("bf16", "fp16")
           for t, q, p, st, m, u in ((128, 4, "auto", 3, True, False), (256, 8, 512, 4, True, True),
                                     (64, 2, "none", 2, False, True))]
    # onepass on tensor cores (K and V in one ring, online softmax in registers): every head size, both
    # dtypes, whole and split, as built, scheduled for a graph and in the GQA-7 odd group
    ones = [Variant(head_size=h, dtype=dt, algorithm="onepass", threads=t, heads_per_cta=q, partition=p, stages=st,
                    mma=True) for h in HEAD_SIZES for dt in ("bf16", "fp16")
            for t, q, p, st in ((128, 8, "auto", 2), (64, 7, "none", 3))]
    ones = [v for v in ones if v.is_valid()]
    assert len({v.head_size for v in ones}) == len(HEAD_SIZES)
    vs += ones + [ones[0].scheduling()]
    _assert_all_built(build_many([v for v in vs if v.is_valid()], "sm_90a"))


def test_sm80_sample(cubin_cache):
    en = enumerate_space(load_space(), "sm_80")
    assert en.invalid                                          # bulk prefetch cannot exist there
    sample = [simple(), simple_pf().with_(prefetch_op="line"),
              simple_pf().with_(prefetch_op="line", prefetch_hint="evict_last", heads_per_cta=4, threads=256, partition=256),
              Variant(head_size=256, dtype="fp16", block_size=32, partition=1024, prefetch_distance=2,
                      prefetch_target="k", prefetch_op="line")]
    results = build_many(sample, "sm_80")
    _assert_all_built(results)
    assert build_variant(simple_pf(), "sm_80").status == "invalid"


def test_cache_hit_and_key_inputs(cubin_cache):
    v = Variant(threads=64, partition=256)
    first = build_variant(v, "sm_90a")
    again = build_variant(v, "sm_90a")
    assert first.ok and again.status == "cached" and again.cubin == first.cubin
    assert again.resources == first.resources
    assert build_variant(v, "sm_90").cache_key != first.cache_key


def test_compile_error_is_recorded_not_raised(cubin_cache, tmp_path, monkeypatch):
    (tmp_path / "decode.cu").write_text("this is not CUDA;\n")
    monkeypatch.setattr(build_mod, "kernels_dir", lambda: tmp_path)
    results = build_many([simple(), simple_pf()], "sm_90a")
    assert [r.status for r in results] == ["failed", "failed"]
    assert "error" in results[0].error


def test_parse_ptxas_report():
    log = """ptxas info    : Compiling entry function 'wb_decode_split' for 'sm_90a'
ptxas info    : Function properties for wb_decode_split
    8 bytes stack frame, 4 bytes spill stores, 8 bytes spill loads
ptxas info    : Used 72 registers, used 1 barriers, 32 bytes smem
ptxas info    : Compiling entry function 'wb_reduce' for 'sm_90a'
ptxas info    : Function properties for wb_reduce
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 32 registers, used 1 barriers
"""
    r = parse_ptxas(log)
    assert r["wb_decode_split"].registers == 72 and r["wb_decode_split"].shared_static == 32
    assert (r["wb_decode_split"].spill_stores, r["wb_decode_split"].spill_loads) == (4, 8)
    assert r["wb_reduce"].registers == 32 and r["wb_reduce"].stack_frame == 0


def test_stratified_sample_covers_every_knob_value():
    en = enumerate_space(load_space(), "sm_90a")
    sample = stratified_sample(en.valid, 0.25)
    assert 0.25 * len(en.valid) <= len(sample) < 0.5 * len(en.valid)
    assert sample == stratified_sample(en.valid, 0.25)                     # deterministic
    for knob in ("threads", "heads_per_cta", "partition", "stages", "prefetch_distance", "prefetch_target"):
        everywhere = {getattr(v, knob) for v in en.valid}
        counts = {x: sum(getattr(v, knob) == x for v in sample) for x in everywhere}
        assert all(c >= min(6, sum(getattr(v, knob) == x for v in en.valid)) for x, c in counts.items()), (knob, counts)


@pytest.mark.parametrize("source", ["emulate.cu", "readprobe.cu", "blocker.cu"])
def test_helper_kernels_compile(cubin_cache, source):
    """The helper kernels the GPU host loads at run time (emulation throttle and SM probe, read
    ceiling probe, timing gate) compile for sm_90a, so a broken one is caught before a GPU call."""
    from workbench.kernel.build import build_source
    assert os.path.getsize(build_source(source, "sm_90a")) > 0


@pytest.mark.parametrize("knobs", ["algorithm=twopass,threads=256,heads_per_cta=2,partition=auto,stages=4",
                                   "algorithm=onepass,threads=128,heads_per_cta=4,partition=auto,stages=2,mma=true"])
def test_traced_build_has_the_buffers_probe_chain_reads(cubin_cache, knobs):
    """scripts/probe_chain.py builds decode.cu with WB_TRACE and reads `wb_trace` / `wb_trace_red` back by
    name (cuModuleGetGlobal): that build must compile and export both, and a plain build neither (its
    stamps expand to nothing), so the diagnostic cannot rot unnoticed between GPU calls."""
    from workbench.kernel.build import trace_cubin
    from workbench.kernel.variant import parse_knobs

    v = Variant.from_dict(parse_knobs(knobs))
    with open(trace_cubin(v, "sm_90a"), "rb") as f:
        traced = f.read()
    plain_build = build_variant(v, "sm_90a")
    assert plain_build.ok, plain_build.error
    with open(plain_build.cubin, "rb") as f:
        plain = f.read()
    for name in (b"wb_trace", b"wb_trace_red"):
        assert b"\0" + name + b"\0" in traced, name
        assert b"\0" + name + b"\0" not in plain, name


@pytest.mark.parametrize("struct", ["Params", "PlanParams"])
def test_launcher_params_match_the_kernels_struct(tmp_path, struct):
    """The Python launcher passes decode.cu's Params (and wb_plan's PlanParams) by value as a ctypes
    struct: every field at the same offset, the same size, or the kernel reads garbage (a field added
    on one side only)."""
    import ctypes
    import subprocess

    from workbench.kernel import launch
    from workbench.kernel.build import find_nvcc
    from workbench.config.paths import kernels_dir
    nvcc = find_nvcc()
    py = getattr(launch, "_" + struct)
    names = [f for f, _ in py._fields_]
    prog = ("#include <cstdio>\n#include <cstddef>\n#define WB_HEAD 128\n#define WB_BLOCK 16\n#define WB_DTYPE 1\n"
            "#define WB_THREADS 128\n#define WB_QPC 4\n#define WB_PARTITION -2\n#define WB_GRAPH_SCHED 1\n"
            f'#include "{kernels_dir() / "decode.cu"}"\nint main() {{\n'
            + "".join(f'  printf("%zu\\n", offsetof(wb::{struct}, {n}));\n' for n in names)
            + f'  printf("%zu\\n", sizeof(wb::{struct}));\n  return 0;\n}}\n')
    (tmp_path / "p.cu").write_text(prog)
    p = subprocess.run([nvcc, "-std=c++17", "-gencode=arch=compute_90a,code=sm_90a", str(tmp_path / "p.cu"), "-o",
                        str(tmp_path / "p")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    got = [int(x) for x in subprocess.run([str(tmp_path / "p")], capture_output=True, text=True, check=True).stdout.split()]
    want = [getattr(py, n).offset for n in names] + [ctypes.sizeof(py)]
    assert got == want, list(zip(names + ["sizeof"], got, want))
