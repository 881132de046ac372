"""What one trial produces: a Measurement (per-bucket timings, correctness, failure reason, and
profiler metrics once profiled). Crosses process boundaries as JSON: worker -> tuner -> study
(user attributes) -> replay files, inspect and export."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.measure.stats import geomean

OK, FAILED = "ok", "failed"
# stages a trial can fail at: what the study stores as the reason's prefix


@dataclass
class BucketTiming:
    bucket: str
    median_us: float
    p10_us: float
    p90_us: float
    kv_bytes: int
    efficiency: float
    split: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Measurement:
    variant: dict[str, Any]
    key: str
    name: str
    label: str
    status: str                             # ok | failed
    stage: str = ""                         # where it failed: invalid, build, load, check, rejected, launch, crash, hang, not-recorded
    reason: str = ""
    timings: list[BucketTiming] = field(default_factory=list)
    max_rel_error: float = math.nan
    seconds: float = 0.0
    device: int = 0
    gpu: str = ""
    ncu: dict[str, Any] | None = None       # NcuMetrics of the profile shape, once profiled
    nsys_us: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def geomean_us(self) -> float:
        ts = [t.median_us for t in self.timings]
        g = geomean(ts) if ts and all(t > 0 for t in ts) else None
        return math.nan if g is None else g

    @property
    def l2_demand_hit(self) -> float | None:
        v = (self.ncu or {}).get("l2_demand_hit_rate")
        return v if isinstance(v, (int, float)) and v == v else None

    def timing(self, bucket: str) -> BucketTiming | None:
        return next((t for t in self.timings if t.bucket == bucket), None)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["geomean_us"] = self.geomean_us
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Measurement":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        known["timings"] = [BucketTiming(**t) for t in d.get("timings", [])]
        from workbench.errors import WorkbenchError
        from workbench.kernel.variant import Variant
        try:                # labels follow today's names (before 2026-11-21 `baseline` was our `simple`)
            known["label"] = Variant.from_dict(known["variant"]).label
        except (WorkbenchError, TypeError, KeyError):
            pass            # a variant this version cannot rebuild keeps its stored label
        return cls(**known)

    @classmethod
    def failure(cls, variant: Any, stage: str, reason: str, **kw: Any) -> "Measurement":
        return cls(variant=variant.to_dict(), key=variant.key, name=variant.name, label=variant.label,
                   status=FAILED, stage=stage, reason=reason[:2000], **kw)
