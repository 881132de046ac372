"""What does fusing the step's KV-cache write into the decode kernel save? (perf-notes v26.)

vLLM runs a write kernel (reshape_and_cache) before each layer's attention: ~2.3-2.7 us plus a ~0.4 us
gap a layer in session 25's engine captures. With forward_includes_kv_cache_update the package's
decode kernel writes each sequence's new token itself, from the CTAs that read its last block.

  STUDY=h200-train DB=studies.db PROBE_MODEL=llama-3.1-8b python3 scripts/probe_fused_write.py OUT.json b1x1024 ...

Per shape, the study's graph pick (as the package's captured launches run it: bounded at GRAPH_LEN,
per-sequence split, scheduled), every row one CUDA graph of >= 16 launches back to back over cold
rotation copies (bench --in-graph), per launch:
  alone   the decode kernel only;
  sep     a write kernel, then the decode kernel (vLLM's order): the write is an index_put of the
          step's K and V into the copy's cache at each sequence's last slot (two small kernels; vLLM's
          reshape_and_cache is one), and a copy stand-in of the same bytes (bench --kv-write's);
  fused   the decode kernel handed k_new / v_new / slot_mapping (it writes the token, then reads it).
Each row is checked against the fp32 reference first (fused: with the new token poisoned in the cache).
FA3 (packed cache, max_seqlen_k = GRAPH_LEN) alone and after the copy stand-in where it loads.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
from types import SimpleNamespace


def main() -> None:
    import torch

    from workbench.bench.pickers import tuned_picker
    from workbench.config.profiles import heads_from_text
    from workbench.kernel.build import build_variant
    from workbench.kernel.launch import load
    from workbench.kernel.variant import graph_form
    from workbench.measure.gpuinfo import gpu_info
    from workbench.measure.reference import reference_decode
    from workbench.measure.timing import time_calls, widen_block_table
    from workbench.measure.workload import WorkloadSpec, build_rotation, build_workload, kv_write_standin, new_tokens

    out_path, labels = sys.argv[1], sys.argv[2:]
    heads = heads_from_text(os.environ.get("PROBE_MODEL", "llama-3.1-8b"))
    bound = int(os.environ.get("GRAPH_LEN", "32864"))
    info = gpu_info(0)
    pick, note = tuned_picker(os.environ["STUDY"], f"sqlite:///{os.environ['DB']}", heads, "bf16", 16, info.arch)
    print(note, flush=True)
    _, sched = graph_form(False, None)
    rows, checks = [], []

    def med(calls):
        s, _ = time_calls(calls, info, launches=30, in_graph=True)
        return statistics.median(s), (min(s), max(s))

    def with_pages(tok, P):
        """measure.workload.new_tokens' (k_new, v_new, slots) and its live rows' blocks and offsets."""
        k_new, v_new, slots = tok
        live = slots >= 0
        return k_new, v_new, slots, (slots // P)[live], (slots % P)[live]

    for label in labels:
        n, ctx = (int(x) for x in label[1:].split("x"))
        spec = WorkloadSpec.uniform(n, ctx, num_heads=heads.num_heads, num_kv_heads=heads.num_kv_heads,
                                    head_size=heads.head_size)
        L = max(bound, ctx)
        v = pick(SimpleNamespace(num_seqs=n, max_seq_len=L, graph=True)).graph_built(False, sched)
        b = build_variant(v, info.arch)
        assert b.ok, (v.name, b.error)
        k = load(b, 0)
        P, KH, D = spec.block_size, spec.num_kv_heads, spec.head_size
        # the check: the new token poisoned in the cache, handed to the launch
        cw = build_workload(WorkloadSpec(**{**spec.to_dict(), "seq_lens": tuple([ctx] * (n - 1) + [ctx // 3 + 1])}),
                            "cuda", poison_padding=False)
        ref = reference_decode(cw.query, cw.key_cache, cw.value_cache, cw.block_tables, cw.seq_lens, cw.scale, KH)
        kn, vn, sl, blk, off = with_pages(new_tokens(cw, cw.block_tables), P)
        cw.key_cache[blk, :, :, off, :] = float("nan")
        cw.value_cache[blk, :, :, off] = float("nan")
        o = torch.full_like(cw.query, float("nan"))
        ws = k.step_workspace(cw.seq_lens, spec.num_heads, KH, L, True)
        k(o, cw.query, cw.key_cache, cw.value_cache, KH, cw.scale, widen_block_table(cw.block_tables, L, P),
          cw.seq_lens, L, workspace=ws, per_seq_split=True, kv_new=(kn, vn, sl))
        torch.cuda.synchronize()
        err = ((o.float() - ref).norm() / ref.norm()).item()
        checks.append({"shape": label, "variant": v.name, "rel_err": err})
        del cw, ref, o
        w, tables = build_rotation(spec, "cuda", 4 * info.l2_bytes)
        wide = [widen_block_table(t, L, P) for t in tables]
        ws = k.step_workspace(w.seq_lens, spec.num_heads, KH, L, True)
        out = torch.empty_like(w.query)
        toks = [with_pages(new_tokens(w, t), P) for t in tables]
        standin = kv_write_standin(spec, "cuda")

        def ours(i, fused=False):
            kv = toks[i][:3] if fused else None

            def run() -> None:
                k(out, w.query, w.key_cache, w.value_cache, KH, w.scale, wide[i], w.seq_lens, L, workspace=ws,
                  per_seq_split=True, kv_new=kv)
            return run

        def scatter(i):
            kn, vn, _, blk, off = toks[i]
            k4 = kn.view(n, KH, D // 8, 8)

            def run() -> None:
                w.key_cache[blk, :, :, off, :] = k4
                w.value_cache[blk, :, :, off] = vn
            return run

        def pair(a, c):
            def run() -> None:
                a()
                c()
            return run
        r = {"shape": label, "variant": v.name, "kv_mb": spec.kv_bytes / 1e6}
        r["alone"], r["alone_range"] = med([ours(i) for i in range(len(tables))])
        r["fused"], r["fused_range"] = med([ours(i, True) for i in range(len(tables))])
        r["scatter_only"], _ = med([scatter(i) for i in range(len(tables))])
        r["sep_scatter"], _ = med([pair(scatter(i), ours(i)) for i in range(len(tables))])
        r["standin_only"], _ = med([standin] * 16)
        r["sep_standin"], _ = med([pair(standin, ours(i)) for i in range(len(tables))])
        k.close()
        del w, tables, wide, toks, ws
        torch.cuda.empty_cache()
        try:
            from workbench.bench.peers.fa3 import fa3
            calls, _, _ = fa3(spec, 4 * info.l2_bytes, check=False, packed=True, max_seqlen_k=bound)
            r["fa3"], _ = med(calls)
            r["fa3_sep_standin"], _ = med([pair(standin, c) for c in calls])
            del calls
        except Exception as e:                       # FA3 not carried: the A/B still stands
            r["fa3_error"] = str(e)[:200]
        rows.append(r)
        print(f"{label:9s} check {err:.1e}  alone {r['alone']:6.2f}  fused {r['fused']:6.2f} ({r['fused'] - r['alone']:+.2f})"
              f"  scatter+ours {r['sep_scatter']:6.2f} (scatter alone {r['scatter_only']:.2f})"
              f"  copy+ours {r['sep_standin']:6.2f} (copy alone {r['standin_only']:.2f})"
              + (f"  fa3 {r['fa3']:6.2f} copy+fa3 {r['fa3_sep_standin']:6.2f}" if "fa3" in r else "")
              + f"  µs  {v.name[:40]}", flush=True)
        torch.cuda.empty_cache()
    json.dump({"gpu": info.to_dict(), "heads": heads.to_dict(), "graph_len": bound, "study": os.environ["STUDY"],
               "checks": checks, "rows": rows}, open(out_path, "w"), indent=1)
    print(f"{'shape':9s} {'alone':>7s} {'fused':>7s} {'copy+ours':>9s} {'gain':>6s} {'fa3':>7s} {'copy+fa3':>8s}  "
          "(µs per launch, in-graph, cold L2; gain = copy+ours - fused)")
    for r in rows:
        print(f"{r['shape']:9s} {r['alone']:7.2f} {r['fused']:7.2f} {r['sep_standin']:9.2f} "
              f"{r['sep_standin'] - r['fused']:6.2f} {r.get('fa3', float('nan')):7.2f} {r.get('fa3_sep_standin', float('nan')):8.2f}")


if __name__ == "__main__":
    main()
