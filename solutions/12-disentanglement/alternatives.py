"""Lesson 12's correct alternatives: implementations written differently from the solution, each keeping full marks.

Ranks instead of ``torch.quantile``, ``searchsorted`` and comparison counts instead of ``bucketize``,
contingency tables by one-hot products or ``torch.unique``, loops against vectorised sums, ``xlogy``,
entropies in bits divided by bits, Gram matrices with a centring matrix, float64 throughout or not.
"""

from __future__ import annotations

import math

import torch

__all__ = ["ALTERNATIVES"]


# --------------------------------------------------------------------------- discretize


def discretize_by_ranks(values, bins=20):
    # rank r among the n non-zeros of the column -> 1 + floor(r * bins / n)
    v = values.detach()
    out = torch.zeros(v.shape, dtype=torch.long, device=v.device)
    for j in range(v.shape[1]):
        idx = torch.nonzero(v[:, j] != 0).flatten()
        if idx.numel() == 0:
            continue
        order = v[idx, j].argsort(stable=True)
        ranks = torch.empty_like(order)
        ranks[order] = torch.arange(idx.numel(), device=v.device)
        out[idx, j] = ranks * bins // idx.numel() + 1
    return out


def discretize_by_counting_edges(values, bins=20):
    v = values.detach().double()
    out = torch.zeros(v.shape, dtype=torch.int64)
    q = torch.linspace(0, 1, bins + 1, dtype=torch.float64)[1:-1]
    for j in range(v.shape[1]):
        col = v[:, j]
        nz = col != 0
        if nz.sum() == 0:
            continue
        edges = torch.quantile(col[nz], q)
        out[:, j] = torch.where(nz, 1 + (col[:, None] >= edges[None, :]).sum(dim=1), 0)
    return out


def discretize_with_searchsorted(values, bins=20):
    v = values.detach().float()
    labels = []
    for col in v.unbind(dim=1):
        nz = col[col != 0]
        if nz.numel() == 0:
            labels.append(torch.zeros_like(col, dtype=torch.long))
            continue
        edges = torch.quantile(nz.double(), torch.arange(1, bins, dtype=torch.float64) / bins).float()
        lab = torch.searchsorted(edges.contiguous(), col.contiguous(), right=True) + 1
        labels.append(torch.where(col == 0, torch.zeros_like(lab), lab))
    return torch.stack(labels, dim=1)


# --------------------------------------------------------------------------- mutual_information


def mi_by_one_hot_products(a, b):
    # contingency tables as one-hot matrix products, entropies with xlogy
    n = a.shape[0]
    A = torch.nn.functional.one_hot(a.long()).double()  # (n, n_a, ka)
    B = torch.nn.functional.one_hot(b.long()).double()  # (n, n_b, kb)
    joint = torch.einsum("nik,njl->ijkl", A, B) / n
    pa, pb = A.mean(0), B.mean(0)
    h = lambda p, dims: -torch.special.xlogy(p, p).sum(dims)
    return h(pa, -1)[:, None] + h(pb, -1)[None, :] - h(joint, (-2, -1))


def mi_by_unique_pairs(a, b):
    n = a.shape[0]

    def entropy(*cols):
        _, counts = torch.unique(torch.stack(cols, dim=1), dim=0, return_counts=True)
        p = counts.double() / n
        return float(-(p * p.log()).sum())

    out = torch.empty(a.shape[1], b.shape[1], dtype=torch.float64)
    for i in range(a.shape[1]):
        for j in range(b.shape[1]):
            out[i, j] = entropy(a[:, i]) + entropy(b[:, j]) - entropy(a[:, i], b[:, j])
    return out


def mi_as_kl_divergence(a, b):
    # sum p(a, b) log(p(a, b) / (p(a) p(b))), computed in bits and converted to nats
    n = a.shape[0]
    out = torch.zeros(a.shape[1], b.shape[1])
    for i in range(a.shape[1]):
        for j in range(b.shape[1]):
            ka, kb = int(a[:, i].max()) + 1, int(b[:, j].max()) + 1
            table = torch.zeros(ka, kb, dtype=torch.float64)
            table.index_put_((a[:, i].long(), b[:, j].long()), torch.ones(n, dtype=torch.float64), accumulate=True)
            p = table / n
            outer = p.sum(1, keepdim=True) * p.sum(0, keepdim=True)
            nz = p > 0
            out[i, j] = float((p[nz] * torch.log2(p[nz] / outer[nz])).sum()) * math.log(2)
    return out


# --------------------------------------------------------------------------- mig


def _labels(values, bins):
    return discretize_by_counting_edges(values, bins)


def mig_with_its_own_helpers(codes, factors, bins=20):
    zc, zf = _labels(codes, bins), _labels(factors, bins)
    info = mi_by_unique_pairs(zc, zf)
    h = torch.stack([mi_by_unique_pairs(zf[:, k:k + 1], zf[:, k:k + 1])[0, 0] for k in range(zf.shape[1])])
    top = info.sort(dim=0, descending=True).values
    return ((top[0] - top[1]) / h).mean()


