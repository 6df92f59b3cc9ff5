"""Figures of many models in one set of weights (:mod:`supercourse.contexts`).

Every function takes tensors (CPU or not) and returns a matplotlib ``Figure``.
Relative errors are ``||W C_k U - A_k||^2 / ||A_k||^2`` (:func:`supercourse.contexts.relative_error`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import torch

from ._validate import check_tensor

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["error_vs_tasks", "interference_fit", "forgetting_matrices", "digits_accuracy", "task_errors", "crosstalk", "COLORS"]

COLORS = {
    "no contexts": "0.35",
    "binary": "tab:blue",
    "complex": "tab:orange",
    "rotation": "tab:green",
    "complex, powers of one": "tab:red",
    "rotation, powers of one": "tab:purple",
}
"""A colour per setting of the toy study (others cycle through matplotlib's defaults)."""


def _np(t: torch.Tensor):
    """A CPU float64 NumPy array (matplotlib reads NumPy, not tensors)."""
    return t.detach().cpu().double().numpy()


def _color(label: str, i: int) -> str:
    return COLORS.get(label, f"C{i % 10}")


def error_vs_tasks(
    curves: Mapping[str, Mapping[int, torch.Tensor]], n: int, title: str = "", floor: float = 1e-3
) -> "Figure":
    """Task 1's relative error after ``K`` tasks, one panel per subspace dimension ``d``, one line per setting.

    Args:
        curves: ``{setting label: {d: errors (n_seeds, K_max)}}``, ``errors[s, K-1]`` task 1's
            relative error once ``K`` tasks are trained (``K = 1`` is task 1 alone, about 0).
        n: the input dimension, for the prediction ``(K - 1) d / n`` (dashed).
        floor: errors below it are drawn at it (log axes).

    Lines are the mean over seeds, bands the range. On log-log axes the
    prediction is a line of slope 1; a plain network sits near 2 from ``K = 2`` on.
    """
    import matplotlib.pyplot as plt

    dims = sorted({d for per_d in curves.values() for d in per_d})
    fig, axes = plt.subplots(1, len(dims), figsize=(5.2 * len(dims), 4.2), squeeze=False, sharey=True)
    for ax, d in zip(axes[0], dims):
        k_max = 1
        for i, (label, per_d) in enumerate(curves.items()):
            if d not in per_d:
                continue
            e = check_tensor(f"curves[{label!r}][{d}]", per_d[d], shape=(None, None)).detach().cpu().double()
            K = torch.arange(2, e.shape[1] + 1)
            e = e[:, 1:].clamp_min(floor)
            k_max = max(k_max, e.shape[1] + 1)
            color = _color(label, i)
            ax.plot(_np(K), _np(e.mean(0)), color=color, lw=1.8, label=label)
            ax.fill_between(_np(K), _np(e.min(0).values), _np(e.max(0).values), color=color, alpha=0.15, lw=0)
        K = torch.arange(2, k_max + 1).double()
        ax.plot(_np(K), _np((K - 1) * d / n), "k--", lw=1.2, label="(K-1) d / N")
        ax.axhline(2.0, color="0.6", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ticks = [k for k in (2, 5, 10, 20, 50, 100, 200, 500) if k <= k_max]
        ax.set_xticks(ticks, [str(k) for k in ticks])
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
        ax.set_xlabel("number of tasks K")
        ax.set_title(f"d = {d}, N = {n}")
        ax.grid(alpha=0.3, which="both", lw=0.5)
    axes[0][0].set_ylabel("task 1's relative error after K tasks")
    axes[0][-1].legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def interference_fit(
    points: Mapping[str, tuple[torch.Tensor, torch.Tensor]], title: str = "", floor: float = 1e-3
) -> "Figure":
    """Measured relative error against the interference measure's prediction, one colour per setting.

    Args:
        points: ``{label: (predicted, measured)}``, tensors of the same shape (any), e.g. every
            seed and every ``K``; predicted is :func:`supercourse.contexts.predicted_error`.

    Points on the diagonal: the overlap of the contexts alone predicts how much
    task 1 forgets; the dotted lines are 0.8 and 1.6 times the prediction.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    lo, hi = 1.0, floor
    for i, (label, (pred, meas)) in enumerate(points.items()):
        p = pred.detach().cpu().double().flatten()
        m = meas.detach().cpu().double().flatten()
        keep = (p > floor) & (m > floor)
        if keep.any():
            ax.scatter(_np(p[keep]), _np(m[keep]), s=9, alpha=0.6, color=_color(label, i), label=label)
            lo, hi = min(lo, float(p[keep].min()), float(m[keep].min())), max(hi, float(p[keep].max()), float(m[keep].max()))
    line = torch.tensor([lo, hi])
    ax.plot(_np(line), _np(line), "k-", lw=1, label="measured = predicted")
    ax.plot(_np(line), _np(0.8 * line), "k:", lw=0.8)
    ax.plot(_np(line), _np(1.6 * line), "k:", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("predicted: sum over later tasks of the interference I[k, 1]")
    ax.set_ylabel("measured: task 1's relative error")
    ax.set_title(title or "the contexts' overlap predicts forgetting")
    ax.grid(alpha=0.3, which="both", lw=0.5)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def forgetting_matrices(errors: Mapping[str, torch.Tensor], title: str = "") -> "Figure":
    """Every task's relative error after each stage of sequential training, one panel per setting.

    Args:
        errors: ``{label: (n_tasks, n_tasks)}``, ``[t, j]`` task ``j``'s error once tasks ``0 .. t`` are
            trained (tasks not yet trained sit near 1: an untrained map outputs about 0).

    Below the diagonal is memory: dark means kept, bright means forgotten.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(errors), figsize=(4.0 * len(errors) + 1.2, 4.0), squeeze=False,
                             layout="constrained")
    im = None
    for ax, (label, e) in zip(axes[0], errors.items()):
        e = check_tensor(f"errors[{label!r}]", e, shape=(None, None)).detach().cpu().double()
        im = ax.imshow(_np(e), cmap="magma", vmin=0, vmax=2.5, origin="upper")
        ax.set_xlabel("task j")
        ax.set_ylabel("after training tasks 1 .. t")
        ax.set_title(label)
        ticks = list(range(0, e.shape[0], max(1, e.shape[0] // 5)))
        ax.set_xticks(ticks, [str(t + 1) for t in ticks])
        ax.set_yticks(ticks, [str(t + 1) for t in ticks])
    if im is not None:
        fig.colorbar(im, ax=axes[0].tolist(), label="relative error of task j", shrink=0.85)
    if title:
        fig.suptitle(title)
    return fig


def digits_accuracy(acc: Mapping[str, torch.Tensor], title: str = "") -> "Figure":
    """Permuted digits: task 1's test accuracy as tasks are added, and every task's accuracy at the end.

    Args:
        acc: ``{label: (n_seeds, n_tasks, n_tasks)}`` from :func:`supercourse.permuted_digits.train_permuted_tasks`.

    Lines are the mean over seeds, bands the range; chance is 0.1.
    """
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 4.0), sharey=True)
    for i, (label, a) in enumerate(acc.items()):
        a = check_tensor(f"acc[{label!r}]", a, shape=(None, None, None)).detach().cpu().double()
        T = torch.arange(1, a.shape[1] + 1)
        color = _color(label, i)
        first = a[:, :, 0]
        left.plot(_np(T), _np(first.mean(0)), "o-", color=color, ms=3, label=label)
        left.fill_between(_np(T), _np(first.min(0).values), _np(first.max(0).values), color=color, alpha=0.15, lw=0)
        last = a[:, -1, :]
        right.plot(_np(T), _np(last.mean(0)), "o-", color=color, ms=3, label=label)
        right.fill_between(_np(T), _np(last.min(0).values), _np(last.max(0).values), color=color, alpha=0.15, lw=0)
    for ax in (left, right):
        ax.axhline(0.1, color="0.6", lw=0.8, ls=":")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3, lw=0.5)
    left.set_xlabel("tasks trained")
    left.set_ylabel("test accuracy")
    left.set_title("task 1 as more tasks are learned")
    right.set_xlabel("task")
    right.set_title("every task once all are learned")
    right.legend(fontsize=8, loc="lower left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def task_errors(errors: Mapping[str, torch.Tensor], predicted: torch.Tensor | None = None, title: str = "") -> "Figure":
    """Each task's relative error once all tasks are trained, one group of bars per setting.

    Args:
        errors: ``{label: (n_tasks,)}`` :func:`supercourse.contexts.relative_error` of a trained ``W``.
        predicted: ``(n_tasks,)`` optional, each task's predicted error (drawn as black ticks):
            the interference of the tasks trained after it.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    labels = list(errors)
    width = 0.8 / max(1, len(labels))
    n_tasks = 0
    for i, label in enumerate(labels):
        e = check_tensor(f"errors[{label!r}]", errors[label], shape=(None,)).detach().cpu().double()
        n_tasks = max(n_tasks, e.shape[0])
        x = torch.arange(1, e.shape[0] + 1) + (i - (len(labels) - 1) / 2) * width
        ax.bar(_np(x), _np(e), width=width, color=_color(label, i), label=label)
    if predicted is not None:
        p = predicted.detach().cpu().double()
        ax.scatter(_np(torch.arange(1, p.shape[0] + 1)), _np(p), marker="_", s=300, color="k", zorder=3,
                   label="predicted by the interference")
    ax.axhline(2.0, color="0.6", lw=0.8, ls=":")
    ax.set_xticks(range(1, n_tasks + 1))
    ax.set_xlabel("task (trained in this order)")
    ax.set_ylabel("relative error after all tasks")
    ax.set_title(title or "your trained layer: what each task kept")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y", lw=0.5)
    fig.tight_layout()
    return fig


def crosstalk(maps: Mapping[str, torch.Tensor], title: str = "") -> "Figure":
    """What one task reads of another's update: the cross map ``C_j^T C_k`` of two contexts, one panel per kind.

    Args:
        maps: ``{label: (n, n)}`` cross maps (for complex contexts ``C_j^T C_k = diag(cos(phi_k - phi_j))``).

    The identity (no contexts) passes every update through; a binary cross map is a
    diagonal of random signs, a complex one a diagonal of random cosines, a
    rotation's a dense random orthogonal matrix.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(maps), figsize=(3.0 * len(maps) + 0.9, 3.3), squeeze=False, layout="constrained")
    im = None
    for ax, (label, M) in zip(axes[0], maps.items()):
        M = check_tensor(f"maps[{label!r}]", M, shape=(None, None)).detach().cpu().double()
        im = ax.imshow(_np(M), cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_title(label, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    if im is not None:
        fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8)
    if title:
        fig.suptitle(title)
    return fig
