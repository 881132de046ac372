"""Summary statistics shared by tune, bench and the UI (one definition each)."""
from __future__ import annotations

import math
from typing import Iterable


def geomean(xs: Iterable[float | None]) -> float | None:
    """Geometric mean of the positive, finite values; None when there are none."""
    vals = [x for x in xs if x is not None and x == x and 0 < x < math.inf]
    return math.exp(sum(map(math.log, vals)) / len(vals)) if vals else None


def dominated(point: tuple[float, ...], others: Iterable[tuple[float, ...]]) -> bool:
    """True when another point is no worse on every axis and better on one (all axes minimised)."""
    return any(all(b <= a for a, b in zip(point, o)) and o != point for o in others)
