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
* :func:`dimensions_per_feature_curve` ``D* = m / ||W||_F^2`` against ``1 / (1 - S)``.
* :func:`feature_dimensionality_scatter` every feature's dimensionality, with the polytope lines.
* :func:`pentagon_study` five features in two dimensions as one gets sparser: pentagon, then two digons.
* :func:`phase_diagrams` phase diagrams side by side (theory, trained): what the extra feature does
  at each (density, relative importance), on log axes, with the triple point.
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
    "phase_diagrams",
    "PHASE_COLORS",
    "dimensions_per_feature_curve",
    "feature_dimensionality_scatter",
    "pentagon_study",
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


def _display_in_ipython() -> None:
    """In a Jupyter kernel, show a returned figure as the cell's value whatever the backend.

    Figures made without pyplot only display once IPython knows how to render
    them; the inline backend teaches it, but only after pyplot has been set up.
    """
    import sys

    if "IPython" not in sys.modules:
        return
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    from IPython.core.pylabtools import print_figure
    from matplotlib.figure import Figure

    shell.display_formatter.formatters["image/png"].for_type(Figure, lambda fig: print_figure(fig, "png"))


def _figure(
    nrows: int, ncols: int, width: float = _PANEL, height: float = _PANEL, extra_width: float = 1.0, wspace: float = 0.02
) -> "Figure":
    """A pyplot-free figure sized ``width x height`` inches per panel, plus room for a colorbar or legend."""
    from matplotlib.figure import Figure

    _display_in_ipython()
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
            ax.set_xlabel(r"$\|W_i\|$", fontsize=9)
    fig.colorbar(
        ScalarMappable(norm=norm, cmap=cmap),
        ax=fig.axes,
        label=r"superposition  $\sum_{j \neq i} (\hat{W}_i \cdot W_j)^2$",
        extend="max",
        shrink=0.6 if nrows > 1 else 1.0,
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
    fig.colorbar(image, ax=fig.axes, shrink=0.7 if nrows > 1 else 1.0, aspect=30, label=r"$W_i \cdot W_j$  and  $b_i$")
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
    colors: Sequence[Any] | None = None,
    labels: Sequence[str] | None = None,
    legend_title: str | None = "importance order",
) -> "Figure":
    """Each feature's direction ``W_i`` as a line from the origin, for models with ``n_hidden = 2``.

    The paper's intro figure: dense models draw two orthogonal features and
    drop the rest (points at the origin); sparser ones put features on
    opposite sides (antipodal pairs), then on a pentagon. By default colours
    follow importance order (feature 0 is the most important); the dotted
    circle is ``||W_i|| = 1``.

    Args:
        W: ``(n_instances, 2, n_features)``.
        titles: one per instance, e.g. :func:`density_titles`.
        ncols: panels per row (default: up to 7).
        colors: one matplotlib colour per feature (default: viridis in feature order).
        labels: one legend entry per feature (default: ``"feature i"``, feature 0 marked most important).
        legend_title: the legend's title (default ``"importance order"``: say something else when the
            features are not ordered by importance).

    Returns:
        the figure, one axes per instance (the legend is a figure legend).
    """
    from matplotlib import colormaps
    from matplotlib.lines import Line2D

    w = _check_W("W", W, n_hidden=2)
    n_inst, _, n_feat = w.shape
    titles = _check_titles(titles, n_inst)
    for name, given in (("colors", colors), ("labels", labels)):
        if given is not None and (isinstance(given, str) or len(given) != n_feat):
            raise ValueError(f"{name} must give one entry per feature (n_features={n_feat}), got {given!r}")
    ncols = ncols or _default_ncols(n_inst)
    (cells,), nrows = _positions([n_inst], ncols)
    lim = max(1.2, 1.1 * metrics.feature_norms(w).max().item())
    if colors is None:
        colors = colormaps["viridis"](torch.linspace(0.0, 0.92, n_feat).numpy())
    if labels is None:
        labels = [f"feature {i}" + (" (most important)" if i == 0 and n_feat > 1 else "") for i in range(n_feat)]
    fig = _figure(nrows, ncols, width=2.0, height=2.1, extra_width=1.6)
    grid = fig.add_gridspec(nrows, ncols)
    for k, (r, c) in enumerate(cells):
        ax = fig.add_subplot(grid[r, c])
        _draw_directions(ax, w[k], colors, lim)
        ax.set_title(titles[k], fontsize=10)
    handles = [Line2D([], [], color=colors[i], lw=2, marker="o", ms=4) for i in range(n_feat)]
    fig.legend(handles, list(labels), loc="outside right upper", fontsize=8, frameon=False, title=legend_title,
               title_fontsize=9)
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
        ax.annotate(
            "one feature per dimension" if per_dimension else f"m = {m}",
            (0.99, 1.0 if per_dimension else m), xycoords=("axes fraction", "data"),
            ha="right", va="bottom", fontsize=8, color="0.45",
        )
    markers = "osD^v<>"
    for index, ((label, _, x, y), color) in enumerate(zip(curves, colors)):
        # Later lines get smaller markers, so that curves lying on top of each other stay visible.
        ax.plot(x, y, "-", marker=markers[index % len(markers)], color=color, lw=1.6,
                ms=max(3.0, 7.0 - 1.3 * index), label=label)
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


