"""Lesson 7's known mistakes: wrong implementations learners plausibly write, each with the hint that names it.

The checks diagnose with this table (a learner's output that matches a mistake's gets its hint), and the
generic proof (tests/test_lesson_proofs.py) grades every entry and requires it to lose points with its keyword
in the messages. Mistakes with ``compare=False`` are caught by a contract (shape, dtype, finite values,
requires_grad): the property that catches them names them in its own message.

The kinds of mistake (issue 24) that apply here:

* semantics the docstrings state: "the nearest level" against "the first level within tolerance", ``<`` against
  ``<=`` for "within tolerance", a hold of exactly ``min_hold`` snapshots (at the end of the run too), importance
  not broadcast over the attacked axis, ``|L' - L|`` (or ``max(L' - L, 0)``) counting an attack that lowers the
  loss as damage;
* edges: zero columns giving NaN, a zero-column guard so coarse that short columns count as zero.
"""

from __future__ import annotations

import numpy as np
import torch

from autograder.toolkit import Mistake, unit_columns
from supercourse import dynamics

__all__ = ["MISTAKES", "LEVELS", "TOLERANCE", "HOLD"]

_DTYPE = "the input's dtype"
_GRAD = "requires_grad"


# --------------------------------------------------------------------------- mistakes: 07.dimensionality_snapshots


