"""Figures of neurons: the paper's stacked-weight plot and the neuron counts of a sweep.

Like :mod:`supercourse.plots`, every function takes tensors on any device,
validates shapes with messages that name the argument and returns a new
pyplot-free :class:`~matplotlib.figure.Figure`.

* :func:`stacked_neuron_weights` one bar per neuron, stacked from its feature
  weights (positive weights above the axis, negative below), coloured by feature;
  one panel per instance. A monosemantic neuron is a bar of one colour.
* :func:`neuron_counts_by_density` monosemantic and polysemantic neurons against
  ``1 / (1 - S)``, and which features keep a monosemantic neuron at each density.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch

from ._validate import check_tensor
from .neurons import DEAD_NORM, MONOSEMANTIC_SHARE, excitatory, monosemanticity
from .plots import _clean, _figure

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["stacked_neuron_weights", "neuron_counts_by_density", "FEATURE_CMAP"]

FEATURE_CMAP = "viridis"
"""Colours of features by index: feature 0 (the most important) dark, the last yellow."""


def _cpu_W(W: object) -> torch.Tensor:
    W = check_tensor("W", W, shape=(None, None, None), names=("n_instances", "n_hidden", "n_features"))
    return W.detach().cpu().float()


def _titles(titles: Sequence[str] | None, n: int) -> list[str]:
    if titles is None:
        return [f"instance {k}" for k in range(n)]
    titles = list(titles)
    if len(titles) != n or not all(isinstance(t, str) for t in titles):
        raise ValueError(f"titles must be {n} strings (one per instance), got {titles!r}")
    return titles


def _readout(
    W: torch.Tensor, positive_only: bool, readout: tuple[torch.Tensor, torch.Tensor] | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(A, top_feature, monosemanticity)``: the library's readout, or the one given (e.g. a learner's)."""
    if readout is None:
        A = excitatory(W, positive_only)
        return A, A.argmax(dim=2), monosemanticity(W, positive_only)
    if not isinstance(positive_only, bool):
        raise TypeError(f"positive_only must be a bool, got {positive_only!r}")
    if not (isinstance(readout, (tuple, list)) and len(readout) == 2):
        raise TypeError(f"readout must be a pair (top_feature, monosemanticity), got {type(readout).__name__}")
    top, mono = (torch.as_tensor(t).detach().cpu() for t in readout)
    if top.shape != W.shape[:2] or mono.shape != W.shape[:2]:
        raise ValueError(
            f"readout must hold two tensors of shape (n_instances, n_hidden) = {tuple(W.shape[:2])}, "
            f"got {tuple(top.shape)} and {tuple(mono.shape)}"
        )
    A = W.clamp_min(0) if positive_only else W.abs()
    return A, top.long(), mono.float()


