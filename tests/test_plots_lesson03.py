"""supercourse.plots.represented_by_density: lesson 3's features-per-dimension figure."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from supercourse import metrics, plots

matplotlib.use("Agg")

DENSITIES = (1.0, 0.1, 0.01)


def W_with_counts(counts: list[int], n_hidden: int, n_features: int) -> torch.Tensor:
    """Instance k has ``counts[k]`` columns of length 1 and the rest of length 0.1."""
    gen = torch.Generator().manual_seed(0)
    W = torch.randn(len(counts), n_hidden, n_features, generator=gen)
    W = W / W.norm(dim=1, keepdim=True)
    lengths = torch.full((len(counts), n_features), 0.1)
    for k, c in enumerate(counts):
        lengths[k, :c] = 1.0
    return W * lengths[:, None, :]


def data_lines(fig: Figure):
    (ax,) = fig.axes
    return [line for line in ax.get_lines() if line.get_marker() not in (None, "None", "")]  # not the guide line


def test_counts_against_sparsity_one_tensor():
    W = W_with_counts([5, 7, 12], n_hidden=5, n_features=20)
    fig = plots.represented_by_density(W, DENSITIES)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    (line,) = data_lines(fig)
    np.testing.assert_allclose(line.get_xdata(), [1.0, 10.0, 100.0])
    np.testing.assert_allclose(line.get_ydata(), [5, 7, 12])
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert "features represented" in ax.get_ylabel()
    assert not fig.legends  # one model: nothing to tell apart


def test_per_dimension_puts_two_sizes_on_one_scale():
    small = W_with_counts([5, 10, 13], n_hidden=5, n_features=20)
    large = W_with_counts([20, 40, 52], n_hidden=20, n_features=80)
    fig = plots.represented_by_density({"small": small, "large": large}, torch.tensor(DENSITIES), per_dimension=True)
    lines = data_lines(fig)
    assert [l.get_label() for l in lines] == ["small", "large"]
    np.testing.assert_allclose(lines[0].get_ydata(), [1.0, 2.0, 2.6])
    np.testing.assert_allclose(lines[1].get_ydata(), [1.0, 2.0, 2.6])
    assert lines[0].get_markersize() > lines[1].get_markersize()  # overlapping curves stay visible
    assert "per dimension" in fig.axes[0].get_ylabel()
    assert len(fig.legends) == 1
    fig.canvas.draw()  # renders without error


def test_threshold_and_per_model_densities():
    W = W_with_counts([3, 3], n_hidden=4, n_features=6)
    with torch.no_grad():
        W[:, :, 3] *= 6.0  # length 0.6: represented at 0.5, not at 0.7
    fig = plots.represented_by_density({"a": W}, {"a": [0.5, 0.05]}, threshold=0.7)
    (line,) = data_lines(fig)
    np.testing.assert_allclose(line.get_ydata(), metrics.n_represented(W, 0.7).numpy())
    np.testing.assert_allclose(line.get_xdata(), [2.0, 20.0])
    assert "0.7" in fig.axes[0].get_title()


@pytest.mark.parametrize(
    "W, densities, match",
    [
        (torch.zeros(3, 2, 4), (1.0, 0.1), "one entry per instance"),
        (torch.zeros(2, 2, 4), (1.0, 0.0), r"\(0, 1\]"),
        ({"a": torch.zeros(2, 2, 4)}, {"b": (1.0, 0.1)}, "keys of W"),
        (torch.zeros(2, 4), (1.0, 0.1), "W must have shape"),
    ],
)
def test_bad_inputs_name_the_argument(W, densities, match):
    with pytest.raises(ValueError, match=match):
        plots.represented_by_density(W, densities)
