"""Lesson 3 checks: measuring superposition from a model's weights, and drawing it.

Five exercises, each compared with :mod:`supercourse` on seeded inputs. Every
answer is determined by ``W``, so every comparison is exact (up to float
rounding); there are no statistical tolerances in this lesson.

* ``03.feature_norms`` ``feature_norms(W) -> (n_instances, n_features)``:
  ``||W_i||``, the length of each feature's column.
* ``03.superposition`` ``superposition(W) -> (n_instances, n_features)``:
  ``sum_{j != i} (W_hat_i . W_j)^2``, 0 for features orthogonal to every other
  and for zero columns (never NaN).
* ``03.gram`` ``gram(W) -> (n_instances, n_features, n_features)``: ``W^T W``
  of every instance.
* ``03.feature_bars`` ``feature_bars(W, titles=None) -> Figure``: checked by
  inspecting the figure's artists: one axes of bars per instance, bar lengths
  equal to the norms, colours that depend on the superposition only, on one
  scale shared by every panel, clipped at 1, and ordered (a sequential
  colormap: lightness changes monotonically with superposition).
* ``03.features_per_density`` ``features_per_density(W, threshold=0.5)
  -> (n_instances,)``: how many features each instance represents, on
  hand-made weights, seeded random weights shaped like a trained sweep, and
  the learner's own trained model (``relu_model`` in their notebook) when
  there is one.

``W`` always has ``n_hidden != n_features`` in the shape checks, so a
reduction over the wrong axis cannot go unnoticed, and square ``W`` in the
value checks, so it cannot slip through by shape alone either.
"""

from __future__ import annotations

import math

import torch

from autograder.exercises import Exercise
from autograder.framework import call, close, describe, expect, prop
from supercourse import metrics

LESSON = "03-measuring-superposition"
EXERCISES = {
    "feature_norms": Exercise("feature_norms", "Feature norms ||W_i||", forbid=("metrics",)),
    "superposition": Exercise(
        "superposition", "The superposition of each feature", forbid=("metrics", "unit_directions")
    ),
    "gram": Exercise("gram", "W^T W for every instance", forbid=("metrics",)),
    "feature_bars": Exercise(
        "feature_bars", "The feature-bar plot", forbid=("plots.feature_bars", "_draw_bars", "supercourse.plots")
    ),
    "features_per_density": Exercise(
        "features_per_density",
        "State your numbers: features represented at each density",
        forbid=("n_represented", "metrics.represented"),
    ),
}

NOTEBOOK_MODEL = "relu_model"
"""The trained ReLU sweep in the learner's notebook, which ``03.features_per_density`` also counts."""


# --------------------------------------------------------------------------- inputs and helpers


def _fmt(values: torch.Tensor, digits: int = 3) -> str:
    return "[" + ", ".join(f"{v:.{digits}g}" for v in values.flatten().tolist()) + "]"


def _random_W(seed: int, n_inst: int, m: int, n: int) -> torch.Tensor:
    """Columns with random directions and norms spread over [0.1, 1.4] (so a missing normalisation shows)."""
    gen = torch.Generator().manual_seed(seed)
    W = torch.randn(n_inst, m, n, generator=gen)
    W = W / W.norm(dim=1, keepdim=True)
    return W * (0.1 + 1.3 * torch.rand(n_inst, 1, n, generator=gen))


def _rotation(seed: int, m: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(m, m, generator=torch.Generator().manual_seed(seed)))
    return q


def _with_zero_columns(seed: int) -> torch.Tensor:
    """``(3, 4, 6)`` random weights with some columns exactly zero (unlearned features)."""
    W = _random_W(seed, 3, 4, 6)
    W[0, :, 2] = 0.0
    W[1, :, 0] = 0.0
    W[1, :, 5] = 0.0
    W[2, :, :] = 0.0
    W[2, :, 3] = torch.tensor([0.6, -0.2, 0.1, 0.3])
    return W


def _tensor_out(out: object, shape: tuple[int, ...], what: str, meaning: str) -> torch.Tensor:
    expect(
        isinstance(out, torch.Tensor),
        f"{what}: should return a torch.Tensor of shape {meaning} = {shape}, got {describe(out)}.",
    )
    return out


