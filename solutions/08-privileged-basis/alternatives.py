"""Lesson 8's correct alternatives: implementations written differently from the solution, each keeping full marks.

Matmuls and broadcasting instead of einsum, loops over instances (and neurons), float64 intermediates, other
torch functions (``F.linear``, ``maximum``, ``normalize``, ``bincount``), plain Python on detached copies where
no gradient is needed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["ALTERNATIVES"]


# --------------------------------------------------------------------------- neuron_forward


def fwd_matmul(W, b, x):
    h = torch.relu((x.unsqueeze(-2) @ W.mT).squeeze(-2))  # (batch, k, 1, n) @ (k, n, m)
    return torch.relu((h.unsqueeze(-2) @ W).squeeze(-2) + b)


def fwd_loop(W, b, x):
    outs = []
    for k in range(W.shape[0]):
        h = torch.clamp(x[:, k] @ W[k].T, min=0)
        outs.append(torch.clamp(h @ W[k] + b[k], min=0))
    return torch.stack(outs, dim=1)


def fwd_broadcast(W, b, x):
    h = F.relu((x[:, :, None, :] * W[None]).sum(-1))
    return F.relu((h[..., None] * W[None]).sum(-2) + b)


def fwd_linear_float64(W, b, x):
    # F.linear per instance, in float64, the result in x's dtype
    out = []
    for k in range(W.shape[0]):
        Wk = W[k].double()
        h = F.relu(F.linear(x[:, k].double(), Wk))
        out.append(F.relu(F.linear(h, Wk.T, b[k].double())))
    return torch.stack(out, dim=1).to(x.dtype)


# --------------------------------------------------------------------------- abs_forward


def abs_matmul(W1, W2, b, x):
    h = torch.relu((W1 @ x.unsqueeze(-1)).squeeze(-1))  # (batch, k, m, n) @ (batch, k, n, 1)
    return torch.relu((W2 @ h.unsqueeze(-1)).squeeze(-1) + b)


def abs_loop(W1, W2, b, x):
    outs = []
    for k in range(W1.shape[0]):
        h = (x[:, k] @ W1[k].T).clamp(min=0)
        outs.append((h @ W2[k].T + b[k]).clamp(min=0))
    return torch.stack(outs, dim=1)


def abs_maximum(W1, W2, b, x):
    pre = torch.einsum("kmn,bkn->bkm", W1, x)
    h = torch.maximum(pre, torch.zeros_like(pre))
    y = torch.einsum("knm,bkm->bkn", W2, h) + b[None]
    return torch.where(y > 0, y, torch.zeros_like(y))


def abs_bmm_float64(W1, W2, b, x):
    xs = x.transpose(0, 1).double()  # (k, batch, n)
    h = torch.bmm(xs, W1.double().mT).relu()
    y = torch.baddbmm(b.double()[:, None, :], h, W2.double().mT).relu()
    return y.transpose(0, 1).to(x.dtype)


# --------------------------------------------------------------------------- neuron_readout


def readout_relu_and_max(W):
    A = torch.relu(W)
    top_value, top = A.max(dim=2)
    norm2 = (A * A).sum(dim=2)
    return top, torch.nan_to_num(top_value**2 / norm2, nan=0.0)


def readout_normalised(W):
    A = W.clamp(min=0)
    unit = F.normalize(A, dim=-1)  # zero rows stay zero
    return A.argmax(dim=-1), unit.square().amax(dim=-1)


def readout_loop(W):
    k, m, _ = W.shape
    top = torch.zeros(k, m, dtype=torch.long)
    share = torch.zeros(k, m)
    for a in range(k):
        for j in range(m):
            row = [max(float(v), 0.0) for v in W[a, j]]
            best = max(range(len(row)), key=lambda i: row[i])
            top[a, j] = best
            total = sum(v * v for v in row)
            share[a, j] = row[best] ** 2 / total if total > 0 else 0.0
    return top, share


# --------------------------------------------------------------------------- count_neurons


def _share(A):
    sq = A.square()
    total = sq.sum(-1)
    return torch.where(total > 0, sq.amax(-1) / total.clamp(min=1e-30), torch.zeros_like(total))


def count_with_bincount(W, mono_share=0.9, dead_norm=0.1):
    A = W.clamp(min=0)
    alive = A.norm(dim=-1) >= dead_norm
    mono = alive & (_share(A) >= mono_share)
    kind = torch.where(~alive, 2, torch.where(mono, 0, 1))  # (k, m)
    per = torch.stack([torch.bincount(row, minlength=3) for row in kind])
    return {"monosemantic": per[:, 0], "polysemantic": per[:, 1], "dead": per[:, 2]}


def count_loop(W, mono_share=0.9, dead_norm=0.1):
    k, m, _ = W.shape
    out = {key: torch.zeros(k, dtype=torch.int64) for key in ("monosemantic", "polysemantic", "dead")}
    for a in range(k):
        for j in range(m):
            pos = W[a, j].clamp(min=0)
            if float(pos.norm()) < dead_norm:
                out["dead"][a] += 1
            elif float(pos.max() ** 2 / (pos**2).sum()) >= mono_share:
                out["monosemantic"][a] += 1
            else:
                out["polysemantic"][a] += 1
    return out


def count_by_subtraction(W, mono_share=0.9, dead_norm=0.1):
    pos = torch.relu(W)
    sq = pos**2
    total = sq.sum(-1)
    dead = (total.sqrt() < dead_norm).sum(-1)
    mono = ((total.sqrt() >= dead_norm) & (total > 0) & (sq.max(-1).values >= mono_share * total)).sum(-1)
    return {"dead": dead, "monosemantic": mono, "polysemantic": W.shape[1] - dead - mono}


def count_float64_normalize(W, mono_share=0.9, dead_norm=0.1):
    A = W.double().clamp(min=0)
    norm = torch.linalg.vector_norm(A, dim=2)
    share = F.normalize(A, dim=2).square().amax(dim=2)
    dead = norm < dead_norm
    mono = ~dead & (share >= mono_share)
    return {"monosemantic": mono.long().sum(1), "polysemantic": (~dead & ~mono).long().sum(1),
            "dead": dead.long().sum(1)}


ALTERNATIVES = {
    "neuron_forward": [fwd_matmul, fwd_loop, fwd_broadcast, fwd_linear_float64],
    "abs_forward": [abs_matmul, abs_loop, abs_maximum, abs_bmm_float64],
    "neuron_readout": [readout_relu_and_max, readout_normalised, readout_loop],
    "count_neurons": [count_with_bincount, count_loop, count_by_subtraction, count_float64_normalize],
}
