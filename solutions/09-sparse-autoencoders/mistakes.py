"""Lesson 9's known mistakes: wrong implementations learners plausibly write, each with the hint that names it.

The checks diagnose with this table (a learner's output that matches a mistake's gets its hint), and the
generic proof (tests/test_lesson_proofs.py) grades every entry and requires it to lose points with its keyword
in the messages. Mistakes with ``compare=False`` give the right values but break a contract (no gradient, a
float32 answer for float64 inputs, a NumPy round trip, an argument changed in place, a wrong return type, an
error on an edge): the property that catches them names them in its own message.

The kinds of mistake (issue 24):

* the forward pass: the decoder bias not subtracted, the ReLU or a bias misplaced, the loss summed where it is
  averaged (or the other way round), the penalty squared or missing, one loss for all instances, the first
  lambda for every instance; computed under ``torch.no_grad()`` or on detached weights (right values, no
  gradient);
* the readouts: the wrong axis, a norm not taken (or squared), a zero column giving NaN, a guard so coarse that
  short columns count as zero, ``>=`` against ``>``, the max over the wrong side, a count for a fraction;
* dead latents: a frequency (or magnitude) threshold, "any" against "every" input, one input for the batch;
* resampling: the loss computed without the live latents' reconstruction or without the decoder bias, the loss
  itself (not squared) as the weight, ``multinomial`` raising on all-zero losses or drawing without
  replacement, the input not centred, the encoder scale, the bias kept, the caller's generator ignored or torch's
  global generator re-seeded from it (the caller's generator never advances), the parameters edited in place.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from autograder.toolkit import Mistake

__all__ = ["MISTAKES", "LOSSES", "hint"]


# --------------------------------------------------------------------------- 09.sae_forward


def _enc(h, W_e, b_e, b_d):
    return torch.einsum("bid,isd->bis", h - b_d, W_e) + b_e


def _dec(f, W_d, b_d):
    return torch.einsum("bis,ids->bid", f, W_d) + b_d


def _lam(l1_coeff, h):
    return torch.as_tensor(l1_coeff, dtype=h.dtype)


def _loss(h, h_hat, f, lam):
    return (h - h_hat).square().mean(dim=(0, 2)) + _lam(lam, h) * f.sum(-1).mean(0)


def _forward(h, W_e, b_e, W_d, b_d, l1_coeff, *, encode=None, decode=None, loss=None):
    f = torch.relu(_enc(h, W_e, b_e, b_d)) if encode is None else encode(h, W_e, b_e, b_d)
    h_hat = _dec(f, W_d, b_d) if decode is None else decode(f, W_d, b_d)
    value = _loss(h, h_hat, f, l1_coeff) if loss is None else loss(h, h_hat, f, _lam(l1_coeff, h))
    return h_hat, f, value


def _fwd_no_center(h, W_e, b_e, W_d, b_d, l1_coeff):
    return _forward(h, W_e, b_e, W_d, b_d, l1_coeff,
                    encode=lambda h, W_e, b_e, b_d: torch.relu(torch.einsum("bid,isd->bis", h, W_e) + b_e))


def _fwd_no_relu(h, W_e, b_e, W_d, b_d, l1_coeff):
    return _forward(h, W_e, b_e, W_d, b_d, l1_coeff, encode=_enc)


def _fwd_bias_after_relu(h, W_e, b_e, W_d, b_d, l1_coeff):
    return _forward(h, W_e, b_e, W_d, b_d, l1_coeff,
                    encode=lambda h, W_e, b_e, b_d: torch.relu(torch.einsum("bid,isd->bis", h - b_d, W_e)) + b_e)


def _fwd_no_encoder_bias(h, W_e, b_e, W_d, b_d, l1_coeff):
    return _forward(h, W_e, b_e, W_d, b_d, l1_coeff,
                    encode=lambda h, W_e, b_e, b_d: torch.relu(torch.einsum("bid,isd->bis", h - b_d, W_e)))


def _fwd_no_decoder_bias(h, W_e, b_e, W_d, b_d, l1_coeff):
    return _forward(h, W_e, b_e, W_d, b_d, l1_coeff, decode=lambda f, W_d, b_d: torch.einsum("bis,ids->bid", f, W_d))


def _fwd_normalizes_decoder(h, W_e, b_e, W_d, b_d, l1_coeff):
    return _forward(h, W_e, b_e, W_d, b_d, l1_coeff,
                    decode=lambda f, W_d, b_d: _dec(f, W_d / W_d.norm(dim=1, keepdim=True), b_d))


def _mse(h, h_hat):
    return (h - h_hat).square().mean(dim=(0, 2))


def _l1(f):
    return f.sum(-1).mean(0)


LOSSES = {
    "sum_over_dims": lambda h, h_hat, f, lam: (h - h_hat).square().sum(-1).mean(0) + lam * _l1(f),
    "l1_mean_over_latents": lambda h, h_hat, f, lam: _mse(h, h_hat) + lam * f.mean(dim=(0, 2)),
    "l1_summed_over_batch": lambda h, h_hat, f, lam: _mse(h, h_hat) + lam * f.sum(dim=(0, 2)),
    "l2_penalty": lambda h, h_hat, f, lam: _mse(h, h_hat) + lam * f.square().sum(-1).mean(0),
    "no_penalty": lambda h, h_hat, f, lam: _mse(h, h_hat),
    "rms": lambda h, h_hat, f, lam: _mse(h, h_hat).sqrt() + lam * _l1(f),
    "absolute_error": lambda h, h_hat, f, lam: (h - h_hat).abs().mean(dim=(0, 2)) + lam * _l1(f),
    "first_lambda": lambda h, h_hat, f, lam: _mse(h, h_hat) + lam.flatten()[0] * _l1(f),
}
"""Wrong losses as functions of ``(h, h_hat, f, lambda)``: the check also applies them to the learner's own
``h_hat`` and ``f``, so a wrong loss is named even when the encoder is wrong too."""


def _with_loss(name: str):
    def forward(h, W_e, b_e, W_d, b_d, l1_coeff):
        return _forward(h, W_e, b_e, W_d, b_d, l1_coeff, loss=LOSSES[name])

    forward.__name__ = f"_fwd_{name}"
    return forward


def _fwd_scalar_loss(h, W_e, b_e, W_d, b_d, l1_coeff):
    h_hat, f, loss = _forward(h, W_e, b_e, W_d, b_d, l1_coeff)
    return h_hat, f, loss.sum()


def _fwd_no_grad(h, W_e, b_e, W_d, b_d, l1_coeff):
    with torch.no_grad():
        return _forward(h, W_e, b_e, W_d, b_d, l1_coeff)


def _fwd_detached_decoder(h, W_e, b_e, W_d, b_d, l1_coeff):
    return _forward(h, W_e, b_e, W_d.detach(), b_d, l1_coeff)


def _fwd_float32(h, W_e, b_e, W_d, b_d, l1_coeff):
    h, W_e, b_e, W_d, b_d = (t.float() for t in (h, W_e, b_e, W_d, b_d))
    return _forward(h, W_e, b_e, W_d, b_d, l1_coeff)


# --------------------------------------------------------------------------- 09.normalize_decoder


def _norm_rows(W_d):
    return W_d / W_d.norm(dim=2, keepdim=True).clamp_min(1e-12)


def _norm_matrix(W_d):
    return W_d / W_d.norm(dim=(1, 2), keepdim=True).clamp_min(1e-12)


def _norm_instances(W_d):
    return W_d / W_d.norm(dim=0, keepdim=True).clamp_min(1e-12)


def _norm_capped(W_d):
    return W_d / W_d.norm(dim=1, keepdim=True).clamp_min(1.0)


def _norm_squared(W_d):
    return W_d / W_d.norm(dim=1, keepdim=True).square().clamp_min(1e-12)


def _norm_unguarded(W_d):
    return W_d / W_d.norm(dim=1, keepdim=True)


def _norm_coarse_guard(W_d):
    n = W_d.norm(dim=1, keepdim=True)
    return torch.where(n > 1e-2, W_d / n.clamp_min(1e-12), torch.zeros_like(W_d))


def _norm_plus_epsilon(W_d):
    return W_d / (W_d.norm(dim=1, keepdim=True) + 1e-3)


def _norm_returns_norms(W_d):
    return W_d.norm(dim=1, keepdim=True).expand_as(W_d).clone()


def _norm_in_place(W_d):
    with torch.no_grad():
        W_d /= W_d.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return W_d


def _norm_float32(W_d):
    W_d = W_d.float()
    return W_d / W_d.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _norm_numpy(W_d):
    a = W_d.numpy()
    return torch.from_numpy(a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12))


# --------------------------------------------------------------------------- 09.feature_recovery


def _cos(features, W_d, norm_features=True, norm_decoder=True, feature_dim=0, guard=1e-12):
    Fm = features / features.norm(dim=feature_dim, keepdim=True).clamp_min(guard) if norm_features else features
    D = W_d / W_d.norm(dim=1, keepdim=True).clamp_min(guard) if norm_decoder else W_d
    return torch.einsum("dn,ids->ins", Fm, D)


def _recovered(best, threshold):
    return best.mean(-1), (best > threshold).float().mean(-1)


def _rec_no_feature_norm(features, W_d, threshold=0.9):
    return _recovered(_cos(features, W_d, norm_features=False).max(-1).values, threshold)


def _rec_no_decoder_norm(features, W_d, threshold=0.9):
    return _recovered(_cos(features, W_d, norm_decoder=False).max(-1).values, threshold)


def _rec_dot_products(features, W_d, threshold=0.9):
    return _recovered(_cos(features, W_d, False, False).max(-1).values, threshold)


def _rec_feature_axis(features, W_d, threshold=0.9):
    return _recovered(_cos(features, W_d, feature_dim=1).max(-1).values, threshold)


def _rec_max_over_features(features, W_d, threshold=0.9):
    best = _cos(features, W_d).max(-2).values
    return best.mean(-1), (best > threshold).float().mean(-1)


def _rec_abs_cosine(features, W_d, threshold=0.9):
    return _recovered(_cos(features, W_d).abs().max(-1).values, threshold)


def _rec_mean_cosine(features, W_d, threshold=0.9):
    c = _cos(features, W_d)
    return c.mean(-1).mean(-1), (c.max(-1).values > threshold).float().mean(-1)


def _rec_max_of_max(features, W_d, threshold=0.9):
    best = _cos(features, W_d).max(-1).values
    return best.max(-1).values, (best > threshold).float().mean(-1)


def _rec_count(features, W_d, threshold=0.9):
    best = _cos(features, W_d).max(-1).values
    return best.mean(-1), (best > threshold).float().sum(-1)


def _rec_fixed_threshold(features, W_d, threshold=0.9):
    return _recovered(_cos(features, W_d).max(-1).values, 0.9)


def _rec_at_least(features, W_d, threshold=0.9):
    best = _cos(features, W_d).max(-1).values
    return best.mean(-1), (best >= threshold).float().mean(-1)


def _rec_unguarded(features, W_d, threshold=0.9):
    Fm = features / features.norm(dim=0, keepdim=True)
    D = W_d / W_d.norm(dim=1, keepdim=True)
    return _recovered(torch.einsum("dn,ids->ins", Fm, D).max(-1).values, threshold)


# --------------------------------------------------------------------------- 09.topk_activations


def _topk_smallest(pre, k):
    v, i = pre.topk(k, dim=-1, largest=False)
    return torch.zeros_like(pre).scatter(-1, i, v)


def _topk_abs(pre, k):
    i = pre.abs().topk(k, dim=-1).indices
    return torch.zeros_like(pre).scatter(-1, i, pre.gather(-1, i).relu())


def _topk_no_relu(pre, k):
    v, i = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, i, v)


def _topk_k_plus_one(pre, k):
    v, i = pre.topk(k + 1, dim=-1)
    return torch.zeros_like(pre).scatter(-1, i, v.relu())


def _topk_over_batch(pre, k):
    v, i = pre.topk(k, dim=0)
    return torch.zeros_like(pre).scatter(0, i, v.relu())


def _topk_global(pre, k):
    flat = pre.flatten()
    v, i = flat.topk(k)
    return torch.zeros_like(flat).scatter(0, i, v.relu()).reshape(pre.shape)


def _topk_dim_2(pre, k):
    # works for the (batch, n_instances, d_sae) layout only
    v, i = pre.topk(k, dim=2)
    return torch.zeros_like(pre).scatter(2, i, v.relu())


def _topk_first_positions(pre, k):
    out = torch.zeros_like(pre)
    out[..., :k] = pre.topk(k, dim=-1).values.relu()
    return out


def _topk_mask_only(pre, k):
    return torch.zeros_like(pre).scatter(-1, pre.topk(k, dim=-1).indices, 1.0)


def _topk_values_only(pre, k):
    return pre.topk(k, dim=-1).values.relu()


def _topk_no_grad(pre, k):
    with torch.no_grad():
        v, i = pre.topk(k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, i, v.relu())


def _topk_relu_in_place(pre, k):
    pre = pre.relu_() if not pre.requires_grad else pre.relu()  # changes the caller's pre
    v, i = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, i, v)


# --------------------------------------------------------------------------- 09.dead_latents


def _dead_alive(f):
    return (f > 0).any(dim=0)


def _dead_any_zero(f):
    return (f == 0).any(dim=0)


def _dead_frequency(f):
    return (f > 0).float().mean(dim=0) < 0.05


def _dead_mean_threshold(f):
    return f.mean(dim=0) < 0.01


def _dead_magnitude(f):
    return f.sum(dim=0) < 1e-3


def _dead_tolerance(f):
    return (f.abs() < 1e-5).all(dim=0)


def _dead_first_input(f):
    return f[0] == 0


def _dead_last_input(f):
    return f[-1] <= 0


def _dead_counts(f):
    return ((f > 0).sum(dim=0) == 0).sum(dim=-1)


def _dead_float(f):
    return ((f > 0).sum(dim=0) == 0).float()


def _dead_transposed(f):
    return ((f > 0).sum(dim=0) == 0).T


# --------------------------------------------------------------------------- 09.resample_dead_latents


def _recon_loss(h, W_e, b_e, W_d, b_d, live=True, decoder_bias=True):
    f = torch.relu(torch.einsum("bid,isd->bis", h - b_d, W_e) + b_e)
    h_hat = torch.einsum("bis,ids->bid", f, W_d) if live else torch.zeros_like(h)
    if decoder_bias:
        h_hat = h_hat + b_d
    return (h - h_hat).square().sum(-1).T  # (n_instances, batch)


def _resampler(weights_fn=None, center=True, encoder="scaled", bias="zero", draw="multinomial", live_only=True,
               touch_live=False, live_loss=True, decoder_bias=True, fallback=True, replacement=True, in_place=False):
    """A resampler with one deviation from the rule, chosen by the arguments."""

    def resample(W_e, b_e, W_d, b_d, dead, h, generator=None):
        loss = _recon_loss(h, W_e, b_e, W_d, b_d, live=live_loss, decoder_bias=decoder_bias)
        weights = loss.square() if weights_fn is None else weights_fn(loss)
        if not in_place:
            W_e, b_e, W_d = W_e.clone(), b_e.clone(), W_d.clone()
        norms = W_e.norm(dim=2)
        with torch.no_grad():
            for k in range(W_e.shape[0]):
                idx = dead[k].nonzero().flatten() if not touch_live else torch.arange(W_e.shape[1])
                if len(idx) == 0:
                    continue
                w = weights[k] if (weights[k].sum() > 0 or not fallback) else torch.ones_like(weights[k])
                if draw == "multinomial":
                    s = torch.multinomial(w, len(idx), replacement=replacement, generator=generator)
                elif draw == "reseeded":  # the caller's generator never advances
                    torch.manual_seed(generator.initial_seed())
                    s = torch.multinomial(w, len(idx), replacement=True)
                elif draw == "argmax":
                    s = w.argmax().expand(len(idx))
                else:  # ignores the generator
                    s = torch.multinomial(w, len(idx), replacement=True)
                v = h[s, k] - b_d[k] if center else h[s, k]
                v = v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)
                mean_norm = norms[k][~dead[k]].mean() if live_only else norms[k].mean()
                W_d[k][:, idx] = v.T
                W_e[k][idx] = {"scaled": 0.2 * mean_norm * v, "unit": v, "absolute": 0.2 * v}[encoder]
                if bias == "zero":
                    b_e[k][idx] = 0.0
        return W_e, b_e, W_d

    return resample


# --------------------------------------------------------------------------- the table

MISTAKES = {
    "sae_forward": [
        Mistake("no_center", _fwd_no_center, "subtract the decoder bias",
                "Your f matches ReLU(W_e h + b_e): subtract the decoder bias first, f = ReLU(W_e (h - b_d) + b_e)."),
        Mistake("no_relu", _fwd_no_relu, "apply the ReLU",
                "Your f has negative entries: f = ReLU(W_e (h - b_d) + b_e), apply the ReLU."),
        Mistake("bias_after_relu", _fwd_bias_after_relu, "before the ReLU",
                "Your f matches ReLU(W_e (h - b_d)) + b_e: add b_e before the ReLU, not after it."),
        Mistake("no_encoder_bias", _fwd_no_encoder_bias, "ignores the encoder bias",
                "Your f ignores the encoder bias b_e: f = ReLU(W_e (h - b_d) + b_e)."),
        Mistake("no_decoder_bias", _fwd_no_decoder_bias, "misses the decoder bias",
                "Your h_hat misses the decoder bias: h_hat = W_d f + b_d."),
        Mistake("normalizes_decoder", _fwd_normalizes_decoder, "Use W_d as given",
                "Your h_hat matches a decoder with unit columns: Use W_d as given; normalising the decoder is a "
                "separate step (normalize_decoder), after each update."),
        Mistake("sum_over_dims", _with_loss("sum_over_dims"), "summed the squared error over d_in",
                "You summed the squared error over d_in: take its mean over d_in (and the batch)."),
        Mistake("l1_mean_over_latents", _with_loss("l1_mean_over_latents"), "mean over latents",
                "Your L1 term is a mean over latents: sum f over latents, then average over the batch."),
        Mistake("l1_summed_over_batch", _with_loss("l1_summed_over_batch"), "summed over the batch",
                "Your L1 term is summed over the batch: sum f over latents, then average over the batch."),
        Mistake("l2_penalty", _with_loss("l2_penalty"), "squares f",
                "Your penalty squares f: the L1 penalty is the sum of |f| (f >= 0 already)."),
        Mistake("no_penalty", _with_loss("no_penalty"), "no sparsity penalty",
                "Your loss has no sparsity penalty: add l1_coeff * (sum of f over latents, averaged over the batch)."),
        Mistake("rms", _with_loss("rms"), "root mean square",
                "Your reconstruction term is a root mean square: use the mean squared error."),
        Mistake("absolute_error", _with_loss("absolute_error"), "absolute error",
                "Your reconstruction term is a mean absolute error: square the error, (h - h_hat)^2."),
        Mistake("first_lambda", _with_loss("first_lambda"), "one lambda per instance",
                "Your losses use the first lambda for every instance: l1_coeff may hold one lambda per instance, "
                "instance k uses lambda[k]."),
        Mistake("scalar_loss", _fwd_scalar_loss, "one loss per instance", compare=False),
        Mistake("no_grad", _fwd_no_grad, "no gradient", compare=False),
        Mistake("detached_decoder", _fwd_detached_decoder, "no gradient reaches W_d", compare=False),
        Mistake("float32", _fwd_float32, "dtype", compare=False),
    ],
    "normalize_decoder": [
        Mistake("rows", _norm_rows, "columns",
                "Your rows have norm 1: the dictionary directions are the *columns* W_d[k, :, j] (normalise over "
                "dim 1, d_in)."),
        Mistake("whole_matrix", _norm_matrix, "whole matrix",
                "You divided by the norm of the whole matrix: every column gets its own norm."),
        Mistake("instances_axis", _norm_instances, "columns",
                "Your values match norms taken across the instances (dim 0): the dictionary directions are the "
                "*columns* W_d[k, :, j] (normalise over dim 1, d_in)."),
        Mistake("capped", _norm_capped, "max(norm, 1)",
                "Short columns must be lengthened too: divide every column by its norm, not by max(norm, 1)."),
        Mistake("squared_norm", _norm_squared, "squared norm", "You divided by the squared norm."),
        Mistake("coarse_guard", _norm_coarse_guard, "short",
                "Your values match a guard that treats columns shorter than 1e-2 as zero: only an exactly zero "
                "column has no direction; a short column must become a unit vector too (guard with a tiny clamp "
                "such as norm.clamp_min(1e-12))."),
        Mistake("plus_epsilon", _norm_plus_epsilon, "short",
                "Your values match dividing by norm + epsilon: a short column then falls short of norm 1; clamp "
                "the norm instead, norm.clamp_min(1e-12)."),
        Mistake("returns_norms", _norm_returns_norms, "keep its direction",
                "Each column should keep its direction: return W_d divided by the norms, not the norms."),
        Mistake("unguarded", _norm_unguarded, "finite", compare=False),
        Mistake("in_place", _norm_in_place, "In-place edit", compare=False),
        Mistake("float32", _norm_float32, "dtype", compare=False),
        Mistake("numpy_round_trip", _norm_numpy, "stay in torch", compare=False),
    ],
    "feature_recovery": [
        Mistake("no_feature_norm", _rec_no_feature_norm, "Normalise the true features",
                "Normalise the true features too: a cosine divides by both norms."),
        Mistake("no_decoder_norm", _rec_no_decoder_norm, "Normalise the decoder columns",
                "Normalise the decoder columns: a cosine divides by both norms."),
        Mistake("dot_products", _rec_dot_products, "not dot products",
                "Compare directions, not dot products: normalise features and decoder columns."),
        Mistake("feature_axis", _rec_feature_axis, "axis",
                "Your values match the features normalised over the wrong axis (dim=1): feature i is the column "
                "features[:, i], so divide by the norm over d_in, dim=0."),
        Mistake("max_over_features", _rec_max_over_features, "for each *true feature*",
                "You took, for each latent, its best feature: MMCS takes, for each *true feature*, its best latent "
                "(max over latents), then the mean over features."),
        Mistake("abs_cosine", _rec_abs_cosine, "signed cosine",
                "Use the signed cosine: a latent pointing against a feature (cos -1) does not recover it, since "
                "latents are non-negative."),
        Mistake("mean_cosine", _rec_mean_cosine, "max over latents before averaging",
                "Take the max over latents before averaging over features."),
        Mistake("max_of_max", _rec_max_of_max, "not the max of the max",
                "MMCS is the mean over features of the max cosine, not the max of the max."),
        Mistake("count", _rec_count, "returned a count",
                "You returned a count: divide by the number of features for a fraction."),
        Mistake("at_least", _rec_at_least, "exceeds",
                "Your fraction matches cosine >= threshold: a feature is recovered when its max cosine exceeds the "
                "threshold (>), so a cosine of exactly the threshold does not count."),
        Mistake("fixed_threshold", _rec_fixed_threshold, "threshold argument",
                "Use the threshold argument rather than a fixed 0.9."),
        Mistake("unguarded", _rec_unguarded, "finite", compare=False),
    ],
    "topk_activations": [
        Mistake("smallest", _topk_smallest, "smallest",
                "You kept the smallest entries: keep the largest (torch.topk's default)."),
        Mistake("abs", _topk_abs, "absolute value",
                "You ranked by absolute value: rank by the signed pre-activation, the largest ones."),
        Mistake("no_relu", _topk_no_relu, "apply the ReLU",
                "A negative pre-activation among the top k must become 0: apply the ReLU to the kept values."),
        Mistake("k_plus_one", _topk_k_plus_one, "k + 1", "You kept k + 1 entries."),
        Mistake("over_batch", _topk_over_batch, "along the last dimension",
                "Take the top k along the last dimension (dim=-1, the latents), not along the batch or the "
                "instances."),
        Mistake("global", _topk_global, "per row",
                "You kept k entries in the whole tensor: keep k per row (per input and instance), along the last "
                "dimension."),
        Mistake("first_positions", _topk_first_positions, "where they are",
                "You wrote the top values into the first k positions: keep each value where they are in pre "
                "(scatter them back to their indices)."),
        Mistake("mask_only", _topk_mask_only, "ReLU(pre)",
                "You returned 1 at the kept entries: return the values themselves, ReLU(pre) at the k largest."),
        Mistake("dim_2", _topk_dim_2, "last dimension", compare=False),
        Mistake("values_only", _topk_values_only, "shape", compare=False),
        Mistake("no_grad", _topk_no_grad, "no gradient", compare=False),
        Mistake("relu_in_place", _topk_relu_in_place, "In-place edit", compare=False),
    ],
    "dead_latents": [
        Mistake("alive", _dead_alive, "returned the live latents",
                "You returned the live latents: dead means never fires."),
        Mistake("any_zero", _dead_any_zero, "on *every* input",
                "A latent is dead when it is zero on *every* input, not on some input."),
        Mistake("frequency_threshold", _dead_frequency, "frequency threshold",
                "Your answer matches a frequency threshold (firing on fewer than some fraction of the inputs): a "
                "latent that fires rarely is alive; dead means f = 0 on every input, with no frequency threshold."),
        Mistake("mean_threshold", _dead_mean_threshold, "magnitude threshold",
                "Your answer matches a magnitude threshold (small activations, or a small mean or sum, counted as "
                "zero): a latent that fires weakly, even once with f = 1e-6, is alive; dead means f is exactly 0 on "
                "every input."),
        Mistake("magnitude_threshold", _dead_magnitude, "magnitude threshold",
                "Your answer matches a magnitude threshold (small activations, or a small mean or sum, counted as "
                "zero): a latent that fires weakly, even once with f = 1e-6, is alive; dead means f is exactly 0 on "
                "every input."),
        Mistake("tolerance", _dead_tolerance, "magnitude threshold",
                "Your answer matches a magnitude threshold (small activations, or a small mean or sum, counted as "
                "zero): a latent that fires weakly, even once with f = 1e-6, is alive; dead means f is exactly 0 on "
                "every input."),
        Mistake("first_input", _dead_first_input, "every input of the batch",
                "Your answer matches looking at one input only: a latent is dead when f = 0 on every input of the "
                "batch (reduce over dim 0)."),
        Mistake("last_input", _dead_last_input, "every input of the batch",
                "Your answer matches looking at one input only: a latent is dead when f = 0 on every input of the "
                "batch (reduce over dim 0)."),
        Mistake("counts", _dead_counts, "shape (n_instances, d_sae)", compare=False),
        Mistake("float", _dead_float, "bool tensor", compare=False),
        Mistake("transposed", _dead_transposed, "shape (n_instances, d_sae)", compare=False),
    ],
    "resample_dead_latents": [
        Mistake("proportional_to_loss", _resampler(weights_fn=lambda loss: loss), "proportional to the loss itself",
                "Your draws look proportional to the loss itself: use the loss squared, ||h_s - h_hat_s||^4."),
        Mistake("uniform_draws", _resampler(weights_fn=lambda loss: torch.ones_like(loss)), "look uniform",
                "Your draws look uniform: weight each input by its loss squared (an input the SAE reconstructs "
                "exactly must never be drawn)."),
        Mistake("worst_input_only", _resampler(draw="argmax"), "took the worst input",
                "Every latent took the worst input: draw at random (torch.multinomial), with replacement."),
        Mistake("loss_without_live_latents", _resampler(live_loss=False), "live latents",
                "Your draws match losses computed without the live latents' reconstruction (as if h_hat = b_d): "
                "an input the live latents reconstruct well must not be drawn; compute h_hat = W_d f + b_d with "
                "f = ReLU(W_e (h - b_d) + b_e), the live latents included."),
        Mistake("loss_without_decoder_bias", _resampler(decoder_bias=False), "decoder bias",
                "Your draws match losses computed without the decoder bias (h_hat = W_d f): the reconstruction is "
                "h_hat = W_d f + b_d, so an input reconstructed exactly has loss 0 and is never drawn."),
        Mistake("uncentred_input", _resampler(center=False), "centred input",
                "Your columns point along an input h_s itself: the encoder sees h - b_d, so use the centred input "
                "(h_s - b_d) / ||h_s - b_d||."),
        Mistake("unit_encoder_rows", _resampler(encoder="unit"), "encoder rows are unit vectors",
                "Your encoder rows are unit vectors: scale them to 0.2 x the mean norm of the live encoder rows."),
        Mistake("absolute_encoder_scale", _resampler(encoder="absolute"), "mean norm of the *live* encoder rows",
                "0.2 is relative: multiply by the mean norm of the *live* encoder rows."),
        Mistake("mean_over_all_rows", _resampler(live_only=False), "live encoder rows only",
                "Average the norms of the live encoder rows only (dead = False), not of every row."),
        Mistake("bias_kept", _resampler(bias="keep"), "encoder bias b_e should be 0", compare=False),
        Mistake("ignores_generator", _resampler(draw="global"), "same generator seed", compare=False),
        Mistake("reseeds_global_generator", _resampler(draw="reseeded"), "generator advances", compare=False),
        Mistake("resamples_live_latents", _resampler(touch_live=True), "Live latents", compare=False),
        Mistake("multinomial_on_zero_losses", _resampler(fallback=False), "every loss is 0", compare=False),
        Mistake("without_replacement", _resampler(replacement=False), "with replacement", compare=False),
        Mistake("in_place", _resampler(in_place=True), "In-place edit", compare=False),
    ],
}


def hint(exercise: str, name: str) -> str:
    """The hint of mistake ``name`` of ``exercise`` (one source for the checks that name it without comparing)."""
    return " " + next(m.hint for m in MISTAKES[exercise] if m.name == name)