def _shape_hint(got: tuple[int, ...], W: torch.Tensor, per_feature_pair: bool = False) -> str:
    k, m, n = W.shape
    if per_feature_pair:
        if got == (k, m, m):
            return (
                " That is W W^T, the (n_hidden x n_hidden) Gram matrix of the hidden dimensions; W^T W compares "
                "features: entry [k, i, j] is W[k, :, i] . W[k, :, j]."
            )
        if got == (n, n):
            return " The instance dimension is gone: compute W^T W for each instance separately (a batched matmul)."
        return ""
    if got == (k, m):
        return " That is one value per hidden dimension: reduce over dim 1 (n_hidden), not dim 2 (n_features)."
    if got == (m, n):
        return " The instance dimension is gone: reduce over dim 1 (n_hidden), not dim 0."
    if got == (k, 1, n):
        return " Drop the kept dimension (keepdim=False) so the result is (n_instances, n_features)."
    if got in ((k,), ()):
        return " It was reduced over the features too: one value per feature is expected."
    return ""


def _check_shape(submission, name: str, per_feature_pair: bool = False) -> None:
    W = _random_W(1, 3, 4, 7)
    want = (3, 7, 7) if per_feature_pair else (3, 7)
    meaning = "(n_instances, n_features, n_features)" if per_feature_pair else "(n_instances, n_features)"
    what = f"Shape of {name}"
    before = W.clone()
    out = _tensor_out(call(submission, W, what=name), want, what, meaning)
    got = tuple(out.shape)
    expect(
        got == want,
        f"{what}: for W of shape (n_instances, n_hidden, n_features) = {tuple(W.shape)}, {name}(W) should have "
        f"shape {meaning} = {want}, got {got}.{_shape_hint(got, W, per_feature_pair)}",
    )
    expect(out.is_floating_point(), f"{what}: expected a floating-point tensor, got dtype {out.dtype}.")
    expect(torch.equal(W, before), f"{what}: {name} must not modify W in place.")


# --------------------------------------------------------------------------- 03.feature_norms


@prop("feature_norms", points=1)
def test_norms_shape(submission):
    _check_shape(submission, "feature_norms")


@prop("feature_norms", points=1)
def test_norms_values(submission):
    for W in (_random_W(2, 4, 6, 6), _with_zero_columns(3)):
        want = metrics.feature_norms(W)
        out = _tensor_out(call(submission, W.clone(), what="feature_norms"), tuple(want.shape), "Norms", "(n_instances, n_features)")
        got = out.detach().double()
        if close(got, want.double(), rtol=1e-5, atol=1e-6):
            continue
        hint = ""
        if close(got, want.double() ** 2, rtol=1e-5, atol=1e-6):
            hint = " You returned the squared norms ||W_i||^2: take the square root."
        elif close(got, W.abs().sum(dim=1).double(), rtol=1e-5, atol=1e-6):
            hint = " That is the L1 norm (sum of absolute values): ||W_i|| is the Euclidean length."
        elif close(got, W.norm(dim=2).double(), rtol=1e-5, atol=1e-6):
            hint = " Those are the lengths of W's rows (hidden dimensions): feature i is the column W[k, :, i], so reduce over dim 1."
        k = 0
        if got.shape == want.shape:
            k = int(torch.nonzero((~torch.isclose(got, want.double(), rtol=1e-5, atol=1e-6)).any(dim=1))[0])
        expect(
            False,
            f"Norms: for W of shape {tuple(W.shape)}, feature_norms(W)[k, i] should be the length of column W[k, :, i]; "
            f"expected instance {k} = {_fmt(want[k])}, got {_fmt(got[k]) if got.dim() > 1 else describe(out)}.{hint}",
        )


# --------------------------------------------------------------------------- 03.superposition


