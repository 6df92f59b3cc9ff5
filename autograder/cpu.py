"""How much faster this machine runs several CPU-bound processes than one: the ceiling of parallel grading.

Kept apart from the benchmark so that the processes it starts import nothing else (no torch, no nbformat).
"""

from __future__ import annotations

import statistics
import time

__all__ = ["SPIN_LOOPS", "cpu_ceiling"]

SPIN_LOOPS = 6_000_000
"""Iterations of the CPU-only loop that :func:`cpu_ceiling` times (about half a second on one core)."""


def _spin(loops: int) -> float:
    """Seconds this process takes for ``loops`` iterations of a pure-Python loop: CPU only, no memory traffic, no I/O."""
    start = time.perf_counter()
    total = 0
    for i in range(loops):
        total += i * i
    return time.perf_counter() - start


def cpu_ceiling(jobs: int, loops: int = SPIN_LOOPS, rounds: int = 3) -> float:
    """This machine's own speed-up for ``jobs`` CPU-bound processes at once over one: the most grading can reach.

    Each round times the same loop in one process alone, then in ``jobs`` processes at once (already
    started, so start-up is not counted): ``jobs * alone / slowest``. The median of ``rounds`` rounds.
    On cores that share a physical core, a turbo clock that drops when both run, or a host that lends
    fewer cycles than it shows, this is below ``jobs``.
    """
    import multiprocessing

    for name, value in (("jobs", jobs), ("loops", loops), ("rounds", rounds)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    ctx = multiprocessing.get_context("spawn")
    ratios = []
    with ctx.Pool(jobs) as pool:
        pool.map(_spin, [1] * jobs)  # every process started and warm
        for _ in range(rounds):
            alone = pool.apply(_spin, (loops,))
            together = pool.map(_spin, [loops] * jobs, chunksize=1)
            ratios.append(jobs * alone / max(together))
    return statistics.median(ratios)
