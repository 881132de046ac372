"""Peers on the CPU where they can run there.

- FlexAttention's paged decode (eager flex, one copy: the mask_mod states page ownership exactly
  for one copy) against the fp32 reference.
- fa3 / flashinfer / flashinfer-tc / xqa: the registry and the default peer list; the reason a peer
  gives when its package is missing or no GPU is there; the layout helpers (our vLLM pages as NHD /
  HND pages, FlashInfer's page lists) against a gather of the original KV; and each builder end to
  end against small torch stand-ins of the packages whose signatures are those of vLLM 0.26.0's
  flash_attn_interface.py and FlashInfer 0.7.2.post1's decode.py (no **kwargs: a misspelt keyword
  fails). The stand-ins read the pages token by token through the tables and buffers they were
  given, so a wrong layout, table, page list or a plan shared between copies shows as a large
  error. The real kernels run in test_real_peers_on_gpu (marked gpu).
"""
import importlib.metadata
import importlib.util
import inspect
import math
import sys
import types

import pytest
import torch

from workbench.bench.peers import PEERS, peer_status
from workbench.bench.peers import flashinfer as fi_peer
from workbench.bench.peers.fa3 import fa3
from workbench.bench.peers.common import PeerUnavailable
from workbench.bench.peers.flex import flex_attention
from workbench.bench.peers.paged import csr_pages, gather_pages, key_pages, our_kv, value_pages
from workbench.measure.reference import gather_kv, reference_decode
from workbench.measure.workload import WorkloadSpec, build_rotation, build_workload

NEW = ("fa3", "fa3-packed", "flashinfer", "flashinfer-tc", "xqa")
RAGGED = WorkloadSpec(seq_lens=(33, 17, 64, 5), num_heads=8, num_kv_heads=2, head_size=64, seed=4)
MQA = WorkloadSpec(seq_lens=(40, 16), num_heads=4, num_kv_heads=1, head_size=64, block_size=32, seed=9)


@pytest.mark.parametrize("batch,ctx,heads,kv_heads,head", [(3, 64, 8, 2, 64), (2, 160, 4, 4, 64), (1, 48, 8, 1, 128), (2, 256, 8, 2, 64)])
def test_flex_paged_decode_matches_reference(batch, ctx, heads, kv_heads, head):
    pytest.importorskip("torch.nn.attention.flex_attention")
    spec = WorkloadSpec.uniform(batch, ctx, num_heads=heads, num_kv_heads=kv_heads, head_size=head)
    calls, note, err = flex_attention(spec, 0, check=True, device="cpu", copies=1)
    assert len(calls) == 1 and f"page {128 if ctx % 128 == 0 else 16}" in note
    assert err < 1e-2


def test_flex_needs_whole_pages():
    spec = WorkloadSpec(seq_lens=(17, 32), num_heads=8, num_kv_heads=2, head_size=64)
    with pytest.raises(PeerUnavailable, match="whole pages"):
        flex_attention(spec, 0, device="cpu", copies=1)


# ---- registry, defaults, reasons ------------------------------------------------------------------

