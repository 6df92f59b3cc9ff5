"""Lesson 5 checks: the geometry of superposition.

Four exercises, each compared with :mod:`supercourse` on hand-built and
seeded inputs. Every answer is determined by ``W``, so every comparison is
exact up to float rounding; no statistical tolerances.

* ``05.dimensions_per_feature`` ``dimensions_per_feature(W) -> (n_instances,)``:
  ``D* = m / ||W||_F^2`` per instance.
* ``05.feature_dimensionality`` ``feature_dimensionality(W) -> (n_instances, n_features)``:
  ``D_i = ||W_i||^2 / sum_j (W_hat_i . W_j)^2`` with ``j = i`` included, 0 (not
  NaN) for a zero column.
* ``05.tegum_factors`` ``tegum_factors(W, norm_threshold=0.5, overlap=0.1)``:
  for each instance, its represented features grouped into tegum factors,
  the connected components of "``|cos(W_i, W_j)| > overlap``", as a list of
  tuples of feature indices. Checked on tegum products turned by random
  rotations (so no hidden axis gives the grouping away), on antipodal pairs
  (cosine -1), on chains (A overlaps B, B overlaps C, A and C orthogonal),
  on short features that would bridge two factors, and against
  :func:`supercourse.geometry.tegum_factors` on noisy shuffled arrangements
  like trained models.
* ``05.name_polytopes`` ``name_polytopes(W, factors) -> list[list[str]]``: each
  factor's shape from its number of features ``k`` and the dimension ``d`` its
  directions span (singular values above 10% of the largest), by
  :func:`supercourse.geometry.polytope_name`. A square and a tetrahedron both
  have ``k = 4``, so naming by ``k`` alone fails; noise of 2% makes every factor
  full-rank, so an exact rank fails too.

Comparisons are order-free where the exercise leaves the order open: factors
are compared as sets of sorted tuples.
"""

from __future__ import annotations

import math

import torch

from autograder.exercises import Exercise
from autograder.framework import call, describe, expect, prop
from supercourse import geometry, metrics

LESSON = "05-geometry"
EXERCISES = {
    "dimensions_per_feature": Exercise(
        "dimensions_per_feature", "Dimensions per feature D* = m / ||W||_F^2", forbid=("metrics",)
    ),
    "feature_dimensionality": Exercise(
        "feature_dimensionality", "Feature dimensionality D_i", forbid=("metrics", "unit_directions")
    ),
    "tegum_factors": Exercise("tegum_factors", "Group features into tegum factors", forbid=("geometry", "_components")),
    "name_polytopes": Exercise("name_polytopes", "Name each factor's polytope", forbid=("tegum_factors",)),
}


# --------------------------------------------------------------------------- shapes


def _fmt(values: torch.Tensor, digits: int = 3) -> str:
    return "[" + ", ".join(f"{v:.{digits}g}" for v in values.flatten().tolist()) + "]"


def regular_polygon(k: int) -> torch.Tensor:
    """``(2, k)``: ``k`` unit vectors at angles ``2 pi i / k``."""
    angles = torch.arange(k, dtype=torch.float64) * 2 * math.pi / k
    return torch.stack([angles.cos(), angles.sin()]).float()


