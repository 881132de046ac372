"""`workbench e2e` on a CPU: config.json generation, the grid, the metrics, the prediction, the
correctness verdicts, the JSON records, and the driver's resume / failure handling with a fake
runner in a real child process (no GPU, no vLLM)."""
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from workbench.e2e import compare, run_e2e
from workbench.e2e.attention_share import classify, share_from_window, window_kernels
from workbench.e2e.child import run_child
from workbench.e2e.correctness import PointOutputs, Tolerances, agreement, compare_topk
from workbench.e2e.grid import (GridPlan, GridPoint, engine_limits, parse_sizes, plan_grid, prompt_len,
                                tokens_needed)
from workbench.e2e.metrics import decode_window, percentile
from workbench.e2e.model_config import hf_config, kv_bytes_per_token, load_arch, param_count, write_model_dir
from workbench.e2e.prediction import load_kernel_ratios, predicted_ratio, within
from workbench.e2e.results import BackendResult, E2eRun, PointResult, ShareResult
from workbench.e2e.runner import make_prompts
from workbench.e2e.runner_args import NVTX_PREFIX
from workbench.e2e.settings import EngineSettings, weight_spec
from workbench.errors import WorkbenchError
from workbench.config.profiles import known, load_model

ROOT = Path(__file__).resolve().parent.parent
BENCH_H100 = ROOT / "tests/fixtures/bench-h100-2026-11-22.json"


