"""Lesson 1 checks: sparse features, the toy model's forward pass, the importance-weighted loss.

Three exercises, each compared with :mod:`supercourse`:

* ``01.generate_batch`` ``generate_batch(batch_size, feature_probability, generator=None)``:
  statistical tests (density per instance and per feature, uniform magnitudes,
  independence across features, instances and examples) plus exact ones
  (shape, reproducibility with a seeded generator).
* ``01.ToyModel`` the learner's ``ToyModel(nn.Module)``: parameter shapes and
  initialisation, then the forward pass compared exactly with
  :class:`supercourse.ToyModel` after loading the reference's weights and a
  random bias into the learner's parameters (ReLU-output and linear), and the
  gradient that reaches the parameters.
* ``01.importance_loss`` ``importance_loss(x, x_hat, importance)``: each
  reduction and the weighting checked separately, then the whole value and
  its gradient.

Statistical tolerances. Every random property draws with a seeded generator
(so the reference's verdict never changes), but a learner's implementation
may consume random numbers in another order, so each tolerance is set for an
arbitrary correct implementation: a frequency is compared with its expectation
within 6 standard errors (two-sided false-failure chance 2e-9 per comparison),
a correlation within 6/sqrt(n), and the uniform law with a Kolmogorov-Smirnov
bound at level 1e-9. No property makes more than 100 comparisons, so a correct
implementation fails a property with probability below 1e-6, while every
mistake these checks target moves its statistic by 10 or more standard errors.
"""

from __future__ import annotations

import math

import torch

import supercourse
from autograder.exercises import Exercise
from autograder.framework import CheckFailed, LearnerError, call, expect, probe, prop
from autograder.toolkit import close, describe, diagnose, fmt, fmt_pair, outputs_match
from autograder.toolkit.stats import ks_statistic, ks_threshold, normal_cdf
from autograder.toolkit.randomness import secret_gen, secret_seed
from supercourse.data import sparse_uniform

from .mistakes import MISTAKES

LESSON = "01-sparse-features"
EXERCISES = {
    "generate_batch": Exercise(
        "generate_batch",
        "Sparse features with per-instance densities",
        # Every library path that samples sparse features (the correlated generators with sets of one, the fast
        # trainer's sampler) is unavailable while this is graded. Not the whole of supercourse.data: the
        # notebook's given ToyModel code uses its per_feature, so redacting the module fails ToyModel.
        reference=("supercourse.data.sparse_uniform", "supercourse.data.sparse_from_uniform",
                   "supercourse.data.correlated_sparse", "supercourse.data.anticorrelated_sparse", "supercourse.fast"),
    ),
    "ToyModel": Exercise(
        "ToyModel", "The toy model: parameters and forward pass",
        reference=("supercourse.model", "supercourse.fast"),
        differentiable=True,
    ),
    "importance_loss": Exercise(
        "importance_loss", "The importance-weighted loss",
        reference=("supercourse.model", "supercourse.fast"),
        differentiable=True,
    ),
}

Z = 6.0
"""Standard errors a frequency or correlation may stray (two-sided tail 2e-9)."""

KS_ALPHA = 1e-9
"""Level of the Kolmogorov-Smirnov test of uniform magnitudes."""


# --------------------------------------------------------------------------- helpers


def _batch(submission, batch_size: int, p: torch.Tensor, seed: int) -> torch.Tensor:
    """The learner's batch as float64, checked to be a tensor of shape ``(batch, *p.shape)``.

    The dtype is :func:`test_shape_and_dtype`'s business, so a boolean batch is still tested here.
    """
    gen = secret_gen(seed)
    x = call(submission, batch_size, p.clone(), generator=gen, what="generate_batch")
    shape = (batch_size, *p.shape)
    expect(
        isinstance(x, torch.Tensor) and tuple(x.shape) == shape,
        f"Shape: generate_batch({batch_size}, feature_probability of shape {tuple(p.shape)}) should return a tensor "
        f"of shape (batch_size, n_instances, n_features) = {shape}, got {describe(x)}.",
    )
    x = x.detach().to(torch.float64)
    _expect_finite(x, batch_size, p)
    return x


def _expect_finite(x: torch.Tensor, batch_size: int, p: torch.Tensor) -> None:
    expect(
        bool(torch.isfinite(x).all()),
        f"Magnitudes: generate_batch({batch_size}, feature_probability of shape {tuple(p.shape)}) returned "
        f"{int((~torch.isfinite(x)).sum())} NaN or infinite values. Hint: a division by a statistic of the batch "
        "(x / x.max(), x / x.mean()) is 0 / 0 when every entry happens to be 0; the values need no rescaling.",
    )


def _density_hint(got: torch.Tensor, p: torch.Tensor, tol: torch.Tensor) -> str:
    if torch.all(got >= 1 - 1e-4) and bool((p < 0.99).any()):
        return (
            " Every entry is non-zero: there is no mask. Multiply the uniform values by a mask that is 1 with "
            "probability feature_probability (u < p), so each entry is 0 with probability 1 - p."
        )
    if torch.all((got - (1 - p)).abs() <= tol):
        return (
            " Your densities look like 1 - p: feature_probability is the chance that a feature is *non-zero* "
            "(active when u < p)."
        )
    if torch.all((got == 0) | (got == 1)):
        return " Every example has the same features switched on: draw a fresh random number for every entry."
    return ""


def _ks_uniform(values: torch.Tensor) -> float:
    """Kolmogorov-Smirnov distance between the sample's law and U[0, 1]."""
    v, _ = values.flatten().sort()
    n = v.numel()
    i = torch.arange(1, n + 1, dtype=v.dtype)
    return max((i / n - v).max().item(), (v - (i - 1) / n).max().item())


# --------------------------------------------------------------------------- 01.generate_batch


