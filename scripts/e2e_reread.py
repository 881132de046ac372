"""Re-read an e2e run's saved nsys captures with the current accounting (workbench.e2e.attention_share):
the shares of the given backends are recomputed from their SQLite exports, and the table, the step
breakdown and the clock lines are printed again. For a run captured before an accounting fix
(session 25: CUSTOM's PDL kernels were counted twice), without measuring anything again.

  python3 scripts/e2e_reread.py RUN/e2e.json[.gz] [FLASH_ATTN=a.sqlite[.xz] CUSTOM=b.sqlite[.xz]] [--out NEW.json]
                                [--floor-from EARLIER/e2e.json[.gz]]

Each share keeps its window's step count and takes `a` against the run's unprofiled ITL, as the run did.
`--floor-from EARLIER/e2e.json[.gz]` (with or without captures): the correctness verdicts judged against an
earlier run's TRITON_ATTN, as `workbench e2e --floor-from` does, for a run that did not measure it.
"""
from __future__ import annotations

import lzma
import shutil
import sys
import tempfile
from pathlib import Path

USAGE = __doc__.split("\n\n")[1]          # the docstring's usage lines


def _sqlite(path: str, tmp: Path) -> Path:
    p = Path(path)
    if p.suffix != ".xz":
        return p
    out = tmp / p.stem
    with lzma.open(p) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return out


def main(argv: list[str]) -> int:
    from rich.console import Console

    from workbench.e2e import compare
    from workbench.e2e.attention_share import share_from_window, window_kernels
    from workbench.e2e.results import E2eRun
    from workbench.errors import WorkbenchError

    from workbench.e2e.correctness import Tolerances
    from workbench.e2e.driver import _save, reused_floor

    args, opts = list(argv), {}
    for flag in ("--out", "--floor-from"):
        if flag in args:
            i = args.index(flag)
            opts[flag] = args[i + 1] if i + 1 < len(args) else None
            del args[i:i + 2]
    out = Path(opts["--out"]) if opts.get("--out") else None
    floor = opts.get("--floor-from")
    if (not args or None in opts.values() or (len(args) < 2 and floor is None)
            or any("=" not in a for a in args[1:])):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        run = E2eRun.load(args[0])
        if floor is not None:
            reused_floor(run, floor, Tolerances(**run.tolerances) if run.tolerances else Tolerances())
        with tempfile.TemporaryDirectory() as td:
            for spec in args[1:]:
                name, path = spec.split("=", 1)
                windows = window_kernels(_sqlite(path, Path(td)))
                measured = run.results.get(name)
                for s in [s for s in run.shares if s.backend == name]:
                    mp = measured.point(s.batch, s.context) if measured else None
                    new = share_from_window(name, s.batch, s.context, windows.get(s.label), s.steps,
                                            mp.itl_mean_ms if mp else None)
                    run.shares[run.shares.index(s)] = new
    except (WorkbenchError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rs = compare.rows(run)
    run.table, run.summary = [r.to_dict() for r in rs], compare.summary(run, rs)
    con = Console(width=220)
    con.print(compare.table(run))
    for line in compare.pooled_lines(run, run.summary.get("correctness_pooled") or {}):
        con.print(line, markup=False)
    for line in compare.breakdown_lines(run, run.summary.get("step_breakdown") or []):
        con.print(line, markup=False)
    for line in compare.clock_lines(run.summary.get("clocks") or {}):
        con.print(line, markup=False)
    if out is not None:
        _save(run, out)
        con.print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
