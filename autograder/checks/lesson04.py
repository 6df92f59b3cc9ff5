"""Lesson 4 checks: superposition as a phase change, in theory and in training.

Six exercises, each compared with :mod:`supercourse` on fixed inputs; every
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

Every exercise diagnoses with :data:`MISTAKES`, the table the tests also use.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from autograder.exercises import Exercise
from autograder.framework import CheckFailed, call, expect, prop
from autograder.toolkit import Mistake, close, describe, diagnose, fmt, fmt_pair, show_difference, tensor_out
from autograder.toolkit.weights import as_parameter
from supercourse import phase, theory

LESSON = "04-phase-change"
EXERCISES = {
    "configuration_losses": Exercise(
        "configuration_losses",
        "Exact losses of the three n=2, m=1 configurations",
        forbid=("theory.", "loss_not_represented", "loss_dedicated", "loss_antipodal"),
        reference=("supercourse.theory.loss_not_represented", "supercourse.theory.loss_dedicated",
                   "supercourse.theory.loss_antipodal", "supercourse.theory.configuration_losses"),
    ),
    "phase_diagram": Exercise(
        "phase_diagram", "The theoretical phase diagram", forbid=("theory.",), reference=("supercourse.theory.phase_diagram",)
    ),
    "make_grid": Exercise(
        "make_grid", "The (importance, density) grid as instances", forbid=("supercourse.phase", "log_axis", "PhaseGrid"),
        reference=("supercourse.phase.make_grid",),
    ),
    "classify": Exercise(
        "classify", "Classify trained n=2, m=1 models", forbid=("classify_n2m1", "phase.classify"),
        reference=("supercourse.theory.classify_n2m1", "supercourse.phase.classify", "supercourse.phase.classify_n3m2"),
    ),
    "aggregate_restarts": Exercise(
        "aggregate_restarts", "Aggregate restarts, dropping the worst", forbid=("phase.aggregate", "supercourse.phase"),
        reference=("supercourse.phase.aggregate_restarts",),
    ),
    "n3m2_losses": Exercise(
        "n3m2_losses", "Extension: the four n=3, m=2 candidates", forbid=("configuration_losses_n3m2", "theory."),
        reference=("supercourse.theory.configuration_losses_n3m2",),
    ),
}

PHASES = theory.PHASES


# --------------------------------------------------------------------------- the mistakes' building blocks


def _rp(r, p) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.broadcast_tensors(torch.as_tensor(r, dtype=torch.float64), torch.as_tensor(p, dtype=torch.float64))


def _losses(r, p, *, dropped=lambda p: p / 3 - p**2 / 4, pair=lambda p: p**2 / 6, swap_r=False, order=(0, 1, 2), dim=-1):
    """The three losses with one part replaced (each mistake changes one part)."""
    r, p = _rp(r, p)
    cols = [r * dropped(p), dropped(p) * torch.ones_like(r), (1 + r) * pair(p)]
    if swap_r:
        cols[0], cols[1] = dropped(p) * torch.ones_like(r), r * dropped(p)
    return torch.stack([cols[i] for i in order], dim=dim)


def _diagram(r, p, losses: Callable = _losses, pick=lambda L: L.argmin(dim=-1)):
    r = torch.as_tensor(r, dtype=torch.float64)
    p = torch.as_tensor(p, dtype=torch.float64)
    return pick(losses(r[:, None], p[None, :]))


def _n3(r, p, order=(0, 1, 2, 3), pair_factor=2.0, dropped=lambda p: p / 3 - p**2 / 4, pair=lambda p: p**2 / 6, dim=-1):
    r, p = _rp(r, p)
    cols = [r * dropped(p), dropped(p) * torch.ones_like(r), (1 + r) * pair(p), pair_factor * pair(p) * torch.ones_like(r)]
    return torch.stack([cols[i] for i in order], dim=dim)


def _logaxis(lo: float, hi: float, n: int, space: str = "log") -> torch.Tensor:
    if space == "lin":
        return torch.linspace(lo, hi, n)
    if space == "ln":
        return torch.logspace(math.log(lo), math.log(hi), n)
    return torch.logspace(math.log10(lo), math.log10(hi), n)


def _grid(R, P, K, importance_range=(0.1, 10.0), density_range=(0.01, 1.0), *, space="log", order="rpk",
          extra_first=False, fixed_ranges=False, restarts=True, density_cols=("p", "p")):
    if fixed_ranges:
        importance_range, density_range = (0.1, 10.0), (0.01, 1.0)
    r = _logaxis(*importance_range, R, space)
    p = _logaxis(*density_range, P, space)
    K_ = K if restarts else 1
    if order == "rpk":
        ri, pi = r[:, None, None].expand(R, P, K_), p[None, :, None].expand(R, P, K_)
    elif order == "krp":
        ri, pi = r[None, :, None].expand(K_, R, P), p[None, None, :].expand(K_, R, P)
    else:  # "prk": the importance and density loops swapped
        ri, pi = r[None, :, None].expand(P, R, K_), p[:, None, None].expand(P, R, K_)
    ri, pi = ri.reshape(-1), pi.reshape(-1)
    imp = torch.stack([ri, torch.ones_like(ri)] if extra_first else [torch.ones_like(ri), ri], dim=1)
    cols = {"p": pi, "1": torch.ones_like(pi)}
    prob = torch.stack([cols[c] for c in density_cols], dim=1)
    return r, p, imp, prob


def _classify(W, threshold=0.5, *, on=lambda w, t: w.abs() > t, opposite=lambda a, b: a * b < 0, extra=1):
    w0, w1 = W.detach()[:, 0, 1 - extra], W.detach()[:, 0, extra]
    on0, on1 = on(w0, threshold), on(w1, threshold)
    labels = torch.zeros(W.shape[0], dtype=torch.long)
    labels[on1 & ~on0] = 1
    labels[on0 & on1 & opposite(w0, w1)] = 2
    return labels


def _classify_dedicated_beside(W, threshold=0.5):
    w0, w1 = W.detach()[:, 0, 0], W.detach()[:, 0, 1]
    on0, on1 = w0.abs() > threshold, w1.abs() > threshold
    labels = torch.where(on1, 1, 0)
    return torch.where(on0 & on1 & (w0 * w1 < 0), 2, labels)


def _classify_numpy(W, threshold=0.5):
    import numpy as np

    w = W.numpy()[:, 0, :]
    on = np.abs(w) > threshold
    labels = np.where(on[:, 1] & ~on[:, 0], 1, 0)
    labels = np.where(on[:, 0] & on[:, 1] & (w[:, 0] * w[:, 1] < 0), 2, labels)
    return torch.from_numpy(labels)


def _aggregate(labels, losses, drop_worst=1, *, key=lambda L: L, keep_by_position=False, divide=None,
               num_classes=3, as_counts=False, floor=False):
    K = labels.shape[-1]
    if keep_by_position:
        keep = torch.arange(K - drop_worst).expand(*labels.shape[:-1], K - drop_worst)
    else:
        keep = key(losses).argsort(dim=-1)[..., : K - drop_worst]
    kept = labels.gather(-1, keep).long()
    one_hot = torch.nn.functional.one_hot(kept, num_classes) if num_classes else torch.nn.functional.one_hot(kept)
    counts = one_hot.sum(dim=-2)
    if as_counts:
        return counts.double()
    if floor:
        return counts // (K - drop_worst)
    return counts.double() / (divide(K, drop_worst) if divide else (K - drop_worst))


def _aggregate_default_zero(labels, losses, drop_worst=0):
    return _aggregate(labels, losses, drop_worst)


_GRAD = "requires_grad"

MISTAKES: dict[str, list[Mistake]] = {
    "configuration_losses": [
        Mistake("without_bias", lambda r, p: _losses(r, p, dropped=lambda p: p / 3), "its mean p/2",
                "Your dropped-feature losses are p/3, the loss with the bias at 0: the best bias for a dropped feature "
                "is its mean p/2, which removes p^2/4."),
        Mistake("no_importance", lambda r, p: _losses(r, p, swap_r=True) * torch.tensor([1.0, 0.0, 1.0]) + _losses(
                r, p) * torch.tensor([0.0, 1.0, 0.0]), "weighted by r",
                "Your not-represented loss does not depend on r: the dropped feature is the extra one, so its error "
                "is weighted by r."),
        Mistake("importance_on_the_wrong_configuration", lambda r, p: _losses(r, p, swap_r=True), "extra",
                "Your losses weight the wrong configuration by r: with W = [1, 0] it is the *extra* feature "
                "(importance r) that is dropped; with W = [0, 1] feature 1 (importance 1) is."),
        Mistake("e_x_squared", lambda r, p: _losses(r, p, pair=lambda p: p**2 / 3), "1/6",
                "Your superposition loss is (1 + r) p^2/3: when both are on, each loses min(x_1, x_2), and "
                "E[min(U, V)^2] = 1/6 for independent uniforms, not E[U^2] = 1/3."),
        Mistake("linear_in_p", lambda r, p: _losses(r, p, pair=lambda p: p / 6), "both",
                "Your superposition loss grows like p: only inputs with *both* features on cost anything, which has "
                "probability p^2."),
        Mistake("one_importance", lambda r, p: _losses(r, p) - torch.stack(
                [0 * _rp(r, p)[0], 0 * _rp(r, p)[0], _rp(r, p)[1] ** 2 / 6], dim=-1), "weight feature 1",
                "Your superposition loss is r p^2/6: both features lose min(x_1, x_2) when both are on; weight "
                "feature 1's error by 1 and the extra one's by r."),
        Mistake("order", lambda r, p: _losses(r, p, order=(0, 2, 1)), "order",
                "Your last two losses are swapped: keep the order 0 not represented (W = [1, 0]), 1 dedicated "
                "(W = [0, 1]), 2 superposition (W = [1, -1])."),
        Mistake("stacked_first", lambda r, p: _losses(r, p, dim=0), "last axis", compare=False),
        Mistake("floats_not_handled", lambda r, p: torch.stack([r * (p / 3 - p**2 / 4), (p / 3 - p**2 / 4)
                * torch.ones_like(r), (1 + r) * p**2 / 6], dim=-1), "as_tensor", compare=False),
        Mistake("no_broadcasting", lambda r, p: torch.stack([torch.as_tensor(r) * (torch.as_tensor(p) / 3),
                torch.as_tensor(p) / 3, torch.as_tensor(p) ** 2 + 0 * torch.as_tensor(r)], dim=-1), "broadcast",
                compare=False),
    ],
    "phase_diagram": [
        Mistake("argmax", lambda relative_importance, density: _diagram(relative_importance, density,
                pick=lambda L: L.argmax(dim=-1)), "highest",
                "Your labels are the configuration with the *highest* loss: the model settles where the loss is "
                "lowest (argmin)."),
        Mistake("axes_swapped", lambda relative_importance, density: _diagram(density, relative_importance).T,
                "which axis", "Your labels match a diagram with the two axes' roles swapped: check which axis is "
                "which, row i is relative_importance[i], column j is density[j]."),
        Mistake("losses_without_bias", lambda relative_importance, density: _diagram(relative_importance, density,
                losses=lambda r, p: _losses(r, p, dropped=lambda p: p / 3)), "configuration_losses",
                "Your labels are the argmin of losses without the best bias (a dropped feature costs p/3): the "
                "diagram itself is right, fix configuration_losses (see its check)."),
        Mistake("losses_importance_swapped", lambda relative_importance, density: _diagram(relative_importance,
                density, losses=lambda r, p: _losses(r, p, swap_r=True)), "configuration_losses",
                "Your labels are the argmin of losses that weight the wrong configuration by r: the diagram itself "
                "is right, fix configuration_losses (see its check)."),
        Mistake("losses_e_x_squared", lambda relative_importance, density: _diagram(relative_importance, density,
                losses=lambda r, p: _losses(r, p, pair=lambda p: p**2 / 3)), "configuration_losses",
                "Your labels are the argmin of losses with (1 + r) p^2/3 for superposition: the diagram itself is "
                "right, fix configuration_losses (see its check)."),
        Mistake("sorted_axes", lambda relative_importance, density: _diagram(
                torch.as_tensor(relative_importance).sort().values, torch.as_tensor(density).sort().values),
                "in the order given", "Your labels match the axes sorted: row i is relative_importance[i] and "
                "column j is density[j] in the order given, whatever it is."),
        Mistake("never_superposition", lambda relative_importance, density: _diagram(relative_importance, density,
                losses=lambda r, p: _losses(r, p)[..., :2]), "superposition",
                "Your labels are never 2: compare all three configurations, superposition included."),
        Mistake("transposed", lambda relative_importance, density: _diagram(relative_importance, density).T,
                "one row per importance", compare=False),
        Mistake("elementwise", lambda relative_importance, density: _losses(relative_importance[:3],
                density[:3]).argmin(-1), "one row per importance", compare=False),
        Mistake("float_labels", lambda relative_importance, density: _diagram(relative_importance, density).double(),
                "integer", compare=False),
    ],
    "make_grid": [
        Mistake("linear", lambda n_importance, n_density, n_restarts, importance_range=(0.1, 10.0),
                density_range=(0.01, 1.0): _grid(n_importance, n_density, n_restarts, importance_range, density_range,
                space="lin"), "evenly spaced", "Those are evenly spaced: the paper's axes are logarithmic "
                "(torch.logspace over log10 of the range)."),
        Mistake("natural_log", lambda n_importance, n_density, n_restarts, importance_range=(0.1, 10.0),
                density_range=(0.01, 1.0): _grid(n_importance, n_density, n_restarts, importance_range, density_range,
                space="ln"), "log10", "Those are torch.logspace over natural logs: torch.logspace raises 10 to "
                "its arguments, so give it log10 of the range."),
        Mistake("fixed_ranges", lambda n_importance, n_density, n_restarts, importance_range=(0.1, 10.0),
                density_range=(0.01, 1.0): _grid(n_importance, n_density, n_restarts, fixed_ranges=True),
                "range arguments", "Those are the default ranges whatever is passed: use the importance_range and "
                "density_range arguments."),
        Mistake("no_restarts", lambda n_importance, n_density, n_restarts, importance_range=(0.1, 10.0),
                density_range=(0.01, 1.0): _grid(n_importance, n_density, n_restarts, importance_range, density_range,
                restarts=False), "every restart is an instance", compare=False),
        Mistake("restarts_outermost", lambda n_importance, n_density, n_restarts, importance_range=(0.1, 10.0),
                density_range=(0.01, 1.0): _grid(n_importance, n_density, n_restarts, importance_range, density_range,
                order="krp"), "restarts are outermost", "The restarts are outermost: put them innermost, so that "
                "restart k of point (i, j) is instance (i * P + j) * K + k and values.reshape(R, P, K) recovers the grid."),
        Mistake("loops_swapped", lambda n_importance, n_density, n_restarts, importance_range=(0.1, 10.0),
                density_range=(0.01, 1.0): _grid(n_importance, n_density, n_restarts, importance_range, density_range,
                order="prk"), "loops are swapped", "Importance and density loops are swapped: rows (the outer "
                "index i) are importances, columns (j) densities."),
        Mistake("extra_first", lambda n_importance, n_density, n_restarts, importance_range=(0.1, 10.0),
                density_range=(0.01, 1.0): _grid(n_importance, n_density, n_restarts, importance_range, density_range,
                extra_first=True), "index 0", "The relative importance is on index 0: feature 1 (index 0) has "
                "importance 1, the extra feature (index 1) gets r."),
        Mistake("density_on_one_feature", lambda n_importance, n_density, n_restarts, importance_range=(0.1, 10.0),
                density_range=(0.01, 1.0): _grid(n_importance, n_density, n_restarts, importance_range, density_range,
                density_cols=("p", "1")), "both features", "Both features of an instance share its grid point's "
                "density p_j: [p_j, p_j]."),
        Mistake("flat_importance", lambda n_importance, n_density, n_restarts, importance_range=(0.1, 10.0),
                density_range=(0.01, 1.0): (lambda g: (g[0], g[1], g[2][:, 1], g[3]))(_grid(n_importance, n_density,
                n_restarts, importance_range, density_range)), "(R * P * K, n_features)", compare=False),
    ],
    "classify": [
        Mistake("by_sign", lambda W, threshold=0.5: _classify(W, threshold, on=lambda w, t: w != 0), "signs only",
                "Your labels follow the signs only: a feature counts only when it is represented, |W_i| > threshold, "
                "so W = [1, -0.16] is 'not represented', not superposition."),
        Mistake("extra_is_index_0", lambda W, threshold=0.5: _classify(W, threshold, extra=0), "index 1",
                "You treated index 0 as the extra feature: the extra feature is index 1 (W[:, 0, 1])."),
        Mistake("without_abs", lambda W, threshold=0.5: _classify(W, threshold, on=lambda w, t: w > t), "|W_i|",
                "A feature with a negative weight is as represented as one with a positive weight: compare |W_i| with "
                "the threshold."),
        Mistake("same_side", lambda W, threshold=0.5: _classify(W, threshold, opposite=lambda a, b: torch.ones_like(
                a, dtype=torch.bool)), "opposite signs",
                "Two represented features with the same sign point the same way and interfere: superposition "
                "(antipodal) needs opposite signs, otherwise the label is 0."),
        Mistake("fixed_threshold", lambda W, threshold=0.5: _classify(W, 0.5), "threshold argument",
                "Your labels match threshold=0.5 whatever is passed: use the threshold argument."),
        Mistake("at_the_threshold", lambda W, threshold=0.5: _classify(W, threshold, on=lambda w, t: w.abs() >= t),
                "exactly at the threshold", "Your labels count a weight exactly at the threshold as represented: "
                "represented means |W_i| > threshold, strictly."),
        Mistake("float_labels", lambda W, threshold=0.5: _classify(W, threshold).float(), "integer", compare=False),
        Mistake("dedicated_beside_feature_1", _classify_dedicated_beside, "feature 1 (index 0) is not",
                "Your labels say dedicated whenever the extra feature is represented: dedicated means the extra "
                "feature is represented and feature 1 (index 0) is not; both represented on the same side is 0."),
        Mistake("numpy", _classify_numpy, _GRAD, compare=False),
    ],
    "aggregate_restarts": [
        Mistake("without_dropping", lambda labels, losses, drop_worst=1: _aggregate(labels, losses, 0),
                "Nothing was dropped", "Nothing was dropped: discard the drop_worst restarts with the highest loss first."),
        Mistake("drops_the_best", lambda labels, losses, drop_worst=1: _aggregate(labels, losses, drop_worst,
                key=lambda L: -L), "lowest", "You dropped the restarts with the *lowest* loss: drop the worst, the "
                "highest losses."),
        Mistake("counts", lambda labels, losses, drop_worst=1: _aggregate(labels, losses, drop_worst, as_counts=True),
                "counts", "Those are counts: divide by the number of restarts kept, so the fractions sum to 1."),
        Mistake("divides_by_all", lambda labels, losses, drop_worst=1: _aggregate(labels, losses, drop_worst,
                divide=lambda K, d: K), "divided by all", "You divided by all restarts: divide by the K - drop_worst kept."),
        Mistake("by_position", lambda labels, losses, drop_worst=1: _aggregate(labels, losses, drop_worst,
                keep_by_position=True), "by position", "You dropped the last restarts by position: drop those with "
                "the highest *loss* (argsort the losses)."),
        Mistake("default_zero", _aggregate_default_zero, "default", "Your fractions match drop_worst=0 when it is not "
                "passed: the default is drop_worst=1 (the paper discards the worst of its restarts)."),
        Mistake("without_num_classes", lambda labels, losses, drop_worst=1: _aggregate(labels, losses, drop_worst,
                num_classes=None), "num_classes", compare=False),
        Mistake("integer_fractions", lambda labels, losses, drop_worst=1: _aggregate(labels, losses, drop_worst,
                floor=True), "floating-point", compare=False),
        Mistake("one_too_few", lambda labels, losses, drop_worst=1: _aggregate(labels, losses, drop_worst + 1,
                divide=lambda K, d: K - d), "one restart too few",
                "You kept one restart too few: keep the K - drop_worst lowest-loss restarts."),
    ],
    "n3m2_losses": [
        Mistake("one_importance_in_the_pair", lambda r, p: _n3(r, p, pair_factor=1.0), "(1 + 1) p^2 / 6",
                "An antipodal pair of two features of importance 1 costs (1 + 1) p^2 / 6."),
        Mistake("candidates_swapped", lambda r, p: _n3(r, p, order=(1, 0, 2, 3)), "keep the order",
                "That is another candidate's loss: keep the order W ⊥ [0,0,1], [1,0,0], [0,1,1], [1,1,0]."),
        Mistake("pair_and_drop_swapped", lambda r, p: _n3(r, p, order=(0, 1, 3, 2)), "keep the order",
                "That is another candidate's loss: keep the order W ⊥ [0,0,1], [1,0,0], [0,1,1], [1,1,0]."),
        Mistake("without_bias", lambda r, p: _n3(r, p, dropped=lambda p: p / 3), "its mean p/2",
                "A dropped feature costs p/3 - p^2/4 per unit of importance: its best bias is its mean p/2."),
        Mistake("pair_linear_in_p", lambda r, p: _n3(r, p, pair=lambda p: p / 6), "both on",
                "An antipodal pair costs only with both on at once, with probability p^2: (importances) p^2 / 6."),
        Mistake("only_three", lambda r, p: _n3(r, p)[..., :3], "4 losses", compare=False),
        Mistake("stacked_first", lambda r, p: _n3(r, p, dim=0), "last axis", compare=False),
        Mistake("floats_not_handled", lambda r, p: torch.stack([r * (p / 3 - p**2 / 4), p / 3 - p**2 / 4 + 0 * r,
                (1 + r) * p**2 / 6, p**2 / 3 + 0 * r], dim=-1), "as_tensor", compare=False),
    ],
}
"""Every exercise's known mistakes."""


