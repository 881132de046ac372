"""What every peer shares: the unavailable error, the rotation count, the fp32 reference."""
from __future__ import annotations

import math
from typing import Any

from workbench.measure.workload import WorkloadSpec


class PeerUnavailable(Exception):
    """This peer cannot run here (missing package, unsupported shape...): the reason is shown."""


def _copies(kv_bytes: int, min_bytes: int) -> int:
    return max(2, math.ceil(min_bytes / max(1, kv_bytes)))


def reference_out(spec: WorkloadSpec, q: Any, k: Any, v: Any) -> Any:
    """fp32 SDPA of one batch of contiguous q [B,H,D], k/v [B,KH,L,D] (uniform lengths)."""
    import torch
    qq = q.float().unsqueeze(2)
    return torch.nn.functional.scaled_dot_product_attention(qq, k.float(), v.float(), enable_gqa=True).squeeze(2)


