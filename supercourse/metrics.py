"""Measuring superposition from a model's weights.

Every function takes ``W: (n_instances, n_hidden, n_features)`` (column
``W[k, :, i]`` is feature ``i``'s direction in instance ``k``) and returns
per-instance tensors. A feature with a zero column counts as unlearned: its
normalised direction is 0, so every measure gives 0, never NaN.
"""

from __future__ import annotations

import torch

from ._validate import check_tensor

__all__ = [
    "gram",
    "feature_norms",
    "unit_directions",
    "superposition",
    "dimensions_per_feature",
    "feature_dimensionality",
    "represented",
    "n_represented",
    "n_in_superposition",
    "antipodal_pairs",
    "REPRESENTED_NORM",
    "SUPERPOSITION_THRESHOLD",
    "ANTIPODAL_COSINE",
]

REPRESENTED_NORM = 0.5
"""A feature counts as represented when ``||W_i|| > REPRESENTED_NORM`` (the paper's figures)."""

SUPERPOSITION_THRESHOLD = 0.1
"""A represented feature is in superposition when its interference exceeds this."""

ANTIPODAL_COSINE = -0.9
"""Two represented features form an antipodal pair when their cosine is below this."""

_EPS = 1e-8


def _check_W(W: object) -> torch.Tensor:
    return check_tensor("W", W, shape=(None, None, None), names=("n_instances", "n_hidden", "n_features")).detach()


def gram(W: torch.Tensor) -> torch.Tensor:
    """``W^T W``: ``(n_instances, n_features, n_features)``, entry ``[k, i, j] = W_i . W_j``."""
    W = _check_W(W)
    return W.mT @ W


def feature_norms(W: torch.Tensor) -> torch.Tensor:
    """``||W_i||`` for each feature: ``(n_instances, n_features)``."""
    return _check_W(W).norm(dim=1)


def unit_directions(W: torch.Tensor) -> torch.Tensor:
    """``W_hat``: each column scaled to unit length (zero columns stay zero). Same shape as ``W``."""
    W = _check_W(W)
    norms = W.norm(dim=1, keepdim=True)
    return torch.where(norms > _EPS, W / norms.clamp_min(_EPS), torch.zeros_like(W))


def superposition(W: torch.Tensor) -> torch.Tensor:
    """Interference on each feature, ``sum_{j != i} (W_hat_i . W_j)^2``: ``(n_instances, n_features)``.

    0 means feature ``i`` is orthogonal to every other feature; 1 or more means
    other features can activate its direction as strongly as it does itself.
    """
    W = _check_W(W)
    overlaps = unit_directions(W).mT @ W  # [k, i, j] = W_hat_i . W_j
    sq = overlaps.square()
    return sq.sum(dim=-1) - sq.diagonal(dim1=-2, dim2=-1)


def dimensions_per_feature(W: torch.Tensor) -> torch.Tensor:
    """``D* = m / ||W||_F^2`` for each instance: ``(n_instances,)`` (0 if ``W`` is all zero)."""
    W = _check_W(W)
    frob = W.square().sum(dim=(1, 2))
    return torch.where(frob > _EPS, W.shape[1] / frob.clamp_min(_EPS), torch.zeros_like(frob))


def feature_dimensionality(W: torch.Tensor) -> torch.Tensor:
    """``D_i = ||W_i||^2 / sum_j (W_hat_i . W_j)^2`` (``j`` includes ``i``): ``(n_instances, n_features)``.

    The fraction of a dimension feature ``i`` has to itself: 1 for a dedicated
    dimension, 1/2 for an antipodal pair, ``d/k`` for ``k`` points of a regular
    ``d``-dimensional polytope, 0 for an unlearned feature.
    """
    W = _check_W(W)
    overlaps = unit_directions(W).mT @ W
    denom = overlaps.square().sum(dim=-1)
    norms_sq = W.square().sum(dim=1)
    return torch.where(denom > _EPS, norms_sq / denom.clamp_min(_EPS), torch.zeros_like(denom))


def represented(W: torch.Tensor, threshold: float = REPRESENTED_NORM) -> torch.Tensor:
    """Boolean ``(n_instances, n_features)``: ``||W_i|| > threshold``."""
    return feature_norms(W) > threshold


def n_represented(W: torch.Tensor, threshold: float = REPRESENTED_NORM) -> torch.Tensor:
    """How many features each instance represents: ``(n_instances,)`` integers."""
    return represented(W, threshold).sum(dim=-1)


def n_in_superposition(
    W: torch.Tensor, threshold: float = SUPERPOSITION_THRESHOLD, norm_threshold: float = REPRESENTED_NORM
) -> torch.Tensor:
    """How many represented features share their direction with others: ``(n_instances,)``."""
    return (represented(W, norm_threshold) & (superposition(W) > threshold)).sum(dim=-1)


def antipodal_pairs(
    W: torch.Tensor, cosine: float = ANTIPODAL_COSINE, norm_threshold: float = REPRESENTED_NORM
) -> list[list[tuple[int, int]]]:
    """For each instance, the pairs ``(i, j)``, ``i < j``, of represented features pointing opposite ways.

    A pair counts when ``cos(W_i, W_j) < cosine`` and neither overlaps any
    third represented feature much (each is the other's only strong interferer).
    """
    Wh = unit_directions(W)
    cos = Wh.mT @ Wh
    rep = represented(W, norm_threshold)
    out: list[list[tuple[int, int]]] = []
    for k in range(cos.shape[0]):
        c = cos[k]
        pairs = []
        idx = torch.nonzero(torch.triu(c < cosine, diagonal=1) & rep[k][:, None] & rep[k][None, :])
        for i, j in idx.tolist():
            others = rep[k].clone()
            others[[i, j]] = False
            if (c[i, others].abs() < 0.5).all() and (c[j, others].abs() < 0.5).all():
                pairs.append((i, j))
        out.append(pairs)
    return out