@prop("generate_batch", points=1)
def test_shape_and_dtype(submission):
    for batch_size, n_inst, n_feat in [(7, 3, 5), (1, 1, 1), (64, 10, 2)]:
        p = torch.full((n_inst, n_feat), 0.5)
        before = p.clone()
        gen = secret_gen(0)
        x = call(submission, batch_size, p, generator=gen, what="generate_batch")
        shape = (batch_size, n_inst, n_feat)
        expect(
            isinstance(x, torch.Tensor) and tuple(x.shape) == shape,
            f"Shape: generate_batch({batch_size}, feature_probability of shape {(n_inst, n_feat)}) should return a "
            f"tensor of shape (batch_size, n_instances, n_features) = {shape}, got {describe(x)}.",
        )
        expect(
            x.is_floating_point() and x.device == p.device,
            f"Dtype: the batch should be a floating-point tensor on feature_probability's device ({p.device}), "
            f"got {describe(x)}. Hint: multiply the uniform values by the mask rather than returning the boolean mask.",
        )
        expect(torch.equal(p, before), "generate_batch must not modify feature_probability in place.")
    # The batch follows feature_probability's dtype; a trainable (nn.Parameter) probability works too.
    p64 = torch.full((2, 3), 0.5, dtype=torch.float64)
    x = call(submission, 5, p64, generator=secret_gen(1), what="generate_batch")
    expect(
        isinstance(x, torch.Tensor) and tuple(x.shape) == (5, 2, 3) and x.dtype == torch.float64,
        f"Dtype: for a float64 feature_probability the batch should be float64 of shape (5, 2, 3), got {describe(x)}. "
        "Hint: draw with dtype=feature_probability.dtype (and device=feature_probability.device).",
    )
    param = torch.nn.Parameter(torch.full((3, 2), 0.5))
    x = call(submission, 4, param, generator=secret_gen(2),
             what="generate_batch (feature_probability an nn.Parameter)")
    expect(
        isinstance(x, torch.Tensor) and tuple(x.shape) == (4, 3, 2) and x.dtype == torch.float32,
        f"Inputs: with feature_probability an nn.Parameter (requires_grad=True) the batch should be a float32 tensor "
        f"of shape (4, 3, 2), got {describe(x)}. Hint: stay in torch (no .numpy() round trip).",
    )


@prop("generate_batch", points=1)
def test_density_per_instance(submission):
    # Each instance k has one density for all its features.
    dens = torch.tensor([0.9, 0.6, 0.25, 0.05, 0.0, 1.0])
    n_feat, batch = 8, 20_000
    p = dens[:, None].expand(-1, n_feat).contiguous()
    x = _batch(submission, batch, p, seed=101)
    got = (x != 0).double().mean(dim=(0, 2))
    n = batch * n_feat
    # 6 standard errors, plus 1e-4 for values that are exactly 0 by chance (torch.rand can return 0).
    tol = Z * (dens.double() * (1 - dens.double()) / n).sqrt() + 1e-4
    bad = (got - dens).abs() > tol
    if bad.any():
        hint = _density_hint(got, dens.double(), tol)
        if not hint and (got - got.mean()).abs().max() < 0.05:
            hint = (
                " Every instance got about the same density: instance k must use its own row "
                "feature_probability[k] (broadcast the (n_instances, n_features) tensor against the batch)."
            )
        expect(
            False,
            f"Density per instance: the fraction of non-zero entries of each instance should be {fmt(dens, 3, limit=64)}, "
            f"got {fmt(got, 3, limit=64)}.{hint}",
        )


@prop("generate_batch", points=1)
def test_density_per_feature(submission):
    # Densities differ between features of the same instance, and between instances.
    p = torch.tensor(
        [
            [0.95, 0.7, 0.5, 0.3, 0.15, 0.08, 0.03, 0.01],
            [0.02, 0.1, 0.9, 0.4, 0.6, 0.2, 0.8, 0.35],
            [0.5, 0.5, 0.05, 0.05, 0.75, 0.75, 0.25, 0.25],
        ]
    )
    batch = 20_000
    x = _batch(submission, batch, p, seed=202)
    got = (x != 0).double().mean(dim=0)
    pd = p.double()
    tol = Z * (pd * (1 - pd) / batch).sqrt() + 1e-4  # 24 comparisons
    bad = (got - pd).abs() > tol
    if bad.any():
        k, i = (torch.nonzero(bad)[0]).tolist()
        hint = _density_hint(got, pd, tol)
        if not hint and ((got - got.mean(dim=1, keepdim=True)).abs() < 0.05).all():
            hint = (
                " The features of an instance all got the same density: feature i of instance k must use "
                "feature_probability[k, i] (compare the uniform draws with the whole tensor)."
            )
        expect(
            False,
            f"Density per feature: feature {i} of instance {k} should be non-zero with probability {p[k, i].item():g}, "
            f"got a fraction {got[k, i].item():.3f} over {batch} examples.{hint}",
        )


@prop("generate_batch", points=1)
def test_magnitudes_uniform(submission):
    dens = torch.tensor([0.8, 0.5, 0.2])
    batch = 20_000
    p = dens[:, None].expand(-1, 8).contiguous()
    x = _batch(submission, batch, p, seed=303)
    expect(
        bool((x >= 0).all() and (x <= 1).all()),
        f"Magnitudes: every value should lie in [0, 1], got values from {x.min().item():.3g} to {x.max().item():.3g}. "
        "Hint: active features are uniform on [0, 1] (torch.rand), not normal.",
    )
    for k, pk in enumerate(dens.tolist()):
        active = x[:, k][x[:, k] != 0]
        n = active.numel()
        expect(
            n > 100,
            f"Magnitudes: instance {k} (density {pk:g}) has only {n} non-zero values in {batch} examples x 8 features, "
            f"about {pk * batch * 8:.0f} expected; fix the densities first.",
        )
        d = _ks_uniform(active)
        bound = math.sqrt(math.log(2 / KS_ALPHA) / (2 * n))
        if d > bound:
            hint = ""
            if active.max().item() <= pk + 1e-6:
                hint = (
                    f" They never exceed {pk:g} = the density: if one uniform u decides both the mask (u < p) and "
                    "the value, rescale it to u / p, or draw the value separately."
                )
            elif (active - active[0]).abs().max().item() < 1e-6:
                hint = " Every active value is the same: multiply the mask by uniform random values."
            expect(
                False,
                f"Magnitudes: given that a feature is non-zero, its value should be uniform on [0, 1] "
                f"(mean 0.5, std 0.289); in instance {k} (density {pk:g}) the non-zero values have mean "
                f"{active.mean().item():.3f}, std {active.std().item():.3f}, max {active.max().item():.3f}.{hint}",
            )
    _check_small_batches(submission)


