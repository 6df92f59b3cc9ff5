"""Lesson 5's checks bite: the solution notebook scores full marks, plausible mistakes lose points.

Each mutant is a mistake a learner could really make. The test asserts that it
loses points and that a failing property's message names the mistake (a
keyword from the message the learner would read).
"""

from __future__ import annotations

import pytest
import torch

from autograder.exercises import get_exercise, lessons
from lesson_tools import assert_rejected as _assert_rejected, solution_namespace
from supercourse.geometry import polytope_name

LESSON = "05-geometry"
EXERCISES = ("dimensions_per_feature", "feature_dimensionality", "tegum_factors", "name_polytopes")


@pytest.fixture(scope="module")
def ns():
    return solution_namespace(LESSON)


# --------------------------------------------------------------------------- the registry


def test_points_per_exercise():
    assert get_exercise("05.dimensions_per_feature").points == 3
    assert get_exercise("05.feature_dimensionality").points == 4
    assert get_exercise("05.tegum_factors").points == 5
    assert get_exercise("05.name_polytopes").points == 4


def test_every_property_is_worth_one_point():
    for ex in lessons()[LESSON]:
        assert all(p.points == 1 for p in ex.properties), ex.id


# --------------------------------------------------------------------------- 05.dimensions_per_feature


def dstar_inverted(W):
    return W.square().sum(dim=(1, 2)) / W.shape[1]


def dstar_without_square(W):
    return W.shape[1] / W.norm(dim=(1, 2))


def dstar_with_n_features(W):
    return W.shape[2] / W.square().sum(dim=(1, 2))


def dstar_of_all_instances_at_once(W):
    return W.shape[1] / W.square().sum()


def dstar_with_mean(W):
    return W.shape[1] / W.square().mean(dim=(1, 2))


def dstar_from_the_reference(W):
    from supercourse import metrics

    return metrics.dimensions_per_feature(W)


@pytest.mark.parametrize(
    "mutant, keyword",
    [
        (dstar_inverted, "features per dimension"),
        (dstar_without_square, "squared"),
        (dstar_with_n_features, "n (n_features)"),
        (dstar_of_all_instances_at_once, "shape"),
        (dstar_with_mean, "D* should be"),
        (dstar_from_the_reference, "implement this yourself"),
    ],
)
def test_dimensions_per_feature_mutants_fail(mutant, keyword):
    _assert_rejected("05.dimensions_per_feature", mutant, keyword)


# --------------------------------------------------------------------------- 05.feature_dimensionality


def _unit(W):
    norms = W.norm(dim=1, keepdim=True)
    return torch.where(norms > 1e-8, W / norms.clamp_min(1e-8), torch.zeros_like(W))


def _guarded(num, den):
    return torch.where(den > 1e-8, num / den.clamp_min(1e-8), torch.zeros_like(num))


def dim_excluding_self(W):
    sq = (_unit(W).mT @ W).square()
    return _guarded(W.square().sum(dim=1), sq.sum(-1) - sq.diagonal(dim1=-2, dim2=-1))


def dim_nan_for_zero_columns(W):
    W_hat = W / W.norm(dim=1, keepdim=True)
    return W.square().sum(dim=1) / (W_hat.mT @ W).square().sum(-1)


def dim_unnormalised_dot_products(W):
    return _guarded(W.square().sum(dim=1), (W.mT @ W).square().sum(-1))


def dim_with_cosines(W):
    return _guarded(W.square().sum(dim=1), (_unit(W).mT @ _unit(W)).square().sum(-1))


def dim_numerator_not_squared(W):
    return _guarded(W.norm(dim=1), (_unit(W).mT @ W).square().sum(-1))


def dim_transposed(W):
    # Reads W as (n_instances, n_features, n_hidden): one value per hidden dimension.
    Wt = W.mT
    return _guarded(Wt.square().sum(dim=1), (_unit(Wt).mT @ Wt).square().sum(-1))


@pytest.mark.parametrize(
    "mutant, keyword",
    [
        (dim_excluding_self, "includes j = i"),
        (dim_nan_for_zero_columns, "NaN"),
        (dim_unnormalised_dot_products, "unit"),
        (dim_with_cosines, "cosines"),
        (dim_numerator_not_squared, "squared norm"),
        (dim_transposed, "shape"),
    ],
)
def test_feature_dimensionality_mutants_fail(mutant, keyword):
    _assert_rejected("05.feature_dimensionality", mutant, keyword)


# --------------------------------------------------------------------------- 05.tegum_factors


def _connected(adjacent: torch.Tensor, nodes: list[int]) -> list[tuple[int, ...]]:
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
                if j not in seen and adjacent[i, j]:
                    seen.add(j)
                    stack.append(j)
        out.append(tuple(sorted(group)))
    return sorted(out)


