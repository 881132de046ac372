"""GPU: every variant of a stated grid against the fp32 reference.

Rules (issue 2): rel error ||out-ref||/||ref|| <= 1e-2 (bf16) / 5e-3 (fp16), no NaN; output
poisoned with NaN before each run; padding slots of the last block hold NaN; fresh random
inputs per check (a new seed per variant). Set WB_RESULTS=DIR to keep a JSON of every check.
"""
from __future__ import annotations

import itertools
import json
import os

import pytest

from workbench.kernel.build import build_many
from workbench.kernel.space import enumerate_space, load_space, stratified_sample
from workbench.kernel.variant import HEAD_SIZES, Variant
from workbench.kernel.references import simple, simple_pf
from workbench.measure.workload import WorkloadSpec

pytestmark = pytest.mark.gpu
_seed = itertools.count(1000)


def _run(tag: str, pairs: list[tuple[Variant, WorkloadSpec]], expect: str = "pass"):
    from workbench.measure.check import check_variant
    from workbench.kernel.launch import load

    builds = {b.variant: b for b in build_many(sorted({v for v, _ in pairs}, key=lambda v: v.key), "sm_90a")}
    failed = [b for b in builds.values() if not b.ok]
    assert not failed, [(b.variant.name, b.error) for b in failed]
    results = []
    loaded = {}
    for v, spec in pairs:
        if v not in loaded:
            loaded[v] = load(builds[v])
        spec = WorkloadSpec(**{**spec.to_dict(), "seed": next(_seed)})
        results.append(check_variant(loaded[v], spec))
    for k in loaded.values():
        k.close()
    out_dir = os.environ.get("WB_RESULTS")
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, f"check-{tag}.json"), "w") as f:
            json.dump([r.to_dict() for r in results], f, indent=1)
    bad = [r for r in results if r.status != expect]
    errs = [r.rel_error for r in results if r.status == "pass"]
    print(f"\n[{tag}] {len(results)} checks, {len({v for v, _ in pairs})} variants, "
          f"{len({s.label for _, s in pairs})} shapes, worst rel err {max(errs) if errs else float('nan'):.3e}, "
          f"not-{expect}: {len(bad)}")
    assert not bad, [(r.variant, r.workload, r.status, r.detail) for r in bad[:10]]
    return results


MIXED = (1, 17, 200, 511, 1000, 3001)


def test_default_space_llama8b(cubin_cache):
    """The default space for 32/8 heads, d128, bf16, block 16: all of it with WORKBENCH_COMPILE_ALL=1,
    else a stratified sample (every value of every knob at least 6 times, topped up to
    WB_SPACE_FRACTION, default about 600 variants): the 8000 variants take ~20 min of nvcc on 16 cores."""
    en = enumerate_space(load_space(), "sm_90a", group=4)
    todo = en.valid if os.environ.get("WORKBENCH_COMPILE_ALL") == "1" else \
        stratified_sample(en.valid, float(os.environ.get("WB_SPACE_FRACTION", min(0.2, 600 / len(en.valid)))))
    spec = WorkloadSpec(seq_lens=MIXED, num_heads=32, num_kv_heads=8)
    _run("default-space", [(v, spec) for v in todo])


def test_sanitizer_sample(cubin_cache):
    """Small enough for compute-sanitizer (memcheck, racecheck: issue 14): every value of every
    knob of the default space at least twice, on a ragged batch with a length-0 sequence and a
    split and a whole-sequence length."""
    en = enumerate_space(load_space(), "sm_90a", group=4)
    spec = WorkloadSpec(seq_lens=(0, 700, 17, 2100), num_heads=32, num_kv_heads=8)
    _run("sanitizer-sample", [(v, spec) for v in stratified_sample(en.valid, 0.0, min_per_value=2)])


def _knob_sample(group: int, head: int, block: int, dtype: str) -> list[Variant]:
    base = dict(head_size=head, block_size=block, dtype=dtype)
    vs = [simple(head, block, dtype), simple_pf(head, block, dtype)]
    for qpc in sorted({1, min(2, group), min(4, group), group}):
        for threads, part, pf in ((64, 256, dict(prefetch_distance=2, prefetch_target="k")),
                                  (256, 512, dict(prefetch_distance=1, prefetch_target="kv", prefetch_hint="evict_last")),
                                  (512, 0, {}),
                                  (128, 1024, dict(prefetch_distance=4, prefetch_target="v", prefetch_op="line"))):
            v = Variant(**base, threads=threads, heads_per_cta=qpc, partition=part, **pf)
            if v.is_valid("sm_90a"):
                vs.append(v)
    return vs


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
@pytest.mark.parametrize("block", [16, 32])
def test_head_sizes(cubin_cache, dtype, block):
    """All head sizes x a knob sample, GQA 4, mixed lengths."""
    pairs = []
    for head in HEAD_SIZES:
        spec = WorkloadSpec(seq_lens=(1, 33, 700, 2049), num_heads=16, num_kv_heads=4,
                            head_size=head, block_size=block, dtype=dtype)
        pairs += [(v, spec) for v in _knob_sample(4, head, block, dtype)]
    _run(f"heads-{dtype}-b{block}", pairs)


