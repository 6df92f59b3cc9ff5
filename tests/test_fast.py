"""supercourse.fast.ToyModelStep: the analytic gradient equals autograd's, and trains the same models.

``step.x`` holds the batch the step drew, laid out ``(n_instances, batch, n_features)``.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import supercourse
from supercourse import ToyModel
from supercourse.fast import ToyModelStep


def make(activation: str, dtype=torch.float32, n_inst=3, n=7, m=3, seed=0) -> ToyModel:
    model = ToyModel(
        n,
        m,
        n_instances=n_inst,
        feature_probability=torch.linspace(1.0, 0.1, n_inst),
        importance=0.8 ** torch.arange(n, dtype=torch.float32),
        activation=activation,
        seed=seed,
    ).to(dtype)
    with torch.no_grad():  # a non-zero bias puts ReLU pre-activations on both sides of 0
        model.b_final.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(seed + 1))
    return model


def autograd_grads(model: ToyModel, x_bif: torch.Tensor):
    model.W.grad = model.b_final.grad = None
    loss = model.loss(x_bif, model(x_bif))
    gW, gb = torch.autograd.grad(loss, [model.W, model.b_final])
    return loss, gW, gb


@pytest.mark.parametrize("activation", ["relu", "linear"])
@pytest.mark.parametrize("dtype, rtol, atol", [(torch.float64, 1e-10, 1e-12), (torch.float32, 1e-4, 1e-6)])
def test_fast_gradient_equals_autograd(activation, dtype, rtol, atol):
    model = make(activation, dtype)
    step = ToyModelStep(model, batch_size=256, generator=torch.Generator().manual_seed(3))
    for _ in range(3):  # several draws: the step must not leak state between calls
        per = step(want_loss=True)
        assert step.x.shape == (3, 256, 7)
        x = step.x.transpose(0, 1).clone()  # -> (batch, n_instances, n_features)
        loss, gW, gb = autograd_grads(model, x)
        assert model.W.grad is not None and model.W.grad.shape == model.W.shape
        torch.testing.assert_close(model.W.grad, gW, rtol=rtol, atol=atol)
        torch.testing.assert_close(model.b_final.grad, gb, rtol=rtol, atol=atol)
        # the per-instance loss the step reports is model.per_instance_loss on the same batch
        torch.testing.assert_close(per, model.per_instance_loss(x, model(x)).detach(), rtol=rtol, atol=atol)
        torch.testing.assert_close(per.sum(), loss.detach(), rtol=rtol, atol=atol)
        if activation == "relu":
            pre = torch.einsum("bih,ihf->bif", model.hidden(x), model.W) + model.b_final
            assert (pre > 0).any() and (pre < 0).any(), "the test must exercise both sides of the ReLU"
        with torch.no_grad():  # move the weights so the next draw sees a new model
            model.W.add_(0.05 * gW.sign())


def test_gradient_is_not_trivially_zero():
    model = make("relu")
    step = ToyModelStep(model, batch_size=64, generator=torch.Generator().manual_seed(0))
    step(False)
    assert model.W.grad.abs().max() > 1e-3 and model.b_final.grad.abs().max() > 1e-3


def test_want_loss_false_returns_none_and_still_fills_grads():
    model = make("relu")
    step = ToyModelStep(model, batch_size=32, generator=torch.Generator().manual_seed(0))
    assert step(False) is None
    x = step.x.transpose(0, 1).clone()
    _, gW, _ = autograd_grads(model, x)
    torch.testing.assert_close(model.W.grad, gW, rtol=1e-4, atol=1e-6)


def test_step_draws_the_models_distribution():
    # density per (instance, feature) and uniform magnitudes, from the fast step's own sampler
    p = torch.tensor([[1.0, 0.5, 0.1, 0.0], [0.02, 0.3, 0.9, 1.0]])
    model = ToyModel(4, 2, n_instances=2, feature_probability=p, seed=0)
    n = 100_000
    step = ToyModelStep(model, batch_size=n, generator=torch.Generator().manual_seed(1))
    step(False)
    x = step.x
    dens = (x != 0).double().mean(1)
    se = (p.double() * (1 - p.double()) / n).sqrt().clamp_min(1 / n)
    assert ((dens - p).abs() <= 6 * se).all(), dens
    v = x[x != 0].double()
    assert abs(v.mean().item() - 0.5) < 6 * (1 / 12 / v.numel()) ** 0.5
    assert (x >= 0).all() and (x < 1).all()


def test_same_generator_same_batches():
    xs = []
    for _ in range(2):
        model = make("relu")
        step = ToyModelStep(model, batch_size=16, generator=torch.Generator().manual_seed(9))
        step(False)
        step(False)
        xs.append(step.x.clone())
    assert torch.equal(xs[0], xs[1])


class NotAToyModel(nn.Module):
    """Hides a ToyModel from train()'s isinstance check, forcing the autograd path."""

    def __init__(self, inner: ToyModel) -> None:
        super().__init__()
        self.inner = inner
        self.n_instances = inner.n_instances
        self.per_instance_loss = inner.per_instance_loss

    def forward(self, x):
        return self.inner(x)

    def generate_batch(self, batch_size, generator=None):
        return self.inner.generate_batch(batch_size, generator)

    def loss(self, x, x_hat):
        return self.inner.loss(x, x_hat)


@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_fast_and_autograd_training_reach_the_same_losses(activation):
    """Both paths, from the same init, for 600 steps: per-instance eval losses within 10% (+1e-4 absolute).

    The two paths draw different batches, so they cannot agree exactly; both
    must also improve on the init by at least 3x on every instance.
    """
    base = ToyModel(
        8,
        3,
        n_instances=4,
        feature_probability=torch.tensor([1.0, 0.3, 0.1, 0.03]),
        importance=0.8 ** torch.arange(8.0),
        activation=activation,
        seed=0,
    )
    fast, slow = copy.deepcopy(base), copy.deepcopy(base)
    kw = dict(steps=600, batch_size=512, lr=1e-2, seed=1, progress=False, device="cpu")
    h_fast = supercourse.train(fast, **kw)
    h_slow = supercourse.train(NotAToyModel(slow), **kw)
    assert h_fast.losses.shape == h_slow.losses.shape == (len(h_fast.steps), 4)

    x = base.generate_batch(100_000, generator=torch.Generator().manual_seed(123))
    with torch.no_grad():
        l_init = base.per_instance_loss(x, base(x))
        l_fast = fast.per_instance_loss(x, fast(x))
        l_slow = slow.per_instance_loss(x, slow(x))
    assert (l_fast < l_init / 3).all() and (l_slow < l_init / 3).all(), (l_init, l_fast, l_slow)
    assert torch.allclose(l_fast, l_slow, rtol=0.10, atol=1e-4), (l_fast, l_slow)
    # the number of features each learned agrees too
    n_fast = supercourse.metrics.n_represented(fast.W)
    n_slow = supercourse.metrics.n_represented(slow.W)
    assert (n_fast - n_slow).abs().max() <= 1, (n_fast, n_slow)
