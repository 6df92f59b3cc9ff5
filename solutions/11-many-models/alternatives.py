"""Lesson 11's correct implementations written differently from the solution: each must keep full marks."""

from __future__ import annotations

import math

import torch


# --------------------------------------------------------------------------- binary_contexts


def binary_sign_of_normal(n_tasks, n, generator=None):
    return torch.sign(torch.randn(n_tasks, n, generator=generator))  # P(exactly 0) = 0


def binary_bernoulli(n_tasks, n, generator=None):
    return torch.bernoulli(torch.full((n_tasks, n), 0.5), generator=generator) * 2 - 1


def binary_where(n_tasks, n, generator=None):
    u = torch.rand(n_tasks, n, generator=generator, dtype=torch.float64)
    return torch.where(u < 0.5, 1.0, -1.0).float()


def binary_loop(n_tasks, n, generator=None):
    rows = [2.0 * torch.randint(0, 2, (n,), generator=generator) - 1 for _ in range(n_tasks)]
    return torch.stack(rows)


# --------------------------------------------------------------------------- complex_contexts


def complex_normalised_gaussian(n_tasks, n, generator=None):
    g = torch.randn(n_tasks, n, 2, generator=generator, dtype=torch.float64)
    return (g / g.norm(dim=-1, keepdim=True)).float()


def complex_polar(n_tasks, n, generator=None):
    phi = torch.rand(n_tasks, n, generator=generator) * 2 * math.pi
    return torch.view_as_real(torch.polar(torch.ones(n_tasks, n), phi))


def complex_symmetric_interval(n_tasks, n, generator=None):
    phi = (torch.rand(n_tasks, n, generator=generator) - 0.5) * 2 * math.pi  # [-pi, pi): the same circle
    return torch.stack([torch.cos(phi), torch.sin(phi)], dim=-1)


# --------------------------------------------------------------------------- rotation_contexts


def rotation_gram_schmidt(n_tasks, n, generator=None):
    G = torch.randn(n_tasks, n, n, generator=generator, dtype=torch.float64)
    Q = torch.zeros_like(G)
    for j in range(n):
        v = G[:, :, j].clone()
        for i in range(j):
            v = v - (Q[:, :, i] * v).sum(-1, keepdim=True) * Q[:, :, i]
        Q[:, :, j] = v / v.norm(dim=-1, keepdim=True)
    return Q.float()


def rotation_qr_rows(n_tasks, n, generator=None):
    # QR of the transpose, sign-corrected: rows instead of columns, Haar all the same
    Q, R = torch.linalg.qr(torch.randn(n_tasks, n, n, generator=generator).mT)
    Q = Q * torch.sign(torch.diagonal(R, dim1=-2, dim2=-1)).unsqueeze(-2)
    return Q.mT.contiguous()


def rotation_householder_loop(n_tasks, n, generator=None):
    out = []
    for _ in range(n_tasks):
        Q, R = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=torch.float64))
        d = torch.diagonal(R)
        out.append(Q @ torch.diag(torch.where(d < 0, -1.0, 1.0).double()))
    return torch.stack(out).float()


# --------------------------------------------------------------------------- context_powers


def powers_by_multiplication(c, n_tasks):
    re, im = c[:, 0], c[:, 1]
    out, pr, pi = [], re, im
    for _ in range(n_tasks):
        out.append(torch.stack([pr, pi], dim=-1))
        pr, pi = pr * re - pi * im, pr * im + pi * re
    return torch.stack(out)


def powers_by_angle(c, n_tasks):
    r = torch.sqrt(c[:, 0] ** 2 + c[:, 1] ** 2)
    phi = torch.atan2(c[:, 1], c[:, 0])
    k = torch.arange(1, n_tasks + 1, dtype=c.dtype, device=c.device)[:, None]
    return torch.stack([r ** k * torch.cos(k * phi), r ** k * torch.sin(k * phi)], dim=-1)


def powers_complex_pow(c, n_tasks):
    z = torch.view_as_complex(c.detach().double().contiguous())
    k = torch.arange(1, n_tasks + 1, dtype=torch.float64)[:, None]
    return torch.view_as_real(z[None] ** k).to(c.dtype)


# --------------------------------------------------------------------------- train_sequential


def train_autograd(W, contexts, U, A, steps=500, lr=0.5, batch_size=64, generator=None):
    W = W.detach().clone().requires_grad_(True)
    d = U.shape[1]
    for k in range(contexts.shape[0]):
        for _ in range(steps):
            z = torch.randn(batch_size, d, generator=generator, dtype=W.dtype)
            x = torch.einsum("bd,nd,rn->br", z, U, contexts[k])
            loss = torch.nn.functional.mse_loss(x @ W.T, z @ A[k].T)
            (grad,) = torch.autograd.grad(loss, W)
            with torch.no_grad():
                W -= lr * grad
    return W.detach()


def train_precomputed_subspaces(W, contexts, U, A, steps=500, lr=0.5, batch_size=64, generator=None):
    V = contexts @ U  # (n_tasks, n_read, d): C_k U once, then every batch is z V_k^T
    W = W.clone().detach()
    n_out = A.shape[1]
    for k in range(V.shape[0]):
        for _ in range(steps):
            z = torch.randn(batch_size, U.shape[1], generator=generator, dtype=W.dtype)
            x = z @ V[k].T
            err = x @ W.T - z @ A[k].T
            W = W - lr * (2.0 / (batch_size * n_out)) * err.T @ x
    return W


def train_optimizer(W, contexts, U, A, steps=500, lr=0.5, batch_size=64, generator=None):
    param = torch.nn.Parameter(W.detach().clone())
    opt = torch.optim.SGD([param], lr=lr)
    for k, (C, Ak) in enumerate(zip(contexts, A)):
        for _ in range(steps):
            z = torch.randn(batch_size, U.shape[1], generator=generator, dtype=W.dtype)
            y_hat = (C @ (U @ z.T)).T @ param.T
            loss = ((y_hat - z @ Ak.T) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return param.detach()


# --------------------------------------------------------------------------- interference


def interference_projector(contexts, U):
    P = U @ U.T  # ||P C_j^T C_k P||_F = ||U^T C_j^T C_k U||_F for orthonormal U
    M = torch.einsum("ab,jra,krc,cd->jkbd", P, contexts, contexts, P)
    return M.square().sum(dim=(-2, -1)) / U.shape[1]


def interference_loops(contexts, U):
    K = contexts.shape[0]
    V = [C @ U for C in contexts]
    rows = [torch.stack([torch.linalg.matrix_norm(V[j].T @ V[k]) ** 2 for k in range(K)]) for j in range(K)]
    return torch.stack(rows) / U.shape[1]


def interference_float64(contexts, U):
    V = contexts.double() @ U.double()
    G = V.mT.unsqueeze(1) @ V.unsqueeze(0)  # (K, K, d, d)
    return ((G ** 2).sum(dim=(-2, -1)) / U.shape[1]).to(contexts.dtype)


ALTERNATIVES = {
    "binary_contexts": [binary_sign_of_normal, binary_bernoulli, binary_where, binary_loop],
    "complex_contexts": [complex_normalised_gaussian, complex_polar, complex_symmetric_interval],
    "rotation_contexts": [rotation_gram_schmidt, rotation_qr_rows, rotation_householder_loop],
    "context_powers": [powers_by_multiplication, powers_by_angle, powers_complex_pow],
    "train_sequential": [train_autograd, train_precomputed_subspaces, train_optimizer],
    "interference": [interference_projector, interference_loops, interference_float64],
}
