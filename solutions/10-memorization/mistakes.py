"""Lesson 10's mistake table: wrong implementations learners plausibly write, and the words that name them.

The checks diagnose with it where a mistake's output can be recomputed on the check's inputs
(``data_dimensionality``, the deterministic training runs of ``train_full_batch``, the expected
values of ``test_loss``); ``finite_dataset`` and ``sweep`` return random data, so their mistakes are
caught by statistics and contracts whose messages carry the keywords (``compare=False``). The lesson's
tests prove that every entry loses points with a message containing its keyword.
"""

from __future__ import annotations

import math

import torch

from supercourse import ToyModel
from supercourse import memorization as mem
from supercourse.data import sparse_uniform
from supercourse.memorization import warmup_cosine, warmup_steps_for
from autograder.toolkit import Mistake

# --------------------------------------------------------------------------- finite_dataset


def _mask_values(n_points, n_features, p, n_instances, generator):
    shape = (n_points, n_instances, n_features)
    active = torch.rand(shape, generator=generator) < p
    return torch.rand(shape, generator=generator) * active


def _unit(x):
    norm = x.norm(dim=-1, keepdim=True)
    return torch.where(norm > 0, x / norm.clamp_min(1e-12), x)


def fd_not_normalised(n_points, n_features, feature_probability, n_instances=1, generator=None):
    return _mask_values(n_points, n_features, feature_probability, n_instances, generator)


def fd_l1_normalised(n_points, n_features, feature_probability, n_instances=1, generator=None):
    x = _mask_values(n_points, n_features, feature_probability, n_instances, generator)
    s = x.sum(dim=-1, keepdim=True)
    return torch.where(s > 0, x / s.clamp_min(1e-12), x)


def fd_normalised_over_points(n_points, n_features, feature_probability, n_instances=1, generator=None):
    x = _mask_values(n_points, n_features, feature_probability, n_instances, generator)
    norm = x.norm(dim=0, keepdim=True)
    return torch.where(norm > 0, x / norm.clamp_min(1e-12), x)


def fd_nan_on_empty_points(n_points, n_features, feature_probability, n_instances=1, generator=None):
    x = _mask_values(n_points, n_features, feature_probability, n_instances, generator)
    return x / x.norm(dim=-1, keepdim=True)


def fd_density_as_sparsity(n_points, n_features, feature_probability, n_instances=1, generator=None):
    return _unit(_mask_values(n_points, n_features, 1.0 - feature_probability, n_instances, generator))


def fd_all_or_nothing(n_points, n_features, feature_probability, n_instances=1, generator=None):
    active = torch.rand(n_points, n_instances, 1, generator=generator) < feature_probability
    return _unit(torch.rand(n_points, n_instances, n_features, generator=generator) * active)


def fd_same_for_every_instance(n_points, n_features, feature_probability, n_instances=1, generator=None):
    x = _unit(_mask_values(n_points, n_features, feature_probability, 1, generator))
    return x.expand(n_points, n_instances, n_features).clone()


def fd_values_all_one(n_points, n_features, feature_probability, n_instances=1, generator=None):
    active = torch.rand(n_points, n_instances, n_features, generator=generator) < feature_probability
    return _unit(active.float())


def fd_gaussian_values(n_points, n_features, feature_probability, n_instances=1, generator=None):
    shape = (n_points, n_instances, n_features)
    active = torch.rand(shape, generator=generator) < feature_probability
    return _unit(torch.randn(shape, generator=generator).abs() * active)


def fd_ignores_generator(n_points, n_features, feature_probability, n_instances=1, generator=None):
    return _unit(_mask_values(n_points, n_features, feature_probability, n_instances, None))


def fd_redraws_empty_points(n_points, n_features, feature_probability, n_instances=1, generator=None):
    x = _mask_values(n_points, n_features, feature_probability, n_instances, generator)
    for _ in range(100):
        empty = (x == 0).all(dim=-1)
        if not empty.any():
            break
        fresh = _mask_values(n_points, n_features, feature_probability, n_instances, generator)
        x = torch.where(empty[..., None], fresh, x)
    return _unit(x)


