"""Lesson 5 checks: the geometry of superposition.

Four exercises, each compared with :mod:`supercourse` on hand-built and seeded
inputs; every answer is determined by ``W``, so comparisons are exact up to
float rounding (:data:`autograder.toolkit.RTOL`).

* ``05.dimensions_per_feature`` ``dimensions_per_feature(W) -> (n_instances,)``:
  ``D* = m / ||W||_F^2``.
* ``05.feature_dimensionality`` ``feature_dimensionality(W) -> (n_instances, n_features)``:
  ``D_i = ||W_i||^2 / sum_j (W_hat_i . W_j)^2`` (``j = i`` included), 0 (not NaN) for a zero column.
* ``05.tegum_factors`` ``tegum_factors(W, norm_threshold=0.5, overlap=0.1)``: the
  connected components of "``|cos(W_i, W_j)| > overlap``" among represented
  features (``||W_i|| > norm_threshold``), each a tuple in increasing order,
  factors ordered by their first feature (the order is checked: it is promised).
* ``05.name_polytopes`` ``name_polytopes(W, factors) -> list[list[str]]``: each
  factor's ``polytope_name(k, d)``, ``d`` the number of singular values of its
  own columns above 10% of the largest, in the order of ``factors``.

The two tensor exercises use the toolkit's property families; all four
diagnose with :data:`MISTAKES`, the table the tests also use.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch

from autograder.exercises import Exercise
from autograder.framework import CheckFailed, call, expect, prop
from autograder.toolkit import TINY, Case, Mistake, describe, diagnose, random_W, rotation, tensor_properties, with_zero_columns
from autograder.toolkit.polytopes import SHAPES, dedicated, digon, regular_polygon, square_antiprism, stack_instances, tegum_product, tetrahedron
from autograder.toolkit.weights import as_parameter
from supercourse import geometry, metrics

LESSON = "05-geometry"
EXERCISES = {
    "dimensions_per_feature": Exercise(
        "dimensions_per_feature", "Dimensions per feature D* = m / ||W||_F^2", forbid=("metrics",),
        reference=("supercourse.metrics.dimensions_per_feature",),
    ),
    "feature_dimensionality": Exercise(
        "feature_dimensionality", "Feature dimensionality D_i", forbid=("metrics", "unit_directions"),
        reference=("supercourse.metrics.feature_dimensionality", "supercourse.metrics.unit_directions"),
    ),
    "tegum_factors": Exercise(
        "tegum_factors", "Group features into tegum factors", forbid=("geometry", "_components"),
        reference=("supercourse.geometry.tegum_factors", "supercourse.geometry._components"),
    ),
    "name_polytopes": Exercise("name_polytopes", "Name each factor's polytope", forbid=("tegum_factors",)),
}


# --------------------------------------------------------------------------- reference implementations of the mistakes


def _unit(W: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    n = W.norm(dim=1, keepdim=True)
    return torch.where(n > eps, W / n.clamp_min(eps), torch.zeros_like(W))


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
    ],
    "feature_dimensionality": [
        Mistake("excluding_self", lambda W: _guarded(W.square().sum(1), ((_unit(W).mT @ W).square()
                * (1 - torch.eye(W.shape[-1], dtype=W.dtype))).sum(-1)), "includes j = i",
                "Your values match a denominator without j = i: the sum over j includes j = i, which contributes ||W_i||^2."),
        Mistake("dot_products", lambda W: _dims(W, W.mT @ W, W.square().sum(1)), "unit",
                "Your values match W_i . W_j in the denominator: project the other features on the *unit* direction "
                "W_hat_i = W_i / ||W_i||, and keep W_j at its length."),
        Mistake("cosines", lambda W: _dims(W, _unit(W).mT @ _unit(W), W.square().sum(1)), "normalised both",
                "Your values match cosines in the denominator: you normalised both features; only W_i is normalised, "
                "W_j keeps its length."),
        Mistake("numerator_not_squared", lambda W: _dims(W, _unit(W).mT @ W, W.norm(dim=1)), "squared norm",
                "Your values match ||W_i|| in the numerator: it is the squared norm ||W_i||^2."),
        Mistake("inverted", lambda W: _guarded((_unit(W).mT @ W).square().sum(-1), W.square().sum(1)), "inverted",
                "Your values are D_i inverted: ||W_i||^2 is the numerator, the sum of squared overlaps the denominator."),
        Mistake("epsilon", lambda W: W.square().sum(1) / ((_unit(W).mT @ W).square().sum(-1) + 1e-3), "epsilon",
                "Your values match a denominator plus an epsilon of 1e-3, which changes short features (norms below "
                "0.1): guard only the zero columns (torch.where)."),
        Mistake("nan_zero_columns", lambda W: W.square().sum(1) / ((W / W.norm(dim=1, keepdim=True)).mT @ W).square().sum(-1),
                "zero column", compare=False),
        Mistake("rows", lambda W: _guarded(W.square().sum(2), ((W / W.norm(dim=2, keepdim=True).clamp_min(1e-12)) @ W.mT)
                .square().sum(-1)), "dim 1", compare=False),
        Mistake("float32", lambda W: metrics_free_dims(W.float()), _DTYPE, compare=False),
        Mistake("numpy", _numpy_dims, _GRAD, compare=False),
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
    ],
}
"""Every exercise's known mistakes."""


