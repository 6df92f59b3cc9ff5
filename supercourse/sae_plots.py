"""Figures of sparse autoencoders: decoder-vs-true cosines, recovery across a sweep, 2-D dictionaries.

Every function takes tensors (CPU or not) and returns a matplotlib ``Figure``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch

from ._validate import check_tensor

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["cosine_heatmap", "recovery_sweep", "directions_2d"]


def _unit(M: torch.Tensor) -> torch.Tensor:
    return M / M.norm(dim=0, keepdim=True).clamp_min(1e-12)


def cosine_heatmap(
    features: torch.Tensor, W_d: torch.Tensor, title: str = "", max_latents: int | None = None
) -> "Figure":
    """Cosine of every true feature (rows) with every decoder column (columns), latents sorted by their best feature.

    Args:
        features: ``(d_in, n_features)`` true directions (columns).
        W_d: ``(d_in, d_sae)`` one SAE's decoder (zero columns are dropped).
        title: the axes title.
        max_latents: show at most this many latents (the best-matching first).

    A perfect dictionary shows a bright diagonal: each feature has one latent
    along it. Latents that match nothing (dead or duplicated) come last.
    """
    import matplotlib.pyplot as plt

    features = check_tensor("features", features, shape=(None, None), names=("d_in", "n_features")).detach().cpu().float()
    W_d = check_tensor("W_d", W_d, shape=(features.shape[0], None), names=("d_in", "d_sae")).detach().cpu().float()
    W_d = W_d[:, W_d.norm(dim=0) > 0]
    cos = _unit(features).T @ _unit(W_d)  # (n_features, d_sae)
    best_val, best_feature = cos.max(dim=0)
    # Latents in the order of the feature they match best (ties: the closer one first); weak matches last.
    key = torch.where(best_val > 0.5, best_feature.float() - best_val * 1e-3, features.shape[1] + 1 - best_val)
    order = key.argsort()
    if max_latents is not None:
        order = order[:max_latents]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    im = ax.imshow(cos[:, order].numpy(), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    ax.set(xlabel="SAE latents (decoder columns), sorted by best-matching feature", ylabel="true features", title=title)
    fig.colorbar(im, ax=ax, label="cosine similarity")
    return fig


def recovery_sweep(
    l1_coeffs: Sequence[float],
    ratios: Sequence[float],
    mmcs: torch.Tensor,
    dead_fraction: torch.Tensor,
    fvu: torch.Tensor,
    topk: dict[float, float] | None = None,
) -> "Figure":
    """Three panels against the L1 coefficient, one line per dictionary size: MMCS, dead latents, unexplained variance.

    Args:
        l1_coeffs: ``(n_l1,)`` the lambdas (0 is drawn at the left edge of the log axis).
        ratios: ``(n_ratios,)`` dictionary size / number of true features.
        mmcs, dead_fraction, fvu: ``(n_ratios, n_l1)``.
        topk: optional ``{ratio: MMCS}`` of TopK SAEs, drawn as horizontal marks on the first panel.
    """
    import matplotlib.pyplot as plt

    lam = torch.as_tensor(l1_coeffs, dtype=torch.float64)
    n_r, n_l = len(ratios), lam.shape[0]
    for name, t in (("mmcs", mmcs), ("dead_fraction", dead_fraction), ("fvu", fvu)):
        check_tensor(name, t, shape=(n_r, n_l), names=("n_ratios", "n_l1"))
    positive = lam[lam > 0]
    zero_at = float(positive.min()) / 3 if positive.numel() else 1e-3
    x = torch.where(lam > 0, lam, torch.full_like(lam, zero_at)).numpy()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), layout="constrained")
    panels = [(mmcs, "MMCS (true features vs decoder)", (0, 1.02)), (dead_fraction, "dead latents (fraction)", (-0.02, 1.02)),
              (fvu, "fraction of variance unexplained", (-0.02, 1.05))]
    colors = plt.get_cmap("viridis")(torch.linspace(0, 0.9, n_r).numpy())
    for ax, (values, label, ylim) in zip(axes, panels):
        for r, color, row in zip(ratios, colors, values.detach().cpu()):
            ax.plot(x, row.numpy(), "o-", color=color, label=f"dictionary {r:g}x")
        ax.set(xscale="log", xlabel="L1 coefficient λ (leftmost point: λ = 0)", ylabel=label, ylim=ylim)
        ax.axvline(zero_at * 1.7, color="0.8", lw=0.8, ls=":")
    if topk:
        for (r, value), color in zip(sorted(topk.items()), ["C3", "C1", "C4", "C5"]):
            axes[0].axhline(value, color=color, ls="--", lw=1, label=f"TopK, dictionary {r:g}x")
    axes[0].legend(fontsize=7, loc="lower left")
    return fig


def directions_2d(W: torch.Tensor, W_d: torch.Tensor, title: str = "") -> "Figure":
    """A 2-D toy model's feature directions (arrows) and an SAE's decoder directions (dashed), one panel.

    ``W: (2, n_features)`` the model's columns; ``W_d: (2, d_sae)`` the decoder (unit columns, drawn at length 1.2).
    """
    import matplotlib.pyplot as plt

    W = check_tensor("W", W, shape=(2, None), names=("n_hidden=2", "n_features")).detach().cpu().float()
    W_d = check_tensor("W_d", W_d, shape=(2, None), names=("d_in=2", "d_sae")).detach().cpu().float()
    fig, ax = plt.subplots(figsize=(3.6, 3.6), layout="constrained")
    for i in range(W.shape[1]):
        ax.annotate("", xy=W[:, i].tolist(), xytext=(0, 0), arrowprops=dict(arrowstyle="-|>", color=f"C{i}", lw=2))
    for j, d in enumerate(_unit(W_d).T * 1.2):
        ax.plot([0, d[0]], [0, d[1]], ls="--", color="k", lw=1, label="SAE decoder" if j == 0 else None)
    lim = max(1.3, float(W.norm(dim=0).max()) * 1.1)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", title=title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="lower left", fontsize=7)
    return fig
