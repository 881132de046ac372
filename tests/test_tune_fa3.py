"""Issue 12, item 4: where FA3 loads on the host, `tune`'s tables and the exported package's README
show × FA3 beside × baseline; where it does not, "—" and one line saying why.

FA3 needs a Hopper GPU, so on CPU its timing is injected: `time_peer`'s builder and timer are
replaced by fakes, and the tuning loop runs on the replay backend (real H100 measurements, see
test_tune.py) with a copy of its file that carries FA3 timings made up here (SYNTHETIC, not
measured: they only have to be known, so the ratios can be checked). Absence is real: this host
has no vllm.vllm_flash_attn, and the real builder says so through the real worker process."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
REPLAY = ROOT / "tests/fixtures/h100-2026-11-21/replay.json"
SPACE = ROOT / "tests/fixtures/replay-space.yaml"
BASE = ["tune", "--gpu", "h100", "--model", "llama-3.1-8b", "--space", str(SPACE), "--profile", "none",
        "--seed", "1", "--trials", "6", "--json"]
HAS_FA3 = importlib.util.find_spec("vllm") is not None


def wb(args, home):
    env = {**os.environ, "WORKBENCH_HOME": str(home),
           "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, "-m", "workbench", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def suite_buckets():
    from workbench.config.profiles import head_shape, load_model
    from workbench.measure.suite import load_suite
    heads = head_shape(load_model("llama-3.1-8b"), 1)
    return [(b.label, s) for b, s in load_suite("default").specs(heads, "bf16", 16)]


def fake_fa3_us(label):
    """SYNTHETIC FA3 latency of a bucket (µs): distinct per bucket, so a row picking the wrong
    bucket's FA3 time shows."""
    b, c = label[1:].split("x")
    return 5.0 + int(b) * int(c) / 2000.0


# ---- the timing itself, injected -----------------------------------------------------------------
def test_time_peer_times_every_bucket_with_the_injected_builder_and_timer():
    from workbench.tune.peer_timing import time_peer
    buckets = suite_buckets()
    built, timed = [], []

    def build(spec, min_bytes, check):
        built.append((spec.label, min_bytes, check))
        return [lambda: None] * 2, "FA3 (fake) varlen with AOT metadata, 2 copies", 0.002

    def timer(calls, info, launches, name):
        timed.append((name, launches))
        us = fake_fa3_us(name.split(" :: ")[1])
        return [us - 1, us, us, us, us + 1] * 6, "CUDA graph replay per launch, cold L2"
    p = time_peer("fa3", buckets, None, ceiling_gbps=3000.0, launches=30, min_bytes=1 << 28, build=build, timer=timer)
    assert p.ok and p.status == "ok" and p.reason == ""
    assert [t.bucket for t in p.timings] == [lbl for lbl, _ in buckets]
    for (lbl, spec), t in zip(buckets, p.timings):
        assert t.median_us == pytest.approx(fake_fa3_us(lbl)) and t.kv_bytes == spec.kv_bytes
        assert t.efficiency == pytest.approx(spec.kv_bytes / (t.median_us * 1e-6) / 3000e9)
    assert len(built) == len(timed) == len(buckets) and all(n == 30 for _, n in timed)
    assert all(mb == 1 << 28 for _, mb, _ in built)
    assert p.max_rel_error == pytest.approx(0.002)


def test_time_peer_says_why_when_fa3_cannot_run():
    from workbench.bench.peers.common import PeerUnavailable
    from workbench.tune.peer_timing import time_peer

    def missing(spec, min_bytes, check):
        raise PeerUnavailable("FA3 needs vllm.vllm_flash_attn (vLLM 0.26's FA3 build): bundle it\nsecond line")
    p = time_peer("fa3", suite_buckets(), None, ceiling_gbps=1.0, launches=30, min_bytes=1, build=missing,
                  timer=lambda *a, **k: pytest.fail("nothing to time"))
    assert not p.ok and p.status == "unavailable" and p.timings == []
    assert p.reason == "FA3 needs vllm.vllm_flash_attn (vLLM 0.26's FA3 build): bundle it"     # one line

    def breaks_on_the_third(spec, min_bytes, check, n=[0]):
        n[0] += 1
        if n[0] == 3:
            raise RuntimeError("CUDA error: misaligned address")
        return [lambda: None], "note", 0.0
    p = time_peer("fa3", suite_buckets(), None, ceiling_gbps=1.0, launches=30, min_bytes=1, build=breaks_on_the_third,
                  timer=lambda calls, info, launches, name: ([10.0] * 30, "m"))
    assert p.status == "failed" and not p.ok and "RuntimeError: CUDA error: misaligned address" in p.reason