def metrics_free_dims(W: torch.Tensor) -> torch.Tensor:
    """``D_i`` computed here (the float32 mistake's body)."""
    return _dims(W, _unit(W).mT @ W, W.square().sum(1))


# --------------------------------------------------------------------------- shared inputs


def _W(seed: int, k: int, m: int, n: int, **kw: Any) -> Case:
    label = kw.pop("label", None) or (
        f"random W of shape {(k, m, n)}" + (f" of rank {kw['rank']}" if kw.get("rank") else "")
        + (" with norms 0.005 to 0.1" if kw.get("norms") == TINY else "")
    )
    return Case(label, lambda: (random_W(seed, k, m, n, **kw),))


def _known_geometries() -> torch.Tensor:
    """Instances whose every dimension is used, all features unit length, turned by random rotations."""
    return stack_instances([
        tegum_product([dedicated()] * 5, seed=1),
        tegum_product([digon()] * 5, seed=2),
        tegum_product([regular_polygon(5), regular_polygon(3), dedicated()], seed=3),
        tegum_product([tetrahedron(), digon(), dedicated()], seed=4),
        tegum_product([square_antiprism(), digon(), dedicated()], seed=5),
    ])


KNOWN = Case("5 dedicated dimensions; 5 digons; a pentagon, a triangle and a dedicated dimension; a tetrahedron, a "
             "digon and a dedicated dimension; a square antiprism, a digon and a dedicated dimension (unit features, "
             "rotated)", lambda: (_known_geometries(),))
SHAPE_CASES = [_W(0, 3, 4, 9), _W(1, 1, 5, 3, label="one instance, W of shape (1, 5, 3)"),
               _W(2, 2, 3, 1, label="one feature, W of shape (2, 3, 1)")]
INPUT_CASE = _W(3, 2, 4, 6)


def _zero_columns() -> torch.Tensor:
    W = with_zero_columns(random_W(4, 3, 4, 6), [(0, 2), (1, 0)], instances=[2])
    W[2, :, 3] = torch.tensor([0.6, -0.2, 0.1, 0.3])
    return W


def _dstar_hint(got: tuple[int, ...], args: tuple[Any, ...]) -> str:
    k, m, n = args[0].shape
    if got in ((), (1,), (k, 1, 1)):
        return " Compute one value per instance: sum the squares over dims 1 and 2 only."
    return ""


def _di_hint(got: tuple[int, ...], args: tuple[Any, ...]) -> str:
    k, m, n = args[0].shape
    return " That is one value per hidden dimension: feature i is the column W[k, :, i], reduce over dim 1." if got == (k, m) else ""


globals().update(tensor_properties(
    "dimensions_per_feature", function="dimensions_per_feature", reference=metrics.dimensions_per_feature,
    meaning="(n_instances,) (one value per instance)", shape=lambda W: (W.shape[0],),
    points={"shape": 0.5, "inputs": 0.5, "values": 1.5, "edges": 0.5}, mistakes=MISTAKES["dimensions_per_feature"],
    shape_cases=SHAPE_CASES, input_case=INPUT_CASE,
    value_cases=[KNOWN, _W(7, 4, 3, 10), _W(8, 2, 6, 4, rank=2)],
    edge_cases=[_W(9, 3, 4, 6, norms=TINY), Case("W with zero columns", lambda: (_zero_columns(),))],
    shape_hint=_dstar_hint, prefix="dimensions_per_feature",
))