def fd_points_last(n_points, n_features, feature_probability, n_instances=1, generator=None):
    x = _unit(_mask_values(n_points, n_features, feature_probability, n_instances, generator))
    return x.permute(1, 0, 2).contiguous()


# --------------------------------------------------------------------------- train_full_batch


def _paper_loss(model, x):
    return (model(x) - x).square().sum(dim=2).mean(dim=0)


def _loop(model, dataset, steps, lr, weight_decay, warmup_steps, *, loss=_paper_loss, factor=None, optimizer="adamw",
          params=None, log_after=False, fresh_optimizer=False, batch=None):
    """The plain loop with one thing changed at a time (the mistakes below)."""
    warmup = warmup_steps_for(steps) if warmup_steps is None else warmup_steps
    factor = factor or (lambda s: warmup_cosine(s, steps, warmup))
    params = params if params is not None else [model.W, model.b_final]

    def make():
        if optimizer == "adam_l2":
            return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay if optimizer == "adamw" else 0.0)

    opt = make()
    losses = torch.empty(steps, model.n_instances)
    for step in range(steps):
        if fresh_optimizer:
            opt = make()
        for g in opt.param_groups:
            g["lr"] = lr * factor(step)
        x = dataset if batch is None else dataset[batch(step)]
        per = loss(model, x)
        opt.zero_grad()
        per.sum().backward()
        opt.step()
        if log_after:
            with torch.no_grad():
                per = loss(model, dataset)
        losses[step] = per.detach()
    return losses


def tfb_mean_over_features(model, dataset, steps, lr=1e-3, weight_decay=1e-2, warmup_steps=None):
    return _loop(model, dataset, steps, lr, weight_decay, warmup_steps,
                 loss=lambda m, x: (m(x) - x).square().mean(dim=(0, 2)))


def tfb_no_warmup(model, dataset, steps, lr=1e-3, weight_decay=1e-2, warmup_steps=None):
    return _loop(model, dataset, steps, lr, weight_decay, warmup_steps,
                 factor=lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))


def tfb_no_cosine(model, dataset, steps, lr=1e-3, weight_decay=1e-2, warmup_steps=None):
    w = warmup_steps_for(steps) if warmup_steps is None else warmup_steps
    return _loop(model, dataset, steps, lr, weight_decay, warmup_steps, factor=lambda s: min(1.0, (s + 1) / w))


def tfb_warmup_from_zero(model, dataset, steps, lr=1e-3, weight_decay=1e-2, warmup_steps=None):
    w = warmup_steps_for(steps) if warmup_steps is None else warmup_steps
    return _loop(model, dataset, steps, lr, weight_decay, warmup_steps,
                 factor=lambda s: s / w if s < w else warmup_cosine(s, steps, w))


def tfb_adam_l2(model, dataset, steps, lr=1e-3, weight_decay=1e-2, warmup_steps=None):
    return _loop(model, dataset, steps, lr, weight_decay, warmup_steps, optimizer="adam_l2")


def tfb_no_weight_decay(model, dataset, steps, lr=1e-3, weight_decay=1e-2, warmup_steps=None):
    return _loop(model, dataset, steps, lr, weight_decay, warmup_steps, optimizer="none")


def tfb_loss_after_update(model, dataset, steps, lr=1e-3, weight_decay=1e-2, warmup_steps=None):
    return _loop(model, dataset, steps, lr, weight_decay, warmup_steps, log_after=True)


def tfb_optimizer_every_step(model, dataset, steps, lr=1e-3, weight_decay=1e-2, warmup_steps=None):
    return _loop(model, dataset, steps, lr, weight_decay, warmup_steps, fresh_optimizer=True)


def tfb_bias_not_trained(model, dataset, steps, lr=1e-3, weight_decay=1e-2, warmup_steps=None):
    return _loop(model, dataset, steps, lr, weight_decay, warmup_steps, params=[model.W])


