"""Emulating a smaller Hopper on a bigger one (issue 16): the plan, in plain Python.

`workbench tune --gpu h20` on an H200 measures every timed launch inside a CUDA green context
holding the target's SMs, while a throttle kernel on the other SMs takes HBM bandwidth away and
persisting L2 lines hold the L2 the target lacks (workbench/measure/greenctx.py does that on the
GPU). This module decides whether and how: which axes can be emulated, the SM count the hardware
gives, the read ceiling to calibrate to, the calibration steps, and the provenance every result
carries. Nothing here needs a GPU, so all of it is tested on CPU.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from workbench.config.profiles import GpuProfile, detect_gpu, load_gpu, resolve_gpu
from workbench.errors import WorkbenchError
from workbench.kernel.variant import parse_arch

# SMs per green-context group, by arch: cuDevSmResourceSplitByCount rounds a request up to it
# (seen on an H100: 78 -> 80, 66 -> 72). Other archs have other rules: not emulated until checked.
SM_GROUP = {90: 8}
# Fewer SMs than this outside the green context cannot pull enough HBM bandwidth to throttle
# (issue 16: a plain read on 32 H100 SMs still reaches 2.5 TB/s, on 8 far less); the throttle then
# shares the measured SMs at one small CTA per SM instead (sleeping most of the time).
MIN_OUTSIDE_SMS = 16
NOT_EMULATED = ("clocks", "HBM latency", "tensor-core rate")
MODES = ("auto", "on", "off")
CHUNK_BYTES = 64                  # one throttle thread's reads between pauses (4 x 16 B, kernels/emulate.cu)
HOLD_SWEEP_NS = 200_000           # the throttle re-reads the whole L2 hold region this often
TRICKLE_GBPS = 20.0               # the throttle's rate when it only keeps the L2 hold region touched
CALIBRATION_TOLERANCE = 0.015     # |achieved / target - 1| that ends calibration
CALIBRATION_STEPS = 7


def round_sms(n: int, group: int) -> int:
    """What a green context holds when asked for n SMs: n rounded up to whole groups."""
    if n < 1 or group < 1:
        raise WorkbenchError(f"an SM count and group size must be >= 1 (got {n}, {group})")
    return math.ceil(n / group) * group


@dataclass(frozen=True)
class EmulationPlan:
    target: str                     # profile name (h20)
    target_name: str                # marketing name (NVIDIA H20 96GB)
    attached: str                   # the device's own name (NVIDIA H200)
    attached_profile: str
    arch: str
    target_sms: int
    sms: int                        # SMs of the green context (target rounded to the group)
    attached_sms: int
    target_gbps: float              # spec HBM bandwidth
    attached_gbps: float
    target_l2_mb: float
    attached_l2_mb: float
    target_ceiling_gbps: float = 0.0   # the target's measured read ceiling if its profile knows it
    measured: dict[str, Any] = field(default_factory=dict)   # filled on the GPU (greenctx.py)

    @property
    def splits(self) -> bool:
        return self.sms < self.attached_sms

    @property
    def throttles(self) -> bool:
        return self.target_gbps < self.attached_gbps

    @property
    def l2_hold_mb(self) -> float:
        return max(0.0, self.attached_l2_mb - self.target_l2_mb)

    @property
    def l2_mb(self) -> float:
        """The L2 the measured work gets."""
        return min(self.target_l2_mb, self.attached_l2_mb)

    @property
    def throttle_placement(self) -> str:
        """'outside': the throttle runs on the SMs the green context leaves; 'shared': too few are
        left, it shares the measured SMs; 'none': the target is not slower."""
        if not self.throttles:
            return "none"
        return "outside" if self.attached_sms - self.sms >= MIN_OUTSIDE_SMS else "shared"

    def ceiling_goal(self, attached_measured_gbps: float) -> float:
        """The read ceiling to calibrate to: the target's measured one if its profile holds it, else
        its spec bandwidth at the attached GPU's own measured ÷ spec efficiency (no GPU reads at its
        spec bandwidth; the target would not either)."""
        if not self.throttles:
            return attached_measured_gbps
        if self.target_ceiling_gbps > 0:
            return min(self.target_ceiling_gbps, attached_measured_gbps)
        return self.target_gbps * attached_measured_gbps / self.attached_gbps

    def not_emulated(self) -> list[str]:
        out = list(NOT_EMULATED)
        if self.sms != self.target_sms:       # green contexts come in whole groups of SMs
            out.append(f"exact SM count ({self.sms}, the {self.target} has {self.target_sms})")
        if self.target_gbps > self.attached_gbps:
            out.append(f"HBM bandwidth (the {self.target}'s {self.target_gbps:g} GB/s > the attached "
                       f"{self.attached_gbps:g})")
        if self.target_l2_mb > self.attached_l2_mb:
            out.append(f"L2 size (the {self.target}'s {self.target_l2_mb:g} MB > the attached {self.attached_l2_mb:g})")
        return out

    def provenance(self) -> str:
        """One line every result carries: what ran where, with the achieved numbers once measured."""
        m = self.measured
        sms = m.get("sms", self.sms)
        if m.get("achieved_gbps") and m.get("attached_ceiling_gbps"):
            bw = f"{m['achieved_gbps'] / 1e3:.2f} of {m['attached_ceiling_gbps'] / 1e3:.2f} TB/s read (measured)"
        else:
            bw = f"{min(self.target_gbps, self.attached_gbps) / 1e3:.1f} of {self.attached_gbps / 1e3:.1f} TB/s"
        return (f"tuned for {self.target} by emulation on {self.attached} ({sms} of {self.attached_sms} SMs, {bw}, "
                f"{self.l2_mb:g} of {self.attached_l2_mb:g} MB L2; not emulated: {', '.join(self.not_emulated())})")

    def label(self) -> str:
        """The package label export writes."""
        return f"tuned for {self.target_name.removeprefix('NVIDIA ').split()[0]} by emulation on {self.attached}"

    def with_measured(self, **kw: Any) -> "EmulationPlan":
        return replace(self, measured={**self.measured, **kw})

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["provenance"] = self.provenance()
        d["throttle_placement"] = self.throttle_placement
        d["l2_hold_mb"] = self.l2_hold_mb
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EmulationPlan":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def plan_emulation(target: GpuProfile, device_name: str) -> EmulationPlan:
    """The plan for emulating `target` on the attached `device_name`; WorkbenchError (one message
    naming the reason) when it cannot be emulated there."""
    attached = detect_gpu(device_name)
    head = f"cannot emulate the {target.name} on the attached {device_name!r}"
    if attached is None:
        raise WorkbenchError(f"{head}: no GPU profile recognises it (add profiles/gpus/<name>.yaml)")
    ta, aa = parse_arch(target.arch), parse_arch(attached.arch)
    if ta != aa:
        raise WorkbenchError(f"{head}: a different architecture ({target.arch} vs {attached.arch}); "
                             "emulation only takes resources away on one architecture")
    group = SM_GROUP.get(aa)
    if group is None:
        raise WorkbenchError(f"{head}: emulation is implemented for Hopper (sm_90) only")
    if not target.sms or not attached.sms:
        raise WorkbenchError(f"{head}: its profile lacks the SM count (field `sms`)")
    if target.sms > attached.sms:
        raise WorkbenchError(f"{head}: the target has more SMs ({target.sms} > {attached.sms}); "
                             "emulation only takes resources away")
    plan = EmulationPlan(target=target.name, target_name=target.marketing_name, attached=device_name,
                         attached_profile=attached.name, arch=attached.arch, target_sms=target.sms,
                         sms=min(round_sms(target.sms, group), attached.sms), attached_sms=attached.sms,
                         target_gbps=target.hbm_gbps, attached_gbps=attached.hbm_gbps,
                         target_l2_mb=target.l2_mb, attached_l2_mb=attached.l2_mb,
                         target_ceiling_gbps=target.ceiling_gbps)
    if not (plan.splits or plan.throttles or plan.l2_hold_mb > 0):
        raise WorkbenchError(f"{head}: the target is not smaller in SMs, HBM bandwidth or L2, the three things "
                             "emulation can take away")
    return plan


def resolve_target(requested: str, device_name: str | None, *, emulate: str = "auto",
                   allow_mismatch: bool = False) -> tuple[GpuProfile, EmulationPlan | None, str]:
    """--gpu NAME against the attached GPU, with emulation: (profile, plan or None, note).

    emulate 'auto': a target the attached GPU can emulate is emulated; one it cannot is refused
    with the reason, or with --allow-mismatch tuned on the attached GPU as before. 'on': emulate or
    refuse. 'off': never emulate (the pre-emulation rule: mismatch refused unless allowed)."""
    if emulate not in MODES:
        raise WorkbenchError(f"emulate must be one of {MODES} (got {emulate!r})")
    if requested == "auto" or device_name is None or emulate == "off" or load_gpu(requested).matches(device_name):
        g, note = resolve_gpu(requested, device_name, allow_mismatch)
        if emulate == "on" and device_name is not None and g.matches(device_name):
            note = (note + "; " if note else "") + f"--emulate: the attached GPU is the {g.name} itself, nothing to emulate"
        return g, None, note
    g = load_gpu(requested)
    try:
        plan = plan_emulation(g, device_name)
    except WorkbenchError as e:
        if emulate == "auto" and allow_mismatch:
            g, note = resolve_gpu(requested, device_name, True)
            return g, None, f"{note} ({e})"
        hint = "" if emulate == "on" else "; pass --allow-mismatch to tune on the attached GPU anyway (results labelled with it)"
        raise WorkbenchError(f"{e}{hint}") from None
    return g, plan, plan.provenance()


def throttle_period_ns(threads: int, rate_gbps: float) -> float:
    """Time between one thread's chunks so that `threads` threads ask HBM for rate_gbps together
    (1 GB/s is 1 byte/ns). No rate asked: the trickle that keeps an L2 hold touched."""
    return threads * CHUNK_BYTES / (rate_gbps if rate_gbps > 0 else TRICKLE_GBPS)


def hold_every(hold_bytes: int, threads: int, period_ns: float, sweep_ns: float = HOLD_SWEEP_NS) -> int:
    """Chunks between a thread's visits to the L2 hold region (4 x 16 B each) so the grid sweeps the
    whole region about every `sweep_ns`; 0 when there is no region."""
    if hold_bytes <= 0:
        return 0
    visits_per_sweep = max(1, hold_bytes // (threads * CHUNK_BYTES))
    return max(1, int(sweep_ns / (visits_per_sweep * max(period_ns, 1.0))))


def next_rate(samples: list[tuple[float, float]], goal: float, max_rate: float) -> float:
    """Calibration of the throttle: the next throttle rate (GB/s it asks of HBM) to try, from the
    (rate, read ceiling measured beside it) pairs so far. First guess: every byte the throttle
    reads is a byte the measured work loses; then secant steps through the two samples nearest
    the goal (the real loss per byte is below 1 and varies with the rate)."""
    if not samples:
        return 0.0
    if len(samples) == 1:
        r, got = samples[0]
        return min(max_rate, max(0.0, r + got - goal))
    (r1, g1), (r2, g2) = sorted(samples, key=lambda s: abs(s[1] - goal))[:2]
    if g1 == g2 or r1 == r2:
        step = g1 - goal                       # flat: take one byte per byte missed
        return min(max_rate, max(0.0, r1 + step))
    slope = (g2 - g1) / (r2 - r1)              # GB/s of read ceiling per GB/s of throttle (< 0)
    if slope >= 0:                             # noise: the throttle did not lower the ceiling
        return min(max_rate, max(0.0, r1 + (g1 - goal)))
    return min(max_rate, max(0.0, r1 + (goal - g1) / slope))


def calibrated(samples: list[tuple[float, float]], goal: float) -> tuple[float, float]:
    """The sample whose read ceiling is nearest the goal."""
    return min(samples, key=lambda s: abs(s[1] - goal))


def calibrate(measure: Any, goal: float, max_rate: float, *, steps: int = CALIBRATION_STEPS,
              tol: float = CALIBRATION_TOLERANCE) -> tuple[float, float, list[tuple[float, float]]]:
    """measure(rate) -> read ceiling beside a throttle at `rate`; steps until within `tol` of the
    goal. Returns (rate, ceiling, all samples)."""
    samples: list[tuple[float, float]] = []
    rate = 0.0
    for _ in range(max(1, steps)):
        samples.append((rate, float(measure(rate))))
        if abs(samples[-1][1] / goal - 1) <= tol:
            break
        nxt = next_rate(samples, goal, max_rate)
        if any(abs(nxt - r) < 1e-6 for r, _ in samples):
            break                              # nowhere new to go (the throttle is at its limit)
        rate = nxt
    r, got = calibrated(samples, goal)
    return r, got, samples
