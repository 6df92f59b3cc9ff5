"""Lesson 5's figures: D* against sparsity, the feature-dimensionality scatter, the pentagon study."""

import math

import pytest
import torch
from matplotlib.figure import Figure

from supercourse import metrics, plots
from supercourse.experiments import pentagon


def _sweep(n_inst=5, m=3, n=12, seed=0):
    W = torch.randn(n_inst, m, n, generator=torch.Generator().manual_seed(seed))
    return W, 20 ** -torch.linspace(0, 1, n_inst)


def test_dimensions_per_feature_curve():
    W, p = _sweep()
    fig = plots.dimensions_per_feature_curve(W, p)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    (line,) = [l for l in ax.lines if len(l.get_xdata()) == 5]
    assert torch.allclose(torch.tensor(line.get_xdata()), 1 / p.double())
    assert torch.allclose(torch.tensor(line.get_ydata()).float(), metrics.dimensions_per_feature(W))
    levels = sorted(l.get_ydata()[0] for l in ax.lines if len(l.get_xdata()) == 2)
    assert levels == [0.5, 1.0]


def test_dimensions_per_feature_curve_of_several_models_and_stored_densities():
    W, p = _sweep()
    fig = plots.dimensions_per_feature_curve({"a": W, "b": 2 * W}, p[:, None].expand(-1, 12))
    assert len([l for l in fig.axes[0].lines if len(l.get_xdata()) == 5]) == 2
    with pytest.raises(ValueError, match="one entry per instance"):
        plots.dimensions_per_feature_curve(W, p[:3])
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        plots.dimensions_per_feature_curve(W, p * 0)


def test_feature_dimensionality_scatter():
    W, p = _sweep()
    W[:, :, 0] = 0.0  # unlearned
    fig = plots.feature_dimensionality_scatter(W, p)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    points = sum(c.get_offsets().shape[0] for c in ax.collections)
    assert points == 5 * 12
    ys = torch.cat([torch.tensor(c.get_offsets()[:, 1]) for c in ax.collections]).sort().values
    assert torch.allclose(ys.float(), metrics.feature_dimensionality(W).flatten().sort().values, atol=1e-6)
    levels = sorted(round(l.get_ydata()[0], 4) for l in ax.lines if len(l.get_xdata()) == 2)
    assert levels == [0.375, 0.4, 0.5, round(2 / 3, 4), 0.75, 1.0]
    labels = " ".join(t.get_text() for t in ax.texts)
    for name in ("tetrahedron", "triangle", "digon", "pentagon", "square antiprism"):
        assert name in labels
    without = plots.feature_dimensionality_scatter(W, p, show_dimensions_per_feature=False)
    assert len(without.axes[0].lines) == len(ax.lines) - 1


def test_pentagon_study_figure():
    ratios = torch.tensor([1.0, 2.0, 4.0])
    W = torch.stack([pentagon.pentagon_W(), pentagon.pentagon_W(), pentagon.two_digons_W()])
    losses = torch.tensor([[1.0, 1.1, 1.5], [1.0, 1.02, 1.3], [1.05, 1.0, 2.0]])
    shapes = [["pentagon", "two digons", "digon"], ["pentagon", "two digons", "digon"], ["pentagon", "two digons", "x"]]
    fig = plots.pentagon_study(ratios, W, losses, shapes, kept=[0, 0, 1], transition=math.sqrt(8), panels=3)
    assert len(fig.axes) == 4
    assert [ax.get_title() for ax in fig.axes[:3]] == ["×1: pentagon", "×2: pentagon", "×4: two digons"]
    bottom = fig.axes[3]
    assert bottom.get_xscale() == "log"
    labels = [t.get_text() for t in bottom.get_legend().get_texts()]
    assert labels[:3] == ["pentagon", "two digons", "other"] and any("transition" in t for t in labels)
    with pytest.raises(ValueError, match="one kept model per ratio"):
        plots.pentagon_study(ratios, W[:2], losses, shapes, [0, 0, 1])
    with pytest.raises(ValueError, match="shapes must have"):
        plots.pentagon_study(ratios, W, losses, shapes[:2], [0, 0, 1])
