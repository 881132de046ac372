import os

import pytest


def _cuda_available() -> bool:
    try:
        import torch
        return torch.cuda.is_available()
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    if _cuda_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device on this machine (GPU tests run on a GPU host)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def cubin_cache(tmp_path_factory):
    """Tests share one cubin cache: WORKBENCH_CACHE if set, else a session temp dir."""
    if not os.environ.get("WORKBENCH_CACHE"):
        os.environ["WORKBENCH_CACHE"] = str(tmp_path_factory.mktemp("wbcache"))
    return os.environ["WORKBENCH_CACHE"]
