"""Reading bar charts out of :func:`autograder.worker.figures.figure_data`'s plain data.

A *panel* is an axes holding bars (colorbars left out). Its bars keep the order
they were drawn in; :func:`display_order` says in which order a reader sees
them (top to bottom for horizontal bars, left to right for vertical ones,
following inverted axes).
"""

from __future__ import annotations

from typing import Any

__all__ = ["panels", "lengths", "positions", "display_order", "luminance", "same_colour", "rgba"]


def panels(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The axes of ``figure_data`` output that hold bars, in the figure's order (colorbars skipped)."""
    return [ax for ax in data.get("axes", []) if ax["bars"] and not ax["is_colorbar"]]


def _horizontal(bar: dict[str, Any]) -> bool:
    return bar["orientation"] == "horizontal"


def lengths(panel: dict[str, Any]) -> list[float]:
    """Each bar's length along its value axis (width for horizontal bars, height for vertical ones)."""
    return [b["width"] if _horizontal(b) else b["height"] for b in panel["bars"]]


def positions(panel: dict[str, Any]) -> list[float]:
    """Each bar's centre on its category axis (y for horizontal bars, x for vertical ones)."""
    return [b["y"] + b["height"] / 2 if _horizontal(b) else b["x"] + b["width"] / 2 for b in panel["bars"]]


def display_order(panel: dict[str, Any]) -> list[int]:
    """Bar indices (drawing order) as a reader sees them: top to bottom, or left to right."""
    pos = positions(panel)
    horizontal = bool(panel["bars"]) and _horizontal(panel["bars"][0])
    if horizontal:
        lo, hi = panel["ylim"]
        top_is_high = hi > lo  # the usual y axis: larger y is higher up
        return sorted(range(len(pos)), key=lambda i: -pos[i] if top_is_high else pos[i])
    lo, hi = panel["xlim"]
    return sorted(range(len(pos)), key=lambda i: pos[i] if hi > lo else -pos[i])


def luminance(c: list[float]) -> float:
    """Relative luminance (sRGB, WCAG) of an RGBA colour: 0 for black, 1 for white."""

    def lin(v: float) -> float:
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(float(v)) for v in c[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def same_colour(a: list[float], b: list[float], tol: float = 1e-3) -> bool:
    """RGBA colours equal to within ``tol`` in every channel."""
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b))  # NaN never within tol


def rgba(c: list[float]) -> tuple[float, ...]:
    """A colour rounded for messages."""
    return tuple(round(float(v), 2) for v in c)
