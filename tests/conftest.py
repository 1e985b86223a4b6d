"""Shared fixtures: tiny random models (seconds on CPU) and the opt-in switch for slow tests."""

from __future__ import annotations

import pytest
import torch


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    run_slow = config.getoption("--run-slow")
    has_gpu = torch.cuda.is_available()
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow: opt in with --run-slow (kept out of CI's time budget)"))
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU; this machine has none"))


@pytest.fixture(scope="session")
def tiny():
    """A random ``tiny`` model with the byte tokenizer and its processor."""
    from hyperseg_lite import build_random_model

    return build_random_model("tiny", seed=0)
