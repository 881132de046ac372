"""The batch × context grid of an e2e run, and which points fit the engine.

A point (batch B, context L) decodes B sequences whose KV length during the measured decode steps
is centred on L: the prompt holds L − N/2 tokens and N decode steps follow (plus the steps a
chunked prefill staggers the sequences by, see `max_tokens`). A point is skipped when its
sequences do not fit the KV cache (B × blocks of (prompt + generated) × block size tokens), or a
sequence would pass the model's max_position_embeddings; the plan says which and why.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.errors import WorkbenchError
from workbench.measure.suite import shape_label

DEFAULT_BATCHES = (1, 8, 32, 64)
DEFAULT_CONTEXTS = (1024, 4096, 16384, 32768)


@dataclass(frozen=True, order=True)
class GridPoint:
    batch: int
    context: int

    @property
    def label(self) -> str:
        return shape_label(self.batch, self.context)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GridPoint":
        return cls(batch=int(d["batch"]), context=int(d["context"]))


@dataclass(frozen=True)
class SkippedPoint:
    batch: int
    context: int
    reason: str

    @property
    def label(self) -> str:
        return shape_label(self.batch, self.context)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GridPlan:
    points: list[GridPoint]
    skipped: list[SkippedPoint] = field(default_factory=list)
    kv_capacity_tokens: int | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"points": [p.to_dict() for p in self.points], "skipped": [s.to_dict() for s in self.skipped],
                "kv_capacity_tokens": self.kv_capacity_tokens, "note": self.note}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GridPlan":
        return cls(points=[GridPoint.from_dict(p) for p in d["points"]],
                   skipped=[SkippedPoint(**s) for s in d.get("skipped", [])],
                   kv_capacity_tokens=d.get("kv_capacity_tokens"), note=d.get("note", ""))


def parse_sizes(text: str | list[int] | tuple[int, ...], what: str) -> list[int]:
    """'1,8,32' or '1k,4k,32k' (k = 1024) -> sorted distinct positive ints."""
    if isinstance(text, (list, tuple)):
        items = [str(x) for x in text]
    else:
        items = [x for x in re.split(r"[,\s]+", text.strip()) if x]
    out = []
    for it in items:
        m = re.fullmatch(r"(\d+)([kK]?)", it)
        if not m or int(m.group(1)) < 1:
            raise WorkbenchError(f"{what}: {it!r} is not a positive size (write e.g. 1,8,32 or 1k,4k,32k)")
        out.append(int(m.group(1)) * (1024 if m.group(2) else 1))
    if not out:
        raise WorkbenchError(f"{what}: give at least one size")
    return sorted(set(out))


def prompt_len(context: int, decode_steps: int) -> int:
    """Prompt tokens of a point: the measured decode steps then run at KV lengths centred on context."""
    return max(1, context - decode_steps // 2)


def prefill_stagger_steps(batch: int, prompt: int, max_num_batched_tokens: int) -> int:
    """Steps between the first and the last sequence of a batch leaving a chunked prefill (+2 margin)."""
    return math.ceil(batch * prompt / max(1, max_num_batched_tokens)) + 2


def max_tokens(point: GridPoint, decode_steps: int, max_num_batched_tokens: int) -> int:
    """Tokens to generate so that all B sequences decode together for at least decode_steps steps."""
    return decode_steps + prefill_stagger_steps(point.batch, prompt_len(point.context, decode_steps),
                                                max_num_batched_tokens)


def seq_len(point: GridPoint, decode_steps: int, max_num_batched_tokens: int) -> int:
    return prompt_len(point.context, decode_steps) + max_tokens(point, decode_steps, max_num_batched_tokens)


def tokens_needed(point: GridPoint, decode_steps: int, block_size: int, max_num_batched_tokens: int) -> int:
    """KV cache tokens the point occupies at its end (whole blocks per sequence)."""
    per_seq = math.ceil(seq_len(point, decode_steps, max_num_batched_tokens) / block_size) * block_size
    return point.batch * per_seq


def plan_grid(batches: list[int], contexts: list[int], *, decode_steps: int, block_size: int,
              kv_capacity_tokens: int | None, max_position_embeddings: int, max_num_batched_tokens: int,
              kv_bytes_per_token: int = 0, max_num_seqs: int | None = None) -> GridPlan:
    """Points that fit, and the others with the reason. kv_capacity_tokens None: not checked (yet)."""
    if decode_steps < 2:
        raise WorkbenchError(f"decode steps must be >= 2 (got {decode_steps})")
    points, skipped = [], []
    for b in sorted(set(batches)):
        for c in sorted(set(contexts)):
            p = GridPoint(b, c)
            need_len = seq_len(p, decode_steps, max_num_batched_tokens)
            need = tokens_needed(p, decode_steps, block_size, max_num_batched_tokens)
            if decode_steps // 2 >= c:
                skipped.append(SkippedPoint(b, c, f"context {c} is not longer than half the {decode_steps} decode "
                                                  "steps: lower --steps"))
            elif need_len + 1 > max_position_embeddings:
                skipped.append(SkippedPoint(b, c, f"a sequence reaches {need_len} tokens > max_position_embeddings "
                                                  f"{max_position_embeddings} of the model"))
            elif max_num_seqs is not None and b > max_num_seqs:
                skipped.append(SkippedPoint(b, c, f"batch {b} > max_num_seqs {max_num_seqs}"))
            elif kv_capacity_tokens is not None and need > kv_capacity_tokens:
                gb = f" ({need * kv_bytes_per_token / 1e9:.1f} GB at {kv_bytes_per_token} B/token)" \
                    if kv_bytes_per_token else ""
                skipped.append(SkippedPoint(b, c, f"needs {need} KV tokens{gb}, the KV cache holds "
                                                  f"{kv_capacity_tokens}"))
            else:
                points.append(p)
    return GridPlan(points=points, skipped=skipped, kv_capacity_tokens=kv_capacity_tokens)


def estimate_kv_capacity_tokens(total_bytes: int, gpu_memory_utilization: float, weight_bytes: int,
                                kv_bytes_per_token: int, reserve_bytes: int = 6 << 30) -> int:
    """What vLLM will give the KV cache, roughly: the utilisation share of the GPU minus weights and a
    reserve for activations and CUDA graphs (vLLM profiles the real figure; the runner re-checks)."""
    free = int(total_bytes * gpu_memory_utilization) - weight_bytes - reserve_bytes
    return max(0, free // max(1, kv_bytes_per_token))


def engine_limits(points: list[GridPoint], decode_steps: int, max_num_batched_tokens: int,
                  block_size: int) -> tuple[int, int]:
    """(max_model_len, max_num_seqs) that every point of the grid needs: one engine serves them all."""
    if not points:
        raise WorkbenchError("no grid point fits: lower the batch sizes / contexts or raise "
                             "--gpu-memory-utilization")
    longest = max(seq_len(p, decode_steps, max_num_batched_tokens) for p in points) + 1
    return math.ceil(longest / block_size) * block_size, max(p.batch for p in points)
