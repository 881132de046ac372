"""Nsight Systems driver: trace the measuring process (cuda + nvtx) and read per-NVTX-range
kernel time from the exported SQLite: range -> runtime calls of its thread inside it ->
kernels with the same correlation id. Every kernel launched inside a range is that range's;
its kernels are cut into launches by name (job.split_launches), never by an assumed count."""
from __future__ import annotations

import glob
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError


@dataclass
class RangeKernels:
    nvtx_range: str
    kernels: int
    launches: int
    median_launch_us: float        # time one launch's kernels cover (their union), median over launches
    total_kernel_us: float         # time the range's kernels cover (their union)
    range_us: float                 # wall time of the range itself
    kernel_names: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_nsys() -> str | None:
    cands = [os.environ.get("NSYS"), shutil.which("nsys"),
             *sorted(glob.glob("/opt/nvidia/nsight-systems/*/bin/nsys"), reverse=True),
             *sorted(glob.glob("/opt/nvidia/nsight-compute/*/host/target-linux-x64/nsys"), reverse=True)]
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


def _text(con: sqlite3.Connection, table: str) -> bool:
    return bool(con.execute("select name from sqlite_master where type='table' and name=?", (table,)).fetchone())


def timeline_split(intervals: list[tuple[int, int, str]], precedence: tuple[str, ...] = ()) -> tuple[int, dict[str, int]]:
    """(busy, {kind: ns}) of kernel intervals (start, end, kind) on the GPU's timeline: busy is the
    length of their union, split over the kinds by a sweep over the boundaries; time where kinds
    overlap goes to the first active kind of `precedence` (else the least name). A kernel launched
    with PDL starts inside the one before it and waits there, so its duration holds the other's
    tail: a sum of durations counts that tail twice (session 25)."""
    events: list[tuple[int, int, str]] = []
    for s, e, k in intervals:
        if e > s:
            events += [(s, 1, k), (e, -1, k)]
    events.sort(key=lambda x: (x[0], x[1]))     # ends before starts at one instant: no zero-length overlap
    active: dict[str, int] = {}
    own: dict[str, int] = {}
    last = None
    for t, d, k in events:
        if last is not None and t > last and active:
            who = next((p for p in precedence if p in active), None) or min(active)
            own[who] = own.get(who, 0) + t - last
        active[k] = active.get(k, 0) + d
        if active[k] == 0:
            del active[k]
        last = t
    return sum(own.values()), own


def covered_us(spans: list[tuple[int, int]]) -> float:
    """µs the (start, end) ns intervals cover, overlaps once (a PDL reduce inside its split kernel)."""
    return timeline_split([(s, e, "") for s, e in spans])[0] / 1e3


def range_kernels(sqlite_path: str | Path) -> list[RangeKernels]:
    """Per NVTX push/pop range: the kernels launched from inside it (same thread), their time;
    a launch's time = the time its kernels (split-K + reduce) cover, median over launches."""
    from workbench.measure.job import split_launches

    p = Path(sqlite_path)
    if not p.exists():
        raise WorkbenchError(f"{p}: file not found")
    con = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
    try:
        for t in ("NVTX_EVENTS", "CUPTI_ACTIVITY_KIND_RUNTIME", "CUPTI_ACTIVITY_KIND_KERNEL"):
            if not _text(con, t):
                raise WorkbenchError(f"{p}: no {t} table (was the capture made with -t cuda,nvtx?)")
        strings = dict(con.execute("select id, value from StringIds")) if _text(con, "StringIds") else {}
        ranges = con.execute(
            "select start, end, globalTid, coalesce(text, ''), textId from NVTX_EVENTS "
            "where end is not null and end > start order by start").fetchall()
        out = []
        for start, end, tid, text, text_id in ranges:
            name = text or strings.get(text_id, "")
            rows = con.execute(
                "select k.start, k.end, k.shortName from CUPTI_ACTIVITY_KIND_RUNTIME r "
                "join CUPTI_ACTIVITY_KIND_KERNEL k on k.correlationId = r.correlationId "
                "where r.globalTid = ? and r.start >= ? and r.end <= ? order by k.start",
                (tid, start, end)).fetchall()
            if not rows:
                continue
            names = [strings.get(n, str(n)) for _, _, n in rows]
            spans = [(int(s), int(e)) for s, e, _ in rows]
            launches = [covered_us([spans[i] for i in g]) for g in split_launches(names)]
            out.append(RangeKernels(name, len(rows), len(launches), statistics.median(launches), covered_us(spans),
                                    (end - start) / 1e3, sorted(set(names))))
        return out
    finally:
        con.close()


def export_sqlite(nsys: str, report: Path) -> Path:
    out = report.with_suffix(".sqlite")
    proc = subprocess.run([nsys, "export", "--type", "sqlite", "--force-overwrite", "true", "-o", str(out), str(report)],
                          capture_output=True, text=True)
    if proc.returncode != 0 or not out.exists():
        raise WorkbenchError(f"nsys export failed: {(proc.stderr or proc.stdout).strip()[-400:]}")
    return out


def trace_job(job: Any, workdir: Path) -> tuple[Any, list[RangeKernels] | None, str]:
    """Run a measure Job under nsys. Returns (results, per-range kernel times or None, note)."""
    from workbench.measure.job import Job, Results

    workdir.mkdir(parents=True, exist_ok=True)
    j = Job(**{**job.to_dict(), "ceiling": False, "profiler": "nsys"})
    job_path, res_path, rep = workdir / "nsys-job.json", workdir / "nsys-results.json", workdir / "trace.nsys-rep"
    job_path.write_text(json.dumps(j.to_dict()))
    nsys = find_nsys()
    if nsys is None:
        return None, None, "nsys not found: install Nsight Systems (skipped)"
    proc = subprocess.run([nsys, "profile", "-t", "cuda,nvtx", "-o", str(rep.with_suffix("")), "--force-overwrite",
                           "true", sys.executable, "-m", "workbench.measure.job", str(job_path), str(res_path)],
                          capture_output=True, text=True)
    if not res_path.exists():
        raise WorkbenchError(f"measuring under nsys failed: {(proc.stderr or proc.stdout).strip()[-600:]}")
    res = Results.load(res_path)
    if not rep.exists():
        return res, None, ("nsys could not build its report (QdstrmImporter needs libdw1/libelf1): "
                           + (proc.stderr or proc.stdout).strip()[-300:])
    try:
        db = export_sqlite(nsys, rep)
    except WorkbenchError as e:
        return res, None, str(e)
    return res, range_kernels(db), "ok"
