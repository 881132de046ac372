"""What the kernel alone predicts end to end: Amdahl over attention's share of a decode step.

    predicted ratio = 1 / ((1 − a) + a / k)

a = attention's share of a FLASH_ATTN decode step at the grid point (attention_share.py), k = the
kernel ratio t(ref) ÷ t(ours) at the same batch × context from a `workbench bench` JSON (the
format of workbench/bench.py's BenchRun.to_dict: `results` rows with peer, batch, context,
median_us; `heads`, `dtype`, `block_size` of the run). `ours` is the bench peer that runs the
exported dispatch table: "tuned-graph" where the bench timed it (the table launched as the
backend's CUDA graphs launch it: bounded at max_model_len, per-sequence split), else "tuned" (a
per-shape launch); `ref` the kernel FLASH_ATTN runs ("fa3"). Ragged bench rows are left out.

A bench timed with `--fused-write` (each row attention plus the step's KV-cache write as its backend
runs it: FA3 after a write kernel, ours writing in the launch, as the exported backend does since
session 28) gives k of attention + write; a is then the share of both in the FLASH_ATTN step
(attention and its KV-write kernel, from the same capture: KernelRatios.includes_write).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.measure.suite import shape_label

RATIO_TOLERANCE = 0.02        # measured within ±2% of predicted


@dataclass
class KernelRatios:
    path: str
    ours: str
    ref: str
    ratios: dict[str, float] = field(default_factory=dict)     # "b8x4096" -> k
    gpu: str = ""
    heads: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    includes_write: bool = False     # the bench ran --fused-write: k is of attention + the step's KV write

    def k(self, batch: int, context: int) -> float | None:
        return self.ratios.get(shape_label(batch, context))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def predicted_ratio(a: float, k: float) -> float:
    """End-to-end speed ratio when a share a of the step runs k× faster (k > 1: faster)."""
    if not 0.0 <= a <= 1.0:
        raise ValueError(f"attention share a must be in [0, 1], got {a}")
    if k <= 0:
        raise ValueError(f"kernel ratio k must be > 0, got {k}")
    return 1.0 / ((1.0 - a) + a / k)


def within(measured: float, predicted: float, tol: float = RATIO_TOLERANCE) -> bool:
    return abs(measured / predicted - 1.0) <= tol


def load_kernel_ratios(path: str | Path, *, ours: str = "tuned", ref: str = "fa3",
                       heads: dict[str, int] | None = None, dtype: str | None = None,
                       block_size: int | None = None) -> KernelRatios:
    """k per (batch, context) from a bench JSON; checks it measured the same head shape / dtype / block."""
    from .results import read_json
    p = Path(path)
    d = read_json(p, "bench")                  # .json or .json.gz (results/ keeps them gzipped)
    if d.get("kind") != "workbench-bench":
        raise WorkbenchError(f"{p}: not a workbench bench file (kind != workbench-bench)")
    peers = d.get("peers") or sorted({r.get("peer") for r in d.get("results", [])})
    if ours == "auto":      # what the exported backend's graphs launch, where the bench timed it
        ours = "tuned-graph" if "tuned-graph" in peers else "tuned"
    for who, name in (("--bench-ours", ours), ("--bench-ref", ref)):
        if name not in peers:
            raise WorkbenchError(f"{p}: bench peer {name!r} ({who}) was not measured there; peers: "
                                 f"{', '.join(map(str, peers))} (run `workbench bench --peers {ours},{ref}`)")
    h = d.get("heads") or {}
    if heads:
        diff = {k: (h.get(k), v) for k, v in heads.items() if h.get(k) != v}
        if diff:
            raise WorkbenchError(f"{p}: the bench measured other heads ({', '.join(f'{k} {a} != {b}' for k, (a, b) in diff.items())}): "
                                 "bench the model e2e runs")
    if dtype and d.get("dtype") not in (None, dtype):
        raise WorkbenchError(f"{p}: the bench measured {d.get('dtype')}, e2e runs {dtype}")
    if block_size and d.get("block_size") not in (None, block_size):
        raise WorkbenchError(f"{p}: the bench measured block {d.get('block_size')}, e2e runs block {block_size}")
    t: dict[tuple[str, int, int], float] = {}
    for r in d.get("results", []):
        # uniform shapes only (a ragged batch r8x200-16384 has batch 8 and context 16384 too)
        uniform = shape_label(int(r["batch"]), int(r["context"]))
        if r.get("median_us") and r.get("shape", uniform) == uniform:
            t[(r["peer"], int(r["batch"]), int(r["context"]))] = float(r["median_us"])
    ratios = {shape_label(b, c): t[(ref, b, c)] / t[(ours, b, c)]
              for (peer, b, c) in t if peer == ours and (ref, b, c) in t}
    from workbench.bench.run import FORM_NOTES
    return KernelRatios(path=str(p), ours=ours, ref=ref, ratios=ratios, gpu=(d.get("gpu") or {}).get("name", ""),
                        heads=h, created=d.get("created", ""),
                        includes_write=FORM_NOTES["fused-write"] in (d.get("notes") or []))
