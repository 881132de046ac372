"""The records of an e2e run (JSON): per backend and grid point what was measured, and the run.

`E2eRun` is saved after every backend (and the runner rewrites its backend's file after every
point), so a run that stops is resumed from its JSON without measuring anything twice.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.measure.suite import shape_label

from .correctness import PointOutputs

KIND = "workbench-e2e"
REFERENCE = "FLASH_ATTN"
REPEAT = "#2"        # results key suffix of the reference's second run (`e2e --reference-twice`): FLASH_ATTN#2


def repeat_key(name: str) -> str:
    return name + REPEAT


@dataclass
class PointResult:
    batch: int
    context: int
    status: str = "ok"                      # ok | skipped | failed
    reason: str = ""
    prompt_len: int = 0
    max_tokens: int = 0
    tok_s: float | None = None              # decode tokens/s over the all-decoding window
    itl_mean_ms: float | None = None
    itl_p50_ms: float | None = None
    itl_p99_ms: float | None = None
    window_steps: int = 0
    window_tokens: int = 0
    generate_s: float | None = None          # wall time of the timed request set, prefill included
    self_ids_match: float | None = None      # greedy ids of the timed run = the correctness run's (same backend)
    clocks: dict[str, Any] | None = None     # measure.clocks.ClockStats over the decode window (NVML)
    outputs: PointOutputs | None = None

    @property
    def label(self) -> str:
        return shape_label(self.batch, self.context)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["outputs"] = self.outputs.to_dict() if self.outputs else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PointResult":
        d = dict(d)
        out = d.pop("outputs", None)
        r = cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})
        r.outputs = PointOutputs.from_dict(out) if out else None
        return r


@dataclass
class BackendResult:
    backend: str
    status: str = "pending"                  # pending | partial | ok | failed
    reason: str = ""
    points: list[PointResult] = field(default_factory=list)
    engine: dict[str, Any] = field(default_factory=dict)   # versions, GPU, KV capacity, chosen backend class
    started: str = ""
    finished: str = ""
    log: str = ""

    def point(self, batch: int, context: int) -> PointResult | None:
        return next((p for p in self.points if p.batch == batch and p.context == context), None)

    def done_labels(self) -> set[str]:
        """Points that need no new measurement (measured, or skipped by the engine's real KV size)."""
        return {p.label for p in self.points if p.status in ("ok", "skipped")}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["points"] = [p.to_dict() for p in self.points]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BackendResult":
        d = dict(d)
        pts = d.pop("points", [])
        r = cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})
        r.points = [PointResult.from_dict(p) for p in pts]
        return r

    def save(self, path: str | Path) -> None:
        _atomic_write(Path(path), self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "BackendResult":
        return cls.from_dict(read_json(Path(path), "backend result"))


@dataclass
class ShareResult:
    """Attention's share of a decode step for one backend at one grid point (an nsys capture)."""
    backend: str
    batch: int
    context: int
    status: str = "ok"                       # ok | failed
    reason: str = ""
    steps: int = 0                           # decode steps inside the captured window
    attention_us_per_step: float | None = None
    kv_write_us_per_step: float | None = None
    kernel_us_per_step: float | None = None  # all kernels
    a_kernels: float | None = None           # attention ÷ all kernel time
    a: float | None = None                   # attention ÷ the measured (unprofiled) step time
    attention_kernels: list[str] = field(default_factory=list)
    other_kernels: dict[str, list[float]] = field(default_factory=dict)   # name -> [launches, µs] per step

    @property
    def label(self) -> str:
        return shape_label(self.batch, self.context)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ShareResult":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass
class E2eRun:
    model: dict[str, Any]                    # ModelDir.to_dict()
    backends: list[str]
    settings: dict[str, Any]                 # EngineSettings.to_dict()
    grid: dict[str, Any]                     # GridPlan.to_dict()
    decode_steps: int
    package: dict[str, Any] = field(default_factory=dict)    # name, source, site dir, entry point
    tolerances: dict[str, Any] = field(default_factory=dict)
    bench: dict[str, Any] = field(default_factory=dict)      # path, peers used for k
    results: dict[str, BackendResult] = field(default_factory=dict)
    shares: list[ShareResult] = field(default_factory=list)
    # the ids floor taken from an earlier run (`e2e --floor-from`) where this one did not run the floor
    # backend: {"backend", "from", "created", "gpu", "points": {label: Agreement of it vs the reference}}
    floor: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    table: list[dict[str, Any]] = field(default_factory=list)   # compare.rows, derived: rewritten on save
    summary: dict[str, Any] = field(default_factory=dict)
    reference: str = REFERENCE
    created: str = ""
    updated: str = ""
    kind: str = KIND

    def identity(self) -> dict[str, Any]:
        """What must be equal for a saved run to be resumed (same model, settings, grid, steps, package)."""
        return {"model": self.model.get("model"), "settings": self.settings, "decode_steps": self.decode_steps,
                "grid": self.grid.get("requested"), "package": self.package.get("source", "")}

    def share(self, backend: str, batch: int, context: int) -> ShareResult | None:
        return next((s for s in self.shares if s.backend == backend and s.batch == batch and s.context == context),
                    None)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["results"] = {k: v.to_dict() for k, v in self.results.items()}
        d["shares"] = [s.to_dict() for s in self.shares]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "E2eRun":
        if d.get("kind") != KIND:
            raise WorkbenchError("not a workbench e2e file (kind != workbench-e2e)")
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        d["results"] = {k: BackendResult.from_dict(v) for k, v in d.get("results", {}).items()}
        d["shares"] = [ShareResult.from_dict(s) for s in d.get("shares", [])]
        return cls(**d)

    def save(self, path: str | Path) -> None:
        self.updated = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        _atomic_write(Path(path), self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "E2eRun":
        d = read_json(Path(path), "e2e")
        try:
            return cls.from_dict(d)
        except WorkbenchError as e:
            raise WorkbenchError(f"{path}: {e}") from None
        except (TypeError, KeyError, ValueError) as e:
            raise WorkbenchError(f"{path}: not a readable e2e run ({type(e).__name__}: {e}); move it away "
                                 "or start afresh") from None


def _atomic_write(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, path)


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from path; a .gz path is read through gzip (results/ keeps large runs gzipped)."""
    import gzip
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt") as f:
                d = json.load(f)
        else:
            d = json.loads(path.read_text())
    except (OSError, ValueError, EOFError) as e:
        raise WorkbenchError(f"{path}: not a readable {what} JSON ({e})") from None
    if not isinstance(d, dict):
        raise WorkbenchError(f"{path}: not a {what} (expected a JSON object)")
    return d
