"""Measure `baseline` / `paper` (vLLM's own kernel) beside an existing study, with the study's own
suite and cold-L2 timing, and store them in it (what `workbench tune` now does on a study's first
run; for studies made before references existed). Run on a GPU host:
    python scripts/add_references.py STUDY STORAGE_URL
"""
from __future__ import annotations

import sys
import threading

from workbench.plan import backend_factory, config_from_study
from workbench.study import open_study, references
from workbench.tuner import measure_references


def main(study: str, storage: str) -> int:
    cfg = config_from_study(study, storage)
    cfg.role = "tune"
    h = open_study(study, storage, None, create=False)
    be = backend_factory(cfg)(0)
    be.setup()
    try:
        notes = measure_references(cfg, h, be, threading.Lock(), lambda ev: None)
    finally:
        be.close()
    for n in notes:
        print("note:", n)
    for k, m in references(h.study).items():
        print(f"{k}: {m.name} {m.geomean_us:.1f} us geomean, L2 demand hit {m.l2_demand_hit}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
