"""supercourse.fast.ToyModelStep: the analytic gradient equals autograd's, and trains the same models.

``step.x`` holds the batch the last call trained on, laid out
``(n_instances, batch, n_features)``. The step has several code paths (the
"Gram" and the standard formulation, blocks of instances (in turn or in parallel), a NumPy sampler that draws
only the active entries of very sparse features); every one is checked
against autograd on the batch it drew, and its samples against the model's
distribution.
"""

from __future__ import annotations

import copy
import inspect
import math

import pytest
import torch
from torch import nn

import supercourse
from supercourse import ToyModel
from supercourse.fast import ToyModelStep

Z = 6.0  # statistical tolerance in standard errors


def make(activation: str, dtype=torch.float32, n_inst=3, n=7, m=3, p=None, seed=0) -> ToyModel:
    model = ToyModel(
        n,
        m,
        n_instances=n_inst,
        feature_probability=torch.linspace(1.0, 0.1, n_inst) if p is None else p,
        importance=0.8 ** torch.arange(n, dtype=torch.float32),
        activation=activation,
        seed=seed,
    ).to(dtype)
    with torch.no_grad():  # a non-zero bias puts ReLU pre-activations on both sides of 0
        model.b_final.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(seed + 1))
    return model


_KNOBS = set(inspect.signature(ToyModelStep.__init__).parameters)


def make_step(model: ToyModel, batch_size: int, seed: int = 0, **knobs) -> ToyModelStep:
    """A step with optional implementation knobs (skipped if this version of fast.py lacks one)."""
    missing = set(knobs) - _KNOBS
    if missing:
        pytest.skip(f"ToyModelStep has no {sorted(missing)} option in this version")
    return ToyModelStep(model, batch_size, torch.Generator().manual_seed(seed), **knobs)


def autograd_grads(model: ToyModel, x_bif: torch.Tensor):
    """Autograd's gradient of ``model.loss(x, model(x))`` (leaves ``.grad`` alone)."""
    loss = model.loss(x_bif, model(x_bif))
    gW, gb = torch.autograd.grad(loss, [model.W, model.b_final])
    return loss, gW, gb


def check_against_autograd(model, step, rtol, atol, calls=3):
    for _ in range(calls):  # several draws: the step must not leak state between calls
        per = step(want_loss=True)
        x = step.x.transpose(0, 1).clone()  # -> (batch, n_instances, n_features)
        assert x.shape == (step.x.shape[1], model.n_instances, model.n_features)
        loss, gW, gb = autograd_grads(model, x)
        assert model.W.grad is not None and model.W.grad.shape == model.W.shape
        torch.testing.assert_close(model.W.grad, gW, rtol=rtol, atol=atol)
        torch.testing.assert_close(model.b_final.grad, gb, rtol=rtol, atol=atol)
        # the per-instance loss the step reports is model.per_instance_loss on the same batch
        torch.testing.assert_close(per, model.per_instance_loss(x, model(x)).detach(), rtol=rtol, atol=atol)
        torch.testing.assert_close(per.sum(), loss.detach(), rtol=rtol, atol=atol)
        with torch.no_grad():  # move the weights so the next draw sees a new model
            model.W.add_(0.05 * gW.sign())
            model.b_final.sub_(0.05 * gb.sign())
    return x


# Tolerances: float64 1e-9 relative (exact maths, different summation order);
# float32 1e-4 relative, 1e-6 absolute.
DTYPES = [(torch.float64, 1e-9, 1e-12), (torch.float32, 1e-4, 1e-6)]


@pytest.mark.parametrize("activation", ["relu", "linear"])
@pytest.mark.parametrize("dtype, rtol, atol", DTYPES, ids=["float64", "float32"])
def test_fast_gradient_equals_autograd(activation, dtype, rtol, atol):
    model = make(activation, dtype)
    step = make_step(model, 256, seed=3)
    assert step.x.shape == (3, 256, 7)
    x = check_against_autograd(model, step, rtol, atol)
    if activation == "relu":
        pre = torch.einsum("bih,ihf->bif", model.hidden(x), model.W) + model.b_final
        assert (pre > 0).any() and (pre < 0).any(), "the test must exercise both sides of the ReLU"


@pytest.mark.parametrize("activation", ["relu", "linear"])
@pytest.mark.parametrize(
    "shape, knobs",
    [
        ((3, 7, 3, 128), dict(gram=True)),
        ((3, 7, 3, 128), dict(gram=False)),
        ((2, 2, 1, 512), dict(gram=None)),  # the n=2, m=1 phase-diagram shape
        ((3, 7, 3, 128), dict(numpy_rng=False)),
        # large problems are processed a block of instances at a time (and in parallel with workers)
        ((8, 20, 5, 4096), dict()),
        ((4, 64, 4, 4096), dict(gram=True)),
        ((8, 20, 5, 4096), dict(workers=2)),
    ],
    ids=["gram", "standard", "n2m1", "torch-rng", "large", "large-gram", "large-workers"],
)
def test_every_code_path_matches_autograd(activation, shape, knobs):
    K, n, m, B = shape
    # densities down to 0.2%: the sparse sampler takes over below about 6% at these batch sizes
    p = torch.logspace(0, -2.7, K)[:, None].expand(K, n).clone()
    model = make(activation, torch.float64, n_inst=K, n=n, m=m, p=p, seed=K + n)
    step = make_step(model, B, seed=1, **knobs)
    check_against_autograd(model, step, rtol=1e-9, atol=1e-12, calls=2)


def test_gradient_is_not_trivially_zero():
    model = make("relu")
    step = make_step(model, 64)
    step(False)
    assert model.W.grad.abs().max() > 1e-3 and model.b_final.grad.abs().max() > 1e-3