# ---- config.json from the profiles ---------------------------------------------------------------
def test_config_json_for_every_model_profile(tmp_path):
    names = known("models")
    assert "llama-3.1-8b" in names and not any("/" in n for n in names)   # arch/ is not a model profile
    for name in names:
        m = load_model(name)
        d = write_model_dir(name, tmp_path / name)
        cfg = json.loads((tmp_path / name / "config.json").read_text())
        arch = load_arch(name)
        assert cfg["architectures"] == [arch.architecture]
        assert (cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"], cfg["num_hidden_layers"]) == \
            (m.num_heads, m.num_kv_heads, m.head_size, m.layers), name
        for k in ("hidden_size", "intermediate_size", "vocab_size", "max_position_embeddings", "rope_theta",
                  "rms_norm_eps", "model_type"):
            assert cfg[k] == getattr(arch, k), (name, k)
        assert cfg["torch_dtype"] == "bfloat16"
        assert d.kv_bytes_per_token == 2 * m.layers * m.num_kv_heads * m.head_size * 2
        assert (d.num_heads, d.num_kv_heads, d.head_size, d.num_layers) == (m.num_heads, m.num_kv_heads,
                                                                            m.head_size, m.layers)


def test_config_json_llama_3_1_8b_is_the_published_one(tmp_path):
    write_model_dir("llama-3.1-8b", tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    want = {"architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
            "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
            "vocab_size": 128256, "max_position_embeddings": 131072, "rope_theta": 500000.0, "rms_norm_eps": 1e-5,
            "tie_word_embeddings": False}
    assert {k: cfg[k] for k in want} == want
    assert cfg["rope_scaling"]["rope_type"] == "llama3" and cfg["rope_scaling"]["factor"] == 8.0
    m, a = load_model("llama-3.1-8b"), load_arch("llama-3.1-8b")
    assert param_count(m, a) == 8_030_261_248            # Llama-3.1-8B's published parameter count
    assert kv_bytes_per_token(m) == 131072
    g = json.loads(json.dumps(hf_config(load_model("gemma-2-9b"), load_arch("gemma-2-9b"))))
    assert g["architectures"] == ["Gemma2ForCausalLM"] and g["head_dim"] == 256 and g["final_logit_softcapping"] == 30.0
    assert param_count(load_model("gemma-2-9b"), load_arch("gemma-2-9b")) == 9_241_705_984   # tied embeddings


def test_arch_profile_errors(tmp_path):
    with pytest.raises(WorkbenchError, match="no architecture for model 'nope'.*add one"):
        load_arch("nope", tmp_path)
    (tmp_path / "x.yaml").write_text((ROOT / "profiles/models/arch/llama-3.1-8b.yaml").read_text() + "colour: red\n")
    with pytest.raises(WorkbenchError, match="unknown field.*colour"):
        load_arch("x", tmp_path)
    (tmp_path / "y.yaml").write_text((ROOT / "profiles/models/arch/llama-3.1-8b.yaml").read_text()
                                     + "  num_attention_heads: 4\n")
    with pytest.raises(WorkbenchError, match="may not set num_attention_heads"):
        load_arch("y", tmp_path)
    (tmp_path / "z.yaml").write_text((ROOT / "profiles/models/arch/llama-3.1-8b.yaml").read_text()
                                     .replace("LlamaForCausalLM", "GPT2LMHeadModel"))
    with pytest.raises(WorkbenchError, match="not one e2e generates"):
        load_arch("z", tmp_path)


# ---- the grid ------------------------------------------------------------------------------------
def test_parse_sizes():
    assert parse_sizes("1k, 4k,32k,4096", "--contexts") == [1024, 4096, 32768]
    assert parse_sizes("64,1,8", "--batches") == [1, 8, 64]
    for bad in ("", "0", "1,x", "-4"):
        with pytest.raises(WorkbenchError, match="--batches"):
            parse_sizes(bad, "--batches")


def test_grid_skips_what_does_not_fit_and_says_why():
    m = load_model("llama-3.1-8b")
    kvb = kv_bytes_per_token(m)
    cap = 600_000                          # ≈ 79 GB of KV at 131072 B/token
    plan = plan_grid([1, 8, 32, 64], [1024, 4096, 16384, 32768], decode_steps=128, block_size=16,
                     kv_capacity_tokens=cap, max_position_embeddings=131072, max_num_batched_tokens=16384,
                     kv_bytes_per_token=kvb)
    skipped = {s.label: s.reason for s in plan.skipped}
    assert set(skipped) == {"b32x32768", "b64x16384", "b64x32768"}
    assert all("KV tokens" in r and "holds 600000" in r and "GB" in r for r in skipped.values())
    assert len(plan.points) == 13 and GridPoint(32, 16384) in plan.points
    for p in plan.points:
        assert tokens_needed(p, 128, 16, 16384) <= cap
    for s in plan.skipped:
        assert tokens_needed(GridPoint(s.batch, s.context), 128, 16, 16384) > cap
    # the model's own limit: Llama-2 stops at 4096 positions
    plan2 = plan_grid([1], [1024, 4096, 16384], decode_steps=128, block_size=16, kv_capacity_tokens=None,
                      max_position_embeddings=4096, max_num_batched_tokens=16384)
    assert [p.label for p in plan2.points] == ["b1x1024"]
    assert {s.label for s in plan2.skipped} == {"b1x4096", "b1x16384"}
    assert all("max_position_embeddings 4096" in s.reason for s in plan2.skipped)
    # the decode steps are centred on the context; the engine covers the longest sequence
    assert prompt_len(4096, 128) == 4032
    max_len, seqs = engine_limits(plan.points, 128, 16384, 16)
    assert seqs == 64 and max_len % 16 == 0 and max_len >= 32768 + 64
    with pytest.raises(WorkbenchError, match="no grid point fits"):
        engine_limits([], 128, 16384, 16)


# ---- throughput and ITL from token arrival times -----------------------------------------------
def test_decode_window_staggered_prefill():
    # 4 sequences leave a chunked prefill at steps 0..3 (10 ms apart) and each then makes 20 tokens
    step = 0.010
    times = [[(start + j) * step for j in range(20)] for start in range(4)]
    w = decode_window(times)
    assert w.t0 == pytest.approx(3 * step) and w.t1 == pytest.approx(19 * step)
    assert w.steps == 16 and w.tokens == 64 and w.batch == 4
    assert w.tok_s == pytest.approx(4 / step)
    assert w.itl_mean_ms == pytest.approx(10.0) and w.itl_p99_ms == pytest.approx(10.0)
    # one 50 ms hiccup inside the window: the mean and the p99 see it
    times = [[t + (0.04 if t > 0.1 else 0) for t in seq] for seq in times]
    w2 = decode_window(times)
    assert w2.itl_p99_ms > 40 and w2.itl_mean_ms == pytest.approx((w2.t1 - w2.t0) * 1e3 / 16)
    assert decode_window([[0.1], [0.1, 0.2]]) is None
    assert decode_window([[0.0, 0.1], [0.2, 0.3]]) is None     # never all decoding together
    assert percentile([1, 2, 3, 4], 50) == 2.5 and percentile([5], 99) == 5 and percentile(range(101), 99) == 99


# ---- prediction ----------------------------------------------------------------------------------
def test_predicted_ratio_formula():
    assert predicted_ratio(0.0, 3.0) == 1.0
    assert predicted_ratio(1.0, 1.25) == pytest.approx(1.25)
    assert predicted_ratio(0.5, 2.0) == pytest.approx(1 / 0.75)
    assert predicted_ratio(0.3, 0.8) == pytest.approx(1 / (0.7 + 0.3 / 0.8))     # a slower kernel: < 1
    assert within(1.015, 1.0) and not within(1.025, 1.0) and within(0.981, 1.0)
    for a, k in ((-0.1, 1.0), (1.1, 1.0), (0.5, 0.0)):
        with pytest.raises(ValueError):
            predicted_ratio(a, k)


def _bench(tmp_path, rows, heads=None):
    doc = {"kind": "workbench-bench", "gpu": {"name": "NVIDIA H100"}, "dtype": "bf16", "block_size": 16,
           "heads": heads or {"model": "llama-3.1-8b", "tp": 1, "num_heads": 32, "num_kv_heads": 8, "head_size": 128},
           "peers": sorted({r[0] for r in rows}), "created": "x",
           "results": [{"peer": p, "batch": b, "context": c, "median_us": t} for p, b, c, t in rows]}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(doc))
    return path


def test_kernel_ratio_from_bench_json(tmp_path):
    p = _bench(tmp_path, [("tuned", 8, 4096, 80.0), ("fa3", 8, 4096, 100.0), ("tuned", 1, 1024, 6.0),
                          ("fa3", 1, 1024, 9.0), ("fa3", 64, 4096, 700.0)])
    heads = {"num_heads": 32, "num_kv_heads": 8, "head_size": 128}
    kr = load_kernel_ratios(p, heads=heads, dtype="bf16", block_size=16)
    assert kr.k(8, 4096) == pytest.approx(1.25) and kr.k(1, 1024) == pytest.approx(1.5)
    assert kr.k(64, 4096) is None and kr.gpu == "NVIDIA H100"
    with pytest.raises(WorkbenchError, match="other heads"):
        load_kernel_ratios(p, heads={**heads, "num_kv_heads": 4})
    with pytest.raises(WorkbenchError, match="block 16, e2e runs block 32"):
        load_kernel_ratios(p, block_size=32)
    with pytest.raises(WorkbenchError, match="'xqa'.*was not measured"):
        load_kernel_ratios(p, ref="xqa")
    # a real bench file (H100, 2026-11-21) predates the fa3 peer: said so; its own peers work
    with pytest.raises(WorkbenchError, match="'fa3' .*not measured.*peers: baseline"):
        load_kernel_ratios(BENCH_H100)
    real = load_kernel_ratios(BENCH_H100, ref="baseline", heads=heads, dtype="bf16", block_size=16)
    rows = json.loads(BENCH_H100.read_text())["results"]
    t = {(r["peer"], r["batch"], r["context"]): r["median_us"] for r in rows}
    assert len(real.ratios) == 18
    assert real.k(8, 4096) == pytest.approx(t[("baseline", 8, 4096)] / t[("tuned", 8, 4096)])
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(WorkbenchError, match="not a workbench bench file"):
        load_kernel_ratios(bad)
    import gzip                                   # results/ keeps benches gzipped: read as they are
    gz = tmp_path / "bench.json.gz"
    gz.write_bytes(gzip.compress(BENCH_H100.read_bytes()))
    assert load_kernel_ratios(gz, ours="tuned", ref="baseline").ratios == real.ratios


# ---- correctness verdicts ------------------------------------------------------------------------
def _outs(n=10, steps=16, lp=-1.0):
    ids = [[(i * 7 + s) % 50 for s in range(steps)] for i in range(n)]
    tops = [[[[t, lp - 0.1 * t] for t in range(20)] for _ in range(2)] for _ in range(n)]
    return PointOutputs(ids=ids, top_logprobs=tops)


def test_correctness_ids_fraction():
    ref = _outs()
    assert agreement(ref, _outs()).ok and agreement(ref, _outs()).ids_match_fraction == 1.0
    got = _outs()
    got.ids[0][5] += 1                      # one of 10 diverges at step 5: 90%, still a pass
    a = agreement(ref, got)
    assert a.ids_match_fraction == pytest.approx(0.9) and a.ok and a.verdict == "pass"
    assert a.mean_matching_prefix == pytest.approx((9 * 16 + 5) / 10)
    got.ids[1][15] += 1                     # two of 10: 80%
    b = agreement(ref, got)
    assert not b.ok and "greedy ids match on 80%" in b.verdict
    # unless vLLM's own second backend follows FLASH_ATTN no better (random weights: rounding noise)
    f = agreement(ref, got, floor_ids=0.8)
    assert f.ok and f.verdict == "pass (ids 80% ≥ TRITON_ATTN's 80%)"
    f = agreement(ref, got, floor_ids=0.85)
    assert not f.ok and "< 90% and < TRITON_ATTN's 85%" in f.verdict
    got2 = _outs()
    got2.ids[3][16 - 1] += 0                # identical
    got2.ids[3] = got2.ids[3][:15] + [999]  # the 16th id differs
    assert agreement(ref, got2).ids_match_fraction == pytest.approx(0.9)
    assert not agreement(ref, PointOutputs(ids=ref.ids[:5], top_logprobs=[])).ok       # not comparable


def test_correctness_logprob_tolerance():
    tol = Tolerances()
    a = [[1, -1.0], [2, -10.0]]
    edge = tol.logprob_atol + tol.logprob_rtol * 10.0
    assert compare_topk(a, [[1, -1.0], [2, -10.0 - edge * 0.99]], tol)[0]
    ok, d = compare_topk(a, [[1, -1.0], [2, -10.0 - edge * 1.01]], tol)
    assert not ok and d == pytest.approx(edge * 1.01)
    assert compare_topk(a, [[2, -10.0], [1, -1.0]], tol) == (True, 0.0)          # order does not matter
    assert compare_topk(a, [[7, -1.0], [8, -10.0]], tol) == (False, None)         # nothing in common
    ref = _outs()
    got = _outs()
    got.top_logprobs[4][1][0][1] += 0.5                   # one sequence, first decode step: 90% within
    r = agreement(ref, got)
    assert r.ok and r.logprob_ok_fraction == pytest.approx(0.9) and r.logprob_max_abs_diff == pytest.approx(0.5)
    got.top_logprobs[5][0][3][1] -= 0.3                   # a second one (step 0): 80%
    r = agreement(ref, got)
    assert not r.ok and "log-probabilities within bf16 tolerance on 80%" in r.verdict
    # where step 0 chose another token, step 1 saw other inputs: only step 0 is compared
    got = _outs()
    got.ids[2][0] += 1
    got.top_logprobs[2][1][0][1] += 5.0
    r = agreement(ref, got)
    assert r.logprob_ok_fraction == 1.0 and r.positions_compared == 19


# ---- records -------------------------------------------------------------------------------------
def _run_record(tmp_path):
    pts = [GridPoint(1, 1024), GridPoint(8, 4096)]
    run = E2eRun(model={"model": "llama-3.1-8b"}, backends=["FLASH_ATTN", "CUSTOM", "TRITON_ATTN"],
                 settings=EngineSettings(max_model_len=4224, max_num_seqs=8).to_dict(),
                 grid={**GridPlan(points=pts).to_dict(), "requested": {"batches": [1, 8], "contexts": [1024, 4096]}},
                 decode_steps=128, tolerances=Tolerances().to_dict(),
                 bench={"ratios": {"b1x1024": 2.0, "b8x4096": 1.25}}, provenance={"gpu": "NVIDIA H200"})
    speed = {"FLASH_ATTN": 1000.0, "CUSTOM": 1100.0}
    for name, f in speed.items():
        run.results[name] = BackendResult(backend=name, status="ok", points=[
            PointResult(batch=p.batch, context=p.context, tok_s=f * p.batch, itl_mean_ms=1000 / f, itl_p99_ms=2.0,
                        outputs=_outs(n=p.batch)) for p in pts])
    run.results["TRITON_ATTN"] = BackendResult(backend="TRITON_ATTN", status="failed", reason="backend refuses")
    run.shares = [ShareResult(backend="FLASH_ATTN", batch=1, context=1024, steps=16, attention_us_per_step=300.0,
                              kernel_us_per_step=900.0, a_kernels=1 / 3, a=0.3),
                  ShareResult(backend="FLASH_ATTN", batch=8, context=4096, steps=16, a_kernels=0.4, a=None)]
    return run


def test_a_bench_with_the_fused_write_predicts_attention_and_write_together(tmp_path):
    """`bench --fused-write` times attention plus the step's KV write (FA3 after a write kernel, ours
    writing in the launch): its k is of both, so a becomes the share of FLASH_ATTN's attention and its
    write kernel in the step (same capture); the table says "a+write". A capture that did not separate
    the write gives no prediction rather than a wrong one."""
    from workbench.bench.run import FORM_NOTES
    p = _bench(tmp_path, [("tuned-graph", 1, 1024, 8.0), ("fa3-packed", 1, 1024, 12.0)])
    doc = json.loads(p.read_text())
    assert load_kernel_ratios(p, ours="auto", ref="fa3-packed").includes_write is False
    doc["notes"] = [FORM_NOTES["in-graph"], FORM_NOTES["fused-write"]]
    p.write_text(json.dumps(doc))
    kr = load_kernel_ratios(p, ours="auto", ref="fa3-packed")
    assert kr.includes_write and kr.k(1, 1024) == pytest.approx(1.5)
    run = _run_record(tmp_path)
    run.bench = kr.to_dict()
    run.shares[0].kv_write_us_per_step = 60.0              # attention 300 µs a step, its write 60 more
    by = {(r.point, r.backend): r for r in compare.rows(run)}
    c = by[("b1x1024", "CUSTOM")]
    assert c.a == pytest.approx(0.3 * 360 / 300) and c.k == pytest.approx(1.5)
    assert c.predicted == pytest.approx(1 / (1 - 0.36 + 0.36 / 1.5))
    assert by[("b8x4096", "CUSTOM")].a is None and by[("b8x4096", "CUSTOM")].predicted is None   # no write figure
    from rich.console import Console
    con = Console(record=True, width=250)
    con.print(compare.table(run))
    assert "a+write" in con.export_text()
    run.bench = {**kr.to_dict(), "includes_write": False}   # a plain bench: attention alone, as before
    assert {(r.point, r.backend): r for r in compare.rows(run)}[("b1x1024", "CUSTOM")].a == pytest.approx(0.3)


def test_json_round_trip_and_table(tmp_path):
    run = _run_record(tmp_path)
    path = tmp_path / "e2e.json"
    run.save(path)
    back = E2eRun.load(path)
    assert back.to_dict() == run.to_dict()
    assert isinstance(back.results["CUSTOM"].points[1].outputs, PointOutputs)
    rs = compare.rows(back)
    by = {(r.point, r.backend): r for r in rs}
    c = by[("b1x1024", "CUSTOM")]
    assert c.ratio == pytest.approx(1.1) and c.k == 2.0 and c.a == 0.3 and c.speed_ok
    assert c.predicted == pytest.approx(1 / (0.7 + 0.3 / 2.0))
    assert c.vs_predicted == pytest.approx(1.1 * (0.7 + 0.15) - 1) and c.prediction_ok is False      # −6.5%
    c8 = by[("b8x4096", "CUSTOM")]
    assert c8.a == pytest.approx(0.4)                                # no step time: share of kernel time
    assert c8.predicted == pytest.approx(1 / (0.6 + 0.4 / 1.25)) and c8.prediction_ok is True      # +1.2%
    assert by[("b1x1024", "CUSTOM")].correctness.ok
    assert by[("b1x1024", "TRITON_ATTN")].status == "missing" and "refuses" in by[("b1x1024", "TRITON_ATTN")].reason
    s = compare.summary(back)
    assert s["geomean_ratio_vs_reference"]["CUSTOM"] == pytest.approx(1.1)
    assert s["package"]["slower_than_floor"] == [] and s["package"]["prediction_compared"] == 2
    assert s["package"]["prediction_within_2pct"] == 1 and s["package"]["prediction_off"] == ["b1x1024: -6.5%"]
    assert "TRITON_ATTN" in s["failed"]
    from rich.console import Console
    con = Console(record=True, width=250)
    con.print(compare.table(back))
    text = con.export_text()
    assert "b8x4096" in text and "1.100" in text and "backend refuses" in text and "NVIDIA H200" in text
    assert compare.plot(back, tmp_path / "e2e.png").stat().st_size > 10_000
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"kind": "workbench-bench"}))
    with pytest.raises(WorkbenchError, match="not a workbench e2e file"):
        E2eRun.load(bad)


