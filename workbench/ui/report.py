"""Rich renderings of results (timing + ncu + nsys), shared by measure and inspect."""
from __future__ import annotations

from typing import Any

from rich.table import Table



def _f(x: Any, fmt: str) -> str:
    try:
        if x is None or x != x:
            return "–"
        return format(x, fmt)
    except (TypeError, ValueError):
        return "–"


def rows(res: Any) -> list[dict[str, Any]]:
    """Flat per-(variant, workload) rows with the figures inspect shows and compares."""
    out = []
    for r in res.results:
        n, s = r.get("ncu") or {}, r.get("nsys") or {}
        out.append({
            "variant": r["label"], "workload": r["workload_label"], "median_us": r["median_us"],
            "p10_us": r["p10_us"], "p90_us": r["p90_us"], "spread": r.get("spread"), "gbps": r["gbps"],
            "efficiency": r.get("efficiency") or None, "kv_bytes": r["kv_bytes"],
            "ncu_us": n.get("duration_us"), "dram_bytes": n.get("dram_bytes_read"),
            "dram_over_kv": (n["dram_bytes_read"] / r["kv_bytes"]) if n.get("dram_bytes_read") else None,
            "l2_demand_hit": n.get("l2_demand_hit_rate"), "l2_hit_all": n.get("l2_hit_rate_all"),
            "long_scoreboard_pct": n.get("long_scoreboard_pct"), "occupancy_pct": n.get("achieved_occupancy_pct"),
            "registers": n.get("registers"), "nsys_us": s.get("median_launch_us"),
            "prefetch_distance": r["variant"].get("prefetch_distance", 0),
        })
    return out


def results_table(res: Any, title: str | None = None) -> Table:
    g = res.gpu
    ceil = (res.ceiling or {}).get("gbps")
    t = Table(title=title or f"{g.get('name')} · driver {g.get('driver')} · ceiling "
              f"{_f(ceil, '.0f')} GB/s · SM {g.get('sm_clock_mhz')} MHz", title_justify="left")
    cols = ["variant", "workload", "median µs", "p10–p90 µs", "spread", "GB/s", "eff", "ncu µs",
            "DRAM/KV", "L2 hit demand", "L2 hit all", "long-sb %", "occ %", "regs", "nsys µs"]
    for c in cols:
        t.add_column(c, justify="left" if c in ("variant", "workload") else "right")
    for r in rows(res):
        t.add_row(r["variant"], r["workload"], _f(r["median_us"], ".1f"),
                  f"{_f(r['p10_us'], '.1f')}–{_f(r['p90_us'], '.1f')}", _f(r["spread"], ".1%"),
                  _f(r["gbps"], ".0f"), _f(r["efficiency"], ".2f"), _f(r["ncu_us"], ".1f"),
                  _f(r["dram_over_kv"], ".2f"), _f(r["l2_demand_hit"], ".1%"), _f(r["l2_hit_all"], ".1%"),
                  _f(r["long_scoreboard_pct"], ".0f"), _f(r["occupancy_pct"], ".0f"),
                  _f(r["registers"], ".0f"), _f(r["nsys_us"], ".1f"))
    return t


def top_table(summary: Any, k: int = 5) -> Table:
    """Top-k of a tune summary (fastest geomean first; ★ = on the Pareto front)."""
    from workbench.ui.tui import knobs
    from workbench.tune.peer_timing import ABSENT, FA3
    fa3 = (getattr(summary, "peers", None) or {}).get(FA3) or {}
    why = fa3.get("why_absent")          # None when FA3 was timed beside the study
    t = Table(title=f"top {k} of study {summary.study}", title_justify="left",
              caption=f"× FA3 {ABSENT}: {why}" if why else None, caption_justify="left")
    for c in ("trial", "P", "variant", "geomean µs", "× baseline", "× FA3", "mean eff", "L2 demand hit"):
        t.add_column(c, justify="left" if c in ("variant", "P") else "right")
    for r in summary.top[:k]:
        lbl = r["label"] if r["label"] in ("simple", "simple-pf") else ""
        t.add_row(str(r["trial"]), "★" if r["pareto"] else "", f"{lbl} {knobs(r['variant'])}".strip(),
                  _f(r["geomean_us"], ".1f"), _f(r["speedup_baseline"], ".2f"),
                  ABSENT if why else _f(r.get("speedup_fa3"), ".2f"), _f(r["efficiency_mean"], ".2f"),
                  _f(r["l2_demand_hit"], ".1%"))
    return t