def test_want_loss_false_returns_none_and_still_fills_grads():
    model = make("relu")
    step = make_step(model, 32)
    assert step(False) is None
    x = step.x.transpose(0, 1).clone()
    _, gW, _ = autograd_grads(model, x)
    torch.testing.assert_close(model.W.grad, gW, rtol=1e-4, atol=1e-6)


def test_grads_reallocated_if_cleared():
    model = make("relu", torch.float64)
    step = make_step(model, 64)
    model.W.grad = model.b_final.grad = None  # e.g. optimizer.zero_grad(set_to_none=True)
    step(False)
    _, gW, gb = autograd_grads(model, step.x.transpose(0, 1).clone())
    torch.testing.assert_close(model.W.grad, gW)
    torch.testing.assert_close(model.b_final.grad, gb)


@pytest.mark.parametrize(
    "knobs, n, B, steps",
    [(dict(), 10, 2048, 20), (dict(numpy_rng=False), 10, 2048, 20), (dict(), 20, 4096, 6), (dict(workers=2), 20, 4096, 6)],
    ids=["default", "torch-rng", "large", "large-workers"],
)
def test_step_draws_the_models_distribution(knobs, n, B, steps):
    """Density per (instance, feature), uniform magnitudes in [0, 1), Binomial counts, uniform positions.

    Densities span the dense and the sparse sampler (about 6% and below at batch 2048).
    """
    K = 8
    p = torch.tensor([1.0, 0.5, 0.1, 0.03, 0.005, 0.001, 0.0, 0.3])[:, None].expand(K, n).clone()
    model = ToyModel(n, 5, n_instances=K, feature_probability=p, seed=0)
    step = make_step(model, B, seed=1, **knobs)
    on = torch.zeros(K, n, dtype=torch.float64)
    counts, vals, positions = [], [], []
    for _ in range(steps):
        step(False)
        x = step.x.double()
        assert x.shape == (K, B, n)
        assert (x >= 0).all() and (x < 1).all()
        nz = x != 0
        on += nz.sum(1)
        counts.append(nz.sum(1))
        vals.append(x[nz])
        positions.append(nz[5].nonzero()[:, 0].double())  # batch index of the 0.1% instance's actives
    N = B * steps
    dens = on / N
    pd = p.double()
    # per instance (pooled over its n features) and per feature, within Z standard errors
    se_i = (pd[:, 0] * (1 - pd[:, 0]) / (N * n)).sqrt().clamp_min(1 / N)
    assert ((dens.mean(1) - pd[:, 0]).abs() <= Z * se_i).all(), dens.mean(1)
    se_f = (pd * (1 - pd) / N).sqrt().clamp_min(1 / N)
    assert ((dens - pd).abs() <= Z * se_f).all(), dens
    assert (dens[6] == 0).all() and (dens[0] == 1).all()
    v = torch.cat(vals)
    assert abs(v.mean().item() - 0.5) < Z * math.sqrt(1 / 12 / v.numel())
    assert abs(v.var().item() - 1 / 12) < Z * math.sqrt((1 / 80 - 1 / 144) / v.numel())
    # the number of active entries of one feature in one batch is Binomial(B, p): the sample
    # variance over steps x features matches B p (1 - p) within 5 standard errors (sd ~ sqrt(2 / count))
    c = torch.stack(counts).double()  # (steps, K, n)
    for k in (2, 3, 4, 5):
        pk = p[k, 0].item()
        ratio = c[:, k].var(0).mean().item() / (B * pk * (1 - pk))
        assert abs(ratio - 1) < 5 * math.sqrt(2 / (steps * n)), (k, ratio)
    # positions of actives are uniform over the batch: mean (B-1)/2, sd B/sqrt(12)
    pos = torch.cat(positions)
    assert abs(pos.mean().item() - (B - 1) / 2) < Z * B / math.sqrt(12 * pos.numel())


def test_same_generator_same_batches():
    xs = []
    for seed in (9, 9, 10):
        model = make("relu")
        step = make_step(model, 16, seed=seed)
        step(False)
        step(False)
        xs.append(step.x.clone())
    assert torch.equal(xs[0], xs[1])
    assert not torch.equal(xs[0], xs[2])


def test_x_before_any_call_is_zeros():
    model = make("relu")
    step = make_step(model, 8)
    assert torch.equal(step.x, torch.zeros(3, 8, 7))


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
    """Both paths, from the same init, 250 steps: per-instance eval losses within 10% (+2e-4 absolute).

    The two paths draw different batches, so they cannot agree exactly; both
    must also improve on the init by at least 1.5x on every instance.
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
    kw = dict(steps=250, batch_size=256, lr=2e-2, seed=1, progress=False, device="cpu")
    h_fast = supercourse.train(fast, **kw)
    h_slow = supercourse.train(NotAToyModel(slow), **kw)
    assert h_fast.losses.shape == h_slow.losses.shape == (len(h_fast.steps), 4)
    assert not torch.equal(fast.W, slow.W), "the two runs must really be independent"

    x = base.generate_batch(100_000, generator=torch.Generator().manual_seed(123))
    with torch.no_grad():
        l_init = base.per_instance_loss(x, base(x))
        l_fast = fast.per_instance_loss(x, fast(x))
        l_slow = slow.per_instance_loss(x, slow(x))
    assert (l_fast < l_init / 1.5).all() and (l_slow < l_init / 1.5).all(), (l_init, l_fast, l_slow)
    assert torch.allclose(l_fast, l_slow, rtol=0.10, atol=2e-4), (l_fast, l_slow)
    n_fast = supercourse.metrics.n_represented(fast.W)
    n_slow = supercourse.metrics.n_represented(slow.W)
    assert (n_fast - n_slow).abs().max() <= 1, (n_fast, n_slow)
