"""Lesson 1's mistake table: wrong implementations learners plausibly write, and the words that name them.

The checks diagnose with it (:func:`autograder.toolkit.diagnose` for ``importance_loss``, the forward
mistakes for ``ToyModel``'s forward pass); the lesson proof requires that every entry loses points with a
message containing its keyword. ``generate_batch`` returns random batches, so its mistakes are caught by
statistics whose messages carry the keywords (``compare=False``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

import supercourse
from autograder.toolkit import Mistake

from .alternatives import ToyModel, toy_model

# --------------------------------------------------------------------------- generate_batch


def _rand(shape, p, generator):
    return torch.rand(shape, generator=generator, device=p.device, dtype=p.dtype)


def _two_draws(batch_size, p, generator):
    shape = (batch_size, *p.shape)
    return _rand(shape, p, generator) * (_rand(shape, p, generator) < p)


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
    return (_rand((batch_size, *p.shape), p, generator) < p).to(p.dtype)


def normal_magnitudes(batch_size, feature_probability, generator=None):
    p = feature_probability
    active = _rand((batch_size, *p.shape), p, generator) < p
    return torch.randn(batch_size, *p.shape, generator=generator, dtype=p.dtype) * active


def returns_the_mask(batch_size, feature_probability, generator=None):
    p = feature_probability
    return _rand((batch_size, *p.shape), p, generator) < p


def calls_the_reference(batch_size, feature_probability, generator=None):
    return supercourse.data.sparse_uniform(batch_size, feature_probability, generator=generator)


def no_mask_at_all(batch_size, feature_probability, generator=None):
    return _rand((batch_size, *feature_probability.shape), feature_probability, generator)


def always_float32(batch_size, feature_probability, generator=None):
    p = feature_probability
    shape = (batch_size, *p.shape)
    return torch.rand(shape, generator=generator) * (torch.rand(shape, generator=generator) < p)


def through_numpy(batch_size, feature_probability, generator=None):
    import numpy as np

    p = torch.from_numpy(np.asarray(feature_probability.numpy()))
    return _two_draws(batch_size, p, generator)


def fixed_default_generator(batch_size, feature_probability, generator=None):
    generator = generator or torch.Generator().manual_seed(0)
    return _two_draws(batch_size, feature_probability, generator)


def seeds_global_stream(batch_size, feature_probability, generator=None):
    if generator is None:
        torch.manual_seed(0)
    return _two_draws(batch_size, feature_probability, generator)


def coarse_seed(batch_size, feature_probability, generator=None):
    gen = torch.Generator().manual_seed(int(generator.initial_seed()) // 10) if generator is not None else None
    return _two_draws(batch_size, feature_probability, gen)


def rescaled_by_batch_max(batch_size, feature_probability, generator=None):
    """Magnitudes "normalised to [0, 1]" by the batch's own maximum."""
    x = _two_draws(batch_size, feature_probability, generator)
    return x / x.max()


def normalised_by_batch_mean(batch_size, feature_probability, generator=None):
    """Active values rescaled so that their mean in this batch is exactly 0.5 (the law's mean)."""
    x = _two_draws(batch_size, feature_probability, generator)
    active = x[x != 0]
    return x * (0.5 / active.mean()) if active.numel() else x


def reseeds_global_from_initial_seed(batch_size, feature_probability, generator=None):
    """Reproducible "through" the generator, but from torch's global stream: the caller's generator never moves."""
    if generator is not None:
        torch.manual_seed(generator.initial_seed())
    return _two_draws(batch_size, feature_probability, None)


def copies_the_generator(batch_size, feature_probability, generator=None):
    """Draws from a fresh copy seeded like the caller's: the same batch on every call with one generator."""
    if generator is not None:
        generator = torch.Generator().manual_seed(generator.initial_seed())
    return _two_draws(batch_size, feature_probability, generator)


def unsqueezes_in_place(batch_size, feature_probability, generator=None):
    """``unsqueeze_`` to broadcast against the batch: the caller's tensor changes shape."""
    p = feature_probability
    p.unsqueeze_(0)
    x = _two_draws(batch_size, p[0], generator)
    return x


# --------------------------------------------------------------------------- ToyModel


def _std(n, m):
    return math.sqrt(2.0 / (n + m))


def _zero_bias(self):
    self.b_final = nn.Parameter(torch.zeros(self.n_instances, self.n_features))


def _init_transposed(self):
    self.W = nn.Parameter(_std(self.n_features, self.n_hidden) * torch.randn(self.n_instances, self.n_features, self.n_hidden))
    _zero_bias(self)