# ---- engine settings, prompts, weights -----------------------------------------------------------
def test_engine_settings_kwargs_and_prompts():
    s = EngineSettings(max_model_len=33024, max_num_seqs=64)
    kw = s.llm_kwargs("/m", "CUSTOM")
    assert kw["load_format"] == "dummy" and kw["skip_tokenizer_init"] is True and kw["attention_backend"] == "CUSTOM"
    assert (kw["block_size"], kw["max_model_len"], kw["max_num_seqs"], kw["dtype"]) == (16, 33024, 64, "bfloat16")
    assert "enforce_eager" not in kw and "compilation_config" not in kw            # CUDA graphs: vLLM's default
    assert kw["enable_prefix_caching"] is False
    mod, cls = kw["worker_extension_cls"].rsplit(".", 1)
    import importlib
    assert hasattr(importlib.import_module(mod).__dict__[cls], "wb_redraw_weights")
    assert s.llm_kwargs("/m", "FLASH_ATTN") == {**kw, "attention_backend": "FLASH_ATTN"}
    assert EngineSettings.from_dict(s.to_dict()) == s
    assert s.weights == "gpt2:0.02"
    assert weight_spec("dummy") is None and weight_spec("normal:0.02") == ("normal", 0.02)
    assert weight_spec("gpt2:1e-2") == ("gpt2", 0.01)
    for bad in ("normal", "normal:2", "uniform:0.1", "gpt2:"):
        with pytest.raises(WorkbenchError, match="--weights"):
            weight_spec(bad)
    with pytest.raises(WorkbenchError, match="--gpu-memory-utilization"):
        EngineSettings(max_model_len=1, max_num_seqs=1, gpu_memory_utilization=1.5)
    p = GridPoint(4, 1024)
    a, b = make_prompts(p, 128, 128256, 1), make_prompts(p, 128, 128256, 1)
    assert a == b and len(a) == 4 and all(len(x) == prompt_len(1024, 128) for x in a)
    assert a[0] != a[1] and make_prompts(p, 128, 128256, 2) != a
    assert all(100 <= t < 128256 - 300 for x in a for t in x)


def test_redraw_weights_is_seeded_and_leaves_norms_at_one():
    torch = pytest.importorskip("torch")
    from workbench.e2e.worker_ext import redraw

    def model():
        m = torch.nn.Module()
        m.proj = torch.nn.Linear(256, 512, bias=True)
        m.input_layernorm = torch.nn.LayerNorm(256)
        return m
    a, b = model(), model()
    n = redraw(a.named_parameters(), 3, 0.02)
    redraw(b.named_parameters(), 3, 0.02)
    assert n == 256 * 512
    assert torch.equal(a.proj.weight, b.proj.weight)
    assert float(a.proj.weight.detach().std()) == pytest.approx(0.02, rel=0.05)
    assert torch.all(a.proj.bias == 0) and torch.all(a.input_layernorm.weight == 1)
    c = model()
    redraw(c.named_parameters(), 4, 0.02)
    assert not torch.equal(a.proj.weight, c.proj.weight)
    # gpt2: the embedding carries the stream, the residual outputs are scaled by 1/sqrt(2 * layers)
    llama = torch.nn.Module()
    llama.embed_tokens = torch.nn.Embedding(1000, 256)
    llama.layers = torch.nn.ModuleList(torch.nn.Module() for _ in range(8))
    for blk in llama.layers:
        blk.o_proj = torch.nn.Linear(256, 256, bias=False)
        blk.qkv_proj = torch.nn.Linear(256, 384, bias=False)
    llama.lm_head = torch.nn.Linear(256, 1000, bias=False)
    redraw(llama.named_parameters(), 0, 0.02, "gpt2")
    sd = {k: float(v.detach().float().std()) for k, v in llama.named_parameters()}
    assert sd["embed_tokens.weight"] == pytest.approx(1.0, rel=0.05)
    assert sd["layers.3.o_proj.weight"] == pytest.approx(0.02 / 4, rel=0.05)
    assert sd["layers.3.qkv_proj.weight"] == pytest.approx(0.02, rel=0.05)
    assert sd["lm_head.weight"] == pytest.approx(0.02, rel=0.05)


# ---- attention share from an nsys SQLite export ----------------------------------------------------
def test_kernel_classes():
    fa3 = ("void cutlass::device_kernel<flash::enable_sm90_or_later<flash::FlashAttnFwdSm90<flash::CollectiveMainloop"
           "FwdSm90<2, cute::tuple<>, cute::bfloat16_t>>>>(flash::FlashAttnFwdSm90::Params)")
    assert classify(fa3) == "attention"
    assert classify("void flash::prepare_varlen_num_blocks_kernel(int, int)") == "attention"
    assert classify("wb_decode_split_v3") == "attention" and classify("wb_reduce_v0") == "attention"
    assert classify("wb_plan_v4") == "attention"          # the step's device schedule
    assert classify("kernel_unified_attention_2d") == "attention"
    assert classify("void vllm::reshape_and_cache_flash_kernel<__nv_bfloat16>(...)") == "kv_write"
    for other in ("triton_red_fused__to_copy_add_mean_mul_pow_rsqrt_0", "nvjet_tst_128x256_64x4_2x1_v_bz_coopA_NTN",
                  "void vllm::rotary_embedding_kernel<c10::BFloat16, true>(...)", "act_and_mul_kernel",
                  "flashinfer::sampling::TopKTopPSamplingFromProbKernel"):
        assert classify(other) == "other", other


def _fake_capture(path):
    con = sqlite3.connect(path)
    con.execute("create table StringIds (id integer primary key, value text)")
    con.execute("create table NVTX_EVENTS (start int, end int, text text, textId int, globalTid int)")
    con.execute("create table CUPTI_ACTIVITY_KIND_KERNEL (start int, end int, demangledName int, shortName int)")
    names = {1: "wb_decode_split_v0", 2: "triton_poi_fused_mul_0", 3: "void vllm::reshape_and_cache_flash_kernel<>",
             4: NVTX_PREFIX + "b8x4096"}
    con.executemany("insert into StringIds values (?, ?)", names.items())
    con.execute("insert into NVTX_EVENTS values (1000, 5000, NULL, 4, 1)")          # the window, by string id
    con.execute("insert into NVTX_EVENTS values (6000, 9000, 'other range', NULL, 1)")
    rows = [(900, 990, 1, 1)]                                                       # before the window
    for s in range(1000, 5000, 1000):                                               # 4 steps
        rows += [(s, s + 300, 1, 1), (s + 300, s + 800, 2, 2), (s + 800, s + 850, 3, 3)]
    rows += [(6000, 7000, 1, 1)]                                                    # after it
    con.executemany("insert into CUPTI_ACTIVITY_KIND_KERNEL values (?, ?, ?, ?)", rows)
    con.commit()
    con.close()


def test_attention_share_from_capture(tmp_path):
    db = tmp_path / "c.sqlite"
    _fake_capture(db)
    w = window_kernels(db)
    assert set(w) == {"b8x4096"}
    k = w["b8x4096"]
    assert (k.kernels, k.total_ns, k.attention_ns, k.kv_write_ns) == (12, 4 * 850, 4 * 300, 4 * 50)
    s = share_from_window("CUSTOM", 8, 4096, k, steps=4, step_ms=0.001)
    assert s.status == "ok" and s.attention_us_per_step == pytest.approx(0.3)
    assert s.a_kernels == pytest.approx(300 / 850) and s.a == pytest.approx(0.3)
    assert s.kv_write_us_per_step == pytest.approx(0.05) and s.attention_kernels == ["wb_decode_split_v0"]
    assert share_from_window("CUSTOM", 8, 4096, k, steps=4, step_ms=None).a is None
    assert share_from_window("CUSTOM", 8, 4096, None, 4, 1.0).status == "failed"
    empty = tmp_path / "e.sqlite"
    sqlite3.connect(empty).execute("create table StringIds (id int, value text)").connection.close()
    with pytest.raises(WorkbenchError, match="no NVTX_EVENTS table"):
        window_kernels(empty)


