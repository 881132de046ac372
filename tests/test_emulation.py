"""Emulating a smaller Hopper on a bigger one (issue 16): the plan, the refusals, the provenance,
the CLI flags and the throttle's calibration, all without a GPU. What runs on the GPU
(workbench/measure/greenctx.py) is checked by scripts/device_emulation.sh."""
import json
import math
import sys

import pytest

from workbench.config.profiles import load_gpu
from workbench.errors import WorkbenchError
from workbench.measure.emulation import (EmulationPlan, calibrate, hold_every, next_rate, plan_emulation,
                                         resolve_target, round_sms, throttle_period_ns)

H200, H100, A100 = "NVIDIA H200", "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB"


@pytest.mark.parametrize("n,want", [(78, 80), (66, 72), (80, 80), (1, 8), (132, 136), (64, 64)])
def test_sm_count_rounds_up_to_the_group(n, want):
    assert round_sms(n, 8) == want


def test_sm_rounding_refuses_nonsense():
    with pytest.raises(WorkbenchError):
        round_sms(0, 8)


def test_h20_on_h200_takes_sms_and_bandwidth_keeps_l2():
    p = plan_emulation(load_gpu("h20"), H200)
    assert (p.target_sms, p.sms, p.attached_sms) == (78, 80, 132)
    assert p.splits and p.throttles and p.l2_hold_mb == 0 and p.l2_mb == 60
    assert p.throttle_placement == "outside"          # 52 SMs left for the throttle


def test_h100_on_h200_throttles_on_shared_sms_and_holds_10mb():
    p = plan_emulation(load_gpu("h100"), H200)
    assert p.sms == 132 and not p.splits and p.l2_hold_mb == 10 and p.l2_mb == 50
    assert p.throttle_placement == "shared"           # no SM left outside the measured ones
    assert p.ceiling_goal(4300.0) == 3020.0           # the real H100's measured ceiling (its profile)


def test_h20_on_h100_emulates_sms_only_and_says_what_it_cannot():
    p = plan_emulation(load_gpu("h20"), H100)
    assert p.sms == 80 and not p.throttles and p.l2_hold_mb == 0 and p.throttle_placement == "none"
    miss = " ".join(p.not_emulated())
    assert "HBM bandwidth" in miss and "L2 size" in miss and "78" in miss
    assert p.ceiling_goal(3000.0) == 3000.0           # nothing to throttle to


def test_ceiling_goal_carries_the_attached_efficiency_to_the_target():
    p = plan_emulation(load_gpu("h20"), H200)         # no measured H20 ceiling in its profile
    assert p.ceiling_goal(4320.0) == pytest.approx(4000 * 4320 / 4800)


@pytest.mark.parametrize("target,device,needle", [
    ("h200", H100, "not smaller"),                   # same SMs, more L2 and bandwidth: nothing to take
    ("h20", A100, "different architecture"),
    ("l40s", H200, "different architecture"),
    ("h20", "NVIDIA Mystery GPU", "no GPU profile recognises"),
])
def test_refusals_say_why(target, device, needle):
    with pytest.raises(WorkbenchError, match=needle):
        plan_emulation(load_gpu(target), device)


def test_a_target_with_more_sms_is_refused(tmp_path):
    y = tmp_path / "big.yaml"
    y.write_text("name: big\nmatch: ['\\bBIG\\b']\narch: sm_90a\nsms: 144\nl2_mb: 40\nhbm_gbps: 3000\n")
    with pytest.raises(WorkbenchError, match=r"more SMs \(144 > 132\)"):
        plan_emulation(load_gpu(str(y)), H200)


def test_provenance_names_target_host_and_numbers():
    p = plan_emulation(load_gpu("h20"), H200)
    assert p.provenance().startswith("tuned for h20 by emulation on NVIDIA H200 (80 of 132 SMs, 4.0 of 4.8 TB/s, "
                                     "60 of 60 MB L2; not emulated: clocks, HBM latency, tensor-core rate")
    m = p.with_measured(sms=80, achieved_gbps=3580.0, attached_ceiling_gbps=4310.0)
    assert "3.58 of 4.31 TB/s read (measured)" in m.provenance()
    assert p.label() == "tuned for H20 by emulation on NVIDIA H200"


def test_plan_round_trips_through_json():
    p = plan_emulation(load_gpu("h100"), H200).with_measured(achieved_gbps=3010.0, calibration=[(0.0, 4300.0)])
    d = json.loads(json.dumps(p.to_dict()))
    q = EmulationPlan.from_dict(d)
    assert q.provenance() == p.provenance() and d["l2_hold_mb"] == 10 and d["throttle_placement"] == "shared"


