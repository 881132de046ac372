"""Predict a saved e2e run again from another bench JSON (its k per point), without measuring anything:
e.g. k from `bench --in-graph --fused-write` (attention plus the step's KV write: a is then FLASH_ATTN's
attention and write share together), or from a bench timed on the e2e run's own host.

  python3 scripts/e2e_repredict.py RUN/e2e.json[.gz] BENCH.json[.gz] [--ours tuned-graph] [--ref fa3-packed] [--backend CUSTOM]

Prints the package's measured ÷ reference, the prediction and meas/pred per point, and how many are within ±2%.
"""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str]) -> int:
    from workbench.e2e.compare import PACKAGE_BACKEND, prediction_lines, rows, summary
    from workbench.e2e.prediction import RATIO_TOLERANCE, load_kernel_ratios
    from workbench.e2e.results import E2eRun

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run"), ap.add_argument("bench")
    ap.add_argument("--ours", default="auto"), ap.add_argument("--ref", default="fa3-packed")
    ap.add_argument("--backend", default="CUSTOM")
    a = ap.parse_args(argv)
    run = E2eRun.load(a.run)                       # both read .json or .json.gz
    kr = load_kernel_ratios(a.bench, ours=a.ours, ref=a.ref)
    run.bench = kr.to_dict()
    print(f"k = {kr.ref} / {kr.ours} from {a.bench}" + (" (attention + the step's KV write: a+write)"
                                                         if kr.includes_write else ""))
    got = [r for r in rows(run) if r.backend == a.backend and r.predicted is not None and r.ratio is not None]
    print(f"{'point':>10} {'a':>6} {'k':>6} {'measured':>9} {'predicted':>9} {'meas/pred':>9}")
    for r in got:
        print(f"{r.point:>10} {r.a:6.3f} {r.k:6.3f} {r.ratio:9.3f} {r.predicted:9.3f} {r.vs_predicted * 100:+8.1f}%")
    ok = sum(1 for r in got if abs(r.vs_predicted) <= RATIO_TOLERANCE)
    print(f"within ±{RATIO_TOLERANCE:.0%}: {ok} of {len(got)}")
    if a.backend == PACKAGE_BACKEND:         # and over the points whose two runs kept one SM clock
        for line in prediction_lines(run, summary(run).get("package")):
            print(line)
    return 0


if __name__ == "__main__":
    from workbench.errors import WorkbenchError
    try:
        sys.exit(main(sys.argv[1:]))
    except (WorkbenchError, OSError) as e:      # a wrong file or peer: one line, no traceback
        print(f"e2e_repredict: {e}", file=sys.stderr)
        sys.exit(2)