_SMALL_CALLS = 30


def _check_small_batches(submission) -> None:
    """Many small batches of random shapes: values rescaled by a statistic of the batch only show here.

    Dividing by the batch's maximum makes the largest value of every batch exactly 1 (torch.rand never
    returns 1); rescaling to the batch's mean pushes values past 1. A correct batch has neither.
    """
    gen = secret_gen(304)
    at_one, pooled = 0, []
    for i in range(_SMALL_CALLS):
        b, k, f = (int(v) for v in torch.randint(1, 5, (3,), generator=gen))
        p = torch.full((k, f), 0.7)
        x = call(submission, b, p.clone(), generator=secret_gen((305, i)), what="generate_batch (a small batch)")
        expect(
            isinstance(x, torch.Tensor) and tuple(x.shape) == (b, k, f),
            f"Shape: generate_batch({b}, feature_probability of shape {(k, f)}) should return a tensor of shape "
            f"{(b, k, f)}, got {describe(x)}.",
        )
        x = x.detach().to(torch.float64)
        _expect_finite(x, b, p)
        active = x[x != 0]
        if not bool(((active > 0) & (active <= 1)).all()):
            hint = ("the values look rescaled by a statistic of the batch (e.g. its mean): draw them uniform on "
                    "[0, 1] and use them as they are." if active.max() > 1 else
                    "active features are uniform on [0, 1] (torch.rand), never negative.")
            raise CheckFailed(
                f"Magnitudes: in a batch of {b} example(s) with feature_probability of shape {(k, f)}, values should "
                f"lie in [0, 1], got values from {active.min().item():.3g} to {active.max().item():.3g}. Hint: {hint}"
            )
        at_one += bool(active.numel()) and bool(active.max() == 1.0)
        pooled.append(active)
    expect(
        at_one < 3,
        f"Magnitudes: in {at_one} of {_SMALL_CALLS} small batches the largest value is exactly 1. Hint: the values "
        "were divided by a statistic of the batch (x / x.max()); uniform values need no rescaling, and in a small "
        "batch the rescaling changes their law.",
    )
    values = torch.cat(pooled)
    if values.numel() >= 50:
        d = _ks_uniform(values)
        bound = math.sqrt(math.log(2 / KS_ALPHA) / (2 * values.numel()))
        expect(
            d <= bound,
            f"Magnitudes: over {_SMALL_CALLS} small batches the {values.numel()} non-zero values are not uniform on "
            f"[0, 1] (Kolmogorov-Smirnov distance {d:.3f}, at most {bound:.3f} expected; mean "
            f"{values.mean().item():.3f}). Hint: do not rescale by a statistic of the batch (its max or mean): in "
            "a small batch that changes the law of every value.",
        )


def _corr_matrix(x: torch.Tensor) -> torch.Tensor:
    """Pearson correlations between distinct columns of ``x: (n_samples, d)``: ``(d, d)``, zero diagonal.

    A constant column correlates 0 with everything (:func:`test_fresh_each_example` catches those).
    """
    xc = x - x.mean(0)
    norms = xc.norm(dim=0)
    xc = xc / torch.where(norms > 0, norms, torch.ones_like(norms))
    return (xc.T @ xc).fill_diagonal_(0.0)


@prop("generate_batch", points=1)
def test_independent_across_features(submission):
    # 2 instances x 6 features at density 0.3: 30 pairs, each correlation within 6/sqrt(batch).
    batch, n_feat, dens = 40_000, 6, 0.3
    p = torch.full((2, n_feat), dens)
    x = _batch(submission, batch, p, seed=404)
    tol = Z / math.sqrt(batch)
    for k in range(2):
        r = _corr_matrix(x[:, k])
        if r.abs().max() > tol:
            i, j = divmod(int(r.abs().argmax()), n_feat)
            both = ((x[:, k, i] != 0) & (x[:, k, j] != 0)).double().mean().item()
            expect(
                False,
                f"Independence across features: features {i} and {j} of instance {k} have correlation "
                f"{r[i, j].item():.3f} (expected 0 within {tol:.3f}); both are on in {both:.3f} of examples, "
                f"independent features would be {dens * dens:.3f}. Hint: draw a separate random number for every "
                "feature; a mask of shape (batch, n_instances, 1) switches all features of an instance on together.",
            )


@prop("generate_batch", points=1)
def test_independent_across_instances(submission):
    # 4 instances x 3 features at density 0.3: 18 pairs (same feature, two instances).
    batch, n_inst = 40_000, 4
    p = torch.full((n_inst, 3), 0.3)
    x = _batch(submission, batch, p, seed=505)
    tol = Z / math.sqrt(batch)
    for i in range(3):
        r = _corr_matrix(x[:, :, i])
        if r.abs().max() > tol:
            k, l = divmod(int(r.abs().argmax()), n_inst)
            expect(
                False,
                f"Independence across instances: feature {i} has correlation {r[k, l].item():.3f} between "
                f"instances {k} and {l} (expected 0 within {tol:.3f}). Hint: each instance is a separate model "
                "with its own data; draw random numbers of the full shape (batch, n_instances, n_features).",
            )


@prop("generate_batch", points=1)
def test_fresh_each_example(submission):
    batch = 20_000
    p = torch.full((2, 8), 0.5)
    x = _batch(submission, batch, p, seed=606)
    mask = x != 0
    constant = (mask == mask[:1]).all(dim=0)  # a column on (or off) in every example
    if constant.any():
        k, i = torch.nonzero(constant)[0].tolist()
        expect(
            False,
            f"Fresh data per example: feature {i} of instance {k} is {'on' if mask[0, k, i] else 'off'} in all "
            f"{batch} examples at density 0.5; the mask seems drawn once per batch. Hint: draw the random numbers "
            "with shape (batch_size, n_instances, n_features).",
        )
    values = x[mask]
    if torch.unique(values).numel() < 0.9 * values.numel():
        return  # discrete magnitudes: rows repeat by chance; test_magnitudes_uniform reports that mistake
    rows = x.reshape(batch, -1)
    nonzero = rows[(rows != 0).any(dim=1)]
    distinct = torch.unique(nonzero, dim=0).shape[0]
    # With continuous values two non-empty examples coincide with probability ~0.
    expect(
        distinct == nonzero.shape[0],
        f"Fresh data per example: only {distinct} of {nonzero.shape[0]} non-empty examples are distinct; "
        "examples repeat. Hint: draw new random values for every example instead of repeating a smaller draw.",
    )


