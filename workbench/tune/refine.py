"""Refinement of a study's dispatch: the close calls of each bucket settled off its centre.

The tuner times every variant once per bucket, at the bucket's centre. Near the top the margins
are inside that noise (H200 v6 study: t128 s3 mma-u ahead of t256 s4 mma by 0.2% at b48 x 24k;
on the bench shapes that bucket serves t256 s4 mma is 1.5-2.1% ahead), and a bucket serves every
shape between its edges, not just the centre. So per bucket: the distinct variants within
`margin` of the best at the centre (at most `top`) are timed again, interleaved in rounds over one
shared cold-L2 rotation per shape, at the centre and at four shapes between the centre and the
bucket's edges; the lowest geometric mean takes the bucket, unless the study's own pick is within
`keep` of it (no churn on noise). Off-centre contexts are multiples of 1000 tokens, so they never
coincide with a bench suite shape (powers of two): what `bench` reports stays out of sample.

Graph picks (`graph_len` > 0): vLLM replays a decode batch in the CUDA graph captured for its batch
size, bounded at max_model_len, so one variant serves every context of that batch size there: the
one the dispatch picks for (batch, max_model_len), i.e. the long-context bucket's. On the H200 s2
study that variant ran b64 x 1k at 79.7 us in its graph-bound form where the short bucket's pick
runs 69.9 per shape. So per batch row of the suite, the row's picks and close calls are timed as
the exported backend's captured launches run them (graph-bound at `graph_len`, each sequence split
by its own length, the schedule built in) at the row's batch centre and midpoints × the centre
context of each of its buckets; the
lowest geomean becomes the row's graph pick (the default, the long-context pick, unless another is
more than `keep` faster). The neighbouring rows' defaults join each row's candidates: a row whose long
bucket is over the suite's KV cap never times a long-context pick of its own (graph_plan).
Export compiles them as the package's graph table (pick_graph_variant).

Stored on the study (user attribute "refinement", JSON): export, bench and tune's summary build the
dispatch with it; a second `workbench refine` reuses it unless the candidates changed."""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

from workbench.errors import WorkbenchError
from workbench.measure.stats import geomean
from workbench.tune.trial import Measurement

ATTR = "refinement"
REFINE_MARGIN = 0.03      # candidates: within this of the bucket's best at its centre
REFINE_TOP = 4            # ... at most this many variant families per bucket, the fastest of each (on 2026-11-29
                          # near-twins of the pick took the places of t256 s4 mma, 2.2% behind at b12 x 24k)
# knobs that make a near-twin, not another family: at a bucket's centre they move a variant by < 1%
TWIN_KNOBS = frozenset({"unified_ring", "prefetch_distance", "prefetch_target", "prefetch_op", "prefetch_hint"})
REFINE_KEEP = 0.005       # the study's pick stays unless another is more than this faster (geomean)
REFINE_ALT_MARGIN = 0.25  # also timed: the fastest variant of each CTA shape (heads per CTA, whole or split) within
                          # this of the centre's best. Off the centre the CTA count crosses wave edges, and there
                          # the shape the centre ranks 6-10% behind wins: 70b TP8 b256 x 1k ran 45.7 us with 8 heads
                          # per CTA whole-sequence, 54.9 with the bucket's 4 (H200 bench, 2026-11-29)
REFINE_BAND_KEEP = 0.05   # a table row's band leaves the row's pick only for a candidate this much faster over its
                          # shapes: a wave edge can fall between a band's two shapes (qwen2.5-7b b15-23: 4 heads per
                          # CTA won b15 x 2k by 18%, 8 won b17 x 2k by 19%, geomean 2.3% to the 8, and b16 x 1k ran
                          # 24.8 us against 19.1), the band wins kept were 8-22% (H200, 2026-11-29)
GRAPH_RULES = ("geomean", "worst", "band", "band-worst")   # a graph row's pick: lowest geomean over its shapes, least
                                             # worst-shape loss, or per band of batch sizes (lowest geomean at the
                                             # band's batch; band-worst: least worst-shape loss there)
GRAPH_RULE = "band-worst" # the default: per band (the captured sizes of a row differ by up to 3.7x in batch; band:
                          # the e2e grid 12 -> 13 of 13 points >= 0.99x FLASH_ATTN, perf-notes v13), each band's
                          # least worst-shape loss, not its lowest geomean (bench ÷ FA3 on the H200: qwen2.5-7b
                          # 0.981 -> 0.987, b1 x 32k 0.81 -> 0.99; llama-3.1-8b and 70b TP8 within noise;
                          # results/h200-2026-11-30-s24/1-fit-few, 2-fit-few)
REFINE_ROUNDS = 3         # interleaved rounds per shape (the median of the rounds' medians)
GRAPH_LEN = 32768         # graph picks' launch bound by default (bench's tuned-graph row's)


@dataclass
class RefineCandidate:
    key: str
    name: str
    variant: dict[str, Any]
    trial: int
    centre_us: float                      # the study's own timing at the centre
    us: dict[str, float] = field(default_factory=dict)     # shape label -> median of the rounds' medians

    @property
    def geomean_us(self) -> float:
        """Geometric mean over its shapes, the ragged batches (labels "r...") together weighing as much as
        all uniform shapes together (a graph row's 4 uniform shapes outvoted its 1 ragged one: qwen2.5-7b's
        b5-9 band picked a variant the step plan never schedules, r8 0.68x FA3; H200, 2026-11-29); inf where
        a shape refused it (never picked), nan when untimed."""
        if not self.us or not all(v > 0 for v in self.us.values()):
            return math.nan
        if any(v == math.inf for v in self.us.values()):
            return math.inf
        rag = [v for s, v in self.us.items() if s.startswith("r")]
        uni = [v for s, v in self.us.items() if not s.startswith("r")]
        parts = [g for g in (geomean(uni), geomean(rag)) if g is not None]
        g = math.sqrt(parts[0] * parts[1]) if len(parts) == 2 else (parts[0] if parts else None)
        return math.nan if g is None else g


