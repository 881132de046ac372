"""A Hugging Face `config.json` for a model profile, for vLLM's random weights (`load_format="dummy"`).

The attention shape (heads, KV heads, head size, layers) comes from `profiles/models/<name>.yaml`;
the rest of the architecture (hidden / MLP sizes, vocabulary, RoPE, norm epsilon, model-specific
fields) from `profiles/models/arch/<name>.yaml`. The two are joined here and written to a
directory that vLLM loads as a model: nothing is downloaded and no tokenizer is needed.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.config.profiles import ModelProfile, load_model

ARCHITECTURES = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Gemma2ForCausalLM")
_REQUIRED = {"architecture": str, "model_type": str, "hidden_size": int, "intermediate_size": int,
             "vocab_size": int, "max_position_embeddings": int, "rope_theta": float, "rms_norm_eps": float}
DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "bf16": 2, "fp16": 2, "float32": 4}


@dataclass(frozen=True)
class ArchProfile:
    """What `config.json` needs beyond the attention shape (profiles/models/arch/<name>.yaml)."""
    name: str
    architecture: str
    model_type: str
    hidden_size: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    rope_theta: float
    rms_norm_eps: float
    extra: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelDir:
    """A written model directory and the figures the grid and the report need from it."""
    path: str
    model: str
    hf_id: str
    architecture: str
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_size: int
    vocab_size: int
    max_position_embeddings: int
    kv_bytes_per_token: int
    param_count: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelDir":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


def arch_dir() -> Path:
    from workbench.config.paths import profiles_dir
    return profiles_dir() / "models" / "arch"


def load_arch(name: str, directory: Path | None = None) -> ArchProfile:
    from workbench.config.yamlio import load_yaml
    d = directory or arch_dir()
    p = d / f"{name}.yaml"
    if not p.exists():
        known = sorted(x.stem for x in d.glob("*.yaml"))
        raise WorkbenchError(f"no architecture for model {name!r} ({p} missing): add one with the fields of its "
                             f"HF config.json ({', '.join(_REQUIRED)}); known: {', '.join(known) or 'none'}")
    doc = load_yaml(p)
    if not isinstance(doc, dict):
        raise WorkbenchError(f"{p}: an architecture profile is a mapping of fields")
    unknown = set(doc) - set(_REQUIRED) - {"extra"}
    if unknown:
        raise WorkbenchError(f"{p}: unknown field(s) {', '.join(sorted(unknown))}; put model-specific config.json "
                             f"fields under `extra:`")
    out: dict[str, Any] = {}
    for k, t in _REQUIRED.items():
        if k not in doc:
            raise WorkbenchError(f"{p}: missing field {k!r}")
        v = doc[k]
        if t is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if not isinstance(v, t) or isinstance(v, bool):
            raise WorkbenchError(f"{p}: field {k!r} should be {t.__name__}, got {v!r}")
        out[k] = v
    if out["architecture"] not in ARCHITECTURES:
        raise WorkbenchError(f"{p}: architecture {out['architecture']!r} is not one e2e generates "
                             f"({', '.join(ARCHITECTURES)})")
    extra = doc.get("extra") or {}
    if not isinstance(extra, dict):
        raise WorkbenchError(f"{p}: `extra` should be a mapping of config.json fields")
    clash = set(extra) & {"num_attention_heads", "num_key_value_heads", "head_dim", "num_hidden_layers",
                          *_REQUIRED, "architectures"}
    if clash:
        raise WorkbenchError(f"{p}: `extra` may not set {', '.join(sorted(clash))} (they come from the profiles)")
    return ArchProfile(name=name, extra=dict(extra), source=str(p), **out)


def hf_config(model: ModelProfile, arch: ArchProfile, dtype: str = "bfloat16") -> dict[str, Any]:
    """The config.json dict: attention shape from the model profile, the rest from the architecture."""
    if model.layers < 1:
        raise WorkbenchError(f"{model.source or model.name}: `layers` is needed to build a model (add it)")
    cfg: dict[str, Any] = {
        "architectures": [arch.architecture],
        "model_type": arch.model_type,
        "hidden_size": arch.hidden_size,
        "intermediate_size": arch.intermediate_size,
        "num_hidden_layers": model.layers,
        "num_attention_heads": model.num_heads,
        "num_key_value_heads": model.num_kv_heads,
        "head_dim": model.head_size,
        "vocab_size": arch.vocab_size,
        "max_position_embeddings": arch.max_position_embeddings,
        "rope_theta": arch.rope_theta,
        "rms_norm_eps": arch.rms_norm_eps,
        "torch_dtype": dtype,
        "initializer_range": 0.02,
        "use_cache": True,
    }
    cfg.update(arch.extra)
    return cfg


def kv_bytes_per_token(model: ModelProfile, dtype: str = "bfloat16") -> int:
    """K and V of every layer for one token (TP 1), as vLLM's cache holds them."""
    return 2 * model.layers * model.num_kv_heads * model.head_size * _dtype_bytes(dtype)


def param_count(model: ModelProfile, arch: ArchProfile) -> int:
    """Weights of the decoder (embedding, attention, gated MLP, norms, LM head)."""
    h, d = arch.hidden_size, model.head_size
    attn = h * model.num_heads * d + 2 * h * model.num_kv_heads * d + model.num_heads * d * h
    if arch.architecture == "Qwen2ForCausalLM":          # q, k, v carry biases
        attn += model.num_heads * d + 2 * model.num_kv_heads * d
    mlp = 3 * h * arch.intermediate_size
    norms = (4 if arch.architecture == "Gemma2ForCausalLM" else 2) * h
    embed = arch.vocab_size * h
    head = 0 if arch.extra.get("tie_word_embeddings", False) else arch.vocab_size * h
    return embed + head + model.layers * (attn + mlp + norms) + h


def _dtype_bytes(dtype: str) -> int:
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise WorkbenchError(f"dtype {dtype!r}: use one of {', '.join(DTYPE_BYTES)}") from None


def write_model_dir(model_name: str, out_dir: str | Path, dtype: str = "bfloat16",
                    arch_directory: Path | None = None) -> ModelDir:
    """Write `config.json` for `model_name` into out_dir (created); return what was written."""
    model = load_model(model_name)
    arch = load_arch(model.name, arch_directory)
    cfg = hf_config(model, arch, dtype)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg, indent=1) + "\n")
    except OSError as e:
        raise WorkbenchError(f"cannot write the model config to {out} ({e.strerror}): choose another --out") from None
    return ModelDir(path=str(out), model=model.name, hf_id=model.hf_id, architecture=arch.architecture,
                    num_layers=model.layers, num_heads=model.num_heads, num_kv_heads=model.num_kv_heads,
                    head_size=model.head_size, vocab_size=arch.vocab_size,
                    max_position_embeddings=arch.max_position_embeddings,
                    kv_bytes_per_token=kv_bytes_per_token(model, dtype), param_count=param_count(model, arch))
