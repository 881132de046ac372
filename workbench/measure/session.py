"""One measurement session: time (plain process), then optionally ncu and nsys captures of the
same job, merged into one results file. Each capture runs in its own process."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.measure.job import Job, Results


def measure(job: Job, out_dir: Path, profile: str = "none", ncu_launches: int = 3) -> tuple[Results, list[str]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    job_path, res_path = out_dir / "job.json", out_dir / "timing.json"
    job_path.write_text(json.dumps(job.to_dict()))
    proc = subprocess.run([sys.executable, "-m", "workbench.measure.job", str(job_path), str(res_path)],
                          capture_output=True, text=True)
    if proc.returncode != 0 or not res_path.exists():
        msg = proc.stderr.strip().splitlines()
        raise WorkbenchError(msg[-1].removeprefix("error: ") if msg else "measuring process failed")
    res = Results.load(res_path)
    if profile in ("ncu", "all"):
        from workbench.measure.ncu import profile_job
        nres, metrics, rep = profile_job(job, out_dir, ncu_launches)
        res.profile["ncu"] = nres.profile
        by = {m.nvtx_range: m.to_dict() for m in metrics}
        for r in res.results:
            r["ncu"] = by.get(r["nvtx_range"])
    if profile in ("nsys", "all"):
        from workbench.measure.nsys import trace_job
        _, ranges, note = trace_job(job, out_dir)
        notes.append(f"nsys: {note}")
        res.profile["nsys"] = {"note": note, "ranges": [r.to_dict() for r in ranges or []]}
        by = {r.nvtx_range: r.to_dict() for r in ranges or []}
        for r in res.results:
            r["nsys"] = by.get(r["nvtx_range"])
    res.save(out_dir / "results.json")
    return res, notes
