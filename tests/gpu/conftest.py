"""The opt-in GPU suite: every test here is marked `gpu` and skipped unless it can run."""

from __future__ import annotations

import os

import pytest
from gating import skip_reason

from tests import tiny_lm


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    ours = [item for item in items if str(item.path).startswith(here)]
    if not ours:
        return
    reason = skip_reason(os.environ, _cuda() if os.environ.get("HPL_GPU_TESTS") == "1" else False)
    for item in ours:
        item.add_marker(pytest.mark.gpu)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tiny_lm.TinyLM:
    return tiny_lm.build(tmp_path_factory.mktemp("tiny-lm"))