def _forward_transposed(self, x):
    h = torch.einsum("bif,ifh->bih", x, self.W)
    return self.act(torch.einsum("bih,ifh->bif", h, self.W) + self.b_final)


def _forward_without_bias(self, x):
    h = torch.einsum("bif,ihf->bih", x, self.W)
    return self.act(torch.einsum("bih,ihf->bif", h, self.W))


def _forward_relu_on_hidden(self, x):
    h = torch.relu(torch.einsum("bif,ihf->bih", x, self.W))
    return self.act(torch.einsum("bih,ihf->bif", h, self.W) + self.b_final)


def _forward_bias_after_relu(self, x):
    h = torch.einsum("bif,ihf->bih", x, self.W)
    return self.act(torch.einsum("bih,ihf->bif", h, self.W)) + self.b_final


def _forward_always_relu(self, x):
    h = torch.einsum("bif,ihf->bih", x, self.W)
    return torch.relu(torch.einsum("bih,ihf->bif", h, self.W) + self.b_final)


def _forward_never_relu(self, x):
    h = torch.einsum("bif,ihf->bih", x, self.W)
    return torch.einsum("bih,ihf->bif", h, self.W) + self.b_final


def _forward_detached(self, x):
    W = self.W.detach()
    h = torch.einsum("bif,ihf->bih", x, W)
    return self.act(torch.einsum("bih,ihf->bif", h, W) + self.b_final.detach())


def _forward_no_grad(self, x):
    with torch.no_grad():
        return ToyModel.forward(self, x)


def _forward_encoder_detached(self, x):
    h = torch.einsum("bif,ihf->bih", x, self.W.detach())  # right values, half the gradient of W
    return self.act(torch.einsum("bih,ihf->bif", h, self.W) + self.b_final)


def _forward_first_instance_weights(self, x):
    W = self.W[0]  # (n_hidden, n_features) used for every instance
    h = torch.einsum("bif,hf->bih", x, W)
    return self.act(torch.einsum("bih,hf->bif", h, W) + self.b_final)


def _forward_squeezed(self, x):
    return ToyModel.forward(self, x).squeeze()


def _forward_float32(self, x):
    x = x.float()
    W, b = self.W.float(), self.b_final.float()
    h = torch.einsum("bif,ihf->bih", x, W)
    return self.act(torch.einsum("bih,ihf->bif", h, W) + b)


def _forward_through_numpy(self, x):
    x = torch.from_numpy(x.numpy())
    h = torch.einsum("bif,ihf->bih", x, self.W)
    return self.act(torch.einsum("bih,ihf->bif", h, self.W) + self.b_final)


def _init_xavier_3d(self):
    self.W = nn.Parameter(nn.init.xavier_normal_(torch.empty(self.n_instances, self.n_hidden, self.n_features)))
    _zero_bias(self)


def _init_standard_normal(self):
    self.W = nn.Parameter(torch.randn(self.n_instances, self.n_hidden, self.n_features))
    _zero_bias(self)


def _init_he(self):
    self.W = nn.Parameter(math.sqrt(2.0 / self.n_features) * torch.randn(self.n_instances, self.n_hidden, self.n_features))
    _zero_bias(self)


def _init_plain_tensors(self):
    self.W = _std(self.n_features, self.n_hidden) * torch.randn(self.n_instances, self.n_hidden, self.n_features)
    self.b_final = torch.zeros(self.n_instances, self.n_features)


def _init_same_for_all_instances(self):
    w = _std(self.n_features, self.n_hidden) * torch.randn(1, self.n_hidden, self.n_features)
    self.W = nn.Parameter(w.repeat(self.n_instances, 1, 1))
    _zero_bias(self)


def _init_random_bias(self):
    ToyModel.init_parameters(self)
    self.b_final = nn.Parameter(0.1 * torch.randn(self.n_instances, self.n_features))


def _init_shared_bias(self):
    ToyModel.init_parameters(self)
    self.b_final = nn.Parameter(torch.zeros(self.n_features))


def _init_uniform_same_std(self):
    std = _std(self.n_features, self.n_hidden)
    self.W = nn.Parameter((torch.rand(self.n_instances, self.n_hidden, self.n_features) * 2 - 1) * math.sqrt(3) * std)
    _zero_bias(self)


def _init_hard_coded_std(self):
    self.W = nn.Parameter(0.2 * torch.randn(self.n_instances, self.n_hidden, self.n_features))
    _zero_bias(self)


