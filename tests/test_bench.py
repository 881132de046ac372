"""`workbench bench` output on a real run: NVIDIA H100 80GB HBM3, driver 580.159.04, torch
2.11+cu130, xformers 0.0.35 (Triton split-k called directly), 2026-11-21
(tests/fixtures/bench-h100-2026-11-22.json, recorded on an H100 on 2026-11-22 by `workbench bench` at commit c0ea9b6): baseline / paper = vLLM's
own kernel, simple / simple-pf = ours in vLLM's decomposition, tuned = the v2 study's table."""
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.bench.run import BenchRun, summary
from workbench.ui.plots import bench_plot as plot
from workbench.errors import WorkbenchError
from workbench.ui.report import bench_table

RUN = Path(__file__).resolve().parent.parent / "tests/fixtures/bench-h100-2026-11-22.json"


def test_summary_table_plot(tmp_path):
    run = BenchRun.load(RUN)
    s = summary(run)
    shapes = {r.shape for r in run.results}
    assert len(shapes) == 18
    # recomputed from the rows: tuned vs baseline is the geomean of per-shape ratios
    by = {(r.peer, r.shape): r.median_us for r in run.results}
    import math
    g = math.exp(sum(math.log(by[("baseline", x)] / by[("tuned", x)]) for x in shapes) / len(shapes))
    assert s["geomean_speedup_of_tuned"]["baseline"] == pytest.approx(g)
    assert s["shapes_where_tuned_is_slower_than_baseline"] == [] and s["shapes_where_tuned_is_slower_than_simple"] == []
    assert {"baseline", "paper", "simple", "simple-pf", "tuned", "xformers", "sdpa", "flex"} <= set(run.peers)
    assert all(r.variant.startswith("d128b16bf16-vllm-") for r in run.results if r.peer in ("baseline", "paper"))
    floor = [r for r in run.results if r.peer == "floor"]
    assert all(r.efficiency == 1.0 for r in floor)
    for r in run.results:                       # efficiency = floor / latency everywhere
        f = next(x.median_us for x in floor if x.shape == r.shape)
        if r.median_us:
            assert r.efficiency == pytest.approx(f / r.median_us)
    from rich.console import Console
    c = Console(record=True, width=200)
    c.print(bench_table(run))
    text = c.export_text()
    assert "b64x4096" in text and "xformers" in text and "floor" in text
    assert plot(run, tmp_path / "b.png").stat().st_size > 10_000


def test_bench_bad_input(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    with pytest.raises(WorkbenchError, match="not a workbench bench file"):
        BenchRun.load(bad)
    p = subprocess.run([sys.executable, "-m", "workbench", "bench", "--peers", "baseline,nope"], capture_output=True, text=True)
    assert p.returncode == 2 and "unknown nope" in p.stderr
    p = subprocess.run([sys.executable, "-m", "workbench", "bench", "--launches", "5"], capture_output=True, text=True)
    assert p.returncode == 2 and ">= 30" in p.stderr


def test_prefetch_map_tables():
    """The prefetch maps recorded on an H100 and an H200 (2026-11-21, `workbench bench --prefetch-map`)."""
    import json

    from rich.console import Console

    from workbench.bench.prefetch_map import prefetch_table
    root = Path(__file__).resolve().parent / "fixtures"
    for gpu in ("h100", "h200"):
        m = json.loads((root / f"prefetch-map-{gpu}-2026-11-21.json").read_text())
        assert m["kind"] == "workbench-prefetch-map" and len(m["rows"]) == 18
        for r in m["rows"]:
            assert r["prefetch_gain"] == pytest.approx(r["best_without_us"] / r["best_with_us"])
            assert "-pf0" in r["best_without"] and "-pf0" not in r["best_with"]
        c = Console(record=True, width=200)
        c.print(prefetch_table(m))
        assert "helps" in c.export_text()
