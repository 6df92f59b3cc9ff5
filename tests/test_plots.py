"""supercourse.plots: figures come back (never shown), laid out as grids, inputs validated."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from supercourse import History, ToyModel, plots, train

matplotlib.use("Agg")


def random_W(n_instances: int = 3, n_hidden: int = 2, n_features: int = 5, seed: int = 0) -> torch.Tensor:
    return torch.randn(n_instances, n_hidden, n_features, generator=torch.Generator().manual_seed(seed))


def grid_shape(fig: Figure) -> tuple[int, int]:
    spec = fig.axes[0].get_subplotspec().get_gridspec()
    return spec.nrows, spec.ncols


def cell(ax) -> tuple[int, int]:
    spec = ax.get_subplotspec()
    return spec.rowspan.start, spec.colspan.start


@pytest.fixture(autouse=True)
def no_show(monkeypatch):
    """Fail any test whose code calls pyplot.show, and check no pyplot figure is left open."""
    import matplotlib.pyplot as plt

    def forbidden(*args, **kwargs):
        raise AssertionError("plots must never call pyplot.show")

    monkeypatch.setattr(plt, "show", forbidden)
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before, "plots must not register figures with pyplot"


# --------------------------------------------------------------------------- titles


def test_density_titles_from_floats_and_model_buffers():
    assert plots.density_titles([1.0, 0.3, 0.03, 0.001]) == ["1-S = 1", "1-S = 0.3", "1-S = 0.03", "1-S = 0.001"]
    assert plots.density_titles(0.5) == ["1-S = 0.5"]
    model = ToyModel(4, 2, n_instances=2, feature_probability=torch.tensor([1.0, 0.05]))
    assert plots.density_titles(model.feature_probability) == ["1-S = 1", "1-S = 0.05"]


def test_density_titles_mixed_densities_show_the_mean():
    p = torch.tensor([[0.1, 0.3], [0.2, 0.2]])
    assert plots.density_titles(p) == ["mean 1-S = 0.2", "1-S = 0.2"]


def test_density_titles_rejects_3d():
    with pytest.raises(ValueError, match="feature_probability"):
        plots.density_titles(torch.ones(2, 2, 2))


# --------------------------------------------------------------------------- feature bars


def test_feature_bars_one_panel_per_instance_plus_colorbar():
    titles = plots.density_titles([1.0, 0.1, 0.01])
    fig = plots.feature_bars(random_W(3), titles=titles)
    assert isinstance(fig, Figure)
    panels = fig.axes[:-1]
    assert len(fig.axes) == 3 + 1
    assert [ax.get_title() for ax in panels] == titles
    assert grid_shape(fig) == (1, 3)
    assert all(len(ax.patches) == 5 for ax in panels)  # one bar per feature


def test_feature_bars_wraps_many_instances_into_rows():
    fig = plots.feature_bars(random_W(10))
    assert len(fig.axes) == 10 + 1
    assert grid_shape(fig) == (2, 5)
    assert plots.feature_bars(random_W(10), ncols=3).axes[0].get_subplotspec().get_gridspec().ncols == 3


def test_feature_bars_mapping_gives_one_row_per_model():
    W = random_W(4)
    fig = plots.feature_bars({"linear": W, "ReLU": W * 0.5}, titles=plots.density_titles([1, 0.3, 0.1, 0.03]))
    panels = fig.axes[:-1]
    assert len(panels) == 8
    assert grid_shape(fig) == (2, 4)
    assert cell(panels[4]) == (1, 0)
    assert "ReLU" in panels[4].get_ylabel() and "linear" in panels[0].get_ylabel()


def test_feature_bars_length_is_norm_and_colour_is_superposition():
    # feature 0 and 1 antipodal (superposition 1), feature 2 alone (0), feature 3 unlearned
    W = torch.tensor([[[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.7, 0.0]]])
    ax = plots.feature_bars(W).axes[0]
    widths = [p.get_width() for p in ax.patches]
    assert widths == pytest.approx([1.0, 1.0, 0.7, 0.0])
    colors = [p.get_facecolor() for p in ax.patches]
    assert colors[2][:3] == pytest.approx((0.0, 0.0, 0.0))  # orthogonal: black
    assert colors[0] == pytest.approx(to_rgba(plots._SUPERPOSITION_COLORS[-1]))  # superposition 1: the top colour


def test_feature_bars_accepts_parameters_that_require_grad():
    W = random_W(2).requires_grad_()
    assert isinstance(plots.feature_bars(W), Figure)


# --------------------------------------------------------------------------- gram heatmaps


def test_gram_heatmaps_with_bias_column_and_symmetric_scale():
    W, b = random_W(3, 2, 5), torch.randn(3, 5)
    fig = plots.gram_heatmaps(W, b, titles=plots.density_titles([1.0, 0.1, 0.01]))
    assert len(fig.axes) == 3 + 1
    assert fig.axes[1].get_title() == "1-S = 0.1"
    image = fig.axes[0].images[0]
    data = np.ma.getdata(image.get_array())
    assert data.shape == (5, 5 + 2)  # W^T W, a blank column, then b
    gram = (W[0].T @ W[0]).numpy()
    assert data[:, :5] == pytest.approx(gram, abs=1e-6)
    assert data[:, 6] == pytest.approx(b[0].numpy())
    lo, hi = image.get_clim()
    assert lo == pytest.approx(-hi) and hi >= abs(gram).max() - 1e-6
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["WᵀW", "b"]


def test_gram_heatmaps_without_bias_and_for_several_models():
    W = random_W(2, 3, 4)
    assert plots.gram_heatmaps(W).axes[0].images[0].get_array().shape == (4, 4)
    fig = plots.gram_heatmaps({"a": W, "b": W}, {"a": torch.zeros(2, 4), "b": torch.ones(2, 4)})
    assert len(fig.axes) == 4 + 1
    assert grid_shape(fig) == (2, 2)


def test_gram_heatmaps_bad_bias():
    with pytest.raises(ValueError, match=r"b must have shape \(n_instances=3, n_features=5\)"):
        plots.gram_heatmaps(random_W(3, 2, 5), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="b"):
        plots.gram_heatmaps({"x": random_W()}, torch.zeros(3, 5))


# --------------------------------------------------------------------------- 2-D directions


def test_feature_directions_2d_draws_each_column_from_the_origin():
    W = random_W(4, 2, 5)
    fig = plots.feature_directions_2d(W, titles=plots.density_titles([1, 0.5, 0.2, 0.05]))
    assert len(fig.axes) == 4
    assert fig.axes[3].get_title() == "1-S = 0.05"
    ax = fig.axes[0]
    segments = [line for line in ax.lines if line.get_label().startswith("feature")]
    assert len(segments) == 5
    for i, line in enumerate(segments):
        assert list(line.get_xdata()) == pytest.approx([0.0, W[0, 0, i].item()])
        assert list(line.get_ydata()) == pytest.approx([0.0, W[0, 1, i].item()])
    assert len(fig.legends) == 1 and len(fig.legends[0].get_texts()) == 5


def test_feature_directions_2d_needs_two_hidden_dimensions():
    with pytest.raises(ValueError, match=r"W must have shape \(n_instances, n_hidden=2, n_features\)"):
        plots.feature_directions_2d(random_W(2, 3, 5))


# --------------------------------------------------------------------------- training curves


@pytest.fixture(scope="module")
def history() -> History:
    model = ToyModel(5, 2, n_instances=3, feature_probability=torch.tensor([1.0, 0.3, 0.1]), seed=0)
    return train(model, steps=30, seed=0, progress=False, log_every=5)


def test_training_curves_log_scale_one_line_per_instance(history):
    fig = plots.training_curves(history, labels=plots.density_titles([1.0, 0.3, 0.1]))
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert len(ax.lines) == 3
    assert list(ax.lines[0].get_xdata()) == history.steps.tolist()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["1-S = 1", "1-S = 0.3", "1-S = 0.1"]


def test_training_curves_of_several_models(history):
    fig = plots.training_curves({"linear": history, "ReLU": history})
    assert [ax.get_title() for ax in fig.axes] == ["linear", "ReLU"]


def test_training_curves_rejects_non_histories(history):
    with pytest.raises(TypeError, match="history must be a supercourse History"):
        plots.training_curves(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="labels"):
        plots.training_curves(history, labels=["only one"])


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "fn", [plots.feature_bars, plots.gram_heatmaps, plots.feature_directions_2d], ids=lambda f: f.__name__
)
def test_bad_W_shapes_raise_naming_W(fn):
    with pytest.raises(ValueError, match=r"^W must have shape"):
        fn(torch.zeros(2, 5))
    with pytest.raises(TypeError, match="W must be a torch.Tensor"):
        fn([[1.0, 2.0]])
    with pytest.raises(TypeError, match="W must be a floating-point tensor"):
        fn(torch.zeros(1, 2, 3, dtype=torch.long))


@pytest.mark.parametrize("fn", [plots.feature_bars, plots.gram_heatmaps, plots.feature_directions_2d])
def test_titles_must_match_instances(fn):
    with pytest.raises(ValueError, match="titles must be a sequence of n_instances=3"):
        fn(random_W(3), titles=["a", "b"])


def test_figures_save_as_png(tmp_path):
    path = tmp_path / "bars.png"
    plots.feature_bars(random_W(2)).savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_module_never_calls_show():
    import inspect

    assert ".show(" not in inspect.getsource(plots)
