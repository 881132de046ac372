"""A vLLM worker extension (`worker_extension_cls`): redraws the weights in place, and says what
the worker resolved (attention backend per layer, CUDA-graph mode after vLLM checked the backend).

vLLM mixes this class into its GPU worker; the runner calls it by name through
`LLM.collective_rpc("wb_redraw_weights", args=(seed, std, kind))` (a string and plain numbers cross the
engine's process boundary; no pickled callables). The draw is seeded per parameter in a fixed
order, so every backend serves exactly the same weights. In place: CUDA graphs captured before
keep pointing at the same storage.
"""
from __future__ import annotations

from typing import Any


RESIDUAL_OUT = ("o_proj.weight", "down_proj.weight")     # projections that write into the residual stream


def redraw(named_params: Any, seed: int, std: float, kind: str = "normal") -> int:
    """Norm weights 1, biases 0, everything else N(0, std); returns the number of values drawn.

    kind "gpt2": GPT-2's initialisation on a pre-norm decoder — the token embedding N(0, 1) (unless
    tied to the LM head), the residual-stream output projections N(0, std / sqrt(2 · layers)). The
    residual stream then carries the token and each block nudges it, so bf16 rounding noise moves
    the logits far less than a wrong attention does (measured: settings.py)."""
    import re

    import torch

    params = sorted(named_params, key=lambda x: x[0])
    layers = 1 + max((int(m.group(1)) for n, _ in params if (m := re.search(r"layers\.(\d+)\.", n))), default=0)
    tied = not any(n.startswith("lm_head") for n, _ in params)
    n = 0
    with torch.no_grad():
        for i, (name, p) in enumerate(params):
            if not torch.is_floating_point(p):
                continue
            if "norm" in name:
                p.fill_(1.0)
                continue
            if name.endswith("bias"):
                p.zero_()
                continue
            s = std
            if kind == "gpt2":
                if "embed_tokens" in name and not tied:
                    s = 1.0
                elif name.endswith(RESIDUAL_OUT):
                    s = std / (2 * layers) ** 0.5
            g = torch.Generator(device=p.device)
            g.manual_seed(seed * 1_000_003 + i)
            p.normal_(0.0, s, generator=g)
            n += p.numel()
    return n


class RedrawWeights:
    """Mixed into vLLM's worker: `self` is the worker (it has get_model())."""

    def wb_redraw_weights(self, seed: int, std: float, kind: str = "normal") -> int:
        model = self.get_model()  # type: ignore[attr-defined]
        n = redraw(model.named_parameters(), int(seed), float(std), str(kind))
        import torch
        torch.cuda.synchronize()
        return n

    def wb_describe(self) -> dict[str, Any]:
        vc = self.vllm_config  # type: ignore[attr-defined]
        out: dict[str, Any] = {"cudagraph_mode": str(vc.compilation_config.cudagraph_mode)}
        names, support = set(), set()
        for layer in vc.compilation_config.static_forward_context.values():
            b = getattr(layer, "attn_backend", None)
            if b is None:
                continue
            try:
                names.add(f"{b.get_name()} ({b.__module__}.{b.__name__})")
                support.add(str(getattr(b.get_builder_cls(), "_cudagraph_support", "?")))
            except Exception:
                names.add(getattr(b, "__name__", str(b)))
        out["attention_backends"] = sorted(names)
        out["attention_cudagraph_support"] = sorted(support)
        return out
