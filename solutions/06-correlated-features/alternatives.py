"""Lesson 6's correct alternatives: implementations written differently from the solution, each keeping full marks.

Other vectorisations, loops over instances and sets, float64 intermediates, other torch functions
(``bernoulli``, ``multinomial``, ``cosine_similarity``), NumPy on detached copies.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["ALTERNATIVES"]


# --------------------------------------------------------------------------- correlated_sets


def correlated_by_set_loop(batch_size, feature_probability, set_size, generator=None):
    # one set at a time, values drawn before the activity
    n_inst, n_sets = feature_probability.shape
    parts = []
    for k in range(n_sets):
        values = torch.rand((batch_size, n_inst, set_size), generator=generator)
        on = torch.rand((batch_size, n_inst, 1), generator=generator) < feature_probability[:, k, None]
        parts.append(values * on)
    return torch.cat(parts, dim=-1)


def correlated_with_where(batch_size, feature_probability, set_size, generator=None):
    p = feature_probability.repeat_interleave(set_size, dim=1)
    u = torch.rand((batch_size, feature_probability.shape[0], feature_probability.shape[1]), generator=generator)
    on = (u < feature_probability).repeat_interleave(set_size, dim=2)
    return torch.where(on, torch.rand((batch_size, *p.shape), generator=generator), torch.zeros(()))


def correlated_with_bernoulli(batch_size, feature_probability, set_size, generator=None):
    # the set's activity from torch.bernoulli, the values drawn in float64 and returned in float32
    probs = feature_probability[None, :, :, None].expand(batch_size, -1, -1, 1).double()
    on = torch.bernoulli(probs, generator=generator)
    values = torch.rand((batch_size, *feature_probability.shape, set_size), generator=generator, dtype=torch.float64)
    return (values * on).flatten(2).float()


def correlated_per_instance(batch_size, feature_probability, set_size, generator=None):
    out = []
    for k in range(feature_probability.shape[0]):
        p = feature_probability[k]
        on = torch.rand(batch_size, p.shape[0], generator=generator) < p
        values = torch.rand(batch_size, p.shape[0] * set_size, generator=generator)
        out.append(values * on.repeat_interleave(set_size, dim=1))
    return torch.stack(out, dim=1)


# --------------------------------------------------------------------------- anticorrelated_sets


def anticorrelated_by_cumulative_bins(batch_size, feature_probability, set_size, generator=None):
    # one uniform per set: feature j is active when u falls in [j p, (j + 1) p)
    p = feature_probability[..., None]
    u = torch.rand((batch_size, *feature_probability.shape, 1), generator=generator)
    j = torch.arange(set_size)
    on = (u >= j * p) & (u < (j + 1) * p)
    values = torch.rand((batch_size, *feature_probability.shape, set_size), generator=generator)
    return (values * on).reshape(batch_size, feature_probability.shape[0], -1)


def anticorrelated_with_multinomial(batch_size, feature_probability, set_size, generator=None):
    # each set picks one of set_size + 1 outcomes: nothing, or feature j
    K, S = feature_probability.shape
    p = feature_probability.double().reshape(K * S, 1)
    probs = torch.cat([1 - set_size * p, p.expand(-1, set_size)], dim=1).clamp_min(0)
    outcome = torch.multinomial(probs, batch_size, replacement=True, generator=generator)  # (K * S, batch)
    onehot = F.one_hot(outcome, set_size + 1)[..., 1:].permute(1, 0, 2).reshape(batch_size, K, S * set_size)
    values = torch.rand((batch_size, K, S * set_size), generator=generator)
    return values * onehot


def anticorrelated_by_random_keys(batch_size, feature_probability, set_size, generator=None):
    # which feature: the position of the largest of set_size uniform keys (uniform over the set), in float64
    K, S = feature_probability.shape
    on = torch.rand((batch_size, K, S), generator=generator, dtype=torch.float64) < set_size * feature_probability
    keys = torch.rand((batch_size, K, S, set_size), generator=generator, dtype=torch.float64)
    chosen = keys == keys.amax(-1, keepdim=True)
    values = torch.rand((batch_size, K, S, set_size), generator=generator)
    return (values * (chosen & on[..., None])).reshape(batch_size, K, S * set_size)


def anticorrelated_by_set_loop(batch_size, feature_probability, set_size, generator=None):
    K, S = feature_probability.shape
    x = torch.zeros(batch_size, K, S * set_size)
    for s in range(S):
        on = torch.rand(batch_size, K, generator=generator) < set_size * feature_probability[:, s]
        which = torch.randint(0, set_size, (batch_size, K), generator=generator)
        value = torch.rand(batch_size, K, generator=generator)
        cols = s * set_size + which
        x.scatter_(2, cols[..., None], (value * on)[..., None])
    return x


# --------------------------------------------------------------------------- partner_cosines


def partner_cosines_numpy_loops(W, set_size=2):
    A = W.detach().double().numpy()
    K, _, n = A.shape
    out = np.zeros((K, n // set_size))
    for k in range(K):
        for s in range(n // set_size):
            cols = range(s * set_size, (s + 1) * set_size)
            vals = []
            for i in cols:
                for j in cols:
                    if i != j:
                        ni, nj = np.linalg.norm(A[k, :, i]), np.linalg.norm(A[k, :, j])
                        vals.append(0.0 if ni == 0 or nj == 0 else A[k, :, i] @ A[k, :, j] / (ni * nj))
            out[k, s] = np.mean(vals)
    return torch.from_numpy(out).to(W.dtype)


def partner_cosines_cosine_similarity(W, set_size=2):
    K, m, n = W.shape
    cols = W.transpose(1, 2).reshape(K, n // set_size, set_size, m)
    cos = F.cosine_similarity(cols[:, :, :, None], cols[:, :, None, :], dim=-1, eps=1e-30)
    return (cos.sum((-1, -2)) - torch.diagonal(cos, dim1=-2, dim2=-1).sum(-1)) / (set_size * (set_size - 1))


def partner_cosines_normalize_float64(W, set_size=2):
    U = F.normalize(W.double(), dim=1, eps=1e-300)
    C = torch.einsum("kmi,kmj->kij", U, U)
    K, n = C.shape[0], C.shape[1]
    s = n // set_size
    blocks = C.reshape(K, s, set_size, s, set_size).diagonal(dim1=1, dim2=3)  # (K, set_size, set_size, s)
    total = blocks.sum((1, 2)) - blocks.diagonal(dim1=1, dim2=2).sum(-1)
    return (total / (set_size * (set_size - 1))).to(W.dtype)


def partner_cosines_unordered_pairs(W, set_size=2):
    K, _, n = W.shape
    norms = W.norm(dim=1)
    out = []
    for s in range(n // set_size):
        feats = range(s * set_size, (s + 1) * set_size)
        pair_cos = []
        for i, j in itertools.combinations(feats, 2):
            den = norms[:, i] * norms[:, j]
            dot = (W[:, :, i] * W[:, :, j]).sum(1)
            pair_cos.append(torch.where(den > 0, dot / torch.where(den > 0, den, torch.ones_like(den)),
                                        torch.zeros_like(den)))
        out.append(torch.stack(pair_cos, 1).mean(1))
    return torch.stack(out, 1)


# --------------------------------------------------------------------------- collapsed_sets


def collapsed_by_min_cosine(W, set_size=2, cosine=0.9):
    K, m, n = W.shape
    norms = W.norm(dim=1)
    unit = W / norms.clamp_min(1e-30)[:, None, :]
    count = torch.zeros(K, dtype=torch.long)
    for s in range(n // set_size):
        block = unit[:, :, s * set_size:(s + 1) * set_size]
        cos = block.mT @ block
        ok = (cos > cosine).all(-1).all(-1) & (norms[:, s * set_size:(s + 1) * set_size] > 0.5).all(-1)
        count += ok.long()
    return count


def collapsed_with_pairs_in_float64(W, set_size=2, cosine=0.9):
    A = W.detach().double()
    K, _, n = A.shape
    counts = []
    for k in range(K):
        count = 0
        for s in range(n // set_size):
            feats = list(range(s * set_size, (s + 1) * set_size))
            represented = all(float(A[k, :, i].norm()) > 0.5 for i in feats)
            aligned = all(float(A[k, :, i] @ A[k, :, j]) > cosine * float(A[k, :, i].norm() * A[k, :, j].norm())
                          for i, j in itertools.combinations(feats, 2))
            count += int(represented and aligned)
        counts.append(count)
    return torch.tensor(counts)


def collapsed_from_the_gram_matrix(W, set_size=2, cosine=0.9):
    G = torch.einsum("kmi,kmj->kij", W, W)
    sq = torch.diagonal(G, dim1=1, dim2=2)  # squared norms
    den = (sq[:, :, None] * sq[:, None, :]).sqrt()
    C = torch.where(den > 0, G / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(G))
    K, n = sq.shape
    s = n // set_size
    off = ~torch.eye(set_size, dtype=torch.bool)
    within = C.reshape(K, s, set_size, s, set_size).diagonal(dim1=1, dim2=3).permute(0, 3, 1, 2)[..., off]
    aligned = within.amin(-1) > cosine
    represented = (sq.sqrt() > 0.5).reshape(K, s, set_size).all(-1)
    return (aligned & represented).sum(-1)


ALTERNATIVES = {
    "correlated_sets": [correlated_by_set_loop, correlated_with_where, correlated_with_bernoulli,
                        correlated_per_instance],
    "anticorrelated_sets": [anticorrelated_by_cumulative_bins, anticorrelated_with_multinomial,
                            anticorrelated_by_random_keys, anticorrelated_by_set_loop],
    "partner_cosines": [partner_cosines_numpy_loops, partner_cosines_cosine_similarity,
                        partner_cosines_normalize_float64, partner_cosines_unordered_pairs],
    "collapsed_sets": [collapsed_by_min_cosine, collapsed_with_pairs_in_float64, collapsed_from_the_gram_matrix],
}
