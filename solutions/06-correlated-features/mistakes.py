"""Lesson 6's known mistakes: wrong implementations learners plausibly write, each with the hint that names it.

The checks diagnose with this table (a learner's output that matches a mistake's gets its hint), and the
generic proof (tests/test_lesson_proofs.py) grades every entry and requires it to lose points with its keyword
in the messages. Mistakes with ``compare=False`` are random generators or contract breaks: the property that
catches them names them in its own message.

The kinds of mistake (issue 24):

* the structure of the randomness: features of a set drawn independently, one uniform shared by every set of a
  sample, values shared across the sets' positions, the chosen feature shared by every set, torch's global
  generator used or re-seeded from ``generator.initial_seed()`` (the caller's generator never advances);
* semantics the docstrings state: ``set_size`` ignored (only pairs handled), "any" against "every" for the pairs
  and the features of a set, the squared norm compared with the norm threshold, ``>=`` against ``>``, the mean
  pair cosine in place of every pair's, the wrong axis normalised;
* edges: zero columns giving NaN, a zero-column guard so coarse that short columns count as zero.
"""

from __future__ import annotations

import torch

from autograder.toolkit import Mistake

__all__ = ["MISTAKES", "unit", "blocks"]


# --------------------------------------------------------------------------- shared pieces


def unit(W: torch.Tensor, guard: float = 0.0) -> torch.Tensor:
    """Columns of ``W`` scaled to unit length; a column of norm ``<= guard`` becomes 0."""
    n = W.norm(dim=1, keepdim=True)
    return torch.where(n > guard, W / n.clamp_min(1e-30), torch.zeros_like(W))


def blocks(C: torch.Tensor, set_size: int) -> torch.Tensor:
    """``(K, n_sets, s, s)``: the within-set blocks of a ``(K, n, n)`` matrix."""
    K, n, _ = C.shape
    s = n // set_size
    return torch.diagonal(C.reshape(K, s, set_size, s, set_size), dim1=1, dim2=3).permute(0, 3, 1, 2)


def _cos(W: torch.Tensor, guard: float = 0.0) -> torch.Tensor:
    U = unit(W, guard)
    return U.mT @ U


def _out(values: torch.Tensor, mask: torch.Tensor, batch_size: int, n_instances: int) -> torch.Tensor:
    return (values * mask).reshape(batch_size, n_instances, -1)


# --------------------------------------------------------------------------- 06.correlated_sets


def _corr_independent(batch_size, p, set_size, generator=None):
    p_feat = p.repeat_interleave(set_size, dim=1)
    u = torch.rand((batch_size, *p_feat.shape), generator=generator)
    return torch.rand((batch_size, *p_feat.shape), generator=generator) * (u < p_feat)


def _corr_one_value(batch_size, p, set_size, generator=None):
    active = torch.rand((batch_size, *p.shape, 1), generator=generator) < p[..., None]
    v = torch.rand((batch_size, *p.shape, 1), generator=generator).expand(-1, -1, -1, set_size)
    return _out(v, active, batch_size, p.shape[0])


def _corr_tiled(batch_size, p, set_size, generator=None):
    # the set's draw is right, but sets laid out interleaved (feature i in set i % n_sets)
    active = torch.rand((batch_size, *p.shape, 1), generator=generator) < p[..., None]
    v = torch.rand((batch_size, *p.shape, set_size), generator=generator) * active
    return v.transpose(2, 3).reshape(batch_size, p.shape[0], -1)


def _corr_and_of_features(batch_size, p, set_size, generator=None):
    on = (torch.rand((batch_size, *p.shape, set_size), generator=generator) < p[..., None]).all(-1, keepdim=True)
    v = torch.rand((batch_size, *p.shape, set_size), generator=generator)
    return _out(v, on, batch_size, p.shape[0])


def _corr_dense_complement(batch_size, p, set_size, generator=None):
    active = torch.rand((batch_size, *p.shape, 1), generator=generator) > p[..., None]
    v = torch.rand((batch_size, *p.shape, set_size), generator=generator)
    return _out(v, active, batch_size, p.shape[0])


def _corr_global_rng(batch_size, p, set_size, generator=None):
    active = torch.rand((batch_size, *p.shape, 1)) < p[..., None]  # torch's global generator, not the argument
    return _out(torch.rand((batch_size, *p.shape, set_size)), active, batch_size, p.shape[0])


def _corr_reseeded(batch_size, p, set_size, generator=None):
    torch.manual_seed(generator.initial_seed())  # the caller's generator never advances: every call is the same
    active = torch.rand((batch_size, *p.shape, 1)) < p[..., None]
    return _out(torch.rand((batch_size, *p.shape, set_size)), active, batch_size, p.shape[0])


