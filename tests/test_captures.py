"""Parsers, inspect and doctor on real captures.

Fixtures in tests/fixtures/h100-2026-11-21/ were recorded on an NVIDIA H100 80GB HBM3
(driver 580.159.04, torch 2.11+cu130, ncu 2025.3.1, nsys from the Nsight Compute 2025.3.1
install) on 2026-11-21 by `workbench measure --variants baseline,paper --batch 8 --context 4096
--profile all` (32/8 heads, d128, bf16, block 16): results.json (timing + merged ncu/nsys),
profile.ncu-rep and its raw CSV export, trace.sqlite (nsys export).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.ui import inspect as ins
from workbench.ui.plots import results_plot
from workbench.errors import WorkbenchError
from workbench.measure.job import Results
from workbench.measure.ncu import metrics_per_range, parse_raw_csv
from workbench.measure.nsys import range_kernels

FX = Path(__file__).parent / "fixtures" / "h100-2026-11-21"


def test_ncu_csv_parses_a_real_capture():
    """The real CSV export: its NVTX column names each kernel's range; every KV byte is read
    once from DRAM, and the paper's prefetch lands in L2 (a property of the H100 run)."""
    kernels = parse_raw_csv((FX / "profile.ncu.csv").read_text())
    assert len(kernels) == 12                       # 2 variants x 3 launches x (split + reduce)
    assert {k["Kernel Name"] for k in kernels} == {"wb_decode_split", "wb_reduce"}
    res = Results.load(FX / "results.json")
    assert [k["NVTX Range"] for k in kernels] == [r["nvtx_range"] for r in res.results for _ in range(6)]
    manifest = [{"nvtx_range": r["nvtx_range"], "launches": 3} for r in res.results]
    m = {x.nvtx_range.split(" ::")[0]: x for x in metrics_per_range(kernels, manifest)}
    kv = res.results[0]["kv_bytes"]
    for v in ("baseline", "paper"):
        assert 0.9 < m[v].dram_bytes_read / kv < 1.1           # each KV byte read once from DRAM
        assert 0 < m[v].l2_demand_hit_rate < 1 and m[v].l2_hit_rate_all > 0
        assert m[v].registers > 0 and m[v].kernels == ["wb_decode_split", "wb_reduce"] and m[v].launches == 3
    assert m["paper"].l2_demand_hit_rate > m["baseline"].l2_demand_hit_rate   # the prefetch lands in L2


def test_nsys_sqlite_ranges_of_a_real_capture():
    ranges = {r.nvtx_range.split(" ::")[0]: r for r in range_kernels(FX / "trace.sqlite")}
    assert set(ranges) == {"baseline", "paper"}
    for r in ranges.values():
        assert r.kernels == 100 and r.launches == 50 and set(r.kernel_names) == {"wb_decode_split", "wb_reduce"}
        assert 20 < r.median_launch_us < 500 and r.range_us >= r.total_kernel_us


def test_ncu_csv_reader_agrees_with_ncu_report_on_a_real_mixed_batch():
    """A real capture mixing the three launch kinds in one profiling batch: split-K + reduce,
    fused reduce (one kernel), whole sequence (one kernel). Recorded on an NVIDIA H200 (driver
    580.159.04, ncu 2025.3.1) on 2026-11-28 by `workbench measure --variants <the five in
    docs/perf-notes.md, "L2 demand hit rate"> --batch 8 --context 4096 --profile ncu`:
    l2-repeat-1.json holds the metrics read through ncu's own `ncu_report` module (reader
    "ncu_report"), ncu-mixed.csv the same report exported as CSV. The CSV path (NVTX column,
    attribution, launch cutting) must find the same numbers for every entry."""
    fx = FX.parent / "h200-2026-11-28"
    res = Results.load(fx / "l2-repeat-1.json")
    assert res.profile["ncu"]["reader"] == "ncu_report"
    kernels = parse_raw_csv((fx / "ncu-mixed.csv").read_text())
    manifest = [{"nvtx_range": r["nvtx_range"], "launches": 3} for r in res.results]
    got = {m.nvtx_range: m for m in metrics_per_range(kernels, manifest)}
    kinds = set()
    for r in res.results:
        want, m = r["ncu"], got[r["nvtx_range"]]
        kinds.add(tuple(want["kernels"]))
        assert m.kernels == want["kernels"] and m.launches == want["launches"] == 3
        for k in ("duration_us", "l2_demand_read_sectors", "l2_demand_hit_sectors", "l2_demand_hit_rate",
                  "dram_bytes_read", "registers"):
            assert getattr(m, k) == pytest.approx(want[k]), (r["nvtx_range"], k)
        assert 0.9 < m.dram_bytes_read / r["kv_bytes"] < 1.1
    assert kinds == {("wb_decode_split", "wb_reduce"), ("wb_decode_split",), ("wb_decode_full",)}


