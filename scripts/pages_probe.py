"""Issue 6, v2: how much of the gap to the floor at >= 1 GB is paging itself? The tuned table's
variant per shape, timed cold L2 with the bench's random block tables (pages scattered over the
pool, as FACTS.md's method) vs contiguous tables (each sequence's pages in order), interleaved
(random, contiguous, random, contiguous), 30 launches each.
usage: python scripts/pages_probe.py STUDY STORAGE OUT_DIR"""
import json, statistics, sys
import torch
from tuned_table import tuned_table
from workbench.launch import load
from workbench.timing import time_variant
from workbench.workload import _fill_table, build_rotation

study, storage, out = sys.argv[1:4]
want = ("b1x32768", "b8x4096", "b8x32768", "b16x16384", "b64x4096", "b256x1024", "b64x32768")
info, ceil, table = tuned_table(study, storage, want)
rows = []
for b, spec, build in table:
    v = build.variant
    k = load(build, 0)
    w, rand = build_rotation(spec, "cuda", 4 * info.l2_bytes)
    need = spec.blocks_needed
    contig = [_fill_table(spec, torch.arange(c * need, (c + 1) * need, dtype=torch.int32)).to(w.query.device)
              for c in range(len(rand))]
    t = {"random": [], "contiguous": []}
    for _ in range(2):
        for name, tabs in (("random", rand), ("contiguous", contig)):
            t[name].append(time_variant(k, spec, info, launches=30, ceiling_gbps=ceil, rotation=(w, tabs)).median_us)
    k.close()
    del w, rand, contig
    torch.cuda.empty_cache()
    floor = spec.kv_bytes / (ceil * 1e9) * 1e6
    r, c = statistics.median(t["random"]), statistics.median(t["contiguous"])
    rows.append({"shape": b.label, "variant": v.name, "floor_us": floor, "random_us": r, "contiguous_us": c,
                 "eff_random": floor / r, "eff_contiguous": floor / c})
json.dump({"gpu": info.to_dict(), "ceiling_gbps": ceil, "rows": rows}, open(f"{out}/pages-probe.json", "w"), indent=1)
print(f"read ceiling {ceil:.0f} GB/s")
print(f"{'shape':10} {'floor':>8} {'random':>8} {'contig':>8} {'eff r':>6} {'eff c':>6}  variant")
for r in rows:
    print(f"{r['shape']:10} {r['floor_us']:8.1f} {r['random_us']:8.1f} {r['contiguous_us']:8.1f} "
          f"{r['eff_random']:6.3f} {r['eff_contiguous']:6.3f}  {r['variant']}")
