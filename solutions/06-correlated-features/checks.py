"""Lesson 6 checks: correlated and anticorrelated features.

Four exercises, each graded on its own.

* ``06.correlated_sets`` ``correlated_sets(batch_size, feature_probability, set_size, generator=None)
  -> (batch, n_instances, n_sets * set_size)``: a set is all zero or all active (one draw per set,
  with probability its features' marginal density), active features independent U[0, 1).
* ``06.anticorrelated_sets`` (same signature): at most one active feature per set: the set is active
  with probability ``set_size * p`` (so every feature's marginal density is ``p``), which feature is
  uniform over the set, its value U[0, 1).
  Both generators are checked statistically on large batches drawn with secret generators (binomial and KS
  tests at ``alpha = 1e-6``, so a correct generator fails about once in a million runs): the marginal
  densities, the structure of the randomness (sets independent of each other, across instances too; values
  independent across the positions of a set and across sets; each set's chosen feature its own), and the
  generator they are given: it must advance (re-seeding torch's global generator from
  ``generator.initial_seed()`` leaves it where it was), two calls with it differ, seeds alike give batches alike.
* ``06.partner_cosines`` ``partner_cosines(W, set_size) -> (n_instances, n_sets)``: the mean cosine
  between the distinct features of each set (0 for a zero column, a short column's own cosine).
* ``06.collapsed_sets`` ``collapsed_sets(W, set_size, cosine=0.9) -> (n_instances,)`` integer: sets whose
  features are all represented (``||W_i|| > 0.5``) and pairwise more aligned than ``cosine``; checked on sets
  of 3 (every pair, every feature, not the mean cosine) and on exact boundaries (a cosine of exactly 1 with
  ``cosine=1.0``, a norm of exactly 0.5).

Every hand-made input is turned, permuted or jittered by the grading run's secret. The readouts are compared
with :mod:`supercourse.correlation` exactly (up to float rounding) and diagnosed with the lesson's mistake table
(``mistakes.py``), the table the generic proof also grades.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from autograder.exercises import Exercise
from autograder.framework import CheckFailed, call, expect, prop
from autograder.toolkit import (Case, as_parameter, close, diagnose, random_W, rotation, show_difference,
                                tensor_out, tensor_properties, with_zero_columns)
from autograder.toolkit.stats import ks_test, proportion_ok, uniform_cdf
from autograder.toolkit.randomness import secret_gen, secret_seed
from supercourse import correlation

from .mistakes import MISTAKES

LESSON = "06-correlated-features"
EXERCISES = {
    "correlated_sets": Exercise(
        "correlated_sets", "Correlated sets of sparse features",
        reference=("supercourse.data.correlated_sparse", "supercourse.correlation.SetModel"),
    ),
    "anticorrelated_sets": Exercise(
        "anticorrelated_sets", "Anticorrelated sets of sparse features",
        reference=("supercourse.data.anticorrelated_sparse", "supercourse.correlation.SetModel"),
    ),
    "partner_cosines": Exercise(
        "partner_cosines", "Cosines between the features of each set",
        reference=("supercourse.correlation.partner_cosines", "supercourse.correlation.cosines"),
    ),
    "collapsed_sets": Exercise(
        "collapsed_sets", "Count the sets collapsed onto one direction",
        reference=("supercourse.correlation.collapsed_sets", "supercourse.correlation.cosines"),
    ),
}

BATCH = 40_000
"""Samples per statistical check: a density of 0.05 is then estimated to about +-0.001."""

_BASE_DENSITIES = ((0.04, 0.16), (0.25, 0.08), (0.02, 0.2))
"""Densities per instance and set, each scaled by a secret factor in [0.75, 1.25) (all <= 1/3: valid for sets of 3)."""


# --------------------------------------------------------------------------- generator properties


def _densities(salt: int) -> torch.Tensor:
    """``(3, 2)``: densities differing per instance and per set, drawn from the secret (all below 1/3)."""
    return torch.tensor(_BASE_DENSITIES) * (0.75 + 0.5 * torch.rand(3, 2, generator=secret_gen(("p", salt))))


def _draw(submission: Any, name: str, batch: int, p: torch.Tensor, set_size: int,
          generator: torch.Generator) -> torch.Tensor:
    out = call(submission, batch, p.clone(), set_size, generator, what=name)
    n_inst, n_sets = p.shape
    want = (batch, n_inst, n_sets * set_size)
    expect(isinstance(out, torch.Tensor), f"{name} must return a torch.Tensor, got {type(out).__name__}.")
    pairs = " Every set has set_size features, not 2." if set_size != 2 and out.shape[-1:] == (2 * n_sets,) else ""
    expect(tuple(out.shape) == want,
           f"{name}({batch}, p of shape {tuple(p.shape)}, set_size={set_size}) must return shape "
           f"(batch, n_instances, n_sets * set_size) = {want}, got {tuple(out.shape)}.{pairs}")
    expect(out.is_floating_point(), f"{name} must return floats (feature values in [0, 1)), got dtype {out.dtype}.")
    return out.detach()


def _shape_and_range(submission: Any, name: str) -> None:
    p = _densities(0)
    for batch, dens, set_size in ((5, p[:, :1], 2), (7, p, 3), (6, p[:1] * 0.75, 4), (1, p[1:2], 2)):
        _draw(submission, name, batch, dens, set_size, secret_gen(("shape", batch)))
    x = _draw(submission, name, 64, p, 3, secret_gen(1))
    expect(bool(((x >= 0) & (x < 1)).all()), f"{name}: every value must lie in [0, 1), got values in "
           f"[{x.min().item():.3g}, {x.max().item():.3g}].")


def _generator_use(submission: Any, name: str) -> None:
    p = _densities(1)
    gen = secret_gen(2)
    before = gen.get_state().clone()
    first = _draw(submission, name, 64, p, 3, gen)
    expect(not torch.equal(gen.get_state(), before),
           f"{name} must draw every random number from the generator argument (torch.rand(..., generator=generator)), "
           "so that the caller's generator advances; after your call it had not advanced. Drawing from torch's global "
           "generator, or re-seeding it (torch.manual_seed(generator.initial_seed())), leaves the caller's generator "
           "where it was, and every call then returns the same batch.")
    second = _draw(submission, name, 64, p, 3, gen)
    expect(not torch.equal(first, second),
           f"{name}: two calls with the same generator must return different batches (the second call continues the "
           "generator's stream where the first left it); yours returned the same batch twice.")
    seed = secret_seed(3)
    x = _draw(submission, name, 64, p, 3, torch.Generator().manual_seed(seed))
    again = _draw(submission, name, 64, p, 3, torch.Generator().manual_seed(seed))
    other = _draw(submission, name, 64, p, 3, torch.Generator().manual_seed(seed + 1))
    expect(torch.equal(x, again) and not torch.equal(x, other),
           f"{name}: draw every random number from the generator argument (torch.rand(..., generator=generator)): "
           "two calls with generators seeded alike must return the same batch, and differently seeded ones differ.")


def _marginals(submission: Any, name: str, set_size: int, hint: str) -> torch.Tensor:
    p = _densities(4)
    x = _draw(submission, name, BATCH, p, set_size, secret_gen(5))
    active = (x > 0).double().sum(0)  # (n_instances, n_features)
    p_feat = p.repeat_interleave(set_size, dim=1).double()
    for k in range(p.shape[0]):
        for i in range(p_feat.shape[1]):
            expect(
                proportion_ok(float(active[k, i]), BATCH, float(p_feat[k, i])),
                f"{name}: feature {i} of instance {k} (in set {i // set_size} of set_size={set_size}, whose features "
                f"have density {p_feat[k, i]:.3g}) was non-zero in {active[k, i] / BATCH:.4f} of {BATCH} samples. {hint}",
            )
    return x


def _uniform_values(x: torch.Tensor, name: str) -> None:
    values = x[x > 0]
    expect(values.numel() > 100, f"{name}: too few active features to check their values.")
    expect(ks_test(values, uniform_cdf(0.0, 1.0)),
           f"{name}: the values of active features must be uniform on [0, 1) (torch.rand); got mean "
           f"{values.mean().item():.3f}, min {values.min().item():.3f}, max {values.max().item():.3f}.")


def _label(a: int, n_sets: int) -> str:
    return f"set {a % n_sets} of instance {a // n_sets}"


def _sets_independent(x: torch.Tensor, name: str, n_sets: int, set_size: int) -> torch.Tensor:
    """Every two sets (of one instance or of two) are active together as often as independent sets would be."""
    B = x.shape[0]
    on = (x > 0).reshape(B, -1, set_size)  # (batch, n_instances * n_sets, set_size)
    active = on.any(-1)
    f = active.double().mean(0)
    for a in range(active.shape[1]):
        for b in range(a + 1, active.shape[1]):
            both = float((active[:, a] & active[:, b]).sum())
            expect(proportion_ok(both, B, float(f[a] * f[b])),
                   f"{name}: the sets of a sample must be drawn independent of each other: {_label(a, n_sets)} and "
                   f"{_label(b, n_sets)} were active together in {both / B:.2%} of {B} samples, while active in "
                   f"{f[a]:.2%} and {f[b]:.2%} of them, so independent sets would be active together in about "
                   f"{f[a] * f[b]:.2%}. Draw one uniform per set (shape (batch, n_instances, n_sets)), not one per "
                   "sample shared by every set.")
    return on


def _values_of_sets_independent(x: torch.Tensor, name: str, n_sets: int, set_size: int) -> None:
    """Where two sets have the same position active, their values are not shared."""
    B = x.shape[0]
    v = x.reshape(B, -1, set_size)
    compared = 0
    for a in range(v.shape[1]):
        for b in range(a + 1, v.shape[1]):
            for j in range(set_size):
                both = (v[:, a, j] > 0) & (v[:, b, j] > 0)
                n = int(both.sum())
                if n < 20:
                    continue
                compared += n
                same = (v[both, a, j] == v[both, b, j]).double().mean().item()
                expect(same < 0.01,
                       f"{name}: each set must draw its own values: where {_label(a, n_sets)} and {_label(b, n_sets)} "
                       f"both had their feature {j} active, the two values were equal in {same:.1%} of {n} samples. "
                       "Draw the values with shape (batch, n_instances, n_sets, set_size), not one row of values "
                       "shared by every set.")
    expect(compared > 100, f"{name}: too few sets active together to compare their values.")


@prop("correlated_sets", points=0.5)
def test_correlated_shape_and_range(submission):
    _shape_and_range(submission, "correlated_sets")


@prop("correlated_sets", points=0.5)
def test_correlated_uses_its_generator(submission):
    _generator_use(submission, "correlated_sets")


@prop("correlated_sets", points=0.75)
def test_correlated_marginal_density(submission):
    _marginals(submission, "correlated_sets", 3,
               "Each feature's density must be its set's p: one draw per set, active when u < p. Set k is the "
               "consecutive features k*set_size ... (k+1)*set_size - 1, with density feature_probability[:, k].")


@prop("correlated_sets", points=0.75)
def test_correlated_sets_all_zero_or_all_active(submission):
    p, s = _densities(6), 3
    x = _draw(submission, "correlated_sets", 4000, p, s, secret_gen(7))
    on = (x > 0).reshape(4000, 3, 2, s)
    mixed = (on.any(-1) & ~on.all(-1)).double().mean().item()
    expect(mixed == 0, f"correlated_sets: a set must be all zero or all active, but {mixed:.1%} of the sets had "
           "some features on and some off. Draw one activity per set (shape (batch, n_instances, n_sets, 1)) and "
           "broadcast it over the set's consecutive features.")


@prop("correlated_sets", points=0.75)
def test_correlated_values_uniform_and_independent(submission):
    s = 3
    x = _draw(submission, "correlated_sets", BATCH, _densities(8), s, secret_gen(9))
    _uniform_values(x, "correlated_sets")
    sets = x.reshape(BATCH, 6, s)
    both = (sets[..., :2] > 0).all(-1)
    a, b = sets[..., 0][both], sets[..., 1][both]
    expect(a.numel() > 100, "correlated_sets: too few active sets to check their values.")
    same = (a == b).double().mean().item()
    r = torch.corrcoef(torch.stack([a, b]).double())[0, 1].item()
    expect(same < 0.01 and abs(r) < 0.1,
           f"correlated_sets: the features of an active set must take independent values (one torch.rand per "
           f"feature); partners were equal in {same:.1%} of active sets (correlation {r:.2f}).")
    _values_of_sets_independent(x, "correlated_sets", 2, s)


@prop("correlated_sets", points=0.75)
def test_correlated_sets_independent_of_each_other(submission):
    x = _draw(submission, "correlated_sets", BATCH, _densities(10), 2, secret_gen(11))
    _sets_independent(x, "correlated_sets", 2, 2)


@prop("anticorrelated_sets", points=0.5)
def test_anticorrelated_shape_and_range(submission):
    _shape_and_range(submission, "anticorrelated_sets")


@prop("anticorrelated_sets", points=0.5)
def test_anticorrelated_uses_its_generator(submission):
    _generator_use(submission, "anticorrelated_sets")


@prop("anticorrelated_sets", points=1)
def test_anticorrelated_marginal_density(submission):
    _marginals(submission, "anticorrelated_sets", 3,
               "A set (of set_size features, at most one of them active) must be active with probability "
               "set_size * p, and its active feature chosen uniformly from the set, so that each feature's own "
               "density is p.")


@prop("anticorrelated_sets", points=0.75)
def test_anticorrelated_at_most_one_active(submission):
    x = _draw(submission, "anticorrelated_sets", 4000, _densities(12), 3, secret_gen(13))
    n_on = (x > 0).reshape(4000, 3, 2, 3).sum(-1)
    worst = int(n_on.max())
    expect(worst <= 1, f"anticorrelated_sets: at most one feature of a set may be active, but a set had {worst} "
           "active at once. Draw whether the set is active, then which one of its features (torch.randint).")


@prop("anticorrelated_sets", points=0.5)
def test_anticorrelated_values_uniform_and_independent(submission):
    x = _draw(submission, "anticorrelated_sets", BATCH, _densities(14), 3, secret_gen(15))
    _uniform_values(x, "anticorrelated_sets")
    _values_of_sets_independent(x, "anticorrelated_sets", 2, 3)


@prop("anticorrelated_sets", points=0.75)
def test_anticorrelated_sets_independent_of_each_other(submission):
    s = 3
    x = _draw(submission, "anticorrelated_sets", BATCH, _densities(16), s, secret_gen(17))
    on = _sets_independent(x, "anticorrelated_sets", 2, s)
    active = on.any(-1)
    chosen = on.to(torch.uint8).argmax(-1)  # the active feature's position in its set
    for a in range(active.shape[1]):
        for b in range(a + 1, active.shape[1]):
            both = active[:, a] & active[:, b]
            n = int(both.sum())
            same = float((chosen[both, a] == chosen[both, b]).sum())
            expect(proportion_ok(same, n, 1 / s),
                   f"anticorrelated_sets: each set's chosen feature must be drawn on its own: where "
                   f"{_label(a, 2)} and {_label(b, 2)} were both active, they chose the same position in "
                   f"{same / max(n, 1):.1%} of {n} samples, while independent choices agree in 1/set_size = "
                   f"{1 / s:.1%}. Draw which feature with torch.randint(set_size, (batch, n_instances, n_sets)), not "
                   "one chosen feature shared by every set.")


# --------------------------------------------------------------------------- readouts: cases


def _directions(deg: torch.Tensor) -> torch.Tensor:
    a = deg.double() * math.pi / 180
    return torch.stack([a.cos(), a.sin()])


def _permute_sets(W: torch.Tensor, set_size: int, gen: torch.Generator) -> torch.Tensor:
    """Every instance's sets in a random order, the features of a set in a random order (the answer is unchanged)."""
    K, m, n = W.shape
    out = torch.empty_like(W)
    for k in range(K):
        sets = torch.randperm(n // set_size, generator=gen)
        order = torch.cat([s * set_size + torch.randperm(set_size, generator=gen) for s in sets.tolist()])
        out[k] = W[k][:, order]
    return out


def _signed_permutation(W: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Every instance's hidden axes permuted and flipped at random: norms and cosines stay exactly the same."""
    K, m, _ = W.shape
    out = torch.empty_like(W)
    for k in range(K):
        signs = torch.randint(0, 2, (m, 1), generator=gen).to(W.dtype) * 2 - 1
        out[k] = W[k][torch.randperm(m, generator=gen)] * signs
    return out


def _hex_and_friends(salt: int = 0) -> torch.Tensor:
    """Five m=2 instances of 3 pairs, each turned by a secret angle, its pairs in a secret order: a hexagon
    (partners side by side), collapsed pairs, orthogonal + antipodal, one pair collapsed beside an aligned pair too
    short to count, one pair collapsed beside an antipodal one."""
    gen = secret_gen(("hex", salt))
    rows = [
        ((0, 60, 120, 180, 240, 300), (1, 1, 1, 1, 1, 1)),
        ((10, 12, 130, 131, 250, 249), (1.0, 0.9, 1.1, 1.0, 0.8, 1.2)),
        ((0, 90, 180, 270, 45, 225), (1, 1, 1, 1, 0.3, 0.3)),
        ((10, 10, 60, 200, 250, 250), (1, 1, 1, 1, 0.2, 0.2)),
        ((0, 180, 90, 95, 200, 300), (1, 1, 1, 1, 1, 1)),
    ]
    W = torch.stack([
        _directions(torch.tensor(deg) + 360 * torch.rand((), generator=gen, dtype=torch.float64))
        * torch.tensor(norms, dtype=torch.float64)
        for deg, norms in rows])
    W[:, 1] *= torch.where(torch.rand(len(rows), 1, generator=gen) < 0.5, -1.0, 1.0).double()  # mirror some
    return _permute_sets(W.float(), 2, gen)


def _antipodal_and_short(salt: int = 0) -> torch.Tensor:
    """Two m=2 instances of 2 pairs: antipodal partners, an aligned pair too short to count, and their mirror."""
    gen = secret_gen(("antipodal", salt))
    W = torch.stack([torch.tensor([[1.0, -1.0, 0.3, 0.3], [0.0, 0.0, 0.0, 0.01]]),
                     torch.tensor([[0.0, 0.0, 0.9, 0.8], [1.0, -1.0, 0.1, 0.12]])])
    turn = torch.stack([rotation(secret_seed(("turn", salt, k)), 2) for k in range(2)])
    return _permute_sets(turn @ W, 2, gen)


def _in_plane(u: torch.Tensor, v: torch.Tensor, deg, norms) -> torch.Tensor:
    a = torch.as_tensor(deg, dtype=torch.float64) * math.pi / 180
    return (u[:, None] * a.cos() + v[:, None] * a.sin()) * torch.as_tensor(norms, dtype=torch.float64)


def _sets_of_three(salt: int = 0) -> torch.Tensor:
    """Four m=3 instances of 2 sets of 3 (set A near e0 in the plane e0-e1, set B near e2 in the plane e2-e1), each
    instance turned by a secret rotation, its angles jittered by up to 0.3 degrees:

    * A: pairs 14 and 28 degrees apart (mean cosine above 0.9, one pair below); B collapsed;
    * A: one aligned pair and a first feature orthogonal to it; B aligned with one short feature (0.3);
    * A aligned, norms between 0.55 and 0.69 (squared below 0.5); B aligned, norms about 1;
    * A aligned, every feature short (0.2 to 0.4); B with one aligned pair beside a feature 60 degrees away."""
    gen = secret_gen(("three", salt))
    e = torch.eye(3, dtype=torch.float64)
    A, B = (e[0], e[1]), (e[2], e[1])
    mid = 0.55 + 0.14 * torch.rand(3, generator=gen, dtype=torch.float64)
    short = 0.2 + 0.2 * torch.rand(3, generator=gen, dtype=torch.float64)
    rows = [
        [(A, (0, 14, 28), (1.0, 1.1, 0.9)), (B, (0, 3, 6), (1.2, 1.0, 0.8))],
        [(A, (90, 0, 1), (1.0, 1.0, 1.0)), (B, (0, 2, 4), (1.0, 0.3, 1.1))],
        [(A, (0, 2, 4), mid), (B, (0, 3, 5), (1.0, 1.3, 0.9))],
        [(A, (0, 1, 2), short), (B, (0, 60, 61), (1.0, 0.9, 1.2))],
    ]
    out = []
    for k, inst in enumerate(rows):
        cols = []
        for (u, v), deg, norms in inst:
            jitter = 0.6 * torch.rand(3, generator=gen, dtype=torch.float64) - 0.3
            cols.append(_in_plane(u, v, torch.tensor(deg, dtype=torch.float64) + jitter, norms))
        out.append(rotation(secret_seed(("three", salt, k)), 3, torch.float64) @ torch.cat(cols, dim=1))
    return torch.stack(out).float()


def _exactly_aligned(salt: int = 0) -> torch.Tensor:
    """Two m=3 instances of 2 pairs (norms and cosines exact in floats): a pair exactly aligned (cosine exactly 1)
    beside an orthogonal pair, and beside a pair of cosine 0.96; hidden axes permuted and flipped at random."""
    gen = secret_gen(("aligned", salt))
    e = torch.eye(3)
    W = torch.stack([torch.stack([0.75 * e[0], e[0], e[1], e[2]], 1),
                     torch.stack([e[0], 0.96 * e[0] + 0.28 * e[1], 0.75 * e[2], 1.5 * e[2]], 1)])
    return _permute_sets(_signed_permutation(W, gen), 2, gen)


def _norm_exactly_half(salt: int = 0) -> torch.Tensor:
    """Two m=3 instances of 3 aligned pairs along the axes: one pair with a feature of norm exactly 0.5, one of norms
    0.75 and 1 (squared norm 0.5625 > 0.5), one with a short feature (0.25); hidden axes permuted and flipped."""
    gen = secret_gen(("half", salt))
    e = torch.eye(3)
    W = torch.stack([torch.stack([0.5 * e[0], e[0], 0.75 * e[1], e[1], 0.25 * e[2], e[2]], 1),
                     torch.stack([1.25 * e[2], 0.5 * e[2], 0.75 * e[0], 2 * e[0], e[1], 0.25 * e[1]], 1)])
    return _permute_sets(_signed_permutation(W, gen), 2, gen)


def _short_columns(salt: int, K: int = 2, m: int = 3, n: int = 6) -> torch.Tensor:
    """Random directions with short but non-zero norms, 3e-4 to 0.1 (one pair of instance 0 below 1e-3)."""
    W = random_W(salt, K, m, n, norms=(1.0, 1.0))
    gen = secret_gen(("short", salt))
    exponents = -3.5 + 2.5 * torch.rand(K, 1, n, generator=gen)
    exponents[0, 0, :2] = -3.5 + 0.4 * torch.rand(2, generator=gen)
    return W * 10 ** exponents


def _pc_shape_hint(got, args):
    W = args[0]
    if got == (W.shape[0], W.shape[2]):
        return " One value per feature: average over each set's distinct pairs, one value per set."
    return ""


# --------------------------------------------------------------------------- 06.partner_cosines

globals().update(tensor_properties(
    "partner_cosines", function="partner_cosines", reference=correlation.partner_cosines,
    meaning="(n_instances, n_sets)", shape=lambda W, set_size=2: (W.shape[0], W.shape[2] // set_size),
    points={"shape": 0.5, "values": 1.5, "edges": 0.5},
    mistakes=MISTAKES["partner_cosines"],
    shape_cases=[Case("one instance, 2 sets of 3 in m=4", lambda: (random_W(1, 1, 4, 6), 3)),
                 Case("3 instances, 4 pairs in m=2", lambda: (random_W(2, 3, 2, 8), 2))],
    value_cases=[
        Case("hexagon, collapsed pairs, orthogonal pairs, partly collapsed (3 pairs in m=2)", lambda: (_hex_and_friends(), 2)),
        Case("random W, 2 sets of 3 in m=3", lambda: (random_W(4, 3, 3, 6), 3)),
        Case("random W, 3 sets of 4 in m=5", lambda: (random_W(5, 2, 5, 12), 4)),
        Case("sets of 3 with one pair aligned and one feature orthogonal (m=3)", lambda: (_sets_of_three(), 3)),
    ],
    edge_cases=[
        Case("W with zero columns (unlearned features)",
             lambda: (with_zero_columns(random_W(6, 2, 2, 6), [(0, 1), (1, 4), (1, 5)]), 2),
             note="A zero column has cosine 0 with everything, not NaN (guard its norm with torch.where)."),
        Case("short but non-zero columns (norms 3e-4 to 0.1)", lambda: (_short_columns(7), 2),
             note="A short column still has a direction: only a zero column has cosine 0."),
    ],
    shape_hint=_pc_shape_hint, prefix="partner",
))

_PARAMETER_HINT = (" Hint: stay in torch (a .numpy() round-trip fails on tensors that require grad; .detach() first if "
                   "you need one), and do not modify the input.")


@prop("partner_cosines", points=0.5)
def test_partner_float64_and_parameter(submission):
    W = random_W(8, 3, 2, 6)
    want_shape = (3, 3)
    for label, Wv, hint in (("W in float64", W.double(), ""),
                            ("W as an nn.Parameter (requires_grad=True)", as_parameter(W), _PARAMETER_HINT)):
        what = f"Inputs ({label})"
        try:
            got = tensor_out(call(submission, Wv, 2, what="partner_cosines"), what=what, shape=want_shape,
                             meaning="(n_instances, n_sets)", like=Wv)
        except CheckFailed as err:
            text = str(err) if str(err).startswith(what) else f"{what}: {err}"
            raise CheckFailed(f"{text}{hint}") from None
        want = correlation.partner_cosines(Wv.detach().clone(), 2)
        if close(got, want):
            continue
        plain = call(submission, W.clone(), 2, what="partner_cosines")
        if close(plain, correlation.partner_cosines(W.clone(), 2)):
            cause = (" The same W in float32 gives the right values: compute in W's own dtype (no .float() or "
                     "fixed-dtype constants).")
        else:
            cause = " The values are wrong for float32 W too, so the dtype is not the cause."
        diagnosis = diagnose(MISTAKES["partner_cosines"], got, [Wv.detach()], {"set_size": 2})
        raise CheckFailed(f"{what}: partner_cosines(W, 2) on random W, 3 pairs in m=2: "
                          f"{show_difference(got, want)}.{cause}{diagnosis}")


# --------------------------------------------------------------------------- 06.collapsed_sets

_COLLAPSED = dict(
    function="collapsed_sets", reference=correlation.collapsed_sets, meaning="(n_instances,)",
    shape=lambda W, set_size=2, **kw: (W.shape[0],), kind="integer", mistakes=MISTAKES["collapsed_sets"],
    follows_input=False,
)

globals().update(tensor_properties(
    "collapsed_sets", **_COLLAPSED, points={"shape": 0.5, "values": 1, "edges": 0.5},
    shape_cases=[Case("one instance, 2 sets of 3 in m=4", lambda: (random_W(7, 1, 4, 6), 3)),
                 Case("3 instances, 4 pairs in m=2", lambda: (random_W(8, 3, 2, 8), 2))],
    value_cases=[
        Case("hexagon, collapsed pairs, orthogonal pairs, partly collapsed (3 pairs in m=2)", lambda: (_hex_and_friends(), 2)),
        Case("the same with cosine=0.9999 (a pair 1 degree apart counts, 2 degrees not)",
             lambda: (_hex_and_friends(), 2), kwargs={"cosine": 0.9999}),
        Case("the same with cosine=0.4 (the hexagon's partners, cosine 0.5, now count)",
             lambda: (_hex_and_friends(), 2), kwargs={"cosine": 0.4}),
        Case("antipodal partners and unrepresented aligned pairs", lambda: (_antipodal_and_short(), 2)),
    ],
    edge_cases=[Case("W with zero columns (unlearned features)",
                     lambda: (with_zero_columns(_hex_and_friends(1), [(1, 0), (1, 1)]), 2),
                     note="A zero column is an unlearned feature: its set has not collapsed.")],
    prefix="collapsed",
))

globals().update(tensor_properties(
    "collapsed_sets", **_COLLAPSED, points={"values": 1},
    value_cases=[
        Case("sets of 3 (m=3): pairs 14 and 28 degrees apart; one aligned pair beside an orthogonal feature; "
             "short features; norms between 0.55 and 0.69", lambda: (_sets_of_three(), 3)),
        Case("the same sets of 3 with cosine=0.85", lambda: (_sets_of_three(), 3), kwargs={"cosine": 0.85}),
        Case("pairs exactly aligned (cosine exactly 1) with cosine=1.0: a cosine of 1 does not exceed 1",
             lambda: (_exactly_aligned(), 2), kwargs={"cosine": 1.0}),
        Case("aligned pairs, one with a feature of norm exactly 0.5 (not more than 0.5)", lambda: (_norm_exactly_half(), 2)),
    ],
    prefix="collapsed_larger_sets_and_thresholds",
))
