"""The tuned result: best variant per (batch, context) bucket of the suite, plus one best overall,
with each bucket's speedup over `baseline` and `paper` (vLLM's own kernel, measured beside the study)
and over FA3 (what vLLM serves with on Hopper, timed beside the study where it loads)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.kernel.variant import PARTITION_AUTO
from workbench.errors import WorkbenchError
from workbench.tune.refine import REFINE_ALT_MARGIN
from workbench.tune.trial import Measurement


@dataclass
class DispatchRow:
    bucket: dict[str, Any]
    variant: dict[str, Any]
    name: str
    key: str
    trial: int
    median_us: float
    efficiency: float
    baseline_us: float | None
    paper_us: float | None
    fa3_us: float | None = None          # vLLM's FA3 on this bucket, timed beside the study (None: not there)
    refined: bool = False                # the pick changed by `workbench refine` (tune.refine)
    borrowed_from: str = ""              # a bucket the study never timed: the pick of this neighbour (its µs)
    band: dict[str, int] | None = None   # {"batch", "batch_lo", "batch_hi"}: the bucket's batch sizes this row
                                         # serves, where refine's bands pick apart (None: the whole bucket)

    @property
    def batch_lo(self) -> int:
        return int((self.band or self.bucket)["batch_lo"])

    @property
    def batch_hi(self) -> int:
        """Exclusive; 0 = unbounded."""
        return int((self.band or self.bucket)["batch_hi"])

    def holds(self, num_seqs: int, max_seq_len: int) -> bool:
        """Whether a launch of num_seqs sequences up to max_seq_len tokens takes this row: its bucket's
        cell (Bucket.contains) with the band's batch sizes where it has one."""
        from workbench.measure.suite import Bucket
        return Bucket(**{**self.bucket, "batch_lo": self.batch_lo, "batch_hi": self.batch_hi}).contains(num_seqs, max_seq_len)

    @property
    def speedup_baseline(self) -> float | None:
        return self.baseline_us / self.median_us if self.baseline_us else None

    @property
    def speedup_paper(self) -> float | None:
        return self.paper_us / self.median_us if self.paper_us else None

    @property
    def speedup_fa3(self) -> float | None:
        return self.fa3_us / self.median_us if self.fa3_us else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["speedup_baseline"], d["speedup_paper"] = self.speedup_baseline, self.speedup_paper
        d["speedup_fa3"] = self.speedup_fa3
        return d


@dataclass
class GraphRow:
    """The variant the captured decode launches of a batch row run (`workbench refine`'s graph pick):
    vLLM replays every context of a batch size in one graph bounded at max_model_len."""
    batch_lo: int
    batch_hi: int                        # 0: unbounded
    label: str                           # tune.refine.graph_label
    variant: dict[str, Any]
    name: str
    key: str
    graph_len: int                       # the launch bound it was chosen at
    default_key: str                     # the table's own pick for (batch, graph_len)
    us: dict[str, float] = field(default_factory=dict)    # shape label -> graph-bound µs of the pick

    @property
    def changed(self) -> bool:
        return self.key != self.default_key


@dataclass
class DispatchTable:
    study: str
    gpu: str
    config: dict[str, Any]
    rows: list[DispatchRow]
    best_overall: dict[str, Any]
    variants: list[dict[str, Any]] = field(default_factory=list)     # distinct variants the rows use
    fa3_note: str = ""                   # why the rows have no FA3 time ("" when they have one)
    graph_rows: list[GraphRow] = field(default_factory=list)        # captured launches' picks per batch row

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "workbench-dispatch", "study": self.study, "gpu": self.gpu, "config": self.config,
                "rows": [r.to_dict() for r in self.rows], "best_overall": self.best_overall,
                "variants": self.variants, "fa3_note": self.fa3_note,
                "graph_rows": [asdict(g) for g in self.graph_rows]}

    def pick(self, num_seqs: int, max_seq_len: int) -> DispatchRow | None:
        """The row a per-shape launch takes: the first that holds it, as the exported pick_variant
        (None: no row does; the package falls back to the best overall)."""
        return next((r for r in self.rows if r.holds(num_seqs, max_seq_len)), None)

    def graph_pick(self, num_seqs: int) -> GraphRow | None:
        """The graph row whose batch range holds num_seqs (None: the table's pick at the bound)."""
        return next((g for g in self.graph_rows
                     if num_seqs >= g.batch_lo and (g.batch_hi == 0 or num_seqs < g.batch_hi)), None)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DispatchTable":
        # tables written before a field existed (fa3_us) load with its default
        rows = [DispatchRow(**{k: r[k] for k in DispatchRow.__dataclass_fields__ if k in r}) for r in d["rows"]]
        return cls(study=d["study"], gpu=d["gpu"], config=d["config"], rows=rows,
                   best_overall=d["best_overall"], variants=d.get("variants", []), fa3_note=d.get("fa3_note", ""),
                   graph_rows=[GraphRow(**g) for g in d.get("graph_rows", [])])


