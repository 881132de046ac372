import json
import re
from pathlib import Path

import pytest

from workbench.errors import VariantRejected, WorkbenchError
from workbench.kernel.variant import PARTITION_VLLM, Occupancy, Variant, parse_arch
from workbench.kernel.references import baseline, named, paper, simple, simple_pf


def test_baseline_and_paper_are_what_the_issue_says():
    # baseline / paper: vLLM's own kernel without / with the paper's prefetch; simple / simple-pf:
    # ours in the same decomposition
    b, p = baseline(), paper()
    assert (b.algorithm, b.heads_per_cta, b.threads, b.prefetch_distance, b.partition) == \
        ("vllm", 1, 128, 0, PARTITION_VLLM)
    assert p == b.with_(prefetch_distance=1, prefetch_target="kv", prefetch_op="bulk")
    assert b.label == "baseline" and p.label == "paper"
    assert named("paper", 64, 32, "fp16") == paper(64, 32, "fp16")
    s, sp = simple(), simple_pf()
    assert (s.algorithm, s.heads_per_cta, s.threads, s.partition) == ("twopass", 1, 128, PARTITION_VLLM)
    assert sp == s.with_(prefetch_distance=1, prefetch_target="kv", prefetch_op="bulk")
    assert s.label == "simple" and sp.label == "simple-pf" and b == s.with_(algorithm="vllm")
    assert Variant(threads=256).label == Variant(threads=256).name


def test_key_is_stable_and_prefetch_off_is_canonical():
    # recorded once: a changed key would orphan every cached cubin and stored trial
    assert simple().key == "58f5224b2339"
    off = Variant(prefetch_distance=0, prefetch_target="kv", prefetch_hint="evict_last")
    assert off == Variant() and off.key == Variant().key and hash(off) == hash(Variant())
    assert Variant.from_dict(json.loads(json.dumps(paper().to_dict()))) == paper()
    assert Variant.from_dict(json.loads(json.dumps(simple_pf().to_dict()))) == simple_pf()
    assert len({Variant(threads=t).key for t in (64, 128, 256, 512)}) == 4


@pytest.mark.parametrize("knobs", [
    {"head_size": 100}, {"block_size": 8}, {"dtype": "fp8"}, {"threads": 96 + 1}, {"threads": 1024},
    {"heads_per_cta": 0}, {"partition": 300}, {"prefetch_distance": 9},
    {"prefetch_distance": 1, "prefetch_target": "q"}, {"prefetch_distance": 1, "prefetch_target": "k", "prefetch_op": "tma"},
    {"algorithm": "magic"}, {"threads": "many"},
])
def test_bad_knob_values_raise_user_errors(knobs):
    with pytest.raises(WorkbenchError):
        Variant(**knobs)


def test_unknown_knob_named_in_error():
    with pytest.raises(WorkbenchError, match="unknown knob.*warps"):
        Variant.from_dict({"warps": 4})


def test_partition_spellings():
    assert Variant(partition="none").partition == 0
    assert Variant(partition="vllm").partition == PARTITION_VLLM
    assert Variant(partition="512").partition == 512


def test_arch_rules():
    assert simple_pf().is_valid("sm_90a") and simple_pf().is_valid("sm_90")
    assert "sm_90+" in simple_pf().invalid_reasons("sm_80")[0]
    line = simple_pf().with_(prefetch_op="line")
    assert line.is_valid("sm_80")
    assert not line.with_(prefetch_hint="evict_first").is_valid("sm_80")
    with pytest.raises(WorkbenchError):
        parse_arch("sm_70")
    with pytest.raises(WorkbenchError):
        parse_arch("hopper")


def test_register_budget_rule():
    # d256 block 32: 8 heads x 256 rows x 4 chunks / 32 lanes = 256 accumulators per lane
    v = Variant(head_size=256, block_size=32, heads_per_cta=8, partition=512)
    assert v.accumulators == 256 and not v.is_valid()
    assert Variant(head_size=256, block_size=32, heads_per_cta=4, partition=512).is_valid()


def test_vllm_v1_v2_rule():
    b = simple()
    assert not b.uses_split(num_seqs=64, num_heads=32, max_seq_len=4096)    # 2048 > 512 work -> v1
    assert b.uses_split(num_seqs=8, num_heads=32, max_seq_len=4096)         # 256 <= 512 -> v2
    assert not b.uses_split(num_seqs=1, num_heads=32, max_seq_len=512)      # one partition -> v1
    assert b.uses_split(num_seqs=256, num_heads=32, max_seq_len=8193)       # too long -> v2
    assert Variant(partition=256).uses_split(1, 32, 10) and not Variant(partition=0).uses_split(1, 32, 10**6)


def test_long_context_without_split_rejected_before_launch():
    v = Variant(partition=0)
    limit = 227 * 1024
    v.check_workload(1, 32, 8, 128, 16384, limit)                      # 64 KB of logits: fine
    with pytest.raises(VariantRejected, match="split-K"):
        v.check_workload(1, 32, 8, 128, 131072, limit)                 # 512 KB: refused
    assert 50000 < v.max_context_unsplit(limit) < 60000
    with pytest.raises(VariantRejected, match="group"):
        Variant(heads_per_cta=8).check_workload(1, 32, 8, 128, 100, limit)
    with pytest.raises(VariantRejected, match="head size"):
        v.check_workload(1, 32, 8, 64, 100, limit)


