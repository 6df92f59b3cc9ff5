"""Basic results: a linear and a ReLU-output model, n=20 features in m=5 dimensions.

The paper's section "Demonstrating Superposition". Feature ``i`` has importance
``0.7^i``; seven instances span densities ``1 - S`` from 1 to 0.001.

* The linear model represents the top ``m = 5`` features at every density,
  orthogonally (``W^T W`` is the identity on them): what PCA would do.
* The ReLU model does the same when dense; as features get sparser it packs
  more and more of them into the 5 dimensions (about 5, 7, 9, 10, 11-12,
  12-13, 13-15 with ``||W_i|| > 0.5``), first as antipodal pairs, and its
  biases turn negative to filter out the interference.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .. import plots
from ..model import ToyModel
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

NAME = "basic-results"
DESCRIPTION = "n=20, m=5: the linear model keeps the top 5 features; the ReLU model packs more as sparsity grows"

N_FEATURES = 20
N_HIDDEN = 5
IMPORTANCE_DECAY = 0.7
DENSITIES = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001)
ACTIVATIONS = ("linear", "relu")
MODEL_NAMES = {"linear": "linear", "relu": "ReLU output"}
DEFAULT_STEPS = 10_000
"""The paper's recipe; about 15 s for both models on 2 CPU cores."""
DEFAULT_SEED = 0


def importance() -> torch.Tensor:
    """``I_i = 0.7^i``: ``(n_features,)``."""
    return IMPORTANCE_DECAY ** torch.arange(N_FEATURES, dtype=torch.float32)


def feature_probability() -> torch.Tensor:
    """The densities ``1 - S``, one per instance: ``(n_instances,)``."""
    return torch.tensor(DENSITIES, dtype=torch.float32)


def make_model(activation: str = "relu", seed: int | None = DEFAULT_SEED) -> ToyModel:
    """An untrained :class:`~supercourse.ToyModel`, one instance per density in :data:`DENSITIES`.

    ``W: (7, 5, 20)``; ``activation`` is ``"relu"`` or ``"linear"``; ``seed`` seeds the init.
    """
    return ToyModel(
        N_FEATURES,
        N_HIDDEN,
        n_instances=len(DENSITIES),
        feature_probability=feature_probability(),
        importance=importance(),
        activation=activation,
        seed=seed,
    )


def summary(model: ToyModel, history: "History | None" = None) -> list[SummaryRow]:
    """One row per density: features represented, in superposition, antipodal pairs, min bias, ``D*``."""
    return summarize(model, history)


def write_figures(
    models: dict[str, ToyModel], histories: dict[str, "History"], out_dir: Path
) -> dict[str, Path]:
    """The paper's figures of trained models (keys of :data:`ACTIVATIONS`) as PNGs in ``out_dir``."""
    titles = plots.density_titles(feature_probability())
    named_W = {MODEL_NAMES[k]: m.W.detach() for k, m in models.items()}
    named_b = {MODEL_NAMES[k]: m.b_final.detach() for k, m in models.items()}
    figures = {
        "feature_bars": plots.feature_bars(named_W, titles=titles),
        "gram": plots.gram_heatmaps(named_W, named_b, titles=titles),
        "training_curves": plots.training_curves(
            {MODEL_NAMES[k]: h for k, h in histories.items()}, labels=titles
        ),
    }
    return {name: save_figure(fig, out_dir / f"{name}.png") for name, fig in figures.items()}


def run(
    out_dir: str | Path = "out/basic-results",
    steps: int = DEFAULT_STEPS,
    device: str | torch.device | None = None,
    seed: int = DEFAULT_SEED,
    console: "Console | None" = None,
) -> ExperimentResult:
    """Train the linear and the ReLU model, print a table per model, write the figures.

    Writes ``feature_bars.png``, ``gram.png`` and ``training_curves.png`` into
    ``out_dir`` (created if needed). Raises ``ValueError`` for ``steps <= 0``
    or an unavailable ``device``.
    """
    return run_activation_sweep(sys.modules[__name__], out_dir, steps, device, seed, console)