def _init_seeded(self):
    gen = torch.Generator().manual_seed(0)
    std = _std(self.n_features, self.n_hidden)
    self.W = nn.Parameter(std * torch.randn(self.n_instances, self.n_hidden, self.n_features, generator=gen))
    _zero_bias(self)


def _with_defaults(name, n_instances=1, activation="relu"):
    """The solution with other defaults in its signature."""

    def __init__(self, n_features, n_hidden, n_instances=n_instances, feature_probability=1.0, importance=1.0,
                 activation=activation):
        ToyModel.__init__(self, n_features, n_hidden, n_instances, feature_probability, importance, activation)

    return type("ToyModel", (ToyModel,), {"__init__": __init__, "__doc__": f"ToyModel variant {name}"})


def _calls_the_reference():
    return type("ToyModel", (supercourse.ToyModel,), {})


class _DelegatingToyModel(nn.Module):
    """Builds the library's ToyModel inside and forwards to it."""

    def __init__(self, n_features, n_hidden, n_instances=1, feature_probability=1.0, importance=1.0,
                 activation="relu"):
        super().__init__()
        self.inner = supercourse.ToyModel(n_features, n_hidden, n_instances, feature_probability=feature_probability,
                               importance=importance, activation=activation)
        self.W, self.b_final = self.inner.W, self.inner.b_final

    def forward(self, x):
        return self.inner(x)


_DelegatingToyModel.__name__ = _DelegatingToyModel.__qualname__ = "ToyModel"


# --------------------------------------------------------------------------- importance_loss


def loss_mean_over_instances(x, x_hat, importance):
    return (importance * (x - x_hat) ** 2).mean(dim=(0, 2)).mean()


def loss_mean_over_everything(x, x_hat, importance):
    return (importance * (x - x_hat) ** 2).mean()


def loss_without_importance(x, x_hat, importance):
    return ((x - x_hat) ** 2).mean(dim=(0, 2)).sum()


def loss_importance_squared(x, x_hat, importance):
    return ((importance * (x - x_hat)) ** 2).mean(dim=(0, 2)).sum()


def loss_sum_over_features(x, x_hat, importance):
    return (importance * (x - x_hat) ** 2).sum(dim=2).mean(dim=0).sum()


def loss_sum_over_batch(x, x_hat, importance):
    return (importance * (x - x_hat) ** 2).sum(dim=0).mean(dim=1).sum()


def loss_absolute_error(x, x_hat, importance):
    return (importance * (x - x_hat).abs()).mean(dim=(0, 2)).sum()


def loss_wrong_sign(x, x_hat, importance):
    return -(importance * (x - x_hat) ** 2).mean(dim=(0, 2)).sum()


def loss_returns_float(x, x_hat, importance):
    return (importance * (x - x_hat) ** 2).mean(dim=(0, 2)).sum().item()


def loss_first_instance_importance(x, x_hat, importance):
    return (importance[0] * (x - x_hat) ** 2).mean(dim=(0, 2)).sum()


def loss_in_float32(x, x_hat, importance):
    return (importance.float() * (x.float() - x_hat.float()) ** 2).mean(dim=(0, 2)).sum()


def loss_through_numpy(x, x_hat, importance):
    imp = torch.from_numpy(importance.numpy())
    return (imp * (x - x_hat) ** 2).mean(dim=(0, 2)).sum()


def loss_squeezed(x, x_hat, importance):
    diff = (x - x_hat).squeeze()
    return (importance * diff**2).mean(dim=(0, 2)).sum()


def loss_relative_to_batch(x, x_hat, importance):
    """Divided by the batch's mean square (a 'relative' error): a statistic of the batch."""
    return (importance * (x - x_hat) ** 2).mean(dim=(0, 2)).sum() / x.pow(2).mean()


def loss_importance_normalised(x, x_hat, importance):
    """Importances divided by their sum per instance."""
    weights = importance / importance.sum(dim=-1, keepdim=True)
    return (weights * (x - x_hat) ** 2).mean(dim=(0, 2)).sum()


def loss_in_place(x, x_hat, importance):
    """Saves memory by reusing x_hat's storage: the caller's reconstruction is overwritten."""
    with torch.no_grad():
        diff = x_hat.sub_(x).pow_(2)
    return (importance * diff).mean(dim=(0, 2)).sum()


def loss_detached(x, x_hat, importance):
    """Computed on detached tensors: the right value, but no gradient reaches the model."""
    return (importance * (x.detach() - x_hat.detach()) ** 2).mean(dim=(0, 2)).sum()


def loss_library_model(x, x_hat, importance):
    model = supercourse.ToyModel(x.shape[2], 1, x.shape[1], importance=importance).to(x.dtype)
    return model.loss(x, x_hat)


