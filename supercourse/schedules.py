"""Learning-rate schedules: a factor in [0, 1] that multiplies the base lr at each step."""

from __future__ import annotations

import math
from typing import Callable, Union

__all__ = ["SCHEDULES", "Schedule", "lr_factor", "resolve_schedule"]

Schedule = Union[str, Callable[[int, int], float]]


def constant(step: int, steps: int) -> float:
    """The paper's recipe: the same lr throughout."""
    return 1.0


def linear(step: int, steps: int) -> float:
    """Decays linearly from 1 at step 0 to 0 at the end."""
    return 1.0 - step / steps


def cosine(step: int, steps: int) -> float:
    """Half a cosine from 1 at step 0 to 0 at the end."""
    return 0.5 * (1.0 + math.cos(math.pi * step / steps))


SCHEDULES: dict[str, Callable[[int, int], float]] = {
    "constant": constant,
    "linear": linear,
    "cosine": cosine,
}


def resolve_schedule(schedule: Schedule) -> Callable[[int, int], float]:
    """Look up a schedule by name, or accept a callable ``f(step, steps) -> factor``."""
    if callable(schedule):
        return schedule
    if not isinstance(schedule, str) or schedule not in SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {sorted(SCHEDULES)} or a callable, got {schedule!r}")
    return SCHEDULES[schedule]


def lr_factor(schedule: Schedule, step: int, steps: int) -> float:
    """The lr multiplier of ``schedule`` at ``step`` of ``steps``."""
    return resolve_schedule(schedule)(step, steps)