# ---- attribution of kernels to ranges and launches, on inputs built here with known answers ----
# Three entries of one profiling batch, as a tune batch mixes them: a split-K variant with the
# reduce kernel (2 kernels a launch), a fused-reduce variant (1 kernel) and a whole-sequence
# variant (1 kernel). Per launch: (kernel name, duration ns, demand read sectors, demand hit
# sectors, DRAM bytes, registers).
SPLIT, FUSED, WHOLE = "splitk :: b8x4096", "fused :: b8x4096", "whole :: b8x4096"
LAUNCHES = {
    SPLIT: [[("wb_decode_split", 50_000, 1000, 100, 32_000, 80), ("wb_reduce", 5_000, 10, 10, 0, 32)],
            [("wb_decode_split", 60_000, 1000, 300, 32_000, 80), ("wb_reduce", 6_000, 10, 10, 0, 32)],
            [("wb_decode_split", 40_000, 1000, 200, 32_000, 80), ("wb_reduce", 4_000, 10, 10, 0, 32)]],
    FUSED: [[("wb_decode_split", 52_000, 2000, 500, 64_000, 96)],
            [("wb_decode_split", 58_000, 2000, 700, 64_000, 96)],
            [("wb_decode_split", 51_000, 2000, 600, 64_000, 96)]],
    WHOLE: [[("wb_decode_full", 70_000, 4000, 0, 128_000, 64)],
            [("wb_decode_full", 72_000, 4000, 40, 128_000, 64)],
            [("wb_decode_full", 71_000, 4000, 20, 128_000, 64)]],
}
MANIFEST = [{"nvtx_range": r, "launches": 3} for r in LAUNCHES]
# by hand: medians over launches of the per-launch sums (additive) or the main kernel (the rest)
WANT = {SPLIT: dict(duration_us=55.0, l2_demand_read_sectors=1010, l2_demand_hit_sectors=210, registers=80,
                    dram_bytes_read=32_000, kernels=["wb_decode_split", "wb_reduce"]),
        FUSED: dict(duration_us=52.0, l2_demand_read_sectors=2000, l2_demand_hit_sectors=600, registers=96,
                    dram_bytes_read=64_000, kernels=["wb_decode_split"]),
        WHOLE: dict(duration_us=71.0, l2_demand_read_sectors=4000, l2_demand_hit_sectors=20, registers=64,
                    dram_bytes_read=128_000, kernels=["wb_decode_full"])}


def _kernels(order="job", ranges=True):
    """Kernel dicts as parse_raw_csv / read_report return them (metric values as strings)."""
    from workbench.measure.ncu import DEMAND_HIT, DEMAND_READ
    per = {r: [[{"Kernel Name": n, "gpu__time_duration.sum": str(d), DEMAND_READ: str(rd), DEMAND_HIT: str(h),
                 "dram__bytes_read.sum": str(b), "launch__registers_per_thread": str(g),
                 **({"NVTX Range": r} if ranges else {})} for n, d, rd, h, b, g in launch]
               for launch in ls] for r, ls in LAUNCHES.items()}
    if order == "job":                                   # entry after entry, as the job launches them
        ks = [k for ls in per.values() for launch in ls for k in launch]
    else:                                                # launches of the entries interleaved
        ks = [k for i in range(3) for ls in per.values() for k in ls[i]]
    for i, k in enumerate(ks):
        k["ID"] = str(i)
    return ks


