"""Decode throughput and inter-token latency from the arrival times of streamed tokens (pure math).

The runner streams a batch of B requests (one token per request per engine step) and stamps every
token with the host time its step's output arrived. A chunked prefill lets the first sequences
start decoding while later ones still prefill, and those sequences then finish first; the steady
state is the window in which all B decode together: from the last sequence's first token (t0) to
the first sequence's last token (t1). Every step inside it is a pure decode step of batch B, so

  decode tokens/s = tokens arriving in (t0, t1] ÷ (t1 − t0)
  mean ITL        = (t1 − t0) ÷ steps in the window (= B ÷ tokens/s)
  p50 / p99 ITL   = of the gaps between consecutive step arrivals inside the window

— what a client of the engine sees, host overhead and graph launches included.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence


@dataclass(frozen=True)
class DecodeWindow:
    t0: float
    t1: float
    steps: int
    tokens: int
    batch: int
    tok_s: float
    itl_mean_ms: float
    itl_p50_ms: float
    itl_p99_ms: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(xs: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); q in [0, 100]."""
    if not xs:
        raise ValueError("percentile of nothing")
    s = sorted(xs)
    k = (len(s) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def decode_window(token_times: Sequence[Sequence[float]]) -> DecodeWindow | None:
    """The all-sequences-decoding window of one streamed batch; None if there is none (< 2 steps)."""
    seqs = [list(t) for t in token_times]
    if not seqs or any(len(t) < 2 for t in seqs):
        return None
    t0 = max(t[0] for t in seqs)
    t1 = min(t[-1] for t in seqs)
    if t1 <= t0:
        return None
    tokens = sum(1 for t in seqs for x in t if t0 < x <= t1)
    arrivals = sorted({x for t in seqs for x in t if t0 <= x <= t1})
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    if not gaps:
        return None
    ms = [g * 1e3 for g in gaps]
    steps = tokens / len(seqs)              # one token per sequence per step
    return DecodeWindow(t0=t0, t1=t1, steps=round(steps), tokens=tokens, batch=len(seqs), tok_s=tokens / (t1 - t0),
                        itl_mean_ms=(t1 - t0) * 1e3 / steps, itl_p50_ms=percentile(ms, 50),
                        itl_p99_ms=percentile(ms, 99))
