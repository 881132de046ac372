"""`workbench export`: a study's dispatch table -> a pip-installable package: the kernel family
specialised to the variants the table uses (one translation unit each), torch ops with vLLM's
old paged_attention_v1/v2 argument order, a Python `decode`, and a vLLM V1 attention backend
registered as CUSTOM through the `vllm.general_plugins` entry point."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.kernel.variant import RAGGED_FILL, SCHED_MIN_SEQS
from workbench.tune.dispatch import DispatchTable, study_dispatch
from workbench.errors import WorkbenchError
from workbench.config.paths import kernels_dir

BACKEND_CLASS = "WorkbenchDecodeBackend"


@dataclass
class ExportResult:
    out: str
    package: str
    files: list[str]
    variants: list[str]
    wheel: str = ""
    build_log: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def package_name(gpu: str, model: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", f"wb_{gpu}_{model}").lower().strip("_")


def _check_name(name: str) -> str:
    """A package name that imports as itself once installed: an identifier that shadows neither the
    standard library nor an installed top-level package (a previous export of this name is fine)."""
    import importlib.util
    import keyword
    import sys
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise WorkbenchError(f"--name {name!r}: a package name is lower-case letters, digits and _, "
                             "not starting with a digit")
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise WorkbenchError(f"--name {name!r} is a Python keyword: `import {name}` cannot work; choose another")
    if name in sys.stdlib_module_names or name in sys.builtin_module_names:
        raise WorkbenchError(f"--name {name!r} would shadow the Python standard library module {name}: "
                             f"choose another (default wb_<gpu>_<model>)")
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        where = [Path(p) for p in (spec.submodule_search_locations or [])] or \
            ([Path(spec.origin).parent] if spec.origin and spec.origin not in ("built-in", "frozen") else [])
        if not any((d / "dispatch.json").exists() for d in where):       # not one of our exports
            raise WorkbenchError(f"--name {name!r} would shadow the installed package {name} "
                                 f"({spec.origin or ', '.join(map(str, where)) or '?'}): choose another "
                                 f"(default wb_<gpu>_<model>)")
    return name


def _writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".wb-write-probe"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise WorkbenchError(f"cannot write to {out} ({e.strerror}): choose another --out") from None
    if any(p for p in out.iterdir() if p.name not in ("dist", "build")) and not (out / "dispatch.json").exists() \
            and not any(out.glob("*/dispatch.json")):
        raise WorkbenchError(f"{out} is not empty and not a previous export: choose an empty --out")


def load_table(study: str, storage: str, gpu: str | None = None) -> tuple[DispatchTable, dict[str, Any]]:
    from workbench.tune.storage import open_tuned
    h, cfg, done = open_tuned(study, storage)
    if gpu and gpu != cfg["gpu"]:
        raise WorkbenchError(f"study {study!r} was tuned for {cfg['gpu']} ({cfg.get('device_name', '?')}), "
                             f"not {gpu}: export it for {cfg['gpu']}, or tune a study on {gpu}")
    from workbench.tune.peer_timing import FA3, stored as stored_peers
    # FA3 as timed beside the study (tune): read, never measured again here
    table = study_dispatch(study, h.study, cfg, done, stored_peers(h.study).get(FA3))
    prov = {"study": study, "gpu_profile": cfg["gpu"], "device_name": cfg.get("device_name", ""),
            "gpu_info": h.study.user_attrs.get("gpu_info", {}), "ceiling": h.study.user_attrs.get("ceiling", {}),
            "created": h.study.user_attrs.get("created", ""), "trials": len(done)}
    if cfg.get("emulation"):              # tuned by emulation: the plan, with what the worker measured
        from workbench.measure.emulation import EmulationPlan
        plan = EmulationPlan.from_dict((prov["gpu_info"] or {}).get("emulation") or cfg["emulation"])
        prov["emulation"] = {"label": plan.label(), "provenance": plan.provenance()}
    return table, prov


def _render(text: str, subs: dict[str, str]) -> str:
    for k, v in subs.items():
        text = text.replace(f"@{k}@", v)
    return text


def variant_list(table: DispatchTable) -> list[dict[str, Any]]:
    """Distinct variants, in first use order: rows, then best overall, then the graph picks."""
    seen: dict[str, dict[str, Any]] = {}
    for r in table.rows:
        seen.setdefault(r.key, r.variant)
    seen.setdefault(table.best_overall["key"], table.best_overall["variant"])
    for g in table.graph_rows:
        seen.setdefault(g.key, g.variant)
    return list(seen.values())


def export_study(study: str, storage: str, out: Path, name: str | None = None, wheel: bool = False,
                 gpu: str | None = None, graph_walk: bool = False, graph_sched: bool | None = None) -> ExportResult:
    """graph_sched (the default, None = not graph_walk; variant.graph_form): the auto-split variants
    built with Variant.graph_sched, so the vLLM backend plans each step's schedule on the device
    (docs/perf-notes.md v8, v9). graph_walk: with Variant.graph_walk instead (graph-bound grids walk
    long sequences: faster on uniform short batches, slower on ragged ones; v7). Both off
    (graph_sched=False): the plain grid for the bound."""
    from workbench.kernel.build import define_map
    from workbench.kernel.variant import Variant, graph_form

    graph_walk, graph_sched = graph_form(graph_walk, graph_sched)     # a bad pair: refused before any write
    table, prov = load_table(study, storage, gpu)
    cfg = table.config
    pkg = _check_name(name or package_name(cfg["gpu"], cfg["model"]))
    out = Path(out)
    _writable(out)
    variants = [Variant.from_dict(v) for v in variant_list(table)]
    index = {v.key: i for i, v in enumerate(variants)}     # the study's keys: the table's rows name them
    notes = []
    variants = [v.graph_built(graph_walk, graph_sched) for v in variants]
    if graph_sched:
        notes.append(f"graph-bound schedule built into {sum(v.graph_sched for v in variants)} of {len(variants)} "
                     f"variant(s) (the default; --no-graph-sched: the plain grid)")
    if not table.graph_rows:
        notes.append(f"no graph picks in study {study}: vLLM's captured decode launches take the table's pick at "
                     f"max_model_len; `workbench refine --study {study} --graph-len N` first times one per band "
                     f"of batch sizes")
    if graph_walk:
        notes.append(f"graph-bound walk built into {sum(v.graph_walk for v in variants)} of {len(variants)} "
                     f"variant(s) (--graph-walk)")
    arch = cfg["arch"]
    pdir, csrc = out / pkg, out / pkg / "csrc"
    if pdir.exists():
        shutil.rmtree(pdir)
    csrc.mkdir(parents=True)
    files: list[Path] = []

    def write(path: Path, text: str) -> None:
        path.write_text(text)
        files.append(path)

    src = kernels_dir()
    shutil.copy(src / "decode.cu", csrc / "decode.cu")
    files.append(csrc / "decode.cu")
    for f in ("launch.cuh", "wb_args.h"):
        shutil.copy(src / "export" / f, csrc / f)
        files.append(csrc / f)
    write(csrc / "ops.cpp", (src / "export" / "ops.cpp").read_text().replace("WB_PKG", pkg))
    for i, v in enumerate(variants):
        defs = "\n".join(f"#define {name} {val}" for name, val in define_map(v).items())
        write(csrc / f"v{i}.cu", f"// variant {i}: {v.name} (key {v.key})\n{defs}\n#define WB_NS wb_v{i}\n"
                                 f"#define WB_SYM(name) name##_v{i}\n#include \"decode.cu\"\n#include \"launch.cuh\"\n")
    write(csrc / "dispatch.h", _dispatch_h(table, variants, index))
    heads = cfg["heads"]
    subs = {"PKG": pkg, "DIST": pkg.replace("_", "-"), "VERSION": time.strftime("%Y.%m.%d"),
            "GPU": cfg["gpu"], "GPU_NAME": (prov.get("emulation") or {}).get("label") or prov["device_name"] or cfg["gpu"],
            "MODEL": cfg["model"],
            "STUDY": study, "CLASS": BACKEND_CLASS, "ARCH_LIST": _arch_list(arch),
            "HEAD": str(heads["head_size"]), "BLOCK": str(cfg["block_size"]), "DTYPE": cfg["dtype"],
            "CC": str(int(re.sub(r"\D", "", arch))), "RAGGED_FILL": repr(RAGGED_FILL),
            "RAGGED_MIN_SEQS": str(SCHED_MIN_SEQS)}
    ex = src / "export"
    write(out / "setup.py", _render((ex / "setup.py.in").read_text(), subs))
    write(out / "pyproject.toml", _render((ex / "pyproject.toml.in").read_text(), subs))
    for f in sorted((ex / "pkg").glob("*.py")):
        write(pdir / f.name, _render(f.read_text(), subs))
    write(pdir / "dispatch.py", _dispatch_py(table, variants, index))
    doc = {**table.to_dict(), "provenance": prov, "variants_by_index": [v.to_dict() for v in variants],
           "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    write(pdir / "dispatch.json", json.dumps(doc, indent=1))
    write(out / "README.md", _readme(pkg, table, prov, variants, index, subs))
    res = ExportResult(out=str(out), package=pkg, files=[str(f.relative_to(out)) for f in files],
                       variants=[v.name for v in variants], notes=notes)
    if wheel:
        res.wheel, res.build_log = build_wheel(out)
    return res


def _arch_list(arch: str) -> str:
    """sm_90a -> 9.0a (TORCH_CUDA_ARCH_LIST form)."""
    m = re.fullmatch(r"sm_(\d+)(\d)(a?)", arch)
    return f"{m.group(1)}.{m.group(2)}{m.group(3)}" if m else arch


def build_wheel(out: Path) -> tuple[str, str]:
    """pip wheel against the torch installed here (needs CUDA torch + nvcc)."""
    try:
        import torch
        if not torch.version.cuda:
            raise WorkbenchError("--wheel needs a CUDA build of torch (this one is CPU-only): build the wheel "
                                 "on the GPU host, or leave out --wheel and `pip install` the tree there")
    except ImportError:
        raise WorkbenchError("--wheel needs torch installed") from None
    log = out / "build.log"
    dist = out / "dist"
    with open(log, "w") as f:
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-w",
                               str(dist), str(out)], stdout=f, stderr=subprocess.STDOUT,
                              env={**os.environ, "MAX_JOBS": str(os.cpu_count() or 4)})
    if proc.returncode != 0:
        tail = log.read_text()[-1500:]
        raise WorkbenchError(f"building the wheel failed (log {log}):\n{tail}")
    wheels = sorted(dist.glob("*.whl"))
    return (str(wheels[-1]) if wheels else ""), str(log)


def _dispatch_h(table: DispatchTable, variants: list[Any], index: dict[str, int]) -> str:
    lines = ["// Rendered by `workbench export` from study " + table.study + ": do not edit.",
             "#pragma once", '#include "wb_args.h"', ""]
    for i in range(len(variants)):
        lines.append(f'extern "C" int wb_run_v{i}(const WbArgs& a);')
        lines.append(f'extern "C" int wb_split_parts_v{i}(int num_seqs, int num_heads, int max_seq_len);')
        lines.append(f'extern "C" int wb_plan_run_v{i}(const WbArgs& a);')
    lines += ["", "struct VariantInfo { int (*run)(const WbArgs&); int (*split_parts)(int, int, int); "
              "int head, block, qpc; bool bf16; int (*plan)(const WbArgs&); };", "static const VariantInfo kVariants[] = {"]
    for i, v in enumerate(variants):
        lines.append(f"  {{wb_run_v{i}, wb_split_parts_v{i}, {v.head_size}, {v.block_size}, {v.heads_per_cta}, "
                     f"{'true' if v.dtype == 'bf16' else 'false'}, wb_plan_run_v{i}}},  // {v.name}")
    lines += ["};", "", "struct BucketInfo { int batch_lo, batch_hi, context_lo, context_hi, variant; };",
              "static const BucketInfo kBuckets[] = {"]
    for r in table.rows:             # first match wins: a bucket split in bands of batch sizes is one row per band
        b = r.bucket
        band = f" band b{r.band['batch']}" if r.band else ""
        lines.append(f"  {{{r.batch_lo}, {r.batch_hi}, {b['context_lo']}, {b['context_hi']}, "
                     f"{index[r.key]}}},  // b{b['batch']}x{b['context']}{band}: {r.median_us:.1f} us")
    lines += ["};", f"static const int kBest = {index[table.best_overall['key']]};", ""]
    # captured decode launches (vLLM's full CUDA graphs) of a batch row: `workbench refine`'s graph picks;
    # a row without one (variant -1: the sentinel of a table without any) takes kBuckets' pick at the bound
    lines += ["struct GraphBucket { int batch_lo, batch_hi, variant; };", "static const GraphBucket kGraphBuckets[] = {"]
    for g in table.graph_rows:
        lines.append(f"  {{{g.batch_lo}, {g.batch_hi}, {index[g.key]}}},  // {g.label} at {g.graph_len} tokens")
    if not table.graph_rows:
        lines.append("  {0, 0, -1},")
    lines += ["};", ""]
    return "\n".join(lines)


def _dispatch_py(table: DispatchTable, variants: list[Any], index: dict[str, int]) -> str:
    buckets = [(r.batch_lo, r.batch_hi, r.bucket["context_lo"], r.bucket["context_hi"], index[r.key]) for r in table.rows]
    graph = [(g.batch_lo, g.batch_hi, index[g.key]) for g in table.graph_rows]
    return (f'"""Dispatch table of study {table.study} (rendered by `workbench export`; the same table is\n'
            'compiled into the ops). Buckets: (batch_lo, batch_hi, context_lo, context_hi, variant); hi = 0 is\n'
            'unbounded, bounds are [lo, hi)."""\n\n'
            f"VARIANTS = {json.dumps([v.name for v in variants], indent=4)}\n\n"
            f"BUCKETS = {json.dumps(buckets)}\n\n"
            f"BEST = {index[table.best_overall['key']]}\n\n\n"
            "def pick_variant(num_seqs: int, max_seq_len: int) -> int:\n"
            "    for blo, bhi, clo, chi, v in BUCKETS:\n"
            "        if blo <= num_seqs and (not bhi or num_seqs < bhi) and clo <= max_seq_len and (not chi or max_seq_len < chi):\n"
            "            return v\n"
            "    return BEST\n\n\n"
            "# captured decode launches (vLLM's full CUDA graphs): (batch_lo, batch_hi, variant) per batch row,\n"
            "# `workbench refine`'s graph picks\n"
            f"GRAPH_BUCKETS = {json.dumps(graph)}\n\n\n"
            "def pick_graph_variant(num_seqs: int, max_seq_len: int) -> int:\n"
            "    \"\"\"The variant of a captured launch of num_seqs rows bounded at max_seq_len (max_model_len).\"\"\"\n"
            "    for blo, bhi, v in GRAPH_BUCKETS:\n"
            "        if blo <= num_seqs and (not bhi or num_seqs < bhi):\n"
            "            return v\n"
            "    return pick_variant(num_seqs, max_seq_len)\n")