@pytest.mark.parametrize("heads,kv_heads", [(8, 8), (32, 8), (28, 4), (8, 1)])
def test_gqa_ratios(cubin_cache, heads, kv_heads):
    """GQA 1, 4, 7, 8 (MHA, Llama-3.1-8B, Qwen2.5-7B, Llama-3.1-70B at TP8)."""
    g = heads // kv_heads
    spec = WorkloadSpec(seq_lens=(5, 129, 1500, 4096), num_heads=heads, num_kv_heads=kv_heads)
    _run(f"gqa{g}", [(v, spec) for v in _knob_sample(g, 128, 16, "bf16")])


def test_padded_ctas(cubin_cache):
    """A CTA wider than the GQA group (group_pow2: GQA 7 in CTAs of 8, GQA 3 in 4, 5 and 6 in 8): its
    last rows are masked heads. Tensor-core and CUDA-core paths, twopass and onepass, split and whole,
    lengths 0 and block / partition edges; the outputs of every real head against fp32."""
    lens = (0, 1, 17, 1000, 4097)
    pairs = []
    for heads, kv in ((28, 4), (56, 8), (12, 4), (20, 4), (24, 4)):
        g = heads // kv
        q = 1 << (g - 1).bit_length()
        for v in (Variant(algorithm="onepass", threads=128, heads_per_cta=q, partition="auto", stages=2, mma=True),
                  Variant(algorithm="twopass", threads=256, heads_per_cta=q, partition="auto", stages=2, mma=True),
                  Variant(algorithm="twopass", threads=128, heads_per_cta=q, partition="vllm", stages=3),
                  Variant(algorithm="twopass", threads=128, heads_per_cta=q, partition="none"),
                  Variant(algorithm="onepass", threads=128, heads_per_cta=q, partition=512)):
            if v.is_valid("sm_90a"):
                pairs.append((v, WorkloadSpec(seq_lens=lens, num_heads=heads, num_kv_heads=kv)))
    assert len({v for v, _ in pairs}) >= 8
    _run("padded", pairs)


def test_sequence_lengths(cubin_cache):
    """Lengths around block and partition edges, one sequence each, and mixed in one batch."""
    lens = (1, 2, 15, 16, 17, 31, 32, 33, 255, 256, 257, 511, 513, 1023, 1025, 8191, 8193)
    vs = [simple(), simple_pf(), Variant(threads=256, heads_per_cta=4, partition=256, prefetch_distance=2,
                                        prefetch_target="kv"),
          Variant(threads=128, heads_per_cta=2, partition=0, prefetch_distance=1, prefetch_target="k")]
    pairs = [(v, WorkloadSpec(seq_lens=(n,), num_heads=32, num_kv_heads=8)) for v in vs for n in lens]
    pairs += [(v, WorkloadSpec(seq_lens=lens, num_heads=32, num_kv_heads=8)) for v in vs]
    _run("lengths", pairs)


def test_long_contexts(cubin_cache):
    """131072 tokens with split-K (every partition size), alone and mixed with short sequences;
    and 16384 tokens without split-K (needs > 48 KB of dynamic shared memory)."""
    vs = [Variant(partition=p, threads=t, heads_per_cta=q, prefetch_distance=d, prefetch_target="kv")
          for p, t, q, d in ((256, 128, 1, 0), (512, 256, 4, 1), (1024, 512, 2, 4), (-1, 128, 1, 1))]
    pairs = [(v, WorkloadSpec(seq_lens=(131072,), num_heads=32, num_kv_heads=8)) for v in vs]
    pairs += [(v, WorkloadSpec(seq_lens=(131071, 3, 70001), num_heads=32, num_kv_heads=8)) for v in vs]
    unsplit = [Variant(partition=0, heads_per_cta=1), Variant(partition=0, heads_per_cta=2, threads=256,
                                                              prefetch_distance=2, prefetch_target="kv")]
    pairs += [(v, WorkloadSpec(seq_lens=(16384, 100), num_heads=32, num_kv_heads=8)) for v in unsplit]
    _run("long", pairs)


