"""Lesson 4 checks: superposition as a phase change, in theory and in training.

Six exercises, each compared with :mod:`supercourse` on fixed inputs. Every
answer is determined by its inputs, so every comparison is exact up to float
rounding (relative tolerance 1e-5); there are no statistical tolerances.

* ``04.configuration_losses`` ``configuration_losses(r, p) -> (..., 3)``: the
  expected losses (summed over features) of the three ``n = 2, m = 1``
  configurations, one property per configuration, plus shape and broadcasting.
* ``04.phase_diagram`` ``phase_diagram(relative_importance, density) -> (R, P)``:
  the argmin of the losses on an outer grid. While it is checked, a
  ``configuration_losses`` in the learner's notebook is replaced by the
  reference, so a mistake there is not charged twice.
* ``04.make_grid`` ``make_grid(n_importance, n_density, n_restarts,
  importance_range, density_range) -> (r, p, importance, feature_probability)``:
  log-spaced axes, one instance per grid point and restart in the order
  ``(i * P + j) * K + k``, the importance on the extra (last) feature.
* ``04.classify`` ``classify(W) -> (n_instances,)``: ideal configurations,
  then weights as training leaves them (noisy, partially represented, either sign).
* ``04.aggregate_restarts`` ``aggregate_restarts(labels, losses, drop_worst=1)
  -> (R, P, 3)``: fractions of each phase among the restarts kept after
  dropping the ``drop_worst`` highest-loss ones.
* ``04.n3m2_losses`` (extension) ``n3m2_losses(r, p) -> (..., 4)``: the four
  ``n = 3, m = 2`` candidates' losses.
"""

from __future__ import annotations

import contextlib
import math

import torch

from autograder.exercises import Exercise
from autograder.framework import CheckFailed, call, describe, expect, prop
from supercourse import phase, theory

LESSON = "04-phase-change"
EXERCISES = {
    "configuration_losses": Exercise(
        "configuration_losses",
        "Exact losses of the three n=2, m=1 configurations",
        forbid=("theory.", "loss_not_represented", "loss_dedicated", "loss_antipodal"),
    ),
    "phase_diagram": Exercise("phase_diagram", "The theoretical phase diagram", forbid=("theory.",)),
    "make_grid": Exercise(
        "make_grid", "The (importance, density) grid as instances", forbid=("supercourse.phase", "log_axis", "PhaseGrid")
    ),
    "classify": Exercise("classify", "Classify trained n=2, m=1 models", forbid=("classify_n2m1", "phase.classify")),
    "aggregate_restarts": Exercise(
        "aggregate_restarts", "Aggregate restarts, dropping the worst", forbid=("phase.aggregate", "supercourse.phase")
    ),
    "n3m2_losses": Exercise(
        "n3m2_losses", "Extension: the four n=3, m=2 candidates", forbid=("configuration_losses_n3m2", "theory.")
    ),
}

RTOL = 1e-5
PHASES = theory.PHASES


# --------------------------------------------------------------------------- helpers


def _fmt(values, digits: int = 4) -> str:
    t = torch.as_tensor(values).flatten()
    return "[" + ", ".join(f"{v:.{digits}g}" for v in t.tolist()[:8]) + (", ...]" if t.numel() > 8 else "]")


def _same(a: torch.Tensor, b: torch.Tensor, rtol: float = RTOL) -> bool:
    return a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=rtol, atol=1e-12)


def _axes(R: int = 9, P: int = 11) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-spaced axes that avoid the exact ties at r = 1 and p = 4/7."""
    r = torch.logspace(-1.03, 0.97, R, dtype=torch.float64)
    p = torch.logspace(-2.02, -0.01, P, dtype=torch.float64)
    return r, p


def _outer(r: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return r[:, None], p[None, :]


def _losses(submission, r, p, n_out: int, what: str, name: str) -> torch.Tensor:
    """The learner's losses on an outer grid, checked to be a float tensor of shape (R, P, n_out)."""
    try:
        out = call(submission, r.clone(), p.clone(), what=name)
    except CheckFailed as err:
        if "not implemented yet" in str(err):
            raise
        raise CheckFailed(
            f"{what}: with r of shape {tuple(r.shape)} and p of shape {tuple(p.shape)}, {err} Hint: "
            "torch.broadcast_tensors(r, p) first, so that every loss has the broadcast shape before you stack them."
        ) from None
    shape = (*torch.broadcast_shapes(r.shape, p.shape), n_out)
    expect(
        isinstance(out, torch.Tensor) and out.is_floating_point() and tuple(out.shape) == shape,
        f"{what}: {name}(r of shape {tuple(r.shape)}, p of shape {tuple(p.shape)}) should return a float tensor of "
        f"shape {shape} (the broadcast shape, then one loss per configuration on the last axis), got {describe(out)}. "
        "Hint: torch.stack([...], dim=-1).",
    )
    return out.detach().double()


