"""Lesson 6 checks: correlated and anticorrelated features.

Four exercises, each graded on its own.

* ``06.correlated_sets`` ``correlated_sets(batch_size, feature_probability, set_size, generator=None)
  -> (batch, n_instances, n_sets * set_size)``: a set is all zero or all active (one draw per set,
  with probability its features' marginal density), active features independent U[0, 1).
* ``06.anticorrelated_sets`` (same signature): at most one active feature per set: the set is active
  with probability ``set_size * p`` (so every feature's marginal density is ``p``), which feature is
  uniform over the set, its value U[0, 1).
  Both generators are checked statistically on large seeded batches (binomial and KS tests at
  ``alpha = 1e-6``, so a correct generator fails about once in a million runs), and for using the
  generator they are given.
* ``06.partner_cosines`` ``partner_cosines(W, set_size) -> (n_instances, n_sets)``: the mean cosine
  between the distinct features of each set (0 for a zero column).
* ``06.collapsed_sets`` ``collapsed_sets(W, set_size, cosine=0.9) -> (n_instances,)`` integer: sets whose
  features are all represented (``||W_i|| > 0.5``) and pairwise more aligned than ``cosine``.

The readouts use the toolkit's property families, compared with :mod:`supercourse.correlation`
exactly (up to float rounding) and diagnosed with :data:`MISTAKES`, the table the tests also use.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from autograder.exercises import Exercise
from autograder.framework import call, expect, prop
from autograder.toolkit import Case, Mistake, random_W, tensor_properties, with_zero_columns
from autograder.toolkit.stats import ks_test, proportion_ok, uniform_cdf
from supercourse import correlation

LESSON = "06-correlated-features"
EXERCISES = {
    "correlated_sets": Exercise(
        "correlated_sets", "Correlated sets of sparse features", forbid=("correlated_sparse", "SetModel"),
        reference=("supercourse.data.correlated_sparse", "supercourse.correlation.SetModel"),
    ),
    "anticorrelated_sets": Exercise(
        "anticorrelated_sets", "Anticorrelated sets of sparse features", forbid=("anticorrelated_sparse", "SetModel"),
        reference=("supercourse.data.anticorrelated_sparse", "supercourse.correlation.SetModel"),
    ),
    "partner_cosines": Exercise(
        "partner_cosines", "Cosines between the features of each set", forbid=("correlation",),
        reference=("supercourse.correlation.partner_cosines", "supercourse.correlation.cosines"),
    ),
    "collapsed_sets": Exercise(
        "collapsed_sets", "Count the sets collapsed onto one direction", forbid=("correlation",),
        reference=("supercourse.correlation.collapsed_sets", "supercourse.correlation.cosines"),
    ),
}

BATCH = 40_000
"""Samples per statistical check: a density of 0.05 is then estimated to about +-0.001."""


# --------------------------------------------------------------------------- mistakes: generators


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _corr_independent(batch_size, p, set_size, generator=None):
    p_feat = p.repeat_interleave(set_size, dim=1)
    u = torch.rand((batch_size, *p_feat.shape), generator=generator)
    return torch.rand((batch_size, *p_feat.shape), generator=generator) * (u < p_feat)


def _corr_one_value(batch_size, p, set_size, generator=None):
    active = torch.rand((batch_size, *p.shape, 1), generator=generator) < p[..., None]
    v = torch.rand((batch_size, *p.shape, 1), generator=generator).expand(-1, -1, -1, set_size)
    return (v * active).reshape(batch_size, p.shape[0], -1)


def _corr_tiled(batch_size, p, set_size, generator=None):
    # the set's draw is right, but sets laid out interleaved (feature i in set i % n_sets)
    active = torch.rand((batch_size, *p.shape, 1), generator=generator) < p[..., None]
    v = torch.rand((batch_size, *p.shape, set_size), generator=generator) * active
    return v.transpose(2, 3).reshape(batch_size, p.shape[0], -1)


def _corr_and_of_features(batch_size, p, set_size, generator=None):
    on = (torch.rand((batch_size, *p.shape, set_size), generator=generator) < p[..., None]).all(-1, keepdim=True)
    v = torch.rand((batch_size, *p.shape, set_size), generator=generator) * on
    return v.reshape(batch_size, p.shape[0], -1)


def _corr_dense_complement(batch_size, p, set_size, generator=None):
    active = torch.rand((batch_size, *p.shape, 1), generator=generator) > p[..., None]
    v = torch.rand((batch_size, *p.shape, set_size), generator=generator) * active
    return v.reshape(batch_size, p.shape[0], -1)


def _corr_global_rng(batch_size, p, set_size, generator=None):
    active = torch.rand((batch_size, *p.shape, 1)) < p[..., None]  # torch's global generator, not the argument
    return (torch.rand((batch_size, *p.shape, set_size)) * active).reshape(batch_size, p.shape[0], -1)


def _corr_normal_values(batch_size, p, set_size, generator=None):
    active = torch.rand((batch_size, *p.shape, 1), generator=generator) < p[..., None]
    v = torch.randn((batch_size, *p.shape, set_size), generator=generator).abs().clamp_max(0.999) * active
    return v.reshape(batch_size, p.shape[0], -1)


def _anti_set_prob_p(batch_size, p, set_size, generator=None):
    on = torch.rand((batch_size, *p.shape), generator=generator) < p
    which = torch.randint(set_size, (batch_size, *p.shape), generator=generator)
    v = torch.rand((batch_size, *p.shape, set_size), generator=generator)
    return (v * torch.nn.functional.one_hot(which, set_size) * on[..., None]).reshape(batch_size, p.shape[0], -1)


def _anti_first_only(batch_size, p, set_size, generator=None):
    on = torch.rand((batch_size, *p.shape), generator=generator) < p * set_size
    v = torch.rand((batch_size, *p.shape, set_size), generator=generator)
    mask = torch.zeros(set_size)
    mask[0] = 1
    return (v * mask * on[..., None]).reshape(batch_size, p.shape[0], -1)


def _anti_independent(batch_size, p, set_size, generator=None):
    return _corr_independent(batch_size, p, set_size, generator)


def _anti_all_active(batch_size, p, set_size, generator=None):
    on = torch.rand((batch_size, *p.shape, 1), generator=generator) < p[..., None]
    v = torch.rand((batch_size, *p.shape, set_size), generator=generator) * on
    return v.reshape(batch_size, p.shape[0], -1)


def _anti_global_rng(batch_size, p, set_size, generator=None):
    on = torch.rand((batch_size, *p.shape)) < p * set_size  # torch's global generator, not the argument
    which = torch.randint(set_size, (batch_size, *p.shape))
    v = torch.rand((batch_size, *p.shape, set_size))
    return (v * torch.nn.functional.one_hot(which, set_size) * on[..., None]).reshape(batch_size, p.shape[0], -1)


def _anti_ones(batch_size, p, set_size, generator=None):
    on = torch.rand((batch_size, *p.shape), generator=generator) < p * set_size
    which = torch.randint(set_size, (batch_size, *p.shape), generator=generator)
    return (torch.nn.functional.one_hot(which, set_size) * on[..., None]).float().reshape(batch_size, p.shape[0], -1)


MISTAKES: dict[str, list[Mistake]] = {
    "correlated_sets": [
        Mistake("independent", _corr_independent, "all zero or all active", compare=False),
        Mistake("one_value_per_set", _corr_one_value, "independent values", compare=False),
        Mistake("interleaved_sets", _corr_tiled, "consecutive", compare=False),
        Mistake("and_of_features", _corr_and_of_features, "density", compare=False),
        Mistake("complement", _corr_dense_complement, "density", compare=False),
        Mistake("global_rng", _corr_global_rng, "generator", compare=False),
        Mistake("folded_normal_values", _corr_normal_values, "uniform", compare=False),
    ],
    "anticorrelated_sets": [
        Mistake("set_active_with_p", _anti_set_prob_p, "set_size * p", compare=False),
        Mistake("first_feature_only", _anti_first_only, "density", compare=False),
        Mistake("independent", _anti_independent, "at most one", compare=False),
        Mistake("whole_set_active", _anti_all_active, "at most one", compare=False),
        Mistake("global_rng", _anti_global_rng, "generator", compare=False),
        Mistake("values_all_one", _anti_ones, "uniform", compare=False),
    ],
}


# --------------------------------------------------------------------------- generator properties


def _densities() -> torch.Tensor:
    """``(3, 2)``: densities differing per instance and per set (all <= 1/3, valid for sets of 3)."""
    return torch.tensor([[0.05, 0.2], [0.3, 0.1], [0.02, 0.25]])


def _draw(submission: Any, name: str, batch: int, p: torch.Tensor, set_size: int, seed: int) -> torch.Tensor:
    out = call(submission, batch, p.clone(), set_size, _gen(seed), what=name)
    n_inst, n_sets = p.shape
    want = (batch, n_inst, n_sets * set_size)
    expect(isinstance(out, torch.Tensor), f"{name} must return a torch.Tensor, got {type(out).__name__}.")
    expect(tuple(out.shape) == want,
           f"{name}({batch}, p of shape {tuple(p.shape)}, set_size={set_size}) must return shape "
           f"(batch, n_instances, n_sets * set_size) = {want}, got {tuple(out.shape)}.")
    expect(out.is_floating_point(), f"{name} must return floats (feature values in [0, 1)), got dtype {out.dtype}.")
    return out.detach()


def _shape_and_generator(submission: Any, name: str) -> None:
    p = _densities()
    for batch, set_size in ((5, 2), (7, 3)):
        _draw(submission, name, batch, p[:, :1], set_size, 0)
    x = _draw(submission, name, 64, p, 3, 1)
    expect(bool(((x >= 0) & (x < 1)).all()), f"{name}: every value must lie in [0, 1), got values in "
           f"[{x.min().item():.3g}, {x.max().item():.3g}].")
    again = _draw(submission, name, 64, p, 3, 1)
    other = _draw(submission, name, 64, p, 3, 2)
    expect(torch.equal(x, again) and not torch.equal(x, other),
           f"{name}: draw every random number from the generator argument (torch.rand(..., generator=generator)): "
           "two calls with generators seeded alike must return the same batch, and differently seeded ones differ.")


def _marginals(submission: Any, name: str, hint: str) -> torch.Tensor:
    p = _densities()
    set_size = 3 if name == "anticorrelated_sets" else 2
    x = _draw(submission, name, BATCH, p, set_size, 3)
    active = (x > 0).double().sum(0)  # (n_instances, n_features)
    p_feat = p.repeat_interleave(set_size, dim=1).double()
    for k in range(p.shape[0]):
        for i in range(p_feat.shape[1]):
            expect(
                proportion_ok(float(active[k, i]), BATCH, float(p_feat[k, i])),
                f"{name}: feature {i} of instance {k} (in set {i // set_size}, whose features have density "
                f"{p_feat[k, i]:.3g}) was non-zero in {active[k, i] / BATCH:.4f} of {BATCH} samples. {hint}",
            )
    return x


def _uniform_values(x: torch.Tensor, name: str) -> None:
    values = x[x > 0]
    expect(values.numel() > 100, f"{name}: too few active features to check their values.")
    expect(ks_test(values, uniform_cdf(0.0, 1.0)),
           f"{name}: the values of active features must be uniform on [0, 1) (torch.rand); got mean "
           f"{values.mean().item():.3f}, min {values.min().item():.3f}, max {values.max().item():.3f}.")


@prop("correlated_sets", points=1)
def test_correlated_shape_and_generator(submission):
    _shape_and_generator(submission, "correlated_sets")


@prop("correlated_sets", points=1)
def test_correlated_marginal_density(submission):
    _marginals(submission, "correlated_sets",
               "Each feature's density must be its set's p: one draw per set, active when u < p. Set k is the "
               "consecutive features k*set_size ... (k+1)*set_size - 1, with density feature_probability[:, k].")


@prop("correlated_sets", points=1)
def test_correlated_sets_all_zero_or_all_active(submission):
    p = _densities()
    x = _draw(submission, "correlated_sets", 4000, p, 2, 4)
    on = (x > 0).reshape(4000, 3, 2, 2)
    mixed = (on.any(-1) & ~on.all(-1)).double().mean().item()
    expect(mixed == 0, f"correlated_sets: a set must be all zero or all active, but {mixed:.1%} of the sets had "
           "some features on and some off. Draw one activity per set (shape (batch, n_instances, n_sets, 1)) and "
           "broadcast it over the set's consecutive features.")


@prop("correlated_sets", points=1)
def test_correlated_values_uniform_and_independent(submission):
    x = _draw(submission, "correlated_sets", BATCH, _densities(), 2, 5)
    _uniform_values(x, "correlated_sets")
    pairs = x.reshape(BATCH, 3, 2, 2)
    both = (pairs > 0).all(-1)
    a, b = pairs[..., 0][both], pairs[..., 1][both]
    expect(a.numel() > 100, "correlated_sets: too few active sets to check their values.")
    same = (a == b).double().mean().item()
    r = torch.corrcoef(torch.stack([a, b]).double())[0, 1].item() if a.numel() > 2 else 0.0
    expect(same < 0.01 and abs(r) < 0.1,
           f"correlated_sets: the features of an active set must take independent values (one torch.rand per "
           f"feature); partners were equal in {same:.1%} of active sets (correlation {r:.2f}).")


@prop("anticorrelated_sets", points=1)
def test_anticorrelated_shape_and_generator(submission):
    _shape_and_generator(submission, "anticorrelated_sets")


@prop("anticorrelated_sets", points=1.5)
def test_anticorrelated_marginal_density(submission):
    _marginals(submission, "anticorrelated_sets",
               "A set of k features with at most one active must be active with probability set_size * p, "
               "which feature uniform over the set, so that each feature's own density is p.")


@prop("anticorrelated_sets", points=1)
def test_anticorrelated_at_most_one_active(submission):
    x = _draw(submission, "anticorrelated_sets", 4000, _densities(), 3, 6)
    n_on = (x > 0).reshape(4000, 3, 2, 3).sum(-1)
    worst = int(n_on.max())
    expect(worst <= 1, f"anticorrelated_sets: at most one feature of a set may be active, but a set had {worst} "
           "active at once. Draw whether the set is active, then which one of its features (torch.randint).")


@prop("anticorrelated_sets", points=0.5)
def test_anticorrelated_values_uniform(submission):
    _uniform_values(_draw(submission, "anticorrelated_sets", BATCH, _densities(), 3, 7), "anticorrelated_sets")


# --------------------------------------------------------------------------- readouts: mistakes


def _unit(W: torch.Tensor) -> torch.Tensor:
    n = W.norm(dim=1, keepdim=True)
    return torch.where(n > 1e-12, W / n.clamp_min(1e-12), torch.zeros_like(W))


def _blocks(C: torch.Tensor, set_size: int) -> torch.Tensor:
    K, n, _ = C.shape
    s = n // set_size
    return torch.diagonal(C.reshape(K, s, set_size, s, set_size), dim1=1, dim2=3).permute(0, 3, 1, 2)


def _pc(C: torch.Tensor, set_size: int) -> torch.Tensor:
    off = ~torch.eye(set_size, dtype=torch.bool)
    return _blocks(C, set_size)[..., off].mean(-1)


def _pc_interleaved(W, set_size=2):
    K, m, n = W.shape
    s = n // set_size
    perm = torch.arange(n).reshape(set_size, s).T.reshape(-1)  # set k = features k, k + s, ...
    return _pc(_unit(W[:, :, perm]).mT @ _unit(W[:, :, perm]), set_size)


def _pc_with_self(W, set_size=2):
    return _blocks(_unit(W).mT @ _unit(W), set_size).flatten(2).mean(-1)


def _pc_per_feature(W, set_size=2):
    C = _unit(W).mT @ _unit(W)
    return (_blocks(C, set_size).sum(-1) - 1).div(set_size - 1).flatten(1)


MISTAKES.update({
    "partner_cosines": [
        Mistake("dot_products", lambda W, set_size=2: _pc(W.mT @ W, set_size), "cosine",
                "Your values match the dot products W_i . W_j: divide by both norms to get the cosine."),
        Mistake("including_self", _pc_with_self, "distinct",
                "Your values match a mean that includes each feature with itself (cosine 1): average over distinct "
                "pairs only."),
        Mistake("interleaved_sets", _pc_interleaved, "consecutive",
                "Your values match sets of features i, i + n_sets, ...: set k is the consecutive features "
                "k*set_size ... (k+1)*set_size - 1."),
        Mistake("abs_cosines", lambda W, set_size=2: _pc(_unit(W).mT @ _unit(W), set_size).abs(), "sign",
                "Your values match |cos|: keep the sign (antipodal partners give -1)."),
        Mistake("nan_zero_columns", lambda W, set_size=2: _pc((W / W.norm(dim=1, keepdim=True)).mT
                                                              @ (W / W.norm(dim=1, keepdim=True)), set_size),
                "finite", compare=False),
        Mistake("per_feature", _pc_per_feature, "shape", compare=False),
    ],
})


def _collapsed(W, set_size=2, cosine=0.9, threshold=0.5, absolute=False, cos_fn=None, need_norm=True):
    C = cos_fn(W) if cos_fn is not None else _unit(W).mT @ _unit(W)
    B = _blocks(C.abs() if absolute else C, set_size)
    aligned = (B > cosine).flatten(2).all(-1)
    K, _, n = W.shape
    present = (W.norm(dim=1) > threshold).reshape(K, n // set_size, set_size).all(-1)
    return (aligned & present if need_norm else aligned).sum(-1)


MISTAKES.update({
    "collapsed_sets": [
        Mistake("no_norm_test", lambda W, set_size=2, cosine=0.9: _collapsed(W, set_size, cosine, need_norm=False),
                "represented",
                "Your counts include sets with unrepresented features: a set has collapsed only when all its features are "
                "represented (||W_i|| > 0.5) and aligned."),
        Mistake("absolute_cosine", lambda W, set_size=2, cosine=0.9: _collapsed(W, set_size, cosine, absolute=True),
                "antipodal",
                "Your counts include antipodal partners (cos near -1): collapsed partners point the same way, so compare "
                "the signed cosine."),
        Mistake("dot_products", lambda W, set_size=2, cosine=0.9: _collapsed(W, set_size, cosine, cos_fn=lambda W: W.mT @ W),
                "cosine",
                "Your counts match thresholding the dot products W_i . W_j: compare the cosine, both norms divided out."),
        Mistake("ignores_cosine_argument", lambda W, set_size=2, cosine=0.9: _collapsed(W, set_size, 0.9), "cosine argument",
                "Your counts match a fixed 0.9: use the cosine argument."),
        Mistake("fraction", lambda W, set_size=2, cosine=0.9: _collapsed(W, set_size, cosine).double() / (W.shape[2] // set_size),
                "integer", compare=False),
        Mistake("per_set", lambda W, set_size=2, cosine=0.9: (_blocks(_unit(W).mT @ _unit(W), set_size) > cosine).flatten(2).all(-1),
                "shape", compare=False),
    ],
})


# --------------------------------------------------------------------------- readouts: cases


def _hex_and_friends() -> torch.Tensor:
    """Five m=2 instances of 3 pairs: hexagon (side by side), collapsed, orthogonal + antipodal, one pair collapsed
    beside an aligned pair too short to count, one pair collapsed beside an antipodal one."""
    def d(*deg, norms=None):
        a = torch.tensor(deg, dtype=torch.float32) * math.pi / 180
        W = torch.stack([a.cos(), a.sin()])
        return W * torch.tensor(norms) if norms is not None else W

    return torch.stack([
        d(0, 60, 120, 180, 240, 300),
        d(10, 12, 130, 131, 250, 249, norms=[1.0, 0.9, 1.1, 1.0, 0.8, 1.2]),
        d(0, 90, 180, 270, 45, 225, norms=[1, 1, 1, 1, 0.3, 0.3]),
        d(10, 10, 60, 200, 250, 250, norms=[1, 1, 1, 1, 0.2, 0.2]),
        d(0, 180, 90, 95, 200, 300),
    ])


def _pc_shape_hint(got, args):
    W = args[0]
    if got == (W.shape[0], W.shape[2]):
        return "one value per feature: average over each set's distinct pairs, one value per set."
    return ""


globals().update(tensor_properties(
    "partner_cosines", function="partner_cosines", reference=correlation.partner_cosines,
    meaning="(n_instances, n_sets)", shape=lambda W, set_size=2: (W.shape[0], W.shape[2] // set_size),
    points={"shape": 0.5, "inputs": 0.5, "values": 1.5, "edges": 0.5},
    mistakes=MISTAKES["partner_cosines"],
    shape_cases=[Case("one instance, 2 sets of 3 in m=4", lambda: (random_W(1, 1, 4, 6), 3)),
                 Case("3 instances, 4 pairs in m=2", lambda: (random_W(2, 3, 2, 8), 2))],
    input_case=Case("random W, 3 pairs in m=2", lambda: (random_W(3, 2, 2, 6), 2)),
    value_cases=[
        Case("hexagon, collapsed pairs, orthogonal pairs, partly collapsed (3 pairs in m=2)", lambda: (_hex_and_friends(), 2)),
        Case("random W, 2 sets of 3 in m=3", lambda: (random_W(4, 3, 3, 6), 3)),
        Case("random W, 3 sets of 4 in m=5", lambda: (random_W(5, 2, 5, 12), 4)),
    ],
    edge_cases=[Case("W with zero columns (unlearned features)",
                     lambda: (with_zero_columns(random_W(6, 2, 2, 6), [(0, 1), (1, 4), (1, 5)]), 2),
                     note="A zero column has cosine 0 with everything, not NaN (guard its norm with torch.where).")],
    shape_hint=_pc_shape_hint, prefix="partner",
))

globals().update(tensor_properties(
    "collapsed_sets", function="collapsed_sets", reference=correlation.collapsed_sets,
    meaning="(n_instances,)", shape=lambda W, set_size=2, **kw: (W.shape[0],),
    points={"shape": 0.5, "values": 2, "edges": 0.5}, kind="integer",
    mistakes=MISTAKES["collapsed_sets"],
    shape_cases=[Case("one instance, 2 sets of 3 in m=4", lambda: (random_W(7, 1, 4, 6), 3)),
                 Case("3 instances, 4 pairs in m=2", lambda: (random_W(8, 3, 2, 8), 2))],
    value_cases=[
        Case("hexagon, collapsed pairs, orthogonal pairs, partly collapsed (3 pairs in m=2)", lambda: (_hex_and_friends(), 2)),
        Case("the same with cosine=0.9999 (a pair 1 degree apart counts, 2 degrees not)",
             lambda: (_hex_and_friends(), 2), kwargs={"cosine": 0.9999}),
        Case("the same with cosine=0.4 (the hexagon's partners, cosine 0.5, now count)",
             lambda: (_hex_and_friends(), 2), kwargs={"cosine": 0.4}),
        Case("antipodal partners and unrepresented aligned pairs", lambda: (torch.stack([
            torch.tensor([[1.0, -1.0, 0.3, 0.3], [0.0, 0.0, 0.0, 0.01]]),
            torch.tensor([[0.0, 0.0, 0.9, 0.8], [1.0, -1.0, 0.1, 0.12]])]), 2)),
    ],
    edge_cases=[Case("W with zero columns (unlearned features)",
                     lambda: (with_zero_columns(_hex_and_friends(), [(1, 0), (1, 1)]), 2),
                     note="A zero column is an unlearned feature: its set has not collapsed.")],
    follows_input=False, prefix="collapsed",
))
