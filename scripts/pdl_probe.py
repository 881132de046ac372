"""Issue 6, v2: does programmatic dependent launch of the split-K reduce (the split kernel
triggers its dependents at start, the reduce waits on griddepcontrol) shorten decode steps?
Per bench shape: the tuned dispatch table's variant, PDL on vs off, interleaved (on, off, on,
off), cold L2, 30 launches each; correctness with PDL on for every split variant.
usage: python scripts/pdl_probe.py STUDY STORAGE OUT_DIR"""
import json, statistics, sys
from workbench.bench import tuned_picker
from workbench.build import build_many
from workbench.ceiling import read_ceiling
from workbench.check import check_variant
from workbench.gpuinfo import gpu_info
from workbench.launch import load
from workbench.profiles import head_shape, load_model
from workbench.suite import load_suite
from workbench.timing import time_variant
from workbench.workload import WorkloadSpec, build_rotation

study, storage, out = sys.argv[1:4]
info = gpu_info(0)
ceil = read_ceiling(0).gbps
heads = head_shape(load_model("llama-3.1-8b"), 1)
pick, _ = tuned_picker(study, storage, heads, "bf16", 16, info.arch)
specs = load_suite("bench").specs(heads, "bf16", 16)
vs = {b.label: pick(s) for b, s in specs}
built = {b.variant: b for b in build_many(list(dict.fromkeys(vs.values())), info.arch)}
rows, checks = [], []
for b, spec in specs:
    v = vs[b.label]
    k = load(built[v], 0)
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
