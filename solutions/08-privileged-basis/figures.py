"""Lesson 8's expected figures, drawn with the reference library.

* ``neurons.png`` the neuron model (n=10, m=5, I_i = 0.75^i) at nine densities,
  best of 8 restarts: each neuron a bar of its feature weights
  (:mod:`supercourse.experiments.privileged_basis` at its CPU defaults).
* ``small_neurons.png`` the |x| model with n=3, m=6: a ReLU(x_i) and a
  ReLU(-x_i) neuron per feature.
* ``sweep_neurons.png`` and ``sweep_counts.png`` the |x| sweep at CPU size
  (n=50, m=20, I_i = 0.8^i, six densities): the neurons, and monosemantic and
  polysemantic neurons against sparsity
  (:mod:`supercourse.experiments.absolute_value` at its CPU defaults).

Exactly the lesson's CPU runs (same seeds and sizes): a few minutes on two cores.
"""

from __future__ import annotations

from pathlib import Path

from supercourse.experiments import absolute_value, privileged_basis
from supercourse.experiments._common import save_figure

__all__ = ["make", "SEED"]

SEED = 0


def make(out_dir: Path) -> list[Path]:
    """Train both experiments at the lesson's CPU sizes and write the four PNGs into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kept, _ = privileged_basis.train_study(seed=SEED, device="cpu")
    written = [save_figure(privileged_basis.figure(kept), out_dir / "neurons.png")]
    small, _ = absolute_value.train_small(seed=SEED, device="cpu")
    sweep, _ = absolute_value.train_sweep(seed=SEED, device="cpu")
    for name, fig in absolute_value.figures(small, sweep).items():
        written.append(save_figure(fig, out_dir / f"{name}.png"))
    return written
