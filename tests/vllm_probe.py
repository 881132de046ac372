"""Run inside a venv holding one real vLLM wheel (0.26.0 or 0.33.0; installed --no-deps, CPU torch,
no GPU): check an exported backend against that vLLM's own classes and functions.
argv: EXPORT_DIR PACKAGE. Prints one JSON object {"vllm", "api", "checks": {name: {"ok", ...}}};
exits 1 when a check failed. Where vLLM's function would need a heavy import (its workers pull in
vllm.config and most of its dependencies), the function's own source is taken from the installed
wheel with ast and run as is, never a copy of it."""
import ast
import importlib
import importlib.metadata
import importlib.util
import inspect
import json
import math
import sys
import tomllib
import traceback
from dataclasses import replace
from pathlib import Path
from types import ModuleType, SimpleNamespace

out_dir, pkg_name = Path(sys.argv[1]), sys.argv[2]
sys.path.insert(0, str(out_dir))

import torch  # noqa: E402
import vllm  # noqa: E402
from vllm.v1.attention.backend import (AttentionBackend, AttentionCGSupport, AttentionImpl,  # noqa: E402
                                       AttentionMetadataBuilder, AttentionType, CommonAttentionMetadata)
from vllm.v1.attention.backends.registry import AttentionBackendEnum  # noqa: E402
from vllm.v1.kv_cache_interface import FullAttentionSpec  # noqa: E402

VLLM_ROOT = Path(importlib.util.find_spec("vllm").submodule_search_locations[0])
checks: dict[str, dict] = {}


def check(name):
    """Record a check: the function returns (ok, details); an exception fails it."""
    def wrap(fn):
        try:
            ok, details = fn()
            checks[name] = {"ok": bool(ok), **details}
        except Exception as e:  # noqa: BLE001 - a failed check, reported with its traceback
            checks[name] = {"ok": False, "error": f"{type(e).__name__}: {e}",
                            "traceback": traceback.format_exc()[-1500:]}
        return fn
    return wrap


def vllm_function(rel_path: str, name: str, namespace: dict):
    """vLLM's own function `name` from the installed wheel's source, without importing its module."""
    tree = ast.parse((VLLM_ROOT / rel_path).read_text())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    ns = dict(namespace)
    exec(compile(ast.Module(body=[fn], type_ignores=[]), f"vllm/{rel_path}", "exec"), ns)
    return ns[name]


def vllm_params(rel_path: str, name: str) -> list[str]:
    """Parameter names of vLLM's function `name` (its module may need Triton or a GPU to import)."""
    tree = ast.parse((VLLM_ROOT / rel_path).read_text())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    return [a.arg for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs]


pkg = importlib.import_module(pkg_name)
mod = importlib.import_module(f"{pkg_name}.vllm_backend")
B = next(c for c in vars(mod).values() if inspect.isclass(c) and issubclass(c, AttentionBackend)
         and c is not AttentionBackend)
Impl, Builder = B.get_impl_cls(), B.get_builder_cls()
doc = json.loads((out_dir / pkg_name / "dispatch.json").read_text())
HEADS = doc["config"]["heads"]
H, HKV, D = HEADS["num_heads"], HEADS["num_kv_heads"], HEADS["head_size"]
BLOCK = doc["config"]["block_size"]
DT = mod.DTYPE
X = 16 // torch.empty((), dtype=DT).element_size()


@check("classes")
def _():
    left = sorted(B.__abstractmethods__ | Impl.__abstractmethods__ | Builder.__abstractmethods__)
    ok = issubclass(Impl, AttentionImpl) and issubclass(Builder, AttentionMetadataBuilder) and not left \
        and B.get_name() == "CUSTOM"
    return ok, {"abstract_left": left, "name": B.get_name()}


@check("signatures")
def _():
    def params(f):
        return [(p.name, p.kind) for p in inspect.signature(f).parameters.values()]
    mismatch = []
    for base, cls in ((AttentionImpl, Impl), (AttentionMetadataBuilder, Builder), (AttentionBackend, B)):
        for klass in base.__mro__:                      # every method vLLM declares on the bases
            for name in vars(klass):
                if (name.startswith("__") and name != "__init__") or name not in cls.__dict__:
                    continue
                bf, of = getattr(base, name, None), getattr(cls, name)
                if not callable(bf):
                    continue
                try:
                    bp, op = params(bf), params(of)
                except (TypeError, ValueError):
                    continue
                # ours may add trailing optional parameters (sinks, **extra), never drop or rename the base's
                if op[:len(bp)] != bp and not (name == "__init__" and [n for n, _ in op[:len(bp)]] == [n for n, _ in bp]):
                    mismatch.append(f"{cls.__name__}.{name}: {bp} vs {op}")
    return not mismatch, {"mismatches": sorted(set(mismatch))}