globals().update(tensor_properties(
    "feature_dimensionality", function="feature_dimensionality", reference=metrics.feature_dimensionality,
    meaning="(n_instances, n_features)", shape=lambda W: (W.shape[0], W.shape[2]),
    points={"shape": 0.5, "inputs": 0.5, "values": 1.5, "edges": 1.5}, mistakes=MISTAKES["feature_dimensionality"],
    shape_cases=SHAPE_CASES, input_case=INPUT_CASE,
    value_cases=[KNOWN, _W(10, 4, 3, 8), _W(11, 2, 5, 5)],
    edge_cases=[
        Case("W with zero columns (unlearned features) and an instance with one non-zero column", lambda: (_zero_columns(),),
             note="A zero column is a feature never learned: D_i = 0. Guard the division (torch.where on the norm)."),
        _W(12, 3, 4, 6, norms=TINY), _W(13, 3, 5, 6, rank=2), _W(14, 2, 4, 5, rank=1),
    ],
    shape_hint=_di_hint, prefix="feature_dimensionality",
))


# --------------------------------------------------------------------------- 05.tegum_factors


def _reference_factors(W: torch.Tensor, norm_threshold: float = 0.5, overlap: float = 0.1) -> list[list[tuple[int, ...]]]:
    return [[f.features for f in inst] for inst in geometry.tegum_factors(W, norm_threshold, overlap)]


def _show(factors: list) -> str:
    return "[" + ", ".join(str(tuple(f)) for f in factors) + "]"


def _as_factors(out: Any, W: torch.Tensor, what: str) -> list[list[tuple[int, ...]]]:
    """The learner's factors as lists of int tuples, in their order; checked for format."""
    fmt = ("tegum_factors(W) should return a list with one entry per instance, each a list of tuples of feature "
           "indices (ints), e.g. [[(0, 1, 2, 3, 4), (5, 6), (7,)]]")
    expect(isinstance(out, (list, tuple)) and len(out) == W.shape[0],
           f"{what}: {fmt}; got {describe(out)} for {W.shape[0]} instance(s).")
    result = []
    for inst in out:
        expect(isinstance(inst, (list, tuple)), f"{what}: {fmt}; one instance's entry is {describe(inst)}.")
        row = []
        for factor in inst:
            ok = isinstance(factor, (list, tuple)) and all(
                isinstance(i, numbers.Integral) and not isinstance(i, bool)
                or isinstance(i, torch.Tensor) and i.numel() == 1 and not i.is_floating_point() for i in factor)
            expect(ok, f"{what}: {fmt}; got a factor {describe(factor)}.")
            items = tuple(int(i) for i in factor)
            expect(len(items) > 0 and all(0 <= i < W.shape[2] for i in items),
                   f"{what}: {fmt}; a factor holds {items}, not feature indices in [0, {W.shape[2]}).")
            row.append(items)
        result.append(row)
    return result


def _order_free(factors: list[list[tuple[int, ...]]]) -> list[set]:
    return [{tuple(sorted(f)) for f in inst} for inst in factors]


def _same_factors(got: Any, theirs: Any) -> bool:
    try:
        return _order_free([[tuple(int(i) for i in f) for f in inst] for inst in got]) == _order_free(
            [[tuple(f) for f in inst] for inst in theirs])
    except (TypeError, ValueError):
        return False


def _expect_factors(submission, W: torch.Tensor, what: str, description: str, **kwargs: Any) -> None:
    """The learner's factors equal the reference's, order included; else a message naming the mistake."""
    got = _as_factors(call(submission, W.clone(), what="tegum_factors", **kwargs), W, what)
    want = _reference_factors(W, **kwargs)
    if got == want:
        return
    args = "".join(f", {k}={v}" for k, v in kwargs.items())
    k = next(i for i in range(len(want)) if got[i] != want[i])
    if _order_free(got) == _order_free(want):
        expect(False, f"{what}: for {description}{args}, instance {k}'s factors are right but not in the promised order: "
                      f"expected {_show(want[k])}, got {_show(got[k])}. Each factor is a tuple in increasing order, "
                      "and the factors are ordered by their first feature (sorted(...)).")
    diagnosis = diagnose(MISTAKES["tegum_factors"], got, [W], kwargs, same=_same_factors)
    expect(False, f"{what}: for {description}{args}, instance {k}'s factors should be {_show(want[k])}, got "
                  f"{_show(got[k])}. Features share a factor when |cos(W_i, W_j)| > overlap, directly or through a "
                  f"chain.{diagnosis}")


