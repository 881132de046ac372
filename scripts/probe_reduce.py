"""What the split-K reduce costs at small shapes (perf-notes v28): each variant timed as it launches
(`full`: its split kernel + the PDL reduce, or its whole-sequence kernel) and with the reduce
launch left out (`split`: the output is wrong, the time is the split kernel's), in-graph, cold L2,
beside the read bound (bench's `read` row). The host plan's partition size and CTAs are printed.

  python3 scripts/probe_reduce.py OUT.json "knobs;knobs" b1x1024 b1x4096 ...
"""
from __future__ import annotations

import copy
import json
import os
import sys


def main() -> None:
    import torch

    from probe_common import load_knobs
    from workbench.bench.peers import PEERS
    from workbench.config.profiles import heads_from_text
    from workbench.measure.gpuinfo import gpu_info
    from workbench.measure.timing import time_calls, time_variant
    from workbench.measure.workload import WorkloadSpec

    out_path, knobs = sys.argv[1:3]
    heads = heads_from_text(os.environ.get("PROBE_MODEL", "llama-3.1-8b"))
    info = gpu_info(0)
    ks = load_knobs(knobs, heads.head_size, info.arch)
    rows = []
    for label in sys.argv[3:]:
        n, ctx = (int(x) for x in label[1:].split("x"))
        spec = WorkloadSpec.uniform(n, ctx, num_heads=heads.num_heads, num_kv_heads=heads.num_kv_heads,
                                    head_size=heads.head_size)
        calls, _, _ = PEERS["read"](spec, 4 * info.l2_bytes, check=False)
        s, _ = time_calls(calls, info, launches=30, name="read", in_graph=True)
        del calls
        rows.append({"shape": label, "row": "read", "us": sorted(s)[len(s) // 2]})
        for k in ks:
            gx = k.grid_x(heads.num_heads, heads.num_kv_heads)
            ptok = k.auto_tokens(gx * n, ctx) if k.variant.partition == -2 else None
            for form in ("full", "split"):
                kk = k
                if form == "split":
                    kk = copy.copy(k)
                    orig = k._launch
                    kk._launch = lambda name, *a, _o=orig, **kw: None if name.startswith("wb_reduce") else _o(name, *a, **kw)
                t = time_variant(kk, spec, info, launches=30, in_graph=True)
                rows.append({"shape": label, "row": f"{k.variant.name} {form}", "us": t.median_us, "p10": t.p10_us,
                             "p90": t.p90_us, "part_tokens": ptok,
                             "ctas": gx * n * (-(-ctx // ptok) if ptok else 1)})
                print(json.dumps(rows[-1]), flush=True)
                torch.cuda.empty_cache()
        json.dump({"heads": heads.to_dict(), "gpu": info.to_dict(), "rows": rows}, open(out_path, "w"), indent=1)
    for s in dict.fromkeys(r["shape"] for r in rows):
        by = [r for r in rows if r["shape"] == s]
        rd = next(r["us"] for r in by if r["row"] == "read")
        for r in by:
            if r["row"] != "read":
                print(f"{s:10} {r['row']:60} {r['us']:7.2f} us  read {rd:5.2f}  partition {r['part_tokens']} "
                      f"({r['ctas']} CTAs)")


if __name__ == "__main__":
    main()
