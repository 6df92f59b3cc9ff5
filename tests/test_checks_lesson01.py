"""Lesson 1's checks bite: the solution notebook scores full marks, plausible mistakes lose points.

Each mutant is a mistake a learner could really make. The test asserts that it
loses points and that a failing property's message names the mistake (a
keyword from the message the learner would read).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from autograder import run_exercise
from autograder.exercises import get_exercise
from lesson_tools import assert_rejected as _assert_rejected, solution_namespace

LESSON = "01-sparse-features"


@pytest.fixture(scope="module")
def ns():
    return solution_namespace(LESSON)


# --------------------------------------------------------------------------- the registry


def test_points_per_exercise():
    assert get_exercise("01.generate_batch").points == 8
    assert get_exercise("01.ToyModel").points == 6
    assert get_exercise("01.importance_loss").points == 4


# --------------------------------------------------------------------------- 01.generate_batch


def _rand(shape, p, generator):
    return torch.rand(shape, generator=generator, device=p.device, dtype=p.dtype)


def all_features_on_together(batch_size, feature_probability, generator=None):
    p = feature_probability
    active = _rand((batch_size, p.shape[0], 1), p, generator) < p
    return _rand((batch_size, *p.shape), p, generator) * active


def one_mask_per_batch(batch_size, feature_probability, generator=None):
    p = feature_probability
    active = _rand((1, *p.shape), p, generator) < p
    return _rand((batch_size, *p.shape), p, generator) * active


def single_draw_not_rescaled(batch_size, feature_probability, generator=None):
    u = _rand((batch_size, *feature_probability.shape), feature_probability, generator)
    return u * (u < feature_probability)


def density_read_as_sparsity(batch_size, feature_probability, generator=None):
    p = feature_probability
    active = _rand((batch_size, *p.shape), p, generator) > p
    return _rand((batch_size, *p.shape), p, generator) * active


def first_instance_density_everywhere(batch_size, feature_probability, generator=None):
    p = feature_probability
    active = _rand((batch_size, *p.shape), p, generator) < p[0]
    return _rand((batch_size, *p.shape), p, generator) * active


def one_density_per_instance(batch_size, feature_probability, generator=None):
    p = feature_probability
    active = _rand((batch_size, *p.shape), p, generator) < p.mean(dim=1, keepdim=True)
    return _rand((batch_size, *p.shape), p, generator) * active


def same_draw_for_every_instance(batch_size, feature_probability, generator=None):
    p = feature_probability
    active = _rand((batch_size, 1, p.shape[1]), p, generator) < p
    values = _rand((batch_size, 1, p.shape[1]), p, generator)
    return values * active


def ignores_generator(batch_size, feature_probability, generator=None):
    p = feature_probability
    active = torch.rand(batch_size, *p.shape) < p
    return torch.rand(batch_size, *p.shape) * active


def binary_magnitudes(batch_size, feature_probability, generator=None):
    p = feature_probability
    return (_rand((batch_size, *p.shape), p, generator) < p).float()


def normal_magnitudes(batch_size, feature_probability, generator=None):
    p = feature_probability
    active = _rand((batch_size, *p.shape), p, generator) < p
    return torch.randn(batch_size, *p.shape, generator=generator) * active


def returns_the_mask(batch_size, feature_probability, generator=None):
    p = feature_probability
    return _rand((batch_size, *p.shape), p, generator) < p


def calls_the_reference(batch_size, feature_probability, generator=None):
    from supercourse.data import sparse_uniform

    return sparse_uniform(batch_size, feature_probability, generator=generator)


@pytest.mark.parametrize(
    "impl, keyword",
    [
        (all_features_on_together, "switches all features of an instance on together"),
        (one_mask_per_batch, "drawn once per batch"),
        (single_draw_not_rescaled, "rescale it to u / p"),
        (density_read_as_sparsity, "look like 1 - p"),
        (first_instance_density_everywhere, "instance k must use its own row"),
        (one_density_per_instance, "features of an instance all got the same density"),
        (same_draw_for_every_instance, "Independence across instances"),
        (ignores_generator, "Reproducibility"),
        (binary_magnitudes, "Every active value is the same"),
        (normal_magnitudes, "should lie in [0, 1]"),
        (returns_the_mask, "floating-point"),
        (calls_the_reference, "implement this yourself"),
    ],
    ids=lambda v: v.__name__ if callable(v) else "",
)
def test_generate_batch_mutants(impl, keyword):
    _assert_rejected("01.generate_batch", impl, keyword)


# --------------------------------------------------------------------------- 01.ToyModel


def _std(n, m):
    return math.sqrt(2.0 / (n + m))


def _mutant_model(ns, forward=None, init=None):
    """A subclass of the solution's ToyModel with one method replaced."""
    base = ns["ToyModel"]
    attrs = {}
    if forward is not None:
        attrs["forward"] = forward
    if init is not None:

        def __init__(self, n_features, n_hidden, n_instances=1, feature_probability=1.0, importance=1.0, activation="relu"):
            base.__init__(self, n_features, n_hidden, n_instances, feature_probability, importance, activation)
            init(self)

        attrs["__init__"] = __init__
    return type("ToyModel", (base,), attrs)


