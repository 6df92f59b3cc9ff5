"""How many CPU threads a training step should use: whichever of one and torch's threads runs it faster here.

torch splits each operation over its intra-op threads and waits for all of
them at the end of it. A small model's step is a few dozen operations of
microseconds each; when another process holds one of the cores, every one of
those waits lasts until the descheduled thread gets a core back (a scheduler
time slice, milliseconds), and the step runs several to tens of times slower
than on one thread. On a quiet machine the same threads make a step up to
about 1.5x faster. Measured on 2 cores, ``supercourse.train``, steps per
second on two threads over one (a ``ToyModel`` subclass with its own forward,
through autograd; the absolute-value model's hand-written gradient):

=====================================  ===========  ===============================
step                                   quiet        one CPU-bound process beside it
=====================================  ===========  ===============================
n=20, m=5, 7 instances, batch 1024     0.47x        0.18x
abs. value n=50, m=20, 12 instances    1.46x        -
n=100, m=20, 20 instances              1.44x        0.56x
n=400, m=30, 20 instances              1.79x        0.55x
=====================================  ===========  ===============================

Neither the size of a step nor the load average predicts which wins (the load
changes while a run goes on), so :class:`ThreadChooser` measures: it times a
few steps on each while training and keeps the faster, and checks again
every so often. The choice is remembered for the same model shapes across
training runs that follow each other (many short runs pay for one trial).
The thread count changes the speed, not the numbers (the course's models
train bit for bit the same on one thread or two).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from typing import Callable, Iterator

import torch

__all__ = ["ThreadChooser", "torch_threads"]


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)``; restore the previous setting after (whatever the block set)."""
    old = torch.get_num_threads()
    if n != old:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)


class ThreadChooser:
    """Runs a CPU training loop's steps on one thread or on ``available``, whichever is faster now.

    Call :meth:`begin` before each step (it sets torch's thread count) and
    :meth:`end` after it. At the start, and again after :attr:`recheck_s`
    seconds of training (doubling while the choice holds, up to
    :attr:`MAX_RECHECK_S`), it runs a trial: one warm-up step and
    :attr:`TRIAL_STEPS` timed steps on each candidate, and keeps the one with
    the lower median step time. A trial step (the warm-up included) more than
    :attr:`GIVE_UP` times slower than the other candidate's median ends that
    candidate's trial (a warm-up step only past :attr:`WARM_UP_GRACE_S`): a busy
    machine pays for one slow step, not a trial. Training starts on one
    thread, which is never far from the best.

    Args:
        available: torch's thread count (the candidates are 1 and this).
        clock: returns seconds (``time.perf_counter``; tests pass their own).

    Attributes:
        chosen: the thread count the steps outside trials use.
        steps_on: ``{threads: steps run on that many}``.
    """

    TRIAL_STEPS = 4
    RECHECK_S = 5.0
    MAX_RECHECK_S = 80.0
    GIVE_UP = 3.0
    WARM_UP_GRACE_S = 0.005
    """A warm-up step ends a trial only when it is slower than this too."""
    MEMORY_S = 120.0
    """A choice saved by :meth:`save` is resumed by :meth:`resume` for this many seconds of wall time."""

    _memory: dict[object, tuple[int, float, float, float]] = {}  # key -> chosen, recheck_s, seconds to trial, saved at

    @classmethod
    def resume(cls, key: object, available: int, clock: Callable[[], float] = time.perf_counter) -> "ThreadChooser":
        """A chooser that goes on where the last one saved under ``key`` stopped (a fresh one otherwise).

        ``key`` names the step (the model's class, parameter shapes, batch size, path and ``available``).
        """
        chooser = cls(available, clock)
        saved = cls._memory.get(key)
        if saved is not None and clock() - saved[3] <= cls.MEMORY_S:
            chooser.chosen, chooser.recheck_s, chooser._next_trial = saved[0], saved[1], max(0.0, saved[2])
        return chooser

    def save(self, key: object) -> None:
        """Remember the choice and the time left until the next trial, for :meth:`resume`."""
        if not self._plan:  # a trial cut short by the end of training decides nothing
            self._memory[key] = (self.chosen, self.recheck_s, self._next_trial - self._trained, self.clock())

    def __init__(self, available: int, clock: Callable[[], float] = time.perf_counter) -> None:
        self.available = max(1, int(available))
        self.candidates = (1, self.available) if self.available > 1 else (1,)
        self.clock = clock
        self.chosen = 1
        self.steps_on: dict[int, int] = {}
        self.recheck_s = self.RECHECK_S
        self._trained = 0.0  # seconds of steps so far
        self._next_trial = 0.0
        self._plan: list[tuple[int, bool]] = []  # (threads, timed) of the trial steps to come
        self._samples: dict[int, list[float]] = {}
        self._current = (self.chosen, False)
        self._start = 0.0

    def begin(self) -> int:
        """Set torch's threads for the next step and start its clock; returns the thread count."""
        if not self._plan and len(self.candidates) > 1 and self._trained >= self._next_trial:
            # the current choice first, so a trial never starts with a switch it may not need
            order = sorted(self.candidates, key=lambda c: c != self.chosen)
            self._plan = [(c, timed) for c in order for timed in [False] + [True] * self.TRIAL_STEPS]
            self._samples = {c: [] for c in self.candidates}
        self._current = self._plan[0] if self._plan else (self.chosen, False)
        threads = self._current[0]
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        self.steps_on[threads] = self.steps_on.get(threads, 0) + 1
        self._start = self.clock()
        return threads

    def end(self) -> None:
        """Stop the step's clock; at the end of a trial, choose."""
        seconds = self.clock() - self._start
        self._trained += seconds
        if not self._plan:
            return
        threads, timed = self._plan.pop(0)
        if timed:
            self._samples[threads].append(seconds)
        others = [statistics.median(v) for c, v in self._samples.items() if c != threads and v]
        if others:
            limit = self.GIVE_UP * min(others)
            if not timed:  # a warm-up step may pay one-off costs (a thread pool waking up)
                limit = max(limit, self.WARM_UP_GRACE_S)
            if seconds > limit:
                self._plan = [(c, t) for c, t in self._plan if c != threads]
                if not timed:
                    self._samples[threads].append(seconds)
        if not self._plan:
            self._choose()

    def _choose(self) -> None:
        medians = {c: statistics.median(v) for c, v in self._samples.items() if v}
        best = min(medians, key=medians.get)
        self.recheck_s = min(2 * self.recheck_s, self.MAX_RECHECK_S) if best == self.chosen else self.RECHECK_S
        self.chosen = best
        self._next_trial = self._trained + self.recheck_s
