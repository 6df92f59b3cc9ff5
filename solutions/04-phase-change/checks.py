"""Lesson 4 checks: superposition as a phase change, in theory and in training.

Six exercises, each compared with :mod:`supercourse` on inputs drawn from the
grading run's secret (axes, grid sizes and ranges, weights, thresholds); every
answer is determined by its inputs, so comparisons are exact up to float
rounding (:data:`autograder.toolkit.RTOL`, loose enough for float32 answers).

* ``04.configuration_losses`` ``configuration_losses(r, p) -> (..., 3)``: one property
  per configuration, plus shape and broadcasting (plain floats, outer grids,
  pointwise, float32 tensors).
* ``04.phase_diagram`` ``phase_diagram(relative_importance, density) -> (R, P)``
  integer labels, also on axes given in no particular order. The learner's
  function may use their own ``configuration_losses``; when its labels are the
  argmin of a known wrong ``configuration_losses``, the message says so.
* ``04.make_grid`` ``make_grid(R, P, K, importance_range, density_range)``: log-spaced
  axes, instance ``(i * P + j) * K + k``, importance on the extra (last) feature.
* ``04.classify`` ``classify(W, threshold=0.5) -> (n_instances,)`` integer labels,
  with the threshold varied and weights exactly at it.
* ``04.aggregate_restarts`` ``aggregate_restarts(labels, losses, drop_worst=1)
  -> (R, P, 3)`` float fractions, with phases missing from the labels.
* ``04.n3m2_losses`` (extension) ``n3m2_losses(r, p) -> (..., 4)``.

Every exercise diagnoses with :data:`MISTAKES` (``mistakes.py``), the table the lesson proof also uses.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from autograder.exercises import Exercise
from autograder.framework import CheckFailed, call, expect, prop
from autograder.toolkit import close, describe, diagnose, fmt, fmt_pair, show_difference, tensor_out
from autograder.toolkit.weights import as_parameter
from autograder.toolkit.randomness import secret_gen
from supercourse import phase, theory

from .mistakes import MISTAKES

LESSON = "04-phase-change"
EXERCISES = {
    "configuration_losses": Exercise(
        "configuration_losses",
        "Exact losses of the three n=2, m=1 configurations",
        reference=("supercourse.theory.loss_not_represented", "supercourse.theory.loss_dedicated",
                   "supercourse.theory.loss_antipodal", "supercourse.theory.configuration_losses"),
    ),
    "phase_diagram": Exercise(
        "phase_diagram", "The theoretical phase diagram", reference=("supercourse.theory.phase_diagram",)
    ),
    "make_grid": Exercise(
        "make_grid", "The (importance, density) grid as instances",
        reference=("supercourse.phase.make_grid",),
    ),
    "classify": Exercise(
        "classify", "Classify trained n=2, m=1 models",
        reference=("supercourse.theory.classify_n2m1", "supercourse.phase.classify", "supercourse.phase.classify_n3m2"),
    ),
    "aggregate_restarts": Exercise(
        "aggregate_restarts", "Aggregate restarts, dropping the worst",
        reference=("supercourse.phase.aggregate_restarts",),
    ),
    "n3m2_losses": Exercise(
        "n3m2_losses", "Extension: the four n=3, m=2 candidates",
        reference=("supercourse.theory.configuration_losses_n3m2",),
    ),
}

PHASES = theory.PHASES


# --------------------------------------------------------------------------- axes and shared helpers


def _size(salt: object, low: int, high: int) -> int:
    """A random size in ``[low, high]``."""
    return int(torch.randint(low, high + 1, (1,), generator=secret_gen(("size", salt))))


def _log_uniform(gen: torch.Generator, n: int, low: float, high: float) -> torch.Tensor:
    """``n`` float64 values drawn log-uniformly in ``[low, high]``."""
    u = torch.rand(n, generator=gen, dtype=torch.float64)
    return 10 ** (math.log10(low) + (math.log10(high) - math.log10(low)) * u)


def _axes(salt: object, R: int | None = None, P: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random increasing axes over the whole diagram: ``R`` importances in [0.1, 10], ``P`` densities in
    [0.01, 1] (random sizes when not given; drawn, so the exact ties at r = 1 and p = 4/7 never occur)."""
    R = _size(("R", salt), 6, 12) if R is None else R
    P = _size(("P", salt), 6, 12) if P is None else P
    gen = secret_gen(("axes", salt))
    return _log_uniform(gen, R, 0.1, 10.0).sort().values, _log_uniform(gen, P, 0.01, 1.0).sort().values


