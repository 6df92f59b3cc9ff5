"""supercourse.plots.phase_diagrams: the phase-change figure, checked through its artists."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from matplotlib.collections import QuadMesh
from matplotlib.colors import to_rgb

from supercourse import phase, plots, theory

R_AXIS = phase.log_axis(0.1, 10.0, 6)
P_AXIS = phase.log_axis(0.01, 1.0, 5)


def _mesh_colors(ax) -> torch.Tensor:
    (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
    arr = mesh.get_array()
    return torch.as_tensor(arr.data if hasattr(arr, "data") else arr, dtype=torch.float64)[..., :3]


def test_labels_and_fractions_side_by_side_on_log_axes():
    labels = theory.phase_diagram(R_AXIS, P_AXIS)
    fractions = torch.nn.functional.one_hot(labels, 3).double()
    fractions[0, 0] = torch.tensor([0.5, 0.0, 0.5])
    fig = plots.phase_diagrams({"theory": labels, "trained": fractions}, R_AXIS, P_AXIS)
    axes = fig.axes
    assert len(axes) == 2
    assert [ax.get_title() for ax in axes] == ["theory", "trained"]
    for ax in axes:
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        assert ax.get_xlim()[0] < 0.01 < 1.0 < ax.get_xlim()[1]
        assert ax.get_ylim()[0] < 0.1 < 10.0 < ax.get_ylim()[1]
    left, right = _mesh_colors(axes[0]), _mesh_colors(axes[1])
    assert left.shape == (6, 5, 3)
    palette = torch.tensor([to_rgb(c) for c in plots.PHASE_COLORS[:3]], dtype=torch.float64)
    assert torch.allclose(left, palette[labels])
    # A half-and-half cell is the average of the two phase colours.
    assert torch.allclose(right[0, 0], (palette[0] + palette[2]) / 2)
    assert torch.allclose(right[1:], left[1:])
    legend = fig.legends[0]
    names = [t.get_text() for t in legend.get_texts()]
    assert names[:3] == list(theory.PHASES) and any("triple point" in n for n in names)


def test_triple_point_and_boundary_are_drawn():
    labels = theory.phase_diagram(R_AXIS, P_AXIS)
    fig = plots.phase_diagrams({"a": labels}, R_AXIS, P_AXIS, boundary=theory.phase_diagram)
    ax = fig.axes[0]
    stars = [l for l in ax.get_lines() if l.get_marker() == "*"]
    assert len(stars) == 1
    assert stars[0].get_xdata()[0] == pytest.approx(4 / 7) and stars[0].get_ydata()[0] == pytest.approx(1.0)
    assert len(ax.collections) > 1  # the mesh plus contour lines
    fig = plots.phase_diagrams({"a": labels}, R_AXIS, P_AXIS, triple_point=None)
    assert not [l for l in fig.axes[0].get_lines() if l.get_marker() == "*"]


def test_n3m2_phases_and_other():
    labels = theory.phase_diagram_n3m2(R_AXIS, P_AXIS)
    labels[0, 0] = phase.OTHER
    fig = plots.phase_diagrams({"n3": labels}, R_AXIS, P_AXIS, phases=phase.PHASES_N3M2_EMPIRICAL)
    names = [t.get_text() for t in fig.legends[0].get_texts()]
    assert names[:5] == list(phase.PHASES_N3M2_EMPIRICAL)
    assert torch.allclose(_mesh_colors(fig.axes[0])[0, 0], torch.tensor(to_rgb(plots.PHASE_COLORS[4]), dtype=torch.float64))


@pytest.mark.parametrize(
    "diagrams, match",
    [
        ({}, "non-empty mapping"),
        ({"a": torch.zeros(5, 6, dtype=torch.long)}, r"shape \(R, P\) = \(6, 5\)"),
        ({"a": torch.full((6, 5), 3)}, "labels outside"),
        ({"a": torch.zeros(6, 5, 4)}, r"\(R, P, n_phases\) = \(6, 5, 3\)"),
        ({"a": torch.zeros(6, 5)}, "integer labels"),
    ],
)
def test_bad_diagrams_are_explained(diagrams, match):
    with pytest.raises(ValueError, match=match):
        plots.phase_diagrams(diagrams, R_AXIS, P_AXIS)


def test_bad_axes_are_explained():
    labels = theory.phase_diagram(R_AXIS, P_AXIS)
    with pytest.raises(ValueError, match="increasing"):
        plots.phase_diagrams({"a": labels}, R_AXIS.flip(0), P_AXIS)
    with pytest.raises(ValueError, match="positive"):
        plots.phase_diagrams({"a": labels}, R_AXIS, P_AXIS - 1)
    with pytest.raises(TypeError, match="torch.Tensor"):
        plots.phase_diagrams({"a": labels.tolist()}, R_AXIS, P_AXIS)
