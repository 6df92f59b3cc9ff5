"""What every experiment shares: per-instance summaries, their table, restarts, the result type.

The run itself (arguments, console, clock, figures, ``params.safetensors``,
``summary.json``) is the template of :mod:`._run`."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import torch

from .. import metrics
from .._validate import check_positive_int
from ..model import ToyModel
from ..training import History, train
from ._run import FIGURE_DPI, Run, get_console, model_config, prepare_run, save_figure

if TYPE_CHECKING:  # pragma: no cover
    from types import ModuleType

    from rich.console import Console

__all__ = [
    "SummaryRow",
    "ExperimentResult",
    "densities_of",
    "summarize",
    "summary_table",
    "SUMMARY_LEGEND",
    "fixed",
    "train_models",
    "run_activation_sweep",
    "repeat_instances",
    "best_of_restarts",
    "save_figure",
    "model_config",
    "prepare_run",
    "get_console",
    "FIGURE_DPI",
]


@dataclass(frozen=True)
class SummaryRow:
    """What one trained instance does, measured from its weights.

    Attributes:
        density: the instance's feature probability ``1 - S``.
        represented: features with ``||W_i|| > 0.5`` (:func:`supercourse.metrics.n_represented`).
        in_superposition: represented features whose interference exceeds 0.1
            (:func:`supercourse.metrics.n_in_superposition`).
        antipodal_pairs: pairs ``(i, j)`` with ``W_i ~ -W_j`` (:func:`supercourse.metrics.antipodal_pairs`).
        min_bias: the most negative entry of ``b``.
        dimensions_per_feature: ``D* = m / ||W||_F^2``.
        loss: the instance's last logged training loss, when known (else ``nan``).
    """

    density: float
    represented: int
    in_superposition: int
    antipodal_pairs: tuple[tuple[int, int], ...]
    min_bias: float
    dimensions_per_feature: float
    loss: float = float("nan")

    @property
    def n_antipodal_pairs(self) -> int:
        return len(self.antipodal_pairs)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["antipodal_pairs"] = [list(p) for p in self.antipodal_pairs]
        return d


@dataclass
class ExperimentResult:
    """What :func:`run` of an experiment returns.

    Attributes:
        name: the experiment's registry key.
        models: ``{model name: trained ToyModel}`` (e.g. ``"linear"``, ``"relu"``), on the CPU.
        histories: ``{model name: History}``.
        summaries: ``{model name: [SummaryRow per instance]}``.
        figures: ``{figure name: path of the PNG written}``.
        steps, seed, device: how it was trained.
        wall_time: seconds for the whole run, figures included.
    """

    name: str
    models: dict[str, ToyModel]
    histories: dict[str, History]
    summaries: dict[str, list[SummaryRow]]
    figures: dict[str, Path] = field(default_factory=dict)
    steps: int = 0
    seed: int = 0
    device: str = "cpu"
    wall_time: float = 0.0
    artifacts: dict[str, Path] = field(default_factory=dict)


def densities_of(model: ToyModel) -> torch.Tensor:
    """Each instance's density ``(n_instances,)``: its features' shared ``1 - S`` (their mean if they differ)."""
    p = model.feature_probability.detach().cpu().double()
    return torch.where((p == p[:, :1]).all(dim=1), p[:, 0], p.mean(dim=1))


def summarize(model: ToyModel, history: History | None = None) -> list[SummaryRow]:
    """One :class:`SummaryRow` per instance of ``model`` (losses from ``history`` when given)."""
    if not isinstance(model, ToyModel):
        raise TypeError(f"model must be a supercourse.ToyModel, got {type(model).__name__}")
    W = model.W.detach().cpu()
    b = model.b_final.detach().cpu()
    rep = metrics.n_represented(W).tolist()
    sup = metrics.n_in_superposition(W).tolist()
    pairs = metrics.antipodal_pairs(W)
    dstar = metrics.dimensions_per_feature(W).tolist()
    losses = history.final_loss.tolist() if history is not None else [float("nan")] * model.n_instances
    return [
        SummaryRow(
            density=float(p),
            represented=int(r),
            in_superposition=int(s),
            antipodal_pairs=tuple(tuple(pair) for pair in ap),
            min_bias=float(bk.min()),
            dimensions_per_feature=float(d),
            loss=float(loss),
        )
        for p, r, s, ap, bk, d, loss in zip(densities_of(model).tolist(), rep, sup, pairs, b, dstar, losses)
    ]


SUMMARY_LEGEND = {
    "1-S": "feature density, the chance a feature is non-zero (S = sparsity)",
    "represented": "features stored: ||W_i|| > 0.5",
    "in superp.": "stored features sharing dimensions: sum_j (W^_i . W_j)^2 > 0.1",
    "antipodal": "pairs of features stored as opposites, W_j = -W_i",
    "min bias": "most negative output bias b_i (ReLU filters interference with it)",
    "D*": "dimensions per feature, m / ||W||_F^2 (0.5: two features per dimension)",
    "loss": "last training loss (importance-weighted squared error)",
}
"""The columns of :func:`summary_table`, each with what it means (printed under the table)."""


def fixed(x: float, digits: int = 3, sign: bool = False) -> str:
    """``x`` with ``digits`` decimals and never a negative (or signed) zero: ``-0.0001 -> "0.000"``."""
    text = f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"
    return f"{0.0:.{digits}f}" if float(text) == 0.0 else text


def summary_table(rows: Sequence[SummaryRow], title: str = ""):
    """A :class:`rich.table.Table` of ``rows``, one line per density, with a legend per column under it."""
    from rich.table import Table

    caption = "\n".join(f"{col}: {text}" for col, text in SUMMARY_LEGEND.items())
    table = Table(title=title, title_justify="left", header_style="bold", caption=caption, caption_justify="left")
    for col in SUMMARY_LEGEND:
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            f"{r.density:.3g}",
            str(r.represented),
            str(r.in_superposition),
            str(r.n_antipodal_pairs),
            fixed(r.min_bias, 3, sign=True),
            fixed(r.dimensions_per_feature, 3),
            f"{r.loss:.3g}",
        )
    return table


def train_models(models: Mapping[str, ToyModel], run: Run) -> dict[str, History]:
    """Train each model (the paper's recipe) with data seed ``run.seed``; models end on the CPU."""
    histories = {}
    for name, model in models.items():
        start = time.perf_counter()
        histories[name] = train(model, steps=run.steps, seed=run.seed, device=run.device, progress=run.progress)
        model.cpu()
        run.trained(f"[bold]{name}[/]: {model.n_instances} instances x {run.steps} steps",
                    time.perf_counter() - start, part=f"train {name}")
    return histories


def run_activation_sweep(
    experiment: "ModuleType",
    out_dir: str | Path,
    steps: int,
    device: str | torch.device | None,
    seed: int,
    console: "Console | None",
) -> "ExperimentResult":
    """The ``run`` of a linear-vs-ReLU sparsity sweep (``basic_results``, ``large_sweep``).

    Uses the experiment module's ``NAME``, ``ACTIVATIONS``, ``MODEL_NAMES``,
    ``N_FEATURES``, ``N_HIDDEN``, ``make_model``, ``summary`` and ``write_figures``:
    trains one model per activation, prints a table per model and writes the figures.
    """
    run = Run(experiment.NAME, out_dir, steps, device, seed, console)
    models = {act: experiment.make_model(act, seed=run.seed) for act in experiment.ACTIVATIONS}
    histories = train_models(models, run)
    summaries = {act: experiment.summary(models[act], histories[act]) for act in experiment.ACTIVATIONS}
    for act in experiment.ACTIVATIONS:
        title = (
            f"{experiment.NAME}: {experiment.MODEL_NAMES[act]} model "
            f"(n={experiment.N_FEATURES}, m={experiment.N_HIDDEN}, {run.steps} steps)"
        )
        run.table(summary_table(summaries[act], title))
    run.figures_written(experiment.write_figures(models, histories, run.out))
    return run.finish(
        models=models, main="relu", histories=histories, summaries=summaries,
        table={act: [row.as_dict() for row in rows] for act, rows in summaries.items()},
    )


def repeat_instances(model: ToyModel, restarts: int, seed: int | None) -> ToyModel:
    """A fresh model with ``restarts`` copies of each of ``model``'s instances, restart-major.

    Instance ``r * n + k`` (``n = model.n_instances``) is restart ``r`` of instance ``k``:
    same density and importance. Restart 0 copies ``model``'s weights, so the
    best of the restarts is never worse than ``model`` alone; the others get a
    fresh random init (seeded by ``seed``).
    """
    restarts = check_positive_int("restarts", restarts)
    many = ToyModel(
        model.n_features,
        model.n_hidden,
        n_instances=model.n_instances * restarts,
        feature_probability=model.feature_probability.detach().cpu().repeat(restarts, 1),
        importance=model.importance.detach().cpu().repeat(restarts, 1),
        activation=model.activation,
        seed=seed,
    ).to(model.device)
    with torch.no_grad():
        many.W[: model.n_instances] = model.W
        many.b_final[: model.n_instances] = model.b_final
    return many


@torch.no_grad()
def expected_loss(model: ToyModel, n_samples: int = 2**16, seed: int = 0) -> torch.Tensor:
    """Each instance's loss on one large fresh batch, a low-noise estimate of its expected loss: ``(n_instances,)``."""
    gen = torch.Generator(device=model.device).manual_seed(seed)
    x = model.generate_batch(n_samples, generator=gen)
    return model.per_instance_loss(x, model(x)).cpu()


@torch.no_grad()
def best_of_restarts(
    model: ToyModel, restarts: int, history: History | None = None, seed: int = 0
) -> tuple[ToyModel, History | None, torch.Tensor]:
    """Keep, for each instance, the restart with the lowest expected loss.

    ``model`` is laid out as :func:`repeat_instances` makes it (``restarts * n``
    instances, restart-major). Returns a model with ``n`` instances (weights
    copied), the ``history`` cut to the chosen instances, and the chosen
    restart of each instance ``(n,)``. Small models (``m = 2``) often stop in
    a worse local optimum, hence the restarts (as in the paper).
    """
    restarts = check_positive_int("restarts", restarts)
    if model.n_instances % restarts:
        raise ValueError(f"model.n_instances={model.n_instances} is not a multiple of restarts={restarts}")
    n = model.n_instances // restarts
    losses = expected_loss(model, seed=seed).reshape(restarts, n)
    chosen = losses.argmin(dim=0)
    idx = (chosen * n + torch.arange(n)).to(model.device)
    best = ToyModel(
        model.n_features,
        model.n_hidden,
        n_instances=n,
        feature_probability=model.feature_probability[idx].cpu(),
        importance=model.importance[idx].cpu(),
        activation=model.activation,
    ).to(model.device)
    best.W.copy_(model.W[idx])
    best.b_final.copy_(model.b_final[idx])
    if history is not None:
        history = replace(history, losses=history.losses[:, idx.cpu()], n_instances=n)
    return best, history, chosen
