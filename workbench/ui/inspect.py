"""Read any capture the workbench makes (results JSON, .ncu-rep / ncu raw CSV, nsys .sqlite /
.nsys-rep) into rows of metrics; compare two variants; plot against prefetch distance.
Needs no GPU; a .ncu-rep needs ncu (to export it), a .nsys-rep needs nsys."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.measure.job import Results

COMPARE_KEYS = ("median_us", "gbps", "efficiency", "ncu_us", "dram_over_kv", "l2_demand_hit", "l2_hit_all",
                "long_scoreboard_pct", "occupancy_pct", "registers", "nsys_us")


def study_rows(target: str, storage: str | None) -> list[dict[str, Any]]:
    """`study:NAME` -> one row per trial; `study:NAME#N` -> one row per bucket of trial N."""
    from workbench.tune.storage import default_storage, open_study
    from workbench.tune.trial import Measurement
    name, _, num = target.removeprefix("study:").partition("#")
    h = open_study(name, storage or default_storage(False), None, create=False)
    trials = h.study.get_trials(deepcopy=False)
    if num:
        if not num.isdigit() or int(num) >= len(trials):
            raise WorkbenchError(f"study {name!r} has trials 0..{len(trials) - 1}; got #{num}")
        t = trials[int(num)]
        d = t.user_attrs.get("measurement")
        if not d:
            raise WorkbenchError(f"trial #{num} of {name!r} has no measurement ({t.state.name}: "
                                 f"{t.user_attrs.get('failure', 'not run yet')})")
        m = Measurement.from_dict(d)
        n = m.ncu or {}
        rows = [{"trial": t.number, "variant": m.name, "bucket": x.bucket, "median_us": x.median_us,
                 "p10_us": x.p10_us, "p90_us": x.p90_us, "efficiency": x.efficiency, "split": x.split}
                for x in m.timings]
        rows.append({"trial": t.number, "variant": m.name, "bucket": "ncu (profile shape)",
                     "median_us": n.get("duration_us"), "l2_demand_hit": n.get("l2_demand_hit_rate"),
                     "l2_hit_all": n.get("l2_hit_rate_all"), "dram_bytes": n.get("dram_bytes_read"),
                     "long_scoreboard_pct": n.get("long_scoreboard_pct"), "registers": n.get("registers")})
        return rows
    out = []
    for t in trials:
        d = t.user_attrs.get("measurement") or {}
        n = d.get("ncu") or {}
        out.append({"trial": t.number, "state": t.state.name, "variant": d.get("name", ""),
                    "geomean_us": d.get("geomean_us"), "l2_demand_hit": n.get("l2_demand_hit_rate"),
                    "l2_hit_all": n.get("l2_hit_rate_all"), "dram_bytes": n.get("dram_bytes_read"),
                    "failure": t.user_attrs.get("failure", "")})
    for lbl, d in (h.study.user_attrs.get("references") or {}).items():     # vLLM's own kernel
        n = d.get("ncu") or {}
        out.append({"trial": f"ref {lbl}", "state": "REFERENCE", "variant": d.get("name", ""),
                    "geomean_us": d.get("geomean_us"), "l2_demand_hit": n.get("l2_demand_hit_rate"),
                    "l2_hit_all": n.get("l2_hit_rate_all"), "dram_bytes": n.get("dram_bytes_read"), "failure": ""})
    return out


def load_target(path: str | Path, storage: str | None = None) -> tuple[str, Any]:
    """-> (kind, data): ('results', Results) | ('ncu', [kernel dicts]) | ('nsys', [RangeKernels])
    | ('study', [row dicts])."""
    if str(path).startswith("study:"):
        return "study", study_rows(str(path), storage)
    p = Path(path)
    if not p.exists():
        raise WorkbenchError(f"{p}: file not found")
    suf = p.suffix.lower()
    if suf == ".json":
        return "results", Results.load(p)
    if suf in (".csv", ".ncu-rep"):
        from workbench.measure.ncu import parse_raw_csv, read_kernels
        kernels = parse_raw_csv(p.read_text()) if suf == ".csv" else read_kernels(p)[0]
        if not kernels:
            raise WorkbenchError(f"{p}: no profiled kernels in it (expected `ncu --csv --page raw` output)")
        return "ncu", kernels
    if suf in (".sqlite", ".nsys-rep"):
        from workbench.measure.nsys import export_sqlite, find_nsys, range_kernels
        if suf == ".nsys-rep":
            nsys = find_nsys()
            if not nsys:
                raise WorkbenchError(f"{p}: reading a .nsys-rep needs nsys; export it to .sqlite on the GPU host")
            p = export_sqlite(nsys, p)
        return "nsys", range_kernels(p)
    raise WorkbenchError(f"{p}: unknown kind of file; give a results .json, .ncu-rep, ncu .csv, .sqlite or .nsys-rep")


def ncu_rows(kernels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from workbench.measure.ncu import DEMAND_HIT, DEMAND_READ, _num
    out = []
    for k in kernels:
        reads, hits = _num(k.get(DEMAND_READ, "")), _num(k.get(DEMAND_HIT, ""))
        out.append({"id": int(_num(k.get("ID", "0"))), "kernel": k.get("Kernel Name", ""),
                    "range": k.get("NVTX Range", ""),
                    "duration_us": _num(k.get("gpu__time_duration.sum", "")) / 1e3,
                    "dram_bytes": _num(k.get("dram__bytes_read.sum", "")),
                    "l2_demand_hit": hits / reads if reads else float("nan"),
                    "l2_hit_all": _num(k.get("lts__t_sector_hit_rate.pct", "")) / 100,
                    "long_scoreboard_pct": _num(k.get("smsp__warp_issue_stalled_long_scoreboard_per_warp_active.pct", "")),
                    "registers": _num(k.get("launch__registers_per_thread", ""))})
    return out


def compare(res: Results, a: str, b: str) -> list[dict[str, Any]]:
    """Side by side of two variant labels (per workload): value A, value B, B/A."""
    from workbench.ui.report import rows
    rs = rows(res)
    labels = {r["variant"] for r in rs}
    for x in (a, b):
        if x not in labels:
            raise WorkbenchError(f"no variant {x!r} in these results; present: {', '.join(sorted(labels))}")
    out = []
    for wl in dict.fromkeys(r["workload"] for r in rs):
        ra = next((r for r in rs if r["variant"] == a and r["workload"] == wl), None)
        rb = next((r for r in rs if r["variant"] == b and r["workload"] == wl), None)
        if not ra or not rb:
            continue
        for k in COMPARE_KEYS:
            va, vb = ra.get(k), rb.get(k)
            ratio = vb / va if isinstance(va, (int, float)) and isinstance(vb, (int, float)) and va else None
            out.append({"workload": wl, "metric": k, "a": va, "b": vb, "b_over_a": ratio})
    return out