def stacked_neuron_weights(
    W: torch.Tensor,
    titles: Sequence[str] | None = None,
    positive_only: bool = True,
    sort_neurons: bool = True,
    ncols: int | None = None,
    readout: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> "Figure":
    """The paper's neuron plot: each neuron a bar of its feature weights, one panel per instance.

    Args:
        W: ``(n_instances, n_hidden, n_features)``; row ``j`` is neuron ``j``'s input
            weights (for the absolute-value model pass the balanced ``W1``).
        titles: one per instance, e.g. :func:`supercourse.plots.density_titles`.
        positive_only: the readout of :func:`supercourse.neurons.excitatory` used
            for sorting and for the monosemanticity printed under each bar.
        sort_neurons: order the neurons of a panel by their top feature, then by
            how monosemantic they are, so that panels read alike.
        ncols: panels per row (default: up to 5).
        readout: ``(top_feature, monosemanticity)``, each ``(n_instances, n_hidden)``, to
            use instead of the library's (the lesson passes the learner's ``neuron_readout``).

    Returns:
        a ``Figure``: positive weights stack above zero, negative below, each
        feature its own colour (feature 0 dark, the last yellow); the number under
        a bar is the neuron's monosemanticity.
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    W = _cpu_W(W)
    k, m, n = W.shape
    names = _titles(titles, k)
    ncols = min(k, 5) if ncols is None else ncols
    if isinstance(ncols, bool) or not isinstance(ncols, int) or ncols <= 0:
        raise ValueError(f"ncols must be a positive int, got {ncols!r}")
    nrows = -(-k // ncols)
    fig = _figure(nrows, ncols, width=max(2.2, 0.32 * m + 0.8), height=2.6, extra_width=1.2)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    cmap, norm = colormaps[FEATURE_CMAP], Normalize(0, max(n - 1, 1))
    A, top, mono = _readout(W, positive_only, readout)
    up = W.clamp_min(0).sum(dim=2).amax(dim=1)  # (k,) tallest positive stack of each panel
    down = (-W).clamp_min(0).sum(dim=2).amax(dim=1)
    for idx, ax in enumerate(axes.flat):
        if idx >= k:
            ax.set_visible(False)
            continue
        order = list(range(m))
        if sort_neurons:
            order.sort(key=lambda j: (int(top[idx, j]) if A[idx, j].norm() >= DEAD_NORM else n, -float(mono[idx, j])))
        for x, j in enumerate(order):
            w = W[idx, j]
            pos = neg = 0.0
            for i in torch.argsort(-w.abs()).tolist():
                v = float(w[i])
                if abs(v) < 1e-3:
                    continue
                bottom = pos if v > 0 else neg
                ax.bar(x, v, bottom=bottom, width=0.8, color=cmap(norm(i)), edgecolor="white", linewidth=0.3)
                if v > 0:
                    pos += v
                else:
                    neg += v
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_xticks(range(m))
        ax.set_xticklabels([f"{float(mono[idx, j]):.1f}" for j in order], fontsize=6, rotation=90 if m > 12 else 0)
        ax.set_ylim(-max(float(down[idx]), 0.25) * 1.05, max(float(up[idx]), 0.25) * 1.05)
        ax.set_title(names[idx], fontsize=9)
        _clean(ax)
        if idx % ncols == 0:
            ax.set_ylabel("weight")
    fig.supxlabel("neurons (monosemanticity under each bar)", fontsize=8)
    bar = fig.colorbar(ScalarMappable(norm, cmap), ax=axes, shrink=0.8)
    bar.set_label("feature (0 = most important)")
    return fig


def neuron_counts_by_density(
    W: torch.Tensor,
    densities: Sequence[float] | torch.Tensor,
    positive_only: bool = True,
    mono_share: float = MONOSEMANTIC_SHARE,
    readout: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> "Figure":
    """Monosemantic and polysemantic neurons against sparsity, and which features keep their own neuron.

    Args:
        W: ``(n_instances, n_hidden, n_features)``, one instance per density.
        densities: ``(n_instances,)`` each instance's ``1 - S``.
        positive_only, mono_share: as in :func:`supercourse.neurons.count_neurons`.
        readout: ``(top_feature, monosemanticity)`` to use instead of the library's (as in
            :func:`stacked_neuron_weights`).

    Returns:
        a two-panel ``Figure``: left, neuron counts against ``1 / (1 - S)`` (log
        axis); right, a dot at (density, feature) for every feature that has a
        monosemantic neuron.
    """
    W = _cpu_W(W)
    k, m, n = W.shape
    d = torch.as_tensor(densities, dtype=torch.float64).reshape(-1)
    if d.numel() != k or not bool(((d > 0) & (d <= 1)).all()):
        raise ValueError(f"densities must be {k} values in (0, 1] (one per instance), got {d.tolist()}")
    A, top, share = _readout(W, positive_only, readout)
    alive = A.norm(dim=2) >= DEAD_NORM
    mono = alive & (share >= mono_share)
    n_mono, n_poly, n_dead = mono.sum(dim=1), (alive & ~mono).sum(dim=1), (~alive).sum(dim=1)
    fig = _figure(1, 2, width=3.6, height=3.0, extra_width=0.2)
    left, right = fig.subplots(1, 2)
    x = (1 / d).tolist()
    left.plot(x, n_mono.tolist(), "o-", color="#1b7837", label="monosemantic")
    left.plot(x, n_poly.tolist(), "s-", color="#b2182b", label="polysemantic")
    left.plot(x, n_dead.tolist(), "^:", color="grey", label="dead")
    left.set_xscale("log")
    left.set_xlabel("1 / (1 - S)")
    left.set_ylabel(f"neurons (of {m})")
    left.legend(fontsize=8, frameon=False)
    _clean(left)
    for kk in range(k):
        feats = sorted({int(top[kk, j]) for j in range(m) if bool(mono[kk, j])})
        right.scatter([x[kk]] * len(feats), feats, s=10, color="#1b7837")
    right.set_xscale("log")
    right.set_xlim(min(x) / 1.5, max(x) * 1.5)  # fixed even when no feature has a neuron of its own
    right.set_ylim(n - 0.5, -0.5)
    right.set_xlabel("1 / (1 - S)")
    right.set_ylabel("feature with a monosemantic neuron\n(0 = most important)")
    _clean(right)
    return fig