def _pdl_capture(db, label):
    """An nsys export of one window `label`, two steps of: a GEMM 0-300, our decode 200-500 (launched
    with PDL: it waits 200-300 inside the GEMM), our reduce 250-560, a GEMM 560-800 (ns)."""
    con = sqlite3.connect(db)
    con.execute("create table StringIds (id integer primary key, value text)")
    con.execute("create table NVTX_EVENTS (start int, end int, text text, textId int)")
    con.execute("create table CUPTI_ACTIVITY_KIND_KERNEL (start int, end int, demangledName int)")
    con.executemany("insert into StringIds values (?, ?)", {1: "wb_decode_sched_v8", 2: "wb_reduce_sched_v8",
                                                            3: "nvjet_sm90_tst_64x8", 4: NVTX_PREFIX + label}.items())
    con.execute("insert into NVTX_EVENTS values (0, 10000, NULL, 4)")
    for t in (0, 1000):
        con.executemany("insert into CUPTI_ACTIVITY_KIND_KERNEL values (?, ?, ?)",
                        [(t, t + 300, 3), (t + 200, t + 500, 1), (t + 250, t + 560, 2), (t + 560, t + 800, 3)])
    con.commit()
    con.close()
    return db


def test_attention_time_is_timeline_time_when_pdl_kernels_overlap(tmp_path):
    """A PDL-launched attention kernel starts inside the kernel before it and waits: its duration
    holds the other kernel's tail. Attention's time is when only attention runs; busy time is the
    union (session 25: the durations' sum put CUSTOM's attention at b32x1k at 2449 µs a step where
    its kernels ran 1257)."""
    from workbench.e2e.attention_share import exclusive_times
    # other 0-300 | decode 200-500 (waits 200-300 inside the other) | reduce 250-560 | other 560-800
    spans = [(0, 300, "other"), (200, 500, "attention"), (250, 560, "attention"), (560, 800, "other")]
    busy, own = exclusive_times(spans)
    assert busy == 800 and own == {"other": 300 + 240, "attention": 260}      # the kinds add up to busy
    assert exclusive_times([(0, 100, "a"), (100, 200, "b"), (300, 300, "a")]) == (200, {"a": 100, "b": 100})
    # attention launched inside the KV write: the overlap is the write's; a GEMM's over both
    assert exclusive_times([(0, 100, "kv_write"), (60, 200, "attention")]) == (200, {"kv_write": 100, "attention": 100})
    assert exclusive_times([(0, 100, "kv_write"), (50, 150, "other"), (120, 300, "attention")]) == \
        (300, {"kv_write": 50, "other": 100, "attention": 150})
    db = _pdl_capture(tmp_path / "p.sqlite", "b32x1024")
    w = window_kernels(db)["b32x1024"]
    assert (w.total_ns, w.attention_ns, w.duration_sum_ns) == (1600, 520, 2 * 1150)
    s = share_from_window("CUSTOM", 32, 1024, w, steps=2, step_ms=0.001)
    assert s.attention_us_per_step == pytest.approx(0.26) and s.kernel_us_per_step == pytest.approx(0.8)
    assert s.a_kernels == pytest.approx(260 / 800)
    # the other kernels by name, per step: launches and µs (summed durations)
    assert s.other_kernels == {"nvjet_sm90_tst_64x8": [pytest.approx(2.0), pytest.approx(0.54)]}


def test_reread_recomputes_a_saved_runs_shares_from_its_captures(tmp_path, capsys):
    """scripts/e2e_reread.py: a run captured before an accounting fix re-read from its saved SQLite
    (xz too) without measuring again; the shares of the named backend change, the others stay."""
    import lzma
    import runpy
    run = _run_record(tmp_path)
    run.shares.append(ShareResult(backend="CUSTOM", batch=1, context=1024, steps=2, attention_us_per_step=999.0,
                                  kernel_us_per_step=2000.0, a_kernels=0.5, a=0.9))
    run.save(tmp_path / "e2e.json")
    db = _pdl_capture(tmp_path / "c.sqlite", "b1x1024")
    xz = tmp_path / "c.sqlite.xz"
    xz.write_bytes(lzma.compress(db.read_bytes()))
    script = str(Path(__file__).resolve().parents[1] / "scripts" / "e2e_reread.py")
    ns = runpy.run_path(script)
    assert ns["main"]([str(tmp_path / "e2e.json"), f"CUSTOM={xz}", "--out", str(tmp_path / "new.json")]) == 0
    new = E2eRun.load(tmp_path / "new.json")
    cu = new.share("CUSTOM", 1, 1024)
    assert cu.attention_us_per_step == pytest.approx(0.26) and cu.steps == 2
    assert new.share("FLASH_ATTN", 1, 1024).attention_us_per_step == 300.0        # not named: kept
    assert "step CUSTOM − FLASH_ATTN at b1x1024" in capsys.readouterr().out
    assert ns["main"]([str(tmp_path / "e2e.json"), "CUSTOM"]) == 2                  # bad input: one message
    assert ns["main"]([str(tmp_path / "missing.json"), f"CUSTOM={xz}"]) == 2


def test_clock_stats_and_runs_at_different_clocks(tmp_path, monkeypatch):
    """NVML samples summarised over a window; a point whose runs decoded at SM clocks more than 1%
    apart is named, with the clock difference its ratio holds."""
    from workbench.measure import clocks
    rows = [(0.0, 1980.0, 3201.0, 50.0, 400.0, 0), (0.05, 1830.0, 3201.0, 61.0, 690.0, 0x4 | 0x1),
            (0.10, 1900.0, 3201.0, 55.0, 500.0, 0)]
    st = clocks.summarize(rows, 0.1)
    assert (st.samples, st.sm_mhz_median, st.sm_mhz_min, st.sm_mhz_max) == (3, 1900.0, 1830.0, 1980.0)
    assert st.temp_c_max == 61.0 and st.power_w_median == 500.0 and st.reasons == ["sw-power-cap"]
    assert "SM 1900 MHz (1830–1980)" in st.short() and "sw-power-cap" in st.short()
    assert clocks.summarize([], 1.0, "NVML unavailable (x)").short().startswith("no clock samples")
    run = _run_record(tmp_path)
    fa, cu = run.results["FLASH_ATTN"].points[0], run.results["CUSTOM"].points[0]
    fa.clocks = clocks.summarize(rows[:1], 1.0).to_dict()
    cu.clocks = clocks.summarize(rows[1:2], 1.0).to_dict()
    c = compare.clock_summary(run)
    assert c["apart"] == [fa.label] and c["sm_mhz"][fa.label] == {"FLASH_ATTN": 1980.0, "CUSTOM": 1830.0}
    lines = compare.clock_lines(c)
    assert "1830–1980 MHz" in lines[0] and "8.2% clock difference; held down by CUSTOM: sw-power-cap" in lines[1]
    cu.clocks = clocks.summarize([(0.0, 1975.0, 3201.0, 50.0, 400.0, 0x4)], 1.0).to_dict()
    assert compare.clock_summary(run)["apart"] == []
    assert len(compare.clock_lines(compare.clock_summary(run))) == 1     # a cap both runs share: no line
    assert compare.summary(run)["clocks"]["sm_mhz"][fa.label]["CUSTOM"] == 1975.0
    # the sampler never raises: without NVML it holds no samples and says why
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with clocks.ClockSampler(period_s=0.01) as smp:
        pass
    assert smp.stats.samples == 0 and "NVML unavailable" in smp.stats.error


def test_clock_sampler_reads_nvml_and_keeps_a_window(monkeypatch):
    from workbench.measure import clocks
    calls = []

    class FakeNvml:
        NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 1, 2, 0

        def nvmlInit(self):
            pass

        def nvmlDeviceGetHandleByIndex(self, i):
            calls.append(i)
            return "h"

        def nvmlDeviceGetClockInfo(self, h, which):
            return 1980 if which == 1 else 3201

        def nvmlDeviceGetTemperature(self, h, which):
            return 40

        def nvmlDeviceGetPowerUsage(self, h):
            return 300_000

        def nvmlDeviceGetCurrentClocksEventReasons(self, h):
            return 0x1

    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml())
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    with clocks.ClockSampler(period_s=0.005) as smp:
        time.sleep(0.06)
    assert calls == [3] and smp.stats.samples >= 3 and smp.stats.sm_mhz_median == 1980
    assert smp.stats.power_w_median == 300 and smp.stats.reasons == []
    t = smp._rows[1][0]
    assert smp.between(t, t).samples == 1 and smp.between(-2.0, -1.0).samples == smp.stats.samples
    monkeypatch.setenv("WORKBENCH_CLOCKS", "0")                  # off: no thread, no NVML call, says so
    with clocks.ClockSampler(period_s=0.005) as off:
        time.sleep(0.02)
    assert off.stats.samples == 0 and "WORKBENCH_CLOCKS=0" in off.stats.error and calls == [3]


