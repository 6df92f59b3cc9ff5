"""supercourse.correlation: the set model and the geometry readouts, on hand-built W with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from supercourse import train
from supercourse.correlation import (
    SetModel,
    block_interference,
    collapsed_sets,
    cosines,
    cross_set_min_cosines,
    partner_cosines,
    set_of,
)
from supercourse.training import uses_fast_path


def directions(*angles_deg: float, norms: "list[float] | None" = None) -> torch.Tensor:
    """``(2, n)`` unit columns at the given angles (degrees), scaled by ``norms``."""
    a = torch.tensor(angles_deg, dtype=torch.float32) * math.pi / 180
    W = torch.stack([a.cos(), a.sin()])
    return W * torch.tensor(norms) if norms is not None else W


# The paper's three m=2 geometries, built by hand: features 2k, 2k+1 are set k.
CORRELATED = directions(0, 90, 180, 270)  # partners orthogonal, sets antipodal
ANTICORRELATED = directions(0, 180, 90, 270)  # partners antipodal
SIDE_BY_SIDE = directions(0, 60, 120, 180, 240, 300)  # hexagon, partners adjacent
COLLAPSED = directions(10, 10, 130, 130, 250, 250)  # each pair along one direction


def test_set_of():
    assert set_of(6, 2).tolist() == [0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="set_size"):
        set_of(5, 2)


def test_cosines_of_a_hexagon():
    C = cosines(SIDE_BY_SIDE)
    assert C.shape == (1, 6, 6)
    torch.testing.assert_close(C[0, 0, 1], torch.tensor(0.5), atol=1e-6, rtol=0)
    torch.testing.assert_close(C[0, 0, 3], torch.tensor(-1.0), atol=1e-6, rtol=0)
    assert cosines(torch.zeros(2, 3))[0].abs().max() == 0, "a zero column has cosine 0"


def test_partner_cosines_tell_the_three_geometries_apart():
    W = torch.stack([CORRELATED, ANTICORRELATED])
    pc = partner_cosines(W, 2)
    assert pc.shape == (2, 2)
    torch.testing.assert_close(pc[0], torch.zeros(2), atol=1e-6, rtol=0)
    torch.testing.assert_close(pc[1], -torch.ones(2), atol=1e-6, rtol=0)
    torch.testing.assert_close(partner_cosines(SIDE_BY_SIDE, 2)[0], torch.full((3,), 0.5), atol=1e-6, rtol=0)
    # sets of three: the mean over the set's three pairs
    pc3 = partner_cosines(directions(0, 0, 0, 90, 90, 270), 3)
    torch.testing.assert_close(pc3[0], torch.tensor([1.0, -1 / 3]), atol=1e-6, rtol=0)


def test_cross_set_min_cosines():
    torch.testing.assert_close(cross_set_min_cosines(CORRELATED, 2)[0], -torch.ones(4), atol=1e-6, rtol=0)
    # anticorrelated pairs are antipodal to their partners, orthogonal to the other set
    torch.testing.assert_close(cross_set_min_cosines(ANTICORRELATED, 2)[0], torch.zeros(4), atol=1e-6, rtol=0)


def test_block_interference_of_local_bases():
    # two sets of 3 in m=3: each set an orthonormal basis, the second rotated against the first
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(0)))
    W = torch.cat([torch.eye(3), q], dim=1)  # (3, 6)
    out = block_interference(W, 3)
    torch.testing.assert_close(out["diagonal"], torch.ones(1), atol=1e-5, rtol=0)
    torch.testing.assert_close(out["within"], torch.zeros(1), atol=1e-5, rtol=0)
    torch.testing.assert_close(out["across"], q.abs().mean().reshape(1), atol=1e-5, rtol=0)


def test_collapsed_sets_counts_aligned_represented_pairs():
    W = torch.stack([SIDE_BY_SIDE, COLLAPSED, directions(10, 10, 60, 200, 250, 250, norms=[1, 1, 1, 1, 0.2, 0.2])])
    assert collapsed_sets(W, 2).tolist() == [0, 3, 1]


@pytest.mark.parametrize("bad, err", [(torch.zeros(2, 2, 2, 2), ValueError), ("W", TypeError)])
def test_readouts_reject_bad_W(bad, err):
    with pytest.raises(err, match="W"):
        partner_cosines(bad)


def test_set_model_draws_its_sets_and_trains_through_autograd():
    m = SetModel(2, 2, 2, n_instances=2, kind="anticorrelated", feature_probability=torch.tensor([0.2, 0.05]), seed=0)
    assert m.n_features == 4 and m.feature_probability.shape == (2, 4)
    torch.testing.assert_close(m.set_probability, torch.tensor([[0.2, 0.2], [0.05, 0.05]]))
    x = m.generate_batch(20_000, generator=torch.Generator().manual_seed(0))
    active = x > 0
    assert not (active[..., 0] & active[..., 1]).any(), "anticorrelated partners are never active together"
    # marginal density of every feature: binomial standard error at most sqrt(0.2*0.8/20000) = 0.003
    torch.testing.assert_close(active.float().mean(0), m.feature_probability, atol=0.012, rtol=0)
    assert not uses_fast_path(m)
    c = SetModel(2, 3, 2, kind="correlated", feature_probability=0.3, seed=0)
    xc = c.generate_batch(1000, generator=torch.Generator().manual_seed(1)) > 0
    assert (xc[..., :3].all(-1) | ~xc[..., :3].any(-1)).all(), "a correlated set is all on or all off"
    h = train(c, steps=5, batch_size=16, progress=False, device="cpu", seed=0)
    assert h.losses.shape == (5, 1)


def test_set_model_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        SetModel(2, 2, 2, kind="mixed")
    with pytest.raises(ValueError, match="feature_probability"):
        SetModel(2, 2, 2, kind="anticorrelated", feature_probability=0.6)
    with pytest.raises(ValueError, match="n_sets"):
        SetModel(0, 2, 2)