# --------------------------------------------------------------------------- lesson 4

PHASE_COLORS = ("#d4d4d4", "#3b75af", "#d62728", "#f2a93b", "#2ca02c")
"""Colours of phase ``0, 1, 2, ...`` in :func:`phase_diagrams`: grey (not represented), blue
(dedicated), red (superposition), then orange and green for the ``n = 3`` diagram's extra labels."""


def _log_edges(values: torch.Tensor) -> torch.Tensor:
    """Cell edges for log-spaced centres: geometric midpoints, extended by half a step at each end."""
    lv = values.log()
    if lv.numel() == 1:
        return torch.stack([lv - 0.5, lv + 0.5]).reshape(-1).exp()
    mid = (lv[1:] + lv[:-1]) / 2
    return torch.cat([lv[:1] - (mid[0] - lv[0]), mid, lv[-1:] + (lv[-1] - mid[-1])]).exp()


def _phase_axis(name: str, values: object) -> torch.Tensor:
    t = torch.as_tensor(values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=torch.float64)
    t = t.reshape(-1)
    if t.numel() == 0 or not bool((t > 0).all()):
        raise ValueError(f"{name} must be a non-empty sequence of positive values (a log axis)")
    if t.numel() > 1 and not bool((t[1:] > t[:-1]).all()):
        raise ValueError(f"{name} must be increasing")
    return t


def _phase_rgb(name: str, value: object, shape: tuple[int, int], n_phases: int, colors) -> torch.Tensor:
    """Labels ``(R, P)`` or fractions ``(R, P, n_phases)`` -> an RGB image ``(R, P, 3)``."""
    from matplotlib.colors import to_rgb

    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of labels (R, P) or fractions (R, P, n_phases)")
    t = value.detach().cpu()
    palette = torch.tensor([to_rgb(c) for c in colors[:n_phases]], dtype=torch.float64)
    if t.dim() == 2 and not t.is_floating_point():
        if tuple(t.shape) != shape:
            raise ValueError(f"{name} must have shape (R, P) = {shape}, got {tuple(t.shape)}")
        if bool((t < 0).any() or (t >= n_phases).any()):
            raise ValueError(f"{name} has labels outside [0, {n_phases}): {t.min().item()}..{t.max().item()}")
        return palette[t.long()]
    if t.dim() == 3 and t.is_floating_point():
        if tuple(t.shape) != (*shape, n_phases):
            raise ValueError(f"{name} must have shape (R, P, n_phases) = {(*shape, n_phases)}, got {tuple(t.shape)}")
        w = t.double().clamp_min(0)
        w = w / w.sum(dim=-1, keepdim=True).clamp_min(1e-12)
        return w @ palette
    raise ValueError(
        f"{name} must be integer labels of shape (R, P) = {shape} or float fractions of shape "
        f"(R, P, n_phases) = {(*shape, n_phases)}, got {_describe_tensor(t)}"
    )


def _describe_tensor(t: torch.Tensor) -> str:
    return f"a tensor of shape {tuple(t.shape)} and dtype {t.dtype}"


