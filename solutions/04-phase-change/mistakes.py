"""Lesson 4's known mistakes: wrong implementations learners plausibly write, each with the hint that names it.

The checks (``checks.py``) diagnose with this table; the generic lesson proof (tests/test_lesson_proofs.py)
grades every entry and requires that it loses points with its keyword in the messages. Each mistake is the
solution with one part changed (the building blocks below take that part as an argument).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from autograder.toolkit import Mistake


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
    if space == "open":  # n + 1 points, the last dropped
        return torch.logspace(math.log10(lo), math.log10(hi), n + 1)[:-1]
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


def _aggregate_slice_from_the_end(labels, losses, drop_worst=1):
    """``[..., :-drop_worst]``: right for drop_worst >= 1, empty (NaN fractions) for drop_worst = 0."""
    keep = losses.argsort(dim=-1)[..., :-drop_worst]
    one_hot = torch.nn.functional.one_hot(labels.gather(-1, keep).long(), num_classes=3)
    return one_hot.double().mean(dim=-2)


def _classify_squeezed(W, threshold=0.5):
    """``W.squeeze()`` first: right for many instances, wrong for one (the instance dimension goes too)."""
    w = W.detach().squeeze()
    w0, w1 = w[..., 0], w[..., 1]
    on0, on1 = w0.abs() > threshold, w1.abs() > threshold
    labels = torch.zeros(w.shape[0], dtype=torch.long)
    labels[on1 & ~on0] = 1
    labels[on0 & on1 & (w0 * w1 < 0)] = 2
    return labels


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
        Mistake("bias_square_missing", lambda r, p: _losses(r, p, dropped=lambda p: p / 3 - p**2 / 2), "b^2",
                "Your dropped-feature losses are p/3 - p^2/2: E[(x - b)^2] = E[x^2] - 2 b E[x] + b^2, and with b = p/2 the "
                "b^2 = p^2/4 term brings it back to p/3 - p^2/4."),
        Mistake("mean_over_features", lambda r, p: _losses(r, p) / 2, "summed over the two features",
                "Your losses are half the expected ones: the loss is summed over the two features (weighted by their "
                "importances), not averaged."),
        Mistake("square_of_the_mean", lambda r, p: _losses(r, p, pair=lambda p: p**2 / 9), "E[min(U, V)]^2",
                "Your superposition loss is (1 + r) p^2/9, which uses E[min(U, V)]^2 = 1/9: the expected squared error "
                "is E[min(U, V)^2] = 1/6."),
        Mistake("outer_inside", lambda r, p: _losses(torch.as_tensor(r, dtype=torch.float64).reshape(-1, 1),
                torch.as_tensor(p, dtype=torch.float64).reshape(1, -1)), "pointwise", compare=False),
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
        Mistake("no_outer_grid", lambda relative_importance, density: _losses(relative_importance, density).argmin(-1),
                "outer grid", compare=False),
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
        Mistake("ranges_swapped", lambda n_importance, n_density, n_restarts, importance_range=(0.1, 10.0),
                density_range=(0.01, 1.0): _grid(n_importance, n_density, n_restarts, density_range, importance_range),
                "range arguments", "Your axes use importance_range for the densities and density_range for the "
                "importances: give each of the range arguments to its own axis."),
        Mistake("end_excluded", lambda n_importance, n_density, n_restarts, importance_range=(0.1, 10.0),
                density_range=(0.01, 1.0): _grid(n_importance, n_density, n_restarts, importance_range, density_range,
                space="open"), "ends included", "Your axes stop one step short of the high end: the axes have both "
                "ends included (torch.logspace(log10(low), log10(high), n), not n + 1 points with the last dropped)."),
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
        Mistake("squared", lambda W, threshold=0.5: _classify(W, threshold, on=lambda w, t: w.square() > t),
                "squared", "Your labels match comparing the squared weight W_i^2 with the threshold: a feature is "
                "represented when |W_i| itself is above it."),
        Mistake("exactly_antipodal", lambda W, threshold=0.5: _classify(W, threshold, opposite=lambda a, b: (
                a + b).abs() < 0.1), "lengths need not match",
                "Your labels ask for W_1 = -W_0 (equal lengths): superposition needs both represented with opposite "
                "signs; their lengths need not match."),
        Mistake("labels_swapped", lambda W, threshold=0.5: (lambda L: torch.where(L == 2, 2, 1 - L))(_classify(W, threshold)),
                "label 1 is dedicated", "Your labels 0 and 1 are swapped: label 0 is not represented, label 1 is "
                "dedicated (only the extra feature represented)."),
        Mistake("squeezed", _classify_squeezed, "squeeze", compare=False),
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
        Mistake("slice_minus_zero", _aggregate_slice_from_the_end, "[..., :-0]", compare=False),
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
        Mistake("bias_square_missing", lambda r, p: _n3(r, p, dropped=lambda p: p / 3 - p**2 / 2), "b^2",
                "A dropped feature costs E[(x - b)^2] = p/3 - p b + b^2, so with b = p/2 it is p/3 - p^2/4: keep the "
                "b^2 term."),
        Mistake("square_of_the_mean", lambda r, p: _n3(r, p, pair=lambda p: p**2 / 9), "E[min(U, V)]^2",
                "An antipodal pair costs E[min(U, V)^2] = 1/6 per unit of importance when both are on, not "
                "E[min(U, V)]^2 = 1/9."),
    ],
}
"""Every exercise's known mistakes."""
