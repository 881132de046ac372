"""Workload suites (tuning/suites/*.yaml): a batch x context grid whose points are the centres
of dispatch buckets, the shapes every trial is verified on, and the shape ncu profiles."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.config.paths import tuning_dir
from workbench.config.profiles import HeadShape
from workbench.measure.workload import WorkloadSpec
from workbench.config.yamlio import load_yaml


def shape_label(batch: int, context: int) -> str:
    """The one name of a uniform (batch, context) shape: bucket centres, bench rows, e2e points."""
    return f"b{batch}x{context}"


@dataclass(frozen=True)
class Bucket:
    """Batch x context cell of the dispatch table: [lo, hi) edges, and its centre shape."""
    batch: int
    context: int
    batch_lo: int
    batch_hi: int          # exclusive; 0 = unbounded
    context_lo: int
    context_hi: int

    @property
    def label(self) -> str:
        return shape_label(self.batch, self.context)

    def contains(self, num_seqs: int, max_seq_len: int) -> bool:
        return (self.batch_lo <= num_seqs and (not self.batch_hi or num_seqs < self.batch_hi)
                and self.context_lo <= max_seq_len and (not self.context_hi or max_seq_len < self.context_hi))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _edges(points: list[int]) -> list[tuple[int, int]]:
    """[lo, hi) per point, split at geometric midpoints; first lo 1, last hi unbounded (0)."""
    mids = [math.ceil(math.sqrt(a * b)) for a, b in zip(points, points[1:])]
    los = [1, *mids]
    his = [*mids, 0]
    return list(zip(los, his))


@dataclass(frozen=True)
class RaggedShape:
    """A ragged batch for `workbench bench` (not a dispatch bucket): `batch` lengths drawn
    log-uniformly from [lo, hi] (long-tailed: most short, a few long), the longest set to hi,
    seeded. What FA3's per-sequence scheduler is good at and one max_seq_len per launch is not."""
    batch: int
    lo: int
    hi: int
    seed: int = 1

    @property
    def label(self) -> str:
        return f"r{self.batch}x{self.lo}-{self.hi}"

    @property
    def context(self) -> int:
        return self.hi

    def lengths(self) -> tuple[int, ...]:
        import random
        rng = random.Random(self.seed)
        out = [int(round(math.exp(rng.uniform(math.log(self.lo), math.log(self.hi))))) for _ in range(self.batch)]
        out[0] = self.hi
        return tuple(max(self.lo, min(self.hi, n)) for n in out)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Suite:
    name: str
    batches: tuple[int, ...]
    contexts: tuple[int, ...]
    check: tuple[tuple[int, ...], ...]
    profile_batch: int
    profile_context: int
    max_kv_gb: float = 0.0
    source: str = ""
    ragged: tuple[RaggedShape, ...] = ()     # bench only: never dispatch buckets

    def buckets(self) -> list[Bucket]:
        out = []
        for (blo, bhi), b in zip(_edges(list(self.batches)), self.batches):
            for (clo, chi), c in zip(_edges(list(self.contexts)), self.contexts):
                out.append(Bucket(b, c, blo, bhi, clo, chi))
        return out

    def bucket_for(self, num_seqs: int, max_seq_len: int) -> Bucket:
        for b in self.buckets():
            if b.contains(num_seqs, max_seq_len):
                return b
        raise WorkbenchError(f"no bucket holds batch {num_seqs} x context {max_seq_len}")   # unreachable

    def specs(self, heads: HeadShape, dtype: str, block_size: int) -> list[tuple[Bucket, WorkloadSpec]]:
        """The timed shapes: one uniform batch per bucket centre (minus those above max_kv_gb)."""
        out = []
        for b in self.buckets():
            spec = self.uniform_spec(b.batch, b.context, heads, dtype, block_size)
            if self.fits(spec):
                out.append((b, spec))
        return out

    @staticmethod
    def uniform_spec(batch: int, context: int, heads: HeadShape, dtype: str, block_size: int) -> WorkloadSpec:
        """A uniform batch of this shape for these heads (the bucket centres; refine's in-bucket shapes)."""
        return WorkloadSpec.uniform(batch, context, num_heads=heads.num_heads, num_kv_heads=heads.num_kv_heads,
                                    head_size=heads.head_size, block_size=block_size, dtype=dtype)

    @staticmethod
    def ragged_spec(shape: RaggedShape, heads: HeadShape, dtype: str, block_size: int) -> WorkloadSpec:
        """A ragged batch of this shape's lengths for these heads (bench's ragged rows; refine's graph rows)."""
        return WorkloadSpec(seq_lens=shape.lengths(), num_heads=heads.num_heads, num_kv_heads=heads.num_kv_heads,
                            head_size=heads.head_size, block_size=block_size, dtype=dtype)

    def fits(self, spec: WorkloadSpec) -> bool:
        """Within the suite's max_kv_gb (shapes above it are not timed)."""
        return not self.max_kv_gb or spec.kv_bytes <= self.max_kv_gb * 1e9

    def bench_specs(self, heads: HeadShape, dtype: str, block_size: int) -> list[tuple[Any, WorkloadSpec]]:
        """What `workbench bench` times: the bucket centres, then the ragged batches (each shape
        with .label, .batch, .context)."""
        out: list[tuple[Any, WorkloadSpec]] = list(self.specs(heads, dtype, block_size))
        for r in self.ragged:
            spec = self.ragged_spec(r, heads, dtype, block_size)
            if self.fits(spec):
                out.append((r, spec))
        return out

    def skipped_buckets(self, heads: HeadShape, dtype: str, block_size: int) -> list[str]:
        kept = {b.label for b, _ in self.specs(heads, dtype, block_size)}
        return [b.label for b in self.buckets() if b.label not in kept]

    def check_specs(self, heads: HeadShape, dtype: str, block_size: int) -> list[WorkloadSpec]:
        return [WorkloadSpec(seq_lens=lens, num_heads=heads.num_heads, num_kv_heads=heads.num_kv_heads,
                             head_size=heads.head_size, block_size=block_size, dtype=dtype, seed=11 + i)
                for i, lens in enumerate(self.check)]

    def profile_spec(self, heads: HeadShape, dtype: str, block_size: int) -> WorkloadSpec:
        return WorkloadSpec.uniform(self.profile_batch, self.profile_context, num_heads=heads.num_heads,
                                    num_kv_heads=heads.num_kv_heads, head_size=heads.head_size,
                                    block_size=block_size, dtype=dtype)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "batches": list(self.batches), "contexts": list(self.contexts),
                "check": [list(c) for c in self.check],
                "profile": {"batch": self.profile_batch, "context": self.profile_context},
                "max_kv_gb": self.max_kv_gb, "source": self.source,
                **({"ragged": [r.to_dict() for r in self.ragged]} if self.ragged else {})}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Suite":
        return cls(name=d["name"], batches=tuple(d["batches"]), contexts=tuple(d["contexts"]),
                   check=tuple(tuple(c) for c in d["check"]), profile_batch=d["profile"]["batch"],
                   profile_context=d["profile"]["context"], max_kv_gb=d.get("max_kv_gb", 0.0),
                   source=d.get("source", ""), ragged=tuple(RaggedShape(**r) for r in d.get("ragged") or ()))


