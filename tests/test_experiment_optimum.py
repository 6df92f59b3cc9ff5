"""``supercourse.experiments._optimum``: is each density's model the best found at its density?

Fast tests on small hand-built or briefly trained models: recombining instances,
the stratified expected loss against plain sampling and against exact values,
the gaps (with the floor for exact models), and :func:`polish` repairing a
sweep whose model at one density is far from the best it has found. The sweeps
of the reproduce targets are checked in their own (slow) tests.
"""

from __future__ import annotations

import pytest
import torch

from supercourse import ToyModel, train
from supercourse.correlation import SetModel
from supercourse.experiments import _optimum as opt
from supercourse.neurons import AbsValueModel, NeuronModel


def _sweep(densities=(0.3, 0.1, 0.03), seed=0) -> ToyModel:
    return ToyModel(6, 2, n_instances=len(densities), feature_probability=torch.tensor(densities), seed=seed)


def test_recombine_takes_weights_from_one_instance_and_data_from_another():
    model = _sweep()
    mixed = opt.recombine(model, [2, 0, 0], [0, 1, 2])
    assert type(mixed) is ToyModel and mixed.n_instances == 3
    assert torch.equal(mixed.W[0], model.W[2]) and torch.equal(mixed.W[2], model.W[0])
    assert torch.equal(mixed.feature_probability[0], model.feature_probability[0])
    assert torch.equal(mixed.feature_probability[2], model.feature_probability[2])
    assert mixed.generate_batch(4).shape == (4, 3, 6)
    with torch.no_grad():
        mixed.W.zero_()
    assert model.W.abs().sum() > 0  # a copy
    abs_model = AbsValueModel(4, 3, n_instances=2, feature_probability=torch.tensor([0.5, 0.1]), seed=1)
    swapped = opt.recombine(abs_model, [1, 0], [0, 1])
    assert torch.equal(swapped.W2[0], abs_model.W2[1]) and swapped.feature_probability[0, 0] == 0.5
    with pytest.raises(ValueError, match="weights_from must hold instance numbers in"):
        opt.recombine(model, [3], [0])
    with pytest.raises(ValueError, match="equally long"):
        opt.recombine(model, [0, 1], [0])


def test_stratified_loss_of_the_zero_model_is_exact():
    # W = 0, b = 0: the output is 0 and the loss is the mean over features of E[x_i^2] = p / 3.
    densities = (1.0, 0.3, 0.01)
    model = _sweep(densities)
    with torch.no_grad():
        model.W.zero_()
    expected = torch.tensor(densities, dtype=torch.float64) / 3
    got = opt.cross_losses(model, n_samples=2**14, seed=1).diagonal()
    assert torch.allclose(got, expected, rtol=0.02), (got, expected)
    assert torch.allclose(opt.baseline_losses(model, 2**14, seed=1), expected, rtol=0.02)


@pytest.mark.parametrize("make", [
    lambda: _sweep(),
    lambda: SetModel(3, 2, 2, n_instances=2, feature_probability=torch.tensor([0.2, 0.05]), seed=3),
    lambda: SetModel(2, 2, 2, n_instances=2, kind="anticorrelated", feature_probability=torch.tensor([0.2, 0.05]),
                     seed=3),
    lambda: NeuronModel(5, 3, n_instances=2, feature_probability=torch.tensor([0.4, 0.1]), seed=2),
])
def test_stratified_loss_agrees_with_plain_sampling(make):
    model = make()
    with torch.no_grad():
        model.b_final.normal_(0.0, 0.1, generator=torch.Generator().manual_seed(0))
    stratified = opt.cross_losses(model, n_samples=2**15, seed=2)
    gen = torch.Generator().manual_seed(5)
    x = model.generate_batch(2**18, generator=gen)
    plain = model.per_instance_loss(x, model(x)).double()
    assert torch.allclose(stratified.diagonal(), plain, rtol=0.03), (stratified.diagonal(), plain)