@contextlib.contextmanager
def _reference_in_globals(submission, name: str, reference):
    """Temporarily give the learner's function the reference ``name`` (if it uses a global of that name)."""
    g = getattr(submission, "__globals__", None)
    if not isinstance(g, dict) or name not in g:
        yield
        return
    saved = g[name]
    g[name] = reference
    try:
        yield
    finally:
        g[name] = saved


# --------------------------------------------------------------------------- 04.configuration_losses


def _variance(p: torch.Tensor) -> torch.Tensor:
    return p / 3 - p**2 / 4


@prop("configuration_losses", points=1)
def test_shape_and_broadcasting(submission):
    try:
        out = call(submission, 2.0, 0.1, what="configuration_losses")
    except CheckFailed as err:
        if "not implemented yet" in str(err):
            raise
        raise CheckFailed(
            f"Shape: with plain floats r = 2.0 and p = 0.1, {err} Hint: convert both with torch.as_tensor first."
        ) from None
    expect(
        isinstance(out, torch.Tensor) and tuple(out.shape) == (3,),
        f"Shape: configuration_losses(2.0, 0.1) with plain floats should return a tensor of shape (3,), one loss per "
        f"configuration, got {describe(out)}. Hint: torch.as_tensor(r) and torch.as_tensor(p) first.",
    )
    r, p = _axes(4, 5)
    outer = _losses(submission, *_outer(r, p), 3, "Shape", "configuration_losses")
    # Compared with the learner's own outer grid, so that only the broadcasting is judged here.
    same = _losses(submission, r[:3], p[:3], 3, "Shape", "configuration_losses")
    diagonal = outer[torch.arange(3), torch.arange(3)]
    expect(
        _same(same, diagonal),
        "Shape: with r and p of the same shape (3,), the losses should be computed pointwise (point k uses r[k] "
        f"and p[k]), which is the diagonal of your (R, P) grid: expected {_fmt(diagonal)}, got {_fmt(same)}.",
    )


@prop("configuration_losses", points=1)
def test_not_represented(submission):
    r, p = _outer(*_axes())
    got = _losses(submission, r, p, 3, "Not represented", "configuration_losses")[..., 0]
    want = theory.loss_not_represented(r, p)
    if not _same(got, want):
        hint = ""
        if _same(got, r * p / 3):
            hint = (" That is r p/3, the loss with the bias at 0: the best bias for a dropped feature is its mean p/2, "
                    "which removes p^2/4, so the loss is r Var(x_2).")
        elif _same(got, theory.loss_dedicated(r, p)):
            hint = " That is the dedicated configuration's loss: here the *extra* feature (importance r) is dropped."
        elif _same(got, _variance(p).expand_as(got)):
            hint = " It does not depend on r: the dropped feature is the extra one, so its error is weighted by r."
        expect(
            False,
            f"Not represented (W = [1, 0]): the loss should be r (p/3 - p^2/4); at r = {r[0, 0].item():.3g} and "
            f"p = {_fmt(p[0, :4])} expected {_fmt(want[0, :4])}, got {_fmt(got[0, :4])}.{hint}",
        )


@prop("configuration_losses", points=1)
def test_dedicated(submission):
    r, p = _outer(*_axes())
    got = _losses(submission, r, p, 3, "Dedicated", "configuration_losses")[..., 1]
    want = theory.loss_dedicated(r, p)
    if not _same(got, want):
        hint = ""
        if _same(got, theory.loss_not_represented(r, p)):
            hint = (" That is r (p/3 - p^2/4): with W = [0, 1] it is feature 1 (importance 1) that is dropped, "
                    "so r does not appear.")
        elif _same(got, (p / 3).expand_as(got)):
            hint = " That is p/3: give the dropped feature its best bias, its mean p/2, which removes p^2/4."
        expect(
            False,
            f"Dedicated (W = [0, 1]): the loss should be p/3 - p^2/4 whatever r is; at p = {_fmt(p[0, :4])} expected "
            f"{_fmt(want[0, :4])}, got {_fmt(got[0, :4])} (first row).{hint}",
        )


