"""Helpers the lesson notebooks use: one scale setting, and grading mode.

Every lesson has one setting in its first code cell::

    SCALE = "cpu"   # "paper": the paper's sizes (use a GPU)

and sizes its experiments with :func:`sized`, so the same notebook runs in
minutes on a laptop, at the paper's scale on a GPU, and in seconds while it is
being autograded (long training is never part of grading).
"""

from __future__ import annotations

import os
from typing import TypeVar

__all__ = ["SCALES", "grading", "sized", "GRADING_ENV"]

SCALES = ("cpu", "paper")
GRADING_ENV = "SUPERCOURSE_GRADING"

T = TypeVar("T")


def grading() -> bool:
    """True while a notebook is being graded (``nbgrader autograde`` or ``supercourse check``)."""
    return bool(os.environ.get("NBGRADER_EXECUTION") or os.environ.get(GRADING_ENV))


def sized(scale: str, cpu: T, paper: T, grading_value: T | None = None) -> T:
    """Pick a size for the current scale.

    ``scale`` is the lesson's ``SCALE`` (``"cpu"`` or ``"paper"``). While
    grading, returns ``grading_value`` (default: the ``cpu`` value), so that
    graded runs stay small whatever the notebook's setting.
    """
    if scale not in SCALES:
        raise ValueError(f"SCALE must be one of {SCALES}, got {scale!r}")
    if grading():
        return cpu if grading_value is None else grading_value
    return paper if scale == "paper" else cpu
