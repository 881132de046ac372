import pytest

from workbench.errors import WorkbenchError
from workbench.kernel.space import enumerate_space, heads_per_cta_values, load_space


def test_default_space_enumerates():
    sp = load_space()
    en = enumerate_space(sp)
    assert len(en.valid) >= 1000
    # the only invalid ones: cp.async rings that do not fit in shared memory next to the logits, and
    # tensor-core variants without a ring to read from
    assert all((v.stages and "shared memory" in r[0]) or (v.mma and not v.stages and "staged tiles" in r[0])
               for v, r in en.invalid)
    assert len({v.key for v in en.valid}) == len(en.valid)
    en4 = enumerate_space(sp, group=4)
    assert max(v.heads_per_cta for v in en4.valid) == 4
    en7 = enumerate_space(sp, group=7)
    assert sorted({v.heads_per_cta for v in en7.valid}) == [1, 2, 4, 7, 8]     # 8: group_pow2, padded
    en80 = enumerate_space(sp, "sm_80")
    assert en80.invalid and all("sm_90+" in r[0] or (v.stages and "shared memory" in r[0]) or
                                (v.mma and not v.stages and "staged tiles" in r[0]) for v, r in en80.invalid)


def test_shape_override_and_invalid_counted():
    en = enumerate_space(load_space(), head_size=256, block_size=32, group=8)
    assert all(v.head_size == 256 and v.block_size == 32 for v in en.valid)
    assert en.invalid and all("accumulators" in r[0] or (v.stages and "shared memory" in r[0]) or
                              (v.mma and any("mma" in x for x in r)) for v, r in en.invalid)


@pytest.mark.parametrize("text,match", [
    ("knobs:\n  threads: [64, 100]\n", "threads"),
    ("knobs:\n  warps: [4]\n", "unknown knob 'warps'"),
    ("knobs:\n  partition: [none, 333]\n", "partition"),
    ("knobs:\n  threads: [64\n  x: 1\n", r":3:\d+: broken YAML"),
    ("- just\n- a list\n", "mapping"),
    ("knobs: {}\nextra: 1\n", "unknown top-level"),
    ("shape:\n  head_size: [100]\n", "head_size"),
    ("knobs:\n  threads: []\n", "empty"),
])
def test_bad_space_files(tmp_path, text, match):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    with pytest.raises(WorkbenchError, match=match) as e:
        load_space(p)
    assert str(p) in str(e.value)


def test_missing_file():
    with pytest.raises(WorkbenchError, match="not found"):
        load_space("/nonexistent/space.yaml")


def test_every_knob_a_space_lists_reaches_the_tuner():
    """A knob in a space file must be searched by `tune`, not dropped on the way (the mma knob was:
    KNOB_ORDER lacked it, so a tune of a space with mma: [false, true] never built an mma variant)."""
    import optuna

    from workbench.kernel.space import TUNABLE, Space
    from workbench.tune.encoding import choices, params_of, suggest_variant

    two = {"algorithm": ["twopass", "onepass"], "threads": [128, 256], "heads_per_cta": [1, 4],
           "partition": ["auto", "512"], "stages": [0, 3], "mma": [False, True], "unified_ring": [False, True], "reduce": ["kernel", "fused"],
           "k_load": [16, 8], "serial": [False, True], "vllm_math": [False, True], "prefetch_distance": [0, 2],
           "prefetch_target": ["k", "kv"], "prefetch_op": ["bulk", "line"], "prefetch_hint": ["none", "evict_last"],
           "fault": ["none", "hang"]}
    assert set(two) == set(TUNABLE)
    shape = {"head_size": 128, "block_size": 16, "dtype": "bf16"}
    for knob, vals in two.items():
        extra = {k: v for k, v in (("prefetch_distance", (2,)), ("prefetch_target", ("kv",)))
                 if knob in ("prefetch_distance", "prefetch_target", "prefetch_op", "prefetch_hint") and k != knob}
        space = Space(name="t", knobs={knob: tuple(vals), **extra})
        ch = choices(space, 4, "bulk")
        assert knob in ch, knob
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        seen = set()
        for _ in range(40):
            try:
                v = suggest_variant(study.ask(), ch, shape)
            except Exception:            # combinations the Variant refuses outright (none here)
                continue
            seen.add(v.to_dict().get(knob, getattr(v, knob)))
            assert params_of(v, ch) is not None
        want = {int(x) if knob == "partition" and x.isdigit() else x for x in vals}
        if knob == "partition":
            want = {-2, 512}
        assert seen == want, (knob, seen, want)