def _edges(salt: object) -> tuple[torch.Tensor, torch.Tensor]:
    """Pointwise ``(r, p)`` of shape (4,): the densities' ends 0 and 1 among random ones, in a random order."""
    gen = secret_gen(("edges", salt))
    r = _log_uniform(gen, 4, 0.1, 10.0).float()
    p = torch.cat([torch.tensor([0.0, 1.0]), torch.rand(2, generator=gen)])[torch.randperm(4, generator=gen)]
    return r, p


def _outer(r: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return r[:, None], p[None, :]


def _losses_of(submission, name: str, r, p, n_out: int, what: str) -> torch.Tensor:
    """The learner's losses, checked to be a float tensor of shape broadcast(r, p) + (n_out,)."""
    try:
        out = call(submission, r, p, what=name)
    except CheckFailed as err:
        if "not implemented yet" in str(err):
            raise
        plain = not isinstance(r, torch.Tensor) or not isinstance(p, torch.Tensor)
        hint = ("convert plain floats with torch.as_tensor first." if plain else
                "torch.broadcast_tensors(r, p) first, so that every loss has the broadcast shape before you stack them.")
        raise CheckFailed(f"{what}: with r = {describe(r)} and p = {describe(p)}, {err} Hint: {hint}") from None
    shape = (*torch.broadcast_shapes(torch.as_tensor(r).shape, torch.as_tensor(p).shape), n_out)
    outer = (torch.as_tensor(r).numel(), torch.as_tensor(p).numel(), n_out)
    hint = ""
    if isinstance(out, torch.Tensor) and tuple(out.shape) == outer and outer != shape:
        hint = (" That is the outer grid of r and p: broadcast them as they are (pointwise when they have the same "
                "shape), do not reshape them into a column and a row.")
    elif isinstance(out, torch.Tensor) and out.dim() >= 1 and tuple(out.shape) == (n_out, *shape[:-1]):
        hint = " The configurations are on the first axis: stack them on the last axis, torch.stack([...], dim=-1)."
    elif isinstance(out, torch.Tensor) and tuple(out.shape) == (*shape[:-1], n_out - 1):
        hint = f" That is {n_out - 1} losses: return {n_out} losses, one per candidate."
    return tensor_out(out, what=what, shape=shape, kind="float",
                      meaning=f"broadcast(r, p).shape + ({n_out},), one loss per configuration on the last axis",
                      shape_hint=lambda got: hint)


def _component(submission, c: int, reference: Callable, what: str, formula: str) -> None:
    """Configuration ``c``'s loss equals the reference's on a random outer grid and pointwise at p = 0 and p = 1."""
    for r, p in [_outer(*_axes("component")), _edges("component")]:
        got = _losses_of(submission, "configuration_losses", r, p, 3, what)[..., c]
        want = reference(r, p)
        if close(got, want):
            continue
        diagnosis = diagnose(MISTAKES["configuration_losses"], got, [r, p],
                             same=lambda g, theirs: isinstance(theirs, torch.Tensor) and theirs.shape[-1:] == (3,)
                             and close(g, theirs[..., c]))
        expect(False, f"{what}: the loss should be {formula}; {show_difference(got, want)} (rows: r, columns: p).{diagnosis}")


# --------------------------------------------------------------------------- 04.configuration_losses


@prop("configuration_losses", points=1)
def test_shape_and_broadcasting(submission):
    # Shapes only: the values are the three configurations' own properties.
    gen = secret_gen("floats")
    r0, p0 = round(float(_log_uniform(gen, 1, 0.1, 10.0)), 4), round(float(torch.rand(1, generator=gen)), 4)
    _losses_of(submission, "configuration_losses", r0, p0, 3, f"Shape (plain floats r = {r0}, p = {p0})")
    r, p = _axes("shape", _size("R", 3, 6), _size("P", 7, 9))
    outer = _losses_of(submission, "configuration_losses", *_outer(r, p), 3, "Shape (outer grid)")
    n = min(len(r), len(p))
    same = _losses_of(submission, "configuration_losses", r[:n], p[:n], 3, f"Shape (r and p of the same shape ({n},))")
    diagonal = outer[torch.arange(n), torch.arange(n)]
    w, g = fmt_pair(diagonal, same)
    expect(close(same, diagonal),
           f"Shape: with r and p of the same shape ({n},), the losses should be computed pointwise (point k uses r[k] "
           f"and p[k]), which is the diagonal of your (R, P) grid: expected {w}, got {g}.")
    _losses_of(submission, "configuration_losses", r0, p.float(), 3, f"Shape (a float r = {r0} and float32 p)")
    _losses_of(submission, "configuration_losses", r[:, None, None], p.float()[None, :, None], 3,
               "Shape (a three-dimensional grid: r of shape (R, 1, 1), p of shape (1, P, 1))")


@prop("configuration_losses", points=1)
def test_not_represented(submission):
    _component(submission, 0, theory.loss_not_represented, "Not represented (W = [1, 0])", "r (p/3 - p^2/4)")


@prop("configuration_losses", points=1)
def test_dedicated(submission):
    _component(submission, 1, theory.loss_dedicated, "Dedicated (W = [0, 1])", "p/3 - p^2/4 whatever r is")


@prop("configuration_losses", points=1)
def test_superposition(submission):
    _component(submission, 2, theory.loss_antipodal, "Superposition (W = [1, -1], b = 0)", "(1 + r) p^2 / 6")


# --------------------------------------------------------------------------- 04.phase_diagram


def _labels(submission, r: torch.Tensor, p: torch.Tensor, what: str) -> torch.Tensor:
    try:
        out = call(submission, r, p, what="phase_diagram")
    except CheckFailed as err:
        if "must match the size" not in str(err):
            raise
        raise CheckFailed(f"{what}: with {r.numel()} importances and {p.numel()} densities, {err} Hint: r and p are "
                          "two axes of different lengths: build the outer grid, r[:, None] against p[None, :], "
                          "before computing the losses.") from None
    R, P = r.numel(), p.numel()

    def hint(got: tuple[int, ...]) -> str:
        if got == (P, R):
            return " That is (P, R): one row per importance, one column per density."
        if got in ((R,), (P,), (min(R, P),)):
            return " One label per point of the axes: build the outer grid, r[:, None] against p[None, :]."
        return ""

    return tensor_out(out, what=what, shape=(R, P), meaning="(R, P): one row per importance, one column per density",
                      kind="integer", shape_hint=hint)


def _expect_diagram(submission, r, p, what: str) -> None:
    got = _labels(submission, r, p, what)
    want = theory.phase_diagram(r, p)
    if torch.equal(got.long(), want):
        return
    i, j = torch.nonzero(got.long() != want)[0].tolist()
    diagnosis = diagnose(MISTAKES["phase_diagram"], got, [r, p])
    expect(False, f"{what}: at r = {r[i].item():.4g}, p = {p[j].item():.4g} the lowest loss is '{PHASES[want[i, j]]}' "
                  f"({want[i, j].item()}), your diagram says {got[i, j].item()}; {int((got.long() != want).sum())} of "
                  f"{want.numel()} cells differ.{diagnosis}")


@prop("phase_diagram", points=1)
def test_labels_shape_and_dtype(submission):
    r, p = _axes("labels", _size("R", 3, 6), _size("P", 7, 10))
    got = _labels(submission, r, p, "Labels")
    expect(bool(((got >= 0) & (got <= 2)).all()),
           f"Labels: every label should be 0 (not represented), 1 (dedicated) or 2 (superposition), got {fmt(got.unique())}.")
    _labels(submission, r[:1], p, "Labels (one importance)")
    _labels(submission, r, p[:1], "Labels (one density)")
    _labels(submission, r.float(), p.float(), "Labels (float32 axes)")


@prop("phase_diagram", points=2)
def test_matches_the_theory(submission):
    r, p = _axes("theory", _size("R", 18, 24), _size("P", 25, 31))
    _expect_diagram(submission, r, p, "Phase diagram")
    gen = secret_gen("order")
    _expect_diagram(submission, r[torch.randperm(len(r), generator=gen)], p[torch.randperm(len(p), generator=gen)],
                    "Phase diagram (axes in no particular order)")


# --------------------------------------------------------------------------- 04.make_grid


def _grid_of(submission, R, P, K, what: str, **ranges) -> list[torch.Tensor]:
    out = call(submission, R, P, K, what="make_grid", **ranges)
    expect(isinstance(out, (tuple, list)) and len(out) == 4 and all(isinstance(t, torch.Tensor) for t in out),
           f"{what}: make_grid should return a tuple of 4 tensors (relative_importance, density, importance, "
           f"feature_probability), got {describe(out)}.")
    return [t.detach() for t in out]


def _grid_diagnosis(got: torch.Tensor, index: int, R, P, K, ranges: dict, column: int | None = None) -> str:
    def same(g, theirs):
        t = theirs[index]
        t = t if column is None or t.dim() < 2 else t[:, column]
        return isinstance(g, torch.Tensor) and g.shape == t.shape and close(g, t)

    return diagnose(MISTAKES["make_grid"], got, [R, P, K], ranges, same=same)


def _ranges(salt: object) -> dict[str, tuple[float, float]]:
    """Random ``importance_range`` (around 1) and ``density_range`` (within (0, 1]), to 4 significant digits."""
    gen = secret_gen(("ranges", salt))

    def draw(low: float, high: float) -> float:
        return float(f"{float(_log_uniform(gen, 1, low, high)):.4g}")

    return {"importance_range": (draw(0.03, 0.7), draw(1.5, 40.0)), "density_range": (draw(0.001, 0.05), draw(0.2, 1.0))}


def _grid_sizes(salt: object, K: tuple[int, int] = (2, 5)) -> tuple[int, int, int]:
    """Random ``R != P`` in [2, 7] and ``K`` in the range given."""
    R, P = (2 + torch.randperm(6, generator=secret_gen(("grid", salt)))[:2]).tolist()
    return R, P, _size(("K", salt), *K)


@prop("make_grid", points=1)
def test_axes_are_log_spaced(submission):
    default = {"importance_range": (0.1, 10.0), "density_range": (0.01, 1.0)}
    for salt, given in [("default", False), ("a", True), ("b", True)]:
        R, P, K = _grid_sizes(("axes", salt))
        ranges = _ranges(salt) if given else {}
        r, p, _, _ = _grid_of(submission, R, P, K, "Axes" if given else "Axes (default ranges)", **ranges)
        rng_r, rng_p = (ranges or default)["importance_range"], (ranges or default)["density_range"]
        for index, name, got, rng, n in [(0, "relative_importance", r, rng_r, R), (1, "density", p, rng_p, P)]:
            want = phase.log_axis(*rng, n)
            tensor_out(got, what=f"Axes ({name})", shape=(n,), meaning=f"({'R' if index == 0 else 'P'},)")
            if close(got, want):
                continue
            w, g = fmt_pair(want, got)
            default_note = "" if given else " (the default range, no range given)"
            expect(False, f"Axes: {name} over {rng}{default_note} with {n} points should be evenly spaced in log, ends "
                          f"included: {w}; got {g}.{_grid_diagnosis(got, index, R, P, K, ranges)}")


@prop("make_grid", points=1)
def test_one_instance_per_point_and_restart(submission):
    R, P, K = _grid_sizes("instances")
    cases = [(R, P, K), (P, R, 1), (1, R, K + 1)]
    for R, P, K in cases:
        _, _, imp, prob = _grid_of(submission, R, P, K, "Instances")
        for name, t in [("importance", imp), ("feature_probability", prob)]:
            hint = " That is one instance per grid point: every restart is an instance too." if (
                t.dim() == 2 and t.shape[0] == R * P and K > 1) else ""
            tensor_out(t, what=f"Instances ({name}, R={R}, P={P}, K={K})", shape=(R * P * K, 2),
                       meaning="(R * P * K, n_features)", shape_hint=lambda got: hint)


def _expect_column(submission, index: int, name: str, rule: str) -> None:
    R, P, K = _grid_sizes(name, K=(3, 5))
    ranges = _ranges(name)
    got = _grid_of(submission, R, P, K, name, **ranges)[index]
    g = phase.make_grid(phase.log_axis(*ranges["importance_range"], R), phase.log_axis(*ranges["density_range"], P), K)
    want = (g.importance() if index == 2 else g.feature_probability()).double()
    tensor_out(got, what=name, shape=tuple(want.shape), meaning="(R * P * K, n_features)")
    if close(got, want):
        return
    at = torch.nonzero(~torch.isclose(got.double(), want, rtol=1e-4))[0].tolist()
    w, gg = fmt_pair(want[at[0]], got[at[0]])
    expect(False, f"{name}: {rule}; instance {at[0]} (restart {at[0] % K} of point ({at[0] // K // P}, "
                  f"{at[0] // K % P})) should be {w}, got {gg}.{_grid_diagnosis(got, index, R, P, K, ranges)}")


@prop("make_grid", points=1)
def test_importance_on_the_extra_feature(submission):
    _expect_column(submission, 2, "Importance", "instance (i * P + j) * K + k should have importance [1, r_i]")


@prop("make_grid", points=1)
def test_density_of_every_instance(submission):
    _expect_column(submission, 3, "Density", "instance (i * P + j) * K + k should have density [p_j, p_j] on both features")


# --------------------------------------------------------------------------- 04.classify

IDEAL = [[1.0, 0.0], [0.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [0.0, 0.0]]
"""Exact configurations, both signs (the loss only sees W^T W, so W and -W are the same model)."""

TRAINED = [
    [1.05, 0.17], [1.013, -0.161], [-1.002, 0.014], [0.36, 1.06], [-0.28, -1.07], [0.02, -1.0], [-0.99, 1.01],
    [1.041, -0.893], [0.7, -0.6], [0.996, -1.016], [0.4, 0.3], [0.944, 0.567], [-0.9, -0.8],
]
"""Weights as training leaves them (taken from trained grids): noisy, partial, either sign."""


def _shuffled_rows(rows: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """``rows`` ``(n, 2)`` in a random order, each negated or not at random (W and -W are the same model)."""
    signs = torch.where(torch.rand(len(rows), 1, generator=gen) < 0.5, -1.0, 1.0).to(rows.dtype)
    return (rows * signs)[torch.randperm(len(rows), generator=gen)]


def _ideal(salt: object) -> torch.Tensor:
    """The ideal configurations, each twice, scaled by random lengths in [0.8, 1.3] (zeros stay exactly 0), shuffled."""
    gen = secret_gen(("ideal", salt))
    rows = torch.tensor(IDEAL * 2)
    rows = rows * (0.8 + 0.5 * torch.rand(rows.shape, generator=gen))
    return _shuffled_rows(rows, gen)


def _trained(salt: object) -> torch.Tensor:
    """The trained weights, moved by up to 0.03 at random, shuffled (none comes within 0.08 of 0.5)."""
    gen = secret_gen(("trained", salt))
    rows = torch.tensor(TRAINED)
    rows = rows + 0.03 * (2 * torch.rand(rows.shape, generator=gen) - 1)
    return _shuffled_rows(rows, gen)


def _threshold(salt: object, low: int = 8, high: int = 88) -> float:
    """A random threshold: a multiple of 1/64 in [low/64, high/64] other than 0.5 (exact in binary, so ties are exact)."""
    choices = [i / 64 for i in range(low, high + 1) if i != 32]
    return choices[int(torch.randint(len(choices), (1,), generator=secret_gen(("threshold", salt))))]


def _at_threshold(salt: object, t: float) -> torch.Tensor:
    """Weights around the threshold ``t``, shuffled: entries exactly at ``t`` (not represented), between ``t`` and
    sqrt(t) (where a squared weight says otherwise), between ``t`` and 0.5, and well above, in every combination."""
    gen = secret_gen(("ties", salt))
    far = max(2 * t, t + 0.5)
    mid = (t + t**0.5) / 2
    half = (t + 0.5) / 2
    rows = [[t, -far], [far, -t], [t, 0.0], [0.0, t], [-t, t], [mid, -far], [far, -mid], [0.0, mid], [mid, -mid],
            [half, -far], [0.0, half], [far, 0.25 * t], [0.25 * t, -far], [-far, 0.5 * t], [far, far], [far, -far]]
    return _shuffled_rows(torch.tensor(rows), gen)


def _labels_hint(W: torch.Tensor) -> Callable[[tuple[int, ...]], str]:
    k = W.shape[0]

    def hint(got: tuple[int, ...]) -> str:
        if k == 1 and got != (1,):
            return (" With one instance a squeeze() of W drops the instance dimension: index W[:, 0, 0] and "
                    "W[:, 0, 1] without squeezing.")
        if got == (k, 1):
            return " One label per instance: index W[:, 0, i] (two indices), not W[:, :, i]."
        return ""

    return hint


def _labels_of(submission, W: torch.Tensor, what: str, **kwargs: Any) -> torch.Tensor:
    out = call(submission, W, what="classify", **kwargs)
    return tensor_out(out, what=what, shape=(W.shape[0],), meaning="(n_instances,), one label per instance",
                      kind="integer", shape_hint=_labels_hint(W))


def _expect_labels(submission, W: torch.Tensor, what: str, dtype=torch.float32, transform=None, **kwargs) -> None:
    W = W.to(dtype).reshape(-1, 1, 2)
    arg = transform(W) if transform else W.clone()
    got = _labels_of(submission, arg, what, **kwargs)
    want = theory.classify_n2m1(W, **kwargs)
    if torch.equal(got.long(), want):
        return
    k = int(torch.nonzero(got.long() != want)[0])
    t = kwargs.get("threshold", 0.5)
    diagnosis = diagnose(MISTAKES["classify"], got, [W], kwargs)
    expect(False, f"{what}: W = {fmt(W[k, 0], 6)} is '{PHASES[want[k]]}' ({want[k].item()}) at threshold {t:g} "
                  f"(represented means |W_i| > {t:g}; superposition needs both represented, with opposite signs); your "
                  f"classify says {got[k].item()}.{diagnosis}")


@prop("classify", points=0.75)
def test_ideal_configurations(submission):
    _expect_labels(submission, _ideal("ideal"), "Ideal configurations")


@prop("classify", points=0.75)
def test_trained_models(submission):
    W = _trained("trained")
    _expect_labels(submission, W, "Trained models")
    _expect_labels(submission, W[:1], "Trained models (one instance)")


@prop("classify", points=0.5)
def test_many_instances(submission):
    W = torch.randn(500, 1, 2, generator=secret_gen(4)) * 0.8
    _expect_labels(submission, W, "Many instances")


@prop("classify", points=0.5)
def test_threshold_argument_and_ties(submission):
    _expect_labels(submission, _at_threshold("default", 0.5), "At the threshold (the default threshold 0.5)")
    _expect_labels(submission, _at_threshold("given 0.5", 0.5), "At the threshold", threshold=0.5)
    for salt in ("low", "high"):
        t = _threshold(salt, *((8, 31) if salt == "low" else (33, 88)))
        _expect_labels(submission, torch.cat([_at_threshold(salt, t), _trained(salt)]), "Threshold argument and ties",
                       threshold=t)


@prop("classify", points=0.5)
def test_classify_inputs(submission):
    W = _trained("inputs")
    _expect_labels(submission, W, "Inputs (float64 W)", dtype=torch.float64)
    try:
        _expect_labels(submission, W, "Inputs (W as an nn.Parameter)", transform=as_parameter)
    except CheckFailed as err:
        raise CheckFailed(f"Inputs (W as an nn.Parameter, requires_grad=True): {err} Hint: stay in torch, or .detach() "
                          "before .numpy() (a model's W requires grad).") from None


# --------------------------------------------------------------------------- 04.aggregate_restarts


def _agg_case(seed: int, R: int, P: int, K: int, skew: bool, phases: tuple[int, ...] = (0, 1, 2)):
    gen = secret_gen(seed)
    labels = torch.tensor(phases)[torch.randint(0, len(phases), (R, P, K), generator=gen)]
    losses = torch.rand(R, P, K, generator=gen, dtype=torch.float64)
    if skew:  # the worst restart of every point is in phase 0, the best in phase 2: dropping matters
        order = losses.argsort(dim=-1)
        labels.scatter_(-1, order[..., -1:], phases[0])
        labels.scatter_(-1, order[..., :1], phases[-1])
    return labels, losses


def _expect_aggregate(submission, labels, losses, drop_worst: int | None, what: str, rule: str) -> None:
    kwargs = {} if drop_worst is None else {"drop_worst": drop_worst}
    out = call(submission, labels, losses, what="aggregate_restarts", **kwargs)
    R, P, K = labels.shape

    def hint(got):
        if got[:2] == (R, P) and len(got) == 3 and got[2] < 3:
            return (f" Only {got[2]} phases: the labels here never reach phase {got[2]}, so one_hot without "
                    "num_classes makes fewer columns; pass num_classes=3.")
        return ""

    if drop_worst == 0 and isinstance(out, torch.Tensor) and tuple(out.shape) == (R, P, 3) and out.is_floating_point():
        empty = ~torch.isfinite(out.detach()).all() or bool((out.detach() == 0).all())
        expect(not empty, f"{what}: {rule}; your fractions are all NaN or all 0, as if no restart were kept. With "
                          "drop_worst=0 a slice [..., :-drop_worst] is [..., :-0], which is empty: keep "
                          "[..., :K - drop_worst] instead.")
    got = tensor_out(out, what=what, shape=(R, P, 3), meaning="(R, P, 3) fractions", kind="float", shape_hint=hint)
    want = phase.aggregate_restarts(labels, losses, 1 if drop_worst is None else drop_worst)
    if close(got, want):
        return
    bad = ((got.double() - want).abs() > 1e-6).any(dim=-1)
    i, j = torch.nonzero(bad)[0].tolist()
    w, g = fmt_pair(want[i, j], got[i, j])
    diagnosis = diagnose(MISTAKES["aggregate_restarts"], got, [labels, losses], kwargs)
    expect(False, f"{what}: {rule}; at point ({i}, {j}) (labels {labels[i, j].tolist()}, losses {fmt(losses[i, j], 2)}) "
                  f"expected {w}, got {g}.{diagnosis}")


@prop("aggregate_restarts", points=0.5)
def test_fractions_of_phases(submission):
    labels, losses = _agg_case(11, 3, 4, 5, skew=False)
    _expect_aggregate(submission, labels, losses, 0, "Fractions",
                      "with drop_worst=0, entry [i, j, c] is the fraction of point (i, j)'s restarts in phase c")


@prop("aggregate_restarts", points=0.75)
def test_drops_the_worst(submission):
    labels, losses = _agg_case(12, 4, 3, 10, skew=True)
    _expect_aggregate(submission, labels, losses, 1, "Drop the worst",
                      "with drop_worst=1 the restart with the highest loss is discarded and the other 9 counted")
    _expect_aggregate(submission, labels, losses, None, "Drop the worst (default)",
                      "without drop_worst, the default drop_worst=1 applies")


@prop("aggregate_restarts", points=0.75)
def test_keep_only_the_best(submission):
    labels, losses = _agg_case(13, 2, 5, 6, skew=True)
    for drop in (3, 5):
        _expect_aggregate(submission, labels, losses, drop, "Keep the best",
                          f"with drop_worst={drop} of 6, the {6 - drop} lowest-loss restarts are kept")


@prop("aggregate_restarts", points=1)
def test_missing_phases_and_small_grids(submission):
    labels, losses = _agg_case(14, 3, 2, 4, skew=True, phases=(0, 1))
    _expect_aggregate(submission, labels, losses, 1, "Missing phases",
                      "with no restart in phase 2, column 2 holds zeros (still 3 columns)")
    labels, losses = _agg_case(15, 1, 1, 3, skew=False, phases=(1,))
    _expect_aggregate(submission, labels, losses, 0, "Missing phases (one point, every restart in phase 1)",
                      "entry [0, 0] is [0, 1, 0]")
    labels, losses = _agg_case(16, 2, 3, 1, skew=False)
    _expect_aggregate(submission, labels, losses, 0, "One restart per point", "with K = 1 each point is one-hot")
    labels, losses = _agg_case(17, 2, 2, 4, skew=True)
    _expect_aggregate(submission, labels.int(), losses.float(), 1, "int32 labels and float32 losses",
                      "the dtypes of the inputs do not change the fractions")


# --------------------------------------------------------------------------- 04.n3m2_losses


def _n3_component_diagnosis(got: torch.Tensor, r, p) -> str:
    return diagnose(MISTAKES["n3m2_losses"], got, [r, p])


@prop("n3m2_losses", points=1)
def test_n3m2_shape(submission):
    r, p = _axes("n3 shape", _size("R", 3, 6), _size("P", 7, 9))
    _losses_of(submission, "n3m2_losses", *_outer(r, p), 4, "Shape (outer grid)")
    _losses_of(submission, "n3m2_losses", r[:3], p[:3], 4, "Shape (r and p of the same shape (3,))")
    gen = secret_gen("n3 floats")
    r0, p0 = round(float(_log_uniform(gen, 1, 0.1, 10.0)), 4), round(float(torch.rand(1, generator=gen)), 4)
    _losses_of(submission, "n3m2_losses", r0, p0, 4, f"Shape (plain floats r = {r0}, p = {p0})")
    out = _losses_of(submission, "n3m2_losses", 1.0, 4.0 / 7.0, 4, "Shape (plain floats r = 1, p = 4/7)")
    expect(close(out, out.double().mean().expand(4), rtol=1e-4),
           f"Triple point: at r = 1, p = 4/7 all four candidates have the same loss, {4 / 7 / 3 - (4 / 7) ** 2 / 4:.6f}; "
           f"got {fmt(out, 6)}.")


@prop("n3m2_losses", points=1)
def test_n3m2_values(submission):
    for (r, p), where in [(_outer(*_axes("n3 values")), "rows: r, columns: p"),
                          (_edges("n3 values"), "pointwise, densities 0 and 1 among them")]:
        got = _losses_of(submission, "n3m2_losses", r, p, 4, "Values")
        want = theory.configuration_losses_n3m2(r, p)
        if close(got, want):
            continue
        names = theory.PHASES_N3M2
        c = next(c for c in range(4) if not close(got[..., c], want[..., c]))
        expect(False, f"Values: candidate {c} ('{names[c]}', W ⊥ {list(theory.N3M2_NULL_DIRECTIONS[c])}): "
                      f"{show_difference(got[..., c], want[..., c])} ({where}).{_n3_component_diagnosis(got, r, p)}")