# ---- --gpu with --emulate / --no-emulate / --allow-mismatch ------------------------------------------
def test_same_gpu_is_not_emulated():
    g, plan, note = resolve_target("h200", H200)
    assert g.name == "h200" and plan is None and note == ""
    _, plan, note = resolve_target("h200", H200, emulate="on")
    assert plan is None and "nothing to emulate" in note


def test_auto_emulates_what_it_can():
    g, plan, note = resolve_target("h20", H200)
    assert plan is not None and plan.target == "h20" and note.startswith("tuned for h20 by emulation")


def test_no_emulate_keeps_the_old_rule():
    with pytest.raises(WorkbenchError, match="--allow-mismatch"):
        resolve_target("h20", H200, emulate="off")
    g, plan, note = resolve_target("h20", H200, emulate="off", allow_mismatch=True)
    assert plan is None and g.name == "h20" and "--allow-mismatch" in note


def test_emulation_impossible_auto_falls_back_only_when_allowed():
    with pytest.raises(WorkbenchError, match="different architecture.*--allow-mismatch"):
        resolve_target("h20", A100)
    g, plan, note = resolve_target("h20", A100, allow_mismatch=True)
    assert plan is None and "different architecture" in note
    with pytest.raises(WorkbenchError, match="different architecture") as e:  # --emulate insists
        resolve_target("h20", A100, emulate="on", allow_mismatch=True)
    assert "--allow-mismatch" not in str(e.value)


def _cli(monkeypatch, tmp_path, device, *args):
    """`workbench tune` in-process with `device` attached; returns (exit code, stderr, config or None)."""
    import workbench.cli.tune_cmds as tc
    import workbench.kernel.build as build
    import workbench.tune.plan as plan
    from workbench.cli.app import main
    got = {}
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    monkeypatch.setattr(plan, "attached", lambda devs, replay: device)
    monkeypatch.setattr(build, "find_nvcc", lambda: "nvcc")
    monkeypatch.setattr(tc, "_run_tune", lambda cfg, notes, *a: got.update(cfg=cfg, notes=notes))
    monkeypatch.setattr(sys, "argv", ["workbench", "tune", "--model", "llama-3.1-8b", "--profile", "none",
                                      "--storage", f"sqlite:///{tmp_path / 's.db'}", *args])
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code
    return code, got.get("cfg"), got.get("notes", [])


def test_cli_tune_gpu_h20_on_h200_emulates(monkeypatch, tmp_path, capsys):
    code, cfg, notes = _cli(monkeypatch, tmp_path, H200, "--gpu", "h20")
    assert code == 0 and cfg.emulation["sms"] == 80 and cfg.gpu.name == "h20"
    assert cfg.study.startswith("h20-emu-h200-") and cfg.study_config()["emulation"]["target"] == "h20"
    assert any(n.startswith("tuned for h20 by emulation on NVIDIA H200") for n in notes)
    from workbench.tune.plan import backend_factory
    assert callable(backend_factory(cfg))


def test_cli_no_emulate_and_allow_mismatch(monkeypatch, tmp_path, capsys):
    code, cfg, _ = _cli(monkeypatch, tmp_path, H200, "--gpu", "h20", "--no-emulate")
    err = capsys.readouterr().err
    assert code == 2 and cfg is None and "--allow-mismatch" in err and "Traceback" not in err
    code, cfg, notes = _cli(monkeypatch, tmp_path, H200, "--gpu", "h20", "--no-emulate", "--allow-mismatch")
    assert code == 0 and cfg.emulation is None and "emu" not in cfg.study
    assert "emulation" not in cfg.study_config()


def test_cli_emulate_refuses_another_arch(monkeypatch, tmp_path, capsys):
    code, cfg, _ = _cli(monkeypatch, tmp_path, A100, "--gpu", "h20", "--emulate", "--allow-mismatch")
    err = capsys.readouterr().err
    assert code == 2 and cfg is None and "different architecture" in err


def test_cli_emulate_needs_a_gpu_not_a_replay(monkeypatch, tmp_path, capsys):
    code, cfg, _ = _cli(monkeypatch, tmp_path, H200, "--gpu", "h20", "--emulate", "--replay", str(tmp_path / "r.json"))
    assert code == 2 and "--emulate needs a GPU" in capsys.readouterr().err
    # a replay measures nothing: --gpu h20 against a recorded H200 is the plain mismatch, not an emulation
    code, cfg, _ = _cli(monkeypatch, tmp_path, H200, "--gpu", "h20", "--replay", str(tmp_path / "r.json"))
    assert code == 2 and cfg is None and "--allow-mismatch" in capsys.readouterr().err