def _check(metrics, want=WANT):
    got = {m.nvtx_range: m for m in metrics}
    assert set(got) == set(want)
    for r, w in want.items():
        m = got[r]
        assert m.launches == 3 and m.kernels == w["kernels"], r
        assert m.duration_us == pytest.approx(w["duration_us"]), r
        assert m.l2_demand_read_sectors == w["l2_demand_read_sectors"], r
        assert m.l2_demand_hit_sectors == w["l2_demand_hit_sectors"], r
        assert m.l2_demand_hit_rate == pytest.approx(w["l2_demand_hit_sectors"] / w["l2_demand_read_sectors"]), r
        assert m.dram_bytes_read == w["dram_bytes_read"] and m.registers == w["registers"], r


def test_ncu_attributes_by_range_whatever_the_kernel_count():
    _check(metrics_per_range(_kernels(), MANIFEST))
    _check(metrics_per_range(_kernels(order="interleaved"), MANIFEST))    # the range decides, not the order


def test_ncu_attributes_by_kernel_name_without_ranges():
    _check(metrics_per_range(_kernels(ranges=False), MANIFEST))
    ks = [k for k in _kernels(ranges=False) if not (k["ID"] == "11")]
    with pytest.raises(WorkbenchError, match="launches"):     # a lost launch: order can no longer attribute
        metrics_per_range(ks, MANIFEST)


def test_ncu_one_range_without_kernels_costs_only_itself():
    ks = [k for k in _kernels() if k["NVTX Range"] != FUSED]
    _check(metrics_per_range(ks, MANIFEST), {r: w for r, w in WANT.items() if r != FUSED})
    # a launch whose reduce kernel was not profiled is left out of the medians
    ks = [k for k in _kernels() if not (k["NVTX Range"] == SPLIT and k["ID"] == "5")]
    m = {x.nvtx_range: x for x in metrics_per_range(ks, MANIFEST)}[SPLIT]
    assert m.launches == 2 and m.duration_us == pytest.approx((55 + 66) / 2)


def test_ncu_csv_nvtx_column_is_read():
    """A raw-page CSV as `ncu --import --csv --page raw --print-units base` writes it, built here:
    ==PROF== chatter, a units row, and the NVTX column (one quoted entry per open range, the
    innermost last; another domain's range around ours)."""
    import csv
    import io
    from workbench.measure.ncu import METRICS
    col = "thread Domain:Push/Pop_Range:PL_Type:PL_Value:CLR_Type:Color:Msg_Type:Msg"
    header = ["ID", "Process ID", col, "Kernel Name", *METRICS]
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
    w.writerow(header)
    w.writerow(["", "", "", "", *["" for _ in METRICS]])
    for k in _kernels(order="interleaved"):
        r = k["NVTX Range"]
        nvtx = f'551  "outer:sweep:none:none:RGB:0xff:REGISTERED:sweep" "workbench:{r}:none:none:RGB:0xff:REGISTERED:{r}" '
        w.writerow([k["ID"], "551", nvtx, k["Kernel Name"], *[k.get(m, "") for m in METRICS]])
    text = "==PROF== Connected to process 551\n" + buf.getvalue()
    kernels = parse_raw_csv(text)
    assert [k["NVTX Range"] for k in kernels] == [k["NVTX Range"] for k in _kernels(order="interleaved")]
    _check(metrics_per_range(kernels, MANIFEST))


def test_a_pdl_reduce_inside_the_split_kernel_counts_once():
    """A reduce launched with PDL starts while the split-K kernel runs and waits inside it: the
    launch takes the time the two cover, not the sum of their durations."""
    from workbench.measure.nsys import covered_us
    assert covered_us([(0, 7000), (1700, 8400)]) == pytest.approx(8.4)          # not 7.0 + 6.7
    assert covered_us([(0, 1000), (2000, 2500)]) == pytest.approx(1.5)          # a gap is not kernel time
    assert covered_us([(0, 5000), (1000, 2000), (4000, 6000)]) == pytest.approx(6.0)
    assert covered_us([]) == 0