def phase_diagrams(
    diagrams: "Mapping[str, torch.Tensor]",
    relative_importance: "Sequence[float] | torch.Tensor",
    density: "Sequence[float] | torch.Tensor",
    phases: Sequence[str] | None = None,
    triple_point: tuple[float, float] | None = (1.0, 4.0 / 7.0),
    boundary: Any = None,
    colors: Sequence[str] = PHASE_COLORS,
) -> "Figure":
    """Phase diagrams side by side: what the extra feature does at each (density, relative importance).

    The paper's phase-change figure. Each panel is a grid of cells, x the
    density ``1 - S`` and y the extra feature's relative importance, both on
    log axes. A panel is either

    * integer labels ``(R, P)`` (e.g. :func:`supercourse.theory.phase_diagram`),
      each cell coloured by its phase, or
    * float fractions ``(R, P, n_phases)`` (e.g.
      :func:`supercourse.phase.aggregate_restarts`), each cell a mix of the
      phase colours in those proportions: a cell where half the restarts
      superpose and half do not is half red, half grey.

    Args:
        diagrams: ``{panel title: labels or fractions}``, drawn left to right.
        relative_importance: ``(R,)`` increasing, the rows.
        density: ``(P,)`` increasing, the columns.
        phases: the phase names, in label order (default
            :data:`supercourse.theory.PHASES`); the legend.
        triple_point: ``(r, p)`` marked with a star on every panel; ``None`` for none.
        boundary: ``None``, or ``f(r, p) -> labels`` (e.g. ``theory.phase_diagram``)
            whose phase boundaries are drawn as thin black lines on every panel,
            so the empirical panels can be read against the theory.
        colors: one colour per phase (default :data:`PHASE_COLORS`).

    Returns:
        the figure, one axes per panel (the legend is a figure legend).
    """
    from matplotlib.patches import Patch

    from . import theory

    if not isinstance(diagrams, Mapping) or not diagrams:
        raise ValueError("diagrams must be a non-empty mapping {panel title: labels (R, P) or fractions (R, P, n)}")
    r = _phase_axis("relative_importance", relative_importance)
    p = _phase_axis("density", density)
    phases = tuple(theory.PHASES if phases is None else phases)
    if len(colors) < len(phases):
        raise ValueError(f"colors must give one colour per phase ({len(phases)}), got {len(colors)}")
    shape = (r.numel(), p.numel())
    images = [(str(k), _phase_rgb(f"diagrams[{k!r}]", v, shape, len(phases), colors)) for k, v in diagrams.items()]
    r_edges, p_edges = _log_edges(r), _log_edges(p)
    fig = _figure(1, len(images), width=3.4, height=3.2, extra_width=2.3, wspace=0.04)
    axes = fig.subplots(1, len(images), squeeze=False, sharey=True)[0]
    lines = None
    if boundary is not None:
        fine_r = torch.logspace(r_edges[0].log10().item(), r_edges[-1].log10().item(), 400, dtype=torch.float64)
        fine_p = torch.logspace(p_edges[0].log10().item(), min(0.0, p_edges[-1].log10().item()), 400, dtype=torch.float64)
        lines = (fine_p, fine_r, torch.as_tensor(boundary(fine_r, fine_p)).long())
    for c, (ax, (title, rgb)) in enumerate(zip(axes, images)):
        ax.pcolormesh(p_edges.numpy(), r_edges.numpy(), rgb.numpy(), shading="flat", rasterized=True)
        if lines is not None:
            fp, fr, lab = lines
            for k in torch.unique(lab).tolist():
                ax.contour(fp.numpy(), fr.numpy(), (lab == k).double().numpy(), levels=[0.5], colors="k", linewidths=0.8)
        if triple_point is not None:
            ax.plot([triple_point[1]], [triple_point[0]], marker="*", ms=13, color="white", mec="k", mew=0.9, ls="none")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(p_edges[0].item(), p_edges[-1].item())
        ax.set_ylim(r_edges[0].item(), r_edges[-1].item())
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("feature density 1 - S")
        if c == 0:
            ax.set_ylabel("relative importance of the extra feature")
    handles = [Patch(facecolor=colors[i], edgecolor="0.4", lw=0.5, label=name) for i, name in enumerate(phases)]
    if triple_point is not None:
        from matplotlib.lines import Line2D

        handles.append(
            Line2D([], [], marker="*", ms=11, color="white", mec="k", mew=0.9, ls="none",
                   label=f"triple point (r = {triple_point[0]:.3g}, 1-S = {triple_point[1]:.3g})")
        )
    if boundary is not None:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], color="k", lw=0.8, label="theoretical boundary"))
    fig.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False, title="extra feature")
    return fig


# --------------------------------------------------------------------------- lesson 5

