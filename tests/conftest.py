"""Shared pytest configuration: one torch thread per test process; skip ``@pytest.mark.cuda`` tests without a GPU.

The ``cuda`` and ``slow`` markers are declared in ``pyproject.toml``.
"""

from __future__ import annotations

import os

# The suite runs under pytest-xdist, one worker per core, and starts notebook
# kernels: one intra-op thread each keeps the cores from being oversubscribed
# (tiny models slow down tens of times when torch's threads contend).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip_cuda = pytest.mark.skip(reason="needs a CUDA GPU; torch.cuda.is_available() is False")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip_cuda)
