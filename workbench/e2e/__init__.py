"""`workbench e2e`: an exported package inside real vLLM (offline engine, random weights, CUDA graphs)
against vLLM's own backends over a batch × context grid — decode tokens/s, inter-token latency,
correctness against FLASH_ATTN, attention's share of a step, and what the kernel ratio predicts.

Modules, in the order the data flows:
  model_config    profile -> config.json (random weights)      grid       batch × context, what fits
  settings        engine settings shared by all backends       install    the package -> OUT/site
  runner          one backend in a child process (vLLM here)   runner_args  what the parent tells it
  worker_ext      vLLM worker extension (weights, describe)
  metrics         tokens/s and ITL from token arrival times    child      child process, logs, cleanup
  correctness     ids / log-probabilities vs FLASH_ATTN        attention_share  a from an nsys capture
  prediction      k from a bench JSON, 1/((1-a)+a/k)           results    the JSON records (E2eRun)
  compare         the table, summary and plot                  driver     run_e2e: all of the above
Nothing here imports vLLM or touches a GPU until a child process runs.
"""
from .correctness import Tolerances
from .driver import DEFAULT_BACKENDS, RUN_FILE, run_e2e
from .grid import DEFAULT_BATCHES, DEFAULT_CONTEXTS, GridPlan, GridPoint, parse_sizes
from .results import BackendResult, E2eRun, PointResult, ShareResult

__all__ = ["run_e2e", "E2eRun", "BackendResult", "PointResult", "ShareResult", "Tolerances", "GridPlan",
           "GridPoint", "parse_sizes", "DEFAULT_BACKENDS", "DEFAULT_BATCHES", "DEFAULT_CONTEXTS", "RUN_FILE"]
