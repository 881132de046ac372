"""`workbench bench`'s summary, geomean, tables and plot on runs built here with known answers;
the recorded H100 run (tests/fixtures/bench-h100-2026-11-22.json, `workbench bench` at commit
c0ea9b6 on 2026-11-22) only checks that the file format still loads."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.bench.run import BenchRun, PeerResult, summary
from workbench.errors import WorkbenchError
from workbench.measure.stats import geomean
from workbench.ui.report import bench_table

RUN = Path(__file__).resolve().parent / "fixtures/bench-h100-2026-11-22.json"

# shape -> (KV bytes, floor µs, {peer: median µs or None (a peer that failed on that shape)})
SHAPES = {
    "b1x1024": (4_194_304, 5.0, {"baseline": 20.0, "simple": 15.0, "tuned": 10.0, "xformers": 30.0}),
    "b8x4096": (134_217_728, 10.0, {"baseline": 40.0, "simple": 20.0, "tuned": 20.0, "xformers": None}),
    "b64x4096": (1_073_741_824, 80.0, {"baseline": 90.0, "simple": 120.0, "tuned": 100.0, "xformers": 100.0}),
}
PEERS = ["baseline", "simple", "tuned", "xformers"]


def made_run() -> BenchRun:
    results = []
    for shape, (kv, floor, times) in SHAPES.items():
        b, c = (int(x) for x in shape[1:].split("x"))
        for p in PEERS:
            us = times[p]
            results.append(PeerResult(peer=p, shape=shape, batch=b, context=c, kv_bytes=kv, median_us=us,
                                      efficiency=floor / us if us else None,
                                      note="" if us else "failed: RuntimeError: out of memory"))
        results.append(PeerResult(peer="floor", shape=shape, batch=b, context=c, kv_bytes=kv, median_us=floor,
                                  efficiency=1.0))
    return BenchRun(gpu={"name": "Test GPU", "driver": "1"}, ceiling={"gbps": 3000.0},
                    heads={"model": "llama-3.1-8b", "num_heads": 32, "num_kv_heads": 8, "head_size": 128},
                    dtype="bf16", block_size=16, suite={"name": "t"}, peers=list(PEERS), results=results,
                    created="2026-01-01T00:00:00+0000")


def test_geomean():
    assert geomean([2.0, 8.0]) == pytest.approx(4.0)
    assert geomean([2.0, None, 0.0, float("nan"), float("inf"), -1.0, 8.0]) == pytest.approx(4.0)
    assert geomean([]) is None and geomean([None, 0.0]) is None


def test_summary_known_answers():
    s = summary(made_run())
    # tuned's speedup over a peer: geomean of that peer's time / tuned's, over the shapes both ran
    assert s["geomean_speedup_of_tuned"]["baseline"] == pytest.approx((2.0 * 2.0 * 0.9) ** (1 / 3))
    assert s["geomean_speedup_of_tuned"]["simple"] == pytest.approx((1.5 * 1.0 * 1.2) ** (1 / 3))
    assert s["geomean_speedup_of_tuned"]["xformers"] == pytest.approx(math.sqrt(3.0 * 1.0))   # b8x4096 failed
    assert "tuned" not in s["geomean_speedup_of_tuned"] and "floor" not in s["geomean_speedup_of_tuned"]
    assert s["efficiency_geomean"]["tuned"] == pytest.approx((0.5 * 0.5 * 0.8) ** (1 / 3))
    assert s["efficiency_geomean"]["xformers"] == pytest.approx(math.sqrt(5 / 30 * 0.8))
    assert s["shapes_where_tuned_is_slower_than_baseline"] == ["b64x4096"]
    assert s["shapes_where_tuned_is_slower_than_simple"] == []                 # a tie is not slower
    # a geomean over fewer shapes than the run's names the ones it leaves out
    assert s["geomean_missing_shapes_of_tuned"] == {"baseline": [], "simple": [], "xformers": ["b8x4096"]}
    from workbench.cli.bench_cmds import speedup_line
    miss = s["geomean_missing_shapes_of_tuned"]
    assert speedup_line("xformers", s["geomean_speedup_of_tuned"]["xformers"], miss["xformers"], s["shapes"]) == \
        "tuned vs xformers: geomean speedup 1.73× over 2 of 3 shapes (not in it: b8x4096)"
    assert speedup_line("simple", s["geomean_speedup_of_tuned"]["simple"], miss["simple"], s["shapes"]) == \
        "tuned vs simple: geomean speedup 1.22×"


def test_save_load_roundtrip(tmp_path):
    run = made_run()
    run.save(tmp_path / "b.json")
    d = json.loads((tmp_path / "b.json").read_text())
    assert d["kind"] == "workbench-bench" and d["summary"] == json.loads(json.dumps(summary(run)))
    back = BenchRun.load(tmp_path / "b.json")
    assert back.results == run.results and back.peers == run.peers
    rec = BenchRun.load(RUN)                       # the recorded format still loads
    assert rec.results and summary(rec)["geomean_speedup_of_tuned"]


def test_table_cells():
    from rich.console import Console
    c = Console(record=True, width=200)
    c.print(bench_table(made_run()))
    lines = c.export_text().splitlines()
    header = next(l for l in lines if "shape" in l and "KV MB" in l)
    assert [x.strip() for x in header.split("┃") if x.strip()] == ["shape", "KV MB", *PEERS, "floor"]
    row = {l.split("│")[1].strip(): [x.strip() for x in l.split("│")[2:-1]] for l in lines
           if l.startswith("│") and l.split("│")[1].strip() in SHAPES}
    assert row["b1x1024"] == ["4", "20.0 (0.25)", "15.0 (0.33)", "10.0 (0.50)", "30.0 (0.17)", "5.0 (1.00)"]
    assert row["b8x4096"] == ["134", "40.0 (0.25)", "20.0 (0.50)", "20.0 (0.50)", "–", "10.0 (1.00)"]
    assert row["b64x4096"][0] == "1074" and row["b64x4096"][3] == "100.0 (0.80)"


def test_plot(tmp_path):
    pytest.importorskip("matplotlib")
    from workbench.ui.plots import bench_plot
    p = bench_plot(made_run(), tmp_path / "b.png")
    assert p.read_bytes()[:4] == b"\x89PNG" and p.stat().st_size > 5_000


def test_prefetch_table_verdicts():
    from rich.console import Console

    from workbench.bench.prefetch_map import prefetch_table
    rows = [{"shape": s, "kv_bytes": 1 << 27, "best_without_us": 100.0, "best_with_us": 100.0 / g,
             "best_without": "d128b16bf16-twopass-t128-q4-p512-pf0", "best_with": "d128b16bf16-twopass-t128-q4-p512-pf2kv.bulk",
             "prefetch_gain": g} for s, g in (("b1x1024", 1.05), ("b8x4096", 0.95), ("b64x4096", 1.01))]
    m = {"gpu": {"name": "Test GPU"}, "heads": {"model": "m", "num_heads": 32, "num_kv_heads": 8},
         "layouts": [{}], "distances": [0, 1, 2], "prefetch_op": "bulk", "rows": rows}
    c = Console(record=True, width=220)
    c.print(prefetch_table(m))
    text = {l.split("│")[1].strip(): l for l in c.export_text().splitlines() if l.startswith("│")}
    assert "helps" in text["b1x1024"] and "0.952" in text["b1x1024"]
    assert "hurts" in text["b8x4096"] and "1.053" in text["b8x4096"]
    assert "neutral" in text["b64x4096"]


def test_bench_bad_input(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    with pytest.raises(WorkbenchError, match="not a workbench bench file"):
        BenchRun.load(bad)
    p = subprocess.run([sys.executable, "-m", "workbench", "bench", "--peers", "baseline,nope"], capture_output=True, text=True)
    assert p.returncode == 2 and "unknown nope" in p.stderr
    p = subprocess.run([sys.executable, "-m", "workbench", "bench", "--launches", "5"], capture_output=True, text=True)
    assert p.returncode == 2 and ">= 30" in p.stderr
    p = subprocess.run([sys.executable, "-m", "workbench", "bench", "--graph-len", "0"], capture_output=True, text=True)
    assert p.returncode == 2 and "--graph-len must be >= 1" in p.stderr and "Traceback" not in p.stderr
    p = subprocess.run([sys.executable, "-m", "workbench", "bench", "--replay-ours", "--in-graph"], capture_output=True,
                       text=True)
    assert p.returncode == 2 and "two timings" in p.stderr and "Traceback" not in p.stderr
    p = subprocess.run([sys.executable, "-m", "workbench", "bench", "--kv-write"], capture_output=True, text=True)
    assert p.returncode == 2 and "--kv-write times the in-graph form" in p.stderr and "Traceback" not in p.stderr
    p = subprocess.run([sys.executable, "-m", "workbench", "bench", "--fused-write"], capture_output=True, text=True)
    assert p.returncode == 2 and "--fused-write times the in-graph form" in p.stderr and "Traceback" not in p.stderr
    p = subprocess.run([sys.executable, "-m", "workbench", "bench", "--in-graph", "--kv-write", "--fused-write"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "two timings of the KV write" in p.stderr and "Traceback" not in p.stderr
    p = subprocess.run([sys.executable, "-m", "workbench", "bench", "--pages", "sorted"], capture_output=True, text=True)
    assert p.returncode == 2 and "--pages 'sorted': choose from scattered, contiguous" in p.stderr \
        and "Traceback" not in p.stderr


def _fake_cuda(monkeypatch, events, fail_capture=False):
    """torch.cuda's graph API as time_calls uses it, recording captures, calls and replays."""
    import contextlib

    import torch

    from workbench.measure import timing

    class Stream:
        def synchronize(self) -> None:
            pass

        def wait_stream(self, other) -> None:
            pass
    cur = Stream()

    class Graph:
        def __init__(self) -> None:
            self.n = len([e for e in events if e == "capture"])

        def replay(self) -> None:
            events.append(("replay", self.n))

    @contextlib.contextmanager
    def graph(g, stream=None):
        events.append("capture")
        if fail_capture:
            raise RuntimeError("operation not permitted when stream is capturing")
        yield
        events.append("end")
    monkeypatch.setattr(torch.cuda, "current_stream", lambda *a: cur)
    monkeypatch.setattr(torch.cuda, "Stream", Stream)
    monkeypatch.setattr(torch.cuda, "CUDAGraph", Graph)
    monkeypatch.setattr(torch.cuda, "graph", graph)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)

    def fake_timed(run, **kw):
        for i in range(4):
            run(i)
        return [10.0, 20.0, 30.0, 40.0]
    monkeypatch.setattr(timing, "_timed", fake_timed)


