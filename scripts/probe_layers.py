"""Is it the engine's memory that slows FA3 in vLLM's decode graph? (perf-notes v25: FA3's kernels take
2.4-4.9 us a layer longer in the engine than in the bench, ours 0.45-1.3; not the packed layout, not
max_seqlen_k.)

  PROBE_MODEL=llama-3.1-8b LAYERS=32 POOL_GB=3 python3 scripts/probe_layers.py OUT.json "knobs" b1x1024 ...

vLLM gives every layer its own KV tensor, sized so all layers fill the memory left (GBs each), and
one block table shared by all layers; a fresh engine hands out block ids from the start. The bench
keeps rotation copies in one pool of >= 4x L2 with scattered pages. Each shape, FA3 (packed cache,
max_seqlen_k = GRAPH_LEN, as vLLM captures it) and ours (the variant `knobs`, scheduled at GRAPH_LEN
with per-sequence splits, as the exported graphs launch), each timed as one CUDA graph of a launch
per copy (bench --in-graph) over:
  bench  the bench's rotation (one pool, scattered pages: bench peer / time_variant);
  near   LAYERS pools, each just the blocks the batch needs, contiguous ids: layers side by side;
  far    LAYERS pools of POOL_GB each, the same ids at each pool's start: layers GBs apart, as in vLLM.
`far` vs `near` is the memory spread alone (TLB reach); `near` vs `bench` the page order.
"""
from __future__ import annotations

import json
import os
import statistics
import sys


def _pools(n_layers: int, blocks: int, shape_of, dtype, fill_blocks: int):
    import torch
    pools = []
    for _ in range(n_layers):
        t = torch.empty((blocks,) + shape_of, dtype=dtype, device="cuda")
        t[:fill_blocks].normal_()
        pools.append(t)
    return pools


