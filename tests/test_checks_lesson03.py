"""Lesson 3's checks bite: the solution notebook scores full marks, plausible mistakes lose points.

Each mutant is a mistake a learner could really make. The test asserts that it
loses points and that a failing property's message names the mistake (a
keyword from the message the learner would read).
"""

from __future__ import annotations

import pytest
import torch
from matplotlib import colormaps
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from autograder import run_exercise
from autograder.checks import lesson03
from autograder.exercises import get_exercise
from lesson_tools import assert_rejected as _assert_rejected, failure_messages as _messages, solution_namespace
from supercourse import metrics

LESSON = "03-measuring-superposition"
NAMES = ["feature_norms", "superposition", "gram", "feature_bars", "features_per_density"]


@pytest.fixture(scope="module")
def ns():
    return solution_namespace(LESSON)


# --------------------------------------------------------------------------- the registry


def test_points_per_exercise():
    assert [get_exercise(f"03.{n}").points for n in NAMES] == [2, 4, 2, 4, 2]


def test_checks_are_fast(ns):
    # Grading one lesson takes under a minute: every exercise's checks run in a few seconds.
    for name in NAMES:
        verdict = run_exercise(f"03.{name}", ns[name])
        assert verdict.seconds < 15, f"{name}: {verdict.seconds:.1f} s"


# --------------------------------------------------------------------------- 03.feature_norms


def norms_over_features(W):
    return W.norm(dim=2)


def norms_over_instances(W):
    return W.norm(dim=0)


def norms_keepdim(W):
    return W.norm(dim=1, keepdim=True)


def squared_norms(W):
    return W.square().sum(dim=1)


def l1_norms(W):
    return W.abs().sum(dim=1)


def norms_of_rows_square(W):
    # Right shape whenever n_hidden == n_features, wrong axis.
    return W.norm(dim=2) if W.shape[1] == W.shape[2] else W.norm(dim=1)


def norms_from_the_reference(W):
    from supercourse import metrics as m

    return m.feature_norms(W)


@pytest.mark.parametrize(
    "impl, keyword",
    [
        (norms_over_features, "reduce over dim 1"),
        (norms_over_instances, "instance dimension is gone"),
        (norms_keepdim, "keepdim"),
        (squared_norms, "squared norms"),
        (l1_norms, "L1 norm"),
        (norms_of_rows_square, "lengths of W's rows"),
        (norms_from_the_reference, "implement this yourself"),
    ],
    ids=lambda v: v.__name__ if callable(v) else "",
)
def test_feature_norms_mutants(impl, keyword):
    _assert_rejected("03.feature_norms", impl, keyword)


# --------------------------------------------------------------------------- 03.superposition


def _safe_unit(W):
    n = W.norm(dim=1, keepdim=True)
    return torch.where(n > 1e-8, W / n.clamp_min(1e-8), torch.zeros_like(W))


def _off(W):
    return 1 - torch.eye(W.shape[-1], dtype=W.dtype)


def sup_unnormalised(W):
    return ((W.mT @ W).square() * _off(W)).sum(-1)


def sup_includes_self(W):
    return (_safe_unit(W).mT @ W).square().sum(-1)


def sup_nan_for_zero_columns(W):
    unit = W / W.norm(dim=1, keepdim=True)
    sq = (unit.mT @ W).square()
    return (sq * _off(W)).sum(-1)


def sup_cosines(W):
    u = _safe_unit(W)
    return ((u.mT @ u).square() * _off(W)).sum(-1)


def sup_not_squared(W):
    return ((_safe_unit(W).mT @ W) * _off(W)).sum(-1)


def sup_normalises_the_other(W):
    return ((W.mT @ _safe_unit(W)).square() * _off(W)).sum(-1)


def sup_max_instead_of_sum(W):
    return ((_safe_unit(W).mT @ W).square() * _off(W)).amax(-1)


def sup_wrong_axis(W):
    # Normalises rows and compares hidden dimensions: (n_instances, n_hidden).
    n = W.norm(dim=2, keepdim=True).clamp_min(1e-8)
    sq = ((W / n) @ W.mT).square()
    return sq.sum(-1) - sq.diagonal(dim1=-2, dim2=-1)


@pytest.mark.parametrize(
    "impl, keyword",
    [
        (sup_unnormalised, "without normalising"),
        (sup_includes_self, "includes j = i"),
        (sup_nan_for_zero_columns, "zero column"),
        (sup_cosines, "both vectors are normalised"),
        (sup_not_squared, "not squared"),
        (sup_normalises_the_other, "normalises W_j instead of W_i"),
        (sup_max_instead_of_sum, "should be"),
        (sup_wrong_axis, "reduce over dim 1"),
    ],
    ids=lambda v: v.__name__ if callable(v) else "",
)
def test_superposition_mutants(impl, keyword):
    _assert_rejected("03.superposition", impl, keyword)


