"""`workbench export` on the H100 study recorded by the default tune run (NVIDIA H100 80GB HBM3,
driver 580.159.04, 2026-11-21; tests/fixtures/h100-2026-11-21/studies.db): rendered tree,
dispatch table = the study's best per bucket, generated Python, generated CUDA through nvcc."""
import importlib.util
import json
import re
import os
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DB = ROOT / "tests/fixtures/h100-2026-11-21/studies.db"
STUDY = "h100-llama-3.1-8b-tp1-bf16-blk16-default"


def storage(tmp_path):
    db = tmp_path / "studies.db"
    shutil.copy(DB, db)                     # never write to the fixture
    return f"sqlite:///{db}"


def wb(args, tmp_path):
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    st = storage(tmp)
    p = wb(["export", "--study", STUDY, "--storage", st, "--out", str(tmp / "pkg"), "--json"], tmp)
    assert p.returncode == 0, p.stderr
    return tmp / "pkg", json.loads(p.stdout), st


def test_tree(exported):
    out, r, _ = exported
    pkg = out / r["package"]
    assert r["package"] == "wb_h100_llama_3_1_8b"
    for f in ("setup.py", "pyproject.toml", "README.md"):
        assert (out / f).is_file()
    for f in ("__init__.py", "plugin.py", "vllm_backend.py", "dispatch.py", "dispatch.json", "csrc/ops.cpp",
              "csrc/decode.cu", "csrc/launch.cuh", "csrc/wb_args.h", "csrc/dispatch.h"):
        assert (pkg / f).is_file(), f
    cus = sorted((pkg / "csrc").glob("v*.cu"))
    assert len(cus) == len(r["variants"]) >= 1
    pp = (out / "pyproject.toml").read_text()
    assert '[project.entry-points."vllm.general_plugins"]' in pp and "wb_h100_llama_3_1_8b.plugin:register" in pp
    assert '"TORCH_CUDA_ARCH_LIST", "9.0a"' in (out / "setup.py").read_text()
    readme = (out / "README.md").read_text()
    assert "vllm serve" in readme and "--attention-backend CUSTOM" in readme and STUDY in readme
    assert "TORCH_LIBRARY(wb_h100_llama_3_1_8b, m)" in (pkg / "csrc/ops.cpp").read_text()
    for f in pkg.rglob("*.py"):                  # every template placeholder filled
        assert not re.search(r"@[A-Z_]+@", f.read_text()), f
    # the backend's eager-plan rule has workbench's constants (bench's `tuned` row times that launch)
    from workbench.kernel.variant import RAGGED_FILL, SCHED_MIN_SEQS
    backend = (pkg / "vllm_backend.py").read_text()
    assert f"RAGGED_FILL = {RAGGED_FILL!r}\n" in backend and f"RAGGED_MIN_SEQS = {SCHED_MIN_SEQS}\n" in backend


def test_dispatch_is_the_studys_best_per_bucket(exported):
    import optuna
    from workbench.tune.storage import open_storage
    out, r, st = exported
    doc = json.loads((out / r["package"] / "dispatch.json").read_text())
    trials = optuna.load_study(study_name=STUDY, storage=open_storage(st)).get_trials(deepcopy=False)
    from workbench.kernel.variant import Variant
    done = {t.number: t.user_attrs["measurement"] for t in trials if t.state.name == "COMPLETE"}
    assert len(doc["rows"]) == 12
    picked = set()
    for row in doc["rows"]:
        lbl = f"b{row['bucket']['batch']}x{row['bucket']['context']}"
        us = {n: next(x["median_us"] for x in m["timings"] if x["bucket"] == lbl) for n, m in done.items()}
        best_us = min(us.values())
        fastest = {done[n]["key"] for n, t in us.items() if t == best_us}      # ties: any of them
        assert row["median_us"] == pytest.approx(best_us)
        assert row["key"] in fastest, (lbl, row["name"])
        assert done[row["trial"]]["key"] == row["key"] and us[row["trial"]] == best_us
        assert Variant.from_dict(row["variant"]).key == row["key"]         # the variant the package builds
        picked.add(row["key"])
    assert len(picked) > 1                    # buckets pick different variants: the per-bucket choice matters
    # baseline = vLLM's own kernel, measured beside the study (scripts/add_references.py, same H100 kind)
    study = optuna.load_study(study_name=STUDY, storage=open_storage(st))
    base = study.user_attrs["references"]["baseline"]
    assert base["variant"]["algorithm"] == "vllm"
    row = doc["rows"][4]
    assert row["baseline_us"] == pytest.approx(next(x["median_us"] for x in base["timings"]
                                                    if x["bucket"] == "b8x4096"))
    assert doc["provenance"]["device_name"] == "NVIDIA H100 80GB HBM3"


