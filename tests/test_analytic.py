"""The hand-written gradients (supercourse.analytic, and the toy step fed with batches) equal autograd's.

Each step reads its batches from a callable, fills the parameters' ``.grad``
and reports the per-instance loss; on the batch it trained on, every gradient
and the loss must equal what autograd computes from the model's own
``forward`` and ``loss`` (float64: 1e-9 relative; float32: 1e-4).
"""

from __future__ import annotations

import pytest
import torch

from supercourse import ToyModel
from supercourse import sae as sae_lib
from supercourse.analytic import AbsValueStep, NeuronStep, SAEStep
from supercourse.correlation import SetModel
from supercourse.fast import ToyModelStep
from supercourse.neurons import AbsValueModel, NeuronModel

DTYPES = [(torch.float64, 1e-9, 1e-12), (torch.float32, 1e-4, 1e-6)]
FEATURES = sae_lib.toy_features(d_in=6, n_features=9, expected_l0=1.5, seed=0)


class SAEWithData(sae_lib.SparseAutoencoder):
    """An SAE that draws its own batches (known features), so train() and the reference loop can run it."""

    def generate_batch(self, batch_size, generator=None):
        h = FEATURES.sample(batch_size, generator).to(self.W_e.dtype)
        return h.expand(batch_size, self.n_instances, self.d_in)