@prop("configuration_losses", points=1)
def test_superposition(submission):
    r, p = _outer(*_axes())
    got = _losses(submission, r, p, 3, "Superposition", "configuration_losses")[..., 2]
    want = theory.loss_antipodal(r, p)
    if not _same(got, want):
        hint = ""
        if _same(got, (1 + r) * p**2 / 3):
            hint = (" That is (1 + r) p^2/3: when both are on, feature 1's error is min(x_1, x_2), and "
                    "E[min(U, V)^2] = 1/6 for independent uniforms, not E[U^2] = 1/3.")
        elif _same(got, (1 + r) * p / 6):
            hint = " That grows like p: only inputs with *both* features on cost anything, which has probability p^2."
        elif _same(got, r * p**2 / 6) or _same(got, (p**2 / 6).expand_as(got)):
            hint = " Both features lose min(x_1, x_2) when both are on: weight feature 1's error by 1 and the extra one's by r."
        expect(
            False,
            f"Superposition (W = [1, -1], b = 0): the loss should be (1 + r) p^2 / 6; at r = {r[0, 0].item():.3g} and "
            f"p = {_fmt(p[0, :4])} expected {_fmt(want[0, :4])}, got {_fmt(got[0, :4])}.{hint}",
        )


# --------------------------------------------------------------------------- 04.phase_diagram


def _diagram(submission, r, p, what: str) -> torch.Tensor:
    with _reference_in_globals(submission, "configuration_losses", theory.configuration_losses):
        out = call(submission, r.clone(), p.clone(), what="phase_diagram")
    shape = (r.numel(), p.numel())
    expect(
        isinstance(out, torch.Tensor) and tuple(out.shape) == shape,
        f"{what}: phase_diagram(relative_importance of shape ({r.numel()},), density of shape ({p.numel()},)) should "
        f"return labels of shape (R, P) = {shape}: one row per importance, one column per density; got {describe(out)}.",
    )
    return out


@prop("phase_diagram", points=1)
def test_labels_shape_and_dtype(submission):
    r, p = _axes(5, 7)
    out = _diagram(submission, r, p, "Shape")
    expect(
        not out.is_floating_point() and not out.is_complex() and out.dtype != torch.bool,
        f"Labels: the diagram should hold integer phase labels (0, 1, 2), got dtype {out.dtype}. Hint: argmin returns them.",
    )
    expect(
        bool(((out >= 0) & (out <= 2)).all()),
        f"Labels: every label should be 0 (not represented), 1 (dedicated) or 2 (superposition), got {_fmt(out.unique())}.",
    )


@prop("phase_diagram", points=2)
def test_matches_the_theory(submission):
    r, p = _axes(23, 29)
    out = _diagram(submission, r, p, "Phase diagram")
    want = theory.phase_diagram(r, p)
    if not torch.equal(out.long(), want):
        losses = theory.configuration_losses(r[:, None], p[None, :])
        hint = ""
        if torch.equal(out.long(), losses.argmax(dim=-1)):
            hint = " Your labels are the configuration with the *highest* loss: the model settles where the loss is lowest (argmin)."
        elif torch.equal(out.long(), theory.phase_diagram(p, r).T) or torch.equal(out.long(), (2 - want)):
            hint = " Check which axis is which: row i is relative_importance[i], column j is density[j]."
        bad = torch.nonzero(out.long() != want)[0].tolist()
        i, j = bad
        expect(
            False,
            f"Phase diagram: at r = {r[i].item():.3g}, p = {p[j].item():.3g} the lowest loss is "
            f"'{PHASES[want[i, j]]}' ({want[i, j].item()}), your diagram says {out[i, j].item()}; "
            f"{int((out.long() != want).sum())} of {want.numel()} cells differ.{hint}",
        )


# --------------------------------------------------------------------------- 04.make_grid


