"""Record real measurements for the replay backend (CPU tests of the tuning loop).

Measures every variant of tests/fixtures/replay-space.yaml (llama-3.1-8b heads, bf16, block 16,
default suite, cold L2) on the attached GPU through the same worker the tuner uses, profiles
the passing ones with ncu on the suite's profile shape, and records one real failure per
test-only fault kind. Run on a GPU host:
    python scripts/record_replay.py OUT.json
    python scripts/record_replay.py --add-references OUT.json    # + baseline / paper (vLLM's kernel)
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from workbench.backend import WorkerBackend
from workbench.build import build_many
from workbench.gpuinfo import device_names
from workbench.plan import make_config
from workbench.space import enumerate_space, load_space
from workbench.variant import Variant


def add_references(path: str) -> int:
    """Measure `baseline` / `paper` (vLLM's own kernel) the same way and add them to a replay file."""
    from workbench.plan import backend_factory
    from workbench.variant import NAMED, REFERENCES
    root = Path(__file__).resolve().parent.parent
    cfg, _ = make_config(gpu="auto", model="llama-3.1-8b", space=str(root / "tests/fixtures/replay-space.yaml"),
                         trial_timeout=60.0)
    doc = json.loads(Path(path).read_text())
    be: WorkerBackend = backend_factory(cfg)(0)
    be.setup()
    builds = build_many([NAMED[r](**cfg.shape) for r in REFERENCES], cfg.gpu.arch)
    ms = [be.measure(b) for b in builds]
    for m in ms:
        print(f"{m.label} {m.name}: {m.status} {m.stage} {m.reason[:200]} {m.geomean_us:.1f} us", flush=True)
    note = be.profile(ms)
    if note:
        print(note)
    be.close()
    keys = {m.key for m in ms}
    doc["measurements"] = [d for d in doc["measurements"] if d["key"] not in keys] + [m.to_dict() for m in ms]
    doc["references_recorded"] = time.strftime("%Y-%m-%dT%H:%M:%S%z") + f" on {be.gpu.get('name')}"
    Path(path).write_text(json.dumps(doc, indent=1))
    return 0


def main(out: str) -> int:
    root = Path(__file__).resolve().parent.parent
    cfg, _ = make_config(gpu="auto", model="llama-3.1-8b", space=str(root / "tests/fixtures/replay-space.yaml"),
                         trial_timeout=25.0)
    en = enumerate_space(cfg.space, cfg.gpu.arch, **cfg.shape, group=cfg.heads.group)
    clean = [v for v in en.valid if v.fault == "none"]
    faults = [clean[0].with_(fault=f) for f in ("wrong_values", "oob_write", "hang")]
    from workbench.plan import backend_factory
    be: WorkerBackend = backend_factory(cfg)(0)
    be.setup()
    ms = []
    t0 = time.time()
    builds = build_many(clean + faults, cfg.gpu.arch)
    for i, b in enumerate(builds):
        m = be.measure(b)
        print(f"[{i + 1}/{len(builds)}] {m.name}: {m.status} {m.stage} {m.reason[:120]} "
              f"{m.geomean_us:.1f} us ({m.seconds:.1f} s)", flush=True)
        ms.append(m)
    for k in range(0, len(ms), 8):
        note = be.profile(ms[k:k + 8])
        if note:
            print(note)
    be.close()
    doc = {"recorded": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "gpu": be.gpu, "ceiling": be.ceiling,
           "how": "scripts/record_replay.py: worker backend, default suite, cold L2, 30 launches per bucket, "
                  "ncu on the profile shape",
           "config": cfg.study_config(), "seconds": time.time() - t0, "restarts": be.restarts,
           "measurements": [m.to_dict() for m in ms]}
    Path(out).write_text(json.dumps(doc, indent=1))
    print(f"{len(ms)} measurements, {be.restarts} worker restarts, {time.time() - t0:.0f} s -> {out}")
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "--add-references":
        sys.exit(add_references(sys.argv[2]))
    sys.exit(main(sys.argv[1]))
