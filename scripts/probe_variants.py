"""Time a handful of variants beside FA3 on a suite's bench shapes, one process (issue 12 probes:
predict, change, measure before a full tune). Each variant checked against fp32, then timed with
cold L2 exactly as `workbench bench` times ours (time_variant); FA3 as bench times it.

  python3 scripts/probe_variants.py OUT.json SUITE "knobs;knobs;..." [model[:tp] | Q/KV[/D]]
  e.g. scripts/probe_variants.py /tmp/p.json bench "threads=128,heads_per_cta=4,partition=auto,stages=3"
IN_GRAPH=1: every row timed as bench --in-graph times it (one graph of a launch per rotation copy).
Prints a table of µs per shape (and × FA3 for each variant), writes every number to OUT.json.
"""
from __future__ import annotations

import json
import math
import os
import statistics
import sys


def main() -> None:
    import torch

    from workbench.bench.peers.fa3 import fa3
    from workbench.config.profiles import heads_from_text
    from probe_common import load_knobs
    from workbench.measure.ceiling import read_ceiling
    from workbench.measure.check import check_variant
    from workbench.measure.gpuinfo import gpu_info
    from workbench.measure.suite import load_suite
    from workbench.measure.timing import time_calls, time_variant

    out_path, suite_name, knob_text = sys.argv[1:4]
    in_graph = os.environ.get("IN_GRAPH") == "1"   # every row timed as bench --in-graph times it
    heads = heads_from_text(sys.argv[4] if len(sys.argv) > 4 else "llama-3.1-8b")   # model[:tp] or Q/KV[/D]
    info, ceiling = gpu_info(0), read_ceiling(0)
    kernels = load_knobs(knob_text, heads.head_size, info.arch)
    vs = [k.variant for k in kernels]
    rows = []
    for b, spec in load_suite(suite_name).bench_specs(heads, "bf16", 16):
        row = {"shape": b.label, "kv_bytes": spec.kv_bytes, "floor_us": spec.kv_bytes / (ceiling.gbps * 1e3)}
        calls, _, err = fa3(spec, 4 * info.l2_bytes, check=spec.kv_bytes <= 2e9)
        s, _ = time_calls(calls, info, launches=50, name=f"fa3 {b.label}", in_graph=in_graph)
        row["fa3"] = {"us": statistics.median(s), "err": err}
        del calls
        for k in kernels:
            ck = check_variant(k, spec, "cuda") if spec.kv_bytes <= 2e9 else None
            t = time_variant(k, spec, info, launches=50, ceiling_gbps=ceiling.gbps, in_graph=in_graph)
            row[k.variant.name] = {"us": t.median_us, "p10": t.p10_us, "p90": t.p90_us,
                                   "err": None if ck is None else ck.rel_error,
                                   "status": None if ck is None else ck.status}
        rows.append(row)
        torch.cuda.empty_cache()
        print(b.label, " ".join(f"{n[:60]}={r['us']:.1f}" for n, r in row.items() if isinstance(r, dict)), flush=True)
    doc = {"gpu": info.to_dict(), "ceiling_gbps": ceiling.gbps, "suite": suite_name, "heads": heads.to_dict(),
           "variants": [v.name for v in vs], "rows": rows}
    json.dump(doc, open(out_path, "w"), indent=1)
    names = [v.name for v in vs]
    print(f"\n{'shape':<22}{'fa3':>8}" + "".join(f"{i:>14}" for i in range(len(names))))
    for r in rows:
        print(f"{r['shape']:<22}{r['fa3']['us']:>8.1f}" + "".join(
            f"{r[n]['us']:>7.1f} {r['fa3']['us'] / r[n]['us']:>5.2f}x" + ("!" if r[n]["status"] not in (None, "pass") else " ")
            for n in names))
    for i, n in enumerate(names):
        g = math.exp(statistics.fmean(math.log(r["fa3"]["us"] / r[n]["us"]) for r in rows))
        print(f"[{i}] {n}: geomean x FA3 {g:.3f}, worst {min(r['fa3']['us'] / r[n]['us'] for r in rows):.2f}, "
              f"max err {max((r[n]['err'] or 0) for r in rows):.2e}")


if __name__ == "__main__":
    main()