def dispatch_table(d: dict[str, Any]) -> Table:
    """Best variant per (batch, context) bucket with its speedups over baseline, paper and FA3."""
    from workbench.tune.peer_timing import ABSENT
    from workbench.ui.tui import knobs
    why = d.get("fa3_note") or ""        # "" when FA3 was timed beside the study
    t = Table(title=f"dispatch table · {d['gpu']} · best overall: trial #{d['best_overall']['trial']}",
              title_justify="left", caption=f"× FA3 {ABSENT}: {why}" if why else None, caption_justify="left")
    for c in ("bucket", "batch", "context", "variant", "trial", "µs", "eff", "baseline µs", "× baseline",
              "paper µs", "× paper", "FA3 µs", "× FA3"):
        t.add_column(c, justify="left" if c in ("bucket", "variant", "batch", "context") else "right")
    for r in d["rows"]:
        b = r["bucket"]
        rng = lambda lo, hi: f"{lo}–{hi - 1}" if hi else f"{lo}+"  # noqa: E731
        band = r.get("band") or b               # a refined bucket split in bands of batch sizes: one row each
        t.add_row(f"b{b['batch']}x{b['context']}" + (f" · b{band['batch']}" if r.get("band") else ""),
                  rng(band["batch_lo"], band["batch_hi"]),
                  rng(b["context_lo"], b["context_hi"]), knobs(r["variant"]),
                  str(r["trial"]) + (" (refined)" if r.get("refined") else "")
                  + (f" (from {r['borrowed_from']})" if r.get("borrowed_from") else ""),
                  _f(r["median_us"], ".1f"), _f(r["efficiency"], ".2f"), _f(r["baseline_us"], ".1f"),
                  _f(r["speedup_baseline"], ".2f"), _f(r["paper_us"], ".1f"), _f(r["speedup_paper"], ".2f"),
                  ABSENT if why else _f(r.get("fa3_us"), ".1f"), ABSENT if why else _f(r.get("speedup_fa3"), ".2f"))
    return t


