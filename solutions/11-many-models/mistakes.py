"""Lesson 11's mistake table: the wrong implementations learners plausibly write, one list per exercise.

Each :class:`~autograder.toolkit.Mistake` is used twice: the check runs it on the inputs it gave the
learner and, when the outputs match, appends its hint (``compare=True``); the lesson's tests prove that
each one loses points with a message containing its keyword. Mistakes a property catches by a contract
or a statistic (not by comparing values) have ``compare=False``; their keyword is in that property's message.
"""

from __future__ import annotations

import math

import torch

from autograder.toolkit import Mistake

# --------------------------------------------------------------------------- binary_contexts


def _bits(n_tasks, n, generator=None):
    return torch.randint(0, 2, (n_tasks, n), generator=generator).float()


def _three_values(n_tasks, n, generator=None):
    return torch.randint(-1, 2, (n_tasks, n), generator=generator).float()


def _integer_signs(n_tasks, n, generator=None):
    return 2 * torch.randint(0, 2, (n_tasks, n), generator=generator) - 1


def _one_context_for_all(n_tasks, n, generator=None):
    s = 2 * torch.randint(0, 2, (1, n), generator=generator).float() - 1
    return s.expand(n_tasks, n).clone()


def _one_sign_per_task(n_tasks, n, generator=None):
    s = 2 * torch.randint(0, 2, (n_tasks, 1), generator=generator).float() - 1
    return s.expand(n_tasks, n).clone()


def _binary_global_rng(n_tasks, n, generator=None):
    return 2 * torch.randint(0, 2, (n_tasks, n)).float() - 1


def _binary_reseeded(n_tasks, n, generator=None):
    torch.manual_seed(0)
    return 2 * torch.randint(0, 2, (n_tasks, n)).float() - 1


def _binary_transposed(n_tasks, n, generator=None):
    return 2 * torch.randint(0, 2, (n, n_tasks), generator=generator).float() - 1


# --------------------------------------------------------------------------- complex_contexts


def _polar(phi):
    return torch.stack([phi.cos(), phi.sin()], dim=-1)


def _gaussian_unnormalised(n_tasks, n, generator=None):
    return torch.randn(n_tasks, n, 2, generator=generator)


def _phases_only(n_tasks, n, generator=None):
    return 2 * math.pi * torch.rand(n_tasks, n, generator=generator)


def _half_circle(n_tasks, n, generator=None):
    return _polar(math.pi * torch.rand(n_tasks, n, generator=generator))


def _unit_interval_phase(n_tasks, n, generator=None):
    return _polar(torch.rand(n_tasks, n, generator=generator))


def _normal_phase(n_tasks, n, generator=None):
    return _polar(torch.randn(n_tasks, n, generator=generator))


def _complex_one_for_all(n_tasks, n, generator=None):
    return _polar(2 * math.pi * torch.rand(1, n, generator=generator)).expand(n_tasks, n, 2).clone()


def _complex_global_rng(n_tasks, n, generator=None):
    return _polar(2 * math.pi * torch.rand(n_tasks, n))


def _real_imag_first(n_tasks, n, generator=None):
    phi = 2 * math.pi * torch.rand(n_tasks, n, generator=generator)
    return torch.stack([phi.cos(), phi.sin()])


def _complex_dtype(n_tasks, n, generator=None):
    return torch.polar(torch.ones(n_tasks, n), 2 * math.pi * torch.rand(n_tasks, n, generator=generator))


# --------------------------------------------------------------------------- rotation_contexts


def _gaussian_matrix(n_tasks, n, generator=None):
    return torch.randn(n_tasks, n, n, generator=generator) / math.sqrt(n)


def _qr_without_signs(n_tasks, n, generator=None):
    return torch.linalg.qr(torch.randn(n_tasks, n, n, generator=generator)).Q


def _qr_of_uniform(n_tasks, n, generator=None):
    Q, R = torch.linalg.qr(torch.rand(n_tasks, n, n, generator=generator))
    return Q * torch.sign(torch.diagonal(R, dim1=-2, dim2=-1))[..., None, :]


def _normalised_rows(n_tasks, n, generator=None):
    G = torch.randn(n_tasks, n, n, generator=generator)
    return G / G.norm(dim=-1, keepdim=True)


def _expm_of_skew(n_tasks, n, generator=None):
    G = 0.3 * torch.randn(n_tasks, n, n, generator=generator)
    return torch.linalg.matrix_exp(G - G.mT)


def _rotation_one_for_all(n_tasks, n, generator=None):
    Q, R = torch.linalg.qr(torch.randn(1, n, n, generator=generator))
    Q = Q * torch.sign(torch.diagonal(R, dim1=-2, dim2=-1))[..., None, :]
    return Q.expand(n_tasks, n, n).clone()