@dataclass
class GraphBand:
    """The batch sizes [batch_lo, batch_hi) of a row nearest one of its measured batches (`batch`), and the
    variant they run: the lowest geomean over that batch's shapes. A graph row's under `--graph-rule band`
    (captured batch sizes); a table row's where a band picks apart from the row (pick_table_row)."""
    batch: int
    batch_lo: int
    batch_hi: int                         # exclusive; 0 = unbounded
    pick_key: str


@dataclass
class RefineRow:
    bucket: str
    shapes: list[str]
    candidates: list[RefineCandidate]
    study_key: str                        # the study's pick at the centre
    pick_key: str
    bands: list[GraphBand] = field(default_factory=list)    # graph rows under the band rule; table rows picking apart

    @property
    def changed(self) -> bool:
        return self.pick_key != self.study_key or any(b.pick_key != self.study_key for b in self.bands)

    def to_dict(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "shapes": self.shapes, "study_key": self.study_key, "pick_key": self.pick_key,
                "candidates": [asdict(c) for c in self.candidates], "bands": [asdict(b) for b in self.bands]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RefineRow":
        return cls(bucket=d["bucket"], shapes=list(d["shapes"]), study_key=d["study_key"], pick_key=d["pick_key"],
                   candidates=[RefineCandidate(**c) for c in d["candidates"]],
                   bands=[GraphBand(**b) for b in d.get("bands", [])])


@dataclass
class Refinement:
    study: str
    gpu: str                              # the device name it was measured on
    margin: float
    top: int
    keep: float
    launches: int
    rounds: int
    rows: list[RefineRow]
    seconds: float = 0.0
    created: str = ""
    graph_len: int = 0                    # launch bound of the graph picks (0: none made)
    graph_rows: list[RefineRow] = field(default_factory=list)   # bucket: a batch row's label (graph_label)
    graph_rule: str = "geomean"            # how a graph row's pick was chosen (GRAPH_RULES; stored before it existed: geomean)
    alt_margin: float = 0.0                # CTA-shape alternatives timed within this at the centre (stored before: none)
    graph_neighbours: bool = False         # graph rows also timed their neighbouring rows' defaults (stored before: no)
    graph_split_forms: bool = False        # ... and the split form of each whole-sequence pick (stored before: no)
    graph_rules: str = ""                  # variant.sched_rules() its graph-bound timings were taken under ("": before
                                           # it was recorded, SCHED_SPARSE off)

    def stale_rules(self) -> str:
        """"" where its graph-bound timings were taken under today's launch rules, else what to tell."""
        from workbench.kernel.variant import sched_rules
        if not self.graph_rows or self.graph_rules == sched_rules():
            return ""
        was = self.graph_rules or "recorded from 2026-11-30 on; earlier: sparse=0"
        return (f"its graph-bound timings ({self.created}) were taken under other launch rules ({was}; today "
                f"{sched_rules()}): its graph picks stand, `--again` on a GPU times today's launches")

    def picks(self) -> dict[str, str]:
        return {r.bucket: r.pick_key for r in self.rows}

    def bands(self) -> dict[str, list[GraphBand]]:
        """bucket label -> its bands of batch sizes where they pick apart from the row (pick_table_row)."""
        return {r.bucket: list(r.bands) for r in self.rows if r.bands}

    def graph_picks(self) -> dict[str, str]:
        """graph_label of a batch row -> the variant key its captured launches run."""
        return {r.bucket: r.pick_key for r in self.graph_rows}

    def covers(self, done: list[tuple[int, "Measurement"]], labels: set[str], margin: float, top: int,
               alt_margin: float = 0.0) -> bool:
        """Whether this refinement answers a refine of these buckets now: same margins and top, and no
        bucket has a close call or alternative it did not time (trials since may have added one)."""
        def wanted(label: str) -> set[str]:
            close = candidates(done, label, margin, top)
            return {c.key for c in close + alternatives(done, label, close, alt_margin)}
        return (self.margin == margin and self.top == top and self.alt_margin == alt_margin
                and {r.bucket for r in self.rows} == labels
                and all(wanted(r.bucket) <= {c.key for c in r.candidates} for r in self.rows))

    def covers_graph(self, graph_len: int, rule: str = GRAPH_RULE, neighbours: bool = True,
                     split_forms: bool = True) -> bool:
        """Whether its graph picks answer a refine with this bound (0: none asked), rule and candidate set."""
        return graph_len == 0 or (self.times_graph(graph_len, neighbours, split_forms) and self.graph_rule == rule)

    def times_graph(self, graph_len: int, neighbours: bool = True, split_forms: bool = True) -> bool:
        """Whether it holds graph-bound timings at this bound of the candidates a refine with `neighbours`
        and `split_forms` (graph_plan) times: any rule re-chooses from them."""
        return (self.graph_len == graph_len and bool(self.graph_rows) and self.graph_neighbours == neighbours
                and self.graph_split_forms == split_forms)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k not in ("rows", "graph_rows")}
        return {"kind": "workbench-refinement", **d, "rows": [r.to_dict() for r in self.rows],
                "graph_rows": [r.to_dict() for r in self.graph_rows]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Refinement":
        # refinements stored before graph picks existed load without them
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d and k not in ("rows", "graph_rows")},
                   rows=[RefineRow.from_dict(r) for r in d.get("rows", [])],
                   graph_rows=[RefineRow.from_dict(r) for r in d.get("graph_rows", [])])


def _round_ctx(x: float) -> int:
    return max(1000, int(round(x / 1000.0)) * 1000)


def refine_shapes(bucket: Any, fits: Callable[[int, int], bool] = lambda b, c: True) -> list[tuple[int, int]]:
    """(batch, context) shapes a bucket is refined on: its centre, then the geometric midpoints
    between the centre and each edge (an open edge: twice the centre), then the inner edges of its
    side bands of batch sizes (graph_bands), contexts rounded to a multiple of 1000 tokens (never a
    bench shape), each inside the bucket and kept only where `fits`. Why the inner edges: a band
    decided at one batch can sit on the far side of a wave edge from most of its batches (qwen2.5-7b
    b15-23 at b17: 4 heads per CTA puts 136 CTAs on 132 SMs there, 128 at b16; a 7-head whole-sequence
    variant won b17 x 2k by 27% and ran b16 x 1k 24% slower; H200, 2026-11-29)."""
    b, c = bucket.batch, bucket.context
    c_hi = bucket.context_hi - 1 if bucket.context_hi else 2 * c
    out = [(b, c)]
    for bb in batch_midpoints(bucket):
        out.append((bb, _round_ctx(c)))
    for cc in (math.sqrt(max(bucket.context_lo, 1) * c), math.sqrt(c * c_hi)):
        out.append((b, _round_ctx(cc)))
    bands = graph_bands(bucket)
    if len(bands) > 1:
        for bb in (bands[0][2] - 1, bands[-1][1]):
            out.append((bb, _round_ctx(c)))
    seen, kept = set(), []
    for s in out:
        if s not in seen and bucket.contains(*s) and fits(*s):
            seen.add(s)
            kept.append(s)
    return kept


