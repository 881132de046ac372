import pytest

from workbench.errors import WorkbenchError
from workbench.kernel.space import enumerate_space, load_space


def test_default_space_enumerates():
    sp = load_space()
    en = enumerate_space(sp)
    assert len(en.valid) >= 1000
    # the only invalid ones: cp.async rings that do not fit in shared memory next to the logits
    assert all(v.stages and "shared memory" in r[0] for v, r in en.invalid)
    assert len({v.key for v in en.valid}) == len(en.valid)
    en4 = enumerate_space(sp, group=4)
    assert max(v.heads_per_cta for v in en4.valid) == 4
    en7 = enumerate_space(sp, group=7)
    assert sorted({v.heads_per_cta for v in en7.valid}) == [1, 2, 4, 7]
    en80 = enumerate_space(sp, "sm_80")
    assert en80.invalid and all("sm_90+" in r[0] or (v.stages and "shared memory" in r[0]) for v, r in en80.invalid)


def test_shape_override_and_invalid_counted():
    en = enumerate_space(load_space(), head_size=256, block_size=32, group=8)
    assert all(v.head_size == 256 and v.block_size == 32 for v in en.valid)
    assert en.invalid and all("accumulators" in r[0] or (v.stages and "shared memory" in r[0]) for v, r in en.invalid)


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
