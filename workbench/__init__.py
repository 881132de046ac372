"""workbench: profile and autotune the paged-attention decode kernel that vLLM serves with."""

__version__ = "0.1.0"