def _graph_readme(table: DispatchTable, index: dict[str, int]) -> str:
    """The graph picks' section: what vLLM's captured decode launches run per batch row."""
    if not table.graph_rows:
        return ""
    rng = lambda lo, hi: f"{lo}–{hi - 1}" if hi else f"{lo}+"  # noqa: E731
    lines = ["Captured decode launches (vLLM's full CUDA graphs, one variant per batch size for every context): "
             f"`workbench refine`'s graph picks, timed graph-bound at {table.graph_rows[0].graph_len} tokens.", "",
             "| batch | variant | µs graph-bound (shape) |", "|---|---|---|"]
    for g in table.graph_rows:
        us = ", ".join(f"{v:.1f} ({k})" for k, v in g.us.items()) or "–"
        lines.append(f"| {rng(g.batch_lo, g.batch_hi)} | v{index[g.key]} `{g.name}`"
                     f"{'' if g.changed else ' (the table pick at the bound)'} | {us} |")
    return "\n".join(lines) + "\n\n"


def _readme(pkg: str, table: DispatchTable, prov: dict[str, Any], variants: list[Any], index: dict[str, int],
            subs: dict[str, str]) -> str:
    g = prov.get("gpu_info") or {}
    from workbench.tune.peer_timing import ABSENT
    rows = ["| bucket (batch × context) | variant | µs | × baseline | × paper | × FA3 |", "|---|---|---|---|---|---|"]
    for r in table.rows:
        b = r.bucket
        rng = lambda lo, hi: f"{lo}–{hi - 1}" if hi else f"{lo}+"  # noqa: E731
        sb = f"{r.speedup_baseline:.2f}" if r.speedup_baseline else "–"
        sp = f"{r.speedup_paper:.2f}" if r.speedup_paper else "–"
        sf = f"{r.speedup_fa3:.2f}" if r.speedup_fa3 else ABSENT
        band = f" (a band of bucket b{b['batch']}x{b['context']})" if r.band else ""
        rows.append(f"| {rng(r.batch_lo, r.batch_hi)} × {rng(b['context_lo'], b['context_hi'])} | "
                    f"v{index[r.key]} `{r.name}`{' (refined)' if r.refined else ''}"
                    f"{band}"
                    f"{f' (untimed bucket: the pick of {r.borrowed_from})' if r.borrowed_from else ''} | "
                    f"{r.median_us:.1f} | {sb} | {sp} | {sf} |")
    fa3_line = (f"× FA3 {ABSENT}: {table.fa3_note}." if table.fa3_note else
                "× FA3: against FlashAttention-3 (vLLM's `FLASH_ATTN` decode on Hopper, called as vLLM calls it), "
                "timed beside the study on the same GPU, buckets and cold-L2 timing (CUDA-graph replays).")
    cfg = table.config
    emu = prov.get("emulation") or {}
    target = emu["label"].removeprefix("tuned for ") + "**" if emu else f"{prov['device_name'] or cfg['gpu']}**"
    return f"""# {pkg}

Paged-attention decode kernels tuned by [workbench] for **{target} and
**{cfg['model']}** (TP {cfg['tp']}: {cfg['heads']['num_heads']} query / {cfg['heads']['num_kv_heads']} KV heads,
head {cfg['heads']['head_size']}), {cfg['dtype']}, KV block {cfg['block_size']}, as torch ops and a vLLM attention backend.

## Provenance
- study `{table.study}` ({prov['trials']} complete trials), created {prov.get('created') or '?'}
- GPU {g.get('name', prov['device_name'])}, driver {g.get('driver', '?')}, CUDA runtime {g.get('cuda_runtime', '?')},
  torch {g.get('torch', '?')}, arch {cfg['arch']}; read ceiling {(prov.get('ceiling') or {}).get('gbps', 0):.0f} GB/s
- exported {time.strftime('%Y-%m-%d')}; latencies: cold L2, median of 30 launches, measured by workbench
{f"- {emu['provenance']}" + chr(10) if emu else ""}
## Dispatch table
{chr(10).join(rows)}

{"(refined): picked by `workbench refine` (each bucket's close calls timed again at and around its centre); µs is the study's time at the centre." + chr(10) + chr(10) if any(r.refined for r in table.rows) else ""}{_graph_readme(table, index)}Best overall: v{index[table.best_overall['key']]} `{table.best_overall['name']}`. Speedups are against
`baseline` (vLLM 0.10.2's own paged-attention kernel, built from its pinned source) and `paper`
(the same kernel with the paper's bulk L2 prefetch one tile ahead), measured beside the study on the
same GPU, suite and cold-L2 timing ("–": not measured in this study).
{fa3_line}

## Install and run
```bash
pip install --no-build-isolation .          # builds the CUDA extension against your torch (nvcc needed)
vllm serve {cfg.get('model')} --attention-backend CUSTOM
```
The package registers itself through the `vllm.general_plugins` entry point as the `CUSTOM`
backend. Decode tokens run on these kernels, which also write each decode token's K and V into the
cache (no separate write kernel per layer; `WB_FUSED_KV_WRITE=0` in the environment turns that off);
prefill and chunked-prefill tokens use vLLM's own ops (see `{pkg}/vllm_backend.py`).

Without vLLM:
```python
import {pkg}
{pkg}.decode(out, query, key_cache, value_cache, num_kv_heads, scale, block_tables, seq_lens, max_seq_len)
torch.ops.{pkg}.paged_attention_v1(out, query, key_cache, value_cache, num_kv_heads, scale,
                                   block_tables, seq_lens, block_size, max_seq_len, None, "auto", k_scale, v_scale)
```
Layout: vLLM's paged cache — keys `[blocks, kv_heads, head/x, block, x]` (x = 8 for 16-bit),
values `[blocks, kv_heads, head, block]`; int32 block tables and sequence lengths.
"""
