"""Nsight Compute driver: run the measuring process under ncu, one NVTX range per variant, and
read the metrics back: through ncu's own `ncu_report` Python module when it can be found
(`<ncu install>/extras/python`), else through `ncu --import --csv --page raw` (that CSV parser
also serves machines without ncu, on exported CSV files).

L2 hit rate is scored on demand loads: lookup_hit / read sectors from the SMs (tex unit).
`lts__t_sector_hit_rate.pct` counts the prefetch requests too, which inflates it: both are kept.
"""
from __future__ import annotations

import csv
import glob
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.measure.timing import NVTX_DOMAIN

DEMAND_READ = "lts__t_sectors_srcunit_tex_op_read.sum"
DEMAND_HIT = "lts__t_sectors_srcunit_tex_op_read_lookup_hit.sum"
METRICS = (
    "gpu__time_duration.sum",
    "dram__bytes_read.sum",
    DEMAND_READ,
    DEMAND_HIT,
    "lts__t_sector_hit_rate.pct",
    "lts__t_sector_op_read_hit_rate.pct",
    "smsp__warp_issue_stalled_long_scoreboard_per_warp_active.pct",
    "sm__warps_active.avg.pct_of_peak_sustained_active",
    "sm__throughput.avg.pct_of_peak_sustained_elapsed",
    "dram__throughput.avg.pct_of_peak_sustained_elapsed",
    "launch__registers_per_thread",
    "launch__shared_mem_per_block_dynamic",
    "launch__shared_mem_per_block_static",
)
ADDITIVE = ("gpu__time_duration.sum", "dram__bytes_read.sum", DEMAND_READ, DEMAND_HIT)


@dataclass
class NcuMetrics:
    """One variant x workload, medians over its profiled launches (kernels of a launch summed)."""
    nvtx_range: str
    launches: int
    duration_us: float
    dram_bytes_read: float
    l2_demand_read_sectors: float
    l2_demand_hit_sectors: float
    l2_demand_hit_rate: float           # scored
    l2_hit_rate_all: float              # lts__t_sector_hit_rate (prefetches included), main kernel
    l2_read_hit_rate: float
    long_scoreboard_pct: float
    achieved_occupancy_pct: float
    sm_throughput_pct: float
    dram_throughput_pct: float
    registers: int
    smem_dynamic: int
    smem_static: int
    kernels: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_ncu() -> str:
    cands = [os.environ.get("NCU"), shutil.which("ncu"), "/usr/local/cuda/bin/ncu",
             *sorted(glob.glob("/opt/nvidia/nsight-compute/*/ncu"), reverse=True)]
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    raise WorkbenchError("ncu (Nsight Compute) not found: install it (it ships with the CUDA toolkit) "
                         "and put it on PATH, or set NCU=/path/to/ncu; or use --profile none")


