"""What the probe scripts share: variants from `knob=value,...;knob=value,...` text, built and loaded."""
from __future__ import annotations

from typing import Any, Callable


def load_knobs(knob_text: str, head_size: int, arch: str, form: Callable[[Any], Any] = lambda v: v) -> list[Any]:
    """One loaded kernel per `;`-separated knob set (form: e.g. Variant.scheduling); a build error ends
    the probe with every failing variant's name and the tail of its log."""
    from workbench.kernel.build import build_many
    from workbench.kernel.launch import load
    from workbench.kernel.variant import Variant, parse_knobs

    vs = [form(Variant.from_dict({**parse_knobs(t), "head_size": head_size})) for t in knob_text.split(";")]
    builds = build_many(vs, arch)
    bad = [b for b in builds if not b.ok]
    if bad:
        raise SystemExit(f"build failed: {[(b.variant.name, (b.error or '')[-400:]) for b in bad]}")
    return [load(b, 0) for b in builds]


def scheduled_form(on: bool) -> Callable[[Any], Any]:
    """The `form` for load_knobs: with `on`, each variant's scheduled build, and Variant.schedules forced
    true in this process, so every per-sequence launch runs wb_decode_sched on its plan (probe_chain.py and
    probe_bound.py SCHED=1: the scheduled kernel beside the plain grid on the same batch)."""
    if not on:
        return lambda v: v
    import workbench.kernel.variant as vm
    vm.Variant.schedules = lambda self, *a, **kw: True      # type: ignore[method-assign]
    return lambda v: v.scheduling()


def capped(k: Any, max_parts: int) -> Any:
    """The loaded kernel whose step plan gives a sequence at most max_parts partitions (1: the
    scheduled kernel on whole sequences; env PLAN_MAX_PARTS of probe_ragged.py and probe_ncu.py)."""
    import copy
    c = copy.copy(k)
    c.plan = lambda ws, lens, nh, nkv, L: type(k).plan(c, ws, lens, nh, nkv, L, max_parts=max_parts)
    return c