def _rotation_global_rng(n_tasks, n, generator=None):
    Q, R = torch.linalg.qr(torch.randn(n_tasks, n, n))
    return Q * torch.sign(torch.diagonal(R, dim1=-2, dim2=-1))[..., None, :]


def _identity(n_tasks, n, generator=None):
    return torch.eye(n).expand(n_tasks, n, n).clone()


# --------------------------------------------------------------------------- context_powers


def _cplx(c):
    return torch.view_as_complex(c.detach().double().contiguous())


def _back(z, like):
    return torch.view_as_real(z).to(like.dtype)


def _powers_from_zero(c, n_tasks):
    z = _cplx(c)
    return _back(torch.stack([z ** k for k in range(n_tasks)]), c)


def _parts_to_the_power(c, n_tasks):
    return torch.stack([c ** (k + 1) for k in range(n_tasks)])


def _scaled_not_powered(c, n_tasks):
    return torch.stack([(k + 1) * c for k in range(n_tasks)])


def _atan_without_quadrant(c, n_tasks):
    phi = torch.atan(c[:, 1] / c[:, 0])
    k = torch.arange(1, n_tasks + 1, dtype=c.dtype)[:, None]
    return torch.stack([(k * phi).cos(), (k * phi).sin()], dim=-1)


def _repeated_squaring(c, n_tasks):
    z = _cplx(c)
    out = [z]
    for _ in range(n_tasks - 1):
        out.append(out[-1] * out[-1])
    return _back(torch.stack(out), c)


def _inverse_powers(c, n_tasks):
    z = _cplx(c)
    return _back(torch.stack([z.conj() ** (k + 1) for k in range(n_tasks)]), c)


def _phases_of_powers(c, n_tasks):
    phi = torch.atan2(c[:, 1], c[:, 0])
    return torch.stack([(k + 1) * phi for k in range(n_tasks)])


# --------------------------------------------------------------------------- train_sequential


def _sgd(W, contexts, U, A, steps=500, lr=0.5, batch_size=64, generator=None, *, in_place=False, grad_scale=2.0,
         per="all", sign=1.0, lr_fixed=None, use_context=True, transpose=False, same_context=False, reset=False,
         reverse=False, global_rng=False):
    """One implementation with switches: each mistake turns one on."""
    W = W if in_place else W.detach().clone()
    W0 = W.detach().clone()
    lr = lr if lr_fixed is None else lr_fixed
    order = range(contexts.shape[0] - 1, -1, -1) if reverse else range(contexts.shape[0])
    d = U.shape[1]
    with torch.no_grad():
        for k in order:
            if reset:
                W = W0.clone()
            C = contexts[0 if same_context else k]
            for _ in range(steps):
                if global_rng:
                    z = torch.randn(batch_size, d, dtype=W.dtype)
                else:
                    z = torch.randn(batch_size, d, generator=generator, dtype=W.dtype)
                x = z @ U.T
                if use_context:
                    x = x @ (C if transpose else C.T)
                err = x @ W.T - z @ A[k].T
                count = err.numel() if per == "all" else err.shape[0]
                grad = grad_scale * err.T @ x / count
                W -= sign * lr * grad
    return W


def _in_place(W, contexts, U, A, steps=500, lr=0.5, batch_size=64, generator=None):
    return _sgd(W, contexts, U, A, steps, lr, batch_size, generator, in_place=True)


def _sum_over_outputs(W, contexts, U, A, steps=500, lr=0.5, batch_size=64, generator=None):
    return _sgd(W, contexts, U, A, steps, lr, batch_size, generator, per="batch")


def _no_factor_two(W, contexts, U, A, steps=500, lr=0.5, batch_size=64, generator=None):
    return _sgd(W, contexts, U, A, steps, lr, batch_size, generator, grad_scale=1.0)


def _ignores_lr(W, contexts, U, A, steps=500, lr=0.5, batch_size=64, generator=None):
    return _sgd(W, contexts, U, A, steps, lr, batch_size, generator, lr_fixed=0.5)


def _ascent(W, contexts, U, A, steps=500, lr=0.5, batch_size=64, generator=None):
    return _sgd(W, contexts, U, A, steps, lr, batch_size, generator, sign=-1.0)


def _no_context(W, contexts, U, A, steps=500, lr=0.5, batch_size=64, generator=None):
    if contexts.shape[1] != contexts.shape[2]:
        raise ValueError("W and the inputs differ in size")  # what happens without a context when n_read != n
    return _sgd(W, contexts, U, A, steps, lr, batch_size, generator, use_context=False)


def _transposed_context(W, contexts, U, A, steps=500, lr=0.5, batch_size=64, generator=None):
    if contexts.shape[1] != contexts.shape[2]:
        raise ValueError("shapes do not match")
    return _sgd(W, contexts, U, A, steps, lr, batch_size, generator, transpose=True)