def test_group_tokens_resolve_per_model():
    vals = (1, 2, 4, "group", "group_pow2")
    assert heads_per_cta_values(vals, 7) == (1, 2, 4, 7, 8)       # qwen2.5-7b: 8 is the padded CTA
    assert heads_per_cta_values(vals, 4) == (1, 2, 4)
    assert heads_per_cta_values(vals, 5) == (1, 2, 4, 5, 8)
    assert heads_per_cta_values(vals, 1) == (1,)
    assert heads_per_cta_values((1, 8, "group_pow2"), 3) == (1, 4)  # plain numbers above the group still dropped
    assert heads_per_cta_values(vals, None) == (1, 2, 4)


def test_padded_cta_accepted_by_the_workload_check_and_no_wider():
    from workbench.errors import VariantRejected
    from workbench.kernel.variant import Variant
    v8 = Variant(algorithm="onepass", threads=128, heads_per_cta=8, partition="auto", stages=2, mma=True)
    v8.check_workload(8, 28, 4, 128, 4096, 227 * 1024)          # GQA 7 in one CTA of 8 rows
    for heads, kv in ((16, 4), (32, 8)):                         # GQA 4 in CTAs of 8: half idle, refused
        with pytest.raises(VariantRejected, match="at most 7"):
            v8.check_workload(8, heads, kv, 128, 4096, 227 * 1024)


def test_onepass_settles_the_knobs_it_requires_instead_of_asking_them():
    """hopper.yaml for a GQA-8 model: every draw is a variant the Variant rules accept as far as onepass
    goes (asked freely, mma / unified_ring / prefetch made 2581 of 2690 asks of a 70b TP8 tune invalid),
    onepass draws carry mma and no ring or prefetch, twopass still draws both values of each, and
    params_of gives back the params that make each variant (mma etc. absent for onepass)."""
    import random

    import optuna

    from workbench.kernel.space import load_space
    from workbench.tune.encoding import RandomTrial, choices, params_of, suggest_variant
    ch = choices(load_space("tuning/spaces/hopper.yaml"), 8, "bulk")
    shape = {"head_size": 128, "block_size": 16, "dtype": "bf16"}
    rng, seen = random.Random(0), {"onepass": set(), "twopass": set()}
    for _ in range(600):
        t = RandomTrial(rng)
        v = suggest_variant(t, ch, shape)
        why = "; ".join(v.invalid_reasons("sm_90a"))
        assert "onepass" not in why and "unified_ring" not in why and "stages (cp.async ring)" not in why, (v.name, why)
        seen[v.algorithm].add((v.mma, v.unified_ring, v.prefetch_distance))
        assert params_of(v, ch) == t.params, v.name
        if v.algorithm == "onepass":
            assert not {"mma", "unified_ring", "prefetch_distance"} & set(t.params)
        fixed = suggest_variant(optuna.trial.FixedTrial(t.params), ch, shape)
        assert fixed.key == v.key
    assert seen["onepass"] == {(True, False, 0)}
    assert {m for m, _, _ in seen["twopass"]} == {False, True} and {u for _, u, _ in seen["twopass"]} == {False, True}
    assert {p for _, _, p in seen["twopass"]} == {0, 2}