def _grid(submission, R, P, K, what: str, **ranges):
    out = call(submission, R, P, K, what="make_grid", **ranges)
    expect(
        isinstance(out, (tuple, list)) and len(out) == 4 and all(isinstance(t, torch.Tensor) for t in out),
        f"{what}: make_grid should return a tuple of 4 tensors (relative_importance, density, importance, "
        f"feature_probability), got {describe(out)}.",
    )
    return [t.detach() for t in out]


@prop("make_grid", points=1)
def test_axes_are_log_spaced(submission):
    for R, P, rng_r, rng_p in [(5, 4, (0.1, 10.0), (0.01, 1.0)), (3, 6, (0.5, 2.0), (0.001, 0.5))]:
        r, p, _, _ = _grid(submission, R, P, 2, "Axes", importance_range=rng_r, density_range=rng_p)
        want_r = torch.logspace(math.log10(rng_r[0]), math.log10(rng_r[1]), R, dtype=torch.float64)
        want_p = torch.logspace(math.log10(rng_p[0]), math.log10(rng_p[1]), P, dtype=torch.float64)
        for name, got, want, rng in [("relative_importance", r, want_r, rng_r), ("density", p, want_p, rng_p)]:
            if not _same(got.reshape(-1), want):
                hint = ""
                lin = torch.linspace(rng[0], rng[1], len(want), dtype=torch.float64)
                if got.numel() == len(want) and _same(got.reshape(-1), lin):
                    hint = " Those are evenly spaced: the paper's axes are logarithmic (torch.logspace over log10 of the range)."
                expect(
                    False,
                    f"Axes: {name} over {rng} with {len(want)} points should be evenly spaced in log, ends included: "
                    f"{_fmt(want)}; got {_fmt(got)}.{hint}",
                )


@prop("make_grid", points=1)
def test_one_instance_per_point_and_restart(submission):
    R, P, K = 3, 4, 5
    _, _, imp, prob = _grid(submission, R, P, K, "Instances")
    for name, t in [("importance", imp), ("feature_probability", prob)]:
        hint = ""
        if t.dim() == 2 and t.shape[0] == R * P:
            hint = " That is one instance per grid point: every restart is an instance too."
        expect(
            tuple(t.shape) == (R * P * K, 2),
            f"Instances: with {R} importances, {P} densities and {K} restarts, {name} should have shape "
            f"(R * P * K, n_features) = {(R * P * K, 2)}, got {describe(t)}.{hint}",
        )


def _reference_grid(R, P, K):
    g = phase.make_grid(phase.log_axis(0.1, 10.0, R), phase.log_axis(0.01, 1.0, P), K)
    return g.importance().double(), g.feature_probability().double()


def _order_hint(got: torch.Tensor, R: int, P: int, K: int, col: int, want_grid: torch.Tensor) -> str:
    """Recognise the grid laid out in another order."""
    base = want_grid.reshape(R, P, K)[:, :, 0]
    if got.numel() != R * P * K:
        return ""
    if _same(got, base.reshape(1, R * P).expand(K, -1).reshape(-1)):
        return (" The restarts are outermost: put them innermost, so that restart k of point (i, j) is instance "
                "(i * P + j) * K + k and values.reshape(R, P, K) recovers the grid.")
    if _same(got, base.T.reshape(P, R, 1).expand(-1, -1, K).reshape(-1)):
        return " Importance and density loops are swapped: rows (the outer index i) are importances, columns (j) densities."
    return ""


@prop("make_grid", points=1)
def test_importance_on_the_extra_feature(submission):
    R, P, K = 3, 4, 5
    _, _, imp, _ = _grid(submission, R, P, K, "Importance")
    want, _ = _reference_grid(R, P, K)
    expect(tuple(imp.shape) == tuple(want.shape), f"Importance: expected shape {tuple(want.shape)}, got {describe(imp)}.")
    imp = imp.double()
    if not _same(imp, want):
        hint = ""
        if _same(imp.flip(-1), want):
            hint = " The relative importance is on index 0: feature 1 (index 0) has importance 1, the extra feature (index 1) gets r."
        elif _same(imp[:, 0], want[:, 0]):
            hint = _order_hint(imp[:, 1], R, P, K, 1, want[:, 1])
        expect(
            False,
            "Importance: instance (i * P + j) * K + k should have importance [1, r_i]; for the first instances "
            f"expected {_fmt(want[:6, 1])} on index 1, got {_fmt(imp[:6].flatten())} (rows [index 0, index 1]).{hint}",
        )


