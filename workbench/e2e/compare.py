"""The e2e table: per grid point and backend, throughput and ITL, the ratio to FLASH_ATTN, attention's
share a, the kernel ratio k, predicted vs measured, and the correctness verdict; a rich table and a
plot of it. Works from an `E2eRun` alone (its JSON holds the bench ratios it used).

Columns "a" = FLASH_ATTN's attention share at the point (what the prediction uses), "a own" = the
row's backend's own share where it was captured too (share_backends). With a bench timed with
`--fused-write` (k of attention + the step's KV write) the column is "a+write": attention and FLASH_ATTN's
write kernel together.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workbench.measure.stats import geomean
from workbench.measure.suite import shape_label

from .correctness import Agreement, Tolerances, agreement
from .prediction import RATIO_TOLERANCE, predicted_ratio
from .results import E2eRun, repeat_key

PACKAGE_BACKEND = "CUSTOM"
SPEED_FLOOR = 0.99            # the package never slower than FLASH_ATTN (issue 13's target)


@dataclass
class Row:
    point: str
    batch: int
    context: int
    backend: str
    status: str
    reason: str = ""
    tok_s: float | None = None
    itl_mean_ms: float | None = None
    itl_p99_ms: float | None = None
    ratio: float | None = None              # tok/s ÷ FLASH_ATTN's at the point
    a: float | None = None                  # FLASH_ATTN's attention share at the point
    a_own: float | None = None              # this backend's own attention share (if captured)
    k: float | None = None                  # kernel ratio from the bench (package row only)
    predicted: float | None = None
    vs_predicted: float | None = None       # measured ÷ predicted − 1
    prediction_ok: bool | None = None
    speed_ok: bool | None = None
    correctness: Agreement | None = None
    self_ids_match: float | None = None     # this backend vs itself run twice (its own rounding noise)
    ref_drift: float | None = None          # the reference's second run ÷ its first − 1 (`--reference-twice`)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["correctness"] = self.correctness.to_dict() if self.correctness else None
        return d


def _share_a(run: E2eRun, backend: str, batch: int, context: int, with_write: bool = False) -> float | None:
    """Attention's share of the backend's step at the point; with_write: attention and its KV-cache
    write kernel together (what a `bench --fused-write` k is the ratio of)."""
    s = run.share(backend, batch, context)
    if s is None or s.status != "ok":
        return None
    a = s.a if s.a is not None else s.a_kernels
    if with_write and a is not None:
        if not s.attention_us_per_step or s.kv_write_us_per_step is None:
            return None                          # a capture that did not separate the write
        a *= 1.0 + s.kv_write_us_per_step / s.attention_us_per_step
    return a


def rows(run: E2eRun) -> list[Row]:
    tol = Tolerances(**run.tolerances) if run.tolerances else Tolerances()
    ratios = (run.bench or {}).get("ratios") or {}
    with_write = bool((run.bench or {}).get("includes_write"))
    ref = run.results.get(run.reference)
    again = run.results.get(repeat_key(run.reference))
    stored = (run.floor or {}).get("points") or {}          # an earlier run's floor (--floor-from)
    out = []
    for pd in run.grid.get("points", []):
        b, c = int(pd["batch"]), int(pd["context"])
        label = shape_label(b, c)
        rp = ref.point(b, c) if ref else None
        rp2 = again.point(b, c) if again else None
        # with the reference run twice (before and after the others), ratios are to the mean of its runs
        ref_tok = rp.tok_s if rp is not None else None
        drift = ref_itl = None
        if ref_tok and rp2 is not None and rp2.tok_s:
            drift = rp2.tok_s / ref_tok - 1.0
            ref_tok = (ref_tok + rp2.tok_s) / 2
            ref_itl = (rp.itl_mean_ms + rp2.itl_mean_ms) / 2 if rp.itl_mean_ms and rp2.itl_mean_ms else None
        a = _share_a(run, run.reference, b, c, with_write)
        for name in run.backends:
            br = run.results.get(name)
            p = br.point(b, c) if br else None
            if p is None:
                why = (br.reason if br and br.status == "failed" else "not measured") if br else "not run"
                out.append(Row(label, b, c, name, status="missing", reason=why, a=a))
                continue
            r = Row(label, b, c, name, status=p.status, reason=p.reason, tok_s=p.tok_s, itl_mean_ms=p.itl_mean_ms,
                    itl_p99_ms=p.itl_p99_ms, a=a, a_own=_share_a(run, name, b, c), self_ids_match=p.self_ids_match)
            if name == run.reference and drift is not None:      # the row shows the mean of its two runs
                r.tok_s, r.itl_mean_ms, r.ref_drift = ref_tok, ref_itl, drift
            if p.tok_s and ref_tok:
                r.ratio = 1.0 if name == run.reference else p.tok_s / ref_tok
            if name != run.reference and p.outputs is not None and rp is not None and rp.outputs is not None:
                floor = None
                fb = run.results.get(tol.ids_floor_backend)
                fp = fb.point(b, c) if fb is not None and name != tol.ids_floor_backend else None
                if fp is not None and fp.outputs is not None:
                    floor = agreement(rp.outputs, fp.outputs, tol).ids_match_fraction
                elif name != tol.ids_floor_backend and label in stored:
                    floor = stored[label]["ids_match_fraction"]
                r.correctness = agreement(rp.outputs, p.outputs, tol, floor)
            if name == PACKAGE_BACKEND:
                r.k = ratios.get(label)
                if r.ratio is not None:
                    r.speed_ok = r.ratio >= SPEED_FLOOR
                if r.k is not None and a is not None:
                    r.predicted = predicted_ratio(a, r.k)
                    if r.ratio is not None:
                        r.vs_predicted = r.ratio / r.predicted - 1.0
                        r.prediction_ok = abs(r.vs_predicted) <= RATIO_TOLERANCE
            out.append(r)
    return out


def pooled_correctness(run: E2eRun, rs: list[Row]) -> dict[str, Any]:
    """Per backend, its agreement with the reference pooled over every sequence of the grid points
    the floor backend (TRITON_ATTN) also measured, beside the floor's own on the same points.

    Why pooled: a point holds 1 to 64 sequences, and with random weights 16 greedy ids part ways on
    about half of them even between two correct backends (settings.py): a point's ids fraction is
    noise, and b1 points (one sequence) pass or fail on a coin toss. Over the grid's hundreds of
    sequences, "follows the reference as closely as vLLM's own second backend does" is a test:
    ids fraction ≥ the floor's minus two standard errors of the difference (or ≥ ids_min_fraction),
    and log-probabilities of the first steps within bf16 tolerance on ≥ logprob_min_fraction.
    Where this run did not measure the floor backend, an earlier run's (run.floor, `--floor-from`) stands
    in, over the points both hold."""
    import math
    tol = Tolerances(**run.tolerances) if run.tolerances else Tolerances()
    floor_pts = {r.point for r in rs if r.backend == tol.ids_floor_backend and r.correctness is not None}
    stored = {} if floor_pts else dict((getattr(run, "floor", None) or {}).get("points") or {})
    out: dict[str, Any] = {}

    def pooled(mine: list[Any]) -> dict[str, Any] | None:
        n = sum(a.sequences for a in mine)
        if not n:
            return None
        return {"points": len(mine), "sequences": n,
                "ids_match_fraction": sum(a.ids_match_fraction * a.sequences for a in mine) / n,
                "logprob_ok_fraction": sum(a.logprob_ok_fraction * a.sequences for a in mine) / n,
                "mean_matching_prefix": sum(a.mean_matching_prefix * a.sequences for a in mine) / n}

    def pool(name: str, pts: set[str]) -> dict[str, Any] | None:
        return pooled([r.correctness for r in rs if r.backend == name and r.point in pts and r.correctness is not None])

    measured = pool(tol.ids_floor_backend, floor_pts)

    def floor_for(mine: set[str]) -> tuple[dict[str, Any] | None, set[str]]:
        """The floor for a backend with correctness at points `mine`, and the points both are pooled over."""
        if not stored:
            return measured, floor_pts
        pts = mine & set(stored)
        f = pooled([Agreement(**stored[p]) for p in sorted(pts)])
        return (f and {**f, "from": run.floor.get("from"), "created": run.floor.get("created")}), pts

    for name in run.backends:
        if name == run.reference:
            continue
        mine = {r.point for r in rs if r.backend == name and r.correctness is not None}
        floor, pts = floor_for(mine) if name != tol.ids_floor_backend else (None, mine)
        me = pool(name, pts if floor else mine)
        if me is None:
            continue
        problems = []
        if me["logprob_ok_fraction"] < tol.logprob_min_fraction:
            problems.append(f"log-probabilities within bf16 tolerance on {me['logprob_ok_fraction']:.0%} of "
                            f"sequences (< {tol.logprob_min_fraction:.0%})")
        ids, need = me["ids_match_fraction"], tol.ids_min_fraction
        if floor is not None and name != tol.ids_floor_backend:
            p, q = floor["ids_match_fraction"], ids
            se = math.sqrt(p * (1 - p) / floor["sequences"] + q * (1 - q) / me["sequences"])
            need = min(need, p - 2 * se)
            me["floor"] = floor
        if ids < need:
            problems.append(f"greedy ids match on {ids:.0%} of sequences (< {need:.0%})")
        me["ok"] = not problems
        me["verdict"] = "pass" if not problems else "FAIL: " + "; ".join(problems)
        if name == tol.ids_floor_backend and me["logprob_ok_fraction"] >= tol.logprob_min_fraction:
            me["verdict"] = f"the floor (vLLM's own second backend): {me['verdict']}"
        out[name] = me
    return out


def step_breakdown(run: E2eRun) -> list[dict[str, Any]]:
    """Where a backend's decode step differs from the reference's, per point where both were captured
    under nsys (--share-backends FLASH_ATTN,CUSTOM): µs per step of attention kernels, KV-cache
    write, every other kernel, and what is not kernel time (the unprofiled mean ITL minus the
    capture's kernel time: host work, launch gaps). Times are on the timeline (attention_share: a
    class's time is when only its kernels run), so they add up to the step. A kernel win that does
    not reach the step shows up in the last three. Also the attention ratio as the engine runs it
    (k_engine) beside the bench's k, and the prediction from k_engine."""
    out = []
    ref = run.results.get(run.reference)
    for s in run.shares:
        if s.backend == run.reference or s.status != "ok":
            continue
        r = run.share(run.reference, s.batch, s.context)
        me = run.results.get(s.backend)
        mp = me.point(s.batch, s.context) if me else None
        rp = ref.point(s.batch, s.context) if ref else None
        if r is None or r.status != "ok" or None in (s.attention_us_per_step, r.attention_us_per_step,
                                                      s.kernel_us_per_step, r.kernel_us_per_step):
            continue
        d = {"point": s.label, "backend": s.backend,
             "attention_own_us": s.attention_us_per_step, "attention_ref_us": r.attention_us_per_step,
             # the kernel ratio as the engine runs it (captured graphs, PDL, the kernels around it),
             # beside the bench's k (attention alone, cold L2)
             "k_engine": (r.attention_us_per_step / s.attention_us_per_step) if s.attention_us_per_step else None,
             "k_bench": ((run.bench or {}).get("ratios") or {}).get(s.label),
             "attention_us": s.attention_us_per_step - r.attention_us_per_step,
             "kv_write_us": (s.kv_write_us_per_step or 0.0) - (r.kv_write_us_per_step or 0.0),
             "other_kernels_us": (s.kernel_us_per_step - s.attention_us_per_step - (s.kv_write_us_per_step or 0.0))
             - (r.kernel_us_per_step - r.attention_us_per_step - (r.kv_write_us_per_step or 0.0)),
             "not_kernel_us": None, "itl_us": None}
        if mp is not None and rp is not None and mp.itl_mean_ms and rp.itl_mean_ms:
            d["itl_us"] = (mp.itl_mean_ms - rp.itl_mean_ms) * 1e3
            d["not_kernel_us"] = (mp.itl_mean_ms * 1e3 - s.kernel_us_per_step) - (rp.itl_mean_ms * 1e3 - r.kernel_us_per_step)
        d["other_top"] = other_kernel_deltas(r.other_kernels, s.other_kernels)
        d["predicted_engine"] = predicted_ratio(r.a, d["k_engine"]) if r.a is not None and d["k_engine"] else None
        # what the attention measured in the engine does not explain: the rest of the step (session 25:
        # ±2–3% in the non-attention GEMMs, either sign, with the host)
        d["outside_attention"] = (rp.itl_mean_ms / mp.itl_mean_ms / d["predicted_engine"] - 1.0
                                  if d["predicted_engine"] and d["itl_us"] is not None else None)
        out.append(d)
    return out


def other_kernel_deltas(ref: dict[str, list[float]], own: dict[str, list[float]], n: int = 3) -> list[dict[str, Any]]:
    """The non-attention kernels whose time per step differs most between two captures of a point,
    with µs a launch in each (session 25: the MLP's gate/up GEMM, 56.6 µs a launch in one engine and
    61.2 in the other, every layer: +147 µs a step that attention had nothing to do with)."""
    out = []
    for name in set(ref) | set(own):
        rc, ru = ref.get(name, [0.0, 0.0])
        oc, ou = own.get(name, [0.0, 0.0])
        out.append({"kernel": name, "delta_us": ou - ru, "ref_us_per_launch": ru / rc if rc else None,
                    "own_us_per_launch": ou / oc if oc else None})
    return sorted(out, key=lambda d: -abs(d["delta_us"]))[:n]


CLOCK_TOLERANCE = 0.01    # SM clocks of two runs further apart than this: their ratio holds a clock change


def clock_summary(run: E2eRun) -> dict[str, Any]:
    """Per point, the median SM clock (NVML) each backend's run decoded at, and the points where runs
    differ by more than CLOCK_TOLERANCE: there a tok/s ratio measures the clocks as well as the backends."""
    per: dict[str, dict[str, float]] = {}
    reasons: dict[str, list[str]] = {}
    for name, res in run.results.items():
        for p in res.points:
            c = p.clocks or {}
            if c.get("sm_mhz_median"):
                per.setdefault(p.label, {})[name] = float(c["sm_mhz_median"])
            if c.get("reasons"):
                reasons.setdefault(p.label, []).append(f"{name}: {'/'.join(c['reasons'])}")
    apart = [lab for lab, d in per.items() if len(d) > 1 and _spread(d.values()) > CLOCK_TOLERANCE]
    return {"sm_mhz": per, "apart": apart, "reasons": reasons}


def _spread(mhz: Any) -> float:
    """How far apart (a fraction) runs decoded on the SM clock: the fastest over the slowest, minus one."""
    v = list(mhz)
    return max(v) / min(v) - 1


def clock_lines(clocks: dict[str, Any]) -> list[str]:
    per = clocks.get("sm_mhz") or {}
    if not per:
        return []
    vals = [v for d in per.values() for v in d.values()]
    lines = [f"GPU SM clock over the decode windows (NVML median per run): {min(vals):.0f}–{max(vals):.0f} MHz"]
    # the throttle reasons only where the runs' clocks part: a power cap that every run hits alike
    # (b8/b32 on the H200, session 25) moves no ratio; the JSON keeps them all
    reasons = clocks.get("reasons") or {}
    for lab in clocks.get("apart") or []:
        d = per[lab]
        why = f"; held down by {'; '.join(reasons[lab])}" if reasons.get(lab) else ""
        lines.append(f"  {lab}: runs at different clocks ({', '.join(f'{n} {v:.0f}' for n, v in d.items())} MHz): "
                     f"the ratio there holds a {_spread(d.values()):.1%} clock difference{why}")
    return lines


def breakdown_lines(run: E2eRun, bd: list[dict[str, Any]]) -> list[str]:
    f = lambda x: "–" if x is None else f"{x:+.0f}"  # noqa: E731
    g = lambda x, fmt: "–" if x is None else format(x, fmt)  # noqa: E731
    return [f"step {d['backend']} − {run.reference} at {d['point']} (µs/step): attention {f(d['attention_us'])}, "
            f"KV write {f(d['kv_write_us'])}, other kernels {f(d['other_kernels_us'])}, not kernel time "
            f"{f(d['not_kernel_us'])} = ITL {f(d['itl_us'])}; attention in the engine "
            f"{g(d.get('attention_ref_us'), '.0f')} → {g(d.get('attention_own_us'), '.0f')} µs/step: k in the engine "
            f"{g(d.get('k_engine'), '.2f')} (bench {g(d.get('k_bench'), '.2f')}), predicted from it "
            f"{g(d.get('predicted_engine'), '.3f')}, measured "
            f"{g(None if d.get('outside_attention') is None else d['outside_attention'] * 100, '+.1f')}% off it "
            f"(outside attention)" + _others(d.get("other_top")) for d in bd]


def _others(top: list[dict[str, Any]] | None) -> str:
    g = lambda x: "–" if x is None else f"{x:.1f}"  # noqa: E731
    if not top:
        return ""
    return "; other kernels that differ most: " + ", ".join(
        f"{t['kernel'][:48]} {t['delta_us']:+.0f} µs/step ({g(t['ref_us_per_launch'])} → "
        f"{g(t['own_us_per_launch'])} µs a launch)" for t in top)


def pooled_lines(run: E2eRun, pooled: dict[str, Any]) -> list[str]:
    lines = []
    for name, d in pooled.items():
        f = d.get("floor")
        fb = Tolerances(**run.tolerances).ids_floor_backend if run.tolerances else "TRITON_ATTN"
        if f and f.get("from"):
            fb += f" (measured {f.get('created') or '?'}, --floor-from)"
        vs = (f"; {fb} on the same "
              f"points: ids {f['ids_match_fraction']:.0%}, log-probs {f['logprob_ok_fraction']:.0%}, prefix "
              f"{f['mean_matching_prefix']:.1f}") if f else ""
        lines.append(f"correctness {name} vs {run.reference}, pooled over {d['sequences']} sequences at {d['points']} "
                     f"points: ids {d['ids_match_fraction']:.0%}, log-probs {d['logprob_ok_fraction']:.0%}, mean "
                     f"matching prefix {d['mean_matching_prefix']:.1f} of 16{vs} -> {d['verdict']}")
    return lines


def summary(run: E2eRun, rs: list[Row] | None = None) -> dict[str, Any]:
    rs = rows(run) if rs is None else rs
    out: dict[str, Any] = {"geomean_ratio_vs_reference": {}, "correctness": {}, "failed": {}}
    for name in run.backends:
        mine = [r for r in rs if r.backend == name]
        out["geomean_ratio_vs_reference"][name] = geomean([r.ratio for r in mine if r.ratio])
        checked = [r for r in mine if r.correctness is not None]
        if checked:
            out["correctness"][name] = {"pass": sum(r.correctness.ok for r in checked), "of": len(checked)}
        bad = [f"{r.point}: {r.reason}" for r in mine if r.status in ("failed", "missing")]
        if bad:
            out["failed"][name] = bad
    drifts = [r.ref_drift for r in rs if r.ref_drift is not None]
    if drifts:
        out["reference_drift"] = {"points": len(drifts), "max_abs": max(abs(d) for d in drifts),
                                  "over_tolerance": [f"{r.point}: {r.ref_drift:+.1%}" for r in rs
                                                     if r.ref_drift is not None and abs(r.ref_drift) > RATIO_TOLERANCE]}
    out["correctness_pooled"] = pooled_correctness(run, rs)
    out["step_breakdown"] = step_breakdown(run)
    out["clocks"] = clock_summary(run)
    pkg = [r for r in rs if r.backend == PACKAGE_BACKEND and r.ratio is not None]
    if pkg:
        out["package"] = {
            "points": len(pkg),
            "slower_than_floor": [r.point for r in pkg if r.speed_ok is False],
            "prediction_within_2pct": sum(1 for r in pkg if r.prediction_ok),
            "prediction_compared": sum(1 for r in pkg if r.prediction_ok is not None),
            "prediction_off": [f"{r.point}: {r.vs_predicted:+.1%}" for r in pkg if r.prediction_ok is False],
        }
        # the same count over the points where the package's run and the reference's decoded at one SM clock:
        # under a power cap the two runs of a point can part by 5-30% (session 29), and a memory-bound step
        # moves less than that but not nothing, so a miss there does not test the prediction alone
        per = out["clocks"]["sm_mhz"]
        gap = {}                                   # point -> clock spread of the two runs (known at both)
        for r in pkg:
            d = per.get(r.point, {})
            if r.prediction_ok is not None and d.get(run.reference) and d.get(PACKAGE_BACKEND):
                gap[r.point] = _spread((d[run.reference], d[PACKAGE_BACKEND]))
        same = [r for r in pkg if r.point in gap and gap[r.point] <= CLOCK_TOLERANCE]
        out["package"]["prediction_clock_matched"] = {
            "compared": len(same), "within_2pct": sum(1 for r in same if r.prediction_ok),
            "off": [f"{r.point}: {r.vs_predicted:+.1%}" for r in same if r.prediction_ok is False],
            "apart": [f"{r.point}: {r.vs_predicted:+.1%} at a {gap[r.point]:.1%} clock gap" for r in pkg
                      if gap.get(r.point, 0.0) > CLOCK_TOLERANCE]}
    return out


def prediction_lines(run: E2eRun, pkg: dict[str, Any] | None) -> list[str]:
    """The package's prediction count, over all points and over those whose runs kept one SM clock."""
    if not pkg or not pkg.get("prediction_compared"):
        return []
    line = (f"prediction ({PACKAGE_BACKEND} ÷ {run.reference}, ±{RATIO_TOLERANCE:.0%}): {pkg['prediction_within_2pct']} "
            f"of {pkg['prediction_compared']} points")
    cm = pkg.get("prediction_clock_matched")
    if cm and cm["compared"] < pkg["prediction_compared"]:
        line += (f"; {cm['within_2pct']} of the {cm['compared']} where both runs decoded at one SM clock (±"
                 f"{CLOCK_TOLERANCE:.0%})" + (f", off there: {', '.join(cm['off'])}" if cm["off"] else ""))
        if cm["apart"]:
            line += f"; at different clocks: {', '.join(cm['apart'])}"
    return [line]


def _f(x: Any, fmt: str) -> str:
    if x is None or (isinstance(x, float) and x != x):
        return "–"
    return format(x, fmt)


def table(run: E2eRun, rs: list[Row] | None = None) -> Any:
    from rich.table import Table
    rs = rows(run) if rs is None else rs
    s = run.settings
    prov = run.provenance or {}
    t = Table(title=f"vLLM e2e · {prov.get('gpu', '?')} · {run.model.get('model')} · {s.get('dtype')} block "
                    f"{s.get('block_size')} · {run.decode_steps} decode steps · vLLM {prov.get('vllm', '?')} · "
                    f"weights {s.get('weights')}", title_justify="left")
    twice = any(r.ref_drift is not None for r in rs)
    a_col = "a+write" if (run.bench or {}).get("includes_write") else "a"     # what the k of the bench covers
    for c in ("point", "backend", "tok/s", "ITL ms", "p99 ms", f"× {run.reference}", *(["ref Δ"] if twice else []),
              a_col, "a own", "k", "predicted ×", "meas/pred", "ids match (self)", "max |Δlogprob|", "verdict"):
        t.add_column(c, justify="left" if c in ("point", "backend", "verdict") else "right")
    last = None
    for r in rs:
        if last is not None and r.point != last:
            t.add_section()
        last = r.point
        ag = r.correctness
        verdict = []
        if r.status not in ("ok",):
            verdict.append(f"{r.status}: {r.reason}"[:60])
        if ag is not None:
            verdict.append("correct" if ag.ok else ag.verdict[:60])
        if r.speed_ok is False:
            verdict.append(f"< {SPEED_FLOOR}×")
        if r.prediction_ok is not None:
            verdict.append("as predicted" if r.prediction_ok else "off prediction")
        drift = [_f(None if r.ref_drift is None else r.ref_drift * 100, "+.1f") + ("%" if r.ref_drift is not None
                                                                               else "")] if twice else []
        t.add_row(r.point, r.backend, _f(r.tok_s, ".0f"), _f(r.itl_mean_ms, ".2f"), _f(r.itl_p99_ms, ".2f"),
                  _f(r.ratio, ".3f"), *drift, _f(r.a, ".2f"),
                  _f(r.a_own if r.backend != run.reference else None, ".2f"),
                  _f(r.k, ".2f"),
                  _f(r.predicted, ".3f"), _f(None if r.vs_predicted is None else r.vs_predicted * 100, "+.1f") +
                  ("%" if r.vs_predicted is not None else ""),
                  _f(ag.ids_match_fraction if ag else None, ".0%") + (f" ({r.self_ids_match:.0%})" if r.self_ids_match
                                                                      is not None else ""),
                  _f(ag.logprob_max_abs_diff if ag else None, ".3f"),
                  "; ".join(verdict))
    return t


def plot(run: E2eRun, path: str | Path, rs: list[Row] | None = None) -> Path:
    """Left: each backend's tok/s ÷ FLASH_ATTN per point; right: the package's measured vs predicted."""
    from workbench.ui.plots import pyplot
    plt = pyplot()
    rs = rows(run) if rs is None else rs
    points = list(dict.fromkeys(r.point for r in rs))
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [2, 1]})
    names = [n for n in run.backends if n != run.reference]
    w = 0.8 / max(1, len(names))
    for i, n in enumerate(names):
        ys = [next((r.ratio for r in rs if r.point == p and r.backend == n and r.ratio), float("nan")) for p in points]
        ax.bar([j + i * w - 0.4 + w / 2 for j in range(len(points))], ys, width=w, label=n)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.axhline(SPEED_FLOOR, color="r", lw=0.8, ls="--", label=f"{SPEED_FLOOR}×")
    ax.set_xticks(range(len(points)))
    ax.set_xticklabels(points, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(f"decode tok/s ÷ {run.reference}")
    ax.set_title(f"{(run.provenance or {}).get('gpu', '?')} · {run.model.get('model')}", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=.3, axis="y")
    pk = [r for r in rs if r.backend == PACKAGE_BACKEND and r.predicted and r.ratio]
    if pk:
        xs, ys = [r.predicted for r in pk], [r.ratio for r in pk]
        lo, hi = min(xs + ys) * 0.97, max(xs + ys) * 1.03
        ax2.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        ax2.fill_between([lo, hi], [lo * (1 - RATIO_TOLERANCE), hi * (1 - RATIO_TOLERANCE)],
                         [lo * (1 + RATIO_TOLERANCE), hi * (1 + RATIO_TOLERANCE)], alpha=.15, label="±2%")
        ax2.scatter(xs, ys, c=[r.a for r in pk], cmap="viridis")
        for r in pk:
            ax2.annotate(r.point, (r.predicted, r.ratio), fontsize=7)
        ax2.legend(fontsize=8)
    else:
        ax2.text(0.5, 0.5, "no prediction\n(needs a bench JSON and a)", ha="center", va="center",
                 transform=ax2.transAxes)
    ax2.set_xlabel("predicted 1 / ((1 − a) + a / k)")
    ax2.set_ylabel("measured")
    ax2.set_title(f"{PACKAGE_BACKEND}: measured vs predicted", fontsize=10)
    ax2.grid(alpha=.3)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
