"""Lesson 3 checks: measuring superposition from a model's weights, and drawing it.

Five exercises, each graded on its own, compared with :mod:`supercourse` on
inputs drawn from the grading run's secret (values, and for some cases sizes and
thresholds, so no answer can be recorded in advance). Every answer is determined by its inputs, so comparisons are
exact up to float rounding (:data:`autograder.toolkit.RTOL`).

* ``03.feature_norms`` ``feature_norms(W) -> (n_instances, n_features)``.
* ``03.superposition`` ``superposition(W) -> (n_instances, n_features)``, 0 (never
  NaN) for zero columns.
* ``03.gram`` ``gram(W) -> (n_instances, n_features, n_features)``.
* ``03.feature_bars`` ``feature_bars(norms, superposition, titles=None) -> Figure``:
  takes the (reference's) norms and superpositions, so a mistake in the two
  exercises above is not charged again here; read through
  :func:`figure_data` only (bars, limits, titles as plain data).
* ``03.features_per_density`` ``features_per_density(norms, threshold=0.5)
  -> (n_instances,)`` integer counts, from the (reference's) norms, at the default
  and at drawn thresholds (multiples of 1/64, so norms placed exactly at one are ties).

The tensor exercises use the toolkit's property families (shape on sizes where
a wrong axis cannot match, float64 and ``nn.Parameter`` inputs, named value
cases, edge cases: zero columns, tiny norms, short columns, rank-deficient ``W``)
and diagnose with :data:`MISTAKES` (``mistakes.py``), the table the lesson proof also uses.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from autograder.exercises import Exercise
from autograder.framework import CheckFailed, call, expect, figure_data, prop
from autograder.toolkit import (TINY, Case, describe, diagnose, fmt, fmt_pair, random_W, rotation, tensor_out,
                                tensor_properties, with_zero_columns)
from autograder.toolkit import bars as B
from autograder.toolkit.weights import as_parameter
from autograder.toolkit.randomness import secret_gen
from supercourse import metrics

from .mistakes import MISTAKES

LESSON = "03-measuring-superposition"
EXERCISES = {
    "feature_norms": Exercise(
        "feature_norms", "Feature norms ||W_i||", reference=("supercourse.metrics.feature_norms",)
    ),
    "superposition": Exercise(
        "superposition", "The superposition of each feature",
        reference=("supercourse.metrics.superposition", "supercourse.metrics.unit_directions"),
    ),
    "gram": Exercise("gram", "W^T W for every instance", reference=("supercourse.metrics.gram",)),
    "feature_bars": Exercise(
        "feature_bars", "The feature-bar plot",
        reference=("supercourse.plots.feature_bars", "supercourse.plots._draw_bars"),
    ),
    "features_per_density": Exercise(
        "features_per_density",
        "State your numbers: features represented at each density",
    ),
}

THRESHOLD = metrics.REPRESENTED_NORM


# --------------------------------------------------------------------------- inputs


def _squeezed(got: tuple[int, ...], want: tuple[int, ...]) -> str:
    """A hint when ``got`` is ``want`` with its size-1 dimensions dropped (``.squeeze()``)."""
    if got != want and 1 in want and got == tuple(d for d in want if d != 1):
        return (" A squeeze() dropped the size-1 dimensions (one instance or one feature): keep every dimension, "
                "whatever its size (leave out squeeze, or squeeze only a dimension you created).")
    return ""


def _shape_hint(got: tuple[int, ...], args: tuple[Any, ...]) -> str:
    k, m, n = args[0].shape
    squeezed = _squeezed(got, (k, n))
    if squeezed:
        return squeezed
    if got == (n, k) and n != k:
        return " That is the result transposed, (n_features, n_instances): keep the instance dimension first."
    if got == (k, m):
        return " That is one value per hidden dimension: reduce over dim 1 (n_hidden), not dim 2 (n_features)."
    if got == (m, n):
        return " The instance dimension is gone: reduce over dim 1 (n_hidden), not dim 0."
    if got == (k, 1, n):
        return " Drop the kept dimension (keepdim=False) so the result is (n_instances, n_features)."
    return ""


def _gram_shape_hint(got: tuple[int, ...], args: tuple[Any, ...]) -> str:
    k, m, n = args[0].shape
    squeezed = _squeezed(got, (k, n, n))
    if squeezed:
        return squeezed
    if got == (k, m, m):
        return (" That is W W^T, the (n_hidden x n_hidden) Gram matrix of the hidden dimensions; W^T W compares "
                "features: entry [k, i, j] is W[k, :, i] . W[k, :, j].")
    if got == (n, n):
        return " The instance dimension is gone: compute W^T W for each instance separately (a batched matmul)."
    return ""


def _random_shape(seed: int) -> tuple[int, int, int]:
    """A random ``(n_instances, n_hidden, n_features)``, all three different (a wrong axis cannot match)."""
    k, m, n = (3 + torch.randperm(6, generator=secret_gen(("shape", seed)))[:3]).tolist()
    return k, m, n


def _W_any_shape(seed: int, **kw: Any) -> Case:
    return Case("random W of a random shape (n_instances, n_hidden, n_features all different)",
                lambda: (random_W(seed, *_random_shape(seed), **kw),))


def _short_columns() -> torch.Tensor:
    """Random features, about a third of them short but not zero (norms 0.001 to 0.008)."""
    W = random_W(16, 3, 4, 9).double()
    gen = secret_gen(17)
    short = torch.rand(3, 1, 9, generator=gen) < 0.35
    short[:, :, 0] = True
    lengths = 0.001 + 0.007 * torch.rand(3, 1, 9, generator=gen, dtype=torch.float64)
    W = torch.where(short, W / W.norm(dim=1, keepdim=True) * lengths, W)
    return W.float()


SHORT_COLUMNS = Case("W with short but non-zero columns (norms 0.001 to 0.008) among ordinary ones",
                     lambda: (_short_columns(),),
                     note="A short column is a feature like any other: only an exactly zero column gets 0.")


def _W(seed: int, k: int, m: int, n: int, **kw: Any) -> Case:
    rank = kw.get("rank")
    norms = kw.get("norms")
    label = kw.pop("label", None) or (
        f"random W of shape {(k, m, n)}" + (f" of rank {rank}" if rank else "") + (" with norms 0.005 to 0.1" if norms == TINY else "")
    )
    return Case(label, lambda: (random_W(seed, k, m, n, **kw),))


SHAPE_CASES = [_W(1, 3, 4, 7), _W(2, 1, 5, 3, label="one instance, W of shape (1, 5, 3)"),
               _W(3, 2, 3, 1, label="one feature, W of shape (2, 3, 1)")]
INPUT_CASE = _W(4, 2, 4, 5)


def _zero_columns() -> torch.Tensor:
    W = with_zero_columns(random_W(5, 3, 4, 6), [(0, 2), (1, 0), (1, 5)], instances=[2])
    W[2, :, 3] = torch.tensor([0.6, -0.2, 0.1, 0.3])
    return W


ZERO_COLUMNS = Case("W with zero columns (unlearned features) and an instance with one non-zero column",
                    lambda: (_zero_columns(),),
                    note="A zero column is an unlearned feature: its value is 0. Divide by the norm only where it is "
                         "non-zero (torch.where), or clamp the norm away from 0.")
TINY_NORMS = _W(6, 3, 4, 6, norms=TINY)
RANK_DEFICIENT = _W(7, 3, 5, 6, rank=2)


def _orthogonal() -> torch.Tensor:
    lengths = torch.tensor([[2.0, 0.5, 1.0, 0.3], [1.0, 1.0, 1.0, 1.0]])
    return torch.stack([rotation(10 + k, 6)[:, :4] * lengths[k] for k in range(2)])


def _antipodal() -> torch.Tensor:
    pair = torch.zeros(1, 3, 4)
    pair[0, :, 0] = torch.tensor([1.0, 0.0, 0.0])
    pair[0, :, 1] = torch.tensor([-0.5, 0.0, 0.0])
    pair[0, :, 2] = torch.tensor([0.3, 0.8, 0.0])
    pair[0, :, 3] = torch.tensor([0.0, 0.0, 1.2])
    return rotation(18, 3) @ pair  # turned off the axes by a secret rotation


# --------------------------------------------------------------------------- 03.feature_norms, 03.superposition, 03.gram

_FEATURES = "(n_instances, n_features)"

globals().update(tensor_properties(
    "feature_norms", function="feature_norms", reference=metrics.feature_norms, meaning=_FEATURES,
    shape=lambda W: (W.shape[0], W.shape[2]), points={"shape": 0.5, "inputs": 0.5, "values": 0.5, "edges": 0.5},
    mistakes=MISTAKES["feature_norms"], shape_cases=SHAPE_CASES, input_case=INPUT_CASE,
    value_cases=[_W(8, 4, 6, 6, label="square W of shape (4, 6, 6)"), RANK_DEFICIENT, _W(9, 2, 3, 8), _W_any_shape(19)],
    edge_cases=[ZERO_COLUMNS, TINY_NORMS, SHORT_COLUMNS], shape_hint=_shape_hint, prefix="norms",
))

globals().update(tensor_properties(
    "superposition", function="superposition", reference=metrics.superposition, meaning=_FEATURES,
    shape=lambda W: (W.shape[0], W.shape[2]), points={"shape": 0.5, "inputs": 0.5, "values": 1.5, "edges": 1.5},
    mistakes=MISTAKES["superposition"], shape_cases=SHAPE_CASES, input_case=INPUT_CASE,
    value_cases=[
        Case("orthogonal features of different lengths, rotated off the axes (every value 0)", lambda: (_orthogonal(),)),
        Case("an antipodal pair of unequal lengths (the measure is not symmetric) and a third feature", lambda: (_antipodal(),)),
        _W(11, 4, 5, 5), _W(12, 2, 3, 8), _W_any_shape(20),
    ],
    edge_cases=[ZERO_COLUMNS, TINY_NORMS, SHORT_COLUMNS, RANK_DEFICIENT, _W(13, 2, 4, 5, rank=1)],
    shape_hint=_shape_hint, prefix="superposition",
))

globals().update(tensor_properties(
    "gram", function="gram", reference=metrics.gram, meaning="(n_instances, n_features, n_features)",
    shape=lambda W: (W.shape[0], W.shape[2], W.shape[2]), points={"shape": 0.5, "inputs": 0.5, "values": 1.0},
    mistakes=MISTAKES["gram"], shape_cases=SHAPE_CASES, input_case=INPUT_CASE,
    value_cases=[_W(14, 3, 5, 5, label="square W of shape (3, 5, 5)"), _W(15, 2, 3, 6), RANK_DEFICIENT, TINY_NORMS,
                 _W_any_shape(21)],
    shape_hint=_gram_shape_hint, prefix="gram",
))


# --------------------------------------------------------------------------- 03.features_per_density
# Written out rather than generated: the threshold is drawn from the secret in every property (multiples of
# 1/64, exact in binary, so that norms placed exactly at it are ties whatever the dtype).


def _counts_shape_hint(got: tuple[int, ...], args: tuple[Any, ...]) -> str:
    k, n = args[0].shape
    if got == () and (k == 1 or n == 1):
        return (" A squeeze() dropped the size-1 dimension (one instance or one feature) before counting: keep "
                "norms two-dimensional and count over dim -1 (the features).")
    if got == (k, n):
        return " That looks like the mask of represented features: count them per instance (sum over the features, dim -1)."
    if got in ((), (1,)) and k > 1:
        return " That is one number for all instances: count per instance (sum over dim -1 only)."
    if got == (n,):
        return " It counted over the instances: count per instance (sum over dim -1, the features)."
    return ""


def _threshold(salt: object) -> float:
    """A random threshold: a multiple of 1/64 in [1/8, 7/8] other than the default 1/2 (exact in binary)."""
    choices = [i / 64 for i in range(8, 57) if i != 32]
    return choices[int(torch.randint(len(choices), (1,), generator=secret_gen(("threshold", salt))))]


def _sizes(salt: object, low: int, high: int, count: int = 2) -> list[int]:
    """``count`` different random sizes in ``[low, high]``."""
    return (low + torch.randperm(high - low + 1, generator=secret_gen(("sizes", salt)))[:count]).tolist()


def _tied_norms(salt: object, threshold: float = THRESHOLD) -> torch.Tensor:
    """Random ``(k, n)`` norms around ``threshold``, shuffled within each row. Every row holds features exactly
    at the threshold, a zero, a norm between the threshold and its square root (where the squared norm disagrees),
    one just above and one just below, one near 1, and random norms in [0, 1.3)."""
    k, n = _sizes(salt, 3, 6, 1)[0], _sizes(salt, 8, 13, 1)[0]
    gen = secret_gen(("tied", salt))
    t = threshold
    out = torch.rand(k, n, generator=gen, dtype=torch.float64) * 1.3
    for row in range(k):
        u = torch.rand(4, generator=gen, dtype=torch.float64).tolist()
        ties = 1 + row % 3
        fixed = [t] * ties + [0.0, (t + t**0.5) / 2, t + 0.01 + 0.2 * u[0], max(0.0, t - 0.01 - 0.2 * u[1]),
                              0.85 + 0.3 * u[2]]
        out[row, : len(fixed)] = torch.tensor(fixed, dtype=torch.float64)
        out[row] = out[row, torch.randperm(n, generator=gen)]
    return out.float()


def _sweep_like_norms(seed: int, m: int, n: int) -> torch.Tensor:
    """Norms like a trained sweep's: a random number of instances (5 to 9), instance k keeps about
    ``m (1 + k/2)`` features of length ~1, the rest ~0, and the last kept and first dropped near 0.5."""
    gen = secret_gen(seed)
    n_inst = int(torch.randint(5, 10, (1,), generator=gen))
    out = torch.empty(n_inst, n)
    for k in range(n_inst):
        kept = min(n, int(m * (1 + k / 2)))
        out[k, :kept] = 0.85 + 0.3 * torch.rand(kept, generator=gen)
        out[k, kept:] = 0.2 * torch.rand(n - kept, generator=gen)
        out[k, kept - 1] = 0.52
        if kept < n:
            out[k, kept] = 0.48
    return out[:, torch.randperm(n, generator=gen)]


def _with_zeros(salt: object) -> torch.Tensor:
    """Random norms of a random shape, about half of them exactly 0."""
    k, n = _sizes(salt, 2, 7)
    gen = secret_gen(("zeros", salt))
    norms = torch.rand(k, n, generator=gen)
    return torch.where(torch.rand(k, n, generator=gen) < 0.5, 0.0, norms)


def _counts_of(submission, norms: torch.Tensor, what: str, **kwargs: Any) -> torch.Tensor:
    before = norms.detach().clone()
    out = call(submission, norms, what="features_per_density", **kwargs)
    k = before.shape[0]
    return tensor_out(out, what=what, shape=(k,), meaning="(n_instances,)", kind="integer",
                      shape_hint=lambda got: _counts_shape_hint(got, (before,)))


def _expect_counts(submission, norms: torch.Tensor, what: str, label: str, **kwargs: Any) -> None:
    """The learner's counts on ``norms`` (and ``threshold`` if given) equal ``(norms > threshold).sum(-1)``."""
    plain = norms.detach().clone()
    got = _counts_of(submission, norms, what, **kwargs)
    want = (plain > kwargs.get("threshold", THRESHOLD)).sum(dim=-1)
    if torch.equal(got.cpu().long(), want):
        return
    w, g = fmt_pair(want, got)
    args = "".join(f", {k}={v!r}" for k, v in kwargs.items())
    diagnosis = diagnose(MISTAKES["features_per_density"], got, [plain], kwargs)
    raise CheckFailed(f"{what}: features_per_density(norms{args}) on {label}: expected {w}, got {g}.{diagnosis}")


