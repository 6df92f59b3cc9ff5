"""Lesson 06's figures: feature directions coloured by set, and collapsed sets against density.

Features come in consecutive sets (:mod:`supercourse.correlation`). In these
figures a set has one hue and its members shades of it (a pair: dark and
light), so "partners orthogonal", "partners antipodal" and "partners side by
side" can be read at a glance, whatever the number of sets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch

from ._validate import check_positive_int
from .plots import feature_directions_2d

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["set_colors", "set_labels", "set_directions", "collapse_curve"]

_KIND_WORDS = {"correlated": "correlated sets (active together)",
               "anticorrelated": "anticorrelated sets (one at a time)"}


def set_colors(n_sets: int, set_size: int) -> list[tuple[float, float, float, float]]:
    """One RGBA colour per feature: set ``k`` in hue ``k`` (tab10), its members from dark to light."""
    from matplotlib import colormaps
    from matplotlib.colors import to_rgba

    n_sets, set_size = check_positive_int("n_sets", n_sets), check_positive_int("set_size", set_size)
    hues = colormaps["tab10"].colors
    out = []
    for k in range(n_sets):
        r, g, b, _ = to_rgba(hues[k % len(hues)])
        for j in range(set_size):
            t = 0.55 * j / max(1, set_size - 1)  # 0 (the set's colour) ... 0.55 (towards white)
            out.append((r + (1 - r) * t, g + (1 - g) * t, b + (1 - b) * t, 1.0))
    return out


def set_labels(n_sets: int, set_size: int) -> list[str]:
    """``"set k: feature i"`` for every feature."""
    return [f"set {k}: feature {k * set_size + j}" for k in range(n_sets) for j in range(set_size)]


def set_directions(
    W: torch.Tensor,
    set_size: int,
    kind: str = "correlated",
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
) -> "Figure":
    """Every instance's feature directions (``m = 2``), a colour per set (:func:`set_colors`).

    Args:
        W: ``(n_instances, 2, n_features)``; set ``k`` is features ``k*set_size ... (k+1)*set_size - 1``.
        set_size: features per set.
        kind: ``"correlated"`` or ``"anticorrelated"``: the legend says which.
        titles: one per instance (e.g. ``"1-S = 0.05"``).
        ncols: panels per row.

    Returns:
        the figure; the legend names every feature's set.
    """
    if kind not in _KIND_WORDS:
        raise ValueError(f"kind must be one of {tuple(_KIND_WORDS)}, got {kind!r}")
    set_size = check_positive_int("set_size", set_size)
    n_features = W.shape[-1]
    if n_features % set_size:
        raise ValueError(f"W's n_features={n_features} is not a multiple of set_size={set_size}")
    n_sets = n_features // set_size
    return feature_directions_2d(W, titles=titles, ncols=ncols, colors=set_colors(n_sets, set_size),
                                 labels=set_labels(n_sets, set_size), legend_title=_KIND_WORDS[kind])


def collapse_curve(densities: Sequence[float], counts: Sequence[int], n_sets: int) -> "Figure":
    """Collapsed sets against density (log x): the staircase of lesson 06's collapse sweep."""
    from matplotlib.figure import Figure

    if len(densities) != len(counts) or not len(counts):
        raise ValueError(f"densities and counts must be equally long and non-empty, got {len(densities)} and {len(counts)}")
    fig = Figure(figsize=(4.8, 3.0), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(list(densities), list(counts), "o-", color="C0")
    ax.set_xscale("log")
    ax.set_yticks(range(n_sets + 1))
    ax.set_ylim(-0.3, n_sets + 0.3)
    ax.set_xlabel("feature density 1-S")
    ax.set_ylabel("pairs collapsed")
    ax.set_title("pairs stored as their principal component", fontsize=10)
    ax.grid(axis="y", color="0.9", lw=0.6)
    return fig