def _superposition_hint(got: torch.Tensor, W: torch.Tensor) -> str:
    """Name the mistake when ``got`` matches a plausible wrong formula."""
    W = W.double()
    dots = W.mT @ W  # W_i . W_j
    norms = W.norm(dim=1)
    safe = torch.where(norms > 1e-8, norms, torch.ones_like(norms))
    unit = torch.where(norms[:, None, :] > 1e-8, W / safe[:, None, :], torch.zeros_like(W))
    overlaps = unit.mT @ W  # W_hat_i . W_j
    cos = unit.mT @ unit
    off = 1 - torch.eye(W.shape[-1], dtype=W.dtype)
    candidates = [
        ((dots.square() * off).sum(-1), "it uses W_i . W_j without normalising W_i: divide column i by its norm first (W_hat_i = W_i / ||W_i||)."),
        (overlaps.square().sum(-1), "the sum includes j = i, which adds ||W_i||^2: leave out the diagonal."),
        ((cos.square() * off).sum(-1), "both vectors are normalised (a sum of squared cosines): only W_i is normalised, W_j keeps its length."),
        ((overlaps * off).sum(-1), "the overlaps are not squared: square each W_hat_i . W_j before summing."),
        ((overlaps.abs() * off).sum(-1), "it sums |W_hat_i . W_j|: square the overlaps instead."),
        (((overlaps.mT).square() * off).sum(-1), "it normalises W_j instead of W_i: the sum over j is of (W_hat_i . W_j)^2."),
    ]
    for cand, text in candidates:
        if close(got, cand, rtol=1e-4, atol=1e-5):
            return " Your values match a version in which " + text
    return ""


def _check_superposition(submission, W: torch.Tensor, what: str, focus: torch.Tensor | None = None) -> None:
    want = metrics.superposition(W).double()
    out = _tensor_out(call(submission, W.clone(), what="superposition"), tuple(want.shape), what, "(n_instances, n_features)")
    got = out.detach().double()
    expect(
        got.shape == want.shape,
        f"{what}: expected shape (n_instances, n_features) = {tuple(want.shape)}, got {tuple(got.shape)}.",
    )
    nan = torch.isnan(got) | torch.isinf(got)
    if nan.any():
        k, i = torch.nonzero(nan)[0].tolist()
        zero = bool(W[k, :, i].abs().max() == 0)
        expect(
            False,
            f"{what}: superposition(W)[{k}, {i}] is {got[k, i].item()}"
            + (
                ", and feature i there is a zero column. An unlearned feature shares its direction with nothing: "
                "its superposition is 0. Hint: divide by the norm only where it is non-zero (torch.where), "
                "or clamp the norm away from 0."
                if zero
                else "; every value should be finite."
            ),
        )
    if torch.allclose(got, want, rtol=1e-4, atol=1e-5):
        return
    wrong = ~torch.isclose(got, want, rtol=1e-4, atol=1e-5)
    bad = wrong & focus if focus is not None and (wrong & focus).any() else wrong
    k, i = torch.nonzero(bad)[0].tolist()
    expect(
        False,
        f"{what}: superposition(W)[{k}, {i}] should be {want[k, i].item():.4g}, got {got[k, i].item():.4g} "
        f"(instance {k}: expected {_fmt(want[k])}, got {_fmt(got[k])}).{_superposition_hint(got, W)}",
    )


@prop("superposition", points=1)
def test_superposition_shape(submission):
    _check_shape(submission, "superposition")


@prop("superposition", points=1)
def test_superposition_orthogonal_features(submission):
    # Orthogonal columns of different lengths, rotated away from the axes: nothing interferes, every value is 0.
    m, n = 6, 4
    lengths = torch.tensor([[2.0, 0.5, 1.0, 0.3], [1.0, 1.0, 1.0, 1.0]])
    W = torch.stack([_rotation(10 + k, m)[:, :n] * lengths[k] for k in range(2)])
    _check_superposition(submission, W, "Orthogonal features")


@prop("superposition", points=1)
def test_superposition_zero_columns(submission):
    W = _with_zero_columns(4)
    _check_superposition(submission, W, "Zero columns", focus=W.norm(dim=1) == 0)


@prop("superposition", points=1)
def test_superposition_values(submission):
    # An antipodal pair of unequal lengths (the measure is not symmetric), then random weights.
    pair = torch.zeros(1, 3, 4)
    pair[0, :, 0] = torch.tensor([1.0, 0.0, 0.0])
    pair[0, :, 1] = torch.tensor([-0.5, 0.0, 0.0])
    pair[0, :, 2] = torch.tensor([0.3, 0.8, 0.0])
    pair[0, :, 3] = torch.tensor([0.0, 0.0, 1.2])
    _check_superposition(submission, pair, "Values (an antipodal pair and a third feature)")
    _check_superposition(submission, _random_W(5, 4, 5, 5), "Values (random W)")
    _check_superposition(submission, _random_W(6, 2, 3, 8), "Values (random W)")


# --------------------------------------------------------------------------- 03.gram


@prop("gram", points=1)
def test_gram_shape(submission):
    _check_shape(submission, "gram", per_feature_pair=True)


