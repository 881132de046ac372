"""GPU stages of scripts/device_emulation.sh (issue 16): each stage writes $OUT/emu-<stage>.json.

    python3 scripts/device_emulation.py green      # green contexts: SMs obtained, SM confinement
    python3 scripts/device_emulation.py ceilings   # read ceilings: full, 80 SMs, throttled; L2 hold knee
    python3 scripts/device_emulation.py smaxis     # variants at 132 vs 72 vs 80 SMs vs the wave count
    python3 scripts/device_emulation.py table      # the short table of all stages (printed last)
"""
from __future__ import annotations

import ctypes
import json
import math
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

OUT = Path(os.environ.get("OUT", "/tmp/out"))


def save(stage: str, d: dict) -> None:
    (OUT / f"emu-{stage}.json").write_text(json.dumps(d, indent=1, default=str))


def _smids(mod, stream: int, blocks: int) -> list[int]:
    import torch
    out = torch.full((blocks,), -1, dtype=torch.int32, device="cuda")
    mod.launch("wb_emu_smid", (blocks, 1, 1), 32, 0, [ctypes.c_void_p(out.data_ptr()), ctypes.c_ulonglong(300_000)],
               stream)
    return out, blocks


def green() -> dict:
    import torch

    from workbench.kernel.build import build_source
    from workbench.kernel.launch import Module, _driver
    from workbench.measure.gpuinfo import gpu_info
    from workbench.measure.greenctx import GreenSplit, graph_sm_ids, probe_green

    drv = _driver()
    info = gpu_info(0)
    d: dict = {"gpu": info.to_dict(), "probe": {}}
    for n in (8, 66, 78, 80, 128, 132):
        d["probe"][n] = probe_green(0, n)
        save("green", d)
    mod = Module(build_source("emulate.cu", info.arch), 0)
    blocks = info.sm_count * 4
    split = GreenSplit(0, 80)

    def run(stream_handle: int, how: str) -> dict:
        out, _ = _smids(mod, stream_handle, blocks)
        drv.cuStreamSynchronize(drv.CUstream(stream_handle))
        ids = out.tolist()
        return {"how": how, "distinct_sms": len(set(i for i in ids if i >= 0)), "unset": ids.count(-1),
                "sms": sorted(set(ids))}
    d["full_gpu"] = run(torch.cuda.current_stream().cuda_stream, "primary stream")
    d["green80_direct"] = run(int(split.stream), "cuModuleLoad'ed kernel launched on the green stream")
    if split.rest_stream is not None:
        d["rest_direct"] = run(int(split.rest_stream), "the remaining group's stream")
        d["disjoint"] = not (set(d["green80_direct"]["sms"]) & set(d["rest_direct"]["sms"]))
    save("green", d)
    # a CUDA graph replayed on the green stream, captured on an ordinary stream (how peers were timed
    # until 2026-11-28) and on the green stream itself (how they are timed since)
    try:
        ext = torch.cuda.ExternalStream(int(split.stream))
        for key, capture in (("green80_graph_replay", torch.cuda.Stream()), ("green80_graph_captured_on_green", ext)):
            ids = graph_sm_ids(mod, capture, ext, blocks, 300_000)
            d[key] = {"distinct_sms": len(set(ids) - {-1}), "unset": ids.count(-1)}
        # a torch op on the green stream (allocator, runtime launch)
        with torch.cuda.stream(ext):
            x = torch.randn(1 << 22, device="cuda")
            y = float((x * 2).sum())
        ext.synchronize()
        d["torch_on_green"] = {"ok": True, "sum_finite": math.isfinite(y)}
    except Exception as e:
        d["green80_graph_replay"] = {"error": f"{type(e).__name__}: {e}"}
    split.close()
    save("green", d)
    return d


