"""supercourse.dynamics: recording dimensionalities through train()'s callback, levels, jumps, set geometry."""

from __future__ import annotations

import pytest
import torch

from supercourse import ToyModel, dynamics, metrics, train


def test_levels_are_the_polytope_fractions_without_the_square_antiprism():
    assert dynamics.LEVELS == pytest.approx((0.0, 0.4, 0.5, 2 / 3, 0.75, 1.0))


def test_snapshots_match_feature_dimensionality_of_each_snapshot():
    Ws = torch.randn(4, 3, 2, 5, generator=torch.Generator().manual_seed(0))
    Ws[1, 2, :, 3] = 0
    D = dynamics.dimensionality_snapshots(Ws)
    assert D.shape == (4, 3, 5)
    for t in range(4):
        assert torch.allclose(D[t], metrics.feature_dimensionality(Ws[t]))
    assert D[1, 2, 3] == 0
    with pytest.raises(ValueError, match=r"Ws must have shape \(n_snapshots, n_instances, n_hidden, n_features\)"):
        dynamics.dimensionality_snapshots(Ws[0])


def test_recorder_through_train_keeps_every_logged_step():
    model = ToyModel(5, 2, n_instances=3, feature_probability=0.1, seed=0)
    x_eval = model.generate_batch(256, generator=torch.Generator().manual_seed(1))
    rec = dynamics.DimensionalityRecorder(x_eval)
    history = train(model, steps=60, seed=0, log_every=10, callback=rec, progress=False)
    assert len(rec) == len(history.steps)
    assert torch.equal(rec.steps, history.steps)
    assert rec.weights.shape == (len(history.steps), 3, 2, 5)
    assert torch.equal(rec.weights[-1], model.W.detach())
    assert rec.losses.shape == (len(history.steps), 3)
    with torch.no_grad():
        assert torch.allclose(rec.losses[-1], model.per_instance_loss(x_eval, model(x_eval)))
    assert rec.dimensionalities.shape == (len(history.steps), 3, 5)


def test_recorder_without_eval_batch_keeps_the_training_loss_and_refuses_when_empty():
    model = ToyModel(4, 2, seed=0)
    rec = dynamics.DimensionalityRecorder()
    with pytest.raises(ValueError, match="nothing recorded"):
        rec.steps
    history = train(model, steps=20, seed=0, log_every=5, callback=rec, progress=False)
    assert torch.allclose(rec.losses, history.losses)
    with pytest.raises(TypeError, match="needs a model with W"):
        rec(0, torch.nn.Linear(2, 2), torch.zeros(1))


def test_nearest_level():
    D = torch.tensor([0.0, 0.39, 0.41, 0.45, 0.51, 0.6, 0.99])
    assert dynamics.nearest_level(D).tolist() == [0, 1, 1, -1, 2, -1, 5]
    assert dynamics.nearest_level(D, levels=(0.45, 0.6), tolerance=0.001).tolist() == [-1, -1, -1, 0, -1, 1, -1]
    with pytest.raises(ValueError, match="tolerance"):
        dynamics.nearest_level(D, tolerance=-1)


def _one(values):
    return torch.tensor(values, dtype=torch.float32)[:, None, None]


def test_find_jumps_on_a_hand_built_trajectory():
    # 0 held, transit, 1/2 held; then 2/5 for 3 snapshots (too short); back to 1/2; then 2/5 held.
    values = [0.0] * 5 + [0.2, 0.3] + [0.5] * 6 + [0.4] * 3 + [0.5] * 5 + [0.45] + [0.4] * 5
    D, steps = _one(values), torch.arange(len(values)) * 10
    jumps = dynamics.find_jumps(D, steps)
    assert [j.as_tuple() for j in jumps] == [(70, 0, 0, 0.0, 0.5), (220, 0, 0, 0.5, 0.4)]
    assert jumps[0].left == 40 and jumps[1].left == 200
    # min_hold=3 sees the short visit to 2/5 (and the return to 1/2).
    assert len(dynamics.find_jumps(D, steps, min_hold=3)) == 4
    assert dynamics.find_jumps(D[:3], steps[:3]) == []


def test_find_jumps_sorts_by_step_instance_feature_and_checks_steps():
    D = torch.zeros(12, 2, 2)
    D[6:, 1, 0] = 0.5
    D[4:, 0, 1] = 1.0
    jumps = dynamics.find_jumps(D, torch.arange(12), min_hold=2)
    assert [j.as_tuple()[:3] for j in jumps] == [(4, 0, 1), (6, 1, 0)]
    with pytest.raises(ValueError, match=r"steps must have shape \(n_snapshots=12,\)"):
        dynamics.find_jumps(D, torch.arange(11))


def test_loss_drop():
    values = [0.0] * 5 + [0.5] * 5
    D, steps = _one(values), torch.arange(10)
    (jump,) = dynamics.find_jumps(D, steps)
    losses = torch.linspace(1.0, 0.1, 10)[:, None]
    assert dynamics.loss_drop(losses, steps, jump) == pytest.approx(1 - losses[5, 0].item() / losses[4, 0].item())


def _octahedron(noise: float = 0.0) -> torch.Tensor:
    W = torch.cat([torch.eye(3), -torch.eye(3)[:, [1, 2, 0]]], dim=1)[None]
    return W + noise * torch.randn(W.shape, generator=torch.Generator().manual_seed(0))


def test_set_geometry_and_stages():
    collapsed = torch.tensor([[1.0, 0.98, 0.97, -1.0, -0.99, -0.97], [0.0, 0.2, -0.2, 0.0, 0.1, -0.1], [0.0] * 6])[None]
    halfway = _octahedron() * 0.7 + collapsed * 0.3
    orthogonal = torch.cat([torch.eye(3), torch.tensor([[0.6, 0.0, -0.8], [0.0, 1.0, 0.0], [-0.8, 0.0, -0.6]]).T[[0, 2, 1]] @ torch.eye(3)], dim=1)[None]
    W = torch.cat([collapsed, halfway, orthogonal, _octahedron(0.01)])
    within, across = dynamics.set_geometry(W, 3)
    assert within[0] > 0.9 and within[3] < 0.05 and across[3] < -0.99
    names = dynamics.stage(W, 3)
    assert names[0] == "collapsed" and names[1] == "splitting" and names[3] == "octahedron"
    assert names[2] in ("orthogonal sets", "octahedron")
    with pytest.raises(ValueError, match="set_size must divide"):
        dynamics.set_geometry(W, 4)
    with pytest.raises(ValueError, match="set_size must divide"):
        dynamics.set_geometry(W, 6)