@prop("gram", points=1)
def test_gram_values(submission):
    for W in (_random_W(7, 3, 5, 5), _random_W(8, 2, 3, 6)):
        want = metrics.gram(W).double()
        out = _tensor_out(
            call(submission, W.clone(), what="gram"), tuple(want.shape), "Values", "(n_instances, n_features, n_features)"
        )
        got = out.detach().double()
        if close(got, want, rtol=1e-5, atol=1e-6):
            continue
        hint = ""
        Wd = W.double()
        unit = Wd / Wd.norm(dim=1, keepdim=True)
        if close(got, Wd @ Wd.mT, rtol=1e-5, atol=1e-6):
            hint = " That is W W^T (hidden x hidden): W^T W has entry [i, j] = W_i . W_j for feature columns i, j."
        elif close(got, unit.mT @ unit, rtol=1e-5, atol=1e-6):
            hint = " Those are cosines: W^T W uses the columns as they are, not normalised (its diagonal is ||W_i||^2)."
        elif close(got, want[:1].expand_as(want).contiguous(), rtol=1e-5, atol=1e-6):
            hint = " Every instance got instance 0's matrix: compute each instance's own W^T W."
        elif close(got, (Wd.mT @ Wd).square(), rtol=1e-5, atol=1e-6):
            hint = " The entries are squared: W^T W is the plain matrix product."
        expect(
            False,
            f"Values: gram(W)[k] should be W[k]^T W[k] (entry [i, j] = W_i . W_j) for W of shape {tuple(W.shape)}; "
            f"expected the diagonal of instance 0 to be the squared norms {_fmt(want[0].diagonal())}, "
            f"got {_fmt(got[0].diagonal()) if got.dim() == 3 else describe(out)}.{hint}",
        )


# --------------------------------------------------------------------------- 03.feature_bars