@check("api")
def _():
    want = "shape" if "get_kv_cache_shape" in AttentionBackend.__abstractmethods__ else "spec"
    own = {n for n in ("get_kv_cache_shape", "get_kv_cache_stride_order", "customize_spec",
                       "supported_kv_cache_layouts") if n in B.__dict__}
    expect = {"shape": {"get_kv_cache_shape", "get_kv_cache_stride_order"},
              "spec": {"customize_spec", "supported_kv_cache_layouts"}}[want]
    return mod.VLLM_API == want and own == expect, {"api": mod.VLLM_API, "expected": want, "defines": sorted(own)}


@check("support")
def _():
    from vllm.platforms.interface import DeviceCapability
    cc = doc["config"]["arch"]
    major, minor = int(cc[3:-1] if cc.endswith("a") else cc[3:]) // 10, int(cc[3:-1] if cc.endswith("a") else cc[3:]) % 10
    sig = inspect.signature(B.validate_configuration)
    base = dict(head_size=D, dtype=DT, kv_cache_dtype="auto", block_size=BLOCK, use_mla=False, has_sink=False,
                use_sparse=False, use_mm_prefix=False, use_per_head_quant_scales=False,
                device_capability=DeviceCapability(major, minor), attn_type=AttentionType.DECODER)
    missing = [p.name for p in sig.parameters.values() if p.default is inspect.Parameter.empty
               and p.name not in base and p.name != "cls"]
    kw = {k: v for k, v in base.items() if k in sig.parameters}
    valid = B.validate_configuration(**kw)
    bad = {"head 64": dict(kw, head_size=64), "fp8 cache": dict(kw, kv_cache_dtype="fp8"),
           "sinks": dict(kw, has_sink=True), "block 8": dict(kw, block_size=8),
           "cc 8.0": dict(kw, device_capability=DeviceCapability(8, 0)),
           "encoder": dict(kw, attn_type=AttentionType.ENCODER_ONLY)}
    rejected = {k: B.validate_configuration(**v) for k, v in bad.items()}
    ok = not missing and valid == [] and all(rejected.values())
    return ok, {"valid": valid, "rejected": rejected, "missing_args": missing,
                "head_sizes": B.get_supported_head_sizes(), "block_sizes": B.get_supported_kernel_block_sizes(),
                "dtypes": [str(d) for d in B.supported_dtypes]}


# ---- metadata builder: full CUDA graphs ------------------------------------------------------
MAX_MODEL_LEN, MAX_SEQS, CAPTURE = 9000, 40, 48


class _Model:
    max_model_len = MAX_MODEL_LEN

    def get_num_attention_heads(self, parallel_config):
        return H

    def get_num_kv_heads(self, parallel_config):
        return HKV

    def get_head_size(self):
        return D


VLLM_CONFIG = SimpleNamespace(
    model_config=_Model(), scheduler_config=SimpleNamespace(max_num_seqs=MAX_SEQS),
    parallel_config=SimpleNamespace(decode_context_parallel_size=1, tensor_parallel_size=1),
    compilation_config=SimpleNamespace(max_cudagraph_capture_size=CAPTURE), speculative_config=None)
SPEC = FullAttentionSpec(block_size=BLOCK, num_kv_heads=HKV, head_size=D, dtype=DT)


def common(query_lens, seq_lens, max_seq_len, width=None):
    """CommonAttentionMetadata as vLLM's runners build it (padding requests: query and sequence
    length 0, block-table rows of the null block 0)."""
    qsl = torch.tensor([0, *query_lens], dtype=torch.int32).cumsum(0, dtype=torch.int32)
    n = len(query_lens)
    width = width or math.ceil(MAX_MODEL_LEN / BLOCK)
    return CommonAttentionMetadata(
        query_start_loc=qsl.clone(), query_start_loc_cpu=qsl, seq_lens=torch.tensor(seq_lens, dtype=torch.int32),
        num_reqs=n, num_actual_tokens=int(qsl[-1]), max_query_len=max(query_lens), max_seq_len=max_seq_len,
        block_table_tensor=torch.zeros(n, width, dtype=torch.int32), slot_mapping=torch.zeros(int(qsl[-1]), dtype=torch.int64))


_builder = []


def builder():
    if not _builder:
        _builder.append(Builder(SPEC, ["model.layers.0.self_attn.attn"], VLLM_CONFIG, torch.device("cpu")))
    return _builder[0]


@check("cudagraph_support")
def _():
    level = Builder.get_cudagraph_support(VLLM_CONFIG, SPEC)
    own = "build_for_cudagraph_capture" in Builder.__dict__
    return level.value >= AttentionCGSupport.UNIFORM_SINGLE_TOKEN_DECODE.value and own, \
        {"level": level.name, "overrides_build_for_cudagraph_capture": own}