# ---- child processes -------------------------------------------------------------------------------
def test_child_timeout_kills_its_whole_group(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    code = ("import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            f"open({str(pidfile)!r}, 'w').write(str(p.pid)); print('[e2e] started', flush=True); time.sleep(60)")
    seen = []
    ex = run_child([sys.executable, "-c", code], env=dict(os.environ), log=tmp_path / "c.log", progress=seen.append,
                   timeout_s=3)
    assert ex.timed_out and ex.seconds < 30 and seen == ["started"]
    gpid = int(pidfile.read_text())
    for _ in range(50):
        try:
            os.kill(gpid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the grandchild outlived its group")
    assert "started" in (tmp_path / "c.log").read_text()


# ---- the driver: resume, failures, with a fake runner in a real child ---------------------------
FAKE_RUNNER = textwrap.dedent('''
    import json, os, sys
    from workbench.e2e.correctness import PointOutputs
    from workbench.e2e.results import BackendResult, PointResult
    from workbench.e2e.runner_args import RunnerArgs

    args = RunnerArgs.load(sys.argv[1])
    with open(os.environ["FAKE_E2E_LOG"], "a") as f:
        f.write(json.dumps({"backend": args.backend, "mode": args.mode,
                            "points": ["b%dx%d" % (p["batch"], p["context"]) for p in args.points]}) + "\\n")
    if args.backend == "FLASHINFER":                      # dies before writing anything
        print("Traceback (most recent call last):\\nRuntimeError: boom in FlashInfer", flush=True)
        sys.exit(1)
    res = BackendResult.from_dict(args.previous) if args.previous else BackendResult(backend=args.backend)
    if args.backend == "TRITON_ATTN":                     # the engine refuses, and says why
        res.status, res.reason = "failed", "the engine did not start: ValueError: head size 96 not supported"
        res.save(args.out)
        sys.exit(3)
    speed = {"FLASH_ATTN": 1000.0, "CUSTOM": 1050.0}[args.backend]
    if args.out.endswith("FLASH_ATTN-2.json"):            # the reference's second run: 10% faster
        speed = 1100.0
    for p in args.points:
        b, c = p["batch"], p["context"]
        ids = [[(i + s) % 97 for s in range(16)] for i in range(b)]
        tops = [[[[t, -1.0 - t / 10] for t in range(20)]] * 2 for _ in range(b)]
        res.points.append(PointResult(batch=b, context=c, tok_s=speed * b, itl_mean_ms=1000 / speed,
                                      itl_p99_ms=1.5, outputs=PointOutputs(ids=ids, top_logprobs=tops)))
        print("[e2e] %s b%dx%d done" % (args.backend, b, c), flush=True)
        res.save(args.out)
        if os.environ.get("FAKE_E2E_DIE_AFTER_ONE") == args.backend:
            sys.exit(9)
    res.status = "ok"
    res.engine = {"gpu": "Fake H200", "vllm": "0.26.0", "torch": "2.11.0"}
    res.save(args.out)
''')


@pytest.fixture
def fake_runner(tmp_path, monkeypatch):
    d = tmp_path / "fake"
    d.mkdir()
    (d / "fake_e2e_runner.py").write_text(FAKE_RUNNER)
    monkeypatch.setenv("PYTHONPATH", str(d))
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_E2E_LOG", str(log))

    def calls():
        return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
    return calls


def _e2e(out, backends, progress=None, **kw):
    return run_e2e("llama-3.1-8b", None, backends, ([1, 8], [1024, 4096]), out, None, decode_steps=64,
                   gpu_memory=80 * 10**9, share_backends=[], runner_module="fake_e2e_runner", plot=False,
                   progress=progress or (lambda s: None), **kw)


def test_resume_measures_nothing_twice(tmp_path, fake_runner):
    out = tmp_path / "out"
    run = _e2e(out, ["CUSTOM", "FLASH_ATTN"])
    assert [c["backend"] for c in fake_runner()] == ["FLASH_ATTN", "CUSTOM"]          # reference first
    assert all(c["points"] == ["b1x1024", "b1x4096", "b8x1024", "b8x4096"] for c in fake_runner())
    assert run.results["CUSTOM"].status == "ok" and len(run.results["CUSTOM"].points) == 4
    assert json.loads((out / "model" / "config.json").read_text())["num_key_value_heads"] == 8
    again = _e2e(out, ["CUSTOM", "FLASH_ATTN"])
    assert len(fake_runner()) == 2                                                   # nothing measured twice
    assert again.results["CUSTOM"].to_dict() == run.results["CUSTOM"].to_dict()
    assert any(n.startswith("resumed") for n in again.notes)
    row = next(r for r in again.table if r["backend"] == "CUSTOM" and r["point"] == "b8x4096")
    assert row["ratio"] == pytest.approx(1.05) and row["correctness"]["ok"]
    # a backend that stopped after one point: only the rest is measured on resume
    doc = json.loads((out / "e2e.json").read_text())
    doc["results"]["CUSTOM"]["points"] = doc["results"]["CUSTOM"]["points"][:1]
    doc["results"]["CUSTOM"]["status"] = "partial"
    (out / "e2e.json").write_text(json.dumps(doc))
    third = _e2e(out, ["CUSTOM", "FLASH_ATTN"])
    assert fake_runner()[-1] == {"backend": "CUSTOM", "mode": "measure", "points": ["b1x4096", "b8x1024", "b8x4096"]}
    assert len(fake_runner()) == 3 and len(third.results["CUSTOM"].points) == 4
    with pytest.raises(WorkbenchError, match="other settings.*--fresh"):
        _e2e(out, ["CUSTOM", "FLASH_ATTN"], block_size=32)
    # one backend per call: the run keeps them all, the reference is not measured again
    out2 = tmp_path / "out2"
    _e2e(out2, ["CUSTOM"])
    more = _e2e(out2, ["TRITON_ATTN"])
    assert [c["backend"] for c in fake_runner()[-3:]] == ["FLASH_ATTN", "CUSTOM", "TRITON_ATTN"]
    assert more.backends == ["FLASH_ATTN", "CUSTOM", "TRITON_ATTN"]
    assert {r["backend"] for r in more.table if r["ratio"]} == {"FLASH_ATTN", "CUSTOM"}
    _e2e(out, ["CUSTOM", "FLASH_ATTN"], block_size=32, fresh=True)
    assert len(fake_runner()) == 8


def test_reference_twice_brackets_the_others_and_ratios_use_its_mean(tmp_path, fake_runner):
    """--reference-twice: FLASH_ATTN runs again after the other backends (results key FLASH_ATTN#2),
    each ratio is to the mean of its two runs, the table and summary show how far it moved; a resume
    measures nothing; a call that measures another backend runs the repeat again after it."""
    from workbench.e2e.compare import table
    out = tmp_path / "out"
    run = _e2e(out, ["CUSTOM", "FLASH_ATTN"], reference_twice=True)
    assert [c["backend"] for c in fake_runner()] == ["FLASH_ATTN", "CUSTOM", "FLASH_ATTN"]
    assert run.backends == ["FLASH_ATTN", "CUSTOM"] and "FLASH_ATTN#2" in run.results
    rows = {(r["backend"], r["point"]): r for r in run.table}
    assert rows[("CUSTOM", "b8x4096")]["ratio"] == pytest.approx(1050 / 1050)           # 1050 / mean(1000, 1100)
    assert rows[("FLASH_ATTN", "b8x4096")]["ref_drift"] == pytest.approx(0.10)
    assert rows[("FLASH_ATTN", "b8x4096")]["ratio"] == 1.0 and rows[("CUSTOM", "b8x4096")]["ref_drift"] is None
    assert run.summary["reference_drift"]["max_abs"] == pytest.approx(0.10)
    assert len(run.summary["reference_drift"]["over_tolerance"]) == 4
    from rich.console import Console
    con = Console(width=250, record=True)
    con.print(table(run))
    text = con.export_text()
    assert "ref Δ" in text and "+10.0%" in text
    _e2e(out, ["CUSTOM", "FLASH_ATTN"], reference_twice=True)
    assert len(fake_runner()) == 3                                                    # nothing measured twice
    more = _e2e(out, ["TRITON_ATTN"], reference_twice=True)
    assert [c["backend"] for c in fake_runner()[3:]] == ["TRITON_ATTN", "FLASH_ATTN"]
    assert any("measured again after" in n for n in more.notes)
    once = _e2e(tmp_path / "once", ["CUSTOM", "FLASH_ATTN"])                           # without it: one run, as before
    assert "FLASH_ATTN#2" not in once.results and "reference_drift" not in once.summary
    assert next(r for r in once.table if r["backend"] == "CUSTOM")["ratio"] == pytest.approx(1.05)


def test_max_model_len_is_the_servers_bound_not_the_grids(tmp_path, fake_runner):
    """--max-model-len: vLLM bounds its decode graphs there, so a 1k-4k grid can be measured as a
    32k server runs it (perf-notes v9: at the grid's own 4192 the graph forms tie, at 32864 they do
    not). Shorter than the grid needs, or past the model's positions: one clear message."""
    short = _e2e(tmp_path / "a", ["CUSTOM"])
    assert short.settings["max_model_len"] < 8192
    run = _e2e(tmp_path / "b", ["CUSTOM"], max_model_len=32860)
    assert run.settings["max_model_len"] == 32864                      # whole blocks
    assert run.settings["max_num_seqs"] == short.settings["max_num_seqs"]
    with pytest.raises(WorkbenchError, match="other settings"):      # another bound is another run
        _e2e(tmp_path / "b", ["CUSTOM"])
    with pytest.raises(WorkbenchError, match="shorter than the grid needs"):
        _e2e(tmp_path / "c", ["CUSTOM"], max_model_len=2048)
    with pytest.raises(WorkbenchError, match="max_position_embeddings"):
        _e2e(tmp_path / "d", ["CUSTOM"], max_model_len=10**7)


def test_failing_backends_are_reported_and_the_rest_run(tmp_path, fake_runner, monkeypatch):
    import workbench.measure.nsys
    monkeypatch.setattr(workbench.measure.nsys, "find_nsys", lambda: None)
    seen = []
    out = tmp_path / "out"
    run = run_e2e("llama-3.1-8b", None, ["TRITON_ATTN", "FLASHINFER", "CUSTOM"], ([1, 8], [1024]), out, None,
                  decode_steps=64, gpu_memory=80 * 10**9, runner_module="fake_e2e_runner", plot=False,
                  progress=seen.append)
    assert [c["backend"] for c in fake_runner()] == ["FLASH_ATTN", "TRITON_ATTN", "FLASHINFER", "CUSTOM"]
    r = run.results
    assert r["TRITON_ATTN"].status == "failed" and "head size 96 not supported" in r["TRITON_ATTN"].reason
    assert r["FLASHINFER"].status == "failed" and "boom in FlashInfer" in r["FLASHINFER"].reason
    assert "exited 1" in r["FLASHINFER"].reason
    assert r["CUSTOM"].status == "ok" and r["FLASH_ATTN"].status == "ok"
    assert set(run.summary["failed"]) == {"TRITON_ATTN", "FLASHINFER"}
    assert any("nsys not found" in n for n in run.notes)                              # a not measured, said so
    assert any("FLASH_ATTN b8x1024 done" in s for s in seen) and any("TRITON_ATTN: failed" in s for s in seen)
    assert run.provenance["gpu"] == "Fake H200" and run.provenance["vllm"] == "0.26.0"
    fi_note = [n for n in run.notes if n.startswith("FLASHINFER: ")]      # which FlashInfer it was, said once
    assert len(fi_note) == 1 and any(s == fi_note[0] for s in seen), run.notes
    saved = E2eRun.load(out / "e2e.json")
    assert saved.results["FLASHINFER"].reason == r["FLASHINFER"].reason
    assert (out / "logs" / "FLASHINFER.log").read_text().count("boom") == 1
    # a child that dies after one point keeps that point (status partial) and the run goes on
    monkeypatch.setenv("FAKE_E2E_DIE_AFTER_ONE", "CUSTOM")
    out2 = tmp_path / "out2"
    run2 = run_e2e("llama-3.1-8b", None, ["CUSTOM"], ([1, 8], [1024]), out2, None, decode_steps=64,
                   gpu_memory=80 * 10**9, share_backends=[], runner_module="fake_e2e_runner", plot=False,
                   progress=seen.append)
    assert run2.results["CUSTOM"].status == "partial" and len(run2.results["CUSTOM"].points) == 1
    assert "exited 9" in run2.results["CUSTOM"].reason


def _fake_package(src):
    """A pip-installable package with a vllm.general_plugins entry point (what `export` emits, in small)."""
    (src / "wb_fake_pkg").mkdir(parents=True)
    (src / "wb_fake_pkg" / "__init__.py").write_text("")
    (src / "wb_fake_pkg" / "plugin.py").write_text("def register():\n    pass\n")
    (src / "pyproject.toml").write_text(textwrap.dedent('''
        [build-system]
        requires = ["setuptools>=64"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "wb-fake-pkg"
        version = "1.2.3"
        [project.entry-points."vllm.general_plugins"]
        wb_fake_pkg = "wb_fake_pkg.plugin:register"
        [tool.setuptools]
        packages = ["wb_fake_pkg"]
    '''))
    return src


def test_install_exported_package_finds_its_entry_point(tmp_path):
    from workbench.e2e.install import install_package
    src = _fake_package(tmp_path / "wbpkg")
    site = tmp_path / "site"
    got = install_package(src, site, log=tmp_path / "install.log")
    assert got.dist == "wb-fake-pkg" and got.version == "1.2.3" and not got.reused
    assert got.entry_points == ["wb_fake_pkg = wb_fake_pkg.plugin:register"] and got.name == "wb_fake_pkg"
    # a child with the site on PYTHONPATH sees the entry point through importlib.metadata
    code = ("from importlib.metadata import entry_points; "
            "print([e.value for e in entry_points(group='vllm.general_plugins')])")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(site)})
    assert "wb_fake_pkg.plugin:register" in p.stdout
    assert install_package(src, site).reused                              # same source: not reinstalled
    time.sleep(0.05)
    (src / "wb_fake_pkg" / "plugin.py").write_text("def register():\n    return 1\n")
    assert not install_package(src, site).reused                          # changed: installed again
    with pytest.raises(WorkbenchError, match="not found"):
        install_package(tmp_path / "missing", site)
    (tmp_path / "empty").mkdir()
    with pytest.raises(WorkbenchError, match="no pyproject.toml"):
        install_package(tmp_path / "empty", site)


def test_e2e_command_bad_input_is_one_message(tmp_path):
    """`workbench e2e` refuses bad grids and step counts before starting anything (exit 2)."""
    import os
    import subprocess
    import sys
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    for args, words in ((["--batches", "1,x"], "--batches"), (["--steps", "2"], "--steps"),
                        (["--contexts", "0"], "--contexts"), (["--max-model-len", "100"], "--max-model-len"),
                        (["--bench-ref", "xqa"], "--bench-ref")):
        r = subprocess.run([sys.executable, "-m", "workbench", "e2e", "--out", str(tmp_path / "o"), *args],
                           capture_output=True, text=True, cwd=tmp_path, env=env)
        assert r.returncode == 2 and "Traceback" not in r.stderr and words in r.stderr, (args, r.stderr[-500:])


def test_pooled_correctness_against_the_floor():
    """Pooled over the floor's points: a backend as close to FLASH_ATTN as TRITON_ATTN passes
    though its ids fraction is far below 90%; one clearly worse on ids, or off on log-probs, fails;
    points the floor did not measure are left out of the comparison."""
    from types import SimpleNamespace

    from workbench.e2e.compare import Row, pooled_correctness
    from workbench.e2e.correctness import Agreement

    def ag(n, ids, lp):
        return Agreement(sequences=n, ids_match_fraction=ids, mean_matching_prefix=10.0, logprob_ok_fraction=lp,
                         logprob_max_abs_diff=0.06, positions_compared=2 * n, ok=True, verdict="pass")

    def rows(custom):
        rs = []
        for i, (n, fl) in enumerate([(32, 0.40), (64, 0.45), (8, 0.5)]):
            rs.append(Row(f"p{i}", 1, 1, "TRITON_ATTN", "ok", correctness=ag(n, fl, 0.97)))
            rs.append(Row(f"p{i}", 1, 1, "CUSTOM", "ok", correctness=ag(n, *custom[i])))
        # a point only CUSTOM has, all wrong: outside the floor's points, it must not count
        rs.append(Row("p9", 1, 1, "CUSTOM", "ok", correctness=ag(64, 0.0, 0.0)))
        return rs
    run = SimpleNamespace(tolerances={}, backends=["FLASH_ATTN", "CUSTOM", "TRITON_ATTN"], reference="FLASH_ATTN")
    ok = pooled_correctness(run, rows([(0.41, 0.95), (0.44, 0.97), (0.5, 1.0)]))
    assert ok["CUSTOM"]["ok"] and ok["CUSTOM"]["sequences"] == 104 and ok["CUSTOM"]["points"] == 3
    assert ok["CUSTOM"]["ids_match_fraction"] < 0.5
    assert ok["TRITON_ATTN"]["verdict"].startswith("the floor")
    worse_ids = pooled_correctness(run, rows([(0.10, 0.95), (0.15, 0.97), (0.1, 1.0)]))
    assert not worse_ids["CUSTOM"]["ok"] and "greedy ids" in worse_ids["CUSTOM"]["verdict"]
    worse_lp = pooled_correctness(run, rows([(0.41, 0.5), (0.44, 0.6), (0.5, 0.9)]))
    assert not worse_lp["CUSTOM"]["ok"] and "log-probabilities" in worse_lp["CUSTOM"]["verdict"]


def test_step_breakdown_places_the_loss(tmp_path):
    """CUSTOM's step against FLASH_ATTN's where both were captured: attention, KV write, other
    kernels and time that is not kernel time add up to the ITL difference."""
    run = _run_record(tmp_path)
    # FLASH_ATTN b1x1024: ITL 1000 µs, kernels 900 (attention 300, KV write 20); CUSTOM: ITL 1000/1.1
    run.shares[0].kv_write_us_per_step = 20.0
    run.shares.append(ShareResult(backend="CUSTOM", batch=1, context=1024, steps=16, attention_us_per_step=250.0,
                                  kv_write_us_per_step=30.0, kernel_us_per_step=860.0, a_kernels=0.29, a=0.27))
    bd = compare.step_breakdown(run)
    assert len(bd) == 1 and bd[0]["point"] == "b1x1024" and bd[0]["backend"] == "CUSTOM"
    d = bd[0]
    assert d["attention_us"] == pytest.approx(-50) and d["kv_write_us"] == pytest.approx(10)
    assert d["other_kernels_us"] == pytest.approx((860 - 250 - 30) - (900 - 300 - 20))
    assert d["itl_us"] == pytest.approx(1000 / 1.1 - 1000)
    assert d["attention_us"] + d["kv_write_us"] + d["other_kernels_us"] + d["not_kernel_us"] == pytest.approx(d["itl_us"])
    # the attention ratio as the engine ran it (300 -> 250 µs), beside the bench's 2.0, and its prediction
    assert d["k_engine"] == pytest.approx(1.2) and d["k_bench"] == 2.0
    assert d["predicted_engine"] == pytest.approx(1 / (0.7 + 0.3 / 1.2))
    assert d["outside_attention"] == pytest.approx(1.1 / d["predicted_engine"] - 1)      # ITL 1000 -> 1000/1.1
    assert d["other_top"] == []                     # no per-kernel figures in these shares
    line = compare.breakdown_lines(run, bd)[0]
    assert "attention -50" in line and "300 → 250 µs/step: k in the engine 1.20 (bench 2.00)" in line
    assert f"measured {d['outside_attention'] * 100:+.1f}% off it (outside attention)" in line
    assert compare.summary(run)["step_breakdown"] == bd


def test_other_kernels_that_differ_most_between_two_engines(tmp_path):
    """Where the non-attention time parts, per kernel: session 25's gate/up GEMM took 56.6 µs a
    launch in FLASH_ATTN's engine and 61.2 in ours, 32 launches a step (+147 µs) — the line names it."""
    ref = {"gemm_up": [32.0, 32 * 56.6], "gemm_down": [32.0, 32 * 29.1], "rms": [64.0, 64 * 2.1]}
    own = {"gemm_up": [32.0, 32 * 61.2], "gemm_down": [32.0, 32 * 29.0], "rms": [64.0, 64 * 2.1],
           "wb_extra": [1.0, 4.9]}
    top = compare.other_kernel_deltas(ref, own)
    assert [t["kernel"] for t in top] == ["gemm_up", "wb_extra", "gemm_down"]
    assert top[0]["delta_us"] == pytest.approx(32 * 4.6) and top[0]["own_us_per_launch"] == pytest.approx(61.2)
    assert top[1]["ref_us_per_launch"] is None and top[1]["own_us_per_launch"] == pytest.approx(4.9)
    run = _run_record(tmp_path)
    run.shares[0].other_kernels = ref
    run.shares.append(ShareResult(backend="CUSTOM", batch=1, context=1024, steps=16, attention_us_per_step=250.0,
                                  kernel_us_per_step=900.0, a_kernels=0.28, a=0.25, other_kernels=own))
    line = compare.breakdown_lines(run, compare.step_breakdown(run))[0]
    assert "other kernels that differ most: gemm_up +147 µs/step (56.6 → 61.2 µs a launch)" in line


def test_kernel_ratio_prefers_the_graph_launch_and_skips_ragged_rows(tmp_path):
    """k comes from tuned-graph (the table launched as the backend's CUDA graphs launch it) where
    the bench timed it, else from tuned; a ragged row that shares batch and longest length with a
    grid point (r8x200-4096: batch 8, context 4096) is not that point."""
    rows = [("tuned", 8, 4096, 80.0), ("tuned-graph", 8, 4096, 90.0), ("fa3", 8, 4096, 100.0)]
    p = _bench(tmp_path, rows)
    doc = json.loads(p.read_text())
    doc["results"] += [{"peer": "tuned-graph", "shape": "r8x200-4096", "batch": 8, "context": 4096, "median_us": 1.0},
                       {"peer": "fa3", "shape": "r8x200-4096", "batch": 8, "context": 4096, "median_us": 50.0}]
    p.write_text(json.dumps(doc))
    kr = load_kernel_ratios(p, ours="auto")
    assert kr.ours == "tuned-graph" and kr.k(8, 4096) == pytest.approx(100 / 90)
    assert load_kernel_ratios(p, ours="tuned").k(8, 4096) == pytest.approx(100 / 80)
    p2 = _bench(tmp_path, rows[::2])
    assert load_kernel_ratios(p2, ours="auto").ours == "tuned"


def test_a_changed_package_drops_custom_shares_even_from_a_seeded_run(tmp_path, fake_runner):
    """A run seeded with a saved run's attention shares (results cleared, shares kept: device_e2e.sh SEED)
    and another package: CUSTOM's shares were captured with the other package, so they go (the step
    breakdown put "attention +818 µs/step" at b1 x 32k beside a 6% faster kernel, session 22); the
    reference's stay (its a is what the prediction needs). The same package keeps them."""
    src = _fake_package(tmp_path / "wbpkg")
    out = tmp_path / "out"

    def e2e():
        return run_e2e("llama-3.1-8b", str(src), ["CUSTOM", "FLASH_ATTN"], ([8], [4096]), out, None, decode_steps=64,
                       gpu_memory=80 * 10**9, share_backends=[], runner_module="fake_e2e_runner", plot=False,
                       progress=lambda s: None)

    def seed():                          # as device_e2e.sh's SEED: results cleared, shares of both backends kept
        doc = json.loads((out / "e2e.json").read_text())
        doc["results"], doc["backends"] = {}, []
        doc["shares"] = [ShareResult(backend=b, batch=8, context=4096, steps=16, attention_us_per_step=us,
                                     kv_write_us_per_step=5.0, kernel_us_per_step=2 * us, a_kernels=0.5,
                                     a=0.45).to_dict() for b, us in (("FLASH_ATTN", 400.0), ("CUSTOM", 900.0))]
        (out / "e2e.json").write_text(json.dumps(doc))
    e2e()
    seed()
    same = e2e()                                                          # the same package: kept
    assert {s.backend for s in same.shares} == {"FLASH_ATTN", "CUSTOM"} and compare.step_breakdown(same)
    seed()
    time.sleep(0.05)
    (src / "wb_fake_pkg" / "plugin.py").write_text("def register():\n    return 1\n")
    other = e2e()
    assert [s.backend for s in other.shares] == ["FLASH_ATTN"] and not compare.step_breakdown(other)
    assert any("attention shares" in n and "dropped" in n for n in other.notes)
    row = next(r for r in other.table if r["backend"] == "CUSTOM")
    assert row["a"] == pytest.approx(0.45) and row["a_own"] is None


def test_shares_from_an_earlier_run_give_a_and_only_the_references(tmp_path, fake_runner):
    """`--shares-from`: the reference's attention shares of an earlier run (any grid, .json or .json.gz)
    give a where this run captured none; another backend's capture is never taken (it is of its own
    package and host). A file of another model, or not an e2e file, is one clear message."""
    import gzip
    old = E2eRun(model={"model": "llama-3.1-8b"}, backends=["FLASH_ATTN", "CUSTOM"], settings={}, grid={},
                 decode_steps=64, created="2026-11-29T13:15:00+0000", provenance={"gpu": "NVIDIA H200"})
    old.shares = [ShareResult(backend=b, batch=8, context=c, steps=16, attention_us_per_step=400.0,
                              kernel_us_per_step=800.0, a_kernels=0.5, a=a)
                  for b, c, a in (("FLASH_ATTN", 4096, 0.25), ("FLASH_ATTN", 32768, 0.65), ("CUSTOM", 4096, 0.3))]
    src = tmp_path / "old.json.gz"
    with gzip.open(src, "wt") as f:
        json.dump(old.to_dict(), f)
    run = _e2e(tmp_path / "out", ["CUSTOM", "FLASH_ATTN"], shares_from=str(src))
    assert [(s.backend, s.label) for s in run.shares] == [("FLASH_ATTN", "b8x4096")]      # b8x32k: not in this grid
    row = next(r for r in run.table if r["backend"] == "CUSTOM" and r["point"] == "b8x4096")
    assert row["a"] == pytest.approx(0.25) and row["a_own"] is None
    assert any("from" in n and "not captured in this run" in n for n in run.notes)
    assert not compare.step_breakdown(run)
    other = E2eRun.from_dict({**old.to_dict(), "model": {"model": "qwen2.5-7b"}})
    (tmp_path / "qwen.json").write_text(json.dumps(other.to_dict()))
    with pytest.raises(WorkbenchError, match="qwen2.5-7b"):
        _e2e(tmp_path / "out2", ["CUSTOM", "FLASH_ATTN"], shares_from=str(tmp_path / "qwen.json"))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(WorkbenchError, match="not a workbench e2e file"):
        _e2e(tmp_path / "out3", ["CUSTOM", "FLASH_ATTN"], shares_from=str(tmp_path / "bad.json"))
    with pytest.raises(WorkbenchError, match="not a readable e2e JSON"):
        _e2e(tmp_path / "out4", ["CUSTOM", "FLASH_ATTN"], shares_from=str(tmp_path / "missing.json"))


def test_flashinfer_for_vllm_unpacks_once_and_refuses_a_damaged_bundle(tmp_path):
    """scripts/flashinfer_vllm_activate.sh (vLLM's FLASHINFER backend in e2e, session 29): a bundle as
    scripts/bundle_flashinfer_vllm.sh lays it out is unpacked once into the site, put first on
    PYTHONPATH (its flashinfer is the one imported), not unpacked again on a warm host, used from the
    site when nothing is carried, and refused (non-zero) when its archive does not match the manifest."""
    import shutil
    import subprocess
    import tarfile
    if not (shutil.which("bash") and shutil.which("xz") and shutil.which("sha256sum")):
        pytest.skip("needs bash, xz and sha256sum")
    root = Path(__file__).resolve().parent.parent
    src = tmp_path / "src"
    (src / "flashinfer").mkdir(parents=True)
    (src / "flashinfer" / "__init__.py").write_text("__version__ = '0.6.14'\n")
    dist = src / "flashinfer_python-0.6.14.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: flashinfer-python\nVersion: 0.6.14\n")
    bundle = tmp_path / "fi"
    bundle.mkdir()
    with tarfile.open(bundle / "flashinfer.tar.xz", "w:xz") as t:
        for p in ("flashinfer", dist.name):
            t.add(src / p, arcname=p)
    subprocess.run("sha256sum flashinfer.tar.xz > MANIFEST.sha256", shell=True, cwd=bundle, check=True)
    site = tmp_path / "site"

    def activate(dest):
        cmd = (f"source {root}/scripts/flashinfer_vllm_activate.sh {dest} && echo \"PP=$PYTHONPATH\" "
               "&& python3 -c 'import flashinfer; print(\"FI=\" + flashinfer.__file__)'")
        env = {**os.environ, "WB_FI_SITE": str(site), "PYTHONPATH": "/elsewhere"}
        return subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=env)

    r = activate(bundle)
    assert r.returncode == 0, r.stderr
    assert f"PP={site}:/elsewhere" in r.stdout and f"FI={site}/flashinfer/__init__.py" in r.stdout
    assert "flashinfer 0.6.14" in r.stdout
    marker = site / "flashinfer" / "marker"
    marker.write_text("kept")                       # a second call on a warm host does not unpack again
    assert activate(bundle).returncode == 0 and marker.exists()
    assert activate(tmp_path / "absent").returncode == 0       # nothing carried: the unpacked site
    (bundle / "flashinfer.tar.xz").write_bytes(b"damaged")
    r = activate(bundle)
    assert r.returncode != 0 and "does not match its MANIFEST" in r.stderr
    shutil.rmtree(site)
    r = activate(tmp_path / "absent")
    assert r.returncode != 0 and "bundle_flashinfer_vllm.sh" in r.stderr