def ncu_version(ncu: str) -> str:
    out = subprocess.run([ncu, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"Version ([\d.]+)", out)
    return m.group(1) if m else out.strip().splitlines()[-1] if out.strip() else "unknown"


_PERM = ("ERR_NVGPUCTRPERM", "permission to access NVIDIA GPU Performance Counters")


def run_ncu(job_path: Path, results_path: Path, report: Path, ranges: list[str],
            metrics: tuple[str, ...] = METRICS) -> tuple[str, list[str]]:
    """Profile the ranges of a job; returns (ncu output, metrics that ncu did not know)."""
    ncu = find_ncu()
    dropped: list[str] = []
    metrics = tuple(metrics)
    for _ in range(4):
        cmd = [ncu, "--nvtx"]
        for r in ranges:
            cmd += ["--nvtx-include", f"{NVTX_DOMAIN}@{r}/"]
        cmd += ["--clock-control", "none", "--cache-control", "all", "--metrics", ",".join(metrics),
                "-o", str(report.with_suffix("")), "--force-overwrite",
                sys.executable, "-m", "workbench.measure.job", str(job_path), str(results_path)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        text = proc.stdout + proc.stderr
        if any(p in text for p in _PERM):
            raise WorkbenchError("ncu has no permission to read GPU performance counters "
                                 "(ERR_NVGPUCTRPERM): run as root, or set the driver option "
                                 "NVreg_RestrictProfilingToAdminUsers=0; or use --profile none")
        bad = re.findall(r"[Ff]ailed to find metric '?([\w.]+)", text)
        if bad:
            dropped += bad
            metrics = tuple(m for m in metrics if m not in bad)
            continue
        if proc.returncode != 0 or not report.exists():
            raise WorkbenchError(f"ncu failed (exit {proc.returncode}): {text.strip()[-800:]}")
        return text, dropped
    raise WorkbenchError(f"ncu rejected metrics repeatedly: {dropped}")


def find_ncu_report() -> Any | None:
    """ncu's Python report interface (ships with ncu, not on PyPI), or None."""
    try:
        import ncu_report  # type: ignore[import-not-found]
        return ncu_report
    except ImportError:
        pass
    try:
        ncu = find_ncu()
    except WorkbenchError:
        return None
    root = Path(os.path.realpath(ncu)).parent
    globs = [str(root / "extras" / "python"), str(root.parent / "*" / "extras" / "python"),
             str(root.parent / "nsight-compute*" / "extras" / "python"),
             "/opt/nvidia/nsight-compute/*/extras/python", "/usr/local/cuda*/nsight-compute*/extras/python"]
    for cand in (Path(p) for g in globs for p in sorted(glob.glob(g), reverse=True)):
        if (cand / "ncu_report.py").exists():
            sys.path.insert(0, str(cand))
            try:
                import ncu_report  # type: ignore[import-not-found]
                return ncu_report
            except ImportError:
                sys.path.remove(str(cand))
    return None


def _metric_value(m: Any) -> str:
    for get in ("as_double", "as_uint64", "as_string"):
        try:
            return str(getattr(m, get)())
        except Exception:                 # wrong accessor for this metric's type
            continue
    return ""


def read_report(report: Path, metrics: tuple[str, ...] = METRICS, module: Any = None) -> list[dict[str, Any]]:
    """A .ncu-rep through `ncu_report` -> the same kernel dicts as parse_raw_csv (base units),
    plus "NVTX Range": the innermost push/pop range of the workbench domain."""
    mod = module or find_ncu_report()
    if mod is None:
        raise WorkbenchError("ncu's ncu_report module not found")
    ctx = mod.load_report(str(report))
    kernels, kid = [], 0
    for ri in range(ctx.num_ranges()):
        rng = ctx.range_by_idx(ri)
        for ai in range(rng.num_actions()):
            a = rng.action_by_idx(ai)
            k: dict[str, Any] = {"ID": str(kid), "Kernel Name": a.name()}
            kid += 1
            names = set(a.metric_names())
            for name in metrics:
                if name in names:
                    k[name] = _metric_value(a.metric_by_name(name))
            k["NVTX Range"] = _nvtx_range(a)
            kernels.append(k)
    return kernels


def _nvtx_range(action: Any) -> str:
    try:
        st = action.nvtx_state()
        for did in st.domains():
            dom = st.domain_by_id(did)
            if dom.name() == NVTX_DOMAIN:
                rs = list(dom.push_pop_ranges())
                return rs[-1] if rs else ""
    except Exception:                     # no NVTX state recorded for this action
        pass
    return ""


def read_kernels(report: Path) -> tuple[list[dict[str, Any]], str]:
    """Kernel dicts of a .ncu-rep and how they were read ('ncu_report' or 'csv')."""
    mod = find_ncu_report()
    if mod is not None:
        try:
            return read_report(report, module=mod), "ncu_report"
        except Exception:                 # an ncu_report that cannot open this file: fall back
            pass
    return parse_raw_csv(export_csv(report)), "csv"


def export_csv(report: Path) -> str:
    ncu = find_ncu()
    proc = subprocess.run([ncu, "--import", str(report), "--csv", "--page", "raw", "--print-units", "base"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise WorkbenchError(f"ncu --import {report} failed: {proc.stderr.strip()[-400:]}")
    return proc.stdout


def _num(s: str) -> float:
    s = (s or "").replace(",", "").strip()
    try:
        return float(s)
    except ValueError:
        return float("nan")


_NVTX_COLUMN = "thread Domain:Push/Pop_Range"     # prefix of the CSV column naming a kernel's ranges


def _csv_nvtx_range(cell: str) -> str | None:
    """The innermost push/pop range of the workbench domain in ncu's CSV NVTX column, whose value
    reads `<tid>  "<domain>:<range>:<PL_Type>:<PL_Value>:<CLR_Type>:<Color>:<Msg_Type>:<Msg>" …`
    (one quoted entry per open range, outermost first; Msg is the range's name again). Range
    names hold ':' themselves (`variant :: workload`), hence the back-reference."""
    found = None
    for entry in re.findall(r'"([^"]*)"', cell or ""):
        m = re.fullmatch(rf"{re.escape(NVTX_DOMAIN)}:(.*):[^:]*:[^:]*:[^:]*:[^:]*:[^:]*:\1", entry.strip())
        if m:
            found = m.group(1)
    return found


def parse_raw_csv(text: str) -> list[dict[str, Any]]:
    """`ncu --csv --page raw --print-units base` -> one dict per profiled kernel, in ID order;
    "NVTX Range" holds the kernel's workbench range when the CSV has ncu's NVTX column."""
    lines = [l for l in text.splitlines() if l.startswith('"')]    # skip ==PROF== chatter
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    if not rows:
        return []
    header = rows[0]
    body = rows[1:]
    if body and body[0] and body[0][0] == "":                      # units row
        body = body[1:]
    kernels = [dict(zip(header, r)) for r in body if r and r[0] != ""]
    col = next((h for h in header if h.startswith(_NVTX_COLUMN)), None)
    if col is not None:
        for k in kernels:
            rng = _csv_nvtx_range(k.get(col, ""))
            if rng is not None:
                k["NVTX Range"] = rng
    kernels.sort(key=lambda k: int(_num(k.get("ID", "0"))))
    return kernels


def _launches_by_entry(kernels: list[dict[str, Any]], manifest: list[dict[str, Any]]) -> dict[str, list[list[dict[str, Any]]]]:
    """Each manifest entry's launches (lists of kernel dicts).

    By range, when the report names each kernel's NVTX range (ncu_report; the CSV's NVTX column):
    every kernel inside an entry's range is that entry's, whatever their number. Otherwise by
    order: the kernel stream is cut into launches by kernel name (job.split_launches) and handed
    out `launches` per entry, in the job's order; then the launch totals must agree."""
    from workbench.measure.job import split_launches

    def cut(ks: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        return [[ks[i] for i in g] for g in split_launches([k.get("Kernel Name", "") for k in ks])]

    if any(k.get("NVTX Range") for k in kernels):
        mine: dict[str, list[dict[str, Any]]] = {m["nvtx_range"]: [] for m in manifest}
        for k in kernels:
            if k.get("NVTX Range") in mine:
                mine[k["NVTX Range"]].append(k)
        return {r: cut(ks) for r, ks in mine.items()}
    launches = cut(kernels)
    want = sum(m["launches"] for m in manifest)
    if want != len(launches):
        raise WorkbenchError(f"ncu report holds {len(launches)} launches ({len(kernels)} kernels) and no NVTX "
                             f"range names; the job made {want} launches in ranges")
    out, at = {}, 0
    for m in manifest:
        out[m["nvtx_range"]] = launches[at:at + m["launches"]]
        at += m["launches"]
    return out


def metrics_per_range(kernels: list[dict[str, Any]], manifest: list[dict[str, Any]]) -> list[NcuMetrics]:
    """Metrics per (variant, workload) entry of `manifest` ({"nvtx_range", "launches"} each, in
    the job's order): additive metrics summed over a launch's kernels, the rest from its main
    (first) kernel, medians over launches. Launches whose kernel names differ from the entry's
    usual launch (a kernel ncu did not profile) are left out. An entry with no kernel in its
    range gets no metrics; the other entries keep theirs."""
    by = _launches_by_entry(kernels, manifest)
    out = []
    for m in manifest:
        launches = by.get(m["nvtx_range"]) or []
        if not launches:
            continue
        shapes = [tuple(k.get("Kernel Name", "") for k in ks) for ks in launches]
        usual = max(set(shapes), key=lambda s: (shapes.count(s), -shapes.index(s)))
        launches = [ks for ks, s in zip(launches, shapes) if s == usual]
        per_launch = []
        for ks in launches:
            main = ks[0]
            agg = {a: sum(_num(k.get(a, "nan")) for k in ks) for a in ADDITIVE}
            agg.update({k: _num(main.get(k, "nan")) for k in METRICS if k not in ADDITIVE})
            per_launch.append(agg)

        def med(key: str) -> float:
            vals = [p[key] for p in per_launch if p[key] == p[key]]
            return statistics.median(vals) if vals else float("nan")

        reads, hits = med(DEMAND_READ), med(DEMAND_HIT)
        out.append(NcuMetrics(
            nvtx_range=m["nvtx_range"], launches=len(launches),
            duration_us=med("gpu__time_duration.sum") / 1e3,
            dram_bytes_read=med("dram__bytes_read.sum"),
            l2_demand_read_sectors=reads, l2_demand_hit_sectors=hits,
            l2_demand_hit_rate=hits / reads if reads else float("nan"),
            l2_hit_rate_all=med("lts__t_sector_hit_rate.pct") / 100,
            l2_read_hit_rate=med("lts__t_sector_op_read_hit_rate.pct") / 100,
            long_scoreboard_pct=med("smsp__warp_issue_stalled_long_scoreboard_per_warp_active.pct"),
            achieved_occupancy_pct=med("sm__warps_active.avg.pct_of_peak_sustained_active"),
            sm_throughput_pct=med("sm__throughput.avg.pct_of_peak_sustained_elapsed"),
            dram_throughput_pct=med("dram__throughput.avg.pct_of_peak_sustained_elapsed"),
            registers=int(_nz(med("launch__registers_per_thread"))),
            smem_dynamic=int(_nz(med("launch__shared_mem_per_block_dynamic"))),
            smem_static=int(_nz(med("launch__shared_mem_per_block_static"))),
            kernels=list(usual)))
    return out


def _nz(x: float) -> float:
    return 0.0 if x != x else x


def profile_job(job: Any, workdir: Path, launches: int = 3) -> tuple[Any, list[NcuMetrics], Path]:
    """Run a measure Job under ncu (few launches per range: every one is replayed per pass)."""
    from workbench.measure.job import Job, Results
    from workbench.measure.timing import nvtx_range_name
    from workbench.kernel.variant import Variant
    from workbench.measure.workload import WorkloadSpec

    workdir.mkdir(parents=True, exist_ok=True)
    j = Job(**{**job.to_dict(), "launches": launches, "ceiling": False, "profiler": "ncu"})
    job_path, res_path, rep = workdir / "ncu-job.json", workdir / "ncu-results.json", workdir / "profile.ncu-rep"
    job_path.write_text(json.dumps(j.to_dict()))
    ranges = [nvtx_range_name(Variant.from_dict(v).label, WorkloadSpec.from_dict(w).label)
              for v in j.variants for w in j.workloads]
    _, dropped = run_ncu(job_path, res_path, rep, ranges)
    res = Results.load(res_path)
    csv_text = export_csv(rep)
    (workdir / "profile.ncu.csv").write_text(csv_text)
    manifest = [{"nvtx_range": r["nvtx_range"], "launches": r["launches"]} for r in res.results]
    kernels, reader = read_kernels(rep)
    metrics = metrics_per_range(kernels, manifest)
    res.profile = {"tool": "ncu", "version": ncu_version(find_ncu()), "report": str(rep), "reader": reader,
                   "dropped_metrics": dropped, "metrics": [m.to_dict() for m in metrics]}
    return res, metrics, rep
