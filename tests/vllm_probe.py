"""Run inside a venv holding vllm==0.33.0 (no GPU): check an exported backend against vLLM's real
classes. argv: EXPORT_DIR PACKAGE. Prints one JSON object; exit 1 on any failed check."""
import importlib
import importlib.metadata
import inspect
import json
import sys
import tomllib
from pathlib import Path

out, pkg = Path(sys.argv[1]), sys.argv[2]
sys.path.insert(0, str(out))
checks: dict[str, object] = {}
import vllm  # noqa: E402
from vllm.v1.attention.backend import (AttentionBackend, AttentionImpl,  # noqa: E402
                                       AttentionMetadataBuilder)
from vllm.v1.attention.backends.registry import AttentionBackendEnum  # noqa: E402

checks["vllm"] = vllm.__version__
mod = importlib.import_module(f"{pkg}.vllm_backend")
B = next(c for c in vars(mod).values() if inspect.isclass(c) and issubclass(c, AttentionBackend) and c is not AttentionBackend)
Impl, Builder = B.get_impl_cls(), B.get_builder_cls()
checks["subclasses"] = issubclass(Impl, AttentionImpl) and issubclass(Builder, AttentionMetadataBuilder)
checks["abstract_left"] = sorted(B.__abstractmethods__ | Impl.__abstractmethods__ | Builder.__abstractmethods__)
checks["name"] = B.get_name()


def params(f):
    return [(p.name, p.kind) for p in inspect.signature(f).parameters.values()]


mismatch = []
for base, cls in ((AttentionImpl, Impl), (AttentionMetadataBuilder, Builder), (AttentionBackend, B)):
    for name, f in vars(base).items():
        if name.startswith("__") and name != "__init__":
            continue
        own = cls.__dict__.get(name)
        if own is None or not callable(getattr(base, name, None)):
            continue
        bf, of = getattr(base, name), getattr(cls, name)
        try:
            bp, op = params(bf), params(of)
        except (TypeError, ValueError):
            continue
        # ours may add trailing optional parameters (e.g. sinks), never drop or rename the base's
        if op[:len(bp)] != bp and not (name == "__init__" and [n for n, _ in op[:len(bp)]] == [n for n, _ in bp]):
            mismatch.append(f"{cls.__name__}.{name}: {bp} vs {op}")
checks["signature_mismatches"] = mismatch
checks["head_sizes"] = B.get_supported_head_sizes()
checks["block_sizes"] = B.get_supported_kernel_block_sizes()
checks["dtypes"] = [str(d) for d in B.supported_dtypes]
checks["layouts"] = [l.name for l in B.supported_kv_cache_layouts()]
from vllm.platforms.interface import DeviceCapability  # noqa: E402
checks["cc_90"], checks["cc_80"] = B.supports_compute_capability(DeviceCapability(9, 0)), B.supports_compute_capability(DeviceCapability(8, 0))
# the entry point vLLM would load, from the package's own metadata
pp = tomllib.loads((out / "pyproject.toml").read_text())
eps = pp["project"]["entry-points"]["vllm.general_plugins"]
(ep_name, ep_value), = eps.items()
ep = importlib.metadata.EntryPoint(name=ep_name, value=ep_value, group="vllm.general_plugins")
register = ep.load()
register()
register()                                   # vLLM runs plugins in every process: idempotent
checks["registered_path"] = AttentionBackendEnum.CUSTOM.get_path()
checks["registered_class_is_ours"] = AttentionBackendEnum.CUSTOM.get_class() is B
ok = (checks["subclasses"] and not checks["abstract_left"] and checks["name"] == "CUSTOM" and not mismatch
      and checks["registered_class_is_ours"] and checks["cc_90"] and not checks["cc_80"])
checks["ok"] = bool(ok)
print(json.dumps(checks, default=str))
sys.exit(0 if ok else 1)
