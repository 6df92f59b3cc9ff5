"""Lesson 7's correct alternatives: implementations written differently from the solution, each keeping full marks.

Loops over snapshots, instances and features, float64 intermediates, NumPy on detached copies, state machines,
run-length encodings, other torch functions (``F.normalize``, ``bmm``, ``unfold``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["ALTERNATIVES"]


# --------------------------------------------------------------------------- correct alternatives: dimensionality_snapshots


def snapshots_with_loops(Ws):
    out = torch.zeros(Ws.shape[0], Ws.shape[1], Ws.shape[3], dtype=Ws.dtype)
    for t in range(Ws.shape[0]):
        for k in range(Ws.shape[1]):
            W = Ws[t, k].detach().double()
            for i in range(W.shape[1]):
                norm = W[:, i].norm()
                if norm > 0:
                    out[t, k, i] = (norm**2 / ((W[:, i] / norm) @ W).square().sum()).to(Ws.dtype)
    return out


def snapshots_from_the_gram_matrix(Ws):
    # (W_hat_i . W_j)^2 = G_ij^2 / ||W_i||^2, so D_i = ||W_i||^4 / sum_j G_ij^2.
    G = torch.einsum("tkmi,tkmj->tkij", Ws, Ws)
    norms_sq = torch.diagonal(G, dim1=-2, dim2=-1)
    den = G.square().sum(-1)
    return torch.where(den > 0, norms_sq.square() / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(den))


def snapshots_reshaped_with_masks(Ws):
    T, k, m, n = Ws.shape
    W = Ws.reshape(T * k, m, n)
    norms = W.norm(dim=1, keepdim=True)
    learned = (norms > 0).to(W.dtype)
    W_hat = W / norms.clamp_min(1e-30) * learned
    den = torch.bmm(W_hat.transpose(1, 2), W).pow(2).sum(2)
    D = W.pow(2).sum(1) / den.clamp_min(1e-30) * learned[:, 0]
    return D.reshape(T, k, n)




def snapshots_per_instance_in_float64(Ws):
    out = []
    for W in Ws.detach().double().reshape(-1, Ws.shape[-2], Ws.shape[-1]):  # one (m, n) matrix at a time
        norms_sq = (W * W).sum(0)
        overlaps = torch.einsum("mi,mj->ij", W, W)  # W_i . W_j = ||W_i|| (W_hat_i . W_j)
        den = torch.where(norms_sq > 0, (overlaps**2).sum(1) / torch.where(norms_sq > 0, norms_sq, 1.0), 0.0)
        out.append(torch.where(den > 0, norms_sq / torch.where(den > 0, den, 1.0), 0.0))
    return torch.stack(out).reshape(Ws.shape[0], Ws.shape[1], Ws.shape[3]).to(Ws.dtype)


# --------------------------------------------------------------------------- correct alternatives: find_jumps

LEVELS = (0.0, 0.4, 0.5, 2 / 3, 0.75, 1.0)


def jumps_from_runs(D, steps, levels=LEVELS, tolerance=0.02, min_hold=5):
    """Run-length encode each feature's labels; runs of at least min_hold snapshots on a level are holds."""
    lv = np.asarray(levels, dtype=np.float64)
    A = D.detach().double().numpy()
    dist = np.abs(A[..., None] - lv)
    label = np.where(dist.min(-1) <= tolerance, dist.argmin(-1), -1)
    out = []
    for k in range(A.shape[1]):
        for i in range(A.shape[2]):
            seq = label[:, k, i]
            holds, t = [], 0
            while t < len(seq):
                u = t
                while u < len(seq) and seq[u] == seq[t]:
                    u += 1
                if seq[t] >= 0 and u - t >= min_hold:
                    holds.append((t, int(seq[t])))
                t = u
            for (t0, a), (t1, b) in zip(holds, holds[1:]):
                if a != b:
                    out.append((int(steps[t1]), k, i, float(lv[a]), float(lv[b])))
    out.sort()
    return out


