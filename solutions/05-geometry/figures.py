"""Lesson 5's expected figures, drawn with the reference library.

* ``dimensions_per_feature.png`` ``D*`` against ``1 / (1 - S)`` for the CPU
  sweep (n=60, m=6, 16 densities from 1 to 1/20, uniform importance).
* ``feature_dimensionality.png`` every feature's dimensionality on the same
  sweep, with the polytope lines.
* ``pentagon_study.png`` the pentagon study: five
  features in two dimensions as feature 0 gets 1 to 6 times sparser.

Both experiments run exactly as the lesson's CPU defaults do, with the
paper's recipe (:mod:`supercourse.experiments.geometry` size ``"cpu"``,
:mod:`supercourse.experiments.pentagon`), about two and a half minutes in
all on two cores.
"""

from __future__ import annotations

from pathlib import Path

from supercourse.experiments import geometry, pentagon
from supercourse.experiments._common import save_figure

__all__ = ["make", "SEED"]

SEED = 0


def make(out_dir: Path) -> list[Path]:
    """Train both experiments at their CPU defaults and write the three PNGs into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model, _ = geometry.train_sweep("cpu", seed=SEED, device="cpu")
    written = list(geometry.write_figures(model, out_dir).values())
    study, _ = pentagon.run_study(seed=SEED, device="cpu")
    written.append(save_figure(pentagon.study_figure(study), out_dir / "pentagon_study.png"))
    return written
