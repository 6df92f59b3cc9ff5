"""supercourse.theory: the n=2, m=1 closed forms, the phase diagram, and a Monte-Carlo check of both.

The closed forms are expected losses summed over features (``sum_i I_i E[(x_i - x'_i)^2]``);
``ToyModel.per_instance_loss`` averages over features, so it is multiplied by ``n``
before comparing.
"""

from __future__ import annotations

import math

import pytest
import torch

from supercourse import ToyModel, theory
from supercourse.theory import (
    DEDICATED,
    NOT_REPRESENTED,
    PHASES,
    SUPERPOSITION,
    classify_n2m1,
    configuration_losses,
    loss_antipodal,
    loss_dedicated,
    loss_not_represented,
    phase_diagram,
    triple_point,
)


def approx(x):
    return pytest.approx(x, rel=1e-12, abs=1e-15)


# ---------------------------------------------------------------- closed forms at hand-computed points


def test_phases_and_constants():
    assert PHASES == ("not represented", "dedicated", "superposition")
    assert (NOT_REPRESENTED, DEDICATED, SUPERPOSITION) == (0, 1, 2)


@pytest.mark.parametrize(
    "r, p, not_rep, dedicated, antipodal",
    [
        (1.0, 1.0, 1 / 12, 1 / 12, 1 / 3),  # dense: 1/3 - 1/4 = 1/12 ; (1+1)/6
        (2.0, 0.5, 2 * (1 / 6 - 1 / 16), 1 / 6 - 1 / 16, 3 * 0.25 / 6),
        (0.1, 0.2, 0.1 * (0.2 / 3 - 0.01), 0.2 / 3 - 0.01, 1.1 * 0.04 / 6),
        (0.0, 0.3, 0.0, 0.1 - 0.0225, 0.09 / 6),
        (5.0, 0.0, 0.0, 0.0, 0.0),
    ],
)
def test_losses_at_hand_computed_points(r, p, not_rep, dedicated, antipodal):
    assert loss_not_represented(r, p).item() == approx(not_rep)
    assert loss_dedicated(r, p).item() == approx(dedicated)
    assert loss_antipodal(r, p).item() == approx(antipodal)
    assert configuration_losses(r, p).tolist() == [approx(not_rep), approx(dedicated), approx(antipodal)]


def test_broadcasting_and_dtype():
    r = torch.tensor([[0.5], [1.0], [2.0]])
    p = torch.tensor([0.1, 0.5])
    for f in (loss_not_represented, loss_dedicated, loss_antipodal):
        out = f(r, p)
        assert out.shape == (3, 2) and out.dtype == torch.float64
    assert configuration_losses(r, p).shape == (3, 2, 3)
    # loss_dedicated does not depend on r but still broadcasts over it
    assert torch.equal(loss_dedicated(r, p)[0], loss_dedicated(r, p)[2])


def test_triple_point():
    r, p = triple_point()
    assert (r, p) == (1.0, pytest.approx(4 / 7))
    losses = configuration_losses(r, p)
    assert losses.max().item() - losses.min().item() < 1e-15
    assert losses[0].item() == approx(p / 3 - p * p / 4) and losses[0].item() == approx(p * p / 3)
    # and nowhere else on the line r = 1 do they all meet
    for q in (0.3, 0.5, 0.65, 0.9):
        assert configuration_losses(1.0, q).std().item() > 1e-4


# ---------------------------------------------------------------- the phase diagram


def test_phase_diagram_shape_and_definition():
    r = torch.logspace(-1, 1, 9)
    p = torch.logspace(-2, 0, 11)
    labels = phase_diagram(r, p)
    assert labels.shape == (9, 11) and labels.dtype == torch.long
    assert torch.equal(labels, configuration_losses(r[:, None], p[None, :]).argmin(-1))
    assert set(labels.unique().tolist()) == {0, 1, 2}


@pytest.mark.parametrize(
    "r, p, phase",
    [
        (10.0, 1.0, DEDICATED),  # important and dense: gets its own dimension
        (0.1, 1.0, NOT_REPRESENTED),  # unimportant and dense: dropped
        (0.1, 0.3, NOT_REPRESENTED),
        (1.0, 0.01, SUPERPOSITION),  # sparse: antipodal superposition
        (1.2, 0.1, SUPERPOSITION),
        (0.8, 0.1, SUPERPOSITION),
        (10.0, 0.01, SUPERPOSITION),
        (0.1, 0.01, SUPERPOSITION),
    ],
)
def test_phase_diagram_regions(r, p, phase):
    assert phase_diagram([r], [p]).item() == phase


