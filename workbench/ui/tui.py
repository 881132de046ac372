"""What `workbench tune` shows while it runs: a rich live screen on a terminal (header, progress
with ETA, what each device is doing, top-k with Pareto markers, the last failure), plain lines
otherwise. Both are observers of the tuner's events."""
from __future__ import annotations

import math
import threading
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from workbench.measure.stats import dominated
from workbench.tune.trial import Measurement


# head size, block size and dtype are one per study (the header shows them): not in row labels
SHAPE_KNOBS = ("head_size", "block_size", "dtype")


def knobs(v: dict[str, Any]) -> str:
    """A variant's knobs as a short row label, e.g. 'twopass t128 q4 split 512 s3 pf 2kv evict_last'.
    Every knob but the study-wide shape shows when it is not at its default, so two different
    variants of one study never share a label; a knob this function does not know by name (a
    new one) shows as name=value."""
    from dataclasses import MISSING, fields

    from workbench.kernel.variant import Variant, partition_label
    default = {f.name: f.default for f in fields(Variant) if f.default is not MISSING}
    d = {**default, **v}
    parts = [str(d["algorithm"]), f"t{d['threads']}", f"q{d['heads_per_cta']}",
             f"split {partition_label(d['partition'])}"]
    if d["reduce"] != default["reduce"]:
        parts.append(f"{d['reduce']} reduce")
    if d["stages"]:
        parts.append(f"s{d['stages']}")
    if d["k_load"] != default["k_load"]:
        parts.append(f"k{d['k_load']}")
    if d["serial"]:
        parts.append("serial")
    if d["vllm_math"]:
        parts.append("vllm-math")
    if d.get("mma"):
        parts.append("mma")
    if d.get("unified_ring"):
        parts.append("one ring")
    if d.get("graph_walk"):
        parts.append("graph walk")
    if d.get("graph_sched"):
        parts.append("graph sched")
    pf = "off"
    if d["prefetch_distance"]:
        pf = f"{d['prefetch_distance']}{d['prefetch_target']}"
        if d["prefetch_op"] not in ("bulk", "none"):
            pf += f" {d['prefetch_op']}"
        if d["prefetch_hint"] != "none":
            pf += f" {d['prefetch_hint']}"
    parts.append(f"pf {pf}")
    shown = {"algorithm", "threads", "heads_per_cta", "partition", "reduce", "stages", "k_load", "serial",
             "vllm_math", "mma", "unified_ring", "graph_walk", "graph_sched", "prefetch_distance", "prefetch_target",
             "prefetch_op", "prefetch_hint", "fault",
             *SHAPE_KNOBS}
    parts += [f"{k}={d[k]}" for k in d if k not in shown and d[k] != default.get(k)]
    if d["fault"] != "none":
        parts.append(f"FAULT:{d['fault']}")
    return " ".join(parts)


def _f(x: Any, fmt: str = "{:.1f}") -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


class TuneState:
    """Everything the views render, updated from events."""

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        self.storage = self.study = ""
        self.total = 0
        self.done = 0
        self.devices: dict[int, tuple[str, str]] = {}
        self.gpus: dict[int, dict[str, Any]] = {}
        self.ceiling: dict[int, float] = {}
        self.results: list[tuple[int, Measurement, bool]] = []
        self.failed: list[tuple[int, Measurement]] = []
        self.refs: dict[str, Measurement] = {}      # baseline / paper: vLLM's own kernel
        self.fa3: Any = None                        # tune.peer_timing.PeerTiming, once known
        self.notes: list[str] = []
        self.summary: dict[str, Any] | None = None
        self.t0 = time.monotonic()
        self.lock = threading.Lock()

    def apply(self, ev: dict[str, Any]) -> None:
        with self.lock:
            t = ev["type"]
            if t == "start":
                self.config, self.storage, self.study = ev["config"], ev["storage"], ev["study"]
                self.total = ev["trials"]
            elif t == "device":
                self.gpus[ev["device"]] = ev.get("gpu") or {}
                self.ceiling[ev["device"]] = (ev.get("ceiling") or {}).get("gbps", 0.0)
            elif t == "stage":
                self.devices[ev["device"]] = (ev["stage"], ev.get("text", ""))
            elif t == "result":
                m = Measurement.from_dict(ev["measurement"])
                self.done = ev["done"]
                if m.ok:
                    self.results.append((ev["trial"], m, ev["repeat"]))
                else:
                    self.failed.append((ev["trial"], m))
            elif t == "references":
                for d in ev["measurements"]:
                    m = Measurement.from_dict(d)
                    self.refs[m.label] = m
            elif t == "peers" and "fa3" in ev["peers"]:
                from workbench.tune.peer_timing import PeerTiming
                self.fa3 = PeerTiming.from_dict(ev["peers"]["fa3"])
            elif t == "note":
                self.notes.append(ev["text"])
            elif t == "finish":
                self.summary = ev["summary"]

    def top(self, k: int = 8) -> list[tuple[int, Measurement, bool]]:
        seen, out = set(), []
        for n, m, _ in sorted(self.results, key=lambda r: r[1].geomean_us):
            if m.key in seen:
                continue
            seen.add(m.key)
            out.append((n, m, self._pareto(m)))
            if len(out) == k:
                break
        return out

    def _pareto(self, m: Measurement) -> bool:
        """★: the fastest so far (latency is the one objective; the L2 hit rate is only shown)."""
        return not dominated((m.geomean_us,), ((o.geomean_us,) for _, o, _ in self.results))

    def baseline(self) -> Measurement | None:
        return self.refs.get("baseline")


