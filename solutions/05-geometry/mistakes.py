"""Lesson 5's known mistakes: wrong implementations learners plausibly write, each with the hint that names it.

The checks (``checks.py``) diagnose with this table; the generic lesson proof (tests/test_lesson_proofs.py)
grades every entry and requires that it loses points with its keyword in the messages.
"""

from __future__ import annotations

import numpy as np
import torch

from autograder.toolkit import Mistake, unit_columns
from supercourse import geometry


def _guarded(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    return torch.where(den > 1e-12, num / den.clamp_min(1e-12), torch.zeros_like(num))


def _dims(W: torch.Tensor, overlaps: torch.Tensor, numerator: torch.Tensor) -> torch.Tensor:
    return _guarded(numerator, overlaps.square().sum(-1))


def _components(adjacent: torch.Tensor, nodes: list[int]) -> list[tuple[int, ...]]:
    seen, out = set(), []
    for start in nodes:
        if start in seen:
            continue
        seen.add(start)
        stack, group = [start], []
        while stack:
            i = stack.pop()
            group.append(i)
            for j in nodes:
                if j not in seen and bool(adjacent[i, j]):
                    seen.add(j)
                    stack.append(j)
        out.append(tuple(sorted(group)))
    return sorted(out)


def _factors(W, norm_threshold=0.5, overlap=0.1, *, similarity=None, keep=None, link=None):
    """Factors by a configurable rule: ``similarity(w) -> (n, n)``, ``keep(norms) -> mask``, ``link(s) -> bool``."""
    out = []
    for w in W.detach():
        norms = w.norm(dim=0)
        mask = keep(norms) if keep else norms > norm_threshold
        nodes = [i for i in range(w.shape[1]) if bool(mask[i])]
        s = similarity(w) if similarity else (w / norms.clamp_min(1e-12)).T @ (w / norms.clamp_min(1e-12))
        out.append(_components(link(s) if link else s.abs() > overlap, nodes))
    return out


def _factors_direct_only(W, norm_threshold=0.5, overlap=0.1):
    out = []
    for w in W.detach():
        norms = w.norm(dim=0)
        d = w / norms.clamp_min(1e-12)
        cos = (d.T @ d).abs()
        left = [i for i in range(w.shape[1]) if norms[i] > norm_threshold]
        factors = []
        while left:
            i = left[0]
            group = [j for j in left if j == i or cos[i, j] > overlap]
            factors.append(tuple(group))
            left = [j for j in left if j not in group]
        out.append(sorted(factors))
    return out


def _factors_unsorted(W, norm_threshold=0.5, overlap=0.1):
    """Factors in the order a search from the last feature finds them, members in visiting order."""
    out = []
    for w in W.detach():
        norms = w.norm(dim=0)
        d = w / norms.clamp_min(1e-12)
        cos = (d.T @ d).abs()
        left = [i for i in range(w.shape[1]) if norms[i] > norm_threshold][::-1]
        factors, seen = [], set()
        for start in left:
            if start in seen:
                continue
            seen.add(start)
            stack, group = [start], []
            while stack:
                i = stack.pop()
                group.append(i)
                for j in left:
                    if j not in seen and cos[i, j] > overlap:
                        seen.add(j)
                        stack.append(j)
            factors.append(tuple(group))
        out.append(factors)
    return out


def _names(W, factors, dimension, name=geometry.polytope_name):
    return [[name(len(f), dimension(w, list(f))) for f in inst] for w, inst in zip(W.detach(), factors)]


def _sv_dim(w: torch.Tensor, f: list[int], rel: float = 0.1) -> int:
    sv = torch.linalg.svdvals(w[:, f])
    return int((sv > rel * sv[0]).sum())


_BY_K = {1: "dedicated dimension", 2: "digon", 3: "triangle", 4: "tetrahedron", 5: "pentagon", 6: "hexagon", 8: "square antiprism"}
_DTYPE = "the input's dtype"
_GRAD = "requires_grad"


def _numpy_dstar(W):
    a = W.numpy()
    return torch.from_numpy(a.shape[1] / (a**2).sum(axis=(1, 2)))


def _numpy_dims(W):
    a = W.numpy()
    n = np.linalg.norm(a, axis=1, keepdims=True)
    u = np.where(n > 1e-8, a / np.maximum(n, 1e-8), 0.0)
    den = (np.einsum("kmi,kmj->kij", u, a) ** 2).sum(-1)
    return torch.from_numpy(np.where(den > 1e-12, (a**2).sum(1) / np.maximum(den, 1e-12), 0.0)).to(W.dtype)


def _numpy_names(W, factors):
    out = []
    for w, inst in zip(W.numpy(), factors):
        row = []
        for f in inst:
            sv = np.linalg.svd(w[:, list(f)], compute_uv=False)
            row.append(geometry.polytope_name(len(f), int((sv > 0.1 * sv[0]).sum())))
        out.append(row)
    return out


MISTAKES: dict[str, list[Mistake]] = {
    "dimensions_per_feature": [
        Mistake("inverted", lambda W: W.square().sum(dim=(1, 2)) / W.shape[1], "features per dimension",
                "You computed ||W||_F^2 / m, features per dimension: D* is its inverse, m / ||W||_F^2."),
        Mistake("not_squared", lambda W: W.shape[1] / W.square().sum(dim=(1, 2)).sqrt(), "its square",
                "You divided by ||W||_F: divide by its square, ||W||_F^2, the sum of the squared entries."),
        Mistake("n_features", lambda W: W.shape[2] / W.square().sum(dim=(1, 2)), "n (n_features)",
                "You used n (n_features) in the numerator: D* divides m (n_hidden, dim 1 of W) by ||W||_F^2."),
        Mistake("mean", lambda W: W.shape[1] / W.square().mean(dim=(1, 2)), "their sum",
                "You divided by the mean of the squared entries: ||W||_F^2 is their sum."),
        Mistake("column_norms", lambda W: W.shape[1] / W.norm(dim=1).sum(-1), "column norms",
                "You divided by the sum of the column norms ||W_i||: ||W||_F^2 is the sum of their squares."),
        Mistake("epsilon", lambda W: W.shape[1] / (W.square().sum(dim=(1, 2)) + 1e-3), "epsilon",
                "An epsilon added to ||W||_F^2 changes short weights (norms below 0.1): leave it out."),
        Mistake("all_instances", lambda W: W.shape[1] / W.square().sum(), "one value per instance", compare=False),
        Mistake("keepdim", lambda W: W.shape[1] / W.square().sum(dim=(1, 2), keepdim=True), "one value per instance",
                compare=False),
        Mistake("float32", lambda W: W.shape[1] / W.float().square().sum(dim=(1, 2)), _DTYPE, compare=False),
        Mistake("numpy", _numpy_dstar, _GRAD, compare=False),
        Mistake("n_instances", lambda W: W.shape[0] / W.square().sum(dim=(1, 2)), "n_instances",
                "You used n_instances (dim 0 of W) in the numerator: D* divides m = n_hidden (dim 1) by ||W||_F^2."),
        Mistake("squeezed", lambda W: (W.shape[1] / W.square().sum(dim=(1, 2), keepdim=True)).squeeze(), "squeeze",
                compare=False),
    ],
    "feature_dimensionality": [
        Mistake("excluding_self", lambda W: _guarded(W.square().sum(1), ((unit_columns(W).mT @ W).square()
                * (1 - torch.eye(W.shape[-1], dtype=W.dtype))).sum(-1)), "includes j = i",
                "Your values match a denominator without j = i: the sum over j includes j = i, which contributes ||W_i||^2."),
        Mistake("dot_products", lambda W: _dims(W, W.mT @ W, W.square().sum(1)), "unit",
                "Your values match W_i . W_j in the denominator: project the other features on the *unit* direction "
                "W_hat_i = W_i / ||W_i||, and keep W_j at its length."),
        Mistake("cosines", lambda W: _dims(W, unit_columns(W).mT @ unit_columns(W), W.square().sum(1)), "normalised both",
                "Your values match cosines in the denominator: you normalised both features; only W_i is normalised, "
                "W_j keeps its length."),
        Mistake("numerator_not_squared", lambda W: _dims(W, unit_columns(W).mT @ W, W.norm(dim=1)), "squared norm",
                "Your values match ||W_i|| in the numerator: it is the squared norm ||W_i||^2."),
        Mistake("inverted", lambda W: _guarded((unit_columns(W).mT @ W).square().sum(-1), W.square().sum(1)), "inverted",
                "Your values are D_i inverted: ||W_i||^2 is the numerator, the sum of squared overlaps the denominator."),
        Mistake("epsilon", lambda W: W.square().sum(1) / ((unit_columns(W).mT @ W).square().sum(-1) + 1e-3), "epsilon",
                "Your values match a denominator plus an epsilon of 1e-3, which changes short features (norms below "
                "0.1): guard only the zero columns (torch.where)."),
        Mistake("nan_zero_columns", lambda W: W.square().sum(1) / ((W / W.norm(dim=1, keepdim=True)).mT @ W).square().sum(-1),
                "zero column", compare=False),
        Mistake("rows", lambda W: _guarded(W.square().sum(2), ((W / W.norm(dim=2, keepdim=True).clamp_min(1e-12)) @ W.mT)
                .square().sum(-1)), "dim 1", compare=False),
        Mistake("float32", lambda W: metrics_free_dims(W.float()), _DTYPE, compare=False),
        Mistake("numpy", _numpy_dims, _GRAD, compare=False),
        Mistake("summed_over_i", lambda W: _guarded(W.square().sum(1), (unit_columns(W).mT @ W).square().sum(-2)), "over j",
                "Your values match a denominator summed over i (dim -2) instead of over j: entry [k, i, j] of "
                "W_hat^T W is W_hat_i . W_j, and feature i's denominator sums its row, over j (the last dim)."),
        Mistake("coarse_guard", lambda W: (lambda n: _guarded(torch.where(n.squeeze(1) > 1e-2, W.square().sum(1), 0.0),
                (torch.where(n > 1e-2, W / n.clamp_min(1e-2), torch.zeros_like(W)).mT @ W).square().sum(-1)))(
                W.norm(dim=1, keepdim=True)), "guard",
                "Your values are 0 for short but non-zero features (norms below 0.01): a zero-column guard as coarse "
                "as norm > 0.01 treats them as unlearned; D_i does not depend on the scale, guard only columns that are "
                "(almost exactly) zero, e.g. norm > 1e-8."),
    ],
    "tegum_factors": [
        Mistake("without_abs", lambda W, norm_threshold=0.5, overlap=0.1: _factors(W, norm_threshold, overlap,
                link=lambda s: s > overlap), "absolute value",
                "Your factors match linking features only when cos > overlap: antipodal features have cosine -1, "
                "compare the absolute value |cos| with the threshold."),
        Mistake("dot_products", lambda W, norm_threshold=0.5, overlap=0.1: _factors(W, norm_threshold, overlap,
                similarity=lambda w: w.T @ w), "dot products",
                "Your factors match linking features by their dot products W_i . W_j: compare the cosine "
                "W_i . W_j / (||W_i|| ||W_j||) with overlap, so that short and long features are judged alike."),
        Mistake("unlearned_included", lambda W, norm_threshold=0.5, overlap=0.1: _factors(W, norm_threshold, overlap,
                keep=lambda n: n > 1e-6), "not represented",
                "Your factors include features with ||W_i|| <= norm_threshold: they are not represented and belong "
                "to no factor (and must not bridge two factors)."),
        Mistake("direct_neighbours_only", _factors_direct_only, "connected component",
                "Your factors follow overlaps one step only: a factor is a connected component of the overlap graph, "
                "follow overlaps transitively (e.g. a depth-first search)."),
        Mistake("fixed_norm_threshold", lambda W, norm_threshold=0.5, overlap=0.1: _factors(W, 0.5, overlap),
                "norm_threshold argument", "Your factors match norm_threshold=0.5 whatever is passed: use the "
                "norm_threshold argument."),
        Mistake("fixed_overlap", lambda W, norm_threshold=0.5, overlap=0.1: _factors(W, norm_threshold, 0.1),
                "overlap argument", "Your factors match overlap=0.1 whatever is passed: use the overlap argument."),
        Mistake("at_the_threshold", lambda W, norm_threshold=0.5, overlap=0.1: _factors(W, norm_threshold, overlap,
                keep=lambda n: n >= norm_threshold), "exactly at norm_threshold",
                "Your factors include a feature whose norm is exactly at norm_threshold: represented means "
                "||W_i|| > norm_threshold, strictly."),
        Mistake("unsorted", _factors_unsorted, "increasing order", compare=False),
        Mistake("singletons_dropped", lambda W, norm_threshold=0.5, overlap=0.1: [
                [f for f in inst if len(f) > 1] for inst in _factors(W, norm_threshold, overlap)], "factor of its own",
                "Your factors leave out represented features that overlap nothing: such a feature is a factor of its "
                "own, a 1-tuple (i,)."),
        Mistake("hidden_dimensions", lambda W, norm_threshold=0.5, overlap=0.1: _factors(W, norm_threshold, overlap,
                similarity=lambda w: (w.abs() > 1e-3).double().T @ (w.abs() > 1e-3).double(), link=lambda s: s > 0),
                "directions", "Your factors match grouping features that use the same hidden dimensions: group by "
                "the overlap of their directions, which does not depend on the basis."),
        Mistake("squared_cosines", lambda W, norm_threshold=0.5, overlap=0.1: _factors(W, norm_threshold, overlap,
                link=lambda s: s.square() > overlap), "squared cosine",
                "Your factors match comparing the squared cosine cos^2 with overlap: compare |cos(W_i, W_j)| itself."),
        Mistake("squared_norms", lambda W, norm_threshold=0.5, overlap=0.1: _factors(W, norm_threshold, overlap,
                keep=lambda n: n.square() > norm_threshold), "squared norm",
                "Your factors match comparing the squared norm ||W_i||^2 with norm_threshold: a feature is represented "
                "when its norm ||W_i|| itself is above it."),
        Mistake("first_instance_only", lambda W, norm_threshold=0.5, overlap=0.1: _factors(W[:1], norm_threshold, overlap),
                "one entry per instance", compare=False),
    ],
    "name_polytopes": [
        Mistake("eigenvalues", lambda W, factors: _names(W, factors, lambda w, f: int(
                (torch.linalg.eigvalsh(w[:, f].T @ w[:, f]) > 0.1 * torch.linalg.eigvalsh(w[:, f].T @ w[:, f]).max()).sum())),
                "singular values, not", "Your names match eigenvalues of W^T W above 10% of the largest: those are "
                "the squared singular values; compare singular values, not their squares."),
        Mistake("by_k_alone", lambda W, factors: [[_BY_K.get(len(f), f"{len(f)} features") for f in inst] for inst in factors],
                "dimension d", "Your names match naming by the number of features k alone: a square and a "
                "tetrahedron both have k = 4, the name depends on the dimension d the factor spans too."),
        Mistake("exact_rank", lambda W, factors: _names(W, factors, lambda w, f: int(torch.linalg.matrix_rank(w[:, f]))),
                "above 10% of the largest", "Your names match the exact rank (torch.linalg.matrix_rank): with noise "
                "every factor has full rank, count the singular values above 10% of the largest."),
        Mistake("whole_instance", lambda W, factors: _names(W, factors, lambda w, f: _sv_dim(w, list(range(w.shape[1])))),
                "its own columns", "Your names match the rank of the whole instance: each factor's dimension is "
                "the rank of its own columns W[k][:, factor]."),
        Mistake("simplices", lambda W, factors: _names(W, factors, lambda w, f: max(1, len(f) - 1)), "d = k - 1",
                "Your names match assuming every factor is a simplex, d = k - 1: measure d from the singular values."),
        Mistake("absolute_threshold", lambda W, factors: _names(W, factors, lambda w, f: int(
                (torch.linalg.svdvals(w[:, f]) > 0.1).sum())), "of the largest",
                "Your names match singular values compared with 0.1 itself: compare with 10% of the largest singular "
                "value, so that short features are measured alike."),
        Mistake("nonzero_rows", lambda W, factors: _names(W, factors, lambda w, f: int((w[:, f].abs().amax(dim=1) > 1e-3).sum())),
                "hidden dimensions", "Your names match counting the hidden dimensions a factor touches: that depends "
                "on the basis; count singular values above 10% of the largest."),
        Mistake("sorted_names", lambda W, factors: [sorted(r) for r in _names(W, factors, _sv_dim)], "in the order of",
                "Your names are right but sorted: return one name per factor in the order of `factors`."),
        Mistake("numpy", _numpy_names, _GRAD, compare=False),
        Mistake("arguments_swapped", lambda W, factors: _names(W, factors, _sv_dim,
                name=lambda k, d: geometry.polytope_name(d, k)), "first argument",
                "Your names match polytope_name(d, k): its first argument is the number of features k, the second the "
                "dimension d."),
        Mistake("ascending", lambda W, factors: _names(W, factors, lambda w, f: (lambda sv: int((sv > 0.1 * sv[0]).sum()))(
                torch.linalg.eigvalsh(w[:, f].T @ w[:, f]).clamp_min(0).sqrt())), "ascending",
                "Your names match comparing with the first of singular values sorted in ascending order (eigvalsh "
                "sorts ascending, so [0] is the smallest): compare with 10% of the largest one."),
        Mistake("of_the_sum", lambda W, factors: _names(W, factors, lambda w, f: (lambda sv: int((sv > 0.1 * sv.sum()).sum()))(
                torch.linalg.svdvals(w[:, f]))), "10% of their sum",
                "Your names match counting singular values above 10% of their sum: count those above 10% of the largest."),
        Mistake("first_instance_only", lambda W, factors: _names(W[:1], factors[:1], _sv_dim), "for each instance",
                compare=False),
    ],
}
"""Every exercise's known mistakes."""


def metrics_free_dims(W: torch.Tensor) -> torch.Tensor:
    """``D_i`` computed here (the float32 mistake's body)."""
    return _dims(W, unit_columns(W).mT @ W, W.square().sum(1))
