"""Lesson 3's expected figures, drawn with the reference library.

* ``sweep_bars.png`` the paper's basic-results figure: feature bars of the
  linear and the ReLU model, n=20 features in m=5 dimensions, seven densities.
* ``sweep_gram.png`` ``W^T W`` and ``b`` of the same models.
* ``per_dimension.png`` features represented per dimension against
  ``1 / (1 - S)``, for the n=20, m=5 and the n=80, m=20 sweeps.
* ``large_bars.png`` feature bars of the n=80, m=20 ReLU model.

The models are the lesson's, at its CPU default: :mod:`~supercourse.experiments.basic_results`
with the paper's recipe (10,000 steps) and :mod:`~supercourse.experiments.large_sweep`
with :data:`~supercourse.experiments.large_sweep.CPU_STEPS` at ``CPU_LR``. About two minutes on 2 CPU cores.
"""

from __future__ import annotations

from pathlib import Path

import supercourse
from supercourse import plots
from supercourse.experiments import basic_results, large_sweep
from supercourse.experiments._common import save_figure

__all__ = ["make", "train_sweeps", "SMALL_STEPS", "LARGE_STEPS", "SEED"]

SMALL_STEPS = basic_results.DEFAULT_STEPS
LARGE_STEPS = large_sweep.CPU_STEPS
SEED = basic_results.DEFAULT_SEED


def train_sweeps(small_steps: int = SMALL_STEPS, large_steps: int = LARGE_STEPS) -> dict[str, supercourse.ToyModel]:
    """The lesson's four trained models, on the CPU: ``small_linear``, ``small_relu``, ``large_linear``, ``large_relu``."""
    models = {}
    runs = (("small", basic_results, small_steps, 1e-3), ("large", large_sweep, large_steps, large_sweep.CPU_LR))
    for size, experiment, steps, lr in runs:
        for activation in ("linear", "relu"):
            model = experiment.make_model(activation, seed=experiment.DEFAULT_SEED)
            supercourse.train(model, steps=steps, lr=lr, seed=experiment.DEFAULT_SEED, device="cpu", progress=False)
            models[f"{size}_{activation}"] = model
    return models


def make(out_dir: Path) -> list[Path]:
    """Write the lesson's expected figures into ``out_dir`` and return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    models = train_sweeps()
    W = {name: model.W.detach() for name, model in models.items()}
    b = {name: model.b_final.detach() for name, model in models.items()}
    densities = basic_results.feature_probability()
    titles = plots.density_titles(densities)
    small = {"linear": "small_linear", "ReLU output": "small_relu"}
    figures = {
        "sweep_bars": plots.feature_bars({label: W[key] for label, key in small.items()}, titles=titles),
        "sweep_gram": plots.gram_heatmaps(
            {label: W[key] for label, key in small.items()}, {label: b[key] for label, key in small.items()}, titles=titles
        ),
        "per_dimension": plots.represented_by_density(
            {
                "ReLU, n=20, m=5": W["small_relu"],
                "ReLU, n=80, m=20": W["large_relu"],
                "linear, n=20, m=5": W["small_linear"],
                "linear, n=80, m=20": W["large_linear"],
            },
            densities,
            per_dimension=True,
        ),
        "large_bars": plots.feature_bars(W["large_relu"], titles=titles),
    }
    return [save_figure(fig, out / f"{name}.png") for name, fig in figures.items()]
