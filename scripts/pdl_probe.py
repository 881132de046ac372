"""Issue 6, v2: does programmatic dependent launch of the split-K reduce (the split kernel
triggers its dependents at start, the reduce waits on griddepcontrol) shorten decode steps?
Per bench shape: the tuned dispatch table's variant, PDL on vs off, interleaved (on, off, on,
off), cold L2, 30 launches each; correctness with PDL on for every split variant.
usage: python scripts/pdl_probe.py STUDY STORAGE OUT_DIR"""
import json, statistics, sys
from tuned_table import tuned_table
from workbench.check import check_variant
from workbench.launch import load
from workbench.timing import time_variant
from workbench.workload import WorkloadSpec, build_rotation

study, storage, out = sys.argv[1:4]
info, ceil, table = tuned_table(study, storage)
rows, checks = [], []
for b, spec, build in table:
    v = build.variant
    k = load(build, 0)
    split = v.uses_split(spec.num_seqs, spec.num_heads, spec.max_seq_len)
    if not split:
        k.close()
        rows.append((b.label, v.name, False, None, None))
        continue
    for sl in ((1000, 17, 4096, 333), (spec.max_seq_len, 5)):
        ck = check_variant(k, WorkloadSpec(num_heads=32, num_kv_heads=8, head_size=128, block_size=16, dtype="bf16",
                                           seq_lens=sl))
        checks.append((v.name, sl, ck.status, ck.rel_error))
    rot = build_rotation(spec, "cuda", 4 * info.l2_bytes)
    t = {True: [], False: []}
    for rnd in range(2):
        for pdl in (True, False):
            k.pdl = pdl
            t[pdl].append(time_variant(k, spec, info, launches=30, ceiling_gbps=ceil, rotation=rot).median_us)
    k.close()
    del rot
    rows.append((b.label, v.name, True, statistics.median(t[True]), statistics.median(t[False])))
json.dump({"gpu": info.to_dict(), "ceiling_gbps": ceil, "rows": rows, "checks": checks},
          open(f"{out}/pdl-probe.json", "w"), indent=1)
bad = [c for c in checks if c[2] != "pass"]
print(f"checks with PDL on: {len(checks) - len(bad)}/{len(checks)} pass {bad[:3]}")
print(f"{'shape':10} {'PDL on':>8} {'off':>8} {'off/on':>6}  variant")
for lbl, name, split, on, off in rows:
    print(f"{lbl:10} " + (f"{on:8.1f} {off:8.1f} {off / on:6.3f}" if split else f"{'(no split-K)':>24}") + f"  {name}")
