"""The geometry of superposition: many features of equal importance, from dense to sparse.

The paper's section "The Geometry of Superposition". Every feature has the
same importance and one density ``1 - S`` per instance, ``20^-t`` for ``t``
evenly spaced in [0, 1] (1 down to 1/20), with ten times more features than
dimensions. Two measurements of each trained instance:

* **Dimensions per feature** ``D* = m / ||W||_F^2``: 1 when dense (the model
  gives ``m`` dimensions to ``m`` features' worth of norm), then it *sticks*
  at 1/2 (antipodal pairs) over a range of sparsity before falling.
* **Feature dimensionality** ``D_i`` of every feature: the values cluster on
  the fractions ``d / k`` of regular polytopes, 1, 3/4 (tetrahedron), 2/3
  (triangle), 1/2 (digon), 2/5 (pentagon), 3/8 (square antiprism), and 0
  for unlearned features; :mod:`supercourse.geometry` names the shapes.

Three sizes (:data:`SIZES`), all trained with the paper's recipe (10,000
AdamW steps at lr 1e-3, batch 1024): ``"cpu"`` (n=60, m=6, 16 densities:
about two minutes on two cores), ``"notebook"`` (the paper's notebook: n=200,
m=20, 20 densities: a quarter of an hour on two cores) and ``"paper"`` (n=400,
m=30, the paper's figure; use a GPU). :func:`run` picks ``"paper"`` on a GPU
and ``"cpu"`` otherwise.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .. import geometry, metrics, plots
from ..model import ToyModel
from ..training import History, train
from ._common import (
    ExperimentResult,
    SummaryRow,
    densities_of,
    save_figure,
    summarize,
)
from ._run import Run

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console
    from rich.table import Table

NAME = "geometry"
DESCRIPTION = "uniform importance, 10x more features than dimensions: D* sticks at 1 and 1/2; D_i sits on polytope fractions"


@dataclass(frozen=True)
class Size:
    """One size of the sweep: ``n_features`` in ``n_hidden`` dimensions, ``n_instances`` densities."""

    n_features: int
    n_hidden: int
    n_instances: int


MAX_SPARSITY_FACTOR = 20.0
"""Densities run from 1 down to ``1 / MAX_SPARSITY_FACTOR``, as in the paper's notebook."""

DEFAULT_STEPS = 10_000
BATCH_SIZE = 1024
LR = 1e-3
"""The paper's recipe (AdamW, weight decay 0.01, constant learning rate), at every size."""
DEFAULT_SEED = 0

SIZES: dict[str, Size] = {
    "cpu": Size(n_features=60, n_hidden=6, n_instances=16),
    "notebook": Size(n_features=200, n_hidden=20, n_instances=20),
    "paper": Size(n_features=400, n_hidden=30, n_instances=20),
}
"""``"cpu"``: two minutes on two CPU cores; ``"notebook"``: the paper notebook's sweep;
``"paper"``: the paper's figure (n=400, m=30). Densities ``20^-linspace(0, 1, n_instances)``."""

N_FEATURES = SIZES["cpu"].n_features
N_HIDDEN = SIZES["cpu"].n_hidden
N_INSTANCES = SIZES["cpu"].n_instances


def feature_probability(n_instances: int = N_INSTANCES) -> torch.Tensor:
    """``20 ** -linspace(0, 1, n_instances)``: each instance's density ``1 - S``, from 1 to 0.05."""
    return MAX_SPARSITY_FACTOR ** -torch.linspace(0, 1, n_instances)


DENSITIES: tuple[float, ...] = tuple(feature_probability().tolist())
"""The ``"cpu"`` size's densities, one per instance."""


def _size(size: str | Size) -> Size:
    if isinstance(size, Size):
        return size
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)} (or a Size), got {size!r}")
    return SIZES[size]


def make_model(activation: str = "relu", seed: int | None = DEFAULT_SEED, size: str | Size = "cpu") -> ToyModel:
    """An untrained :class:`~supercourse.ToyModel` of the given size, uniform importance, one instance per density.

    ``W: (n_instances, n_hidden, n_features)``, ``(16, 6, 60)`` for ``"cpu"``.
    """
    s = _size(size)
    return ToyModel(
        s.n_features,
        s.n_hidden,
        n_instances=s.n_instances,
        feature_probability=feature_probability(s.n_instances),
        importance=1.0,
        activation=activation,
        seed=seed,
    )


def train_sweep(
    size: str | Size = "cpu",
    steps: int = DEFAULT_STEPS,
    device: str | torch.device | None = None,
    seed: int = DEFAULT_SEED,
    progress: bool = False,
) -> tuple[ToyModel, History]:
    """Make the sweep of ``size`` and train it with the paper's recipe; the model ends on the CPU."""
    model = make_model(seed=seed, size=size)
    history = train(model, steps=steps, batch_size=BATCH_SIZE, lr=LR, seed=seed, device=device, progress=progress)
    return model.cpu(), history


def summary(model: ToyModel, history: History | None = None) -> list[SummaryRow]:
    """One row per density: features represented, in superposition, antipodal pairs, min bias, ``D*``."""
    return summarize(model, history)


