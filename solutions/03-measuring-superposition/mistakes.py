"""Lesson 3's known mistakes: wrong implementations learners plausibly write, each with the hint that names it.

The checks (``checks.py``) diagnose with this table; the generic lesson proof (tests/test_lesson_proofs.py)
grades every entry and requires that it loses points with its keyword in the messages.
"""

from __future__ import annotations

import numpy as np
import torch

from autograder.toolkit import Mistake, unit_columns

def _off(W: torch.Tensor) -> torch.Tensor:
    return 1 - torch.eye(W.shape[-1], dtype=W.dtype)


def _numpy_norms(W):
    return torch.from_numpy(np.linalg.norm(W.numpy(), axis=1))


def _numpy_gram(W):
    a = W.numpy()
    return torch.from_numpy(np.einsum("kmi,kmj->kij", a, a))


def _numpy_sup(W):
    a = W.numpy()
    n = np.linalg.norm(a, axis=1, keepdims=True)
    u = np.where(n > 1e-8, a / np.maximum(n, 1e-8), 0.0)
    sq = np.einsum("kmi,kmj->kij", u, a) ** 2
    return torch.from_numpy(sq.sum(-1) - np.einsum("kii->ki", sq)).to(W.dtype)


_DTYPE = "the input's dtype"
_GRAD = "requires_grad"


def metrics_free_sup(W: torch.Tensor) -> torch.Tensor:
    """``superposition(W)`` computed here (the body of the shape mistakes)."""
    return ((unit_columns(W).mT @ W).square() * _off(W)).sum(-1)


