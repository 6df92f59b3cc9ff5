"""The intro figure: n=5 features in m=2 dimensions, from dense to sparse.

Feature ``i`` has importance ``0.9^i``; ten ReLU-output instances span
densities ``1 - S = 20^-t`` for ``t`` evenly spaced in [0, 1], from 1 to 1/20.

* Dense: the 2 most important features get orthogonal dimensions, the other
  3 are dropped.
* About 80% sparse: 4 features as 2 antipodal pairs.
* About 90% sparse: all 5 features, on a pentagon.

With only 2 dimensions a run often stops in a worse local optimum (a digon
where a pentagon does better), so :func:`run` trains :data:`N_RESTARTS`
initialisations of every density side by side and keeps the one with the
lowest loss, as the paper did for its 2-D studies.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .. import plots
from ..model import ToyModel
from ._common import (
    ExperimentResult,
    SummaryRow,
    best_of_restarts,
    repeat_instances,
    save_figure,
    summarize,
    summary_table,
    train_models,
)
from ._run import Run

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

    from ..training import History

NAME = "intro"
DESCRIPTION = "n=5, m=2: 2 orthogonal features when dense, antipodal pairs, then a pentagon when sparse"

N_FEATURES = 5
N_HIDDEN = 2
IMPORTANCE_DECAY = 0.9
N_INSTANCES = 10
MAX_SPARSITY_FACTOR = 20.0
"""Densities run from 1 down to ``1 / MAX_SPARSITY_FACTOR``."""
DENSITIES: tuple[float, ...] = tuple((MAX_SPARSITY_FACTOR ** -torch.linspace(0, 1, N_INSTANCES)).tolist())
ACTIVATIONS = ("relu",)
N_RESTARTS = 4
"""Initialisations trained per density by :func:`run`; the lowest-loss one is kept."""
DEFAULT_STEPS = 10_000
"""The paper's recipe; a few seconds on 2 CPU cores."""
DEFAULT_SEED = 0


def importance() -> torch.Tensor:
    """``I_i = 0.9^i``: ``(n_features,)``."""
    return IMPORTANCE_DECAY ** torch.arange(N_FEATURES, dtype=torch.float32)


def feature_probability() -> torch.Tensor:
    """``20 ** -linspace(0, 1, 10)``: ``(n_instances,)``, from 1 to 0.05."""
    return MAX_SPARSITY_FACTOR ** -torch.linspace(0, 1, N_INSTANCES)


def make_model(activation: str = "relu", seed: int | None = DEFAULT_SEED, restarts: int = 1) -> ToyModel:
    """An untrained :class:`~supercourse.ToyModel`, one instance per density: ``W: (10, 2, 5)``.

    With ``restarts > 1``, ``restarts`` initialisations of every density:
    ``W: (10 * restarts, 2, 5)``, instance ``r * 10 + k`` being restart ``r`` of
    density ``k`` (pick the best with
    :func:`supercourse.experiments._common.best_of_restarts`).
    """
    model = ToyModel(
        N_FEATURES,
        N_HIDDEN,
        n_instances=N_INSTANCES,
        feature_probability=feature_probability(),
        importance=importance(),
        activation=activation,
        seed=seed,
    )
    return model if restarts == 1 else repeat_instances(model, restarts, seed)


def summary(model: ToyModel, history: "History | None" = None) -> list[SummaryRow]:
    """One row per density: features represented, in superposition, antipodal pairs, min bias, ``D*``."""
    return summarize(model, history)


def write_figures(model: ToyModel, history: "History", out_dir: Path) -> dict[str, Path]:
    """The direction plot, feature bars, ``W^T W`` and loss curves of a trained model, as PNGs."""
    titles = plots.density_titles(feature_probability())
    W, b = model.W.detach(), model.b_final.detach()
    figures = {
        "directions": plots.feature_directions_2d(W, titles=titles),
        "feature_bars": plots.feature_bars(W, titles=titles),
        "gram": plots.gram_heatmaps(W, b, titles=titles),
        "training_curves": plots.training_curves(history, labels=titles),
    }
    return {name: save_figure(fig, out_dir / f"{name}.png") for name, fig in figures.items()}


def run(
    out_dir: str | Path = "out/intro",
    steps: int = DEFAULT_STEPS,
    device: str | torch.device | None = None,
    seed: int = DEFAULT_SEED,
    console: "Console | None" = None,
    restarts: int = N_RESTARTS,
) -> ExperimentResult:
    """Train the ReLU model (best of ``restarts`` per density), print its table, write the figures.

    The result's ``models["relu"]`` has one instance per density. Writes ``directions.png``, ``feature_bars.png``, ``gram.png`` and
    ``training_curves.png`` into ``out_dir`` (created if needed).
    """
    run = Run(NAME, out_dir, steps, device, seed, console)
    trained = make_model("relu", seed=run.seed, restarts=restarts)
    history = train_models({"relu": trained}, run)["relu"]
    best, history, _ = best_of_restarts(trained, restarts, history, seed=run.seed)
    models, histories = {"relu": best.cpu()}, {"relu": history}
    summaries = {"relu": summary(best, history)}
    title = f"{NAME}: ReLU output model (n={N_FEATURES}, m={N_HIDDEN}, {run.steps} steps, best of {restarts})"
    run.table(summary_table(summaries["relu"], title))
    run.figures_written(write_figures(models["relu"], histories["relu"], run.out))
    return run.finish(
        models=models, histories=histories, summaries=summaries, config={"restarts": restarts},
        table={"relu": [row.as_dict() for row in summaries["relu"]]},
    )