AUTO_PREFERENCE = 0.03    # see build_dispatch: robustness between bucket centres, for <= 3% at them


def build_dispatch(study: str, config: dict[str, Any], done: list[tuple[int, Measurement]],
                   refs: dict[str, Measurement] | None = None, fa3: Any = None,
                   refined: dict[str, str] | None = None, graph: Any = None,
                   bands: dict[str, list[Any]] | None = None) -> DispatchTable:
    """From a study's completed trials (trial number, measurement), its reference measurements and
    FA3's timings beside it (a tune.peer_timing.PeerTiming; None or not ok: no FA3 column values).
    refined: bucket label -> variant key settled by `workbench refine` (tune.refine.stored_picks),
    which takes the bucket over the centre's timing wherever that variant is among the trials.
    bands: bucket label -> tune.refine.GraphBand list (Refinement.bands): such a bucket becomes one row
    per band of batch sizes, each with its band's pick.
    graph: a tune.refine.Refinement whose graph picks become the table's graph rows."""
    from workbench.tune.peer_timing import why_absent
    from workbench.measure.suite import Suite
    if not done:
        raise WorkbenchError(f"study {study!r} has no completed trial yet: nothing to dispatch")
    suite = Suite.from_dict(config["suite"])
    ref = {lbl: (refs or {}).get(lbl) for lbl in ("baseline", "paper")}
    rows = []
    for b in suite.buckets():
        cands = [(n, m, m.timing(b.label)) for n, m in done]
        cands = [c for c in cands if c[2] is not None]
        if not cands:
            continue
        n, m, t = min(cands, key=lambda c: c[2].median_us)
        # a bucket serves every shape between its edges, but is timed at its centre only: a fixed
        # split tuned there leaves partial waves elsewhere (H200, t128 q4 s3, 1024-token partitions:
        # 0.77x of auto at b16x4k, which the b12x8k bucket serves). So an auto-split variant within
        # AUTO_PREFERENCE of the best at the centre takes the bucket.
        autos = [c for c in cands if c[1].variant.get("partition") == PARTITION_AUTO]
        if autos and m.variant.get("partition") != PARTITION_AUTO:
            an, am, at = min(autos, key=lambda c: c[2].median_us)
            if at.median_us <= (1 + AUTO_PREFERENCE) * t.median_us:
                n, m, t = an, am, at
        # refine timed the close calls (and each CTA shape's fastest) off the centre too: its pick replaces
        # the centre's guess (while it is still among them: trials measured since may have left it behind)
        def settled(key: str | None) -> tuple[int, Measurement, Any] | None:
            own = [c for c in cands if c[1].key == key and c[2].median_us <= (1 + REFINE_ALT_MARGIN) * t.median_us]
            return min(own, key=lambda c: c[2].median_us) if own else None
        study_key = m.key
        got = settled((refined or {}).get(b.label))
        if got:
            n, m, t = got
        bt = ref["baseline"].timing(b.label) if ref["baseline"] else None
        pt = ref["paper"].timing(b.label) if ref["paper"] else None
        ft = fa3.timing(b.label) if fa3 is not None and fa3.ok else None
        parts = [(None, (n, m, t))]
        if got and (bands or {}).get(b.label):
            parts = [({"batch": g.batch, "batch_lo": g.batch_lo, "batch_hi": g.batch_hi}, settled(g.pick_key) or (n, m, t))
                     for g in bands[b.label]]
        for band, (bn, bm, btm) in parts:
            rows.append(DispatchRow(bucket=b.to_dict(), variant=bm.variant, name=bm.name, key=bm.key, trial=bn,
                                    median_us=btm.median_us, efficiency=btm.efficiency,
                                    baseline_us=bt.median_us if bt else None, paper_us=pt.median_us if pt else None,
                                    fa3_us=ft.median_us if ft else None, refined=bm.key != study_key, band=band))
    rows += borrowed_rows(suite, rows)
    n, best = min(done, key=lambda x: x[1].geomean_us)
    grows = graph_rows(suite, graph, done) if graph is not None else []
    used = {**{r.key: r.variant for r in rows}, **{g.key: g.variant for g in grows}}
    return DispatchTable(study=study, gpu=best.gpu, config=config, rows=rows,
                         best_overall={"trial": n, "name": best.name, "key": best.key, "variant": best.variant,
                                       "geomean_us": best.geomean_us},
                         variants=list(used.values()), fa3_note="" if fa3 is not None and fa3.ok else why_absent(fa3),
                         graph_rows=grows)