def test_registry_and_default_peers():
    from workbench.bench.run import KERNEL_ROWS
    from workbench.cli.bench_cmds import bench_cmd
    assert set(NEW) | {"sdpa", "xformers", "flex", "read"} == set(PEERS)
    default = inspect.signature(bench_cmd).parameters["peers"].default.default.split(",")
    assert default == [*KERNEL_ROWS, *NEW, "read"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks what a machine without a GPU is told")
@pytest.mark.parametrize("name", NEW)
def test_new_peer_unavailable_on_this_machine(name):
    with pytest.raises(PeerUnavailable) as e:
        PEERS[name](RAGGED, 0, check=True)
    msg = str(e.value)
    assert "\n" not in msg and ("scripts/bundle_peers.sh" in msg or "needs a CUDA GPU" in msg), msg


@pytest.mark.parametrize("name,hidden", [("fa3", "vllm.vllm_flash_attn"), ("flashinfer", "flashinfer"),
                                         ("flashinfer-tc", "flashinfer"), ("xqa", "flashinfer")])
def test_missing_package_says_how_to_provide_it(monkeypatch, name, hidden):
    monkeypatch.setitem(sys.modules, hidden, None)          # import of it fails, as when not installed
    with pytest.raises(PeerUnavailable) as e:
        PEERS[name](RAGGED, 0, check=True)
    msg = str(e.value)
    assert "scripts/bundle_peers.sh" in msg and "peers_activate.sh .peers" in msg and "\n" not in msg
    assert ("vLLM 0.26" in msg) if name.startswith("fa3") else ("flashinfer-python 0.7.2.post1" in msg)


# ---- layout helpers ---------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", [RAGGED, MQA], ids=["gqa-ragged", "mqa-block32"])
@pytest.mark.parametrize("layout", ["NHD", "HND"])
def test_pages_hold_our_kv(spec, layout):
    w = build_workload(spec, poison_padding=False)
    k, v = key_pages(w.key_cache, layout), value_pages(w.value_cache, layout)
    N, KH, D, P = spec.pool_blocks, spec.num_kv_heads, spec.head_size, spec.block_size
    assert k.shape == v.shape == ((N, P, KH, D) if layout == "NHD" else (N, KH, P, D))
    # canonical strides even on size-1 dims (KH = 1): TMA in FA3 / XQA rejects 2-byte strides there
    assert k.stride() == v.stride() == torch.empty(k.shape).stride()
    for s, n in enumerate(spec.seq_lens):
        ids = w.block_tables[s, :spec.blocks_per_seq[s]]
        k0, v0 = gather_kv(w.key_cache, w.value_cache, ids.long(), n)
        assert torch.equal(gather_pages(k, ids, n, layout), k0)
        assert torch.equal(gather_pages(v, ids, n, layout), v0)


@pytest.mark.parametrize("page", [16, 32])
def test_csr_pages(page):
    lens = [33, 17, 64, 5, 32]
    table = torch.randperm(64, generator=torch.Generator().manual_seed(1))[:5 * 4].view(5, 4).to(torch.int32)
    indptr, indices, last = csr_pages(table, lens, page)
    want_indices, want_ptr, want_last = [], [0], []
    for s, n in enumerate(lens):
        nb = -(-n // page)
        want_indices += table[s, :nb].tolist()
        want_ptr.append(want_ptr[-1] + nb)
        want_last.append(n - (nb - 1) * page)
    assert indptr.tolist() == want_ptr and indices.tolist() == want_indices and last.tolist() == want_last
    assert indptr.dtype == indices.dtype == last.dtype == torch.int32
    assert all(1 <= x <= page for x in last.tolist())


@pytest.mark.parametrize("layout", ["NHD", "HND", "NHD-packed"])
def test_our_kv_is_the_timed_workload(layout):
    min_bytes = 5 * RAGGED.blocks_needed * RAGGED.block_bytes     # 5 copies
    kv = our_kv(RAGGED, min_bytes, layout, check=True, device="cpu")
    w, tables = build_rotation(RAGGED, "cpu", min_bytes)          # what time_variant times our kernel on
    assert kv.copies == len(tables) == 5 and torch.equal(kv.q, w.query) and torch.equal(kv.seq_lens, w.seq_lens)
    assert all(torch.equal(a, b) for a, b in zip(kv.tables, tables))
    used = [set(t[s, :nb].tolist()) for t in tables for s, nb in enumerate(RAGGED.blocks_per_seq)]
    assert sum(map(len, used)) == len(set().union(*used))        # copies are disjoint pages
    for t in (tables[0], tables[-1]):
        for s, n in enumerate(RAGGED.seq_lens):
            ids = t[s, :RAGGED.blocks_per_seq[s]]
            k0, v0 = gather_kv(w.key_cache, w.value_cache, ids.long(), n)
            assert torch.equal(gather_pages(kv.k, ids, n, layout), k0)
            assert torch.equal(gather_pages(kv.v, ids, n, layout), v0)
    ref = reference_decode(w.query, w.key_cache, w.value_cache, tables[0], w.seq_lens, w.scale, RAGGED.num_kv_heads)
    assert torch.equal(kv.ref, ref)


# ---- builders against stand-ins of the packages ----------------------------------------------------

LAST = {}          # the output tensor the stand-in wrote last

def _attend(q, pages, table, n, page, layout, scale):
    """One sequence, read token by token: token t is at (table[t // page], t % page)."""
    k_pages, v_pages = pages
    t = torch.arange(n)
    blk, off = table[t // page].long(), t % page
    k = k_pages[blk, off] if layout == "NHD" else k_pages[blk, :, off]    # [n, KH, D]
    v = v_pages[blk, off] if layout == "NHD" else v_pages[blk, :, off]
    H, KH = q.shape[0], k.shape[1]
    k, v = k.float().repeat_interleave(H // KH, 1), v.float().repeat_interleave(H // KH, 1)
    p = torch.softmax(torch.einsum("hd,nhd->hn", q.float(), k) * scale, -1)
    return torch.einsum("hn,nhd->hd", p, v)


def _fake_fa3():
    calls = {}

    def get_scheduler_metadata(batch_size, max_seqlen_q, max_seqlen_k, num_heads_q, num_heads_kv, headdim,
                               cache_seqlens, qkv_dtype=torch.bfloat16, headdim_v=None, cu_seqlens_q=None,
                               cu_seqlens_k_new=None, cache_leftpad=None, page_size=None, max_seqlen_k_new=0,
                               causal=False, window_size=(-1, -1), has_softcap=False, num_splits=0, pack_gqa=None,
                               sm_margin=0):
        calls["meta"] = dict(batch_size=batch_size, max_seqlen_q=max_seqlen_q, max_seqlen_k=max_seqlen_k,
                             page_size=page_size, causal=causal,
                             num_splits=num_splits, heads=(num_heads_q, num_heads_kv, headdim), dtype=qkv_dtype)
        return torch.zeros(1 + 4 * -(-batch_size // 4), dtype=torch.int32)

    def flash_attn_varlen_func(q, k, v, max_seqlen_q, cu_seqlens_q, max_seqlen_k, cu_seqlens_k=None, seqused_k=None,
                               q_v=None, dropout_p=0.0, softmax_scale=None, causal=False, window_size=None, softcap=0.0,
                               alibi_slopes=None, deterministic=False, return_attn_probs=False, block_table=None,
                               return_softmax_lse=False, out=None, scheduler_metadata=None, q_descale=None,
                               k_descale=None, v_descale=None, num_splits=0, output_scale=None, fa_version=2,
                               s_aux=None, cp_world_size=1, cp_rank=0, cp_tot_seqused_k=None, mask_mod=None,
                               aux_tensors=None, dynamic_causal=None):
        assert fa_version == 3 and causal and max_seqlen_q == 1 and cu_seqlens_k is None
        assert scheduler_metadata is not None and num_splits == calls["meta"]["num_splits"] > 0
        calls["kv"] = (k.stride(), v.stride(), v.data_ptr() - k.data_ptr(), k.element_size())
        calls["told"] = max_seqlen_k
        assert cu_seqlens_q.tolist() == list(range(q.shape[0] + 1))
        for s, n in enumerate(seqused_k.tolist()):
            out[s] = _attend(q[s], (k, v), block_table[s], n, k.shape[1], "NHD", softmax_scale).to(out.dtype)
        LAST["out"] = out
        return out
    m = types.SimpleNamespace(FA3_AVAILABLE=True, flash_attn_varlen_func=flash_attn_varlen_func,
                              get_scheduler_metadata=get_scheduler_metadata)
    return m, calls


class _FakeDecodeWrapper:
    made = 0

    def __init__(self, float_workspace_buffer, kv_layout="NHD", use_cuda_graph=False, use_tensor_cores=False,
                 paged_kv_indptr_buffer=None, paged_kv_indices_buffer=None, paged_kv_last_page_len_buffer=None,
                 backend="auto", jit_args=None):
        assert use_cuda_graph and kv_layout == "NHD" and backend == "auto"
        assert len(paged_kv_indptr_buffer) == len(paged_kv_last_page_len_buffer) + 1
        self.bufs = (paged_kv_indptr_buffer, paged_kv_indices_buffer, paged_kv_last_page_len_buffer)
        LAST["tensor_cores"] = use_tensor_cores
        _FakeDecodeWrapper.made += 1

    def plan(self, indptr, indices, last_page_len, num_qo_heads, num_kv_heads, head_dim, page_size, *,
             pos_encoding_mode="NONE", window_left=-1, window_right=0, logits_soft_cap=None, q_data_type="float16",
             kv_data_type=None, o_data_type=None, data_type=None, sm_scale=None, rope_scale=None, rope_theta=None,
             non_blocking=True, block_tables=None, seq_lens=None, fixed_split_size=None, disable_split_kv=False,
             q_len_per_req=1, is_causal=None):
        assert pos_encoding_mode == "NONE" and q_data_type == kv_data_type and sm_scale is not None
        assert len(indices) <= len(self.bufs[1])
        for buf, x in zip(self.bufs, (indptr, indices, last_page_len)):   # as the real plan does under graphs
            buf[:len(x)].copy_(x)
        self.page, self.scale, self.dtype = page_size, sm_scale, q_data_type

    def run(self, q, paged_kv_cache, *args, q_scale=None, k_scale=None, v_scale=None, out=None, lse=None,
            return_lse=False, enable_pdl=None, window_left=None, sinks=None, q_len_per_req=None,
            skip_softmax_threshold_scale_factor=None, kv_cache_sf=None):
        assert q.dtype == self.dtype and isinstance(paged_kv_cache, tuple)
        indptr, indices, last = (b.tolist() for b in self.bufs)      # what this wrapper was planned with
        for s in range(q.shape[0]):
            pages = torch.tensor(indices[indptr[s]:indptr[s + 1]])
            n = (len(pages) - 1) * self.page + last[s]
            out[s] = _attend(q[s], paged_kv_cache, pages, n, self.page, "NHD", self.scale).to(out.dtype)
        LAST["out"] = out
        return out


def _fake_trtllm_batch_decode_with_kv_cache(
        query, kv_cache, workspace_buffer, block_tables, seq_lens, max_seq_len, bmm1_scale=1.0, bmm2_scale=1.0,
        window_left=-1, out=None, out_dtype=None, o_sf_scale=None, o_sf_vec_size=None, sinks=None, kv_layout="HND",
        enable_pdl=None, backend="auto", q_len_per_req=1, o_scale=1.0, mask=None, max_q_len=None, cum_seq_lens_q=None,
        skip_softmax_threshold_scale_factor=None, kv_cache_sf=None, uses_shared_paged_kv_idx=True, lse=None,
        return_lse=False, bmm1_scale_log2=None, multi_ctas_kv_counter_buffer=None, enable_block_sparse_attention=False,
        cp_world=1, cp_rank=0, causal_seqlens_kv_global=None, bf16q_fp8kv_transform_mode=None, request_order=None,
        request_order_plan=None):
    assert backend == "xqa" and kv_layout == "HND" and bmm2_scale == 1.0 and window_left == -1
    assert workspace_buffer.dtype == torch.uint8 and max_seq_len == int(seq_lens.max())
    k, v = kv_cache
    for s, n in enumerate(seq_lens.tolist()):
        out[s] = _attend(query[s], (k, v), block_tables[s], n, k.shape[2], "HND", bmm1_scale).to(out.dtype)
    LAST["out"] = out
    return out


@pytest.fixture
def fake_packages(monkeypatch):
    fai, fa3_calls = _fake_fa3()
    vllm, vfa = types.ModuleType("vllm"), types.ModuleType("vllm.vllm_flash_attn")
    vllm.vllm_flash_attn, vfa.flash_attn_interface = vfa, fai
    fi, dec = types.ModuleType("flashinfer"), types.ModuleType("flashinfer.decode")
    fi.__version__, fi.decode = "0.7.2.post1 (stand-in)", dec
    dec.BatchDecodeWithPagedKVCacheWrapper = _FakeDecodeWrapper
    dec.trtllm_batch_decode_with_kv_cache = _fake_trtllm_batch_decode_with_kv_cache
    for name, mod in {"vllm": vllm, "vllm.vllm_flash_attn": vfa, "vllm.vllm_flash_attn.flash_attn_interface": fai,
                      "flashinfer": fi, "flashinfer.decode": dec}.items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr(fi_peer, "WORKSPACE_BYTES", 1 << 16)
    _FakeDecodeWrapper.made = 0
    return fa3_calls


@pytest.mark.parametrize("spec", [RAGGED, MQA], ids=["gqa-ragged", "mqa-block32"])
@pytest.mark.parametrize("name", NEW)
def test_builder_calls_package_on_our_kv(fake_packages, name, spec):
    min_bytes = 3 * spec.blocks_needed * spec.block_bytes        # 3 rotation copies
    calls, note, err = PEERS[name](spec, min_bytes, check=True, device="cpu")
    assert len(calls) == 3 and note.endswith(", 3 copies") and "our kernel's KV contents" in note
    assert err < 1e-2, err
    # launch i reads rotation copy i (not copy 0 again: that would time warm L2)
    w, tables = build_rotation(spec, "cpu", min_bytes)
    for i, c in enumerate(calls):
        c()
        ref = reference_decode(w.query, w.key_cache, w.value_cache, tables[i], w.seq_lens, w.scale, spec.num_kv_heads)
        assert (LAST["out"].float() - ref).norm() / ref.norm() < 1e-2, i
    layout = "HND" if name == "xqa" else "NHD"
    if name == "fa3-packed":      # K and V: views of one [pages, P, KH, 2D] tensor, as vLLM's FLASH_ATTN cache
        D, KH, P = spec.head_size, spec.num_kv_heads, spec.block_size
        ks, vs, gap, el = fake_packages["kv"]
        # a size-1 KV-head dim (MQA here, 70b under TP8) gets the contiguous stride D, as vLLM sets it for TMA
        want = (P * KH * 2 * D, KH * 2 * D, 2 * D if KH > 1 else D, 1)
        assert "K|V packed per token" in note and ks == vs == want and gap == D * el
    else:
        assert f"{layout} pages of {spec.block_size}" in note
    if name == "fa3":
        ks, vs, _, _ = fake_packages["kv"]
        assert ks == vs and ks[2] == spec.head_size             # two tensors, rows of D
    if name.startswith("fa3"):
        m = fake_packages["meta"]
        assert m["batch_size"] == spec.num_seqs and m["max_seqlen_q"] == 1 and m["causal"]
        assert m["page_size"] == spec.block_size and m["num_splits"] == 32
        assert m["heads"] == (spec.num_heads, spec.num_kv_heads, spec.head_size) and m["dtype"] == torch.bfloat16
        assert m["max_seqlen_k"] == fake_packages["told"] == spec.max_seq_len
        # as a graph captured at max_model_len holds it: the call is told the bound, the metadata the lengths
        calls, note, _ = fa3(spec, min_bytes, check=False, device="cpu", packed=name == "fa3-packed", max_seqlen_k=32864)
        calls[0]()
        assert fake_packages["told"] == 32864 and fake_packages["meta"]["max_seqlen_k"] == spec.max_seq_len
        assert "max_seqlen_k 32864" in note
    if name.startswith("flashinfer"):
        assert _FakeDecodeWrapper.made == 3                    # one CUDA-graph plan per rotation copy
        assert ("tensor cores" in note) == LAST["tensor_cores"] == (name == "flashinfer-tc")
    _, _, unchecked = PEERS[name](spec, min_bytes, check=False, device="cpu")
    assert math.isnan(unchecked)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks what a machine without a GPU is told")
@pytest.mark.parametrize("name", NEW)
def test_builder_with_package_but_no_gpu(fake_packages, name):
    with pytest.raises(PeerUnavailable, match="needs a CUDA GPU"):
        PEERS[name](RAGGED, 0, check=True)


def test_xqa_page_sizes():
    from workbench.bench.peers.xqa import xqa_page
    assert [xqa_page(p) for p in (16, 32, 64, 128)] == [16, 32, 64, 128]
    with pytest.raises(PeerUnavailable, match="16/32/64/128"):
        xqa_page(8)


# ---- peer_status (doctor) ---------------------------------------------------------------------------

def test_peer_status_lists_every_peer_without_importing():
    rows = {r["name"]: r for r in peer_status()}
    assert set(rows) == set(PEERS)
    for r in rows.values():
        assert set(r) == {"name", "available", "version", "reason", "gpu", "provide"}
        assert (r["version"] is not None) == r["available"] and (r["reason"] is None) == r["available"]
    assert rows["sdpa"]["available"] and rows["sdpa"]["version"] == importlib.metadata.version("torch")
    for n in NEW:
        assert "scripts/bundle_peers.sh" in rows[n]["provide"]


def test_peer_status_finds_bundled_packages(tmp_path, monkeypatch):
    fa = tmp_path / "vllm" / "vllm_flash_attn"               # the bundle's layout: vllm/ has no __init__.py
    fa.mkdir(parents=True)
    (fa / "flash_attn_interface.py").write_text("raise ImportError('must not be imported')\n")
    (fa / "_vllm_fa3_C.abi3.so").write_bytes(b"")
    for pkg in ("flashinfer", "tvm_ffi"):
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    for m in ("vllm", "flashinfer", "tvm_ffi"):
        monkeypatch.delitem(sys.modules, m, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    rows = {r["name"]: r for r in peer_status()}
    assert all(rows[n]["available"] for n in NEW), rows
    if importlib.util.find_spec("vllm").origin is None:         # no full vLLM elsewhere on the path
        assert "peers bundle" in rows["fa3"]["version"] and str(fa) in rows["fa3"]["version"]
    assert not {"vllm", "flashinfer", "tvm_ffi"} & set(sys.modules)
    (fa / "_vllm_fa3_C.abi3.so").unlink()                      # FA2-only or stripped: FA3 is not there
    assert not {r["name"]: r for r in peer_status()}["fa3"]["available"]


# ---- the real packages, on a GPU host with the peers bundle active ----------------------------------

@pytest.mark.gpu
@pytest.mark.parametrize("name", NEW)
def test_real_peers_on_gpu(name):
    """Each real peer on a ragged and a uniform batch: checked against fp32 on our KV, and its calls
    captured as CUDA graphs by time_calls (the bench falls back to eager timing otherwise)."""
    from workbench.measure.gpuinfo import gpu_info
    from workbench.measure.timing import time_calls
    info = gpu_info(0)
    for spec in (WorkloadSpec(seq_lens=(1000, 17, 4096, 333)), WorkloadSpec.uniform(8, 4096)):
        try:
            calls, note, err = PEERS[name](spec, 4 * info.l2_bytes, check=True)
        except PeerUnavailable as e:
            pytest.skip(f"{name}: {e}")
        assert err < 1e-2, (name, spec.label, err, note)
        samples, method = time_calls(calls, info, launches=30, name=name)
        assert method.startswith("CUDA graph replay"), method
        assert len(samples) == 30 and min(samples) > 0


# ---- the read bound --------------------------------------------------------------------------------

def test_read_bound_forms_and_page_numbering():
    """Pages numbered page-major over the batch (empty sequences hold none); grids of 1-8 CTAs per SM,
    none larger than the tiles; a thread per 16 bytes of a tile; tiles it cannot take are refused."""
    from workbench.bench.peers.read import cu_pages, forms, tile_threads
    assert cu_pages([33, 0, 16, 1], 16) == [0, 3, 3, 4, 5]
    spec = WorkloadSpec.uniform(8, 1024)                 # 32/8 heads d128 block 16: 8 x 64 pages x 8 heads
    fs = forms(spec, 132)
    assert sorted({f.ctas for f in fs}) == [132, 264, 528, 1056] and {f.in_flight for f in fs} == {4, 8}
    assert {f.threads for f in fs} == {256} == {tile_threads(spec)}
    tiny = WorkloadSpec.uniform(1, 16, num_heads=4, num_kv_heads=1)
    assert {f.ctas for f in forms(tiny, 132)} == {1}     # one tile: one CTA
    with pytest.raises(PeerUnavailable, match="512 B to 8 KB"):
        tile_threads(WorkloadSpec.uniform(1, 64, head_size=256, block_size=32))


def test_read_bound_note_names_the_run_and_the_shapes_form():
    """The bench keeps the read's run note once and this shape's launch form as the row's variant."""
    from workbench.bench.peers.read import RUN_NOTE, ReadForm, note_for, split_note
    f = ReadForm(ctas=528, in_flight=4, threads=256)
    assert split_note(note_for(f, 3)) == (RUN_NOTE, "528 CTAs x 256 threads, 4 tiles in flight")


def test_read_bound_is_not_a_speedup_of_tuned():
    """The read row is a bound: every row's time over it is reported, and no 'tuned (-graph) vs read' speedup."""
    from workbench.bench.run import BenchRun, PeerResult, summary
    rows = ("tuned", "tuned-graph", "fa3", "read")
    res = [PeerResult(peer=p, shape=s, batch=1, context=1, kv_bytes=1, median_us=t)
           for s, ts in (("a", (10.0, 11.0, 12.0, 5.0)), ("b", (40.0, 40.0, 40.0, 20.0))) for p, t in zip(rows, ts)]
    sm = summary(BenchRun(gpu={}, ceiling={}, heads={}, dtype="bf16", block_size=16, suite={"name": "t"},
                          peers=list(rows), results=res, created=""))
    assert "read" not in sm["geomean_speedup_of_tuned"] and "read" not in sm["geomean_speedup_of_tuned_graph"]
    assert "read" not in sm["geomean_missing_shapes_of_tuned"]
    assert sm["geomean_over_read"]["tuned"] == pytest.approx(2.0)
    assert sm["geomean_over_read"]["fa3"] == pytest.approx(math.sqrt(2.4 * 2.0))


@pytest.mark.gpu
def test_read_bound_reads_every_tile_once_on_gpu(cubin_cache):
    """The read kernel's xor of every word it read equals the CPU's xor of the batch's pages (a tile
    skipped or read twice changes it) in every launch form, on a ragged batch with an empty sequence
    and a uniform one; then the bench builder's calls time as CUDA-graph replays."""
    from workbench.bench.peers.read import PagedRead, expected_xor, forms
    from workbench.measure.gpuinfo import gpu_info
    from workbench.measure.timing import time_calls
    info = gpu_info(0)
    for spec in (WorkloadSpec(seq_lens=(1000, 0, 17, 4096, 333)), WorkloadSpec.uniform(8, 1024)):
        w = build_workload(spec, "cuda", poison_padding=False)
        r = PagedRead(w.key_cache, w.value_cache, w.seq_lens, spec, info.arch)
        want = expected_xor(w.key_cache, w.value_cache, w.block_tables, spec.seq_lens, spec.block_size)
        for f in forms(spec, info.sm_count):
            assert r.xor_of(w.block_tables, f) == want, (spec.label, f)
        r.close()
        calls, note, err = PEERS["read"](spec, 4 * info.l2_bytes, check=True)
        assert math.isnan(err) and "a bound, not attention" in note
        # the calls hold what the kernel reads through raw pointers: block tables freed with the builder
        # would be handed out again (here filled with block ids far past the pool) and read as garbage
        import gc
        gc.collect()
        junk = [torch.full((spec.num_seqs, max(spec.blocks_per_seq)), 2 ** 30, dtype=torch.int32, device="cuda")
                for _ in range(64)]
        for c in calls:
            c()
        torch.cuda.synchronize()
        del junk
        samples, method = time_calls(calls, info, launches=30, name="read")
        assert method.startswith("CUDA graph replay") and min(samples) > 0


def test_doctor_lists_every_peer_and_vllm():
    """`workbench doctor` names each peer `bench` knows (with how to provide a missing one) and vLLM."""
    from workbench.bench.peers import PEERS
    from workbench.doctor import run_checks
    checks = {c.name: c for c in run_checks(probe_profilers=False)}
    assert "vllm" in checks
    for name in PEERS:
        c = checks[f"peer {name}"]
        assert c.status == "ok" or c.fix, (name, c)


@pytest.mark.parametrize("have,status,says", [("0.6.14", "ok", "vLLM's pin"), ("0.7.2.post1", "warn", "pins 0.6.14"),
                                              (None, "warn", "not installed")])
def test_doctor_says_whether_flashinfer_is_the_release_vllm_pins(tmp_path, monkeypatch, have, status, says):
    """vLLM 0.26.0 pins flashinfer-python==0.6.14 for its FLASHINFER backend; the bench's peers use 0.7.2.
    doctor reads both dist-infos (nothing imported) and says which one the e2e backend would get."""
    import importlib.metadata
    from workbench.doctor import vllm_flashinfer
    for name, version, requires in [("vllm", "0.26.0", ["torch==2.11.0", "flashinfer-python==0.6.14",
                                                        'flashinfer-python==0.6.14; extra == "x"']),
                                    ("flashinfer_python", have, [])]:
        if version is None:
            continue
        d = tmp_path / f"{name}-{version}.dist-info"
        d.mkdir()
        meta = [f"Metadata-Version: 2.1", f"Name: {name.replace('_', '-')}", f"Version: {version}"]
        d.joinpath("METADATA").write_text("\n".join(meta + [f"Requires-Dist: {r}" for r in requires]) + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    real = importlib.metadata.version

    def version(dist):           # the machine's own flashinfer (if any) must not answer for the fake site
        if dist == "flashinfer-python" and have is None:
            raise importlib.metadata.PackageNotFoundError(dist)
        return real(dist)
    monkeypatch.setattr(importlib.metadata, "version", version)
    c = vllm_flashinfer()
    assert c is not None and c.status == status and says in c.detail, c
    assert status == "ok" or "bundle_flashinfer_vllm.sh" in c.fix