def test_long_context_without_split_is_rejected(cubin_cache):
    """A whole-sequence launch whose logits cannot fit in shared memory is refused before launch."""
    vs = [Variant(partition=0, heads_per_cta=1), Variant(partition=0, heads_per_cta=4, threads=256)]
    results = _run("rejected", [(v, WorkloadSpec(seq_lens=(131072,), num_heads=32, num_kv_heads=8)) for v in vs],
                   expect="rejected")
    assert all("split-K" in r.detail for r in results)


@pytest.mark.parametrize("heads,kv_heads", [(32, 8), (28, 4), (8, 8)])
def test_onepass_fused_and_vllm_style(cubin_cache, heads, kv_heads):
    """The other algorithm and knobs: onepass (incl. 131072 tokens without split-K, which twopass
    refuses), the fused split-K reduce, vLLM-style reads and 16-bit operands."""
    g = heads // kv_heads
    q = g if g <= 8 else 4
    vs = [Variant(algorithm="onepass", threads=t, heads_per_cta=h, partition=p, prefetch_distance=d,
                  prefetch_target="kv" if d else "none")
          for t, h, p, d in ((128, 1, "vllm", 0), (128, q, 1024, 1), (256, min(2, g), 256, 2), (64, q, "none", 0))]
    vs += [simple().with_(reduce="fused"), Variant(threads=128, heads_per_cta=q, partition=256, reduce="fused",
                                                    prefetch_distance=1, prefetch_target="kv"),
           simple().with_(k_load=8, vllm_math=True, serial=True), simple_pf().with_(k_load=8, vllm_math=True)]
    pairs = [(v, WorkloadSpec(seq_lens=lens, num_heads=heads, num_kv_heads=kv_heads))
             for v in vs for lens in ((1, 17, 1000, 4096, 9000), (16,), (33000,))]
    pairs += [(Variant(algorithm="onepass", threads=128, heads_per_cta=q, partition=0),
               WorkloadSpec(seq_lens=(131072, 5), num_heads=heads, num_kv_heads=kv_heads))]
    _run(f"other-algos-gqa{g}", pairs)


def test_empty_sequences_auto_split_and_odd_layouts(cubin_cache):
    """Issue 14: length-0 sequences (vLLM's CUDA-graph padding) give zeros on every path (whole,
    split + reduce kernel, fused reduce, auto split) without following their block-table row
    (poisoned: a read would fault); odd warps x odd heads per CTA (misaligned float4 before the
    stats padding); auto split over lengths that take the whole-sequence and the split path."""
    kw = dict(head_size=128, block_size=16, dtype="bf16")
    vs = [Variant(**kw, threads=t, heads_per_cta=q, partition=p, reduce=r, stages=s)
          for t, q, p, r, s in [(128, 4, "none", "kernel", 0), (128, 4, 512, "kernel", 0), (128, 4, 512, "fused", 0),
                                (256, 4, "auto", "kernel", 4), (128, 4, "auto", "fused", 0), (128, 1, "vllm", "kernel", 0),
                                (96, 1, "none", "kernel", 0), (160, 1, 256, "kernel", 0), (224, 1, "auto", "kernel", 3)]]
    vs = [v for v in vs if v.is_valid()]
    shapes = [WorkloadSpec(seq_lens=(0, 1000, 0, 17), num_heads=32, num_kv_heads=8, **kw),
              WorkloadSpec(seq_lens=(4096, 0), num_heads=32, num_kv_heads=8, **kw),
              WorkloadSpec(seq_lens=(30000, 5, 0), num_heads=32, num_kv_heads=8, **kw),
              WorkloadSpec.uniform(64, 2048, num_heads=32, num_kv_heads=8, **kw),
              WorkloadSpec.uniform(1, 32768, num_heads=32, num_kv_heads=8, **kw)]
    pairs = [(v, s) for v in vs for s in shapes if not (v.partition == 0 and s.max_seq_len > 8192)]
    _run("empty-auto-odd", pairs)


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_tensor_core_path(cubin_cache, dtype):
    """mma variants (QK and PV on tensor cores from the cp.async ring), twopass and onepass: every
    head size, GQA 1, 4, 7 and 8 (heads per CTA 1..8, so padded n-columns of the mma), every partition kind, both
    reduces, 2-4 stages, 64-512 threads; lengths at block and partition edges, length 0 and
    NaN-padded tails (0 x NaN must not reach the output)."""
    lens = (0, 1, 15, 17, 256, 1000, 4097)
    pairs = []
    for head in HEAD_SIZES:
        for algo in ("twopass", "onepass"):
            v = Variant(head_size=head, dtype=dtype, algorithm=algo, threads=128, heads_per_cta=4, partition="auto",
                        stages=3 if algo == "twopass" or head < 256 else 2, mma=True)
            pairs.append((v, WorkloadSpec(seq_lens=lens, num_heads=16, num_kv_heads=4, head_size=head, dtype=dtype)))
    for heads, kv in ((8, 8), (32, 8), (28, 4), (8, 1)):
        g = heads // kv
        grid = ((64, 1, 256, "kernel", 2), (128, min(g, 8), "auto", "kernel", 3),
                (256, min(g, 8), 512, "fused", 4), (512, min(2, g), "none", "kernel", 2),
                (128, min(g, 8), "vllm", "kernel", 4), (256, min(4, g), "auto", "fused", 3))
        for algo, (t, q, p, r, st) in itertools.product(("twopass", "onepass"), grid):
            # onepass (one ring of K and V, online softmax in registers): the fused rows are invalid
            v = Variant(dtype=dtype, algorithm=algo, threads=t, heads_per_cta=q, partition=p, reduce=r, stages=st,
                        mma=True)
            if v.is_valid("sm_90a"):
                pairs.append((v, WorkloadSpec(seq_lens=lens, num_heads=heads, num_kv_heads=kv, dtype=dtype)))
                pairs.append((v, WorkloadSpec(seq_lens=(33000, 3), num_heads=heads, num_kv_heads=kv, dtype=dtype))
                             if p != "none" else
                             (v, WorkloadSpec.uniform(8, 2048, num_heads=heads, num_kv_heads=kv, dtype=dtype)))
    _run(f"mma-{dtype}", pairs)


