"""Search spaces: YAML files of knob -> list of values, enumerated into Variants."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.config.paths import tuning_dir
from workbench.kernel.variant import Variant
from workbench.config.yamlio import load_yaml

TUNABLE = ("algorithm", "threads", "heads_per_cta", "partition", "prefetch_distance",
           "prefetch_target", "prefetch_op", "prefetch_hint", "k_load", "serial", "reduce", "vllm_math", "stages", "mma", "unified_ring", "fault")
SHAPE = ("head_size", "block_size", "dtype")
GROUP = "group"     # heads_per_cta value meaning "the whole GQA group"
# ... and the group padded to a power of two, one CTA per KV head with its last rows masked: at GQA 7
# (qwen2.5-7b) a CTA built for 8 heads ran 1.10x faster than one built for 7 (H200, 2026-11-29, perf-notes v12)
GROUP_POW2 = "group_pow2"


def heads_per_cta_values(values: Any, group: int | None) -> tuple[int, ...]:
    """A space's heads_per_cta list for one GQA group: 'group' -> the group, 'group_pow2' -> the group
    rounded up to a power of two, numbers above the group dropped. Without a group the tokens are skipped."""
    out = []
    for v in values:
        if v == GROUP:
            if group:
                out.append(group)
        elif v == GROUP_POW2:
            if group:
                out.append(1 << (group - 1).bit_length())
        elif group is None or int(v) <= group:
            out.append(int(v))
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class Space:
    name: str
    knobs: dict[str, tuple[Any, ...]]
    shape: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "knobs": {k: list(v) for k, v in self.knobs.items()},
                "shape": {k: list(v) for k, v in self.shape.items()}, "source": self.source}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Space":
        return cls(name=d["name"], knobs={k: tuple(v) for k, v in d["knobs"].items()},
                   shape={k: tuple(v) for k, v in d.get("shape", {}).items()}, source=d.get("source", ""))


@dataclass(frozen=True)
class Enumeration:
    valid: tuple[Variant, ...]
    invalid: tuple[tuple[Variant, tuple[str, ...]], ...]


def default_space_path() -> Path:
    return tuning_dir() / "spaces" / "default.yaml"


def _as_list(where: str, knob: str, value: Any) -> tuple[Any, ...]:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise WorkbenchError(f"{where}: knob {knob!r} has an empty list of values")
    return tuple(values)


def load_space(path: str | Path | None = None) -> Space:
    p = Path(path) if path else default_space_path()
    doc = load_yaml(p)
    if not isinstance(doc, dict):
        raise WorkbenchError(f"{p}: a space file is a mapping with 'knobs' (and optional 'shape')")
    extra = sorted(set(doc) - {"name", "description", "knobs", "shape"})
    if extra:
        raise WorkbenchError(f"{p}: unknown top-level key(s) {', '.join(extra)}; expected name, "
                             "description, knobs, shape")
    knobs_in = doc.get("knobs") or {}
    shape_in = doc.get("shape") or {}
    if not isinstance(knobs_in, dict) or not isinstance(shape_in, dict):
        raise WorkbenchError(f"{p}: 'knobs' and 'shape' must be mappings of knob -> list of values")
    knobs: dict[str, tuple[Any, ...]] = {}
    for k, v in knobs_in.items():
        if k not in TUNABLE:
            raise WorkbenchError(f"{p}: unknown knob {k!r}; tunable knobs: {', '.join(TUNABLE)}")
        knobs[k] = _as_list(str(p), k, v)
    shape: dict[str, tuple[Any, ...]] = {}
    for k, v in shape_in.items():
        if k not in SHAPE:
            raise WorkbenchError(f"{p}: unknown shape key {k!r}; shape keys: {', '.join(SHAPE)}")
        shape[k] = _as_list(str(p), k, v)
    space = Space(name=str(doc.get("name") or p.stem), knobs=knobs, shape=shape, source=str(p))
    # every single value must be a legal knob value: catch typos now, with the file named
    for k, values in {**knobs, **shape}.items():
        for v in values:
            if k == "heads_per_cta" and v in (GROUP, GROUP_POW2):
                continue
            try:
                Variant.from_dict({k: v} if k != "prefetch_distance" or v == 0 else
                                  {k: v, "prefetch_target": "kv"})
            except WorkbenchError as e:
                raise WorkbenchError(f"{p}: {e}") from None
    return space


def enumerate_space(space: Space, arch: str = "sm_90a", *, head_size: int | None = None,
                    block_size: int | None = None, dtype: str | None = None,
                    group: int | None = None) -> Enumeration:
    """All distinct variants of a space for one arch; explicit shape arguments override the file.

    `group` (GQA ratio) drops heads_per_cta values above it and resolves 'group' and 'group_pow2';
    without it, those entries are skipped.
    """
    shape_lists = {
        "head_size": (head_size,) if head_size else space.shape.get("head_size", (128,)),
        "block_size": (block_size,) if block_size else space.shape.get("block_size", (16,)),
        "dtype": (dtype,) if dtype else space.shape.get("dtype", ("bf16",)),
    }
    knob_lists = dict(space.knobs)
    if "heads_per_cta" in knob_lists:
        knob_lists["heads_per_cta"] = heads_per_cta_values(knob_lists["heads_per_cta"], group) or (1,)
    names = list(shape_lists) + list(knob_lists)
    seen: dict[str, Variant] = {}
    valid: list[Variant] = []
    invalid: list[tuple[Variant, tuple[str, ...]]] = []
    for combo in itertools.product(*(list(shape_lists.values()) + list(knob_lists.values()))):
        v = Variant.from_dict(dict(zip(names, combo)))
        if v.key in seen:
            continue          # e.g. prefetch off collapses target/op/hint
        seen[v.key] = v
        reasons = v.invalid_reasons(arch)
        if reasons:
            invalid.append((v, tuple(reasons)))
        else:
            valid.append(v)
    return Enumeration(valid=tuple(valid), invalid=tuple(invalid))


def stratified_sample(variants: list[Variant], fraction: float, min_per_value: int = 6) -> list[Variant]:
    """A deterministic sample of a space's variants in which every value of every knob appears at
    least `min_per_value` times (or as often as it exists), topped up to `fraction` of the whole by
    key order. CI compiles this; the GPU host compiles the whole space."""
    ordered = sorted(variants, key=lambda v: v.key)          # key = hash: a spread, stable order
    picked: dict[str, Variant] = {}
    seen: dict[tuple[str, Any], int] = {}
    for v in ordered:
        pairs = [(k, val) for k, val in v.to_dict().items()]
        if any(seen.get(p, 0) < min_per_value for p in pairs):
            picked[v.key] = v
            for p in pairs:
                seen[p] = seen.get(p, 0) + 1
    for v in ordered:
        if len(picked) >= fraction * len(variants):
            break
        picked.setdefault(v.key, v)
    return [v for v in ordered if v.key in picked]
