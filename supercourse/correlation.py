"""Correlated and anticorrelated features (lesson 06): the model that trains on them and the geometry readouts.

Features come in consecutive *sets* of ``set_size``: features ``k*set_size ...
(k+1)*set_size - 1`` form set ``k``. In a **correlated** set the features are
zero or non-zero together; in an **anticorrelated** set at most one is
non-zero (:mod:`supercourse.data`). Every feature keeps the same marginal
density ``p`` whichever generator made it, so only the joint structure
differs, and the geometry a model learns shows what that structure does:

* correlated features go **orthogonal** when they can (:func:`partner_cosines`
  near 0), and features of *different* sets take the antipodal slots
  (:func:`cross_set_min_cosines` near -1);
* anticorrelated partners go **antipodal** (partner cosine near -1): they are
  never active together, so their negative interference costs nothing;
* correlated features that cannot all be orthogonal sit **side by side**
  (positive partner cosine), preferring positive interference to negative;
* with room (2 sets of 10 in m=10) each set forms a **local almost-orthogonal
  basis**: the set's block of ``W^T W`` is near the identity, interference only
  across sets (:func:`block_interference`);
* as density grows, correlated pairs **collapse** onto their principal
  component ``(x_a + x_b)/sqrt(2)`` (:func:`collapsed_sets`).

All readouts take ``W: (n_instances, n_hidden, n_features)`` (or one instance,
``(n_hidden, n_features)``, read as a single instance) and return tensors with
the instance dimension first.
"""

from __future__ import annotations

from typing import Literal

import torch

from ._validate import check_positive_int, check_tensor
from .data import anticorrelated_sparse, correlated_sparse, per_feature
from .metrics import REPRESENTED_NORM
from .model import ToyModel

__all__ = [
    "KINDS",
    "SetModel",
    "set_of",
    "cosines",
    "partner_cosines",
    "cross_set_min_cosines",
    "block_interference",
    "collapsed_sets",
    "COLLAPSE_COSINE",
]

KINDS = ("correlated", "anticorrelated")

COLLAPSE_COSINE = 0.9
"""A correlated pair has collapsed onto its principal component when both partners are represented and
their directions' cosine exceeds this (the principal component is their common direction)."""


