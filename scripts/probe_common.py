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