@pytest.mark.skipif(HAS_FA3, reason="vllm is installed here: FA3's absence cannot be shown")
def test_the_real_worker_reports_fa3_missing_on_this_host(monkeypatch):
    """The worker's peer op, through the real worker process (test seam for setup only), with the
    real FA3 builder: on this host vllm is missing, and the reason is the bench's own."""
    from workbench.bench.peers.fa3 import PROVIDE
    from workbench.tune.backend import WorkerBackend
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    setup = {"buckets": [[lbl, s.to_dict()] for lbl, s in suite_buckets()[:2]], "checks": [], "launches": 30}
    b = WorkerBackend(0, setup, trial_timeout=30, setup_timeout=120, profile="none",
                      test_measure="test_worker:fake_measure")
    try:
        p = b.measure_peer("fa3")
        assert p.status == "unavailable" and p.reason.startswith(PROVIDE) and b.alive()
    finally:
        b.close()


# ---- tune's tables and the exported README -------------------------------------------------------
def replay_with_fa3(tmp_path):
    d = json.loads(REPLAY.read_text())
    d["peers"] = {"fa3": {"peer": "fa3", "status": "ok", "note": "SYNTHETIC (tests/test_tune_fa3.py)",
                          "gpu": d["gpu"]["name"],
                          "timings": [{"bucket": lbl, "median_us": fake_fa3_us(lbl), "p10_us": fake_fa3_us(lbl) - 1,
                                       "p90_us": fake_fa3_us(lbl) + 1, "kv_bytes": s.kv_bytes, "efficiency": 0.5,
                                       "split": False} for lbl, s in suite_buckets()]}}
    p = tmp_path / "replay-fa3.json"
    p.write_text(json.dumps(d))
    return p


def render(table):
    import io

    from rich.console import Console
    c = Console(record=True, width=250, file=io.StringIO())
    c.print(table)
    return c.export_text()


def summary_of(d):
    from types import SimpleNamespace
    return SimpleNamespace(**d)