@prop("generate_batch", points=1)
def test_uses_generator(submission):
    p = torch.tensor([[0.9, 0.5, 0.1], [0.3, 0.3, 0.3]])
    saved = torch.random.get_rng_state()
    try:
        torch.manual_seed(1)
        a = call(submission, 50, p.clone(), generator=secret_gen(7), what="generate_batch")
        torch.manual_seed(2)
        b = call(submission, 50, p.clone(), generator=secret_gen(7), what="generate_batch")
        c = call(submission, 50, p.clone(), generator=secret_gen(8), what="generate_batch")
    finally:
        torch.random.set_rng_state(saved)
    expect(
        isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape,
        f"Reproducibility: expected tensors of shape (50, 2, 3), got {describe(a)}.",
    )
    expect(
        torch.equal(a, b),
        "Reproducibility: two calls with generators seeded alike gave different batches. Hint: pass "
        "`generator=generator` to every torch.rand call, so a seeded generator makes the batch reproducible.",
    )
    expect(
        not torch.equal(a, c),
        "Reproducibility: generators with different seeds gave the same batch. Hint: draw from the generator "
        "you are given rather than re-seeding torch inside the function.",
    )
    rows_a = {tuple(r) for r in a.reshape(50, -1).tolist() if any(r)}
    shared = sum(tuple(r) in rows_a for r in c.reshape(50, -1).tolist() if any(r))
    expect(
        shared == 0,
        f"Reproducibility: generators seeded 7 and 8 gave {shared} identical examples: different seeds must give "
        "different, non-overlapping streams. Hint: draw from the generator you are given; do not derive seeds yourself.",
    )
    # The caller's generator advances: a second call with the same generator gives a new batch.
    gen = secret_gen(9)
    before = gen.get_state().clone()
    f = call(submission, 50, p.clone(), generator=gen, what="generate_batch")
    advanced = not torch.equal(gen.get_state(), before)
    g = call(submission, 50, p.clone(), generator=gen, what="generate_batch (the same generator again)")
    expect(
        advanced and isinstance(f, torch.Tensor) and isinstance(g, torch.Tensor) and not torch.equal(f, g),
        "Reproducibility: the generator you are given did not advance"
        + ("" if advanced else " (its state is the same after the call)")
        + ", so two calls with the same generator give the same batch. Hint: draw from it directly "
        "(torch.rand(..., generator=generator)); a fresh generator seeded with generator.initial_seed(), or "
        "torch.manual_seed(generator.initial_seed()), restarts the same stream on every call.",
    )
    # Without a generator (the argument left out, or None) every call draws fresh numbers from torch's global stream.
    d = call(submission, 50, p.clone(), what="generate_batch (no generator)")
    e = call(submission, 50, p.clone(), generator=None, what="generate_batch (generator=None)")
    expect(
        isinstance(d, torch.Tensor) and isinstance(e, torch.Tensor) and d.shape == e.shape == (50, 2, 3),
        f"Without a generator: expected tensors of shape (50, 2, 3), got {describe(d)} and {describe(e)}.",
    )
    expect(
        not torch.equal(d, e),
        "Without a generator: two calls gave the same batch. With generator=None draw from torch's global random "
        "stream (pass generator=None on to torch.rand); never seed it (torch.manual_seed) or a fixed generator inside "
        "the function, which would also reset the caller's random stream.",
    )


# --------------------------------------------------------------------------- 01.ToyModel


def _sizes(salt: object, n: tuple[int, int] = (5, 9), k: tuple[int, int] = (2, 5)) -> tuple[int, int, int]:
    """Secret sizes ``(n_features, n_hidden, n_instances)`` with n_hidden < n_features (a transposed W shows)."""
    gen = secret_gen(("sizes", salt))
    n_feat = int(torch.randint(n[0], n[1] + 1, (1,), generator=gen))
    n_hid = int(torch.randint(2, n_feat, (1,), generator=gen))
    n_inst = int(torch.randint(k[0], k[1] + 1, (1,), generator=gen))
    return n_feat, n_hid, n_inst


def _probabilities(n_inst: int) -> torch.Tensor:
    return torch.linspace(1.0, 0.1, n_inst)


def _importances(n: int) -> torch.Tensor:
    return 0.9 ** torch.arange(n, dtype=torch.float32)


def _ref_model(activation: str, sizes: tuple[int, int, int], seed: int = 11) -> supercourse.ToyModel:
    """The reference with Xavier W and a random bias of both signs (so a missing ``+ b`` shows)."""
    n, m, k = sizes
    gen = secret_gen(seed + 1)
    ref = supercourse.ToyModel(
        n, m, k, feature_probability=_probabilities(k), importance=_importances(n),
        activation=activation, seed=secret_seed(seed),
    )
    with torch.no_grad():
        ref.b_final.copy_(0.4 * torch.randn(k, n, generator=gen))
    return ref


def _make(submission, activation: str | None, sizes: tuple[int, int, int]):
    """The learner's model; ``activation=None`` leaves the argument out (its default, "relu")."""
    n, m, n_inst = sizes
    extra = {} if activation is None else {"activation": activation}
    return call(
        submission, n, m, n_instances=n_inst, feature_probability=_probabilities(n_inst),
        importance=_importances(n), **extra,
        what=f"ToyModel({n}, {m}, n_instances={n_inst}, ...{f', activation={activation!r}' if activation else ''})",
    )


def _summary(model) -> dict:
    """What the learner's model looks like (its parameters and tensor attributes), read in the worker."""
    return probe(model, "module_summary")