def test_superposition_nan_mutant_loses_only_the_zero_column_point():
    verdict = run_exercise("03.superposition", sup_nan_for_zero_columns)
    failed = [p.test for p in verdict.properties if not p.passed]
    assert failed == ["test_superposition_zero_columns"]


# --------------------------------------------------------------------------- 03.gram


def gram_hidden(W):
    return W @ W.mT


def gram_cosines(W):
    u = _safe_unit(W)
    return u.mT @ u


def gram_first_instance(W):
    return (W[0].T @ W[0]).expand(W.shape[0], -1, -1)


def gram_summed_over_instances(W):
    return torch.einsum("kmi,kmj->ij", W, W)


def gram_squared(W):
    return (W.mT @ W).square()


def gram_square_shaped_transpose(W):
    return W @ W.mT if W.shape[1] == W.shape[2] else W.mT @ W


@pytest.mark.parametrize(
    "impl, keyword",
    [
        (gram_hidden, "W W^T"),
        (gram_cosines, "cosines"),
        (gram_first_instance, "instance 0's matrix"),
        (gram_summed_over_instances, "instance dimension is gone"),
        (gram_squared, "squared"),
        (gram_square_shaped_transpose, "W W^T"),
    ],
    ids=lambda v: v.__name__ if callable(v) else "",
)
def test_gram_mutants(impl, keyword):
    _assert_rejected("03.gram", impl, keyword)


# --------------------------------------------------------------------------- 03.feature_bars

INFERNO = colormaps["inferno"]


def _bars(W, titles=None, *, lengths=None, colours=None, one_axes=False):
    """A configurable feature-bar figure: ``lengths(W) -> (k, n)``, ``colours(W) -> (k, n, 4)``."""
    W = W.detach()
    k, _, n = W.shape
    lengths = (lengths or (lambda w: metrics.feature_norms(w)))(W)
    colours = (colours or (lambda w: INFERNO(metrics.superposition(w).clamp(max=1).numpy())))(W)
    titles = titles or [f"instance {i}" for i in range(k)]
    fig = Figure()
    if one_axes:
        ax = fig.add_subplot()
        ax.barh(range(k * lengths.shape[1]), lengths.flatten().tolist(), color=colours.reshape(-1, 4))
        return fig
    axes = fig.subplots(1, k, squeeze=False)[0]
    for i, ax in enumerate(axes):
        ax.barh(range(lengths.shape[1]), lengths[i].tolist(), color=colours[i])
        ax.set_title(titles[i])
    return fig


def bars_coloured_by_norm(W, titles=None):
    return _bars(W, titles, colours=lambda w: INFERNO(metrics.feature_norms(w).clamp(max=1).numpy()))


def bars_normalised_per_panel(W, titles=None):
    def colours(w):
        s = metrics.superposition(w)
        return INFERNO((s / s.amax(dim=1, keepdim=True).clamp_min(1e-8)).numpy())

    return _bars(W, titles, colours=colours)


def bars_not_clipped(W, titles=None):
    def colours(w):
        s = metrics.superposition(w)
        return INFERNO(Normalize(0, max(s.max().item(), 1e-8))(s.numpy()))

    return _bars(W, titles, colours=colours)


def bars_rainbow(W, titles=None):
    return _bars(W, titles, colours=lambda w: colormaps["jet"](metrics.superposition(w).clamp(max=1).numpy()))


def bars_one_colour(W, titles=None):
    return _bars(W, titles, colours=lambda w: INFERNO(torch.zeros(w.shape[0], w.shape[2]).numpy()))


def bars_squared_lengths(W, titles=None):
    return _bars(W, titles, lengths=lambda w: metrics.feature_norms(w).square())


def bars_one_axes(W, titles=None):
    return _bars(W, titles, one_axes=True)


def bars_per_hidden_dimension(W, titles=None):
    return _bars(
        W, titles,
        lengths=lambda w: w.norm(dim=2),
        colours=lambda w: INFERNO(torch.zeros(w.shape[0], w.shape[1]).numpy()),
    )


def bars_no_titles(W, titles=None):
    return _bars(W, None)


def bars_shown_not_returned(W, titles=None):
    _bars(W, titles)  # a learner who calls plt.show() and forgets `return fig`


def bars_sorted_by_norm(W, titles=None):
    return _bars(W, titles, lengths=lambda w: metrics.feature_norms(w).sort(dim=1, descending=True).values)


def bars_from_the_library(W, titles=None):
    from supercourse import plots

    return plots.feature_bars(W, titles=titles)