@dataclass(frozen=True)
class GeometryRow:
    """The geometry of one trained instance.

    Attributes:
        density: ``1 - S``.
        dimensions_per_feature: ``D* = m / ||W||_F^2``.
        represented: features with ``||W_i|| > 0.5``.
        on_lines: the share of represented features within 0.05 of a polytope
            fraction (:func:`supercourse.geometry.fraction_on_lines`).
        total_dimensionality: ``sum_i D_i`` (``m`` for an efficiently packed model).
        shapes: ``{shape name: count}`` of its tegum factors.
    """

    density: float
    dimensions_per_feature: float
    represented: int
    on_lines: float
    total_dimensionality: float
    shapes: dict[str, int]


ON_LINE_TOLERANCE = 0.05
"""A feature dimensionality counts as on a line when within this of it."""


def geometry_rows(W: torch.Tensor, densities: torch.Tensor) -> list[GeometryRow]:
    """One :class:`GeometryRow` per instance of ``W: (n_instances, n_hidden, n_features)``."""
    W = W.detach().cpu()
    D = metrics.feature_dimensionality(W)
    shapes = geometry.shape_counts(geometry.tegum_factors(W))
    return [
        GeometryRow(float(p), float(d), int(r), float(f), float(t), s)
        for p, d, r, f, t, s in zip(
            densities.tolist(),
            metrics.dimensions_per_feature(W).tolist(),
            metrics.n_represented(W).tolist(),
            geometry.fraction_on_lines(W, ON_LINE_TOLERANCE).tolist(),
            D.sum(dim=-1).tolist(),
            shapes,
        )
    ]


def geometry_table(rows: list[GeometryRow], title: str = "") -> "Table":
    """A :class:`rich.table.Table` of ``rows``."""
    from rich.table import Table

    table = Table(
        title=title, title_justify="left", header_style="bold", caption_justify="left",
        caption="1-S: feature density (the chance a feature is non-zero)\n"
        "D*: dimensions per feature m / ||W||_F^2 (1 = a dimension each, 0.5 = two features per dimension)\n"
        "represented: features with ||W_i|| > 0.5\n"
        "on lines: share of the represented features whose dimensionality D_i is within 0.05 of a polytope "
        "fraction (1, 3/4, 2/3, 1/2, 2/5, 1/3, ...)\n"
        "sum D_i: the features' dimensionalities added up (at most m)\n"
        "tegum factors: the shapes the features form, each in its own orthogonal subspace (n x shape)",
    )
    for col in ("1-S", "D*", "represented", "on lines", "sum D_i", "tegum factors"):
        table.add_column(col, justify="left" if col == "tegum factors" else "right")
    for r in rows:
        shapes = " + ".join(f"{n}×{name}" for name, n in r.shapes.items())
        on = "-" if r.on_lines != r.on_lines else f"{100 * r.on_lines:.0f}%"
        table.add_row(
            f"{r.density:.3g}", f"{r.dimensions_per_feature:.3f}", str(r.represented), on,
            f"{r.total_dimensionality:.2f}", shapes,
        )
    return table


def write_figures(model: ToyModel, out_dir: Path) -> dict[str, Path]:
    """``dimensions_per_feature.png`` and ``feature_dimensionality.png`` of a trained sweep, in ``out_dir``."""
    W, p = model.W.detach().cpu(), densities_of(model)
    figures = {
        "dimensions_per_feature": plots.dimensions_per_feature_curve(W, p),
        "feature_dimensionality": plots.feature_dimensionality_scatter(W, p),
    }
    return {name: save_figure(fig, Path(out_dir) / f"{name}.png") for name, fig in figures.items()}


def run(
    out_dir: str | Path = "out/geometry",
    steps: int = DEFAULT_STEPS,
    device: str | torch.device | None = None,
    seed: int = DEFAULT_SEED,
    console: "Console | None" = None,
    size: str | Size | None = None,
) -> ExperimentResult:
    """Train the sweep, print its geometry, write the figures.

    ``size`` defaults to ``"paper"`` on a GPU and ``"cpu"`` otherwise (see
    :data:`SIZES`). Writes ``dimensions_per_feature.png`` and
    ``feature_dimensionality.png`` into ``out_dir`` (created if needed).
    """
    run = Run(NAME, out_dir, steps, device, seed, console)
    if size is None:
        size = "paper" if run.device.type == "cuda" else "cpu"
    s = _size(size)
    name = size if isinstance(size, str) else "custom"
    t0 = time.perf_counter()
    model, history = train_sweep(s, steps=run.steps, device=run.device, seed=run.seed, progress=run.progress)
    run.trained(f"{s.n_instances} instances (n={s.n_features}, m={s.n_hidden}, size {name!r}) x {run.steps} steps",
                time.perf_counter() - t0, part="train")
    rows = geometry_rows(model.W, densities_of(model))
    run.table(geometry_table(rows, f"{NAME}: n={s.n_features}, m={s.n_hidden}, uniform importance"))
    run.figures_written(write_figures(model, run.out))
    return run.finish(
        models={"relu": model}, histories={"relu": history}, summaries={"relu": summary(model, history)},
        config={"size": name, "batch_size": BATCH_SIZE, "lr": LR},
        table=[dataclasses.asdict(row) for row in rows],
    )