@check("builder_workspace")
def _():
    b = builder()
    rows = max(MAX_SEQS, CAPTURE)
    want = pkg.workspace_floats(rows, H, HKV, MAX_MODEL_LEN, D)
    ws, ctr = b.workspace, b.counters
    ok = (b.reorder_batch_threshold == 1 and ws is not None and ws.dtype == torch.float32 and ws.numel() == want > 0
          and ctr.dtype == torch.int32 and ctr.numel() == rows * H and int(ctr.abs().sum()) == 0)
    return ok, {"workspace_floats": None if ws is None else ws.numel(), "expected": want,
                "counters": None if ctr is None else ctr.numel(), "reorder_batch_threshold": b.reorder_batch_threshold}


@check("capture_metadata")
def _():
    b = builder()
    # a decode batch captured at size 8: 6 requests, 2 padding ones; vLLM passes max_seq_len =
    # max_model_len at capture (and the test also hands it a smaller one: the builder must not trust it)
    got = {}
    for given in (MAX_MODEL_LEN, 7):
        cm = common([1] * 6 + [0, 0], [1] * 6 + [0, 0], given)
        md = b.build_for_cudagraph_capture(cm)
        got[given] = md
    md = got[MAX_MODEL_LEN]
    again = b.build_for_cudagraph_capture(common([1] * 8, [1] * 8, MAX_MODEL_LEN))
    # the captured launch takes its batch row's graph pick (`workbench refine`): one set for batches
    # 5-23 only (the table's last variant), and none beside it, must move batch 8 and not batch 30
    disp = importlib.import_module(f"{pkg_name}.dispatch")
    saved, last = disp.GRAPH_BUCKETS, len(disp.VARIANTS) - 1
    try:
        disp.GRAPH_BUCKETS = [[5, 24, last]]
        graph8 = b.build_for_cudagraph_capture(common([1] * 8, [1] * 8, MAX_MODEL_LEN)).decode_variant
        graph30 = b.build_for_cudagraph_capture(common([1] * 30, [1] * 30, MAX_MODEL_LEN)).decode_variant
    finally:
        disp.GRAPH_BUCKETS = saved
    ok = (md.num_decodes == 8 and md.num_prefills == 0 and md.decode_max_seq_len == MAX_MODEL_LEN
          and got[7].decode_max_seq_len == MAX_MODEL_LEN
          and md.decode_variant == pkg.pick_graph_variant(8, MAX_MODEL_LEN) >= 0
          and graph8 == last and graph30 == pkg.pick_variant(30, MAX_MODEL_LEN)
          and md.workspace is b.workspace and md.counters is b.counters
          and again.workspace.data_ptr() == md.workspace.data_ptr() and again.counters.data_ptr() == md.counters.data_ptr()
          and md.seq_lens is not None and md.block_table.shape[0] == 8)
    return ok, {"num_decodes": md.num_decodes, "decode_max_seq_len": md.decode_max_seq_len,
                "variant": md.decode_variant, "table_pick": pkg.pick_variant(8, MAX_MODEL_LEN),
                "graph_pick_set": [graph8, graph30, last]}


@check("eager_metadata")
def _():
    b = builder()
    md = b.build(0, common([1, 1, 1, 5, 7], [40, 900, 3, 12, 7], 900))
    md2 = b.build(0, common([1, 1], [10, 20], 20))
    pre = b.build(0, common([4, 1], [4, 9], 9))             # a prefill first: no decodes
    ok = (md.num_decodes == 3 and md.num_prefills == 2 and md.decode_variant == -1 and md.decode_max_seq_len == 900
          and md.workspace is b.workspace and md2.num_decodes == 2 and md2.num_prefills == 0
          and pre.num_decodes == 0 and pre.num_prefills == 2)
    return ok, {"mixed": [md.num_decodes, md.num_prefills], "decode_only": [md2.num_decodes, md2.num_prefills],
                "prefill_first": [pre.num_decodes, pre.num_prefills]}


def replace_ns(ns: SimpleNamespace, **kw) -> SimpleNamespace:
    return SimpleNamespace(**{**vars(ns), **kw})