def test_tune_and_export_show_x_fa3_beside_x_baseline(tmp_path):
    from workbench.tune.trial import Measurement
    from workbench.ui.report import dispatch_table, top_table
    replay = replay_with_fa3(tmp_path)
    p = wb([*BASE, "--replay", replay, "--study", "f"], tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    s = json.loads(p.stdout)
    assert s["peers"]["fa3"]["status"] == "ok" and s["peers"]["fa3"]["why_absent"] is None
    # top rows: geomean over buckets of FA3 µs ÷ ours, from the trial's own bucket timings
    rec = {m["key"]: m for m in json.loads(REPLAY.read_text())["measurements"]}
    for r in s["top"]:
        m = Measurement.from_dict(next(x for x in rec.values() if x["name"] == r["name"]))
        import math
        want = math.exp(sum(math.log(fake_fa3_us(t.bucket) / t.median_us) for t in m.timings) / len(m.timings))
        assert r["speedup_fa3"] == pytest.approx(want)
    # dispatch rows: the bucket's FA3 time, and FA3 ÷ the row's µs
    for row in s["dispatch"]["rows"]:
        lbl = f"b{row['bucket']['batch']}x{row['bucket']['context']}"
        assert row["fa3_us"] == pytest.approx(fake_fa3_us(lbl))
        assert row["speedup_fa3"] == pytest.approx(fake_fa3_us(lbl) / row["median_us"])
    assert s["dispatch"]["fa3_note"] == ""
    # the tables tune prints
    top = render(top_table(summary_of(s)))
    assert "× baseline" in top and "× FA3" in top and "—" not in top
    assert f"{s['top'][0]['speedup_fa3']:.2f}" in top
    disp = render(dispatch_table(s["dispatch"]))
    assert "× FA3" in disp and "FA3 µs" in disp
    for row in s["dispatch"]["rows"]:
        assert f"{row['speedup_fa3']:.2f}" in disp
    # stored with the study: export reads it (no GPU, no backend here) into the README
    e = wb(["export", "--study", "f", "--out", tmp_path / "pkg", "--json"], tmp_path)
    assert e.returncode == 0, e.stderr[-3000:]
    readme = (tmp_path / "pkg/README.md").read_text()
    assert "| × baseline | × paper | × FA3 |" in readme and "× FA3: against FlashAttention-3" in readme
    lines = [x for x in readme.splitlines() if x.startswith("| ") and "`" in x]
    assert len(lines) == len(s["dispatch"]["rows"])
    for line, row in zip(lines, s["dispatch"]["rows"]):
        assert line.rstrip(" |").endswith(f"{row['speedup_fa3']:.2f}"), line


def test_without_fa3_the_column_is_a_dash_with_the_reason(tmp_path):
    from workbench.ui.report import dispatch_table, top_table
    p = wb([*BASE, "--replay", REPLAY, "--study", "n"], tmp_path)      # the fixture has no FA3 timings
    assert p.returncode == 0, p.stderr[-3000:]
    s = json.loads(p.stdout)
    why = s["peers"]["fa3"]["why_absent"]
    assert why == f"FA3 not timed: not recorded in {REPLAY}" and "FA3 not timed" in " ".join(s["notes"])
    assert all(r["speedup_fa3"] is None for r in s["top"])
    assert all(r["fa3_us"] is None and r["speedup_fa3"] is None for r in s["dispatch"]["rows"])
    top, disp = render(top_table(summary_of(s))), render(dispatch_table(s["dispatch"]))
    for text, rows in ((top, s["top"]), (disp, s["dispatch"]["rows"])):
        assert "× FA3" in text and f"× FA3 —: {why}" in " ".join(text.split())
        assert text.count("—") >= (2 if text is disp else 1) * len(rows) + 1      # every row's cell(s), the caption
    e = wb(["export", "--study", "n", "--out", tmp_path / "pkg", "--json"], tmp_path)
    assert e.returncode == 0, e.stderr[-3000:]
    readme = (tmp_path / "pkg/README.md").read_text()
    assert f"× FA3 —: {why}." in readme
    rows = [x for x in readme.splitlines() if x.startswith("| ") and "`" in x]
    assert rows and all(x.rstrip().endswith("| — |") for x in rows)
    # an export of a study tuned before FA3 was timed with studies: the same, with that reason
    from workbench.export.package import _readme, load_table
    import optuna
    st = optuna.load_study(study_name="n", storage=f"sqlite:///{tmp_path / 'studies.db'}")
    st.set_user_attr("peers", {})
    table, prov = load_table("n", f"sqlite:///{tmp_path / 'studies.db'}")
    assert "was not timed with this study" in table.fa3_note


def test_the_live_screen_shows_x_fa3_once_known():
    from workbench.tune.peer_timing import PeerTiming
    from workbench.tune.trial import Measurement
    from workbench.ui.tui import TuneState, screen_text
    rec = json.loads(REPLAY.read_text())["measurements"]
    m = Measurement.from_dict(next(x for x in rec if x["status"] == "ok"))
    fa3 = PeerTiming(peer="fa3", status="ok", timings=[
        type(t)(**{**t.to_dict(), "median_us": fake_fa3_us(t.bucket)}) for t in m.timings])
    for peers, want in (({"fa3": fa3.to_dict()}, f"{fa3.speedup(m):.2f}×"),
                        ({"fa3": PeerTiming("fa3", "unavailable", reason="FA3 needs vllm").to_dict()},
                         "× FA3 —: FA3 not timed: FA3 needs vllm")):
        st = TuneState()
        st.apply({"type": "start", "config": {}, "storage": "sqlite:///x", "study": "s", "trials": 1})
        st.apply({"type": "peers", "peers": peers})
        st.apply({"type": "result", "device": 0, "trial": 0, "measurement": m.to_dict(), "repeat": False, "done": 1})
        text = " ".join(screen_text(st, width=220).split())
        assert "× FA3" in text and want in text, text
