"""supercourse.neurons: the neuron model, the absolute-value model, neuron readouts, restarts."""

from __future__ import annotations

import math

import pytest
import torch

from supercourse import train
from supercourse.neurons import (
    AbsValueModel,
    NeuronModel,
    abs_forward,
    balance_neurons,
    best_of_restarts,
    count_neurons,
    expected_loss,
    feature_neurons,
    monosemanticity,
    neuron_features,
    neuron_forward,
    select_instances,
    signed_sparse_uniform,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- functional forms


def test_neuron_forward_matches_a_per_instance_loop():
    g = _gen(1)
    W, b, x = torch.randn(3, 4, 7, generator=g), torch.randn(3, 7, generator=g), torch.randn(5, 3, 7, generator=g)
    out = neuron_forward(W, b, x)
    assert out.shape == (5, 3, 7)
    for k in range(3):
        h = torch.relu(x[:, k] @ W[k].T)
        assert torch.allclose(out[:, k], torch.relu(h @ W[k] + b[k]), atol=1e-6)


def test_neuron_forward_applies_the_hidden_relu():
    # One neuron reading feature 0 with weight -1: it never fires, so the output is ReLU(b).
    W = torch.tensor([[[-1.0, 0.0]]])
    b = torch.tensor([[0.25, -0.5]])
    x = torch.tensor([[[0.8, 0.3]]])
    assert torch.allclose(neuron_forward(W, b, x), torch.tensor([[[0.25, 0.0]]]))


def test_abs_forward_matches_a_per_instance_loop_and_computes_abs_by_hand():
    g = _gen(2)
    W1, W2 = torch.randn(2, 6, 3, generator=g), torch.randn(2, 3, 6, generator=g)
    b, x = torch.randn(2, 3, generator=g), torch.randn(9, 2, 3, generator=g)
    out = abs_forward(W1, W2, b, x)
    for k in range(2):
        assert torch.allclose(out[:, k], torch.relu(torch.relu(x[:, k] @ W1[k].T) @ W2[k].T + b[k]), atol=1e-6)
    # |x| = ReLU(x) + ReLU(-x): the hand-built n=3, m=6 solution is exact.
    W1 = torch.cat([torch.eye(3), -torch.eye(3)])[None]  # (1, 6, 3)
    W2 = W1.mT.abs()  # (1, 3, 6)
    x = torch.rand(100, 1, 3, generator=g) * 2 - 1
    assert torch.allclose(abs_forward(W1, W2, torch.zeros(1, 3), x), x.abs(), atol=1e-6)


@pytest.mark.parametrize(
    "args, match",
    [
        ((torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(1, 2, 3)), r"W must have shape \(n_instances, n_hidden, n_features\)"),
        ((torch.zeros(2, 4, 3), torch.zeros(2, 4), torch.zeros(1, 2, 3)), r"b must have shape \(n_instances=2, n_features=3\)"),
        ((torch.zeros(2, 4, 3), torch.zeros(2, 3), torch.zeros(1, 3, 3)), r"x must have shape \(batch, n_instances=2"),
    ],
)
def test_neuron_forward_rejects_bad_shapes(args, match):
    with pytest.raises(ValueError, match=match):
        neuron_forward(*args)


def test_forwards_reject_wrong_types():
    with pytest.raises(TypeError, match="W must be a torch.Tensor"):
        neuron_forward([[1.0]], torch.zeros(1, 1), torch.zeros(1, 1, 1))
    with pytest.raises(TypeError, match="x has dtype"):
        neuron_forward(torch.zeros(1, 1, 1), torch.zeros(1, 1), torch.zeros(1, 1, 1, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"W2 must have shape \(n_instances=1, n_features=3, n_hidden=6\)"):
        abs_forward(torch.zeros(1, 6, 3), torch.zeros(1, 6, 3), torch.zeros(1, 3), torch.zeros(1, 1, 3))


def test_signed_sparse_uniform_is_symmetric_with_the_right_density():
    p = torch.tensor([[0.3] * 4, [1.0] * 4])
    x = signed_sparse_uniform(50_000, p, generator=_gen(3))
    assert x.shape == (50_000, 2, 4)
    density = (x != 0).double().mean(dim=(0, 2))
    assert torch.allclose(density, torch.tensor([0.3, 1.0], dtype=torch.float64), atol=6 * math.sqrt(0.21 / 200_000))
    active = x[:, 1]
    assert active.min() >= -1 and active.max() < 1
    assert abs(active.mean().item()) < 6 * math.sqrt(1 / 3 / 200_000)  # mean 0, variance 1/3
    assert abs((active.abs() < 0.5).double().mean().item() - 0.5) < 0.01  # |x| uniform on [0, 1)


# --------------------------------------------------------------------------- the models


def test_models_match_their_functional_forms():
    nm = NeuronModel(6, 3, n_instances=2, feature_probability=0.5, seed=0)
    x = nm.generate_batch(8, generator=_gen(4))
    assert torch.equal(nm(x), neuron_forward(nm.W, nm.b_final, x))
    am = AbsValueModel(6, 3, n_instances=2, feature_probability=0.5, seed=0)
    x = am.generate_batch(8, generator=_gen(4))
    assert (x < 0).any()
    assert torch.equal(am(x), abs_forward(am.W1, am.W2, am.b_final, x))
    assert am.hidden(x).min() >= 0 and nm.hidden(x.abs()).min() >= 0


def test_losses_are_importance_weighted_and_target_abs():
    am = AbsValueModel(2, 4, n_instances=2, importance=torch.tensor([1.0, 0.5]), seed=0)
    x = torch.tensor([[[-0.5, 0.4], [0.2, -1.0]]])
    y = torch.zeros_like(x)
    expected = torch.tensor([(0.25 + 0.5 * 0.16) / 2, (0.04 + 0.5 * 1.0) / 2])
    assert torch.allclose(am.per_instance_loss(x, y), expected)
    assert torch.allclose(am.loss(x, y), expected.sum())
    nm = NeuronModel(2, 4, n_instances=2, importance=torch.tensor([1.0, 0.5]), seed=0)
    assert torch.allclose(nm.per_instance_loss(x, x), torch.zeros(2))


def test_model_init_is_seeded_and_checks_arguments():
    assert torch.equal(NeuronModel(10, 5, 3, seed=7).W, NeuronModel(10, 5, 3, seed=7).W)
    a, b = AbsValueModel(3, 6, 2, seed=7), AbsValueModel(3, 6, 2, seed=8)
    assert not torch.equal(a.W1, b.W1)
    assert a.W2.shape == (2, 3, 6) and a.b_final.abs().sum() == 0
    with pytest.raises(ValueError, match="n_hidden must be a positive int"):
        NeuronModel(10, 0)
    with pytest.raises(ValueError, match="feature_probability must lie in"):
        AbsValueModel(3, 6, feature_probability=1.5)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, n_instances=1, n_features=3\)"):
        AbsValueModel(3, 6)(torch.zeros(4, 1, 2))


def test_train_fits_both_models_with_their_hand_written_gradients():
    nm = NeuronModel(4, 4, n_instances=2, feature_probability=1.0, seed=0)
    before = expected_loss(nm, n_samples=4096)
    hist = train(nm, steps=300, batch_size=256, lr=1e-2, seed=0, progress=False, device="cpu")
    assert hist.losses.shape[1] == 2 and hist.extra["path"] == "analytic"
    after = expected_loss(nm, n_samples=4096)
    assert (after < 0.2 * before).all(), (before, after)
    am = AbsValueModel(2, 4, n_instances=2, feature_probability=1.0, seed=0)
    before = expected_loss(am, n_samples=4096)
    train(am, steps=300, batch_size=256, lr=1e-2, seed=0, progress=False, device="cpu")
    assert (expected_loss(am, n_samples=4096) < 0.5 * before).all()


# --------------------------------------------------------------------------- readouts


def _readout_W() -> torch.Tensor:
    # Instance 0: two monosemantic neurons, one reading features 1 and 2 equally, one dead.
    W = torch.zeros(1, 4, 3)
    W[0, 0] = torch.tensor([1.0, 0.05, 0.0])
    W[0, 1] = torch.tensor([0.0, 0.0, -0.9])
    W[0, 2] = torch.tensor([0.0, 0.7, 0.7])
    W[0, 3] = torch.tensor([0.01, 0.0, 0.02])
    return W


def test_monosemanticity_is_the_top_share_of_squared_weights():
    W = _readout_W()
    assert torch.allclose(monosemanticity(W, positive_only=False)[0, :3], torch.tensor([1 / (1 + 0.0025), 1.0, 0.5]))
    # Only positive weights excite a neuron on non-negative inputs: neuron 1 is never excited.
    mono = monosemanticity(W)
    assert mono.shape == (1, 4)
    assert torch.allclose(mono[0, :3], torch.tensor([1 / (1 + 0.0025), 0.0, 0.5]))
    W[0, 0, 2] = -3.0  # a strong inhibitory weight: neuron 0 still fires for feature 0 alone
    assert monosemanticity(W)[0, 0] > 0.99 and neuron_features(W)[0][0] == [0]
    assert neuron_features(W, positive_only=False)[0][0] == [2]  # |W| reads the inhibition (1 / 10 < share 0.1)
    assert monosemanticity(torch.zeros(2, 3, 4)).eq(0).all()
    with pytest.raises(TypeError, match="positive_only must be a bool"):
        monosemanticity(W, positive_only=1)


def test_neuron_features_lists_large_weights_by_size():
    W = _readout_W()
    assert neuron_features(W, positive_only=False) == [[[0], [2], [1, 2], []]]
    assert neuron_features(W) == [[[0], [], [1, 2], []]]
    assert neuron_features(W, share=0.0) == [[[0, 1], [], [1, 2], []]]
    # Without a dead threshold the tiny neuron reads features 2 (share 0.8) and 0 (share 0.2).
    assert neuron_features(W, dead_norm=0.0)[0][3] == [2, 0]
    with pytest.raises(ValueError, match="share must lie in"):
        neuron_features(W, share=2.0)


def test_feature_neurons_finds_pairs():
    # Ten features on the C(5, 2) pairs of five neurons, inhibited elsewhere (the very sparse solution).
    from itertools import combinations

    W = torch.full((1, 5, 10), -0.5)
    for i, (a, b) in enumerate(combinations(range(5), 2)):
        W[0, [a, b], i] = 1 / math.sqrt(2)
    pairs = feature_neurons(W)
    assert [sorted(p) for p in pairs[0]] == [list(p) for p in combinations(range(5), 2)]
    assert count_neurons(W).polysemantic.item() == 5
    W[0, :, 9] = -1.0  # feature 9 unlearned
    assert feature_neurons(W)[0][9] == []


def test_count_neurons_adds_up():
    c = count_neurons(_readout_W(), positive_only=False)
    assert (c.monosemantic.item(), c.polysemantic.item(), c.dead.item()) == (2, 1, 1)
    assert c.as_dict() == {"monosemantic": [2], "polysemantic": [1], "dead": [1]}
    c = count_neurons(_readout_W())
    assert (c.monosemantic.item(), c.polysemantic.item(), c.dead.item()) == (1, 1, 2)
    W = torch.randn(5, 7, 9, generator=_gen(5))
    c = count_neurons(W)
    assert torch.equal(c.monosemantic + c.polysemantic + c.dead, torch.full((5,), 7))
    with pytest.raises(ValueError, match=r"W must have shape"):
        count_neurons(torch.zeros(3, 3))


def test_balance_neurons_keeps_the_function_and_equalises_norms():
    g = _gen(6)
    W1, W2, b = torch.randn(2, 5, 3, generator=g), torch.randn(2, 3, 5, generator=g), torch.randn(2, 3, generator=g)
    W1 = W1 * torch.tensor([3.0, 0.1, 1.0, 10.0, 0.5])[None, :, None]
    B1, B2 = balance_neurons(W1, W2)
    assert torch.allclose(B1.norm(dim=2), B2.norm(dim=1), rtol=1e-5)
    x = torch.randn(50, 2, 3, generator=g)
    assert torch.allclose(abs_forward(W1, W2, b, x), abs_forward(B1, B2, b, x), atol=1e-5)
    W1[0, 0] = 0
    B1, B2 = balance_neurons(W1, W2)
    assert torch.equal(B2[0, :, 0], W2[0, :, 0])


# --------------------------------------------------------------------------- restarts


def test_best_of_restarts_keeps_the_lower_loss_copy():
    # Restart 0 of setting 0 is the exact |x| solution; restart 1 is random.
    am = AbsValueModel(3, 6, n_instances=4, feature_probability=torch.tensor([0.5, 0.1, 0.5, 0.1]), seed=0)
    with torch.no_grad():
        am.W1[0] = torch.cat([torch.eye(3), -torch.eye(3)])
        am.W2[0] = am.W1[0].T.abs()
        am.b_final[0] = 0
    kept, chosen, losses = best_of_restarts(am, restarts=2, n_samples=4096)
    assert kept.n_instances == 2 and losses.shape == (2, 2)
    assert chosen[0].item() == 0 and losses[0, 0].item() < 1e-10
    assert torch.equal(kept.W1[0], am.W1[0])
    assert torch.equal(kept.feature_probability[:, 0], torch.tensor([0.5, 0.1]))
    assert torch.equal(kept.W2[1], am.W2[2 * chosen[1].item() + 1])
    with pytest.raises(ValueError, match="not a multiple of restarts=3"):
        best_of_restarts(am, restarts=3)


def test_select_instances_checks_the_index():
    nm = NeuronModel(3, 2, n_instances=3, seed=0)
    sub = select_instances(nm, [2, 0])
    assert isinstance(sub, NeuronModel) and torch.equal(sub.W, nm.W[[2, 0]])
    with pytest.raises(ValueError, match=r"index must hold instance numbers in \[0, 3\)"):
        select_instances(nm, [3])
    with pytest.raises(TypeError, match="model must be a NeuronModel or an AbsValueModel"):
        expected_loss(torch.nn.Linear(2, 2))


# --------------------------------------------------------------------------- plots


def test_stacked_neuron_weights_draws_one_bar_segment_per_weight():
    from matplotlib.figure import Figure

    from supercourse.neuron_plots import neuron_counts_by_density, stacked_neuron_weights

    W = torch.zeros(2, 3, 4)
    W[0, :, :3] = torch.eye(3)
    W[1, 0] = torch.tensor([0.7, 0.7, -0.5, 0.0])
    fig = stacked_neuron_weights(W, titles=["dense", "sparse"])
    assert isinstance(fig, Figure)
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["dense", "sparse"]
    assert len(panels[0].patches) == 3 and len(panels[1].patches) == 3  # segments of |w| >= 1e-3
    assert [t.get_text() for t in panels[0].get_xticklabels()] == ["1.0", "1.0", "1.0"]
    with pytest.raises(ValueError, match="titles must be 2 strings"):
        stacked_neuron_weights(W, titles=["one"])
    fig = neuron_counts_by_density(W, [1.0, 0.1])
    assert len(fig.axes) == 2
    # A readout given from outside (the lesson passes the learner's) replaces the library's numbers.
    top, share = torch.zeros(2, 3, dtype=torch.long), torch.full((2, 3), 0.25)
    fig = stacked_neuron_weights(W, readout=(top, share))
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["0.2", "0.2", "0.2"]
    neuron_counts_by_density(W, [1.0, 0.1], readout=(top, share))
    with pytest.raises(ValueError, match=r"readout must hold two tensors of shape \(n_instances, n_hidden\) = \(2, 3\)"):
        stacked_neuron_weights(W, readout=(top[0], share))
    with pytest.raises(ValueError, match=r"densities must be 2 values in \(0, 1\]"):
        neuron_counts_by_density(W, [1.0])
