"""What every peer shares: the unavailable error, the rotation count, the fp32 reference, and
(for the peers users run in vLLM) how to bring them to a host and the checks before building."""
from __future__ import annotations

import math
from typing import Any, Callable

from workbench.measure.workload import WorkloadSpec

# where the packages of fa3 / flashinfer / flashinfer-tc / xqa come from (the GPU hosts have no registry)
BUNDLE = "scripts/bundle_peers.sh, then source scripts/peers_activate.sh .peers on the host"


class PeerUnavailable(Exception):
    """This peer cannot run here (missing package, unsupported shape...): the reason is shown."""


def _copies(kv_bytes: int, min_bytes: int) -> int:
    return max(2, math.ceil(min_bytes / max(1, kv_bytes)))


def reference_out(spec: WorkloadSpec, q: Any, k: Any, v: Any) -> Any:
    """fp32 SDPA of one batch of contiguous q [B,H,D], k/v [B,KH,L,D] (uniform lengths)."""
    import torch
    qq = q.float().unsqueeze(2)
    return torch.nn.functional.scaled_dot_product_attention(qq, k.float(), v.float(), enable_gqa=True).squeeze(2)


def one_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:200]}"


def require_device(what: str, device: Any, majors: tuple[int, ...] | None = None) -> None:
    """A CUDA device (of compute capability major in `majors`) or PeerUnavailable. CPU tests pass
    device="cpu" with fake packages, so the CUDA rules apply to CUDA devices only."""
    import torch
    if str(device).startswith("cpu"):
        return
    if not torch.cuda.is_available():
        raise PeerUnavailable(f"{what} needs a CUDA GPU; none is visible")
    major, minor = torch.cuda.get_device_capability()
    if majors and major not in majors:
        raise PeerUnavailable(f"{what} runs on sm_{'/'.join(f'{m}x' for m in majors)} only; this GPU is sm_{major}{minor}")


def checked_error(calls: list[Callable[[], None]], out: Any, ref: Any) -> float:
    """Relative error of copy 0's output against the fp32 reference of copy 0. Copy 0 runs again
    after the last copy: a peer whose state (workspace, semaphores, scheduler metadata) leaks
    from one launch into the next fails here instead of in the timed replays."""
    import torch

    from workbench.measure.reference import relative_error
    out.fill_(float("nan"))            # an unwritten element shows as NaN
    for c in (calls[0], calls[-1], calls[0]):
        c()
    if out.is_cuda:
        torch.cuda.synchronize()
    return relative_error(out.float(), ref)