def tfb_half_batches(model, dataset, steps, lr=1e-3, weight_decay=1e-2, warmup_steps=None):
    T = dataset.shape[0]
    half = max(1, T // 2)
    return _loop(model, dataset, steps, lr, weight_decay, warmup_steps,
                 batch=lambda s: torch.arange(half) if s % 2 == 0 else torch.arange(half, T))


def tfb_ignores_lr(model, dataset, steps, lr=1e-3, weight_decay=1e-2, warmup_steps=None):
    return _loop(model, dataset, steps, 1e-3, weight_decay, warmup_steps)


def tfb_warmup_ignored(model, dataset, steps, lr=1e-3, weight_decay=1e-2, warmup_steps=None):
    return _loop(model, dataset, steps, lr, weight_decay, None)


# --------------------------------------------------------------------------- data_dimensionality


def _hidden(W, x):
    return torch.einsum("tkn,kmn->ktm", x, W)


def dd_without_normalising(W, x):
    h = _hidden(W, x)
    denom = (h @ h.mT).square().sum(dim=-1)
    return h.square().sum(-1) / denom.clamp_min(1e-30) * (denom > 0)


def dd_not_squared(W, x):
    h = _hidden(W, x)
    n = h.norm(dim=-1, keepdim=True)
    hh = torch.where(n > 0, h / n.clamp_min(1e-30), torch.zeros_like(h))
    denom = (hh @ h.mT).abs().sum(dim=-1)
    return torch.where(denom > 0, h.square().sum(-1) / denom.clamp_min(1e-30), torch.zeros_like(denom))


def dd_excluding_itself(W, x):
    h = _hidden(W, x)
    n = h.norm(dim=-1, keepdim=True)
    hh = torch.where(n > 0, h / n.clamp_min(1e-30), torch.zeros_like(h))
    sq = (hh @ h.mT).square()
    denom = sq.sum(-1) - sq.diagonal(dim1=-2, dim2=-1)
    return torch.where(denom > 0, h.square().sum(-1) / denom.clamp_min(1e-30), torch.zeros_like(denom))


def dd_norm_not_squared(W, x):
    h = _hidden(W, x)
    n = h.norm(dim=-1, keepdim=True)
    hh = torch.where(n > 0, h / n.clamp_min(1e-30), torch.zeros_like(h))
    denom = (hh @ h.mT).square().sum(dim=-1)
    return torch.where(denom > 0, h.norm(dim=-1) / denom.clamp_min(1e-30), torch.zeros_like(denom))


def dd_nan_for_zero_points(W, x):
    h = _hidden(W, x)
    hh = h / h.norm(dim=-1, keepdim=True)
    return h.square().sum(-1) / (hh @ h.mT).square().sum(dim=-1)


def dd_of_the_inputs(W, x):
    v = x.transpose(0, 1)  # the points x_t themselves, not h_t = W x_t
    n = v.norm(dim=-1, keepdim=True)
    vh = torch.where(n > 0, v / n.clamp_min(1e-30), torch.zeros_like(v))
    denom = (vh @ v.mT).square().sum(-1)
    return torch.where(denom > 0, v.square().sum(-1) / denom.clamp_min(1e-30), torch.zeros_like(denom))


def dd_mixes_instances(W, x):
    h = _hidden(W, x)  # (I, T, m)
    flat = h.reshape(-1, h.shape[-1])
    n = flat.norm(dim=-1, keepdim=True)
    fh = torch.where(n > 0, flat / n.clamp_min(1e-30), torch.zeros_like(flat))
    denom = (fh @ flat.T).square().sum(-1)
    d = torch.where(denom > 0, flat.square().sum(-1) / denom.clamp_min(1e-30), torch.zeros_like(denom))
    return d.reshape(h.shape[:2])


# --------------------------------------------------------------------------- test_loss


def _fresh(W, feature_probability, n_points, generator):
    return mem.finite_dataset(n_points, W.shape[2], feature_probability, W.shape[0], generator).to(W.dtype)


def _model_loss(W, b, x, relu=True, bias=True, reduce=lambda e: e.sum(dim=2).mean(dim=0)):
    W, b = W.detach(), b.detach()
    h = torch.einsum("tkn,kmn->tkm", x, W)
    out = torch.einsum("tkm,kmn->tkn", h, W) + (b if bias else 0.0)
    out = torch.relu(out) if relu else out
    return reduce((out - x).square())


def tl_mean_over_features(W, b, feature_probability, n_points=10_000, generator=None):
    return _model_loss(W, b, _fresh(W, feature_probability, n_points, generator), reduce=lambda e: e.mean(dim=(0, 2)))


def tl_no_relu(W, b, feature_probability, n_points=10_000, generator=None):
    return _model_loss(W, b, _fresh(W, feature_probability, n_points, generator), relu=False)


def tl_no_bias(W, b, feature_probability, n_points=10_000, generator=None):
    return _model_loss(W, b, _fresh(W, feature_probability, n_points, generator), bias=False)


def tl_points_not_normalised(W, b, feature_probability, n_points=10_000, generator=None):
    x = sparse_uniform(n_points, torch.full((W.shape[0], W.shape[2]), float(feature_probability)),
                                        generator=generator).to(W.dtype)
    return _model_loss(W, b, x)


def tl_density_as_sparsity(W, b, feature_probability, n_points=10_000, generator=None):
    return _model_loss(W, b, _fresh(W, 1.0 - feature_probability, n_points, generator))


def tl_ignores_n_points(W, b, feature_probability, n_points=10_000, generator=None):
    return _model_loss(W, b, _fresh(W, feature_probability, 4096, generator))


def tl_ignores_generator(W, b, feature_probability, n_points=10_000, generator=None):
    return _model_loss(W, b, _fresh(W, feature_probability, n_points, None))


def tl_sum_over_points(W, b, feature_probability, n_points=10_000, generator=None):
    return _model_loss(W, b, _fresh(W, feature_probability, n_points, generator), reduce=lambda e: e.sum(dim=(0, 2)))


# --------------------------------------------------------------------------- sweep


def _sweep(sizes, n_features, feature_probability, n_seeds=3, steps=10_000, n_hidden=2, lr=1e-3, weight_decay=1e-2,
           seed=0, n_test=10_000, *, keep=lambda train, test: int(train.argmin()), test_on_training=False,
           shared_data=False, unseeded=False, report_mean_test=False, untrained=False, fixed_lr=None):
    gen = None if unseeded else torch.Generator().manual_seed(seed)
    out = {"sizes": list(sizes), "W": [], "b": [], "data": [], "train_loss": [], "kept": [], "test_loss": []}
    for T in sizes:
        if shared_data:
            x = mem.finite_dataset(T, n_features, feature_probability, 1, gen).expand(T, n_seeds, n_features).clone()
        else:
            x = mem.finite_dataset(T, n_features, feature_probability, n_seeds, gen)
        model = ToyModel(n_features, n_hidden, n_instances=n_seeds,
                                     seed=None if unseeded else seed * 1000 + T)
        if not untrained:
            mem.train_full_batch(model, x, steps, lr=lr if fixed_lr is None else fixed_lr, weight_decay=weight_decay)
        W, b = model.W.detach(), model.b_final.detach()
        train = mem.reconstruction_loss(W, b, x)
        tests = mem.test_loss(W, b, feature_probability, n_test, generator=gen)
        if test_on_training:
            tests = train.clone()
        k = keep(train, tests)
        out["W"].append(W)
        out["b"].append(b)
        out["data"].append(x)
        out["train_loss"].append(train)
        out["kept"].append(k)
        out["test_loss"].append(tests.mean() if report_mean_test else tests[k])
    return {"sizes": out["sizes"], "W": torch.stack(out["W"]), "b": torch.stack(out["b"]), "data": out["data"],
            "train_loss": torch.stack(out["train_loss"]), "kept": torch.tensor(out["kept"]),
            "test_loss": torch.stack(out["test_loss"])}


def sw_keeps_highest_loss(*args, **kwargs):
    return _sweep(*args, keep=lambda train, test: int(train.argmax()), **kwargs)


def sw_keeps_lowest_test_loss(*args, **kwargs):
    return _sweep(*args, keep=lambda train, test: int(test.argmin()), **kwargs)


def sw_test_on_training_points(*args, **kwargs):
    return _sweep(*args, test_on_training=True, **kwargs)


def sw_same_data_for_every_seed(*args, **kwargs):
    return _sweep(*args, shared_data=True, **kwargs)


def sw_ignores_seed(*args, **kwargs):
    return _sweep(*args, unseeded=True, **kwargs)


def sw_mean_test_loss(*args, **kwargs):
    return _sweep(*args, report_mean_test=True, **kwargs)


def sw_untrained(*args, **kwargs):
    return _sweep(*args, untrained=True, **kwargs)


def sw_ignores_lr(*args, **kwargs):
    return _sweep(*args, fixed_lr=1e-3, **kwargs)


MISTAKES = {
    "finite_dataset": [
        Mistake("not_normalised", fd_not_normalised, keyword="norm 1", compare=False),
        Mistake("l1_normalised", fd_l1_normalised, keyword="norm 1", compare=False),
        Mistake("normalised_over_points", fd_normalised_over_points, keyword="norm 1", compare=False),
        Mistake("nan_on_empty_points", fd_nan_on_empty_points, keyword="no active feature", compare=False),
        Mistake("density_as_sparsity", fd_density_as_sparsity, keyword="1 - p", compare=False),
        Mistake("all_or_nothing", fd_all_or_nothing, keyword="independently", compare=False),
        Mistake("same_for_every_instance", fd_same_for_every_instance, keyword="instance", compare=False),
        Mistake("values_all_one", fd_values_all_one, keyword="uniform", compare=False),
        Mistake("gaussian_values", fd_gaussian_values, keyword="uniform", compare=False),
        Mistake("ignores_generator", fd_ignores_generator, keyword="generator", compare=False),
        Mistake("redraws_empty_points", fd_redraws_empty_points, keyword="stay zero", compare=False),
        Mistake("points_last", fd_points_last, keyword="shape", compare=False),
    ],
    "train_full_batch": [
        Mistake("mean_over_features", tfb_mean_over_features, keyword="sum over features",
                hint="The loss is the sum over features of the squared error, then the mean over the points: "
                     "(x_hat - x).square().sum(dim=2).mean(dim=0), so the zero model scores 1, not 1/n."),
        Mistake("no_warmup", tfb_no_warmup, keyword="warm-up",
                hint="The learning rate starts with a linear warm-up: lr * warmup_cosine(step, steps, warmup_steps) "
                     "at every step, not a cosine from the first step."),
        Mistake("no_cosine", tfb_no_cosine, keyword="cosine",
                hint="After the warm-up the learning rate decays along a cosine to 0: use "
                     "lr * warmup_cosine(step, steps, warmup_steps) at every step."),
        Mistake("warmup_from_zero", tfb_warmup_from_zero, keyword="warm-up",
                hint="The warm-up factor at step s is (s + 1) / warmup_steps (so the first step already moves): "
                     "use warmup_cosine(step, steps, warmup_steps)."),
        Mistake("adam_l2", tfb_adam_l2, keyword="AdamW",
                hint="Use torch.optim.AdamW: its weight decay shrinks the weights directly (decoupled), while "
                     "torch.optim.Adam's weight_decay adds an L2 term to the gradient, a different optimizer."),
        Mistake("no_weight_decay", tfb_no_weight_decay, keyword="weight_decay",
                hint="Pass weight_decay to AdamW (the paper: 1e-2); without it the weights are not decayed."),
        Mistake("loss_after_update", tfb_loss_after_update, keyword="before",
                hint="Record each step's loss as computed for that step's update, i.e. before optimizer.step()."),
        Mistake("optimizer_every_step", tfb_optimizer_every_step, keyword="once",
                hint="Create the optimizer once, before the loop: a new AdamW every step forgets its moment estimates."),
        Mistake("bias_not_trained", tfb_bias_not_trained, keyword="b_final",
                hint="Train every parameter: both model.W and model.b_final (torch.optim.AdamW(model.parameters(), ...))."),
        Mistake("half_batches", tfb_half_batches, keyword="whole training set",
                hint="Full-batch training: every step uses the whole training set (all T points), not a part of it."),
        Mistake("ignores_lr", tfb_ignores_lr, keyword="lr",
                hint="Use the lr argument (the peak learning rate), not a fixed 1e-3."),
        Mistake("warmup_ignored", tfb_warmup_ignored, keyword="warmup_steps",
                hint="Use the warmup_steps argument when it is given (only None means round(0.05 * steps))."),
    ],
    "data_dimensionality": [
        Mistake("without_normalising", dd_without_normalising, keyword="unit",
                hint="Normalise h_t to a unit vector h_hat_t before the dot products: the denominator is "
                     "sum_s (h_hat_t . h_s)^2, with h_hat_t = h_t / ||h_t||."),
        Mistake("not_squared", dd_not_squared, keyword="square",
                hint="Square each overlap before summing: sum_s (h_hat_t . h_s)^2, not sum_s |h_hat_t . h_s|."),
        Mistake("excluding_itself", dd_excluding_itself, keyword="itself",
                hint="The sum over s includes the point itself (s = t contributes ||h_t||^2), so a lone point gets 1."),
        Mistake("norm_not_squared", dd_norm_not_squared, keyword="||h_t||^2",
                hint="The numerator is the squared norm ||h_t||^2, not ||h_t||."),
        Mistake("nan_for_zero_points", dd_nan_for_zero_points, keyword="zero",
                hint="A point with h_t = 0 (no active feature, or all in W's null space) has dimensionality zero: "
                     "guard the division (e.g. torch.where(norm > 0, ..., 0))."),
        Mistake("of_the_inputs", dd_of_the_inputs, keyword="h_t = W x_t",
                hint="Measure the hidden vectors h_t = W x_t (m numbers per point), not the inputs x_t."),
        Mistake("mixes_instances", dd_mixes_instances, keyword="own instance",
                hint="Sum over the points of the same instance only: each point is compared with its own instance's points (each is its own model with its own "
                     "training points): never across instances."),
    ],
    "test_loss": [
        Mistake("mean_over_features", tl_mean_over_features, keyword="sum over features",
                hint="Take the sum over features of the squared error, then the mean over the points: the zero model scores 1."),
        Mistake("no_relu", tl_no_relu, keyword="ReLU", hint="The model's output is ReLU(W^T W x + b)."),
        Mistake("no_bias", tl_no_bias, keyword="bias", hint="Add the bias b before the ReLU: ReLU(W^T W x + b)."),
        Mistake("points_not_normalised", tl_points_not_normalised, keyword="unit",
                hint="The fresh points come from the training distribution: sparse, then rescaled to unit norm "
                     "(your finite_dataset)."),
        Mistake("density_as_sparsity", tl_density_as_sparsity, keyword="probability",
                hint="feature_probability is the chance that a feature is non-zero."),
        Mistake("ignores_n_points", tl_ignores_n_points, keyword="n_points",
                hint="Draw exactly n_points fresh points per instance."),
        Mistake("ignores_generator", tl_ignores_generator, keyword="generator",
                hint="Draw the fresh points with the generator you are given (pass it to finite_dataset).",
                compare=False),
        Mistake("sum_over_points", tl_sum_over_points, keyword="mean over the points",
                hint="Take the mean over the points of the per-point losses, not their sum."),
    ],
    "sweep": [
        Mistake("keeps_highest_loss", sw_keeps_highest_loss, keyword="lowest", compare=False),
        Mistake("test_on_training_points", sw_test_on_training_points, keyword="fresh", compare=False),
        Mistake("same_data_for_every_seed", sw_same_data_for_every_seed, keyword="own training set", compare=False),
        Mistake("ignores_seed", sw_ignores_seed, keyword="seed", compare=False),
        Mistake("mean_test_loss", sw_mean_test_loss, keyword="kept", compare=False),
        Mistake("untrained", sw_untrained, keyword="train", compare=False),
        Mistake("ignores_lr", sw_ignores_lr, keyword="lr", compare=False),
    ],
}
