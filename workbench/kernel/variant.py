"""One kernel variant: a frozen, validated, hashable set of compile-time knobs.

All validity rules live here: value domains (raised as WorkbenchError, a user typo), combination
rules per target arch (returned as reasons: the variant is *invalid*, not broken), and the
launch-time rules that depend on a workload (shared memory for whole-sequence logits, GQA group).
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Sequence

from workbench.errors import VariantRejected, WorkbenchError

HEAD_SIZES = (64, 80, 96, 112, 128, 192, 256)
BLOCK_SIZES = (16, 32)
DTYPES = ("fp16", "bf16")
ALGORITHMS = ("twopass", "onepass", "vllm")   # vllm: vLLM 0.10.2's own kernel (reference only)
PARTITION_NONE = 0
PARTITION_VLLM = -1          # vLLM's v1/v2 rule: whole sequence, or split-K 512 past it
PARTITION_AUTO = -2          # tokens per partition chosen per launch so the grid fills the GPU
PARTITIONS = (PARTITION_NONE, 256, 512, 1024, PARTITION_VLLM, PARTITION_AUTO)
AUTO_MIN_TOKENS = 256        # auto: no partition shorter than this ...
AUTO_MAX_PARTS = 128         # ... nor more partitions than this
AUTO_GRAIN = 64              # auto partitions are multiples of this many tokens
AUTO_REDUCE_TOKENS = 64      # the reduce (a second short kernel) costs about this many tokens of a CTA
AUTO_WAVE_TOKENS = 128       # a wave's fixed cost (q load, pipeline fill, partial write) in tokens
GRAPH_WALK_SLACK = 0.05      # graph-bound grids: fewest partitions within this of the best fill,
GRAPH_WALK_WAVES = 8         # ... when a grid for the bound is more than this many waves of CTAs,
GRAPH_WALK_MAX = 2           # ... and no CTA walks more than this many partitions
GRAPH_SCHED_WAVES = 8        # scheduled graph-bound grids: item slots for this many waves of CTAs (empty
                             # ones cost little in grids this large: H200 bound sweep, 2026-11-28), the rest walked;
                             # scheduled where the grid for the bound is more than GRAPH_WALK_WAVES waves, or
SCHED_MIN_SEQS = 2           # ... for a batch of this many sequences or more (it may be ragged; one cannot)
SCHED_FEW_CTAS = 4           # ... whose sequences have at most this many CTAs each (kv-head groups);
SCHED_FEW_WAVES = 4          # ... those grids with item slots for this many waves: at 70b TP8 the empty
                             # slots of 8 cost b64 x 1k 2.6 us of 21 (4: 0.7), 8b's r64 lost 2% with 4
SCHED_FIT_FILL = 0.5         # a scheduled grid whose whole sequences fill this share of one wave of its slots, up to
                             # all of it, gets one wave of item slots, not GRAPH_SCHED_WAVES: wb_plan runs such a
                             # batch whole where it is about uniform, and empty slots beside whole-sequence CTAs
                             # cost b32 x 4k 131.3 us (none; the whole kernel 130.0) -> 137.1 (18 of 50) -> 144.8
                             # (364 of 396); H200 2026-11-30, results/h200-2026-11-30-sched-slots
SCHED_FIT_WAVES = 1.0        # ... that many waves of item slots. 2 and 4 cost b32 x 1k / 4k 5% and did not help a
                             # ragged r8 on a one-wave grid (H200, 2026-11-30, results/h200-2026-11-30-s22/5-fit-waves);
                             # the exported launcher (launch.cuh wb_sched_shape) assumes 1
SCHED_FIT_FEW = 1            # the one-wave rule (SCHED_FIT_FILL) holds for few-CTAs batches (SCHED_FEW_CTAS) too;
                             # with SCHED_FEW_WAVES of slots, most of them empty beside whole sequences, qwen2.5-7b
                             # b64 x 4k (onepass q8: 4 CTAs a sequence) ran 147.5 us, with one wave 138.7 (FA3 133);
                             # bench suite ÷ FA3 0.978 -> 0.986 (llama-3.1-70b TP8 0.998 -> 0.986, its changed
                             # shapes +-5% both ways, unchanged ones as much: noise at 12-50 us). H200 2026-11-30,
                             # results/h200-2026-11-30-s24/2-fit-few. 0: the rule before
SCHED_WHOLE_MAX = 4096       # wb_plan runs an about-uniform one-wave batch whole only up to this longest length
                             # (tokens; 0: any): whole, qwen b64 x 32k ran 1094 us, split 967; 70b b256 x 32k 1095
                             # vs 977; b64 x 4k gained 6%, b256 x 1k 3% (results/h200-2026-11-30-s24/1-fit-few)
SCHED_SPARSE = 1             # batches of SCHED_MIN_SEQS+ sequences whose whole-sequence CTAs fill less than
                             # SCHED_FIT_FILL of one wave are planned too (SCHED_FEW_WAVES of item slots): the
                             # plain grid gives each sequence about 1/num_seqs of the GPU, so one long sequence
                             # among short ones is the critical path (qwen2.5-7b onepass t128 q4 at b8, ragged
                             # up to the bound: 96.9 us, so the ragged guard kept 8 heads per CTA). Refined with
                             # it, bench suites ÷ FA3 on the H200: qwen 0.95 -> 0.98 (b8 x 1k 0.81 -> 1.01, r8
                             # 0.85 -> 0.97), llama-3.1-8b 1.02 -> 1.02 (r8 0.97 -> 1.00, b8 x 1k 0.96 -> 0.92);
                             # results/h200-2026-11-30-s23/5-sparse. 0: off (the A/B's before)
SCHED_WAVE_TOKENS = 384      # the device plan's fixed cost of a wave, in tokens (H200: b32 x 1k ran 2 waves
                             # of 384 tokens in 51.4 us, 1 wave of 1024 in 47.7; auto_tokens' 128 said otherwise)
RAGGED_FILL = 0.5            # per-shape (eager) launches plan a batch whose tokens fill at most this share of
                             # (sequences x longest): the plain grid sizes every sequence's split by the
                             # longest (H200 70b TP8 r32: 78.6 us plain, 40.4 planned; uniform batches lose
                             # 0.5-2 us to the plan, so they keep the plain grid)
SCHED_HDR = 4                # ints before a schedule's items (kernels/decode.cu WB_SCHED_HDR)
PREFETCH_TARGETS = ("k", "v", "kv")
PREFETCH_OPS = ("bulk", "line")          # cp.async.bulk.prefetch.L2 (sm_90+) / prefetch.global.L2
PREFETCH_HINTS = ("none", "evict_first", "evict_last")
FAULTS = ("none", "oob_write", "wrong_values", "hang")   # test-only variants (isolation tests)
MAX_PREFETCH_DISTANCE = 8
STAGES = (0, 2, 3, 4, 6, 8)     # 6, 8: probes of a deeper ring (not in the tuning spaces)
MAX_HEADS_PER_CTA = 16
MAX_ACCUMULATORS = 128       # fp32 p@V accumulators per lane before the kernel must spill
VLLM_V1_MAX_SEQ = 8192       # vLLM's rule: v1 up to this length ...
VLLM_V1_MIN_WORK = 512       # ... if one partition suffices or num_seqs * num_heads exceeds this
VLLM_PARTITION = 512
MIN_UNSPLIT_TOKENS = 4096    # a whole-sequence (partition none) variant must hold at least this context

# Opt-in shared memory per block (bytes) by SM major.minor, used before a device is at hand.
_SMEM_OPTIN = {80: 163 * 1024, 86: 99 * 1024, 87: 163 * 1024, 89: 99 * 1024, 90: 227 * 1024,
               100: 227 * 1024, 103: 227 * 1024, 120: 99 * 1024}


def parse_arch(arch: str) -> int:
    """'sm_90a' -> 90. Only sm_80 and newer are supported (bf16, L2 prefetch hints)."""
    m = re.fullmatch(r"sm_(\d{2,3})a?", arch or "")
    if not m:
        raise WorkbenchError(f"unknown arch {arch!r}: use the form sm_90a, sm_90, sm_80 ...")
    cc = int(m.group(1))
    if cc < 80:
        raise WorkbenchError(f"arch {arch} is older than sm_80, which workbench does not support")
    return cc


def _partition_from(value: Any) -> int:
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("none", "off", "0"):
            return PARTITION_NONE
        if v == "vllm":
            return PARTITION_VLLM
        if v == "auto":
            return PARTITION_AUTO
        if v.isdigit():
            value = int(v)
    if isinstance(value, bool) or not isinstance(value, int) or value not in PARTITIONS:
        raise WorkbenchError(f"partition must be one of none, 256, 512, 1024, vllm, auto (got {value!r})")
    return value


def partition_label(p: int) -> str:
    return {PARTITION_NONE: "none", PARTITION_VLLM: "vllm", PARTITION_AUTO: "auto"}.get(p, str(p))


def parse_knobs(text: str) -> dict[str, str]:
    """`threads=256,partition=512` -> {"threads": "256", "partition": "512"}: one variant's knobs,
    `knob=value` pairs separated by commas (values are checked by Variant). Every malformed piece
    is a WorkbenchError that shows the form."""
    form = "give knob=value pairs separated by commas, e.g. threads=256,partition=512"
    out: dict[str, str] = {}
    for piece in text.split(","):
        piece = piece.strip()
        if not piece:
            raise WorkbenchError(f"{text!r}: empty knob=value pair (a trailing or doubled comma?); {form}")
        if "=" not in piece:
            raise WorkbenchError(f"{text!r}: {piece!r} is not knob=value; {form}")
        k, _, v = (x.strip() for x in piece.partition("="))
        if not k:
            raise WorkbenchError(f"{text!r}: {piece!r} has no knob name; {form}")
        if not v:
            raise WorkbenchError(f"{text!r}: no value for {k}; {form}")
        if k in out:
            raise WorkbenchError(f"{text!r}: {k} given twice")
        out[k] = v
    return out


@dataclass(frozen=True)
class Variant:
    head_size: int = 128
    block_size: int = 16
    dtype: str = "bf16"
    algorithm: str = "twopass"
    threads: int = 128
    heads_per_cta: int = 1
    partition: int = PARTITION_VLLM
    prefetch_distance: int = 0
    prefetch_target: str = "none"
    prefetch_op: str = "none"
    prefetch_hint: str = "none"
    k_load: int = 16             # bytes per K load per lane: 16, or 8 (vLLM's thread-group read, block 16)
    serial: bool = False         # one KV block in flight per warp (vLLM's loop); defaults stay out of the key
    reduce: str = "kernel"       # split-K partials combined by a second kernel, or "fused" (last CTA)
    vllm_math: bool = False      # vLLM's operand precision: 16-bit q (with k_load 8), 16-bit probabilities
    stages: int = 0              # 0: K/V tiles read into registers; 2-8: cp.async ring in shared memory per warp
    mma: bool = False            # QK and PV on tensor cores (mma.sync) from the staged tiles
    unified_ring: bool = False   # stages: K and V tiles through one ring (V in flight before the K pass ends)
    graph_walk: bool = False     # auto split: graph-bound grids walk long sequences (graph_parts); not tuned
    graph_sched: bool = False    # auto split: graph-bound launches run a per-step schedule (sched_shape); not tuned
    fault: str = "none"          # test-only; left out of to_dict (and so of the key) when "none"

    def __post_init__(self) -> None:
        def bad(knob: str, value: Any, allowed: Any) -> WorkbenchError:
            return WorkbenchError(f"{knob}: {value!r} is not supported; allowed: {allowed}")

        def as_int(knob: str, value: Any) -> int:
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, str) and value.strip().isdigit():
                    return int(value)
                raise WorkbenchError(f"{knob}: expected an integer, got {value!r}")
            return value

        def as_bool(knob: str, value: Any) -> bool:
            b = value if isinstance(value, bool) else {"1": True, "true": True, "yes": True, "0": False,
                                                        "false": False, "no": False}.get(str(value).strip().lower())
            if b is None:
                raise bad(knob, value, (False, True))
            return b

        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731  (frozen: normalise once)
        set_("head_size", as_int("head_size", self.head_size))
        if self.head_size not in HEAD_SIZES:
            raise bad("head_size", self.head_size, HEAD_SIZES)
        set_("block_size", as_int("block_size", self.block_size))
        if self.block_size not in BLOCK_SIZES:
            raise bad("block_size", self.block_size, BLOCK_SIZES)
        if self.dtype not in DTYPES:
            raise bad("dtype", self.dtype, DTYPES)
        if self.algorithm not in ALGORITHMS:
            raise bad("algorithm", self.algorithm, ALGORITHMS)
        set_("threads", as_int("threads", self.threads))
        if not (64 <= self.threads <= 512 and self.threads % 32 == 0):
            raise bad("threads", self.threads, "multiples of 32 from 64 to 512")
        set_("heads_per_cta", as_int("heads_per_cta", self.heads_per_cta))
        if not 1 <= self.heads_per_cta <= MAX_HEADS_PER_CTA:
            raise bad("heads_per_cta", self.heads_per_cta, f"1..{MAX_HEADS_PER_CTA}")
        set_("partition", _partition_from(self.partition))
        set_("prefetch_distance", as_int("prefetch_distance", self.prefetch_distance))
        if not 0 <= self.prefetch_distance <= MAX_PREFETCH_DISTANCE:
            raise bad("prefetch_distance", self.prefetch_distance, f"0..{MAX_PREFETCH_DISTANCE}")
        set_("stages", as_int("stages", self.stages))
        if self.stages not in STAGES:
            raise bad("stages", self.stages, STAGES)
        set_("k_load", as_int("k_load", self.k_load))
        if self.k_load not in (8, 16):
            raise bad("k_load", self.k_load, (8, 16))
        for knob in ("serial", "vllm_math", "mma", "unified_ring", "graph_walk", "graph_sched"):
            set_(knob, as_bool(knob, getattr(self, knob)))
        if self.reduce not in ("kernel", "fused"):
            raise bad("reduce", self.reduce, ("kernel", "fused"))
        if self.partition == PARTITION_NONE and self.reduce == "fused":
            set_("reduce", "kernel")       # no split-K: nothing to reduce, one canonical form
        if self.fault not in FAULTS:
            raise bad("fault", self.fault, FAULTS)
        if self.prefetch_distance == 0:
            # prefetch off: the other prefetch knobs mean nothing; one canonical form
            for k in ("prefetch_target", "prefetch_op", "prefetch_hint"):
                set_(k, "none")
        else:
            if self.prefetch_target not in PREFETCH_TARGETS:
                raise bad("prefetch_target", self.prefetch_target, PREFETCH_TARGETS)
            if self.prefetch_op == "none":
                set_("prefetch_op", "bulk")
            if self.prefetch_op not in PREFETCH_OPS:
                raise bad("prefetch_op", self.prefetch_op, PREFETCH_OPS)
            if self.prefetch_hint not in PREFETCH_HINTS:
                raise bad("prefetch_hint", self.prefetch_hint, PREFETCH_HINTS)

    # ---- derived ------------------------------------------------------------------------
    @property
    def elem_bytes(self) -> int:
        return 2

    @property
    def accumulators(self) -> int:
        """fp32 accumulators per lane in the p@V pass: heads x value rows held by a lane."""
        if self.mma:                     # one m16n8 fragment (4 floats) per 16 dims, any head count <= 8
            return 4 * self.head_size // 16
        chunks_per_row = self.block_size * self.elem_bytes // 16
        return self.heads_per_cta * self.head_size * chunks_per_row // 32

    @property
    def name(self) -> str:
        pf = "pf0"
        if self.prefetch_distance:
            hint = {"none": "", "evict_first": ".ef", "evict_last": ".el"}[self.prefetch_hint]
            pf = f"pf{self.prefetch_distance}{self.prefetch_target}.{self.prefetch_op}{hint}"
        fault = "" if self.fault == "none" else f"-FAULT.{self.fault}"
        style = (f"-s{self.stages}" if self.stages else "") + ("-k8" if self.k_load == 8 else "") + ("-serial" if self.serial else "") + \
            ("-fused" if self.reduce == "fused" else "") + ("-vmath" if self.vllm_math else "") + \
            ("-mma" if self.mma else "") + ("-u" if self.unified_ring else "") + ("-walk" if self.graph_walk else "") + \
            ("-sched" if self.graph_sched else "")
        return (f"d{self.head_size}b{self.block_size}{self.dtype}-{self.algorithm}-t{self.threads}"
                f"-q{self.heads_per_cta}-p{partition_label(self.partition)}-{pf}{style}{fault}")

    @property
    def key(self) -> str:
        """Stable 12-hex hash of the knobs (independent of field order and Python version)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        """A named variant's name ('baseline', 'paper', 'simple', 'simple-pf'), else the knob name."""
        from workbench.kernel.references import NAMED   # references are built from Variant
        for alias, fn in NAMED.items():
            if self == fn(self.head_size, self.block_size, self.dtype):
                return alias
        return self.name

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, default in (("fault", "none"), ("k_load", 16), ("serial", False), ("reduce", "kernel"),
                           ("vllm_math", False), ("stages", 0), ("mma", False), ("unified_ring", False),
                           ("graph_walk", False), ("graph_sched", False)):
            if d[k] == default:
                del d[k]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Variant":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise WorkbenchError(f"unknown knob(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**d)

    def with_(self, **changes: Any) -> "Variant":
        return replace(self, **changes)

    @property
    def graph_forms_apply(self) -> bool:
        """graph_walk / graph_sched apply: the auto split's graph-bound grid with the two-kernel reduce."""
        return self.partition == PARTITION_AUTO and self.reduce != "fused"

    def scheduling(self) -> "Variant":
        """This variant built with graph_sched where it can be scheduled, else itself: what `export`
        and `bench` run by default (graph_form)."""
        return self.with_(graph_sched=True, graph_walk=False) if self.graph_forms_apply else self

    def walking(self) -> "Variant":
        """This variant built with graph_walk where it can walk, else itself: what `export
        --graph-walk` and `bench --graph-walk` run."""
        return self.with_(graph_walk=True) if self.graph_forms_apply else self

    def graph_built(self, walk: bool, sched: bool) -> "Variant":
        """This variant as a package built with graph_form's (walk, sched) runs it."""
        return self.walking() if walk else self.scheduling() if sched else self

    # ---- rules --------------------------------------------------------------------------
    def invalid_reasons(self, arch: str = "sm_90a") -> list[str]:
        """Why this variant cannot exist on `arch` (empty list = valid)."""
        cc = parse_arch(arch)
        reasons: list[str] = []
        if self.prefetch_op == "bulk" and cc < 90:
            reasons.append("cp.async.bulk.prefetch.L2 needs sm_90+; use prefetch_op line")
        if self.prefetch_op == "line" and self.prefetch_hint == "evict_first":
            reasons.append("prefetch.global.L2 has no evict_first form")
        if self.accumulators > MAX_ACCUMULATORS:
            reasons.append(f"{self.accumulators} fp32 accumulators per lane (> {MAX_ACCUMULATORS}): "
                           "fewer heads per CTA for this head/block size")
        if self.algorithm == "vllm":
            if (self.threads, self.heads_per_cta) != (128, 1):
                reasons.append("algorithm vllm is vLLM's own kernel: 128 threads, one query head per CTA")
            if (self.k_load, self.serial, self.vllm_math, self.reduce, self.fault, self.stages) != \
                    (16, False, False, "kernel", "none", 0):
                reasons.append("algorithm vllm takes no style knobs (k_load, serial, vllm_math, reduce, fault)")
            if self.prefetch_distance and (self.prefetch_op, self.prefetch_hint) != ("bulk", "none"):
                reasons.append("algorithm vllm prefetches with cp.async.bulk.prefetch.L2, no hint (the paper's change)")
        if self.stages and (self.algorithm not in ("twopass", "onepass") or self.k_load != 16 or self.serial
                            or (self.algorithm == "onepass" and not self.mma)):
            reasons.append("stages (cp.async ring) go with the twopass algorithm (or onepass on tensor cores), "
                           "16-byte K loads, not serial")
        if self.unified_ring and (self.algorithm != "twopass" or self.stages < 2):
            reasons.append("unified_ring is a cp.async ring shared by both passes: twopass with stages 2-8")
        if self.graph_walk and not self.graph_forms_apply:
            reasons.append("graph_walk shrinks the auto split's graph-bound grid: partition auto, two-kernel reduce")
        if self.graph_sched and not self.graph_forms_apply:
            reasons.append("graph_sched schedules the auto split's graph-bound grid: partition auto, two-kernel reduce")
        if self.graph_sched and self.graph_walk:
            reasons.append("graph_sched and graph_walk are two answers to one problem: pick one")
        if self.mma:
            if cc < 80:
                reasons.append("mma (tensor cores, m16n8k16 bf16/fp16) needs sm_80+")
            if self.algorithm not in ("twopass", "onepass") or self.stages < 2:
                reasons.append("mma reads the staged tiles: twopass or onepass with stages 2-8")
            if self.algorithm == "onepass" and (self.prefetch_distance or self.reduce != "kernel"):
                reasons.append("onepass mma streams K and V through one ring: no L2 prefetch, the reduce kernel")
            if self.block_size != 16:
                reasons.append("mma exists for block size 16 (one m16 tile of tokens per block)")
            if self.heads_per_cta > 8:
                reasons.append("mma holds at most 8 query heads per CTA (the n = 8 of m16n8k16)")
        if self.vllm_math and (self.k_load != 8 or self.algorithm != "twopass"):
            reasons.append("vllm_math goes with k_load 8 and the twopass algorithm")
        if self.k_load == 8 and self.block_size != 16:
            reasons.append("k_load 8 (vLLM's two-lanes-per-token read) exists for block size 16 only")
        if self.partition > 0 and self.partition % self.block_size:
            reasons.append("partition must be a multiple of the block size")
        if self.partition > 0 or self.partition in (PARTITION_VLLM, PARTITION_AUTO):
            tokens = {PARTITION_VLLM: VLLM_PARTITION, PARTITION_AUTO: AUTO_MIN_TOKENS}.get(self.partition, self.partition)
            need = self.smem_bytes(tokens)
            if need > smem_optin(cc):
                reasons.append(f"split-K partition needs {need} B of shared memory (> {smem_optin(cc)})")
        elif self.partition == PARTITION_NONE and self.smem_bytes(MIN_UNSPLIT_TOKENS) > smem_optin(cc):
            # e.g. 16 warps x a 3-deep cp.async ring leave room for < 2k tokens of logits
            reasons.append(f"a whole-sequence launch of {MIN_UNSPLIT_TOKENS} tokens needs "
                           f"{self.smem_bytes(MIN_UNSPLIT_TOKENS)} B of shared memory (> {smem_optin(cc)}): "
                           "fewer threads, stages or heads per CTA, or a split-K partition")
        return reasons

    def is_valid(self, arch: str = "sm_90a") -> bool:
        return not self.invalid_reasons(arch)

    def smem_bytes(self, logits_tokens: int) -> int:
        """Dynamic shared memory of the decode kernel for `logits_tokens` slots of logits."""
        warps = self.threads // 32
        if self.algorithm == "vllm":             # vLLM: logits, or the cross-warp output reduction
            return max(4 * logits_tokens, 4 * (warps // 2) * self.head_size)
        stats = -(-warps * self.heads_per_cta // 2) * 2      # padded even: keeps the logits 16-byte aligned
        floats = 2 * self.heads_per_cta * self.head_size + 2 * stats
        if self.algorithm == "twopass":          # onepass keeps no logits
            floats += self.heads_per_cta * logits_tokens
        # onepass (tensor cores): each ring slot holds a block's K and V tiles; its block table is
        # read from global memory, not staged
        ring = warps * self.stages * self.head_size * self.block_size * self.elem_bytes
        if self.algorithm == "onepass":
            return 4 * floats + 2 * ring
        table = 4 * -(-logits_tokens // self.block_size) if self.stages else 0
        return 4 * floats + ring + table

    def max_context_unsplit(self, smem_limit: int) -> int:
        """Longest sequence a whole-sequence (no split-K) launch can hold in shared memory."""
        if self.algorithm == "onepass":
            return 1 << 30
        if self.algorithm == "vllm":
            return smem_limit // 4 // self.block_size * self.block_size
        fixed = self.smem_bytes(0)
        per_token = 4 * self.heads_per_cta + (4 / self.block_size if self.stages else 0)
        slots = int((smem_limit - fixed) // per_token)
        return max(0, slots // self.block_size * self.block_size)

    def uses_split(self, num_seqs: int, num_heads: int, max_seq_len: int) -> bool:
        """Whether a launch of this variant for this batch goes through split-K + reduce."""
        if self.partition == PARTITION_NONE:
            return False
        if self.partition > 0 or self.partition == PARTITION_AUTO:   # auto: whole only when it fits (auto_tokens)
            return True
        parts = -(-max_seq_len // VLLM_PARTITION)
        use_v1 = max_seq_len <= VLLM_V1_MAX_SEQ and (parts == 1 or num_seqs * num_heads > VLLM_V1_MIN_WORK)
        return not use_v1

    def split_tokens(self) -> int:
        """Tokens per partition (auto: the smallest it can pick, which sizes workspaces)."""
        return {PARTITION_VLLM: VLLM_PARTITION, PARTITION_AUTO: AUTO_GRAIN}.get(self.partition, self.partition)

    def auto_tokens(self, ctas: int, max_seq_len: int, occ: "Occupancy") -> int:
        """Tokens per partition of an auto launch with `ctas` CTAs per partition; 0 = whole sequence.

        A decode CTA's time grows with the tokens it reads, and CTAs run in waves of the SM slots
        the occupancy allows: so pick the partition count p minimising
        waves(p) x (tokens(p) + a wave's fixed cost) (+ the reduce when p > 1), partitions multiples of AUTO_GRAIN, none
        under AUTO_MIN_TOKENS, each within shared memory; ties go to fewer partitions. This is
        what fills the last wave instead of leaving a third of the GPU idle (b16 x 4k with
        1024-token partitions: 512 CTAs on 396 slots). The exported launcher mirrors it."""
        fit = self.max_context_unsplit(occ.smem_limit) // AUTO_GRAIN * AUTO_GRAIN
        ctas = max(1, ctas)
        best: tuple[float, int, int] | None = None          # (cost, parts, tokens)
        cap = max(1, min(AUTO_MAX_PARTS, -(-max_seq_len // AUTO_MIN_TOKENS)))
        for p in range(1, cap + 1):
            tokens = -(-max_seq_len // p)
            whole = p == 1 and max_seq_len <= fit
            if not whole:
                tokens = min(fit, -(-tokens // AUTO_GRAIN) * AUTO_GRAIN)
                if tokens < AUTO_GRAIN:
                    continue
            parts = 1 if whole else -(-max_seq_len // tokens)
            slots = occ.sm_count * occ.blocks_per_sm(self.smem_bytes(tokens), whole)
            if slots < 1:
                continue
            waves = -(-parts * ctas // slots)
            cost = waves * (tokens + AUTO_WAVE_TOKENS) + (0 if whole else AUTO_REDUCE_TOKENS)
            if best is None or cost < best[0]:
                best = (cost, parts, 0 if whole else tokens)
        return best[2] if best else max(AUTO_GRAIN, fit)

    def seq_fill(self, ctas: int, launch_len: int, part_tokens: int, occ: "Occupancy") -> int:
        """Params.seq_fill of an auto launch bounded at launch_len tokens that splits in part_tokens:
        the partitions per sequence that fill at most one wave of SM slots at this launch's shared
        memory (rounded down: rounding up left a second wave a fifth full, b8 x 4k on the H200 ran
        at 51 us in a graph vs 45 per shape), at most the grid's partitions. With it each sequence splits by its own length on the device
        (seq_part_tokens) instead of by the launch bound: what a CUDA graph captured for the model's
        longest sequence needs to run a short batch as finely split as a launch for it would."""
        parts = -(-launch_len // part_tokens)
        return max(1, min(parts, self.split_slots(part_tokens, occ) // max(ctas, 1)))

    def split_slots(self, part_tokens: int, occ: "Occupancy") -> int:
        """CTAs of the split kernel the GPU runs at once with part_tokens-token partitions (>= 1 per SM)."""
        return occ.sm_count * max(1, occ.blocks_per_sm(self.smem_bytes(part_tokens), False))

    def graph_parts(self, ctas: int, launch_len: int, part_tokens: int, fill: int, occ: "Occupancy") -> int:
        """gridDim.z of a graph-bound auto launch (seq_fill = fill > 0) bounded at launch_len.

        A grid with a partition slot for every part_tokens of the bound is, on a short batch, mostly
        CTAs that read a length and leave: on the H200 +9 us at b64 x 1k (26 slots, 3 CTAs per SM,
        34 waves of CTAs) and +27 us (9 slots, 1 CTA per SM), nothing measurable under ~5 waves.
        With Z slots (Params.grid_parts) a sequence needing more than Z partitions splits into a
        multiple of Z and each CTA walks an equal share. A walk lengthens a long sequence's chain
        (a 32k sequence among 1k ones: 3 slots made b64 2.2x slower), so it is taken only past
        GRAPH_WALK_WAVES waves and never deeper than GRAPH_WALK_MAX partitions per CTA. Z: the
        fewest slots from there whose waves per slot, ceil(ctas Z / slots) / Z, are within
        GRAPH_WALK_SLACK of the best any Z reaches. Even so a ragged batch whose few long
        sequences are its critical path loses (b32: 31 x 1k + 1 x 30k 104 vs 87 us on the H200),
        so only variants built with graph_walk (not tuned; `export --graph-walk`) walk."""
        full = -(-launch_len // part_tokens)
        slots = self.split_slots(part_tokens, occ)
        ctas = max(ctas, 1)
        if ctas * full <= GRAPH_WALK_WAVES * slots:
            return full
        lo = max(1, min(fill, full), -(-full // GRAPH_WALK_MAX))
        rate = {z: -(-ctas * z // slots) / z for z in range(lo, full + 1)}
        best = min(rate.values())
        return next(z for z in range(lo, full + 1) if rate[z] <= best * (1 + GRAPH_WALK_SLACK))

    def sched_partition(self, grid_x: int, num_seqs: int, launch_len: int, occ: "Occupancy") -> tuple[int, int]:
        """(partition tokens, item slots) of a scheduled launch of num_seqs sequences bounded at
        launch_len: the auto plan's partition for the bound at wb_decode_sched's occupancy, lengthened
        while the SM slots stay the same, and the CTAs of that kernel resident at once there."""
        grid_x = max(grid_x, 1)
        occ = occ.scheduled()                   # wb_decode_sched's registers, not wb_decode_split's
        ptok = self.auto_tokens(grid_x * num_seqs, launch_len, occ)
        if ptok <= 0:
            # the bound's plan is a whole sequence per CTA (a uniform batch of max-length sequences fills
            # the slots once), but the replayed batches are not that batch: the plan still splits their
            # long sequences, from the finest partition up (qwen2.5-7b onepass q8 s3, b65, ragged up to
            # 32k: 365 us on the plain grid; H200 refine, 2026-11-29)
            ptok = AUTO_MIN_TOKENS
        # the longest partition at the same occupancy: the plan may pick anything up to it (b64 x 4k
        # wants 1408 tokens where the plan for 32k tokens has 1280, both 3 CTAs per SM on the H200)
        slots = self.split_slots(ptok, occ)
        top = min(self.max_context_unsplit(occ.smem_limit), -(-launch_len // AUTO_GRAIN) * AUTO_GRAIN)
        while ptok + AUTO_GRAIN <= top and self.split_slots(ptok + AUTO_GRAIN, occ) == slots:
            ptok += AUTO_GRAIN
        return ptok, slots

    def fits_one_wave(self, grid_x: int, num_seqs: int, launch_len: int, occ: "Occupancy",
                      partition: tuple[int, int] | None = None) -> bool:
        """Whether a graph-bound launch of num_seqs sequences is a batch whose whole sequences fill half
        to all of one wave of the scheduled kernel's slots, for a variant whose scheduled partition
        covers the bound (onepass: a sequence is one item); few-CTAs batches too where SCHED_FIT_FEW.
        Such a launch is scheduled, with one wave of item slots (sched_shape): wb_plan runs an
        about-uniform batch whole there up to SCHED_WHOLE_MAX tokens and splits a ragged or longer one
        (SCHED_FIT_FILL). partition: sched_partition's answer where the caller has it."""
        if num_seqs < SCHED_MIN_SEQS or (grid_x <= SCHED_FEW_CTAS and not SCHED_FIT_FEW):
            return False
        ptok, slots = partition or self.sched_partition(grid_x, num_seqs, launch_len, occ)
        return ptok >= launch_len and SCHED_FIT_FILL * slots <= grid_x * num_seqs <= slots

    def sched_shape(self, grid_x: int, num_seqs: int, launch_len: int, occ: "Occupancy") -> "SchedShape":
        """The launch shape of a scheduled graph-bound auto launch (graph_sched) for num_seqs
        sequences bounded at launch_len, grid_x CTAs (kv-head groups) per item: its partition size
        and shared memory are the auto plan's for the bound (sched_partition), its grid
        GRAPH_SCHED_WAVES waves of item slots (at most one per AUTO_MIN_TOKENS of the bound per
        sequence, at least one per sequence; SCHED_FEW_WAVES where only the few-CTAs rule of
        `schedules` plans it; one wave where the batch `fits_one_wave`). Per step the device plan
        (wb_plan) splits the real lengths at most that finely; items past the slots are walked. The
        same numbers must come out here and in the exported launcher: the key ties a schedule to the
        launch it was planned for."""
        grid_x = max(grid_x, 1)
        many = self.many_waves(grid_x * num_seqs, launch_len, occ)
        waves = GRAPH_SCHED_WAVES if many else SCHED_FEW_WAVES
        ptok, slots = self.sched_partition(grid_x, num_seqs, launch_len, occ)
        # item slots: the plan splits as finely as AUTO_MIN_TOKENS, so a sequence may have that many
        # items whatever the launch's (lengthened) partition. Counting the lengthened one's instead
        # left 1 slot per sequence for onepass, whose shared memory never grows with the partition:
        # one CTA walked every item (70b TP8 b1 x 4k 201 us, plain grid 18.6; H200, 2026-11-29)
        parts = -(-launch_len // AUTO_MIN_TOKENS)
        cap = max(num_seqs, min(num_seqs * parts, int(-(-waves * slots // grid_x))))
        if self.fits_one_wave(grid_x, num_seqs, launch_len, occ, (ptok, slots)):
            # one wave of slots, so that wb_plan may run an about-uniform batch whole without empty
            # CTAs beside it (SCHED_FIT_FILL). One slot per sequence would leave none empty, but a
            # ragged batch's split must then walk (r32 of 1000-4000 tokens 78.3 -> 85.0 us, FA3 80.9);
            # with one wave of slots it stays at 77.8. Only where a whole sequence of the bound is one
            # item (onepass): twopass splits a 16k one into 6, walked (b32 x 16k 504 -> 513)
            cap = max(num_seqs, int(SCHED_FIT_WAVES * slots) // grid_x)
        return SchedShape(part_tokens=ptok, slots=slots, cap=cap, key=sched_key(num_seqs, launch_len, ptok, cap, slots))

    def schedules(self, ctas: int, launch_len: int, occ: "Occupancy", num_seqs: int) -> bool:
        """Whether a graph-bound launch of this graph_sched variant (ctas CTAs per partition for
        num_seqs sequences) runs the device plan: where the grid for the bound is more than
        GRAPH_WALK_WAVES waves of CTAs, and for batches of SCHED_MIN_SEQS+ sequences with at most
        SCHED_FEW_CTAS CTAs each (few KV heads per GPU: 70b TP8 has one, qwen2.5-7b four).

        With few CTAs per sequence the bound's partition is long (one wave of them for a batch of
        max-length sequences), so in a ragged batch the longest sequence is a few long CTAs while
        most SMs idle. On the H200 (bench suites, 2026-11-29) the plan took r32 (200-32k tokens)
        from 57.5 to 47.0 us at 70b TP8 and 169 to 117 at qwen (FA3 118), r64 at qwen 129 to 98.
        It costs uniform batches 0-10% (the item load, the scheduled kernel's registers, its empty
        item slots: SCHED_FEW_WAVES). Planning every batch of 2+ sequences cost llama-3.1-8b (8
        CTAs per sequence) 0.8% of its suite for a gain at r8 alone, so there it stays off
        (results/h200-2026-11-29-ragged), except for batches that `fits_one_wave`: there, against
        the plain grid (H200, onepass t128 q4, bound 32864, 2026-11-30), r32 of 200-32k tokens 227.6
        -> 207.7 us, of 2000-8000 168.1 -> 147.2, of 1000-4000 87.6 -> 80.1, b32 x 4k 142.6 -> 135.1
        (FA3 133.8), while uniform b26 x 4k lost 119.1 -> 123.6 and b40 x 4k 172.5 -> 176.5
        (results/h200-2026-11-30-sched-slots/6-fit-final-ab)."""
        few = num_seqs >= SCHED_MIN_SEQS and ctas <= SCHED_FEW_CTAS * num_seqs
        # a few-CTAs batch is planned even where the bound's plan would not split (sched_shape)
        if not self.graph_sched:
            return False
        if few or self.many_waves(ctas, launch_len, occ):
            return True
        if num_seqs < SCHED_MIN_SEQS or ctas // num_seqs <= SCHED_FEW_CTAS:
            return False
        # whole sequences fill half to one wave (fits_one_wave) or less than half (sparse): one partition
        part = self.sched_partition(ctas // num_seqs, num_seqs, launch_len, occ)
        return (self.fits_one_wave(ctas // num_seqs, num_seqs, launch_len, occ, part)
                or self.sparse(ctas // num_seqs, num_seqs, launch_len, occ, part))

    def sparse(self, grid_x: int, num_seqs: int, launch_len: int, occ: "Occupancy",
               partition: tuple[int, int] | None = None) -> bool:
        """Whether a graph-bound launch of num_seqs (SCHED_MIN_SEQS+) sequences is one whose whole
        sequences fill less than SCHED_FIT_FILL of one wave of the scheduled kernel's slots, with more
        CTAs per sequence than the few-CTAs rule of `schedules` plans for (SCHED_SPARSE on)."""
        if not SCHED_SPARSE or num_seqs < SCHED_MIN_SEQS or grid_x <= SCHED_FEW_CTAS:
            return False
        _, slots = partition or self.sched_partition(grid_x, num_seqs, launch_len, occ)
        return grid_x * num_seqs < SCHED_FIT_FILL * slots

    def plans_eager(self, grid_x: int, lengths: Sequence[int], occ: "Occupancy") -> bool:
        """Whether a per-shape launch (bounded at the batch's longest sequence, not a graph's bound)
        of these sequence lengths runs the device plan: a graph_sched variant whose launch at that
        bound `schedules`, for a ragged batch (`ragged`). The host knows the lengths here (vLLM's
        eager steps: its metadata's CPU upper bound of seq_lens); a captured launch cannot."""
        n = len(lengths)
        top = max(lengths, default=0)
        return (n > 0 and top > 0 and ragged(lengths)
                and self.schedules(grid_x * n, top, occ, n))

    def many_waves(self, ctas: int, launch_len: int, occ: "Occupancy") -> bool:
        """Whether the plain grid for the bound (the auto plan's partitions, at wb_decode_split's
        occupancy) is more than GRAPH_WALK_WAVES waves of CTAs."""
        ptok = self.auto_tokens(ctas, launch_len, occ)
        return ptok > 0 and ctas * -(-launch_len // ptok) > GRAPH_WALK_WAVES * self.split_slots(ptok, occ)

    def check_workload(self, num_seqs: int, num_heads: int, num_kv_heads: int, head_size: int,
                       max_seq_len: int, smem_limit: int) -> None:
        """Reject, before launch, a workload this variant cannot run (raises VariantRejected)."""
        if head_size != self.head_size:
            raise VariantRejected(f"{self.name}: built for head size {self.head_size}, workload has {head_size}")
        if num_kv_heads <= 0 or num_heads % num_kv_heads:
            raise VariantRejected(f"num_heads {num_heads} is not a multiple of num_kv_heads {num_kv_heads}")
        group = num_heads // num_kv_heads
        # more heads per CTA than the group: one CTA per KV head, its last rows masked (the kernel's
        # nheads; GQA 7 as 8 ran 1.10x faster). From 2 x group up a CTA would be half padding: refused
        if self.heads_per_cta >= 2 * group:
            raise VariantRejected(f"{self.name}: {self.heads_per_cta} query heads per CTA for a GQA group "
                                  f"of {group} (at most {2 * group - 1}: one CTA per KV head, padded)")
        if not self.uses_split(num_seqs, num_heads, max_seq_len):
            slots = -(-max_seq_len // self.block_size) * self.block_size
            need = self.smem_bytes(slots)
            if need > smem_limit:
                raise VariantRejected(
                    f"{self.name}: a {max_seq_len}-token sequence without split-K needs {need} B of "
                    f"shared memory for its logits (limit {smem_limit} B, i.e. at most "
                    f"{self.max_context_unsplit(smem_limit)} tokens); use a split-K partition")


@dataclass(frozen=True)
class SchedShape:
    """A scheduled graph-bound launch's shape (Variant.sched_shape): what wb_plan plans for."""
    part_tokens: int       # the launch's partition size (shared memory); the plan's is at most this
    slots: int             # split CTAs resident at once at that shared memory
    cap: int               # item slots: the split grid's y
    key: int               # Params.sched_key: a schedule planned for another shape is not used


def ragged(lengths: Sequence[int]) -> bool:
    """A batch whose tokens fill at most RAGGED_FILL of (sequences x longest): the plain grid, each
    sequence split as the longest, would idle most of its CTAs (the exported backend's rule too)."""
    n, top = len(lengths), max(lengths, default=0)
    return n >= SCHED_MIN_SEQS and top > 0 and sum(lengths) <= RAGGED_FILL * n * top


def sched_ints(num_seqs: int, max_parts: int) -> int:
    """int32s of a schedule buffer: header, at most max_parts items per sequence, and a slot's
    worth of sentinels (the slots are at most num_seqs x max_parts)."""
    return SCHED_HDR + 4 * 2 * num_seqs * max_parts


def sched_key(num_seqs: int, launch_len: int, part_tokens: int, cap: int, slots: int) -> int:
    """A 31-bit fingerprint of a launch shape (the exported launcher computes the same)."""
    h = 0x2545F491
    for x in (num_seqs, launch_len, part_tokens, cap, slots):
        h = ((h ^ (x & 0xFFFFFFFF)) * 0x01000193) & 0xFFFFFFFF
    return h & 0x7FFFFFFF


@dataclass(frozen=True)
class Occupancy:
    """What an auto launch plans with: the device's SMs and shared memory, and how many CTAs of
    the split / whole kernel fit on one SM by threads and registers alone (CUDA's occupancy API
    with no dynamic shared memory); shared memory is then counted per partition size."""
    sm_count: int
    smem_per_sm: int            # shared memory per SM
    smem_reserved: int          # per block, reserved by the system
    smem_limit: int             # opt-in dynamic shared memory per block
    split_blocks: int           # CTAs per SM of the split kernel by threads and registers
    whole_blocks: int           # CTAs per SM of the whole-sequence kernel likewise
    sched_blocks: int = 0       # graph_sched: CTAs per SM of wb_decode_sched likewise (0: as split_blocks)

    def scheduled(self) -> "Occupancy":
        """The numbers a scheduled launch plans with: wb_decode_sched's CTAs per SM as the split's."""
        return replace(self, split_blocks=self.sched_blocks) if self.sched_blocks else self

    def blocks_per_sm(self, smem: int, whole: bool) -> int:
        if smem > self.smem_limit:
            return 0
        by_smem = self.smem_per_sm // (smem + self.smem_reserved)
        return min(self.whole_blocks if whole else self.split_blocks, by_smem)


def graph_form(walk: bool = False, sched: bool | None = None) -> tuple[bool, bool]:
    """(walk, sched) of a package's graph-bound launches from `--graph-walk` and
    `--graph-sched/--no-graph-sched` (None: not given). The schedule is the default since the H200
    A/B of 2026-11-29 (docs/perf-notes.md v9: b64 x 1k-4k +2.5-3.5% end to end at a 32k bound, b1
    unchanged); the walk is the opt-in alternative, so asking for it turns the schedule off."""
    if walk and sched:
        raise WorkbenchError("--graph-walk and --graph-sched are two answers to one problem: pick one")
    return walk, (not walk) if sched is None else sched


def smem_optin(cc: int) -> int:
    return _SMEM_OPTIN.get(cc, 99 * 1024)


def sched_rules() -> str:
    """The rules that decide a graph-bound launch's form (plain grid or device plan, its item slots),
    as one string: graph-bound timings taken under other rules timed other launches (a refinement
    records it: tune.refine.Refinement.graph_rules)."""
    return (f"sparse={SCHED_SPARSE} fit={SCHED_FIT_FILL:g}/{SCHED_FIT_WAVES:g} few={SCHED_FEW_CTAS}/{SCHED_FEW_WAVES} "
            f"min={SCHED_MIN_SEQS} waves={GRAPH_SCHED_WAVES}/{GRAPH_WALK_WAVES} fitfew={SCHED_FIT_FEW} "
            f"whole={SCHED_WHOLE_MAX}")


def seq_part_tokens(seq_len: int, seq_fill: int, part_tokens: int, grid_parts: int = 0,
                    max_parts: int = 1 << 30) -> int:
    """decode.cu's seq_part_tokens: tokens per partition of one sequence of a seq_fill launch
    (grid_parts: Params.grid_parts, max_parts: the workspace's)."""
    if seq_fill <= 0 or seq_len <= 0:
        return part_tokens
    parts = max(1, min(seq_fill, -(-seq_len // AUTO_MIN_TOKENS)))
    if grid_parts > 0 and seq_len > parts * part_tokens:      # a walking grid
        parts = -(-seq_len // part_tokens)
        if parts > grid_parts:
            parts = min(max_parts, -(-parts // grid_parts) * grid_parts)
    per = -(-seq_len // parts)
    return min(-(-per // AUTO_GRAIN) * AUTO_GRAIN, part_tokens)