def borrowed_rows(suite: Any, rows: list[DispatchRow]) -> list[DispatchRow]:
    """Rows for the buckets the study never timed (over the tune suite's max_kv_gb): each takes the
    pick of its nearest timed neighbour, the same context at the largest smaller batch, else the same
    batch at the longest shorter context. The study's best overall, which served them before, can be
    a variant sized for small batches: at qwen2.5-7b b256 x 16k it was a GQA-7 group split over two
    CTAs (every KV byte read twice), 0.73x FA3; with b48 x 24k's pick 0.98x (H200, 2026-11-29). µs and efficiency are the neighbour's at its centre; no reference times."""
    timed = {(r.bucket["batch"], r.bucket["context"]): r for r in rows}
    out = []
    for b in suite.buckets():
        if (b.batch, b.context) in timed:
            continue
        same_ctx = [k for k in timed if k[1] == b.context and k[0] < b.batch]
        same_batch = [k for k in timed if k[0] == b.batch and k[1] < b.context]
        src = max(same_ctx) if same_ctx else (max(same_batch, key=lambda k: k[1]) if same_batch else None)
        if src is None:
            continue
        r = timed[src]
        out.append(DispatchRow(bucket=b.to_dict(), variant=r.variant, name=r.name, key=r.key, trial=r.trial,
                               median_us=r.median_us, efficiency=r.efficiency, baseline_us=None, paper_us=None,
                               fa3_us=None, borrowed_from=f"b{src[0]}x{src[1]}"))
    return out


def study_dispatch(name: str, study: Any, config: dict[str, Any], done: list[tuple[int, Measurement]],
                   fa3: Any = None) -> DispatchTable:
    """The dispatch a stored study stands for: its trials, references and `workbench refine`'s picks
    (its graph picks included)."""
    from workbench.tune.refine import stored
    from workbench.tune.storage import references
    ref = stored(study)
    return build_dispatch(name, config, done, references(study), fa3, refined=ref.picks() if ref else None, graph=ref,
                          bands=ref.bands() if ref else None)


def graph_rows(suite: Any, ref: Any, done: list[tuple[int, Measurement]]) -> list[GraphRow]:
    """A refinement's graph picks as rows of the table: each batch row's range from its buckets,
    the picked variant from the trials (a pick no longer among them is left out)."""
    from workbench.tune.refine import graph_label, shape_batch
    by_key = {m.key: m for _, m in done if m.ok}
    ranges = {graph_label(b): (b.batch_lo, b.batch_hi) for b in suite.buckets()}
    out = []
    for r in ref.graph_rows:
        if r.bucket not in ranges:
            continue
        # under the band rule a row's captured sizes are split in bands, each with its own pick
        parts = [(f"{r.bucket}:b{b.batch}", b.batch_lo, b.batch_hi, b.pick_key, b.batch) for b in r.bands] \
            or [(r.bucket, *ranges[r.bucket], r.pick_key, None)]
        for label, lo, hi, key, batch in parts:
            m = by_key.get(key)
            if m is None:
                continue
            pick = next((c for c in r.candidates if c.key == key), None)
            us = {s: v for s, v in (pick.us if pick else {}).items() if batch is None or shape_batch(s) == batch}
            out.append(GraphRow(batch_lo=lo, batch_hi=hi, label=label, variant=m.variant, name=m.name, key=m.key,
                                graph_len=ref.graph_len, default_key=r.study_key, us=us))
    return out
