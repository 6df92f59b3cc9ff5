"""supercourse.geometry's additions for lesson 5: the dimensionality lines and shape tallies."""

import math
from fractions import Fraction

import pytest
import torch

from supercourse.geometry import (
    DIMENSIONALITY_LINES,
    POLYTOPES,
    distance_to_lines,
    fraction_on_lines,
    shape_counts,
    tegum_factors,
)


def test_lines_are_the_polytope_fractions():
    assert list(DIMENSIONALITY_LINES.values()) == [
        Fraction(1), Fraction(3, 4), Fraction(2, 3), Fraction(1, 2), Fraction(2, 5), Fraction(3, 8)
    ]
    by_name = {name: (k, d) for (k, d), name in POLYTOPES.items()}
    for name, fraction in DIMENSIONALITY_LINES.items():
        k, d = by_name[name]
        assert fraction == Fraction(d, k)


def test_distance_to_lines():
    D = torch.tensor([[1.0, 0.74, 0.5, 0.0], [0.45, 0.39, 0.2, 2 / 3]])
    got = distance_to_lines(D)
    assert got.shape == D.shape
    assert torch.allclose(got, torch.tensor([[0.0, 0.01, 0.0, 0.375], [0.05, 0.01, 0.175, 0.0]]), atol=1e-6)


def test_fraction_on_lines_counts_represented_features_only():
    W = torch.zeros(3, 3, 6)
    W[0, 0, 0], W[0, 0, 1] = 1.0, -1.0  # a digon: on the 1/2 line
    W[0, 1, 2] = 1.0
    W[0, :, 3] = torch.tensor([0.0, 0.8, 0.6])  # overlaps feature 2 (cos 0.8): both at D_i = 0.61, off the lines
    W[0, 2, 5] = 0.2  # unlearned, not counted
    W[1, 0, 0] = 0.3  # nothing represented
    angles = torch.arange(5) * 2 * math.pi / 5
    W[2, :2, :5] = torch.stack([angles.cos(), angles.sin()])
    share = fraction_on_lines(W)
    assert share[0].item() == pytest.approx(2 / 4)
    assert math.isnan(share[1].item())
    assert share[2].item() == 1.0
    assert fraction_on_lines(W, tolerance=1.0)[0].item() == 1.0


def test_shape_counts():
    W = torch.zeros(2, 4, 7)
    W[0, 0, 0], W[0, 0, 1] = 1.0, -1.0
    W[0, 1, 2], W[0, 1, 3] = 1.0, -1.0
    W[0, 2, 4] = 1.0
    W[1, :2, 0] = torch.tensor([1.0, 0.0])
    W[1, :2, 1] = torch.tensor([0.6, 0.8])  # two features at 53 degrees: irregular
    assert shape_counts(tegum_factors(W)) == [
        {"digon": 2, "dedicated dimension": 1},
        {"2 features in 2 dimensions (irregular)": 1},
    ]
    assert shape_counts([[]]) == [{}]