def _warm_read(emu, mb: int, launches: int = 20) -> float:
    """GB/s of repeated reads of the first `mb` MB (L2-resident if it fits) inside the emulation."""
    import torch
    n = mb << 20
    args = [ctypes.c_void_p(emu._probe_buf.data_ptr()), ctypes.c_longlong(n // 16), ctypes.c_void_p(emu._sink.data_ptr())]
    bw = []
    with emu.measuring(rate_gbps=0.0) as st:        # hold kept, no bandwidth throttle
        for i in range(launches + 3):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record(st)
            emu._probe.launch("wb_read_probe", (emu.sms * 4, 1, 1), 512, 0, args, int(emu._measure_stream))
            e.record(st)
            e.synchronize()
            if i >= 3:
                bw.append(n / (s.elapsed_time(e) / 1e3) / 1e9)
    return statistics.median(bw)


def ceilings() -> dict:
    import torch

    from workbench.config.profiles import load_gpu
    from workbench.measure.emulation import plan_emulation
    from workbench.measure.gpuinfo import gpu_info
    from workbench.measure.greenctx import Emulation

    info = gpu_info(0)
    d: dict = {"gpu": info.name, "runs": []}
    h20 = plan_emulation(load_gpu("h20"), info.name)
    runs = [("80 SMs, h20 goal (spec x attached eff.)", h20, None), ("80 SMs, goal 4000 (h20 spec)", h20, 4000.0),
            ("80 SMs, goal 3020 (h100 measured)", h20, 3020.0)]
    try:
        runs.append(("132 SMs shared throttle + 10 MB L2 hold (h100)", plan_emulation(load_gpu("h100"), info.name), None))
    except Exception as e:
        d["h100_plan_error"] = str(e)
    for label, plan, goal in runs:
        r: dict = {"label": label}
        t0 = time.perf_counter()
        emu = None
        try:
            emu = Emulation(plan, 0, calibrate_to=goal).start()
            r["start_s"] = time.perf_counter() - t0
            r["measured"] = emu.plan.measured
            r["recheck_gbps"] = [emu.read_ceiling() for _ in range(3)]
            r["provenance"] = emu.plan.provenance()
            if plan.l2_hold_mb or label.startswith("80 SMs, h20"):
                r["warm_read_gbps_by_mb"] = {mb: _warm_read(emu, mb) for mb in (30, 40, 45, 50, 55, 60, 70)}
        except Exception as e:
            r["error"] = f"{type(e).__name__}: {e}"
            r["trace"] = traceback.format_exc()[-1500:]
        finally:
            if emu is not None:
                try:
                    emu.close()
                except Exception as e:
                    r["close_error"] = str(e)
            del emu
            torch.cuda.empty_cache()
        d["runs"].append(r)
        save("ceilings", d)
    return d


def _grid(k, spec) -> tuple[int, int]:
    """(CTAs of the main kernel, CTAs per SM) of one launch: the wave model's inputs."""
    from workbench.kernel.variant import PARTITION_AUTO
    v, occ = k.variant, k.occupancy()
    gx = spec.num_kv_heads * math.ceil((spec.num_heads // spec.num_kv_heads) / v.heads_per_cta)
    base = gx * spec.num_seqs
    if v.partition == PARTITION_AUTO:
        tok = k.auto_tokens(base, spec.max_seq_len)
        split = tok > 0
    else:
        tok, split = v.split_tokens(), v.uses_split(spec.num_seqs, spec.num_heads, spec.max_seq_len)
    if not split:
        logits = math.ceil(spec.max_seq_len / v.block_size) * v.block_size
        return base, occ.blocks_per_sm(v.smem_bytes(logits), True)
    return base * math.ceil(spec.max_seq_len / tok), occ.blocks_per_sm(v.smem_bytes(tok), False)


def smaxis() -> dict:
    import torch

    from workbench.config.profiles import head_shape, load_model
    from workbench.kernel.build import build_variant
    from workbench.kernel.launch import load
    from workbench.measure.gpuinfo import gpu_info
    from workbench.measure.greenctx import GreenSplit
    from workbench.measure.suite import load_suite
    from workbench.measure.timing import time_variant
    from workbench.measure.workload import build_rotation
    from workbench.tune.encoding import seeds

    info = gpu_info(0)
    heads = head_shape(load_model("llama-3.1-8b"), 1)
    shape = {"head_size": 128, "block_size": 16, "dtype": "bf16"}
    variants = [(n, v) for n, v in seeds(shape, heads.group, "bulk")]
    builds = {n: build_variant(v, info.arch) for n, v in variants}
    specs = [s for _, s in load_suite("quick").specs(heads, "bf16", 16)]
    d: dict = {"gpu": info.name, "sms": {}, "rows": []}
    rows = {(n, sp.label): {"variant": n, "name": v.name, "shape": sp.label} for sp in specs for n, v in variants}
    d["rows"] = list(rows.values())
    for spec in specs:
        rot = build_rotation(spec, "cuda", 4 * info.l2_bytes)
        for label, ask in (("full", None), ("green66", 66), ("green80", 80)):
            split = None
            try:                               # one green context at a time (never two overlapping)
                split = GreenSplit(0, ask) if ask else None
                sms = split.sms if split else info.sm_count
                d["sms"][label] = sms
                for name, v in variants:
                    row, b = rows[(name, spec.label)], builds[name]
                    if not b.ok:
                        row["error"] = b.error[-300:]
                        continue
                    try:
                        k = load(b, 0, sms if split else None)
                        ctas, per_sm = _grid(k, spec)
                        ext = torch.cuda.ExternalStream(int(split.stream)) if split else torch.cuda.current_stream()
                        with torch.cuda.stream(ext):
                            t = time_variant(k, spec, info, launches=30, rotation=rot)
                        k.close()
                        row[label] = {"sms": sms, "median_us": t.median_us, "spread": t.spread, "ctas": ctas,
                                      "per_sm": per_sm, "waves": math.ceil(ctas / max(1, per_sm * sms))}
                        if label != "full" and "full" in row:
                            row[label]["ratio_vs_full"] = t.median_us / row["full"]["median_us"]
                            row[label]["wave_ratio"] = row[label]["waves"] / row["full"]["waves"]
                    except Exception as e:
                        row[f"{label}_error"] = f"{type(e).__name__}: {e}"[:300]
            except Exception as e:
                d[f"{label}_error"] = f"{type(e).__name__}: {e}"[:300]
            finally:
                if split:
                    split.close()
            save("smaxis", d)
        del rot
        torch.cuda.empty_cache()
    return d


def _load(stage: str) -> dict:
    try:
        return json.loads((OUT / f"emu-{stage}.json").read_text())
    except (OSError, ValueError):
        return {}


def table() -> None:
    g, c, s = _load("green"), _load("ceilings"), _load("smaxis")
    print("== green contexts ==")
    for n, r in (g.get("probe") or {}).items():
        print(f"  ask {n:>3}: " + (f"got {r['sms']} (+{r['rest_sms']} left)" if r.get("ok") else f"FAIL {r.get('error')}"))
    for k in ("full_gpu", "green80_direct", "rest_direct", "green80_graph_replay", "green80_graph_captured_on_green"):
        if k in g:
            print(f"  {k}: distinct SMs {g[k].get('distinct_sms')} unset {g[k].get('unset')} {g[k].get('error', '')}")
    if "disjoint" in g:
        print(f"  green 80 and rest disjoint: {g['disjoint']}")
    print("== read ceilings (GB/s) ==")
    for r in c.get("runs", []):
        m = r.get("measured") or {}
        if r.get("error"):
            print(f"  {r['label']}: ERROR {r['error'][:200]}")
            continue
        print(f"  {r['label']}: full {m.get('attached_ceiling_gbps', 0):.0f} · inside free {m.get('free_gbps', 0):.0f} · "
              f"goal {m.get('goal_gbps', 0):.0f} -> achieved {m.get('achieved_gbps', 0):.0f} at throttle "
              f"{m.get('throttle_gbps', 0):.0f} ({len(m.get('calibration', []))} steps, {r.get('start_s', 0):.1f} s) · "
              f"recheck {', '.join(f'{x:.0f}' for x in r.get('recheck_gbps', []))} · placement {m.get('placement')}")
        if r.get("warm_read_gbps_by_mb"):
            print("    warm read by MB: " + ", ".join(f"{k}:{v:.0f}" for k, v in r["warm_read_gbps_by_mb"].items()))
    print("== SM axis (µs; ratio to full; wave ratio) ==")
    for r in s.get("rows", []):
        errs = [f"{k}: {v[:120]}" for k, v in r.items() if k.endswith("error")]
        if "full" not in r:
            print(f"  {r['variant']:<10} {r['shape']:<14} ERROR {'; '.join(errs)}")
            continue
        parts = [f"full {r['full']['median_us']:.1f}"]
        for lab in ("green66", "green80"):
            x = r.get(lab)
            if x and "ratio_vs_full" in x:
                parts.append(f"{x['sms']} SMs {x['median_us']:.1f} ({x['ratio_vs_full']:.2f}x, waves {x['wave_ratio']:.2f}x)")
        parts += errs
        print(f"  {r['variant']:<10} {r['shape']:<14} " + " · ".join(parts))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    stage = sys.argv[1]
    if stage == "table":
        table()
    else:
        try:
            {"green": green, "ceilings": ceilings, "smaxis": smaxis}[stage]()
        except Exception:
            traceback.print_exc()
            sys.exit(1)
