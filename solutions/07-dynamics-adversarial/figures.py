"""Lesson 7's expected figures, drawn with the reference library.

* ``energy_levels.png``: feature dimensionalities of instance 0 of the energy-level run
  (n=15, m=3, equal importance, 1-S = 0.35) over training, with the jumps shaded and the
  loss on a fixed batch below.
* ``correlated_stages.png``: the correlated run (2 sets of 3 features, m=3, 1-S = 0.1):
  loss, within- and across-set cosines, and ``W`` at the first snapshot of each stage.
* ``vulnerability.png``: relative vulnerability and features per dimension across the
  sparsity sweep (n=40, m=5, 8 densities from 1 to 1/50).

All three are the lesson's CPU defaults (:mod:`supercourse.experiments.dynamics` and
:mod:`supercourse.experiments.adversarial`), seed 0.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from supercourse.experiments import adversarial, dynamics
from supercourse.experiments._common import save_figure

__all__ = ["make", "SEED"]

SEED = 0


def make(out_dir: Path) -> list[Path]:
    """Train both dynamics runs and the attack sweep at their CPU defaults; write the three PNGs into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    levels, _ = dynamics.record(dynamics.make_model(seed=SEED), seed=SEED, device="cpu")
    stages, _ = dynamics.record(dynamics.make_correlated_model(seed=SEED), seed=SEED, device="cpu")
    written = list(dynamics.write_figures(levels, stages, out_dir).values())
    sweep, _, _ = adversarial.train_sweep(seed=SEED, device="cpu")
    fig = adversarial.vulnerability_figure(adversarial.vulnerability_rows(sweep, SEED))
    written.append(save_figure(fig, out_dir / "vulnerability.png"))
    plt.close(fig)
    return written
