"""Lesson 4's expected figures, drawn with the reference library.

* ``loss_curves.png`` the three n=2, m=1 configurations' losses against density, at r = 0.5 and r = 2.
* ``theory.png`` the theoretical phase diagram on a fine grid, with the triple point.
* ``empirical.png`` theory, the paper's average (worst restart dropped) and the best restart, side by
  side: the lesson's CPU recipe (16 x 16 points x 6 restarts, 10,000 steps at lr 1e-3, batch 128, seed 0),
  which is exactly what the notebook trains at ``SCALE = "cpu"``.
* ``n3m2.png`` the same three panels for n=3, m=2 (10 x 10 points x 6 restarts).

About a minute on one CPU thread.
"""

from __future__ import annotations

from pathlib import Path

import torch

from supercourse import phase, plots, theory
from supercourse.experiments._common import save_figure

__all__ = ["make", "GRID", "GRID_N3", "STEPS", "BATCH", "LR", "SEED"]

GRID = (16, 16, 6)
"""(importances, densities, restarts) of the notebook's CPU default."""
GRID_N3 = (10, 10, 6)
STEPS = 10_000
BATCH = 128
LR = 1e-3
SEED = 0


def _loss_curves():
    from matplotlib.figure import Figure

    densities = torch.logspace(-2, 0, 300, dtype=torch.float64)
    colors = ["0.45", plots.PHASE_COLORS[1], plots.PHASE_COLORS[2]]
    fig = Figure(figsize=(9.5, 3.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, r in zip(axes, (0.5, 2.0)):
        losses = theory.configuration_losses(r, densities)
        for c, name in enumerate(theory.PHASES):
            ax.plot(densities.numpy(), losses[:, c].numpy(), color=colors[c], lw=2, label=name)
        ax.plot(densities.numpy(), losses.min(dim=-1).values.numpy(), color="k", lw=0.8, ls="--", label="lowest")
        ax.set(xscale="log", yscale="log", xlabel="feature density 1 - S", title=f"relative importance r = {r:g}")
    axes[0].set_ylabel("expected loss")
    axes[1].legend(fontsize=8, frameon=False)
    return fig


def _trained(grid: tuple[int, int, int], n_features: int) -> phase.EmpiricalPhaseDiagram:
    R, P, K = grid
    return phase.empirical_phase_diagram(
        phase.log_axis(*phase.IMPORTANCE_RANGE, R),
        phase.log_axis(*phase.DENSITY_RANGE, P),
        n_restarts=K,
        drop_worst=1,
        n_features=n_features,
        steps=STEPS,
        batch_size=BATCH,
        lr=LR,
        seed=SEED,
        device="cpu",
        progress=False,
    )


def _panels(res: phase.EmpiricalPhaseDiagram):
    K = res.grid.n_restarts
    return plots.phase_diagrams(
        {
            "theory": res.theory,
            f"trained: {K - 1} of {K} restarts (worst dropped)": res.fractions,
            f"trained: best of {K} restarts": res.best,
        },
        res.relative_importance,
        res.density,
        phases=res.phase_names,
        boundary=res.theory_diagram(),
    )


def make(out_dir: Path) -> list[Path]:
    """Write the lesson's expected figures into ``out_dir`` and return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    r_fine = torch.logspace(-1, 1, 200, dtype=torch.float64)
    p_fine = torch.logspace(-2, 0, 200, dtype=torch.float64)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # models this small train fastest on one thread
    try:
        n2, n3 = _trained(GRID, 2), _trained(GRID_N3, 3)
    finally:
        torch.set_num_threads(threads)
    figures = {
        "loss_curves": _loss_curves(),
        "theory": plots.phase_diagrams({"theory": theory.phase_diagram(r_fine, p_fine)}, r_fine, p_fine),
        "empirical": _panels(n2),
        "n3m2": _panels(n3),
    }
    return [save_figure(fig, out / f"{name}.png") for name, fig in figures.items()]
