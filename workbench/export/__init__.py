"""Render a study's dispatch table as a pip-installable vLLM attention backend."""
