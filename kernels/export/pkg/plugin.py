"""vLLM plugin entry point (group `vllm.general_plugins`): registers this package's backend as
AttentionBackendEnum.CUSTOM. vLLM calls it in every process, so it is idempotent."""

_done = False


def register() -> None:
    global _done
    if _done:
        return
    from vllm.v1.attention.backends.registry import AttentionBackendEnum, register_backend
    register_backend(AttentionBackendEnum.CUSTOM, "@PKG@.vllm_backend.@CLASS@")
    _done = True
