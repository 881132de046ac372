"""Shared by the v2 probes (pdl_probe.py, pages_probe.py): a study's dispatch table laid over the
bench suite on the attached GPU -- GPU info, read ceiling, and per shape (bucket, spec, built variant)."""
from workbench.bench import tuned_picker
from workbench.build import build_many
from workbench.ceiling import read_ceiling
from workbench.gpuinfo import gpu_info
from workbench.profiles import head_shape, load_model
from workbench.suite import load_suite


def tuned_table(study: str, storage: str, shapes: tuple[str, ...] = ()):
    info = gpu_info(0)
    ceil = read_ceiling(0).gbps
    heads = head_shape(load_model("llama-3.1-8b"), 1)
    pick, _ = tuned_picker(study, storage, heads, "bf16", 16, info.arch)
    specs = [(b, s) for b, s in load_suite("bench").specs(heads, "bf16", 16) if not shapes or b.label in shapes]
    built = {b.variant: b for b in build_many(list(dict.fromkeys(pick(s) for _, s in specs)), info.arch)}
    return info, ceil, [(b, s, built[pick(s)]) for b, s in specs]
