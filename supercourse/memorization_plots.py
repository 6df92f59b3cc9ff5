"""Figures of memorization and double descent (lesson 10): geometry, test loss and dimensionality against ``T``.

Every function takes plain tensors (or :meth:`supercourse.memorization.SweepResult.rows`) and returns a
``matplotlib.figure.Figure`` (no pyplot state: a notebook shows it when a cell returns it).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Mapping, Sequence

import torch

from ._validate import check_tensor

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["geometry_panels", "loss_curve", "dimensionality_curve", "ZERO_MODEL_LOSS"]

ZERO_MODEL_LOSS = 1.0
"""The loss of the model that outputs 0: every point has norm 1."""

DATA_COLOR = "#d62728"
FEATURE_COLOR = "#1f77b4"


def _arrows(ax: "Axes", vectors: torch.Tensor, color, lw: float, alpha=1.0, dots: bool = False) -> None:
    """Lines from the origin to each row of ``vectors (k, 2)``; ``alpha`` a number or one per row."""
    from matplotlib.collections import LineCollection
    from matplotlib.colors import to_rgba

    if not len(vectors):
        return
    segments = torch.stack([torch.zeros_like(vectors), vectors], dim=1).numpy()  # (k, 2, 2)
    alphas = alpha if isinstance(alpha, (list, tuple)) else [alpha] * len(vectors)
    colors = [to_rgba(color, max(0.0, min(1.0, float(a)))) for a in alphas]
    ax.add_collection(LineCollection(segments, colors=colors, linewidths=lw, capstyle="round"))
    if dots:
        ax.scatter(vectors[:, 0].numpy(), vectors[:, 1].numpy(), color=color, s=14, zorder=3)


def _square(ax: "Axes", vectors: torch.Tensor) -> None:
    r = float(vectors.norm(dim=1).max()) if len(vectors) else 1.0
    r = 1.15 * r if r > 0 else 1.0
    ax.set_xlim(-r, r)
    ax.set_ylim(-r, r)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.axhline(0, color="0.9", lw=0.6, zorder=0)
    ax.axvline(0, color="0.9", lw=0.6, zorder=0)


def geometry_panels(
    sizes: Sequence[int | str],
    hidden: Sequence[torch.Tensor],
    W: torch.Tensor,
    title: str = "",
    max_points: int = 400,
) -> "Figure":
    """Per size ``T``: the training points' hidden vectors (top) and the feature columns ``W_i`` (bottom).

    Args:
        sizes: the ``S`` sizes (or labels), one column of panels each, titled ``T = <size>``.
        hidden: per size, ``(T, 2)`` the hidden vectors ``h_t = W x_t`` of the training points.
        W: ``(S, 2, n)`` the models' weights; column ``i`` of ``W[s]`` is feature ``i``.
        max_points: at most this many hidden vectors per panel (the longest).

    Memorizing (small ``T``) the hidden vectors are the vertices of a regular ``T``-gon and the
    columns point every which way; generalizing (large ``T``), a few long columns (features)
    stand out and the hidden vectors lie along them.
    """
    from matplotlib.figure import Figure

    W = check_tensor("W", W, shape=(len(sizes), 2, None), names=("n_sizes", "n_hidden=2", "n_features")).detach().cpu().float()
    if len(hidden) != len(sizes):
        raise ValueError(f"hidden must hold one (T, 2) tensor per size ({len(sizes)}), got {len(hidden)}")
    S = len(sizes)
    fig = Figure(figsize=(1.9 * S + 0.6, 4.3), layout="constrained")
    axes = fig.subplots(2, S, squeeze=False)
    for s, (T, h) in enumerate(zip(sizes, hidden)):
        h = check_tensor("hidden", h, shape=(None, 2), names=("T", "2")).detach().cpu().float()
        if len(h) > max_points:
            h = h[h.norm(dim=1).argsort(descending=True)[:max_points]]
        top, bottom = axes[0, s], axes[1, s]
        _arrows(top, h, DATA_COLOR, lw=1.2 if len(h) <= 30 else 0.5, alpha=1.0 if len(h) <= 30 else 0.4, dots=len(h) <= 30)
        _square(top, h)
        top.set_title(f"T = {T:,}" if isinstance(T, int) else f"T = {T}", fontsize=10)
        cols = W[s].T  # (n, 2)
        norms = cols.norm(dim=1)
        order = norms.argsort()
        alpha = (0.15 + 0.85 * norms[order] / norms.max().clamp_min(1e-12)).tolist()
        _arrows(bottom, cols[order], FEATURE_COLOR, lw=0.7, alpha=alpha)
        _square(bottom, cols)
    axes[0, 0].set_ylabel("training points\n$h_t = W x_t$", fontsize=9)
    axes[1, 0].set_ylabel("features\n$W_i$ (columns)", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def _rows_arrays(rows: Sequence[Mapping], *keys: str) -> list[list[float]]:
    return [[float(r[k]) for r in rows] for k in keys]


def loss_curve(
    rows: Sequence[Mapping],
    mine: Mapping[int, float] | None = None,
    title: str = "test loss against the size of the training set",
    zoom: tuple[float, float] = (0.97, 1.15),
) -> "Figure":
    """Test and training loss of the kept model of each size (log ``T``), every seed's test loss, the zero model's 1.

    Two panels: the whole range (log loss axis: the bump can be several times the zero model's loss), and
    a zoom on ``zoom`` around 1, where memorizing and generalizing differ.
    ``rows``: :meth:`~supercourse.memorization.SweepResult.rows` (``T``, ``test_loss``, ``train_loss``,
    ``test_loss_seeds``). ``mine``: ``{T: test loss}`` of your own sweep, drawn on top.
    """
    from matplotlib.figure import Figure

    T, test, train = _rows_arrays(rows, "T", "test_loss", "train_loss")
    fig = Figure(figsize=(11.0, 3.9), layout="constrained")
    axes = fig.subplots(1, 2)
    for i, ax in enumerate(axes):
        for t, r in zip(T, rows):
            seeds = [v for v in r.get("test_loss_seeds", []) if v == v]
            ax.scatter([t] * len(seeds), seeds, color="0.7", s=10, zorder=1, label="every seed's test loss" if t == T[0] else None)
        ax.plot(T, test, "o-", color="k", lw=1.8, ms=4, label="test loss (kept seed)", zorder=3)
        if i == 0:
            ax.plot(T, [max(v, 1e-3) for v in train], "s--", color="0.5", lw=1.0, ms=3, label="training loss", zorder=2)
        ax.axhline(ZERO_MODEL_LOSS, color=DATA_COLOR, ls=":", lw=1.4, label="zero model (outputs 0)")
        if mine:
            ks = sorted(mine)
            ax.plot(ks, [mine[k] for k in ks], "D", color=FEATURE_COLOR, ms=6, mfc="none", mew=1.5,
                    label="your sweep", zorder=4)
        ax.set_xscale("log")
        ax.set_xlabel("training points T")
        ax.grid(True, which="major", color="0.92")
    whole, close_up = axes
    whole.set_yscale("log")
    whole.set_ylim(1e-3, max(max(test), ZERO_MODEL_LOSS) * 1.5)
    whole.set_ylabel("loss  (1/T) Σ ||x' − x||²")
    whole.set_title("the whole range (training loss 0 drawn at 1e-3)", fontsize=10)
    whole.legend(frameon=False, fontsize=8, loc="lower right")
    close_up.set_ylim(*zoom)
    close_up.set_title("close to the zero model", fontsize=10)
    fig.suptitle(title, fontsize=11)
    return fig


def dimensionality_curve(
    sizes: Sequence[int],
    data_dims: Sequence[torch.Tensor],
    feature_dims: torch.Tensor,
    rows: Sequence[Mapping] | None = None,
    n_hidden: int = 2,
    max_dots: int = 300,
    title: str = "who gets the dimensions: training points or features",
) -> "Figure":
    """Every training point's ``D_X`` and every feature's ``D_i`` at each size (log ``T``), with ``m / T``.

    Args:
        sizes: the ``S`` sizes.
        data_dims: per size, ``(T,)`` the training points' dimensionalities.
        feature_dims: ``(S, n)`` the features' dimensionalities.
        rows: :meth:`~supercourse.memorization.SweepResult.rows`; draws ``data_dim_top`` and
            ``feature_dim_top`` (the mean of the largest few) as lines.
        max_dots: at most this many dots per size and kind (the largest values; the rest are near 0).
    """
    from matplotlib.figure import Figure

    feature_dims = check_tensor("feature_dims", feature_dims, shape=(len(sizes), None),
                                names=("n_sizes", "n_features")).detach().cpu().float()
    fig = Figure(figsize=(7.2, 3.9), layout="constrained")
    ax = fig.subplots()
    for s, T in enumerate(sizes):
        d = data_dims[s].detach().cpu().float().flatten()
        f = feature_dims[s]
        d = d.topk(min(max_dots, d.numel())).values
        f = f.topk(min(max_dots, f.numel())).values
        jitter = math.exp(0.06)
        ax.scatter([T / jitter] * len(d), d.numpy(), color=DATA_COLOR, s=7, alpha=0.35, lw=0)
        ax.scatter([T * jitter] * len(f), f.numpy(), color=FEATURE_COLOR, s=7, alpha=0.35, lw=0)
    grid = torch.logspace(math.log10(min(sizes)), math.log10(max(sizes)), 100)
    ax.plot(grid.numpy(), (n_hidden / grid).clamp(max=1).numpy(), color="0.6", ls=":", lw=1.2, label="m / T (a regular T-gon)")
    if rows is not None:
        T, dtop, ftop = _rows_arrays(rows, "T", "data_dim_top", "feature_dim_top")
        ax.plot(T, dtop, "o-", color=DATA_COLOR, lw=1.8, ms=4, label="training points (mean of the top few)")
        ax.plot(T, ftop, "o-", color=FEATURE_COLOR, lw=1.8, ms=4, label="features (mean of the top few)")
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("training points T")
    ax.set_ylabel("dimensionality D")
    ax.grid(True, which="major", color="0.92")
    ax.legend(frameon=False, fontsize=8, loc="upper right")
    ax.set_title(title, fontsize=11)
    return fig
