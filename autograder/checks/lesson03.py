"""Lesson 3 checks: measuring superposition from a model's weights, and drawing it.

Five exercises, each graded on its own, compared with :mod:`supercourse` on
seeded inputs. Every answer is determined by its inputs, so comparisons are
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
  -> (n_instances,)`` integer counts, from the (reference's) norms.

The tensor exercises use the toolkit's property families (shape on sizes where
a wrong axis cannot match, float64 and ``nn.Parameter`` inputs, named value
cases, edge cases: zero columns, tiny norms, rank-deficient ``W``, ties at the
threshold) and diagnose with :data:`MISTAKES`, the table the tests also use.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from autograder.exercises import Exercise
from autograder.framework import CheckFailed, call, expect, figure_data, prop
from autograder.toolkit import TINY, Case, Mistake, describe, fmt, random_W, rotation, tensor_properties, with_zero_columns
from autograder.toolkit import bars as B
from autograder.toolkit.weights import as_parameter
from supercourse import metrics

LESSON = "03-measuring-superposition"
EXERCISES = {
    "feature_norms": Exercise(
        "feature_norms", "Feature norms ||W_i||", forbid=("metrics",), reference=("supercourse.metrics.feature_norms",)
    ),
    "superposition": Exercise(
        "superposition", "The superposition of each feature", forbid=("metrics", "unit_directions"),
        reference=("supercourse.metrics.superposition", "supercourse.metrics.unit_directions"),
    ),
    "gram": Exercise("gram", "W^T W for every instance", forbid=("metrics",), reference=("supercourse.metrics.gram",)),
    "feature_bars": Exercise(
        "feature_bars", "The feature-bar plot", forbid=("plots.feature_bars", "_draw_bars", "supercourse.plots"),
        reference=("supercourse.plots.feature_bars", "supercourse.plots._draw_bars"),
    ),
    "features_per_density": Exercise(
        "features_per_density",
        "State your numbers: features represented at each density",
        forbid=("n_represented", "metrics.represented"),
    ),
}

THRESHOLD = metrics.REPRESENTED_NORM


# --------------------------------------------------------------------------- the mistake tables


def _unit(W: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    n = W.norm(dim=1, keepdim=True)
    return torch.where(n > eps, W / n.clamp_min(eps), torch.zeros_like(W))


def _off(W: torch.Tensor) -> torch.Tensor:
    return 1 - torch.eye(W.shape[-1], dtype=W.dtype)


def _numpy_norms(W):
    return torch.from_numpy(np.linalg.norm(W.numpy(), axis=1))


def _numpy_gram(W):
    a = W.numpy()
    return torch.from_numpy(np.einsum("kmi,kmj->kij", a, a))


def _numpy_sup(W):
    a = W.numpy()
    n = np.linalg.norm(a, axis=1, keepdims=True)
    u = np.where(n > 1e-8, a / np.maximum(n, 1e-8), 0.0)
    sq = np.einsum("kmi,kmj->kij", u, a) ** 2
    return torch.from_numpy(sq.sum(-1) - np.einsum("kii->ki", sq)).to(W.dtype)


_DTYPE = "the input's dtype"
_GRAD = "requires_grad"

MISTAKES: dict[str, list[Mistake]] = {
    "feature_norms": [
        Mistake("rows", lambda W: W.norm(dim=2), "dim 1",
                "Those are the lengths of W's rows (hidden dimensions): feature i is the column W[k, :, i], so reduce over dim 1."),
        Mistake("over_instances", lambda W: W.norm(dim=0), "instance dimension is gone", compare=False),
        Mistake("keepdim", lambda W: W.norm(dim=1, keepdim=True), "keepdim", compare=False),
        Mistake("squared", lambda W: W.square().sum(dim=1), "squared norms",
                "You returned the squared norms ||W_i||^2: take the square root."),
        Mistake("l1", lambda W: W.abs().sum(dim=1), "L1 norm",
                "That is the L1 norm (sum of absolute values): ||W_i|| is the Euclidean length."),
        Mistake("largest_entry", lambda W: W.abs().amax(dim=1), "largest entry",
                "That is each column's largest entry |W_ki|: the length is sqrt of the sum of squares."),
        Mistake("mean_of_squares", lambda W: W.square().mean(dim=1).sqrt(), "mean",
                "That is sqrt of the mean of the squares, ||W_i|| / sqrt(n_hidden): sum the squares, do not average them."),
        Mistake("epsilon", lambda W: (W.square().sum(dim=1) + 1e-6).sqrt(), "epsilon",
                "An epsilon added inside the square root changes short columns (norms below 0.1): "
                "sqrt(x + 1e-6) is not sqrt(x) at that scale; no guard is needed here."),
        Mistake("float32", lambda W: W.float().norm(dim=1), _DTYPE, compare=False),
        Mistake("numpy", _numpy_norms, _GRAD, compare=False),
        Mistake("flattened", lambda W: W.norm(dim=1).reshape(-1), "another shape", compare=False),
    ],
    "superposition": [
        Mistake("unnormalised", lambda W: ((W.mT @ W).square() * _off(W)).sum(-1), "without normalising",
                "Your values match a version in which W_i . W_j is used without normalising W_i: divide column i "
                "by its norm first (W_hat_i = W_i / ||W_i||)."),
        Mistake("includes_self", lambda W: (_unit(W).mT @ W).square().sum(-1), "includes j = i",
                "Your values match a version whose sum includes j = i, which adds ||W_i||^2: leave out the diagonal."),
        Mistake("cosines", lambda W: ((_unit(W).mT @ _unit(W)).square() * _off(W)).sum(-1), "both vectors are normalised",
                "Your values match a version in which both vectors are normalised (a sum of squared cosines): only "
                "W_i is normalised, W_j keeps its length."),
        Mistake("not_squared", lambda W: ((_unit(W).mT @ W) * _off(W)).sum(-1), "not squared",
                "Your values match a version in which the overlaps are not squared: square each W_hat_i . W_j before summing."),
        Mistake("absolute", lambda W: ((_unit(W).mT @ W).abs() * _off(W)).sum(-1), "square the overlaps",
                "Your values match a sum of |W_hat_i . W_j|: square the overlaps instead."),
        Mistake("normalises_other", lambda W: ((W.mT @ _unit(W)).square() * _off(W)).sum(-1), "normalises W_j instead of W_i",
                "Your values match a version that normalises W_j instead of W_i: the sum over j is of (W_hat_i . W_j)^2."),
        Mistake("largest", lambda W: ((_unit(W).mT @ W).square() * _off(W)).amax(-1), "largest",
                "Your values match the largest squared overlap of each feature: sum over every j != i instead."),
        Mistake("nan_zero_columns", lambda W: ((W / W.norm(dim=1, keepdim=True)).mT @ W).square().mul(_off(W)).sum(-1),
                "zero column", compare=False),
        Mistake("epsilon", lambda W: (((W / (W.norm(dim=1, keepdim=True) + 1e-3)).mT @ W).square() * _off(W)).sum(-1),
                "epsilon",
                "Your values match W_i / (||W_i|| + epsilon) with a large epsilon, which shrinks short features "
                "(norms below 0.1): guard only the zero columns (torch.where on the norm), or use an epsilon "
                "like 1e-12."),
        Mistake("wrong_axis", lambda W: (lambda sq: sq.sum(-1) - sq.diagonal(dim1=-2, dim2=-1))(
            ((W / W.norm(dim=2, keepdim=True).clamp_min(1e-8)) @ W.mT).square()), "dim 1", compare=False),
        Mistake("float32", lambda W: (lambda V: ((_unit(V).mT @ V).square() * _off(V)).sum(-1))(W.float()), _DTYPE,
                compare=False),
        Mistake("numpy", _numpy_sup, _GRAD, compare=False),
    ],
    "gram": [
        Mistake("hidden", lambda W: W @ W.mT, "W W^T",
                "That is W W^T (hidden x hidden): W^T W has entry [i, j] = W_i . W_j for feature columns i, j."),
        Mistake("cosines", lambda W: _unit(W).mT @ _unit(W), "cosines",
                "Those are cosines: W^T W uses the columns as they are, not normalised (its diagonal is ||W_i||^2)."),
        Mistake("first_instance", lambda W: (W[0].T @ W[0]).expand(W.shape[0], -1, -1), "instance 0's matrix",
                "Every instance got instance 0's matrix: compute each instance's own W^T W."),
        Mistake("summed_instances", lambda W: torch.einsum("kmi,kmj->ij", W, W), "instance dimension is gone", compare=False),
        Mistake("squared", lambda W: (W.mT @ W).square(), "squared",
                "The entries are squared: W^T W is the plain matrix product."),
        Mistake("upper_triangle", lambda W: torch.triu(W.mT @ W), "symmetric",
                "Only the upper triangle is filled: W^T W is symmetric, entry [j, i] equals entry [i, j]."),
        Mistake("averaged", lambda W: W.mT @ W / W.shape[1], "divided",
                "Your entries are divided by n_hidden: W^T W is the plain sum over hidden dimensions."),
        Mistake("square_transpose", lambda W: W @ W.mT if W.shape[1] == W.shape[2] else W.mT @ W, "W W^T",
                "That is W W^T (hidden x hidden): W^T W has entry [i, j] = W_i . W_j for feature columns i, j."),
        Mistake("float32", lambda W: W.float().mT @ W.float(), _DTYPE, compare=False),
        Mistake("numpy", _numpy_gram, _GRAD, compare=False),
    ],
    "features_per_density": [
        Mistake("squared", lambda n, threshold=0.5: (n.square() > threshold).sum(-1), "squared norm",
                "Your counts match a version that compares the squared norm ||W_i||^2 with the threshold; compare ||W_i|| itself."),
        Mistake("at_or_above", lambda n, threshold=0.5: (n >= threshold).sum(-1), "exactly equal to the threshold",
                "Your counts match a version in which features with ||W_i|| exactly equal to the threshold count; a "
                "feature counts only when ||W_i|| > threshold."),
        Mistake("fixed_threshold", lambda n, threshold=0.5: (n > 0.5).sum(-1), "threshold argument is ignored",
                "Your counts match a version in which the threshold argument is ignored (0.5 is used): use the "
                "`threshold` you are given."),
        Mistake("below", lambda n, threshold=0.5: (n < threshold).sum(-1), "below",
                "Your counts are the features below the threshold: count those with ||W_i|| > threshold."),
        Mistake("sum_of_norms", lambda n, threshold=0.5: (n * (n > threshold)).sum(-1).round().long(), "sum of the norms",
                "Your counts match the sum of the norms above the threshold: count the features (a sum of the boolean mask)."),
        Mistake("mask", lambda n, threshold=0.5: n > threshold, "mask", compare=False),
        Mistake("total", lambda n, threshold=0.5: (n > threshold).sum(), "one number for all instances", compare=False),
        Mistake("over_instances", lambda n, threshold=0.5: (n > threshold).sum(0), "per instance", compare=False),
        Mistake("float_counts", lambda n, threshold=0.5: (n > threshold).float().sum(-1), "integers", compare=False),
        Mistake("fraction", lambda n, threshold=0.5: (n > threshold).float().mean(-1), "integers", compare=False),
        Mistake("numpy", lambda n, threshold=0.5: torch.from_numpy((n.numpy() > threshold).sum(-1)), _GRAD, compare=False),
    ],
}
"""Every exercise's known mistakes, by exercise (``feature_bars``'s are added below)."""


# --------------------------------------------------------------------------- inputs


def _shape_hint(got: tuple[int, ...], args: tuple[Any, ...]) -> str:
    k, m, n = args[0].shape
    if got == (k, m):
        return " That is one value per hidden dimension: reduce over dim 1 (n_hidden), not dim 2 (n_features)."
    if got == (m, n):
        return " The instance dimension is gone: reduce over dim 1 (n_hidden), not dim 0."
    if got == (k, 1, n):
        return " Drop the kept dimension (keepdim=False) so the result is (n_instances, n_features)."
    return ""


def _gram_shape_hint(got: tuple[int, ...], args: tuple[Any, ...]) -> str:
    k, m, n = args[0].shape
    if got == (k, m, m):
        return (" That is W W^T, the (n_hidden x n_hidden) Gram matrix of the hidden dimensions; W^T W compares "
                "features: entry [k, i, j] is W[k, :, i] . W[k, :, j].")
    if got == (n, n):
        return " The instance dimension is gone: compute W^T W for each instance separately (a batched matmul)."
    return ""


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
    return pair


# --------------------------------------------------------------------------- 03.feature_norms, 03.superposition, 03.gram

_FEATURES = "(n_instances, n_features)"

globals().update(tensor_properties(
    "feature_norms", function="feature_norms", reference=metrics.feature_norms, meaning=_FEATURES,
    shape=lambda W: (W.shape[0], W.shape[2]), points={"shape": 0.5, "inputs": 0.5, "values": 0.5, "edges": 0.5},
    mistakes=MISTAKES["feature_norms"], shape_cases=SHAPE_CASES, input_case=INPUT_CASE,
    value_cases=[_W(8, 4, 6, 6, label="square W of shape (4, 6, 6)"), RANK_DEFICIENT, _W(9, 2, 3, 8)],
    edge_cases=[ZERO_COLUMNS, TINY_NORMS], shape_hint=_shape_hint, prefix="norms",
))

globals().update(tensor_properties(
    "superposition", function="superposition", reference=metrics.superposition, meaning=_FEATURES,
    shape=lambda W: (W.shape[0], W.shape[2]), points={"shape": 0.5, "inputs": 0.5, "values": 1.5, "edges": 1.5},
    mistakes=MISTAKES["superposition"], shape_cases=SHAPE_CASES, input_case=INPUT_CASE,
    value_cases=[
        Case("orthogonal features of different lengths, rotated off the axes (every value 0)", lambda: (_orthogonal(),)),
        Case("an antipodal pair of unequal lengths (the measure is not symmetric) and a third feature", lambda: (_antipodal(),)),
        _W(11, 4, 5, 5), _W(12, 2, 3, 8),
    ],
    edge_cases=[ZERO_COLUMNS, TINY_NORMS, RANK_DEFICIENT, _W(13, 2, 4, 5, rank=1)],
    shape_hint=_shape_hint, prefix="superposition",
))

globals().update(tensor_properties(
    "gram", function="gram", reference=metrics.gram, meaning="(n_instances, n_features, n_features)",
    shape=lambda W: (W.shape[0], W.shape[2], W.shape[2]), points={"shape": 0.5, "inputs": 0.5, "values": 1.0},
    mistakes=MISTAKES["gram"], shape_cases=SHAPE_CASES, input_case=INPUT_CASE,
    value_cases=[_W(14, 3, 5, 5, label="square W of shape (3, 5, 5)"), _W(15, 2, 3, 6), RANK_DEFICIENT, TINY_NORMS],
    shape_hint=_gram_shape_hint, prefix="gram",
))


# --------------------------------------------------------------------------- 03.features_per_density


def _counts_shape_hint(got: tuple[int, ...], args: tuple[Any, ...]) -> str:
    k, n = args[0].shape
    if got == (k, n):
        return " That looks like the mask of represented features: count them per instance (sum over the features, dim -1)."
    if got in ((), (1,)) and k > 1:
        return " That is one number for all instances: count per instance (sum over dim -1 only)."
    if got == (n,):
        return " It counted over the instances: count per instance (sum over dim -1, the features)."
    return ""


def _hand_made_norms() -> torch.Tensor:
    """``(3, 6)`` chosen norms: ties at 0.5, 0.25 and 0.75 (exact in binary), zeros, lengths around 1."""
    return torch.tensor([[1.0, 0.9, 0.5, 0.45, 0.0, 0.15],
                         [1.1, 1.0, 0.98, 0.75, 0.6, 0.55],
                         [0.3, 0.25, 0.0, 0.0, 0.0, 0.05]])


def _sweep_like_norms(seed: int, n_inst: int, m: int, n: int) -> torch.Tensor:
    """Norms like a trained sweep's: instance k has about ``m (1 + k/2)`` features of length ~1, the rest ~0."""
    gen = torch.Generator().manual_seed(seed)
    out = torch.empty(n_inst, n)
    for k in range(n_inst):
        kept = min(n, int(m * (1 + k / 2)))
        out[k, :kept] = 0.85 + 0.3 * torch.rand(kept, generator=gen)
        out[k, kept:] = 0.2 * torch.rand(n - kept, generator=gen)
        out[k, kept - 1] = 0.52
        if kept < n:
            out[k, kept] = 0.48
    return out


