"""`workbench e2e`: the exported package against vLLM's own backends, end to end in vLLM."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from workbench.cli.app import app, err, out


@app.command("e2e")
def e2e_cmd(
    model: str = typer.Option("llama-3.1-8b", help="model profile (profiles/models/): its architecture, random weights"),
    package: Optional[str] = typer.Option(None, help="exported package (directory or wheel) to run as CUSTOM"),
    backends: str = typer.Option("CUSTOM,FLASH_ATTN,TRITON_ATTN,FLASHINFER",
                                 help="comma-separated vLLM attention backends (CUSTOM = --package)"),
    batches: str = typer.Option("1,8,32,64", help="batch sizes, e.g. 1,8,32,64"),
    contexts: str = typer.Option("1k,4k,16k,32k", help="context lengths, e.g. 1k,4k,16k,32k"),
    steps: int = typer.Option(128, help="decode steps timed per point"),
    out_dir: Path = typer.Option(Path("e2e"), "--out", help="output folder (e2e.json, e2e.png, logs/)"),
    bench: Optional[Path] = typer.Option(None, help="a `workbench bench` JSON with fa3: kernel ratio k per shape"),
    bench_ref: str = typer.Option("fa3", help="the bench row k divides by: fa3, or fa3-packed (FA3 on the K|V-per-token "
                                  "cache vLLM allocates for FLASH_ATTN)"),
    share_backends: str = typer.Option("FLASH_ATTN,CUSTOM", help="backends captured with nsys: FLASH_ATTN's "
                                       "attention share a; the others' step breakdown against it (none: skip)"),
    shares_from: Optional[Path] = typer.Option(None, help="an earlier run's e2e.json (or .json.gz): FLASH_ATTN's "
                                               "attention shares a from it where this run captures none "
                                               "(with --share-backends none: no nsys; any grid)"),
    floor_from: Optional[Path] = typer.Option(None, help="an earlier run's e2e.json (or .json.gz) that measured "
                                              "TRITON_ATTN with the same weights and seed: its ids agreement with "
                                              "FLASH_ATTN is the correctness floor where this run does not run it"),
    reference_twice: bool = typer.Option(False, "--reference-twice",
                                         help="run FLASH_ATTN again after the other backends: ratios to the mean of "
                                              "its two runs, and how far it moved between them (column ref Δ)"),
    gpu_memory_utilization: float = typer.Option(0.90, help="vLLM's gpu_memory_utilization"),
    weights: str = typer.Option("gpt2:0.02", help="random weights: gpt2:STD, normal:STD or dummy"),
    fresh: bool = typer.Option(False, help="measure again instead of resuming the saved run"),
    timeout: Optional[float] = typer.Option(None, help="seconds one backend's child process may take"),
    max_model_len: Optional[int] = typer.Option(None, help="vLLM's max_model_len (default: what the grid needs); "
                                                "decode graphs are bounded there, so set your server's"),
) -> None:
    """Decode tok/s and inter-token latency of vLLM with the exported backend vs its own, CUDA graphs on."""
    from workbench.e2e import parse_sizes, run_e2e
    from workbench.e2e.compare import breakdown_lines, clock_lines, pooled_lines, prediction_lines, table

    from workbench.errors import WorkbenchError
    if steps < 8:
        raise WorkbenchError("--steps must be >= 8")
    if bench_ref not in ("fa3", "fa3-packed"):
        raise WorkbenchError(f"--bench-ref {bench_ref!r}: choose fa3 or fa3-packed (the kernel FLASH_ATTN runs)")
    names = [b.strip().upper() for b in backends.split(",") if b.strip()]
    shares = [] if share_backends.strip().lower() == "none" else [b.strip().upper() for b in share_backends.split(",") if b.strip()]
    run = run_e2e(model, package, names, (parse_sizes(batches, "--batches"), parse_sizes(contexts, "--contexts")),
                  out_dir, str(bench) if bench else None, decode_steps=steps,
                  gpu_memory_utilization=gpu_memory_utilization, weights=weights, share_backends=shares,
                  shares_from=str(shares_from) if shares_from else None, reference_twice=reference_twice,
                  floor_from=str(floor_from) if floor_from else None,
                  fresh=fresh, child_timeout_s=timeout, max_model_len=max_model_len, bench_ref=bench_ref,
                  progress=lambda line: err.print(line, markup=False))
    out.print(table(run))
    for line in pooled_lines(run, (run.summary or {}).get("correctness_pooled") or {}):
        out.print(line, markup=False)
    for line in breakdown_lines(run, (run.summary or {}).get("step_breakdown") or []):
        out.print(line, markup=False)
    for line in prediction_lines(run, (run.summary or {}).get("package")):
        out.print(line, markup=False)
    for line in clock_lines((run.summary or {}).get("clocks") or {}):
        out.print(line, markup=False)
    drift = (run.summary or {}).get("reference_drift")
    if drift:
        out.print(f"{run.reference} ran twice: it moved at most {drift['max_abs']:.1%} between its runs"
                  + (f"; past ±2% at {', '.join(drift['over_tolerance'])}: a ratio there is not sharper than that"
                     if drift["over_tolerance"] else ""), markup=False)
    for n in run.notes:
        out.print(f"note: {n}")
    out.print(f"results: {Path(out_dir) / 'e2e.json'}")
