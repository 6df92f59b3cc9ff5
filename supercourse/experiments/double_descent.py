"""Memorization and double descent (Henighan et al. 2023): the toy model on T training points, T = 3 ... 10,000.

**The setup** (:mod:`supercourse.memorization`). Each point has ``n`` features, each zero
with probability ``S`` and otherwise uniform on [0, 1), then rescaled to norm 1. The
ReLU-output toy model ``x' = ReLU(W^T W x + b)`` with ``m = 2`` trains on a fixed set of
``T`` points: full-batch AdamW (lr 1e-3, weight decay 1e-2), linear warm-up over the first
5% of the steps, cosine decay to 0; the loss ``(1/T) sum_t ||x'_t - x_t||^2``, so the zero
model scores 1. Every size ``T`` in the recipe's grid trains several seeds (each its own
data and initialisation) as instances, and the seed with the lowest training loss is kept;
the test loss is measured on 10,000 fresh points.

**Scales** (:data:`RECIPES`). ``"cpu"``, the default: ``n = 1,000``, ``S = 0.99`` (about 10
active features per point), 5,000 steps, ``T = 3`` to ``10,000``, 3 seeds per size up to ``T = 333`` and fewer
above (at most :data:`MAX_SEED_POINTS` points of seeds per size: the large sizes no longer
depend on the seed, and they are the expensive ones). ``"paper"``: ``n = 10,000``,
``S = 0.999``, 50,000 steps (the paper's 2,500 warm-up steps), 4 seeds, ``T`` up to 100,000:
GPU hours.

**Readouts** (:meth:`~supercourse.memorization.SweepResult.rows`): each size's kept
training and test loss, the median dimensionality of its training points
``D_X = ||h||^2 / sum_s (h_hat . h_s)^2`` (``h = W x``) against ``m / T``, their sum, and
the mean of the few largest ``D_X`` and of the few largest feature dimensionalities
``D_i``: memorizing, the points get the dimensions (``~ m / T`` each) and the features
almost none; generalizing, the other way round. :func:`headline` collects the numbers
the lesson quotes, ``tests/test_experiment_double_descent.py`` checks them.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch

from .. import memorization as mem
from .. import memorization_plots as mplots
from ..model import ToyModel
from ._common import SummaryRow, summarize
from ._run import Run

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console
    from rich.table import Table

    from ._common import ExperimentResult
    from ..training import History

NAME = "double-descent"
DESCRIPTION = "finite training sets: T-gons while memorizing, features when generalizing, a test-loss bump between"


@dataclass(frozen=True)
class Recipe:
    """One scale of the sweep: the data, the sizes ``T``, the seeds and the training length."""

    n_features: int
    density: float
    n_hidden: int
    sizes: tuple[int, ...]
    n_seeds: int
    max_seed_points: int | None
    steps: int
    n_test: int


SIZES_CPU: tuple[int, ...] = (3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100, 200, 300, 500, 1000, 2000, 5000, 10_000)
SIZES_PAPER: tuple[int, ...] = (3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1000, 2000,
                                5000, 7000, 10_000, 20_000, 50_000, 100_000)
MAX_SEED_POINTS = 1000
"""CPU scale: a size ``T`` trains ``min(3, 1000 // T)`` seeds (at least 1)."""

RECIPES: dict[str, Recipe] = {
    "cpu": Recipe(n_features=1000, density=0.01, n_hidden=2, sizes=SIZES_CPU, n_seeds=3,
                  max_seed_points=MAX_SEED_POINTS, steps=5_000, n_test=10_000),
    "paper": Recipe(n_features=10_000, density=0.001, n_hidden=2, sizes=SIZES_PAPER, n_seeds=4,
                    max_seed_points=100_000, steps=50_000, n_test=10_000),
}
"""``"cpu"``: about two minutes on two CPU cores (18 sizes up to ``T = 10,000``, 5,000 steps); ``"paper"``: the paper's
sizes and length, for a GPU."""

N_FEATURES = RECIPES["cpu"].n_features
DENSITY = RECIPES["cpu"].density
N_HIDDEN = RECIPES["cpu"].n_hidden
SIZES = RECIPES["cpu"].sizes
N_SEEDS = RECIPES["cpu"].n_seeds
DEFAULT_STEPS = RECIPES["cpu"].steps
DEFAULT_SEED = 0
GEOMETRY_SIZES: tuple[int, ...] = (3, 5, 8, 100, 1000, 2000, 10_000)
"""The sizes whose hidden vectors and feature columns the geometry figure shows."""
TGON_SIZES: tuple[int, ...] = (3, 5, 8)
"""Sizes whose median ``D_X`` the headline compares with ``m / T``."""
MEMORIZING_SIZES: tuple[int, ...] = (8, 10, 15, 20, 30)
"""Sizes whose test losses the headline reports as a range (the independent study: 1.00-1.01)."""

INDEPENDENT = {
    "median_D_X": {3: 0.713, 5: 0.398, 8: 0.248},
    "test_loss": {3: 1.146, 5: 1.018, 8: 1.000, 100: 1.174},
    "test_loss_8_30": (1.00, 1.01),
}
"""The numbers measured independently (numpy, n = 1,000, S = 0.99, m = 2, 15,000 steps, 3 seeds,
lowest training loss kept, 2,000 fresh test points)."""


DENSITIES: tuple[float, ...] = (DENSITY,) * len(SIZES)
"""The density of every instance of :func:`make_model` (one per training-set size; all ``1 - S``)."""


def recipe(scale: str = "cpu") -> Recipe:
    """The recipe of ``scale`` (``"cpu"`` or ``"paper"``)."""
    if scale not in RECIPES:
        raise ValueError(f"scale must be one of {sorted(RECIPES)}, got {scale!r}")
    return RECIPES[scale]


def run_sweep(
    seed: int = DEFAULT_SEED,
    steps: int | None = None,
    device: str | torch.device = "cpu",
    scale: str = "cpu",
    sizes: Sequence[int] | None = None,
    progress: bool = True,
    log=None,
    workers: int | None = None,
) -> mem.SweepResult:
    """Train the recipe of ``scale`` (its sizes, or ``sizes``; its steps, or ``steps``) with :func:`supercourse.memorization.sweep`
    (``workers`` CPU threads; default torch's thread count)."""
    r = recipe(scale)
    return mem.sweep(
        r.sizes if sizes is None else sizes, r.n_features, r.density, n_hidden=r.n_hidden, n_seeds=r.n_seeds,
        steps=r.steps if steps is None else steps, seed=seed, max_seed_points=r.max_seed_points, n_test=r.n_test,
        device=device, progress=progress, log=log, workers=workers,
    )


def make_model(activation: str = "relu", seed: int | None = DEFAULT_SEED) -> ToyModel:
    """An untrained toy model with one instance per size of :data:`SIZES` (``W: (18, 2, 1000)``), density ``1 - S``.

    The sweep trains its own instances (:func:`run_sweep`); this is the shape its kept models take.
    """
    if activation != "relu":
        raise ValueError(f"activation must be 'relu' (the paper's model), got {activation!r}")
    return ToyModel(N_FEATURES, N_HIDDEN, n_instances=len(SIZES), feature_probability=DENSITY, seed=seed)


def kept_model(result: mem.SweepResult) -> ToyModel:
    """The kept model of every size as one :class:`~supercourse.ToyModel` (one instance per size), on the CPU."""
    n, p = result.config["n_features"], result.config["feature_probability"]
    model = ToyModel(n, result.W.shape[1], n_instances=len(result.sizes), feature_probability=p)
    with torch.no_grad():
        model.W.copy_(result.W)
        model.b_final.copy_(result.b)
    return model


def summary(model: ToyModel, history: "History | None" = None) -> list[SummaryRow]:
    """One row per instance (size) of a kept model (:func:`supercourse.experiments.summarize`)."""
    return summarize(model, history)


def crossover(rows: Sequence[dict]) -> int | None:
    """The first size ``T`` from which the features' top dimensionality exceeds the training points' for good."""
    above = [r["feature_dim_top"] > r["data_dim_top"] for r in rows]
    for i in range(len(rows)):
        if all(above[i:]):
            return int(rows[i]["T"])
    return None


FEATURE_LEVEL = 0.1
"""A feature dimensionality that counts as "taking a share of the dimensions" (:func:`features_take_over`)."""


def features_take_over(rows: Sequence[dict], level: float = FEATURE_LEVEL) -> int | None:
    """The first size ``T`` from which the features' top dimensionality stays at or above ``level``."""
    for i in range(len(rows)):
        if all(r["feature_dim_top"] >= level for r in rows[i:]):
            return int(rows[i]["T"])
    return None


def headline(result: mem.SweepResult) -> dict[str, Any]:
    """The numbers the lesson quotes, as plain data.

    ``median_D_X`` and ``m_over_T`` at :data:`TGON_SIZES`; ``sum_D_X`` per size; ``train_loss`` and
    ``test_loss`` per size; ``test_loss_8_30`` (min, max over :data:`MEMORIZING_SIZES`); the two ends
    of the curve (``first``, ``last``: ``T``, test loss, top data and feature dimensionality);
    ``peak`` (the size with the highest test loss); ``crossover`` (:func:`crossover`);
    ``features_take_over`` (:func:`features_take_over`).
    """
    rows = result.rows()
    by_T = {r["T"]: r for r in rows}
    m = int(result.W.shape[1])
    memorizing = [by_T[T]["test_loss"] for T in MEMORIZING_SIZES if T in by_T]
    peak = max(rows, key=lambda r: r["test_loss"])

    def end(r: dict) -> dict:
        return {k: r[k] for k in ("T", "test_loss", "train_loss", "data_dim_top", "feature_dim_top", "data_dim_median",
                                  "represented")}

    return {
        "median_D_X": {T: by_T[T]["data_dim_median"] for T in TGON_SIZES if T in by_T},
        "m_over_T": {T: m / T for T in TGON_SIZES if T in by_T},
        "sum_D_X": {r["T"]: r["data_dim_sum"] for r in rows},
        "train_loss": {r["T"]: r["train_loss"] for r in rows},
        "test_loss": {r["T"]: r["test_loss"] for r in rows},
        "test_loss_8_30": [min(memorizing), max(memorizing)] if memorizing else None,
        "first": end(rows[0]),
        "last": end(rows[-1]),
        "peak": {"T": peak["T"], "test_loss": peak["test_loss"]},
        "crossover": crossover(rows),
        "features_take_over": features_take_over(rows),
    }


def sweep_table(result: mem.SweepResult, title: str = "") -> "Table":
    """A rich table: one line per size, each column explained under it."""
    from rich.table import Table

    legend = {
        "T": "training points",
        "seeds": "seeds trained (the lowest training loss is kept)",
        "train": "the kept model's training loss",
        "test": "its loss on 10,000 fresh points (the zero model scores 1)",
        "med D_X": "median dimensionality of the training points (m/T for a regular T-gon)",
        "m/T": "m / T",
        "top D_X": "mean of the 5 largest training-point dimensionalities",
        "top D_i": "mean of the 5 largest feature dimensionalities",
        "||W||": "Frobenius norm of W",
    }
    table = Table(title=title, title_justify="left", header_style="bold", caption_justify="left",
                  caption="\n".join(f"{k}: {v}" for k, v in legend.items()))
    for col in legend:
        table.add_column(col, justify="right")
    m = int(result.W.shape[1])
    for r in result.rows():
        table.add_row(f"{r['T']:,}", str(r["seeds"]), f"{r['train_loss']:.3f}", f"{r['test_loss']:.3f}",
                      f"{r['data_dim_median']:.3f}", f"{min(1.0, m / r['T']):.3f}", f"{r['data_dim_top']:.3f}",
                      f"{r['feature_dim_top']:.3f}", f"{r['W_norm']:.2f}")
    return table


def write_figures(result: mem.SweepResult, run: Run) -> None:
    """``geometry.png`` (points and features at :data:`GEOMETRY_SIZES`), ``test_loss.png``, ``dimensionality.png``."""
    rows = result.rows()
    shown = [T for T in GEOMETRY_SIZES if T in result.sizes.tolist()]
    idx = [result.index(T) for T in shown]
    run.figure("geometry", mplots.geometry_panels(shown, [result.hidden(T) for T in shown], result.W[idx],
                                                  title="memorizing: the points get the dimensions; generalizing: the features do"))
    run.figure("test_loss", mplots.loss_curve(rows))
    run.figure("dimensionality", mplots.dimensionality_curve(result.sizes.tolist(), result.data_dimensionality(),
                                                             result.feature_dimensionality(), rows,
                                                             n_hidden=int(result.W.shape[1])))


def params(result: mem.SweepResult) -> dict[str, torch.Tensor]:
    """Tensors for ``params.safetensors``: the kept models (``W (S, m, n)``, ``b_final (S, n)``), the sizes,
    every seed's losses, and each kept training set as ``data.T<T>.idx`` / ``data.T<T>.val`` ``(T, 1, k_max)``."""
    tensors = {"W": result.W, "b_final": result.b, "sizes": result.sizes, "kept_seed": result.kept,
               "train_loss": result.train_loss, "test_loss": result.test_loss}
    for T, d in zip(result.sizes.tolist(), result.data):
        tensors[f"data.T{T}.idx"] = d.idx
        tensors[f"data.T{T}.val"] = d.val
    return tensors


def run(
    out_dir: str | Path = "out/double-descent",
    steps: int = DEFAULT_STEPS,
    device: str | torch.device | None = None,
    seed: int = DEFAULT_SEED,
    console: "Console | None" = None,
    scale: str = "cpu",
    sizes: Sequence[int] | None = None,
) -> "ExperimentResult":
    """Train the sweep, print its table and the headline, write the figures, ``summary.txt``,
    ``summary.json`` and ``params.safetensors``.

    ``scale="paper"`` runs the paper's sizes (give ``steps=50_000``); ``sizes`` overrides the grid.
    """
    r = recipe(scale)
    run = Run(NAME, out_dir, steps, device, seed, console)
    run.print(f"{NAME}: n={r.n_features}, 1-S={r.density:g}, m={r.n_hidden}, {len(sizes or r.sizes)} sizes, "
              f"up to {r.n_seeds} seeds each, {run.steps} steps")
    start = time.perf_counter()
    result = run_sweep(run.seed, run.steps, run.device, scale, sizes, progress=run.progress,
                       log=lambda line: run.print(f"  {line}"))
    run.trained(f"{sum(result.config['seeds'])} models on {len(result.sizes)} sizes x {run.steps} steps",
                time.perf_counter() - start, part="sweep")
    table = sweep_table(result, f"{NAME}: kept model per size T ({run.steps} steps, seed {run.seed})")
    run.table(table)
    numbers = headline(result)
    run.print(f"crossover (features' top dimensionality above the points' from then on): T = {numbers['crossover']}; "
              f"features' top dimensionality >= {FEATURE_LEVEL} from T = {numbers['features_take_over']}; "
              f"highest test loss {numbers['peak']['test_loss']:.3f} at T = {numbers['peak']['T']}")
    write_figures(result, run)
    from rich.console import Console as _Console

    with open(run.out / "summary.txt", "w", encoding="utf-8") as fh:  # the CLI rewrites it with everything it printed
        _Console(file=fh, width=120).print(table)
    model = kept_model(result)
    return run.finish(
        models={"kept": model}, tensors=params(result), summaries={"kept": summary(model)},
        config={"scale": scale, **asdict(r), "sizes": result.sizes.tolist(), "seeds": result.config["seeds"],
                "lr": result.config["lr"], "weight_decay": result.config["weight_decay"],
                "warmup_steps": result.config["warmup_steps"], "workers": result.config["workers"]},
        table=result.rows(), headline=numbers, independent=INDEPENDENT, sweep_seconds=result.seconds,
    )
