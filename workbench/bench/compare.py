"""Two `workbench bench` runs side by side (`workbench compare`): what moved between a before and an after.

A kernel or refine change is judged by benching before and after, and the two runs may come from
different hosts: the same FA3 build ran b32 x 4k at 135.4 us on one H200 and 131.3 on another
(2026-11-29). So the change of a row is reported two ways: its own time after ÷ before, and its
ratio to a reference peer measured in the same run (`vs`, default fa3), before and after. The
second is what survives a host change. Shapes present in only one run are named, not compared."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.bench.run import FORM_NOTES, BenchRun
from workbench.errors import WorkbenchError
from workbench.measure.stats import geomean

MOVE = 0.02        # a shape "moved" when its ratio to the reference changed by more than this


@dataclass
class CompareRow:
    shape: str
    before_us: float
    after_us: float
    before_ratio: float | None          # reference µs ÷ the peer's µs, in the before run (> 1: the peer is ahead)
    after_ratio: float | None           # ... in the after run
    before_variant: str = ""
    after_variant: str = ""

    @property
    def time_change(self) -> float:
        """after ÷ before of the peer's own time (< 1: faster)."""
        return self.after_us / self.before_us

    @property
    def ratio_change(self) -> float | None:
        """after ÷ before of its ratio to the reference (> 1: gained on it)."""
        if not self.before_ratio or not self.after_ratio:
            return None
        return self.after_ratio / self.before_ratio

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "time_change": self.time_change, "ratio_change": self.ratio_change}


@dataclass
class Comparison:
    peer: str
    vs: str
    before: str                          # the runs' labels (their paths)
    after: str
    rows: list[CompareRow]
    only_before: list[str] = field(default_factory=list)
    only_after: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def geomeans(self) -> dict[str, float | None]:
        """Over the shapes both runs hold: the peer's ratio to `vs` before and after, and its time after ÷ before."""
        both = [r for r in self.rows if r.before_ratio and r.after_ratio]
        return {"before_ratio": geomean([r.before_ratio for r in both]) if both else None,
                "after_ratio": geomean([r.after_ratio for r in both]) if both else None,
                "time_change": geomean([r.time_change for r in self.rows]) if self.rows else None}

    def moved(self, threshold: float = MOVE) -> tuple[list[str], list[str]]:
        """(shapes whose ratio to `vs` rose by more than threshold, shapes where it fell by more)."""
        up = [r.shape for r in self.rows if r.ratio_change and r.ratio_change > 1 + threshold]
        down = [r.shape for r in self.rows if r.ratio_change and r.ratio_change < 1 - threshold]
        return up, down

    def to_dict(self) -> dict[str, Any]:
        up, down = self.moved()
        return {"kind": "workbench-compare", "peer": self.peer, "vs": self.vs, "before": self.before,
                "after": self.after, "rows": [r.to_dict() for r in self.rows], "only_before": self.only_before,
                "only_after": self.only_after, "notes": self.notes, "geomeans": self.geomeans(),
                "moved_threshold": MOVE, "gained": up, "lost": down}


def _times(run: BenchRun, peer: str) -> dict[str, Any]:
    return {r.shape: r for r in run.results if r.peer == peer and r.median_us}


def _form(run: BenchRun) -> list[str]:
    """How a run timed its rows (bench --in-graph / --kv-write / --pages): the notes run_bench wrote for it."""
    return [form for form, note in FORM_NOTES.items() if note in run.notes]


def compare_runs(before: BenchRun, after: BenchRun, peer: str = "tuned-graph", vs: str = "fa3",
                 before_label: str = "before", after_label: str = "after") -> Comparison:
    """The rows of `peer` in both runs, each with its ratio to `vs` in its own run. Refuses runs of
    different workloads (heads, dtype, block size): their shapes share names, not bytes."""
    for what in ("dtype", "block_size"):
        if getattr(before, what) != getattr(after, what):
            raise WorkbenchError(f"the two runs differ in {what} ({getattr(before, what)} vs {getattr(after, what)}): "
                                 "compare runs of one workload")
    heads = ("num_heads", "num_kv_heads", "head_size")
    if tuple(before.heads.get(k) for k in heads) != tuple(after.heads.get(k) for k in heads):
        raise WorkbenchError(f"the two runs have different heads ({before.heads.get('model')} "
                             f"{[before.heads.get(k) for k in heads]} vs {after.heads.get('model')} "
                             f"{[after.heads.get(k) for k in heads]}): compare runs of one workload")
    for run, label in ((before, before_label), (after, after_label)):
        if peer not in run.peers:
            raise WorkbenchError(f"{label} has no {peer!r} row (its peers: {', '.join(run.peers)})")
    b, a = _times(before, peer), _times(after, peer)
    rb, ra = _times(before, vs), _times(after, vs)
    notes = []
    if not rb or not ra:
        notes.append(f"{vs} missing from {'the before run' if not rb else 'the after run'}: no ratios, times only")
    gb, ga = before.gpu.get("uuid") or before.gpu.get("name"), after.gpu.get("uuid") or after.gpu.get("name")
    if gb != ga:
        notes.append("the runs come from different GPUs (or hosts): read the ratio columns, not the times")
    fb, fa = _form(before), _form(after)
    if fb != fa:
        notes.append(f"the runs were timed in different forms (before: {'; '.join(fb) or 'default'}; after: "
                     f"{'; '.join(fa) or 'default'}): the time columns differ by that too, read the ratio columns")
    order = list(dict.fromkeys([*b, *a]))
    rows = []
    for s in order:
        if s in b and s in a:
            rows.append(CompareRow(
                shape=s, before_us=b[s].median_us, after_us=a[s].median_us,
                before_ratio=rb[s].median_us / b[s].median_us if s in rb else None,
                after_ratio=ra[s].median_us / a[s].median_us if s in ra else None,
                before_variant=b[s].variant, after_variant=a[s].variant))
    if not rows:
        raise WorkbenchError(f"no shape has a {peer!r} time in both runs")
    return Comparison(peer=peer, vs=vs, before=before_label, after=after_label, rows=rows,
                      only_before=[s for s in order if s not in a], only_after=[s for s in order if s not in b],
                      notes=notes)
