"""`workbench refine` (tune.refine) on the H200 v6 study (results/h200-2026-11-28-v6/studies.db):
the shapes it times, the close calls it re-times, how it picks, and that export / bench / tune
build their dispatch with what it stored. The timer is a stand-in here (no GPU); the GPU timer is
the tuner's own time_variant over a shared cold-L2 rotation."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
V6 = ROOT / "results/h200-2026-11-28-v6/studies.db"
STUDY = "h200-train"


@pytest.fixture
def study(tmp_path):
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    db = tmp_path / "studies.db"
    shutil.copy(V6, db)                     # never write to the committed study
    url = f"sqlite:///{db}"
    return url, optuna.load_study(study_name=STUDY, storage=url)


def _fits(b, c):
    """A suite's max_kv_gb stand-in: at most 64 x 32k tokens, uniform or ragged."""
    return (sum(c.lengths()) if hasattr(c, "lengths") else b * c) <= 64 * 32768


def _setup(s):
    from workbench.measure.suite import shape_label
    from workbench.tune.dispatch import build_dispatch
    from workbench.tune.storage import completed, references
    cfg, done = s.user_attrs["config"], completed(s)
    base = build_dispatch(STUDY, cfg, done, references(s))
    return cfg, done, base, {shape_label(r.bucket["batch"], r.bucket["context"]): r.key for r in base.rows
                             if not r.borrowed_from}     # as refine_study: the buckets the study timed


def _fake_timer(favour, slower=1.02, calls=None):
    """Every candidate 100 µs, `favour`'s names ÷ slower; counts passes in `calls`."""
    def for_bucket(cands):
        def time_pass(order, spec, launches):
            if calls is not None:
                calls.append((f"b{spec.num_seqs}x{spec.max_seq_len}", [c.key for c in order]))
            return [100.0 / slower if favour in c.name else 100.0 for c in order]
        return time_pass
    return for_bucket


def test_refine_shapes_stay_inside_their_bucket_and_off_every_bench_shape():
    from workbench.measure.suite import load_suite
    train, bench = load_suite("train"), load_suite("bench")
    bench_shapes = {(b.batch, b.context) for b in bench.buckets()}
    from workbench.tune.refine import refine_shapes
    for b in train.buckets():
        shapes = refine_shapes(b)
        assert shapes[0] == (b.batch, b.context) and len(shapes) == len(set(shapes)) >= 3, (b.label, shapes)
        for s in shapes:
            assert b.contains(*s), (b.label, s)
        for bb, c in shapes[1:]:
            assert c % 1000 == 0 and (bb, c) not in bench_shapes, (b.label, bb, c)
    # each side band of batch sizes is timed at its inner edge too (a band decided at one batch can sit past a
    # wave edge from the rest of it): b12 x 2k's bands 5-9 | 10-14 | 15-23 at b9 and b15
    from workbench.tune.refine import graph_bands
    for b in train.buckets():
        n = graph_bands(b)
        assert {(n[0][2] - 1, refine_shapes(b)[1][1]), (n[-1][1], refine_shapes(b)[1][1])} <= set(refine_shapes(b)) \
            or len(n) < 2, b.label
    assert {(9, 2000), (15, 2000)} <= set(refine_shapes(next(x for x in train.buckets() if x.label == "b12x2048")))
    b = train.buckets()[-1]
    assert refine_shapes(b, fits=lambda bb, c: bb * c <= b.batch * b.context) == \
        [s for s in refine_shapes(b) if s[0] * s[1] <= b.batch * b.context]


def test_candidates_are_the_distinct_close_calls_at_the_centre_best_first(study):
    from workbench.tune.refine import candidates, family
    _, s = study
    _, done, base, picks = _setup(s)
    c = candidates(done, "b48x24576", 0.03, 3)
    # the pick's near-twin (one ring: 0.02% behind) does not take a place: one per family
    assert [x.name.split("-twopass-")[1] for x in c] == ["t128-q4-pauto-pf0-s3-mma", "t256-q4-pauto-pf0-s4-mma",
                                                          "t128-q4-pauto-pf0-s3"]
    assert len({family(x.variant) for x in c}) == 3 and c[0].key == picks["b48x24576"]
    # b12 x 24k: t256 s4 mma (2.2% behind at the centre) is in, twins of the pick are not
    assert "t256-q4-pauto-pf0-s4-mma" in [x.name.split("-twopass-")[1] for x in candidates(done, "b12x24576")]
    assert c[0].centre_us <= c[1].centre_us <= c[2].centre_us <= 1.03 * c[0].centre_us
    assert len(candidates(done, "b48x24576", 0.0, 3)) == 1
    assert len(candidates(done, "b48x24576", 0.03, 1)) == 1
    assert candidates(done, "b9x9", 0.03, 3) == []


def test_run_refine_takes_the_fastest_off_centre_and_keeps_the_study_pick_on_noise(study):
    from workbench.tune.refine import Refinement, run_refine
    _, s = study
    cfg, done, base, picks = _setup(s)
    calls = []
    ref = run_refine(STUDY, cfg, done, study_picks=picks, gpu="NVIDIA H200", rounds=3, alt_margin=0.0,
                     timer=_fake_timer("t256-q4-pauto-pf0-s4-mma", 1.02, calls))    # close calls only
    row = next(r for r in ref.rows if r.bucket == "b48x24576")
    assert row.changed and "t256-q4-pauto-pf0-s4-mma" in next(c.name for c in row.candidates if c.key == row.pick_key)
    # every shape of the row timed in 3 interleaved rounds, the order reversed every other round
    mine = [o for lbl, o in calls if lbl in row.shapes]
    assert len(mine) == 3 * len(row.shapes) and mine[0] == mine[1][::-1] == mine[2]
    assert all(len(c.us) == len(row.shapes) for c in row.candidates)
    # a bucket with one close call is not timed at all
    one = next(r for r in ref.rows if r.bucket == "b2x8192")
    assert len(one.candidates) == 1 and not one.changed and not any(lbl in one.shapes for lbl, _ in calls)
    # within REFINE_KEEP (0.5%): the study's own pick stays
    calm = run_refine(STUDY, cfg, done, study_picks=picks, gpu="x", rounds=1, alt_margin=0.0,
                      timer=_fake_timer("t256-q4-pauto-pf0-s4-mma", 1.003))
    assert not any(r.changed for r in calm.rows)
    back = Refinement.from_dict(json.loads(json.dumps(ref.to_dict())))
    assert back.picks() == ref.picks() and back.rows[0].candidates[0].us == ref.rows[0].candidates[0].us


