"""`workbench compare`: two bench runs of one workload, each row beside its ratio to the reference
measured in its own run (the figure a change of host does not move)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from workbench.bench.run import BenchRun, PeerResult
from workbench.errors import WorkbenchError

HEADS = {"model": "llama-3.1-8b", "tp": 1, "num_heads": 32, "num_kv_heads": 8, "head_size": 128}


def run(times: dict[str, dict[str, float]], gpu: str = "GPU-a", heads: dict | None = None,
        variant: str = "v1") -> BenchRun:
    """A bench run: peer -> shape -> median µs."""
    res = [PeerResult(peer=p, shape=s, batch=int(s[1:].split("x")[0]), context=int(s.split("x")[1]),
                      kv_bytes=1, median_us=us, variant=variant if p == "tuned-graph" else "")
           for p, by in times.items() for s, us in by.items()]
    return BenchRun(gpu={"name": "NVIDIA H200", "uuid": gpu}, ceiling={}, heads=heads or HEADS, dtype="bf16",
                    block_size=16, suite={}, peers=list(times), results=res, created="")


def test_rows_are_judged_against_the_reference_of_their_own_run():
    from workbench.bench.compare import compare_runs
    # the after host runs everything 10% faster; only b8x4096 really gained on FA3, b32x4096 lost
    before = run({"tuned-graph": {"b1x1024": 10.0, "b8x4096": 40.0, "b32x4096": 130.0, "b64x1024": 80.0},
                  "fa3": {"b1x1024": 11.0, "b8x4096": 40.0, "b32x4096": 130.0, "b64x1024": 80.0}})
    after = run({"tuned-graph": {"b1x1024": 9.0, "b8x4096": 30.0, "b32x4096": 126.0, "b16x1024": 20.0},
                 "fa3": {"b1x1024": 9.9, "b8x4096": 36.0, "b32x4096": 117.0, "b16x1024": 20.0}},
                gpu="GPU-b", variant="v2")
    c = compare_runs(before, after)
    by = {r.shape: r for r in c.rows}
    assert list(by) == ["b1x1024", "b8x4096", "b32x4096"]
    assert by["b1x1024"].time_change == pytest.approx(0.9) and by["b1x1024"].ratio_change == pytest.approx(1.0)
    assert by["b8x4096"].after_ratio == pytest.approx(1.2) and by["b8x4096"].ratio_change == pytest.approx(1.2)
    assert by["b32x4096"].ratio_change == pytest.approx((117 / 126) / 1.0)
    assert c.moved() == (["b8x4096"], ["b32x4096"])
    assert c.only_before == ["b64x1024"] and c.only_after == ["b16x1024"]
    assert any("different GPUs" in n for n in c.notes)
    g = c.geomeans()
    assert g["before_ratio"] == pytest.approx((1.1 * 1.0 * 1.0) ** (1 / 3))
    assert g["after_ratio"] == pytest.approx((1.1 * 1.2 * 117 / 126) ** (1 / 3))
    d = json.loads(json.dumps(c.to_dict()))
    assert d["gained"] == ["b8x4096"] and d["lost"] == ["b32x4096"] and d["rows"][0]["after_variant"] == "v2"
    # one host: no note; the reference missing from one run: times only, said so
    assert not compare_runs(before, run({"tuned-graph": {"b1x1024": 9.0}, "fa3": {"b1x1024": 9.0}})).notes
    only = compare_runs(before, run({"tuned-graph": {"b1x1024": 9.0}}))
    assert only.rows[0].after_ratio is None and only.rows[0].ratio_change is None and "fa3 missing" in only.notes[0]


def test_runs_timed_in_different_forms_say_so():
    """bench --in-graph / --kv-write / --pages contiguous change every row's time: comparing a run
    of one form with a run of another says so (the ratio columns stay comparable)."""
    from workbench.bench.compare import compare_runs
    times = {"tuned-graph": {"b1x1024": 10.0}, "fa3": {"b1x1024": 11.0}}
    a, b = run(times), run(times)
    assert not compare_runs(a, b).notes
    from workbench.bench.run import FORM_NOTES, timing_form
    b.notes = [FORM_NOTES[f] for f in timing_form(True, True, "contiguous")]     # as run_bench writes them
    (note,) = compare_runs(a, b).notes
    assert "different forms (before: default; after: in-graph; kv-write; pages contiguous)" in note
    a.notes = list(b.notes)
    assert not compare_runs(a, b).notes


def test_runs_of_different_workloads_or_without_the_row_are_refused():
    from workbench.bench.compare import compare_runs
    a = run({"tuned-graph": {"b1x1024": 10.0}, "fa3": {"b1x1024": 11.0}})
    qwen = run({"tuned-graph": {"b1x1024": 10.0}, "fa3": {"b1x1024": 11.0}},
               heads={**HEADS, "model": "qwen2.5-7b", "num_heads": 28, "num_kv_heads": 4})
    with pytest.raises(WorkbenchError, match="different heads"):
        compare_runs(a, qwen)
    with pytest.raises(WorkbenchError, match="no 'tuned' row"):
        compare_runs(a, a, peer="tuned")
    with pytest.raises(WorkbenchError, match="in both runs"):
        compare_runs(a, run({"tuned-graph": {"b8x1024": 10.0}, "fa3": {"b8x1024": 11.0}}))


def test_compare_cli(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    run({"tuned-graph": {"b1x1024": 10.0}, "fa3": {"b1x1024": 11.0}}).save(a)
    run({"tuned-graph": {"b1x1024": 8.0}, "fa3": {"b1x1024": 11.0}}).save(b)
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path)}

    def wb(*args):
        return subprocess.run([sys.executable, "-m", "workbench", "compare", *map(str, args)], capture_output=True,
                              text=True, env=env)
    p = wb(a, b, "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["gained"] == ["b1x1024"]
    p = wb(a, b)
    assert p.returncode == 0 and "gained on fa3 by more than 2%: b1x1024" in p.stdout
    (tmp_path / "bad.json").write_text("{")
    for bad in (tmp_path / "bad.json", tmp_path / "missing.json"):
        p = wb(a, bad)
        assert p.returncode == 2 and "not a readable bench JSON" in p.stderr and "Traceback" not in p.stderr
