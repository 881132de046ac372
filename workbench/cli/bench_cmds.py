"""`workbench bench`: our kernels beside the peers users run."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from workbench.cli.app import app, err, out
from workbench.errors import WorkbenchError


def speedup_line(peer: str, v: float | None, missing: list[str], shapes: int) -> str:
    """`tuned vs PEER: geomean speedup X×`, naming the shapes the geomean leaves out."""
    if not v:
        return f"tuned vs {peer}: –"
    line = f"tuned vs {peer}: geomean speedup {v:.2f}×"
    if missing and peer != "floor":
        line += f" over {shapes - len(missing)} of {shapes} shapes (not in it: {', '.join(missing)})"
    return line


@app.command("bench")
def bench_cmd(
    gpu: str = typer.Option("auto", help="GPU profile the attached GPU must match (auto: any known)"),
    model: str = typer.Option("llama-3.1-8b", help="model whose heads the suite uses"),
    tp: int = typer.Option(1, help="tensor-parallel degree (divides the heads)"), dtype: str = typer.Option("bf16", help="bf16 or fp16"), block_size: int = typer.Option(16, help="KV block (page) size in tokens"),
    suite: str = typer.Option("bench", help="suite name or YAML (batch x context grid)"),
    peers: str = typer.Option("baseline,paper,simple,simple-pf,tuned,tuned-graph,fa3,fa3-packed,flashinfer,flashinfer-tc,xqa,read",
                              help="comma-separated; baseline / paper = vLLM 0.10.2's own kernel without / with "
                                   "the paper's prefetch (built from its sdist); simple / simple-pf = ours in "
                                   "vLLM's decomposition; fa3 / flashinfer / flashinfer-tc / xqa = the decode "
                                   "kernels vLLM serves with (scripts/bundle_peers.sh brings them to a host); "
                                   "fa3-packed = FA3 on the K|V-per-token cache vLLM allocates for FLASH_ATTN; "
                                   "tuned-graph = the tuned table launched as the exported backend's CUDA "
                                   "graphs launch it (bounded at --graph-len); read = the shape's paged KV read alone, a "
                                   "measured bound; also selectable: sdpa, xformers, flex"),
    graph_len: int = typer.Option(32768, help="tuned-graph: the launch bound (the max_model_len vLLM runs with)"),
    graph_walk: bool = typer.Option(False, "--graph-walk", help="tuned-graph: as `export --graph-walk` builds it"),
    graph_sched: Optional[bool] = typer.Option(None, "--graph-sched/--no-graph-sched",
                                               help="tuned-graph: as `export` with the same flag builds it (default: "
                                                    "scheduled, unless --graph-walk)"),
    study: Optional[str] = typer.Option(None, help="tuned = this study's dispatch table (else a quick sweep)"),
    storage: Optional[str] = typer.Option(None, help="Optuna storage URL (default: the study's default location)"),
    launches: int = typer.Option(30, help="timed launches per peer and shape (>= 30)"),
    out_file: Path = typer.Option(Path("bench.json"), "--out", help="JSON of the run"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="PNG: efficiency vs KV bytes, one line per peer"),
    prefetch_map: bool = typer.Option(False, "--prefetch-map", help="instead: best with vs without L2 prefetch per shape"),
    replay_ours: bool = typer.Option(False, "--replay-ours",
                                     help="time our rows by CUDA-graph replay of each launch, as the peers are "
                                          "timed and as vLLM's graphs run them (default: eager launches, all queued first)"),
    in_graph: bool = typer.Option(False, "--in-graph",
                                  help="time every row (ours and the peers) as one CUDA graph holding a launch per "
                                       "rotation copy, back to back as attention runs inside vLLM's decode graph, "
                                       "÷ the launches (default: one launch per timed call, which adds the graph's "
                                       "or the launch's own latency, ~2-3 µs, to every row)"),
    kv_write: bool = typer.Option(False, "--kv-write",
                                  help="with --in-graph: each launch after a KV-write stand-in kernel, as attention "
                                       "follows the KV-cache write in vLLM's step (back to back, launches overlap "
                                       "one another's tails where they use PDL: FA3's and ours), its own time subtracted"),
    fused_write: bool = typer.Option(False, "--fused-write",
                                     help="with --in-graph: every row is attention plus the step's KV-cache write as its "
                                          "backend runs it: the peers after a KV-write stand-in kernel (its time kept), "
                                          "our kernels writing the token themselves, as the exported vLLM backend does"),
    pages: str = typer.Option("scattered", "--pages",
                              help="block ids of every row's KV: scattered (random over the pool, as a long-running "
                                   "server's allocator leaves them) or contiguous (each sequence's blocks in order, as "
                                   "a fresh engine leaves a batch admitted together: what `workbench e2e` runs)"),
    emulate: Optional[bool] = typer.Option(None, "--emulate/--no-emulate",
                                           help="time everything inside an emulation of a smaller --gpu of the same "
                                                "architecture (as `tune` does); default: whenever --gpu names one"),
) -> None:
    """Our kernels vs FA3, FlashInfer and XQA (and optionally xformers, SDPA, FlexAttention) on one suite, cold L2, vs the floor."""
    from rich.progress import Progress

    from workbench.ui.plots import bench_plot
    from workbench.bench.run import run_bench
    from workbench.bench.pickers import tuned_picker
    from workbench.measure.gpuinfo import device_names
    from workbench.bench.peers import PEERS
    from workbench.config.profiles import head_shape, load_model
    from workbench.ui.report import bench_table
    from workbench.measure.suite import load_suite

    names = [p.strip() for p in peers.split(",") if p.strip()]
    from workbench.bench.run import KERNEL_ROWS, check_write_forms
    bad = [p for p in names if p not in (*KERNEL_ROWS, *PEERS)]
    if bad:
        raise WorkbenchError(f"--peers: unknown {', '.join(bad)}; choose from {', '.join((*KERNEL_ROWS, *PEERS))}")
    if launches < 30:
        raise WorkbenchError("--launches must be >= 30")
    if graph_len < 1:
        raise WorkbenchError("--graph-len must be >= 1 (vLLM's max_model_len)")
    if replay_ours and in_graph:
        raise WorkbenchError("--replay-ours and --in-graph are two timings: choose one")
    check_write_forms(in_graph, kv_write, fused_write)
    from workbench.measure.workload import PAGE_ORDERS
    if pages not in PAGE_ORDERS:
        raise WorkbenchError(f"--pages {pages!r}: choose from {', '.join(PAGE_ORDERS)}")
    from workbench.kernel.variant import graph_form
    graph_walk, graph_sched = graph_form(graph_walk, graph_sched)
    heads = head_shape(load_model(model), tp)
    su = load_suite(suite)
    devs = device_names()
    if not devs:
        raise WorkbenchError("no NVIDIA GPU visible: `workbench bench` measures on a GPU")
    from workbench.measure.emulation import resolve_target
    from workbench.tune.plan import emulate_mode
    g, plan, note = resolve_target(gpu, devs[0], emulate=emulate_mode(emulate))
    if plan and prefetch_map:
        raise WorkbenchError("--prefetch-map does not run under emulation: pass --no-emulate or the attached GPU")
    if plan and (replay_ours or in_graph):
        raise WorkbenchError(f"{'--in-graph' if in_graph else '--replay-ours'} does not run under emulation: "
                             "pass --no-emulate or the attached GPU")
    if prefetch_map:
        from workbench.bench.prefetch_map import prefetch_table, run_prefetch_map
        with Progress(transient=True, console=err) as prog:
            task = prog.add_task("prefetch map", total=len(su.specs(heads, dtype, block_size)))
            m = run_prefetch_map(heads=heads, dtype=dtype, block_size=block_size, suite=su, launches=launches,
                                 progress=lambda s: prog.update(task, advance=1, description=s))
        out_file.write_text(json.dumps(m, indent=1))
        out.print(prefetch_table(m))
        out.print(f"results: {out_file}")
        return
    pick, tuned_note = (tuned_picker(study, storage, heads, dtype, block_size, g.arch)
                        if {"tuned", "tuned-graph"} & set(names) else (None, ""))
    skipped = su.skipped_buckets(heads, dtype, block_size)
    emu = None
    if plan:
        from workbench.measure.greenctx import Emulation
        err.print(f"emulating: {plan.provenance()} · calibrating the throttle", highlight=False)
        emu = Emulation(plan, 0).start()
    try:
        with Progress(transient=True, console=err) as prog:
            task = prog.add_task("bench", total=len(su.bench_specs(heads, dtype, block_size)) * len(names))
            run = run_bench(heads=heads, dtype=dtype, block_size=block_size, suite=su, peers=names,
                            launches=launches, pick=pick, tuned_note=tuned_note, save=lambda r: r.save(out_file),
                            progress=lambda s: prog.update(task, advance=1, description=s), emu=emu,
                            graph_len=graph_len, graph_walk=graph_walk, graph_sched=graph_sched,
                            replay_ours=replay_ours, in_graph=in_graph, pages=pages, kv_write=kv_write,
                            fused_write=fused_write)
    finally:
        if emu is not None:
            emu.close()
    if skipped:
        run.notes.append(f"shapes over the suite's max_kv_gb skipped: {', '.join(skipped)}")
    if run.ceiling.get("gbps") and not plan:
        run.notes.append(g.ceiling_note(float(run.ceiling["gbps"])))
    if plan:
        run.notes.append(f"read ceiling inside the emulation {float(run.ceiling['gbps']):.0f} GB/s (the {g.name}'s spec "
                         f"{g.hbm_gbps:g} GB/s)")
        run.gpu["emulation"] = emu.plan.to_dict() if emu else plan.to_dict()
    run.save(out_file)
    out.print(bench_table(run))
    sm = run.to_dict()["summary"]
    for p, v in sm["geomean_speedup_of_tuned"].items():
        out.print(speedup_line(p, v, sm.get("geomean_missing_shapes_of_tuned", {}).get(p, []), sm.get("shapes", 0)))
    bf = sm.get("geomean_speedup_of_tuned_vs_best_flashinfer")
    if bf and bf.get("geomean"):
        out.print(f"tuned vs the best of {', '.join(bf['peers'])} per shape: geomean speedup {bf['geomean']:.2f}×")
    fa3 = sm.get("fa3_peer", "fa3")
    if sm.get("shapes_where_tuned_is_below_0.98_of_fa3"):
        out.print(f"tuned below 0.98× {fa3} on: {', '.join(sm['shapes_where_tuned_is_below_0.98_of_fa3'])}")
    for p, v in (sm.get("ragged_speedup_vs_fa3") or {}).items():
        if v:
            out.print(f"{p} vs {fa3} on ragged batches: " + ", ".join(f"{s} {x:.2f}×" for s, x in v.items()))
    for p, v in (sm.get("shapes_of_1gb_below_0.97_of_the_ceiling") or {}).items():
        if v:
            out.print(f"{p} below 0.97 of the read ceiling at ≥ 1 GB of KV: "
                      + ", ".join(f"{s} {x:.2f}" for s, x in v.items()))
    for p, v in (sm.get("geomean_speedup_of_tuned_graph") or {}).items():
        out.print(f"tuned-graph vs {p}: geomean speedup {v:.2f}×" if v else f"tuned-graph vs {p}: –")
    if sm.get("geomean_over_read"):
        out.print("time ÷ the paged read alone (the most a kernel reading the KV so could gain), geomean: "
                  + ", ".join(f"{p} {v:.2f}×" for p, v in sm["geomean_over_read"].items() if v))
    out.print("efficiency geomean: " + ", ".join(f"{p} {v:.2f}" for p, v in sm["efficiency_geomean"].items() if v))
    for ref in ("baseline", "simple"):
        if sm[f"shapes_where_tuned_is_slower_than_{ref}"]:
            out.print(f"tuned slower than {ref} on: {', '.join(sm[f'shapes_where_tuned_is_slower_than_{ref}'])}")
    for n in run.notes:
        out.print(f"note: {n}", highlight=False)
    if plot:
        out.print(f"plot: {bench_plot(run, plot)}")
    out.print(f"results: {out_file}")


@app.command("compare")
def compare_cmd(
    before: Path = typer.Argument(..., help="a `workbench bench --out` JSON: the run before the change"),
    after: Path = typer.Argument(..., help="the run after it"),
    peer: str = typer.Option("tuned-graph", help="the row to compare (tuned, tuned-graph, a peer)"),
    vs: str = typer.Option("fa3", help="the reference each run's rows are divided by, measured in that run"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of the table"),
) -> None:
    """One row of two bench runs side by side: each shape's time before and after, and its ratio to the
    reference peer in its own run (what a change of host does not move), geomeans and what moved > 2%."""
    from workbench.bench.compare import MOVE, compare_runs
    from workbench.bench.run import BenchRun
    from workbench.ui.report import compare_table

    cmp = compare_runs(BenchRun.load(before), BenchRun.load(after), peer=peer, vs=vs,
                       before_label=str(before), after_label=str(after))
    if as_json:
        print(json.dumps(cmp.to_dict(), indent=1))
        return
    out.print(compare_table(cmp))
    g = cmp.geomeans()
    if g["before_ratio"] and g["after_ratio"]:
        out.print(f"{vs} ÷ {peer}, geomean over {len(cmp.rows)} shapes: {g['before_ratio']:.3f}× → "
                  f"{g['after_ratio']:.3f}×", highlight=False)
    if g["time_change"]:
        out.print(f"{peer} time after ÷ before, geomean: {g['time_change']:.3f}", highlight=False)
    up, down = cmp.moved()
    out.print(f"gained on {vs} by more than {MOVE:.0%}: {', '.join(up) or 'none'}", highlight=False)
    out.print(f"lost to {vs} by more than {MOVE:.0%}: {', '.join(down) or 'none'}", highlight=False)
    for label, shapes in (("only in the before run", cmp.only_before), ("only in the after run", cmp.only_after)):
        if shapes:
            out.print(f"{label}: {', '.join(shapes)}", highlight=False)
    for n in cmp.notes:
        out.print(f"note: {n}", highlight=False)