def _norms_case(label: str, make, **kwargs: Any) -> Case:
    return Case(label, lambda: (make(),), kwargs)


def _ref_counts(norms: torch.Tensor, threshold: float = THRESHOLD) -> torch.Tensor:
    return (norms > threshold).sum(dim=-1)


globals().update(tensor_properties(
    "features_per_density", function="features_per_density", reference=_ref_counts, meaning="(n_instances,)",
    shape=lambda norms, threshold=THRESHOLD: (norms.shape[0],), kind="integer",
    points={"shape": 0.5, "inputs": 0.5, "values": 0.5, "edges": 0.5},
    mistakes=MISTAKES["features_per_density"], argument="norms",
    shape_cases=[
        _norms_case("norms of shape (3, 6)", _hand_made_norms),
        _norms_case("one instance, norms of shape (1, 4)", lambda: torch.tensor([[0.9, 0.2, 0.7, 0.1]])),
        _norms_case("one feature, norms of shape (4, 1)", lambda: torch.tensor([[0.9], [0.2], [0.7], [0.1]])),
    ],
    input_case=_norms_case("seeded norms like the n=20, m=5 sweep", lambda: _sweep_like_norms(41, 7, 5, 20)),
    value_cases=[
        _norms_case("hand-made norms at the default threshold", _hand_made_norms),
        _norms_case("seeded norms like the n=20, m=5 sweep", lambda: _sweep_like_norms(41, 7, 5, 20), threshold=0.2),
        _norms_case("seeded norms like the n=80, m=20 sweep", lambda: _sweep_like_norms(42, 7, 20, 80), threshold=0.95),
    ],
    edge_cases=[
        _norms_case("norms exactly at the threshold 0.5", _hand_made_norms, threshold=0.5),
        _norms_case("norms exactly at the threshold 0.25", _hand_made_norms, threshold=0.25),
        _norms_case("norms exactly at the threshold 0.75", _hand_made_norms, threshold=0.75),
        _norms_case("all-zero norms", lambda: torch.zeros(2, 5), threshold=0.0),
    ],
    shape_hint=_counts_shape_hint, prefix="counts",
))


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


