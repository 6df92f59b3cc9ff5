"""Weights to check metrics with: random ``W`` of controllable norms and ranks, and the edge cases.

Every ``W`` here is ``(n_instances, n_hidden, n_features)``: column ``W[k, :, i]``
is feature ``i`` of instance ``k``. The norms are spread over a range so that a
missing normalisation shows; ``rank`` confines every instance's columns to a
random subspace (an unused hidden dimension); :data:`TINY` norms sit strictly
between 0 and 0.1, where an epsilon added to a norm stops being negligible.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .randomness import secret_gen

from .rotations import rotation

__all__ = ["random_W", "with_zero_columns", "as_parameter", "TINY", "USUAL"]

USUAL: tuple[float, float] = (0.1, 1.4)
"""Norms of ordinary random features: both sides of 1, none near 0."""

TINY: tuple[float, float] = (0.005, 0.1)
"""Very small but non-zero norms (between 0 and 0.1)."""


def random_W(
    seed: int,
    n_instances: int,
    n_hidden: int,
    n_features: int,
    norms: tuple[float, float] = USUAL,
    rank: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Random directions with norms uniform in ``norms``: ``(n_instances, n_hidden, n_features)``.

    Args:
        seed: seeds everything (the same seed gives the same ``W``).
        norms: ``(low, high)`` of the columns' lengths.
        rank: if given (``1 <= rank <= n_hidden``), every instance's columns lie in a
            random ``rank``-dimensional subspace, so ``W`` is rank-deficient.
        dtype: of the result (drawn in float64, then cast).
    """
    low, high = norms
    if not 0 <= low <= high:
        raise ValueError(f"norms must be (low, high) with 0 <= low <= high, got {norms}")
    if rank is not None and not 1 <= rank <= n_hidden:
        raise ValueError(f"rank must lie in [1, n_hidden={n_hidden}], got {rank}")
    gen = secret_gen(seed)
    r = n_hidden if rank is None else rank
    W = torch.randn(n_instances, r, n_features, generator=gen, dtype=torch.float64)
    if rank is not None:
        basis = torch.stack([rotation(seed * 1009 + k, n_hidden, torch.float64)[:, :rank] for k in range(n_instances)])
        W = basis @ W
    W = W / W.norm(dim=1, keepdim=True)
    lengths = low + (high - low) * torch.rand(n_instances, 1, n_features, generator=gen, dtype=torch.float64)
    return (W * lengths).to(dtype)


def with_zero_columns(W: torch.Tensor, columns: Sequence[tuple[int, int]], instances: Sequence[int] = ()) -> torch.Tensor:
    """A copy of ``W`` with columns ``(k, i)`` and whole instances ``k`` set to exactly 0 (unlearned features)."""
    W = W.clone()
    for k, i in columns:
        W[k, :, i] = 0.0
    for k in instances:
        W[k] = 0.0
    return W


def as_parameter(t: torch.Tensor) -> torch.nn.Parameter:
    """``t`` as a trainable ``nn.Parameter`` (``requires_grad=True``): code that round-trips through NumPy breaks."""
    return torch.nn.Parameter(t.detach().clone())


def unit_columns(W: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``W`` with every column (dimension -2: the hidden axis) scaled to length 1; columns shorter than ``eps`` stay 0.

    ``W: (..., n_hidden, n_features)`` -> the same shape (a guarded ``W / ||W_i||``, never NaN).
    """
    n = W.norm(dim=-2, keepdim=True)
    return torch.where(n > eps, W / n.clamp_min(eps), torch.zeros_like(W))