def test_unified_ring(cubin_cache):
    """unified_ring (K and V tiles through one cp.async ring): CUDA-core and tensor-core math,
    2-4 stages, warps with fewer blocks than the ring holds (lengths 1, 17, 33: some warps get 0-2
    blocks, so V tiles are issued in the prologue), every partition kind, GQA 1/4/7/8, length 0."""
    lens = (0, 1, 17, 33, 256, 1000, 4097)
    pairs = []
    for heads, kv in ((8, 8), (32, 8), (28, 4), (8, 1)):
        g = heads // kv
        for mma in (False, True):
            for t, q, p, r, st in ((64, 1, 256, "kernel", 2), (128, min(g, 8), "auto", "kernel", 3),
                                   (256, min(g, 8), 512, "fused", 4), (512, min(2, g), "none", "kernel", 2),
                                   (128, min(g, 4), "vllm", "kernel", 4)):
                v = Variant(threads=t, heads_per_cta=q, partition=p, reduce=r, stages=st, mma=mma, unified_ring=True)
                if v.is_valid("sm_90a"):
                    pairs.append((v, WorkloadSpec(seq_lens=lens, num_heads=heads, num_kv_heads=kv)))
                    if p != "none":
                        pairs.append((v, WorkloadSpec(seq_lens=(33000, 3), num_heads=heads, num_kv_heads=kv)))
    _run("unified-ring", pairs)