def _out(self, pre):
    return torch.relu(pre) if self.activation == "relu" else pre


def forward_without_bias(self, x):
    h = torch.einsum("bif,ihf->bih", x, self.W)
    return _out(self, torch.einsum("bih,ihf->bif", h, self.W))


def forward_relu_on_hidden(self, x):
    h = torch.relu(torch.einsum("bif,ihf->bih", x, self.W))
    return _out(self, torch.einsum("bih,ihf->bif", h, self.W) + self.b_final)


def forward_bias_after_relu(self, x):
    h = torch.einsum("bif,ihf->bih", x, self.W)
    return _out(self, torch.einsum("bih,ihf->bif", h, self.W)) + self.b_final


def forward_always_relu(self, x):
    h = torch.einsum("bif,ihf->bih", x, self.W)
    return torch.relu(torch.einsum("bih,ihf->bif", h, self.W) + self.b_final)


def forward_detached(self, x):
    W = self.W.detach()
    h = torch.einsum("bif,ihf->bih", x, W)
    return _out(self, torch.einsum("bih,ihf->bif", h, W) + self.b_final.detach())


def forward_encoder_detached(self, x):
    h = torch.einsum("bif,ihf->bih", x, self.W.detach())  # right values, half the gradient of W
    return _out(self, torch.einsum("bih,ihf->bif", h, self.W) + self.b_final)


def forward_first_instance_weights(self, x):
    W = self.W[0]  # (n_hidden, n_features) used for every instance
    h = torch.einsum("bif,hf->bih", x, W)
    return _out(self, torch.einsum("bih,hf->bif", h, W) + self.b_final)


def init_transposed(self):
    self.W = nn.Parameter(_std(self.n_features, self.n_hidden) * torch.randn(self.n_instances, self.n_features, self.n_hidden))


def forward_transposed(self, x):
    h = torch.einsum("bif,ifh->bih", x, self.W)
    return _out(self, torch.einsum("bih,ifh->bif", h, self.W) + self.b_final)


def init_xavier_3d(self):
    self.W = nn.Parameter(nn.init.xavier_normal_(torch.empty(self.n_instances, self.n_hidden, self.n_features)))


def init_standard_normal(self):
    self.W = nn.Parameter(torch.randn(self.n_instances, self.n_hidden, self.n_features))


def init_plain_tensors(self):
    W, b = self.W.detach().clone(), self.b_final.detach().clone()
    del self.W, self.b_final
    self.W, self.b_final = W, b


def init_same_for_all_instances(self):
    w = _std(self.n_features, self.n_hidden) * torch.randn(1, self.n_hidden, self.n_features)
    self.W = nn.Parameter(w.repeat(self.n_instances, 1, 1))


def init_random_bias(self):
    self.b_final = nn.Parameter(0.1 * torch.randn(self.n_instances, self.n_features))


TOY_MODEL_MUTANTS = {
    "transposed_W": (dict(init=init_transposed, forward=forward_transposed), "looks transposed"),
    "missing_bias": (dict(forward=forward_without_bias), "the bias is missing"),
    "relu_on_hidden": (dict(forward=forward_relu_on_hidden), "ReLU to the hidden layer"),
    "bias_after_relu": (dict(forward=forward_bias_after_relu), "added after the ReLU"),
    "relu_in_linear_model": (dict(forward=forward_always_relu), "although activation='linear'"),
    "detached_weights": (dict(forward=forward_detached), "does not depend differentiably"),
    "encoder_detached": (dict(forward=forward_encoder_detached), "right values but the gradient"),
    "first_instance_weights_everywhere": (dict(forward=forward_first_instance_weights), "instance 0's weights"),
    "xavier_on_3d_tensor": (dict(init=init_xavier_3d), "xavier_normal_"),
    "standard_normal_init": (dict(init=init_standard_normal), "Xavier-normal"),
    "plain_tensors_not_parameters": (dict(init=init_plain_tensors), "nn.Parameter"),
    "same_init_every_instance": (dict(init=init_same_for_all_instances), "same W"),
    "random_bias_init": (dict(init=init_random_bias), "b_final should start at zero"),
}


