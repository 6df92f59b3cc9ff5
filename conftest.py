"""Shared pytest configuration for ``tests/`` and the lesson folders' own tests.

One torch thread per test process; ``@pytest.mark.cuda`` tests skipped without a GPU; and the known-long
tests collected first, so that pytest-xdist hands them out early and the suite does not end waiting on
one of them. The ``cuda`` and ``slow`` markers are declared in ``pyproject.toml``.
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


LONG_FIRST = (
    "test_grading_attacks.py", "test_nbgrader_workflow.py", "test_hostile_html.py",
    "test_browser.py", "test_bounds.py", "test_delegation.py",
)
"""Modules whose tests each take minutes: collected first (then every other ``slow`` test)."""


def _rank(item: pytest.Item) -> int:
    if item.path.name in LONG_FIRST:
        return LONG_FIRST.index(item.path.name)
    return len(LONG_FIRST) if item.get_closest_marker("slow") is not None else len(LONG_FIRST) + 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable: the order within each rank is pytest's
    if torch.cuda.is_available():
        return
    skip_cuda = pytest.mark.skip(reason="needs a CUDA GPU; torch.cuda.is_available() is False")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip_cuda)