def _nsys_tables(db):
    """An empty nsys SQLite export with the tables range_kernels reads (an open connection)."""
    import sqlite3
    con = sqlite3.connect(db)
    con.execute("create table StringIds (id integer, value text)")
    con.execute("create table NVTX_EVENTS (start int, end int, globalTid int, text text, textId int)")
    con.execute("create table CUPTI_ACTIVITY_KIND_RUNTIME (start int, end int, globalTid int, correlationId int)")
    con.execute("create table CUPTI_ACTIVITY_KIND_KERNEL (start int, end int, shortName int, correlationId int)")
    return con


def test_range_kernels_counts_an_overlapping_reduce_once(tmp_path):
    db = tmp_path / "pdl.sqlite"
    con = _nsys_tables(db)
    # the scheduled form's names: its reduce follows its split kernel as wb_reduce follows wb_decode_split
    con.executemany("insert into StringIds values (?, ?)", [(1, "wb_decode_sched"), (2, "wb_reduce_sched")])
    con.execute("insert into NVTX_EVENTS values (0, 100000, 1, 'v :: b1x1024', NULL)")
    corr = 0
    for t in (1000, 21000, 41000):                 # three launches: split 7 µs, reduce from 1.7 µs in to 8.4
        for n, s, e in ((1, t, t + 7000), (2, t + 1700, t + 8400)):
            corr += 1
            con.execute("insert into CUPTI_ACTIVITY_KIND_RUNTIME values (?, ?, 1, ?)", (s - 500, s - 400, corr))
            con.execute("insert into CUPTI_ACTIVITY_KIND_KERNEL values (?, ?, ?, ?)", (s, e, n, corr))
    con.commit()
    con.close()
    (r,) = range_kernels(db)
    assert r.launches == 3 and r.median_launch_us == pytest.approx(8.4) and r.total_kernel_us == pytest.approx(3 * 8.4)


def test_nsys_attributes_by_range_and_cuts_launches_by_name(tmp_path):
    """An nsys SQLite export built here: three ranges on one thread, a fourth on another thread
    whose kernels must not count, and kernels correlated to runtime calls inside each range."""
    db = tmp_path / "t.sqlite"
    con = _nsys_tables(db)
    names = {"wb_decode_split": 1, "wb_reduce": 2, "wb_decode_full": 3, "other_kernel": 4}
    con.executemany("insert into StringIds values (?, ?)", [(i, n) for n, i in names.items()] + [(9, WHOLE)])
    t, corr = 1_000_000, 0
    for r, ls in LAUNCHES.items():
        start = t
        for launch in ls:
            for n, d, *_ in launch:
                corr += 1
                con.execute("insert into CUPTI_ACTIVITY_KIND_RUNTIME values (?, ?, 1, ?)", (t, t + 100, corr))
                con.execute("insert into CUPTI_ACTIVITY_KIND_KERNEL values (?, ?, ?, ?)", (t + 200, t + 200 + d, names[n], corr))
                t += d + 1000
        con.execute("insert into NVTX_EVENTS values (?, ?, 1, ?, ?)",
                    (start - 10, t, None if r == WHOLE else r, 9 if r == WHOLE else None))   # registered string
        # another thread's kernel while this range is open: not this range's
        corr += 1
        con.execute("insert into CUPTI_ACTIVITY_KIND_RUNTIME values (?, ?, 2, ?)", (start + 5, start + 50, corr))
        con.execute("insert into CUPTI_ACTIVITY_KIND_KERNEL values (?, ?, 4, ?)", (start + 60, start + 90_000, corr))
    con.commit()
    con.close()
    got = {r.nvtx_range: r for r in range_kernels(db)}
    assert set(got) == {SPLIT, FUSED, WHOLE}
    assert got[SPLIT].total_kernel_us == pytest.approx(3 * WANT[SPLIT]["duration_us"])
    for r, w in WANT.items():
        assert got[r].launches == 3 and got[r].kernels == 3 * len(w["kernels"]), r
        assert got[r].median_launch_us == pytest.approx(w["duration_us"]), r
        assert got[r].kernel_names == sorted(w["kernels"]), r