def _luminance(rgba) -> float:
    """Relative luminance (sRGB, WCAG) of an RGBA colour: 0 for black, 1 for white."""

    def lin(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(float(c)) for c in rgba[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _draw(submission, W: torch.Tensor, titles=None):
    from matplotlib.figure import Figure

    args = (W.clone(),) if titles is None else (W.clone(), list(titles))
    fig = call(submission, *args, what="feature_bars")
    expect(
        isinstance(fig, Figure),
        f"Figure: feature_bars should return a matplotlib Figure, got {describe(fig)}. Hint: build it with "
        "`fig = Figure(...)` (from matplotlib.figure) or `fig, axes = plt.subplots(...)`, and `return fig`.",
    )
    return fig


def _close(fig) -> None:
    try:
        import matplotlib.pyplot as plt

        plt.close(fig)
    except Exception:  # pragma: no cover - a figure made without pyplot needs no closing
        pass


def _panels(fig) -> list[tuple[object, list[float], list[tuple[float, ...]]]]:
    """For each axes that holds bars: (axes, bar lengths, bar colours), bars in the order they were drawn."""
    from matplotlib.container import BarContainer

    out = []
    for ax in fig.axes:
        bars = [c for c in ax.containers if isinstance(c, BarContainer)]
        if not bars:
            continue
        lengths, colours = [], []
        for container in bars:
            horizontal = getattr(container, "orientation", "vertical") == "horizontal"
            for patch in container.patches:
                lengths.append(float(patch.get_width() if horizontal else patch.get_height()))
                colours.append(tuple(float(c) for c in patch.get_facecolor()))
        out.append((ax, lengths, colours))
    return out


def _panels_of(submission, W: torch.Tensor, what: str, titles=None):
    """The learner's panels for ``W``, checked to be one per instance with one bar per feature."""
    fig = _draw(submission, W, titles)
    try:
        panels = _panels(fig)
    finally:
        _close(fig)
    k, m, n = W.shape
    counts = [len(lengths) for _, lengths, _ in panels]
    hint = ""
    if len(panels) == 1 and counts[0] == k * n:
        hint = " Every instance's bars are in one axes: give each instance its own panel."
    elif len(panels) == k and all(c == m for c in counts):
        hint = " Each panel has n_hidden bars: draw one bar per feature (a column of W), not per hidden dimension."
    elif not panels:
        hint = " No axes holds bars: draw them with ax.barh (or ax.bar)."
    expect(
        len(panels) == k and all(c == n for c in counts),
        f"{what}: for W of shape {tuple(W.shape)} the figure should have one axes of bars per instance ({k}), "
        f"each with one bar per feature ({n}); found {len(panels)} axes with bars, holding {counts} bars.{hint}",
    )
    return panels


def _colour_W() -> torch.Tensor:
    """Two instances, 7 features in 4 dimensions, with known superpositions (rotated off the axes).

    ======================  ==============================  ==============================
    features                instance 0: lengths -> s_i      instance 1: lengths -> s_i
    ======================  ==============================  ==============================
    0, 1: antipodal pair    1, 0.5 -> 0.25, 1               1.2, 1.5 -> 2.25, 1.44
    2, 3: same direction    1, 0.71 -> 0.5, 1               1, 0.71 -> 0.5, 1
    4, 5: alone             0.8, 0.3 -> 0, 0                0.6, 0.25 -> 0, 0
    6: zero column          0 -> 0                          0 -> 0
    ======================  ==============================  ==============================
    """
    W = torch.zeros(2, 4, 7)
    e = torch.eye(4)
    half = math.sqrt(0.5)
    columns = [
        [e[0], -0.5 * e[0], e[1], half * e[1], 0.8 * e[2], 0.3 * e[3]],
        [1.2 * e[0], -1.5 * e[0], e[1], half * e[1], 0.6 * e[2], 0.25 * e[3]],
    ]
    for k, cols in enumerate(columns):
        for i, col in enumerate(cols):
            W[k, :, i] = col
    return _rotation(20, 4) @ W


def _rgba(c) -> tuple[float, ...]:
    return tuple(round(v, 2) for v in c)


def _same(a, b, tol: float = 1e-3) -> bool:
    return max(abs(x - y) for x, y in zip(a, b)) <= tol


@prop("feature_bars", points=1)
def test_bars_figure_and_panels(submission):
    W = _random_W(30, 3, 4, 9)
    _panels_of(submission, W, "Panels")
    _panels_of(submission, _random_W(31, 1, 2, 5), "Panels (one instance)")
    titles = ["1-S = 1", "1-S = 0.1", "1-S = 0.01"]
    fig = _draw(submission, W, titles)
    try:
        panels = _panels(fig)
        got = [ax.get_title() for ax, _, _ in panels]
    finally:
        _close(fig)
    expect(
        len(got) == 3 and all(t in g for t, g in zip(titles, got)),
        f"Panels: with titles={titles}, panel k should be titled titles[k]; got titles {got}. "
        "Hint: ax.set_title(titles[k]).",
    )


@prop("feature_bars", points=1)
def test_bars_lengths(submission):
    W = _random_W(32, 3, 4, 9)
    panels = _panels_of(submission, W, "Bar lengths")
    norms = metrics.feature_norms(W)
    for k, (_, lengths, _) in enumerate(panels):
        got = torch.tensor(lengths, dtype=torch.float64)
        want = norms[k].double()
        if close(got, want, rtol=1e-4, atol=1e-5):
            continue
        hint = ""
        if close(got, want.square(), rtol=1e-4, atol=1e-5):
            hint = " They are the squared norms: the bar length is ||W_i||."
        elif any(close(got, norms[j].double(), rtol=1e-4, atol=1e-5) for j in range(len(panels)) if j != k):
            hint = " They are another instance's norms: panel k shows instance k."
        elif close(got.sort().values, want.sort().values, rtol=1e-4, atol=1e-5):
            hint = " The right lengths in another order: draw bar i for feature i, in feature order."
        expect(
            False,
            f"Bar lengths: panel {k}'s bars should have lengths ||W_i|| = {_fmt(want)} (bar i is feature i); "
            f"got {_fmt(got)}.{hint}",
        )


@prop("feature_bars", points=1)
def test_bars_colour_by_superposition(submission):
    W = _colour_W()
    panels = _panels_of(submission, W, "Colours")
    sup = metrics.superposition(W)
    (_, _, c0), (_, _, c1) = panels
    # Instance 0: features 4, 5, 6 have superposition 0 at lengths 0.8, 0.3, 0; features 1 and 3 have 1 at 0.5, 0.71.
    norm_hint = (
        " Your colours follow the bars' lengths: colour encodes the superposition sum_{j != i} (W_hat_i . W_j)^2, "
        "which the length does not show."
    )
    for group, s_value, lengths in [((4, 5, 6), 0, "0.8, 0.3 and 0"), ((1, 3), 1, "0.5 and 0.71")]:
        same = all(_same(c0[group[0]], c0[i]) for i in group[1:])
        expect(
            same,
            f"Colours: features {', '.join(map(str, group))} of instance 0 all have superposition {s_value} "
            f"(lengths {lengths}), so their bars should have the same colour; got "
            f"{[_rgba(c0[i]) for i in group]}." + norm_hint,
        )
    distinct = [(0, 0, 4), (0, 1, 4), (0, 0, 1), (0, 0, 2), (0, 2, 3), (1, 2, 4), (1, 3, 4), (1, 2, 3)]
    for k, i, j in distinct:
        cols = c0 if k == 0 else c1
        expect(
            not _same(cols[i], cols[j], tol=0.02),
            f"Colours: in instance {k}, features {i} and {j} have superposition {sup[k, i].item():.2f} and "
            f"{sup[k, j].item():.2f}, so their bars should have visibly different colours; both are "
            f"{_rgba(cols[i])}. Hint: colour each bar with cmap(superposition), e.g. matplotlib.colormaps['viridis'].",
        )


@prop("feature_bars", points=1)
def test_bars_colour_scale(submission):
    W = _colour_W()
    panels = _panels_of(submission, W, "Colour scale")
    (_, _, c0), (_, _, c1) = panels
    # The same superposition must get the same colour in every panel, whatever else the panel holds.
    for i, s_value in [(2, 0.5), (4, 0.0)]:
        expect(
            _same(c0[i], c1[i]),
            f"Colour scale: feature {i} has superposition {s_value:g} in both instances, but its colour differs "
            f"between the panels ({_rgba(c0[i])} vs {_rgba(c1[i])}). Use one colour scale for every panel: fixed "
            "limits 0 and 1, not each panel's own minimum and maximum.",
        )
    clipped = [c0[1], c0[3], c1[0], c1[1], c1[3]]
    expect(
        all(_same(clipped[0], c) for c in clipped[1:]),
        "Colour scale: superpositions of 1 and more should all get the colour of 1 (the scale is clipped at 1, "
        "where the other features reach as far along W_i as a feature of its own); superpositions 1, 1, 2.25, 1.44 "
        f"and 1 got {[_rgba(c) for c in clipped]}. Hint: cmap(min(s, 1)), or Normalize(0, 1, clip=True).",
    )
    # Superposition 0, 0.25, 0.5, 1: lightness must change monotonically (a sequential colormap).
    lum = [_luminance(c) for c in (c0[4], c0[0], c0[2], c0[1])]
    steps = [b - a for a, b in zip(lum, lum[1:])]
    expect(
        all(s > 1e-3 for s in steps) or all(s < -1e-3 for s in steps),
        "Colour scale: the colours of superposition 0, 0.25, 0.5 and 1 should get steadily lighter (or steadily "
        f"darker) so that the colour can be read as an amount; their luminances are {_fmt(torch.tensor(lum))}. "
        "Hint: use a sequential colormap such as 'viridis', 'magma' or 'Reds', not a rainbow or diverging one.",
    )


# --------------------------------------------------------------------------- 03.features_per_density


def _counts(submission, W: torch.Tensor, what: str, threshold: float | None = None) -> torch.Tensor:
    args = (W.clone(),) if threshold is None else (W.clone(), threshold)
    out = call(submission, *args, what="features_per_density")
    k = W.shape[0]
    hint = ""
    if isinstance(out, torch.Tensor) and out.dtype == torch.bool:
        hint = " That looks like the mask of represented features: count them per instance (sum over features)."
    elif isinstance(out, torch.Tensor) and out.numel() == 1 and k > 1:
        hint = " That is one number for all instances: count per instance (sum over dim -1 only)."
    expect(
        isinstance(out, torch.Tensor) and tuple(out.shape) == (k,) and out.dtype != torch.bool,
        f"{what}: features_per_density(W) should return one count per instance, a tensor of shape "
        f"(n_instances,) = ({k},); got {describe(out)}.{hint}",
    )
    expect(
        bool(torch.equal(out.detach().double(), out.detach().double().round())),
        f"{what}: the counts should be whole numbers, got {_fmt(out.detach().double())}.",
    )
    return out.detach().long().cpu()


def _counts_hint(got: torch.Tensor, W: torch.Tensor, threshold: float) -> str:
    norms = W.norm(dim=1)
    for cand, text in [
        ((norms.square() > threshold).sum(-1), "it compares the squared norm ||W_i||^2 with the threshold; compare ||W_i|| itself."),
        ((norms >= threshold).sum(-1), "features with ||W_i|| exactly equal to the threshold count; a feature counts only when ||W_i|| > threshold."),
        ((norms > 0.5).sum(-1), "the threshold argument is ignored (0.5 is used): use the `threshold` you are given."),
        ((W.abs().amax(dim=1) > threshold).sum(-1), "it compares single entries of W with the threshold: compare the length of the column."),
        ((W.norm(dim=2) > threshold).sum(-1), "it counts hidden dimensions (rows of W): a feature is a column, W[k, :, i]."),
    ]:
        if torch.equal(got, cand.long()):
            return " Your counts match a version in which " + text
    return ""


def _check_counts(submission, W: torch.Tensor, what: str, threshold: float | None = None) -> None:
    t = metrics.REPRESENTED_NORM if threshold is None else threshold
    want = metrics.n_represented(W, t).long()
    got = _counts(submission, W, what, threshold)
    if torch.equal(got, want):
        return
    expect(
        False,
        f"{what}: with threshold {t:g}, the number of features with ||W_i|| > {t:g} in each instance is "
        f"{want.tolist()}; got {got.tolist()}.{_counts_hint(got, W.detach().cpu().float(), t)}",
    )


def _hand_made_W() -> torch.Tensor:
    """``(3, 4, 6)``: columns of chosen lengths in random directions; one length is exactly 0.5."""
    lengths = torch.tensor(
        [
            [1.0, 0.9, 0.5, 0.45, 0.0, 0.15],
            [1.1, 1.0, 0.98, 0.75, 0.6, 0.55],
            [0.3, 0.1, 0.0, 0.0, 0.0, 0.05],
        ]
    )
    gen = torch.Generator().manual_seed(40)
    W = torch.randn(3, 4, 6, generator=gen)
    W = W / W.norm(dim=1, keepdim=True) * lengths[:, None, :]
    W[0, :, 2] = torch.tensor([0.0, 0.5, 0.0, 0.0])  # exactly 0.5: not represented
    return W


def _sweep_like_W(seed: int, n_inst: int = 7, m: int = 5, n: int = 20) -> torch.Tensor:
    """Weights shaped like a trained sweep: instance k has about m * (1 + k/2) columns of length ~1, the rest ~0."""
    gen = torch.Generator().manual_seed(seed)
    W = torch.randn(n_inst, m, n, generator=gen)
    W = W / W.norm(dim=1, keepdim=True)
    lengths = torch.empty(n_inst, n)
    for k in range(n_inst):
        kept = min(n, int(m * (1 + k / 2)))
        lengths[k, :kept] = 0.85 + 0.3 * torch.rand(kept, generator=gen)
        lengths[k, kept:] = 0.2 * torch.rand(n - kept, generator=gen)
        lengths[k, kept - 1] = 0.52  # near the threshold, either side
        if kept < n:
            lengths[k, kept] = 0.48
    return W * lengths[:, None, :]


def _learners_W(submission) -> torch.Tensor | None:
    """``relu_model.W`` from the notebook that defined the submission, if it trained one."""
    scope = getattr(submission, "__globals__", None)
    model = scope.get(NOTEBOOK_MODEL) if isinstance(scope, dict) else None
    W = getattr(model, "W", None)
    if isinstance(W, torch.Tensor) and W.dim() == 3 and W.is_floating_point():
        return W.detach().cpu().float()
    return None


@prop("features_per_density", points=1)
def test_counts_threshold(submission):
    W = _hand_made_W()
    _check_counts(submission, W, "Default threshold")
    for t in (0.2, 0.95):
        _check_counts(submission, W, f"Threshold {t:g}", threshold=t)


@prop("features_per_density", points=1)
def test_counts_on_trained_models(submission):
    _check_counts(submission, _sweep_like_W(41), "Seeded weights like the n=20, m=5 sweep")
    _check_counts(submission, _sweep_like_W(42, n_inst=7, m=20, n=80), "Seeded weights like the n=80, m=20 sweep")
    mine = _learners_W(submission)
    if mine is not None:
        _check_counts(submission, mine, f"Your own trained model ({NOTEBOOK_MODEL}.W)")