def test_e2e_says_when_flashinfer_is_not_the_release_vllm_pins(tmp_path, fake_runner, monkeypatch):
    """vLLM 0.26.0's FLASHINFER backend was built against FlashInfer 0.6.14; with the bench peers' 0.7.2 first on
    the path it would run that one. The run says which one it got, in its progress and its notes (once, also
    on resume); a run without FLASHINFER says nothing about it."""
    from workbench.e2e import flashinfer_pin as fp
    monkeypatch.setattr(fp, "flashinfer_pin", lambda: fp.FlashInferPin(vllm="0.26.0", pin="0.6.14", have="0.7.2.post1"))
    seen = []
    out = tmp_path / "out"
    _e2e(out, ["FLASHINFER"], progress=seen.append)
    run = _e2e(out, ["FLASHINFER"], progress=seen.append)
    want = "FLASHINFER: flashinfer-python 0.7.2.post1, but vLLM 0.26.0 pins 0.6.14"
    assert [n for n in run.notes if n.startswith("FLASHINFER: ")] == [want + ": its FLASHINFER backend was built against that one"]
    assert sum(s.startswith(want) for s in seen) == 2
    monkeypatch.setattr(fp, "flashinfer_pin", lambda: fp.FlashInferPin(vllm="0.26.0", pin="0.6.14", have="0.6.14"))
    run = _e2e(out, ["FLASHINFER"], progress=seen.append)
    assert [n for n in run.notes if n.startswith("FLASHINFER: ")] == ["FLASHINFER: flashinfer-python 0.6.14"]
    other = _e2e(tmp_path / "other", ["CUSTOM"], progress=seen.append)
    assert not any(n.startswith("FLASHINFER") for n in other.notes)
    assert fp.FlashInferPin(vllm="0.26.0", pin="0.6.14", have=None).problem.startswith("flashinfer-python is not installed")