@pytest.mark.parametrize(
    "impl, keyword",
    [
        (bars_coloured_by_norm, "follow the bars' lengths"),
        (bars_normalised_per_panel, "one colour scale for every panel"),
        (bars_not_clipped, "clipped at 1"),
        (bars_rainbow, "sequential colormap"),
        (bars_one_colour, "visibly different colours"),
        (bars_squared_lengths, "squared norms"),
        (bars_one_axes, "in one axes"),
        (bars_per_hidden_dimension, "n_hidden bars"),
        (bars_no_titles, "titled titles[k]"),
        (bars_shown_not_returned, "should return a matplotlib Figure"),
        (bars_sorted_by_norm, "in feature order"),
        (bars_from_the_library, "implement this yourself"),
    ],
    ids=lambda v: v.__name__ if callable(v) else "",
)
def test_feature_bars_mutants(impl, keyword):
    _assert_rejected("03.feature_bars", impl, keyword)


def test_the_checks_agree_with_the_library_figure():
    # The checks inspect artists, not code: the reference library's feature_bars (black-red-gold colours,
    # a colorbar axes, its own layout) draws everything they ask for. Only the forbid list refuses it.
    from supercourse import plots

    draw = plots.feature_bars

    def library_bars(W, titles=None):
        return draw(W, titles=titles)

    verdict = run_exercise("03.feature_bars", library_bars)
    assert verdict.passed, verdict.report()


# --------------------------------------------------------------------------- 03.features_per_density


def counts_squared(W, threshold=0.5):
    return (W.square().sum(dim=1) > threshold).sum(dim=-1)


def counts_at_or_above(W, threshold=0.5):
    return (W.norm(dim=1) >= threshold).sum(dim=-1)


def counts_fixed_threshold(W, threshold=0.5):
    return (W.norm(dim=1) > 0.5).sum(dim=-1)


def counts_mask(W, threshold=0.5):
    return W.norm(dim=1) > threshold


def counts_total(W, threshold=0.5):
    return (W.norm(dim=1) > threshold).sum()


def counts_entries(W, threshold=0.5):
    return (W.abs().amax(dim=1) > threshold).sum(dim=-1)


def counts_rows(W, threshold=0.5):
    return (W.norm(dim=2) > threshold).sum(dim=-1)


def counts_paper_numbers(W, threshold=0.5):
    return torch.tensor([5, 7, 9, 10, 11, 12, 13][: W.shape[0]] + [13] * max(0, W.shape[0] - 7))


def counts_from_the_reference(W, threshold=0.5):
    from supercourse import metrics as m

    return m.n_represented(W, threshold)


@pytest.mark.parametrize(
    "impl, keyword",
    [
        (counts_squared, "squared norm"),
        (counts_at_or_above, "exactly equal to the threshold"),
        (counts_fixed_threshold, "threshold argument is ignored"),
        (counts_mask, "mask of represented features"),
        (counts_total, "one number for all instances"),
        (counts_entries, "single entries of W"),
        (counts_rows, "counts hidden dimensions"),
        (counts_paper_numbers, "with threshold 0.5"),
        (counts_from_the_reference, "implement this yourself"),
    ],
    ids=lambda v: v.__name__ if callable(v) else "",
)
def test_features_per_density_mutants(impl, keyword):
    _assert_rejected("03.features_per_density", impl, keyword)


def _defined_in_a_notebook(source: str, scope: dict):
    exec(compile(source, "<notebook cell>", "exec"), scope)
    return scope["features_per_density"]


def test_features_per_density_also_counts_the_learners_own_model(ns):
    import supercourse
    from supercourse.experiments import basic_results

    model = basic_results.make_model("relu", seed=3)
    supercourse.train(model, steps=30, seed=0, device="cpu", progress=False)
    source = "def features_per_density(W, threshold=0.5):\n    return (W.norm(dim=1) > threshold).sum(dim=-1)\n"
    good = _defined_in_a_notebook(source, {"torch": torch, lesson03.NOTEBOOK_MODEL: model})
    assert lesson03._learners_W(good) is not None
    assert run_exercise("03.features_per_density", good).passed

    # Right on every hand-made and seeded W, wrong on a trained sweep's (7 instances of 5 x 20 with
    # every norm known): such a function fails only through the learner's own model.
    trap = (
        "def features_per_density(W, threshold=0.5):\n"
        "    counts = (W.norm(dim=1) > threshold).sum(dim=-1)\n"
        "    return counts + int(W is relu_model.W.detach().cpu().float() or torch.equal(W, relu_model.W.detach()))\n"
    )
    bad = _defined_in_a_notebook(trap, {"torch": torch, lesson03.NOTEBOOK_MODEL: model})
    verdict = run_exercise("03.features_per_density", bad)
    assert not verdict.passed and "your own trained model" in _messages(verdict).lower()
    assert lesson03._learners_W(ns["features_per_density"]) is None  # the solution namespace trains nothing