MISTAKES: dict[str, list[Mistake]] = {
    "feature_norms": [
        Mistake("rows", lambda W: W.norm(dim=2), "dim 1",
                "Those are the lengths of W's rows (hidden dimensions): feature i is the column W[k, :, i], so reduce over dim 1."),
        Mistake("over_instances", lambda W: W.norm(dim=0), "instance dimension is gone", compare=False),
        Mistake("keepdim", lambda W: W.norm(dim=1, keepdim=True), "keepdim", compare=False),
        Mistake("squared", lambda W: W.square().sum(dim=1), "squared norms",
                "You returned the squared norms ||W_i||^2: take the square root."),
        Mistake("l1", lambda W: W.abs().sum(dim=1), "L1 norm",
                "That is the L1 norm (sum of absolute values): ||W_i|| is the Euclidean length."),
        Mistake("largest_entry", lambda W: W.abs().amax(dim=1), "largest entry",
                "That is each column's largest entry |W_ki|: the length is sqrt of the sum of squares."),
        Mistake("mean_of_squares", lambda W: W.square().mean(dim=1).sqrt(), "mean",
                "That is sqrt of the mean of the squares, ||W_i|| / sqrt(n_hidden): sum the squares, do not average them."),
        Mistake("epsilon", lambda W: (W.square().sum(dim=1) + 1e-6).sqrt(), "epsilon",
                "An epsilon added inside the square root changes short columns (norms below 0.1): "
                "sqrt(x + 1e-6) is not sqrt(x) at that scale; no guard is needed here."),
        Mistake("float32", lambda W: W.float().norm(dim=1), _DTYPE, compare=False),
        Mistake("numpy", _numpy_norms, _GRAD, compare=False),
        Mistake("flattened", lambda W: W.norm(dim=1).reshape(-1), "another shape", compare=False),
        Mistake("first_instance", lambda W: W[0].norm(dim=0).expand(W.shape[0], -1), "instance 0's norms",
                "Every instance got instance 0's norms: compute the norms of each instance's own columns W[k, :, i]."),
        Mistake("squeezed", lambda W: W.norm(dim=1).squeeze(), "squeeze", compare=False),
        Mistake("transposed", lambda W: W.norm(dim=1).T, "transposed", compare=False),
    ],
    "superposition": [
        Mistake("unnormalised", lambda W: ((W.mT @ W).square() * _off(W)).sum(-1), "without normalising",
                "Your values match a version in which W_i . W_j is used without normalising W_i: divide column i "
                "by its norm first (W_hat_i = W_i / ||W_i||)."),
        Mistake("includes_self", lambda W: (unit_columns(W).mT @ W).square().sum(-1), "includes j = i",
                "Your values match a version whose sum includes j = i, which adds ||W_i||^2: leave out the diagonal."),
        Mistake("cosines", lambda W: ((unit_columns(W).mT @ unit_columns(W)).square() * _off(W)).sum(-1), "both vectors are normalised",
                "Your values match a version in which both vectors are normalised (a sum of squared cosines): only "
                "W_i is normalised, W_j keeps its length."),
        Mistake("not_squared", lambda W: ((unit_columns(W).mT @ W) * _off(W)).sum(-1), "not squared",
                "Your values match a version in which the overlaps are not squared: square each W_hat_i . W_j before summing."),
        Mistake("absolute", lambda W: ((unit_columns(W).mT @ W).abs() * _off(W)).sum(-1), "square the overlaps",
                "Your values match a sum of |W_hat_i . W_j|: square the overlaps instead."),
        Mistake("normalises_other", lambda W: ((W.mT @ unit_columns(W)).square() * _off(W)).sum(-1), "normalises W_j instead of W_i",
                "Your values match a version that normalises W_j instead of W_i (the same as summing over i, dim -2, "
                "instead of over j): feature i's value is the sum over j of (W_hat_i . W_j)^2, its row of W_hat^T W."),
        Mistake("largest", lambda W: ((unit_columns(W).mT @ W).square() * _off(W)).amax(-1), "largest",
                "Your values match the largest squared overlap of each feature: sum over every j != i instead."),
        Mistake("nan_zero_columns", lambda W: ((W / W.norm(dim=1, keepdim=True)).mT @ W).square().mul(_off(W)).sum(-1),
                "zero column", compare=False),
        Mistake("epsilon", lambda W: (((W / (W.norm(dim=1, keepdim=True) + 1e-3)).mT @ W).square() * _off(W)).sum(-1),
                "epsilon",
                "Your values match W_i / (||W_i|| + epsilon) with a large epsilon, which shrinks short features "
                "(norms below 0.1): guard only the zero columns (torch.where on the norm), or use an epsilon "
                "like 1e-12."),
        Mistake("wrong_axis", lambda W: (lambda sq: sq.sum(-1) - sq.diagonal(dim1=-2, dim2=-1))(
            ((W / W.norm(dim=2, keepdim=True).clamp_min(1e-8)) @ W.mT).square()), "dim 1", compare=False),
        Mistake("float32", lambda W: (lambda V: ((unit_columns(V).mT @ V).square() * _off(V)).sum(-1))(W.float()), _DTYPE,
                compare=False),
        Mistake("numpy", _numpy_sup, _GRAD, compare=False),
        Mistake("minus_one", lambda W: (unit_columns(W).mT @ W).square().sum(-1) - 1, "length 1",
                "Your values match subtracting 1 for the term j = i, as if every feature had length 1: that term is "
                "(W_hat_i . W_i)^2 = ||W_i||^2 (0 for a zero column); leave out the diagonal itself."),
        Mistake("mean_over_j", lambda W: ((unit_columns(W).mT @ W).square() * _off(W)).sum(-1) / max(W.shape[-1] - 1, 1),
                "average", "Your values match the average over j != i: the superposition is the sum, not the average."),
        Mistake("coarse_guard", lambda W: (lambda n: ((torch.where(n > 1e-2, W / n.clamp_min(1e-2), torch.zeros_like(W)).mT
                @ W).square() * _off(W)).sum(-1))(W.norm(dim=1, keepdim=True)), "guard",
                "Your values are 0 for short but non-zero features (norms below 0.01): a zero-column guard as coarse "
                "as norm > 0.01 treats them as unlearned; guard only columns that are (almost exactly) zero, "
                "e.g. norm > 1e-8."),
        Mistake("squeezed", lambda W: metrics_free_sup(W).squeeze(), "squeeze", compare=False),
        Mistake("transposed", lambda W: metrics_free_sup(W).mT, "transposed", compare=False),
    ],
    "gram": [
        Mistake("hidden", lambda W: W @ W.mT, "W W^T",
                "That is W W^T (hidden x hidden): W^T W has entry [i, j] = W_i . W_j for feature columns i, j."),
        Mistake("cosines", lambda W: unit_columns(W).mT @ unit_columns(W), "cosines",
                "Those are cosines: W^T W uses the columns as they are, not normalised (its diagonal is ||W_i||^2)."),
        Mistake("first_instance", lambda W: (W[0].T @ W[0]).expand(W.shape[0], -1, -1), "instance 0's matrix",
                "Every instance got instance 0's matrix: compute each instance's own W^T W."),
        Mistake("summed_instances", lambda W: torch.einsum("kmi,kmj->ij", W, W), "instance dimension is gone", compare=False),
        Mistake("squared", lambda W: (W.mT @ W).square(), "squared",
                "The entries are squared: W^T W is the plain matrix product."),
        Mistake("upper_triangle", lambda W: torch.triu(W.mT @ W), "symmetric",
                "Only the upper triangle is filled: W^T W is symmetric, entry [j, i] equals entry [i, j]."),
        Mistake("averaged", lambda W: W.mT @ W / W.shape[1], "divided",
                "Your entries are divided by n_hidden: W^T W is the plain sum over hidden dimensions."),
        Mistake("square_transpose", lambda W: W @ W.mT if W.shape[1] == W.shape[2] else W.mT @ W, "W W^T",
                "That is W W^T (hidden x hidden): W^T W has entry [i, j] = W_i . W_j for feature columns i, j."),
        Mistake("float32", lambda W: W.float().mT @ W.float(), _DTYPE, compare=False),
        Mistake("numpy", _numpy_gram, _GRAD, compare=False),
        Mistake("zero_diagonal", lambda W: (W.mT @ W) * _off(W), "diagonal",
                "Your diagonal is 0: W^T W keeps j = i, its diagonal holds the squared norms ||W_i||^2."),
        Mistake("squeezed", lambda W: (W.mT @ W).squeeze(), "squeeze", compare=False),
    ],
    "features_per_density": [
        Mistake("squared", lambda n, threshold=0.5: (n.square() > threshold).sum(-1), "squared norm",
                "Your counts match a version that compares the squared norm ||W_i||^2 with the threshold; compare ||W_i|| itself."),
        Mistake("at_or_above", lambda n, threshold=0.5: (n >= threshold).sum(-1), "exactly equal to the threshold",
                "Your counts match a version in which features with ||W_i|| exactly equal to the threshold count; a "
                "feature counts only when ||W_i|| > threshold."),
        Mistake("fixed_threshold", lambda n, threshold=0.5: (n > 0.5).sum(-1), "threshold argument is ignored",
                "Your counts match a version in which the threshold argument is ignored (0.5 is used): use the "
                "`threshold` you are given."),
        Mistake("below", lambda n, threshold=0.5: (n < threshold).sum(-1), "below",
                "Your counts are the features below the threshold: count those with ||W_i|| > threshold."),
        Mistake("sum_of_norms", lambda n, threshold=0.5: (n * (n > threshold)).sum(-1).round().long(), "sum of the norms",
                "Your counts match the sum of the norms above the threshold: count the features (a sum of the boolean mask)."),
        Mistake("mask", lambda n, threshold=0.5: n > threshold, "mask", compare=False),
        Mistake("total", lambda n, threshold=0.5: (n > threshold).sum(), "one number for all instances", compare=False),
        Mistake("over_instances", lambda n, threshold=0.5: (n > threshold).sum(0), "per instance", compare=False),
        Mistake("float_counts", lambda n, threshold=0.5: (n > threshold).float().sum(-1), "integers", compare=False),
        Mistake("fraction", lambda n, threshold=0.5: (n > threshold).float().mean(-1), "integers", compare=False),
        Mistake("numpy", lambda n, threshold=0.5: torch.from_numpy((n.numpy() > threshold).sum(-1)), _GRAD, compare=False),
        Mistake("squeezed", lambda n, threshold=0.5: (n > threshold).squeeze().sum(-1), "squeeze", compare=False),
    ],
}
"""Every exercise's known mistakes, by exercise (``feature_bars``'s are added below)."""