def test_prediction_is_also_counted_where_both_runs_kept_one_clock(tmp_path):
    """Under the H200's power cap a point's FLASH_ATTN and CUSTOM runs can decode 5-30% apart on the SM clock
    (session 29): the summary counts the prediction over all points and over the clock-matched ones, and
    names the misses that sit at a clock gap; the printed line says both."""
    run = _run_record(tmp_path)
    mhz = {("FLASH_ATTN", 1): 1530.0, ("CUSTOM", 1): 1965.0, ("FLASH_ATTN", 8): 1980.0, ("CUSTOM", 8): 1975.0}
    for name in ("FLASH_ATTN", "CUSTOM"):
        for p in run.results[name].points:
            p.clocks = {"sm_mhz_median": mhz[(name, p.batch)]}
    s = compare.summary(run)
    pk = s["package"]
    assert pk["prediction_within_2pct"] == 1 and pk["prediction_compared"] == 2        # b1x1024 is off (−6.5%)
    cm = pk["prediction_clock_matched"]
    assert cm["compared"] == 1 and cm["within_2pct"] == 1 and cm["off"] == []
    assert cm["apart"] == ["b1x1024: -6.5% at a 28.4% clock gap"]
    line = compare.prediction_lines(run, pk)[0]
    assert "1 of 2 points" in line and "1 of the 1 where both runs decoded at one SM clock" in line
    assert "b1x1024: -6.5% at a 28.4% clock gap" in line
    for p in run.results["CUSTOM"].points:                    # one clock everywhere: one count, no second clause
        p.clocks = {"sm_mhz_median": mhz[("FLASH_ATTN", p.batch)]}
    pk = compare.summary(run)["package"]
    assert pk["prediction_clock_matched"]["compared"] == 2 and pk["prediction_clock_matched"]["off"] == ["b1x1024: -6.5%"]
    assert compare.prediction_lines(run, pk) == ["prediction (CUSTOM ÷ FLASH_ATTN, ±2%): 1 of 2 points"]