def test_graph_bound_launches_split_per_sequence(cubin_cache):
    """What vLLM's full CUDA graphs replay: a launch bounded at the model's longest sequence (32864
    tokens, block tables that wide, the columns past each sequence poisoned) on shorter batches,
    with per-sequence splits (seq_fill) and without, with the split grid's walk (Params.grid_parts,
    CTAs walking a long sequence's partitions) and with a grid sized for the bound, against the
    fp32 reference; then, cold L2,
    the three launches of each batch (bounded + per sequence, bounded, per-shape), so the loss the
    e2e run showed between graph and per-shape launches is seen at kernel level (printed; kept
    in WB_RESULTS/graph-bound.json)."""
    import torch

    from workbench.kernel.launch import load
    from workbench.measure.check import TOLERANCE
    from workbench.measure.gpuinfo import gpu_info
    from workbench.measure.reference import reference_decode, relative_error
    from workbench.measure.timing import time_variant, widen_block_table
    from workbench.measure.workload import build_workload

    bound = 32864
    vs = [Variant(threads=t, heads_per_cta=4, partition="auto", stages=s, reduce=r, mma=mma)
          for t, s, r, mma in ((128, 3, "kernel", False), (256, 4, "kernel", False), (128, 0, "fused", False),
                               (128, 3, "kernel", True))]
    vs.append(Variant(algorithm="onepass", threads=128, heads_per_cta=4, partition="auto", stages=3, mma=True))
    walks = {v: v.walking() for v in vs if v.graph_forms_apply}
    scheds = {v: v.scheduling() for v in vs if v.graph_forms_apply}
    builds = {b.variant: b for b in build_many(vs + list(walks.values()) + list(scheds.values()), "sm_90a")}
    assert all(b.ok for b in builds.values()), [b.error for b in builds.values() if not b.ok]
    # the walk matters where sequences need more partitions than the grid holds: b64 with 32k and
    # 9k tokens among short ones (a grid of a few partitions per sequence), b8 past 6 x 1408
    shapes = [(1024,), (4096,) * 8, (1024,) * 64, (4096,) * 32, (0, 700, 17, 32000, 3000),
              (32000, 9000) + (1024,) * 62, (9000, 32000) * 4]
    # graph-walk: the per-sequence split of the variant built with graph_walk (its grid walks long
    # sequences; export --graph-walk)
    # graph-sched: the variant built with graph_sched, its step planned on the device first (export
    # --graph-sched); graph-sched-stale: the same launch with no valid plan (the schedule's key
    # zeroed), which must fall back to walking every partition of the bound, still right
    modes = {"graph-per-seq": (bound, True, ""), "graph-walk": (bound, True, "walk"),
             "graph-sched": (bound, True, "sched"), "graph-sched-stale": (bound, True, "stale"),
             "graph": (bound, False, ""), "shape": (None, False, "")}
    info = gpu_info(0)
    rows, bad = [], []
    for v in vs:
        k = load(builds[v])
        kw = load(builds[walks[v]]) if v in walks else None
        ks = load(builds[scheds[v]]) if v in scheds else None
        for lens in shapes:
            spec = WorkloadSpec(seq_lens=lens, num_heads=32, num_kv_heads=8, seed=next(_seed))
            w = build_workload(spec, "cuda")
            wide = widen_block_table(w.block_tables, bound, 16)
            for i, n in enumerate(lens):          # past each sequence: poisoned (a read would fault)
                wide[i, -(-n // 16):] = 1 << 30
            ref = reference_decode(w.query, w.key_cache, w.value_cache, w.block_tables, w.seq_lens, w.scale, 8)
            row = {"variant": v.name, "shape": spec.label}
            for mode, (L, per_seq, how) in modes.items():
                kern = {"": k, "walk": kw, "sched": ks, "stale": ks}[how]
                if kern is None:
                    continue
                out = w.new_output()
                ws = kern.workspace(spec.num_seqs, 32, L or spec.max_seq_len)
                if how == "sched":
                    kern.plan(ws, w.seq_lens, 32, 8, L)
                kern(out, w.query, w.key_cache, w.value_cache, 8, w.scale, wide if L else w.block_tables, w.seq_lens,
                     L or spec.max_seq_len, workspace=ws, per_seq_split=per_seq)
                torch.cuda.synchronize()
                err = relative_error(out, ref)
                if not err <= TOLERANCE["bf16"]:
                    bad.append((v.name, spec.label, mode, err))
                row[f"{mode}_err"] = err
                if how != "stale":           # time_variant plans its own schedule
                    row[f"{mode}_us"] = time_variant(kern, spec, info, launches=30, launch_len=L,
                                                     per_seq_split=per_seq).median_us
            rows.append(row)
            print(f"{v.name:44} {spec.label:26} " + "  ".join(f"{m} {row[m + '_us']:7.1f} us" for m in modes
                                                              if m + "_us" in row))
            del w, wide, ref
        k.close()
        for kx in (kw, ks):
            if kx is not None:
                kx.close()
    out_dir = os.environ.get("WB_RESULTS")
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "graph-bound.json"), "w") as f:
            json.dump(rows, f, indent=1)
    assert not bad, bad


