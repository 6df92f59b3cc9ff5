"""The larger basic-results sweep: n=80 features in m=20 dimensions, importance 0.9^i.

The paper's "Demonstrating Superposition" section repeats its n=20, m=5
experiment (:mod:`~supercourse.experiments.basic_results`) at four times the
size and finds a rescaled copy of it. This module trains a linear and a
ReLU-output model, one instance per density of the small sweep
(:data:`~supercourse.experiments.basic_results.DENSITIES`, 1 down to 0.001):

* The linear model represents exactly the top ``m = 20`` features at every
  density, orthogonally.
* The ReLU model does the same when dense, and packs more and more features
  into its 20 dimensions as they get sparser, about as many *per dimension*
  as the small model does (:func:`features_per_dimension`), with antipodal
  pairs at medium sparsity and negative biases when sparse.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import torch

from .. import metrics, plots
from ..model import ToyModel
from . import basic_results
from ._common import (
    ExperimentResult,
    SummaryRow,
    save_figure,
    run_activation_sweep,
    summarize,
)

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from ..training import History

NAME = "large-sweep"
DESCRIPTION = "n=80, m=20, importance 0.9^i: basic-results at four times the size, the same per dimension"

N_FEATURES = 80
N_HIDDEN = 20
IMPORTANCE_DECAY = 0.9
DENSITIES = basic_results.DENSITIES
"""The densities of the small sweep, so the two compare instance by instance."""
ACTIVATIONS = basic_results.ACTIVATIONS
MODEL_NAMES = basic_results.MODEL_NAMES
DEFAULT_STEPS = 10_000
"""The paper's recipe (AdamW lr 1e-3, batch 1024): a few seconds on a GPU, a minute or two per model on a CPU."""
CPU_STEPS = 3_000
CPU_LR = 3e-3
"""The lesson's CPU default, :data:`CPU_STEPS` steps at this learning rate: within a feature or two
of the paper's recipe at every density, in a third of the time."""
DEFAULT_SEED = 0


def importance() -> torch.Tensor:
    """``I_i = 0.9^i``: ``(n_features,)``."""
    return IMPORTANCE_DECAY ** torch.arange(N_FEATURES, dtype=torch.float32)


def feature_probability(densities: Sequence[float] | torch.Tensor = DENSITIES) -> torch.Tensor:
    """The densities ``1 - S``, one per instance: ``(n_instances,)``."""
    return torch.as_tensor(densities, dtype=torch.float32).reshape(-1).clone()


def make_model(
    activation: str = "relu",
    seed: int | None = DEFAULT_SEED,
    densities: Sequence[float] | torch.Tensor = DENSITIES,
) -> ToyModel:
    """An untrained :class:`~supercourse.ToyModel`, one instance per density.

    ``W: (len(densities), 20, 80)``; ``activation`` is ``"relu"`` or
    ``"linear"``; ``seed`` seeds the init. ``densities`` defaults to
    :data:`DENSITIES`; pass a finer grid (e.g. ``torch.logspace(0, -3, 25)``)
    for a smoother curve on a GPU.
    """
    return ToyModel(
        N_FEATURES,
        N_HIDDEN,
        n_instances=len(feature_probability(densities)),
        feature_probability=feature_probability(densities),
        importance=importance(),
        activation=activation,
        seed=seed,
    )


def features_per_dimension(W: torch.Tensor, threshold: float = metrics.REPRESENTED_NORM) -> torch.Tensor:
    """Features represented per hidden dimension, ``n_represented / n_hidden``: ``(n_instances,)``.

    The number that makes the small and the large sweep comparable: both are
    1 when dense, and grow alike as features get sparser.
    """
    W = W.detach()
    return metrics.n_represented(W, threshold).double() / W.shape[1]


def summary(model: ToyModel, history: "History | None" = None) -> list[SummaryRow]:
    """One row per density: features represented, in superposition, antipodal pairs, min bias, ``D*``."""
    return summarize(model, history)


def write_figures(
    models: dict[str, ToyModel], histories: dict[str, "History"], out_dir: Path
) -> dict[str, Path]:
    """The figures of trained models (keys of :data:`ACTIVATIONS`) as PNGs in ``out_dir``.

    ``feature_bars.png`` and ``gram.png`` as for the small sweep,
    ``per_dimension.png`` (features represented per dimension against
    ``1 / (1 - S)``, one line per model) and ``training_curves.png``.
    """
    any_model = next(iter(models.values()))
    densities = any_model.feature_probability[:, 0].detach().cpu()
    titles = plots.density_titles(densities)
    named_W = {MODEL_NAMES[k]: m.W.detach() for k, m in models.items()}
    named_b = {MODEL_NAMES[k]: m.b_final.detach() for k, m in models.items()}
    figures = {
        "feature_bars": plots.feature_bars(named_W, titles=titles),
        "gram": plots.gram_heatmaps(named_W, named_b, titles=titles),
        "per_dimension": plots.represented_by_density(named_W, densities, per_dimension=True),
        "training_curves": plots.training_curves({MODEL_NAMES[k]: h for k, h in histories.items()}, labels=titles),
    }
    return {name: save_figure(fig, out_dir / f"{name}.png") for name, fig in figures.items()}


def run(
    out_dir: str | Path = "out/large-sweep",
    steps: int = DEFAULT_STEPS,
    device: str | torch.device | None = None,
    seed: int = DEFAULT_SEED,
    console: "Console | None" = None,
) -> ExperimentResult:
    """Train the linear and the ReLU model, print a table per model, write the figures.

    Writes ``feature_bars.png``, ``gram.png``, ``per_dimension.png`` and
    ``training_curves.png`` into ``out_dir`` (created if needed). Raises
    ``ValueError`` for ``steps <= 0`` or an unavailable ``device``.
    """
    return run_activation_sweep(sys.modules[__name__], out_dir, steps, device, seed, console)