@prop("make_grid", points=1)
def test_density_of_every_instance(submission):
    R, P, K = 3, 4, 5
    _, _, _, prob = _grid(submission, R, P, K, "Density")
    _, want = _reference_grid(R, P, K)
    expect(tuple(prob.shape) == tuple(want.shape), f"Density: expected shape {tuple(want.shape)}, got {describe(prob)}.")
    prob = prob.double()
    if not _same(prob, want):
        hint = _order_hint(prob[:, 0], R, P, K, 0, want[:, 0]) if _same(prob[:, 0], prob[:, 1]) else (
            " Both features of an instance share its grid point's density p_j."
        )
        expect(
            False,
            "Density: instance (i * P + j) * K + k should have density p_j on both features; the first "
            f"{2 * K} instances should have {_fmt(want[: 2 * K, 0], 3)}, got {_fmt(prob[: 2 * K, 0], 3)}.{hint}",
        )


# --------------------------------------------------------------------------- 04.classify

IDEAL = [([1.0, 0.0], 0), ([0.0, 1.0], 1), ([1.0, -1.0], 2), ([-1.0, 1.0], 2), ([-1.0, 0.0], 0), ([0.0, -1.0], 1), ([0.0, 0.0], 0)]
"""Exact configurations, both signs (the loss only sees W^T W, so W and -W are the same model)."""

TRAINED = [
    ([1.05, 0.17], 0),  # a weakly represented extra feature, same side: not represented
    ([1.013, -0.161], 0),  # weakly, opposite side: still not represented (|W_2| < 0.5)
    ([-1.002, 0.014], 0),
    ([0.36, 1.06], 1),  # feature 1 weakly kept beside a dedicated extra feature
    ([-0.28, -1.07], 1),
    ([0.02, -1.0], 1),
    ([-0.99, 1.01], 2),
    ([1.041, -0.893], 2),
    ([0.7, -0.6], 2),
    ([0.996, -1.016], 2),
    ([0.4, 0.3], 0),  # nothing above the threshold
    ([0.944, 0.567], 0),  # both represented on the same side: they interfere, not superposition
    ([-0.9, -0.8], 0),
]
"""Weights as training leaves them (taken from trained grids): noisy, partial, either sign."""


def _classify(submission, W: torch.Tensor, what: str) -> torch.Tensor:
    before = W.clone()
    out = call(submission, W, what="classify")
    expect(torch.equal(W, before), f"{what}: classify must not modify W in place.")
    expect(
        isinstance(out, torch.Tensor) and tuple(out.shape) == (W.shape[0],),
        f"{what}: classify(W of shape {tuple(W.shape)}) should return one label per instance, shape ({W.shape[0]},), "
        f"got {describe(out)}.",
    )
    return out


def _classify_hint(W: torch.Tensor, got: torch.Tensor, want: torch.Tensor) -> str:
    w1, w2 = W[:, 0, 0], W[:, 0, 1]
    if torch.equal(got.long(), torch.where(w1 * w2 < 0, 2, torch.where(w2.abs() > w1.abs(), 1, 0))):
        return (" Your labels follow the signs only: a feature counts only when it is represented, |W_i| > 0.5, "
                "so W = [1, -0.16] is 'not represented', not superposition.")
    same_side = (w1.abs() > 0.5) & (w2.abs() > 0.5) & (w1 * w2 > 0)
    if (same_side & (got.long() == 2)).any():
        return (" Two represented features with the same sign point the same way and interfere: superposition "
                "(antipodal) needs opposite signs, otherwise the label is 0.")
    swapped = theory.classify_n2m1(W.flip(-1))
    if torch.equal(got.long(), swapped):
        return " You treated index 0 as the extra feature: the extra feature is index 1 (W[:, 0, 1])."
    return ""


@prop("classify", points=1)
def test_ideal_configurations(submission):
    W = torch.tensor([w for w, _ in IDEAL]).reshape(-1, 1, 2)
    want = torch.tensor([l for _, l in IDEAL])
    got = _classify(submission, W, "Ideal configurations")
    if not torch.equal(got.long(), want):
        k = int(torch.nonzero(got.long() != want)[0])
        hint = _classify_hint(W, got, want)
        if not hint and W[k, 0, 1] < 0 and want[k] == 1:
            hint = " A feature with W_i = -1 is as represented as one with +1: compare |W_i| with the threshold."
        expect(
            False,
            f"Ideal configurations: W = {W[k, 0].tolist()} is '{PHASES[want[k]]}' ({want[k].item()}), "
            f"your classify says {got[k].item()}.{hint}",
        )


