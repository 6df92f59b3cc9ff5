"""Shared pytest configuration for ``tests/`` and the lesson folders' own tests.

One torch thread per test process; ``@pytest.mark.cuda`` tests skipped without a GPU; the known-long
tests collected first, so that pytest-xdist hands them out early and the suite does not end waiting on
one of them; and under ``--dist loadgroup`` the tests that share a costly module-scoped fixture kept on one
worker, so that it is made once. The ``cuda`` and ``slow`` markers are declared in ``pyproject.toml``.
"""

from __future__ import annotations

import os

# The suite runs under pytest-xdist, three workers on CI's two cores (a third worker
# fills the time the others spend waiting: the simulated trainers of lesson 02
# sleep, graders wait on time limits and start-ups; two workers left the cores 9%
# idle, three 3%), and starts notebook kernels and grading workers: one intra-op
# thread each keeps the cores from being oversubscribed further (tiny models slow
# down tens of times when torch's threads contend).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from supercourse._startup import skip_slow_optional_imports  # noqa: E402

skip_slow_optional_imports()  # 1.7 s of every test process that reads a notebook (see the module)

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


SHARED_FIXTURES = (
    "test_bench.py", "test_contexts.py", "test_disentanglement.py", "test_experiment_correlated.py",
    "test_experiment_disentanglement.py", "test_experiment_double_descent.py", "test_experiment_dynamics.py",
    "test_experiment_geometry.py", "test_experiment_large_sweep.py", "test_experiment_neurons.py",
    "test_experiment_sae.py", "test_memorization.py", "test_phase.py",
)
"""Modules whose tests share module-scoped fixtures that train for seconds to minutes (a sweep, a reference run)."""


def fixture_group(nodeid: str) -> str:
    """The unit of work ``--dist loadgroup`` hands one xdist worker: a test alone, or every test of a
    ``SHARED_FIXTURES`` module.

    A module-scoped fixture is made once per worker that runs a test needing it: with a module's tests spread
    over both workers, each trained the same sweep (about 50 s twice for lesson 07's attacks, 56 s twice for
    lesson 09's reference study, which the seed-0 fixture also reads).
    """
    path = nodeid.partition("::")[0]
    return path if path.rsplit("/", 1)[-1] in SHARED_FIXTURES else nodeid


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadgroup`` as ``load``, with the units of :func:`fixture_group` (pytest-xdist's own groups
    rename node ids, which pytest 9 no longer lets a plugin do)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    if not callable(getattr(LoadScopeScheduling, "_split_scope", None)):  # another pytest-xdist: its own loadgroup
        return None

    class FixtureGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return fixture_group(nodeid)

    return FixtureGroups(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable: the order within each rank is pytest's
    if torch.cuda.is_available():
        return
    skip_cuda = pytest.mark.skip(reason="needs a CUDA GPU; torch.cuda.is_available() is False")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip_cuda)
