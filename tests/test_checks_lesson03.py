"""Lesson 3's checks bite and are fair: every known mistake loses points with a message that names it,
and correct implementations written in other ways keep full marks.

The wrong implementations are the check module's mistake tables (``lesson03.MISTAKES``), the same
definitions the checks diagnose with; the correct alternatives are here.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib import colormaps
from matplotlib.colors import Normalize

from autograder.checks import lesson03
from autograder.exercises import get_exercise
from autograder.toolkit.testing import assert_full_marks, assert_rejected, grade
from lesson_tools import solution_namespace

LESSON = "03-measuring-superposition"
NAMES = ["feature_norms", "superposition", "gram", "feature_bars", "features_per_density"]


@pytest.fixture(scope="module")
def ns():
    return solution_namespace(LESSON)


def test_points_per_exercise():
    assert [get_exercise(f"03.{n}").points for n in NAMES] == [2, 4, 2, 4, 2]


@pytest.mark.parametrize("name", NAMES)
def test_the_solution_keeps_full_marks_quickly(ns, name):
    verdict = grade(f"03.{name}", ns[name])
    assert verdict.passed, verdict.report()
    assert verdict.seconds < 15, f"{name}: {verdict.seconds:.1f} s"


MISTAKES = [(name, m) for name in NAMES for m in lesson03.MISTAKES[name]]


@pytest.mark.parametrize("name, mistake", MISTAKES, ids=[f"{n}-{m.name}" for n, m in MISTAKES])
def test_every_mistake_loses_points_and_is_named(name, mistake):
    assert_rejected(f"03.{name}", mistake)


def test_every_exercise_has_at_least_eight_mistakes():
    assert all(len(lesson03.MISTAKES[n]) >= 8 for n in NAMES), {n: len(lesson03.MISTAKES[n]) for n in NAMES}


# --------------------------------------------------------------------------- correct alternatives


def _unit_where(W):
    n = W.norm(dim=1, keepdim=True)
    return torch.where(n > 0, W / torch.where(n > 0, n, torch.ones_like(n)), torch.zeros_like(W))


def _sup_loop(W):
    k, _, n = W.shape
    out = torch.zeros(k, n, dtype=W.dtype)
    for a in range(k):
        for i in range(n):
            norm = W[a, :, i].norm()
            if norm == 0:
                continue
            for j in range(n):
                if j != i:
                    out[a, i] += (W[a, :, i] @ W[a, :, j] / norm) ** 2
    return out


def _sup_float64(W):
    Wd = W.detach().double()
    norms = Wd.norm(dim=1)
    G = torch.einsum("kmi,kmj->kij", Wd, Wd)
    sq = G.square() / (norms.square()[:, :, None] + 1e-300)
    sq = sq * (1 - torch.eye(W.shape[-1], dtype=torch.float64))
    return sq.sum(-1).to(W.dtype)


def _sup_mask(W):
    unit = _unit_where(W)
    overlaps = torch.bmm(unit.transpose(1, 2), W)
    mask = ~torch.eye(W.shape[-1], dtype=torch.bool)
    return (overlaps.square() * mask).sum(-1)


def _bars_pyplot(norms, superposition, titles=None):
    import matplotlib.pyplot as plt

    k, n = norms.shape
    fig, axes = plt.subplots(1, k, squeeze=False)
    for i, ax in enumerate(axes[0]):
        colours = colormaps["viridis"](Normalize(0, 1, clip=True)(superposition[i].detach().numpy()))
        ax.barh(np.arange(n), norms[i].detach().numpy(), color=colours)
        ax.invert_yaxis()
        ax.set_title(titles[i] if titles else f"instance {i}")
    return fig


def _bars_vertical(norms, superposition, titles=None):
    from matplotlib.figure import Figure

    k, n = norms.shape
    fig = Figure()
    for i in range(k):
        ax = fig.add_subplot(1, k, i + 1)
        for j in range(n):  # one call per bar, in feature order, left to right
            s = min(float(superposition[i, j]), 1.0)
            ax.bar([j], [float(norms[i, j])], color=colormaps["magma"](s))
        ax.set_title(titles[i] if titles is not None else f"instance {i}")
    return fig


def _bars_reversed_positions(norms, superposition, titles=None):
    from matplotlib.figure import Figure

    norms, sup = norms.detach().double(), superposition.detach().double()
    k, n = norms.shape
    fig = Figure(layout="constrained")
    axes = fig.subplots(1, k, squeeze=False)[0]
    for i, ax in enumerate(axes):
        ax.barh(list(range(n - 1, -1, -1)), norms[i].tolist(), color=colormaps["Reds"](sup[i].clamp(0, 1).tolist()))
        ax.set_xlim(0, max(1.1, 1.05 * norms.max().item()))
        ax.set_title((titles or [f"instance {a}" for a in range(k)])[i])
    return fig


CORRECT = {
    "feature_norms": [
        lambda W: torch.linalg.vector_norm(W, dim=1),
        lambda W: torch.einsum("kmi,kmi->ki", W, W).sqrt(),
        lambda W: torch.stack([w.T.norm(dim=1) for w in W]),
        lambda W: W.double().square().sum(dim=-2).sqrt().to(W.dtype),
    ],
    "superposition": [_sup_loop, _sup_float64, _sup_mask],
    "gram": [
        lambda W: torch.einsum("kmi,kmj->kij", W, W),
        lambda W: torch.bmm(W.transpose(1, 2), W),
        lambda W: torch.stack([w.T @ w for w in W]),
        lambda W: (W.double().unsqueeze(-1) * W.double().unsqueeze(-2)).sum(1).to(W.dtype),
    ],
    "feature_bars": [_bars_pyplot, _bars_vertical, _bars_reversed_positions],
    "features_per_density": [
        lambda norms, threshold=0.5: (norms > threshold).long().sum(-1),
        lambda norms, threshold=0.5: torch.where(norms > threshold, 1, 0).sum(dim=1),
        lambda norms, threshold=0.5: torch.tensor([sum(1 for v in row.tolist() if v > threshold) for row in norms]),
        lambda norms, threshold=0.5: torch.count_nonzero(norms.detach() > threshold, dim=-1),
    ],
}
ALTERNATIVES = [(name, i, fn) for name, fns in CORRECT.items() for i, fn in enumerate(fns)]


@pytest.mark.parametrize("name, index, impl", ALTERNATIVES, ids=[f"{n}-{i}" for n, i, _ in ALTERNATIVES])
def test_correct_alternatives_keep_full_marks(name, index, impl):
    assert_full_marks(f"03.{name}", impl)


def test_every_exercise_has_three_correct_alternatives():
    assert all(len(CORRECT[n]) >= 3 for n in NAMES)


def test_a_superposition_mistake_costs_points_only_in_superposition(ns):
    # feature_bars and features_per_density take the norms and superpositions: graded on their own.
    wrong = lesson03.MISTAKES["superposition"][0].implementation
    assert not grade("03.superposition", wrong).passed
    for name in ("feature_bars", "features_per_density"):
        assert grade(f"03.{name}", ns[name]).passed
