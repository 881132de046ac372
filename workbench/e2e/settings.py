"""Engine settings shared by every backend of an e2e run (one value each, recorded with the results).

CUDA graphs stay at vLLM's default compilation config (FULL_AND_PIECEWISE: decode batches run in
full graphs where the backend allows it); nothing here turns them off. Prefix caching is off so a
repeated prompt is prefilled again rather than served from cache. `max_num_batched_tokens` is set
(to vLLM 0.26's own default for the LLM class on ≥ 70 GB GPUs) because the grid needs it to know
how far a chunked prefill staggers a batch.

`weights`: vLLM's dummy loader draws every weight from U(-1e-3, 1e-3); the logits of such a model
are all ≈ 0 (every top-20 log-probability = −log(vocab) to 1e-6), so whatever attention computes,
ids and log-probabilities agree: the correctness check could not fail. "normal:STD" and
"gpt2:STD" redraw the weights after loading (seeded, identical for every backend; norm weights 1,
biases 0) through a vLLM worker extension: "normal" draws everything from N(0, STD), "gpt2" uses
GPT-2's initialisation (embedding N(0, 1), residual output projections N(0, STD/sqrt(2·layers))).
Measured on an H200 (a pure-torch Llama-3.1-8B-shaped model, bf16, prompts of 32 × 1k, 64 × 1k
and 16 × 4k tokens, only the decode attention changed between two runs — bf16 SDPA vs an fp32
one; a probe run for issue 13, 2026-11-28), share of sequences whose first decode step's top-20
log-probabilities stay within the bf16 tolerance of correctness.py:
  - "gpt2:0.02": correct vs correct 94–100% (max |Δ| 0.06–0.09); a wrong attention (half the
    context, or a 1.25× softmax scale) 0% (|Δ| 0.25–0.6); dropping the 8 newest tokens 67–94%;
  - "normal:0.02": correct vs correct 6% (the model is chaotic: |Δ| up to 0.22);
  - the same computation run twice: 100% — yet its greedy ids over 16 steps match on only
    69–72% of sequences (two correct attentions: 41–50%). With random weights, 16 greedy ids
    measure rounding noise more than attention; the log-probabilities are the sharp check.
Timing does not depend on weight values. The extension is always mixed into
vLLM's worker (it also reports the attention backend and CUDA-graph mode the worker resolved), so
the engine's processes must be able to import `workbench` (the parent puts it on PYTHONPATH).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from workbench.errors import WorkbenchError

WORKER_EXTENSION = "workbench.e2e.worker_ext.RedrawWeights"


@dataclass(frozen=True)
class EngineSettings:
    max_model_len: int
    max_num_seqs: int
    dtype: str = "bfloat16"
    block_size: int = 16
    gpu_memory_utilization: float = 0.90
    max_num_batched_tokens: int = 16384
    enable_prefix_caching: bool = False
    seed: int = 0
    weights: str = "gpt2:0.02"

    def __post_init__(self) -> None:
        if not 0.1 <= self.gpu_memory_utilization <= 0.98:
            raise WorkbenchError(f"--gpu-memory-utilization {self.gpu_memory_utilization}: use 0.1..0.98")
        if self.block_size not in (16, 32, 64):
            raise WorkbenchError(f"--block-size {self.block_size}: use 16, 32 or 64")
        weight_spec(self.weights)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EngineSettings":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def llm_kwargs(self, model_dir: str, backend: str) -> dict[str, Any]:
        """Keyword arguments of vllm.LLM (0.26) for one backend: the same for every backend but the name."""
        kw: dict[str, Any] = dict(
            model=model_dir, load_format="dummy", skip_tokenizer_init=True, dtype=self.dtype,
            attention_backend=backend, block_size=self.block_size, max_model_len=self.max_model_len,
            max_num_seqs=self.max_num_seqs, max_num_batched_tokens=self.max_num_batched_tokens,
            gpu_memory_utilization=self.gpu_memory_utilization, enable_prefix_caching=self.enable_prefix_caching,
            seed=self.seed, worker_extension_cls=WORKER_EXTENSION)
        return kw


def weight_spec(spec: str) -> tuple[str, float] | None:
    """'dummy' -> None (vLLM's own U(±1e-3)); 'normal:0.02' -> ('normal', 0.02); 'gpt2:0.02' -> ('gpt2', 0.02)."""
    if spec == "dummy":
        return None
    m = re.fullmatch(r"(normal|gpt2):(\d*\.?\d+(?:[eE]-?\d+)?)", spec)
    if not m or not 0 < float(m.group(2)) < 1:
        raise WorkbenchError(f"--weights {spec!r}: use 'dummy', 'normal:STD' or 'gpt2:STD' with 0 < STD < 1 "
                             "(e.g. gpt2:0.02)")
    return m.group(1), float(m.group(2))