def _first_context_for_every_task(W, contexts, U, A, steps=500, lr=0.5, batch_size=64, generator=None):
    return _sgd(W, contexts, U, A, steps, lr, batch_size, generator, same_context=True)


def _reset_every_task(W, contexts, U, A, steps=500, lr=0.5, batch_size=64, generator=None):
    return _sgd(W, contexts, U, A, steps, lr, batch_size, generator, reset=True)


def _tasks_reversed(W, contexts, U, A, steps=500, lr=0.5, batch_size=64, generator=None):
    return _sgd(W, contexts, U, A, steps, lr, batch_size, generator, reverse=True)


def _train_global_rng(W, contexts, U, A, steps=500, lr=0.5, batch_size=64, generator=None):
    return _sgd(W, contexts, U, A, steps, lr, batch_size, generator, global_rng=True)


# --------------------------------------------------------------------------- interference


def _V(contexts, U):
    return contexts @ U


def _not_squared(contexts, U):
    V = _V(contexts, U)
    return torch.einsum("jrd,kre->jkde", V, V).flatten(2).norm(dim=-1) / U.shape[1]


def _not_divided(contexts, U):
    V = _V(contexts, U)
    return torch.einsum("jrd,kre->jkde", V, V).square().sum(dim=(-2, -1))


def _divided_by_n(contexts, U):
    V = _V(contexts, U)
    return torch.einsum("jrd,kre->jkde", V, V).square().sum(dim=(-2, -1)) / U.shape[0]


def _mean_over_entries(contexts, U):
    V = _V(contexts, U)
    return torch.einsum("jrd,kre->jkde", V, V).square().mean(dim=(-2, -1))


def _without_the_subspace(contexts, U):
    M = torch.einsum("jrn,krm->jknm", contexts, contexts)
    return M.square().sum(dim=(-2, -1)) / contexts.shape[2]


def _no_transpose(contexts, U):
    # C_j C_k U instead of C_j^T C_k U (only possible for square contexts)
    V = contexts @ U
    M = torch.einsum("jab,kbd->jkad", contexts, V)
    return torch.einsum("xd,jkxe->jkde", U, M).square().sum(dim=(-2, -1)) / U.shape[1]


def _only_task_one(contexts, U):
    V = _V(contexts, U)
    return torch.einsum("rd,kre->kde", V[0], V).square().sum(dim=(-2, -1)) / U.shape[1]


