"""bench.pickers (split from bench.py)."""
from __future__ import annotations

import math
from typing import Any, Callable

from workbench.errors import WorkbenchError


def tuned_picker(study: str | None, storage: str | None, heads: Any, dtype: str, block_size: int,
                 arch: str) -> tuple[Callable[[Any], Any], str]:
    """The study's dispatch table, or (no study) the best of a small built-in sweep per shape. A spec
    with graph=True is a captured launch (bench's tuned-graph row): its batch row's graph pick
    (`workbench refine`) where the study has one."""
    from workbench.kernel.variant import Variant
    if study:
        from workbench.tune.dispatch import study_dispatch
        from workbench.tune.storage import default_storage, open_tuned
        from workbench.measure.suite import shape_label
        h, cfg, done = open_tuned(study, storage or default_storage(False))
        if cfg.get("heads", {}).get("num_heads") != heads.num_heads or cfg.get("heads", {}).get("num_kv_heads") != heads.num_kv_heads \
                or cfg.get("dtype") != dtype or cfg.get("block_size") != block_size:
            raise WorkbenchError(f"study {study!r} was tuned for {cfg.get('model')} tp{cfg.get('tp')} {cfg.get('dtype')} "
                                 f"block {cfg.get('block_size')}: bench that shape (--model/--tp) or pick another study")
        table = study_dispatch(study, h.study, cfg, done)
        best = Variant.from_dict(table.best_overall["variant"])

        def pick(spec: Any) -> Any:
            g = table.graph_pick(spec.num_seqs) if getattr(spec, "graph", False) else None
            # the first row holding the shape, as the exported pick_variant: a bucket the study never timed
            # takes its neighbour's pick (dispatch.borrowed_rows), a refined bucket may be split in bands of
            # batch sizes; a shape no row holds, the study's best overall (the package's BEST)
            r = None if g else table.pick(spec.num_seqs, spec.max_seq_len)
            return Variant.from_dict((g or r).variant) if (g or r) else best
        # without graph picks a captured launch takes the table's pick at the bound, which can be
        # far from the best for short batches (70b TP8 b64 x 1k: 26.4 us against 19.2 per shape)
        graphs = (f", graph picks for {len(table.graph_rows)} batch rows" if table.graph_rows else
                  "; no graph picks: tuned-graph takes the table's pick at the bound "
                  "(`workbench refine --graph-len N` times picks per batch row)")
        pick.table = table                    # type: ignore[attr-defined]  # a study's (bench: ragged rows' graph pick)
        banded = len({shape_label(r.bucket["batch"], r.bucket["context"]) for r in table.rows if r.band})
        bands = f", {banded} split in bands of batch sizes" if banded else ""
        return pick, f"tuned = dispatch table of study {study} ({len(table.rows)} rows{bands}{graphs})"
    return _sweep_picker(heads, dtype, block_size, arch), "tuned = best of a built-in sweep per shape (no --study)"


def _sweep_picker(heads: Any, dtype: str, block_size: int, arch: str) -> Callable[[Any], Any]:
    import torch

    from workbench.kernel.build import build_many
    from workbench.measure.gpuinfo import gpu_info
    from workbench.kernel.launch import load
    from workbench.measure.timing import time_variant
    from workbench.kernel.variant import Variant
    g = heads.group
    # one CTA per GQA group when it fits (group 7 for qwen2.5-7b: 7, not a power of two)
    hpc = g if g <= 8 else max(x for x in (1, 2, 4, 8) if g % x == 0)
    base = dict(head_size=heads.head_size, block_size=block_size, dtype=dtype)
    # register-load layouts the first H100 study liked, and their cp.async-staged counterparts
    # (stages 3-4 won 1.1-1.2x from 134 MB up in scripts/stages_probe.py)
    cands = [Variant(**base, threads=t, heads_per_cta=q, partition=p, prefetch_distance=d,
                     prefetch_target="kv" if d else "none", stages=st)
             for t, q, p, d, st in ((128, hpc, -1, 1, 0), (128, hpc, 1024, 1, 0), (256, min(2, hpc), -1, 0, 0),
                                    (256, min(2, hpc), 256, 0, 0), (128, hpc, 1024, 0, 3), (128, hpc, 1024, 0, 4),
                                    (128, hpc, -1, 0, 3), (256, hpc, -1, 0, 4), (256, min(2, hpc), 256, 0, 3),
                                    (128, hpc, 256, 0, 3))]
    cands = [c for c in dict.fromkeys(cands) if c.is_valid(arch)]
    built = [b for b in build_many(cands, arch) if b.ok]
    info = gpu_info(0)
    cache: dict[str, Any] = {}

    def pick(spec: Any) -> Any:
        if spec.label not in cache:
            best = None
            for b in built:
                k = load(b, 0)
                try:
                    t = time_variant(k, spec, info, launches=30).median_us
                except Exception:
                    t = math.inf
                finally:
                    k.close()
                if best is None or t < best[0]:
                    best = (t, b.variant)
            cache[spec.label] = best[1]
            torch.cuda.empty_cache()
        return cache[spec.label]
    return pick