def test_generated_python_compiles_and_picks_like_the_suite(exported):
    from workbench.measure.suite import Suite
    out, r, _ = exported
    pkg = out / r["package"]
    for f in pkg.glob("*.py"):
        py_compile.compile(str(f), doraise=True)
    spec = importlib.util.spec_from_file_location("d", pkg / "dispatch.py")
    d = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(d)
    doc = json.loads((pkg / "dispatch.json").read_text())
    suite = Suite.from_dict(doc["config"]["suite"])
    keys = [v for v in doc["variants_by_index"]]
    from workbench.kernel.variant import Variant
    keys = [Variant.from_dict(v).key for v in keys]
    by_bucket = {f"b{r_['bucket']['batch']}x{r_['bucket']['context']}": r_["key"] for r_ in doc["rows"]}
    for n in (1, 2, 3, 7, 8, 20, 64, 100, 500):
        for L in (1, 100, 1500, 2048, 5000, 8191, 8192, 30000, 131072):
            assert keys[d.pick_variant(n, L)] == by_bucket[suite.bucket_for(n, L).label], (n, L)


def test_generated_cuda_compiles_with_nvcc(exported, tmp_path):
    from workbench.kernel.build import find_nvcc
    out, r, _ = exported
    csrc = out / r["package"] / "csrc"
    nvcc = find_nvcc()
    for cu in sorted(csrc.glob("v*.cu")):
        p = subprocess.run([nvcc, "-c", "-O3", "-std=c++17", "-gencode=arch=compute_90a,code=sm_90a", "-I", str(csrc),
                            str(cu), "-o", str(tmp_path / (cu.stem + ".o"))], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr[-2000:]
    # the torch op file against torch's headers (CPU torch lacks one generated CUDA header: stub it)
    gxx = shutil.which("g++")
    if not gxx:
        pytest.skip("no g++ to syntax-check ops.cpp")
    import sysconfig

    from torch.utils.cpp_extension import include_paths
    stub = tmp_path / "stub/c10/cuda/impl"
    stub.mkdir(parents=True)
    (stub / "cuda_cmake_macros.h").write_text("")
    cands = [os.environ.get("CUDA_HOME", ""), "/usr/local/cuda", str(Path(nvcc).resolve().parent.parent)]
    cands += [str(Path(p).parent.parent) for p in ("/usr/local/cuda-13.0/bin/nvcc",)]
    cuda_inc = next((Path(c) / "include" for c in cands if c and (Path(c) / "include/cuda_runtime.h").exists()), None)
    if cuda_inc is None:
        pytest.skip("CUDA headers not found for the ops.cpp syntax check")
    cmd = [gxx, "-std=c++17", "-fsyntax-only", f"-I{tmp_path / 'stub'}", *[f"-I{p}" for p in include_paths()],
           f"-I{cuda_inc}", f"-I{sysconfig.get_paths()['include']}", f"-I{csrc}", "-DTORCH_EXTENSION_NAME=_C",
           str(csrc / "ops.cpp")]
    p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]


def test_export_bad_input(tmp_path):
    st = storage(tmp_path)
    p = wb(["export", "--study", "nope", "--storage", st, "--out", str(tmp_path / "o")], tmp_path)
    assert p.returncode == 2 and "no study 'nope'" in p.stderr
    p = wb(["export", "--study", STUDY, "--storage", st, "--out", str(tmp_path / "o"), "--gpu", "h200"], tmp_path)
    assert p.returncode == 2 and "tuned for h100" in p.stderr
    # unwritable for root too (CI runs as root): a path under a regular file
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    p = wb(["export", "--study", STUDY, "--storage", st, "--out", str(blocker / "x")], tmp_path)
    err = "".join(p.stderr.split())                 # the console wraps long lines
    assert p.returncode == 2 and f"cannotwriteto{blocker / 'x'}(Notadirectory)" in err and "Traceback" not in err
    p = wb(["export", "--study", STUDY, "--storage", st, "--out", "/proc/wb-export"], tmp_path)
    assert p.returncode == 2 and "cannot write to /proc/wb-export" in p.stderr
    import optuna

    from workbench.tune.storage import open_storage
    s = optuna.create_study(study_name="empty", storage=open_storage(st), directions=["minimize", "maximize"])
    s.set_user_attr("config", {"gpu": "h100"})
    p = wb(["export", "--study", "empty", "--storage", st, "--out", str(tmp_path / "e")], tmp_path)
    assert p.returncode == 2 and "no completed trial" in p.stderr
    for p_ in (p,):
        assert "Traceback" not in p_.stderr