_AVERAGED = "averaged over instances"

MISTAKES = {
    "generate_batch": [
        Mistake("all_features_on_together", all_features_on_together, "switches all features of an instance on together", compare=False),
        Mistake("one_mask_per_batch", one_mask_per_batch, "drawn once per batch", compare=False),
        Mistake("single_draw_not_rescaled", single_draw_not_rescaled, "rescale it to u / p", compare=False),
        Mistake("density_read_as_sparsity", density_read_as_sparsity, "look like 1 - p", compare=False),
        Mistake("first_instance_density_everywhere", first_instance_density_everywhere, "instance k must use its own row", compare=False),
        Mistake("one_density_per_instance", one_density_per_instance, "features of an instance all got the same density", compare=False),
        Mistake("same_draw_for_every_instance", same_draw_for_every_instance, "Independence across instances", compare=False),
        Mistake("ignores_generator", ignores_generator, "Reproducibility", compare=False),
        Mistake("binary_magnitudes", binary_magnitudes, "Every active value is the same", compare=False),
        Mistake("normal_magnitudes", normal_magnitudes, "should lie in [0, 1]", compare=False),
        Mistake("returns_the_mask", returns_the_mask, "floating-point", compare=False),
        Mistake("calls_the_reference", calls_the_reference, "implement this yourself", compare=False),
        Mistake("no_mask_at_all", no_mask_at_all, "every entry is non-zero", compare=False),
        Mistake("always_float32", always_float32, "float64", compare=False),
        Mistake("through_numpy", through_numpy, "nn.Parameter", compare=False),
        Mistake("fixed_default_generator", fixed_default_generator, "Without a generator", compare=False),
        Mistake("seeds_global_stream", seeds_global_stream, "never seed it", compare=False),
        Mistake("coarse_seed", coarse_seed, "did not advance", compare=False),
        Mistake("rescaled_by_batch_max", rescaled_by_batch_max, "statistic of the batch", compare=False),
        Mistake("normalised_by_batch_mean", normalised_by_batch_mean, "statistic of the batch", compare=False),
        Mistake("reseeds_global_from_initial_seed", reseeds_global_from_initial_seed, "did not advance", compare=False),
        Mistake("copies_the_generator", copies_the_generator, "did not advance", compare=False),
        Mistake("unsqueezes_in_place", unsqueezes_in_place, "in place", compare=False),
    ],
    "ToyModel": [
        # Forward mistakes (compare=True): the forward checks load the reference's weights into each and
        # compare outputs, so a learner's output that matches one gets its hint.
        Mistake("missing_bias", toy_model("missing_bias", forward=_forward_without_bias), "the bias is missing",
                "the bias is missing: add b_final after W^T h."),
        Mistake("relu_on_hidden", toy_model("relu_on_hidden", forward=_forward_relu_on_hidden), "ReLU to the hidden layer",
                "it applies a ReLU to the hidden layer h = W x; the toy model's only ReLU is on the output."),
        Mistake("bias_after_relu", toy_model("bias_after_relu", forward=_forward_bias_after_relu), "added after the ReLU",
                "the bias is added after the ReLU; it belongs inside: ReLU(W^T h + b)."),
        Mistake("relu_in_linear_model", toy_model("relu_in_linear_model", forward=_forward_always_relu),
                "although activation='linear'", "a ReLU was applied although activation='linear'."),
        Mistake("relu_missing", toy_model("relu_missing", forward=_forward_never_relu), "no ReLU was applied",
                "no ReLU was applied although activation='relu'."),
        Mistake("first_instance_weights", toy_model("first_instance_weights", forward=_forward_first_instance_weights),
                "instance 0's weights",
                "every instance uses instance 0's weights: instance k must use W[k] (keep the instance index in the einsum)."),
        # Caught by the properties' own words (compare=False).
        Mistake("transposed_W", toy_model("transposed_W", init=_init_transposed, forward=_forward_transposed),
                "looks transposed", compare=False),
        Mistake("detached_weights", toy_model("detached_weights", forward=_forward_detached), "does not depend differentiably",
                compare=False),
        Mistake("forward_under_no_grad", toy_model("forward_under_no_grad", forward=_forward_no_grad),
                "does not depend differentiably", compare=False),
        Mistake("encoder_detached", toy_model("encoder_detached", forward=_forward_encoder_detached),
                "right values but the gradient", compare=False),
        Mistake("squeezed_output", toy_model("squeezed_output", forward=_forward_squeezed), "shape of x", compare=False),
        Mistake("forward_in_float32", toy_model("forward_in_float32", forward=_forward_float32), "float64", compare=False),
        Mistake("forward_through_numpy", toy_model("forward_through_numpy", forward=_forward_through_numpy), "numpy()",
                compare=False),
        Mistake("xavier_on_3d_tensor", toy_model("xavier_on_3d_tensor", init=_init_xavier_3d), "xavier_normal_", compare=False),
        Mistake("standard_normal_init", toy_model("standard_normal_init", init=_init_standard_normal), "Xavier-normal",
                compare=False),
        Mistake("he_init", toy_model("he_init", init=_init_he), "sqrt(2 / (n_features + n_hidden))", compare=False),
        Mistake("plain_tensors_not_parameters", toy_model("plain_tensors", init=_init_plain_tensors), "nn.Parameter",
                compare=False),
        Mistake("same_init_every_instance", toy_model("same_init", init=_init_same_for_all_instances), "same W", compare=False),
        Mistake("random_bias_init", toy_model("random_bias", init=_init_random_bias), "b_final should start at zero",
                compare=False),
        Mistake("shared_bias", toy_model("shared_bias", init=_init_shared_bias), "`b_final` should have shape", compare=False),
        Mistake("uniform_init_same_std", toy_model("uniform_init", init=_init_uniform_same_std), "not normal", compare=False),
        Mistake("hard_coded_std", toy_model("hard_coded_std", init=_init_hard_coded_std), "do not hard-code it", compare=False),
        Mistake("seeded_init", toy_model("seeded_init", init=_init_seeded), "one after the other", compare=False),
        Mistake("default_activation_linear", _with_defaults("linear_default", activation="linear"), "the default activation",
                compare=False),
        Mistake("default_two_instances", _with_defaults("two_instances", n_instances=2), "n_instances left out",
                compare=False),
        Mistake("subclasses_the_library", _calls_the_reference(), "implement this yourself", compare=False),
        Mistake("wraps_the_library", _DelegatingToyModel, "implement this yourself", compare=False),
    ],
    "importance_loss": [
        Mistake("mean_over_instances", loss_mean_over_instances, _AVERAGED,
                "It looks like you averaged over instances instead of summing: sum the per-instance losses, so each "
                "instance's gradient does not shrink with the number of instances trained beside it."),
        Mistake("mean_over_everything", loss_mean_over_everything, _AVERAGED,
                "It looks like you averaged over instances (a mean over every dimension): average over batch and "
                "features only, then sum over instances."),
        Mistake("without_importance", loss_without_importance, "changed nothing",
                "Changing the importances changed nothing: multiply each feature's squared error by I_i."),
        Mistake("importance_squared", loss_importance_squared, "I_i^2",
                "You weighted by I_i^2: the importance multiplies the squared error, I_i (x_i - x'_i)^2, it is not squared."),
        Mistake("sum_over_features", loss_sum_over_features, "summed over features",
                "It looks like you summed over features instead of averaging."),
        Mistake("sum_over_batch", loss_sum_over_batch, "summed over the batch",
                "It looks like you summed over the batch instead of averaging."),
        Mistake("absolute_error", loss_absolute_error, "mean absolute error",
                "That is the mean absolute error: square the differences."),
        Mistake("wrong_sign", loss_wrong_sign, "wrong sign", "It has the wrong sign: a loss to minimise is positive."),
        Mistake("first_instance_importance", loss_first_instance_importance, "instance 0's importances",
                "It matches using instance 0's importances for every instance: index importance as [instance, feature]."),
        Mistake("relative_to_batch", loss_relative_to_batch, "statistic of the batch",
                "It matches the loss divided by a statistic of the batch (the mean square of x): the loss is the plain "
                "importance-weighted squared error, not normalised by the data."),
        Mistake("importance_normalised", loss_importance_normalised, "normalised the importances",
                "It matches a loss whose importances were divided by their sum: you normalised the importances; use "
                "I_i as given."),
        Mistake("returns_float", loss_returns_float, "0-dimensional tensor", compare=False),
        Mistake("in_float32", loss_in_float32, "float64", compare=False),
        Mistake("through_numpy", loss_through_numpy, "nn.Parameter", compare=False),
        Mistake("squeezed", loss_squeezed, "batch of one example", compare=False),
        Mistake("x_hat_edited_in_place", loss_in_place, "in place", compare=False),
        Mistake("detached", loss_detached, "gradient back to x_hat", compare=False),
        Mistake("library_model_loss", loss_library_model, "implement this yourself", compare=False),
    ],
}
