"""Where the last few percent at long contexts go (issue 12): one variant family timed over a
sweep of partition sizes and ring depths, FA3 beside it, cold L2, one process.

  python3 scripts/probe_parts.py OUT.json "knobs;knobs" "0,1024,2048" b64x32768 b32x16384 ...
Part 0 = the launch's own choice (auto_tokens); others force Params.part_tokens (auto variants).
If time falls as partitions grow, a partition's fixed cost (prologue, pass switch, partial write,
the CTA's restart) is the gap; if deeper rings win, bytes in flight are.
Each row of a shape up to 110 MB of KV is checked against fp32 (larger: its first part only).
IN_GRAPH=1: every row timed as bench --in-graph times it (one graph of a launch per rotation copy).
"""
from __future__ import annotations

import json
import os
import statistics
import sys


def main() -> None:
    import torch

    from workbench.bench.peers.fa3 import fa3
    from workbench.kernel.build import build_many
    from workbench.kernel.launch import load
    from workbench.kernel.variant import Variant, parse_knobs
    from workbench.measure.ceiling import read_ceiling
    from workbench.measure.check import check_variant
    from workbench.measure.gpuinfo import gpu_info
    from workbench.measure.timing import time_calls, time_variant
    from workbench.measure.workload import WorkloadSpec, build_rotation

    out_path, knob_text, parts_text = sys.argv[1:4]
    labels = sys.argv[4:]
    in_graph = os.environ.get("IN_GRAPH") == "1"
    info, ceiling = gpu_info(0), read_ceiling(0)
    vs = [Variant.from_dict(parse_knobs(t)) for t in knob_text.split(";")]
    builds = build_many(vs, info.arch)
    bad = [b for b in builds if not b.ok]
    if bad:
        raise SystemExit(f"build failed: {[(b.variant.name, (b.error or '')[-400:]) for b in bad]}")
    kernels = [load(b, 0) for b in builds]
    parts = [int(x) for x in parts_text.split(",")]
    rows = []
    for label in labels:
        b, c = label[1:].split("x")
        spec = WorkloadSpec.uniform(int(b), int(c))
        calls, _, _ = fa3(spec, 4 * info.l2_bytes, check=False)
        s, _ = time_calls(calls, info, launches=30, name=f"fa3 {label}", in_graph=in_graph)
        fa = statistics.median(s)
        del calls
        floor = spec.kv_bytes / (ceiling.gbps * 1e3)
        print(f"{label}: fa3 {fa:.1f} us (eff {floor / fa:.3f})", flush=True)
        rot = build_rotation(spec, "cuda", 4 * info.l2_bytes)
        for k in kernels:
            own = k.auto_tokens
            ctas = spec.num_kv_heads * -(-spec.num_heads // spec.num_kv_heads // k.variant.heads_per_cta) * spec.num_seqs
            for pt in parts:
                k.auto_tokens = own if pt == 0 else (lambda ctas_, len_, pt=pt: pt)
                try:
                    ck = check_variant(k, spec, "cuda") if (spec.kv_bytes <= 1.1e9 and pt == parts[0]
                                                             or spec.kv_bytes <= 1.1e8) else None
                    t = time_variant(k, spec, info, launches=30, ceiling_gbps=ceiling.gbps, rotation=rot,
                                     in_graph=in_graph)
                except Exception as e:    # a forced partition that does not fit shared memory
                    print(f"  {k.variant.name[:48]:<48} part {pt:>5}: {type(e).__name__}: {str(e)[:100]}")
                    continue
                finally:
                    k.auto_tokens = own
                chosen = own(ctas, spec.max_seq_len) if pt == 0 else pt
                row = {"shape": label, "variant": k.variant.name, "part": pt, "part_tokens": chosen,
                       "us": t.median_us, "p10": t.p10_us, "p90": t.p90_us, "fa3_us": fa, "floor_us": floor,
                       "err": None if ck is None else ck.rel_error, "status": None if ck is None else ck.status}
                rows.append(row)
                print(f"  {k.variant.name[:48]:<48} part {chosen:>5}{'*' if pt == 0 else ' '} {t.median_us:8.1f} us"
                      f" [{t.p10_us:.1f}-{t.p90_us:.1f}] x FA3 {fa / t.median_us:.3f} eff {floor / t.median_us:.3f}"
                      f" {'' if ck is None else ck.status}", flush=True)
        del rot
        torch.cuda.empty_cache()
    json.dump({"gpu": info.to_dict(), "ceiling_gbps": ceiling.gbps, "rows": rows}, open(out_path, "w"), indent=1)


if __name__ == "__main__":
    main()
