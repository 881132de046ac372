"""`workbench compile` and `workbench variant`: build variants."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from workbench.cli.app import app, out


@app.command("compile")
def compile_cmd(
    space: Optional[Path] = typer.Option(None, help="search space YAML (default: tuning/spaces/default.yaml)"),
    arch: str = typer.Option("sm_90a", help="target arch, e.g. sm_90a, sm_90, sm_80"),
    head_size: Optional[int] = typer.Option(None, help="override the space's head size"),
    dtype: Optional[str] = typer.Option(None, help="override the space's dtype (bf16|fp16)"),
    block_size: Optional[int] = typer.Option(None, help="override the space's KV block size"),
    group: Optional[int] = typer.Option(None, help="GQA group size (drops heads_per_cta above it)"),
    jobs: Optional[int] = typer.Option(None, help="parallel nvcc processes (default: CPU count)"),
    force: bool = typer.Option(False, help="rebuild even if cached"),
    as_json: bool = typer.Option(False, "--json", help="print a JSON summary instead of tables"),
) -> None:
    """Build every valid variant of a space into cached cubins; print counts."""
    from workbench.errors import WorkbenchError
    from workbench.kernel.build import build_many, summarize
    from workbench.kernel.space import enumerate_space, load_space

    if group is not None and group < 1:
        raise WorkbenchError(f"--group must be >= 1 (got {group}): query heads per KV head of the model")
    if jobs is not None and jobs < 1:
        raise WorkbenchError(f"--jobs must be >= 1 (got {jobs}): parallel nvcc processes")
    sp = load_space(space)
    en = enumerate_space(sp, arch, head_size=head_size, block_size=block_size, dtype=dtype, group=group)
    results = build_many(en.valid, arch, jobs=jobs, progress=not as_json and out.is_terminal, force=force)
    s = summarize(results)
    failed = [r for r in results if r.status == "failed"]
    if as_json:
        print(json.dumps({"space": sp.source, "arch": arch, **s.to_dict(), "invalid": len(en.invalid),
                          "failures": [{"variant": r.variant.name, "error": r.error} for r in failed]}))
    else:
        t = Table(title=f"{sp.name} space for {arch}")
        for c in ("built", "cached", "invalid", "failed"):
            t.add_column(c, justify="right")
        t.add_row(str(s.built), str(s.cached), str(len(en.invalid)), str(s.failed))
        out.print(t)
        spills = [r for r in results if r.ok and r.spills]
        if spills:
            out.print(f"{len(spills)} variant(s) spill registers (see `workbench compile --json`)")
        for r in failed[:5]:
            out.print(Text(f"FAILED {r.variant.name}:\n{r.error}", style="red"))
    if failed:
        raise typer.Exit(1)


@app.command("variant")
def variant_cmd(
    name: str = typer.Argument(..., help="baseline, paper (vLLM's own kernel), simple, simple-pf, or knob=value pairs "
                                         "separated by commas, e.g. threads=256,partition=512"),
    arch: str = typer.Option("sm_90a", help="target arch, e.g. sm_90a"),
    head_size: int = typer.Option(128, help="head size"),
    dtype: str = typer.Option("bf16", help="bf16 or fp16"),
    block_size: int = typer.Option(16, help="KV block (page) size in tokens"),
) -> None:
    """Show one variant: knobs, validity on an arch, and its ptxas report (builds if needed)."""
    from workbench.kernel.build import build_variant
    from workbench.kernel.variant import Variant, parse_knobs
    from workbench.kernel.references import named

    if "=" in name:
        v = Variant.from_dict({"head_size": head_size, "dtype": dtype, "block_size": block_size, **parse_knobs(name)})
    else:
        v = named(name, head_size, block_size, dtype)
    r = build_variant(v, arch)
    t = Table(title=f"{v.label}  ({v.key})")
    t.add_column("knob"); t.add_column("value")
    for k, val in v.to_dict().items():
        t.add_row(k, str(val))
    t.add_row("build", f"{r.status} {r.error}".strip())
    out.print(t)
    if r.resources:
        rt = Table(title="ptxas")
        for c in ("function", "registers", "smem static", "stack", "spill st/ld"):
            rt.add_column(c)
        for f, res in r.resources.items():
            rt.add_row(f, str(res.registers), str(res.shared_static), str(res.stack_frame),
                       f"{res.spill_stores}/{res.spill_loads}")
        out.print(rt)
