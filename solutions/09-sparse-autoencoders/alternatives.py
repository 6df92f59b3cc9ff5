"""Lesson 9's correct alternatives: implementations written differently from the solution, each keeping full marks.

Batched matmuls and loops over instances (and latents), float64 intermediates, other torch functions
(``F.linear``, ``F.mse_loss``, ``F.normalize``, ``cosine_similarity``, ``argsort``, ``count_nonzero``), plain
Python loops on detached values where no gradient is needed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["ALTERNATIVES"]


# --------------------------------------------------------------------------- sae_forward


def fwd_bmm(h, W_e, b_e, W_d, b_d, l1_coeff):
    x = (h - b_d).transpose(0, 1)  # (n_instances, batch, d_in)
    f = torch.relu(torch.bmm(x, W_e.transpose(1, 2)) + b_e[:, None, :])
    h_hat = torch.bmm(f, W_d.transpose(1, 2)) + b_d[:, None, :]
    lam = torch.as_tensor(l1_coeff, dtype=h.dtype).reshape(-1)
    loss = ((h_hat - (h - b_d).transpose(0, 1) - b_d[:, None, :]) ** 2).mean(dim=(1, 2)) + lam * f.abs().sum(2).mean(1)
    return h_hat.transpose(0, 1), f.transpose(0, 1), loss


def fwd_loop(h, W_e, b_e, W_d, b_d, l1_coeff):
    lam = torch.as_tensor(l1_coeff, dtype=h.dtype).expand(W_e.shape[0])
    outs = []
    for k in range(W_e.shape[0]):
        f = F.relu(F.linear(h[:, k] - b_d[k], W_e[k], b_e[k]))
        h_hat = F.linear(f, W_d[k], b_d[k])
        loss = F.mse_loss(h_hat, h[:, k]) + lam[k] * f.norm(p=1, dim=1).mean()
        outs.append((h_hat, f, loss))
    return torch.stack([o[0] for o in outs], 1), torch.stack([o[1] for o in outs], 1), torch.stack([o[2] for o in outs])


def fwd_matmul(h, W_e, b_e, W_d, b_d, l1_coeff):
    pre = ((h - b_d).unsqueeze(-2) @ W_e.mT).squeeze(-2) + b_e
    f = pre.clamp(min=0)
    h_hat = (f.unsqueeze(-2) @ W_d.mT).squeeze(-2) + b_d
    mse = (h - h_hat).pow(2).sum(-1).mean(0) / h.shape[-1]
    return h_hat, f, mse + l1_coeff * f.sum(-1).mean(0)


def fwd_float64(h, W_e, b_e, W_d, b_d, l1_coeff):
    dtype = h.dtype
    h, W_e, b_e, W_d, b_d = (t.double() for t in (h, W_e, b_e, W_d, b_d))
    f = torch.einsum("bid,isd->bis", h - b_d, W_e).add(b_e).relu()
    h_hat = torch.einsum("bis,ids->bid", f, W_d) + b_d
    lam = torch.as_tensor(l1_coeff, dtype=torch.float64)
    loss = torch.mean((h - h_hat) ** 2, dim=(0, 2)) + lam * torch.sum(f, dim=2).mean(dim=0)
    return h_hat.to(dtype), f.to(dtype), loss.to(dtype)


# --------------------------------------------------------------------------- normalize_decoder


def norm_functional(W_d):
    return F.normalize(W_d, dim=1)


def norm_linalg(W_d):
    n = torch.linalg.vector_norm(W_d, dim=-2, keepdim=True)
    return torch.where(n > 0, W_d / torch.where(n > 0, n, torch.ones_like(n)), torch.zeros_like(W_d))


def norm_rsqrt(W_d):
    return W_d * torch.rsqrt(torch.einsum("kds,kds->ks", W_d, W_d).clamp_min(1e-24)).unsqueeze(1)


def norm_loop_float64(W_d):
    out = torch.zeros_like(W_d)
    for k in range(W_d.shape[0]):
        for j in range(W_d.shape[2]):
            col = W_d[k, :, j].double()
            n = col.norm()
            if n > 0:
                out[k, :, j] = (col / n).to(W_d.dtype)
    return out


# --------------------------------------------------------------------------- feature_recovery


def rec_cosine_similarity(features, W_d, threshold=0.9):
    c = F.cosine_similarity(features.T[None, :, None, :], W_d.mT[:, None, :, :], dim=-1, eps=1e-12)
    best = c.amax(dim=-1)
    return best.mean(dim=-1), best.gt(threshold).to(best.dtype).mean(dim=-1)


def rec_loops(features, W_d, threshold=0.9):
    mm, fr = [], []
    for k in range(W_d.shape[0]):
        vals = []
        for i in range(features.shape[1]):
            a = features[:, i]
            cs = []
            for j in range(W_d.shape[2]):
                denom = float(a.norm() * W_d[k, :, j].norm())
                cs.append(float(a @ W_d[k, :, j]) / denom if denom > 0 else 0.0)
            vals.append(max(cs))
        mm.append(sum(vals) / len(vals))
        fr.append(sum(v > threshold for v in vals) / len(vals))
    return torch.tensor(mm), torch.tensor(fr)


def rec_bmm(features, W_d, threshold=0.9):
    Fu = F.normalize(features, dim=0).expand(W_d.shape[0], -1, -1)
    D = F.normalize(W_d, dim=1)
    best, _ = torch.bmm(Fu.mT, D).max(dim=2)
    return best.mean(1), (best > threshold).sum(1) / best.shape[1]


# --------------------------------------------------------------------------- topk_activations


def topk_relu_first(pre, k):
    r = pre.relu()
    v, i = r.topk(k, dim=-1)
    return torch.zeros_like(r).scatter(-1, i, v)


def topk_threshold(pre, k):
    kth = pre.topk(k, dim=-1).values[..., -1:]
    return torch.where(pre >= kth, pre.clamp_min(0), torch.zeros_like(pre))


def topk_sort(pre, k):
    order = pre.argsort(dim=-1, descending=True)[..., :k]
    mask = torch.zeros_like(pre, dtype=torch.bool).scatter(-1, order, True)
    return F.relu(pre) * mask


# --------------------------------------------------------------------------- dead_latents


def dead_max(f):
    return f.amax(dim=0) <= 0


def dead_all(f):
    return torch.all(f == 0, dim=0)


def dead_count_nonzero(f):
    return torch.count_nonzero(f, dim=0).eq(0)


# --------------------------------------------------------------------------- resample_dead_latents


def resample_vectorised(W_e, b_e, W_d, b_d, dead, h, generator=None):
    x = h - b_d
    f = F.relu(torch.einsum("bid,isd->bis", x, W_e) + b_e)
    err = (x - torch.einsum("bis,ids->bid", f, W_d)).pow(2).sum(-1)  # (batch, n_instances)
    probs = err.T.pow(2)
    probs = torch.where(probs.sum(1, keepdim=True) > 0, probs, torch.ones_like(probs))
    n_dead = int(dead.sum(1).max())
    draws = torch.multinomial(probs, max(n_dead, 1), replacement=True, generator=generator)  # (n_instances, n_dead)
    out_e, out_b, out_d = W_e.clone(), b_e.clone(), W_d.clone()
    live_mean = (W_e.norm(dim=2) * ~dead).sum(1) / (~dead).sum(1).clamp_min(1)
    for k in range(W_e.shape[0]):
        cols = torch.where(dead[k])[0]
        v = F.normalize(x[draws[k, : len(cols)], k], dim=1)
        out_d[k, :, cols] = v.T
        out_e[k, cols] = 0.2 * live_mean[k] * v
        out_b[k, cols] = 0
    return out_e, out_b, out_d


def resample_per_latent(W_e, b_e, W_d, b_d, dead, h, generator=None):
    W_e, b_e, W_d = W_e.detach().clone(), b_e.detach().clone(), W_d.detach().clone()
    for k in range(W_e.shape[0]):
        f = F.relu((h[:, k] - b_d[k]) @ W_e[k].T + b_e[k])
        loss = ((f @ W_d[k].T + b_d[k] - h[:, k]) ** 2).sum(1)
        p = loss**2
        if float(p.sum()) == 0.0:
            p = torch.ones_like(p)
        live = ~dead[k]
        scale = W_e[k, live].norm(dim=1).mean() if bool(live.any()) else torch.tensor(1.0)
        n_dead = int(dead[k].sum())
        chosen = torch.multinomial(p, n_dead, replacement=True, generator=generator) if n_dead else []
        for j, s in zip(dead[k].nonzero().flatten().tolist(), list(chosen)):
            v = h[s, k] - b_d[k]
            v = v / v.norm()
            W_d[k, :, j] = v
            W_e[k, j] = 0.2 * scale * v
            b_e[k, j] = 0.0
    return W_e, b_e, W_d


def resample_with_batched_forward(W_e, b_e, W_d, b_d, dead, h, generator=None):
    x = (h - b_d).transpose(0, 1)
    f = torch.relu(torch.baddbmm(b_e[:, None], x, W_e.mT))
    err = (torch.bmm(f, W_d.mT) - x).double().square().sum(-1)  # (n_instances, batch), in float64
    W_e, b_e, W_d = W_e.clone(), b_e.clone(), W_d.clone()
    for k in range(W_e.shape[0]):
        n = int(dead[k].sum())
        if n == 0:
            continue
        w = err[k] ** 2 if err[k].any() else torch.ones_like(err[k])
        v = F.normalize(x[k][torch.multinomial(w, n, True, generator=generator)], dim=-1)
        scale = 0.2 * W_e[k][~dead[k]].norm(dim=-1).mean()
        W_d[k].T[dead[k]] = v
        W_e[k][dead[k]] = scale * v
        b_e[k][dead[k]] = 0
    return W_e, b_e, W_d


ALTERNATIVES = {
    "sae_forward": [fwd_bmm, fwd_loop, fwd_matmul, fwd_float64],
    "normalize_decoder": [norm_functional, norm_linalg, norm_rsqrt, norm_loop_float64],
    "feature_recovery": [rec_cosine_similarity, rec_loops, rec_bmm],
    "topk_activations": [topk_relu_first, topk_threshold, topk_sort],
    "dead_latents": [dead_max, dead_all, dead_count_nonzero],
    "resample_dead_latents": [resample_vectorised, resample_per_latent, resample_with_batched_forward],
}