def test_dispatch_takes_a_stored_refinement_while_it_is_still_a_close_call(study):
    from workbench.tune.dispatch import build_dispatch
    from workbench.tune.refine import ATTR, run_refine, stored_picks
    from workbench.tune.storage import references
    _, s = study
    cfg, done, base, picks = _setup(s)
    ref = run_refine(STUDY, cfg, done, study_picks=picks, gpu="x", rounds=1, timer=_fake_timer("t256-q4-pauto-pf0-s4-mma"))
    s.set_user_attr(ATTR, ref.to_dict())
    got = build_dispatch(STUDY, cfg, done, references(s), refined=stored_picks(s))
    changed = {r.bucket for r in ref.rows if r.changed}
    assert changed and {f"b{r.bucket['batch']}x{r.bucket['context']}" for r in got.rows if r.refined} == changed
    for r in got.rows:
        lbl = f"b{r.bucket['batch']}x{r.bucket['context']}"
        if r.borrowed_from:                  # an untimed bucket follows its neighbour, refined or not
            assert r.key == next(x.key for x in got.rows if f"b{x.bucket['batch']}x{x.bucket['context']}" == r.borrowed_from)
            continue
        assert r.key == (ref.picks()[lbl] if lbl in changed else picks[lbl]), lbl
    # a refined pick the study's trials have since left > REFINE_MARGIN behind is not used
    far = {lbl: next(m.key for _, m in done if m.timing(lbl) and m.timing(lbl).median_us > 1.2 *
                     min(x.timing(lbl).median_us for _, x in done if x.timing(lbl)))
           for lbl in ("b48x24576",)}
    assert build_dispatch(STUDY, cfg, done, references(s), refined=far).rows[8].key == picks["b48x24576"]


