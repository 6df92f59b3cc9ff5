"""Lesson 3's correct alternatives: implementations written differently from the solution that keep full marks.

The generic lesson proof (tests/test_lesson_proofs.py) grades each one and requires full marks.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.colors import Normalize


def _unit_where(W):
    n = W.norm(dim=1, keepdim=True)
    return torch.where(n > 0, W / torch.where(n > 0, n, torch.ones_like(n)), torch.zeros_like(W))


def _sup_loop(W):
    k, _, n = W.shape
    out = torch.zeros(k, n, dtype=W.dtype)
    for a in range(k):
        for i in range(n):
            norm = W[a, :, i].norm()
            if norm == 0:
                continue
            for j in range(n):
                if j != i:
                    out[a, i] += (W[a, :, i] @ W[a, :, j] / norm) ** 2
    return out


def _sup_float64(W):
    Wd = W.detach().double()
    norms = Wd.norm(dim=1)
    G = torch.einsum("kmi,kmj->kij", Wd, Wd)
    sq = G.square() / (norms.square()[:, :, None] + 1e-300)
    sq = sq * (1 - torch.eye(W.shape[-1], dtype=torch.float64))
    return sq.sum(-1).to(W.dtype)


def _sup_mask(W):
    unit = _unit_where(W)
    overlaps = torch.bmm(unit.transpose(1, 2), W)
    mask = ~torch.eye(W.shape[-1], dtype=torch.bool)
    return (overlaps.square() * mask).sum(-1)


def _sup_nan_to_num(W):
    W_hat = torch.nan_to_num(W / W.norm(dim=1, keepdim=True))   # 0 / 0 is NaN: zero columns become 0
    sq = (W_hat.transpose(-1, -2) @ W).square()
    return sq.sum(-1) - torch.diagonal(sq, dim1=-2, dim2=-1)


def _sup_minus_norms(W):
    """The j = i term of the full sum is ||W_i||^2: subtract it instead of masking the diagonal."""
    norms_sq = W.square().sum(dim=1)
    G = W.mT @ W
    full = G.square().sum(-1) / norms_sq.clamp_min(1e-30)
    return torch.where(norms_sq > 0, full - norms_sq, torch.zeros_like(full))


def _bars_pyplot(norms, superposition, titles=None):
    import matplotlib.pyplot as plt

    k, n = norms.shape
    fig, axes = plt.subplots(1, k, squeeze=False)
    for i, ax in enumerate(axes[0]):
        colours = colormaps["viridis"](Normalize(0, 1, clip=True)(superposition[i].detach().numpy()))
        ax.barh(np.arange(n), norms[i].detach().numpy(), color=colours)
        ax.invert_yaxis()
        ax.set_title(titles[i] if titles else f"instance {i}")
    return fig


def _bars_vertical(norms, superposition, titles=None):
    from matplotlib.figure import Figure

    k, n = norms.shape
    fig = Figure()
    for i in range(k):
        ax = fig.add_subplot(1, k, i + 1)
        for j in range(n):  # one call per bar, in feature order, left to right
            s = min(float(superposition[i, j]), 1.0)
            ax.bar([j], [float(norms[i, j])], color=colormaps["magma"](s))
        ax.set_title(titles[i] if titles is not None else f"instance {i}")
    return fig


def _bars_reversed_positions(norms, superposition, titles=None):
    from matplotlib.figure import Figure

    norms, sup = norms.detach().double(), superposition.detach().double()
    k, n = norms.shape
    fig = Figure(layout="constrained")
    axes = fig.subplots(1, k, squeeze=False)[0]
    for i, ax in enumerate(axes):
        ax.barh(list(range(n - 1, -1, -1)), norms[i].tolist(), color=colormaps["Reds"](sup[i].clamp(0, 1).tolist()))
        ax.set_xlim(0, max(1.1, 1.05 * norms.max().item()))
        ax.set_title((titles or [f"instance {a}" for a in range(k)])[i])
    return fig


ALTERNATIVES = {
    "feature_norms": [
        lambda W: torch.linalg.vector_norm(W, dim=1),
        lambda W: torch.einsum("kmi,kmi->ki", W, W).sqrt(),
        lambda W: torch.stack([w.T.norm(dim=1) for w in W]),
        lambda W: W.double().square().sum(dim=-2).sqrt().to(W.dtype),
    ],
    "superposition": [_sup_loop, _sup_float64, _sup_mask, _sup_nan_to_num, _sup_minus_norms],
    "gram": [
        lambda W: torch.einsum("kmi,kmj->kij", W, W),
        lambda W: torch.bmm(W.transpose(1, 2), W),
        lambda W: torch.stack([w.T @ w for w in W]),
        lambda W: (W.double().unsqueeze(-1) * W.double().unsqueeze(-2)).sum(1).to(W.dtype),
    ],
    "feature_bars": [_bars_pyplot, _bars_vertical, _bars_reversed_positions],
    "features_per_density": [
        lambda norms, threshold=0.5: (norms > threshold).long().sum(-1),
        lambda norms, threshold=0.5: torch.where(norms > threshold, 1, 0).sum(dim=1),
        lambda norms, threshold=0.5: torch.tensor([sum(1 for v in row.tolist() if v > threshold) for row in norms]),
        lambda norms, threshold=0.5: torch.count_nonzero(norms.detach() > threshold, dim=-1),
        lambda norms, threshold=0.5: (norms.detach().double() > float(threshold)).int().sum(dim=-1, dtype=torch.int64),
    ],
}
