"""FA3 -- what vLLM decodes with on Hopper today -- timed beside a study, so `tune`'s tables and the
exported package's README quote × FA3 next to × baseline (issue 12). Timed once per study, in the
worker that times the trials (same GPU, the suite's buckets, ≥ 4× L2 of rotating KV copies,
CUDA-graph replays through measure.timing.time_calls, as `workbench bench` times it), and kept in
the study's user attributes: export reads it without measuring again. Where FA3 does not load
on the host, the study keeps the one-line reason and the tables show "—" with it."""
from __future__ import annotations

import math
import statistics
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from workbench.measure.stats import geomean
from workbench.tune.trial import BucketTiming, Measurement

FA3 = "fa3"
ATTR = "peers"                        # study user attribute: {peer: PeerTiming dict}
ABSENT = "—"                          # a table cell where the peer was not timed
OK, UNAVAILABLE, FAILED = "ok", "unavailable", "failed"


@dataclass
class PeerTiming:
    peer: str
    status: str                       # ok | unavailable (does not load here, or not this shape) | failed
    reason: str = ""                  # one line, when not ok
    timings: list[BucketTiming] = field(default_factory=list)
    max_rel_error: float = math.nan   # against the fp32 reference, where checked
    note: str = ""                    # how it was called (version, scheduler metadata...)
    gpu: str = ""

    @property
    def ok(self) -> bool:
        return self.status == OK and bool(self.timings)

    @property
    def geomean_us(self) -> float:
        g = geomean([t.median_us for t in self.timings]) if self.timings else None
        return math.nan if g is None else g

    def timing(self, bucket: str) -> BucketTiming | None:
        return next((t for t in self.timings if t.bucket == bucket), None)

    def speedup(self, m: Measurement) -> float | None:
        """How many times faster than this peer `m` is: the geomean over the buckets both have of
        peer µs ÷ our µs (the × baseline of the tables, against this peer)."""
        r = [p.median_us / t.median_us for t in m.timings
             if (p := self.timing(t.bucket)) and p.median_us > 0 and t.median_us > 0]
        return geomean(r) if r else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PeerTiming":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        known["timings"] = [BucketTiming(**t) for t in d.get("timings", [])]
        return cls(**known)


def why_absent(p: PeerTiming | None, peer: str = FA3) -> str:
    """The one line a table shows under its "—" column."""
    if p is None:
        return f"{peer.upper()} was not timed with this study (made before it was, or by `workbench worker`)"
    return f"{peer.upper()} not timed: {p.reason or p.status}"


def time_peer(peer: str, buckets: list[tuple[str, Any]], info: Any, *, ceiling_gbps: float, launches: int,
              min_bytes: int, build: Callable[..., Any] | None = None,
              timer: Callable[..., tuple[list[float], str]] | None = None) -> PeerTiming:
    """Time `peer` on each (bucket label, WorkloadSpec). `build` (default: the bench's peer builder,
    bench.peers.PEERS[peer]) and `timer` (default: measure.timing.time_calls) are injectable so the
    CPU tests drive this without a GPU. A peer that cannot load is UNAVAILABLE with its reason;
    one that breaks on a bucket is FAILED there (the buckets before it are kept)."""
    from workbench.bench.peers.common import PeerUnavailable, one_line
    if build is None:
        from workbench.bench.peers import PEERS
        build = PEERS[peer]
    if timer is None:
        from workbench.measure.timing import time_calls
        timer = time_calls
    from workbench.bench.run import CHECK_MAX_BYTES
    out = PeerTiming(peer=peer, status=OK, gpu=getattr(info, "name", ""))
    errs = []
    for label, spec in buckets:
        try:
            calls, note, err = build(spec, min_bytes, check=spec.kv_bytes <= CHECK_MAX_BYTES)
            samples, method = timer(calls, info, launches=launches, name=f"{peer} :: {label}")
            del calls
        except PeerUnavailable as e:
            out.status, out.reason = UNAVAILABLE, str(e).splitlines()[0][:300] if str(e) else "unavailable"
            return out
        except Exception as e:         # a peer that breaks must not end the tune
            out.status, out.reason = FAILED, f"{label}: {one_line(e)}"
            return out
        med = statistics.median(samples)
        q = statistics.quantiles(samples, n=10) if len(samples) > 1 else [med, med]
        gbps = spec.kv_bytes / (med * 1e-6) / 1e9 if med > 0 else 0.0
        out.timings.append(BucketTiming(bucket=label, median_us=med, p10_us=q[0], p90_us=q[-1], kv_bytes=spec.kv_bytes,
                                        efficiency=gbps / ceiling_gbps if ceiling_gbps else 0.0, split=False))
        out.note = f"{note.rsplit(', ', 1)[0]}; {method}" if note else method
        if err == err:
            errs.append(err)
    out.max_rel_error = max(errs) if errs else math.nan
    return out


def stored(study: Any) -> dict[str, PeerTiming]:
    return {k: PeerTiming.from_dict(d) for k, d in (study.user_attrs.get(ATTR) or {}).items()}


def measure_fa3(h: Any, backend: Any, lock: threading.Lock, observe: Callable[[dict[str, Any]], None],
                device: int) -> list[str]:
    """FA3 on the study's buckets once per study (tried again by a later `tune` while it has not
    run: the host, or its packages, may differ). Returns notes."""
    with lock:
        have = stored(h.study)
    p = have.get(FA3)
    if p is None or not p.ok:
        if not hasattr(backend, "measure_peer"):
            return []
        observe({"type": "stage", "device": device, "stage": "FA3", "text": "vLLM's FA3 on the suite's buckets"})
        p = backend.measure_peer(FA3)
        with lock:
            have = {k: v.to_dict() for k, v in stored(h.study).items()}
            have[FA3] = p.to_dict()
            h.study.set_user_attr(ATTR, have)
    observe({"type": "peers", "peers": {FA3: p.to_dict()}})
    return [] if p.ok else [why_absent(p)]