@prop("features_per_density", points=0.5)
def test_counts_shape(submission):
    gen = secret_gen("shape")
    k, n = _sizes("shape", 2, 9)
    for label, shape in [(f"norms of shape {(k, n)}", (k, n)), ("one instance", (1, n)), ("one feature", (k, 1))]:
        _counts_of(submission, torch.rand(*shape, generator=gen) * 1.2, f"Shape ({label})")
    _counts_of(submission, torch.rand(k, n, generator=gen) * 1.2, f"Shape (norms of shape {(k, n)}, a threshold)",
               threshold=_threshold("shape"))


@prop("features_per_density", points=0.5)
def test_counts_inputs(submission):
    norms, t = _sweep_like_norms(41, 5, 20), _threshold("inputs")
    for label, arg in [("float64 norms", norms.double()),
                       ("norms as an nn.Parameter, requires_grad=True", as_parameter(norms))]:
        what = f"Inputs ({label})"
        try:
            _expect_counts(submission, arg, what, "norms like a sweep's", threshold=t)
        except CheckFailed as err:
            text = str(err) if str(err).startswith(what) else f"{what}: {err}"
            raise CheckFailed(f"{text} Hint: stay in torch (a .numpy() round-trip fails on tensors that require grad; "
                              ".detach() first if you need one).") from None


