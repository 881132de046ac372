"""`workbench measure`: time (and profile) named or given variants on given shapes."""
from __future__ import annotations

from pathlib import Path

import typer

from workbench.cli.app import app, out
from workbench.errors import WorkbenchError


@app.command("measure")
def measure_cmd(
    variants: str = typer.Option("baseline,paper", help="comma-separated: baseline, paper, simple, simple-pf, or a knob=value;... spec"),
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
    from workbench.kernel.variant import Variant
    from workbench.kernel.references import named
    from workbench.measure.workload import WorkloadSpec

    if profile not in ("none", "ncu", "nsys", "all"):
        raise WorkbenchError(f"--profile {profile!r}: use none, ncu, nsys or all")
    if launches < 30:
        raise WorkbenchError("--launches must be >= 30 (medians of fewer launches are noise)")
    vs = []
    for item in variants.split(","):
        if "=" in item:
            knobs = dict(kv.split("=", 1) for kv in item.split(";"))
            vs.append(Variant.from_dict({"head_size": head_size, "dtype": dtype, "block_size": block_size, **knobs}))
        else:
            vs.append(named(item.strip(), head_size, block_size, dtype))
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