def _guard(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    return torch.where(den > 1e-8, num / den.clamp_min(1e-8), torch.zeros_like(num))


def _dims(Ws: torch.Tensor, overlaps: torch.Tensor, numerator: torch.Tensor | None = None) -> torch.Tensor:
    num = Ws.square().sum(dim=-2) if numerator is None else numerator
    return _guard(num, overlaps.square().sum(-1))


def _snap_excluding_self(Ws):
    sq = (unit_columns(Ws).mT @ Ws).square()
    return _guard(Ws.square().sum(-2), sq.sum(-1) - sq.diagonal(dim1=-2, dim2=-1))


def _snap(Ws: torch.Tensor) -> torch.Tensor:
    """The right values (the checks' own copy, not the library's)."""
    return _dims(Ws, unit_columns(Ws).mT @ Ws)


def _snap_numpy(Ws):
    A = Ws.numpy()
    norms = np.linalg.norm(A, axis=-2, keepdims=True)
    hat = np.where(norms > 1e-8, A / np.where(norms > 1e-8, norms, 1), 0)
    den = np.square(np.swapaxes(hat, -1, -2) @ A).sum(-1)
    return torch.from_numpy(np.where(den > 1e-8, np.square(A).sum(-2) / np.where(den > 1e-8, den, 1), 0))


MISTAKES: dict[str, list[Mistake]] = {
    "dimensionality_snapshots": [
        Mistake("excluding_self", _snap_excluding_self, "includes j = i",
                "Your values match a denominator without feature i itself: the sum over j includes j = i, which adds ||W_i||^2."),
        Mistake("unnormalised", lambda Ws: _dims(Ws, Ws.mT @ Ws), "unit direction",
                "Your values match a denominator of (W_i . W_j)^2: project on the unit direction W_hat_i = W_i / ||W_i||, "
                "and keep W_j at its length."),
        Mistake("cosines", lambda Ws: _dims(Ws, unit_columns(Ws).mT @ unit_columns(Ws)), "both features",
                "Your values match a denominator of squared cosines (both features normalised): only W_i is normalised."),
        Mistake("not_squared_norm", lambda Ws: _dims(Ws, unit_columns(Ws).mT @ Ws, Ws.norm(dim=-2)), "squared norm",
                "Your values match a numerator of ||W_i||: the numerator is the squared norm ||W_i||^2."),
        Mistake("epsilon", lambda Ws: _dims(Ws, (Ws / (Ws.norm(dim=-2, keepdim=True) + 1e-3)).mT @ Ws), "epsilon",
                "Your values match W_i / (||W_i|| + epsilon) with a large epsilon, which distorts short features: guard "
                "only zero columns (torch.where on the norm)."),
        Mistake("coarse_zero_guard", lambda Ws: _dims(Ws, unit_columns(Ws, 1e-2).mT @ Ws), "short",
                "Your values match a guard that treats columns shorter than 0.01 as zero: only an exactly zero column "
                "is unlearned; a short column still has a direction and its own D_i (guard with a tiny threshold, "
                "such as norm > 1e-8)."),
        Mistake("nan_zero_columns", lambda Ws: Ws.square().sum(-2) / ((Ws / Ws.norm(dim=-2, keepdim=True)).mT @ Ws).square().sum(-1),
                "finite", compare=False),
        Mistake("last_snapshot", lambda Ws: _snap(Ws[-1:])[0], "shape", compare=False),
        Mistake("mean_over_snapshots", lambda Ws: _snap(Ws).mean(0), "shape", compare=False),
        Mistake("rows", lambda Ws: _dims(Ws.mT, unit_columns(Ws.mT).mT @ Ws.mT), "shape", compare=False),
        Mistake("flattened", lambda Ws: _snap(Ws).reshape(-1, Ws.shape[-1]), "shape", compare=False),
        Mistake("float32", lambda Ws: _snap(Ws.float()), _DTYPE, compare=False),
        Mistake("numpy", _snap_numpy, _GRAD, compare=False),
    ],
}


# --------------------------------------------------------------------------- mistakes: 07.find_jumps

LEVELS = _LV = tuple(float(v) for v in dynamics.LEVELS)
TOLERANCE = _TOL = float(dynamics.LEVEL_TOLERANCE)
HOLD = _HOLD = int(dynamics.MIN_HOLD)


def _labels(D: torch.Tensor, levels, tolerance, pick: str = "nearest", strict: bool = False) -> torch.Tensor:
    lv = torch.as_tensor(levels, dtype=torch.float64)
    dist = (D.double()[..., None] - lv).abs()
    on = dist < tolerance if strict else dist <= tolerance
    if pick == "first":  # the first level within tolerance, not the nearest
        first = on.to(torch.uint8).argmax(-1)
        return torch.where(on.any(-1), first, torch.full_like(first, -1))
    best = dist.min(-1)
    ok = best.values < tolerance if strict else best.values <= tolerance
    return torch.where(ok, best.indices, torch.full_like(best.indices, -1))


def _jumps_generic(D, steps, levels=_LV, tolerance=_TOL, min_hold=_HOLD, *,
                   hold=None, date="first", same=False, order="time", value="level", keep_noise=False,
                   use_tol=True, swap=False, instances=None, pick="nearest", strict=False, extra_hold=0,
                   last_window=True):
    """The reference algorithm with one switch per known mistake."""
    hold = (min_hold if hold is None else hold) + extra_hold
    tol = tolerance if use_tol else float("inf")
    lab = _labels(D, levels, tol, pick, strict)
    steps = [int(s) for s in torch.as_tensor(steps).tolist()]
    T, K, N = lab.shape
    out = []
    for k in range(K if instances is None else instances):
        for i in range(N):
            current = -1
            for t in range(T - hold + (1 if last_window else 0)):
                window = lab[t : t + hold, k, i]
                if window[0] < 0 or not bool((window == window[0]).all()):
                    continue
                level = int(window[0])
                if current >= 0 and (level != current or (same and t > 0 and lab[t - 1, k, i] != level)):
                    when = {"first": steps[t], "index": t, "end": steps[t + hold - 1]}[date]
                    a, b = (float(levels[current]), float(levels[level])) if value == "level" else (current, level)
                    if swap:
                        a, b = b, a
                    out.append((when, k, i, a, b))
                current = level
    if order == "time":
        out.sort(key=lambda j: (j[0], j[1], j[2]))
    return out


def _fj(**switches):
    def impl(D, steps, levels=_LV, tolerance=_TOL, min_hold=_HOLD):
        return _jumps_generic(D, steps, levels, tolerance, min_hold, **switches)
    return impl


def _fj_default_levels(D, steps, levels=_LV, tolerance=_TOL, min_hold=_HOLD):
    return _jumps_generic(D, steps, _LV, tolerance, min_hold)


def _fj_default_tolerance(D, steps, levels=_LV, tolerance=_TOL, min_hold=_HOLD):
    return _jumps_generic(D, steps, levels, _TOL, min_hold)


def _fj_consecutive(D, steps, levels=_LV, tolerance=_TOL, min_hold=_HOLD):
    """Compares consecutive labelled snapshots, no holding at all."""
    lab = _labels(D, levels, tolerance)
    steps = [int(s) for s in torch.as_tensor(steps).tolist()]
    out = []
    for k in range(lab.shape[1]):
        for i in range(lab.shape[2]):
            prev = -1
            for t in range(lab.shape[0]):
                cur = int(lab[t, k, i])
                if cur < 0:
                    continue
                if prev >= 0 and cur != prev:
                    out.append((steps[t], k, i, float(levels[prev]), float(levels[cur])))
                prev = cur
    return sorted(out, key=lambda j: (j[0], j[1], j[2]))


def _fj_held_start_only(D, steps, levels=_LV, tolerance=_TOL, min_hold=_HOLD):
    """Only the first held level and the last one: one jump at most per feature."""
    full = _jumps_generic(D, steps, levels, tolerance, min_hold, order="feature")
    first: dict[tuple[int, int], tuple] = {}
    for j in full:
        key = (j[1], j[2])
        first[key] = (j[0], j[1], j[2], first[key][3] if key in first else j[3], j[4])
    out = [j for j in first.values() if j[3] != j[4]]
    return sorted(out, key=lambda j: (j[0], j[1], j[2]))


MISTAKES["find_jumps"] = [
    Mistake("no_hold", _fj(hold=1), "min_hold",
            "Your jumps match a version that counts every snapshot on a level, however briefly: a feature holds a level "
            "only when it stays on it for min_hold consecutive snapshots (transit through a level is not a jump)."),
    Mistake("consecutive", _fj_consecutive, "min_hold",
            "Your jumps match a comparison of consecutive snapshots on levels: a feature holds a level only when it stays "
            "on it for min_hold consecutive snapshots (transit through a level is not a jump)."),
    Mistake("index", _fj(date="index"), "training step",
            "Your jumps are dated by the snapshot's index: report the training step, steps[t]."),
    Mistake("end_of_hold", _fj(date="end"), "first snapshot of the new hold",
            "Your jumps are dated at the last snapshot of the new level's first min_hold window: date them at the first "
            "snapshot of the new hold."),
    Mistake("no_tolerance", _fj(use_tol=False), "tolerance",
            "Your jumps match a version that snaps every value to its nearest level: a value is on a level only within "
            "`tolerance` of it (values in between are in transit)."),
    Mistake("default_levels", _fj_default_levels, "levels argument",
            "Your jumps match a version that ignores the levels argument: use the `levels` you are given."),
    Mistake("default_tolerance", _fj_default_tolerance, "tolerance argument",
            "Your jumps match a version that ignores the tolerance argument: use the `tolerance` you are given."),
    Mistake("default_hold", _fj(hold=_HOLD), "min_hold argument",
            "Your jumps match a version that ignores the min_hold argument: use the `min_hold` you are given."),
    Mistake("same_level", _fj(same=True), "same level",
            "Your jumps include a feature coming back to the same level after leaving it: a jump is a change to a "
            "*different* level."),
    Mistake("unsorted", _fj(order="feature"), "sorted",
            "Your jumps are right but not sorted: return them sorted by (step, instance, feature)."),
    Mistake("indices", _fj(value="index"), "values of the levels",
            "Your start and end are indices into `levels`: report the values of the levels (e.g. 0.5, not 3)."),
    Mistake("swapped", _fj(swap=True), "start",
            "Your start and end are swapped: each jump is (step, instance, feature, start level, end level)."),
    Mistake("first_instance", _fj(instances=1), "every instance",
            "Your jumps cover only instance 0: look at every instance (dim 1 of D)."),
    Mistake("first_level_within_tolerance", _fj(pick="first"), "nearest",
            "Your jumps match labelling a value with the first level within `tolerance`: when two levels are within "
            "tolerance of a value, it sits on the nearest one."),
    Mistake("strict_tolerance", _fj(strict=True), "exactly `tolerance`",
            "Your jumps match |D - level| < tolerance: a value exactly `tolerance` away from a level sits on it "
            "(within means <=)."),
    Mistake("misses_the_last_window", _fj(last_window=False), "last snapshot",
            "Your jumps miss a hold that ends at the last snapshot: the windows start at t = 0, ..., "
            "n_snapshots - min_hold (range(n_snapshots - min_hold + 1))."),
    Mistake("longer_hold", _fj(extra_hold=1), "exactly min_hold",
            "Your jumps match holds of more than min_hold snapshots: a level held for exactly min_hold snapshots "
            "(t, ..., t + min_hold - 1) is a hold."),
    Mistake("one_jump_per_feature", _fj_held_start_only, "every change",
            "Your jumps match one jump per feature, from its first held level to its last: report every change of held level."),
]


# --------------------------------------------------------------------------- mistakes: 07.attack_perturbations


def _gram_rows(W: torch.Tensor, guard: float = 1e-12) -> torch.Tensor:
    G = W.mT @ W
    n = G.norm(dim=-1, keepdim=True)
    return torch.where(n > guard, G / n.clamp_min(1e-30), torch.zeros_like(G))


def _eps(x: torch.Tensor, fraction: float) -> torch.Tensor:
    return fraction * x.norm(dim=-1).mean(0)


def _ap(direction, eps=_eps):
    def impl(W, x, fraction=0.1):
        return eps(x, fraction)[:, None, None] * direction(W)
    return impl


def _ap_numpy(W, x, fraction=0.1):
    G = np.einsum("kmi,kmj->kij", W.numpy(), W.numpy())
    n = np.linalg.norm(G, axis=-1, keepdims=True)
    eps = fraction * np.linalg.norm(x.numpy(), axis=-1).mean(0)
    return torch.from_numpy(eps[:, None, None] * np.where(n > 0, G / np.where(n > 0, n, 1), 0))


MISTAKES["attack_perturbations"] = [
    Mistake("unnormalised", _ap(lambda W: W.mT @ W), "normalise",
            "Your perturbations are rows of W^T W scaled by eps without being normalised first: divide each row by its "
            "norm, so every perturbation has norm eps."),
    Mistake("own_axis", _ap(lambda W: torch.eye(W.shape[2], dtype=W.dtype).expand(W.shape[0], -1, -1)), "(W^T W)_i",
            "Your attack on feature i pushes along feature i's own axis e_i: the optimal attack is along (W^T W)_i, which "
            "also uses every feature that shares feature i's direction."),
    Mistake("cosines", _ap(lambda W: _gram_rows(unit_columns(W))), "W^T W",
            "Your directions are rows of the cosine matrix W_hat^T W_hat: use W^T W itself (norms included), then normalise each row."),
    Mistake("negative", _ap(lambda W: -_gram_rows(W)), "raises",
            "Your perturbations point the wrong way: the attack raises feature i's pre-activation, +(W^T W)_i."),
    Mistake("batch_norm", _ap(_gram_rows, lambda x, f: f * x.norm(dim=(0, 2))), "average input norm",
            "Your eps uses the norm of the whole batch: it is fraction times the average input norm, mean over the batch "
            "of ||x_b||."),
    Mistake("rms", _ap(_gram_rows, lambda x, f: f * x.square().sum(-1).mean(0).sqrt()), "mean of the norms",
            "Your eps uses the root mean square input norm sqrt(E ||x||^2): use the mean of the norms, E ||x||."),
    Mistake("one_eps", _ap(_gram_rows, lambda x, f: (f * x.norm(dim=-1).mean()).expand(x.shape[1])), "each instance",
            "Your eps is one number for all instances: each instance's attack is scaled by its own average input norm."),
    Mistake("entry_norm", _ap(_gram_rows, lambda x, f: f * x.abs().mean(dim=(0, 2))), "average input norm",
            "Your eps uses the mean absolute entry of x: it is fraction times the average input norm, mean over the batch "
            "of ||x_b|| (the L2 norm over the features)."),
    Mistake("fixed_fraction", lambda W, x, fraction=0.1: _ap(_gram_rows)(W, x, 0.1), "fraction argument",
            "Your perturbations ignore the fraction argument (0.1 is used): scale by the fraction you are given."),
    Mistake("max_norm", _ap(_gram_rows, lambda x, f: f * x.norm(dim=-1).amax(0)), "average input norm",
            "Your eps uses the largest input norm: it is fraction times the average input norm, mean over the batch."),
    Mistake("coarse_zero_guard", _ap(lambda W: _gram_rows(W, 1e-2)), "short",
            "Your perturbations match a guard that treats rows of W^T W shorter than 0.01 as zero: only an unlearned "
            "feature (a zero row) gets no attack; a short feature's row still has a direction (guard with a tiny "
            "threshold such as 1e-12)."),
    Mistake("nan_zero_rows", _ap(lambda W: (W.mT @ W) / (W.mT @ W).norm(dim=-1, keepdim=True)), "finite", compare=False),
    Mistake("float32", lambda W, x, fraction=0.1: _ap(_gram_rows)(W.float(), x.float(), fraction), _DTYPE,
            compare=False),
    Mistake("numpy", _ap_numpy, _GRAD, compare=False),
]


# --------------------------------------------------------------------------- mistakes: 07.vulnerability


def _vul(W, b, x, importance=1.0, fraction=0.1, *, target="x", relu=True, reduce="max", bias=True, diff=True,
         mean_features=True, use_importance=True, fixed_fraction=False, direction=None, sign=1.0, broadcast=True,
         damage="signed"):
    k, m, n = W.shape
    raw = torch.as_tensor(importance, dtype=W.dtype)
    imp = raw.expand(k, n) if use_importance else torch.ones(k, n, dtype=W.dtype)
    frac = 0.1 if fixed_fraction else fraction
    G = W.mT @ W
    dirs = _gram_rows(W) if direction is None else direction(W)
    delta = sign * _eps(x, frac)[:, None, None] * dirs  # (k, n, n)
    bb = b if bias else torch.zeros_like(b)

    def out(inp):
        if inp.dim() == 4:  # (batch, k, attacked, n)
            pre = torch.einsum("kij,bkaj->bkai", G, inp) + bb[:, None, :]
        else:
            pre = torch.einsum("kij,bkj->bki", G, inp) + bb
        return torch.relu(pre) if relu else pre

    clean_out = out(x)
    tgt = x if target == "x" else clean_out
    xa = x[:, :, None, :] + delta
    per_clean = imp * (tgt - clean_out) ** 2  # (batch, k, n)
    # not broadcast: a (k, n) importance multiplied as it is, its instance axis lined up with the attacked axis
    imp_attacked = imp[:, None, :] if broadcast or raw.dim() < 2 else raw
    per = imp_attacked * (tgt[:, :, None, :] - out(xa)) ** 2  # (batch, k, attacked, n)
    if mean_features:
        clean, attacked = per_clean.mean(dim=(0, 2)), per.mean(dim=(0, 3))
    else:
        clean, attacked = per_clean.sum(2).mean(0), per.sum(3).mean(0)
    inc = attacked - clean[:, None] if diff else attacked
    inc = {"signed": inc, "abs": inc.abs(), "clamped": inc.clamp_min(0)}[damage]
    return {"max": inc.max(-1).values, "mean": inc.mean(-1), "sum": inc.sum(-1), "first": inc[:, 0],
            "min": inc.min(-1).values}[reduce]


def _v(**switches):
    def impl(W, b, x, importance=1.0, fraction=0.1):
        return _vul(W, b, x, importance, fraction, **switches)
    return impl


MISTAKES["vulnerability"] = [
    Mistake("mean_over_features", _v(reduce="mean"), "worst",
            "Your vulnerability is the mean over the attacked features: take the worst one, the largest L'_i - L."),
    Mistake("sum_over_features", _v(reduce="sum"), "worst",
            "Your vulnerability sums over the attacked features: take the worst one, the largest L'_i - L."),
    Mistake("first_feature", _v(reduce="first"), "worst",
            "Your vulnerability is feature 0's attack only: attack every feature and take the worst one."),
    Mistake("attacked_loss", _v(diff=False), "L' - L",
            "You returned the attacked loss L': the vulnerability is the increase, L' - L."),
    Mistake("target_clean_output", _v(target="model"), "clean input",
            "Your attacked loss compares with the model's clean output: the loss compares with the clean input x "
            "(the target the model was trained to reconstruct)."),
    Mistake("no_relu", _v(relu=False), "ReLU",
            "Your model has no ReLU: the outputs are ReLU(W^T W x + b)."),
    Mistake("no_bias", _v(bias=False), "bias",
            "Your outputs leave out the bias b: they are ReLU(W^T W x + b)."),
    Mistake("no_importance", _v(use_importance=False), "importance",
            "Your loss ignores `importance`: weight each feature's squared error by I_i."),
    Mistake("sum_features", _v(mean_features=False), "mean over",
            "Your loss sums the squared errors over the features: the course's loss is the mean over batch and features."),
    Mistake("fixed_fraction", _v(fixed_fraction=True), "fraction argument",
            "Your attack ignores the fraction argument (0.1 is used): scale the attack by the fraction you are given."),
    Mistake("own_axis", _v(direction=lambda W: torch.eye(W.shape[2], dtype=W.dtype).expand(W.shape[0], -1, -1)),
            "(W^T W)_i",
            "Your attacks push along each feature's own axis e_i: the optimal attack on feature i is along (W^T W)_i."),
    Mistake("unnormalised", _v(direction=lambda W: W.mT @ W), "normalise",
            "Your attacks are rows of W^T W scaled by eps without being normalised: every attack has norm eps."),
    Mistake("importance_not_broadcast", _v(broadcast=False), "attacked axis",
            "Your loss multiplies a per-instance importance of shape (n_instances, n_features) into the attacked "
            "errors (batch, n_instances, n_attacked, n_features) without a new axis, so instance k's importance is "
            "used for attacked feature k: broadcast it over the attacked axis (importance[:, None, :])."),
    Mistake("absolute_increase", _v(damage="abs"), "does no damage",
            "Your vulnerability matches max |L'_i - L|: an attack that lowers the loss does no damage; take the "
            "largest signed increase L'_i - L (negative when every attack lowers the loss)."),
    Mistake("clamped_at_zero", _v(damage="clamped"), "keep its sign",
            "Your vulnerability matches max(L'_i - L, 0): when every attack lowers the loss the worst one's increase "
            "is negative; keep its sign."),
    Mistake("nan_zero_rows", _v(direction=lambda W: (W.mT @ W) / (W.mT @ W).norm(dim=-1, keepdim=True)), "finite",
            compare=False),
    Mistake("negative", _v(sign=-1.0), "raises",
            "Your attacks point the wrong way: the attack on feature i raises its pre-activation, +(W^T W)_i."),
]