@pytest.mark.parametrize("name", list(TOY_MODEL_MUTANTS))
def test_toy_model_mutants(ns, name):
    kwargs, keyword = TOY_MODEL_MUTANTS[name]
    _assert_rejected("01.ToyModel", _mutant_model(ns, **kwargs), keyword)


def test_toy_model_mutants_keep_unrelated_points(ns):
    """Partial credit: a model whose only mistake is the missing bias keeps its parameter and init points."""
    verdict = run_exercise("01.ToyModel", _mutant_model(ns, forward=forward_without_bias))
    passed = {p.test for p in verdict.properties if p.passed}
    assert {"test_parameters", "test_initialisation"} <= passed
    assert "test_forward_relu" not in passed and "test_forward_linear" not in passed


def test_unimplemented_model_scores_zero():
    class ToyModel(nn.Module):
        def __init__(self, *args, **kwargs):
            super().__init__()
            raise NotImplementedError()

    verdict = run_exercise("01.ToyModel", ToyModel)
    assert verdict.points == 0
    assert "not implemented yet" in verdict.message


# --------------------------------------------------------------------------- 01.importance_loss


def loss_mean_over_instances(x, x_hat, importance):
    return (importance * (x - x_hat) ** 2).mean(dim=(0, 2)).mean()


def loss_without_importance(x, x_hat, importance):
    return ((x - x_hat) ** 2).mean(dim=(0, 2)).sum()


def loss_importance_squared(x, x_hat, importance):
    return ((importance * (x - x_hat)) ** 2).mean(dim=(0, 2)).sum()


def loss_sum_over_features(x, x_hat, importance):
    return (importance * (x - x_hat) ** 2).sum(dim=2).mean(dim=0).sum()


def loss_absolute_error(x, x_hat, importance):
    return (importance * (x - x_hat).abs()).mean(dim=(0, 2)).sum()


def loss_returns_float(x, x_hat, importance):
    return (importance * (x - x_hat) ** 2).mean(dim=(0, 2)).sum().item()


def loss_first_instance_importance(x, x_hat, importance):
    return (importance[0] * (x - x_hat) ** 2).mean(dim=(0, 2)).sum()


def loss_mean_over_everything(x, x_hat, importance):
    return (importance * (x - x_hat) ** 2).mean()


@pytest.mark.parametrize(
    "impl, keyword",
    [
        (loss_mean_over_instances, "averaged over instances"),
        (loss_mean_over_everything, "averaged over instances"),
        (loss_without_importance, "changed nothing"),
        (loss_importance_squared, "I_i^2"),
        (loss_sum_over_features, "summed over features"),
        (loss_absolute_error, "mean absolute error"),
        (loss_returns_float, "0-dimensional tensor"),
        (loss_first_instance_importance, "instance 0's importances"),
    ],
    ids=lambda v: v.__name__ if callable(v) else "",
)
def test_importance_loss_mutants(impl, keyword):
    _assert_rejected("01.importance_loss", impl, keyword)


def test_importance_loss_partial_credit():
    """Averaging over instances costs only the instance-reduction points."""
    verdict = run_exercise("01.importance_loss", loss_mean_over_instances)
    failed = {p.test for p in verdict.properties if not p.passed}
    assert failed == {"test_sum_over_instances", "test_matches_reference"}


# --------------------------------------------------------------------------- issue 9: blind spots, more mistakes


def no_mask_at_all(batch_size, feature_probability, generator=None):
    return _rand((batch_size, *feature_probability.shape), feature_probability, generator)


def always_float32(batch_size, feature_probability, generator=None):
    p = feature_probability
    shape = (batch_size, *p.shape)
    return torch.rand(shape, generator=generator) * (torch.rand(shape, generator=generator) < p)


def through_numpy(batch_size, feature_probability, generator=None):
    import numpy as np

    p = torch.from_numpy(np.asarray(feature_probability.numpy()))
    return _rand((batch_size, *p.shape), p, generator) * (_rand((batch_size, *p.shape), p, generator) < p)


def fixed_default_generator(batch_size, feature_probability, generator=None):
    generator = generator or torch.Generator().manual_seed(0)
    p = feature_probability
    return _rand((batch_size, *p.shape), p, generator) * (_rand((batch_size, *p.shape), p, generator) < p)


def seeds_global_stream(batch_size, feature_probability, generator=None):
    if generator is None:
        torch.manual_seed(0)
    p = feature_probability
    return _rand((batch_size, *p.shape), p, generator) * (_rand((batch_size, *p.shape), p, generator) < p)