def test_gaps_are_fractions_of_the_best_loss_with_a_floor_for_exact_models():
    L = torch.tensor([[1.0, 2.0], [1.5, 1.0]], dtype=torch.float64)
    assert torch.allclose(opt.optimality_gaps(L), torch.tensor([0.0, 0.0], dtype=torch.float64))
    L = torch.tensor([[1.1, 2.0], [1.0, 1.0]], dtype=torch.float64)
    assert torch.allclose(opt.optimality_gaps(L), torch.tensor([0.1, 0.0], dtype=torch.float64))
    tiny = torch.tensor([[1e-12, 0.0], [1e-13, 1.0]], dtype=torch.float64)
    assert opt.optimality_gaps(tiny)[0] > 1  # relative to 1e-13 ...
    assert opt.optimality_gaps(tiny, baseline=torch.tensor([0.1, 1.0]))[0] < 1e-5  # ... but both are exact
    with pytest.raises(ValueError, match="square"):
        opt.optimality_gaps(torch.zeros(2, 3))


def test_polish_replaces_a_model_far_from_the_best_it_has_found():
    torch.manual_seed(0)
    model = _sweep((0.3, 0.1, 0.05))
    train(model, steps=600, batch_size=256, lr=1e-2, seed=0, progress=False)
    with torch.no_grad():  # spoil density 0.05: a dropped model, far worse than its neighbour's configuration
        model.W[2].mul_(0.05)
        model.b_final[2].zero_()
    before = opt.optimality_gaps(opt.cross_losses(model, 2**14, seed=3))
    assert before[2] > 0.5
    given = model.W.detach().clone()
    checked = opt.polish(model, 300, lr=1e-2, batch_size=256, seed=0, n_samples=2**14)
    assert checked.rounds >= 1 and checked.before[2] > 0.5
    assert (checked.gaps <= opt.GAP_TOLERANCE).all(), checked.gaps
    assert int(checked.sources[2]) != 2  # taken over from another density
    again = opt.optimality_gaps(opt.cross_losses(checked.model, 2**14, seed=11), checked.baseline)
    assert (again <= 2 * opt.GAP_TOLERANCE).all(), again  # held out from every choice
    assert torch.equal(model.W, given)  # the input model is untouched
    assert checked.model.W[2].norm() > model.W[2].norm()
    summary = checked.as_dict()
    assert summary["gap_tolerance"] == opt.GAP_TOLERANCE and len(summary["cross_losses"]) == 3
    assert "best found at its density" in opt.report((0.3, 0.1, 0.05), checked)


def test_polish_leaves_a_sweep_that_is_already_best_alone():
    model = _sweep((0.3, 0.1))
    train(model, steps=600, batch_size=256, lr=1e-2, seed=1, progress=False)
    checked = opt.polish(model, 50, lr=1e-2, batch_size=256, seed=0, n_samples=2**13, tolerance=10.0)
    assert checked.rounds == 0 and torch.equal(checked.model.W, model.W)


def test_check_budget_never_exceeds_the_training():
    assert opt.check_budget(20, 256, 2000) == (20, 5120)
    assert opt.check_budget(5000, 256, 2000) == (2000, opt.EVAL_SAMPLES)
    assert opt.check_budget(1, 1, 2000, 2**20) == (1, 4096)


@pytest.mark.parametrize("n", [1, 2, 5, 8, 20, 40, 100])
def test_choosing_active_sets_by_rank_is_choosing_them_by_sort(n):
    # The stratified expectation picks `count` sets per input as `rand.argsort() < count`; counting ranks instead
    # (for a few chosen or a few left out) must pick the very same sets, and exactly `count` of them.
    gen = torch.Generator().manual_seed(n)
    for count in range(n + 1):
        r = torch.rand(300, 3, n, generator=gen)
        chosen = opt._first_ranks(r, count)
        assert torch.equal(chosen, r.argsort(dim=-1) < count), count
        assert bool(chosen.sum(dim=-1).eq(count).all())
    ties = torch.randint(0, 3, (300, 2, n), generator=gen).float()  # equal values rank by position
    for count in sorted({c for c in (0, 1, 2, 3, n - 3, n - 2, n - 1, n) if 0 <= c <= n}):
        chosen = opt._first_ranks(ties, count)
        assert torch.equal(chosen, ties.argsort(dim=-1, stable=True) < count), count
        assert bool(chosen.sum(dim=-1).eq(count).all())
