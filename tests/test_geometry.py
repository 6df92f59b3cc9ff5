"""Tegum factors and polytope names on hand-built geometries."""

import math

import pytest
import torch

from supercourse.geometry import polytope_name, tegum_factors


def regular_polygon(k: int) -> torch.Tensor:
    ang = torch.arange(k) * 2 * math.pi / k
    return torch.stack([ang.cos(), ang.sin()])


def square_antiprism() -> torch.Tensor:
    pts = []
    for i in range(8):
        ang = i * math.pi / 4
        z = 1 if i % 2 == 0 else -1
        pts.append([math.cos(ang), math.sin(ang), z / math.sqrt(2)])  # the tight-frame height: D_i = 3/8
    return torch.nn.functional.normalize(torch.tensor(pts), dim=1).T


def test_tegum_product_of_pentagon_digon_and_dedicated():
    W = torch.zeros(1, 5, 10)
    W[0, :2, :5] = regular_polygon(5)
    W[0, 2, 5], W[0, 2, 6] = 1.0, -1.0
    W[0, 3, 7] = 1.0
    (factors,) = tegum_factors(W)
    assert [(f.features, f.dimension, f.name) for f in factors] == [
        ((0, 1, 2, 3, 4), 2, "pentagon"),
        ((5, 6), 1, "digon"),
        ((7,), 1, "dedicated dimension"),
    ]
    assert all(f.regular for f in factors)
    assert [float(f.fraction) for f in factors] == [0.4, 0.5, 1.0]


@pytest.mark.parametrize(
    "points, name, fraction",
    [
        (regular_polygon(3), "triangle", 2 / 3),
        (torch.tensor([[1.0, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]).T / math.sqrt(3), "tetrahedron", 3 / 4),
        (square_antiprism(), "square antiprism", 3 / 8),
    ],
)
def test_regular_polytopes_are_named(points, name, fraction):
    (factors,) = tegum_factors(points.unsqueeze(0))
    assert len(factors) == 1
    assert factors[0].name == name and factors[0].dimensionality == pytest.approx(fraction, abs=0.01)


def test_triangular_bipyramid_reads_as_triangle_plus_digon():
    # The paper's example: a tegum product shows as 2/3 and 1/2 points, not 3/5.
    W = torch.zeros(1, 3, 5)
    W[0, :2, :3] = regular_polygon(3)
    W[0, 2, 3], W[0, 2, 4] = 1.0, -1.0
    (factors,) = tegum_factors(W)
    assert sorted(f.name for f in factors) == ["digon", "triangle"]


def test_unlearned_features_are_skipped_and_irregular_shapes_flagged():
    W = torch.zeros(2, 2, 3)
    W[0, 0, 0] = 1.0  # one dedicated feature, two unlearned
    W[1, :, 0] = torch.tensor([1.0, 0.0])
    W[1, :, 1] = torch.tensor([0.6, 0.8])  # two features at 53 degrees: not a regular shape
    f0, f1 = tegum_factors(W)
    assert [f.features for f in f0] == [(0,)]
    assert len(f1) == 1 and f1[0].dimension == 2 and not f1[0].regular
    assert polytope_name(7, 4) == "7 features in 4 dimensions"
