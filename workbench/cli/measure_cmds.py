"""`workbench measure`: time (and profile) named or given variants on given shapes."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from workbench.cli.app import app, out
from workbench.errors import WorkbenchError


@app.command("measure")
def measure_cmd(
    variants: Optional[str] = typer.Option(None, help="named variants, separated by commas: baseline, paper (vLLM's own "
                                                      "kernel), simple, simple-pf (default: baseline,paper unless "
                                                      "--variant is given)"),
    variant: Optional[list[str]] = typer.Option(None, "--variant", help="one variant by its knobs, knob=value pairs "
                                                "separated by commas, e.g. --variant threads=256,partition=512 (as "
                                                "`workbench variant` takes them); repeat --variant for more"),
    batch: int = typer.Option(8, help="sequences in the batch"), context: int = typer.Option(4096, help="tokens per sequence"),
    heads: int = typer.Option(32, help="query heads"), kv_heads: int = typer.Option(8, help="KV heads"), head_size: int = typer.Option(128, help="head size"),
    dtype: str = typer.Option("bf16", help="bf16 or fp16"), block_size: int = typer.Option(16, help="KV block (page) size in tokens"),
    launches: int = typer.Option(50, help="timed launches per variant (>= 30)"),
    profile: str = typer.Option("none", help="none | ncu | nsys | all"),
    out_dir: Path = typer.Option(Path("wb-measure"), "--out", help="directory for results.json and captures"),
    pool_gb: float = typer.Option(0.0, help="KV pool size in GB the block tables draw from (0: just what the "
                                             "rotation needs; a serving engine's pool is tens of GB)"),
) -> None:
    """Time variants with a cold L2 (and capture them under ncu / nsys); write results.json."""
    from workbench.measure.job import Job
    from workbench.ui.report import results_table
    from workbench.measure.session import measure
    from workbench.measure.workload import WorkloadSpec

    if profile not in ("none", "ncu", "nsys", "all"):
        raise WorkbenchError(f"--profile {profile!r}: use none, ncu, nsys or all")
    if launches < 30:
        raise WorkbenchError("--launches must be >= 30 (medians of fewer launches are noise)")
    vs = parse_variants(variants, variant, {"head_size": head_size, "dtype": dtype, "block_size": block_size})
    spec = WorkloadSpec.uniform(batch, context, num_heads=heads, num_kv_heads=kv_heads, head_size=head_size,
                                block_size=block_size, dtype=dtype)
    if pool_gb < 0:
        raise WorkbenchError("--pool-gb must be >= 0")
    if pool_gb:
        spec = WorkloadSpec(**{**spec.to_dict(), "num_blocks": max(spec.blocks_needed, int(pool_gb * 1e9 // spec.block_bytes))})
    job = Job(variants=[v.to_dict() for v in vs], workloads=[spec.to_dict()], launches=launches)
    res, notes = measure(job, out_dir, profile)
    out.print(results_table(res))
    for n in notes:
        out.print(n)
    out.print(f"results: {out_dir / 'results.json'}")


def parse_variants(names: str | None, specs: list[str] | None, shape: dict[str, Any]) -> list[Any]:
    """`--variants` names (comma-separated) then each `--variant` (one variant's knob=value pairs,
    comma-separated). A knob in --variants is refused, never split into several variants."""
    from workbench.kernel.references import named
    from workbench.kernel.variant import Variant, parse_knobs

    if names is None and not specs:
        names = "baseline,paper"
    out = []
    if names is not None:
        items = [x.strip() for x in names.replace(";", ",").split(",")]
        if "=" in names:
            knobs = [x for x in items if "=" in x]
            raise WorkbenchError(f"--variants {names!r}: --variants takes named variants only (baseline, paper, "
                                 f"simple, simple-pf); give one variant by its knobs with --variant, knob=value "
                                 f"pairs separated by commas: --variant {','.join(knobs)} (repeat --variant for "
                                 f"another variant)")
        for item in items:
            if not item:
                raise WorkbenchError(f"--variants {names!r}: empty variant name (a trailing or doubled comma?); "
                                     "e.g. --variants baseline,paper")
            out.append(named(item, shape["head_size"], shape["block_size"], shape["dtype"]))
    for spec in specs or []:
        if "=" not in spec:
            out.append(named(spec.strip(), shape["head_size"], shape["block_size"], shape["dtype"]))
        else:
            out.append(Variant.from_dict({**shape, **parse_knobs(spec)}))
    return out