MISTAKES: dict[str, list[Mistake]] = {
    "binary_contexts": [
        Mistake("bits_0_1", _bits, "+1 or -1", compare=False),
        Mistake("three_values", _three_values, "+1 or -1", compare=False),
        Mistake("integer_dtype", _integer_signs, "floating-point", compare=False),
        Mistake("one_context_for_every_task", _one_context_for_all, "every task", compare=False),
        Mistake("one_sign_per_task", _one_sign_per_task, "every input dimension", compare=False),
        Mistake("global_rng", _binary_global_rng, "generator", compare=False),
        Mistake("reseeded_global_rng", _binary_reseeded, "generator", compare=False),
        Mistake("transposed", _binary_transposed, "shape", compare=False),
    ],
    "complex_contexts": [
        Mistake("gaussian_not_normalised", _gaussian_unnormalised, "modulus", compare=False),
        Mistake("phases_only", _phases_only, "shape", compare=False),
        Mistake("half_circle", _half_circle, "whole circle", compare=False),
        Mistake("phase_in_0_1", _unit_interval_phase, "whole circle", compare=False),
        Mistake("normal_phase", _normal_phase, "whole circle", compare=False),
        Mistake("one_context_for_every_task", _complex_one_for_all, "every task", compare=False),
        Mistake("global_rng", _complex_global_rng, "generator", compare=False),
        Mistake("real_and_imaginary_first", _real_imag_first, "shape", compare=False),
        Mistake("complex_dtype", _complex_dtype, "view_as_real", compare=False),
    ],
    "rotation_contexts": [
        Mistake("gaussian_matrix", _gaussian_matrix, "orthogonal", compare=False),
        Mistake("normalised_rows", _normalised_rows, "orthogonal", compare=False),
        Mistake("qr_without_sign_correction", _qr_without_signs, "sign", compare=False),
        Mistake("qr_of_uniform_entries", _qr_of_uniform, "Gaussian", compare=False),
        Mistake("exponential_of_small_skew", _expm_of_skew, "uniform", compare=False),
        Mistake("identity", _identity, "uniform", compare=False),
        Mistake("one_rotation_for_every_task", _rotation_one_for_all, "every task", compare=False),
        Mistake("global_rng", _rotation_global_rng, "generator", compare=False),
    ],
    "context_powers": [
        Mistake("powers_from_zero", _powers_from_zero, "c^1",
                "Your values match c^0, c^1, ..., c^(n_tasks-1): task k (counted from 0) gets c^(k+1), so the first "
                "context is c^1 = c itself (c^0 = 1 would be no context at all)."),
        Mistake("parts_to_the_power", _parts_to_the_power, "complex multiplication",
                "Your values match raising the real and imaginary parts to the power separately: c^k is a complex "
                "multiplication (or: the modulus to the k, the phase times k), not a power of each part."),
        Mistake("scaled_not_powered", _scaled_not_powered, "power",
                "Your values match k * c: a context's k-th power multiplies the phase by k (c^k), it does not scale c."),
        Mistake("atan_without_quadrant", _atan_without_quadrant, "atan2",
                "Your values match a phase from atan(im / re), which loses the quadrant when the real part is negative: "
                "use torch.atan2(im, re), torch.angle, or complex multiplication."),
        Mistake("repeated_squaring", _repeated_squaring, "c^(k+1)",
                "Your values match c, c^2, c^4, c^8, ... (squaring the previous power): multiply the previous power "
                "by c once more, c^(k+1) = c^k * c."),
        Mistake("inverse_powers", _inverse_powers, "conjugate",
                "Your values match the powers of the conjugate of c (phases -(k+1) phi): raise c itself, not its inverse."),
        Mistake("phases_returned", _phases_of_powers, "shape", compare=False),
    ],
    "train_sequential": [
        Mistake("updates_W_in_place", _in_place, "in place", compare=False),
        Mistake("loss_summed_over_outputs", _sum_over_outputs, "outputs",
                "Your weights match a loss averaged over the batch but summed over the outputs: average over both "
                "(the mean of all batch_size * n_out squared errors), so the gradient is 2 err^T x / err.numel()."),
        Mistake("no_factor_two", _no_factor_two, "factor 2",
                "Your weights match a gradient without the factor 2: d/dW of mean((y_hat - y)^2) is "
                "2 * err^T x / err.numel()."),
        Mistake("ignores_lr", _ignores_lr, "lr",
                "Your weights match a learning rate of 0.5 whatever lr says: use the lr argument."),
        Mistake("gradient_ascent", _ascent, "sign",
                "Your weights match W + lr * gradient, the wrong sign: step against the gradient (W - lr * grad)."),
        Mistake("context_left_out", _no_context, "context",
                "Your weights match training without the context: the model reads task k's input as x C_k^T "
                "(that is, C_k x for each example) before W."),
        Mistake("context_transposed", _transposed_context, "transpose",
                "Your weights match x @ C_k instead of its transpose x @ C_k.T: an example is a row x, and the context acts as "
                "C_k x, which for a batch of rows is x @ C_k.T (it matters for rotations, which are not symmetric)."),
        Mistake("first_context_for_every_task", _first_context_for_every_task, "its own context",
                "Your weights match every task trained through the first task's context: task k must use its own "
                "context contexts[k]."),
        Mistake("weights_reset_every_task", _reset_every_task, "reset",
                "Your weights match starting every task from the initial W, as if reset: keep training the same weights, task "
                "after task (that is the point: one set of weights holds every task)."),
        Mistake("tasks_in_reverse", _tasks_reversed, "order",
                "Your weights match the tasks trained last to first: train them in order, task 0 first."),
        Mistake("global_rng", _train_global_rng, "generator", compare=False),
    ],
    "interference": [
        Mistake("not_squared", _not_squared, "squared",
                "Your values match the Frobenius norm, not squared: I[j, k] = ||U^T C_j^T C_k U||_F^2 / d."),
        Mistake("not_divided_by_d", _not_divided, "divide by d",
                "Your values match ||U^T C_j^T C_k U||_F^2 without the division: divide by d, so that a task reads back "
                "all of its own update (I[k, k] = 1)."),
        Mistake("divided_by_n", _divided_by_n, "not n",
                "Your values match a division by n (the input dimension): divide by d, the subspace's dimension, "
                "not n."),
        Mistake("mean_over_entries", _mean_over_entries, "d^2",
                "Your values match the mean over the d x d entries, a division by d^2: divide the squared Frobenius "
                "norm by d."),
        Mistake("without_the_subspace", _without_the_subspace, "subspace",
                "Your values match the overlap of the whole context matrices, ||C_j^T C_k||^2 / n: only the inputs' "
                "subspace matters, U^T C_j^T C_k U."),
        Mistake("no_transpose", _no_transpose, "transpose",
                "Your values match U^T C_j C_k U, without the transpose: an update stored under context j is undone "
                "by C_j^{-1} = C_j^T, so the cross map is C_j^T C_k."),
        Mistake("only_task_one", _only_task_one, "shape", compare=False),
    ],
}
