"""Lesson 06's figures (:mod:`supercourse.correlation_plots`): a colour per set, a legend that says what the sets
are, nothing drawn over anything else (issue 22)."""

from __future__ import annotations

import itertools

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from supercourse import plots  # noqa: E402
from supercourse.correlation_plots import collapse_curve, set_colors, set_directions, set_labels  # noqa: E402


def _W(n_instances=3, n_features=6, seed=0):
    return torch.randn(n_instances, 2, n_features, generator=torch.Generator().manual_seed(seed))


def _rgb_distance(a, b):
    return sum((x - y) ** 2 for x, y in zip(a[:3], b[:3])) ** 0.5


def test_a_set_has_one_hue_and_the_sets_are_told_apart():
    colors = set_colors(3, 2)
    assert len(colors) == 6
    partners = [_rgb_distance(colors[2 * k], colors[2 * k + 1]) for k in range(3)]
    strangers = [_rgb_distance(colors[i], colors[j]) for i, j in itertools.combinations(range(6), 2) if i // 2 != j // 2]
    assert min(strangers) > 0.25, strangers  # features 0-2 of the old figures were near-identical viridis shades
    assert all(0.1 < d < min(strangers) + 0.5 for d in partners), partners  # partners: dark and light of one hue
    assert set_labels(3, 2)[:3] == ["set 0: feature 0", "set 0: feature 1", "set 1: feature 2"]


@pytest.mark.parametrize("kind, words", [("correlated", "correlated sets"), ("anticorrelated", "anticorrelated sets")])
def test_the_legend_says_what_the_sets_are_and_nothing_about_importance(kind, words):
    fig = set_directions(_W(n_features=4), 2, kind, titles=["1-S = 0.1", "1-S = 0.05", "1-S = 0.02"])
    legend = fig.legends[0]
    title = legend.get_title().get_text()
    assert title.startswith(words) and "importance" not in title
    assert [t.get_text() for t in legend.get_texts()] == set_labels(2, 2)
    assert fig._suptitle is None  # the old suptitle ran into the legend's title (and called anticorrelated sets "correlated")


def test_no_title_overlaps_the_legend():
    fig = set_directions(_W(n_instances=8), 2, "correlated", titles=[f"1-S = {p}" for p in range(8)])
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    legend = fig.legends[0].get_window_extent(renderer)
    for ax in fig.axes:
        assert not ax.title.get_window_extent(renderer).overlaps(legend), ax.title.get_text()
        assert not ax.get_window_extent(renderer).overlaps(legend)


def test_feature_directions_keeps_its_default_and_checks_the_new_arguments():
    fig = plots.feature_directions_2d(_W(n_features=5))
    assert fig.legends[0].get_title().get_text() == "importance order"
    with pytest.raises(ValueError, match="colors must give one entry per feature"):
        plots.feature_directions_2d(_W(n_features=5), colors=["C0"] * 4)
    with pytest.raises(ValueError, match="labels must give one entry per feature"):
        plots.feature_directions_2d(_W(n_features=5), labels="abc")
    with pytest.raises(ValueError, match="kind must be one of"):
        set_directions(_W(), 2, "uncorrelated")
    with pytest.raises(ValueError, match="not a multiple of set_size"):
        set_directions(_W(n_features=5), 2)


def test_collapse_curve_counts_pairs_on_whole_numbers():
    fig = collapse_curve((0.01, 0.1, 0.5), [0, 1, 3], 3)
    ax = fig.axes[0]
    assert list(ax.get_yticks()) == [0, 1, 2, 3] and ax.get_xscale() == "log"
    assert list(ax.lines[0].get_ydata()) == [0, 1, 3]
    with pytest.raises(ValueError, match="equally long"):
        collapse_curve((0.1,), [0, 1], 3)