@check("eager_plan")
def _():
    """Eager steps plan a ragged decode batch at its own bound from vLLM's CPU upper bounds of the
    lengths (no device sync), into a buffer apart from the graphs' schedule; uniform batches, steps
    vLLM replays from a graph, and launches the package does not schedule stay plain."""
    mod = sys.modules[f"{pkg_name}.vllm_backend"]
    saved = {k: getattr(mod, k) for k in ("is_scheduled", "plan", "scheduled")}
    calls, sched_ok = [], {"value": True, "only": None}
    disp = importlib.import_module(f"{pkg_name}.dispatch")
    saved_graph = disp.GRAPH_BUCKETS
    try:
        mod.scheduled = lambda: True
        mod.is_scheduled = lambda n, h, hkv, bound, v: sched_ok["value"] and sched_ok["only"] in (None, v)
        mod.plan = lambda sched, lens, n, h, hkv, bound, v: calls.append((sched, lens.tolist(), n, h, hkv, bound, v))
        cfg = replace_ns(VLLM_CONFIG, compilation_config=SimpleNamespace(max_cudagraph_capture_size=8,
                                                                         cudagraph_capture_sizes=[1, 2, 4, 8]))
        b = Builder(SPEC, ["model.layers.0.self_attn.attn"], cfg, torch.device("cpu"))

        def step(qlens, lens, upper=True):
            cm = common(qlens, lens, max(lens))
            if upper:
                cm = replace(cm, seq_lens_cpu_upper_bound=torch.tensor(lens, dtype=torch.int32))
            calls.clear()
            return b.build(0, cm), list(calls)
        lens = [8000, 100, 300, 50, 2000, 64, 900, 128, 40, 70]        # 10 decodes: past the largest graph
        md, c = step([1] * 10, lens)
        planned = (len(c) == 1 and c[0][0] is b.eager_schedule and c[0][1] == lens and c[0][2:6] == (10, H, HKV, 8000)
                   and c[0][6] == md.decode_variant == mod.pick_graph_variant(10, b.max_model_len) and md.per_seq_split
                   and md.decode_max_seq_len == 8000 and md.schedule is b.eager_schedule
                   and b.eager_schedule is not b.schedule)
        # the batch size's graph pick (refined on ragged batches) where it schedules, else the table's pick
        own = mod.pick_variant(10, 8000)
        other = next((i for i in range(len(disp.VARIANTS)) if i != own), own)
        disp.GRAPH_BUCKETS = [[5, 24, other]]
        graph_pick, cg = step([1] * 10, lens)
        sched_ok["only"] = own
        table_pick, ct = step([1] * 10, lens)
        sched_ok["only"] = None
        disp.GRAPH_BUCKETS = saved_graph
        by_graph = (graph_pick.decode_variant == other and bool(ct) and ct[0][6] == table_pick.decode_variant == own
                    and (other != own or len(disp.VARIANTS) == 1))
        mixed, cm_ = step([1, 1, 1, 5], [6000, 30, 90, 12])            # a mixed step: its 3 decodes
        mixed_ok = len(cm_) == 1 and cm_[0][1] == [6000, 30, 90] and mixed.decode_max_seq_len == 6000
        uni, cu = step([1] * 10, [3000] * 10)                          # uniform: plain
        replay, cr = step([1] * 4, [8000, 10, 20, 30])                 # a graph replays it: not planned eagerly
        noub, cn = step([1] * 10, lens, upper=False)                   # no CPU bounds: plain, no sync
        sched_ok["value"] = False
        unsched, cs = step([1] * 10, lens)                             # the pick is not scheduled: plain
        plain = all(not m.per_seq_split and m.decode_variant == -1 for m in (uni, noub, unsched))
        ok = planned and by_graph and mixed_ok and plain and not cu and not cn and not cs and \
            not replay.per_seq_split and all(x[0] is b.schedule for x in cr)
        return ok, {"planned": planned, "graph_pick_first": by_graph, "mixed": mixed_ok, "uniform_calls": len(cu),
                    "replayed_calls": len(cr), "no_upper_bound_calls": len(cn), "unscheduled_calls": len(cs),
                    "plain": plain}
    finally:
        disp.GRAPH_BUCKETS = saved_graph
        for k, v in saved.items():
            setattr(mod, k, v)


# ---- KV-cache layout: the tensor vLLM hands to forward, and our views of it -----------------
NB = 6


