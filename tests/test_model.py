"""supercourse.ToyModel: shapes, broadcasting, forward maths, losses, batches and input checks."""

from __future__ import annotations

import math

import pytest
import torch

from supercourse import ToyModel
from supercourse.model import ACTIVATIONS

N_INST, N_HID, N_FEAT = 3, 2, 5


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def small(**kw) -> ToyModel:
    kw.setdefault("seed", 0)
    return ToyModel(N_FEAT, N_HID, n_instances=N_INST, **kw)


# ---------------------------------------------------------------- construction


def test_parameter_and_buffer_shapes():
    m = small()
    assert m.W.shape == (N_INST, N_HID, N_FEAT)
    assert m.b_final.shape == (N_INST, N_FEAT)
    assert m.feature_probability.shape == (N_INST, N_FEAT)
    assert m.importance.shape == (N_INST, N_FEAT)
    assert torch.equal(m.b_final, torch.zeros(N_INST, N_FEAT))
    assert {n for n, _ in m.named_parameters()} == {"W", "b_final"}
    assert {n for n, _ in m.named_buffers()} == {"feature_probability", "importance"}
    assert (m.n_features, m.n_hidden, m.n_instances, m.activation) == (N_FEAT, N_HID, N_INST, "relu")
    assert m.device == torch.device("cpu")
    assert "n_features=5" in repr(m) and "'relu'" in repr(m)


def test_defaults():
    m = ToyModel(4, 3)
    assert m.W.shape == (1, 3, 4)
    assert torch.equal(m.feature_probability, torch.ones(1, 4))
    assert torch.equal(m.importance, torch.ones(1, 4))
    assert m.activation == "relu"
    assert ACTIVATIONS == ("relu", "linear")


def test_xavier_normal_init():
    n, mh, k = 60, 40, 20
    m = ToyModel(n, mh, n_instances=k, seed=1)
    std = math.sqrt(2.0 / (n + mh))
    w = m.W.detach().double()
    N = w.numel()
    assert abs(w.mean().item()) < 6 * std / math.sqrt(N)
    # sample std within 6 standard errors (se of a normal sample's sd ~ std / sqrt(2N))
    assert abs(w.std().item() - std) < 6 * std / math.sqrt(2 * N)
    # every instance gets its own draw
    assert not torch.equal(m.W[0], m.W[1])


def test_seed_determinism():
    a, b, c = small(seed=7), small(seed=7), small(seed=8)
    assert torch.equal(a.W, b.W)
    assert not torch.equal(a.W, c.W)
    torch.manual_seed(3)
    d = small(seed=None)
    torch.manual_seed(3)
    e = small(seed=None)
    assert torch.equal(d.W, e.W)


def test_reset_parameters():
    m = small(seed=2)
    w0 = m.W.detach().clone()
    with torch.no_grad():
        m.W.add_(1.0)
        m.b_final.fill_(3.0)
    m.reset_parameters(seed=2)
    assert torch.equal(m.W, w0)
    assert torch.equal(m.b_final, torch.zeros_like(m.b_final))


@pytest.mark.parametrize(
    "value, expected",
    [
        (0.3, torch.full((N_INST, N_FEAT), 0.3)),
        (torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0.1, 0.2, 0.3])[:, None].expand(N_INST, N_FEAT)),
        ([0.1, 0.2, 0.3], torch.tensor([0.1, 0.2, 0.3])[:, None].expand(N_INST, N_FEAT)),
        (torch.linspace(0.1, 0.5, N_FEAT), torch.linspace(0.1, 0.5, N_FEAT).expand(N_INST, N_FEAT)),
        (torch.rand(N_INST, N_FEAT, generator=gen()), torch.rand(N_INST, N_FEAT, generator=gen())),
    ],
    ids=["float", "per-instance", "list", "per-feature", "full"],
)
@pytest.mark.parametrize("which", ["feature_probability", "importance"])
def test_broadcasting_of_every_form(which, value, expected):
    m = small(**{which: value})
    assert getattr(m, which).shape == (N_INST, N_FEAT)
    assert torch.allclose(getattr(m, which), expected.float())


def test_ambiguous_1d_is_per_instance_for_probability_and_per_feature_for_importance():
    v = torch.tensor([0.2, 0.4, 0.6])
    m = ToyModel(3, 2, n_instances=3, feature_probability=v, importance=v)
    assert torch.equal(m.feature_probability, v[:, None].expand(3, 3))
    assert torch.equal(m.importance, v[None, :].expand(3, 3))