_SHAPE_LINES: tuple[tuple[str, float], ...] = (
    ("dedicated", 1.0),
    ("tetrahedron", 3 / 4),
    ("triangle", 2 / 3),
    ("digon", 1 / 2),
    ("pentagon", 2 / 5),
    ("square antiprism", 3 / 8),
)
"""The lines of the feature-dimensionality plot (``d / k`` of each shape), top to bottom."""


def _sparsity_axis(name: str, densities: object, n_instances: int) -> torch.Tensor:
    """Each instance's ``1 / (1 - S)`` from its density, validated: ``(n_instances,)`` float64."""
    d = densities.detach().cpu() if isinstance(densities, torch.Tensor) else densities
    d = torch.as_tensor(d, dtype=torch.float64)
    if d.dim() == 2:  # (n_instances, n_features) as a ToyModel stores it: the mean density of each instance
        d = d.mean(dim=1)
    d = d.reshape(-1)
    if d.shape[0] != n_instances:
        raise ValueError(f"{name} must have one entry per instance ({n_instances}), got {d.shape[0]}")
    if not bool(((d > 0) & (d <= 1)).all()):
        raise ValueError(f"{name} must lie in (0, 1], got values from {d.min().item():g} to {d.max().item():g}")
    return 1.0 / d


def _log_xticks(ax: "Axes", lo: float, hi: float) -> None:
    """Round-number ticks (1, 2, 5, 10 ... or 1, 1.5, 2, 3 ... on short ranges) labelled plainly, on a log x axis."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    steps = (1, 1.5, 2, 3, 4, 5, 6, 8) if hi / lo < 10 else (1, 2, 5)
    nice = [v * 10.0**e for e in range(-4, 5) for v in steps]
    ax.xaxis.set_major_locator(FixedLocator([v for v in nice if lo * 0.99 <= v <= hi * 1.01]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def _sparsity_xaxis(ax: "Axes", x: torch.Tensor) -> None:
    ax.set_xscale("log")
    ax.set_xlim(x.min().item() / 1.15, x.max().item() * 1.15)
    _log_xticks(ax, x.min().item(), x.max().item())
    ax.set_xlabel("1 / (1 - S)   (sparser →)")


def dimensions_per_feature_curve(
    W: "torch.Tensor | Mapping[str, torch.Tensor]",
    densities: "Sequence[float] | torch.Tensor",
) -> "Figure":
    """The paper's "dimensions per feature" plot: ``D* = m / ||W||_F^2`` against ``1 / (1 - S)`` (log x).

    Dotted lines mark ``D* = 1`` (every represented feature has a dimension
    of its own) and ``D* = 1/2`` (antipodal pairs). In the paper the curve
    sticks at 1 when dense and at 1/2 over a wide range of sparsity, then falls.

    Args:
        W: ``(n_instances, n_hidden, n_features)``, or ``{model name: W}`` (one
            curve each, sharing ``densities``).
        densities: each instance's ``1 - S``: ``(n_instances,)``, or
            ``(n_instances, n_features)`` as stored on a :class:`~supercourse.ToyModel`.

    Returns:
        the figure, one axes.
    """
    from matplotlib import colormaps

    models = _models(W)
    x = _sparsity_axis("densities", densities, models[0][1].shape[0])
    colors = colormaps["viridis"](torch.linspace(0.0, 0.8, max(len(models), 2)).numpy())
    fig = _figure(1, 1, width=4.8, height=3.3, extra_width=1.8 if models[0][0] is not None else 0.4)
    ax = fig.add_subplot()
    for value, label in ((1.0, "1: a dimension per feature"), (0.5, "1/2: antipodal pairs")):
        ax.axhline(value, color="0.55", lw=0.9, ls=":", zorder=0)
        ax.annotate(label, (1.0, value), xycoords=("axes fraction", "data"), xytext=(-3, 3),
                    textcoords="offset points", ha="right", va="bottom", fontsize=8, color="0.4")
    for (label, w), color in zip(models, colors):
        if w.shape[0] != x.shape[0]:
            raise ValueError(f"W[{label!r}] must have one instance per density ({x.shape[0]}), got {w.shape[0]}")
        ax.plot(x.numpy(), metrics.dimensions_per_feature(w).numpy(), "o-", color=color, lw=1.6, ms=4, label=label)
    _sparsity_xaxis(ax, x)
    ax.set_ylabel("dimensions per feature  D* = m / ‖W‖²_F")
    ax.set_ylim(0, 1.1)
    ax.grid(True, which="major", color="0.92", lw=0.6)
    _clean(ax)
    if models[0][0] is not None:
        fig.legend(loc="outside right upper", fontsize=8, frameon=False)
    return fig


def feature_dimensionality_scatter(
    W: torch.Tensor,
    densities: "Sequence[float] | torch.Tensor",
    threshold: float = metrics.REPRESENTED_NORM,
    show_dimensions_per_feature: bool = True,
) -> "Figure":
    """The paper's feature-dimensionality plot: one point per feature, ``D_i`` against ``1 / (1 - S)``.

    ``D_i = ||W_i||^2 / sum_j (W_hat_i . W_j)^2``
    (:func:`supercourse.metrics.feature_dimensionality`). Represented features
    (``||W_i|| > threshold``) are dark points; the others, grey, sit near 0.
    Grey lines mark the dimensionalities of the shapes features form, ``d / k``
    for ``k`` features on a regular polytope in ``d`` dimensions: 1, 3/4
    (tetrahedron), 2/3 (triangle), 1/2 (digon), 2/5 (pentagon), 3/8 (square
    antiprism). The points cluster on them. Points of one instance are spread
    a little sideways so that they do not hide each other.

    Args:
        W: ``(n_instances, n_hidden, n_features)``.
        densities: each instance's ``1 - S``, ``(n_instances,)`` or ``(n_instances, n_features)``.
        threshold: the norm above which a feature counts as represented.
        show_dimensions_per_feature: also draw ``D*`` of each instance as a line.

    Returns:
        the figure, one axes.
    """
    w = _check_W("W", W)
    n_inst, _, n_feat = w.shape
    x = _sparsity_axis("densities", densities, n_inst)
    D = metrics.feature_dimensionality(w)
    rep = metrics.represented(w, threshold)
    # Spread each instance's points over +-3% of x, in a fixed pseudo-random order.
    gen = torch.Generator().manual_seed(0)
    spread = x[:, None] * (1.0 + 0.06 * (torch.rand(n_inst, n_feat, generator=gen, dtype=torch.float64) - 0.5))
    fig = _figure(1, 1, width=6.4, height=4.2, extra_width=1.6)
    ax = fig.add_subplot()
    nudge = {"pentagon": 3, "square antiprism": -3}  # their lines are close: labels apart
    for name, value in _SHAPE_LINES:
        ax.axhline(value, color="0.7", lw=0.8, zorder=0)
        ax.annotate(f"{name}  {_fraction_label(value)}", (1.0, value), xycoords=("axes fraction", "data"),
                    xytext=(4, nudge.get(name, 0)), textcoords="offset points", va="center", fontsize=8,
                    color="0.35", annotation_clip=False)
    ax.scatter(spread[~rep].numpy(), D[~rep].numpy(), s=6, color="0.75", lw=0, label="not represented")
    ax.scatter(spread[rep].numpy(), D[rep].numpy(), s=9, color="#1f3a93", alpha=0.7, lw=0,
               label=f"represented (‖W_i‖ > {threshold:g})")
    if show_dimensions_per_feature:
        ax.plot(x.numpy(), metrics.dimensions_per_feature(w).numpy(), "-", color="#d7301f", lw=1.2,
                label="D* = m / ‖W‖²_F")
    _sparsity_xaxis(ax, x)
    ax.set_ylabel("feature dimensionality  D_i")
    ax.set_ylim(-0.03, 1.08)
    _clean(ax)
    ax.legend(loc="upper right", fontsize=8, frameon=True, framealpha=0.9)
    return fig


def _fraction_label(value: float) -> str:
    from fractions import Fraction

    f = Fraction(value).limit_denominator(10)
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def pentagon_study(
    ratios: "Sequence[float] | torch.Tensor",
    W: torch.Tensor,
    losses: torch.Tensor,
    shapes: Sequence[Sequence[str]],
    kept: "Sequence[int] | torch.Tensor",
    transition: float | None = None,
    panels: int = 6,
) -> "Figure":
    """The pentagon study: five features in two dimensions as feature 0 gets sparser than the others.

    Top row: the kept model's feature directions at ``panels`` ratios spread
    over the sweep (feature 0, the sparse one, drawn thick in red). Bottom:
    every restart's loss, relative to the best loss at its ratio, coloured by
    the shape it found; the kept model sits at 0. Two arrangements
    coexist as local minima on both sides of the transition and swap places
    at it: a first-order phase change.

    Args:
        ratios: ``(n_ratios,)``, how many times sparser feature 0 is than the others.
        W: ``(n_ratios, 2, 5)`` the kept model of each ratio.
        losses: ``(n_ratios, n_restarts)`` every restart's loss.
        shapes: ``n_ratios`` rows of ``n_restarts`` shape names (e.g. ``"pentagon"``,
            ``"two digons"``, anything else is drawn as "other").
        kept: ``(n_ratios,)`` the index of the kept restart at each ratio.
        transition: the ratio where the kept shape changes, drawn as a dashed line.
        panels: how many direction panels to draw.

    Returns:
        the figure: ``panels`` direction axes, then the loss axes.
    """
    r = torch.as_tensor(ratios.detach().cpu() if isinstance(ratios, torch.Tensor) else ratios, dtype=torch.float64)
    r = r.reshape(-1)
    n_r = r.shape[0]
    w = _check_W("W", W, n_hidden=2)
    if w.shape[0] != n_r:
        raise ValueError(f"W must have one kept model per ratio ({n_r}), got {w.shape[0]}")
    L = _as_cpu("losses", losses, (n_r, None), ("n_ratios", "n_restarts")).double()
    if len(shapes) != n_r or any(len(row) != L.shape[1] for row in shapes):
        raise ValueError(f"shapes must have {n_r} rows of {L.shape[1]} names (one per restart)")
    kept = torch.as_tensor(kept).reshape(-1).long()
    if kept.shape[0] != n_r:
        raise ValueError(f"kept must have one entry per ratio ({n_r}), got {kept.shape[0]}")
    panels = max(1, min(panels, n_r))
    fig = _figure(2, panels, width=1.9, height=2.0, extra_width=0.6)
    grid = fig.add_gridspec(2, panels, height_ratios=[1.0, 1.6])
    picks = torch.linspace(0, n_r - 1, panels).round().long().tolist()
    lim = max(1.25, 1.1 * metrics.feature_norms(w).max().item())
    colors = ["#d7301f"] + ["#1f3a93"] * (w.shape[2] - 1)
    for c, i in enumerate(picks):
        ax = fig.add_subplot(grid[0, c])
        _draw_directions(ax, w[i], colors, lim)
        ax.lines[0].set_linewidth(3.5)
        ax.set_title(f"×{r[i].item():.2g}: {shapes[i][int(kept[i])]}", fontsize=9)
    ax = fig.add_subplot(grid[1, :])
    rel = 100.0 * (L / L.min(dim=1, keepdim=True).values - 1.0)
    styles = {"pentagon": ("#1f3a93", "o"), "two digons": ("#d7301f", "s"), "other": ("0.6", "x")}
    groups: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in styles}
    for i in range(n_r):
        for j in range(L.shape[1]):
            name = shapes[i][j] if shapes[i][j] in styles else "other"
            groups[name][0].append(r[i].item())
            groups[name][1].append(rel[i, j].item())
    for name, (color, marker) in styles.items():
        xs, ys = groups[name]
        if xs:
            ax.scatter(xs, ys, color=color, marker=marker, s=24, lw=1 if marker == "x" else 0, alpha=0.8, label=name)
    ax.plot(r.numpy(), [0.0] * n_r, color="0.2", lw=0.8, label="kept (lowest loss)")
    if transition is not None:
        ax.axvline(transition, color="0.3", ls="--", lw=1.0, label=f"transition ≈ ×{transition:.2f}")
    branch = [y for name in ("pentagon", "two digons") for y in groups[name][1]]
    top = min(40.0, 1.15 * max(branch)) if branch and max(branch) > 0 else 10.0
    ax.set_ylim(-0.05 * top, top)
    ax.set_xscale("log")
    _log_xticks(ax, r.min().item(), r.max().item())
    ax.set_xlabel("how many times sparser feature 0 is than the others")
    ax.set_ylabel("loss above the best (%)")
    ax.set_title("every restart's expected loss; worse arrangements may lie above the frame", fontsize=9)
    ax.grid(True, which="major", color="0.92", lw=0.6)
    _clean(ax)
    ax.legend(loc="upper left", fontsize=8, frameon=False, ncols=2)
    return fig