def views_ok(kv: torch.Tensor) -> dict:
    """split_kv_cache of one layer's cache: vLLM's 5-D K / 4-D V shapes, each (block, kv head) tile
    one contiguous run (as the kernels and the ops' checks want), K and V sharing block and head
    strides, and no two elements of the views on the same bytes."""
    k, v = mod.split_kv_cache(kv, HKV, D)
    shapes = tuple(k.shape) == (NB, HKV, D // X, BLOCK, X) and tuple(v.shape) == (NB, HKV, D, BLOCK)
    tiles = k.stride()[2:] == (BLOCK * X, X, 1) and v.stride()[2:] == (BLOCK, 1) and k.stride(1) == D * BLOCK
    shared = k.stride(0) == v.stride(0) and k.stride(1) == v.stride(1)
    es = kv.element_size()
    aligned = (k.data_ptr() % 16 == 0 and v.data_ptr() % 16 == 0 and (k.stride(0) * es) % 16 == 0
               and (k.stride(1) * es) % 16 == 0)
    return {"shapes": shapes, "tiles": tiles, "shared_strides": shared, "aligned": aligned,
            "block_stride": k.stride(0), "k": k, "v": v}


def disjoint(raw: torch.Tensor, kvs: list[torch.Tensor]) -> bool:
    """Write 1 through every K view and 2 through every V view of a zeroed buffer: each element
    must land on bytes of its own (counts add up) and nothing else changes."""
    raw.zero_()
    n = 0
    for kv in kvs:
        k, v = mod.split_kv_cache(kv, HKV, D)
        k.fill_(1)
        v.fill_(2)
        n += k.numel()
    flat = raw.view(DT)
    return int((flat == 1).sum()) == n and int((flat == 2).sum()) == n


def summarize(cases: dict) -> tuple[bool, dict]:
    ok = all(c["shapes"] and c["tiles"] and c["shared_strides"] and c["aligned"] and c["disjoint"]
             for c in cases.values())
    return ok, {"cases": {k: {kk: vv for kk, vv in c.items() if kk not in ("k", "v")} for k, c in cases.items()}}


if mod.VLLM_API == "shape":
    @check("kv_layout")
    def _():
        from vllm.utils.torch_utils import get_dtype_size
        from vllm.v1.kv_cache_interface import AttentionSpec
        # both of vLLM 0.26's runners reshape the raw buffer with this function
        # (gpu_model_runner._reshape_kv_cache_tensors, gpu/attn_utils._reshape_kv_cache)
        reshape = vllm_function("v1/worker/gpu/attn_utils.py", "_reshape_attention_kv_cache",
                                {"torch": torch, "prod": math.prod, "get_dtype_size": get_dtype_size,
                                 "AttentionSpec": AttentionSpec})
        shape = B.get_kv_cache_shape(NB, BLOCK, HKV, D, cache_dtype_str="auto")
        order = B.get_kv_cache_stride_order()
        page = SPEC.page_size_bytes
        cases = {}
        # plain: one raw tensor per layer
        raw = torch.zeros(NB * page, dtype=torch.int8)
        kv = reshape(raw, SPEC, shape, order, NB, None)
        cases["plain"] = {**views_ok(kv), "disjoint": disjoint(raw, [kv]), "shape": list(kv.shape)}
        # padded pages (hybrid models): a strided block dimension
        padded = replace(SPEC, page_size_padded=page + 4096)
        raw = torch.zeros(NB * padded.page_size_bytes, dtype=torch.int8)
        kv = reshape(raw, padded, shape, order, NB, None)
        cases["padded_pages"] = {**views_ok(kv), "disjoint": disjoint(raw, [kv])}
        # packed: three layers share each block's bytes (offset, block_stride)
        raw = torch.zeros(NB * 3 * page, dtype=torch.int8)
        kvs = [reshape(raw, SPEC, shape, order, NB, (i * page, 3 * page)) for i in range(3)]
        cases["packed_layers"] = {**views_ok(kvs[1]), "disjoint": disjoint(raw, kvs)}
        ok, det = summarize(cases)
        block_dim = B.get_kv_cache_block_dim(BLOCK, HKV, D)
        by_stride = B.indexes_kv_by_block_stride()
        layered = B.get_kv_cache_stride_order(include_num_layers_dimension=True)
        ok = ok and block_dim == 0 and by_stride and sorted(layered) == list(range(len(shape) + 1)) and layered[0] != 0
        return ok, {**det, "shape": list(shape), "stride_order": list(order), "layered_order": list(layered),
                    "block_dim": block_dim, "indexes_kv_by_block_stride": by_stride}
else:
    @check("kv_layout")
    def _():
        from vllm.v1.kv_cache_interface import KVCacheTensor, compute_layout_strides, create_kv_cache_views
        from vllm.v1.kv_cache_layout import KVCacheLayout
        spec = B.customize_spec(SPEC)
        cases = {}
        layouts = list(B.supported_kv_cache_layouts())
        L = 3
        for layout in layouts:
            for pad in (0, 4096):
                if pad and not layout.is_block_compact:
                    continue                         # vLLM pads pages only in block-compact layouts
                s = replace(spec, page_size_padded=spec.page_size_bytes + pad) if pad else spec
                # as vLLM's kv_cache_planning.get_kv_cache_config_from_groups places one group of L layers
                per_block = L * s.page_size_bytes
                fixed = per_block if layout.is_block_outermost else (s.page_size_bytes if pad else None)
                layer_stride, block_stride, *_ = compute_layout_strides(s, NB, L, layout,
                                                                        fixed_strides=(None, fixed, None, None, None))
                t = KVCacheTensor(size=NB * per_block, layers=[f"l{i}" for i in range(L)], layer_stride=layer_stride,
                                  block_stride=block_stride)
                raw = torch.zeros(t.size, dtype=torch.int8)
                kvs = create_kv_cache_views(raw, s, NB, layout, t)
                cases[f"{layout.name}{'+pad' if pad else ''}"] = {**views_ok(kvs[1]), "disjoint": disjoint(raw, kvs)}
        ok, det = summarize(cases)
        twice = B.customize_spec(spec) == spec
        # the layouts left out really do not work: the page halves are not contiguous there
        refused = {}
        for layout in (KVCacheLayout.LBNHC, KVCacheLayout.BLNHC):
            layer_stride, block_stride, *_ = compute_layout_strides(spec, NB, 1, layout)
            t = KVCacheTensor(size=NB * spec.page_size_bytes, layers=["l0"], layer_stride=layer_stride,
                              block_stride=block_stride)
            kv = create_kv_cache_views(torch.zeros(t.size, dtype=torch.int8), spec, NB, layout, t)[0]
            try:
                mod.split_kv_cache(kv, HKV, D)
                refused[layout.name] = False
            except RuntimeError:
                refused[layout.name] = True
        ok = ok and twice and layouts and all(refused.values()) and not set(refused) & {x.name for x in layouts}
        return ok, {**det, "layouts": [x.name for x in layouts], "spec": {"num_head_slots": spec.num_head_slots,
                    "state_content_bytes": spec.state_content_bytes, "page_size_bytes": spec.page_size_bytes},
                    "customize_twice_same": twice, "unsupported_layouts_fail": refused}


def a_kv_cache() -> torch.Tensor:
    """One layer's cache of NB blocks as this vLLM would hand it to forward (plain allocation)."""
    page = SPEC.page_size_bytes
    raw = torch.zeros(NB * page, dtype=torch.int8)
    if mod.VLLM_API == "shape":
        shape, order = B.get_kv_cache_shape(NB, BLOCK, HKV, D), B.get_kv_cache_stride_order()
        return raw.view(DT).view(tuple(shape[i] for i in order)).permute(*[order.index(i) for i in range(len(order))])
    from vllm.v1.kv_cache_interface import KVCacheTensor, compute_layout_strides, create_kv_cache_views
    spec = B.customize_spec(SPEC)
    layout = B.supported_kv_cache_layouts()[0]
    ls, bs, *_ = compute_layout_strides(spec, NB, 1, layout)
    return create_kv_cache_views(raw, spec, NB, layout, KVCacheTensor(size=raw.numel(), layers=["l"],
                                                                      layer_stride=ls, block_stride=bs))[0]


# ---- the impl: vLLM's constructor arguments, forward's plumbing (kernels recorded, not run) --
ARGS = (H, D, D ** -0.5, HKV, None, None, "auto", None, AttentionType.DECODER, None)   # as Attention.__init__ passes them


@check("impl_arguments")
def _():
    accepted, rejected = {}, {}
    for label, kw in {"none": {}, "sinks=None": {"sinks": None}, "chunk_lookback=-1": {"chunk_lookback": -1},
                      "use_alibi_sqrt=False": {"use_alibi_sqrt": False}, "unknown=None": {"something_new": None}}.items():
        try:
            Impl(*ARGS, **kw)
            accepted[label] = True
        except Exception as e:  # noqa: BLE001
            accepted[label] = f"{type(e).__name__}: {e}"
    bad = {"sinks": ({}, {"sinks": torch.zeros(H)}), "use_alibi_sqrt": ({}, {"use_alibi_sqrt": True}),
           "chunk_lookback": ({}, {"chunk_lookback": 128}), "unknown": ({}, {"something_new": 3}),
           "sliding_window": ({5: 4096}, {}), "fp8": ({6: "fp8"}, {}), "head 64": ({1: 64}, {}),
           "encoder": ({8: AttentionType.ENCODER_ONLY}, {})}
    for label, (pos, kw) in bad.items():
        args = list(ARGS)
        for i, val in pos.items():
            args[i] = val
        try:
            Impl(*args, **kw)
            rejected[label] = False
        except (NotImplementedError, ValueError):
            rejected[label] = True
    ok = all(v is True for v in accepted.values()) and all(rejected.values()) and Impl.supports_dcp is False
    return ok, {"accepted": accepted, "rejected": rejected, "supports_dcp": Impl.supports_dcp}


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, *args, **kw):
        self.calls.append((args, kw))