def jumps_with_a_counter(D, steps, levels=LEVELS, tolerance=0.02, min_hold=5):
    """A small state machine over plain Python floats."""
    values = D.tolist()
    steps = [int(s) for s in steps.tolist()]
    found = []
    for k in range(len(values[0])):
        for i in range(len(values[0][0])):
            held, candidate, count = None, None, 0
            for t, row in enumerate(values):
                v = row[k][i]
                near = min(range(len(levels)), key=lambda j: abs(v - levels[j]))
                level = near if abs(v - levels[near]) <= tolerance else None
                if level is not None and level == candidate:
                    count += 1
                else:
                    candidate, count = level, 1 if level is not None else 0
                if candidate is not None and count == min_hold:
                    if held is not None and candidate != held:
                        found.append((steps[t - min_hold + 1], k, i, levels[held], levels[candidate]))
                    held = candidate
    return sorted(found, key=lambda j: (j[0], j[1], j[2]))


def jumps_vectorised_holds(D, steps, levels=LEVELS, tolerance=0.02, min_hold=5):
    """Holds found with unfold over the snapshot axis, then one pass per feature over the held levels."""
    lv = torch.tensor(levels, dtype=torch.float64)
    dist = (D.double().unsqueeze(-1) - lv).abs()
    label = torch.where(dist.min(-1).values <= tolerance, dist.argmin(-1), torch.tensor(-1))
    if label.shape[0] < min_hold:
        return []
    win = label.unfold(0, min_hold, 1)
    held = torch.where((win == win[..., :1]).all(-1) & (win[..., 0] >= 0), win[..., 0], torch.tensor(-1))
    jumps = []
    for k, i in np.ndindex(held.shape[1], held.shape[2]):
        seq = held[:, k, i]
        idx = torch.nonzero(seq >= 0).flatten().tolist()
        for a, b in zip(idx, idx[1:]):
            if seq[a] != seq[b]:
                jumps.append((int(steps[b]), int(k), int(i), levels[int(seq[a])], levels[int(seq[b])]))
    return sorted(jumps, key=lambda j: j[:3])




# --------------------------------------------------------------------------- correct alternatives: attack_perturbations


def attack_with_normalize(W, x, fraction=0.1):
    G = torch.einsum("kmi,kmj->kij", W, W)
    return fraction * x.norm(dim=2).mean(0)[:, None, None] * F.normalize(G, dim=-1)


def attack_per_instance_in_float64(W, x, fraction=0.1):
    out = []
    for k in range(W.shape[0]):
        G = W[k].detach().double().T @ W[k].detach().double()
        rows = G.norm(dim=1, keepdim=True)
        direction = torch.where(rows > 0, G / torch.where(rows > 0, rows, torch.ones_like(rows)), torch.zeros_like(G))
        eps = fraction * x[:, k].double().pow(2).sum(-1).sqrt().mean()
        out.append(eps * direction)
    return torch.stack(out).to(W.dtype)


def attack_with_bmm_and_masks(W, x, fraction=0.1):
    G = torch.bmm(W.transpose(1, 2), W)
    rows = torch.linalg.vector_norm(G, dim=2, keepdim=True)
    direction = G / rows.clamp_min(1e-30) * (rows > 0)
    eps = fraction * torch.linalg.vector_norm(x, dim=-1).sum(0) / x.shape[0]
    return direction * eps.view(-1, 1, 1)




def attack_feature_by_feature(W, x, fraction=0.1):
    eps = fraction * torch.linalg.vector_norm(x, dim=-1).mean(0)  # (k,)
    rows = []
    for i in range(W.shape[2]):
        row = torch.einsum("km,kmj->kj", W[:, :, i], W)  # (W^T W)_i
        norm = torch.linalg.vector_norm(row, dim=-1, keepdim=True)
        rows.append(torch.where(norm > 0, row / torch.where(norm > 0, norm, torch.ones_like(norm)), torch.zeros_like(row)))
    return eps[:, None, None] * torch.stack(rows, dim=1)


# --------------------------------------------------------------------------- correct alternatives: vulnerability


def _importance(importance, W):
    imp = torch.as_tensor(importance, dtype=W.dtype)
    return imp.expand(W.shape[0], W.shape[2]) if imp.dim() < 2 else imp


