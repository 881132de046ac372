"""Does FA3 run slower when told vLLM's max_model_len? (perf-notes v25: FA3's kernels take 2.4-4.9 us a
layer longer in vLLM's decode graph than in the bench, same grids; the captured call holds
max_seqlen_k = max_model_len, gpu_model_runner's capture metadata, where the bench told it the batch's
longest sequence.)

  PROBE_MODEL=llama-3.1-8b python3 scripts/probe_fa3_bound.py OUT.json b1x1024 b8x1024 ...

Each shape: FA3 (bench peer `fa3`, and `fa3-packed` at the largest bound) with max_seqlen_k = the
batch's longest sequence, then each of BOUNDS (default 1104,32864), every form timed both ways the
bench times (one CUDA graph per launch; one graph of a launch per rotation copy, `--in-graph`).
Cold L2, median of 30. Prints a table; the JSON keeps every row.
"""
from __future__ import annotations

import json
import os
import statistics
import sys


def main() -> None:
    from workbench.bench.peers.fa3 import fa3
    from workbench.config.profiles import heads_from_text
    from workbench.measure.gpuinfo import gpu_info
    from workbench.measure.timing import time_calls
    from workbench.measure.workload import WorkloadSpec

    out_path = sys.argv[1]
    heads = heads_from_text(os.environ.get("PROBE_MODEL", "llama-3.1-8b"))
    bounds = [int(x) for x in os.environ.get("BOUNDS", "1104,32864").split(",")]
    info = gpu_info(0)
    rows = []
    for label in sys.argv[2:]:
        n, ctx = (int(x) for x in label[1:].split("x"))
        spec = WorkloadSpec.uniform(n, ctx, num_heads=heads.num_heads, num_kv_heads=heads.num_kv_heads,
                                    head_size=heads.head_size)
        forms = [("fa3", False, None)] + [("fa3", False, b) for b in bounds] + [("fa3-packed", True, bounds[-1])]
        for name, packed, told in forms:
            calls, note, err = fa3(spec, 4 * info.l2_bytes, check=True, packed=packed, max_seqlen_k=told)
            row = {"shape": label, "peer": name, "max_seqlen_k": max(ctx, told or 0), "rel_error": err, "note": note}
            for timing, ig in (("graph", False), ("in_graph", True)):
                s, method = time_calls(calls, info, launches=30, name=f"{name}-{label}", in_graph=ig)
                s = sorted(s)
                row[timing] = {"median_us": statistics.median(s), "p10_us": s[len(s) // 10],
                               "p90_us": s[(9 * len(s)) // 10], "method": method}
            rows.append(row)
            print(f"{label:10s} {name:10s} max_seqlen_k {row['max_seqlen_k']:6d}  err {err:.1e}  "
                  f"graph {row['graph']['median_us']:8.2f}  in-graph {row['in_graph']['median_us']:8.2f} µs", flush=True)
            del calls
    with open(out_path, "w") as f:
        json.dump({"gpu": info.to_dict(), "heads": heads.to_dict(), "bounds": bounds, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