def refine_table(d: dict[str, Any]) -> Table:
    """Per bucket: each close call's geomean over the refine shapes (µs), × the study's pick, the pick."""
    from workbench.ui.tui import knobs
    alt = d.get("alt_margin") or 0.0          # what this refinement timed (stored before alternatives: none)
    t = Table(title=f"refinement · {d['study']} · {d['gpu']} · within {d['margin']:.0%} at the centre"
                    + (f" (and each CTA shape's fastest within {alt:.0%})" if alt else "") + ", "
                    f"{d['rounds']} rounds × {d['launches']} launches, cold L2", title_justify="left")
    for c in ("bucket", "shapes", "variant", "centre µs (study)", "geomean µs", "× study pick", "pick"):
        t.add_column(c, justify="left" if c in ("bucket", "shapes", "variant", "pick") else "right")
    from workbench.tune.refine import Refinement, at_batch
    ref = Refinement.from_dict(d)
    # graph rows: a batch row's captured launches, graph-bound at graph_len; "study pick" is the table's
    # pick at that bound, "centre" its bucket's centre
    for tag, rows in (("", ref.rows), (f" · graph {ref.graph_len}", ref.graph_rows)):
        for r in rows:
            own = next((c for c in r.candidates if c.key == r.study_key), None)
            for i, c in enumerate(r.candidates):
                gc, go = c.geomean_us, (own.geomean_us if own else None)
                mark = ("refined" if r.changed else "kept") if c.key == r.pick_key else ""
                t.add_row(r.bucket + tag if i == 0 else "", str(len(r.shapes)) if i == 0 else "", knobs(c.variant),
                          _f(c.centre_us, ".1f"), _f(gc, ".1f"), _f(go / gc if gc and go else None, ".3f"), mark)
            # --graph-rule band: each band's pick, its geomean at the band's batch and × the default there
            by = {c.key: c for c in r.candidates}
            for b in r.bands:
                sub = {c.key: c for c in at_batch(r.candidates, b.batch)}
                c, o = sub.get(b.pick_key), sub.get(r.study_key)
                rng = f"{b.batch_lo}–{b.batch_hi - 1}" if b.batch_hi else f"{b.batch_lo}+"
                t.add_row(f"  band {rng} (b{b.batch})", str(len(c.us)) if c else "",
                          knobs(by[b.pick_key].variant) if b.pick_key in by else b.pick_key[:8], "",
                          _f(c.geomean_us if c else None, ".1f"),
                          _f(o.geomean_us / c.geomean_us if c and o else None, ".3f"),
                          "band" + (" (default)" if b.pick_key == r.study_key else ""))
    return t


def bench_table(run: Any) -> Table:
    """Shapes down, peers across: median µs and efficiency (floor ÷ latency)."""
    g = run.gpu
    t = Table(title=f"{g.get('name')} · driver {g.get('driver')} · ceiling {run.ceiling.get('gbps', 0):.0f} GB/s · "
              f"{run.heads.get('model')} ({run.heads.get('num_heads')}/{run.heads.get('num_kv_heads')} d"
              f"{run.heads.get('head_size')}) {run.dtype} block {run.block_size} · cold L2 · µs (eff)", title_justify="left")
    t.add_column("shape")
    t.add_column("KV MB", justify="right")
    cols = [*run.peers, "floor"]
    for p in cols:
        t.add_column(p, justify="right")
    by = {(r.peer, r.shape): r for r in run.results}
    for shape in dict.fromkeys(r.shape for r in run.results):
        kv = next(r.kv_bytes for r in run.results if r.shape == shape)
        cells = []
        for p in cols:
            r = by.get((p, shape))
            cells.append("–" if not r or not r.median_us else f"{r.median_us:.1f} ({r.efficiency:.2f})")
        t.add_row(shape, f"{kv / 1e6:.0f}", *cells)
    return t


def compare_table(cmp: Any) -> Table:
    """`workbench compare`: one peer's rows of two bench runs, each beside its ratio to the reference
    measured in its own run (the column that survives a change of host)."""
    t = Table(title=f"{cmp.peer}: {cmp.before} → {cmp.after} · µs and {cmp.vs} ÷ {cmp.peer} in the same run",
              title_justify="left")
    for c in ("shape", "before µs", "after µs", "after ÷ before", f"÷ {cmp.vs} before", f"÷ {cmp.vs} after",
              "change", "variant"):
        t.add_column(c, justify="left" if c in ("shape", "variant") else "right")
    from workbench.bench.compare import MOVE
    for r in cmp.rows:
        ch = r.ratio_change
        mark = "" if ch is None else ("[green]" if ch > 1 + MOVE else "[red]" if ch < 1 - MOVE else "")
        t.add_row(r.shape, _f(r.before_us, ".1f"), _f(r.after_us, ".1f"), _f(r.time_change, ".3f"),
                  _f(r.before_ratio, ".2f"), _f(r.after_ratio, ".2f"), mark + _f(None if ch is None else ch - 1, "+.1%"),
                  "" if r.before_variant == r.after_variant else f"{r.before_variant} → {r.after_variant}")
    return t
