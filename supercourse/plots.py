"""The paper's figures, as matplotlib :class:`~matplotlib.figure.Figure` objects.

Every function takes tensors on any device (they are detached and copied to the
CPU), validates shapes with messages that name the argument, and returns a new
``Figure`` built without :mod:`matplotlib.pyplot`: nothing is ever shown, no
global figure registry fills up, and it works headless (Agg). In Jupyter a
returned figure displays as the cell's value; elsewhere call
``fig.savefig("name.png")``.

Plots of many instances lay out as a grid of panels, one per instance. Plots
of several models (``W`` given as a mapping such as ``{"linear": W1, "ReLU": W2}``)
give each model its own row(s), labelled with the model's name. Panel titles
default to the instance index; pass ``titles=density_titles(model.feature_probability)``
for the paper's "1-S = 0.03" headings.

* :func:`feature_bars` the paper's basic-results figure: ``||W_i||`` per feature,
  coloured by how much feature ``i`` shares its direction.
* :func:`gram_heatmaps` ``W^T W`` per instance with the bias ``b`` beside it.
* :func:`feature_directions_2d` each feature's column as an arrow in the plane (``m = 2``).
* :func:`training_curves` per-instance loss against step.
* :func:`represented_by_density` features represented (per dimension) against ``1 / (1 - S)``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import torch

from . import metrics
from ._validate import check_tensor

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .training import History

__all__ = [
    "density_titles",
    "feature_bars",
    "gram_heatmaps",
    "feature_directions_2d",
    "training_curves",
    "represented_by_density",
    "SUPERPOSITION_CMAP",
]

SUPERPOSITION_CMAP = "supercourse_superposition"
"""Name of the colormap of :func:`feature_bars`: black at 0 (orthogonal), red, orange, gold at 1+."""

_SUPERPOSITION_COLORS = ("#000000", "#7f0000", "#d7301f", "#fc8d59", "#f2b600")
_PANEL = 2.3  # inches per panel
_MAX_COLS = 7


# --------------------------------------------------------------------------- inputs


def density_titles(feature_probability: float | Sequence[float] | torch.Tensor) -> list[str]:
    """Panel titles ``"1-S = 0.03"``, one per instance.

    ``feature_probability``: ``(n_instances,)``, ``(n_instances, n_features)``
    (as stored on a :class:`~supercourse.ToyModel`; a row whose features differ
    is titled by its mean, ``"mean 1-S = ..."``), a sequence of floats, or one float.
    """
    p = torch.as_tensor(
        feature_probability.detach().cpu() if isinstance(feature_probability, torch.Tensor) else feature_probability,
        dtype=torch.float64,
    )
    if p.dim() == 0:
        p = p.reshape(1)
    if p.dim() == 1:
        return [f"1-S = {v:.3g}" for v in p.tolist()]
    if p.dim() == 2:
        uniform = (p == p[:, :1]).all(dim=1).tolist()
        return [
            f"1-S = {row[0]:.3g}" if same else f"mean 1-S = {sum(row) / len(row):.3g}"
            for row, same in zip(p.tolist(), uniform)
        ]
    raise ValueError(
        "feature_probability must have shape (n_instances,) or (n_instances, n_features), "
        f"got {tuple(p.shape)}"
    )


def _as_cpu(name: str, value: object, shape: Sequence[int | None], names: Sequence[str]) -> torch.Tensor:
    t = check_tensor(name, value, shape=shape, names=names)
    return t.detach().to(device="cpu", dtype=torch.float32)


def _check_W(name: str, W: object, n_hidden: int | None = None) -> torch.Tensor:
    return _as_cpu(name, W, (None, n_hidden, None), ("n_instances", "n_hidden", "n_features"))


def _models(W: object, n_hidden: int | None = None) -> list[tuple[str | None, torch.Tensor]]:
    """``W`` or ``{name: W}`` -> ``[(name, W on the CPU)]``."""
    if isinstance(W, Mapping):
        if not W:
            raise ValueError("W must be a tensor or a non-empty mapping {model name: W}")
        return [(str(k), _check_W(f"W[{k!r}]", v, n_hidden)) for k, v in W.items()]
    return [(None, _check_W("W", W, n_hidden))]


def _check_titles(titles: Sequence[str] | None, n_instances: int, name: str = "titles") -> list[str]:
    if titles is None:
        return [f"instance {k}" for k in range(n_instances)]
    if isinstance(titles, str) or len(titles) != n_instances:
        got = "a str" if isinstance(titles, str) else f"{len(titles)}"
        raise ValueError(f"{name} must be a sequence of n_instances={n_instances} strings, got {got}")
    return [str(t) for t in titles]


def _check_labels(labels: Sequence[str] | None, n_instances: int) -> list[str]:
    return _check_titles(labels, n_instances, name="labels")


# --------------------------------------------------------------------------- layout


def _default_ncols(n: int) -> int:
    """At most :data:`_MAX_COLS` columns, with rows as evenly filled as possible."""
    return math.ceil(n / math.ceil(n / _MAX_COLS))


def _positions(counts: Sequence[int], ncols: int) -> tuple[list[list[tuple[int, int]]], int]:
    """Grid cells for each model's instances: a model starts a new row and wraps after ``ncols``."""
    out, row = [], 0
    for n in counts:
        out.append([(row + k // ncols, k % ncols) for k in range(n)])
        row += math.ceil(n / ncols)
    return out, row


def _figure(
    nrows: int, ncols: int, width: float = _PANEL, height: float = _PANEL, extra_width: float = 1.0, wspace: float = 0.02
) -> "Figure":
    """A pyplot-free figure sized ``width x height`` inches per panel, plus room for a colorbar or legend."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(ncols * width + extra_width, nrows * height + 0.4), layout="constrained")
    fig.get_layout_engine().set(wspace=wspace)
    return fig


def _superposition_cmap():
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list(SUPERPOSITION_CMAP, _SUPERPOSITION_COLORS)


def _clean(ax: "Axes") -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


# --------------------------------------------------------------------------- figures


def feature_bars(
    W: "torch.Tensor | Mapping[str, torch.Tensor]",
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
) -> "Figure":
    """The paper's basic-results figure: how strongly, and how alone, each feature is represented.

    For each instance a panel of horizontal bars, one per feature (feature 0,
    the most important, at the top): the bar's length is ``||W_i||`` and its
    colour the superposition ``sum_{j != i} (W_hat_i . W_j)^2``
    (:func:`supercourse.metrics.superposition`): black when feature ``i`` is
    orthogonal to all others, through red to gold at 1 or more.

    Args:
        W: ``(n_instances, n_hidden, n_features)``, or a mapping
            ``{model name: W}`` (e.g. linear and ReLU) drawn as one row each.
        titles: one per instance (shared by every model), e.g.
            :func:`density_titles`; default ``"instance k"``.
        ncols: panels per row (default: up to 7, rows evenly filled).

    Returns:
        the figure: one axes per panel, then one colorbar axes.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    models = _models(W)
    n_max = max(w.shape[0] for _, w in models)
    titles = _check_titles(titles, n_max)
    ncols = ncols or _default_ncols(n_max)
    cells, nrows = _positions([w.shape[0] for _, w in models], ncols)
    n_feat = max(w.shape[2] for _, w in models)
    height = min(4.5, 1.0 + 0.14 * n_feat)
    fig = _figure(nrows, ncols, width=1.9, height=height, extra_width=1.2)
    grid = fig.add_gridspec(nrows, ncols)
    cmap, norm = _superposition_cmap(), Normalize(0.0, 1.0)
    xmax = max(1.1, 1.05 * max(metrics.feature_norms(w).max().item() for _, w in models))
    for (label, w), where in zip(models, cells):
        norms, sup = metrics.feature_norms(w), metrics.superposition(w)
        for k, (r, c) in enumerate(where):
            ax = fig.add_subplot(grid[r, c])
            _draw_bars(ax, norms[k], sup[k], cmap, norm, xmax)
            ax.set_title(titles[k], fontsize=10)
            if c == 0:
                ax.set_ylabel(f"{label}\nfeature" if label else "feature", fontsize=10)
            else:
                ax.set_yticklabels([])
            ax.set_xlabel("‖W_i‖", fontsize=9)
    fig.colorbar(
        ScalarMappable(norm=norm, cmap=cmap),
        ax=fig.axes,
        label="superposition  Σ_{j≠i} (Ŵ_i·W_j)²",
        extend="max",
        shrink=0.9 if nrows > 1 else 1.0,
        aspect=30,
    )
    return fig


def _draw_bars(ax: "Axes", norms: torch.Tensor, sup: torch.Tensor, cmap, norm, xmax: float) -> None:
    n = norms.shape[0]
    ax.barh(range(n), norms.tolist(), color=cmap(norm(sup.numpy())), height=0.8)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlim(0.0, xmax)
    step = 1 if n <= 10 else 5
    ax.set_yticks(range(0, n, step))
    ax.axvline(1.0, color="0.75", lw=0.8, ls=":", zorder=0)
    ax.tick_params(labelsize=8)
    _clean(ax)


def gram_heatmaps(
    W: "torch.Tensor | Mapping[str, torch.Tensor]",
    b: "torch.Tensor | Mapping[str, torch.Tensor] | None" = None,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
) -> "Figure":
    """``W^T W`` of each instance as a heatmap, with the bias ``b`` as a column beside it.

    Entry ``[i, j]`` is ``W_i . W_j``: an identity block means dedicated,
    orthogonal features; off-diagonal entries are interference (``-1`` for an
    antipodal pair). Blue is positive, red negative, white 0, on one symmetric
    scale shared by every panel and the biases.

    Args:
        W: ``(n_instances, n_hidden, n_features)``, or ``{model name: W}``.
        b: ``(n_instances, n_features)`` (or ``{model name: b}`` with the keys
            of ``W``), drawn as a column right of each heatmap (``b_i`` level
            with row ``i``); ``None`` omits it.
        titles: one per instance, e.g. :func:`density_titles`.
        ncols: panels per row (default: up to 7).

    Returns:
        the figure: one axes per panel, then one colorbar axes.
    """
    from matplotlib import colormaps

    models = _models(W)
    biases = _biases(b, models)
    n_max = max(w.shape[0] for _, w in models)
    titles = _check_titles(titles, n_max)
    ncols = ncols or _default_ncols(n_max)
    cells, nrows = _positions([w.shape[0] for _, w in models], ncols)
    grams = [metrics.gram(w) for _, w in models]
    vmax = max([g.abs().max().item() for g in grams] + [bb.abs().max().item() for bb in biases if bb is not None])
    vmax = max(vmax, 1e-6)
    cmap = colormaps["RdBu"].with_extremes(bad="white")
    fig = _figure(nrows, ncols, width=2.5, height=2.4, extra_width=0.9, wspace=0.06)
    grid = fig.add_gridspec(nrows, ncols)
    image = None
    for (label, w), g, bias, where in zip(models, grams, biases, cells):
        for k, (r, c) in enumerate(where):
            ax = fig.add_subplot(grid[r, c])
            picture = _with_bias_column(g[k], None if bias is None else bias[k])
            image = ax.imshow(picture.numpy(), cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest")
            _label_gram(ax, g.shape[-1], bias is not None)
            ax.set_title(titles[k], fontsize=10)
            if c == 0 and label:
                ax.set_ylabel(label, fontsize=10)
    fig.colorbar(image, ax=fig.axes, shrink=0.9 if nrows > 1 else 1.0, aspect=30, label="W_i · W_j  and  b_i")
    return fig


def _with_bias_column(gram: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """``(n, n)`` -> ``(n, n + 2)``: the Gram matrix, a blank (NaN) column, then ``b``."""
    if b is None:
        return gram
    blank = torch.full((gram.shape[0], 1), float("nan"))
    return torch.cat([gram, blank, b[:, None]], dim=1)


def _label_gram(ax: "Axes", n: int, with_bias: bool) -> None:
    ax.set_yticks([])
    ax.set_xticks([(n - 1) / 2] + ([n + 1] if with_bias else []))
    ax.set_xticklabels(["WᵀW"] + (["b"] if with_bias else []), fontsize=9)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)


def _biases(b: object, models: list[tuple[str | None, torch.Tensor]]) -> list[torch.Tensor | None]:
    if b is None:
        return [None] * len(models)
    if isinstance(b, Mapping) != (models[0][0] is not None):
        raise ValueError("b must be a mapping with the keys of W exactly when W is a mapping")
    out = []
    for label, w in models:
        name, value = ("b", b) if label is None else (f"b[{label!r}]", b.get(label))
        if value is None:
            raise ValueError(f"{name} is missing: b must have the keys of W")
        out.append(_as_cpu(name, value, (w.shape[0], w.shape[2]), ("n_instances", "n_features")))
    return out


def feature_directions_2d(
    W: torch.Tensor,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
) -> "Figure":
    """Each feature's direction ``W_i`` as a line from the origin, for models with ``n_hidden = 2``.

    The paper's intro figure: dense models draw two orthogonal features and
    drop the rest (points at the origin); sparser ones put features on
    opposite sides (antipodal pairs), then on a pentagon. Colours follow
    importance order (feature 0 is the most important); the dotted circle
    is ``||W_i|| = 1``.

    Args:
        W: ``(n_instances, 2, n_features)``.
        titles: one per instance, e.g. :func:`density_titles`.
        ncols: panels per row (default: up to 7).

    Returns:
        the figure, one axes per instance (the legend is a figure legend).
    """
    from matplotlib import colormaps
    from matplotlib.lines import Line2D

    w = _check_W("W", W, n_hidden=2)
    n_inst, _, n_feat = w.shape
    titles = _check_titles(titles, n_inst)
    ncols = ncols or _default_ncols(n_inst)
    (cells,), nrows = _positions([n_inst], ncols)
    lim = max(1.2, 1.1 * metrics.feature_norms(w).max().item())
    colors = colormaps["viridis"](torch.linspace(0.0, 0.92, n_feat).numpy())
    fig = _figure(nrows, ncols, width=2.0, height=2.1, extra_width=1.6)
    grid = fig.add_gridspec(nrows, ncols)
    for k, (r, c) in enumerate(cells):
        ax = fig.add_subplot(grid[r, c])
        _draw_directions(ax, w[k], colors, lim)
        ax.set_title(titles[k], fontsize=10)
    handles = [Line2D([], [], color=colors[i], lw=2, marker="o", ms=4) for i in range(n_feat)]
    labels = [f"feature {i}" + (" (most important)" if i == 0 and n_feat > 1 else "") for i in range(n_feat)]
    fig.legend(handles, labels, loc="outside right upper", fontsize=8, frameon=False, title="importance order")
    return fig


def _draw_directions(ax: "Axes", w: torch.Tensor, colors: Any, lim: float) -> None:
    from matplotlib.patches import Circle

    ax.add_patch(Circle((0, 0), 1.0, fill=False, color="0.8", lw=0.8, ls=":"))
    ax.axhline(0, color="0.92", lw=0.6, zorder=0)
    ax.axvline(0, color="0.92", lw=0.6, zorder=0)
    for i in range(w.shape[1]):
        x, y = w[0, i].item(), w[1, i].item()
        ax.plot([0, x], [0, y], color=colors[i], lw=2, solid_capstyle="round", label=f"feature {i}")
        ax.plot([x], [y], "o", color=colors[i], ms=4)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def training_curves(
    history: "History | Mapping[str, History]",
    labels: Sequence[str] | None = None,
) -> "Figure":
    """Per-instance loss against training step (log y), one panel per history.

    Args:
        history: a :class:`~supercourse.training.History` (``losses:
            (n_logged, n_instances)`` at ``steps: (n_logged,)``), or a mapping
            ``{model name: History}`` for side-by-side panels.
        labels: a legend entry per instance, e.g. :func:`density_titles`;
            default ``"instance k"``.

    Returns:
        the figure, one axes per history (the legend is a figure legend).
    """
    from matplotlib import colormaps

    runs = _histories(history)
    n_inst = runs[0][2].shape[1]
    labels = _check_labels(labels, n_inst)
    colors = colormaps["viridis"](torch.linspace(0.0, 0.92, max(n_inst, 2)).numpy())
    fig = _figure(1, len(runs), width=4.2, height=3.2, extra_width=1.6)
    axes = fig.subplots(1, len(runs), squeeze=False)[0]
    for ax, (name, steps, losses) in zip(axes, runs):
        for k in range(losses.shape[1]):
            ax.plot(steps.numpy(), losses[:, k].clamp_min(1e-12).numpy(), color=colors[k], lw=1.2, label=labels[k])
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        if name:
            ax.set_title(name, fontsize=10)
        ax.grid(True, which="major", color="0.92", lw=0.6)
        _clean(ax)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside right upper", fontsize=8, frameon=False)
    return fig


def _histories(history: object) -> list[tuple[str | None, torch.Tensor, torch.Tensor]]:
    items = list(history.items()) if isinstance(history, Mapping) else [(None, history)]
    if not items:
        raise ValueError("history must be a History or a non-empty mapping {model name: History}")
    out = []
    for name, h in items:
        arg = "history" if name is None else f"history[{name!r}]"
        if not hasattr(h, "losses") or not hasattr(h, "steps"):
            raise TypeError(f"{arg} must be a supercourse History (from supercourse.train), got {type(h).__name__}")
        losses = _as_cpu(f"{arg}.losses", h.losses, (None, None), ("n_logged", "n_instances"))
        steps = torch.as_tensor(h.steps).detach().cpu().reshape(-1)
        if steps.shape[0] != losses.shape[0]:
            raise ValueError(f"{arg}.steps has {steps.shape[0]} entries but {arg}.losses has {losses.shape[0]} rows")
        out.append((None if name is None else str(name), steps, losses))
    if len({l.shape[1] for _, _, l in out}) != 1:
        raise ValueError("every history must have the same number of instances")
    return out


# --------------------------------------------------------------------------- lesson 3


def represented_by_density(
    W: "torch.Tensor | Mapping[str, torch.Tensor]",
    densities: "Sequence[float] | torch.Tensor | Mapping[str, Sequence[float] | torch.Tensor]",
    per_dimension: bool = False,
    threshold: float = metrics.REPRESENTED_NORM,
) -> "Figure":
    """How many features each instance represents, against how sparse its features are.

    One line per model: x is ``1 / (1 - S)`` (log scale: 1 is dense, 1000
    is 99.9% sparse), y the number of features with ``||W_i|| > threshold``
    (:func:`supercourse.metrics.n_represented`), or that number divided by
    ``n_hidden`` when ``per_dimension``, which puts models of different
    sizes on one scale. A dotted line marks one feature per dimension: above
    it, the model represents more features than it has dimensions.

    Args:
        W: ``(n_instances, n_hidden, n_features)``, or ``{model name: W}``
            (e.g. ``{"n=20, m=5": W_small, "n=80, m=20": W_large}``).
        densities: each instance's ``1 - S``: ``(n_instances,)``, shared by
            every model, or ``{model name: densities}`` with the keys of ``W``.
        per_dimension: plot ``n_represented / n_hidden`` instead of the count.
        threshold: the norm above which a feature counts as represented.

    Returns:
        the figure, one axes (the legend is a figure legend when ``W`` is a mapping).
    """
    from matplotlib import colormaps

    models = _models(W)
    curves = []
    for label, w in models:
        if isinstance(densities, Mapping):
            if label is None or label not in densities:
                raise ValueError("densities must be a sequence, or a mapping with the keys of W")
            d, name = densities[label], f"densities[{label!r}]"
        else:
            d, name = densities, "densities"
        d = torch.as_tensor(d.detach().cpu() if isinstance(d, torch.Tensor) else d, dtype=torch.float64).reshape(-1)
        if d.shape[0] != w.shape[0]:
            raise ValueError(f"{name} must have one entry per instance ({w.shape[0]}), got {d.shape[0]}")
        if not bool(((d > 0) & (d <= 1)).all()):
            raise ValueError(f"{name} must lie in (0, 1], got values from {d.min().item():g} to {d.max().item():g}")
        count = metrics.n_represented(w, threshold).double()
        curves.append((label, w.shape[1], (1.0 / d).numpy(), (count / w.shape[1] if per_dimension else count).numpy()))
    colors = colormaps["viridis"](torch.linspace(0.0, 0.8, max(len(curves), 2)).numpy())
    fig = _figure(1, 1, width=4.6, height=3.3, extra_width=1.8 if models[0][0] is not None else 0.4)
    ax = fig.add_subplot()
    for m in sorted({m for _, m, _, _ in curves}) if not per_dimension else [1]:
        ax.axhline(1.0 if per_dimension else m, color="0.6", lw=0.8, ls=":", zorder=0)
    for (label, _, x, y), color in zip(curves, colors):
        ax.plot(x, y, "o-", color=color, lw=1.6, ms=4, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("1 / (1 - S)   (sparser →)")
    ax.set_ylabel("features represented per dimension" if per_dimension else "features represented")
    ax.set_title(f"features with ‖W_i‖ > {threshold:g}", fontsize=10)
    ax.set_ylim(bottom=0)
    ax.grid(True, which="major", color="0.92", lw=0.6)
    _clean(ax)
    if models[0][0] is not None:
        fig.legend(loc="outside right upper", fontsize=8, frameon=False)
    return fig