def test_style_knobs_keep_default_keys_and_validate():
    from workbench.kernel.variant import Variant
    from workbench.kernel.references import simple
    b = simple()
    assert b.key == "58f5224b2339"                          # new knobs at defaults change nothing
    assert "k_load" not in b.to_dict() and "serial" not in b.to_dict() and "reduce" not in b.to_dict()
    v = Variant.from_dict({**b.to_dict(), "k_load": "8", "serial": "1", "reduce": "fused"})
    assert (v.k_load, v.serial, v.reduce) == (8, True, "fused") and v.key != b.key
    assert v.name.endswith("-k8-serial-fused")
    assert Variant.from_dict({**b.to_dict(), "partition": "none", "reduce": "fused"}).reduce == "kernel"
    assert b.with_(k_load=8, block_size=32).invalid_reasons("sm_90a")
    for bad in ({"k_load": 4}, {"serial": "maybe"}, {"reduce": "atomic"}):
        with pytest.raises(WorkbenchError):
            Variant.from_dict({**b.to_dict(), **bad})


def test_stages_rules_and_shared_memory():
    from workbench.kernel.variant import Variant
    v = Variant(threads=128, heads_per_cta=4, partition=1024, stages=3)
    assert v.is_valid() and v.name.endswith("-s3") and v.to_dict()["stages"] == 3
    assert "stages" not in Variant().to_dict()                 # default stays out of the key
    # ring: 4 warps x 3 tiles x 128 x 16 bf16; block table: 1024 / 16 ints
    assert v.smem_bytes(1024) - v.with_(stages=0).smem_bytes(1024) == 4 * 3 * 128 * 16 * 2 + 4 * 64
    assert not Variant(algorithm="onepass", stages=2).is_valid()
    assert not Variant(k_load=8, stages=2).is_valid()
    assert not Variant(threads=512, heads_per_cta=8, partition=1024, stages=4).is_valid()   # > 227 KB
    import pytest
    from workbench.errors import WorkbenchError
    with pytest.raises(WorkbenchError, match="stages"):
        Variant(stages=5)


def test_onepass_on_tensor_cores_rules_and_shared_memory():
    """onepass + mma: a ring whose slots hold K and V (twice a twopass ring's bytes), no logits and no
    staged table, so its shared memory does not grow with the partition and any length runs whole."""
    from workbench.kernel.variant import Variant
    o = Variant(algorithm="onepass", threads=128, heads_per_cta=8, partition="auto", stages=2, mma=True)
    assert o.is_valid() and o.name == "d128b16bf16-onepass-t128-q8-pauto-pf0-s2-mma"
    ring = 4 * 2 * 128 * 16 * 2                                # warps x stages x tile bytes
    floats = 2 * 8 * 128 + 2 * 32                              # q and acc, per-warp stats (4 warps x 8 heads)
    assert o.smem_bytes(16) == o.smem_bytes(32768) == 4 * floats + 2 * ring
    assert o.max_context_unsplit(232448) >= 1 << 30
    assert o.with_(partition="none").is_valid()                # no logits: a whole-sequence launch always fits
    assert o.with_(head_size=256, threads=256, stages=4).invalid_reasons()   # 2 x 256 KB of ring
    for bad in (dict(mma=False), dict(stages=0), dict(prefetch_distance=2, prefetch_target="kv"),
                dict(reduce="fused"), dict(unified_ring=True), dict(block_size=32), dict(heads_per_cta=16)):
        assert o.with_(**bad).invalid_reasons(), bad
    # the twopass tensor-core path at the same knobs: logits bound its whole-sequence length
    t = o.with_(algorithm="twopass")
    assert t.is_valid() and t.smem_bytes(4096) > t.smem_bytes(16) and t.max_context_unsplit(232448) < 1 << 20


