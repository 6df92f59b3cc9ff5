"""The polytopes features form, as weight columns, named as :mod:`supercourse.geometry` names them.

Each builder returns ``(d, k)``: ``k`` unit feature directions in ``d`` dimensions.
:data:`SHAPES` maps every name of :data:`supercourse.geometry.POLYTOPES` (the
names learners must produce) to its builder, :data:`DIMENSIONALITY` to its
``d / k``. :func:`tegum_product` puts blocks on mutually orthogonal subspaces.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

from supercourse.geometry import POLYTOPES

from .rotations import rotation

__all__ = [
    "regular_polygon", "tetrahedron", "square_antiprism", "digon", "dedicated",
    "SHAPES", "DIMENSIONALITY", "tegum_product", "stack_instances",
]


def regular_polygon(k: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(2, k)``: ``k`` unit vectors at angles ``2 pi i / k``."""
    angles = torch.arange(k, dtype=torch.float64) * 2 * math.pi / k
    return torch.stack([angles.cos(), angles.sin()]).to(dtype)


def tetrahedron(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(3, 4)``: the vertices of a regular tetrahedron, unit length."""
    v = torch.tensor([[1.0, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=torch.float64) / math.sqrt(3)
    return v.T.to(dtype)


def square_antiprism(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(3, 8)``: two squares turned by 45 degrees at heights ``+-1/sqrt(2)``, unit length (``D_i = 3/8``)."""
    pts = [[math.cos(i * math.pi / 4), math.sin(i * math.pi / 4), (1 if i % 2 == 0 else -1) / math.sqrt(2)] for i in range(8)]
    return torch.nn.functional.normalize(torch.tensor(pts, dtype=torch.float64), dim=1).T.to(dtype)


def digon(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(1, 2)``: an antipodal pair."""
    return torch.tensor([[1.0, -1.0]], dtype=dtype)


def dedicated(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(1, 1)``: a feature with a dimension of its own."""
    return torch.ones(1, 1, dtype=dtype)


SHAPES: dict[str, Callable[[], torch.Tensor]] = {
    "dedicated dimension": dedicated,
    "digon": digon,
    "triangle": lambda: regular_polygon(3),
    "square": lambda: regular_polygon(4),
    "pentagon": lambda: regular_polygon(5),
    "hexagon": lambda: regular_polygon(6),
    "tetrahedron": tetrahedron,
    "square antiprism": square_antiprism,
}
"""Every named polytope of :data:`supercourse.geometry.POLYTOPES`, by name."""

assert set(SHAPES) == set(POLYTOPES.values()), "toolkit.polytopes.SHAPES must name what supercourse.geometry names"

DIMENSIONALITY: dict[str, float] = {name: d / k for (k, d), name in POLYTOPES.items()}
"""``d / k`` by name: the feature dimensionality of each feature of a regular polytope."""


def tegum_product(blocks: Sequence[torch.Tensor], m: int | None = None, seed: int | None = None) -> torch.Tensor:
    """Blocks ``(d_b, k_b)`` on orthogonal subspaces: ``(m, sum k_b)`` (``m`` defaults to ``sum d_b``).

    With ``seed``, the result is turned by a random rotation of the ``m`` hidden
    dimensions, so no axis gives the blocks away.
    """
    d = sum(b.shape[0] for b in blocks)
    m = d if m is None else m
    if m < d:
        raise ValueError(f"m must be at least the blocks' total dimension {d}, got {m}")
    dtype = blocks[0].dtype if blocks else torch.float32
    W = torch.zeros(m, sum(b.shape[1] for b in blocks), dtype=dtype)
    r = c = 0
    for b in blocks:
        W[r : r + b.shape[0], c : c + b.shape[1]] = b
        r, c = r + b.shape[0], c + b.shape[1]
    return W if seed is None else rotation(seed, m, torch.float64).to(dtype) @ W


def stack_instances(Ws: Sequence[torch.Tensor]) -> torch.Tensor:
    """Instances ``(m_k, n_k)`` of different sizes, zero-padded to one ``(n_instances, m, n)``."""
    m = max(w.shape[0] for w in Ws)
    n = max(w.shape[1] for w in Ws)
    out = torch.zeros(len(Ws), m, n, dtype=Ws[0].dtype)
    for k, w in enumerate(Ws):
        out[k, : w.shape[0], : w.shape[1]] = w
    return out