def test_in_graph_timing_captures_every_launch_in_one_graph(monkeypatch):
    """`bench --in-graph` (measure.timing.time_calls(in_graph=True)): the rotation's launches are
    captured one after another into ONE graph, each replay runs them all, and a sample is the
    replay ÷ the launches; the default captures a graph per launch and replays them in turn. A
    capture that fails is an error in this form, not a silent eager timing."""
    from types import SimpleNamespace

    from workbench.measure import timing

    events: list = []
    _fake_cuda(monkeypatch, events)
    calls = [lambda i=i: events.append(("call", i)) for i in range(5)]
    info = SimpleNamespace(arch="sm_90a")
    monkeypatch.setattr(timing, "IN_GRAPH_MIN_LAUNCHES", 4)
    samples, method = timing.time_calls(calls, info, in_graph=True)
    assert samples == [2.0, 4.0, 6.0, 8.0] and method.startswith("CUDA graph of 5 launches back to back")
    assert events.count("capture") == 1
    first = events.index("capture")
    assert events[first + 1:first + 7] == [("call", i) for i in range(5)] + ["end"]   # all five inside it
    assert [e for e in events if e[0] == "replay"] == [("replay", 0)] * 4

    # a short rotation is cycled until the graph holds the minimum (a step's graph has a launch per
    # layer: a graph of 2 would charge each launch half the graph's own start)
    events.clear()
    monkeypatch.setattr(timing, "IN_GRAPH_MIN_LAUNCHES", 16)
    samples, method = timing.time_calls(calls[:2], info, in_graph=True)
    assert samples == [10 / 16, 20 / 16, 30 / 16, 40 / 16] and method.startswith("CUDA graph of 16 launches")
    first = events.index("capture")
    assert events[first + 1:first + 18] == [("call", i % 2) for i in range(16)] + ["end"]

    # --kv-write: the step's KV-write stand-in before every launch in the graph, then a graph of it
    # alone (same count), whose per-launch median is subtracted
    events.clear()
    monkeypatch.setattr(timing, "IN_GRAPH_MIN_LAUNCHES", 4)
    samples, method = timing.time_calls(calls[:2], info, in_graph=True, between=lambda: events.append("kv"))
    first = events.index("capture")
    assert events[first + 1:first + 10] == ["kv", ("call", 0), "kv", ("call", 1)] * 2 + ["end"]
    second = events.index("capture", first + 1)
    assert events[second + 1:second + 6] == ["kv"] * 4 + ["end"]
    assert samples == [10 / 4 - 6.25, 20 / 4 - 6.25, 30 / 4 - 6.25, 40 / 4 - 6.25]
    assert "KV-write stand-in, its own 6.25 µs subtracted" in method
    # --fused-write: the peers' rows keep the stand-in's time (a row is attention plus the step's write)
    events.clear()
    samples, method = timing.time_calls(calls[:2], info, in_graph=True, between=lambda: events.append("kv"),
                                        charge_between=True)
    first = events.index("capture")
    assert events[first + 1:first + 10] == ["kv", ("call", 0), "kv", ("call", 1)] * 2 + ["end"]
    assert events.count("capture") == 1                  # no graph of the stand-in alone
    assert samples == [10 / 4, 20 / 4, 30 / 4, 40 / 4] and "its time included" in method
    with pytest.raises(ValueError, match="in-graph form"):
        timing.time_calls(calls, info, between=lambda: None)

    events.clear()
    samples, method = timing.time_calls(calls, info)
    assert samples == [10.0, 20.0, 30.0, 40.0] and method.startswith("CUDA graph replay per launch")
    assert events.count("capture") == 5 and [e for e in events if e[0] == "replay"] == [("replay", i) for i in range(4)]

    events.clear()
    _fake_cuda(monkeypatch, events, fail_capture=True)
    with pytest.raises(RuntimeError, match="in-graph timing: the launches do not capture"):
        timing.time_calls(calls, info, in_graph=True)
    samples, method = timing.time_calls(calls, info)                 # the default falls back, and says so
    assert "no CUDA graph" in method


