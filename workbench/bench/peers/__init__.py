"""What users would run instead, one module each. Every builder takes (spec, min_bytes, check) and
returns (calls over rotating copies of its own KV, ≥ 4× L2, so every launch reads cold; a note;
the relative error against the fp32 reference) or raises PeerUnavailable with the reason."""
from __future__ import annotations

from typing import Callable

from workbench.bench.peers.common import PeerUnavailable
from workbench.bench.peers.flex import flex_attention
from workbench.bench.peers.sdpa import sdpa
from workbench.bench.peers.xformers import xformers_splitk

PEERS: dict[str, Callable[..., tuple[list[Callable[[], None]], str, float]]] = {
    "sdpa": sdpa, "xformers": xformers_splitk, "flex": flex_attention}

__all__ = ["PEERS", "PeerUnavailable"]