@prop("features_per_density", points=0.5)
def test_counts_values(submission):
    _expect_counts(submission, _tied_norms("values"), "Values", "random norms, some exactly at the default threshold 0.5")
    _expect_counts(submission, _sweep_like_norms(42, 5, 20), "Values", "norms like the n=20, m=5 sweep's", threshold=0.2)
    _expect_counts(submission, _sweep_like_norms(43, 20, 80), "Values", "norms like the n=80, m=20 sweep's",
                   threshold=0.95)


@prop("features_per_density", points=0.5)
def test_counts_edges(submission):
    _expect_counts(submission, _tied_norms("edge 0.5"), "Edge case (norms exactly at the threshold)",
                   "norms, some exactly at the threshold 0.5", threshold=0.5)
    for salt in ("edge 1", "edge 2"):
        t = _threshold(salt)
        _expect_counts(submission, _tied_norms(salt, t), "Edge case (norms exactly at the threshold)",
                       f"norms, some exactly at the threshold {t:g}", threshold=t)
    _expect_counts(submission, _with_zeros("edge"), "Edge case (zero norms, threshold 0)",
                   "norms of which about half are exactly 0", threshold=0.0)


# --------------------------------------------------------------------------- 03.feature_bars

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
    return rotation(20, 4) @ W