# --------------------------------------------------------------------------- feature_bars

def _bars(norms, sup, titles=None, *, lengths=None, colours=None, one_axes=False, top=True, xlim=None,
          default_titles=True):
    """A configurable feature-bar figure, for the mistake table: ``lengths(norms, sup)``, ``colours(norms, sup)``."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    norms, sup = norms.detach(), sup.detach()
    k, n = norms.shape
    lengths = (lengths or (lambda a, s: a))(norms, sup)
    colours = (colours or (lambda a, s: colormaps["inferno"](s.clamp(max=1).numpy())))(norms, sup)
    titles = titles or ([f"instance {i}" for i in range(k)] if default_titles else [""] * k)
    fig = Figure()
    if one_axes:
        fig.add_subplot().barh(range(k * n), lengths.flatten().tolist(), color=np.asarray(colours).reshape(-1, 4))
        return fig
    for i, ax in enumerate(fig.subplots(1, k, squeeze=False)[0]):
        ax.barh(range(n), lengths[i].tolist(), color=colours[i])
        if top:
            ax.invert_yaxis()
        if xlim is not None:
            ax.set_xlim(*xlim)
        ax.set_title(titles[i])
    return fig


def _cmap(name: str):
    from matplotlib import colormaps

    return lambda a, s: colormaps[name](s.clamp(max=1).numpy())


def _per_panel(a, s):
    from matplotlib import colormaps

    return colormaps["inferno"]((s / s.amax(dim=1, keepdim=True).clamp_min(1e-8)).numpy())


def _unclipped(a, s):
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    return colormaps["inferno"](Normalize(0, max(s.max().item(), 1e-8))(s.numpy()))


def _bars_numpy(norms, sup, titles=None):
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    fig = Figure()
    for i, ax in enumerate(fig.subplots(1, norms.shape[0], squeeze=False)[0]):
        ax.barh(np.arange(norms.shape[1]), norms.numpy()[i], color=colormaps["viridis"](np.minimum(sup.numpy()[i], 1)))
        ax.invert_yaxis()
        ax.set_title((titles or [f"instance {k}" for k in range(norms.shape[0])])[i])
    return fig


def _bar_mistake(name: str, keyword: str, **options) -> Mistake:
    return Mistake(name, lambda norms, sup, titles=None: _bars(norms, sup, titles, **options), keyword, compare=False)


MISTAKES["feature_bars"] = [
    _bar_mistake("coloured_by_norm", "follow the bars' lengths", colours=lambda a, s: _cmap("inferno")(a, a)),
    _bar_mistake("normalised_per_panel", "one colour scale for every panel", colours=_per_panel),
    _bar_mistake("not_clipped", "clipped at 1", colours=_unclipped),
    _bar_mistake("rainbow", "sequential colormap", colours=_cmap("jet")),
    _bar_mistake("one_colour", "visibly different colours", colours=lambda a, s: _cmap("inferno")(a, 0 * s)),
    _bar_mistake("squared_lengths", "squared norms", lengths=lambda a, s: a.square()),
    _bar_mistake("lengths_are_superpositions", "they are the superpositions", lengths=lambda a, s: s),
    _bar_mistake("one_axes", "in one axes", one_axes=True),
    _bar_mistake("feature_0_at_the_bottom", "feature 0 at the top", top=False),
    _bar_mistake("fixed_limits", "cut off", xlim=(0, 1)),
    _bar_mistake("sorted_by_norm", "in feature order", lengths=lambda a, s: a.sort(dim=1, descending=True).values),
    _bar_mistake("no_default_titles", "the default the docstring", default_titles=False),
    Mistake("titles_ignored", lambda norms, sup, titles=None: _bars(norms, sup, None), "titled titles[k]", compare=False),
    Mistake("not_returned", lambda norms, sup, titles=None: (_bars(norms, sup, titles), None)[1],
            "should return a matplotlib Figure", compare=False),
    Mistake("numpy", _bars_numpy, "requires grad", compare=False),
]
"""``feature_bars``'s mistakes: caught by the figure properties' own hints (``compare=False``)."""