def _shape_problem(summary: dict, n: int, m: int, n_inst: int) -> str | None:
    """Why the model's W or b_final cannot hold the reference's, or None."""
    if not summary.get("is_module"):
        return f"ToyModel(...) should build a torch.nn.Module, got an object of type {summary.get('type', '?')}."
    for name, shape, dims in [
        ("W", (n_inst, m, n), "(n_instances, n_hidden, n_features)"),
        ("b_final", (n_inst, n), "(n_instances, n_features)"),
    ]:
        t = summary["attributes"].get(name)
        if t is None or "shape" not in t:
            got = f"a {t['type']}" if t else "nothing"
            return f"the model has no tensor attribute `{name}` (got {got}); create it in __init__ as `self.{name} = nn.Parameter(...)`."
        if tuple(t["shape"]) != shape:
            hint = ""
            if name == "W" and tuple(t["shape"]) == (n_inst, n, m):
                hint = " It looks transposed: row j of W[k] is hidden dimension j, column i is feature i's direction."
            elif name == "b_final" and tuple(t["shape"]) == (n,):
                hint = " Each instance has its own bias: one row per instance."
            return f"`{name}` should have shape {dims} = {shape}, got {tuple(t['shape'])}.{hint}"
    return None


def _load(model, ref: supercourse.ToyModel, what: str):
    problem = _shape_problem(_summary(model), ref.n_features, ref.n_hidden, ref.n_instances)
    expect(problem is None, f"{what}: could not load the reference's weights into your model: {problem}")
    probe(model, "load_parameters", {"W": ref.W.detach(), "b_final": ref.b_final.detach()})
    return model


