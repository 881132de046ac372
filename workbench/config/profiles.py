"""GPU and model profiles (profiles/gpus/*.yaml, profiles/models/*.yaml) and the head shape a
model presents to one GPU under tensor parallelism."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.config.paths import profiles_dir
from workbench.kernel.variant import HEAD_SIZES, parse_arch
from workbench.config.yamlio import load_yaml

PREFETCH_KINDS = ("bulk", "line", "none")


@dataclass(frozen=True)
class GpuProfile:
    name: str
    marketing_name: str
    match: tuple[str, ...]
    arch: str
    sms: int
    l2_mb: float
    memory_gb: float
    hbm_gbps: float
    prefetch: str
    source: str = ""
    ceiling_gbps: float = 0.0       # measured read ceiling of the real GPU, when known (emulation aims at it)

    def matches(self, device_name: str) -> bool:
        return any(re.search(p, device_name, re.IGNORECASE) for p in self.match)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["match"] = list(self.match)
        return d

    def describe(self) -> str:
        """The target in one line: the spec numbers a result is read against."""
        return (f"{self.name}: {self.marketing_name}, {self.sms} SMs, {self.l2_mb:g} MB L2, "
                f"{self.memory_gb:g} GB HBM at {self.hbm_gbps:g} GB/s (spec)")

    def ceiling_note(self, measured_gbps: float) -> str:
        """The measured read ceiling against the spec bandwidth (efficiency uses the measured one)."""
        return (f"read ceiling {measured_gbps:.0f} GB/s measured = {measured_gbps / self.hbm_gbps:.0%} of "
                f"the {self.marketing_name}'s spec {self.hbm_gbps:g} GB/s")


@dataclass(frozen=True)
class ModelProfile:
    name: str
    num_heads: int
    num_kv_heads: int
    head_size: int
    hf_id: str = ""
    layers: int = 0
    tp: tuple[int, ...] = (1,)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tp"] = list(self.tp)
        return d


@dataclass(frozen=True)
class HeadShape:
    """What one GPU sees of a model at a tensor-parallel degree."""
    model: str
    tp: int
    num_heads: int
    num_kv_heads: int
    head_size: int

    @property
    def group(self) -> int:
        return self.num_heads // self.num_kv_heads

    @property
    def label(self) -> str:
        return f"{self.model} tp{self.tp} ({self.num_heads}/{self.num_kv_heads} heads, d{self.head_size})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _dir(kind: str) -> Path:
    return profiles_dir() / kind


def known(kind: str) -> list[str]:
    """Names of the gpus / models profiles shipped."""
    return sorted(p.stem for p in _dir(kind).glob("*.yaml"))


def _load(kind: str, name: str) -> tuple[dict[str, Any], Path]:
    p = Path(name) if name.endswith((".yaml", ".yml")) else _dir(kind) / f"{name}.yaml"
    if not p.exists():
        what = "GPU" if kind == "gpus" else "model"
        raise WorkbenchError(f"unknown {what} {name!r}; known: {', '.join(known(kind))} "
                             f"(or add {_dir(kind) / (name + '.yaml')})")
    doc = load_yaml(p)
    if not isinstance(doc, dict):
        raise WorkbenchError(f"{p}: a profile is a mapping of fields")
    return doc, p


def _fields(p: Path, doc: dict[str, Any], required: dict[str, type], optional: dict[str, type]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in doc:
        if k not in required and k not in optional:
            raise WorkbenchError(f"{p}: unknown field {k!r}; fields: {', '.join([*required, *optional])}")
    for k, t in {**required, **optional}.items():
        if k not in doc:
            if k in required:
                raise WorkbenchError(f"{p}: missing field {k!r}")
            continue
        v = doc[k]
        if t is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if t is tuple:
            v = tuple(v) if isinstance(v, list) else (v,)
        elif not isinstance(v, t) or isinstance(v, bool):
            raise WorkbenchError(f"{p}: field {k!r} should be {t.__name__}, got {v!r}")
        out[k] = v
    return out


def load_gpu(name: str) -> GpuProfile:
    doc, p = _load("gpus", name)
    f = _fields(p, doc, {"name": str, "arch": str, "match": tuple, "hbm_gbps": float},
                {"marketing_name": str, "sms": int, "l2_mb": float, "memory_gb": float, "prefetch": str,
                 "ceiling_gbps": float})
    try:
        parse_arch(f["arch"])
    except WorkbenchError as e:
        raise WorkbenchError(f"{p}: {e}") from None
    for pat in f["match"]:
        try:
            re.compile(str(pat))
        except re.error as e:
            raise WorkbenchError(f"{p}: match pattern {pat!r} is not a valid regex ({e})") from None
    pf = f.get("prefetch", "bulk" if parse_arch(f["arch"]) >= 90 else "line")
    if pf not in PREFETCH_KINDS:
        raise WorkbenchError(f"{p}: prefetch must be one of {PREFETCH_KINDS}, got {pf!r}")
    return GpuProfile(name=f["name"], marketing_name=f.get("marketing_name", f["name"]),
                      match=tuple(str(x) for x in f["match"]), arch=f["arch"], sms=f.get("sms", 0),
                      l2_mb=f.get("l2_mb", 0.0), memory_gb=f.get("memory_gb", 0.0), hbm_gbps=f["hbm_gbps"],
                      prefetch=pf, source=str(p), ceiling_gbps=f.get("ceiling_gbps", 0.0))


def load_model(name: str) -> ModelProfile:
    doc, p = _load("models", name)
    f = _fields(p, doc, {"name": str, "num_heads": int, "num_kv_heads": int, "head_size": int},
                {"hf_id": str, "layers": int, "tp": tuple})
    if f["num_heads"] < 1 or f["num_kv_heads"] < 1 or f["num_heads"] % f["num_kv_heads"]:
        raise WorkbenchError(f"{p}: num_heads {f['num_heads']} must be a positive multiple of "
                             f"num_kv_heads {f['num_kv_heads']}")
    return ModelProfile(name=f["name"], num_heads=f["num_heads"], num_kv_heads=f["num_kv_heads"],
                        head_size=f["head_size"], hf_id=f.get("hf_id", ""), layers=f.get("layers", 0),
                        tp=tuple(int(x) for x in f.get("tp", (1,))), source=str(p))


def head_shape(model: ModelProfile, tp: int = 1) -> HeadShape:
    """Heads per GPU at tensor-parallel degree `tp`; KV heads are replicated past their count."""
    if tp < 1:
        raise WorkbenchError(f"--tp must be >= 1 (got {tp})")
    if model.num_heads % tp:
        raise WorkbenchError(f"{model.name}: {model.num_heads} query heads do not split over --tp {tp}; "
                             f"use one of {', '.join(str(t) for t in model.tp)}")
    kv = model.num_kv_heads
    if kv >= tp:
        if kv % tp:
            raise WorkbenchError(f"{model.name}: {kv} KV heads do not split over --tp {tp}")
        kv //= tp
    elif tp % kv:
        raise WorkbenchError(f"{model.name}: --tp {tp} is not a multiple of its {kv} KV heads")
    else:
        kv = 1
    if model.head_size not in HEAD_SIZES:
        raise WorkbenchError(f"{model.name}: head size {model.head_size} is not served by the kernel family "
                             f"(head sizes: {', '.join(map(str, HEAD_SIZES))})")
    return HeadShape(model=model.name, tp=tp, num_heads=model.num_heads // tp, num_kv_heads=kv,
                     head_size=model.head_size)


def heads_from_text(text: str) -> HeadShape:
    """A probe's heads: "model[:tp]" (a profile, e.g. llama-3.1-70b:8) or "Q/KV[/D]" (bare head counts,
    head size D (128), e.g. 16/4: to tell a layout effect from a group-size one)."""
    if "/" in text:
        try:
            q, kv, *d = (int(x) for x in text.split("/"))
        except ValueError:
            raise WorkbenchError(f"heads {text!r}: use Q/KV or Q/KV/D (integers), e.g. 16/4") from None
        d = d[0] if d else 128
        if len(text.split("/")) > 3 or q < 1 or kv < 1 or q % kv or d not in HEAD_SIZES:
            raise WorkbenchError(f"heads {text!r}: Q a multiple of KV, D one of {', '.join(map(str, HEAD_SIZES))}")
        return HeadShape(model=f"heads-{q}-{kv}-d{d}", tp=1, num_heads=q, num_kv_heads=kv, head_size=d)
    model, _, tp = text.partition(":")
    try:
        t = int(tp or 1)
    except ValueError:
        raise WorkbenchError(f"heads {text!r}: the tensor-parallel degree after ':' is an integer") from None
    return head_shape(load_model(model), t)


def detect_gpu(device_name: str) -> GpuProfile | None:
    for n in known("gpus"):
        g = load_gpu(n)
        if g.matches(device_name):
            return g
    return None


def resolve_gpu(requested: str, device_name: str | None, allow_mismatch: bool = False) -> tuple[GpuProfile, str]:
    """--gpu NAME|auto against the attached device -> (profile, note). Mismatch: error unless allowed."""
    if requested == "auto":
        if device_name is None:
            raise WorkbenchError("--gpu auto needs a visible CUDA device; name the GPU with --gpu NAME")
        g = detect_gpu(device_name)
        if g is None:
            raise WorkbenchError(f"no profile recognises {device_name!r}; known GPUs: {', '.join(known('gpus'))} "
                                 f"(add profiles/gpus/<name>.yaml with a `match` regex)")
        return g, f"detected {g.name} ({device_name})"
    g = load_gpu(requested)
    if device_name is None or g.matches(device_name):
        return g, ""
    if not allow_mismatch:
        actual = detect_gpu(device_name)
        raise WorkbenchError(f"--gpu {requested} but the attached GPU is {device_name!r}"
                             f"{f' (profile {actual.name})' if actual else ''}; pass --gpu "
                             f"{actual.name if actual else 'auto'}, or --allow-mismatch to tune anyway "
                             "(results are labelled with the real GPU)")
    return g, f"--allow-mismatch: target profile {g.name}, measured on {device_name}"