def test_eager_plans_ragged_batches(cubin_cache):
    """A per-shape launch of a ragged batch, planned at its own bound and split per sequence (what
    bench's `tuned` row times and the exported backend's eager steps run), against the fp32
    reference: the bench suite's ragged batches and one with empty sequences, at 70b TP8 (8/1) and
    qwen2.5-7b (28/4) heads, where Variant.plans_eager says they plan."""
    from workbench.measure.check import check_variant
    from workbench.measure.suite import RaggedShape
    from workbench.kernel.launch import load

    vs = [Variant(algorithm="onepass", threads=128, heads_per_cta=8, partition="auto", stages=2, mma=True),
          Variant(threads=128, heads_per_cta=4, partition="auto", stages=3, mma=True)]
    scheds = [v.scheduling() for v in vs]
    builds = {b.variant: b for b in build_many(scheds, "sm_90a")}
    assert all(b.ok for b in builds.values()), [b.error for b in builds.values() if not b.ok]
    shapes = [RaggedShape(32, 200, 32768).lengths(), RaggedShape(64, 100, 8192).lengths(),
              (0, 700, 17, 32000, 0, 3000, 90)]
    planned, bad = [], []
    for v in scheds:
        k = load(builds[v])
        for nh, nkv in ((8, 1), (28, 4)):
            if v.heads_per_cta >= 2 * (nh // nkv):
                continue
            for lens in shapes:
                spec = WorkloadSpec(seq_lens=lens, num_heads=nh, num_kv_heads=nkv, seed=next(_seed))
                if not k.plans_eager(lens, nh, nkv):
                    continue
                c = check_variant(k, spec, per_seq_split=True)
                planned.append((v.name, nh, spec.label, c.rel_error))
                if not c.ok:
                    bad.append((v.name, nh, spec.label, c.status, c.detail))
        k.close()
    print(planned)
    assert not bad, bad
    assert sum(p[1] == 8 for p in planned) >= 3, f"too few 70b-shaped launches planned: {planned}"


def test_graph_launch_planned_where_the_bound_would_not_split(cubin_cache):
    """A graph-bound launch of few CTAs per sequence whose auto plan for the bound is a whole
    sequence per CTA (qwen2.5-7b onepass q8 s3 at b65, 70b TP8 at b160) is planned all the same
    (Variant.sched_shape from the finest partition up): a ragged batch up to the bound against the
    fp32 reference, and timed against the same variant without the schedule (printed)."""
    import torch

    from workbench.kernel.launch import load
    from workbench.measure.check import check_variant
    from workbench.measure.gpuinfo import gpu_info
    from workbench.measure.suite import RaggedShape
    from workbench.measure.timing import time_variant

    v = Variant(algorithm="onepass", threads=128, heads_per_cta=8, partition="auto", stages=3, mma=True)
    builds = {b.variant: b for b in build_many([v, v.scheduling()], "sm_90a")}
    assert all(b.ok for b in builds.values()), [b.error for b in builds.values() if not b.ok]
    plain, ks = load(builds[v]), load(builds[v.scheduling()])
    info, bound, rows, whole = gpu_info(0), 32864, [], 0
    try:
        for n, nh, nkv in ((65, 28, 4), (160, 8, 1)):
            lens = RaggedShape(n, 100, 32000, 5).lengths()
            spec = WorkloadSpec(seq_lens=lens, num_heads=nh, num_kv_heads=nkv, seed=next(_seed))
            gx = ks.grid_x(nh, nkv)
            whole += ks.variant.auto_tokens(gx * n, bound, ks.occupancy().scheduled()) == 0
            assert ks.sched_shape(gx, n, bound) is not None, (n, nh, nkv)
            c = check_variant(ks, spec, launch_len=bound, per_seq_split=True)
            assert c.ok, (spec.label, c.status, c.detail)
            t = [time_variant(k, spec, info, launches=30, launch_len=bound, per_seq_split=True).median_us
                 for k in (plain, ks)]
            rows.append((spec.label, c.rel_error, *t))
            torch.cuda.synchronize()
    finally:
        plain.close()
        ks.close()
    print("graph-bound, plain vs planned (us):", rows, "whole-sequence bound plans:", whole)
    assert whole >= 1, "no case had a whole-sequence plan for the bound: the test misses its path"


def test_plan_runs_short_uniform_batches_whole_and_splits_long_ones(cubin_cache, monkeypatch):
    """A graph-bound launch of few CTAs per sequence (qwen2.5-7b's 28/4 heads, onepass q8: 4 CTAs a
    sequence) whose whole sequences fill one wave of slots gets one wave of item slots
    (SCHED_FIT_FEW). wb_plan runs an about-uniform batch of such a launch whole up to
    SCHED_WHOLE_MAX tokens and splits longer ones (whole CTAs at 2/3 of the slots lose to a split
    that fills them: qwen b64 x 32k 1094 vs 967 us, H200). Reads the plan's header; with the limit
    off (0) the long batch runs whole too, so the limit reaches the kernel. The 4k batch's output
    against the fp32 reference."""
    import torch

    import workbench.kernel.variant as variant_mod
    from workbench.kernel.launch import load
    from workbench.measure.check import check_variant

    v = Variant(algorithm="onepass", threads=128, heads_per_cta=8, partition="auto", stages=2, mma=True).scheduling()
    (b,) = build_many([v], "sm_90a")
    assert b.ok, b.error
    ks, bound = load(b), 32864
    try:
        occ = ks.occupancy().scheduled()
        gx = ks.grid_x(28, 4)
        n = max(2, v.sched_partition(gx, 64, bound, occ)[1] * 2 // (3 * gx))    # whole CTAs: 2/3 of a wave
        assert v.fits_one_wave(gx, n, bound, occ), (gx, n, occ)

        def header(length: int) -> list[int]:
            ws = ks.workspace(n, 28, bound)
            ks.plan(ws, torch.full((n,), length, dtype=torch.int32, device="cuda"), 28, 4, bound)
            torch.cuda.synchronize()
            return ws.sched[:4].tolist()          # items, partition tokens, key, longest

        short, long_ = header(4096), header(32768)
        assert short[0] == n and short[1] >= 4096, short
        assert long_[0] > n and long_[1] < 32768, long_
        monkeypatch.setattr(variant_mod, "SCHED_WHOLE_MAX", 0)
        assert header(32768)[0] == n
        c = check_variant(ks, WorkloadSpec(seq_lens=(4096,) * n, num_heads=28, num_kv_heads=4, seed=next(_seed)),
                          launch_len=bound, per_seq_split=True)
        assert c.ok, (c.status, c.detail)
        print(f"b{n} uniform, 4 CTAs a sequence: 4k plan {short}, 32k plan {long_}, rel err {c.rel_error:.2e}")
    finally:
        ks.close()


def test_replay_times_the_graph_launch_as_vllm_runs_it(cubin_cache):
    """`bench --replay-ours`: our graph-bound scheduled launch captured into one CUDA graph per
    rotation copy and the replays timed, as the peers are timed and as vLLM's decode graphs run it
    (PDL edges included), beside the default eager, event-timed launches, and `bench --in-graph`: a
    launch per rotation copy back to back in one graph, ÷ the launches. A capture that held no
    kernel (a launch on another stream) would replay in ~2 µs: the ratio's floor catches it; a
    capture that failed falls back to eager timing, which the method string says."""
    from workbench.kernel.launch import load
    from workbench.measure.gpuinfo import gpu_info
    from workbench.measure.timing import time_variant
    from workbench.measure.workload import kv_write_standin

    v = Variant(algorithm="onepass", threads=256, heads_per_cta=4, partition="auto", stages=2, mma=True).scheduling()
    (b,) = build_many([v], "sm_90a")
    assert b.ok, b.error
    k, info = load(b), gpu_info(0)
    try:
        for lens in ((1024,) * 8, (4096,) * 32):
            spec = WorkloadSpec(seq_lens=lens, num_heads=32, num_kv_heads=8, seed=next(_seed))
            how = dict(launches=30, launch_len=32864, per_seq_split=True)
            eager = time_variant(k, spec, info, **how)
            rep = time_variant(k, spec, info, replay=True, **how)
            step = time_variant(k, spec, info, in_graph=True, **how)
            kvw = time_variant(k, spec, info, in_graph=True, between=kv_write_standin(spec, "cuda"), **how)
            # bench --fused-write: each launch writes its step's tokens (the cache stays as it was)
            fused = time_variant(k, spec, info, in_graph=True, fused_write=True, **how)
            assert eager.method.startswith("cuda-events per launch"), eager.method
            assert rep.method.startswith("CUDA graph replay per launch") and "rotating block tables" in rep.method, \
                rep.method
            assert step.method.startswith("CUDA graph of ") and "back to back" in step.method, step.method
            assert 0.3 < rep.median_us / eager.median_us < 1.5, (spec.label, eager.median_us, rep.median_us)
            # back to back in one graph: the graph's own launch latency (~2 µs) is gone, the kernels are not
            assert 0.5 < step.median_us / rep.median_us < 1.0, (spec.label, rep.median_us, step.median_us)
            # after the KV-write stand-in (its time subtracted): no overlap with the previous launch's tail
            assert "KV-write stand-in" in kvw.method, kvw.method
            assert 0.9 < kvw.median_us / step.median_us < 1.5, (spec.label, step.median_us, kvw.median_us)
            # the fused write costs the kernel something, never more than the write kernel it replaces would
            assert 0.95 < fused.median_us / step.median_us < 1.2, (spec.label, step.median_us, fused.median_us)
            print(f"{spec.label}: eager {eager.median_us:.1f} µs [{eager.p10_us:.1f}-{eager.p90_us:.1f}], "
                  f"graph replay {rep.median_us:.1f} µs [{rep.p10_us:.1f}-{rep.p90_us:.1f}], "
                  f"in one graph {step.median_us:.1f} µs [{step.p10_us:.1f}-{step.p90_us:.1f}], "
                  f"after the KV write {kvw.median_us:.1f} µs [{kvw.p10_us:.1f}-{kvw.p90_us:.1f}], "
                  f"writing it fused {fused.median_us:.1f} µs [{fused.p10_us:.1f}-{fused.p90_us:.1f}] "
                  f"({step.method.split(' launches')[0]})")
    finally:
        k.close()


@pytest.mark.parametrize("graph", [False, True], ids=["per-shape", "graph-bound"])
def test_fused_kv_write_writes_the_new_token_before_reading_it(cubin_cache, graph):
    """kv_new (vLLM's forward_includes_kv_cache_update): each sequence's new token is absent from the
    cache (its slot poisoned with NaN) and handed to the launch; the output must equal the fp32
    reference on the intact cache, and the cache must hold the token afterwards. A padded row (length
    0, slot -1) writes nothing. Variants: split, whole-sequence, tensor cores, twopass + L2 prefetch,
    stages 0; graph-bound: bounded at 32864 with per-sequence splits (scheduled where the variant is).
    K and V with strides of their own, as vLLM's forward hands them (session 28's first engine run
    failed on an op that assumed one set)."""
    import torch

    from workbench.kernel.launch import load
    from workbench.kernel.variant import PARTITION_AUTO
    from workbench.measure.reference import reference_decode
    from workbench.measure.timing import widen_block_table
    from workbench.measure.workload import build_workload

    vs = [Variant(algorithm="onepass", threads=256, heads_per_cta=2, partition="auto", stages=2, mma=True),
          Variant(algorithm="twopass", threads=256, heads_per_cta=4, partition="auto", stages=2, mma=True,
                  prefetch_distance=2, prefetch_target="kv", prefetch_op="bulk"),
          Variant(algorithm="onepass", threads=128, heads_per_cta=1, partition=512),
          Variant(algorithm="onepass", threads=128, heads_per_cta=4, partition=0, stages=3, mma=True)]
    if graph:
        vs = [v.scheduling() for v in vs if v.partition == PARTITION_AUTO] + [vs[2]]
    builds = build_many(vs, "sm_90a")
    assert all(b.ok for b in builds), [(b.variant.name, b.error) for b in builds if not b.ok]
    worst = 0.0
    for b in builds:
        k = load(b)
        try:
            for lens in ((1000, 17, 4096, 0, 333), (1024,) * 8):
                if b.variant.partition == 0 and max(lens) > 2048:
                    continue                                   # whole-sequence: its shared memory's limit
                spec = WorkloadSpec(seq_lens=lens, num_heads=32, num_kv_heads=8, seed=next(_seed))
                w = build_workload(spec, "cuda", poison_padding=False)
                ref = reference_decode(w.query, w.key_cache, w.value_cache, w.block_tables, w.seq_lens, w.scale, 8)
                P, x = spec.block_size, 8
                slots = torch.full((len(lens),), -1, dtype=torch.int64, device="cuda")
                # as vLLM hands them: a rotated key of its own, the value a view into the qkv projection
                k_new = torch.zeros(len(lens), 8, 128, dtype=w.query.dtype, device="cuda")
                v_new = torch.zeros(len(lens), 48, 128, dtype=w.query.dtype, device="cuda")[:, 40:]
                for i, n in enumerate(lens):
                    if n == 0:
                        continue
                    blk, off = int(w.block_tables[i, (n - 1) // P]), (n - 1) % P
                    slots[i] = blk * P + off
                    k_new[i] = w.key_cache[blk, :, :, off, :].reshape(8, 128)
                    v_new[i] = w.value_cache[blk, :, :, off]
                    w.key_cache[blk, :, :, off, :] = float("nan")     # the token is not in the cache yet
                    w.value_cache[blk, :, :, off] = float("nan")
                out = torch.full_like(w.query, float("nan"))
                L = 32864 if graph else spec.max_seq_len
                table = widen_block_table(w.block_tables, L, P) if graph else w.block_tables
                ws = k.step_workspace(w.seq_lens, 32, 8, L, True) if graph else None
                k(out, w.query, w.key_cache, w.value_cache, 8, w.scale, table, w.seq_lens, L, workspace=ws,
                  per_seq_split=graph, kv_new=(k_new, v_new, slots))
                torch.cuda.synchronize()
                live = torch.tensor([n > 0 for n in lens], device="cuda")
                err = ((out[live].float() - ref[live]).norm() / ref[live].norm()).item()
                assert err < 1e-2 and not out[live].isnan().any(), (b.variant.name, lens, err)
                assert (out[~live] == 0).all(), b.variant.name               # the padded row: zeros
                for i, n in enumerate(lens):
                    if n:
                        blk, off = int(slots[i]) // P, int(slots[i]) % P
                        assert torch.equal(w.key_cache[blk, :, :, off, :].reshape(8, 128), k_new[i])
                        assert torch.equal(w.value_cache[blk, :, :, off], v_new[i])
                worst = max(worst, err)
        finally:
            k.close()
    print(f"\n[fused kv write, {'graph-bound' if graph else 'per-shape'}] {len(builds)} variants, worst rel err {worst:.2e}")
