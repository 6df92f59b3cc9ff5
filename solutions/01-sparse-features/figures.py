"""Lesson 1's expected figures, drawn with the reference library.

* ``sparse_batch.png`` a batch of sparse features at three densities.
* ``intro_relu.png`` the intro figure: n=5 features in m=2 dimensions, one
  panel per density from 1 to 1/20, the best of several restarts per density.
* ``intro_linear.png`` the same densities with the linear model.

The models follow the paper's recipe (10,000 AdamW steps at lr 1e-3, batch
1024) with :class:`supercourse.ToyModel` and :func:`supercourse.train`, on one CPU
thread: under half a minute.
"""

from __future__ import annotations

from pathlib import Path

import torch

import supercourse
from supercourse import plots
from supercourse.data import sparse_uniform
from supercourse.experiments import intro
from supercourse.experiments._common import save_figure

__all__ = ["make", "best_of_restarts", "RESTARTS", "STEPS", "LR", "SEED"]

RESTARTS = 4
"""Models trained per density; the figure keeps the one with the lowest loss (2-D runs can get stuck)."""
STEPS = intro.DEFAULT_STEPS
LR = 1e-3
SEED = 0
EVAL_BATCH = 100_000
BATCH_DENSITIES = (1.0, 0.3, 0.05)


def best_of_restarts(model: supercourse.ToyModel, n_restarts: int, seed: int = SEED + 1) -> tuple[torch.Tensor, torch.Tensor]:
    """For each density, the restart with the lowest loss on a fresh batch.

    ``model`` holds ``n_densities * n_restarts`` instances, the restarts of a density
    next to each other. Returns ``W: (n_densities, n_hidden, n_features)`` and the
    losses ``(n_densities, n_restarts)``.
    """
    with torch.no_grad():
        x = model.generate_batch(EVAL_BATCH, generator=torch.Generator(device=model.device).manual_seed(seed))
        losses = model.per_instance_loss(x, model(x)).cpu().view(-1, n_restarts)
    best = losses.argmin(dim=1)
    index = torch.arange(losses.shape[0]) * n_restarts + best
    return model.W.detach().cpu()[index], losses


def _intro(activation: str, restarts: int) -> torch.Tensor:
    p = intro.feature_probability().repeat_interleave(restarts)
    model = supercourse.ToyModel(
        intro.N_FEATURES, intro.N_HIDDEN, n_instances=len(p), feature_probability=p,
        importance=intro.importance(), activation=activation, seed=SEED,
    )
    supercourse.train(model, steps=STEPS, lr=LR, seed=SEED, device="cpu", progress=False)
    W, _ = best_of_restarts(model, restarts)
    return W


def _sparse_batch_figure():
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    p = torch.tensor(BATCH_DENSITIES)[:, None].expand(-1, 20).contiguous()
    x = sparse_uniform(40, p, generator=torch.Generator().manual_seed(SEED))  # (40, 3, 20)
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    axes = fig.subplots(1, len(BATCH_DENSITIES))
    for k, ax in enumerate(axes):
        im = ax.imshow(x[:, k].T.numpy(), cmap="viridis", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        ax.set_title(f"instance {k}: 1-S = {BATCH_DENSITIES[k]:g}", fontsize=10)
        ax.set_xlabel("example")
        ax.set_ylabel("feature")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.colorbar(im, ax=axes, label="x", shrink=0.9)
    return fig


def make(out_dir: Path) -> list[Path]:
    """Write the lesson's expected figures into ``out_dir`` and return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    titles = plots.density_titles(intro.feature_probability())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # models this small train fastest on one thread, and far faster on a busy machine
    try:
        W_relu, W_linear = _intro("relu", RESTARTS), _intro("linear", 1)
    finally:
        torch.set_num_threads(threads)
    figures = {
        "sparse_batch": _sparse_batch_figure(),
        "intro_relu": plots.feature_directions_2d(W_relu, titles=titles, ncols=5),
        "intro_linear": plots.feature_directions_2d(W_linear, titles=titles, ncols=5),
    }
    return [save_figure(fig, out / f"{name}.png") for name, fig in figures.items()]