@prop("classify", points=1)
def test_trained_models(submission):
    W = torch.tensor([w for w, _ in TRAINED]).reshape(-1, 1, 2)
    want = torch.tensor([l for _, l in TRAINED])
    got = _classify(submission, W, "Trained models")
    if not torch.equal(got.long(), want):
        k = int(torch.nonzero(got.long() != want)[0])
        hint = _classify_hint(W, got, want)
        if not hint and W[k, 0, 1] < 0 and want[k] == 1:
            hint = " A feature with a negative weight is represented too: compare |W_i| with the threshold."
        expect(
            False,
            f"Trained models: W = {W[k, 0].tolist()} is '{PHASES[want[k]]}' ({want[k].item()}): represented means "
            f"|W_i| > 0.5, superposition needs both represented with opposite signs; your classify says "
            f"{got[k].item()}.{hint}",
        )


@prop("classify", points=1)
def test_many_instances(submission):
    gen = torch.Generator().manual_seed(4)
    W = torch.randn(500, 1, 2, generator=gen) * 0.8
    want = theory.classify_n2m1(W)
    got = _classify(submission, W, "Many instances")
    expect(
        not got.is_floating_point() and got.dtype != torch.bool,
        f"Many instances: labels should be integers (0, 1, 2), got dtype {got.dtype}.",
    )
    bad = got.long() != want
    if bad.any():
        k = int(torch.nonzero(bad)[0])
        expect(
            False,
            f"Many instances: {int(bad.sum())} of 500 random W disagree with the reference, e.g. W = "
            f"{_fmt(W[k, 0])} should be {want[k].item()} ('{PHASES[want[k]]}'), got {got[k].item()}."
            + _classify_hint(W, got, want),
        )


# --------------------------------------------------------------------------- 04.aggregate_restarts


def _aggregate(submission, labels, losses, drop_worst, what: str) -> torch.Tensor:
    before = (labels.clone(), losses.clone())
    out = call(submission, labels, losses, drop_worst=drop_worst, what="aggregate_restarts")
    expect(
        torch.equal(labels, before[0]) and torch.equal(losses, before[1]),
        f"{what}: aggregate_restarts must not modify labels or losses in place (sort a copy).",
    )
    shape = (*labels.shape[:2], 3)
    expect(
        isinstance(out, torch.Tensor) and tuple(out.shape) == shape and out.is_floating_point(),
        f"{what}: aggregate_restarts(labels of shape {tuple(labels.shape)}, ...) should return float fractions of shape "
        f"(R, P, 3) = {shape}, got {describe(out)}.",
    )
    return out.detach().double()


def _agg_hint(got, labels, losses, drop_worst) -> str:
    K = labels.shape[-1]
    counts = phase.aggregate_restarts(labels, losses, drop_worst) * (K - drop_worst)
    if _same(got, counts):
        return " Those are counts: divide by the number of restarts kept, so the fractions sum to 1."
    if drop_worst and _same(got, counts / K):
        return f" You divided by all {K} restarts: divide by the {K - drop_worst} kept."
    if drop_worst and _same(got, phase.aggregate_restarts(labels, -losses, drop_worst)):
        return " You dropped the restarts with the *lowest* loss: drop the worst, the highest losses."
    if drop_worst:
        last = torch.nn.functional.one_hot(labels[..., : K - drop_worst].long(), 3).double().mean(dim=-2)
        if _same(got, last):
            return " You dropped the last restarts by position: drop those with the highest *loss* (argsort the losses)."
    if drop_worst and _same(got, phase.aggregate_restarts(labels, losses, 0)):
        return " Nothing was dropped: discard the drop_worst restarts with the highest loss first."
    return ""


def _first_difference(got: torch.Tensor, want: torch.Tensor) -> tuple[int, int]:
    bad = ((got - want).abs() > 1e-6).any(dim=-1)
    if not bad.any():
        return 0, 0
    i, j = torch.nonzero(bad)[0].tolist()
    return i, j


