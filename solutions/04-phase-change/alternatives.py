"""Lesson 4's correct alternatives: implementations written differently from the solution that keep full marks.

The generic lesson proof (tests/test_lesson_proofs.py) grades each one and requires full marks.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def losses_numpy(r, p):
    r, p = np.broadcast_arrays(np.asarray(r, dtype=float), np.asarray(p, dtype=float))
    var = p / 3 - p**2 / 4
    return torch.from_numpy(np.stack([r * var, var.copy(), (1 + r) * p**2 / 6], axis=-1))


def losses_float32(r, p):
    r = torch.as_tensor(r, dtype=torch.float32)
    p = torch.as_tensor(p, dtype=torch.float32)
    shape = torch.broadcast_shapes(r.shape, p.shape)
    out = torch.empty(*shape, 3)
    out[..., 0] = r * (p / 3 - p * p / 4)
    out[..., 1] = (p / 3 - p * p / 4).expand(shape)
    out[..., 2] = (1 + r) * p * p / 6
    return out


def losses_expand(r, p):
    r, p = torch.as_tensor(r).double(), torch.as_tensor(p).double()
    shape = torch.broadcast_shapes(r.shape, p.shape)
    r, p = r.expand(shape), p.expand(shape)
    return torch.cat([(r * (p / 3 - p**2 / 4))[..., None], (p / 3 - p**2 / 4)[..., None], ((1 + r) * p**2 / 6)[..., None]], -1)


def diagram_loops(relative_importance, density):
    out = torch.zeros(len(relative_importance), len(density), dtype=torch.long)
    for i, r in enumerate(relative_importance.tolist()):
        for j, p in enumerate(density.tolist()):
            losses = [r * (p / 3 - p**2 / 4), p / 3 - p**2 / 4, (1 + r) * p**2 / 6]
            out[i, j] = min(range(3), key=lambda c: losses[c])
    return out


def diagram_meshgrid(relative_importance, density):
    r, p = torch.meshgrid(relative_importance.double(), density.double(), indexing="ij")
    var = p / 3 - p**2 / 4
    return torch.stack([r * var, var, (1 + r) * p**2 / 6]).argmin(dim=0)


def diagram_where(relative_importance, density):
    r = relative_importance.double()[:, None]
    p = density.double()[None, :]
    var = p / 3 - p**2 / 4
    a, b, c = r * var, var.expand_as(r * var), (1 + r) * p**2 / 6
    return torch.where((a <= b) & (a <= c), 0, torch.where(b <= c, 1, 2))


def grid_meshgrid(n_importance, n_density, n_restarts, importance_range=(0.1, 10.0), density_range=(0.01, 1.0)):
    r = torch.logspace(math.log10(importance_range[0]), math.log10(importance_range[1]), n_importance, dtype=torch.float64)
    p = torch.logspace(math.log10(density_range[0]), math.log10(density_range[1]), n_density, dtype=torch.float64)
    R, P, _ = torch.meshgrid(r, p, torch.arange(n_restarts, dtype=torch.float64), indexing="ij")
    R, P = R.reshape(-1), P.reshape(-1)
    return r, p, torch.stack([torch.ones_like(R), R], 1), torch.stack([P, P], 1)


def grid_loops(n_importance, n_density, n_restarts, importance_range=(0.1, 10.0), density_range=(0.01, 1.0)):
    lo, hi = math.log(importance_range[0]), math.log(importance_range[1])
    r = [math.exp(lo + (hi - lo) * i / max(n_importance - 1, 1)) for i in range(n_importance)]
    lo, hi = math.log(density_range[0]), math.log(density_range[1])
    p = [math.exp(lo + (hi - lo) * j / max(n_density - 1, 1)) for j in range(n_density)]
    imp, prob = [], []
    for ri in r:
        for pj in p:
            for _ in range(n_restarts):
                imp.append([1.0, ri])
                prob.append([pj, pj])
    return torch.tensor(r), torch.tensor(p), torch.tensor(imp), torch.tensor(prob)


def grid_repeat_interleave(n_importance, n_density, n_restarts, importance_range=(0.1, 10.0), density_range=(0.01, 1.0)):
    r = 10 ** torch.linspace(math.log10(importance_range[0]), math.log10(importance_range[1]), n_importance)
    p = 10 ** torch.linspace(math.log10(density_range[0]), math.log10(density_range[1]), n_density)
    r_inst = r.repeat_interleave(n_density * n_restarts)
    p_inst = p.repeat_interleave(n_restarts).repeat(n_importance)
    return r, p, torch.stack([torch.ones_like(r_inst), r_inst], dim=1), p_inst[:, None].repeat(1, 2)


def classify_where(W, threshold=0.5):
    w0, w1 = W[:, 0, 0], W[:, 0, 1]
    on0, on1 = w0.abs() > threshold, w1.abs() > threshold
    return torch.where(on0 & on1 & (torch.sign(w0) != torch.sign(w1)), 2, torch.where(on1 & ~on0, 1, 0))


def classify_loop(W, threshold=0.5):
    out = []
    for a, b in W.detach()[:, 0, :].tolist():
        if abs(a) > threshold and abs(b) > threshold and a * b < 0:
            out.append(2)
        elif abs(b) > threshold and not abs(a) > threshold:
            out.append(1)
        else:
            out.append(0)
    return torch.tensor(out, dtype=torch.long)


def classify_float64(W, threshold=0.5):
    W = W.detach().double()
    rep = W[:, 0, :].abs() > threshold
    labels = torch.zeros(W.shape[0], dtype=torch.int64)
    labels = labels.masked_fill(rep[:, 1] & ~rep[:, 0], 1)
    return labels.masked_fill(rep.all(dim=1) & (W[:, 0, 0] * W[:, 0, 1] < 0), 2)


def aggregate_sort(labels, losses, drop_worst=1):
    K = labels.shape[-1]
    order = torch.sort(losses, dim=-1, stable=True).indices[..., : K - drop_worst]
    kept = torch.gather(labels.long(), -1, order)
    return torch.stack([(kept == c).double().mean(-1) for c in range(3)], dim=-1)


def aggregate_topk(labels, losses, drop_worst=1):
    K = labels.shape[-1]
    keep = torch.topk(losses, K - drop_worst, dim=-1, largest=False).indices
    kept = labels.long().gather(-1, keep)
    counts = torch.zeros(*labels.shape[:-1], 3, dtype=torch.float32)
    counts.scatter_add_(-1, kept, torch.ones_like(kept, dtype=torch.float32))
    return counts / (K - drop_worst)


def aggregate_loops(labels, losses, drop_worst=1):
    R, P, K = labels.shape
    out = torch.zeros(R, P, 3, dtype=torch.float64)
    for i in range(R):
        for j in range(P):
            order = sorted(range(K), key=lambda k: float(losses[i, j, k]))[: K - drop_worst]
            for k in order:
                out[i, j, int(labels[i, j, k])] += 1.0 / len(order)
    return out


def grid_geomspace_cartesian(n_importance, n_density, n_restarts, importance_range=(0.1, 10.0),
                             density_range=(0.01, 1.0)):
    r = torch.from_numpy(np.geomspace(*importance_range, n_importance))
    p = torch.from_numpy(np.geomspace(*density_range, n_density))
    rpk = torch.cartesian_prod(r, p, torch.arange(n_restarts, dtype=torch.float64)).reshape(-1, 3)
    return r, p, torch.stack([torch.ones(len(rpk), dtype=torch.float64), rpk[:, 0]], 1), rpk[:, [1, 1]]


def classify_sign_arithmetic(W, threshold=0.5):
    w = W.detach()[:, 0, :]
    on = (w.abs() > threshold).long()                       # (k, 2) 0/1
    opposite = (torch.sign(w[:, 0]) * torch.sign(w[:, 1]) < 0).long()
    return on[:, 1] * (1 - on[:, 0]) + 2 * on[:, 0] * on[:, 1] * opposite


def aggregate_bincount(labels, losses, drop_worst=1):
    R, P, K = labels.shape
    kept = K - drop_worst
    out = torch.empty(R, P, 3, dtype=torch.float64)
    for i in range(R):
        for j in range(P):
            order = torch.argsort(losses[i, j])[:kept]
            out[i, j] = torch.bincount(labels[i, j, order].long(), minlength=3).double() / kept
    return out


def n3_numpy(r, p):
    r, p = np.broadcast_arrays(np.asarray(r, dtype=float), np.asarray(p, dtype=float))
    d, pair = p / 3 - p**2 / 4, p**2 / 6
    return torch.from_numpy(np.stack([r * d, d.copy(), (1 + r) * pair, 2 * pair], axis=-1))


def n3_float32(r, p):
    r, p = torch.broadcast_tensors(torch.as_tensor(r, dtype=torch.float32), torch.as_tensor(p, dtype=torch.float32))
    d = p / 3 - p.square() / 4
    return torch.stack([r * d, d, (1 + r) * p.square() / 6, p.square() / 3], -1)


def n3_from_pairs(r, p):
    r, p = torch.broadcast_tensors(torch.as_tensor(r, dtype=torch.float64), torch.as_tensor(p, dtype=torch.float64))
    importance = torch.stack([torch.ones_like(r), torch.ones_like(r), r], dim=-1)   # features 1, 2, extra
    d = (p / 3 - p**2 / 4)[..., None]
    pair = (p**2 / 6)[..., None]
    dropped = importance * d
    return torch.cat([dropped[..., 2:3], dropped[..., 0:1], (importance[..., 0:1] + importance[..., 2:3]) * pair,
                      (importance[..., 0:1] + importance[..., 1:2]) * pair], dim=-1)


ALTERNATIVES = {
    "configuration_losses": [losses_numpy, losses_float32, losses_expand],
    "phase_diagram": [diagram_loops, diagram_meshgrid, diagram_where],
    "make_grid": [grid_meshgrid, grid_loops, grid_repeat_interleave, grid_geomspace_cartesian],
    "classify": [classify_where, classify_loop, classify_float64, classify_sign_arithmetic],
    "aggregate_restarts": [aggregate_sort, aggregate_topk, aggregate_loops, aggregate_bincount],
    "n3m2_losses": [n3_numpy, n3_float32, n3_from_pairs],
}
