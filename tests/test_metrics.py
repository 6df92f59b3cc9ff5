"""supercourse.metrics on hand-built weights with known answers, plus invariances and input checks."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from supercourse import metrics as M


def polygon(k: int, scale: float = 1.0) -> torch.Tensor:
    """``k`` unit vectors at angles ``2 pi j / k`` in 2-D: ``W: (1, 2, k)``."""
    a = 2 * math.pi * torch.arange(k, dtype=torch.float64) / k
    return scale * torch.stack([a.cos(), a.sin()])[None]


def stack(*cols) -> torch.Tensor:
    """Columns (lists) -> ``W: (1, m, n)``."""
    W = torch.tensor(cols, dtype=torch.float64).T
    return W[None]


# ---------------------------------------------------------------- hand-built geometries


def test_orthogonal_basis():
    W = torch.eye(4, dtype=torch.float64)[None]
    assert torch.allclose(M.gram(W), torch.eye(4, dtype=torch.float64)[None])
    assert torch.allclose(M.feature_norms(W), torch.ones(1, 4, dtype=torch.float64))
    assert torch.equal(M.superposition(W), torch.zeros(1, 4, dtype=torch.float64))
    assert torch.allclose(M.feature_dimensionality(W), torch.ones(1, 4, dtype=torch.float64))
    assert torch.allclose(M.dimensions_per_feature(W), torch.ones(1, dtype=torch.float64))
    assert M.n_represented(W).tolist() == [4]
    assert M.n_in_superposition(W).tolist() == [0]
    assert M.antipodal_pairs(W) == [[]]


def test_antipodal_pair():
    W = stack([1.0], [-1.0])  # m = 1, n = 2
    assert torch.allclose(M.superposition(W), torch.ones(1, 2, dtype=torch.float64))
    assert torch.allclose(M.feature_dimensionality(W), torch.full((1, 2), 0.5, dtype=torch.float64))
    assert torch.allclose(M.dimensions_per_feature(W), torch.tensor([0.5], dtype=torch.float64))
    assert M.antipodal_pairs(W) == [[(0, 1)]]
    assert M.n_in_superposition(W).tolist() == [2]


def test_two_antipodal_pairs_in_2d():
    W = stack([1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0])
    assert M.antipodal_pairs(W) == [[(0, 2), (1, 3)]]
    assert torch.allclose(M.feature_dimensionality(W), torch.full((1, 4), 0.5, dtype=torch.float64))
    assert torch.allclose(M.superposition(W), torch.ones(1, 4, dtype=torch.float64))


@pytest.mark.parametrize("k, d_i, interference", [(3, 2 / 3, 1 / 2), (5, 2 / 5, 3 / 2), (6, 1 / 3, 2.0), (8, 1 / 4, 3.0)])
def test_regular_polygons(k, d_i, interference):
    # k unit vectors forming a tight frame in 2-D: sum_j cos^2 = k / 2, so D_i = 2/k
    W = polygon(k)
    assert torch.allclose(M.feature_dimensionality(W), torch.full((1, k), d_i, dtype=torch.float64))
    assert torch.allclose(M.superposition(W), torch.full((1, k), interference, dtype=torch.float64))
    assert torch.allclose(M.dimensions_per_feature(W), torch.tensor([2 / k], dtype=torch.float64))
    assert M.feature_dimensionality(W).sum().item() == pytest.approx(2.0)  # efficiently packed: sum D_i = m


def test_pentagon_has_no_antipodal_pairs():
    assert M.antipodal_pairs(polygon(5)) == [[]]
    assert M.n_in_superposition(polygon(5)).tolist() == [5]


def test_tetrahedron_in_3d():
    v = torch.tensor([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=torch.float64) / math.sqrt(3)
    W = v.T[None]
    assert torch.allclose(M.feature_dimensionality(W), torch.full((1, 4), 3 / 4, dtype=torch.float64))


def test_tegum_product_triangle_and_digon():
    # a triangle in dims (0, 1) and an antipodal pair in dim 2: orthogonal subspaces
    tri = polygon(3)[0]
    W = torch.zeros(1, 3, 5, dtype=torch.float64)
    W[0, :2, :3] = tri
    W[0, 2, 3], W[0, 2, 4] = 1.0, -1.0
    D = M.feature_dimensionality(W)[0]
    assert torch.allclose(D, torch.tensor([2 / 3, 2 / 3, 2 / 3, 1 / 2, 1 / 2], dtype=torch.float64))
    assert D.sum().item() == pytest.approx(3.0)
    assert M.dimensions_per_feature(W).item() == pytest.approx(3 / 5)
    assert M.antipodal_pairs(W) == [[(3, 4)]]


def test_unlearned_zero_column_gives_zeros_never_nan():
    W = torch.zeros(2, 2, 3)
    W[0, 0, 0] = 1.0
    W[0, 1, 1] = 1.0  # instance 0: features 0, 1 dedicated, feature 2 zero; instance 1: all zero
    for out in (
        M.unit_directions(W),
        M.superposition(W),
        M.feature_dimensionality(W),
        M.dimensions_per_feature(W),
        M.feature_norms(W),
        M.gram(W),
    ):
        assert not torch.isnan(out).any()
    assert torch.equal(M.unit_directions(W)[:, :, 2], torch.zeros(2, 2))
    assert M.superposition(W)[0].tolist() == [0.0, 0.0, 0.0]
    assert M.feature_dimensionality(W).tolist() == [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    assert M.dimensions_per_feature(W).tolist() == [1.0, 0.0]
    assert M.n_represented(W).tolist() == [2, 0]
    assert M.antipodal_pairs(W) == [[], []]


def test_small_unlearned_column_does_not_count():
    # a nearly-zero feature overlapping a learned one: not represented, tiny D_i
    W = stack([1.0, 0.0], [0.0, 1.0], [1e-3, 0.0])
    assert M.represented(W).tolist() == [[True, True, False]]
    assert M.feature_dimensionality(W)[0, 2].item() < 1e-5
    assert M.n_in_superposition(W).tolist() == [0]  # the represented ones see only 1e-6 interference


def test_unit_directions():
    W = stack([3.0, 4.0], [0.0, -2.0])
    U = M.unit_directions(W)
    assert torch.allclose(U[0].T, torch.tensor([[0.6, 0.8], [0.0, -1.0]], dtype=torch.float64))


def test_represented_threshold():
    W = stack([0.4, 0.0], [0.0, 0.6], [0.9, 0.0])
    assert M.feature_norms(W)[0].tolist() == pytest.approx([0.4, 0.6, 0.9])
    assert M.represented(W).tolist() == [[False, True, True]]
    assert M.n_represented(W, threshold=0.3).tolist() == [3]
    assert M.n_represented(W, threshold=0.95).tolist() == [0]
    assert M.REPRESENTED_NORM == 0.5


def test_n_in_superposition_threshold():
    # two features at 80 degrees: interference cos^2(80) = 0.030 each
    a = math.radians(80)
    W = stack([1.0, 0.0], [math.cos(a), math.sin(a)])
    assert M.n_in_superposition(W).tolist() == [0]
    assert M.n_in_superposition(W, threshold=0.01).tolist() == [2]


def test_antipodal_pair_needs_both_represented_and_clean():
    # pair (0, 1) is antipodal; feature 2 is weak (not represented) so it does not spoil the pair
    W = stack([1.0, 0.0], [-1.0, 0.0], [0.3, 0.0])
    assert M.antipodal_pairs(W) == [[(0, 1)]]
    # a represented third feature along the same axis spoils it
    W2 = stack([1.0, 0.0], [-1.0, 0.0], [0.8, 0.2])
    assert M.antipodal_pairs(W2) == [[]]
    # opposite but one of them unrepresented
    W3 = stack([1.0, 0.0], [-0.3, 0.0])
    assert M.antipodal_pairs(W3) == [[]]
    # cosine -0.8 is not below the default -0.9
    W4 = stack([1.0, 0.0], [-0.8, 0.6])
    assert M.antipodal_pairs(W4) == [[]]
    assert M.antipodal_pairs(W4, cosine=-0.7) == [[(0, 1)]]


def test_several_instances_are_measured_separately():
    W = torch.cat([torch.eye(2, 3, dtype=torch.float64)[None], polygon(3)], dim=0)  # (2, 2, 3)
    D = M.feature_dimensionality(W)
    assert D[0].tolist() == pytest.approx([1.0, 1.0, 0.0])
    assert D[1].tolist() == pytest.approx([2 / 3] * 3)
    assert M.n_represented(W).tolist() == [2, 3]
    assert M.superposition(W).shape == (2, 3)
    assert M.dimensions_per_feature(W).shape == (2,)


def test_gram_matches_definition():
    W = torch.randn(3, 4, 6, generator=torch.Generator().manual_seed(0))
    G = M.gram(W)
    assert G.shape == (3, 6, 6)
    for k in range(3):
        for i in range(6):
            for j in range(6):
                assert G[k, i, j].item() == pytest.approx(torch.dot(W[k, :, i], W[k, :, j]).item(), abs=1e-5)


def test_metrics_detach_from_autograd():
    W = torch.randn(1, 2, 3, requires_grad=True)
    for f in (M.gram, M.feature_norms, M.superposition, M.feature_dimensionality, M.dimensions_per_feature):
        assert not f(W).requires_grad


# ---------------------------------------------------------------- properties


@st.composite
def weights(draw):
    k, m, n = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(k, m, n, generator=g, dtype=torch.float64)
    # some unlearned features
    W = W * (torch.rand(1, 1, n, generator=g, dtype=torch.float64) > 0.2)
    Q, _ = torch.linalg.qr(torch.randn(k, m, m, generator=g, dtype=torch.float64))
    return W, Q


@settings(max_examples=80, deadline=None)
@given(weights())
def test_invariant_under_rotation_of_the_hidden_space(wq):
    W, Q = wq
    R = Q @ W  # rotate (or reflect) every instance's hidden space
    for f in (M.gram, M.feature_norms, M.superposition, M.feature_dimensionality, M.dimensions_per_feature):
        torch.testing.assert_close(f(R), f(W), rtol=1e-9, atol=1e-9)
    assert torch.equal(M.n_represented(R), M.n_represented(W))


@settings(max_examples=60, deadline=None)
@given(weights(), st.floats(0.1, 10.0))
def test_scaling(wq, c):
    W, _ = wq
    torch.testing.assert_close(M.feature_dimensionality(c * W), M.feature_dimensionality(W), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(M.superposition(c * W), c**2 * M.superposition(W), rtol=1e-9, atol=1e-12)
    nz = M.dimensions_per_feature(W) > 0
    torch.testing.assert_close(M.dimensions_per_feature(c * W)[nz], M.dimensions_per_feature(W)[nz] / c**2)


@settings(max_examples=60, deadline=None)
@given(weights())
def test_bounds(wq):
    W, _ = wq
    D = M.feature_dimensionality(W)
    assert ((D >= 0) & (D <= 1 + 1e-9)).all()
    assert (M.superposition(W) >= -1e-12).all()
    # sum_i D_i <= m (capacity), Scherlis et al.
    assert (D.sum(-1) <= W.shape[1] + 1e-9).all()


@settings(max_examples=40, deadline=None)
@given(weights(), st.randoms())
def test_permuting_features_permutes_the_measures(wq, rnd):
    W, _ = wq
    n = W.shape[2]
    perm = list(range(n))
    rnd.shuffle(perm)
    perm = torch.tensor(perm)
    P = W[:, :, perm]
    torch.testing.assert_close(M.feature_dimensionality(P), M.feature_dimensionality(W)[:, perm])
    torch.testing.assert_close(M.superposition(P), M.superposition(W)[:, perm])
    torch.testing.assert_close(M.dimensions_per_feature(P), M.dimensions_per_feature(W))


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "f",
    [M.gram, M.feature_norms, M.unit_directions, M.superposition, M.dimensions_per_feature,
     M.feature_dimensionality, M.represented, M.n_represented, M.n_in_superposition, M.antipodal_pairs],
)
def test_bad_W(f):
    with pytest.raises(ValueError, match=r"\bW\b"):
        f(torch.ones(2, 3))  # missing the instance dimension
    with pytest.raises(TypeError, match=r"\bW\b"):
        f(torch.ones(1, 2, 3, dtype=torch.long))
    with pytest.raises(TypeError, match=r"\bW\b"):
        f([[[1.0]]])