def batch_midpoints(bucket: Any) -> tuple[int, int]:
    """The geometric midpoints between a bucket's batch centre and its lower and upper batch edges
    (an open upper edge: twice the centre)."""
    b = bucket.batch
    b_hi = bucket.batch_hi - 1 if bucket.batch_hi else 2 * b
    return max(1, round(math.sqrt(max(bucket.batch_lo, 1) * b))), max(1, round(math.sqrt(b * b_hi)))


def candidates(done: list[tuple[int, Measurement]], label: str, margin: float = REFINE_MARGIN,
               top: int = REFINE_TOP) -> list[RefineCandidate]:
    """Variants within `margin` of the best at bucket `label`'s centre, best first: the fastest of
    each family (variants differing only in TWIN_KNOBS), at most `top` of them."""
    best: dict[str, tuple[float, int, Measurement]] = {}
    for n, m in done:
        t = m.timing(label)
        if t is None or not m.ok:
            continue
        if m.key not in best or t.median_us < best[m.key][0]:
            best[m.key] = (t.median_us, n, m)
    if not best:
        return []
    ranked = sorted(best.values(), key=lambda x: x[0])
    lim = ranked[0][0] * (1 + margin)
    close = one_per_family([(t, n, m) for t, n, m in ranked if t <= lim], lambda x: x[2].variant)
    return [RefineCandidate(key=m.key, name=m.name, variant=m.variant, trial=n, centre_us=t)
            for t, n, m in close[:max(1, top)]]


def cta_shape(variant: dict[str, Any]) -> tuple[int, bool]:
    """What sets a launch's CTA count: heads per CTA, and whether a sequence is split (PARTITION_NONE is not)."""
    from workbench.kernel.variant import PARTITION_NONE
    return int(variant.get("heads_per_cta", 1)), variant.get("partition") != PARTITION_NONE


def alternatives(done: list[tuple[int, Measurement]], label: str, have: list[RefineCandidate],
                 margin: float = REFINE_ALT_MARGIN) -> list[RefineCandidate]:
    """The fastest variant at bucket `label`'s centre of each CTA shape (cta_shape) that `have` lacks,
    within `margin` of the best there, best first: a bucket's rows are refined off the centre, where
    another CTA count may fill the waves the centre's pick leaves ragged."""
    if margin <= 0:
        return []
    shapes = {cta_shape(c.variant) for c in have}
    out = []
    for c in candidates(done, label, margin, 10 ** 9):
        if cta_shape(c.variant) not in shapes:
            shapes.add(cta_shape(c.variant))
            out.append(c)
    return out


def one_per_family(items: list[Any], variant_of: Callable[[Any], dict[str, Any]]) -> list[Any]:
    """The first item of each variant family, in order."""
    seen: set[tuple[tuple[str, str], ...]] = set()
    out = []
    for it in items:
        fam = family(variant_of(it))
        if fam not in seen:
            seen.add(fam)
            out.append(it)
    return out