class SetModel(ToyModel):
    """A :class:`ToyModel` trained on sets of correlated or anticorrelated features.

    Args:
        n_sets, set_size: ``n_features = n_sets * set_size``; set ``k`` is features
            ``k*set_size ... (k+1)*set_size - 1``.
        n_hidden, n_instances, importance, activation, seed: as :class:`ToyModel`.
        kind: ``"correlated"`` (a set is all zero or all active) or
            ``"anticorrelated"`` (at most one active feature per set).
        feature_probability: each feature's marginal density: a float, or a
            tensor ``(n_instances,)`` or ``(n_instances, n_sets)`` (one value per set).

    Its :meth:`generate_batch` draws with :func:`supercourse.data.correlated_sparse`
    or :func:`~supercourse.data.anticorrelated_sparse`, so :func:`supercourse.train`
    trains it through autograd on those data.
    """

    def __init__(
        self,
        n_sets: int,
        set_size: int,
        n_hidden: int,
        n_instances: int = 1,
        kind: Literal["correlated", "anticorrelated"] = "correlated",
        feature_probability: float | torch.Tensor = 0.05,
        importance: float | torch.Tensor = 1.0,
        activation: Literal["relu", "linear"] = "relu",
        seed: int | None = None,
    ) -> None:
        self.n_sets = check_positive_int("n_sets", n_sets)
        self.set_size = check_positive_int("set_size", set_size)
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        n_instances = check_positive_int("n_instances", n_instances)
        p_sets = per_feature("feature_probability", feature_probability, n_instances, n_sets, "instances")
        if kind == "anticorrelated" and (p_sets * set_size > 1 + 1e-6).any():
            raise ValueError(
                f"feature_probability must be <= 1/set_size = {1 / set_size:g} for anticorrelated sets, "
                f"got {p_sets.max().item():g}"
            )
        p = p_sets.repeat_interleave(set_size, dim=1)
        super().__init__(n_sets * set_size, n_hidden, n_instances, p, importance, activation, seed)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, kind={self.kind!r}, n_sets={self.n_sets}, set_size={self.set_size}"

    @property
    def set_probability(self) -> torch.Tensor:
        """``(n_instances, n_sets)``: each set's features' marginal density."""
        return self.feature_probability[:, :: self.set_size]

    def generate_batch(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(batch_size, n_instances, n_features)`` sets of correlated or anticorrelated features."""
        draw = correlated_sparse if self.kind == "correlated" else anticorrelated_sparse
        return draw(batch_size, self.set_probability.contiguous(), self.set_size, generator=generator)


def _instances(W: object) -> torch.Tensor:
    W = check_tensor("W", W, shape=None)
    if W.dim() == 2:
        W = W.unsqueeze(0)
    if W.dim() != 3:
        raise ValueError(f"W must have shape (n_instances, n_hidden, n_features) or (n_hidden, n_features), got {tuple(W.shape)}")
    return W.detach()


def _sets(n_features: int, set_size: int) -> int:
    set_size = check_positive_int("set_size", set_size)
    if n_features % set_size:
        raise ValueError(f"set_size={set_size} does not divide n_features={n_features}")
    return n_features // set_size


def set_of(n_features: int, set_size: int) -> torch.Tensor:
    """``(n_features,)`` the set index of every feature: ``[0]*set_size + [1]*set_size + ...``."""
    n_sets = _sets(check_positive_int("n_features", n_features), set_size)
    return torch.arange(n_sets).repeat_interleave(set_size)


def cosines(W: torch.Tensor) -> torch.Tensor:
    """``(n_instances, n_features, n_features)`` the cosine between every two features' directions ``W_i``.

    A feature with a zero column has cosine 0 with everything.
    """
    W = _instances(W)
    unit = W / W.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return unit.mT @ unit


def partner_cosines(W: torch.Tensor, set_size: int = 2) -> torch.Tensor:
    """``(n_instances, n_sets)`` the mean cosine between the features of each set (over its distinct pairs).

    For pairs (``set_size=2``) it is the cosine between the two partners: about
    0 for orthogonal partners, -1 antipodal, +1 collapsed onto one direction.
    """
    W = _instances(W)
    n_sets = _sets(W.shape[2], set_size)
    if set_size < 2:
        raise ValueError(f"set_size must be >= 2 for partners, got {set_size}")
    C = cosines(W).reshape(W.shape[0], n_sets, set_size, n_sets, set_size)
    blocks = torch.diagonal(C, dim1=1, dim2=3).permute(0, 3, 1, 2)  # (K, n_sets, s, s)
    off = ~torch.eye(set_size, dtype=torch.bool, device=W.device)
    return blocks[..., off].mean(-1)


def cross_set_min_cosines(W: torch.Tensor, set_size: int = 2) -> torch.Tensor:
    """``(n_instances, n_features)`` each feature's most negative cosine with a feature of another set.

    -1 when some feature of another set is exactly opposite (antipodal) to it.
    """
    W = _instances(W)
    s = set_of(W.shape[2], set_size)
    same = s[:, None] == s[None, :]
    return cosines(W).masked_fill(same, float("inf")).amin(-1)


def block_interference(W: torch.Tensor, set_size: int) -> dict[str, torch.Tensor]:
    """How ``W^T W`` splits into within-set blocks and across-set interference; each value ``(n_instances,)``.

    * ``"diagonal"``: mean ``||W_i||^2`` (1 for a feature fully represented);
    * ``"within"``: mean ``|W_i . W_j|`` over distinct pairs of the same set (0 for a local orthogonal basis);
    * ``"across"``: mean ``|W_i . W_j|`` over pairs of different sets (where the interference goes).
    """
    W = _instances(W)
    s = set_of(W.shape[2], set_size)
    G = W.mT @ W
    eye = torch.eye(W.shape[2], dtype=torch.bool)
    same = (s[:, None] == s[None, :]) & ~eye
    across = s[:, None] != s[None, :]
    out = {"diagonal": torch.diagonal(G, dim1=1, dim2=2).mean(-1)}
    out["within"] = G.abs()[:, same].mean(-1) if same.any() else G.new_zeros(W.shape[0])
    out["across"] = G.abs()[:, across].mean(-1) if across.any() else G.new_zeros(W.shape[0])
    return out


def collapsed_sets(W: torch.Tensor, set_size: int = 2, cosine: float = COLLAPSE_COSINE) -> torch.Tensor:
    """``(n_instances,)`` how many correlated sets collapsed onto their principal component.

    A set has collapsed when all its features are represented (``||W_i|| >
    0.5``) and every two of them point the same way (cosine above ``cosine``):
    the model then stores the set's sum, its principal component, in one
    direction instead of the features themselves.
    """
    W = _instances(W)
    n_sets = _sets(W.shape[2], set_size)
    C = cosines(W).reshape(W.shape[0], n_sets, set_size, n_sets, set_size)
    blocks = torch.diagonal(C, dim1=1, dim2=3).permute(0, 3, 1, 2)  # (K, n_sets, s, s)
    aligned = (blocks > cosine).flatten(2).all(-1)
    present = (W.norm(dim=1) > REPRESENTED_NORM).reshape(W.shape[0], n_sets, set_size).all(-1)
    return (aligned & present).sum(-1)
