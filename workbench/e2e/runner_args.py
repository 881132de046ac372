"""The arguments of one runner child (JSON): what the parent tells `python -m workbench.e2e.runner`.

Apart from runner.py so that the parent (and nsys parsing) can use them without importing the
module that the child runs as __main__.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

NVTX_PREFIX = "wb_e2e:"        # + point label: the decode window of mode "profile"


@dataclass
class RunnerArgs:
    model_dir: str
    backend: str
    vocab_size: int
    points: list[dict[str, int]]
    settings: dict[str, Any]
    decode_steps: int
    out: str
    mode: str = "measure"                 # measure | profile
    correctness_steps: int = 16
    logprobs: int = 20
    logprob_positions: int = 2
    profile_steps: int = 16
    prompt_seed: int = 1234
    previous: dict[str, Any] = field(default_factory=dict)  # a partial BackendResult to extend

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> "RunnerArgs":
        d = json.loads(Path(path).read_text())
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})
