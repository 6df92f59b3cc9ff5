"""The geometry of superposition: tegum factors and the polytopes features form.

When features are superposed, they organise into *tegum factors*: groups of
features that interfere only with each other, living in mutually orthogonal
subspaces. Inside a factor, ``k`` features typically sit on a regular polytope
in ``d`` dimensions, and each then has feature dimensionality ``d / k``:

=====================  ==  ==  =========
shape                  k   d   D_i
=====================  ==  ==  =========
dedicated dimension    1   1   1
digon (antipodal)      2   1   1/2
triangle               3   2   2/3
tetrahedron            4   3   3/4
pentagon               5   2   2/5
square antiprism       8   3   3/8
=====================  ==  ==  =========

:func:`tegum_factors` finds the factors from ``W`` alone; :func:`shape_counts`
tallies their shapes. :data:`DIMENSIONALITY_LINES` are the fractions the
paper's feature-dimensionality plot marks, and :func:`fraction_on_lines`
measures how many of a model's features sit on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import torch

from .metrics import feature_dimensionality, represented, unit_directions, REPRESENTED_NORM

__all__ = [
    "POLYTOPES",
    "Factor",
    "polytope_name",
    "tegum_factors",
    "OVERLAP_THRESHOLD",
    "DIMENSIONALITY_LINES",
    "distance_to_lines",
    "fraction_on_lines",
    "shape_counts",
]

POLYTOPES: dict[tuple[int, int], str] = {
    (1, 1): "dedicated dimension",
    (2, 1): "digon",
    (3, 2): "triangle",
    (4, 2): "square",
    (5, 2): "pentagon",
    (6, 2): "hexagon",
    (4, 3): "tetrahedron",
    (8, 3): "square antiprism",
}
"""``(features k, dimensions d) -> name`` for the regular shapes the paper observes."""

OVERLAP_THRESHOLD = 0.1
"""Two features share a factor when ``|W_hat_i . W_hat_j|`` exceeds this."""


@dataclass(frozen=True)
class Factor:
    """One tegum factor: ``features`` spanning ``dimension`` dimensions.

    ``dimensionality`` is the mean feature dimensionality of its features
    (``d / k`` for a regular polytope); ``regular`` says whether every feature
    is within tolerance of ``d / k``.
    """

    features: tuple[int, ...]
    dimension: int
    name: str
    dimensionality: float
    regular: bool

    @property
    def fraction(self) -> Fraction:
        """``d / k`` as a fraction, e.g. ``Fraction(2, 5)`` for a pentagon."""
        return Fraction(self.dimension, len(self.features))


def polytope_name(k: int, d: int) -> str:
    """The shape ``k`` features make in ``d`` dimensions, e.g. ``polytope_name(5, 2) == "pentagon"``."""
    return POLYTOPES.get((k, d), f"{k} features in {d} dimensions")


def _components(adjacent: torch.Tensor) -> list[list[int]]:
    n = adjacent.shape[0]
    seen, groups = set(), []
    for start in range(n):
        if start in seen:
            continue
        stack, group = [start], []
        seen.add(start)
        while stack:
            i = stack.pop()
            group.append(i)
            for j in torch.nonzero(adjacent[i]).flatten().tolist():
                if j not in seen:
                    seen.add(j)
                    stack.append(j)
        groups.append(sorted(group))
    return groups


def tegum_factors(
    W: torch.Tensor,
    norm_threshold: float = REPRESENTED_NORM,
    overlap: float = OVERLAP_THRESHOLD,
    tolerance: float = 0.08,
) -> list[list[Factor]]:
    """Group each instance's represented features into tegum factors and name each shape.

    Args:
        W: ``(n_instances, n_hidden, n_features)``.
        norm_threshold: features with ``||W_i||`` at or below this are unlearned and skipped.
        overlap: features interfere (share a factor) when ``|cos| > overlap``.
        tolerance: a factor is regular when every feature's dimensionality is
            within this of ``d / k``.

    Returns:
        for each instance, its factors sorted by first feature. The dimension
        of a factor is the rank of its features' directions (singular values
        above 10% of the largest).
    """
    Wh = unit_directions(W)
    rep = represented(W, norm_threshold)
    dims = feature_dimensionality(W)
    out: list[list[Factor]] = []
    for k in range(W.shape[0]):
        idx = torch.nonzero(rep[k]).flatten()
        if idx.numel() == 0:
            out.append([])
            continue
        directions = Wh[k][:, idx]
        adjacent = (directions.mT @ directions).abs() > overlap
        factors = []
        for group in _components(adjacent):
            features = tuple(idx[group].tolist())
            sv = torch.linalg.svdvals(W[k].detach()[:, list(features)])
            d = int((sv > 0.1 * sv[0]).sum().item())
            Di = dims[k, list(features)]
            regular = bool(((Di - d / len(features)).abs() <= tolerance).all())
            factors.append(Factor(features, d, polytope_name(len(features), d), float(Di.mean()), regular))
        out.append(sorted(factors, key=lambda f: f.features[0]))
    return out


# --------------------------------------------------------------------------- the lines of the dimensionality plot

DIMENSIONALITY_LINES: dict[str, Fraction] = {
    "dedicated dimension": Fraction(1),
    "tetrahedron": Fraction(3, 4),
    "triangle": Fraction(2, 3),
    "digon": Fraction(1, 2),
    "pentagon": Fraction(2, 5),
    "square antiprism": Fraction(3, 8),
}
"""The feature dimensionalities ``d / k`` the paper's scatter plot marks with lines, by shape."""


def distance_to_lines(D: torch.Tensor, lines: "dict[str, Fraction] | None" = None) -> torch.Tensor:
    """How far each feature dimensionality is from the nearest line: a tensor shaped like ``D``.

    ``lines`` defaults to :data:`DIMENSIONALITY_LINES` (1, 3/4, 2/3, 1/2, 2/5, 3/8).
    """
    values = torch.tensor([float(f) for f in (lines or DIMENSIONALITY_LINES).values()], dtype=torch.float64)
    D = torch.as_tensor(D).detach().cpu().double()
    return (D[..., None] - values).abs().min(dim=-1).values.to(torch.float32)


def fraction_on_lines(
    W: torch.Tensor, tolerance: float = 0.05, norm_threshold: float = REPRESENTED_NORM
) -> torch.Tensor:
    """For each instance, the share of its represented features whose dimensionality is within ``tolerance`` of a line.

    ``W: (n_instances, n_hidden, n_features) -> (n_instances,)``; an instance that
    represents no feature gives ``nan``. Unlearned features (``||W_i|| <=
    norm_threshold``) sit on the 0 line by definition and are not counted.
    """
    rep = represented(W, norm_threshold)
    near = distance_to_lines(feature_dimensionality(W)) <= tolerance
    count = rep.sum(dim=-1)
    share = (near & rep).sum(dim=-1).float() / count.clamp_min(1)
    return torch.where(count > 0, share, torch.full_like(share, float("nan")))


def shape_counts(factors: list[list[Factor]]) -> list[dict[str, int]]:
    """``{shape name: how many}`` per instance, most common first; irregular factors are named ``"... (irregular)"``."""
    out = []
    for instance in factors:
        counts: dict[str, int] = {}
        for f in instance:
            name = f.name if f.regular else f"{f.name} (irregular)"
            counts[name] = counts.get(name, 0) + 1
        out.append(dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))))
    return out