def test_auto_partitions_fill_whole_waves():
    """The auto split's plan (a cost model: waves x (tokens + fixed cost)) on H200-like numbers:
    never worse under its own model than the fixed partitions the space offers, one wave at
    b16 x 4k (where 1024-token partitions leave 512 CTAs on 396 slots), the whole sequence when
    it fits one wave, partitions within shared memory and multiples of the grain."""
    from workbench.kernel.variant import (AUTO_GRAIN, AUTO_REDUCE_TOKENS, AUTO_WAVE_TOKENS, Occupancy)
    occ = Occupancy(sm_count=132, smem_per_sm=233472, smem_reserved=1024, smem_limit=232448,
                    split_blocks=3, whole_blocks=3)
    v = Variant(head_size=128, block_size=16, dtype="bf16", threads=128, heads_per_cta=4, partition="auto", stages=3)

    def cost(tokens: int, L: int, ctas: int) -> int:
        whole = tokens == 0
        t = L if whole else tokens
        parts = 1 if whole else -(-L // t)
        slots = occ.sm_count * occ.blocks_per_sm(v.smem_bytes(t), whole)
        return -(-parts * ctas // slots) * (t + AUTO_WAVE_TOKENS) + (0 if whole else AUTO_REDUCE_TOKENS)

    for B, L in [(1, 1024), (1, 32768), (8, 4096), (8, 16384), (16, 4096), (64, 1024), (64, 4096), (256, 1024)]:
        ctas = B * 8
        t = v.auto_tokens(ctas, L, occ)
        assert t == 0 or (t % AUTO_GRAIN == 0 and v.smem_bytes(t) <= occ.smem_limit), (B, L, t)
        assert cost(t, L, ctas) <= min(cost(f, L, ctas) for f in (256, 512, 1024)), (B, L, t)
    t = v.auto_tokens(16 * 8, 4096, occ)
    assert t > 0 and -(-4096 // t) * 128 <= 132 * occ.blocks_per_sm(v.smem_bytes(t), False)
    assert v.auto_tokens(256 * 8, 1024, occ) == 0


def test_per_sequence_split_of_a_graph_launch():
    """A launch captured at the model's longest sequence (32864 tokens) replayed on shorter batches:
    with seq_fill each sequence splits by its own length (decode.cu seq_part_tokens, mirrored
    here) into partitions that stay inside the launch's grid and shared memory, and short batches
    get the parallelism a launch for their own length would have (not the 2 partitions of 704
    tokens the 32k bound implies for b1 x 1k)."""
    from workbench.kernel.variant import AUTO_GRAIN, AUTO_MIN_TOKENS, Occupancy, seq_part_tokens
    occ = Occupancy(sm_count=132, smem_per_sm=233472, smem_reserved=1024, smem_limit=232448,
                    split_blocks=8, whole_blocks=8)
    v = Variant(head_size=128, block_size=16, dtype="bf16", threads=128, heads_per_cta=4, partition="auto", stages=3)
    bound = 32864
    for B in (1, 8, 32, 64, 128):
        ctas = B * 8
        ptok = v.auto_tokens(ctas, bound, occ)
        grid_parts = -(-bound // ptok)
        fill = v.seq_fill(ctas, bound, ptok, occ)
        slots = occ.sm_count * occ.blocks_per_sm(v.smem_bytes(ptok), False)
        assert 1 <= fill <= grid_parts
        assert fill * ctas <= slots or fill == 1, (B, fill, ctas, slots)     # never past one wave
        for L in (1, 17, 255, 256, 257, 1024, 1152, 4096, 4224, 16384, 32768, bound):
            t = seq_part_tokens(L, fill, ptok)
            parts = -(-L // t)
            assert t % AUTO_GRAIN == 0 and t % v.block_size == 0 and t <= ptok, (B, L, t)
            assert parts <= grid_parts, (B, L, parts, grid_parts)
            # as many partitions as fill one wave, or as 256-token pieces allow, whichever is fewer
            want = min(fill, -(-L // AUTO_MIN_TOKENS))
            per = -(-L // want)
            assert t <= -(-per // AUTO_GRAIN) * AUTO_GRAIN, (B, L, t, want)
            assert ctas * parts >= min(slots, ctas * -(-L // AUTO_MIN_TOKENS)) // 2 or t == ptok, (B, L)
    assert seq_part_tokens(1024, 0, 704) == 704 and seq_part_tokens(0, 5, 704) == 704
    b1 = v.auto_tokens(8, bound, occ)
    assert -(-1024 // b1) <= 2 and -(-1024 // seq_part_tokens(1024, v.seq_fill(8, bound, b1, occ), b1)) >= 4
    # the kernel computes the same numbers (the mirror above is what the tests can run on a CPU)
    src = (Path(__file__).resolve().parent.parent / "kernels/decode.cu").read_text()
    body = src[src.index("int seq_part_tokens("):]
    body = body[:body.index("\n}")]
    assert f"+ {AUTO_MIN_TOKENS - 1}) / {AUTO_MIN_TOKENS}" in body and \
        f"+ {AUTO_GRAIN - 1}) / {AUTO_GRAIN} * {AUTO_GRAIN}" in body and "min(t, P.part_tokens)" in body
    # and the exported launcher's F rounds down like Variant.seq_fill (its host code needs a GPU)
    cuh = (Path(__file__).resolve().parent.parent / "kernels/export/launch.cuh").read_text()
    fill = cuh[cuh.index("wb_seq_fill)("):]
    fill = fill[:fill.index("\n}")]
    assert "const long long fill = slots / (ctas < 1 ? 1 : ctas);" in fill


def test_one_partition_sequences_skip_the_reduce():
    """A sequence of one partition writes its output in the split kernel and the reduce leaves its
    rows alone (b32 x 1k in a graph bounded at 32k: 47.7 -> 43.9 us on the H200). The two halves
    must change together: a reduce that still combined such a row would read partials nobody wrote
    (the GPU tests see NaN), a split kernel that still wrote partials would leave `out` unwritten."""
    src = (Path(__file__).resolve().parent.parent / "kernels/decode.cu").read_text()
    body = src[src.index("void decode_body(const Params& P, int bz"):]
    write = body[body.index("// ---- write ----"):]
    write = write[:write.index("#if WB_FUSED_REDUCE")]
    assert re.search(r"^\s*const bool one_part = kSplit && !WB_FUSED_REDUCE && seq_len <= ptok;", write, re.M)
    assert re.search(r"^\s*if \(kSplit && !one_part\) \{", write, re.M) and "P.out[row * HEAD + d] = from_float(" in write
    red = src[src.index("void WB_SYM(wb_reduce_body)"):]
    red = red[:red.index("griddepcontrol.wait")]
    assert re.search(r"^\s*if \(nparts == 1\) return;", red, re.M)    # before the wait: reads nothing


def test_graph_bound_grid_walks_long_sequences_in_equal_shares():
    """A graph-bound grid holds graph_parts partition slots, not one per part_tokens of the bound:
    at b64 the 32k grid shrinks (its empty CTAs cost 7-24 us on the H200), a sequence needing more
    partitions than the grid has takes a multiple of them (seq_part_tokens with grid_parts), so each
    CTA walks an equal share, never more tokens than with part_tokens partitions, and the
    workspace (sized for the bound) holds them all. The kernel and the exported launcher agree."""
    from workbench.kernel.variant import (GRAPH_WALK_MAX, GRAPH_WALK_SLACK, GRAPH_WALK_WAVES, Occupancy,
                                          seq_part_tokens)
    occ = Occupancy(sm_count=132, smem_per_sm=233472, smem_reserved=1024, smem_limit=232448,
                    split_blocks=8, whole_blocks=8)
    bound = 32864
    shrunk = 0
    for threads, stages in ((128, 3), (256, 4)):
        v = Variant(head_size=128, block_size=16, dtype="bf16", threads=threads, heads_per_cta=4,
                    partition="auto", stages=stages, mma=True)
        for B in (1, 8, 16, 32, 48, 64, 128, 256):
            ctas = B * 8
            ptok = v.auto_tokens(ctas, bound, occ)
            full = -(-bound // ptok)
            fill = v.seq_fill(ctas, bound, ptok, occ)
            z = v.graph_parts(ctas, bound, ptok, fill, occ)
            assert fill <= z <= full and z * GRAPH_WALK_MAX >= full, (B, fill, z, full)
            slots = occ.sm_count * occ.blocks_per_sm(v.smem_bytes(ptok), False)
            if ctas * full <= GRAPH_WALK_WAVES * slots:       # few empty waves: no walk
                assert z == full, (B, z, full)
            rate = [-(-ctas * n // slots) / n for n in range(-(-full // GRAPH_WALK_MAX), full + 1)]
            assert -(-ctas * z // slots) / z <= min(rate) * (1 + GRAPH_WALK_SLACK)
            shrunk += z < full
            gz = z if z < full else 0
            for L in (1, 700, 1024, 1408, 4096, 8448, 9000, 16384, 17000, 32000, bound):
                t = seq_part_tokens(L, fill, ptok, gz, full)
                n = -(-L // t)
                need = -(-L // ptok)
                assert t % 64 == 0 and t <= ptok and n <= full, (B, L, t, n)
                if n > z:                       # walked: equal shares, never longer than unwalked
                    assert -(-n // z) * t <= -(-need // z) * ptok, (B, L, n, z, t)
                    assert -(-n // z) <= GRAPH_WALK_MAX, (B, L, n, z)
                else:                           # not walked: as many partitions as without the walk
                    assert n == -(-L // seq_part_tokens(L, fill, ptok)), (B, L)
    assert shrunk >= 3
    src = (Path(__file__).resolve().parent.parent / "kernels/decode.cu").read_text()
    body = src[src.index("int seq_part_tokens("):]
    body = body[:body.index("\n}")]
    assert "min(P.max_parts, (parts + z - 1) / z * z)" in body and "if (P.grid_parts > 0 && seq_len >" in body
    cuh = (Path(__file__).resolve().parent.parent / "kernels/export/launch.cuh").read_text()
    walk = cuh[cuh.index("wb_graph_parts)("):]
    walk = walk[:walk.index("\n}")]
    assert f"best * {1 + GRAPH_WALK_SLACK}" in walk and f"c * parts <= {GRAPH_WALK_WAVES} * slots" in walk and \
        f"(parts + 1) / {GRAPH_WALK_MAX}" in walk and "#if !WB_FUSED_REDUCE && WB_GRAPH_WALK" in cuh and \
        "p.grid_parts = grid_z < parts ? grid_z : 0;" in cuh


@pytest.mark.parametrize("partition,kernels", [(512, ["wb_decode_split"]), (0, ["wb_decode_full"]),
                                               ("auto", ["wb_decode_split", "wb_decode_full"]),
                                               ("vllm", ["wb_decode_split", "wb_decode_full"])])
def test_occupancy_asks_only_for_the_kernels_a_variant_has(monkeypatch, partition, kernels):
    """A fixed split compiles no whole-sequence kernel (decode.cu): asking the occupancy of one
    faulted (cuModuleGetFunction: NOT_FOUND) in the H200 emulation run's SM-axis stage."""
    from workbench.kernel import launch

    asked = []

    class Drv:
        def cuOccupancyMaxActiveBlocksPerMultiprocessor(self, fn, threads, smem):
            asked.append(fn)
            return fn, 3

    class Mod:
        def function(self, name):
            if name not in kernels:
                raise launch.KernelFault(f"cuModuleGetFunction {name}: CUDA_ERROR_NOT_FOUND")
            return name
    monkeypatch.setattr(launch, "_driver", lambda: Drv())
    monkeypatch.setattr(launch, "_check", lambda result, what: result[1])
    monkeypatch.setattr(launch, "device_attr", lambda i, name: 132 if name == "MULTIPROCESSOR_COUNT" else 1024)
    k = object.__new__(launch.LoadedVariant)
    k.variant = Variant(partition=partition, heads_per_cta=4)
    k.module, k.device_index, k.sm_count, k.smem_limit, k._occ = Mod(), 0, None, 232448, None
    occ = k.occupancy()
    assert sorted(asked) == sorted(kernels)
    assert (occ.split_blocks > 0) == ("wb_decode_split" in kernels)
    assert (occ.whole_blocks > 0) == ("wb_decode_full" in kernels)


def test_graph_walk_is_a_build_knob_outside_every_existing_key():
    """graph_walk compiles the walk in (WB_GRAPH_WALK): off, a variant's key, name and defines are
    what they were before the knob existed (studies and exported tables keep matching); on, only
    auto-split variants with the two-kernel reduce may have it."""
    from workbench.kernel.build import defines
    v = Variant(head_size=128, block_size=16, dtype="bf16", threads=128, heads_per_cta=4, partition="auto",
                stages=3, mma=True)
    assert "graph_walk" not in v.to_dict() and v.key == "4f9e93bef18b" and "-DWB_GRAPH_WALK=1" not in defines(v)
    w = v.with_(graph_walk=True)
    assert w.name == v.name + "-walk" and w.key != v.key and "-DWB_GRAPH_WALK=1" in defines(w)
    assert not w.invalid_reasons()
    assert any("graph_walk" in r for r in v.with_(partition=512, graph_walk=True).invalid_reasons())
    assert any("graph_walk" in r for r in v.with_(reduce="fused", graph_walk=True).invalid_reasons())


def test_graph_sched_is_a_build_knob_outside_every_existing_key():
    """graph_sched compiles the scheduled graph-bound path in (WB_GRAPH_SCHED): off, a variant's
    key, name and defines are unchanged; on, only auto-split variants with the two-kernel reduce,
    and never together with graph_walk."""
    from workbench.kernel.build import defines
    v = Variant(head_size=128, block_size=16, dtype="bf16", threads=128, heads_per_cta=4, partition="auto",
                stages=3, mma=True)
    assert "graph_sched" not in v.to_dict() and v.key == "4f9e93bef18b" and "-DWB_GRAPH_SCHED=1" not in defines(v)
    s = v.scheduling()
    assert s.name == v.name + "-sched" and s.key != v.key and "-DWB_GRAPH_SCHED=1" in defines(s)
    assert not s.invalid_reasons() and v.with_(partition=512).scheduling() == v.with_(partition=512)
    assert any("graph_sched" in r for r in v.with_(partition=512, graph_sched=True).invalid_reasons())
    assert any("graph_sched" in r for r in v.with_(reduce="fused", graph_sched=True).invalid_reasons())
    assert any("pick one" in r for r in s.with_(graph_walk=True).invalid_reasons())


H200 = Occupancy(sm_count=132, smem_per_sm=233472, smem_reserved=1024, smem_limit=232448, split_blocks=4,
                 whole_blocks=4)


@pytest.mark.parametrize("batch", [32, 64, 128])
def test_sched_shape_keeps_the_slots_and_sizes_the_grid_for_waves(batch):
    """The scheduled launch's partition is the auto plan's for the bound, lengthened only while the
    SM slots stay the same (b64 x 4k wants 1408 tokens where the plan for 32k has 1280); its grid
    has item slots for GRAPH_SCHED_WAVES waves, at least one per sequence, at most every partition
    of the bound; the key follows the shape."""
    from workbench.kernel.variant import GRAPH_SCHED_WAVES, sched_key
    v = Variant(head_size=128, block_size=16, dtype="bf16", threads=128, heads_per_cta=4, partition="auto",
                stages=3, mma=True, graph_sched=True)
    grid_x, bound = 8, 32864
    own = v.auto_tokens(grid_x * batch, bound, H200)
    sh = v.sched_shape(grid_x, batch, bound, H200)
    assert sh.part_tokens >= own and sh.part_tokens % 64 == 0
    assert sh.slots == v.split_slots(own, H200) == v.split_slots(sh.part_tokens, H200)
    assert v.split_slots(sh.part_tokens + 64, H200) != sh.slots or sh.part_tokens + 64 > v.max_context_unsplit(
        H200.smem_limit)
    parts = -(-bound // 256)                  # the plan's finest split, not the launch's partition
    assert sh.cap == max(batch, min(batch * parts, -(-GRAPH_SCHED_WAVES * sh.slots // grid_x)))
    assert sh.key == sched_key(batch, bound, sh.part_tokens, sh.cap, sh.slots)
    assert sh.key != v.sched_shape(grid_x, batch, bound - 64, H200).key


@pytest.mark.parametrize("batch,bound", [(1, 4096), (8, 4096), (32, 32864)])
def test_sched_shape_has_a_slot_per_plan_item_for_onepass(batch, bound):
    """onepass keeps no logits in shared memory, so its scheduled partition lengthens to the whole
    bound; the item slots must still count the plan's finest split (256 tokens), up to the waves'
    worth: with one slot per sequence a single CTA walked all 16 items of a 4k sequence (70b TP8,
    8 query heads on one KV head: 201 us where the plain grid took 18.6)."""
    from workbench.kernel.variant import GRAPH_SCHED_WAVES, SCHED_FEW_WAVES
    v = Variant(head_size=128, block_size=16, dtype="bf16", algorithm="onepass", threads=128, heads_per_cta=8,
                partition="auto", stages=2, mma=True, graph_sched=True)
    sh = v.sched_shape(1, batch, bound, H200)
    assert sh.part_tokens >= bound                       # lengthened to the bound: the smem never grows
    waves = GRAPH_SCHED_WAVES if v.many_waves(batch, bound, H200) else SCHED_FEW_WAVES
    assert sh.cap == min(batch * -(-bound // 256), -(-waves * sh.slots // 1))
    assert sh.cap >= min(batch * 16, sh.slots)


def test_schedules_only_graph_bound_grids_of_many_waves(monkeypatch):
    """Without the sparse rule, a graph_sched variant (8 CTAs per sequence) runs the plan only where
    the grid for the bound is more than GRAPH_WALK_WAVES waves of CTAs (b32/b64 at 32k on an H200);
    b1-b16 keep the plain grid, and a variant built without the knob never plans. With it (the
    default), b8 and b16 plan too: their whole sequences fill less than half a wave."""
    import workbench.kernel.variant as vm
    v = Variant(head_size=128, block_size=16, dtype="bf16", threads=128, heads_per_cta=4, partition="auto",
                stages=3, mma=True, graph_sched=True)
    assert [b for b in (1, 8, 16, 32, 64) if v.schedules(8 * b, 32864, H200, num_seqs=b)] == [8, 16, 32, 64]
    monkeypatch.setattr(vm, "SCHED_SPARSE", 0)
    assert [b for b in (1, 8, 16, 32, 64) if v.schedules(8 * b, 32864, H200, num_seqs=b)] == [32, 64]
    assert not v.with_(graph_sched=False).schedules(8 * 64, 32864, H200, num_seqs=64)
    assert not v.schedules(8 * 64, 2048, H200, num_seqs=64)


def test_sparse_batches_plan_with_the_few_ctas_waves_of_slots():
    """SCHED_SPARSE: 2+ sequences whose whole-sequence CTAs fill less than half a wave plan, with
    SCHED_FEW_WAVES waves of item slots, where more than SCHED_FEW_CTAS CTAs a sequence would
    otherwise keep the plain grid (qwen2.5-7b onepass t128 q4 at b8, ragged up to the bound: 96.9 us
    on the plain grid; refined with the rule its bench suite went 0.95 -> 0.98x FA3, H200 2026-11-30).
    One sequence cannot be ragged: it keeps the plain grid; a variant without the knob never plans."""
    from workbench.kernel.variant import SCHED_FEW_WAVES
    v = Variant(head_size=128, block_size=16, dtype="bf16", algorithm="onepass", threads=128, heads_per_cta=4,
                partition="auto", stages=2, mma=True, graph_sched=True)
    _, slots = v.sched_partition(8, 8, 32864, H200)
    sparse = [b for b in range(1, 80) if v.sparse(8, b, 32864, H200)]
    assert sparse == list(range(2, -(-slots // 16)))              # 8 b < slots / 2
    assert all(v.schedules(8 * b, 32864, H200, num_seqs=b) for b in sparse)
    assert not v.schedules(8, 32864, H200, num_seqs=1)
    assert v.sched_shape(8, 8, 32864, H200).cap == SCHED_FEW_WAVES * slots // 8
    assert not v.with_(graph_sched=False).schedules(64, 32864, H200, num_seqs=8)
    assert not v.sparse(4, 8, 32864, H200)                         # few CTAs: their own rule


def test_schedules_ragged_batches_of_few_ctas_per_sequence(monkeypatch):
    """From two sequences up, a graph-bound launch with at most 4 CTAs per sequence plans (a batch
    may be ragged: 70b TP8 r32 58 -> 47 us); one sequence, or 8 CTAs per sequence (llama-3.1-8b),
    keeps the plain grid unless its grid is many waves (or sparse: test above); never without the
    knob, and never where the launch does not split."""
    import workbench.kernel.variant as vm
    monkeypatch.setattr(vm, "SCHED_SPARSE", 0)
    v = Variant(head_size=128, block_size=16, dtype="bf16", algorithm="onepass", threads=128, heads_per_cta=8,
                partition="auto", stages=2, mma=True, graph_sched=True)
    assert [b for b in (1, 2, 8, 32) if v.schedules(b, 32864, H200, num_seqs=b)] == [2, 8, 32]
    assert [b for b in (1, 2, 8, 32) if v.schedules(4 * b, 32864, H200, num_seqs=b)] == [2, 8, 32]
    assert [b for b in (1, 2, 8) if v.schedules(8 * b, 32864, H200, num_seqs=b)] == []
    assert not v.schedules(1, 32864, H200, num_seqs=1)
    # the few-CTAs rule's grids have item slots for SCHED_FEW_WAVES waves (empty slots cost small
    # batches), the many-waves rule's for GRAPH_SCHED_WAVES
    from workbench.kernel.variant import GRAPH_SCHED_WAVES, SCHED_FEW_WAVES
    few = v.sched_shape(1, 32, 32864, H200)
    assert not v.many_waves(32, 32864, H200) and few.cap == -(-SCHED_FEW_WAVES * few.slots // 1) < GRAPH_SCHED_WAVES * few.slots
    t = Variant(head_size=128, block_size=16, dtype="bf16", threads=128, heads_per_cta=4, partition="auto",
                stages=3, mma=True, graph_sched=True)
    many = t.sched_shape(8, 64, 32864, H200)
    assert t.many_waves(8 * 64, 32864, H200) and many.cap == -(-GRAPH_SCHED_WAVES * many.slots // 8)
    assert not v.with_(graph_sched=False).schedules(32, 32864, H200, num_seqs=32)
    whole = Variant(head_size=128, block_size=16, dtype="bf16", threads=128, heads_per_cta=4, partition="auto",
                    stages=3, mma=True, graph_sched=True)
    assert whole.auto_tokens(8 * 64, 256, H200) == 0 and not whole.schedules(8 * 64, 256, H200, num_seqs=64)


def test_few_cta_batches_are_planned_where_the_bounds_plan_is_whole_sequences(monkeypatch):
    """qwen2.5-7b onepass q8 s3 (4 CTAs per sequence, 3 scheduled CTAs per SM by registers): at b64
    the auto plan for a 32k bound is one whole sequence per CTA (one wave of max-length sequences),
    but the graph replays ragged batches: the launch is still planned, from the finest partition up,
    with the onepass partition lengthened to the bound. Its whole sequences fill half to one wave,
    so it has one wave of item slots (SCHED_FIT_FEW); b30 (less than half) and the rule off: item
    slots for SCHED_FEW_WAVES waves."""
    import workbench.kernel.variant as vm
    from workbench.kernel.variant import AUTO_MIN_TOKENS, SCHED_FEW_WAVES
    occ = Occupancy(sm_count=132, smem_per_sm=233472, smem_reserved=1024, smem_limit=232448, split_blocks=4,
                    whole_blocks=4, sched_blocks=3)
    v = Variant(head_size=128, block_size=16, dtype="bf16", algorithm="onepass", threads=128, heads_per_cta=8,
                partition="auto", stages=3, mma=True, graph_sched=True)
    assert v.auto_tokens(4 * 64, 32864, occ.scheduled()) == 0
    assert v.schedules(4 * 64, 32864, occ, num_seqs=64)
    sh = v.sched_shape(4, 64, 32864, occ)
    assert sh.part_tokens >= 32864 and sh.part_tokens >= AUTO_MIN_TOKENS
    assert v.fits_one_wave(4, 64, 32864, occ) and sh.cap == sh.slots // 4 == 66       # 264 slots
    b30 = v.sched_shape(4, 30, 32864, occ)
    assert not v.fits_one_wave(4, 30, 32864, occ) and b30.cap == -(-SCHED_FEW_WAVES * b30.slots // 4)
    monkeypatch.setattr(vm, "SCHED_FIT_FEW", 0)
    assert v.sched_shape(4, 64, 32864, occ).cap == -(-SCHED_FEW_WAVES * sh.slots // 4)
    monkeypatch.undo()
    # 8 CTAs per sequence (llama-3.1-8b) and one sequence stay as they were
    assert not v.schedules(8 * 64, 32864, occ, num_seqs=64) or v.many_waves(8 * 64, 32864, occ)
    assert not v.schedules(4, 32864, occ, num_seqs=1)


def test_eager_launches_plan_ragged_batches_only(monkeypatch):
    """A per-shape launch plans at its own bound only for a ragged batch (tokens at most RAGGED_FILL
    of sequences x longest) whose launch at that bound schedules: the bench suite's ragged batches
    at 70b TP8 (1 CTA per sequence) do, uniform ones and one sequence do not, nor (without the sparse
    rule) 8 CTAs per sequence of a grid of few waves, nor a variant without the knob."""
    import workbench.kernel.variant as vm
    from workbench.kernel.variant import RAGGED_FILL, ragged
    from workbench.measure.suite import RaggedShape
    v = Variant(head_size=128, block_size=16, dtype="bf16", algorithm="onepass", threads=128, heads_per_cta=8,
                partition="auto", stages=2, mma=True, graph_sched=True)
    suite = [RaggedShape(32, 200, 32768).lengths(), RaggedShape(8, 200, 16384).lengths(),
             RaggedShape(64, 100, 8192).lengths()]
    assert all(ragged(ls) and v.plans_eager(1, ls, H200) for ls in suite)
    assert not v.plans_eager(1, [4096] * 32, H200) and not ragged([4096] * 32)
    assert not v.plans_eager(1, [32768], H200) and not ragged([32768])
    edge = [1000, int(1000 * (2 * RAGGED_FILL - 1))]           # exactly RAGGED_FILL full: ragged
    assert ragged(edge) and not ragged([1000, edge[1] + 1])
    assert not v.with_(graph_sched=False).plans_eager(1, suite[0], H200)
    assert v.plans_eager(8, suite[1], H200)                     # 8 CTAs per sequence, 8 sequences: sparse
    monkeypatch.setattr(vm, "SCHED_SPARSE", 0)
    assert not v.plans_eager(8, suite[1], H200)                 # ... without the sparse rule: few waves, plain
    assert not v.plans_eager(1, [0, 0], H200) and not v.plans_eager(1, [], H200)


def test_sched_shape_plans_with_the_sched_kernels_own_occupancy():
    """wb_decode_sched is an entry of its own (the plain kernels stay as they were) with its own
    registers: a scheduled launch's slots come from its CTAs per SM (Occupancy.sched_blocks), not
    from wb_decode_split's, and the key changes with them."""
    from dataclasses import replace
    v = Variant(head_size=128, block_size=16, dtype="bf16", threads=128, heads_per_cta=4, partition="auto",
                stages=3, mma=True, graph_sched=True)
    lean, fat = replace(H200, split_blocks=6, sched_blocks=0), replace(H200, split_blocks=6, sched_blocks=1)
    a, b = v.sched_shape(8, 64, 32864, lean), v.sched_shape(8, 64, 32864, fat)
    assert b.slots == 132 and a.slots > b.slots and a.key != b.key
    assert fat.scheduled().split_blocks == 1 and lean.scheduled() == lean


def test_sched_shape_gives_one_wave_of_slots_where_whole_sequences_fill_half_to_one_wave(monkeypatch):
    """A scheduled grid (here every graph-bound launch plans, as the probes force it) whose whole
    sequences fill half to all of one wave of the scheduled kernel's slots, for a variant whose
    partition covers the bound (onepass: one item per sequence), has one wave of item slots, not
    GRAPH_SCHED_WAVES: wb_plan runs such a batch whole when it is about uniform, and empty slots
    beside whole-sequence CTAs cost b32 x 4k 131 -> 145 us at 8 waves (H200, 2026-11-30). Below half
    a wave, past one, or where a sequence of the bound splits (twopass), the grid keeps its waves."""
    import workbench.kernel.variant as variant_mod
    from workbench.kernel.variant import GRAPH_SCHED_WAVES
    monkeypatch.setattr(variant_mod, "GRAPH_WALK_WAVES", 0)
    occ = Occupancy(sm_count=132, smem_per_sm=233472, smem_reserved=1024, smem_limit=232448, split_blocks=3,
                    whole_blocks=3, sched_blocks=3)
    one = Variant(head_size=128, block_size=16, dtype="bf16", algorithm="onepass", threads=128, heads_per_cta=4,
                  partition="auto", stages=2, mma=True, graph_sched=True)
    two = one.with_(algorithm="twopass", threads=256)
    bound, grid_x = 32864, 8
    waves = lambda v, b: v.sched_shape(grid_x, b, bound, occ)                # noqa: E731
    assert waves(one, 32).slots == 396 and waves(one, 32).part_tokens >= bound
    assert [waves(one, b).cap for b in (25, 32, 40)] == [49, 49, 49]         # 200..320 CTAs of 396: one wave
    assert waves(one, 24).cap == GRAPH_SCHED_WAVES * 396 // grid_x          # 192 CTAs: under half a wave
    assert waves(one, 50).cap == GRAPH_SCHED_WAVES * 396 // grid_x          # 400: past one wave
    assert waves(two, 32).part_tokens < bound and waves(two, 32).cap == GRAPH_SCHED_WAVES * waves(two, 32).slots // grid_x
    assert waves(one, 32).key != waves(one, 24).key
    # the exported launcher gives such a grid one wave of slots too: the schedule keys must agree
    from workbench.kernel.variant import SCHED_FIT_WAVES
    cuh = (Path(__file__).resolve().parent.parent / "kernels/export/launch.cuh").read_text()
    assert SCHED_FIT_WAVES == 1 and "if (fit) cap = slots / grid_x > num_seqs ? slots / grid_x : num_seqs;" in cuh


def test_schedules_batches_whose_whole_sequences_fill_half_to_one_wave(monkeypatch):
    """With 8 CTAs per sequence (llama-3.1-8b) a graph-bound onepass launch of b25-b49 is not many
    waves, yet it is scheduled (fits_one_wave), with one wave of item slots: against the plain grid
    r32 of 200-32k tokens 227.6 -> 207.7 us and b32 x 4k 142.6 -> 135.1 (H200, 2026-11-30). Smaller
    batches (2+ sequences) plan by the sparse rule, with its slots; without it they keep the plain grid,
    as a variant built without the knob does."""
    occ = Occupancy(sm_count=132, smem_per_sm=233472, smem_reserved=1024, smem_limit=232448, split_blocks=3,
                    whole_blocks=3, sched_blocks=3)
    one = Variant(head_size=128, block_size=16, dtype="bf16", algorithm="onepass", threads=128, heads_per_cta=4,
                  partition="auto", stages=2, mma=True, graph_sched=True)
    batches = (1, 8, 16, 24, 25, 32, 40, 49)
    assert not any(one.many_waves(8 * b, 32864, occ) for b in batches)
    assert [b for b in batches if one.fits_one_wave(8, b, 32864, occ)] == [25, 32, 40, 49]
    assert [b for b in batches if one.schedules(8 * b, 32864, occ, num_seqs=b)] == [8, 16, 24, 25, 32, 40, 49]
    import workbench.kernel.variant as vm                                 # b8-b24: the sparse rule
    monkeypatch.setattr(vm, "SCHED_SPARSE", 0)
    assert [b for b in batches if one.schedules(8 * b, 32864, occ, num_seqs=b)] == [25, 32, 40, 49]
    assert [one.sched_shape(8, b, 32864, occ).cap for b in (25, 49)] == [49, 49]
    assert not one.with_(graph_sched=False).schedules(8 * 32, 32864, occ, num_seqs=32)
    assert one.plans_eager(8, [200] * 31 + [32000], occ) and not one.plans_eager(8, [4096] * 32, occ)
    # few CTAs per sequence (qwen2.5-7b's 4, 70b TP8's 1) filling half to one wave: one wave of slots too
    # (SCHED_FIT_FEW); without that rule, their own SCHED_FEW_WAVES waves of slots
    from workbench.kernel.variant import SCHED_FEW_WAVES
    few = one.sched_shape(4, 64, 32864, occ)                                # 256 CTAs, as b32 above
    assert one.fits_one_wave(4, 64, 32864, occ) and few.cap == few.slots // 4
    monkeypatch.setattr(vm, "SCHED_FIT_FEW", 0)
    few = one.sched_shape(4, 64, 32864, occ)
    assert not one.fits_one_wave(4, 64, 32864, occ) and few.cap == SCHED_FEW_WAVES * few.slots // 4
