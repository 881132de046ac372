"""Where a small launch's time goes (perf-notes v29): each variant built with WB_TRACE (kernels/decode.cu),
so thread 0 of every CTA stamps the global timer at points of its life, and timed in-graph as bench
times it (one CUDA graph of a launch per rotation copy, cold L2). After each replay the last launch's
stamps are read back; per point, the median and the latest CTA relative to the launch's first CTA
start, medians over the replays:

  E  kernel entry (before a scheduled CTA's item load)
  T0 CTA start   T1 queries + table staged   T2 warp 0's first K (onepass: K+V) tile landed
  T3 K pass done T4 softmax done             T5 first V tile landed   T6 PV done   T7 output / partial issued
  S  the first barrier after the K pass (twopass: every warp's logits; onepass: every warp's max)
  M  the warps' accumulators merged (after its barrier)   Wlo / Whi: a CTA's first / last warp to end its loop
  R0 reduce CTA start   R1 after griddepcontrol.wait   R2 reduce done

  python3 scripts/probe_chain.py OUT.json "knobs;knobs" b1x1024 b1x4096 ...   [PART=128: forced partition]
  SCHED=1: the scheduled build and kernel (wb_decode_sched, forced on, its plan first) on the same batches
  RAW=1: each row also holds the last replay's CTAs one by one (raw_ctas: SM, start, first tile, end)

The trace build is a separate cubin (build_source with the variant's defines and WB_TRACE; the untraced cubins are
byte-identical to a build without the stamps). The stamps cost a few
instructions per CTA; the probe also times each variant untraced beside it, to show they do not move it.
"""
from __future__ import annotations

import json
import os
import statistics
import sys

POINTS = ["E", "T0", "T1", "T2", "T3", "T4", "T5", "T6", "T7", "S", "Wlo", "Whi", "M"]
SLOTS = 24              # kernels/decode.cu wb_trace: per CTA
RPOINTS = ["R0", "R1", "R2"]


def traced(k, arch: str):
    """The loaded variant k again, from a cubin of the same source and defines plus WB_TRACE (build_source:
    its own cache key, so no untraced cubin is replaced and the source is never edited)."""
    import dataclasses

    from workbench.kernel.build import trace_cubin
    from workbench.kernel.launch import load

    return load(dataclasses.replace(k.build, cubin=trace_cubin(k.variant, arch)), 0)


def globals_of(k) -> dict:
    from workbench.kernel.launch import _check, _driver
    drv = _driver()
    out = {}
    for name in ("wb_trace", "wb_trace_red"):
        ptr, size = _check(drv.cuModuleGetGlobal(k.module._module, name.encode()), f"cuModuleGetGlobal {name}")
        out[name] = (int(ptr), int(size))
    return out


