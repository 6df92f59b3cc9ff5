"""Figures of lesson 12: codes and their metrics, similarity under superposition, a VAE's latent space.

Every function takes tensors or plain numbers (CPU or not) and returns a
matplotlib ``Figure`` made without pyplot.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Mapping, Sequence

import torch

from ._validate import check_tensor

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["code_scatter", "metric_bars", "rotation_scan", "similarity_panels", "latent_panels", "latent_grid"]


def _figure(width: float, height: float) -> "Figure":
    from matplotlib.figure import Figure

    from .plots import _display_in_ipython

    _display_in_ipython()
    return Figure(figsize=(width, height), layout="constrained")


def _clean(ax: "Axes") -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def code_scatter(panels: Sequence[tuple[str, torch.Tensor, torch.Tensor | None]], max_points: int = 4000) -> "Figure":
    """Samples of two-dimensional codes, one panel each, with the factors' directions as arrows.

    Args:
        panels: ``(title, codes (n_samples, 2), W (2, n_factors) or None)`` per panel; only
            samples with a non-zero code are drawn (at most ``max_points``).
    """
    fig = _figure(2.9 * len(panels), 3.2)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, codes, W) in zip(axes, panels):
        z = check_tensor("codes", codes, shape=(None, 2), names=("n_samples", "2")).detach().cpu().double()
        z = z[(z != 0).any(dim=1)][:max_points]
        ax.scatter(z[:, 0].numpy(), z[:, 1].numpy(), s=2, color="0.45", alpha=0.35, rasterized=True)
        if W is not None:
            W = check_tensor("W", W, shape=(2, None), names=("2", "n_factors")).detach().cpu().double()
            for i in range(W.shape[1]):
                ax.annotate("", xy=W[:, i].tolist(), xytext=(0, 0),
                            arrowprops=dict(arrowstyle="-|>", color=f"C{i}", lw=1.8))
        lim = 1.15
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", title=title, xlabel="code 1", ylabel="code 2")
        ax.axhline(0, color="0.9", lw=0.6, zorder=0)
        ax.axvline(0, color="0.9", lw=0.6, zorder=0)
        ax.set_title(title, fontsize=9)
    return fig


def metric_bars(rows: Sequence[Mapping[str, object]], reference: Mapping[str, tuple[float, float]] | None = None) -> "Figure":
    """MIG and DCI disentanglement of each code as bars, with independent figures as black ticks.

    Args:
        rows: ``{"code": name, "mig": float, "dci": float}`` per code (other keys ignored).
        reference: ``{code name: (MIG, DCI-D)}`` measured independently (drawn as ticks).
    """
    names = [str(r["code"]) for r in rows]
    x = torch.arange(len(rows), dtype=torch.float64)
    fig = _figure(1.0 * len(rows) + 2.5, 3.4)
    ax = fig.subplots()
    w = 0.38
    for off, key, label, color in ((-w / 2, "mig", "MIG", "C0"), (w / 2, "dci", "DCI disentanglement (least-squares probe)", "C1")):
        vals = [float(r[key]) for r in rows]
        ax.bar((x + off).numpy(), vals, w, label=label, color=color)
        for xi, v in zip((x + off).tolist(), vals):
            ax.text(xi, v + 0.02, f"{v:.2f}", ha="center", fontsize=7)
        if reference:
            j = 0 if key == "mig" else 1
            for xi, name in zip((x + off).tolist(), names):
                if name in reference and reference[name][j] is not None:
                    ax.plot([xi - w / 2, xi + w / 2], [reference[name][j]] * 2, color="k", lw=1.5)
    if reference:
        ax.plot([], [], color="k", lw=1.5, label="independent measurement")
    ax.set_xticks(x.numpy(), names, rotation=20, ha="right", fontsize=8)
    ax.set(ylim=(0, 1.12), ylabel="score")
    fig.legend(*ax.get_legend_handles_labels(), fontsize=8, loc="outside upper center", ncols=3, frameon=False)
    _clean(ax)
    return fig


def rotation_scan(angles: torch.Tensor, objective: Mapping[str, torch.Tensor], mig: torch.Tensor | None = None) -> "Figure":
    """How a model's objective and MIG change as its latent space is rotated.

    Args:
        angles: ``(n_angles,)`` in radians.
        objective: ``{prior name: (n_angles,)}`` the change of the objective (or of its KL term) from the unrotated model's.
        mig: ``(n_angles,)`` MIG of the rotated latents (optional, right panel).
    """
    deg = (angles.detach().cpu().double() * 180 / math.pi).numpy()
    fig = _figure(7.6 if mig is not None else 4.2, 3.2)
    axes = fig.subplots(1, 2 if mig is not None else 1, squeeze=False)[0]
    ax = axes[0]
    for k, (name, vals) in enumerate(objective.items()):
        ax.plot(deg, vals.detach().cpu().double().numpy(), color=f"C{k}", lw=2, label=f"{name} prior")
    ax.axhline(0, color="0.8", lw=0.8)
    ax.set(xlabel="rotation of the latent space (degrees)", ylabel="change of the KL term (nats)",
           title="the β-VAE objective under rotation")
    ax.legend(fontsize=8, frameon=False)
    _clean(ax)
    if mig is not None:
        ax = axes[1]
        ax.plot(deg, mig.detach().cpu().double().numpy(), color="C2", lw=2)
        ax.set(xlabel="rotation of the latent space (degrees)", ylabel="MIG", title="MIG of the rotated latents",
               ylim=(0, None))
        _clean(ax)
    return fig


def _sorted_correlations(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """``|corr|`` between the units of ``X`` (rows) and ``Y`` (columns), both reordered to put matches on the diagonal."""
    X = X.double() - X.double().mean(0)
    Y = Y.double() - Y.double().mean(0)
    X = X[:, X.norm(dim=0) > 0]
    Y = Y[:, Y.norm(dim=0) > 0]
    C = ((X / X.norm(dim=0)).T @ (Y / Y.norm(dim=0))).abs()
    best = C.max(dim=1)
    rows = best.values.argsort(descending=True)
    cols, seen = [], set()
    for i in rows.tolist():
        j = int(C[i].argmax())
        if j not in seen:
            cols.append(j)
            seen.add(j)
    cols += [j for j in range(C.shape[1]) if j not in seen]
    return C[rows][:, cols]


def similarity_panels(scores: Mapping[str, float], hA: torch.Tensor, hB: torch.Tensor, fA: torch.Tensor,
                      fB: torch.Tensor) -> "Figure":
    """Two networks' hidden layers against each other, and their SAEs' latents.

    Left: linear CKA and mean max correlation of the hidden layers, of a hidden
    layer and its rotation, and of the SAE latents. Middle and right: ``|corr|``
    between the units of network A (rows) and B (columns), hidden neurons then
    SAE latents, reordered so that best matches sit on the diagonal.

    Args:
        scores: :meth:`supercourse.disentanglement.SimilarityResult.scores`.
        hA, hB: ``(n_samples, n_hidden)``; fA, fB: ``(n_samples, d_sae)``.
    """
    fig = _figure(11.5, 3.6)
    axes = fig.subplots(1, 3, width_ratios=[1.3, 1, 1])
    ax = axes[0]
    groups = [("hidden A vs B", "cka_hidden", "mmc_hidden"), ("A vs A rotated", "cka_rotation", None),
              ("SAE latents A vs B", "cka_sae", "mmc_sae")]
    for g, (label, cka_key, mmc_key) in enumerate(groups):
        ax.bar(g - 0.19, scores[cka_key], 0.38, color="C0", label="linear CKA" if g == 0 else None)
        ax.text(g - 0.19, scores[cka_key] + 0.02, f"{scores[cka_key]:.2f}", ha="center", fontsize=8)
        if mmc_key is not None:
            ax.bar(g + 0.19, scores[mmc_key], 0.38, color="C1", label="mean max correlation" if g == 0 else None)
            ax.text(g + 0.19, scores[mmc_key] + 0.02, f"{scores[mmc_key]:.2f}", ha="center", fontsize=8)
    ax.set_xticks(range(len(groups)), [g[0] for g in groups], fontsize=8)
    ax.set(ylim=(0, 1.1), title="similarity of the two networks")
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    _clean(ax)
    for ax, (X, Y, title) in zip(axes[1:], ((hA, hB, "hidden neurons: |corr|, A (rows) vs B"),
                                            (fA, fB, "SAE latents: |corr|, A (rows) vs B"))):
        C = _sorted_correlations(X.detach().cpu(), Y.detach().cpu())
        im = ax.imshow(C.numpy(), cmap="viridis", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        ax.set(title=title, xlabel="network B's units (matched order)", ylabel="network A's units")
        ax.title.set_fontsize(9)
    fig.colorbar(im, ax=axes[2], label="|correlation|")
    return fig


def latent_panels(panels: Sequence[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor | None]], max_points: int = 3000) -> "Figure":
    """Two-dimensional latent spaces: posterior means (grey), factor directions (arrows), SAE dictionary (dashed).

    Args:
        panels: ``(title, mu (n_samples, 2) measured from mu(0), directions (2, n_factors), W_d (2, d_sae) or None)``.
    """
    from matplotlib.lines import Line2D

    fig = _figure(2.7 * len(panels) + 1.2, 3.2)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    n_factors = 0
    for ax, (title, mu, d, W_d) in zip(axes, panels):
        mu = check_tensor("mu", mu, shape=(None, 2), names=("n_samples", "2")).detach().cpu().float()[:max_points]
        d = check_tensor("directions", d, shape=(2, None), names=("2", "n_factors")).detach().cpu().float()
        n_factors = d.shape[1]
        lim = 1.2 * max(float(d.norm(dim=0).max()), 1e-3)
        ax.scatter(mu[:, 0].numpy(), mu[:, 1].numpy(), s=2, color="0.6", alpha=0.3, rasterized=True)
        for i in range(d.shape[1]):
            ax.annotate("", xy=d[:, i].tolist(), xytext=(0, 0), arrowprops=dict(arrowstyle="-|>", color=f"C{i}", lw=2))
        if W_d is not None:
            W_d = check_tensor("W_d", W_d, shape=(2, None), names=("2", "d_sae")).detach().cpu().float()
            u = W_d / W_d.norm(dim=0).clamp_min(1e-12) * lim * 0.95
            for j in range(u.shape[1]):
                ax.plot([0, u[0, j]], [0, u[1, j]], ls="--", color="k", lw=0.9)
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal")
        ax.set_title(title, fontsize=8.5)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [Line2D([], [], color=f"C{i}", lw=2) for i in range(n_factors)]
    handles += [Line2D([], [], color="k", ls="--", lw=0.9), Line2D([], [], color="0.6", marker="o", ls="", ms=3)]
    labels = [f"factor {i}" for i in range(n_factors)] + ["SAE dictionary", "posterior means"]
    fig.legend(handles, labels, loc="outside right upper", fontsize=8, frameon=False)
    return fig


def latent_grid(betas: Sequence[float], densities: Sequence[float], represented: torch.Tensor, fvu: torch.Tensor,
                sum_dim: torch.Tensor, n_latent: int) -> "Figure":
    """Factors represented, reconstruction and packing of every VAE of a beta x density grid.

    Args:
        betas: the KL weights (0: autoencoder), one column each; densities: one row each.
        represented, fvu, sum_dim: ``(n_densities, n_betas)``: factors represented, unexplained
            variance, and the sum of the represented factors' dimensionalities.
        n_latent: latent dimensions (the most ``sum_dim`` can be for a good packing).
    """
    fig = _figure(10.5, 3.3)
    axes = fig.subplots(1, 3)
    labels = ["AE" if b == 0 else f"β={b:g}" for b in betas]
    for ax, (M, title, fmt, vmax) in zip(axes, (
        (represented, "factors represented", "{:.0f}", None),
        (sum_dim, f"Σ D_i of represented factors (m = {n_latent})", "{:.2f}", None),
        (fvu, "unexplained variance", "{:.2f}", 1.0),
    )):
        M = M.detach().cpu().double()
        im = ax.imshow(M.numpy(), cmap="viridis", aspect="auto", vmin=0, vmax=vmax)
        for (r, c), v in zip(((r, c) for r in range(M.shape[0]) for c in range(M.shape[1])), M.flatten().tolist()):
            ax.text(c, r, fmt.format(v), ha="center", va="center", color="w" if v < 0.6 * float(M.max()) else "k", fontsize=8)
        ax.set_xticks(range(len(betas)), labels, fontsize=8)
        ax.set_yticks(range(len(densities)), [f"p={p:g}" for p in densities], fontsize=8)
        ax.set_title(title, fontsize=9)
    return fig