@check("forward_plumbing")
def _():
    impl = Impl(*ARGS)
    layer = SimpleNamespace(_k_scale=torch.ones(()), _v_scale=torch.ones(()))
    kv = a_kv_cache()
    b = builder()
    dec = Recorder()
    pre = Recorder()
    wr = Recorder()                              # vLLM's KV-cache write: the prefill rows only
    fake_pp = ModuleType("vllm.v1.attention.ops.prefix_prefill")
    fake_pp.context_attention_fwd = pre
    fake_wr = ModuleType("vllm.v1.attention.ops.triton_reshape_and_cache_flash")
    fake_wr.triton_reshape_and_cache_flash = wr
    saved_decode, saved_pp, saved_wr = mod.decode, sys.modules.get(fake_pp.__name__), sys.modules.get(fake_wr.__name__)
    mod.decode, sys.modules[fake_pp.__name__], sys.modules[fake_wr.__name__] = dec, fake_pp, fake_wr
    try:
        # profiling run: no metadata
        o = torch.full((4, H, D), 7.0, dtype=DT)
        impl.forward(layer, torch.zeros(4, H, D, dtype=DT), torch.zeros(4, HKV, D, dtype=DT),
                     torch.zeros(4, HKV, D, dtype=DT), kv, None, o)
        profile_zero = bool((o == 0).all())
        # a captured decode batch of 8 (6 real, 2 padding); handed a small max_seq_len, so that a
        # launch bound taken from it rather than from the capture's max_model_len shows
        md = b.build_for_cudagraph_capture(common([1] * 6 + [0, 0], [1] * 6 + [0, 0], 7))
        q, o = torch.randn(8, H, D).to(DT), torch.zeros(8, H, D, dtype=DT)
        impl.forward(layer, q, torch.zeros(8, HKV, D, dtype=DT), torch.zeros(8, HKV, D, dtype=DT), kv, md, o)
        (a, kw), = dec.calls
        out, qq, kc, vc, nkv, scale, bt, sl, msl = a
        captured = {"out_is_output": out.data_ptr() == o.data_ptr() and tuple(out.shape) == (8, H, D),
                    "query_rows": qq.shape[0], "query_no_copy": qq.data_ptr() == q.data_ptr(),
                    "block_table_rows": bt.shape[0], "seq_lens": sl.numel(), "max_seq_len": msl,
                    "variant": kw.get("variant"), "workspace": kw.get("workspace") is b.workspace,
                    "counters": kw.get("counters") is b.counters, "kv_views": tuple(kc.shape) == (NB, HKV, D // X, BLOCK, X)}
        # the KV-cache write fused into the decode launch: its 8 rows' new K, V and slots (6 from vLLM's
        # slot_mapping, the 2 padding rows -1), in the builder's persistent buffer the graph replays
        kn, vn, slots = kw.get("kv_new") or (None, None, None)
        captured["kv_new"] = None if kn is None else [kn.shape[0], vn.shape[0], slots.tolist()]
        captured["slots_persistent"] = slots is not None and slots.data_ptr() == b.slots.data_ptr()
        cap_ok = (captured["out_is_output"] and captured["query_no_copy"] and captured["query_rows"] == 8
                  and captured["block_table_rows"] == 8 and captured["seq_lens"] == 8 and msl == MAX_MODEL_LEN
                  and captured["variant"] == md.decode_variant >= 0 and captured["workspace"] and captured["counters"]
                  and captured["kv_views"] and not pre.calls and not wr.calls
                  and captured["kv_new"] == [8, 8, [0] * 6 + [-1, -1]] and captured["slots_persistent"]
                  and B.forward_includes_kv_cache_update)
        # an eager mixed batch: 3 decodes, then prefills of 5 and 7 tokens (15 tokens, 2 of padding)
        dec.calls.clear()
        md = b.build(0, common([1, 1, 1, 5, 7], [40, 900, 3, 12, 7], 900))
        q, o = torch.randn(17, H, D).to(DT), torch.zeros(17, H, D, dtype=DT)
        key, val = torch.randn(17, HKV, D).to(DT), torch.randn(17, HKV, D).to(DT)
        md.num_actual_tokens = 15
        impl.forward(layer, q, key, val, kv, md, o)
        (a, kw), = dec.calls
        (pa, pkw), = pre.calls
        (wa, wkw), = wr.calls                    # the 12 prefill tokens' K and V: vLLM's write
        wnames = vllm_params("v1/attention/ops/triton_reshape_and_cache_flash.py", "triton_reshape_and_cache_flash")
        wbound = dict(zip(wnames, wa)) | wkw
        names = vllm_params("v1/attention/ops/prefix_prefill.py", "context_attention_fwd")
        binds = len(pa) <= len(names) and set(pkw) <= set(names)
        bound = dict(zip(names, pa)) | pkw
        eager = {"decode_rows": a[1].shape[0], "decode_max_seq_len": a[8], "decode_variant": kw.get("variant"),
                 "prefill_q_rows": bound["q"].shape[0], "prefill_k_rows": bound["k"].shape[0],
                 "b_start_loc": bound["b_start_loc"].tolist(), "b_seq_len": bound["b_seq_len"].tolist(),
                 "b_loc_rows": bound["b_loc"].shape[0], "binds_to_vllm_signature": binds,
                 "out_rows_from": (bound["o"].data_ptr() - o.data_ptr()) // (H * D * o.element_size()),
                 "decode_kv_new_rows": [t.shape[0] for t in kw.get("kv_new") or ()],
                 "prefill_write_rows": [wbound["key"].shape[0], wbound["value"].shape[0], wbound["slot_mapping"].numel()]}
        # a decode-only batch whose token count is padded past its requests (piecewise graphs pad
        # tokens): one query row per request still
        dec.calls.clear()
        md = b.build(0, common([1, 1], [10, 20], 20))
        md.num_actual_tokens = 4
        impl.forward(layer, q[:4], key[:4], val[:4], kv, md, o[:4])
        (a2, _), = dec.calls
        eager["padded_decode_rows"] = [a2[1].shape[0], a2[0].shape[0], a2[6].shape[0], a2[7].numel()]
        eager_ok = (eager["padded_decode_rows"] == [2, 2, 2, 2] and binds and eager["decode_rows"] == 3
                    and a[8] == 900 and kw.get("variant") == -1
                    and eager["prefill_q_rows"] == 12 and eager["prefill_k_rows"] == 12
                    and eager["b_start_loc"] == [0, 5, 12] and eager["b_seq_len"] == [12, 7] and eager["b_loc_rows"] == 2
                    and eager["out_rows_from"] == 3 and eager["decode_kv_new_rows"] == [3, 3, 3]
                    and eager["prefill_write_rows"] == [12, 12, 12])
    finally:
        mod.decode = saved_decode
        for name, saved in ((fake_pp.__name__, saved_pp), (fake_wr.__name__, saved_wr)):
            if saved is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = saved
    return profile_zero and cap_ok and eager_ok, {"profile_zero": profile_zero, "captured": captured, "eager": eager}


@check("kv_update_plumbing")
def _():
    impl = Impl(*ARGS)
    layer = SimpleNamespace(_k_scale=torch.ones(()), _v_scale=torch.ones(()))
    rec = Recorder()
    name = "vllm.v1.attention.ops.triton_reshape_and_cache_flash"
    fake = ModuleType(name)
    fake.triton_reshape_and_cache_flash = rec
    saved = sys.modules.get(name)
    sys.modules[name] = fake
    try:
        kv = a_kv_cache()
        impl.do_kv_cache_update(layer, torch.zeros(5, HKV, D, dtype=DT), torch.zeros(5, HKV, D, dtype=DT), kv,
                                torch.arange(5))
    finally:
        if saved is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = saved
    (a, kw), = rec.calls
    names = vllm_params("v1/attention/ops/triton_reshape_and_cache_flash.py", "triton_reshape_and_cache_flash")
    bound = dict(zip(names, a)) | kw
    ok = (len(a) <= len(names) and set(kw) <= set(names) and bound["key_cache"].dim() == 5
          and bound["value_cache"].dim() == 4 and bound["kv_cache_dtype"] == "auto")
    return ok, {"params": names, "key_cache": list(bound["key_cache"].shape)}


@check("registration")
def _():
    # the entry point vLLM would load, from the package's own metadata
    pp = tomllib.loads((out_dir / "pyproject.toml").read_text())
    (ep_name, ep_value), = pp["project"]["entry-points"]["vllm.general_plugins"].items()
    register = importlib.metadata.EntryPoint(name=ep_name, value=ep_value, group="vllm.general_plugins").load()
    register()
    first = AttentionBackendEnum.CUSTOM.get_path()
    register()                                   # vLLM runs plugins in every process: idempotent
    importlib.reload(importlib.import_module(f"{pkg_name}.plugin")).register()   # a fresh module state too
    path = AttentionBackendEnum.CUSTOM.get_path()
    ok = first == path == f"{pkg_name}.vllm_backend.{B.__name__}" and AttentionBackendEnum.CUSTOM.get_class() is B
    return ok, {"registered_path": path}


failed = sorted(k for k, v in checks.items() if not v["ok"])
print(json.dumps({"vllm": vllm.__version__, "api": mod.VLLM_API, "failed": failed, "checks": checks}, default=str))
sys.exit(1 if failed else 0)