def test_importance_is_not_limited_to_one():
    m = small(importance=torch.tensor([5.0, 0.0, 1.0, 2.0, 0.5]))
    assert m.importance[0, 0] == 5.0 and m.importance[0, 1] == 0.0


# ---------------------------------------------------------------- forward


def _set(m: ToyModel, W: torch.Tensor, b: torch.Tensor) -> ToyModel:
    with torch.no_grad():
        m.W.copy_(W)
        m.b_final.copy_(b)
    return m


@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_forward_matches_the_formula(activation):
    m = small(activation=activation, seed=4)
    with torch.no_grad():
        m.b_final.normal_(0, 0.5, generator=gen(1))
    x = torch.rand(6, N_INST, N_FEAT, generator=gen(2))
    out = m(x)
    assert out.shape == x.shape
    for k in range(N_INST):
        W, b = m.W[k].detach(), m.b_final[k].detach()
        for s in range(6):
            h = W @ x[s, k]
            pre = W.T @ h + b
            want = torch.relu(pre) if activation == "relu" else pre
            assert torch.allclose(out[s, k], want, atol=1e-6)
            assert torch.allclose(m.hidden(x)[s, k], h, atol=1e-6)
    assert m.hidden(x).shape == (6, N_INST, N_HID)
    if activation == "relu":
        assert (out >= 0).all()
    else:
        assert (out < 0).any(), "the linear model must not clip (these biases give negative outputs)"


def test_forward_with_identity_weights_reconstructs():
    m = ToyModel(2, 2, activation="linear")
    _set(m, torch.eye(2)[None], torch.zeros(1, 2))
    x = torch.rand(4, 1, 2, generator=gen())
    assert torch.allclose(m(x), x)


def test_instances_are_independent():
    m = small(seed=5)
    x = torch.rand(8, N_INST, N_FEAT, generator=gen(3))
    y = x.clone()
    y[:, 1] = torch.rand(8, N_FEAT, generator=gen(4))
    out_x, out_y = m(x), m(y)
    assert torch.equal(out_x[:, 0], out_y[:, 0]) and torch.equal(out_x[:, 2], out_y[:, 2])
    assert not torch.equal(out_x[:, 1], out_y[:, 1])


# ---------------------------------------------------------------- losses


def test_per_instance_loss_formula():
    imp = torch.rand(N_INST, N_FEAT, generator=gen(5))
    m = small(importance=imp)
    x = torch.rand(10, N_INST, N_FEAT, generator=gen(6))
    x_hat = torch.rand(10, N_INST, N_FEAT, generator=gen(7))
    per = m.per_instance_loss(x, x_hat)
    assert per.shape == (N_INST,)
    want = torch.stack(
        [sum(imp[k, i] * ((x[:, k, i] - x_hat[:, k, i]) ** 2).mean() for i in range(N_FEAT)) / N_FEAT for k in range(N_INST)]
    )
    assert torch.allclose(per, want, rtol=1e-5)
    assert torch.allclose(m.loss(x, x_hat), want.sum(), rtol=1e-5)
    assert m.loss(x, x_hat).dim() == 0


def test_loss_zero_for_perfect_reconstruction_and_zero_importance():
    m = small(importance=torch.tensor([1.0, 0.0, 1.0, 1.0, 1.0]))
    x = torch.rand(5, N_INST, N_FEAT, generator=gen())
    assert m.loss(x, x) == 0
    y = x.clone()
    y[:, :, 1] += 10.0  # only the feature of importance 0 is wrong
    assert m.loss(x, y) == 0
    y[:, :, 0] += 1.0
    assert torch.allclose(m.per_instance_loss(x, y), torch.full((N_INST,), 1.0 / N_FEAT))


def test_loss_gradient_of_an_instance_ignores_the_others():
    m = small(seed=6)
    x = torch.rand(16, N_INST, N_FEAT, generator=gen(8))
    m.loss(x, m(x)).backward()
    g_all = m.W.grad[0].clone()
    m.zero_grad()
    m.per_instance_loss(x, m(x))[0].backward()
    assert torch.allclose(g_all, m.W.grad[0])


# ---------------------------------------------------------------- batches