def _bars(norms, sup, titles=None, *, lengths=None, colours=None, one_axes=False, top=True, xlim=None,
          default_titles=True):
    """A configurable feature-bar figure, for the mistake table: ``lengths(norms, sup)``, ``colours(norms, sup)``."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    norms, sup = norms.detach(), sup.detach()
    k, n = norms.shape
    lengths = (lengths or (lambda a, s: a))(norms, sup)
    colours = (colours or (lambda a, s: colormaps["inferno"](s.clamp(max=1).numpy())))(norms, sup)
    titles = titles or ([f"instance {i}" for i in range(k)] if default_titles else [""] * k)
    fig = Figure()
    if one_axes:
        fig.add_subplot().barh(range(k * n), lengths.flatten().tolist(), color=np.asarray(colours).reshape(-1, 4))
        return fig
    for i, ax in enumerate(fig.subplots(1, k, squeeze=False)[0]):
        ax.barh(range(n), lengths[i].tolist(), color=colours[i])
        if top:
            ax.invert_yaxis()
        if xlim is not None:
            ax.set_xlim(*xlim)
        ax.set_title(titles[i])
    return fig


def _cmap(name: str):
    from matplotlib import colormaps

    return lambda a, s: colormaps[name](s.clamp(max=1).numpy())


def _per_panel(a, s):
    from matplotlib import colormaps

    return colormaps["inferno"]((s / s.amax(dim=1, keepdim=True).clamp_min(1e-8)).numpy())


def _unclipped(a, s):
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    return colormaps["inferno"](Normalize(0, max(s.max().item(), 1e-8))(s.numpy()))


def _bars_numpy(norms, sup, titles=None):
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    fig = Figure()
    for i, ax in enumerate(fig.subplots(1, norms.shape[0], squeeze=False)[0]):
        ax.barh(np.arange(norms.shape[1]), norms.numpy()[i], color=colormaps["viridis"](np.minimum(sup.numpy()[i], 1)))
        ax.invert_yaxis()
        ax.set_title((titles or [f"instance {k}" for k in range(norms.shape[0])])[i])
    return fig


def _bar_mistake(name: str, keyword: str, **options) -> Mistake:
    return Mistake(name, lambda norms, sup, titles=None: _bars(norms, sup, titles, **options), keyword, compare=False)


MISTAKES["feature_bars"] = [
    _bar_mistake("coloured_by_norm", "follow the bars' lengths", colours=lambda a, s: _cmap("inferno")(a, a)),
    _bar_mistake("normalised_per_panel", "one colour scale for every panel", colours=_per_panel),
    _bar_mistake("not_clipped", "clipped at 1", colours=_unclipped),
    _bar_mistake("rainbow", "sequential colormap", colours=_cmap("jet")),
    _bar_mistake("one_colour", "visibly different colours", colours=lambda a, s: _cmap("inferno")(a, 0 * s)),
    _bar_mistake("squared_lengths", "squared norms", lengths=lambda a, s: a.square()),
    _bar_mistake("lengths_are_superpositions", "they are the superpositions", lengths=lambda a, s: s),
    _bar_mistake("one_axes", "in one axes", one_axes=True),
    _bar_mistake("feature_0_at_the_bottom", "feature 0 at the top", top=False),
    _bar_mistake("fixed_limits", "cut off", xlim=(0, 1)),
    _bar_mistake("sorted_by_norm", "in feature order", lengths=lambda a, s: a.sort(dim=1, descending=True).values),
    _bar_mistake("no_default_titles", "the default the docstring", default_titles=False),
    Mistake("titles_ignored", lambda norms, sup, titles=None: _bars(norms, sup, None), "titled titles[k]", compare=False),
    Mistake("not_returned", lambda norms, sup, titles=None: (_bars(norms, sup, titles), None)[1],
            "should return a matplotlib Figure", compare=False),
    Mistake("numpy", _bars_numpy, "requires grad", compare=False),
]
"""``feature_bars``'s mistakes: caught by the figure properties' own hints (``compare=False``)."""