def header(st: TuneState) -> Text:
    c = st.config
    heads = c.get("heads", {})
    gpu_names = ", ".join(sorted({g.get("name", "?") for g in st.gpus.values()})) or c.get("device_name") or "?"
    t = Text()
    t.append("workbench tune ", style="bold")
    t.append(f"· GPU {gpu_names} (target {c.get('gpu')}, {c.get('arch')}) ")
    t.append(f"· {c.get('model')} TP{c.get('tp')} ({heads.get('num_heads')}/{heads.get('num_kv_heads')} heads, "
             f"d{heads.get('head_size')}) {c.get('dtype')} block {c.get('block_size')}\n")
    suite = c.get("suite", {})
    t.append(f"suite {c.get('suite_name')} ({len(suite.get('batches', []))}×{len(suite.get('contexts', []))} "
             f"buckets, cold L2) · space {c.get('space_name')} · profile {c.get('profile')} · "
             f"study {st.study} @ {st.storage}")
    return t


def top_table(st: TuneState, k: int = 8) -> Table:
    from workbench.tune.peer_timing import ABSENT, why_absent
    base, fa3 = st.baseline(), st.fa3
    timed = fa3 is not None and fa3.ok
    # FA3 is timed after the references: until then its column is only pending ("–"), after
    # that "—" with the reason it was not timed
    t = Table(title="top variants (geomean over buckets)", expand=True, title_justify="left",
              caption=f"× FA3 {ABSENT}: {why_absent(fa3)}" if fa3 is not None and not timed else None,
              caption_justify="left")
    for col in ("#", "P", "variant", "geomean µs", "× baseline", "× FA3", "eff", "L2 demand hit"):
        t.add_column(col, justify="right" if col not in ("variant", "P") else "left")
    for n, m, par in st.top(k):
        eff = [x.efficiency for x in m.timings if x.efficiency]
        t.add_row(str(n), "★" if par else "", f"{m.label if m.label in ('simple', 'simple-pf') else ''} "
                  f"{knobs(m.variant)}".strip(), _f(m.geomean_us),
                  _f(base.geomean_us / m.geomean_us if base else None, "{:.2f}×"),
                  _f(fa3.speedup(m), "{:.2f}×") if timed else ABSENT if fa3 is not None else "–",
                  _f(sum(eff) / len(eff) if eff else None, "{:.2f}"), _f(m.l2_demand_hit, "{:.1%}"))
    return t


def devices_table(st: TuneState) -> Table:
    t = Table(show_header=True, expand=True, box=None)
    t.add_column("device")
    t.add_column("doing")
    t.add_column("detail")
    for d in sorted(st.devices):
        stage, text = st.devices[d]
        t.add_row(f"GPU {d}", stage, text)
    return t


def failure_line(st: TuneState) -> Text:
    if not st.failed:
        return Text("failures: none", style="green")
    n, m = st.failed[-1]
    return Text(f"failures: {len(st.failed)} · last #{n} {m.name}: {m.stage}: {m.reason}"[:300], style="yellow")