# ---- the throttle: pacing and calibration ------------------------------------------------------
def test_throttle_period_gives_the_asked_rate():
    threads = 52 * 4 * 256
    p = throttle_period_ns(threads, 700.0)             # 700 GB/s = 700 bytes/ns over the grid
    assert threads * 64 / p == pytest.approx(700.0)
    assert throttle_period_ns(threads, 0.0) == pytest.approx(threads * 64 / 20.0)   # hold-only trickle


def test_hold_region_swept_about_every_200_us():
    threads, hold = 132 * 128, 10 << 20
    period = throttle_period_ns(threads, 1300.0)
    every = hold_every(hold, threads, period)
    sweep_ns = hold / (threads * 64) * every * period
    assert 100_000 <= sweep_ns <= 300_000
    assert hold_every(0, threads, period) == 0


@pytest.mark.parametrize("model", [
    lambda r: 4300 - 0.8 * r,                                      # each throttle byte costs 0.8
    lambda r: 4300 - 1900 * (1 - math.exp(-r / 1500)),             # diminishing loss as HBM saturates
])
def test_calibration_reaches_the_goal(model):
    rate, got, samples = calibrate(model, 3600.0, max_rate=4300.0)
    assert abs(got / 3600 - 1) <= 0.015 and len(samples) <= 5 and samples[0][0] == 0.0
    assert got == model(rate)


def test_calibration_stops_at_the_limit_when_the_goal_is_out_of_reach():
    model = lambda r: 4300 - 0.1 * min(r, 4300)                    # noqa: E731 (the throttle barely bites)
    rate, got, samples = calibrate(model, 3000.0, max_rate=4300.0)
    assert rate == 4300.0 and got == pytest.approx(3870.0) and len(samples) <= 7


def test_calibration_steps_by_secant_not_by_the_miss():
    """A throttle byte that costs the measured work 0.4 bytes: stepping by the miss alone would take
    many rounds; the secant through the first two samples lands on the goal at the third."""
    model = lambda r: 4300 - 0.4 * r                               # noqa: E731
    rate, got, samples = calibrate(model, 3600.0, max_rate=4300.0)
    assert len(samples) == 3 and rate == pytest.approx(1750.0)


def test_next_rate_first_guess_is_one_byte_per_byte():
    assert next_rate([(0.0, 4300.0)], 3600.0, 4300.0) == pytest.approx(700.0)
    assert next_rate([(0.0, 3500.0)], 3600.0, 4300.0) == 0.0       # already below: no throttle


def test_peers_are_captured_on_the_green_stream_and_only_replays_are_throttled(monkeypatch):
    """time_calls under an emulation: warm-up and graph capture on the given (green) stream and
    outside `timed` (capture synchronises the device, which would wait on the throttle: the H200
    run of 2026-11-28 lost every FA3 timing to the throttle's 30 s timeout), replays inside it."""
    import contextlib
    from types import SimpleNamespace

    import torch

    from workbench.measure import timing

    events: list = []

    class Stream:
        def synchronize(self) -> None:
            events.append("sync")

        def wait_stream(self, other) -> None:
            pass
    green, other = Stream(), Stream()
    current = [other]

    @contextlib.contextmanager
    def use(st):
        old, current[0] = current[0], st
        yield
        current[0] = old

    class Graph:
        def replay(self) -> None:
            events.append(("replay", current[0] is green))

    @contextlib.contextmanager
    def graph(g, stream=None):
        events.append(("capture", stream is green))
        yield

    @contextlib.contextmanager
    def timed():
        events.append("throttle on")
        with use(green):
            yield
        events.append("throttle off")

    def fake_timed(run, **kw):
        for i in range(3):
            run(i)
        return [1.0, 2.0, 3.0]
    monkeypatch.setattr(torch.cuda, "current_stream", lambda *a: current[0])
    monkeypatch.setattr(torch.cuda, "stream", use)
    monkeypatch.setattr(torch.cuda, "CUDAGraph", Graph)
    monkeypatch.setattr(torch.cuda, "graph", graph)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(timing, "_timed", fake_timed)
    calls = [lambda: events.append(("call", current[0] is green))] * 2
    samples, method = timing.time_calls(calls, SimpleNamespace(arch="sm_90a"), stream=green, timed=timed)
    assert samples == [1.0, 2.0, 3.0] and method.startswith("CUDA graph")
    on, off = events.index("throttle on"), events.index("throttle off")
    before = events[:on]
    assert ("capture", True) in before and ("capture", False) not in events
    assert all(e == ("call", True) for e in before if isinstance(e, tuple) and e[0] == "call")
    assert events[on + 1:off] == [("replay", True)] * 3