def test_results_merge_and_compare():
    res = Results.load(FX / "results.json")
    assert res.gpu["name"].startswith("NVIDIA H100") and res.ceiling["gbps"] > 2500
    rows = ins.compare(res, "baseline", "paper")
    by = {r["metric"]: r for r in rows}
    assert by["l2_demand_hit"]["b_over_a"] > 1 and by["median_us"]["a"] > 0
    with pytest.raises(WorkbenchError, match="no variant"):
        ins.compare(res, "baseline", "nope")


def test_plot(tmp_path):
    pytest.importorskip("matplotlib")
    p = results_plot(Results.load(FX / "results.json"), tmp_path / "p.png")
    assert p.stat().st_size > 10_000 and p.read_bytes()[:4] == b"\x89PNG"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True)


def test_inspect_cli_on_every_kind():
    for f in ("results.json", "profile.ncu.csv", "trace.sqlite"):
        r = _cli("inspect", str(FX / f), "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)
    r = _cli("inspect", str(FX / "results.json"), "--compare", "baseline", "--compare", "paper")
    assert r.returncode == 0 and "l2_demand_hit" in r.stdout


@pytest.mark.parametrize("args,needle", [(["inspect", "/nope.json"], "not found"),
                                         (["inspect", str(FX / "trace.sqlite"), "--compare", "a", "--compare", "b"], "results"),
                                         (["inspect", __file__], "unknown kind")])
def test_inspect_bad_input(args, needle):
    r = _cli(*args)
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr


def test_doctor_without_gpu():
    r = _cli("doctor", "--json", "--no-probe")
    d = json.loads(r.stdout)
    names = {c["name"]: c for c in d["checks"]}
    assert {"GPU", "nvcc", "ncu", "nsys", "torch", "nvtx", "optuna", "xformers"} <= set(names)
    src = names["vLLM 0.10.2 kernel source"]          # baseline / paper need it: found, or how to get it
    assert (src["status"] == "ok") if os.environ.get("WORKBENCH_VLLM_SRC") else src["fix"]
    import torch
    if not torch.cuda.is_available():
        assert names["GPU"]["status"] == "missing" and names["GPU"]["fix"]
        assert r.returncode != 0 and d["ready"] is False


class _FakeReport:
    """The slice of ncu's `ncu_report` API that read_report walks (load_report -> ranges ->
    actions -> metrics, NVTX state), serving the kernels built above. The real module is
    exercised on the GPU host (scripts/device_measure.sh compares both readers)."""

    def __init__(self, kernels):
        self.kernels = kernels

    def load_report(self, path):
        ks = self.kernels

        class Metric:
            def __init__(self, v): self.v = v
            def as_double(self): return float(self.v.replace(",", ""))

        class Domain:
            def __init__(self, name, rs): self._name, self.rs = name, rs
            def name(self): return self._name
            def push_pop_ranges(self): return self.rs

        class Nvtx:
            def __init__(self, r): self.r = r
            def domains(self): return [3, 7]
            def domain_by_id(self, i): return Domain("outer", ["sweep"]) if i == 3 else Domain("workbench", ["batch", self.r])

        class Action:
            def __init__(self, k): self.k = k
            def name(self): return self.k["Kernel Name"]
            def metric_names(self): return [n for n in self.k if "__" in n]
            def metric_by_name(self, n): return Metric(self.k[n])
            def nvtx_state(self): return Nvtx(self.k["NVTX Range"])

        class Range:
            def __init__(self, part): self.part = part
            def num_actions(self): return len(self.part)
            def action_by_idx(self, i): return Action(self.part[i])

        class Ctx:                           # two report ranges, as ncu splits a capture
            def num_ranges(self): return 2
            def range_by_idx(self, i): return Range(ks[:7] if i == 0 else ks[7:])
        return Ctx()


def test_ncu_report_reader_names_each_kernels_range():
    from workbench.measure.ncu import read_report
    built = _kernels(order="interleaved")
    got = read_report(Path("x.ncu-rep"), module=_FakeReport(built))
    assert [k["Kernel Name"] for k in got] == [k["Kernel Name"] for k in built]
    assert [k["NVTX Range"] for k in got] == [k["NVTX Range"] for k in built]     # innermost, our domain
    _check(metrics_per_range(got, MANIFEST))
