"""Do cold TLBs make FA3 slower inside vLLM's decode step? (perf-notes v25.)

Session 25's engine captures against session 26's bench captures, same grids and registers: FA3's
main kernel runs 9.86 / 17.31 / 42.38 us in the engine at b1 / b8 / b32 x 1k, 7.81 / 13.92 / 38.34 in
the bench (+26 / +24 / +11%); ours 7.14 / 16.80 / 39.23 vs 6.72 / 15.52 / 38.40 (+6 / +8 / +2%). Not
the packed cache, not max_seqlen_k, not the layers' spread (probe_layers.py: its graphs replay the
same 32 regions, so their translations stay cached). In the engine every layer's GEMMs stream ~440 MB
of weights between two attention calls, which evicts the translations of the KV pages.

  PROBE_MODEL=llama-3.1-8b THRASH_GB=16 python3 scripts/probe_tlb.py OUT.json "knobs;knobs2" b1x1024 ...

Each shape and kernel (FA3 on vLLM's packed cache told max_seqlen_k = GRAPH_LEN; ours: each variant
of the ';'-separated knobs, scheduled at GRAPH_LEN), timed in one CUDA graph (bench --in-graph),
each launch preceded by a toucher kernel that reads one int32 every STRIDE bytes:
  touch-far   over THRASH_GB (one load per 2 MiB page: every translation of the TLBs replaced);
  touch-near  the same number of loads within a few MiB (same kernel, same L2 lines, no TLB churn).
A row's time = (toucher + launch) - (toucher alone), medians of 30 graphs. far - near is what cold
translations cost the kernel.
"""
from __future__ import annotations

import json
import os
import statistics
import sys


def main() -> None:
    import torch

    from workbench.bench.peers.fa3 import fa3
    from workbench.config.profiles import heads_from_text
    from probe_common import load_knobs
    from workbench.measure.gpuinfo import gpu_info
    from workbench.measure.timing import time_calls, widen_block_table
    from workbench.measure.workload import WorkloadSpec, build_rotation

    out_path, knob_sets = sys.argv[1], sys.argv[2].split(";")
    heads = heads_from_text(os.environ.get("PROBE_MODEL", "llama-3.1-8b"))
    bound = int(os.environ.get("GRAPH_LEN", "32864"))
    gb = float(os.environ.get("THRASH_GB", "16"))
    page = 2 << 20
    info = gpu_info(0)
    n_touch = int(gb * 2 ** 30) // page
    far = torch.zeros(n_touch * page // 4, dtype=torch.int32, device="cuda")
    near = torch.zeros(n_touch * 64 // 4, dtype=torch.int32, device="cuda")     # 64 B apart: ~n_touch/32 KiB
    sink = torch.zeros(2, dtype=torch.int64, device="cuda")
    far_v, near_v = far[:: page // 4], near[:: 64 // 4]
    assert far_v.numel() == near_v.numel() == n_touch

    def toucher(v, slot):
        def run() -> None:
            torch.sum(v, dim=0, out=sink[slot])
        return run
    touch = {"far": toucher(far_v, 0), "near": toucher(near_v, 1)}
    kernels = [(k.variant.name, k) for k in load_knobs(";".join(knob_sets), heads.head_size, info.arch,
                                                         lambda v: v.scheduling())]
    rows = []

    def med(calls):
        s, _ = time_calls(calls, info, launches=30, in_graph=True)
        return statistics.median(s)

    base = {t: med([f] * 16) for t, f in touch.items()}
    print(f"toucher alone: far {base['far']:.2f} µs ({n_touch} loads over {gb:g} GiB), near {base['near']:.2f} µs",
          flush=True)
    for label in sys.argv[3:]:
        n, ctx = (int(x) for x in label[1:].split("x"))
        spec = WorkloadSpec.uniform(n, ctx, num_heads=heads.num_heads, num_kv_heads=heads.num_kv_heads,
                                    head_size=heads.head_size)
        who = []
        calls, _, _ = fa3(spec, 4 * info.l2_bytes, check=False, packed=True, max_seqlen_k=bound)
        who.append(("fa3-packed", calls, None))
        w, tables = build_rotation(spec, "cuda", 4 * info.l2_bytes)
        L = max(bound, ctx)
        wide = [widen_block_table(t, L, spec.block_size) for t in tables]
        out = torch.empty_like(w.query)
        for name, k in kernels:
            ws = k.step_workspace(w.seq_lens, spec.num_heads, spec.num_kv_heads, L, True)

            def ours(i, k=k, ws=ws):
                def run() -> None:
                    k(out, w.query, w.key_cache, w.value_cache, spec.num_kv_heads, w.scale, wide[i], w.seq_lens, L,
                      workspace=ws, per_seq_split=True)
                return run
            who.append((name, [ours(i) for i in range(len(wide))], ws))
        for name, calls, _ in who:
            row = {"shape": label, "kernel": name, "alone": med(calls)}
            for t, f in touch.items():
                def pair(c, f=f):
                    def run() -> None:
                        f()
                        c()
                    return run
                row[t] = med([pair(c) for c in calls]) - base[t]
            rows.append(row)
            print(f"{label:10s} {name[:48]:48s} alone {row['alone']:7.2f}  after near {row['near']:7.2f}  "
                  f"after far {row['far']:7.2f}  far-near {row['far'] - row['near']:+6.2f} µs", flush=True)
        del who, w, tables, wide
        torch.cuda.empty_cache()
    for _, k in kernels:
        k.close()
    json.dump({"gpu": info.to_dict(), "heads": heads.to_dict(), "graph_len": bound, "thrash_gb": gb,
               "toucher_us": base, "rows": rows}, open(out_path, "w"), indent=1)


if __name__ == "__main__":
    main()
