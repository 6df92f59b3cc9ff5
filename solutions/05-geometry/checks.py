"""Lesson 5 checks: the geometry of superposition.

Four exercises, each compared with :mod:`supercourse` on hand-built shapes turned
by secret rotations (or permuted by secret signed permutations, where a tie must
stay exact) and on inputs drawn from the grading run's secret; every answer is determined by ``W``, so comparisons are exact up to
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
diagnose with :data:`MISTAKES` (``mistakes.py``), the table the lesson proof also uses.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch

from autograder.exercises import Exercise
from autograder.framework import CheckFailed, call, expect, prop
from autograder.toolkit import TINY, Case, describe, diagnose, random_W, rotation, tensor_properties, with_zero_columns
from autograder.toolkit.polytopes import SHAPES, dedicated, digon, regular_polygon, square_antiprism, stack_instances, tegum_product, tetrahedron
from autograder.toolkit.weights import as_parameter
from autograder.toolkit.randomness import secret_gen
from supercourse import geometry, metrics

from .mistakes import MISTAKES, _names, _sv_dim

LESSON = "05-geometry"
EXERCISES = {
    "dimensions_per_feature": Exercise(
        "dimensions_per_feature", "Dimensions per feature D* = m / ||W||_F^2",
        reference=("supercourse.metrics.dimensions_per_feature",),
    ),
    "feature_dimensionality": Exercise(
        "feature_dimensionality", "Feature dimensionality D_i",
        reference=("supercourse.metrics.feature_dimensionality", "supercourse.metrics.unit_directions",
                   "supercourse.memorization.feature_dimensionality", "supercourse.memorization.dimensionalities"),
    ),
    "tegum_factors": Exercise(
        "tegum_factors", "Group features into tegum factors",
        reference=("supercourse.geometry.tegum_factors", "supercourse.geometry._components"),
    ),
    "name_polytopes": Exercise("name_polytopes", "Name each factor's polytope"),
}


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


def _short_columns() -> torch.Tensor:
    """Instance 0: every feature short (norms 0.002 to 0.008); instances 1 and 2: about a third of them short,
    among ordinary ones. Short is not zero: D_i does not depend on the scale."""
    W = random_W(15, 3, 4, 8).double()
    gen = secret_gen(16)
    short = torch.rand(3, 1, 8, generator=gen) < 0.35
    short[0] = True
    lengths = 0.002 + 0.006 * torch.rand(3, 1, 8, generator=gen, dtype=torch.float64)
    return torch.where(short, W / W.norm(dim=1, keepdim=True) * lengths, W).float()


def _random_shape_W(seed: int) -> Case:
    def make() -> tuple[torch.Tensor]:
        k, m, n = (2 + torch.randperm(7, generator=secret_gen(("shape", seed)))[:3]).tolist()
        return (random_W(seed, k, m, n),)

    return Case("random W of a random shape (n_instances, n_hidden, n_features all different)", make)


def _dstar_hint(got: tuple[int, ...], args: tuple[Any, ...]) -> str:
    k, m, n = args[0].shape
    if k == 1 and got == ():
        return (" With one instance a squeeze() drops the instance dimension: keep it (leave out squeeze, or "
                "sum with keepdim=False instead of squeezing).")
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
    value_cases=[KNOWN, _W(7, 4, 3, 10), _W(8, 2, 6, 4, rank=2), _random_shape_W(17)],
    edge_cases=[_W(9, 3, 4, 6, norms=TINY), Case("W with zero columns", lambda: (_zero_columns(),))],
    shape_hint=_dstar_hint, prefix="dimensions_per_feature",
))

globals().update(tensor_properties(
    "feature_dimensionality", function="feature_dimensionality", reference=metrics.feature_dimensionality,
    meaning="(n_instances, n_features)", shape=lambda W: (W.shape[0], W.shape[2]),
    points={"shape": 0.5, "inputs": 0.5, "values": 1.5, "edges": 1.5}, mistakes=MISTAKES["feature_dimensionality"],
    shape_cases=SHAPE_CASES, input_case=INPUT_CASE,
    value_cases=[KNOWN, _W(10, 4, 3, 8), _W(11, 2, 5, 5), _random_shape_W(18)],
    edge_cases=[
        Case("W with zero columns (unlearned features) and an instance with one non-zero column", lambda: (_zero_columns(),),
             note="A zero column is a feature never learned: D_i = 0. Guard the division (torch.where on the norm)."),
        _W(12, 3, 4, 6, norms=TINY), _W(13, 3, 5, 6, rank=2), _W(14, 2, 4, 5, rank=1),
        Case("W with short but non-zero columns (norms 0.002 to 0.008), alone and among ordinary ones",
             lambda: (_short_columns(),),
             note="A short column is a feature like any other: only an exactly zero column gets 0."),
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
    perm = torch.randperm(W.shape[-1], generator=secret_gen(seed))
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
    W = torch.cat([W, bridge[:, None], tie[:, None]], dim=1)
    # A secret signed permutation of the hidden axes (exact: the tie stays exactly 0.5) and of the features.
    gen = secret_gen("thresholds")
    signs = torch.where(torch.rand(4, 1, generator=gen) < 0.5, -1.0, 1.0)
    W = (signs * W[torch.randperm(4, generator=gen)])[:, torch.randperm(W.shape[1], generator=gen)].unsqueeze(0)
    what = "Thresholds"
    text = ("a triangle, a digon, a short feature (norm 0.3) overlapping both and a feature of norm exactly 0.5, "
            "features shuffled")
    _expect_factors(submission, W, what, text)
    _expect_factors(submission, W, what, text, norm_threshold=0.2)
    _expect_factors(submission, W, what, text, norm_threshold=0.2, overlap=0.9)
    Wt = random_W(22, 2, 4, 10, norms=(0.6, 1.2))
    overlap = round(0.3 + 0.4 * float(torch.rand(1, generator=gen)), 3)
    _expect_factors(submission, Wt, what, "random features (norms 0.6 to 1.2)", overlap=overlap)


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
    gen = secret_gen(seed)
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
        W = W + noise * scale * torch.randn(W.shape, generator=secret_gen(seed)) / math.sqrt(m)
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
    # Six features in 5 dimensions, singular values 1, 1, 1, 1, 0.4: the last is above 10% of the largest (d = 5),
    # below 10% of their sum, and above 10% of the largest squared.
    block = rotation(62, 5) @ torch.diag(torch.tensor([1.0, 1.0, 1.0, 1.0, 0.4])) @ rotation(63, 6)[:5]
    W = tegum_product([block, digon()], m=6, seed=64).unsqueeze(0)
    _expect_names(submission, W, [[(0, 1, 2, 3, 4, 5), (6, 7)]], "Singular values",
                  "six features whose singular values are 1, 1, 1, 1 and 0.4")
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