def _inputs(seed: int, sizes: tuple[int, int, int], batch: int = 64) -> torch.Tensor:
    n, _, k = sizes
    gen = secret_gen(seed)
    # Half dense, half sparse examples: ReLU clips some outputs and the bias matters everywhere.
    dense = torch.rand(batch // 2, k, n, generator=gen)
    sparse = sparse_uniform(batch - batch // 2, torch.full((k, n), 0.3), generator=gen)
    return torch.cat([dense, sparse])


def _forward_diagnosis(out: torch.Tensor, ref: supercourse.ToyModel, x: torch.Tensor) -> str:
    """The hint of the first forward mistake of the table whose output, with the reference's weights, is the learner's."""
    for m in MISTAKES["ToyModel"]:
        if not m.compare:
            continue
        try:
            model = m.implementation(ref.n_features, ref.n_hidden, n_instances=ref.n_instances,
                                     activation=ref.activation)
            with torch.no_grad():
                model.W.copy_(ref.W.detach())
                model.b_final.copy_(ref.b_final.detach())
                theirs = model(x.to(model.W.dtype)).to(out.dtype)
        except Exception:  # noqa: BLE001 - a mistake that cannot run on these inputs
            continue
        if outputs_match(out, theirs, rtol=1e-4, atol=1e-5):
            return " Your output matches a model in which " + m.hint
    return ""


def _check_forward(submission, activation: str, default: bool = False) -> None:
    sizes = _sizes(("forward", activation, default))
    ref = _ref_model(activation, sizes, seed=11 if activation == "relu" else 12)
    what = f"Forward pass ({activation}{', the default activation' if default else ''})"
    model = _load(_make(submission, None if default else activation, sizes), ref, what)
    formula = "ReLU(W^T W x + b)" if activation == "relu" else "W^T W x + b"
    batch = int(torch.randint(20, 80, (1,), generator=secret_gen("batch")))
    for batch, seed, grad in [(batch, 1, False), (1, 2, False), (16, 5, True)]:
        x = _inputs(seed, sizes, batch)
        # An input that requires grad (as inside a larger model): code that goes through NumPy breaks.
        arg = x.clone().requires_grad_(grad)
        with torch.no_grad():
            expected = ref(x)
        out = call(model, arg, what=f"your model's forward (activation={activation!r}"
                   + (", an input that requires grad)" if grad else ")"))
        expect(
            isinstance(out, torch.Tensor) and tuple(out.shape) == tuple(x.shape),
            f"{what}: the output should have the shape of x, (batch, n_instances, n_features) = {tuple(x.shape)}, "
            f"got {describe(out)}.",
        )
        out = out.detach().to(expected.dtype)
        if not close(out, expected, rtol=1e-4, atol=1e-5):
            diff = (out - expected).abs().max().item()
            expect(
                False,
                f"{what}: with the reference's W and a random bias, x' should be {formula} for every instance; "
                f"your output differs by up to {diff:.3g}.{_forward_diagnosis(out, ref, x)}",
            )
    # In float64 (model.double(), a float64 batch) the output follows: float64, same values.
    x64 = _inputs(6, sizes, 8).double()
    with torch.no_grad():
        expected = ref.double()(x64)
    try:
        model64 = model.method("double") if hasattr(model, "method") else model.double()
        out = model64(x64.clone())
    except LearnerError as err:
        raise CheckFailed(
            f"{what}: after model.double(), forward on a float64 batch raised {err.type_name}: {err.message[:150]}. "
            "Hint: compute with the dtype of x and W as they are (no .float(), no float32 constants)."
        ) from None
    expect(
        isinstance(out, torch.Tensor) and out.dtype == torch.float64 and tuple(out.shape) == tuple(x64.shape),
        f"{what}: after model.double(), forward on a float64 batch should return float64 of shape {tuple(x64.shape)}, "
        f"got {describe(out)}. Hint: let the dtype of x and W carry through (no .float()).",
    )
    expect(
        close(out.detach(), expected, rtol=1e-9, atol=1e-12),
        f"{what}: in float64 the output differs from {formula} by up to {(out - expected).abs().max().item():.3g}: "
        "compute in float64 all the way (no float32 step in between).",
    )


@prop("ToyModel", points=1)
def test_parameters(submission):
    n, m, k = _sizes("parameters", n=(4, 12), k=(2, 9))
    n1, m1, _ = _sizes("one instance", n=(4, 12))
    n0, m0, _ = _sizes("defaults", n=(4, 12))
    defaults = call(submission, n0, m0, what=f"ToyModel({n0}, {m0})")  # every optional argument left at its default
    for (n, m, n_inst), model in [((n, m, k), None), ((n1, m1, 1), None), ((n0, m0, 1), defaults)]:
        summary = _summary(model if model is not None else _make(submission, "relu", (n, m, n_inst)))
        problem = _shape_problem(summary, n, m, n_inst)
        if problem is not None and model is not None:
            problem += (f" With n_instances left out (ToyModel({n}, {m})) the model holds one instance: the "
                        "default is n_instances=1.")
        expect(problem is None, f"Parameters: {problem}")
        for name in ("W", "b_final"):
            t = summary["attributes"][name]
            expect(
                t["parameter"] and t["registered"],
                f"Parameters: `{name}` should be an nn.Parameter registered on the model (so the optimiser trains it), "
                f"got {'an unregistered Parameter' if t['parameter'] else 'a plain tensor'}. Hint: `self.{name} = nn.Parameter(tensor)`.",
            )


def _init_sizes(salt: object, n_range: tuple[int, int], entries: int) -> tuple[int, int, int]:
    """Secret sizes for the initialisation's statistics: n_hidden between n_features / 3 and n_features - 1,
    so the fans of Xavier and He initialisations differ by at least 15%, and at least ``entries`` weights."""
    gen = secret_gen(("init sizes", salt))
    n = int(torch.randint(n_range[0], n_range[1] + 1, (1,), generator=gen))
    m = int(torch.randint(max(2, n // 3), n, (1,), generator=gen))
    k = max(2, math.ceil(entries / (n * m))) + int(torch.randint(0, 3, (1,), generator=gen))
    return n, m, k


@prop("ToyModel", points=1)
def test_initialisation(submission):
    n, m, n_inst = _init_sizes("first", (30, 60), 3000)
    summary = _summary(_make(submission, "relu", (n, m, n_inst)))
    problem = _shape_problem(summary, n, m, n_inst)
    expect(problem is None, f"Initialisation: {problem}")
    W, b = summary["attributes"]["W"]["value"].double(), summary["attributes"]["b_final"]["value"]
    expect(bool(torch.isfinite(W).all()), "Initialisation: W holds NaN or infinite values.")
    want = math.sqrt(2.0 / (n + m))
    got = W.std().item()
    # Another size (a std hard-coded for the first would fail there), and the law's shape: normal, not uniform.
    n2, m2, k2 = _init_sizes("second", (4, 8), 9000)
    summary2 = _summary(_make(submission, "relu", (n2, m2, k2)))
    problem = _shape_problem(summary2, n2, m2, k2)
    expect(problem is None, f"Initialisation: {problem}")
    W2 = summary2["attributes"]["W"]["value"].double()
    want2 = math.sqrt(2.0 / (n2 + m2))
    # W has at least 3000 entries: the sample std is within 1.3% of the truth per standard error; we allow 10%.
    hint = ""
    if abs(W2.std().item() / got - 1) < 0.05:
        hint = (f" For n={n2}, m={m2} it is {W2.std().item():.3f} too, where {want2:.3f} is expected: compute the std "
                "from n_features and n_hidden, do not hard-code it.")
    elif abs(got - math.sqrt(2.0 / (m * n + n_inst * n))) < 0.1 * got:
        hint = (
            " That is nn.init.xavier_normal_ applied to the whole 3-D tensor, whose fans then include the instance "
            "dimension; each instance is its own m x n matrix, so use std sqrt(2 / (n_features + n_hidden))."
        )
    expect(
        abs(got / want - 1) < 0.1,
        f"Initialisation: W should be Xavier-normal, std sqrt(2 / (n_features + n_hidden)) = {want:.3f} for n={n}, "
        f"m={m}; got std {got:.3f}.{hint}",
    )
    mean_tol = Z * want / math.sqrt(W.numel())
    expect(abs(W.mean().item()) < mean_tol, f"Initialisation: W should have mean 0, got {W.mean().item():.3f}.")
    expect(
        not torch.allclose(W[0], W[1]),
        "Initialisation: every instance starts from the same W; draw each instance's weights independently.",
    )
    expect(
        abs(W2.std().item() / want2 - 1) < 0.1,
        f"Initialisation: for n={n2}, m={m2} W's std should be sqrt(2 / (n_features + n_hidden)) = {want2:.3f}, got "
        f"{W2.std().item():.3f}: compute the std from n_features and n_hidden, do not hard-code it.",
    )
    d = ks_statistic(W2, normal_cdf(0.0, want2))
    if not d <= ks_threshold(W2.numel(), 1e-6):
        spread = W2.abs().max().item() / want2
        shape = " Its values stop at about 1.73 std, as a uniform law's do." if spread < 1.8 else ""
        raise CheckFailed(
            f"Initialisation: W should be Xavier-*normal* (Gaussian, std {want2:.3f}); the distribution of its "
            f"{W2.numel()} entries is not normal (Kolmogorov-Smirnov distance {d:.3f}, at most "
            f"{ks_threshold(W2.numel(), 1e-6):.3f} expected).{shape} Hint: std * torch.randn(...), not torch.rand."
        )
    # Two models built one after the other must differ (no fixed seed inside __init__).
    again = _summary(_make(submission, "relu", (n, m, n_inst)))["attributes"]["W"]["value"].double()
    expect(
        again.shape == W.shape and not torch.equal(again, W),
        "Initialisation: two models built one after the other have the same W: do not seed torch (torch.manual_seed) "
        "inside __init__; draw from torch's global random stream so every model starts differently.",
    )
    expect(
        torch.count_nonzero(b).item() == 0,
        f"Initialisation: b_final should start at zero, got values up to {b.abs().max().item():.3g}.",
    )


@prop("ToyModel", points=2)
def test_forward_relu(submission):
    _check_forward(submission, "relu")
    _check_forward(submission, "relu", default=True)


@prop("ToyModel", points=1)
def test_forward_linear(submission):
    _check_forward(submission, "linear")


@prop("ToyModel", points=1)
def test_gradients_reach_parameters(submission):
    sizes = _sizes("gradients")
    ref = _ref_model("relu", sizes, seed=13)
    model = _load(_make(submission, "relu", sizes), ref, "Gradients")
    x = _inputs(3, sizes)
    gen = secret_gen(4)
    weights = torch.randn(x.shape, generator=gen)
    (ref(x) * weights).sum().backward()
    result = call(probe, model, "forward_backward", x.clone(), weights, what="your model's forward")
    out = result["out"]
    expect(isinstance(out, torch.Tensor) and out.shape == x.shape, f"Gradients: forward returned {describe(out)}.")
    expect(
        result["requires_grad"],
        "Gradients: your forward's output does not depend differentiably on W and b_final, so training cannot "
        "change them. Hint: compute with torch operations on self.W and self.b_final (no .detach(), .data, "
        "torch.no_grad() or numpy).",
    )
    grads = result.get("grads") or {}
    for name in ("W", "b_final"):
        got = grads.get(name)
        expect(
            got is not None and bool(got.abs().sum() > 0),
            f"Gradients: no gradient reaches `{name}`, so training would never change it. Hint: forward must use "
            f"self.{name} itself (not a detached copy); the loss depends on both W and b_final.",
        )
    # The exact gradient is only this property's business when the forward pass itself is right
    # (a wrong forward already costs the forward properties' points).
    if close(out.detach(), ref(x).detach(), rtol=1e-4, atol=1e-5):
        for name in ("W", "b_final"):
            got, want = grads[name], getattr(ref, name).grad
            expect(
                got.shape == want.shape and close(got, want, rtol=1e-4, atol=1e-5),
                f"Gradients: your forward gives the right values but the gradient reaching `{name}` differs from the "
                "reference's. Hint: use self.W in both places (h = W x and x' = W^T h), without detaching either.",
            )


# --------------------------------------------------------------------------- 01.importance_loss


def _loss_sizes(salt: object, n_inst: tuple[int, int] = (2, 5)) -> tuple[int, int, int]:
    """Secret ``(batch, n_instances, n_features)``: batch in [20, 60], n_features in [3, 9] (never equal)."""
    gen = secret_gen(("loss sizes", salt))
    batch = int(torch.randint(20, 61, (1,), generator=gen))
    k = int(torch.randint(n_inst[0], n_inst[1] + 1, (1,), generator=gen))
    n = int(torch.randint(3, 10, (1,), generator=gen))
    return batch, k, n


def _loss_inputs(seed: int, batch: int, n_inst: int, n_feat: int, ones: bool):
    gen = secret_gen(seed)
    x = torch.rand(batch, n_inst, n_feat, generator=gen)
    x_hat = torch.rand(batch, n_inst, n_feat, generator=gen) * 1.5 - 0.25
    imp = torch.ones(n_inst, n_feat) if ones else 0.05 + torch.rand(n_inst, n_feat, generator=gen)
    return x, x_hat, imp


def _ref_loss(x, x_hat, imp) -> torch.Tensor:
    return (imp * (x - x_hat) ** 2).mean(dim=(0, 2)).sum()


def _loss_of(submission, x, x_hat, imp, what: str) -> tuple[float, object]:
    """The learner's loss as a float, and as returned (for the diagnosis)."""
    out = call(submission, x.clone(), x_hat.clone(), imp.clone(), what="importance_loss")
    if isinstance(out, torch.Tensor) and out.numel() == 1:
        value = float(out.detach().double().item())
    else:
        expect(
            isinstance(out, float),
            f"{what}: importance_loss should return a scalar (a 0-dimensional tensor), got {describe(out)}. "
            "Hint: reduce over every dimension: mean over batch and features, then sum over instances.",
        )
        value = float(out)
    expect(math.isfinite(value), f"{what}: importance_loss returned {value}; the loss of finite inputs is finite.")
    return value, out


def _scalar(submission, x, x_hat, imp, what: str) -> float:
    return _loss_of(submission, x, x_hat, imp, what)[0]


def _diagnosis(got: object, x, x_hat, imp) -> str:
    """The hint of the first mistake of the table that gives the learner's value on these inputs."""
    if not isinstance(got, torch.Tensor):
        got = torch.tensor(float(got))
    return diagnose(MISTAKES["importance_loss"], got.detach().reshape(()), (x, x_hat, imp), rtol=1e-4, atol=1e-7)


def _ratio_hint(ratio: float, batch: int, n_inst: int, n_feat: int) -> str:
    for factor, text in [
        (n_feat, "summed over features instead of averaging"),
        (batch, "summed over the batch instead of averaging"),
        (batch * n_feat, "summed over batch and features instead of averaging"),
        (1 / n_inst, "averaged over instances instead of summing"),
    ]:
        if factor != 1 and abs(ratio / factor - 1) < 1e-3:
            return f" It is {factor:g} times the expected value: looks like you {text}."
    return ""


@prop("importance_loss", points=1)
def test_mean_over_batch_and_features(submission):
    batch, _, n_feat = _loss_sizes("mean")
    x, x_hat, imp = _loss_inputs(21, batch, 1, n_feat, ones=True)
    want = _ref_loss(x, x_hat, imp).item()
    got, raw = _loss_of(submission, x, x_hat, imp, "Mean over batch and features")
    if not math.isclose(got, want, rel_tol=1e-4):
        hint = _diagnosis(raw, x, x_hat, imp) or _ratio_hint(got / want if want else float("nan"), batch, 1, n_feat)
        expect(
            False,
            f"Mean over batch and features: with one instance and all importances 1, the loss should be the mean "
            "squared error over batch and features, {}; got {}.{}".format(*fmt_pair(want, got, digits=5), hint),
        )


@prop("importance_loss", points=1)
def test_importance_weighting(submission):
    # Compared as a ratio to the learner's own unweighted loss, so a wrong reduction does not fail this property.
    batch, _, n_feat = _loss_sizes("weighting")
    x, x_hat, _ = _loss_inputs(22, batch, 1, n_feat, ones=True)
    gen = secret_gen("importances")
    imp = torch.rand(1, n_feat, generator=gen) * 2.0
    imp[0, int(torch.randint(0, n_feat, (1,), generator=gen))] = 0.0  # a feature that does not count at all
    base = _scalar(submission, x, x_hat, torch.ones_like(imp), "Importance weighting")
    got, raw = _loss_of(submission, x, x_hat, imp, "Importance weighting")
    want = _ref_loss(x, x_hat, imp).item() / _ref_loss(x, x_hat, torch.ones_like(imp)).item()
    ratio = got / base if base else float("nan")
    if not math.isclose(ratio, want, rel_tol=1e-4):
        sq = _ref_loss(x, x_hat, imp**2).item() / _ref_loss(x, x_hat, torch.ones_like(imp)).item()
        hint = _diagnosis(raw, x, x_hat, imp)
        if hint:
            pass
        elif math.isclose(ratio, 1.0, rel_tol=1e-4):
            hint = " Changing the importances changed nothing: multiply each feature's squared error by I_i."
        elif math.isclose(ratio, sq, rel_tol=1e-4):
            hint = " You weighted by I_i^2: the importance multiplies the squared error, I_i (x_i - x'_i)^2, it is not squared."
        expect(
            False,
            f"Importance weighting: with importances {fmt(imp, 3, limit=64)} the loss should be {want:.4f} times the loss with all "
            f"importances 1; yours is {ratio:.4f} times.{hint}",
        )


@prop("importance_loss", points=1)
def test_sum_over_instances(submission):
    # Compared with the learner's own one-instance losses, so only the reduction over instances matters here.
    batch, n_inst, n_feat = _loss_sizes("sum", n_inst=(2, 6))
    x, x_hat, imp = _loss_inputs(23, batch, n_inst, n_feat, ones=True)
    whole, raw = _loss_of(submission, x, x_hat, imp, "Sum over instances")
    parts = [
        _scalar(submission, x[:, k : k + 1], x_hat[:, k : k + 1], imp[k : k + 1], "Sum over instances")
        for k in range(n_inst)
    ]
    total = sum(parts)
    if not math.isclose(whole, total, rel_tol=1e-4):
        hint = ""
        if math.isclose(whole, total / n_inst, rel_tol=1e-4):
            hint = (
                f" It is 1/{n_inst} of that: you averaged over instances. Sum instead, so each instance's gradient "
                "does not shrink with the number of instances trained beside it."
            )
        expect(
            False,
            f"Sum over instances: the loss of {n_inst} instances should be the sum of their separate losses, "
            "{}; got {}.{}".format(*fmt_pair(total, whole, digits=5), hint or _diagnosis(raw, x, x_hat, imp)),
        )


@prop("importance_loss", points=1)
def test_matches_reference(submission):
    batch, n_inst, n_feat = _loss_sizes("whole")
    x, x_hat, imp = _loss_inputs(24, batch, n_inst, n_feat, ones=False)
    result = call(submission.with_grad, x.clone(), x_hat.clone(), imp.clone(), wrt=(1,), what="importance_loss")
    out = result["out"]
    expect(
        isinstance(out, torch.Tensor) and out.dim() == 0,
        f"Whole loss: importance_loss should return a 0-dimensional tensor (so .backward() works), got {describe(out)}."
        + (" Hint: do not call .item()." if isinstance(out, (float, int)) else ""),
    )
    want = _ref_loss(x, x_hat.detach(), imp)
    if not close(out.detach().double(), want.double(), rtol=1e-4, atol=0):
        expect(
            False,
            f"Whole loss: with a different importance for every instance and feature, the loss should be "
            "{}, got {}.{}".format(*fmt_pair(want.item(), out.item(), digits=5), _diagnosis(out, x, x_hat, imp)),
        )
    expect(
        result["requires_grad"] and result["grads"] is not None and result["grads"][0] is not None,
        "Whole loss: the loss does not carry a gradient back to x_hat, so a model trained on it would never learn. "
        "Hint: compute it with torch operations on x_hat itself (no .detach(), .item(), torch.no_grad() or numpy).",
    )
    grad = result["grads"][0]
    x_ref = x_hat.detach().clone().requires_grad_(True)
    (want_grad,) = torch.autograd.grad(_ref_loss(x, x_ref, imp), x_ref)
    expect(
        close(grad, want_grad, rtol=1e-4, atol=1e-7),
        "Whole loss: its gradient with respect to x_hat differs from the reference's although the value matches.",
    )
    _check_other_inputs(submission)


def _check_other_inputs(submission) -> None:
    """float64 inputs give a float64 loss; a trainable importance (nn.Parameter) works; a batch of one example."""
    batch, n_inst, n_feat = _loss_sizes("float64")
    x, x_hat, imp = _loss_inputs(25, batch, n_inst, n_feat, ones=False)
    out = call(submission, x.double(), x_hat.double(), imp.double(), what="importance_loss")
    want = _ref_loss(x.double(), x_hat.double(), imp.double())
    expect(
        isinstance(out, torch.Tensor) and out.dim() == 0 and out.dtype == torch.float64,
        f"Other inputs: for float64 x, x_hat and importance the loss should be a 0-dimensional float64 tensor, got "
        f"{describe(out)}. Hint: let the inputs' dtype carry through (no .float(), no float32 constants).",
    )
    w, g = fmt_pair(want.item(), out.item(), digits=6)
    expect(close(out, want, rtol=1e-10, atol=0),
           f"Other inputs: in float64 the loss should be {w}, got {g}: compute in float64 all the way.")
    param = torch.nn.Parameter(imp.clone())
    out = call(submission, x.clone(), x_hat.clone(), param, what="importance_loss (importance an nn.Parameter)")
    want = _ref_loss(x, x_hat, imp)
    ok = isinstance(out, torch.Tensor) and out.dim() == 0 and close(out.detach().double(), want.double(), rtol=1e-4)
    expect(ok, f"Other inputs: with importance an nn.Parameter (requires_grad=True) the loss should be {fmt(want.item(), 6)}, "
               f"got {describe(out) if not isinstance(out, torch.Tensor) or out.dim() else fmt(out.item(), 6)}. "
               "Hint: stay in torch (no .numpy() round trip, no .item() before the end).")
    _, n1, f1 = _loss_sizes("batch of one")
    x1, xh1, imp1 = _loss_inputs(26, 1, n1, f1, ones=False)
    out = call(submission, x1.clone(), xh1.clone(), imp1.clone(), what="importance_loss (a batch of one example)")
    want = _ref_loss(x1, xh1, imp1)
    ok = isinstance(out, torch.Tensor) and out.dim() == 0 and close(out.detach().double(), want.double(), rtol=1e-4)
    expect(ok, f"Other inputs: with a batch of one example the loss should be {fmt(want.item(), 6)}, got "
               f"{describe(out) if not isinstance(out, torch.Tensor) or out.dim() else fmt(out.item(), 6)}. "
               "Hint: reduce with .mean(dim=(0, 2)) rather than .squeeze() or dividing by a hard-coded size.")