def _factors_with(W, norm_threshold, overlap, cos_fn=None, keep=None):
    out = []
    for w in W:
        norms = w.norm(dim=0)
        nodes = [i for i in range(w.shape[1]) if (keep(norms[i]) if keep else norms[i] > norm_threshold)]
        d = w / norms.clamp_min(1e-12)
        cos = (d.T @ d) if cos_fn is None else cos_fn(w, d)
        out.append(_connected(cos.abs() > overlap, nodes))
    return out


def factors_without_abs(W, norm_threshold=0.5, overlap=0.1):
    out = []
    for w in W:
        norms = w.norm(dim=0)
        nodes = [i for i in range(w.shape[1]) if norms[i] > norm_threshold]
        d = w / norms.clamp_min(1e-12)
        out.append(_connected((d.T @ d) > overlap, nodes))
    return out


def factors_by_norm(W, norm_threshold=0.5, overlap=0.1):
    # Features of about the same length grouped together.
    out = []
    for w in W:
        norms = w.norm(dim=0)
        groups: dict[float, list[int]] = {}
        for i in range(w.shape[1]):
            if norms[i] > norm_threshold:
                groups.setdefault(round(norms[i].item(), 1), []).append(i)
        out.append(sorted(tuple(g) for g in groups.values()))
    return out


def factors_including_unlearned(W, norm_threshold=0.5, overlap=0.1):
    return _factors_with(W, norm_threshold, overlap, keep=lambda norm: norm > 1e-6)


def factors_without_chains(W, norm_threshold=0.5, overlap=0.1):
    # Each factor = a feature and its direct neighbours, not followed further.
    out = []
    for w in W:
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


def factors_with_fixed_threshold(W, norm_threshold=0.5, overlap=0.1):
    return _factors_with(W, 0.5, overlap)


def factors_by_hidden_dimensions(W, norm_threshold=0.5, overlap=0.1):
    # Features that use the same hidden dimensions (non-zero rows) together: depends on the basis.
    return _factors_with(W, norm_threshold, 0.5, cos_fn=lambda w, d: ((w.abs() > 1e-3).float().T @ (w.abs() > 1e-3).float()))


def factors_from_the_reference(W, norm_threshold=0.5, overlap=0.1):
    from supercourse import geometry

    return [[f.features for f in inst] for inst in geometry.tegum_factors(W, norm_threshold, overlap)]


@pytest.mark.parametrize(
    "mutant, keyword",
    [
        (factors_without_abs, "absolute value"),
        (factors_by_norm, "not by norm"),
        (factors_including_unlearned, "not represented"),
        (factors_without_chains, "connected component"),
        (factors_with_fixed_threshold, "norm_threshold argument"),
        (factors_by_hidden_dimensions, "directions"),
        (factors_from_the_reference, "implement this yourself"),
    ],
)
def test_tegum_factors_mutants_fail(mutant, keyword):
    _assert_rejected("05.tegum_factors", mutant, keyword)


# --------------------------------------------------------------------------- 05.name_polytopes


def _names_with(W, factors, dimension):
    return [[polytope_name(len(f), dimension(w, list(f))) for f in inst] for w, inst in zip(W, factors)]


def names_by_k_alone(W, factors):
    table = {1: "dedicated dimension", 2: "digon", 3: "triangle", 4: "tetrahedron", 5: "pentagon", 8: "square antiprism"}
    return [[table.get(len(f), f"{len(f)} features") for f in inst] for inst in factors]


def names_with_exact_rank(W, factors):
    return _names_with(W, factors, lambda w, f: int(torch.linalg.matrix_rank(w[:, f])))


def names_with_rank_of_whole_instance(W, factors):
    return _names_with(W, factors, lambda w, f: int((torch.linalg.svdvals(w) > 0.1 * torch.linalg.svdvals(w)[0]).sum()))


def names_assuming_simplices(W, factors):
    return _names_with(W, factors, lambda w, f: max(1, len(f) - 1))


def names_counting_nonzero_rows(W, factors):
    return _names_with(W, factors, lambda w, f: int((w[:, f].abs().amax(dim=1) > 1e-3).sum()))


@pytest.mark.parametrize(
    "mutant, keyword",
    [
        (names_by_k_alone, "k = 4"),
        (names_with_exact_rank, "above 10% of the largest"),
        (names_with_rank_of_whole_instance, "its own"),
        (names_assuming_simplices, "expected the names"),
        (names_counting_nonzero_rows, "expected the names"),
    ],
)
def test_name_polytopes_mutants_fail(mutant, keyword):
    _assert_rejected("05.name_polytopes", mutant, keyword)