def _corr_normal_values(batch_size, p, set_size, generator=None):
    active = torch.rand((batch_size, *p.shape, 1), generator=generator) < p[..., None]
    v = torch.randn((batch_size, *p.shape, set_size), generator=generator).abs().clamp_max(0.999)
    return _out(v, active, batch_size, p.shape[0])


def _corr_shared_draw(batch_size, p, set_size, generator=None):
    u = torch.rand((batch_size, p.shape[0], 1, 1), generator=generator)  # one uniform for every set of a sample
    v = torch.rand((batch_size, *p.shape, set_size), generator=generator)
    return _out(v, u < p[..., None], batch_size, p.shape[0])


def _corr_values_shared_across_sets(batch_size, p, set_size, generator=None):
    active = torch.rand((batch_size, *p.shape, 1), generator=generator) < p[..., None]
    v = torch.rand((batch_size, p.shape[0], 1, set_size), generator=generator).expand(-1, -1, p.shape[1], -1)
    return _out(v, active, batch_size, p.shape[0])


def _corr_pairs_only(batch_size, p, set_size, generator=None):
    active = torch.rand((batch_size, *p.shape, 1), generator=generator) < p[..., None]
    v = torch.rand((batch_size, *p.shape, 2), generator=generator)  # set_size ignored: pairs
    return _out(v, active, batch_size, p.shape[0])


# --------------------------------------------------------------------------- 06.anticorrelated_sets