def _jitter_biases(model, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # biases off zero: activations on both sides of every ReLU
        for name in ("b_final", "b_e", "b_d"):
            if hasattr(model, name):
                p = getattr(model, name)
                p.copy_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model


def neuron_model(dtype):
    m = NeuronModel(7, 3, n_instances=3, feature_probability=torch.tensor([1.0, 0.3, 0.1]),
                    importance=0.8 ** torch.arange(7.0), seed=0)
    return _jitter_biases(m.to(dtype), 1)


def abs_model(dtype):
    m = AbsValueModel(7, 5, n_instances=3, feature_probability=torch.tensor([1.0, 0.3, 0.1]),
                      importance=0.8 ** torch.arange(7.0), seed=0)
    return _jitter_biases(m.to(dtype), 2)


def set_model(dtype, activation="relu"):
    m = SetModel(3, 2, 2, n_instances=3, feature_probability=torch.tensor([0.3, 0.1, 0.05]), activation=activation,
                 importance=0.9 ** torch.arange(6.0), seed=0)
    return _jitter_biases(m.to(dtype), 3)


def sae_model(dtype, **kw):
    m = SAEWithData(6, 10, 3, seed=1, **kw)
    return _jitter_biases(m.to(dtype), 4)


MODELS = {
    "neuron": neuron_model,
    "abs": abs_model,
    "sets-relu": set_model,
    "sets-linear": lambda dtype: set_model(dtype, "linear"),
    "sae-l1": lambda dtype: sae_model(dtype, l1_coeff=[0.0, 0.01, 0.1]),
    "sae-l1-masked": lambda dtype: sae_model(dtype, l1_coeff=[0.0, 0.01, 0.1], dict_sizes=[10, 6, 3]),
    "sae-topk": lambda dtype: sae_model(dtype, k=2),
    "sae-topk-masked": lambda dtype: sae_model(dtype, k=2, dict_sizes=[10, 6, 3]),
}


def _parameters(model):
    return [p for _, p in model.named_parameters()]


def _detached(out):
    return tuple(o.detach() for o in out) if isinstance(out, tuple) else out.detach()


def check_step_against_autograd(model, rtol, atol, batch_size=64, calls=3):
    gen = torch.Generator().manual_seed(0)
    seen = []

    def batches():
        seen.append(model.generate_batch(batch_size, generator=gen))
        return seen[-1]

    step = model._analytic_step(batch_size, gen, batches)
    for _ in range(calls):  # several batches: the step keeps no state between calls
        per = step(want_loss=True)
        x = seen[-1]
        out = model(x)
        loss = model.loss(x, out)
        grads = torch.autograd.grad(loss, _parameters(model))
        for (name, p), g in zip(model.named_parameters(), grads):
            torch.testing.assert_close(p.grad, g, rtol=rtol, atol=atol, msg=lambda m: f"{name}: {m}")
        torch.testing.assert_close(per, model.per_instance_loss(x, _detached(out)), rtol=rtol, atol=atol)
        with torch.no_grad():  # move the weights so the next batch meets a new model
            for p, g in zip(_parameters(model), grads):
                p.sub_(0.05 * g.sign())
    return step, seen


@pytest.mark.parametrize("kind", sorted(MODELS))
@pytest.mark.parametrize("dtype, rtol, atol", DTYPES, ids=["float64", "float32"])
def test_analytic_gradient_equals_autograd(kind, dtype, rtol, atol):
    check_step_against_autograd(MODELS[kind](dtype), rtol, atol)


def test_the_steps_are_the_models_own():
    assert isinstance(neuron_model(torch.float32)._analytic_step(4, None, lambda: None), NeuronStep)
    assert isinstance(abs_model(torch.float32)._analytic_step(4, None, lambda: None), AbsValueStep)
    assert isinstance(sae_model(torch.float32)._analytic_step(4, None, lambda: None), SAEStep)
    step = set_model(torch.float32)._analytic_step(4, None, lambda: None)
    assert isinstance(step, ToyModelStep) and step.batches is not None and not step.numpy_rng


@pytest.mark.parametrize("gram", [True, False], ids=["gram", "standard"])
def test_toy_step_on_given_batches_equals_autograd_in_both_forms(gram):
    model = _jitter_biases(ToyModel(5, 2, n_instances=3, feature_probability=torch.tensor([1.0, 0.2, 0.05]),
                                    seed=0).double(), 5)
    gen = torch.Generator().manual_seed(1)
    seen = []

    def batches():
        seen.append(model.generate_batch(32, generator=gen))
        return seen[-1]

    step = ToyModelStep(model, 32, gen, gram=gram, batches=batches)
    for _ in range(2):
        step(False)
        x = seen[-1]
        gW, gb = torch.autograd.grad(model.loss(x, model(x)), [model.W, model.b_final])
        torch.testing.assert_close(model.W.grad, gW, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(model.b_final.grad, gb, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(step.x, x.transpose(0, 1))


def test_the_step_uses_exactly_the_batches_it_is_given():
    model = neuron_model(torch.float64)
    fixed = model.generate_batch(16, generator=torch.Generator().manual_seed(3))
    step = NeuronStep(model, 16, lambda: fixed)
    assert torch.equal(step.x, torch.zeros(3, 16, 7)), "nothing drawn yet"
    step(False)
    torch.testing.assert_close(step.x, fixed.transpose(0, 1))


def test_want_loss_false_returns_none_and_cleared_grads_come_back():
    model = abs_model(torch.float64)
    gen = torch.Generator().manual_seed(0)
    x = model.generate_batch(32, generator=gen)
    step = AbsValueStep(model, 32, lambda: x)
    for p in model.parameters():
        p.grad = None  # e.g. zero_grad(set_to_none=True) between steps
    assert step(False) is None
    grads = torch.autograd.grad(model.loss(x, model(x)), _parameters(model))
    for p, g in zip(_parameters(model), grads):
        torch.testing.assert_close(p.grad, g)


def test_a_batch_of_the_wrong_shape_names_the_expected_shape():
    model = neuron_model(torch.float32)
    step = NeuronStep(model, 8, lambda: torch.zeros(8, 2, 7))
    with pytest.raises(ValueError, match=r"batch=8, n_instances=3"):
        step(False)
    toy = ToyModelStep(set_model(torch.float32), 8, None, batches=lambda: torch.zeros(4, 3, 6))
    with pytest.raises(ValueError, match=r"batch=8, n_instances=3, n_features=6"):
        toy(False)


def test_sae_step_records_the_latents_that_fired():
    model = sae_model(torch.float64, l1_coeff=0.01, dict_sizes=[10, 6, 3])
    with torch.no_grad():
        model.b_e[:, 5:] = -100.0  # latents 5.. can never fire
    gen = torch.Generator().manual_seed(0)
    step = SAEStep(model, 256, lambda: model.generate_batch(256, generator=gen))
    step(False)
    assert not step.fired[:, 5:].any()
    assert step.fired[0, :5].any() and not step.fired[2, 3:].any(), "masked latents never fire"