def known_suites() -> list[str]:
    return sorted(p.stem for p in (tuning_dir() / "suites").glob("*.yaml"))


def load_suite(name_or_path: str = "default") -> Suite:
    p = Path(name_or_path)
    if not p.suffix:
        p = tuning_dir() / "suites" / f"{name_or_path}.yaml"
        if not p.exists():
            raise WorkbenchError(f"unknown suite {name_or_path!r}; known: {', '.join(known_suites())} "
                                 "(or give a path to a suite YAML)")
    doc = load_yaml(p)
    if not isinstance(doc, dict):
        raise WorkbenchError(f"{p}: a suite is a mapping with batches, contexts, check, profile")
    extra = sorted(set(doc) - {"name", "description", "batches", "contexts", "check", "profile", "max_kv_gb",
                               "ragged"})
    if extra:
        raise WorkbenchError(f"{p}: unknown key(s) {', '.join(extra)}; expected name, batches, contexts, "
                             "check, profile, max_kv_gb, ragged")

    def ints(key: str) -> tuple[int, ...]:
        v = doc.get(key)
        if not isinstance(v, list) or not v or not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v):
            raise WorkbenchError(f"{p}: {key!r} must be a non-empty list of positive integers")
        if list(v) != sorted(set(v)):
            raise WorkbenchError(f"{p}: {key!r} must be increasing without repeats")
        return tuple(v)

    batches, contexts = ints("batches"), ints("contexts")
    checks = []
    for i, c in enumerate(doc.get("check") or []):
        lens = c.get("seq_lens") if isinstance(c, dict) else None
        if not isinstance(lens, list) or not lens or not all(isinstance(x, int) and x > 0 for x in lens):
            raise WorkbenchError(f"{p}: check[{i}] must be {{seq_lens: [positive ints]}}")
        checks.append(tuple(lens))
    if not checks:
        raise WorkbenchError(f"{p}: 'check' needs at least one shape (every trial is verified on it)")
    prof = doc.get("profile") or {"batch": batches[0], "context": contexts[0]}
    if not isinstance(prof, dict) or not all(isinstance(prof.get(k), int) and prof[k] > 0 for k in ("batch", "context")):
        raise WorkbenchError(f"{p}: 'profile' must be {{batch: N, context: N}}")
    mk = doc.get("max_kv_gb", 0) or 0
    if not isinstance(mk, (int, float)) or mk < 0:
        raise WorkbenchError(f"{p}: max_kv_gb must be a non-negative number")
    ragged = []
    for i, r in enumerate(doc.get("ragged") or []):
        ok = isinstance(r, dict) and set(r) <= {"batch", "lo", "hi", "seed"} and all(
            isinstance(r.get(k), int) and not isinstance(r.get(k), bool) and r[k] > 0 for k in ("batch", "lo", "hi"))
        if not ok or not r["lo"] <= r["hi"] or not isinstance(r.get("seed", 1), int):
            raise WorkbenchError(f"{p}: ragged[{i}] must be {{batch: N, lo: TOKENS, hi: TOKENS >= lo, seed: N}}")
        ragged.append(RaggedShape(r["batch"], r["lo"], r["hi"], r.get("seed", 1)))
    return Suite(name=str(doc.get("name") or p.stem), batches=batches, contexts=contexts, check=tuple(checks),
                 profile_batch=prof["batch"], profile_context=prof["context"], max_kv_gb=float(mk), source=str(p),
                 ragged=tuple(ragged))