@pytest.mark.parametrize("r", [0.3, 0.5, 0.8, 1.5, 2.0, 4.0])
def test_phase_boundaries(r):
    # superposition below p* and the best dense configuration above, with
    # p* = 4 r / (2 + 5 r) against "not represented" (r < 1), 4 / (2 r + 5) against "dedicated" (r > 1)
    p_star = 4 * r / (2 + 5 * r) if r < 1 else 4 / (2 * r + 5)
    dense = NOT_REPRESENTED if r < 1 else DEDICATED
    assert phase_diagram([r], [p_star * 0.98]).item() == SUPERPOSITION
    assert phase_diagram([r], [min(1.0, p_star * 1.02)]).item() == dense
    losses = configuration_losses(r, p_star)
    assert losses[SUPERPOSITION].item() == approx(losses[dense].item())


def test_dense_boundary_is_r_equal_one():
    assert phase_diagram([0.99], [0.9]).item() == NOT_REPRESENTED
    assert phase_diagram([1.01], [0.9]).item() == DEDICATED


# ---------------------------------------------------------------- Monte Carlo: the closed forms are the expected losses


def hand_set_model(r: float, p: float) -> ToyModel:
    """Three instances of the n=2, m=1 ReLU model, one per configuration of :data:`PHASES`."""
    model = ToyModel(2, 1, n_instances=3, feature_probability=p, importance=[1.0, r], seed=0).double()
    with torch.no_grad():
        model.W.copy_(torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]], [[1.0, -1.0]]], dtype=torch.float64))
        # a dropped feature's optimal bias is its mean p/2; the antipodal pair needs none
        model.b_final.copy_(torch.tensor([[0.0, p / 2], [p / 2, 0.0], [0.0, 0.0]], dtype=torch.float64))
    return model


@pytest.mark.parametrize("r, p", [(1.0, 4 / 7), (0.5, 0.2), (3.0, 0.9), (1.0, 1.0), (2.0, 0.05)])
def test_monte_carlo_matches_closed_forms(r, p):
    """Empirical mean of 200k samples within 5 standard errors of the closed form, for each configuration."""
    model = hand_set_model(r, p)
    x = model.generate_batch(200_000, generator=torch.Generator().manual_seed(int(1000 * r + 100 * p)))
    with torch.no_grad():
        per_sample = (model.importance * (x - model(x)) ** 2).sum(-1)  # (batch, 3): summed over features
        mean = per_sample.mean(0)
        se = per_sample.std(0) / math.sqrt(x.shape[0])
        # the library's loss is the same quantity averaged over the n = 2 features
        torch.testing.assert_close(model.per_instance_loss(x, model(x)) * 2, mean)
    closed = configuration_losses(r, p)
    assert ((mean - closed).abs() <= 5 * se + 1e-12).all(), (mean.tolist(), closed.tolist(), se.tolist())


def test_monte_carlo_picks_the_phase_diagrams_winner():
    # away from boundaries the empirical best configuration is the predicted phase
    for r, p in [(5.0, 1.0), (0.2, 0.8), (1.0, 0.05)]:
        model = hand_set_model(r, p)
        x = model.generate_batch(100_000, generator=torch.Generator().manual_seed(7))
        with torch.no_grad():
            emp = model.per_instance_loss(x, model(x))
        assert emp.argmin().item() == phase_diagram([r], [p]).item()