def screen(st: TuneState, progress: Any = None) -> Any:
    with st.lock:
        parts = [Panel(header(st), border_style="cyan")]
        if progress is not None:
            parts.append(progress)
        else:
            el = time.monotonic() - st.t0
            parts.append(Text(f"trials {st.done}/{st.total} · elapsed {el:.0f} s"))
        parts += [devices_table(st), top_table(st), failure_line(st)]
        if st.notes:
            parts.append(Text("\n".join(st.notes[-3:]), style="dim"))
    return Group(*parts)


def screen_text(st: TuneState, width: int = 150) -> str:
    """The screen as plain text (saved at the end of every run, terminal or not)."""
    import io
    rec = Console(record=True, width=width, file=io.StringIO())
    rec.print(screen(st))
    return rec.export_text()


class LiveView:
    def __init__(self, console: Console):
        self.st = TuneState()
        self.console = console
        self.progress = Progress(TextColumn("trials"), BarColumn(), MofNCompleteColumn(), TextColumn("elapsed"),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), expand=True)
        self.task = self.progress.add_task("trials", total=None)
        self.live = Live(console=console, refresh_per_second=4, get_renderable=self.render)

    def render(self) -> Any:
        return screen(self.st, self.progress)

    def __call__(self, ev: dict[str, Any]) -> None:
        self.st.apply(ev)
        if ev["type"] == "start":
            self.progress.update(self.task, total=ev["trials"])
            self.live.start()
        elif ev["type"] == "result":
            self.progress.update(self.task, completed=ev["done"])
        elif ev["type"] == "finish":
            self.progress.update(self.task, completed=self.st.done, total=self.st.done)
            self.live.refresh()
            self.live.stop()

    def close(self) -> None:
        if self.live.is_started:
            self.live.stop()


class PlainView:
    """One line per event that matters; for logs and pipes."""

    def __init__(self, console: Console):
        self.st = TuneState()
        self.console = console

    def __call__(self, ev: dict[str, Any]) -> None:
        self.st.apply(ev)
        t = ev["type"]
        p = self.console.print
        if t == "start":
            p(header(self.st))
            how = "new study" if ev["created"] else f"resuming ({ev['prior_complete']} complete trials)"
            p(f"budget: {ev['trials']} trials, {ev['timeout']:.0f} s · devices {ev['devices']} · {how}")
        elif t == "device":
            g = ev.get("gpu") or {}
            p(f"GPU {ev['device']}: {g.get('name')} driver {g.get('driver')} · read ceiling "
              f"{(ev.get('ceiling') or {}).get('gbps', 0):.0f} GB/s"
              + (" (inside the emulation)" if g.get("emulation") else ""))
            if g.get("emulation"):             # the achieved numbers, measured by the worker
                from workbench.measure.emulation import EmulationPlan
                p(EmulationPlan.from_dict(g["emulation"]).provenance(), highlight=False)
        elif t == "result":
            m = Measurement.from_dict(ev["measurement"])
            base = self.st.baseline()
            if m.ok:
                sp = f" {base.geomean_us / m.geomean_us:.2f}× baseline" if base else ""
                fa3 = self.st.fa3.speedup(m) if self.st.fa3 is not None and self.st.fa3.ok else None
                sp += f" {fa3:.2f}× FA3" if fa3 else ""
                p(f"[{ev['done']}/{self.st.total}] #{ev['trial']} GPU{ev['device']} {m.label}: "
                  f"{m.geomean_us:.1f} µs{sp} · L2 demand hit {_f(m.l2_demand_hit, '{:.1%}')}"
                  f"{' (repeat)' if ev['repeat'] else ''}", highlight=False)
            else:
                p(f"[{ev['done']}/{self.st.total}] #{ev['trial']} GPU{ev['device']} {m.name}: FAILED "
                  f"{m.stage}: {m.reason}"[:400], highlight=False)
        elif t == "references":
            for d in ev["measurements"]:
                m = Measurement.from_dict(d)
                p(f"reference {m.label} (vLLM's own kernel): {m.geomean_us:.1f} µs geomean · L2 demand hit "
                  f"{_f(m.l2_demand_hit, '{:.1%}')}", highlight=False)
        elif t == "peers" and self.st.fa3 is not None and self.st.fa3.ok:
            f = self.st.fa3
            p(f"FA3 beside the study (vLLM's decode on Hopper): {f.geomean_us:.1f} µs geomean over "
              f"{len(f.timings)} buckets", highlight=False)
        elif t == "note":
            p(f"note: {ev['text']}")

    def close(self) -> None:
        pass