def _shuffled(W: torch.Tensor, seed: int) -> torch.Tensor:
    perm = torch.randperm(W.shape[-1], generator=torch.Generator().manual_seed(seed))
    return W[..., perm]


@prop("tegum_factors", points=1)
def test_tegum_factors_format_and_order(submission):
    W = _shuffled(tegum_product([regular_polygon(5), digon(), dedicated()], seed=7), 3).unsqueeze(0)
    _expect_factors(submission, W, "Format and order", "a pentagon, a digon and a dedicated dimension, features shuffled")
    W = torch.stack([_shuffled(tegum_product([regular_polygon(3), digon(), digon()], seed=8), 4),
                     0.3 * _shuffled(tegum_product([regular_polygon(3), digon(), digon()], seed=9), 5)])
    _expect_factors(submission, W, "Format and order", "two instances, the second with every norm 0.3 (no factor at all)")


@prop("tegum_factors", points=1)
def test_tegum_products_are_split_into_their_factors(submission):
    cases = [
        ([regular_polygon(5), digon(), dedicated()], "a pentagon, a digon and a dedicated dimension"),
        ([regular_polygon(3), digon()], "a triangular bipyramid (a triangle and a digon)"),
        ([tetrahedron(), digon(), digon()], "a tetrahedron and two digons"),
        ([digon(), digon(), digon(), digon()], "four digons (antipodal pairs: cosine -1)"),
    ]
    for k, (blocks, name) in enumerate(cases):
        W = tegum_product(blocks, seed=10 + k).unsqueeze(0)
        _expect_factors(submission, W, "Tegum products", f"{name}, turned by a random rotation")


@prop("tegum_factors", points=0.5)
def test_tegum_factors_follow_chains(submission):
    angles = torch.tensor([0.0, math.pi / 4, math.pi / 2])
    chain = torch.stack([angles.cos(), angles.sin()])
    W = tegum_product([chain, digon()], seed=21).unsqueeze(0)
    _expect_factors(submission, W, "Chains", "features at 0, 45 and 90 degrees (0 overlaps 1, 1 overlaps 2, 0 and 2 "
                                            "orthogonal) and a digon")


@prop("tegum_factors", points=1)
def test_tegum_factors_thresholds(submission):
    # A triangle and a digon; feature 5 (norm 0.3) overlaps both; feature 6 has norm exactly 0.5 on its own axis.
    W = tegum_product([regular_polygon(3), digon()], m=4)
    bridge = 0.3 * torch.nn.functional.normalize(torch.tensor([1.0, 0.0, 1.0, 0.0]), dim=0)
    tie = torch.tensor([0.0, 0.0, 0.0, 0.5])
    W = torch.cat([W, bridge[:, None], tie[:, None]], dim=1).unsqueeze(0)
    what = "Thresholds"
    text = "a triangle, a digon, a short feature (norm 0.3) overlapping both and a feature of norm exactly 0.5"
    _expect_factors(submission, W, what, text)
    _expect_factors(submission, W, what, text, norm_threshold=0.2)
    _expect_factors(submission, W, what, text, norm_threshold=0.2, overlap=0.9)
    Wt = random_W(22, 2, 4, 10, norms=(0.6, 1.2))
    _expect_factors(submission, Wt, what, "random features (norms 0.6 to 1.2)", overlap=0.5)