def _diverged(n, k):
    """n sequences' outputs, the last k of them parting from _outs at step 3 (ids only)."""
    o = _outs(n=n)
    for i in range(n - k, n):
        o.ids[i][3] += 1
    return o


def _floor_source(tmp_path, triton_diverged, settings=None, name="floor.json"):
    """An earlier run that measured TRITON_ATTN at b8x4096 (k of 8 sequences off FLASH_ATTN's ids)."""
    src = E2eRun(model={"model": "llama-3.1-8b"}, backends=["FLASH_ATTN", "TRITON_ATTN"],
                 settings=settings or EngineSettings(max_model_len=4176, max_num_seqs=32).to_dict(), grid={},
                 decode_steps=128, tolerances=Tolerances().to_dict(), created="2026-11-30T05:19:10+0000",
                 provenance={"gpu": "NVIDIA H200"})
    src.results["FLASH_ATTN"] = BackendResult(backend="FLASH_ATTN", status="ok", points=[
        PointResult(batch=8, context=4096, outputs=_outs(n=8))])
    src.results["TRITON_ATTN"] = BackendResult(backend="TRITON_ATTN", status="ok", points=[
        PointResult(batch=8, context=4096, outputs=_diverged(8, triton_diverged))])
    path = tmp_path / name
    src.save(path)
    return path


def test_floor_from_an_earlier_run_judges_ids_where_this_run_has_no_floor(tmp_path, capsys):
    """`e2e --floor-from` / `scripts/e2e_reread.py --floor-from`: where this run did not measure TRITON_ATTN,
    an earlier run's TRITON_ATTN-vs-FLASH_ATTN ids agreement (same weights and seed) is the floor, per point
    and pooled over the points both hold. CUSTOM at 4 of 8 ids fails on its own (< 90%), passes beside a
    floor of 3 of 8 and fails beside one of 8 of 8; other weights, or a run without TRITON_ATTN outputs,
    are one clear message; a resumed run keeps the floor."""
    from workbench.e2e.driver import reused_floor
    run = _run_record(tmp_path)
    run.results.pop("TRITON_ATTN")
    run.backends = ["FLASH_ATTN", "CUSTOM"]
    run.results["CUSTOM"].points[1].outputs = _diverged(8, 4)          # b8x4096: half the ids part ways
    tol = Tolerances()
    alone = compare.pooled_correctness(run, compare.rows(run))["CUSTOM"]
    assert not alone["ok"] and "greedy ids" in alone["verdict"] and "floor" not in alone

    assert reused_floor(run, str(_floor_source(tmp_path, triton_diverged=5)), tol) == 1
    assert run.floor["points"]["b8x4096"]["ids_match_fraction"] == pytest.approx(3 / 8)
    by = {(r.point, r.backend): r for r in compare.rows(run)}
    assert by[("b8x4096", "CUSTOM")].correctness.ok                     # 50% >= the floor's 37.5%
    assert "TRITON_ATTN's 38%" in by[("b8x4096", "CUSTOM")].correctness.verdict
    pooled = compare.pooled_correctness(run, compare.rows(run))["CUSTOM"]
    assert pooled["ok"] and pooled["points"] == 1 and pooled["sequences"] == 8      # b1x1024: no floor there
    assert pooled["floor"]["from"].endswith("floor.json")
    assert pooled["floor"]["ids_match_fraction"] == pytest.approx(3 / 8)
    # a point the earlier run holds and this one does not measure stays out of the floor's pool
    run.floor["points"]["b64x1024"] = {**run.floor["points"]["b8x4096"], "sequences": 64, "ids_match_fraction": 0.0}
    again = compare.pooled_correctness(run, compare.rows(run))["CUSTOM"]
    assert again["floor"]["points"] == 1 and again["floor"]["ids_match_fraction"] == pytest.approx(3 / 8)
    del run.floor["points"]["b64x1024"]
    assert any(n.startswith("ids floor: TRITON_ATTN") for n in run.notes)
    assert "--floor-from" in compare.pooled_lines(run, {"CUSTOM": pooled})[0]
    # the same run against a floor that follows FLASH_ATTN exactly: CUSTOM's 50% is a failure
    reused_floor(run, str(_floor_source(tmp_path, triton_diverged=0, name="exact.json")), tol)
    assert not compare.pooled_correctness(run, compare.rows(run))["CUSTOM"]["ok"]
    assert sum(n.startswith("ids floor: ") for n in run.notes) == 1     # the note replaced, not repeated

    other = EngineSettings(max_model_len=4176, max_num_seqs=32, weights="normal:0.02").to_dict()
    with pytest.raises(WorkbenchError, match="weights 'normal:0.02' vs 'gpt2:0.02'"):
        reused_floor(run, str(_floor_source(tmp_path, 3, settings=other, name="other.json")), tol)
    none = E2eRun.load(_floor_source(tmp_path, 3, name="none.json"))
    none.results.pop("TRITON_ATTN")
    none.save(tmp_path / "none.json")
    with pytest.raises(WorkbenchError, match="no point where both FLASH_ATTN and TRITON_ATTN"):
        reused_floor(run, str(tmp_path / "none.json"), tol)

    # the script on a saved run: the verdict line says pass, and --out keeps the floor
    saved = tmp_path / "run.json"
    run.floor = {}
    run.save(saved)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    try:
        import e2e_reread
        assert e2e_reread.main([str(saved), "--floor-from", str(tmp_path / "floor.json"),
                                "--out", str(tmp_path / "new.json")]) == 0
    finally:
        sys.path.pop(0)
    new = E2eRun.load(tmp_path / "new.json")
    assert new.floor["points"] and new.summary["correctness_pooled"]["CUSTOM"]["ok"]
    assert "-> pass" in capsys.readouterr().out


def test_a_resumed_run_keeps_its_floor(tmp_path, fake_runner):
    src = _floor_source(tmp_path, triton_diverged=5)
    out = tmp_path / "out"
    run = _e2e(out, ["CUSTOM", "FLASH_ATTN"], floor_from=str(src))
    assert set(run.floor["points"]) == {"b8x4096"}
    again = _e2e(out, ["CUSTOM", "FLASH_ATTN"])
    assert again.floor == run.floor and len(fake_runner()) == 2           # nothing measured twice