def test_generate_batch_shape_density_and_determinism():
    p = torch.tensor([1.0, 0.5, 0.1])
    m = ToyModel(4, 2, n_instances=3, feature_probability=p)
    x = m.generate_batch(100_000, generator=gen(9))
    assert x.shape == (100_000, 3, 4) and x.dtype == m.W.dtype and x.device == m.device
    dens = (x != 0).double().mean(dim=(0, 2))
    se = (p.double() * (1 - p.double()) / 400_000).sqrt().clamp_min(1e-5)
    assert ((dens - p.double()).abs() < 6 * se).all(), dens
    a = m.generate_batch(64, generator=gen(10))
    b = m.generate_batch(64, generator=gen(10))
    assert torch.equal(a, b)
    assert not torch.equal(a, m.generate_batch(64, generator=gen(11)))


def test_generate_batch_follows_model_dtype():
    m = small().double()
    x = m.generate_batch(8, generator=gen())
    assert x.dtype == torch.float64
    assert m(x).dtype == torch.float64


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("arg", ["n_features", "n_hidden", "n_instances"])
@pytest.mark.parametrize("bad, err", [(0, ValueError), (-2, ValueError), (2.0, TypeError), (True, TypeError), ("3", TypeError)])
def test_bad_sizes(arg, bad, err):
    kw = dict(n_features=4, n_hidden=2, n_instances=1)
    kw[arg] = bad
    with pytest.raises(err, match=arg):
        ToyModel(**kw)


@pytest.mark.parametrize("bad", ["tanh", "ReLU", None, 1])
def test_bad_activation(bad):
    with pytest.raises(ValueError, match="activation"):
        ToyModel(4, 2, activation=bad)


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan"), torch.tensor([0.5, 2.0, 0.5]), [0.1, float("nan"), 0.2]])
def test_bad_feature_probability_values(bad):
    with pytest.raises(ValueError, match="feature_probability"):
        small(feature_probability=bad)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), torch.tensor([1.0, -0.5, 1.0, 1.0, 1.0])])
def test_bad_importance_values(bad):
    with pytest.raises(ValueError, match="importance"):
        small(importance=bad)


@pytest.mark.parametrize("which", ["feature_probability", "importance"])
def test_bad_probability_or_importance_shape_and_type(which):
    with pytest.raises(ValueError, match=which):
        small(**{which: torch.ones(4)})
    with pytest.raises(ValueError, match=which):
        small(**{which: torch.ones(N_FEAT, N_INST)})
    with pytest.raises(TypeError, match=which):
        small(**{which: "0.5"})


@pytest.mark.parametrize(
    "x, err",
    [
        (torch.rand(4, N_FEAT), ValueError),  # missing instance dimension
        (torch.rand(4, N_INST + 1, N_FEAT), ValueError),
        (torch.rand(4, N_INST, N_FEAT + 1), ValueError),
        (torch.rand(2, 4, N_INST, N_FEAT), ValueError),
        (torch.ones(4, N_INST, N_FEAT, dtype=torch.long), TypeError),
        (torch.rand(4, N_INST, N_FEAT, dtype=torch.float64), TypeError),  # model is float32
        ([[0.0] * N_FEAT] * N_INST, TypeError),
    ],
    ids=["2d", "instances", "features", "4d", "int", "float64", "list"],
)
def test_bad_x(x, err):
    m = small()
    with pytest.raises(err, match=r"\bx\b"):
        m(x)
    with pytest.raises(err, match=r"\bx\b"):
        m.per_instance_loss(x, torch.zeros(4, N_INST, N_FEAT))


def test_bad_x_hat():
    m = small()
    x = torch.rand(4, N_INST, N_FEAT)
    with pytest.raises(ValueError, match="x_hat"):
        m.loss(x, torch.rand(4, N_INST, N_FEAT - 1))
    with pytest.raises(ValueError, match="x_hat"):
        m.loss(x, torch.rand(5, N_INST, N_FEAT))  # batch differs
    with pytest.raises(TypeError, match="x_hat"):
        m.loss(x, torch.rand(4, N_INST, N_FEAT).double())


def test_x_on_another_device():
    m = small()
    x = torch.empty(4, N_INST, N_FEAT, device="meta")
    with pytest.raises(ValueError, match=r"\bx\b.*meta"):
        m(x)


@pytest.mark.cuda
def test_model_on_cuda():
    m = small().to("cuda")
    assert m.device.type == "cuda" and m.feature_probability.device.type == "cuda"
    g = torch.Generator(device="cuda").manual_seed(0)
    x = m.generate_batch(32, generator=g)
    assert x.device.type == "cuda"
    assert m.loss(x, m(x)).device.type == "cuda"
    with pytest.raises(ValueError, match=r"\bx\b"):
        m(x.cpu())
