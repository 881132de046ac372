"""Correctness of a variant against the fp32 reference on a workload (needs a GPU)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from workbench.errors import VariantRejected
from workbench.kernel.launch import KernelFault, LoadedVariant
from workbench.measure.reference import reference_decode, relative_error
from workbench.measure.workload import WorkloadSpec, build_workload

TOLERANCE = {"bf16": 1e-2, "fp16": 5e-3}


@dataclass(frozen=True)
class CheckResult:
    variant: str
    workload: str
    status: str               # pass | fail | rejected | fault
    rel_error: float = math.nan
    nan_count: int = 0
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_variant(kernel: LoadedVariant, spec: WorkloadSpec, device: Any = "cuda", *,
                  launch_len: int | None = None, per_seq_split: bool = False) -> CheckResult:
    """Fresh random inputs, NaN-poisoned output, NaN in padding slots; rel error vs fp32 ref.
    launch_len / per_seq_split: the launch as time_variant makes it with them (bounded there, the
    block table widened; each sequence split by its own length, the schedule planned first for
    graph_sched variants), so a bench row is checked on the path it times."""
    import torch

    from workbench.measure.timing import widen_block_table
    w = build_workload(spec, device)
    out = w.new_output()
    name = kernel.variant.name
    L = max(launch_len or 0, spec.max_seq_len)
    tables = widen_block_table(w.block_tables, L, spec.block_size) if L > spec.max_seq_len else w.block_tables
    try:
        ws = kernel.step_workspace(w.seq_lens, spec.num_heads, spec.num_kv_heads, L, per_seq_split)
        kernel(out, w.query, w.key_cache, w.value_cache, spec.num_kv_heads, w.scale,
               tables, w.seq_lens, L, workspace=ws, per_seq_split=per_seq_split)
        torch.cuda.synchronize()
    except VariantRejected as e:
        return CheckResult(name, spec.label, "rejected", detail=str(e))
    except (KernelFault, RuntimeError) as e:
        return CheckResult(name, spec.label, "fault", detail=(str(e).strip().splitlines() or ["?"])[0])
    ref = reference_decode(w.query, w.key_cache, w.value_cache, w.block_tables, w.seq_lens,
                           w.scale, spec.num_kv_heads)
    nans = int(torch.isnan(out).sum())
    err = relative_error(out, ref) if nans == 0 else math.nan
    ok = nans == 0 and err <= TOLERANCE[spec.dtype]
    detail = "" if ok else (f"{nans} NaN in output" if nans else f"rel error {err:.3g} > {TOLERANCE[spec.dtype]}")
    return CheckResult(name, spec.label, "pass" if ok else "fail", err, nans, detail)