def vulnerability_feature_by_feature(W, b, x, importance=1.0, fraction=0.1):
    G = W.mT @ W
    imp = _importance(importance, W)
    delta = attack_with_normalize(W, x, fraction)

    def loss(inputs):
        out = torch.relu(torch.einsum("kij,bkj->bki", G, inputs) + b)
        return (imp * (x - out) ** 2).mean(dim=(0, 2))

    clean = loss(x)
    worst = torch.full((W.shape[0],), -torch.inf, dtype=W.dtype)
    for i in range(W.shape[2]):
        worst = torch.maximum(worst, loss(x + delta[:, i]) - clean)
    return worst


def vulnerability_in_float64(W, b, x, importance=1.0, fraction=0.1):
    Wd, bd, xd = W.double(), b.double(), x.double()
    imp = _importance(importance, Wd).double()
    delta = attack_per_instance_in_float64(Wd, xd, fraction)
    G = Wd.mT @ Wd
    attacked = xd.unsqueeze(2) + delta.unsqueeze(0)                  # (batch, k, i, n)
    out = (attacked @ G.unsqueeze(0).mT + bd.unsqueeze(1)).clamp_min(0)  # G symmetric: row-vector products
    clean_out = (torch.einsum("bkj,kij->bki", xd, G) + bd).clamp_min(0)
    err = ((xd.unsqueeze(2) - out) ** 2 * imp.unsqueeze(1)).mean(dim=(0, 3))
    base = ((xd - clean_out) ** 2 * imp).mean(dim=(0, 2))
    return (err - base.unsqueeze(1)).amax(dim=1).to(W.dtype)


def vulnerability_from_residuals(W, b, x, importance=1.0, fraction=0.1):
    """Sum of squared errors per batch, divided once at the end."""
    B, k, n = x.shape
    imp = _importance(importance, W)
    G = W.mT @ W
    eps = fraction * x.norm(dim=-1).mean(0)
    rows = G.norm(dim=-1, keepdim=True)
    delta = eps[:, None, None] * torch.where(rows > 0, G / rows.clamp_min(1e-30), torch.zeros_like(G))
    pre_clean = torch.einsum("kij,bkj->bki", G, x) + b
    pre_shift = torch.einsum("kij,kaj->kai", G, delta)            # (k, attacked, n): what the attack adds
    out = torch.relu(pre_clean.unsqueeze(2) + pre_shift.unsqueeze(0))
    sse_attacked = (imp.unsqueeze(1) * (x.unsqueeze(2) - out) ** 2).sum(dim=(0, 3))
    sse_clean = (imp * (x - torch.relu(pre_clean)) ** 2).sum(dim=(0, 2))
    return ((sse_attacked - sse_clean.unsqueeze(1)) / (B * n)).max(dim=1).values


def vulnerability_instance_by_instance(W, b, x, importance=1.0, fraction=0.1):
    K, _, n = W.shape
    imp = torch.as_tensor(importance, dtype=W.dtype).expand(K, n)
    worst = []
    for k in range(K):
        G = W[k].T @ W[k]
        xk = x[:, k]
        eps = fraction * xk.norm(dim=-1).mean()
        rows = G.norm(dim=-1, keepdim=True)
        delta = eps * torch.where(rows > 0, G / torch.where(rows > 0, rows, torch.ones_like(rows)), torch.zeros_like(G))

        def loss(inputs):
            return (imp[k] * (xk - torch.relu(inputs @ G + b[k])) ** 2).mean()  # G is symmetric

        clean = loss(xk)
        worst.append(torch.stack([loss(xk + delta[i]) for i in range(n)]).max() - clean)
    return torch.stack(worst)


ALTERNATIVES = {
    "dimensionality_snapshots": [snapshots_with_loops, snapshots_from_the_gram_matrix, snapshots_reshaped_with_masks,
                                 snapshots_per_instance_in_float64],
    "find_jumps": [jumps_from_runs, jumps_with_a_counter, jumps_vectorised_holds],
    "attack_perturbations": [attack_with_normalize, attack_per_instance_in_float64, attack_with_bmm_and_masks,
                             attack_feature_by_feature],
    "vulnerability": [vulnerability_feature_by_feature, vulnerability_in_float64, vulnerability_from_residuals,
                      vulnerability_instance_by_instance],
}
