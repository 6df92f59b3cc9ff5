"""supercourse.theory's n=3, m=2 extension: the four candidate solutions and their phase diagram."""

from __future__ import annotations

import pytest
import torch

from supercourse import phase, theory


def test_candidates_are_named_by_the_direction_they_ignore():
    assert len(theory.PHASES_N3M2) == len(theory.N3M2_NULL_DIRECTIONS) == 4
    assert theory.N3M2_NULL_DIRECTIONS == ((0, 0, 1), (1, 0, 0), (0, 1, 1), (1, 1, 0))


@pytest.mark.parametrize("r, p", [(0.3, 0.05), (1.0, 0.5), (4.0, 0.9)])
def test_losses_follow_the_formulas(r, p):
    got = theory.configuration_losses_n3m2(r, p)
    drop = p / 3 - p**2 / 4
    assert got.tolist() == pytest.approx([r * drop, drop, (1 + r) * p**2 / 6, p**2 / 3])
    # The extra feature's two cases that exist with n=2 cost what they cost there.
    two = theory.configuration_losses(r, p)
    assert got[0].item() == pytest.approx(two[theory.NOT_REPRESENTED].item())
    assert got[2].item() == pytest.approx(two[theory.SUPERPOSITION].item())


def test_all_four_meet_at_the_triple_point():
    r, p = theory.triple_point()
    losses = theory.configuration_losses_n3m2(r, p)
    assert torch.allclose(losses, losses[0].expand(4))


def test_broadcasting_and_validation():
    out = theory.configuration_losses_n3m2(torch.ones(3, 1), torch.full((1, 5), 0.2))
    assert out.shape == (3, 5, 4) and out.dtype == torch.float64
    with pytest.raises(ValueError, match="density"):
        theory.configuration_losses_n3m2(1.0, 1.5)


def test_phase_diagram_regions():
    r = torch.tensor([0.2, 0.5, 2.0, 5.0], dtype=torch.float64)
    p = torch.tensor([0.02, 0.3, 0.7, 1.0], dtype=torch.float64)
    d = theory.phase_diagram_n3m2(r, p)
    assert d.shape == (4, 4)
    # Below r = 1: like n = 2 (the extra feature dropped when dense, antipodal to a first one when sparse).
    assert d[0].tolist() == [2, 0, 0, 0] and d[1].tolist() == [2, 2, 0, 0]
    # Above r = 1: the extra feature keeps a dimension; the others share one when sparse (p < 4/7).
    assert d[2].tolist() == [3, 3, 1, 1] and d[3].tolist() == [3, 3, 1, 1]
    # The n = 2 boundary p = 4r / (2 + 5r) carries over below r = 1.
    fine_r = torch.logspace(-1, -0.05, 30, dtype=torch.float64)
    boundary = 4 * fine_r / (2 + 5 * fine_r)
    assert (theory.phase_diagram_n3m2(fine_r, boundary * 0.98).diagonal() == 2).all()
    assert (theory.phase_diagram_n3m2(fine_r, boundary * 1.02).diagonal() == 0).all()


def test_losses_match_a_monte_carlo_of_the_ideal_weights():
    r, p = 2.0, 0.4
    g = phase.make_grid([r], [p], n_restarts=4, n_features=3)
    model = g.make_model(seed=0)
    W = torch.tensor(
        [
            [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],  # ⊥ [0,0,1]
            [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],  # ⊥ [1,0,0]
            [[1.0, 0.0, 0.0], [0.0, 1.0, -1.0]],  # ⊥ [0,1,1]
            [[0.0, 0.0, 1.0], [1.0, -1.0, 0.0]],  # ⊥ [1,1,0]
        ]
    )
    b = torch.tensor([[0.0, 0.0, p / 2], [p / 2, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    with torch.no_grad():
        model.W.copy_(W)
        model.b_final.copy_(b)
    got = phase.evaluate_losses(model, n_samples=2**19, seed=3) * 3  # the model averages over 3 features
    want = theory.configuration_losses_n3m2(r, p)
    assert torch.allclose(got, want, rtol=0.03), (got, want)
    assert phase.classify(model.W.detach()).tolist() == [0, 1, 2, 3]