def mig_in_a_loop(codes, factors, bins=20):
    zc, zf = discretize_with_searchsorted(codes, bins), discretize_with_searchsorted(factors, bins)
    gaps = []
    for k in range(zf.shape[1]):
        infos = sorted((float(mi_as_kl_divergence(zc[:, j:j + 1], zf[:, k:k + 1])[0, 0]) for j in range(zc.shape[1])),
                       reverse=True)
        p = torch.bincount(zf[:, k]).double() / zf.shape[0]
        h = float(-(p[p > 0] * p[p > 0].log()).sum())
        gaps.append((infos[0] - infos[1]) / h)
    return torch.tensor(sum(gaps) / len(gaps), dtype=torch.float64)


def mig_in_bits(codes, factors, bins=20):
    # mutual information and entropy both in bits: the ratio is the same
    zc, zf = discretize_by_ranks(codes, bins), discretize_by_ranks(factors, bins)
    info = mi_by_one_hot_products(zc, zf) / math.log(2)
    h = mi_by_one_hot_products(zf, zf).diagonal() / math.log(2)
    top2 = info.topk(2, dim=0).values
    return ((top2[0] - top2[1]) / h).mean().float()


# --------------------------------------------------------------------------- dci_disentanglement


def dci_with_loops(importance):
    R = importance.detach().double()
    lead = R.shape[:-2]
    flat = R.reshape(-1, *R.shape[-2:])
    out = torch.zeros(flat.shape[0], dtype=torch.float64)
    K = R.shape[-1]
    for m, M in enumerate(flat):
        total = float(M.sum())
        for row in M:
            s = float(row.sum())
            if s <= 0:
                continue
            h = -sum(float(p) * math.log(float(p), K) for p in row / s if p > 0)
            out[m] += s / total * (1 - h)
    return out.reshape(lead)


def dci_with_xlogy(importance):
    R = importance.double()
    K = R.shape[-1]
    rowsum = R.sum(-1, keepdim=True)
    P = torch.where(rowsum > 0, R / rowsum, torch.zeros_like(R))
    H = -torch.special.xlogy(P, P).sum(-1) / math.log(K)
    w = rowsum.squeeze(-1)
    total = w.sum(-1, keepdim=True)
    return torch.where(total.squeeze(-1) > 0, ((w / total.clamp_min(1e-30)) * (1 - H)).sum(-1), torch.zeros_like(total.squeeze(-1)))


def dci_in_bits(importance):
    # the entropy in bits divided by log2 K bits: the same base-K entropy
    R = importance.float()
    K = R.shape[-1]
    P = R / R.sum(-1, keepdim=True).clamp_min(1e-30)
    logs = torch.log2(P.clamp_min(1e-30))
    D = 1 + (P * logs).sum(-1) / math.log2(K)
    weights = R.sum(-1) / R.sum((-2, -1)).unsqueeze(-1).clamp_min(1e-30)
    return (weights * D).sum(-1)


# --------------------------------------------------------------------------- linear_cka


def cka_with_gram_matrices(X, Y):
    n = X.shape[0]
    H = torch.eye(n, dtype=torch.float64) - 1.0 / n
    K = H @ (X.double() @ X.double().T) @ H
    L = H @ (Y.double() @ Y.double().T) @ H
    denom = K.norm() * L.norm()
    return (K * L).sum() / denom if denom > 0 else torch.zeros((), dtype=torch.float64)


def cka_as_hsic(X, Y):
    # HSIC with its 1/(n-1)^2 factors: they cancel in the ratio
    n = X.shape[0]
    Xc = X - X.mean(0, keepdim=True)
    Yc = Y - Y.mean(0, keepdim=True)

    def hsic(A, B):
        return torch.linalg.matrix_norm(A.T @ B) ** 2 / (n - 1) ** 2

    denom = torch.sqrt(hsic(Xc, Xc) * hsic(Yc, Yc))
    if float(denom) == 0.0:
        return torch.tensor(0.0)
    return hsic(Xc, Yc) / denom


def cka_with_einsum(X, Y):
    X = X.double()
    Y = Y.double()
    X = X - X.mean(dim=0)
    Y = Y - Y.mean(dim=0)
    xy = torch.einsum("ni,nj->ij", X, Y)
    xx = torch.einsum("ni,nj->ij", X, X)
    yy = torch.einsum("ni,nj->ij", Y, Y)
    num = (xy ** 2).sum()
    den = torch.sqrt((xx ** 2).sum() * (yy ** 2).sum())
    return torch.nan_to_num(num / den, nan=0.0)


ALTERNATIVES = {
    "discretize": [discretize_by_ranks, discretize_by_counting_edges, discretize_with_searchsorted],
    "mutual_information": [mi_by_one_hot_products, mi_by_unique_pairs, mi_as_kl_divergence],
    "mig": [mig_with_its_own_helpers, mig_in_a_loop, mig_in_bits],
    "dci_disentanglement": [dci_with_loops, dci_with_xlogy, dci_in_bits],
    "linear_cka": [cka_with_gram_matrices, cka_as_hsic, cka_with_einsum],
}