def _one_of(which: torch.Tensor, set_size: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(which, set_size).float()


def _anti_set_prob_p(batch_size, p, set_size, generator=None):
    on = torch.rand((batch_size, *p.shape), generator=generator) < p
    which = torch.randint(set_size, (batch_size, *p.shape), generator=generator)
    v = torch.rand((batch_size, *p.shape, set_size), generator=generator)
    return _out(v, _one_of(which, set_size) * on[..., None], batch_size, p.shape[0])


def _anti_first_only(batch_size, p, set_size, generator=None):
    on = torch.rand((batch_size, *p.shape), generator=generator) < p * set_size
    v = torch.rand((batch_size, *p.shape, set_size), generator=generator)
    mask = torch.zeros(set_size)
    mask[0] = 1
    return _out(v, mask * on[..., None], batch_size, p.shape[0])


def _anti_all_active(batch_size, p, set_size, generator=None):
    on = torch.rand((batch_size, *p.shape, 1), generator=generator) < p[..., None]
    v = torch.rand((batch_size, *p.shape, set_size), generator=generator)
    return _out(v, on, batch_size, p.shape[0])


def _anti(batch_size, p, set_size, generator=None, *, shared_draw=False, shared_choice=False, shared_values=False,
          values_one=False, n_choices=None, reseed=False):
    """The right generator with one switch per known mistake of its randomness' structure."""
    K, S = p.shape
    g = generator
    if reseed:
        torch.manual_seed(generator.initial_seed())  # the caller's generator never advances
        g = None
    u = torch.rand((batch_size, K, 1 if shared_draw else S), generator=g)  # shared: one uniform for every set
    on = u < (p * (n_choices or set_size))
    which = torch.randint(n_choices or set_size, (batch_size, K, 1 if shared_choice else S), generator=g)
    which = which.expand(batch_size, K, S)
    v = torch.rand((batch_size, K, 1 if shared_values else S, set_size), generator=g).expand(batch_size, K, S, set_size)
    if values_one:
        v = torch.ones_like(v)
    return _out(v, _one_of(which, set_size) * on[..., None], batch_size, K)


def _a(**switches):
    def impl(batch_size, feature_probability, set_size, generator=None):
        return _anti(batch_size, feature_probability, set_size, generator, **switches)
    impl.__name__ = "anticorrelated_" + "_".join(switches)
    return impl


def _anti_global_rng(batch_size, p, set_size, generator=None):
    return _anti(batch_size, p, set_size, None)  # torch's global generator, not the argument


# --------------------------------------------------------------------------- 06.partner_cosines


def _pc_from(C: torch.Tensor, set_size: int) -> torch.Tensor:
    off = ~torch.eye(set_size, dtype=torch.bool)
    return blocks(C, set_size)[..., off].mean(-1)


def _pc_interleaved(W, set_size=2):
    K, m, n = W.shape
    s = n // set_size
    perm = torch.arange(n).reshape(set_size, s).T.reshape(-1)  # set k = features k, k + s, ...
    return _pc_from(_cos(W[:, :, perm]), set_size)


def _pc_with_self(W, set_size=2):
    return blocks(_cos(W), set_size).flatten(2).mean(-1)


def _pc_per_feature(W, set_size=2):
    return (blocks(_cos(W), set_size).sum(-1) - 1).div(set_size - 1).flatten(1)


def _pc_nan(W, set_size=2):
    U = W / W.norm(dim=1, keepdim=True)
    return _pc_from(U.mT @ U, set_size)


def _pc_axis(dim: int):
    def impl(W, set_size=2):
        U = W / W.norm(dim=dim, keepdim=True).clamp_min(1e-30)
        return _pc_from(U.mT @ U, set_size)
    return impl


def _pc_first_pair(W, set_size=2):
    # set_size used for the layout, but only the set's first pair compared (right for pairs only)
    U = unit(W)
    return (U[:, :, 0::set_size] * U[:, :, 1::set_size]).sum(1)


# --------------------------------------------------------------------------- 06.collapsed_sets


def collapsed(W, set_size=2, cosine=0.9, *, threshold=0.5, absolute=False, cos_fn=None, need_norm=True,
              pairs="every", features="every", squared=False, at_least_cos=False, at_least_norm=False):
    """The count of collapsed sets with one switch per known mistake."""
    C = cos_fn(W) if cos_fn is not None else _cos(W)
    B = blocks(C.abs() if absolute else C, set_size)
    off = ~torch.eye(set_size, dtype=torch.bool)
    pair_cos = B[..., off]  # (K, n_sets, s * (s - 1))
    if pairs == "mean":
        aligned = pair_cos.mean(-1) > cosine
    else:
        hit = pair_cos >= cosine if at_least_cos else pair_cos > cosine
        aligned = hit.any(-1) if pairs == "any" else hit.all(-1)
    K, _, n = W.shape
    size = W.square().sum(1) if squared else W.norm(dim=1)
    rep = (size >= threshold if at_least_norm else size > threshold).reshape(K, n // set_size, set_size)
    present = rep.any(-1) if features == "any" else rep.all(-1)
    return (aligned & present if need_norm else aligned).sum(-1)


def _c(**switches):
    def impl(W, set_size=2, cosine=0.9):
        return collapsed(W, set_size, cosine, **switches)
    impl.__name__ = "collapsed_" + "_".join(switches)
    return impl


# --------------------------------------------------------------------------- the table

_GENERATOR = "advance"  # the generator property names re-seeding and torch's global generator


MISTAKES: dict[str, list[Mistake]] = {
    "correlated_sets": [
        Mistake("independent", _corr_independent, "all zero or all active", compare=False),
        Mistake("one_value_per_set", _corr_one_value, "independent values", compare=False),
        Mistake("interleaved_sets", _corr_tiled, "consecutive", compare=False),
        Mistake("and_of_features", _corr_and_of_features, "density", compare=False),
        Mistake("complement", _corr_dense_complement, "density", compare=False),
        Mistake("global_rng", _corr_global_rng, "generator", compare=False),
        Mistake("reseeded_from_initial_seed", _corr_reseeded, _GENERATOR, compare=False),
        Mistake("folded_normal_values", _corr_normal_values, "uniform", compare=False),
        Mistake("one_draw_for_every_set", _corr_shared_draw, "independent of each other", compare=False),
        Mistake("values_shared_across_sets", _corr_values_shared_across_sets, "its own values", compare=False),
        Mistake("pairs_only", _corr_pairs_only, "set_size", compare=False),
    ],
    "anticorrelated_sets": [
        Mistake("set_active_with_p", _anti_set_prob_p, "set_size * p", compare=False),
        Mistake("first_feature_only", _anti_first_only, "density", compare=False),
        Mistake("independent", lambda b, p, s, generator=None: _corr_independent(b, p, s, generator), "at most one",
                compare=False),
        Mistake("whole_set_active", _anti_all_active, "at most one", compare=False),
        Mistake("global_rng", _anti_global_rng, "generator", compare=False),
        Mistake("reseeded_from_initial_seed", _a(reseed=True), _GENERATOR, compare=False),
        Mistake("values_all_one", _a(values_one=True), "uniform", compare=False),
        Mistake("one_draw_for_every_set", _a(shared_draw=True), "independent of each other", compare=False),
        Mistake("chosen_feature_shared_by_sets", _a(shared_choice=True), "chosen feature", compare=False),
        Mistake("values_shared_across_sets", _a(shared_values=True), "its own values", compare=False),
        Mistake("pairs_only", _a(n_choices=2), "set_size", compare=False),
    ],
    "partner_cosines": [
        Mistake("dot_products", lambda W, set_size=2: _pc_from(W.mT @ W, set_size), "cosine",
                "Your values match the dot products W_i . W_j: divide by both norms to get the cosine."),
        Mistake("including_self", _pc_with_self, "distinct",
                "Your values match a mean that includes each feature with itself (cosine 1): average over distinct "
                "pairs only."),
        Mistake("interleaved_sets", _pc_interleaved, "consecutive",
                "Your values match sets of features i, i + n_sets, ...: set k is the consecutive features "
                "k*set_size ... (k+1)*set_size - 1."),
        Mistake("abs_cosines", lambda W, set_size=2: _pc_from(_cos(W), set_size).abs(), "sign",
                "Your values match |cos|: keep the sign (antipodal partners give -1)."),
        Mistake("rows_normalised", _pc_axis(2), "axis",
                "Your values match W normalised over the wrong axis (dim=2, each hidden dimension's row across the "
                "features): a feature's direction is its column W[k, :, i], so divide by the norm over the hidden "
                "axis, dim=1."),
        Mistake("instances_normalised", _pc_axis(0), "axis",
                "Your values match W normalised over the wrong axis (dim=0, across the instances): a feature's "
                "direction is its column W[k, :, i], so divide by the norm over the hidden axis, dim=1."),
        Mistake("first_pair_only", _pc_first_pair, "every pair",
                "Your values match the cosine of each set's first two features only: with set_size features a set "
                "has set_size * (set_size - 1) / 2 pairs, and the mean runs over every pair."),
        Mistake("coarse_zero_guard", lambda W, set_size=2: _pc_from(_cos(W, guard=1e-3), set_size), "short",
                "Your values match a guard that treats columns shorter than 1e-3 as zero: only an exactly zero column "
                "has no direction; a short column's cosine is still its direction's (guard with norm > 0, or a tiny "
                "clamp such as 1e-12)."),
        Mistake("nan_zero_columns", _pc_nan, "finite", compare=False),
        Mistake("per_feature", _pc_per_feature, "shape", compare=False),
    ],
    "collapsed_sets": [
        Mistake("no_norm_test", _c(need_norm=False), "represented",
                "Your counts include sets with unrepresented features: a set has collapsed only when all its "
                "features are represented (||W_i|| > 0.5) and aligned."),
        Mistake("absolute_cosine", _c(absolute=True), "antipodal",
                "Your counts include antipodal partners (cos near -1): collapsed partners point the same way, so "
                "compare the signed cosine."),
        Mistake("dot_products", _c(cos_fn=lambda W: W.mT @ W), "cosine",
                "Your counts match thresholding the dot products W_i . W_j: compare the cosine, both norms divided "
                "out."),
        Mistake("ignores_cosine_argument", lambda W, set_size=2, cosine=0.9: collapsed(W, set_size, 0.9),
                "cosine argument", "Your counts match a fixed 0.9: use the cosine argument."),
        Mistake("any_pair_aligned", _c(pairs="any"), "every pair",
                "Your counts match a set counted as collapsed when any one of its pairs is aligned: every pair of "
                "its features must be."),
        Mistake("mean_pair_cosine", _c(pairs="mean"), "each pair's cosine",
                "Your counts match comparing the mean of a set's pair cosines with the threshold: each pair's "
                "cosine must exceed it (one pair below the threshold means the set has not collapsed)."),
        Mistake("any_feature_represented", _c(features="any"), "every feature",
                "Your counts match a set counted when any of its features is represented: every feature of the set "
                "must have ||W_i|| > 0.5."),
        Mistake("squared_norm", _c(squared=True), "squared norm",
                "Your counts match comparing the squared norm ||W_i||^2 with 0.5: the threshold is on the norm "
                "||W_i|| itself."),
        Mistake("cosine_at_least", _c(at_least_cos=True), "strictly",
                "Your counts match cosine >= threshold: two features are aligned when their cosine strictly "
                "exceeds the threshold (>)."),
        Mistake("norm_at_least", _c(at_least_norm=True), "norm of exactly 0.5",
                "Your counts match ||W_i|| >= 0.5: a feature of norm of exactly 0.5 is not represented "
                "(||W_i|| > 0.5, strictly)."),
        Mistake("pairs_only", lambda W, set_size=2, cosine=0.9: collapsed(W, 2, cosine), "set_size",
                "Your counts match sets read as pairs of features: a set is set_size consecutive features."),
        Mistake("fraction", lambda W, set_size=2, cosine=0.9: collapsed(W, set_size, cosine).double()
                / (W.shape[2] // set_size), "integer", compare=False),
        Mistake("per_set", lambda W, set_size=2, cosine=0.9: (blocks(_cos(W), set_size) > cosine).flatten(2).all(-1),
                "shape", compare=False),
    ],
}