def _inputs(W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return metrics.feature_norms(W), metrics.superposition(W)


def _draw(submission, norms: torch.Tensor, sup: torch.Tensor, titles=None, what: str = "Figure") -> dict:
    args = (norms, sup) if titles is None else (norms, sup, list(titles))
    fig = call(submission, *args, what="feature_bars")
    data = figure_data(fig)  # read where the figure was made: plain data only
    expect(
        data.get("kind") == "figure",
        f"{what}: feature_bars should return a matplotlib Figure, got {data.get('type', describe(fig))}. "
        "Hint: build it with `fig = Figure(...)` (from matplotlib.figure) or `fig, axes = plt.subplots(...)`, and `return fig`.",
    )
    return data


def _panels_of(submission, norms, sup, what: str, titles=None) -> list[dict]:
    """The learner's panels, checked to be one per instance with one bar per feature."""
    panels = B.panels(_draw(submission, norms, sup, titles, what))
    k, n = norms.shape
    counts = [len(p["bars"]) for p in panels]
    hint = ""
    if len(panels) == 1 and counts[0] == k * n and k > 1:
        hint = " Every instance's bars are in one axes: give each instance its own panel."
    elif not panels:
        hint = " No axes holds bars: draw them with ax.barh (or ax.bar)."
    expect(
        len(panels) == k and all(c == n for c in counts),
        f"{what}: for norms of shape (n_instances, n_features) = {(k, n)} the figure should have one axes of bars "
        f"per instance ({k}), each with one bar per feature ({n}); found {len(panels)} axes with bars, holding "
        f"{counts} bars.{hint}",
    )
    return panels


def _seen(panel: dict) -> tuple[list[float], list[list[float]]]:
    """The panel's bar lengths and colours in the order a reader sees them (top to bottom, or left to right)."""
    order = B.display_order(panel)
    lengths = B.lengths(panel)
    return [lengths[i] for i in order], [panel["bars"][i]["color"] for i in order]


@prop("feature_bars", points=0.75)
def test_bars_figure_and_panels(submission):
    norms, sup = _inputs(random_W(30, 3, 4, 9))
    _panels_of(submission, norms, sup, "Panels")
    _panels_of(submission, *_inputs(random_W(31, 1, 2, 5)), "Panels (one instance)")
    titles = ["1-S = 1", "1-S = 0.1", "1-S = 0.01"]
    got = [p["title"] for p in _panels_of(submission, norms, sup, "Panels", titles)]
    expect(got == titles, f"Panels: with titles={titles}, panel k should be titled titles[k]; got titles {got}. "
                          "Hint: ax.set_title(titles[k]).")
    got = [p["title"] for p in _panels_of(submission, norms, sup, "Panels")]
    want = [f"instance {k}" for k in range(3)]
    expect(got == want, f"Panels: with titles=None, the panels should be titled {want} (the default the docstring "
                        f"promises); got {got}.")


@prop("feature_bars", points=0.25)
def test_bars_inputs(submission):
    W = random_W(33, 2, 3, 6)
    norms, sup = _inputs(W)
    for label, a, b in [("float64 norms and superpositions", norms.double(), sup.double()),
                        ("norms and superpositions that require grad", as_parameter(norms), as_parameter(sup))]:
        try:
            panels = _panels_of(submission, a, b, f"Inputs ({label})")
        except CheckFailed as err:
            raise CheckFailed(f"{err} Hint: stay in torch or .detach() before .numpy() (a tensor that requires grad "
                              "cannot become a NumPy array; requires_grad inputs come from a model's W).") from None
        for k, p in enumerate(panels):
            got, _ = _seen(p)
            expect(np.allclose(got, norms[k].tolist(), rtol=1e-4, atol=1e-6),
                   f"Inputs ({label}): panel {k}'s bars should have lengths {fmt(norms[k])}, got {fmt(got)}.")


@prop("feature_bars", points=1)
def test_bars_lengths_and_order(submission):
    norms, sup = _inputs(random_W(32, 3, 4, 9))
    panels = _panels_of(submission, norms, sup, "Bar lengths")
    for k, p in enumerate(panels):
        want = norms[k].tolist()
        got, _ = _seen(p)
        if np.allclose(got, want, rtol=1e-4, atol=1e-6):
            continue
        drawn = B.lengths(p)
        hint = ""
        if np.allclose(drawn, want, rtol=1e-4, atol=1e-6) or np.allclose(got[::-1], want, rtol=1e-4, atol=1e-6):
            hint = (" The right lengths, but feature 0 is not at the top: the docstring promises feature 0 at the top "
                    "(barh puts y = 0 at the bottom: invert the y axis, ax.invert_yaxis() or ax.set_ylim(n - 0.5, -0.5)).")
        elif np.allclose(got, np.square(want), rtol=1e-4, atol=1e-6):
            hint = " They are the squared norms: the bar length is ||W_i||."
        elif np.allclose(got, sup[k].tolist(), rtol=1e-4, atol=1e-6):
            hint = " They are the superpositions: the length is the norm (first argument), the colour the superposition."
        elif any(np.allclose(got, norms[j].tolist(), rtol=1e-4, atol=1e-6) for j in range(len(panels)) if j != k):
            hint = " They are another instance's norms: panel k shows instance k."
        elif np.allclose(sorted(got), sorted(want), rtol=1e-4, atol=1e-6):
            hint = " The right lengths in another order: draw bar i for feature i, in feature order."
        expect(False, f"Bar lengths: panel {k}'s bars, top to bottom, should have lengths ||W_i|| = {fmt(want)} "
                      f"(feature 0 at the top); got {fmt(got)}.{hint}")


@prop("feature_bars", points=0.5)
def test_bars_axis_limits(submission):
    W = random_W(34, 2, 3, 6, norms=(0.3, 1.0))
    W[0, :, 1] *= 1.45 / W[0, :, 1].norm()  # a bar longer than 1.4
    norms, sup = _inputs(W)
    for k, p in enumerate(_panels_of(submission, norms, sup, "Axis limits")):
        horizontal = p["bars"][0]["orientation"] == "horizontal"
        value_lim = sorted(p["xlim"] if horizontal else p["ylim"])
        longest = max(B.lengths(p))
        expect(value_lim[0] <= 1e-9 and value_lim[1] >= longest * (1 - 1e-6),
               f"Axis limits: panel {k}'s {'x' if horizontal else 'y'} axis shows {fmt(value_lim, 3)} but its longest "
               f"bar is {longest:.3g}: the limits cut off data. Start the axis at 0 and end it past the longest bar "
               "(leave the limits to matplotlib, or use max(1.1, 1.05 * norms.max())).")
        pos_lim = sorted(p["ylim"] if horizontal else p["xlim"])
        ends = [(b["y"], b["y"] + b["height"]) if horizontal else (b["x"], b["x"] + b["width"]) for b in p["bars"]]
        inside = all(pos_lim[0] <= min(e) + 1e-6 and max(e) <= pos_lim[1] + 1e-6 for e in ends)
        expect(inside, f"Axis limits: panel {k}'s {'y' if horizontal else 'x'} axis shows {fmt(pos_lim, 3)}, which "
                       "cuts off some bars: every feature's bar must be visible.")


def _colour_panels(submission) -> tuple[list[list[float]], list[list[float]], torch.Tensor]:
    W = _colour_W()
    norms, sup = _inputs(W)
    p0, p1 = _panels_of(submission, norms, sup, "Colours")
    return _seen(p0)[1], _seen(p1)[1], sup


@prop("feature_bars", points=0.75)
def test_bars_colour_by_superposition(submission):
    c0, c1, sup = _colour_panels(submission)
    norm_hint = (" Your colours follow the bars' lengths: colour encodes the superposition sum_{j != i} (W_hat_i . W_j)^2 "
                 "(the second argument), which the length does not show.")
    for group, s_value, lengths in [((4, 5, 6), 0, "0.8, 0.3 and 0"), ((1, 3), 1, "0.5 and 0.71")]:
        expect(all(B.same_colour(c0[group[0]], c0[i]) for i in group[1:]),
               f"Colours: features {', '.join(map(str, group))} of instance 0 all have superposition {s_value} "
               f"(lengths {lengths}), so their bars should have the same colour; got "
               f"{[B.rgba(c0[i]) for i in group]}." + norm_hint)
    for k, i, j in [(0, 0, 4), (0, 1, 4), (0, 0, 1), (0, 0, 2), (0, 2, 3), (1, 2, 4), (1, 3, 4), (1, 2, 3)]:
        cols = c0 if k == 0 else c1
        expect(not B.same_colour(cols[i], cols[j], tol=0.02),
               f"Colours: in instance {k}, features {i} and {j} have superposition {sup[k, i].item():.2f} and "
               f"{sup[k, j].item():.2f}, so their bars should have visibly different colours; both are "
               f"{B.rgba(cols[i])}. Hint: colour each bar with cmap(superposition), e.g. CMAP or "
               "matplotlib.colormaps['viridis'].")


@prop("feature_bars", points=0.75)
def test_bars_colour_scale(submission):
    c0, c1, _ = _colour_panels(submission)
    for i, s_value in [(2, 0.5), (4, 0.0)]:
        expect(B.same_colour(c0[i], c1[i]),
               f"Colour scale: feature {i} has superposition {s_value:g} in both instances, but its colour differs "
               f"between the panels ({B.rgba(c0[i])} vs {B.rgba(c1[i])}). Use one colour scale for every panel: fixed "
               "limits 0 and 1, not each panel's own minimum and maximum.")
    clipped = [c0[1], c0[3], c1[0], c1[1], c1[3]]
    expect(all(B.same_colour(clipped[0], c) for c in clipped[1:]),
           "Colour scale: superpositions of 1 and more should all get the colour of 1 (the scale is clipped at 1); "
           f"superpositions 1, 1, 2.25, 1.44 and 1 got {[B.rgba(c) for c in clipped]}. Hint: cmap(min(s, 1)), or "
           "Normalize(0, 1, clip=True).")
    lum = [B.luminance(c) for c in (c0[4], c0[0], c0[2], c0[1])]
    steps = [b - a for a, b in zip(lum, lum[1:])]
    expect(all(s > 1e-3 for s in steps) or all(s < -1e-3 for s in steps),
           "Colour scale: the colours of superposition 0, 0.25, 0.5 and 1 should get steadily lighter (or steadily "
           f"darker) so that the colour can be read as an amount; their luminances are {fmt(lum, 3)}. Hint: use a "
           "sequential colormap such as CMAP, 'viridis', 'magma' or 'Reds', not a rainbow or diverging one.")