@prop("tegum_factors", points=0.5)
def test_tegum_factors_use_cosines(submission):
    # Short features (norms 0.55, 0.6) at cosine 0.25 share a factor although their dot product is 0.08 < overlap;
    # long ones (norms 1.4) at cosine 0.06 do not, although their dot product is 0.12 > overlap.
    def pair(cos: float, a: float, b: float) -> torch.Tensor:
        return torch.tensor([[a, b * cos], [0.0, b * math.sqrt(1 - cos**2)]])

    blocks = [pair(0.25, 0.55, 0.6), pair(0.06, 1.4, 1.4)]
    W = tegum_product(blocks, seed=23).unsqueeze(0)
    _expect_factors(submission, W, "Cosines", "two short features (norms 0.55, 0.6) at cosine 0.25, then two long "
                                             "ones (norm 1.4) at cosine 0.06")


def trained_like(seed: int) -> torch.Tensor:
    """``(4, 6, 24)``: tegum products of shapes, 2% noise, norms 0.8 to 1.2, unlearned features of norm 0.1 to 0.3,
    features shuffled, every instance turned."""
    gen = torch.Generator().manual_seed(seed)
    layouts = [["pentagon", "digon", "digon"], ["triangle", "digon", "tetrahedron"],
               ["square antiprism", "digon", "dedicated dimension", "dedicated dimension"], ["pentagon", "pentagon", "triangle"]]
    Ws = []
    for k, names in enumerate(layouts):
        shapes = tegum_product([SHAPES[s]() for s in names], m=6)
        n_real = shapes.shape[1]
        shapes = shapes * (0.8 + 0.4 * torch.rand(1, n_real, generator=gen))
        shapes = shapes + 0.02 * torch.randn(6, n_real, generator=gen) / math.sqrt(6)
        unlearned = torch.nn.functional.normalize(torch.randn(6, 24 - n_real, generator=gen), dim=0)
        unlearned = unlearned * (0.1 + 0.2 * torch.rand(1, 24 - n_real, generator=gen))
        W = torch.cat([shapes, unlearned], dim=1)
        Ws.append(rotation(seed * 10 + k, 6) @ W[:, torch.randperm(24, generator=gen)])
    return torch.stack(Ws)


@prop("tegum_factors", points=1)
def test_tegum_factors_match_reference_on_trained_like_weights(submission):
    W = trained_like(5)
    text = "weights like a trained model's (2% noise, norms 0.8 to 1.2, unlearned features, shuffled and rotated)"
    _expect_factors(submission, W, "Trained-like weights", text)
    _expect_factors(submission, W.double(), "Trained-like weights (float64)", text)
    try:
        _expect_factors(submission, as_parameter(W), "Trained-like weights (an nn.Parameter)", text)
    except CheckFailed as err:
        raise CheckFailed(f"Trained-like weights (an nn.Parameter, requires_grad=True): {err} Hint: W may require grad (a model's weights): .detach() it before .numpy() or "
                          "Python loops over its values.") from None


# --------------------------------------------------------------------------- 05.name_polytopes


def _reference_names(W: torch.Tensor, factors: list[list[tuple[int, ...]]]) -> list[list[str]]:
    return _names(W, factors, _sv_dim)


def _expect_names(submission, W: torch.Tensor, factors: list[list[tuple[int, ...]]], what: str, description: str) -> None:
    out = call(submission, W, factors, what="name_polytopes")
    fmt = "name_polytopes(W, factors) should return, for each instance, a list of names: one str per factor, in order"
    expect(isinstance(out, (list, tuple)) and len(out) == len(factors), f"{what}: {fmt}; got {describe(out)}.")
    for inst, fs in zip(out, factors):
        expect(isinstance(inst, (list, tuple)) and len(inst) == len(fs) and all(isinstance(s, str) for s in inst),
               f"{what}: {fmt}; for factors {fs} got {describe(inst)}.")
    got = [list(inst) for inst in out]
    want = _reference_names(W.detach(), factors)
    if got == want:
        return
    k = next(i for i in range(len(want)) if got[i] != want[i])
    diagnosis = diagnose(MISTAKES["name_polytopes"], got, [W.detach()], {"factors": factors},
                         same=lambda a, b: [list(x) for x in a] == [list(x) for x in b])
    expect(False, f"{what}: for {description}, with factors {factors[k]}, expected the names {want[k]}, got {got[k]}. "
                  "A factor of k features spanning d dimensions is polytope_name(k, d), d the number of singular values "
                  f"of its own columns above 10% of the largest.{diagnosis}")


