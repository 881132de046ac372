"""Does a backend generate what FLASH_ATTN generates? Greedy ids and top-k log-probabilities.

Per grid point the runner keeps, for every sequence, the greedy token ids of the first 16 steps
and the top-20 log-probabilities of step 0 (the token the prefill pass produces) and step 1 (the
first decode step: the decode kernel's own output; compared only where step 0 chose the same
token, so both backends saw the same input). Log-probabilities are compared token by token on the
ids both top-k lists hold, to a bf16 tolerance: |a − b| ≤ atol + rtol·max(|a|, |b|), rtol = 2⁻⁷
(bf16's epsilon: the logits leave the LM head in bf16).

With random weights, greedy ids over 16 steps are mostly rounding noise (settings.py has the
measurement): two correct attentions, or even the same one run twice, part ways on many
sequences. So the ids criterion is "≥ 90% of sequences, or no fewer than the floor": the share of
sequences on which another of vLLM's own backends (TRITON_ATTN) follows FLASH_ATTN at the same
point. The first decode step's log-probabilities carry the sharp check.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

TopK = Sequence[Sequence[float]]        # [[token_id, logprob], ...] of one position


@dataclass(frozen=True)
class Tolerances:
    ids_steps: int = 16
    ids_min_fraction: float = 0.90      # sequences whose first ids_steps greedy ids all match
    logprob_atol: float = 0.02
    logprob_rtol: float = 2.0 ** -7
    logprob_min_fraction: float = 0.90  # sequences whose compared log-probabilities are all within tolerance
    min_common: float = 0.5             # top-k lists sharing fewer ids than this fraction disagree
    ids_floor_backend: str = "TRITON_ATTN"   # its agreement with FLASH_ATTN is the ids noise floor

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PointOutputs:
    """What one backend produced at one grid point (written by the runner, JSON)."""
    ids: list[list[int]]                                   # per sequence: greedy ids of the first steps
    top_logprobs: list[list[list[list[float]]]] = field(default_factory=list)  # [seq][step][k] = [id, lp]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PointOutputs":
        return cls(ids=[list(map(int, x)) for x in d["ids"]], top_logprobs=d.get("top_logprobs", []))


@dataclass(frozen=True)
class Agreement:
    sequences: int
    ids_match_fraction: float
    mean_matching_prefix: float
    logprob_ok_fraction: float
    logprob_max_abs_diff: float | None
    positions_compared: int
    ok: bool
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def matching_prefix(a: Sequence[int], b: Sequence[int], n: int) -> int:
    k = 0
    for x, y in zip(a[:n], b[:n]):
        if x != y:
            break
        k += 1
    return k


def compare_topk(a: TopK, b: TopK, tol: Tolerances) -> tuple[bool, float | None]:
    """(within tolerance, max |diff|) over the token ids both lists hold."""
    da = {int(t): float(lp) for t, lp in a}
    db = {int(t): float(lp) for t, lp in b}
    common = set(da) & set(db)
    if not da or not db or len(common) < tol.min_common * min(len(da), len(db)):
        return False, None
    diffs = [(abs(da[t] - db[t]), max(abs(da[t]), abs(db[t]))) for t in common]
    ok = all(d <= tol.logprob_atol + tol.logprob_rtol * m for d, m in diffs)
    return ok, max(d for d, _ in diffs)


def agreement(ref: PointOutputs, got: PointOutputs, tol: Tolerances = Tolerances(),
              floor_ids: float | None = None) -> Agreement:
    """How closely `got` (a backend) follows `ref` (FLASH_ATTN) at one grid point; floor_ids: the ids
    match fraction of the floor backend at the same point (None: the absolute threshold alone)."""
    n = min(len(ref.ids), len(got.ids))
    if n == 0 or len(ref.ids) != len(got.ids):
        return Agreement(sequences=n, ids_match_fraction=0.0, mean_matching_prefix=0.0, logprob_ok_fraction=0.0,
                         logprob_max_abs_diff=None, positions_compared=0, ok=False,
                         verdict=f"not comparable: {len(got.ids)} sequences vs {len(ref.ids)}")
    steps = tol.ids_steps
    prefixes = [matching_prefix(r, g, steps) for r, g in zip(ref.ids, got.ids)]
    full = sum(1 for p, r, g in zip(prefixes, ref.ids, got.ids) if p >= min(steps, len(r), len(g)) and
               min(len(r), len(g)) > 0)
    ids_frac = full / n
    lp_ok, worst, compared, with_lp = 0, None, 0, 0
    for i in range(n):
        ra = ref.top_logprobs[i] if i < len(ref.top_logprobs) else []
        ga = got.top_logprobs[i] if i < len(got.top_logprobs) else []
        positions = min(len(ra), len(ga))
        if prefixes[i] < 1:              # step 1 saw different inputs: compare step 0 only
            positions = min(positions, 1)
        if positions == 0:
            continue
        with_lp += 1
        seq_ok = True
        for s in range(positions):
            ok, d = compare_topk(ra[s], ga[s], tol)
            compared += 1
            seq_ok &= ok
            if d is not None:
                worst = d if worst is None else max(worst, d)
        lp_ok += seq_ok
    lp_frac = lp_ok / with_lp if with_lp else 0.0
    problems = []
    if ids_frac < tol.ids_min_fraction and (floor_ids is None or ids_frac < floor_ids):
        floor = f" and < {tol.ids_floor_backend}'s {floor_ids:.0%}" if floor_ids is not None else ""
        problems.append(f"greedy ids match on {ids_frac:.0%} of sequences (< {tol.ids_min_fraction:.0%}{floor})")
    if not with_lp:
        problems.append("no log-probabilities to compare")
    elif lp_frac < tol.logprob_min_fraction:
        problems.append(f"log-probabilities within bf16 tolerance on {lp_frac:.0%} of sequences "
                        f"(< {tol.logprob_min_fraction:.0%}; max |diff| {worst if worst is not None else float('nan'):.3g})")
    ok = not problems
    verdict = "pass" if ok else "FAIL: " + "; ".join(problems)
    if ok and ids_frac < tol.ids_min_fraction:
        verdict = f"pass (ids {ids_frac:.0%} ≥ {tol.ids_floor_backend}'s {floor_ids:.0%})"
    return Agreement(sequences=n, ids_match_fraction=ids_frac, mean_matching_prefix=sum(prefixes) / n,
                     logprob_ok_fraction=lp_frac, logprob_max_abs_diff=worst, positions_compared=compared,
                     ok=ok, verdict=verdict)