# --------------------------------------------------------------------------- axes and shared helpers


def _axes(R: int = 9, P: int = 11) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-spaced axes that avoid the exact ties at r = 1 and p = 4/7."""
    return torch.logspace(-1.03, 0.97, R, dtype=torch.float64), torch.logspace(-2.02, -0.01, P, dtype=torch.float64)


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
    hint = ""
    if isinstance(out, torch.Tensor) and out.dim() >= 1 and tuple(out.shape) == (n_out, *shape[:-1]):
        hint = " The configurations are on the first axis: stack them on the last axis, torch.stack([...], dim=-1)."
    elif isinstance(out, torch.Tensor) and tuple(out.shape) == (*shape[:-1], n_out - 1):
        hint = f" That is {n_out - 1} losses: return {n_out} losses, one per candidate."
    return tensor_out(out, what=what, shape=shape, kind="float",
                      meaning=f"broadcast(r, p).shape + ({n_out},), one loss per configuration on the last axis",
                      shape_hint=lambda got: hint)


def _component(submission, c: int, reference: Callable, what: str, formula: str) -> None:
    """Configuration ``c``'s loss equals the reference's on an outer grid and at p = 0 and p = 1."""
    for r, p in [_outer(*_axes()), (torch.tensor([0.3, 1.0, 3.0]), torch.tensor([0.0, 1.0, 0.5]))]:
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
    _losses_of(submission, "configuration_losses", 2.0, 0.1, 3, "Shape (plain floats r = 2.0, p = 0.1)")
    r, p = _axes(4, 5)
    outer = _losses_of(submission, "configuration_losses", *_outer(r, p), 3, "Shape (outer grid)")
    same = _losses_of(submission, "configuration_losses", r[:3], p[:3], 3, "Shape (r and p of the same shape)")
    diagonal = outer[torch.arange(3), torch.arange(3)]
    w, g = fmt_pair(diagonal, same)
    expect(close(same, diagonal),
           "Shape: with r and p of the same shape (3,), the losses should be computed pointwise (point k uses r[k] and "
           f"p[k]), which is the diagonal of your (R, P) grid: expected {w}, got {g}.")
    _losses_of(submission, "configuration_losses", 1.5, p.float(), 3, "Shape (a float r and float32 p)")


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
    out = call(submission, r, p, what="phase_diagram")
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
    r, p = _axes(5, 7)
    got = _labels(submission, r, p, "Labels")
    expect(bool(((got >= 0) & (got <= 2)).all()),
           f"Labels: every label should be 0 (not represented), 1 (dedicated) or 2 (superposition), got {fmt(got.unique())}.")
    _labels(submission, r[:1], p, "Labels (one importance)")
    _labels(submission, r, p[:1], "Labels (one density)")
    _labels(submission, r.float(), p.float(), "Labels (float32 axes)")


@prop("phase_diagram", points=2)
def test_matches_the_theory(submission):
    r, p = _axes(23, 29)
    _expect_diagram(submission, r, p, "Phase diagram")
    gen = torch.Generator().manual_seed(3)
    _expect_diagram(submission, r[torch.randperm(23, generator=gen)], p[torch.randperm(29, generator=gen)],
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


@prop("make_grid", points=1)
def test_axes_are_log_spaced(submission):
    for R, P, rng_r, rng_p in [(5, 4, (0.1, 10.0), (0.01, 1.0)), (3, 6, (0.5, 2.0), (0.001, 0.5)), (2, 2, (1.0, 100.0), (0.1, 0.2))]:
        ranges = {"importance_range": rng_r, "density_range": rng_p}
        r, p, _, _ = _grid_of(submission, R, P, 2, "Axes", **ranges)
        for index, name, got, rng, n in [(0, "relative_importance", r, rng_r, R), (1, "density", p, rng_p, P)]:
            want = phase.log_axis(*rng, n)
            tensor_out(got, what=f"Axes ({name})", shape=(n,), meaning=f"({'R' if index == 0 else 'P'},)")
            if close(got, want):
                continue
            w, g = fmt_pair(want, got)
            expect(False, f"Axes: {name} over {rng} with {n} points should be evenly spaced in log, ends included: "
                          f"{w}; got {g}.{_grid_diagnosis(got, index, R, P, 2, ranges)}")


@prop("make_grid", points=1)
def test_one_instance_per_point_and_restart(submission):
    for R, P, K in [(3, 4, 5), (2, 3, 1), (1, 2, 3)]:
        _, _, imp, prob = _grid_of(submission, R, P, K, "Instances")
        for name, t in [("importance", imp), ("feature_probability", prob)]:
            hint = " That is one instance per grid point: every restart is an instance too." if (
                t.dim() == 2 and t.shape[0] == R * P and K > 1) else ""
            tensor_out(t, what=f"Instances ({name}, R={R}, P={P}, K={K})", shape=(R * P * K, 2),
                       meaning="(R * P * K, n_features)", shape_hint=lambda got: hint)


def _expect_column(submission, index: int, name: str, rule: str) -> None:
    R, P, K = 3, 4, 5
    ranges = {"importance_range": (0.2, 5.0), "density_range": (0.02, 0.8)}
    got = _grid_of(submission, R, P, K, name, **ranges)[index]
    g = phase.make_grid(phase.log_axis(0.2, 5.0, R), phase.log_axis(0.02, 0.8, P), K)
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

IDEAL = [([1.0, 0.0], 0), ([0.0, 1.0], 1), ([1.0, -1.0], 2), ([-1.0, 1.0], 2), ([-1.0, 0.0], 0), ([0.0, -1.0], 1), ([0.0, 0.0], 0)]
"""Exact configurations, both signs (the loss only sees W^T W, so W and -W are the same model)."""

TRAINED = [
    [1.05, 0.17], [1.013, -0.161], [-1.002, 0.014], [0.36, 1.06], [-0.28, -1.07], [0.02, -1.0], [-0.99, 1.01],
    [1.041, -0.893], [0.7, -0.6], [0.996, -1.016], [0.4, 0.3], [0.944, 0.567], [-0.9, -0.8],
]
"""Weights as training leaves them (taken from trained grids): noisy, partial, either sign."""

AT_THRESHOLD = [[0.5, -1.0], [1.0, -0.5], [0.5, 0.0], [0.0, 0.5], [-0.5, 0.5], [0.25, -0.75], [0.75, -0.25], [0.8, 0.3]]
"""Weights exactly at the thresholds 0.5, 0.25, 0.75 (exact in binary): at the threshold is not represented."""


def _labels_of(submission, W: torch.Tensor, what: str, **kwargs: Any) -> torch.Tensor:
    out = call(submission, W, what="classify", **kwargs)
    return tensor_out(out, what=what, shape=(W.shape[0],), meaning="(n_instances,), one label per instance", kind="integer")


def _expect_labels(submission, rows: list[list[float]], what: str, dtype=torch.float32, transform=None, **kwargs) -> None:
    W = torch.tensor(rows, dtype=dtype).reshape(-1, 1, 2)
    arg = transform(W) if transform else W
    got = _labels_of(submission, arg, what, **kwargs)
    want = theory.classify_n2m1(W, **kwargs)
    if torch.equal(got.long(), want):
        return
    k = int(torch.nonzero(got.long() != want)[0])
    t = kwargs.get("threshold", 0.5)
    diagnosis = diagnose(MISTAKES["classify"], got, [W], kwargs)
    expect(False, f"{what}: W = {W[k, 0].tolist()} is '{PHASES[want[k]]}' ({want[k].item()}) at threshold {t:g} "
                  f"(represented means |W_i| > {t:g}; superposition needs both represented, with opposite signs); your "
                  f"classify says {got[k].item()}.{diagnosis}")


@prop("classify", points=0.75)
def test_ideal_configurations(submission):
    _expect_labels(submission, [w for w, _ in IDEAL], "Ideal configurations")


@prop("classify", points=0.75)
def test_trained_models(submission):
    _expect_labels(submission, TRAINED, "Trained models")
    _expect_labels(submission, TRAINED[:1], "Trained models (one instance)")


@prop("classify", points=0.5)
def test_many_instances(submission):
    W = torch.randn(500, 1, 2, generator=torch.Generator().manual_seed(4)) * 0.8
    _expect_labels(submission, W.reshape(-1, 2).tolist(), "Many instances")


@prop("classify", points=0.5)
def test_threshold_argument_and_ties(submission):
    _expect_labels(submission, AT_THRESHOLD, "At the threshold", threshold=0.5)
    _expect_labels(submission, AT_THRESHOLD, "At the threshold", threshold=0.25)
    _expect_labels(submission, AT_THRESHOLD + TRAINED, "Threshold argument", threshold=0.75)


@prop("classify", points=0.5)
def test_classify_inputs(submission):
    _expect_labels(submission, TRAINED, "Inputs (float64 W)", dtype=torch.float64)
    try:
        _expect_labels(submission, TRAINED, "Inputs (W as an nn.Parameter)", transform=as_parameter)
    except CheckFailed as err:
        raise CheckFailed(f"Inputs (W as an nn.Parameter, requires_grad=True): {err} Hint: stay in torch, or .detach() "
                          "before .numpy() (a model's W requires grad).") from None


# --------------------------------------------------------------------------- 04.aggregate_restarts


def _agg_case(seed: int, R: int, P: int, K: int, skew: bool, phases: tuple[int, ...] = (0, 1, 2)):
    gen = torch.Generator().manual_seed(seed)
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
    r, p = _axes(4, 5)
    _losses_of(submission, "n3m2_losses", *_outer(r, p), 4, "Shape (outer grid)")
    out = _losses_of(submission, "n3m2_losses", 1.0, 4.0 / 7.0, 4, "Shape (plain floats r = 1, p = 4/7)")
    expect(close(out, out.double().mean().expand(4), rtol=1e-4),
           f"Triple point: at r = 1, p = 4/7 all four candidates have the same loss, {4 / 7 / 3 - (4 / 7) ** 2 / 4:.6f}; "
           f"got {fmt(out, 6)}.")


@prop("n3m2_losses", points=1)
def test_n3m2_values(submission):
    r, p = _outer(*_axes())
    got = _losses_of(submission, "n3m2_losses", r, p, 4, "Values")
    want = theory.configuration_losses_n3m2(r, p)
    if close(got, want):
        return
    names = theory.PHASES_N3M2
    c = next(c for c in range(4) if not close(got[..., c], want[..., c]))
    expect(False, f"Values: candidate {c} ('{names[c]}', W ⊥ {list(theory.N3M2_NULL_DIRECTIONS[c])}): "
                  f"{show_difference(got[..., c], want[..., c])} (rows: r, columns: p).{_n3_component_diagnosis(got, r, p)}")