def coarse_seed(batch_size, feature_probability, generator=None):
    gen = torch.Generator().manual_seed(int(generator.initial_seed()) // 10) if generator is not None else None
    p = feature_probability
    return _rand((batch_size, *p.shape), p, gen) * (_rand((batch_size, *p.shape), p, gen) < p)


@pytest.mark.parametrize(
    "impl, keyword",
    [
        (no_mask_at_all, "every entry is non-zero"),
        (always_float32, "float64"),
        (through_numpy, "nn.Parameter"),
        (fixed_default_generator, "Without a generator"),
        (seeds_global_stream, "never seed it"),
        (coarse_seed, "different seeds"),
    ],
    ids=lambda v: v.__name__ if callable(v) else "",
)
def test_generate_batch_blind_spots(impl, keyword):
    _assert_rejected("01.generate_batch", impl, keyword)


def init_uniform_same_std(self):
    std = _std(self.n_features, self.n_hidden)
    u = (torch.rand(self.n_instances, self.n_hidden, self.n_features) * 2 - 1) * math.sqrt(3) * std
    self.W = nn.Parameter(u)


def init_hard_coded_std(self):
    self.W = nn.Parameter(0.2 * torch.randn(self.n_instances, self.n_hidden, self.n_features))


def init_seeded(self):
    gen = torch.Generator().manual_seed(0)
    std = _std(self.n_features, self.n_hidden)
    self.W = nn.Parameter(std * torch.randn(self.n_instances, self.n_hidden, self.n_features, generator=gen))


def forward_float32(self, x):
    x = x.float()
    W, b = self.W.float(), self.b_final.float()
    h = torch.einsum("bif,ihf->bih", x, W)
    return _out(self, torch.einsum("bih,ihf->bif", h, W) + b)


def forward_through_numpy(self, x):
    x = torch.from_numpy(x.numpy())
    h = torch.einsum("bif,ihf->bih", x, self.W)
    return _out(self, torch.einsum("bih,ihf->bif", h, self.W) + self.b_final)


def _with_defaults(ns, **defaults):
    base = ns["ToyModel"]

    def __init__(self, n_features, n_hidden, n_instances=defaults.get("n_instances", 1), feature_probability=1.0,
                 importance=1.0, activation=defaults.get("activation", "relu")):
        base.__init__(self, n_features, n_hidden, n_instances, feature_probability, importance, activation)

    return type("ToyModel", (base,), {"__init__": __init__})


TOY_MODEL_BLIND_SPOTS = {
    "uniform_init_same_std": (dict(init=init_uniform_same_std), "not normal"),
    "hard_coded_std": (dict(init=init_hard_coded_std), "do not hard-code it"),
    "seeded_init": (dict(init=init_seeded), "one after the other"),
    "forward_in_float32": (dict(forward=forward_float32), "float64"),
    "forward_through_numpy": (dict(forward=forward_through_numpy), "numpy()"),
}


@pytest.mark.parametrize("name", list(TOY_MODEL_BLIND_SPOTS))
def test_toy_model_blind_spots(ns, name):
    kwargs, keyword = TOY_MODEL_BLIND_SPOTS[name]
    _assert_rejected("01.ToyModel", _mutant_model(ns, **kwargs), keyword)


@pytest.mark.parametrize("defaults, keyword", [({"activation": "linear"}, "the default activation"),
                                              ({"n_instances": 2}, "(1, 2, 5)")])
def test_toy_model_wrong_defaults(ns, defaults, keyword):
    _assert_rejected("01.ToyModel", _with_defaults(ns, **defaults), keyword)


def loss_in_float32(x, x_hat, importance):
    return (importance.float() * (x.float() - x_hat.float()) ** 2).mean(dim=(0, 2)).sum()


def loss_through_numpy(x, x_hat, importance):
    imp = torch.from_numpy(importance.numpy())
    return (imp * (x - x_hat) ** 2).mean(dim=(0, 2)).sum()


def loss_squeezed(x, x_hat, importance):
    diff = (x - x_hat).squeeze()
    return (importance * diff**2).mean(dim=(0, 2)).sum()


@pytest.mark.parametrize(
    "impl, keyword",
    [(loss_in_float32, "float64"), (loss_through_numpy, "nn.Parameter"), (loss_squeezed, "batch of one example")],
    ids=lambda v: v.__name__ if callable(v) else "",
)
def test_importance_loss_blind_spots(impl, keyword):
    _assert_rejected("01.importance_loss", impl, keyword)


# --------------------------------------------------------------------------- correct alternatives keep full marks


def gb_where_bernoulli(batch_size, feature_probability, generator=None):
    p = feature_probability
    shape = (batch_size, *p.shape)
    mask = torch.bernoulli(p.detach().expand(shape), generator=generator).bool()
    values = torch.rand(shape, generator=generator, dtype=p.dtype, device=p.device)
    return torch.where(mask, values, torch.zeros_like(values))


def gb_float64_inside(batch_size, feature_probability, generator=None):
    p = feature_probability.detach().double()
    u = torch.rand((batch_size, *p.shape), generator=generator, dtype=torch.float64)
    v = torch.rand((batch_size, *p.shape), generator=generator, dtype=torch.float64)
    return (v * (u < p)).to(feature_probability.dtype)


def gb_uniform_in_place(batch_size, feature_probability, generator=None):
    p = feature_probability
    values = torch.empty(batch_size, *p.shape, dtype=p.dtype, device=p.device).uniform_(0, 1, generator=generator)
    keep = torch.empty_like(values).uniform_(generator=generator).lt(p).to(p.dtype)
    return keep * values


@pytest.mark.parametrize("impl", [gb_where_bernoulli, gb_float64_inside, gb_uniform_in_place], ids=lambda f: f.__name__)
def test_generate_batch_alternatives_keep_full_marks(impl):
    verdict = run_exercise("01.generate_batch", impl)
    assert verdict.passed, verdict.report()


def init_loop_normal(self):
    std = _std(self.n_features, self.n_hidden)
    self.W = nn.Parameter(torch.empty(self.n_instances, self.n_hidden, self.n_features))
    with torch.no_grad():
        for k in range(self.n_instances):
            nn.init.normal_(self.W[k], 0.0, std)


def init_xavier_per_instance(self):
    W = torch.empty(self.n_instances, self.n_hidden, self.n_features)
    for k in range(self.n_instances):
        nn.init.xavier_normal_(W[k])
    self.W = nn.Parameter(W)


def forward_bmm(self, x):
    xt = x.transpose(0, 1)  # (k, batch, n)
    h = torch.bmm(xt, self.W.transpose(1, 2))  # (k, batch, m)
    out = (torch.bmm(h, self.W) + self.b_final[:, None, :]).transpose(0, 1)
    return torch.relu(out) if self.activation == "relu" else out


def forward_matmul(self, x):
    h = (self.W.unsqueeze(0) @ x.unsqueeze(-1))  # (batch, k, m, 1)
    out = (self.W.transpose(-1, -2).unsqueeze(0) @ h).squeeze(-1) + self.b_final
    return out.clamp(min=0) if self.activation == "relu" else out


def forward_loop(self, x):
    outs = []
    for k in range(self.n_instances):
        h = x[:, k] @ self.W[k].T
        outs.append(h @ self.W[k] + self.b_final[k])
    out = torch.stack(outs, dim=1)
    return torch.where(out > 0, out, torch.zeros_like(out)) if self.activation == "relu" else out


@pytest.mark.parametrize("kwargs", [dict(init=init_loop_normal, forward=forward_bmm),
                                    dict(init=init_xavier_per_instance, forward=forward_matmul),
                                    dict(forward=forward_loop)], ids=["bmm", "matmul", "loop"])
def test_toy_model_alternatives_keep_full_marks(ns, kwargs):
    verdict = run_exercise("01.ToyModel", _mutant_model(ns, **kwargs))
    assert verdict.passed, verdict.report()


def loss_einsum(x, x_hat, importance):
    return torch.einsum("if,bif->", importance, (x - x_hat) ** 2) / (x.shape[0] * x.shape[2])


def loss_float64_inside(x, x_hat, importance):
    err = (x.double() - x_hat.double()) ** 2 * importance.double()
    return err.mean(dim=(0, 2)).sum().to(x_hat.dtype)


def loss_loop_over_instances(x, x_hat, importance):
    return sum(((importance[k] * (x[:, k] - x_hat[:, k]) ** 2).mean() for k in range(x.shape[1])), torch.zeros((), dtype=x.dtype))


@pytest.mark.parametrize("impl", [loss_einsum, loss_float64_inside, loss_loop_over_instances], ids=lambda f: f.__name__)
def test_importance_loss_alternatives_keep_full_marks(impl):
    verdict = run_exercise("01.importance_loss", impl)
    assert verdict.passed, verdict.report()


def test_solution_keeps_full_marks(ns):
    for name in ("generate_batch", "ToyModel", "importance_loss"):
        verdict = run_exercise(f"01.{name}", ns[name])
        assert verdict.passed, verdict.report()