def test_bias_p_over_2_is_optimal_for_a_dropped_feature():
    p = 0.4
    biases = torch.tensor([0.0, 0.1, p / 2, 0.3, 0.4], dtype=torch.float64)
    model = ToyModel(2, 1, n_instances=5, feature_probability=p, seed=0).double()
    with torch.no_grad():
        model.W.copy_(torch.tensor([1.0, 0.0], dtype=torch.float64).expand(5, 1, 2))
        model.b_final.zero_()
        model.b_final[:, 1] = biases
    x = model.generate_batch(200_000, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        loss = model.per_instance_loss(x, model(x)) * 2
    assert loss.argmin().item() == 2
    # exact: E[(x - b)^2] = p/3 - b p + b^2
    assert torch.allclose(loss, p / 3 - biases * p + biases**2, rtol=0.02)


# ---------------------------------------------------------------- n = 3, m = 2 (four candidates)


def test_n3m2_candidates():
    if not hasattr(theory, "configuration_losses_n3m2"):
        pytest.skip("theory has no n=3, m=2 candidates in this version")
    r, p = 1.0, 4 / 7
    losses = theory.configuration_losses_n3m2(r, p)
    assert losses.shape == (4,) and losses.max() - losses.min() < 1e-15  # all equal at the triple point
    assert len(theory.PHASES_N3M2) == 4
    # Monte Carlo of the four hand-set solutions (each W is orthogonal to its null direction)
    r, p = 1.7, 0.3
    Ws = torch.tensor(
        [
            [[1, 0, 0], [0, 1, 0]],  # extra feature dropped
            [[0, 1, 0], [0, 0, 1]],  # feature 1 dropped, extra dedicated
            [[1, 0, 0], [0, 1, -1]],  # extra antipodal to feature 2
            [[1, -1, 0], [0, 0, 1]],  # 1 and 2 antipodal, extra dedicated
        ],
        dtype=torch.float64,
    )
    b = torch.tensor([[0, 0, p / 2], [p / 2, 0, 0], [0, 0, 0], [0, 0, 0]], dtype=torch.float64)
    for k, v in enumerate(theory.N3M2_NULL_DIRECTIONS):
        assert torch.allclose(Ws[k] @ torch.tensor(v, dtype=torch.float64), torch.zeros(2, dtype=torch.float64))
    model = ToyModel(3, 2, n_instances=4, feature_probability=p, importance=[1.0, 1.0, r]).double()
    with torch.no_grad():
        model.W.copy_(Ws)
        model.b_final.copy_(b)
    x = model.generate_batch(200_000, generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        per_sample = (model.importance * (x - model(x)) ** 2).sum(-1)
    mean, se = per_sample.mean(0), per_sample.std(0) / math.sqrt(x.shape[0])
    closed = theory.configuration_losses_n3m2(r, p)
    assert ((mean - closed).abs() <= 5 * se + 1e-12).all(), (mean.tolist(), closed.tolist())
    labels = theory.phase_diagram_n3m2([r], [p])
    assert labels.item() == closed.argmin().item()


# ---------------------------------------------------------------- classify_n2m1


def test_classify_n2m1():
    W = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]], [[1.0, -1.0]], [[-0.9, 0.8]], [[1.0, 1.0]], [[0.1, 0.2]], [[0.6, 0.0]]])
    assert classify_n2m1(W).tolist() == [
        NOT_REPRESENTED,
        DEDICATED,
        SUPERPOSITION,
        SUPERPOSITION,
        NOT_REPRESENTED,  # both on with the same sign is not the antipodal solution
        NOT_REPRESENTED,  # nothing learned
        NOT_REPRESENTED,
    ]
    assert classify_n2m1(W, threshold=0.05).tolist()[5] == NOT_REPRESENTED  # same sign, both on
    assert classify_n2m1(torch.tensor([[[0.0, 0.3]]]), threshold=0.2).tolist() == [DEDICATED]


def test_classify_n2m1_bad_shape():
    with pytest.raises(ValueError, match=r"\bW\b"):
        classify_n2m1(torch.ones(3, 2, 2))
    with pytest.raises(ValueError, match=r"\bW\b"):
        classify_n2m1(torch.ones(1, 2))
    with pytest.raises(TypeError, match=r"\bW\b"):
        classify_n2m1(torch.ones(1, 1, 2, dtype=torch.long))


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("f", [loss_not_represented, loss_dedicated, loss_antipodal, configuration_losses])
def test_bad_arguments(f):
    with pytest.raises(ValueError, match="relative_importance"):
        f(-0.5, 0.5)
    with pytest.raises(ValueError, match="relative_importance"):
        f(float("nan"), 0.5)
    with pytest.raises(ValueError, match="density"):
        f(1.0, 1.5)
    with pytest.raises(ValueError, match="density"):
        f(1.0, -0.01)
    with pytest.raises(ValueError, match="density"):
        f(1.0, float("nan"))


def test_phase_diagram_bad_arguments():
    with pytest.raises(ValueError, match="density"):
        phase_diagram([1.0], [0.5, 2.0])
    with pytest.raises(ValueError, match="relative_importance"):
        phase_diagram([-1.0, 1.0], [0.5])
