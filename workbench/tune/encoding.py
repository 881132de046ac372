"""tune.encoding (split from study.py)."""
from __future__ import annotations

from workbench.tune.storage import StudyHandle

from typing import Any

from workbench.kernel.space import Space, heads_per_cta_values
from workbench.kernel.variant import Variant
from workbench.kernel.references import simple, simple_pf


# every tunable knob a space may list, in the order Optuna is asked (prefetch_distance before the
# knobs that only mean something when prefetching). A knob with one value in the space is fixed,
# not asked: studies made before a knob existed keep their parameter sets.
KNOB_ORDER = ("algorithm", "threads", "heads_per_cta", "partition", "stages", "mma", "unified_ring", "reduce", "k_load",
              "serial", "vllm_math", "prefetch_distance", "prefetch_target", "prefetch_op", "prefetch_hint",
              "fault")


PF_ONLY = ("prefetch_target", "prefetch_op", "prefetch_hint")    # asked only when prefetching
# the knobs studies have always asked, even with one value (their trials' parameter sets)
ASKED_ALWAYS = ("threads", "heads_per_cta", "partition", "stages", "prefetch_distance", "prefetch_target",
                "prefetch_op", "prefetch_hint", "fault")


# knobs a choice already settles: not asked after it, where the space allows the implied value. A onepass
# variant streams K and V through one tensor-core ring, so it is valid only with mma, without the unified
# ring (a twopass ring), without L2 prefetch and with the reduce kernel: asked freely, these made 2581 of
# 2690 asks of a 170 s llama-3.1-70b TP8 tune on the H200 invalid (2026-11-29), TPE circling its onepass best.
IMPLIED: dict[tuple[str, Any], dict[str, Any]] = {
    ("algorithm", "onepass"): {"mma": True, "unified_ring": False, "prefetch_distance": 0, "reduce": "kernel"},
}


def implied(p: dict[str, Any], ch: dict[str, list[Any]]) -> dict[str, Any]:
    """The knobs the choices in `p` settle, among those the space lets take that value."""
    out: dict[str, Any] = {}
    for (k, v), sets in IMPLIED.items():
        if p.get(k) == v:
            out.update({kk: vv for kk, vv in sets.items() if vv in ch.get(kk, ())})
    return out


# ---- search space as Optuna parameters ----------------------------------------------------
def choices(space: Space, group: int, prefetch_kind: str) -> dict[str, list[Any]]:
    """Knob -> allowed values for this model's GQA group and this GPU's prefetch support."""
    out: dict[str, list[Any]] = {}
    for k in KNOB_ORDER:
        if k not in space.knobs:
            continue
        vals = list(space.knobs[k])
        if k == "heads_per_cta":
            vals = list(heads_per_cta_values(vals, group))
        elif k == "partition":
            vals = [str(v) for v in vals]
        elif k == "prefetch_op":
            vals = [v for v in vals if prefetch_kind == "bulk" or v == "line"] or (["line"] if prefetch_kind == "line" else [])
        elif k == "prefetch_distance" and prefetch_kind == "none":
            vals = [0]
        if vals:
            out[k] = vals
    return out


def suggest_variant(trial: Any, ch: dict[str, list[Any]], shape: dict[str, Any]) -> Variant:
    p: dict[str, Any] = {}
    for k in KNOB_ORDER:
        if k not in ch or (k in PF_ONLY and not p.get("prefetch_distance")):
            continue
        settled = implied(p, ch)
        if k in settled:
            p[k] = settled[k]
            continue
        p[k] = ch[k][0] if len(ch[k]) == 1 and k not in ASKED_ALWAYS else trial.suggest_categorical(k, ch[k])
    return Variant.from_dict({**shape, **p})


class RandomTrial:
    """A stand-in for an Optuna trial that suggest_variant asks: each knob drawn uniformly with
    `rng`; `params` then holds what an Optuna trial of that variant would (for enqueue_trial)."""

    def __init__(self, rng: Any):
        self.rng, self.params = rng, {}

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        self.params[name] = self.rng.choice(choices)
        return self.params[name]


def params_of(v: Variant, ch: dict[str, list[Any]]) -> dict[str, Any] | None:
    """The Optuna params that make `v`, or None when the space cannot express it."""
    d = v.to_dict()
    from workbench.kernel.variant import partition_label
    out: dict[str, Any] = {}
    made: dict[str, Any] = {}                 # every knob's value so far, asked or fixed (as suggest_variant's p)
    for k in KNOB_ORDER:
        if k not in ch:
            continue
        if k in PF_ONLY and not v.prefetch_distance:
            continue
        val = partition_label(v.partition) if k == "partition" else d.get(k, getattr(v, k))
        if val not in ch[k]:
            return None
        settled = implied(made, ch)
        made[k] = val
        if k in settled:
            if val != settled[k]:
                return None                   # a combination suggest_variant never makes
            continue
        if len(ch[k]) > 1 or k in ASKED_ALWAYS:
            out[k] = val
    return out


def heuristic(shape: dict[str, Any], group: int, prefetch_kind: str) -> Variant:
    """A guess an engineer would try first: one CTA per GQA group (each KV tile read once),
    256 threads, split-K 512 for parallelism at small batch, prefetch two tiles ahead."""
    hpc = max(x for x in (1, 2, 4, 8) if x <= group and group % x == 0)
    pf = {} if prefetch_kind == "none" else {"prefetch_distance": 2, "prefetch_target": "kv",
                                             "prefetch_op": prefetch_kind}
    return Variant(**shape, threads=256, heads_per_cta=hpc, partition=512, **pf)


def seeds(shape: dict[str, Any], group: int, prefetch_kind: str) -> list[tuple[str, Variant]]:
    # our kernel in vLLM's decomposition, without and with the paper's prefetch (the references
    # `baseline` / `paper` are vLLM's own kernel: measured beside the study, not searched)
    b, p = simple(**shape), simple_pf(**shape)
    if prefetch_kind == "line":
        p = p.with_(prefetch_op="line")
    out = [("simple", b)]
    if prefetch_kind != "none":
        out.append(("simple-pf", p))
    out.append(("heuristic", heuristic(shape, group, prefetch_kind)))
    # the layout that won most shapes of the stages probe (H200, 2026-11-21): staged tiles
    hpc = heuristic(shape, group, "none").heads_per_cta
    out.append(("staged", Variant(**shape, threads=128, heads_per_cta=hpc, partition=1024, stages=3)))
    return out                         # enqueue_seeds skips, with a note, those outside the space


def enqueue_seeds(h: StudyHandle, seed_list: list[tuple[str, Variant]], ch: dict[str, list[Any]]) -> list[str]:
    """Enqueue each seed once per study (skip those already present). Returns notes."""
    from optuna.trial import TrialState
    notes = []
    trials = h.study.get_trials(deepcopy=False)
    have = {t.user_attrs.get("seed") for t in trials}
    present = {tuple(sorted((t.params or t.system_attrs.get("fixed_params", {})).items()))
               for t in trials if t.state in (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE)}
    for name, v in seed_list:
        p = params_of(v, ch)
        if p is None:
            notes.append(f"seed {name} is outside this space: not enqueued")
            continue
        if name in have or tuple(sorted(p.items())) in present:
            continue
        h.study.enqueue_trial(p, user_attrs={"seed": name}, skip_if_exists=False)
    return notes