def _agg_case(seed: int, R: int, P: int, K: int, skew: bool):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (R, P, K), generator=gen)
    losses = torch.rand(R, P, K, generator=gen, dtype=torch.float64)
    if skew:  # the worst restart of every point is in phase 0, the best in phase 2: dropping matters
        order = losses.argsort(dim=-1)
        labels.scatter_(-1, order[..., -1:], 0)
        labels.scatter_(-1, order[..., :1], 2)
    return labels, losses


def _expect_aggregate(submission, labels, losses, drop_worst: int, what: str, rule: str) -> None:
    """The submission's fractions equal the reference's; else name the first point that differs."""
    got = _aggregate(submission, labels, losses, drop_worst, what)
    want = phase.aggregate_restarts(labels, losses, drop_worst)
    if not _same(got, want):
        i, j = _first_difference(got, want)
        expect(
            False,
            f"{what}: {rule}; at point ({i}, {j}) (labels {labels[i, j].tolist()}, losses {_fmt(losses[i, j], 2)}) "
            f"expected {_fmt(want[i, j], 3)}, got {_fmt(got[i, j], 3)}." + _agg_hint(got, labels, losses, drop_worst),
        )


@prop("aggregate_restarts", points=1)
def test_fractions_of_phases(submission):
    labels, losses = _agg_case(11, 3, 4, 5, skew=False)
    _expect_aggregate(
        submission, labels, losses, 0, "Fractions",
        "with drop_worst=0, entry [i, j, c] is the fraction of point (i, j)'s restarts in phase c",
    )


@prop("aggregate_restarts", points=1)
def test_drops_the_worst(submission):
    labels, losses = _agg_case(12, 4, 3, 10, skew=True)
    _expect_aggregate(
        submission, labels, losses, 1, "Drop the worst",
        "with drop_worst=1 the restart with the highest loss is discarded and the other 9 counted",
    )


@prop("aggregate_restarts", points=1)
def test_keep_only_the_best(submission):
    labels, losses = _agg_case(13, 2, 5, 6, skew=True)
    for drop in (3, 5):
        _expect_aggregate(
            submission, labels, losses, drop, "Keep the best",
            f"with drop_worst={drop} of 6, the {6 - drop} lowest-loss restarts are kept",
        )


# --------------------------------------------------------------------------- 04.n3m2_losses


@prop("n3m2_losses", points=1)
def test_n3m2_shape(submission):
    r, p = _axes(4, 5)
    _losses(submission, *_outer(r, p), 4, "Shape", "n3m2_losses")
    out = call(submission, 1.0, 4.0 / 7.0, what="n3m2_losses")
    expect(
        isinstance(out, torch.Tensor) and tuple(out.shape) == (4,),
        f"Shape: n3m2_losses(1.0, 4/7) with plain floats should return 4 losses, got {describe(out)}.",
    )
    expect(
        torch.allclose(out.double(), out.double().mean().expand(4), rtol=1e-4),
        f"Triple point: at r = 1, p = 4/7 all four candidates have the same loss, {4 / 7 / 3 - (4 / 7) ** 2 / 4:.4f}; "
        f"got {_fmt(out)}.",
    )


@prop("n3m2_losses", points=1)
def test_n3m2_values(submission):
    r, p = _outer(*_axes())
    got = _losses(submission, r, p, 4, "Values", "n3m2_losses")
    want = theory.configuration_losses_n3m2(r, p)
    if not _same(got, want):
        names = theory.PHASES_N3M2
        bad = [c for c in range(4) if not _same(got[..., c], want[..., c])]
        c = bad[0]
        hint = ""
        if c == 3 and _same(got[..., 3], (p**2 / 6).expand_as(got[..., 3])):
            hint = " An antipodal pair of two features of importance 1 costs (1 + 1) p^2 / 6."
        elif any(_same(got[..., c], want[..., d]) for d in range(4) if d != c):
            hint = f" That is another candidate's loss: keep the order {list(names)}."
        expect(
            False,
            f"Values: candidate {c} ('{names[c]}', W ⊥ {list(theory.N3M2_NULL_DIRECTIONS[c])}) should cost "
            f"{_fmt(want[0, :4, c])} at r = {r[0, 0].item():.3g}, p = {_fmt(p[0, :4])}; got {_fmt(got[0, :4, c])}.{hint}",
        )