def main() -> None:
    import torch

    from workbench.bench.peers.fa3 import MAX_SPLITS_UNDER_GRAPHS, fa3, load_fa3
    from workbench.config.profiles import heads_from_text
    from probe_common import load_knobs
    from workbench.measure.gpuinfo import gpu_info
    from workbench.measure.timing import time_calls, time_variant, widen_block_table
    from workbench.measure.workload import WorkloadSpec, torch_dtype

    out_path, knobs = sys.argv[1:3]
    heads = heads_from_text(os.environ.get("PROBE_MODEL", "llama-3.1-8b"))
    bound = int(os.environ.get("GRAPH_LEN", "32864"))
    n_layers = int(os.environ.get("LAYERS", "32"))
    pool_gb = float(os.environ.get("POOL_GB", "3"))
    info = gpu_info(0)
    (k,) = load_knobs(knobs, heads.head_size, info.arch, lambda v: v.scheduling())
    v = k.variant
    varlen, sched_meta, _ = load_fa3()
    H, KH, D = heads.num_heads, heads.num_kv_heads, heads.head_size
    rows = []

    def timed(calls, label, who, form, extra=None):
        s, method = time_calls(calls, info, launches=30, name=f"{who}-{form}-{label}", in_graph=True)
        s = sorted(s)
        row = {"shape": label, "who": who, "form": form, "median_us": statistics.median(s),
               "p10_us": s[len(s) // 10], "p90_us": s[(9 * len(s)) // 10], "launches_per_graph": len(calls),
               "method": method, **(extra or {})}
        rows.append(row)
        print(f"{label:10s} {who:5s} {form:6s} {row['median_us']:8.2f} µs [{row['p10_us']:.2f}-{row['p90_us']:.2f}]"
              f"  {len(calls)} launches", flush=True)

    for label in sys.argv[3:]:
        n, ctx = (int(x) for x in label[1:].split("x"))
        spec = WorkloadSpec.uniform(n, ctx, num_heads=H, num_kv_heads=KH, head_size=D)
        dt = torch_dtype(spec.dtype)
        P = spec.block_size
        need = spec.blocks_needed
        L = max(bound, ctx)
        # --- bench form: the bench's own rotation
        calls, _, _ = fa3(spec, 4 * info.l2_bytes, check=False, packed=True, max_seqlen_k=bound)
        timed(calls, label, "fa3", "bench")
        del calls
        t = time_variant(k, spec, info, launches=30, launch_len=bound, per_seq_split=True, in_graph=True)
        rows.append({"shape": label, "who": "ours", "form": "bench", "median_us": t.median_us, "p10_us": t.p10_us,
                     "p90_us": t.p90_us, "launches_per_graph": t.rotation_copies})
        print(f"{label:10s} ours  bench  {t.median_us:8.2f} µs [{t.p10_us:.2f}-{t.p90_us:.2f}]", flush=True)
        torch.cuda.empty_cache()
        # --- engine-like forms: one pool per layer, one shared block table with contiguous ids
        ids = torch.arange(1, need + 1, dtype=torch.int32)     # a fresh engine's first blocks (0 is vLLM's null block)
        table = torch.zeros(n, -(-L // P), dtype=torch.int32)
        at = 0
        for i, nb in enumerate(spec.blocks_per_seq):
            table[i, :nb] = ids[at:at + nb]
            at += nb
        table = table.cuda()
        ours_table = widen_block_table(table[:, : max(spec.blocks_per_seq)], L, P)
        seq_lens = torch.tensor(spec.seq_lens, dtype=torch.int32, device="cuda")
        q = torch.randn(n, H, D, device="cuda", dtype=dt)
        out = torch.empty_like(q)
        cu_q = torch.arange(n + 1, dtype=torch.int32, device="cuda")
        scale = D ** -0.5
        block_bytes_fa3 = P * KH * 2 * D * 2
        for form, blocks in (("near", need + 1), ("far", int(pool_gb * 2 ** 30) // block_bytes_fa3)):
            pools = _pools(n_layers, blocks, (P, KH, 2 * D), dt, need + 1)
            meta = sched_meta(batch_size=n, max_seqlen_q=1, max_seqlen_k=ctx, num_heads_q=H, num_heads_kv=KH,
                              headdim=D, cache_seqlens=seq_lens, qkv_dtype=dt, cu_seqlens_q=cu_q, page_size=P,
                              causal=True, window_size=(-1, -1), num_splits=MAX_SPLITS_UNDER_GRAPHS)

            def fcall(pool):
                kk, vv = pool[..., :D], pool[..., D:]

                def run() -> None:
                    varlen(q=q, k=kk, v=vv, out=out, cu_seqlens_q=cu_q, max_seqlen_q=1, seqused_k=seq_lens,
                           max_seqlen_k=L, softmax_scale=scale, causal=True, block_table=table,
                           scheduler_metadata=meta, fa_version=3, num_splits=MAX_SPLITS_UNDER_GRAPHS)
                return run
            timed([fcall(p) for p in pools], label, "fa3", form,
                  {"pool_bytes_per_layer": blocks * block_bytes_fa3, "layers": n_layers})
            assert torch.isfinite(out).all(), "FA3 output not finite"
            del pools
            torch.cuda.empty_cache()
            # ours: K [blocks, KH, D/x, P, x] and V [blocks, KH, D, P], each half the layer's bytes
            x = 8
            kp = _pools(n_layers, blocks, (KH, D // x, P, x), dt, need + 1)
            vp = _pools(n_layers, blocks, (KH, D, P), dt, need + 1)
            ws = k.step_workspace(seq_lens, H, KH, L, True)

            def ocall(kk, vv):
                def run() -> None:
                    k(out, q, kk, vv, KH, scale, ours_table, seq_lens, L, workspace=ws, per_seq_split=True)
                return run
            timed([ocall(a, c) for a, c in zip(kp, vp)], label, "ours", form,
                  {"pool_bytes_per_layer": blocks * block_bytes_fa3, "layers": n_layers})
            assert torch.isfinite(out).all(), "our output not finite"
            del kp, vp, ws
            torch.cuda.empty_cache()
    k.close()
    json.dump({"variant": v.name, "heads": heads.to_dict(), "gpu": info.to_dict(), "layers": n_layers,
               "pool_gb": pool_gb, "graph_len": bound, "rows": rows}, open(out_path, "w"), indent=1)
    print("\nshape       who    bench    near     far   far-near  far-bench")
    by = {(r["shape"], r["who"], r["form"]): r["median_us"] for r in rows}
    for label in sys.argv[3:]:
        for who in ("fa3", "ours"):
            a, bn, f = by[(label, who, "bench")], by[(label, who, "near")], by[(label, who, "far")]
            print(f"{label:10s} {who:5s} {a:7.2f} {bn:7.2f} {f:7.2f}  {f - bn:+7.2f}  {f - a:+7.2f}")


if __name__ == "__main__":
    main()