def test_ragged_shapes_in_the_bench_suite_not_in_buckets(tmp_path):
    """The bench suite's ragged batches: long-tailed (most sequences short, the longest = hi),
    seeded, inside [lo, hi]; timed by bench (bench_specs) but never dispatch buckets (specs);
    a bad entry is one message."""
    from workbench.config.profiles import head_shape, load_model
    from workbench.errors import WorkbenchError
    from workbench.measure.suite import RaggedShape, load_suite
    s = load_suite("bench")
    h = head_shape(load_model("llama-3.1-8b"), 1)
    assert s.ragged and all(isinstance(r, RaggedShape) for r in s.ragged)
    uniform = s.specs(h, "bf16", 16)
    both = s.bench_specs(h, "bf16", 16)
    assert [sp for _, sp in both[:len(uniform)]] == [sp for _, sp in uniform]
    ragged = both[len(uniform):]
    assert [r.label for r, _ in ragged] == [r.label for r in s.ragged]
    for r, spec in ragged:
        lens = spec.seq_lens
        assert len(lens) == r.batch and max(lens) == r.hi and min(lens) >= r.lo
        assert sorted(lens)[len(lens) // 2] < r.hi / 2          # long-tailed: the median well below the longest
        assert lens == RaggedShape(r.batch, r.lo, r.hi, r.seed).lengths()
    assert RaggedShape(32, 200, 32768, 1).lengths() != RaggedShape(32, 200, 32768, 2).lengths()
    assert not any(b.label.startswith("r") for b in s.buckets())
    bad = tmp_path / "bad.yaml"
    bad.write_text("batches: [1]\ncontexts: [1024]\ncheck: [{seq_lens: [5]}]\nragged: [{batch: 4, lo: 900, hi: 100}]\n")
    with pytest.raises(WorkbenchError, match=r"ragged\[0\]"):
        load_suite(str(bad))


def test_summary_of_the_graph_launch_against_each_peer():
    """With a tuned-graph row, the summary also gives what vLLM runs through the exported backend
    against each peer (geomean of peer ÷ tuned-graph over the shapes both ran); without, nothing."""
    run = made_run()
    assert "geomean_speedup_of_tuned_graph" not in summary(run)
    extra = [PeerResult(peer="tuned-graph", shape=r.shape, batch=r.batch, context=r.context, kv_bytes=r.kv_bytes,
                        median_us=r.median_us * 1.25) for r in run.results if r.peer == "tuned"]
    run.results += extra
    run.peers = [*run.peers, "tuned-graph"]
    s = summary(run)
    g = s["geomean_speedup_of_tuned_graph"]
    assert g["baseline"] == pytest.approx(s["geomean_speedup_of_tuned"]["baseline"] / 1.25)
    assert "tuned" not in g and "tuned-graph" not in g
    assert s["geomean_speedup_of_tuned"]["tuned-graph"] == pytest.approx(1.25)


def test_summary_best_flashinfer_per_shape_and_shapes_below_fa3_target():
    """Issue 12's targets as the summary states them: tuned against the best FlashInfer kernel of
    each shape (not each FlashInfer kernel's own geomean), and the shapes under 0.98x FA3."""
    times = {"b1x1024": {"tuned": 10.0, "fa3": 10.0, "flashinfer": 30.0, "flashinfer-tc": 12.0, "xqa": 11.0},
             "b8x4096": {"tuned": 20.0, "fa3": 19.0, "flashinfer": 15.0, "flashinfer-tc": 25.0, "xqa": 40.0},
             "b64x4096": {"tuned": 40.0, "fa3": 44.0, "flashinfer": 0.0, "flashinfer-tc": 60.0, "xqa": 80.0}}
    results = [PeerResult(peer=p, shape=s, batch=1, context=1, kv_bytes=1, median_us=us)
               for s, d in times.items() for p, us in d.items()]
    run = BenchRun(gpu={"name": "g"}, ceiling={"gbps": 1.0}, heads={}, dtype="bf16", block_size=16, suite={"name": "t"},
                   peers=["tuned", "fa3", "flashinfer", "flashinfer-tc", "xqa"], results=results, created="")
    s = summary(run)
    bf = s["geomean_speedup_of_tuned_vs_best_flashinfer"]
    assert bf["peers"] == ["flashinfer", "flashinfer-tc", "xqa"]
    # best per shape: 11 (xqa), 15 (flashinfer), 60 (tc; flashinfer failed there)
    assert bf["geomean"] == pytest.approx((11 / 10 * 15 / 20 * 60 / 40) ** (1 / 3))
    assert s["shapes_where_tuned_is_below_0.98_of_fa3"] == ["b8x4096"]          # 0.95; b1x1024 ties at 1.0


def test_summary_prefers_fa3_on_the_packed_cache_and_names_large_shapes_below_the_ceiling():
    """Issue 12's per-shape targets against the FA3 that vLLM's FLASH_ATTN runs (`fa3-packed`, on its
    K|V-per-token cache) where the run has it, and its ceiling target: the shapes of >= 1 GB of KV
    where a row of ours reads below 0.97 of the read ceiling (a 0.5 GB shape at 0.90 is not one)."""
    rows = {"b8x32768": (1_074_000_000, {"tuned": (100.0, 0.96), "tuned-graph": (99.0, 0.97), "fa3": (97.0, 0.99),
                                          "fa3-packed": (103.0, 0.93)}),
            "b64x4096": (1_074_000_000, {"tuned": (100.0, 0.93), "tuned-graph": (98.0, 0.95), "fa3": (99.0, 0.94),
                                          "fa3-packed": (101.0, 0.92)}),
            "b8x16384": (537_000_000, {"tuned": (50.0, 0.90), "tuned-graph": (50.0, 0.90), "fa3": (47.0, 0.96),
                                        "fa3-packed": (50.0, 0.90)})}
    results = [PeerResult(peer=p, shape=s, batch=1, context=1, kv_bytes=kv, median_us=us, efficiency=eff)
               for s, (kv, d) in rows.items() for p, (us, eff) in d.items()]
    run = BenchRun(gpu={"name": "g"}, ceiling={"gbps": 1.0}, heads={}, dtype="bf16", block_size=16, suite={"name": "t"},
                   peers=["tuned", "tuned-graph", "fa3", "fa3-packed"], results=results, created="")
    s = summary(run)
    assert s["fa3_peer"] == "fa3-packed" and s["shapes_where_tuned_is_below_0.98_of_fa3"] == []
    assert s["shapes_of_1gb_below_0.97_of_the_ceiling"] == {"tuned": {"b8x32768": 0.96, "b64x4096": 0.93},
                                                           "tuned-graph": {"b64x4096": 0.95}}
    run.peers = ["tuned", "tuned-graph", "fa3"]                  # FA3 on our cache layout only
    run.results = [r for r in results if r.peer != "fa3-packed"]
    s = summary(run)
    assert s["fa3_peer"] == "fa3" and s["shapes_where_tuned_is_below_0.98_of_fa3"] == ["b8x32768", "b8x16384"]


def test_summary_gives_each_ragged_batch_against_fa3_for_both_rows_of_ours():
    """Issue 12's ragged target per batch: FA3 ÷ tuned and FA3 ÷ tuned-graph on the suite's ragged
    shapes only (their RaggedShape labels), leaving out a shape either side failed."""
    times = {"b8x4096": {"tuned": 20.0, "tuned-graph": 21.0, "fa3": 19.0},
             "r32x200-32768": {"tuned": 56.0, "tuned-graph": 47.0, "fa3": 39.0},
             "r8x200-16384": {"tuned": 0.0, "tuned-graph": 23.0, "fa3": 20.0}}
    results = [PeerResult(peer=p, shape=s, batch=1, context=1, kv_bytes=1, median_us=us)
               for s, d in times.items() for p, us in d.items()]
    suite = {"name": "t", "ragged": [{"batch": 32, "lo": 200, "hi": 32768, "seed": 1},
                                     {"batch": 8, "lo": 200, "hi": 16384, "seed": 2}]}
    run = BenchRun(gpu={"name": "g"}, ceiling={"gbps": 1.0}, heads={}, dtype="bf16", block_size=16, suite=suite,
                   peers=["tuned", "tuned-graph", "fa3"], results=results, created="")
    r = summary(run)["ragged_speedup_vs_fa3"]
    assert r["tuned"] == {"r32x200-32768": pytest.approx(39 / 56)}
    assert r["tuned-graph"] == {"r32x200-32768": pytest.approx(39 / 47), "r8x200-16384": pytest.approx(20 / 23)}
    run.peers = ["tuned", "tuned-graph"]
    assert "ragged_speedup_vs_fa3" not in summary(run)


@pytest.mark.parametrize("knob, peer, flags, want", [
    ("graph_walk", "tuned-graph", {"graph_walk": True}, True), ("graph_walk", "tuned-graph", {}, False),
    ("graph_walk", "tuned", {"graph_walk": True}, False),
    ("graph_sched", "tuned-graph", {}, True),                       # the default, as `export` builds it
    ("graph_sched", "tuned-graph", {"graph_sched": True}, True),
    ("graph_sched", "tuned-graph", {"graph_sched": False}, False),  # --no-graph-sched
    ("graph_sched", "tuned-graph", {"graph_walk": True}, False),    # --graph-walk turns it off
    ("graph_sched", "tuned", {}, True),                             # eager launches plan ragged batches
    ("graph_sched", "tuned", {"graph_sched": False}, False),
    ("graph_sched", "tuned", {"graph_walk": True}, False)])
def test_graph_forms_build_the_rows_as_export_does(monkeypatch, knob, peer, flags, want):
    """`bench` measures tuned-graph as `export` with the same flags builds it (the auto variant with
    Variant.graph_sched by default, graph_walk with --graph-walk, neither with --no-graph-sched); the
    per-shape tuned row has graph_sched as the package's eager launches do (they plan ragged
    batches: Variant.plans_eager), never graph_walk."""
    from types import SimpleNamespace

    from workbench.bench import run as br
    from workbench.kernel import build
    from workbench.kernel.variant import Variant
    from workbench.measure.workload import WorkloadSpec

    built = []

    class Stop(Exception):
        pass

    def fake_build(v, arch):
        built.append(v)
        raise Stop
    monkeypatch.setattr(build, "build_variant", fake_build)
    v = Variant(head_size=128, block_size=16, dtype="bf16", threads=128, heads_per_cta=4, partition="auto", stages=3)
    spec = WorkloadSpec(seq_lens=(1024,) * 8, num_heads=32, num_kv_heads=8)
    with pytest.raises(Stop):
        br._ours(peer, spec, SimpleNamespace(arch="sm_90a"), 0.0, 30, lambda s: v, {}, **flags)
    assert getattr(built[0], knob) is want and built[0].with_(graph_walk=False, graph_sched=False) == v


@pytest.mark.parametrize("graph_plans", [True, False])
def test_a_ragged_tuned_row_takes_the_graph_pick_where_it_plans(monkeypatch, graph_plans):
    """The package's eager steps launch a ragged batch with its batch size's graph pick (refined on ragged
    batches) where that launch is planned, else with the table's pick (vllm_backend._plan_eager): bench's
    tuned row times the same; a uniform batch keeps the table's pick and never builds the graph pick."""
    from types import SimpleNamespace

    from workbench.bench import run as br
    from workbench.kernel import build, launch
    from workbench.kernel.variant import Variant
    from workbench.measure import check, timing
    from workbench.measure.workload import WorkloadSpec

    table_v = Variant(head_size=128, block_size=16, dtype="bf16", threads=128, heads_per_cta=4, partition="none", stages=2)
    graph_v = Variant(head_size=128, block_size=16, dtype="bf16", threads=128, heads_per_cta=8, partition="auto", stages=2)
    built = []

    class Kernel:
        def __init__(self, v):
            self.v = v

        def plans_eager(self, lens, nh, nkv):
            return graph_plans and self.v.heads_per_cta == 8

        def close(self):
            pass
    monkeypatch.setattr(build, "build_variant", lambda v, arch: built.append(v) or SimpleNamespace(ok=True, v=v))
    monkeypatch.setattr(launch, "load", lambda b, dev, sms=None: Kernel(b.v))
    monkeypatch.setattr(check, "check_variant", lambda k, spec, dev, **how: None)
    monkeypatch.setattr(timing, "time_variant", lambda k, spec, info, **kw: SimpleNamespace(
        median_us=1.0, p10_us=1.0, p90_us=1.0, method="m"))

    def pick(s):
        return graph_v if getattr(s, "graph", False) else table_v
    pick.table = object()
    rag = WorkloadSpec(seq_lens=(16384, 200, 900, 3000), num_heads=28, num_kv_heads=4)
    r = br._ours("tuned", rag, SimpleNamespace(arch="sm_90a", l2_bytes=1 << 20), 0.0, 30, pick, {})
    want = graph_v if graph_plans else table_v
    assert r.variant == want.graph_built(False, True).name and ("planned" in r.method) == graph_plans
    built.clear()
    uni = WorkloadSpec(seq_lens=(4096,) * 4, num_heads=28, num_kv_heads=4)
    r = br._ours("tuned", uni, SimpleNamespace(arch="sm_90a", l2_bytes=1 << 20), 0.0, 30, pick, {})
    assert r.variant == table_v.graph_built(False, True).name and [v.heads_per_cta for v in built] == [4]
