"""The figures each lesson shows as "what you should see", drawn by the reference library.

``supercourse lessons figures`` calls every maker and writes the PNGs into
``solutions/<lesson>/figures/``; ``supercourse lessons build`` then copies them
into the generated lessons along with the notebooks.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

__all__ = ["FIGURE_MAKERS", "maker"]

FIGURE_MAKERS: dict[str, str] = {
    "01-sparse-features": "autograder.figures.lesson01",
    "02-training-many-models": "autograder.figures.lesson02",
    "03-measuring-superposition": "autograder.figures.lesson03",
    "04-phase-change": "autograder.figures.lesson04",
    "05-geometry": "autograder.figures.lesson05",
    "06-correlated-features": "autograder.figures.lesson06",
    "07-dynamics-adversarial": "autograder.figures.lesson07",
    "08-privileged-basis": "autograder.figures.lesson08",
    "09-sparse-autoencoders": "autograder.figures.lesson09",
}
"""``{lesson slug: module}``; each module defines ``make(out_dir: Path) -> list[Path]``."""


def maker(lesson: str) -> Callable[[Path], list[Path]]:
    """The ``make`` function of ``lesson``'s figure module."""
    return importlib.import_module(FIGURE_MAKERS[lesson]).make