def read_stamps(g: dict, torch) -> dict:
    from workbench.kernel.launch import _check, _driver
    drv = _driver()
    res = {}
    for name, (ptr, size) in g.items():
        host = torch.empty(size // 8, dtype=torch.int64, device="cuda")
        _check(drv.cuMemcpyDtoD(host.data_ptr(), ptr, size), "cuMemcpyDtoD")
        res[name] = host.cpu()
    return res


def clear(g: dict) -> None:
    from workbench.kernel.launch import _check, _driver
    drv = _driver()
    for ptr, size in g.values():
        _check(drv.cuMemsetD8(ptr, 0, size), "cuMemsetD8")


def summarize(st: dict) -> dict:
    """Per point: (median, max) over the CTAs that stamped it, in µs from the first CTA's T0."""
    tr = st["wb_trace"].view(-1, SLOTS)
    rd = st["wb_trace_red"].view(-1, 4)
    live = tr[tr[:, 0] > 0]
    t0 = int(live[:, 0].min())
    row = {"ctas": int(live.shape[0])}
    warps = live[:, 8:16].double()
    warps[warps == 0] = float("nan")
    cols = {**{f"T{i}": live[:, i] for i in range(8)}, "S": live[:, 17], "M": live[:, 16], "E": live[:, 19]}
    for p in POINTS:
        if p in ("Wlo", "Whi"):
            w = (warps - t0) / 1e3
            ok = ~w.isnan().all(dim=1)
            if ok.any():
                v = w[ok].nan_to_num(float("inf")).min(dim=1).values if p == "Wlo" else \
                    w[ok].nan_to_num(float("-inf")).max(dim=1).values
                row[p] = (float(v.median()), float(v.max()))
            continue
        col = cols[p]
        col = col[col > 0]
        if col.numel():
            rel = (col - t0).double() / 1e3
            row[p] = (float(rel.median()), float(rel.max()))
    rlive = rd[rd[:, 0] > 0]
    row["red_ctas"] = int(rlive.shape[0])
    for i, p in enumerate(RPOINTS):
        col = rlive[:, i] if rlive.numel() else rlive
        col = col[col > 0] if col.numel() else col
        if col.numel():
            rel = (col - t0).double() / 1e3
            row[p] = (float(rel.median()), float(rel.max()))
    return row


def raw_ctas(st: dict) -> list[list[int]]:
    """RAW=1: the last replay's CTAs one by one, [CTA index, SM, T0, T2, T7] (ns from the first T0):
    whether the late ends share SMs, start late, or are spread at random."""
    tr = st["wb_trace"].view(-1, SLOTS)
    idx = (tr[:, 0] > 0).nonzero().flatten()
    t0 = int(tr[idx, 0].min())
    return [[int(c), int(tr[c, 18]) - 1] + [int(tr[c, i]) - t0 if tr[c, i] > 0 else -1 for i in (0, 2, 7)]
            for c in idx.tolist()]


def main() -> None:
    import torch

    from probe_common import load_knobs, scheduled_form
    from workbench.config.profiles import heads_from_text
    from workbench.measure.gpuinfo import gpu_info
    from workbench.measure.timing import IN_GRAPH_MIN_LAUNCHES, time_variant
    from workbench.measure.workload import WorkloadSpec, build_rotation

    out_path, knobs = sys.argv[1:3]
    labels = sys.argv[3:]
    part = int(os.environ.get("PART", "0"))
    replays = int(os.environ.get("REPLAYS", "30"))
    heads = heads_from_text(os.environ.get("PROBE_MODEL", "llama-3.1-8b"))
    info = gpu_info(0)
    sched = os.environ.get("SCHED") == "1"
    plain = load_knobs(knobs, heads.head_size, info.arch, form=scheduled_form(sched))
    traced_ = [traced(k, info.arch) for k in plain]
    rows = []
    for label in labels:
        n, ctx = (int(x) for x in label[1:].split("x"))
        spec = WorkloadSpec.uniform(n, ctx, num_heads=heads.num_heads, num_kv_heads=heads.num_kv_heads,
                                    head_size=heads.head_size)
        rot = build_rotation(spec, "cuda", 4 * info.l2_bytes)
        w, tables = rot
        for kp, kt in zip(plain, traced_):
            for k in (kp, kt):
                if part:
                    k.auto_tokens = lambda ctas, length, pt=part: pt
            t_plain = time_variant(kp, spec, info, launches=30, rotation=rot, in_graph=True, per_seq_split=sched).median_us
            t_traced = time_variant(kt, spec, info, launches=30, rotation=rot, in_graph=True, per_seq_split=sched).median_us
            out = torch.empty_like(w.query)
            ws = kt.step_workspace(w.seq_lens, spec.num_heads, spec.num_kv_heads, spec.max_seq_len, sched)

            def launch(i: int) -> None:
                kt(out, w.query, w.key_cache, w.value_cache, spec.num_kv_heads, w.scale, tables[i % len(tables)],
                   w.seq_lens, spec.max_seq_len, workspace=ws, per_seq_split=sched)

            count = max(len(tables), IN_GRAPH_MIN_LAUNCHES)
            for i in range(count):
                launch(i)
            torch.cuda.synchronize()
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g, stream=s):
                for i in range(count):
                    launch(i)
            torch.cuda.current_stream().wait_stream(s)
            glob = globals_of(kt)
            per = []
            for _ in range(replays):
                torch.cuda.synchronize()
                clear(glob)
                g.replay()
                torch.cuda.synchronize()
                st = read_stamps(glob, torch)
                per.append(summarize(st))
            agg = {"shape": label, "variant": kt.variant.name, "part": part, "us_plain": t_plain,
                   "us_traced": t_traced, "ctas": per[0]["ctas"], "red_ctas": per[0]["red_ctas"]}
            for p in POINTS + RPOINTS:
                vals = [r[p] for r in per if p in r]
                if vals:
                    agg[p] = (statistics.median(v[0] for v in vals), statistics.median(v[1] for v in vals))
            if os.environ.get("RAW"):
                agg["raw"] = raw_ctas(st)
            rows.append(agg)
            pts = "  ".join(f"{p} {agg[p][0]:.2f}/{agg[p][1]:.2f}" for p in POINTS + RPOINTS if p in agg)
            print(f"{label:9} {kt.variant.name[:46]:46} part {part or 'own'} {t_plain:6.2f} us (traced {t_traced:6.2f})"
                  f" ctas {agg['ctas']} red {agg['red_ctas']}\n    {pts}", flush=True)
            del g
        del rot, w, tables
        torch.cuda.empty_cache()
    json.dump({"gpu": info.to_dict(), "points": POINTS + RPOINTS, "rows": rows}, open(out_path, "w"), indent=1)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