def family(variant: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """A variant's knobs without TWIN_KNOBS: what a refinement counts as one candidate."""
    return tuple(sorted((k, str(v)) for k, v in variant.items() if k not in TWIN_KNOBS))


def close_calls(done: list[tuple[int, Measurement]], labels: list[str], margin: float = REFINE_MARGIN) -> list[str]:
    """The buckets among `labels` where more than one distinct variant is within `margin` at the centre."""
    return [lbl for lbl in labels if len(candidates(done, lbl, margin, 2)) > 1]


def stored(study: Any) -> Refinement | None:
    d = study.user_attrs.get(ATTR)
    return Refinement.from_dict(d) if d else None


def stored_picks(study: Any) -> dict[str, str]:
    """bucket label -> refined variant key (empty: the study was never refined)."""
    r = stored(study)
    return r.picks() if r else {}


def choose(row_cands: list[RefineCandidate], study_key: str, keep: float = REFINE_KEEP) -> str:
    """The candidate with the lowest geomean over the shapes; the study's pick if within `keep` of it."""
    timed = [c for c in row_cands if c.geomean_us == c.geomean_us]
    if not timed:
        return study_key
    best = min(timed, key=lambda c: c.geomean_us)
    own = next((c for c in timed if c.key == study_key), None)
    if own is not None and own.geomean_us <= best.geomean_us * (1 + keep):
        return study_key
    return best.key


def choose_graph(row_cands: list[RefineCandidate], study_key: str, keep: float = REFINE_KEEP) -> str:
    """`refine --graph-rule worst`: a batch row's graph pick is the candidate that loses least at its
    worst shape (its time over the fastest candidate's there), geomean on ties; the default stays if
    within `keep` of that. Why one would: a captured graph serves every context of the row, and e2e
    targets are per point. Measured once against the geomean rule (docs/perf-notes.md v12)."""
    timed = [c for c in row_cands if c.us and c.geomean_us == c.geomean_us]
    if not timed:
        return study_key
    shapes = set.intersection(*(set(c.us) for c in timed))
    if not shapes:
        return choose(row_cands, study_key, keep)
    fastest = {s: min(c.us[s] for c in timed) for s in shapes}

    def worst(c: RefineCandidate) -> float:
        return max(c.us[s] / fastest[s] for s in shapes)
    best = min(timed, key=lambda c: (worst(c), c.geomean_us))
    own = next((c for c in timed if c.key == study_key), None)
    if own is not None and worst(own) <= worst(best) * (1 + keep):
        return study_key
    return best.key


def best_per_algorithm(done: list[tuple[int, Measurement]], label: str, graph_len: int = 0) -> list[str]:
    """The fastest variant of each algorithm (twopass, onepass) at bucket `label`'s centre: a graph row's
    candidates hold both even where one dominates every centre (the other may win off the centres).
    graph_len > 0: of the variants that split at that bound (splits_at), as graph candidates must."""
    first: dict[str, str] = {}
    for c in candidates(done, label, math.inf, 10 ** 9):       # fastest first, one per family
        if graph_len and not splits_at(c.variant, graph_len):
            continue
        first.setdefault(str(c.variant.get("algorithm", "twopass")), c.key)
    return list(first.values())


def graph_chooser(rule: str) -> Callable[[list[RefineCandidate], str, float], str]:
    """The row-wide pick function of a --graph-rule (GRAPH_RULES; band: geomean, then per band: pick_graph_row);
    a clear error for any other."""
    if rule not in GRAPH_RULES:
        raise WorkbenchError(f"--graph-rule {rule!r}: use one of {', '.join(GRAPH_RULES)}")
    return choose_graph if rule in ("worst", "band-worst") else choose


def graph_bands(bucket: Any) -> list[tuple[int, int, int]]:
    """(measured batch, batch_lo, batch_hi) per band of a batch row: the row's lower midpoint, centre and
    upper midpoint (the batches its graph shapes are timed at), split at their geometric midpoints."""
    from workbench.measure.suite import _edges            # the suite's own bucket edges, the row's at the ends
    ns = sorted({*batch_midpoints(bucket), bucket.batch})
    edges = _edges(ns)
    los, his = [bucket.batch_lo, *(lo for lo, _ in edges[1:])], [*(hi for _, hi in edges[:-1]), bucket.batch_hi]
    return [(n, lo, hi) for n, lo, hi in zip(ns, los, his) if not hi or lo < hi]


def shape_batch(label: str) -> int:
    """The batch of a shape label ("b65x8192" -> 65)."""
    return int(label[1:].split("x", 1)[0])


def at_batch(cands: list[RefineCandidate], batch: int) -> list[RefineCandidate]:
    """The candidates with only their timings at this batch (those timed there)."""
    return in_band(cands, batch, batch + 1)


def in_band(cands: list[RefineCandidate], lo: int, hi: int) -> list[RefineCandidate]:
    """The candidates with only their timings at batches in [lo, hi) (hi 0: unbounded), those timed there."""
    out = [replace(c, us={s: v for s, v in c.us.items() if lo <= shape_batch(s) and (not hi or shape_batch(s) < hi)})
           for c in cands]
    return [c for c in out if c.us]


GRAPH_RAGGED_GUARD = 0.03  # a graph pick is within this of the fastest candidate at each of its row's (band's) ragged
                           # batches: a server's captured steps are mostly ragged, and one ragged shape among a band's
                           # five let llama-3.1-8b's b5-9 band take onepass t256 q2 for 5-21% at b8 x 1k-32k while r8
                           # of 200-16k tokens went 62.6 -> 75.3 us (FA3 57; H200, 2026-11-30)


def ragged_guard(cands: list[RefineCandidate], guard: float = GRAPH_RAGGED_GUARD) -> list[RefineCandidate]:
    """The candidates within `guard` of the fastest at every ragged shape (labels "r...") all were timed at;
    all of them where none is (several ragged shapes, each won by another)."""
    rag = set.intersection(*(set(c.us) for c in cands)) if cands else set()
    rag = {s for s in rag if s.startswith("r")}
    if not rag:
        return cands
    fastest = {s: min(c.us[s] for c in cands) for s in rag}
    ok = [c for c in cands if all(c.us[s] <= fastest[s] * (1 + guard) for s in rag)]
    return ok or cands


def pick_graph_row(row: RefineRow, bucket: Any, rule: str, keep: float = REFINE_KEEP) -> RefineRow:
    """The row with its graph pick (and, under the band rule, its bands) chosen by `rule` from its timings.
    Why bands: vLLM captures one graph per batch size, and within a row (b24-87 on the H200) the long-context
    onepass variant leads by 7-20% at b34-48 and trails the twopass one by 2-4% at b65 from 2k tokens up."""
    pick = graph_chooser(rule)
    timed = len(row.candidates) > 1
    key = pick(ragged_guard(row.candidates), row.study_key, keep) if timed else row.study_key
    bands = []
    if rule in ("band", "band-worst") and timed:
        for n, lo, hi in graph_bands(bucket):
            sub = at_batch(row.candidates, n)
            bands.append(GraphBand(batch=n, batch_lo=lo, batch_hi=hi,
                                   pick_key=pick(ragged_guard(sub), row.study_key, keep) if len(sub) > 1 else key))
    return replace(row, pick_key=key, bands=bands)


def pick_table_row(row: RefineRow, bucket: Any, keep: float = REFINE_KEEP, band_keep: float = REFINE_BAND_KEEP,
                   edges: Callable[[dict[str, Any]], list[float]] | None = None) -> RefineRow:
    """A bucket's row with its pick (lowest geomean over its shapes, the study's pick within `keep`) and,
    where it differs from that, a pick per band of batch sizes (graph_bands: its lower midpoint, centre and
    upper midpoint): the candidate fastest (geomean) over the band's shapes (a side band: its midpoint and
    inner edge, refine_shapes), the row's pick within `band_keep`. A side band whose two batches are won
    by different candidates is split between them (split_band; `edges`: a variant's wave edges, wave_edges).
    Why bands: qwen2.5-7b's b24-87 x <4k bucket runs b65 x 2k 91 us with its pick (4 heads per CTA)
    and b34 x 2k 45 us; the per-shape dispatch serves a batch of 64 from it (FA3 0.84x; H200, 2026-11-29)."""
    if len(row.candidates) < 2:
        return replace(row, pick_key=row.study_key, bands=[])
    key = choose(row.candidates, row.study_key, keep)
    bands: list[GraphBand] = []
    gb = graph_bands(bucket)
    for i, (n, lo, hi) in enumerate(gb):
        sub = in_band(row.candidates, lo, hi)
        side = len(gb) > 1 and i in (0, len(gb) - 1)
        bands += (split_band(sub, lo, hi, key, band_keep, edges) if side else None) or \
            [GraphBand(batch=n, batch_lo=lo, batch_hi=hi, pick_key=choose(sub, key, band_keep) if len(sub) > 1 else key)]
    return replace(row, pick_key=key, bands=bands if any(b.pick_key != key for b in bands) else [])


def split_band(sub: list[RefineCandidate], lo: int, hi: int, key: str, keep: float,
               edges: Callable[[dict[str, Any]], list[float]] | None) -> list[GraphBand] | None:
    """A side band timed at two batches a < b whose winners (each the row's pick `key` within `keep`)
    differ: two bands, split at the first batch past a wave edge of either winner between a and b (where
    its whole-sequence launch passes a multiple of the SM count: the CTA count a partial wave comes from;
    the one nearest their geometric midpoint). None where the band is not split: one batch, one winner,
    or no wave edge between them (the two winners are then noise or something else: the band's geomean).
    Why: qwen2.5-7b's b15-23 band, 4 heads per CTA ahead at b15 x 2k by 18%, 7 at b17 x 2k by 27%, and a
    wave edge at 16.5 (132 SMs / 8 CTAs per sequence): either pick for the whole band lost b15-16 or b17-23."""
    batches = sorted({shape_batch(s) for c in sub for s in c.us})
    if len(batches) != 2 or len(sub) < 2:
        return None
    a, b = batches
    wa, wb = (choose(at_batch(sub, x), key, keep) for x in (a, b))
    if wa == wb:
        return None
    variant = {c.key: c.variant for c in sub}
    cut = [e for w in (wa, wb) for e in (edges(variant[w]) if edges else []) if a <= e < b]
    if not cut:                    # no wave edge explains the two winners: one pick for the band (its geomean)
        return None
    mid = math.sqrt(a * b)
    at = math.floor(min(cut, key=lambda e: abs(e - mid))) + 1
    return [GraphBand(batch=a, batch_lo=lo, batch_hi=at, pick_key=wa),
            GraphBand(batch=b, batch_lo=at, batch_hi=hi, pick_key=wb)]


def wave_edges(heads: dict[str, Any], sm_count: int) -> Callable[[dict[str, Any]], list[float]] | None:
    """variant -> the batch sizes (real numbers) at which one CTA per (sequence, KV head, heads_per_cta
    query heads) passes each multiple of sm_count, up to 8 waves (None without an SM count)."""
    if sm_count <= 0:
        return None
    kv, group = int(heads["num_kv_heads"]), int(heads["num_heads"]) // max(1, int(heads["num_kv_heads"]))

    def edges(variant: dict[str, Any]) -> list[float]:
        per_seq = kv * -(-group // max(1, int(variant.get("heads_per_cta", 1))))
        return [k * sm_count / per_seq for k in range(1, 9)]
    return edges


def rechoose_table(ref: Refinement, suite: Any, edges: Callable[[dict[str, Any]], list[float]] | None = None
                   ) -> Refinement:
    """The refinement with its table rows' picks and bands chosen again from the stored timings (no GPU)."""
    rows = {b.label: b for b in suite.buckets()}
    return replace(ref, rows=[pick_table_row(r, rows[r.bucket], ref.keep, edges=edges) if r.bucket in rows else r
                              for r in ref.rows])


def rechoose_graph(ref: Refinement, suite: Any, rule: str) -> Refinement:
    """The refinement with its graph picks chosen again by `rule` from the stored graph-bound timings
    (no GPU: the same measurements, another rule)."""
    rows = {graph_label(b): b for b in suite.buckets()}
    grows = [pick_graph_row(r, rows[r.bucket], rule, ref.keep) if r.bucket in rows else r for r in ref.graph_rows]
    return replace(ref, graph_rows=grows, graph_rule=rule)


Timer = Callable[[list[Any], Any, int], list[float]]   # (kernels, spec, launches) -> median µs each, one pass


def run_refine(study: str, cfg: dict[str, Any], done: list[tuple[int, Measurement]], *, study_picks: dict[str, str],
               gpu: str, margin: float = REFINE_MARGIN, top: int = REFINE_TOP, keep: float = REFINE_KEEP,
               launches: int = 30, rounds: int = REFINE_ROUNDS, timer: Callable[[list[RefineCandidate]], Any],
               graph_len: int = 0, graph_timer: Callable[[list[RefineCandidate]], Any] | None = None,
               fallback: str | None = None, graph_rule: str = GRAPH_RULE, alt_margin: float = REFINE_ALT_MARGIN,
               sm_count: int = 0, graph_neighbours: bool = True, graph_split_forms: bool = True,
               progress: Callable[[str], None] = lambda s: None) -> Refinement:
    """Refine every bucket of the study's suite. `study_picks`: bucket label -> the dispatch's key
    before refinement. `timer(cands)` -> a function (spec, launches) -> median µs per candidate for
    one pass over them (the GPU one: gpu_timer); rounds alternate the candidates' order. With
    graph_len > 0 (and `graph_timer`, timing graph-bound forms): each batch row's graph pick too;
    `fallback`: the key the table picks where no bucket row holds (batch, graph_len) (its best overall)."""
    from workbench.config.profiles import HeadShape
    from workbench.kernel.variant import sched_rules
    from workbench.measure.suite import RaggedShape, Suite, shape_label

    if rounds < 1 or launches < 1:
        raise WorkbenchError("refine: --rounds and --launches must be >= 1")
    if graph_len < 0 or (graph_len and graph_timer is None):
        raise WorkbenchError("refine: --graph-len must be >= 0 (0: no graph picks)")
    graph_chooser(graph_rule)
    suite = Suite.from_dict(cfg["suite"])
    heads = HeadShape(**cfg["heads"])
    t0 = time.perf_counter()

    def spec_of(b: int, c: Any) -> Any:
        if isinstance(c, RaggedShape):         # a graph row's ragged batch (graph_plan)
            return suite.ragged_spec(c, heads, cfg["dtype"], cfg["block_size"])
        return suite.uniform_spec(b, c, heads, cfg["dtype"], cfg["block_size"])
    fits = (lambda b, c: suite.fits(spec_of(b, c)))

    def timed(tag: str, cands: list[RefineCandidate], shapes: list[tuple[int, Any]], time_pass: Any) -> None:
        for b, c in shapes:
            label = label_of(b, c)
            progress(f"{tag} · {label} · {len(cands)} variants")
            samples: list[list[float]] = [[] for _ in cands]
            spec = spec_of(b, c)
            for r in range(rounds):
                order = list(range(len(cands)))[::(-1 if r % 2 else 1)]
                got = time_pass([cands[i] for i in order], spec, launches)
                for i, us in zip(order, got):
                    samples[i].append(us)
            for cand, s in zip(cands, samples):
                cand.us[label] = statistics.median(s)

    rows = []
    edges = wave_edges(cfg["heads"], sm_count)
    for bucket in suite.buckets():
        cands = candidates(done, bucket.label, margin, top)
        own = study_picks.get(bucket.label)
        if not cands or own is None:
            continue
        if own not in {c.key for c in cands}:       # the dispatch's own pick (e.g. an auto split) is always in
            extra = candidates(done, bucket.label, math.inf, 10 ** 9)
            cands += [c for c in extra if c.key == own]
        cands += alternatives(done, bucket.label, cands, alt_margin)
        shapes = refine_shapes(bucket, fits)
        if len(cands) > 1:
            timed(bucket.label, cands, shapes, timer(cands))
        rows.append(pick_table_row(RefineRow(bucket=bucket.label, shapes=[shape_label(b, c) for b, c in shapes],
                                             candidates=cands, study_key=own, pick_key=own), bucket, keep,
                                   edges=edges))
    grows = []
    if graph_len:
        picks = {**study_picks, **{r.bucket: r.pick_key for r in rows}}
        row_of = {graph_label(b): b for b in suite.buckets()}
        bands = {r.bucket: [b.pick_key for b in r.bands] for r in rows}
        for label, own, cands, shapes in graph_plan(suite, done, picks, graph_len, fits, margin, fallback,
                                                    neighbours=graph_neighbours,
                                                    band_picks=bands if graph_split_forms else None):
            if len(cands) > 1:
                timed(f"graph {label}", cands, shapes, graph_timer(cands))
            grows.append(pick_graph_row(RefineRow(bucket=label, shapes=[label_of(b, c) for b, c in shapes],
                                              candidates=cands, study_key=own, pick_key=own),
                                    row_of[label], graph_rule, keep))
    return Refinement(study=study, gpu=gpu, margin=margin, top=top, keep=keep, launches=launches, rounds=rounds,
                      rows=rows, seconds=time.perf_counter() - t0, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                      graph_len=graph_len, graph_rows=grows, graph_rule=graph_rule, alt_margin=alt_margin,
                      graph_neighbours=bool(graph_len) and graph_neighbours,
                      graph_split_forms=bool(graph_len) and graph_split_forms,
                      graph_rules=sched_rules() if graph_len else "")


def label_of(batch: int, shape: Any) -> str:
    """A refine shape's label: a uniform (batch, context) one's shape_label, a ragged batch's own."""
    from workbench.measure.suite import RaggedShape, shape_label
    return shape.label if isinstance(shape, RaggedShape) else shape_label(batch, shape)


GRAPH_TOP = 2             # close calls per bucket of a batch row that join its graph candidates
GRAPH_RAGGED_LO = 100     # a graph row's ragged batches: lengths log-uniform in [this, the bound] (RaggedShape),
GRAPH_RAGGED_SEED = 11    # ... drawn with this seed (not the bench suite's: its ragged rows stay out of sample)


def graph_label(bucket: Any) -> str:
    """A batch row of the suite (its buckets share the batch range), by its batch centre: "b48"."""
    return f"b{bucket.batch}"


def splits_at(variant: dict[str, Any], graph_len: int) -> bool:
    """Whether a variant's launch bounded at graph_len splits a sequence (not PARTITION_NONE, whose
    whole-sequence kernel gives a long sequence one CTA per head group)."""
    from workbench.kernel.variant import Variant
    return Variant.from_dict(variant).uses_split(1, 1, graph_len)      # one (sequence, head) at the bound


SPLIT_FORM_KNOBS = ("algorithm", "threads", "heads_per_cta", "mma")   # what a whole-sequence pick's split form keeps


def split_forms(done: list[tuple[int, Measurement]], label: str, keys: list[str | None], graph_len: int) -> list[str]:
    """For each whole-sequence variant among `keys` (one that does not split at graph_len): the fastest
    variant at bucket `label`'s centre with its CTA work (SPLIT_FORM_KNOBS) that does split there. A
    captured launch must split, so the whole-sequence pick never becomes a graph candidate, yet its CTA
    shape may be the one a row's batch fills the GPU with: llama-3.1-8b's b5-9 band picked onepass t256
    with 2 heads per CTA (16 CTAs a sequence, one wave at b8) and the graph ran twopass t256 with 4; its
    split form ran b8 x 1k-32k 3-21% faster graph-bound, and a ragged r8 20% slower, which the ragged
    guard (GRAPH_RAGGED_GUARD) then weighs (H200, 2026-11-30)."""
    variant_of = {m.key: m.variant for _, m in done if m.ok}
    whole = [variant_of[k] for k in dict.fromkeys(keys) if k in variant_of and not splits_at(variant_of[k], graph_len)]
    if not whole:
        return []
    out = []
    ranked = candidates(done, label, math.inf, 10 ** 9)            # fastest first, one per family
    for w in whole:
        want = tuple(w.get(k) for k in SPLIT_FORM_KNOBS)
        out += [c.key for c in ranked if tuple(c.variant.get(k) for k in SPLIT_FORM_KNOBS) == want
                and splits_at(c.variant, graph_len)][:1]
    return out


def graph_plan(suite: Any, done: list[tuple[int, Measurement]], picks: dict[str, str], graph_len: int,
               fits: Callable[[int, int], bool], margin: float = REFINE_MARGIN, fallback: str | None = None,
               neighbours: bool = True, band_picks: dict[str, list[str]] | None = None
               ) -> list[tuple[str, str, list[RefineCandidate], list[tuple[int, int]]]]:
    """Per batch row: (graph_label, the default graph pick: the dispatch's pick for (batch, graph_len),
    `fallback` where its bucket has none (a bucket over the suite's max_kv_gb: the package's best overall),
    the candidates: the default, the row's picks, the neighbouring rows' defaults (`neighbours`),
    with `band_picks` (bucket label -> its bands' picks; None: not asked) the split form (split_forms)
    of each whole-sequence pick of the row's buckets and of their bands,
    GRAPH_TOP close calls and the fastest of each algorithm at each of its buckets, one per family,
    the shapes: the row's batch centre and its midpoints to the row's edges, at its short end and at
    each of its buckets' centre contexts, and a ragged batch (RaggedShape) of each of those batches
    with lengths up to the bound).
    `fits(batch, context or RaggedShape)`: whether the suite times that shape."""
    from workbench.measure.suite import RaggedShape
    best: dict[str, tuple[int, Measurement]] = {}
    for n, m in done:
        if m.ok:
            best.setdefault(m.key, (n, m))
    rows: dict[str, list[Any]] = {}
    for b in suite.buckets():
        rows.setdefault(graph_label(b), []).append(b)
    # each row's default: the pick of the bucket a captured launch of its batch picks from
    homes = {label: suite.bucket_for(bs[0].batch, graph_len) for label, bs in rows.items()}
    owns = {label: picks.get(home.label, fallback) for label, home in homes.items()}
    labels = list(rows)
    out = []
    for at, (label, buckets) in enumerate(rows.items()):
        batch, home, own = buckets[0].batch, homes[label], owns[label]
        if own is None or own not in best:
            continue
        keys = [own] + [picks[b.label] for b in buckets if b.label in picks]
        # ... and the neighbouring rows' defaults: a row whose long bucket is over the suite's max_kv_gb
        # never times the long-context pick of the row below, and qwen2.5-7b's b160 row picked a twopass
        # variant its centres favoured that ran b256 x 1k-16k 11-13% slower than the b48 row's pick
        # does per shape (bench, H200, 2026-11-29)
        if neighbours:
            keys += [owns[n] for n in labels[max(0, at - 1):at + 2] if n != label and owns[n] is not None]
        for b in buckets:
            keys += [c.key for c in candidates(done, b.label, margin, GRAPH_TOP)] + best_per_algorithm(done, b.label, graph_len)
            if band_picks is not None:
                keys += split_forms(done, b.label, [picks.get(b.label), *band_picks.get(b.label, [])], graph_len)
        # a captured launch serves every length up to the bound: a variant that never splits runs a
        # max-length sequence on one CTA per head group, whatever the row's short shapes say (qwen2.5-7b:
        # the b48 row picked one, and a ragged r32 ran 380 us where FA3 ran 117; H200, 2026-11-29)
        keys = [k for i, k in enumerate(keys) if i == 0 or (k in best and splits_at(best[k][1].variant, graph_len))]
        cands = []
        for n, m in one_per_family([best[k] for k in dict.fromkeys(keys) if k in best], lambda x: x[1].variant):
            t = m.timing(home.label)
            cands.append(RefineCandidate(key=m.key, name=m.name, variant=m.variant, trial=n,
                                         centre_us=t.median_us if t is not None else math.nan))
        # a captured launch of any batch in the row: the centre and the geometric midpoints to its edges
        # (at the centre alone t128 s2 won b12 by 1.1% and ran b8 x 16k 16% slower: H200, 2026-11-29)
        batches = dict.fromkeys([batch, *batch_midpoints(buckets[0])])
        # ... and the row's short end (its shortest bucket's lower midpoint, ~1000 tokens): a graph serves
        # every context, and the centres alone (2048 up) let a row pick a variant 9% behind at b1 x 1k
        lo = min(buckets, key=lambda b: b.context)
        short = _round_ctx(math.sqrt(max(lo.context_lo, 1) * lo.context))
        shapes = [(n, short) for n in batches if short < lo.context and lo.contains(n, short) and fits(n, short)]
        shapes += [(n, b.context) for b in buckets for n in batches if b.contains(n, b.context) and fits(n, b.context)]
        # ... and ragged batches of the row's batches up to the bound: what a server's captured steps mostly
        # are. Uniform shapes alone let qwen2.5-7b's b12 row pick 8 CTAs per sequence, which the step plan
        # leaves unplanned: a ragged r32 ran 180 us where the bound's pick ran 115 (H200, 2026-11-29)
        rag = [(n, RaggedShape(n, GRAPH_RAGGED_LO, graph_len, GRAPH_RAGGED_SEED)) for n in batches if n >= 2]
        shapes += [(n, r) for n, r in rag if fits(n, r)]
        if shapes:
            out.append((label, own, cands, shapes))
    return out


def refine_study(study: str, storage: str, *, margin: float = REFINE_MARGIN, top: int = REFINE_TOP,
                 launches: int = 30, rounds: int = REFINE_ROUNDS, again: bool = False, graph_len: int = GRAPH_LEN,
                 graph_rule: str = GRAPH_RULE, alt_margin: float = REFINE_ALT_MARGIN, graph_neighbours: bool = True,
                 graph_split_forms: bool = True,
                 progress: Callable[[str], None] = lambda s: None) -> tuple[Refinement, Any, bool]:
    """`workbench refine`: (the refinement, the dispatch with it, whether it was measured now). A stored
    refinement that covers the study's close calls is returned unmeasured unless `again`. graph_len:
    the bound of the graph picks (vLLM's max_model_len; 0: none); graph_neighbours: each graph row also
    times its neighbouring rows' defaults (graph_plan; a refinement stored without them measures again)."""
    from workbench.measure.gpuinfo import device_names
    from workbench.measure.suite import shape_label
    from workbench.tune.dispatch import build_dispatch, study_dispatch
    from workbench.tune.storage import open_tuned, references

    if not 0 <= margin <= 0.5 or not 0 <= alt_margin <= 0.5:
        raise WorkbenchError("--margin and --alt-margin must be between 0 and 0.5")
    if top < 1 or rounds < 1 or launches < 30:
        raise WorkbenchError("--top and --rounds must be >= 1, --launches >= 30")
    if graph_len < 0:
        raise WorkbenchError("--graph-len must be >= 0 (vLLM's max_model_len; 0: no graph picks)")
    graph_chooser(graph_rule)                 # refused before the study is opened or a GPU looked for
    h, cfg, done = open_tuned(study, storage)
    if cfg.get("emulation"):
        raise WorkbenchError(f"study {study!r} was tuned under an emulation of {cfg['gpu']}: refine times on the "
                             "attached GPU as it is, so it does not refine emulated studies")
    base = build_dispatch(study, cfg, done, references(h.study))          # the centre's picks, unrefined
    sm_count = int((h.study.user_attrs.get("gpu_info") or {}).get("sm_count") or 0)   # the study's GPU (refine's too)
    picks = {shape_label(r.bucket["batch"], r.bucket["context"]): r.key for r in base.rows if not r.borrowed_from}
    have = stored(h.study)
    table_ok = have is not None and have.covers(done, set(picks), margin, top, alt_margin)
    measured = again or not table_ok or not (graph_len == 0 or have.times_graph(graph_len, graph_neighbours,
                                                                                graph_split_forms))
    if measured:
        devs = device_names()
        if not devs:
            raise WorkbenchError("no NVIDIA GPU visible: `workbench refine` measures on a GPU" + why_measure(
                have, again or not table_ok, graph_len, graph_neighbours, graph_split_forms))
        if cfg.get("device_name") and devs[0] != cfg["device_name"]:
            raise WorkbenchError(f"study {study!r} was tuned on {cfg['device_name']}, this GPU is {devs[0]}: "
                                 "refine it on its own GPU")
        have = run_refine(study, cfg, done, study_picks=picks, gpu=devs[0], margin=margin, top=top,
                          launches=launches, rounds=rounds, timer=gpu_timer(cfg["arch"]), graph_len=graph_len,
                          fallback=base.best_overall["key"],
                          graph_timer=gpu_timer(cfg["arch"], graph_len=graph_len) if graph_len else None,
                          graph_rule=graph_rule, alt_margin=alt_margin, sm_count=sm_count,
                          graph_neighbours=graph_neighbours, graph_split_forms=graph_split_forms,
                          progress=progress)
        h.study.set_user_attr(ATTR, have.to_dict())
    else:
        # the stored timings chosen from again by today's rules (a table row's bands; the graph rule asked
        # for, if the stored one answers another): nothing measured
        from workbench.measure.suite import Suite
        suite = Suite.from_dict(cfg["suite"])
        now = rechoose_table(have, suite, wave_edges(cfg["heads"], sm_count))
        if graph_len:          # today's rule and its ragged guard, from the stored graph-bound timings
            now = rechoose_graph(now, suite, graph_rule)
        if now != have:
            have = now
            h.study.set_user_attr(ATTR, have.to_dict())
    return have, study_dispatch(study, h.study, cfg, done), measured


def why_measure(have: Refinement | None, again: bool, graph_len: int, neighbours: bool, split_forms: bool) -> str:
    """What a refine without a GPU is told beyond "measures on a GPU" where only the graph candidates asked
    for are missing from the stored refinement (`again`: something else asks to measure): which, and the
    flags that re-choose from its stored timings without measuring (it was made before them); or that its
    graph picks are for another --graph-len."""
    if have is None or again or graph_len == 0 or not have.graph_rows:
        return ""
    if have.graph_len != graph_len:          # e.g. the default bound asked of a study refined at vLLM's 32864
        return (f" (its stored graph picks are for --graph-len {have.graph_len}, not {graph_len}: "
                f"`--graph-len {have.graph_len}` shows or re-chooses them without measuring)")
    flags = [f for f, want, got in (("--no-graph-neighbours", neighbours, have.graph_neighbours),
                                    ("--no-graph-split-forms", split_forms, have.graph_split_forms)) if want and not got]
    return (f" (the stored refinement of {have.created} lacks the graph candidates of "
            f"{' and '.join('--' + f[5:] for f in flags)}; `{' '.join(flags)}` re-chooses from its timings)") if flags else ""


def gpu_timer(arch: str, device: int = 0, graph_len: int = 0) -> Callable[[list[RefineCandidate]], Any]:
    """The timer run_refine uses on a GPU: candidates built (cached), loaded once per bucket, timed
    as the tuner times them (time_variant, cold L2) over one rotation per shape shared by all.
    graph_len > 0: each in the form the exported backend's captured launches run (`export`'s default
    graph build, launch bounded at graph_len, each sequence split by its own length), as
    `bench`'s tuned-graph row times it."""
    import torch

    from workbench.kernel.build import build_many
    from workbench.kernel.launch import load
    from workbench.kernel.variant import Variant, graph_form
    from workbench.measure.gpuinfo import gpu_info
    from workbench.measure.timing import time_variant
    from workbench.measure.workload import build_rotation

    info = gpu_info(device)
    kernels: dict[str, Any] = {}

    def form(c: RefineCandidate) -> Any:
        v = Variant.from_dict(c.variant)
        return v.graph_built(*graph_form()) if graph_len else v

    def for_bucket(cands: list[RefineCandidate]) -> Callable[[list[RefineCandidate], Any, int], list[float]]:
        need = [c for c in cands if c.key not in kernels]
        for c, b in zip(need, build_many([form(c) for c in need], arch)):
            if not b.ok:
                raise WorkbenchError(f"refine: {c.name} no longer builds here: {(b.error or b.status)[-300:]}")
            kernels[c.key] = load(b, device)
        rot: dict[str, Any] = {}

        def time_pass(order: list[RefineCandidate], spec: Any, launches: int) -> list[float]:
            if spec.label not in rot:
                rot.clear()
                torch.cuda.empty_cache()
                rot[spec.label] = build_rotation(spec, f"cuda:{device}", 4 * max(info.l2_bytes, 1 << 20))
            got = []
            for c in order:
                try:
                    how = dict(launch_len=max(graph_len, spec.max_seq_len), per_seq_split=True) if graph_len else {}
                    got.append(time_variant(kernels[c.key], spec, info, launches=launches, device=f"cuda:{device}",
                                            rotation=rot[spec.label], warmup_s=0.01, **how).median_us)
                except Exception:          # a shape this variant refuses (or cannot launch): never picked there
                    got.append(math.inf)
            return got
        return time_pass
    return for_bucket