def _shapes_instance(names: list[str], m: int, seed: int, noise: float = 0.0, scale: float = 1.0):
    blocks = [SHAPES[s]() * scale for s in names]
    W = tegum_product(blocks, m=m, seed=seed)
    if noise:
        W = W + noise * scale * torch.randn(W.shape, generator=torch.Generator().manual_seed(seed)) / math.sqrt(m)
    factors, start = [], 0
    for b in blocks:
        factors.append(tuple(range(start, start + b.shape[1])))
        start += b.shape[1]
    return W, factors


@prop("name_polytopes", points=0.5)
def test_name_polytopes_format(submission):
    W, factors = _shapes_instance(["digon", "dedicated dimension"], m=2, seed=40)
    _expect_names(submission, W.unsqueeze(0), [factors], "Format", "a digon and a dedicated dimension")
    _expect_names(submission, torch.zeros(2, 3, 4), [[], []], "Format", "two instances without factors")
    W, factors = _shapes_instance(["triangle", "digon", "square"], m=5, seed=41)
    order = [factors[2], factors[0], factors[1]]
    _expect_names(submission, W.unsqueeze(0), [order], "Format", "factors given as square, triangle, digon (the names "
                                                                "follow the order of `factors`)")


@prop("name_polytopes", points=1)
def test_regular_polytopes_are_named(submission):
    layouts = [["pentagon", "digon", "dedicated dimension"], ["square", "digon", "digon"],
               ["tetrahedron", "dedicated dimension", "digon"], ["square antiprism", "triangle"], ["hexagon", "digon"]]
    for k, names in enumerate(layouts):
        W, factors = _shapes_instance(names, m=5, seed=50 + k)
        _expect_names(submission, W.unsqueeze(0), [factors], "Regular polytopes",
                      f"a tegum product of {', '.join(names)} turned by a random rotation in 5 dimensions")
    W, factors = _shapes_instance(["pentagon", "digon"], m=4, seed=56, scale=0.05)
    _expect_names(submission, W.unsqueeze(0), [factors], "Regular polytopes", "a pentagon and a digon of norm 0.05")


@prop("name_polytopes", points=1)
def test_factor_dimension_counts_large_singular_values(submission):
    W, factors = _shapes_instance(["pentagon", "digon", "triangle"], m=6, seed=60, noise=0.02)
    _expect_names(submission, W.unsqueeze(0), [factors], "Singular values", "a pentagon, a digon and a triangle with 2% noise")
    # A triangle lifted out of its plane: singular values 1 : 1 : 0.2 (above 10%, below 10% of the squares).
    tri = torch.cat([regular_polygon(3), 0.2 / math.sqrt(2) * torch.ones(1, 3)])  # singular values sqrt(1.5) x2, 0.2 sqrt(1.5)
    W = tegum_product([tri, digon()], m=4, seed=61).unsqueeze(0)
    _expect_names(submission, W, [[(0, 1, 2), (3, 4)]], "Singular values",
                  "three features spanning 3 dimensions, the third singular value 20% of the largest")


@prop("name_polytopes", points=1)
def test_name_polytopes_uses_each_factors_own_columns(submission):
    W = trained_like(8)
    factors = _reference_factors(W)
    _expect_names(submission, W, factors, "Own columns", "weights like a trained model's")
    W = tegum_product([torch.eye(3), regular_polygon(7)]).unsqueeze(0)
    W[0, :3, 1] += 0.5
    _expect_names(submission, W, [[(0, 1, 2), (3, 4, 5, 6, 7, 8, 9)]], "Own columns",
                  "shapes without a name (3 overlapping features in 3 dimensions, 7 in 2)")


@prop("name_polytopes", points=0.5)
def test_name_polytopes_inputs(submission):
    W, factors = _shapes_instance(["tetrahedron", "digon"], m=5, seed=70, noise=0.02)
    W = W.unsqueeze(0)
    _expect_names(submission, W.double(), [factors], "Inputs (float64 W)", "a tetrahedron and a digon")
    try:
        _expect_names(submission, as_parameter(W), [factors], "Inputs (W as an nn.Parameter, requires_grad=True)",
                      "a tetrahedron and a digon")
    except CheckFailed as err:
        raise CheckFailed(f"Inputs (W as an nn.Parameter, requires_grad=True): {err} Hint: .detach() W before .numpy() "
                          "(a model's weights require grad).") from None
