"""Random rotations: turn hand-made weights so that no hidden axis gives the answer away."""

from __future__ import annotations

import torch

from .randomness import secret_gen

__all__ = ["rotation", "rotate"]


def rotation(seed: int, m: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A random ``(m, m)`` orthogonal matrix, uniform (Haar) over rotations and reflections, from ``seed``."""
    if m < 1:
        raise ValueError(f"m must be a positive int, got {m}")
    gen = secret_gen(seed)
    q, r = torch.linalg.qr(torch.randn(m, m, generator=gen, dtype=torch.float64))
    return (q * torch.sign(torch.diagonal(r))).to(dtype)


def rotate(W: torch.Tensor, seed: int) -> torch.Tensor:
    """``R @ W`` for a random rotation ``R`` of the hidden space: ``W`` is ``(m, n)`` or ``(n_instances, m, n)``."""
    return rotation(seed, W.shape[-2], torch.float64).to(W.dtype) @ W