def wb(args, home):
    env = {**os.environ, "WORKBENCH_HOME": str(home), "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True, env=env)


def test_refine_cli_shows_a_stored_refinement_without_a_gpu_and_export_uses_it(study, tmp_path):
    """Nothing measured twice: a study refined with the same candidates is shown, not timed again
    (so this runs without a GPU); export's dispatch follows it. Without a stored refinement and
    without a GPU: one clear message, nothing written."""
    from workbench.tune.refine import ATTR, run_refine
    url, s = study
    p = wb(["refine", "--study", STUDY, "--storage", url], tmp_path)
    assert p.returncode != 0 and "no NVIDIA GPU" in p.stderr and "Traceback" not in p.stderr
    assert ATTR not in s.user_attrs
    cfg, done, base, picks = _setup(s)
    ref = run_refine(STUDY, cfg, done, study_picks=picks, gpu="NVIDIA H200", rounds=1,
                     timer=_fake_timer("t256-q4-pauto-pf0-s4-mma"), graph_len=32768,
                     graph_timer=_fake_timer("t128-q4-pauto-pf0-s3-mma", 1.05), fallback=base.best_overall["key"])
    s.set_user_attr(ATTR, ref.to_dict())
    # asked for graph picks at another bound: measured again (no GPU here)
    p = wb(["refine", "--study", STUDY, "--storage", url, "--graph-len", "8192"], tmp_path)
    assert p.returncode != 0 and "no NVIDIA GPU" in p.stderr
    assert "graph picks are for --graph-len 32768, not 8192" in " ".join(p.stderr.split())     # what to ask instead
    p = wb(["refine", "--study", STUDY, "--storage", url, "--json"], tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "not measured again" in p.stderr
    d = json.loads(p.stdout)
    assert d["refinement"]["rows"] == ref.to_dict()["rows"]
    p = wb(["refine", "--study", STUDY, "--storage", url, "--again"], tmp_path)
    assert p.returncode != 0 and "no NVIDIA GPU" in p.stderr
    p = wb(["refine", "--study", STUDY, "--storage", url, "--graph-rule", "best"], tmp_path)
    assert p.returncode != 0 and "--graph-rule 'best': use one of geomean, worst, band" in p.stderr
    assert "Traceback" not in p.stderr
    p = wb(["export", "--study", STUDY, "--storage", url, "--out", str(tmp_path / "pkg"), "--json"], tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    pkg = json.loads(p.stdout)["package"]
    rows = json.loads((tmp_path / "pkg" / pkg / "dispatch.json").read_text())["rows"]
    want = {r.bucket: r.pick_key for r in ref.rows}
    assert {f"b{r['bucket']['batch']}x{r['bucket']['context']}": r["key"] for r in rows if not r["borrowed_from"]} == want
    assert [(r["borrowed_from"], r["key"]) for r in rows if r["borrowed_from"]] == [("b48x24576", want["b48x24576"])]
    readme = (tmp_path / "pkg" / "README.md").read_text()
    assert readme.count("(refined)") == 1 + sum(r.changed for r in ref.rows)     # the rows and the legend
    assert any(r.changed for r in ref.rows)
    # the graph picks: in dispatch.py (what the vLLM backend's captured launches take) and dispatch.h
    ns: dict = {}
    exec((tmp_path / "pkg" / pkg / "dispatch.py").read_text(), ns)
    names = ns["VARIANTS"]
    grow = {r.bucket: r for r in ref.graph_rows}
    assert set(grow) == {"b2", "b12", "b48", "b160"} and any(r.changed for r in ref.graph_rows)
    assert ref.graph_rule == "band-worst" and all(len(r.bands) == 3 for r in ref.graph_rows)     # the default rule
    for n, lbl in ((1, "b2"), (4, "b2"), (5, "b12"), (64, "b48"), (87, "b48"), (88, "b160"), (400, "b160")):
        key = next(b.pick_key for b in grow[lbl].bands if b.batch_lo <= n and (not b.batch_hi or n < b.batch_hi))
        want_name = next(c.name for c in grow[lbl].candidates if c.key == key)
        assert names[ns["pick_graph_variant"](n, 32768)].removesuffix("-sched") == want_name, (n, lbl)
    assert len(ns["GRAPH_BUCKETS"]) == 12 and "kGraphBuckets" in (tmp_path / "pkg" / pkg / "csrc" / "dispatch.h").read_text()
    assert "Captured decode launches" in readme
    assert not any("no graph picks" in n for n in json.loads(p.stdout)["notes"])     # it has them


def test_tune_summary_points_at_refine_until_the_study_is_refined(study):
    """`workbench tune`'s summary names the buckets with close calls and the refine command, and stops
    once a refinement is stored (its dispatch then carries the refined picks)."""
    from types import SimpleNamespace

    from workbench.tune.refine import ATTR, run_refine
    from workbench.tune.tuner import summarize
    _, s = study
    h = SimpleNamespace(study=s, name=STUDY)
    before = summarize(h, "sqlite:///x", 1.0, 0, 0, [])
    hint = [n for n in before.notes if "workbench refine --study h200-train" in n]
    assert len(hint) == 1 and "b48x24576" in hint[0] and "b2x8192" not in hint[0]
    cfg, done, base, picks = _setup(s)
    ref = run_refine(STUDY, cfg, done, study_picks=picks, gpu="x", rounds=1, timer=_fake_timer("t256-q4-pauto-pf0-s4-mma"))
    s.set_user_attr(ATTR, ref.to_dict())
    after = summarize(h, "sqlite:///x", 1.0, 0, 0, [])
    assert not any("close calls" in n for n in after.notes)
    assert any(r["refined"] for r in after.dispatch["rows"])
    # refined without graph picks: one note says how to add them; with them, none
    assert [n for n in after.notes if "workbench refine" in n and "graph" in n]
    ref = run_refine(STUDY, cfg, done, study_picks=picks, gpu="x", rounds=1, timer=_fake_timer("none"),
                     graph_len=32768, graph_timer=_fake_timer("none"))
    s.set_user_attr(ATTR, ref.to_dict())
    assert not any("workbench refine" in n for n in summarize(h, "sqlite:///x", 1.0, 0, 0, []).notes)


def test_graph_plan_takes_each_batch_rows_picks_and_times_them_at_its_contexts(study):
    """Graph picks: per batch row, the default is the table's pick at the bound (what a captured
    launch ran before), candidates are the row's picks and close calls one per family, shapes the
    row's batch at each of its buckets' centre contexts (kept where they fit the suite)."""
    from workbench.measure.suite import Suite
    from workbench.measure.suite import RaggedShape
    from workbench.tune.refine import (GRAPH_RAGGED_LO, GRAPH_RAGGED_SEED, Refinement, family, graph_plan, run_refine,
                                       splits_at)
    _, s = study
    cfg, done, base, picks = _setup(s)
    suite = Suite.from_dict(cfg["suite"])
    plan = {lbl: (own, cands, shapes) for lbl, own, cands, shapes in
            graph_plan(suite, done, picks, 32768, _fits,
                       fallback=base.best_overall["key"])}
    assert set(plan) == {"b2", "b12", "b48", "b160"}
    for lbl, (own, cands, shapes) in plan.items():
        batch = int(lbl[1:])
        # the long-context pick; b160 x 24k is over max_kv_gb: no row, the package's best overall
        assert own == picks.get(f"{lbl}x24576", base.best_overall["key"]) and cands[0].key == own
        assert {picks[f"{lbl}x{c}"] for c in (2048, 8192, 24576) if f"{lbl}x{c}" in picks} <= {c.key for c in cands} | \
            {k for k in picks.values() if family(next(m.variant for _, m in done if m.key == k)) in
             {family(c.variant) for c in cands}}
        assert len({family(c.variant) for c in cands}) == len(cands)
        mids = {"b2": (1, 3), "b12": (8, 17), "b48": (34, 65), "b160": (119, 226)}[lbl]
        # the row's short end (1000 tokens) first, then its buckets' centre contexts, then a ragged
        # batch of each of its batches up to the bound (its own seed: not the bench suite's)
        rag = [(n, RaggedShape(n, GRAPH_RAGGED_LO, 32768, GRAPH_RAGGED_SEED)) for n in (batch, *mids) if n >= 2]
        assert shapes == [(n, c) for c in (1000, 2048, 8192, 24576) for n in (batch, *mids) if n * c <= 64 * 32768] + \
            [(n, r) for n, r in rag if _fits(n, r)]
        assert all(r.seed not in (1, 2, 3) for _, r in rag)
    # each row also times its neighbours' defaults (qwen's b160 row never timed the b48 row's long-context
    # pick, which ran b256 faster than the twopass pick b160's centres chose)
    order = ["b2", "b12", "b48", "b160"]
    variant_of = {m.key: m.variant for _, m in done if m.ok}
    for i, lbl in enumerate(order):
        fams = {family(c.variant) for c in plan[lbl][1]}
        for nb in order[max(0, i - 1):i + 2]:
            if splits_at(variant_of[plan[nb][0]], 32768):
                assert family(variant_of[plan[nb][0]]) in fams, (lbl, nb)
    assert plan["b48"][0] != plan["b160"][0] and family(variant_of[plan["b48"][0]]) != family(variant_of[plan["b160"][0]])
    # ... unless asked not to (how refinements stored before the rule were made: Refinement.graph_neighbours)
    alone = {lbl: cands for lbl, _, cands, _ in graph_plan(suite, done, picks, 32768, _fits,
                                                          fallback=base.best_overall["key"], neighbours=False)}
    added = [(lbl, nb) for i, lbl in enumerate(order) for nb in order[max(0, i - 1):i + 2]
             if nb != lbl and family(variant_of[plan[nb][0]]) not in {family(c.variant) for c in alone[lbl]}
             and splits_at(variant_of[plan[nb][0]], 32768)]
    assert added and all(family(variant_of[plan[nb][0]]) in {family(c.variant) for c in plan[lbl][1]} for lbl, nb in added)
    assert plan["b160"][2][:9] == [(160, 1000), (119, 1000), (226, 1000), (160, 2048), (119, 2048), (226, 2048),
                                   (160, 8192), (119, 8192), (226, 8192)]
    assert [r.label for _, r in plan["b12"][2][-3:]] == ["r12x100-32768", "r8x100-32768", "r17x100-32768"]
    # the timer decides; without one there are no graph picks to make
    ref = run_refine(STUDY, cfg, done, study_picks=picks, gpu="x", rounds=3, timer=_fake_timer("none"),
                     graph_len=32768, graph_timer=_fake_timer("t128-q4-pauto-pf0-s3-mma", 1.05),
                     fallback=base.best_overall["key"])
    assert len(ref.graph_rows) == 4 and ref.graph_neighbours
    assert Refinement.from_dict(json.loads(json.dumps(ref.to_dict()))).graph_neighbours
    assert ref.covers_graph(32768, ref.graph_rule) and not ref.covers_graph(32768, ref.graph_rule, neighbours=False)
    # ... and the split forms of whole-sequence picks (a refinement stored without them measures again)
    assert ref.graph_split_forms and Refinement.from_dict(json.loads(json.dumps(ref.to_dict()))).graph_split_forms
    assert not ref.covers_graph(32768, ref.graph_rule, split_forms=False)
    assert not Refinement.from_dict({**ref.to_dict(), "graph_split_forms": False}).covers_graph(32768, ref.graph_rule)
    for r in ref.graph_rows:
        fav = [c.key for c in r.candidates if "t128-q4-pauto-pf0-s3-mma" in c.name]
        assert r.pick_key == (fav[0] if fav and len(r.candidates) > 1 else r.study_key), r.bucket
        assert all(len(c.us) == len(r.shapes) for c in r.candidates) or len(r.candidates) == 1
    assert any(r.changed for r in ref.graph_rows)
    calm = run_refine(STUDY, cfg, done, study_picks=picks, gpu="x", rounds=1, timer=_fake_timer("none"),
                      graph_len=32768, graph_timer=_fake_timer("t128-q4-pauto-pf0-s3-mma", 1.003))
    assert calm.graph_rows and not any(r.changed for r in calm.graph_rows)
    assert not run_refine(STUDY, cfg, done, study_picks=picks, gpu="x", rounds=1, timer=_fake_timer("none")).graph_rows
    with pytest.raises(Exception, match="graph-len"):
        run_refine(STUDY, cfg, done, study_picks=picks, gpu="x", rounds=1, timer=_fake_timer("none"), graph_len=32768)


def test_graph_candidates_split_at_the_bound(study):
    """A captured launch serves every length up to the bound: a whole-sequence variant (partition
    none) is never a graph row's candidate, even when it is a row's pick at a short context (qwen's
    b48 row picked one and ran a ragged r32 at 380 us, FA3 117); the default (the table's pick at the
    bound) stays whatever it is."""
    from workbench.measure.suite import Suite
    from workbench.tune.refine import graph_plan
    _, s = study
    cfg, done, base, picks = _setup(s)
    suite = Suite.from_dict(cfg["suite"])
    whole = [m.key for _, m in done if m.ok and m.variant["partition"] == 0]
    assert whole
    forced = {**picks, "b12x2048": whole[0], "b12x8192": whole[-1], "b48x24576": whole[0]}
    plan = {lbl: (own, cands) for lbl, own, cands, _ in
            graph_plan(suite, done, forced, 32768, _fits, fallback=base.best_overall["key"])}
    assert not any(c.variant["partition"] == 0 for c in plan["b12"][1])
    own, cands = plan["b48"]
    assert own == whole[0] and cands[0].key == own
    assert not any(c.variant["partition"] == 0 for c in cands[1:])


def test_bench_and_the_dispatch_take_the_graph_picks_for_captured_launches_only(study):
    from types import SimpleNamespace

    from workbench.config.profiles import head_shape, load_model
    from workbench.bench.pickers import tuned_picker
    from workbench.tune.dispatch import study_dispatch
    from workbench.tune.refine import ATTR, run_refine
    url, s = study
    cfg, done, base, picks = _setup(s)
    ref = run_refine(STUDY, cfg, done, study_picks=picks, gpu="x", rounds=1, timer=_fake_timer("none"),
                     graph_len=32768, graph_timer=_fake_timer("t256-q4-pauto-pf0-s4-mma", 1.05),
                     fallback=base.best_overall["key"], graph_rule="geomean")     # one pick per row
    s.set_user_attr(ATTR, ref.to_dict())
    table = study_dispatch(STUDY, s, cfg, done)
    assert [g.label for g in table.graph_rows] == [r.bucket for r in ref.graph_rows]
    assert table.graph_pick(64).key == ref.graph_picks()["b48"] and table.graph_pick(64).batch_lo == 24
    assert {g.key for g in table.graph_rows} <= {v_key for v_key in (
        __import__("workbench.kernel.variant", fromlist=["Variant"]).Variant.from_dict(v).key for v in table.variants)}
    pick, note = tuned_picker(STUDY, url, head_shape(load_model("llama-3.1-8b")), "bf16", 16, "sm_90a")
    g48 = next(g for g in table.graph_rows if g.label == "b48")
    assert "graph picks for 4 batch rows" in note
    assert pick(SimpleNamespace(num_seqs=64, max_seq_len=32768, graph=True)).key == g48.key
    eager = next(r for r in table.rows if r.bucket["batch"] == 48 and r.bucket["context"] == 24576)
    assert pick(SimpleNamespace(num_seqs=64, max_seq_len=32768)).key == eager.key
    assert g48.key != eager.key
    # a bucket over the tune suite's max_kv_gb was never timed: its row borrows b48 x 24k's pick
    assert pick(SimpleNamespace(num_seqs=256, max_seq_len=16384)).key == eager.key


def test_graph_pick_is_the_candidate_that_loses_least_at_its_worst_shape():
    """A captured graph serves every shape of its row: the pick minimises the worst slowdown against
    the fastest candidate per shape (not the geomean); the default stays within REFINE_KEEP of it."""
    from workbench.tune.refine import RefineCandidate, choose, choose_graph

    def cand(key, us):
        return RefineCandidate(key=key, name=key, variant={}, trial=0, centre_us=1.0, us=dict(zip("abcd", us)))
    fast_mostly = cand("onepass", [90, 90, 90, 106])      # best geomean, 6% behind at shape d
    even = cand("twopass", [92, 92, 92, 100])
    assert choose([fast_mostly, even], "onepass") == "onepass"            # the geomean rule
    assert choose_graph([fast_mostly, even], "onepass") == "twopass"
    assert choose_graph([fast_mostly, even], "twopass") == "twopass"
    near = cand("near", [92, 92, 92, 100.3])                             # within 0.5% of the best worst case
    assert choose_graph([even, near], "near") == "near"
    assert choose_graph([near, even, cand("untimed", [])], "untimed") == "twopass"


def test_graph_candidates_hold_the_fastest_of_each_algorithm(tmp_path):
    """On the session-14 study (twopass and onepass both in its space), every batch row's graph
    candidates hold the fastest variant of each algorithm at each of its buckets."""
    import gzip

    optuna = pytest.importorskip("optuna")
    from workbench.measure.suite import Suite
    from workbench.tune.refine import best_per_algorithm, family, graph_plan
    db = tmp_path / "retune.db"
    db.write_bytes(gzip.decompress((ROOT / "results/h200-2026-11-29-retune/studies.db.gz").read_bytes()))
    s = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{db}")
    cfg, done, base, picks = _setup(s)
    suite = Suite.from_dict(cfg["suite"])
    both = 0
    for b in suite.buckets():
        if b.label not in picks:             # over the suite's max_kv_gb: never timed
            continue
        keys = best_per_algorithm(done, b.label)
        algos = [next(m.variant.get("algorithm", "twopass") for _, m in done if m.key == k) for k in keys]
        assert len(algos) == len(set(algos)) >= 1
        both += len(algos) == 2
        for k, a in zip(keys, algos):            # each the fastest of its algorithm at the centre
            t = min(m.timing(b.label).median_us for _, m in done
                    if m.ok and m.timing(b.label) and m.variant.get("algorithm", "twopass") == a)
            assert next(m.timing(b.label).median_us for _, m in done if m.key == k) == t
    plan = graph_plan(suite, done, picks, 32768, _fits, fallback=base.best_overall["key"])
    for lbl, own, cands, shapes in plan:
        row = [b for b in suite.buckets() if f"b{b.batch}" == lbl]
        algos = {m.variant.get("algorithm", "twopass") for b in row for k in best_per_algorithm(done, b.label, 32768)
                 for _, m in done if m.key == k}
        assert algos <= {c.variant.get("algorithm", "twopass") for c in cands}, lbl
        fams = {family(c.variant) for c in cands}
        for b in row:
            for k in best_per_algorithm(done, b.label, 32768):      # of the variants that split at the bound
                assert family(next(m.variant for _, m in done if m.key == k)) in fams, (lbl, b.label, k)
    assert both >= 8 and len(plan) == 4
    # run_refine takes the graph pick by the worst shape: a candidate 10% ahead at every uniform shape
    # but 20% behind at one (b65 x 8k), even at the ragged ones (the ragged guard keeps both), wins the
    # geomean and loses the row
    from workbench.tune.refine import run_refine

    def graph_timer(cands):
        def time_pass(order, spec, launches):
            fav = 100.0 if len(set(spec.seq_lens)) > 1 else 120.0 if (spec.num_seqs, spec.max_seq_len) == (65, 8192) else 90.0
            return [fav if c.key == order_key[0] else 100.0 for c in order]
        return time_pass
    plan_b48 = next(c for lbl, _, c, _ in plan if lbl == "b48")
    order_key = [next(c.key for c in plan_b48 if c.key != next(o for l2, o, _, _ in plan if l2 == "b48"))]
    ref = run_refine(STUDY, cfg, done, study_picks=picks, gpu="x", rounds=1, timer=_fake_timer("none"),
                     graph_len=32768, graph_timer=graph_timer, fallback=base.best_overall["key"], graph_rule="worst")
    row = next(r for r in ref.graph_rows if r.bucket == "b48")
    assert row.pick_key != order_key[0] and row.pick_key == row.study_key and ref.graph_rule == "worst"
    ref = run_refine(STUDY, cfg, done, study_picks=picks, gpu="x", rounds=1, timer=_fake_timer("none"),
                     graph_len=32768, graph_timer=graph_timer, fallback=base.best_overall["key"], graph_rule="geomean")
    assert next(r for r in ref.graph_rows if r.bucket == "b48").pick_key == order_key[0]     # the geomean rule
    assert not ref.covers_graph(32768, "worst") and ref.covers_graph(32768, "geomean")
    with pytest.raises(Exception, match="graph-rule"):
        run_refine(STUDY, cfg, done, study_picks=picks, gpu="x", rounds=1, timer=_fake_timer("none"),
                   graph_len=32768, graph_timer=graph_timer, graph_rule="best")


def test_an_untimed_bucket_takes_its_neighbours_pick_in_the_table_bench_and_export(study, tmp_path):
    """b160 x 24k is over the train suite's max_kv_gb: never timed. Its row borrows the pick of the
    same context at the largest smaller batch (b48 x 24k), not the study's best overall; bench's
    picker and the exported dispatch serve b256 x 16k with it."""
    from types import SimpleNamespace

    from workbench.config.profiles import head_shape, load_model
    from workbench.bench.pickers import tuned_picker
    from workbench.measure.suite import Suite, shape_label
    from workbench.tune.dispatch import borrowed_rows
    url, s = study
    cfg, done, base, _ = _setup(s)
    rows = {shape_label(r.bucket["batch"], r.bucket["context"]): r for r in base.rows}
    assert rows["b160x24576"].borrowed_from == "b48x24576" and rows["b160x24576"].key == rows["b48x24576"].key
    assert rows["b160x24576"].fa3_us is None and rows["b160x24576"].baseline_us is None
    assert rows["b160x24576"].key != base.best_overall["key"]
    assert [r for r in base.rows if r.borrowed_from] == [rows["b160x24576"]]
    # the rule: the same context at a smaller batch first, else the same batch at a shorter context
    suite = Suite.from_dict(cfg["suite"])
    timed = [r for r in base.rows if not r.borrowed_from]
    only_b160 = [r for r in timed if r.bucket["batch"] == 160]
    got = borrowed_rows(suite, only_b160)
    assert {shape_label(r.bucket["batch"], r.bucket["context"]): r.borrowed_from for r in got}["b160x24576"] == "b160x8192"
    pick, _ = tuned_picker(STUDY, url, head_shape(load_model("llama-3.1-8b")), "bf16", 16, "sm_90a")
    spec = SimpleNamespace(num_seqs=256, max_seq_len=16384)
    assert pick(spec).key == rows["b48x24576"].key
    p = wb(["export", "--study", STUDY, "--storage", url, "--out", str(tmp_path / "pkg"), "--json"], tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    pkg = json.loads(p.stdout)["package"]
    ns: dict = {}
    exec((tmp_path / "pkg" / pkg / "dispatch.py").read_text(), ns)
    assert ns["VARIANTS"][ns["pick_variant"](256, 16384)].removesuffix("-sched") == rows["b48x24576"].name
    assert "untimed bucket: the pick of b48x24576" in (tmp_path / "pkg" / "README.md").read_text()


def test_graph_bands_split_each_batch_row_at_its_measured_batches():
    """--graph-rule band: a row's captured batch sizes go to the nearest of the batches its graph shapes
    are timed at (lower midpoint, centre, upper midpoint), the bands covering the row exactly."""
    from workbench.measure.suite import load_suite
    from workbench.tune.refine import graph_bands, graph_label
    rows = {graph_label(b): b for b in load_suite("train").buckets()}
    assert graph_bands(rows["b2"]) == [(1, 1, 2), (2, 2, 3), (3, 3, 5)]
    assert graph_bands(rows["b48"]) == [(34, 24, 41), (48, 41, 56), (65, 56, 88)]
    assert graph_bands(rows["b160"]) == [(119, 88, 138), (160, 138, 191), (226, 191, 0)]
    for b in rows.values():
        bands = graph_bands(b)
        assert bands[0][1] == b.batch_lo and bands[-1][2] == b.batch_hi
        assert all(x[2] == y[1] for x, y in zip(bands, bands[1:]))
        assert all(lo <= n and (not hi or n < hi) for n, lo, hi in bands)


def test_band_rule_picks_per_band_from_the_stored_timings_without_a_gpu(tmp_path, monkeypatch):
    """On the session-14 geomean study: re-choosing its graph picks under the band rule measures nothing
    (CI has no GPU: a measurement would raise) and gives b56-87 the twopass t256 variant, 2-4% ahead at
    b65 from 2k tokens up, while b24-40 keeps the onepass one (7-20% ahead at b34); the package's graph
    table and bench's picker serve b64 and b32 with them; the geomean rule gives the stored picks back."""
    import gzip

    optuna = pytest.importorskip("optuna")
    from types import SimpleNamespace

    from workbench.config.profiles import head_shape, load_model
    from workbench.bench.pickers import tuned_picker
    from workbench.export.package import _dispatch_py
    from workbench.tune.refine import refine_study, stored
    db = tmp_path / "geomean.db"
    db.write_bytes(gzip.decompress((ROOT / "results/h200-2026-11-29-retune/ab/studies-geomean.db.gz").read_bytes()))
    url = f"sqlite:///{db}"
    before = stored(optuna.load_study(study_name=STUDY, storage=url))
    # (alt_margin 0 and no neighbours' defaults: as it was refined, before CTA-shape alternatives and
    # neighbours; either asked for measures again, which CI's missing GPU refuses)
    assert not before.graph_neighbours
    from workbench.errors import WorkbenchError
    monkeypatch.setattr("workbench.measure.gpuinfo.device_names", lambda: [])     # as on CI, on any host
    with pytest.raises(WorkbenchError, match="measures on a GPU.*`--no-graph-neighbours --no-graph-split-forms` re-chooses"):
        refine_study(STUDY, url, graph_len=before.graph_len, graph_rule="band", alt_margin=0.0)
    with pytest.raises(WorkbenchError, match="measures on a GPU$"):        # alt_margin asks to measure too: no hint
        refine_study(STUDY, url, graph_len=before.graph_len, graph_rule="band", graph_neighbours=False,
                     graph_split_forms=False)
    ref, table, measured = refine_study(STUDY, url, graph_len=before.graph_len, graph_rule="band", alt_margin=0.0,
                                        graph_neighbours=False, graph_split_forms=False)
    # the table rows' picks as stored (their bands, from the same timings, are today's rule's)
    assert not measured and ref.graph_rule == "band" and ref.picks() == before.picks()
    b48 = next(r for r in ref.graph_rows if r.bucket == "b48")
    name = {c.key: c.name for c in b48.candidates}
    assert [(b.batch, b.batch_lo, b.batch_hi) for b in b48.bands] == [(34, 24, 41), (48, 41, 56), (65, 56, 88)]
    assert "onepass" in name[b48.bands[0].pick_key] and "twopass-t256" in name[b48.bands[2].pick_key]
    assert all(r.bands for r in ref.graph_rows) and b48.changed
    g64, g32 = table.graph_pick(64), table.graph_pick(32)
    assert (g64.key, g64.batch_lo, g64.batch_hi, g64.label) == (b48.bands[2].pick_key, 56, 88, "b48:b65")
    assert g32.key == b48.bands[0].pick_key and set(g64.us) == {"b65x1000", "b65x2048", "b65x8192"}
    assert len(table.graph_rows) == sum(len(r.bands) for r in ref.graph_rows) == 12
    index = {k: i for i, k in enumerate(dict.fromkeys(g.key for g in table.graph_rows))}
    index.update({r.key: len(index) + i for i, r in enumerate(table.rows) if r.key not in index})
    index.setdefault(table.best_overall["key"], len(index))
    ns: dict = {}
    exec(_dispatch_py(table, [], index), ns)
    assert ns["pick_graph_variant"](64, 32864) == index[g64.key] != ns["pick_graph_variant"](32, 32864)
    pick, _ = tuned_picker(STUDY, url, head_shape(load_model("llama-3.1-8b")), "bf16", 16, "sm_90a")
    assert pick(SimpleNamespace(num_seqs=64, max_seq_len=32864, graph=True)).key == g64.key
    # stored with the rule; the geomean rule re-chosen from the same timings is the stored study's own
    assert stored(optuna.load_study(study_name=STUDY, storage=url)).graph_rule == "band"
    ref2, _, measured = refine_study(STUDY, url, graph_len=before.graph_len, graph_rule="geomean", alt_margin=0.0,
                                     graph_neighbours=False, graph_split_forms=False)
    assert not measured and [r.pick_key for r in ref2.graph_rows] == [r.pick_key for r in before.graph_rows]
    assert not any(r.bands for r in ref2.graph_rows)


def test_band_rule_in_a_refine_run_gives_a_band_only_what_wins_at_its_batch(study):
    """A candidate 5% ahead at the b48 row's upper midpoint (b65) and 5% behind elsewhere takes only
    the b56-87 band; the row-wide geomean keeps the default."""
    from workbench.tune.refine import run_refine
    url, s = study
    cfg, done, base, picks = _setup(s)
    plain = run_refine(STUDY, cfg, done, study_picks=picks, gpu="x", rounds=1, timer=_fake_timer("none"),
                       graph_len=32768, graph_timer=_fake_timer("none"), fallback=base.best_overall["key"])
    row = next(r for r in plain.graph_rows if r.bucket == "b48")
    other = next(c.key for c in row.candidates if c.key != row.study_key)

    def graph_timer(cands):
        def time_pass(order, spec, launches):
            return [(95.0 if spec.num_seqs == 65 else 105.0) if c.key == other else 100.0 for c in order]
        return time_pass
    ref = run_refine(STUDY, cfg, done, study_picks=picks, gpu="x", rounds=1, timer=_fake_timer("none"),
                     graph_len=32768, graph_timer=graph_timer, fallback=base.best_overall["key"], graph_rule="band")
    b48 = next(r for r in ref.graph_rows if r.bucket == "b48")
    assert b48.pick_key == b48.study_key and ref.graph_rule == "band"
    assert [b.pick_key == other for b in b48.bands] == [False, False, True]


def test_alternatives_are_each_missing_cta_shapes_fastest_within_the_margin(study):
    """b2 x 8k of the v6 study has one close call (2 heads per CTA); the fastest 4-heads-per-CTA variant,
    3.8% behind at the centre, joins it as an alternative; b2 x 24k's close calls hold every CTA shape
    within 25%; margin 0 gives none."""
    from workbench.tune.refine import alternatives, candidates, cta_shape
    _, s = study
    _, done, _, _ = _setup(s)
    close = candidates(done, "b2x8192")
    alt = alternatives(done, "b2x8192", close)
    assert [cta_shape(c.variant) for c in close] == [(2, True)]
    assert [cta_shape(c.variant) for c in alt] == [(4, True)] and alt[0].centre_us <= 1.25 * close[0].centre_us
    assert alt[0].centre_us == min(c.centre_us for c in candidates(done, "b2x8192", 1.0, 10 ** 9)
                                   if cta_shape(c.variant) == (4, True))
    assert alternatives(done, "b2x24576", candidates(done, "b2x24576")) == []
    assert alternatives(done, "b2x8192", close, 0.0) == []


def test_a_table_band_takes_what_wins_at_its_batch_in_bench_and_export(study, tmp_path):
    """An alternative 10% ahead at the b48 x 8k bucket's upper band's shapes (b56, b65) and 4% behind elsewhere:
    the bucket's pick stays, its b56-87 band takes the alternative, and the dispatch, bench's picker and the
    package's pick_variant serve b64 x 4k from it and b32 x 4k from the pick; 4% ahead takes nothing
    (REFINE_BAND_KEEP); a stored refinement without it measures again (it covers no alternatives)."""
    from types import SimpleNamespace

    from workbench.bench.pickers import tuned_picker
    from workbench.config.profiles import head_shape, load_model
    from workbench.export.package import _dispatch_h, _dispatch_py
    from workbench.tune.dispatch import study_dispatch
    from workbench.tune.refine import ATTR, alternatives, candidates, run_refine
    url, s = study
    cfg, done, base, picks = _setup(s)
    alt = alternatives(done, "b48x8192", candidates(done, "b48x8192"))[0].key

    def timer(ahead):
        def for_bucket(cands):
            def time_pass(order, spec, launches):
                return [(100.0 / ahead if spec.num_seqs in (56, 65) else 104.0) if c.key == alt else 100.0
                        for c in order]
            return time_pass
        return for_bucket
    ref = run_refine(STUDY, cfg, done, study_picks=picks, gpu="x", rounds=1, timer=timer(1.10))
    row = next(r for r in ref.rows if r.bucket == "b48x8192")
    assert alt in {c.key for c in row.candidates} and row.pick_key == picks["b48x8192"] and row.changed
    assert [(b.batch, b.batch_lo, b.batch_hi, b.pick_key == alt) for b in row.bands] == \
        [(34, 24, 41, False), (48, 41, 56, False), (65, 56, 88, True)]
    assert ref.bands() == {r.bucket: r.bands for r in ref.rows if r.bands} and "b48x8192" in ref.bands()
    s.set_user_attr(ATTR, ref.to_dict())
    table = study_dispatch(STUDY, s, cfg, done)
    mine = [r for r in table.rows if (r.bucket["batch"], r.bucket["context"]) == (48, 8192)]
    assert [(r.batch_lo, r.batch_hi, r.key == alt, r.refined) for r in mine] == \
        [(24, 41, False, False), (41, 56, False, False), (56, 88, True, True)]
    assert table.pick(64, 4096).key == alt and table.pick(32, 4096).key == picks["b48x8192"]
    pick, note = tuned_picker(STUDY, url, head_shape(load_model("llama-3.1-8b")), "bf16", 16, "sm_90a")
    assert pick(SimpleNamespace(num_seqs=64, max_seq_len=4096)).key == alt and "bands" in note
    assert pick(SimpleNamespace(num_seqs=32, max_seq_len=4096)).key == picks["b48x8192"]
    index = {k: i for i, k in enumerate(dict.fromkeys([*(r.key for r in table.rows), table.best_overall["key"]]))}
    ns: dict = {}
    exec(_dispatch_py(table, [], index), ns)
    assert ns["pick_variant"](64, 4096) == index[alt] != ns["pick_variant"](32, 4096)
    h = _dispatch_h(table, [], index)
    assert f"{{56, 88, {mine[2].bucket['context_lo']}, {mine[2].bucket['context_hi']}, {index[alt]}}}" in h, h
    calm = run_refine(STUDY, cfg, done, study_picks=picks, gpu="x", rounds=1, timer=timer(1.04))
    assert not next(r for r in calm.rows if r.bucket == "b48x8192").bands
    # stored without its bands (an older rule): `refine` chooses them again from the timings, measuring nothing
    from dataclasses import replace

    from workbench.tune.refine import Refinement, refine_study
    s.set_user_attr(ATTR, replace(ref, rows=[replace(r, bands=[]) for r in ref.rows]).to_dict())
    again, _, measured = refine_study(STUDY, url, graph_len=0)
    assert not measured and again.bands() == ref.bands()
    old = Refinement.from_dict({k: v for k, v in ref.to_dict().items() if k != "alt_margin"})
    assert old.alt_margin == 0.0 and not old.covers(done, {r.bucket for r in ref.rows}, ref.margin, ref.top, 0.25)
    assert ref.covers(done, {r.bucket for r in ref.rows}, ref.margin, ref.top, 0.25)


def test_ragged_shapes_weigh_as_much_as_all_uniform_ones_and_a_refused_shape_is_never_picked():
    from workbench.tune.refine import RefineCandidate, choose
    uni = {"b8x1000": 10.0, "b8x2048": 10.0, "b8x8192": 10.0, "b8x24576": 10.0}
    a = RefineCandidate(key="a", name="a", variant={}, trial=0, centre_us=1.0, us={**uni, "r8x100-32864": 100.0})
    b = RefineCandidate(key="b", name="b", variant={}, trial=1, centre_us=1.0,
                        us={k: 12.0 for k in uni} | {"r8x100-32864": 60.0})
    assert a.geomean_us == pytest.approx((10.0 * 100.0) ** 0.5) and b.geomean_us == pytest.approx((12.0 * 60.0) ** 0.5)
    assert choose([a, b], "a") == "b"                 # a plain geomean over the 5 shapes picks a: 15.8 vs 16.6 us
    c = RefineCandidate(key="c", name="c", variant={}, trial=2, centre_us=1.0, us={**uni, "r8x100-32864": float("inf")})
    assert c.geomean_us == float("inf") and choose([a, c], "c") == "a"
    assert RefineCandidate(key="d", name="d", variant={}, trial=3, centre_us=1.0, us=dict(uni)).geomean_us == pytest.approx(10.0)


def test_a_side_band_won_by_two_candidates_splits_at_a_wave_edge_between_them():
    """qwen2.5-7b heads (28 / 4) on 132 SMs: 4 heads per CTA is 8 CTAs per sequence, a wave edge at 16.5.
    b12 x 2k's upper band (b15-23) timed at b15 and b17: the 4-head pick wins b15, a 7-head variant b17 by
    more than the band margin: the band splits at 17, not at either shape's midpoint rule; without a wave
    edge between the two batches (or no SM count) the band keeps one pick by its geomean."""
    from workbench.measure.suite import load_suite
    from workbench.tune.refine import RefineCandidate, RefineRow, pick_table_row, wave_edges
    bucket = next(b for b in load_suite("train").buckets() if b.label == "b12x2048")
    v4 = {"heads_per_cta": 4, "partition": 0}
    v7 = {"heads_per_cta": 7, "partition": 0}
    centre = {"b12x2048": 24.0, "b8x2000": 23.0, "b9x2000": 23.0, "b12x1000": 17.0, "b12x3000": 30.0}
    a = RefineCandidate(key="q4", name="q4", variant=v4, trial=0, centre_us=24.0,
                        us={**centre, "b15x2000": 26.8, "b17x2000": 43.5})
    b = RefineCandidate(key="q7", name="q7", variant=v7, trial=1, centre_us=28.0,
                        us={k: 1.2 * v for k, v in centre.items()} | {"b15x2000": 33.4, "b17x2000": 34.3})
    row = RefineRow(bucket=bucket.label, shapes=list(a.us), candidates=[a, b], study_key="q4", pick_key="q4")
    heads = {"num_heads": 28, "num_kv_heads": 4}
    got = pick_table_row(row, bucket, edges=wave_edges(heads, 132))
    assert got.pick_key == "q4"
    assert [(g.batch, g.batch_lo, g.batch_hi, g.pick_key) for g in got.bands] == \
        [(8, 5, 10, "q4"), (12, 10, 15, "q4"), (15, 15, 17, "q4"), (17, 17, 24, "q7")]
    # no SM count, or an SM count whose wave edges fall outside 15..17: the band's geomean decides
    for edges in (None, wave_edges(heads, 100)):
        g = pick_table_row(row, bucket, edges=edges)
        assert [(x.batch_lo, x.batch_hi) for x in g.bands] in ([], [(5, 10), (10, 15), (15, 24)])
    assert wave_edges(heads, 0) is None and wave_edges(heads, 132)(v4)[:2] == [16.5, 33.0]


def test_graph_candidates_hold_the_split_form_of_a_whole_sequence_band_pick(tmp_path):
    """llama-3.1-8b's H200 study (bands, 2026-11-29): the b12 row's b5-8 band of the 4k-14k bucket picked
    onepass t256 with 2 heads per CTA, whole-sequence, which a captured launch cannot run. Its split form
    (same algorithm, threads, heads per CTA and tensor cores, partition auto) joins the b12 graph row's
    candidates only with band_picks; whole-sequence variants never do."""
    import gzip

    pytest.importorskip("optuna")
    from workbench.measure.suite import Suite
    from workbench.tune.refine import graph_plan, split_forms, splits_at, stored
    from workbench.tune.storage import open_tuned
    db = tmp_path / "s.db"
    db.write_bytes(gzip.decompress((ROOT / "results/h200-2026-11-29-bands/edges/studies-llama-3.1-8b.db.gz").read_bytes()))
    h, cfg, done = open_tuned(STUDY, f"sqlite:///{db}")
    ref = stored(h.study)
    suite = Suite.from_dict(cfg["suite"])
    _, _, base, picks = _setup(h.study)
    picks = {**picks, **ref.picks()}
    bands = {b: [x.pick_key for x in bs] for b, bs in ref.bands().items()}
    variant_of = {m.key: m.variant for _, m in done if m.ok}
    q2 = [k for b, ks in bands.items() for k in ks if variant_of[k]["heads_per_cta"] == 2
          and variant_of[k]["threads"] == 256 and variant_of[k]["algorithm"] == "onepass"
          and not splits_at(variant_of[k], 32864)]
    assert q2
    label = next(b for b, ks in bands.items() if q2[0] in ks)
    form = split_forms(done, label, [q2[0]], 32864)
    assert len(form) == 1 and splits_at(variant_of[form[0]], 32864)
    assert {k: variant_of[form[0]][k] for k in ("algorithm", "threads", "heads_per_cta", "mma")} == \
        {k: variant_of[q2[0]][k] for k in ("algorithm", "threads", "heads_per_cta", "mma")}
    assert split_forms(done, label, [form[0], None, "no-such-key"], 32864) == []    # splits already: nothing to add
    kw = dict(fallback=base.best_overall["key"])
    with_forms = {lbl: [c.key for c in cands] for lbl, _, cands, _ in
                  graph_plan(suite, done, picks, 32864, _fits, band_picks=bands, **kw)}
    without = {lbl: [c.key for c in cands] for lbl, _, cands, _ in graph_plan(suite, done, picks, 32864, _fits, **kw)}
    assert form[0] in with_forms["b12"] and form[0] not in without["b12"]
    assert all(splits_at(variant_of[k], 32864) for ks in with_forms.values() for k in ks[1:])


def test_ragged_guard_keeps_a_graph_band_off_a_pick_that_loses_its_ragged_batch(tmp_path):
    """The study refined with split forms (H200, 2026-11-30): at the b12 row's b8 band, onepass t256 q2
    has the lowest geomean over b8 x 1k-24k and r8 (1k 17.4 us vs 20.4) but runs r8 of 100-32k tokens
    8.8% behind twopass t256 q4 (86.9 vs 79.9). Without the guard the band takes it; with it, twopass.
    The guard only removes candidates: the ragged shape's fastest always stays."""
    import gzip

    optuna = pytest.importorskip("optuna")
    from workbench.measure.suite import Suite
    from workbench.tune.refine import GRAPH_RAGGED_GUARD, at_batch, graph_label, pick_graph_row, ragged_guard, stored
    db = tmp_path / "s.db"
    db.write_bytes(gzip.decompress(
        (ROOT / "results/h200-2026-11-30-s22/4-refine-split-forms/studies-llama-3.1-8b.db.gz").read_bytes()))
    s = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{db}")
    ref, suite = stored(s), Suite.from_dict(s.user_attrs["config"]["suite"])
    row = next(r for r in ref.graph_rows if r.bucket == "b12")
    bucket = {graph_label(b): b for b in suite.buckets()}["b12"]
    name = {c.key: c.name for c in row.candidates}
    band = lambda r: next(b for b in r.bands if b.batch == 8)                            # noqa: E731
    assert "onepass-t256-q2" in name[band(row).pick_key]                                  # stored: no guard
    guarded = pick_graph_row(row, bucket, "band", ref.keep)
    assert "twopass-t256-q4" in name[band(guarded).pick_key]
    sub = at_batch(row.candidates, 8)
    kept = ragged_guard(sub)
    rag = "r8x100-32864"
    best = min(c.us[rag] for c in sub)
    assert kept and all(c.us[rag] <= best * (1 + GRAPH_RAGGED_GUARD) for c in kept)
    assert any(c.us[rag] == best for c in kept) and len(kept) < len(sub)
    assert ragged_guard(sub, guard=1e9) == sub


def test_band_worst_rule_picks_each_band_by_its_worst_shape(tmp_path):
    """`--graph-rule band-worst`: per band, the candidate with the least loss at its worst shape
    (against the fastest there). qwen2.5-7b's b1 band under `band` takes onepass t256 q2 s3 for 2 us
    at 1k/2k (11.5 vs 13.3) while it loses 5 us at 24k (30.9 vs 25.8), and 0.81x FA3 at b1 x 32k in
    the bench suite; `band-worst` takes q4 there (H200, session 23). Chosen from the stored timings."""
    import gzip

    optuna = pytest.importorskip("optuna")
    from workbench.measure.suite import Suite
    from workbench.tune.refine import graph_label, pick_graph_row, stored
    db = tmp_path / "s.db"
    db.write_bytes(gzip.decompress(
        (ROOT / "results/h200-2026-11-30-s23/5-sparse/h200-qwen2.5-7b-tp1/studies.db.gz").read_bytes()))
    s = optuna.load_study(study_name="h200-qwen2.5-7b-tp1", storage=f"sqlite:///{db}")
    ref, suite = stored(s), Suite.from_dict(s.user_attrs["config"]["suite"])
    buckets = {graph_label(b): b for b in suite.buckets()}
    row = next(r for r in ref.graph_rows if r.bucket == "b2")
    name = {c.key: c.name for c in row.candidates}
    b1 = lambda r: next(b for b in r.bands if b.batch == 1)                               # noqa: E731
    assert ref.graph_rule == "band" and "onepass-t256-q2" in name[b1(row).pick_key]
    worst = pick_graph_row(row, buckets["b2"], "band-worst", ref.keep)
    assert "onepass-t256-q4" in name[b1(worst).pick_key]
    pick = next(c for c in row.candidates if c.key == b1(worst).pick_key)
    assert pick.us["b1x24576"] < 27 < next(c for c in row.candidates if c.key == b1(row).pick_key).us["b1x24576"]
    # the other rows' bands move at most where their worst shape says so; the stored timings are not touched
    again = [pick_graph_row(r, buckets[r.bucket], "band-worst", ref.keep) for r in ref.graph_rows]
    assert [len(r.bands) for r in again] == [len(r.bands) for r in ref.graph_rows]
    assert all(a.candidates == r.candidates for a, r in zip(again, ref.graph_rows))


def test_refine_says_when_graph_timings_were_taken_under_other_launch_rules(study, tmp_path, monkeypatch):
    """A refinement records the launch rules its graph-bound timings were taken under
    (variant.sched_rules): a refine shown from storage under today's says nothing more; one taken
    under other rules (the sparse plan of 2026-11-30 changed what b2-b24 launches run) keeps its
    picks and says so, naming `--again`. A refinement stored before the record had sparse=0."""
    import workbench.kernel.variant as vm
    from workbench.tune.refine import ATTR, Refinement, run_refine
    url, s = study
    cfg, done, base, picks = _setup(s)
    ref = run_refine(STUDY, cfg, done, study_picks=picks, gpu="NVIDIA H200", rounds=1,
                     timer=_fake_timer("t256-q4-pauto-pf0-s4-mma"), graph_len=32768,
                     graph_timer=_fake_timer("t128-q4-pauto-pf0-s3-mma", 1.05), fallback=base.best_overall["key"])
    assert ref.graph_rules == vm.sched_rules() and "sparse=1" in ref.graph_rules and not ref.stale_rules()
    s.set_user_attr(ATTR, ref.to_dict())
    p = wb(["refine", "--study", STUDY, "--storage", url], tmp_path)
    assert p.returncode == 0 and "not measured again" in p.stderr and "launch rules" not in p.stderr
    old = {**ref.to_dict(), "graph_rules": ""}
    del old["graph_rules"]                                     # as stored before the record existed
    assert Refinement.from_dict(old).stale_rules()
    s.set_user_attr(ATTR, old)
    p = wb(["refine", "--study", STUDY, "--storage", url], tmp_path)
    said = " ".join(p.stderr.split())                         # rich wraps the console's lines
    assert p.returncode == 0 and "other launch rules" in said and "sparse=0" in said and "--again" in said
    assert Refinement.from_dict(s.user_attrs[ATTR]).graph_picks() == ref.graph_picks()
    monkeypatch.setattr(vm, "SCHED_SPARSE", 0)
    assert ref.stale_rules() and "sparse=1" in ref.stale_rules()
