"""Which FlashInfer vLLM's FLASHINFER backend would get here, against the release the installed vLLM pins.

vLLM 0.26.0 pins flashinfer-python==0.6.14; the bench's FlashInfer peers use 0.7.2.post1 (its peers bundle).
Both can sit on one host, and whichever is first on the path is the one vLLM imports. Read from the
dist-infos only: nothing is imported, so this runs on a CPU and in the parent of the engine's child.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

BUNDLE_HINT = ("offline: bash scripts/bundle_flashinfer_vllm.sh, then source scripts/flashinfer_vllm_activate.sh "
               ".vllm/flashinfer (after vllm_activate)")


@dataclass(frozen=True)
class FlashInferPin:
    vllm: str | None          # installed vLLM (None: not installed)
    pin: str | None           # the flashinfer-python release its requirements name with ==
    have: str | None          # installed flashinfer-python

    @property
    def problem(self) -> str:
        """'' when vLLM's FLASHINFER backend gets the release vLLM was built against, else why not."""
        if self.vllm is None:
            return "vLLM is not installed"
        if self.have is None:
            return "flashinfer-python is not installed" + (f" (vLLM {self.vllm} pins {self.pin})" if self.pin else "")
        if self.pin and self.have != self.pin:
            return (f"flashinfer-python {self.have}, but vLLM {self.vllm} pins {self.pin}: its FLASHINFER backend "
                    "was built against that one")
        return ""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "problem": self.problem}


def flashinfer_pin() -> FlashInferPin:
    import importlib.metadata as md

    def version(dist: str) -> str | None:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return None
    vllm = version("vllm")
    pin = None
    if vllm is not None:
        for r in md.requires("vllm") or []:
            m = re.match(r"flashinfer-python\s*==\s*([^;\s]+)\s*$", r)     # not an extra's conditional line
            if m:
                pin = m.group(1)
                break
    return FlashInferPin(vllm=vllm, pin=pin, have=version("flashinfer-python"))