def test_export_checks_it_can_write_before_rendering(tmp_path, monkeypatch):
    """A directory that exists but refuses writes (read-only mount, no permission: what root
    never sees) fails at the write probe with the same message, before anything is rendered."""
    import pathlib

    from workbench.errors import WorkbenchError
    from workbench.export import package
    real = pathlib.Path.write_text

    def refuse(self, *a, **k):
        if self.name == ".wb-write-probe":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *a, **k)
    monkeypatch.setattr(pathlib.Path, "write_text", refuse)
    out = tmp_path / "ro"
    with pytest.raises(WorkbenchError, match=r"cannot write to .*ro \(Permission denied\): choose another --out"):
        package._writable(out)
    assert out.is_dir() and not any(out.iterdir())


def test_export_launcher_shared_memory_matches_workbench(tmp_path):
    """launch.cuh sizes dynamic shared memory itself: it must agree with Variant.smem_bytes for
    every knob that changes it (a smaller value is an out-of-bounds write on the GPU). Host code
    only, so it runs without a GPU."""
    from workbench.kernel.build import defines, find_nvcc
    from workbench.kernel.variant import Variant
    nvcc = find_nvcc()
    if not nvcc:
        pytest.skip("nvcc not installed")
    vs = [Variant(), Variant(threads=256, heads_per_cta=4, partition=1024, stages=3),
          Variant(threads=64, heads_per_cta=2, partition=0, stages=4), Variant(algorithm="onepass", heads_per_cta=4),
          Variant(threads=128, heads_per_cta=4, partition=256, stages=2, dtype="fp16", head_size=256, block_size=32),
          Variant(algorithm="onepass", threads=128, heads_per_cta=8, partition=-2, stages=3, mma=True)]
    tokens = (16, 512, 1024, 3008)
    csrc = ROOT / "kernels"
    (tmp_path / "launch.cuh").write_text((csrc / "export/launch.cuh").read_text())
    (tmp_path / "wb_args.h").write_text((csrc / "export/wb_args.h").read_text())
    (tmp_path / "decode.cu").write_text((csrc / "decode.cu").read_text())
    got = []
    for i, v in enumerate(vs):          # one program per variant (decode.cu is one per TU)
        defs = "\n".join(f"#define {d[2:].split('=')[0]} {d.split('=')[1]}" for d in defines(v))
        (tmp_path / f"v{i}.cu").write_text(
            f"#include <cstdio>\n{defs}\n#define WB_NS wb_v{i}\n#define WB_SYM(name) name##_v{i}\n"
            "#include \"decode.cu\"\n#include \"launch.cuh\"\nint main() {\n"
            + "".join(f"  printf(\"%d\\n\", wb_smem_bytes_v{i}({t}));\n" for t in tokens) + "  return 0;\n}\n")
        exe = tmp_path / f"v{i}"
        p = subprocess.run([nvcc, "-O1", "-std=c++17", "-gencode=arch=compute_90a,code=sm_90a", "-I", str(tmp_path),
                            str(tmp_path / f"v{i}.cu"), "-o", str(exe)], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr[-3000:]
        got += [int(x) for x in subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()]
    want = [v.smem_bytes(t) for v in vs for t in tokens]
    assert got == want


def _launcher_host(tmp_path: Path, nvcc: str, v, tag: str, body: str) -> str:
    """The stdout of a host program that includes decode.cu and launch.cuh built for variant v (symbols
    suffixed _<tag>) and runs `body` in main: the launcher's host code, no GPU needed."""
    from workbench.kernel.build import defines
    for f in ("export/launch.cuh", "export/wb_args.h", "decode.cu"):
        (tmp_path / f.split("/")[-1]).write_text((ROOT / "kernels" / f).read_text())
    defs = "\n".join(f"#define {d[2:].split('=')[0]} {d.split('=')[1]}" for d in defines(v))
    (tmp_path / f"{tag}.cu").write_text(
        f"#include <cstdio>\n{defs}\n#define WB_NS wb_{tag}\n#define WB_SYM(name) name##_{tag}\n"
        "#include \"decode.cu\"\n#include \"launch.cuh\"\nint main() {\n" + body + "  return 0;\n}\n")
    exe = tmp_path / tag
    p = subprocess.run([nvcc, "-O1", "-std=c++17", "-gencode=arch=compute_90a,code=sm_90a", "-I", str(tmp_path),
                        str(tmp_path / f"{tag}.cu"), "-o", str(exe)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-3000:]
    return subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout


def test_export_launcher_auto_partitions_match_workbench(tmp_path):
    """launch.cuh's auto split (wb_auto_tokens_occ) must pick what Variant.auto_tokens picks for the
    same occupancy: the twopass path (logits bound the partition) and the onepass tensor-core path
    (no logits: any length fits, so a long sequence may run whole). Host code only."""
    from workbench.kernel.build import find_nvcc
    from workbench.kernel.variant import Occupancy, Variant
    nvcc = find_nvcc()
    if not nvcc:
        pytest.skip("nvcc not installed")
    occ = Occupancy(sm_count=132, smem_per_sm=233472, smem_reserved=1024, smem_limit=232448, split_blocks=4,
                    whole_blocks=4)
    vs = [Variant(threads=256, heads_per_cta=4, partition=-2, stages=2, mma=True),
          Variant(threads=128, heads_per_cta=8, partition=-2, stages=3, mma=True),
          Variant(algorithm="onepass", threads=128, heads_per_cta=8, partition=-2, stages=2, mma=True),
          Variant(algorithm="onepass", threads=256, heads_per_cta=7, partition=-2, stages=2, mma=True)]
    cases = [(1, 1024), (8, 4096), (64, 32768), (256, 1024), (512, 4096), (8, 131072)]
    got = []
    for i, v in enumerate(vs):
        got += [int(x) for x in _launcher_host(tmp_path, nvcc, v, f"a{i}", f"  WbOcc_a{i} o{{132, 233472, 1024, 4, 4, 0}};\n" + "".join(
            f"  printf(\"%d\\n\", wb_auto_tokens_occ_a{i}(&o, {c}, {n}, 232448));\n" for c, n in cases)).split()]
    want = [v.auto_tokens(c, n, occ) for v in vs for c, n in cases]
    assert got == want
    # onepass partitions are not bounded by logits room: past the twopass fit (5408 tokens at 8 heads, 3 stages)
    assert vs[1].auto_tokens(1024, 65536, occ) <= vs[1].max_context_unsplit(occ.smem_limit) < \
        vs[2].auto_tokens(1024, 65536, occ)


def test_export_launcher_schedules_what_workbench_schedules(tmp_path):
    """launch.cuh's wb_sched_shape must schedule the graph-bound launches Variant.schedules does, with
    Variant.sched_shape's partition, item slots and key (a schedule is trusted only by its key), for
    every rule: many waves, few CTAs per sequence, a batch filling half to one wave (onepass; few
    CTAs per sequence too: SCHED_FIT_FEW), and a sparse batch filling less than half a wave
    (SCHED_SPARSE). Host code only, an H200's occupancy."""
    from workbench.kernel.build import find_nvcc
    from workbench.kernel.variant import Occupancy, Variant
    nvcc = find_nvcc()
    if not nvcc:
        pytest.skip("nvcc not installed")
    occ = Occupancy(sm_count=132, smem_per_sm=233472, smem_reserved=1024, smem_limit=232448, split_blocks=3,
                    whole_blocks=3, sched_blocks=3)
    vs = [Variant(algorithm="onepass", threads=128, heads_per_cta=4, partition=-2, stages=2, mma=True, graph_sched=True),
          Variant(threads=256, heads_per_cta=4, partition=-2, stages=2, mma=True, graph_sched=True),
          Variant(algorithm="onepass", threads=128, heads_per_cta=8, partition=-2, stages=2, mma=True, graph_sched=True)]
    # (CTAs per sequence, sequences, bound): b1; sparse b2-b24 at 8 CTAs; one wave b25-b49; few CTAs; many waves
    cases = [(8, 1, 32864), (8, 2, 32864), (8, 8, 32864), (8, 16, 32864), (8, 24, 32864), (8, 25, 32864),
             (8, 32, 32864), (8, 64, 32864), (8, 256, 32864), (4, 8, 32864), (4, 64, 32864), (1, 8, 32864),
             (4, 40, 32864), (4, 99, 32864), (4, 100, 32864), (1, 128, 32864), (1, 256, 32864),
             (8, 8, 4176), (8, 3, 1024)]
    got = []
    for i, v in enumerate(vs):
        out = _launcher_host(tmp_path, nvcc, v, f"s{i}", f"  WbOcc_s{i} o{{132, 233472, 1024, 3, 3, 3}};\n  WbSched_s{i} s;\n"
                             + "".join(f"  if (wb_sched_shape_occ_s{i}(&o, {g}, {n}, {b}, 232448, &s)) "
                                       "printf(\"1 %d %d %d %lld\\n\", s.pt_cap, s.cap, s.key, s.slots); "
                                       "else printf(\"0 0 0 0 0\\n\");\n" for g, n, b in cases))
        got += [tuple(int(x) for x in line.split()) for line in out.splitlines() if line]
    want = []
    for v in vs:
        for g, n, b in cases:
            if v.schedules(g * n, b, occ, num_seqs=n):
                sh = v.sched_shape(g, n, b, occ)
                want.append((1, sh.part_tokens, sh.cap, sh.key, sh.slots))
            else:
                want.append((0, 0, 0, 0, 0))
    assert got == want
    # every rule is in the cases: the sparse one schedules b2-b24 of the 8-CTA onepass variant
    assert [n for (g, n, b), w in zip(cases, want[:len(cases)]) if g == 8 and b == 32864 and w[0]] == \
        [2, 8, 16, 24, 25, 32, 256]           # b64: two waves of the plain grid, which is fine
    # few CTAs a sequence whose whole sequences fill half to one wave (396 slots): one wave of item slots
    occ_s = occ.scheduled()
    fit = [(g, n) for (g, n, b) in cases if vs[0].fits_one_wave(g, n, b, occ_s)]
    assert (4, 64) in fit and (1, 256) in fit and (4, 40) not in fit and (1, 128) not in fit, fit


def test_export_launcher_plans_with_workbench_plan_constants():
    """The exported launcher fills wb_plan's PlanParams with literals; they must be workbench's
    (Variant's SCHED_WAVE_TOKENS, SCHED_WHOLE_MAX), or the package plans other steps than bench timed."""
    import workbench.kernel.variant as variant_mod
    src = (ROOT / "kernels/export/launch.cuh").read_text()
    assert re.search(rf"pp\.wave_tokens = {variant_mod.SCHED_WAVE_TOKENS};", src)
    assert re.search(rf"pp\.whole_max = {variant_mod.SCHED_WHOLE_MAX};", src)


@pytest.mark.parametrize("flags,suffix,define,knob", [(["--graph-walk"], "-walk", "WB_GRAPH_WALK", "graph_walk"),
                                                       ([], "-sched", "WB_GRAPH_SCHED", "graph_sched"),
                                                       (["--graph-sched"], "-sched", "WB_GRAPH_SCHED", "graph_sched")])
def test_graph_forms_export_build_into_auto_variants_only(tmp_path, flags, suffix, define, knob):
    """`export` (the schedule, the default) / `--graph-walk` against `--no-graph-sched` (the H200 v6
    study, auto-split variants): those variants are built with Variant.graph_sched / graph_walk (the
    define in their translation units, the name suffix), the others as before, the dispatch table is
    the same, and such a unit compiles with its launcher (the scheduled one: wb_plan and wb_plan_run
    too)."""
    from workbench.kernel.build import find_nvcc
    db = tmp_path / "studies.db"
    shutil.copy(ROOT / "results/h200-2026-11-28-v6/studies.db", db)
    outs = {}
    for walk in (False, True):
        out = tmp_path / f"pkg-{walk}"
        p = wb(["export", "--study", "h200-train", "--storage", f"sqlite:///{db}", "--out", str(out), "--json",
                *(flags if walk else ["--no-graph-sched"])], tmp_path)
        assert p.returncode == 0, p.stderr[-2000:]
        outs[walk] = (out, json.loads(p.stdout))
    (plain, rp), (walked, rw) = outs[False], outs[True]
    csrc = {w: o / r["package"] / "csrc" for w, (o, r) in outs.items()}
    assert (csrc[False] / "dispatch.h").read_text() == (csrc[True] / "dispatch.h").read_text().replace(suffix, "")
    docs = json.loads((walked / rw["package"] / "dispatch.json").read_text())["variants_by_index"]
    autos = [i for i, v in enumerate(docs) if v["partition"] == -2 and v.get("reduce", "kernel") != "fused"]
    assert autos and any(knob.replace("graph_", "") in n for n in rw["notes"])
    assert not any("graph-bound" in n for n in rp["notes"])
    assert any("no graph picks" in n and "--graph-len" in n for n in rp["notes"])   # the v6 study has none
    for i, (a, b) in enumerate(zip(rp["variants"], rw["variants"])):
        tu = (csrc[True] / f"v{i}.cu").read_text()
        assert (b == a + suffix and f"#define {define} 1" in tu and docs[i][knob]) if i in autos \
            else (b == a and define not in tu), (i, a, b)
        assert define not in (csrc[False] / f"v{i}.cu").read_text()
    nvcc = find_nvcc()
    cu = csrc[True] / f"v{autos[0]}.cu"
    p = subprocess.run([nvcc, "-c", "-O3", "-std=c++17", "-gencode=arch=compute_90a,code=sm_90a", "-I", str(csrc[True]),
                        str(cu), "-o", str(tmp_path / "walk.o")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    syms = subprocess.run(["nm", str(tmp_path / "walk.o")], capture_output=True, text=True).stdout
    assert (f"wb_plan_run_v{autos[0]}" in syms) and ((f"wb_plan_v{autos[0]}" in syms) == (knob == "graph_sched"))


def test_export_graph_walk_and_graph_sched_together_is_one_clear_message(tmp_path):
    """The walk and the schedule are two answers to one problem: asking for both is refused before
    anything is written; --graph-walk alone turns the default schedule off (the test above)."""
    db = tmp_path / "studies.db"
    shutil.copy(ROOT / "results/h200-2026-11-28-v6/studies.db", db)
    out = tmp_path / "pkg"
    p = wb(["export", "--study", "h200-train", "--storage", f"sqlite:///{db}", "--out", str(out),
            "--graph-walk", "--graph-sched"], tmp_path)
    assert p.returncode != 0 and "pick one" in p.stderr and "Traceback" not in p.stderr
    assert not out.exists()


def test_export_of_a_study_with_onepass_tensor_core_picks_compiles(tmp_path):
    """The 70b TP8 study tuned with the onepass tensor-core path in the space (H200, 2026-11-29)
    exports: its onepass picks become translation units with WB_ALGO 1 and WB_MMA 1, in their
    graph form (scheduled: the default), and such a unit compiles with its launcher."""
    import gzip

    from workbench.kernel.build import find_nvcc
    db = tmp_path / "studies.db"
    with gzip.open(ROOT / "results/h200-2026-11-29-onepass/studies.db.gz") as src, open(db, "wb") as dst:
        shutil.copyfileobj(src, dst)
    out = tmp_path / "pkg"
    p = wb(["export", "--study", "h200-llama-3.1-70b-tp8-op", "--storage", f"sqlite:///{db}", "--out", str(out),
            "--json"], tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads(p.stdout)
    csrc = out / r["package"] / "csrc"
    ones = [i for i, n in enumerate(r["variants"]) if "-onepass-" in n and "-mma" in n]
    assert ones, r["variants"]
    tu = (csrc / f"v{ones[0]}.cu").read_text()
    assert "#define WB_ALGO 1" in tu and "#define WB_MMA 1" in tu and "#define WB_STAGES" in tu
    assert ("-pauto-" in r["variants"][ones[0]]) == ("#define WB_GRAPH_SCHED 1" in tu)
    nvcc = find_nvcc()
    if not nvcc:
        pytest.skip("nvcc not installed")
    p = subprocess.run([nvcc, "-c", "-O3", "-std=c++17", "-gencode=arch=compute_90a,code=sm_90a", "-I", str(csrc),
                        str(csrc / f"v{ones[0]}.cu"), "-o", str(tmp_path / "one.o")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
