"""A matplotlib figure as plain data, so that checks never touch the learner's objects.

:func:`figure_data` reads everything a check may ask about a figure (per axes:
its bars with position, size, colour and orientation; lines; images; titles,
labels, limits, scales, ticks and tick labels; whether it is a colorbar) into
dicts, lists, strings, floats and bools. It runs where the figure was made
(the worker that ran the learner's code) and imports only matplotlib and numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["figure_data", "axes_data"]


def _floats(values: Any) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=float).ravel().tolist()]


def _colour(c: Any) -> list[float]:
    from matplotlib.colors import to_rgba

    try:
        return [float(v) for v in to_rgba(c)]
    except (TypeError, ValueError):
        arr = np.asarray(c, dtype=float).ravel()
        return [float(v) for v in arr[:4]] if arr.size >= 4 else []


def _ticks(axis: Any) -> tuple[list[float], list[str]]:
    locs = _floats(axis.get_majorticklocs())
    labels = [t.get_text() for t in axis.get_ticklabels()]
    if len(labels) != len(locs) or not any(labels):
        try:
            labels = [str(s) for s in axis.get_major_formatter().format_ticks(list(locs))]
        except Exception:  # a formatter that needs a drawn figure
            labels = ["" for _ in locs]
    return locs, labels


def axes_data(ax: Any) -> dict[str, Any]:
    """One axes as plain data (see :func:`figure_data`)."""
    from matplotlib.container import BarContainer

    bars = []
    for container in ax.containers:
        if not isinstance(container, BarContainer):
            continue
        orientation = str(getattr(container, "orientation", None) or "vertical")
        for patch in container.patches:
            bars.append(
                {
                    "x": float(patch.get_x()),
                    "y": float(patch.get_y()),
                    "width": float(patch.get_width()),
                    "height": float(patch.get_height()),
                    "color": _colour(patch.get_facecolor()),
                    "orientation": orientation,
                }
            )
    lines = [
        {"x": _floats(line.get_xdata()), "y": _floats(line.get_ydata()), "color": _colour(line.get_color()),
         "label": str(line.get_label())}
        for line in ax.get_lines()
    ]
    images = []
    for im in ax.get_images():
        arr = np.asarray(im.get_array())
        clim = im.get_clim()
        images.append({"shape": list(arr.shape), "extent": _floats(im.get_extent()),
                       "clim": [float(c) if c is not None else None for c in clim], "cmap": str(im.get_cmap().name)})
    xticks, xticklabels = _ticks(ax.xaxis)
    yticks, yticklabels = _ticks(ax.yaxis)
    titles = {loc: ax.get_title(loc=loc) for loc in ("left", "center", "right")}
    legend = ax.get_legend()
    return {
        "title": titles["center"] or titles["left"] or titles["right"],
        "titles": titles,
        "xlabel": ax.get_xlabel(),
        "ylabel": ax.get_ylabel(),
        "xlim": _floats(ax.get_xlim()),
        "ylim": _floats(ax.get_ylim()),
        "xscale": ax.get_xscale(),
        "yscale": ax.get_yscale(),
        "xticks": xticks,
        "xticklabels": xticklabels,
        "yticks": yticks,
        "yticklabels": yticklabels,
        "bars": bars,
        "lines": lines,
        "images": images,
        "texts": [t.get_text() for t in ax.texts],
        "legend": [t.get_text() for t in legend.get_texts()] if legend is not None else [],
        "is_colorbar": getattr(ax, "_colorbar", None) is not None or ax.get_label() == "<colorbar>",
        "position": _floats(ax.get_position().bounds),
        "visible": bool(ax.get_visible()),
    }


def figure_data(fig: Any) -> dict[str, Any]:
    """``{"kind": "figure", "size": [w, h] inches, "suptitle": str, "axes": [axes_data(ax), ...]}``.

    Anything that is not a matplotlib ``Figure`` gives ``{"kind": "not a figure", "type": its type name}``,
    so a check can say what it got instead.
    """
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        return {"kind": "not a figure", "type": type(fig).__name__, "repr": repr(fig)[:120]}
    suptitle = getattr(fig, "_suptitle", None)
    return {
        "kind": "figure",
        "size": _floats(fig.get_size_inches()),
        "suptitle": suptitle.get_text() if suptitle is not None else "",
        "axes": [axes_data(ax) for ax in fig.axes],
    }