def tetrahedron() -> torch.Tensor:
    """``(3, 4)``: the vertices of a regular tetrahedron, unit length."""
    return (torch.tensor([[1.0, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / math.sqrt(3)).T


def square_antiprism() -> torch.Tensor:
    """``(3, 8)``: two squares turned by 45° at heights ``+-1/sqrt(2)`` (a tight frame: ``D_i = 3/8``)."""
    pts = [[math.cos(i * math.pi / 4), math.sin(i * math.pi / 4), (1 if i % 2 == 0 else -1) / math.sqrt(2)] for i in range(8)]
    return torch.nn.functional.normalize(torch.tensor(pts), dim=1).T


def digon() -> torch.Tensor:
    return torch.tensor([[1.0, -1.0]])


def dedicated() -> torch.Tensor:
    return torch.tensor([[1.0]])


SHAPES = {
    "dedicated dimension": dedicated,
    "digon": digon,
    "triangle": lambda: regular_polygon(3),
    "square": lambda: regular_polygon(4),
    "pentagon": lambda: regular_polygon(5),
    "tetrahedron": tetrahedron,
    "square antiprism": square_antiprism,
}
FRACTIONS = {"dedicated dimension": 1.0, "digon": 1 / 2, "triangle": 2 / 3, "square": 1 / 2, "pentagon": 2 / 5,
             "tetrahedron": 3 / 4, "square antiprism": 3 / 8}


def rotation(seed: int, m: int) -> torch.Tensor:
    """A random ``(m, m)`` orthogonal matrix."""
    q, r = torch.linalg.qr(torch.randn(m, m, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return (q * torch.sign(torch.diagonal(r))).float()


def tegum_product(blocks: list[torch.Tensor], m: int | None = None, seed: int | None = None) -> torch.Tensor:
    """Blocks ``(d_b, k_b)`` on orthogonal subspaces: ``(m, sum k_b)``, turned by a random rotation if ``seed``."""
    d = sum(b.shape[0] for b in blocks)
    m = m or d
    W = torch.zeros(m, sum(b.shape[1] for b in blocks))
    r = c = 0
    for b in blocks:
        W[r : r + b.shape[0], c : c + b.shape[1]] = b
        r, c = r + b.shape[0], c + b.shape[1]
    return W if seed is None else rotation(seed, m) @ W


def _stack(Ws: list[torch.Tensor]) -> torch.Tensor:
    """Instances of different widths, zero-padded to a common ``(n_instances, m, n)``."""
    m = max(w.shape[0] for w in Ws)
    n = max(w.shape[1] for w in Ws)
    out = torch.zeros(len(Ws), m, n)
    for k, w in enumerate(Ws):
        out[k, : w.shape[0], : w.shape[1]] = w
    return out


def trained_like(seed: int) -> tuple[torch.Tensor, list[list[str]]]:
    """Weights shaped like a trained sweep: ``(4, 6, 24)``, tegum products of shapes, noise of 2%, norms 0.8 to 1.2,
    a few unlearned features of norm 0.1 to 0.3, features shuffled, everything turned. Returns ``W`` and the shapes."""
    gen = torch.Generator().manual_seed(seed)
    layouts = [
        ["pentagon", "digon", "digon"],
        ["triangle", "digon", "tetrahedron"],
        ["square antiprism", "digon", "dedicated dimension", "dedicated dimension"],
        ["pentagon", "pentagon", "triangle"],
    ]
    Ws = []
    for k, names in enumerate(layouts):
        shapes = tegum_product([SHAPES[s]() for s in names], m=6)
        n_real = shapes.shape[1]
        shapes = shapes * (0.8 + 0.4 * torch.rand(1, n_real, generator=gen))
        shapes = shapes + 0.02 * torch.randn(6, n_real, generator=gen) / math.sqrt(6)
        unlearned = torch.nn.functional.normalize(torch.randn(6, 24 - n_real, generator=gen), dim=0)
        unlearned = unlearned * (0.1 + 0.2 * torch.rand(1, 24 - n_real, generator=gen))
        W = torch.cat([shapes, unlearned], dim=1)
        W = rotation(seed * 10 + k, 6) @ W[:, torch.randperm(24, generator=gen)]
        Ws.append(W)
    return torch.stack(Ws), layouts


# --------------------------------------------------------------------------- shared helpers


def _tensor_out(out: object, shape: tuple[int, ...], name: str, meaning: str) -> torch.Tensor:
    expect(
        isinstance(out, torch.Tensor) and tuple(out.shape) == shape and out.is_floating_point(),
        f"Shape of {name}: for W of shape (n_instances, n_hidden, n_features), {name}(W) should return a float "
        f"tensor of shape {meaning} = {shape}, got {describe(out)}.",
    )
    return out.detach().float()


def _d_star(submission, W: torch.Tensor) -> torch.Tensor:
    """The submission's D* of W, checked to be a float tensor of shape (n_instances,)."""
    out = call(submission, W, what="dimensions_per_feature")
    return _tensor_out(out, (W.shape[0],), "dimensions_per_feature", "(n_instances,)")


def _d_i(submission, W: torch.Tensor) -> torch.Tensor:
    """The submission's D_i of W, checked to be a float tensor of shape (n_instances, n_features)."""
    out = call(submission, W, what="feature_dimensionality")
    return _tensor_out(out, (W.shape[0], W.shape[2]), "feature_dimensionality", "(n_instances, n_features)")


def _random_W(seed: int, n_inst: int, m: int, n: int) -> torch.Tensor:
    """Random directions with norms spread over [0.1, 1.5] (so missing normalisations show)."""
    gen = torch.Generator().manual_seed(seed)
    W = torch.nn.functional.normalize(torch.randn(n_inst, m, n, generator=gen), dim=1)
    return W * (0.1 + 1.4 * torch.rand(n_inst, 1, n, generator=gen))


def _known_geometries(m: int = 5) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Instances whose every dimension is used: (name, W) with the expected per-feature dimensionality."""
    cases = {
        "5 dedicated dimensions": tegum_product([dedicated()] * 5, seed=1),
        "5 digons": tegum_product([digon()] * 5, seed=2),
        "a pentagon and a triangle and a dedicated dimension": tegum_product(
            [regular_polygon(5), regular_polygon(3), dedicated()], seed=3
        ),
        "a tetrahedron and a digon and a dedicated dimension": tegum_product([tetrahedron(), digon(), dedicated()], seed=4),
        "a square antiprism and a digon and a dedicated dimension": tegum_product(
            [square_antiprism(), digon(), dedicated()], seed=5
        ),
    }
    return _stack(list(cases.values())), cases


# --------------------------------------------------------------------------- 05.dimensions_per_feature


@prop("dimensions_per_feature", points=1)
def test_dimensions_per_feature_shape(submission):
    W = _random_W(0, 3, 4, 9)
    before = W.clone()
    _d_star(submission, W)
    expect(torch.equal(W, before), "dimensions_per_feature must not modify W in place.")


def _dstar_hint(got: torch.Tensor, W: torch.Tensor) -> str:
    """Name the mistake behind a wrong D*, when it is one of the usual ones."""
    m, n = W.shape[1], W.shape[2]
    frob_sq = W.square().sum(dim=(1, 2))
    if torch.allclose(got, frob_sq / m, rtol=1e-3):
        return " You computed ||W||_F^2 / m, features per dimension: D* is its inverse, m / ||W||_F^2."
    if torch.allclose(got, m / frob_sq.sqrt(), rtol=1e-3):
        return " You divided by ||W||_F: divide by its square, ||W||_F^2, the sum of the squared entries."
    if torch.allclose(got, n / frob_sq, rtol=1e-3):
        return " You used n (n_features) in the numerator: D* divides m (n_hidden, dim 1 of W) by ||W||_F^2."
    if torch.allclose(got, m / (frob_sq / (m * n)), rtol=1e-3):
        return " You divided by the mean of the squared entries: ||W||_F^2 is their sum."
    return ""


@prop("dimensions_per_feature", points=1)
def test_dimensions_per_feature_of_known_geometries(submission):
    W, cases = _known_geometries()
    # Every dimension is used and every feature has norm 1, so D* = m / n: 1, 1/2, 5/9, 5/7, 5/11.
    want = torch.tensor([5 / w.shape[1] for w in cases.values()])
    got = _d_star(submission, W)
    expect(torch.allclose(got, want, rtol=1e-4, atol=1e-5),
           "Known geometries (unit features, every dimension used: " + "; ".join(cases) + "): "
           f"D* should be m / n = {_fmt(want)}, got {_fmt(got)}.{_dstar_hint(got, W)}")


@prop("dimensions_per_feature", points=1)
def test_dimensions_per_feature_matches_reference(submission):
    W = _random_W(7, 4, 3, 10)
    W[2] *= 0.3
    want = metrics.dimensions_per_feature(W)
    got = _d_star(submission, W)
    expect(torch.allclose(got, want, rtol=1e-4, atol=1e-6),
           f"On random W of shape {tuple(W.shape)} with varied norms, D* should be {_fmt(want)}, got {_fmt(got)}."
           f"{_dstar_hint(got, W)}")


# --------------------------------------------------------------------------- 05.feature_dimensionality


@prop("feature_dimensionality", points=1)
def test_feature_dimensionality_shape(submission):
    W = _random_W(1, 3, 4, 9)
    before = W.clone()
    _d_i(submission, W)
    expect(torch.equal(W, before), "feature_dimensionality must not modify W in place.")


@prop("feature_dimensionality", points=1)
def test_feature_dimensionality_of_polytopes(submission):
    W, cases = _known_geometries()
    got = _d_i(submission, W)
    want = metrics.feature_dimensionality(W)
    for k, (name, w) in enumerate(cases.items()):
        cols = w.shape[1]
        if not torch.allclose(got[k, :cols], want[k, :cols], rtol=1e-4, atol=1e-5):
            hint = ""
            g, w = got[k, :cols], want[k, :cols]
            if (g > 1.01).any() or not torch.isfinite(g).all() or ((g.abs() < 1e-6) & (w > 0.9)).all():
                hint = (" Values above 1 (or inf) mean the denominator misses the feature itself: the sum over j "
                        "includes j = i, which contributes ||W_i||^2.")
            expect(False, f"For {name} (unit features, turned by a rotation), D_i should be {_fmt(want[k, :cols])} "
                   f"(d/k for k features on a regular polytope in d dimensions), got {_fmt(got[k, :cols])}.{hint}")


@prop("feature_dimensionality", points=1)
def test_feature_dimensionality_of_unlearned_features_is_zero(submission):
    W = _random_W(2, 3, 4, 6)
    W[0, :, 2] = 0.0
    W[1, :, 0] = 0.0
    W[2] = 0.0
    W[2, :, 3] = torch.tensor([0.6, -0.2, 0.1, 0.3])
    got = _d_i(submission, W)
    zero = W.norm(dim=1) == 0
    expect(torch.isfinite(got).all(),
           "A feature with a zero column (never learned) must get D_i = 0, but your result has NaN or inf: "
           f"{_fmt(got[zero])}. Guard the division (e.g. torch.where on the norm) for zero columns.")
    expect(torch.allclose(got[zero], torch.zeros(int(zero.sum()))),
           f"A feature with a zero column must get D_i = 0 (it has no dimension at all), got {_fmt(got[zero])}.")
    want = metrics.feature_dimensionality(W)
    expect(torch.allclose(got, want, rtol=1e-4, atol=1e-5),
           f"With zero columns present, the other features' D_i should be unchanged: expected {_fmt(want)}, "
           f"got {_fmt(got)}.")


@prop("feature_dimensionality", points=1)
def test_feature_dimensionality_matches_reference(submission):
    W = _random_W(3, 4, 3, 8)
    want = metrics.feature_dimensionality(W)
    got = _d_i(submission, W)
    if torch.allclose(got, want, rtol=1e-4, atol=1e-5):
        return
    G = W.mT @ W
    norms = W.norm(dim=1)
    hint = ""
    if torch.allclose(got, norms.square() / G.square().sum(-1), rtol=1e-3):
        hint = (" You used W_i . W_j in the denominator: project the other features on the *unit* direction "
                "W_hat_i = W_i / ||W_i||, and keep W_j at its length.")
    elif torch.allclose(got, norms.square() / (G / (norms[:, :, None] * norms[:, None, :])).square().sum(-1), rtol=1e-3):
        hint = " You normalised both features (cosines): only W_i is normalised, W_j keeps its length."
    elif torch.allclose(got, norms / (G.square().sum(-1) / norms.square()), rtol=1e-3):
        hint = " The numerator is ||W_i||^2, the squared norm."
    elif torch.allclose(got, norms.square() / (G.square().sum(-1) / norms.square() - norms.square()), rtol=1e-3):
        hint = " The sum over j includes j = i: feature i's own ||W_i||^2 belongs in the denominator."
    expect(False, f"On random W with norms from 0.1 to 1.5, D_i should be {_fmt(want[0])}... (instance 0), got "
           f"{_fmt(got[0])}.{hint}")


# --------------------------------------------------------------------------- 05.tegum_factors


def _factors(submission, W: torch.Tensor, **kwargs) -> list[set[tuple[int, ...]]]:
    """The learner's factors as one set of sorted tuples per instance, checked for format."""
    out = call(submission, W, what="tegum_factors", **kwargs)
    fmt = (
        "tegum_factors(W) should return a list with one entry per instance, each a list of tuples of feature "
        "indices (ints), e.g. [[(0, 1, 2, 3, 4), (5, 6), (7,)]]"
    )
    expect(isinstance(out, (list, tuple)) and len(out) == W.shape[0],
           f"{fmt}; got {describe(out)} for {W.shape[0]} instance(s).")
    result = []
    for inst in out:
        expect(isinstance(inst, (list, tuple)), f"{fmt}; one instance's entry is {describe(inst)}.")
        groups = set()
        for factor in inst:
            try:
                items = [int(i) for i in factor]
            except (TypeError, ValueError):
                expect(False, f"{fmt}; got a factor {describe(factor)}.")
            expect(len(items) > 0 and all(0 <= i < W.shape[2] for i in items),
                   f"{fmt}; a factor holds {items}, not feature indices in [0, {W.shape[2]}).")
            groups.add(tuple(sorted(items)))
        result.append(groups)
    return result


def _show(groups: set[tuple[int, ...]]) -> str:
    return "[" + ", ".join(str(g) for g in sorted(groups)) + "]"


@prop("tegum_factors", points=1)
def test_tegum_factors_format(submission):
    W = tegum_product([regular_polygon(5), digon(), dedicated()]).unsqueeze(0)
    (got,) = _factors(submission, W)
    all_features = [i for g in got for i in g]
    expect(len(all_features) == len(set(all_features)),
           f"Each feature belongs to one factor at most; your factors {_show(got)} repeat a feature.")


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
        want = {f.features for f in geometry.tegum_factors(W)[0]}
        (got,) = _factors(submission, W)
        if got == want:
            continue
        hint = ""
        if any(len(g) == 1 for g in got) and "digon" in name:
            hint = " Antipodal features have cosine -1: compare |cos|, the absolute value, with the threshold."
        elif len(got) == 1:
            hint = " Everything landed in one factor: group by overlap between *directions*, not by norm."
        expect(False, f"For {name}, turned by a random rotation, the factors are {_show(want)}; got {_show(got)}. "
               f"Features share a factor when |cos(W_i, W_j)| > overlap, directly or through a chain.{hint}")


@prop("tegum_factors", points=1)
def test_tegum_factors_follow_chains(submission):
    # 0 overlaps 1, 1 overlaps 2, but 0 and 2 are orthogonal: one factor all the same.
    angles = torch.tensor([0.0, math.pi / 4, math.pi / 2])
    chain = torch.stack([angles.cos(), angles.sin()])
    W = tegum_product([chain, digon()], seed=21).unsqueeze(0)
    (got,) = _factors(submission, W)
    want = {(0, 1, 2), (3, 4)}
    expect(got == want,
           f"Features at 0°, 45° and 90° (then a digon): 0 overlaps 1 and 1 overlaps 2, so 0, 1, 2 form one factor "
           f"although 0 and 2 are orthogonal; expected {_show(want)}, got {_show(got)}. A factor is a connected "
           "component of the overlap graph: follow overlaps transitively (e.g. a depth-first search).")


@prop("tegum_factors", points=1)
def test_tegum_factors_skip_unlearned_features(submission):
    # A triangle in dims 0-1 and a digon on dim 2; feature 5 is short (norm 0.3) and overlaps both.
    W = tegum_product([regular_polygon(3), digon()])
    bridge = 0.3 * torch.nn.functional.normalize(torch.tensor([1.0, 0.0, 1.0]), dim=0)
    W = torch.cat([W, bridge[:, None]], dim=1)
    W = (rotation(31, 3) @ W).unsqueeze(0)
    (got,) = _factors(submission, W)
    want = {(0, 1, 2), (3, 4)}
    hint = ""
    if any(5 in g for g in got):
        hint = (" Feature 5 has norm 0.3 <= norm_threshold = 0.5: it is not represented, so it belongs to no "
                "factor, and it must not join the two factors it overlaps.")
    expect(got == want, f"A triangle, a digon, and an unlearned feature of norm 0.3 overlapping both: expected "
           f"{_show(want)}, got {_show(got)}.{hint}")
    (got,) = _factors(submission, W, norm_threshold=0.2)
    want = {(0, 1, 2, 3, 4, 5)}
    expect(got == want, f"With norm_threshold=0.2 the short feature counts and joins both factors into one: expected "
           f"{_show(want)}, got {_show(got)}. Use the norm_threshold argument.")


@prop("tegum_factors", points=1)
def test_tegum_factors_match_reference_on_trained_like_weights(submission):
    W, _ = trained_like(seed=5)
    want = [{f.features for f in inst} for inst in geometry.tegum_factors(W)]
    got = _factors(submission, W)
    for k in range(W.shape[0]):
        expect(got[k] == want[k],
               f"On weights like a trained model's (tegum products with 2% noise, norms 0.8 to 1.2, unlearned "
               f"features of norm 0.1 to 0.3, shuffled and rotated), instance {k}'s factors should be "
               f"{_show(want[k])}, got {_show(got[k])}.")
    # The overlap threshold is an argument: at 0.9 only near-antipodal pairs stay together.
    want = [{f.features for f in inst} for inst in geometry.tegum_factors(W, overlap=0.9)]
    got = _factors(submission, W, overlap=0.9)
    expect(got == want, "With overlap=0.9, features share a factor only when |cos| > 0.9; your factors differ from "
           "the reference's. Use the overlap argument.")


# --------------------------------------------------------------------------- 05.name_polytopes


def _names(submission, W: torch.Tensor, factors: list[list[tuple[int, ...]]]) -> list[list[str]]:
    out = call(submission, W, factors, what="name_polytopes")
    fmt = "name_polytopes(W, factors) should return, for each instance, a list of names: one str per factor, in order"
    expect(isinstance(out, (list, tuple)) and len(out) == len(factors), f"{fmt}; got {describe(out)}.")
    for inst, fs in zip(out, factors):
        expect(isinstance(inst, (list, tuple)) and len(inst) == len(fs) and all(isinstance(s, str) for s in inst),
               f"{fmt}; for factors {fs} got {describe(inst)}.")
    return [list(inst) for inst in out]


def _reference_names(W: torch.Tensor, factors: list[list[tuple[int, ...]]]) -> list[list[str]]:
    out = []
    for k, fs in enumerate(factors):
        row = []
        for f in fs:
            sv = torch.linalg.svdvals(W[k][:, list(f)])
            d = int((sv > 0.1 * sv[0]).sum())
            row.append(geometry.polytope_name(len(f), d))
        out.append(row)
    return out


def _shapes_instance(names: list[str], m: int, seed: int, noise: float = 0.0) -> tuple[torch.Tensor, list[tuple[int, ...]]]:
    blocks = [SHAPES[s]() for s in names]
    W = tegum_product(blocks, m=m, seed=seed)
    if noise:
        W = W + noise * torch.randn(W.shape, generator=torch.Generator().manual_seed(seed)) / math.sqrt(m)
    factors, start = [], 0
    for b in blocks:
        factors.append(tuple(range(start, start + b.shape[1])))
        start += b.shape[1]
    return W, factors


@prop("name_polytopes", points=1)
def test_name_polytopes_format(submission):
    W, factors = _shapes_instance(["digon", "dedicated dimension"], m=2, seed=40)
    _names(submission, W.unsqueeze(0), [factors])
    _names(submission, torch.zeros(2, 3, 4), [[], []])


@prop("name_polytopes", points=1)
def test_regular_polytopes_are_named(submission):
    layouts = [
        ["pentagon", "digon", "dedicated dimension"],
        ["square", "digon", "digon"],
        ["tetrahedron", "dedicated dimension", "digon"],
        ["square antiprism", "triangle"],
    ]
    for k, names in enumerate(layouts):
        W, factors = _shapes_instance(names, m=5, seed=50 + k)
        (got,) = _names(submission, W.unsqueeze(0), [factors])
        hint = ""
        if "square" in names and got[0] == "tetrahedron" or "tetrahedron" in names and got[0] == "square":
            hint = (" A square and a tetrahedron both have k = 4 features: the name depends on the dimension d the "
                    "factor spans too (2 for a square, 3 for a tetrahedron).")
        expect(got == names, f"A tegum product of {', '.join(names)} (turned by a random rotation in 5 dimensions): "
               f"expected the names {names}, got {got}.{hint}")


@prop("name_polytopes", points=1)
def test_factor_dimension_ignores_small_singular_values(submission):
    # 2% noise makes every factor full-rank; its dimension counts singular values above 10% of the largest.
    names = ["pentagon", "digon", "triangle"]
    W, factors = _shapes_instance(names, m=6, seed=60, noise=0.02)
    (got,) = _names(submission, W.unsqueeze(0), [factors])
    hint = ""
    if any("features in" in g for g in got):
        hint = (" Your dimensions are too high: with noise every matrix has full rank, so count the singular values "
                "above 10% of the largest (torch.linalg.svdvals), not torch.linalg.matrix_rank's default.")
    expect(got == names, f"A pentagon, a digon and a triangle with 2% noise: expected {names}, got {got}.{hint}")


@prop("name_polytopes", points=1)
def test_name_polytopes_uses_each_factors_own_columns(submission):
    W, layouts = trained_like(seed=8)
    factors = [[f.features for f in inst] for inst in geometry.tegum_factors(W)]
    want = _reference_names(W, factors)
    got = _names(submission, W, factors)
    for k in range(W.shape[0]):
        expect(got[k] == want[k],
               f"Instance {k} of weights like a trained model's (with factors given as {factors[k]}): expected "
               f"{want[k]}, got {got[k]}. Each factor's dimension is the rank of *its own* columns W[k][:, factor].")
    # Shapes the table does not name get "k features in d dimensions", e.g. 3 unit vectors spanning 3 dims.
    W = tegum_product([torch.eye(3), regular_polygon(7)]).unsqueeze(0)
    W[0, :3, 1] += 0.5  # three features in 3 dimensions that overlap: one factor
    factors = [[(0, 1, 2), (3, 4, 5, 6, 7, 8, 9)]]
    want = ["3 features in 3 dimensions", "7 features in 2 dimensions"]
    (got,) = _names(submission, W, factors)
    expect(got == want, f"Shapes without a name are called 'k features in d dimensions' (as polytope_name does): "
           f"expected {want}, got {got}.")
