"""Many models in one set of weights: parameter superposition (Cheung et al. 2019).

One weight matrix stores ``K`` task-specific matrices ``W_k`` bound to contexts::

    W = sum_k W_k C_k^{-1}          task k is read as  W C_k = W_k + sum_{j != k} W_j C_j^{-1} C_k

Every context here is an *isometry* (``C^T C = I``, so ``C^{-1} = C^T``). The
terms ``W_j C_j^{-1} C_k`` are the interference: model ``j`` seen through
task ``k``'s context, a random-looking matrix that is small when the
contexts are unrelated and the inputs live in few dimensions.

Three kinds of context, compact forms first:

* ``"binary"``: ``C_k = diag(s_k)``, ``s_k`` random signs, stored as ``(n_tasks, n)``;
* ``"complex"``: ``C_k = diag(e^{i phi_k})``, phases uniform on the circle, stored
  as ``torch.view_as_real`` of the complex numbers, ``(n_tasks, n, 2)``. The
  weights are complex and the output is the real part: for a real input ``x``,
  ``Re(W (c ⊙ x)) = [Re W, -Im W] @ [Re c ⊙ x; Im c ⊙ x]``, a real layer with
  ``2n`` inputs whose context matrix is ``[diag(Re c); diag(Im c)]``, ``(2n, n)``;
* ``"rotation"``: ``C_k`` a random orthogonal matrix (Haar measure), ``(n_tasks, n, n)``;
* ``"none"``: ``C_k = I`` for every task (a plain network), stored as ones ``(n_tasks, n)``.

"Powers of one context" (:func:`context_powers`, :func:`rotation_powers`)
make ``c_k = c_1^k`` from a single stored context: any number of tasks in
``O(1)`` memory. (Powers of a binary context repeat: ``s^2 = 1``.)

The toy task (:func:`subspace_task`): inputs ``x = U z`` in a ``d``-dimensional
subspace ``U`` ``(n, d)`` of ``n`` dimensions, ``z ~ N(0, I_d)``; task ``k``'s
target is ``y = A_k z`` with ``A_k`` ``(n_out, d)``. The model is one linear
layer read as ``y_hat = W C_k x``; tasks are trained one after another
(:func:`train_sequential`, the plain loop; :func:`train_sequential_instances`,
many models at once). Task ``j``'s :func:`relative_error` is
``||W C_j U - A_j||_F^2 / ||A_j||_F^2``, the expected squared error over the
expected squared target. The :func:`interference` of context ``j`` on task
``k``, ``||U^T C_j^T C_k U||_F^2 / d``, is the fraction of an update stored
under context ``j`` that task ``k`` reads back; for random contexts it is
about ``d / n``, so after ``K`` tasks task 1 has lost about ``(K - 1) d / n``
of its output (the same 1/dimension arithmetic as features in superposition).

The realistic part, permuted digits with an MLP whose every layer is
superposed, is :mod:`supercourse.permuted_digits`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from ._validate import check_positive_int, check_tensor

__all__ = [
    "KINDS",
    "binary_contexts",
    "complex_contexts",
    "rotation_contexts",
    "context_powers",
    "rotation_powers",
    "draw_contexts",
    "context_matrices",
    "read_dim",
    "apply_context",
    "contexted_subspaces",
    "subspace_task",
    "train_sequential",
    "converged_sequential",
    "train_sequential_instances",
    "relative_error",
    "interference",
    "subspace_interference",
    "predicted_error",
]

KINDS = ("none", "binary", "complex", "rotation")
"""The context kinds: a plain network, random signs, random phases, random rotations."""


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return kind


def _generator_device(generator: torch.Generator | None) -> torch.device:
    return torch.device("cpu") if generator is None else generator.device


# --------------------------------------------------------------------------- the contexts


def binary_contexts(
    n_tasks: int, n: int, generator: torch.Generator | None = None, *, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Random sign contexts ``s_k`` (``C_k = diag(s_k)``): ``(n_tasks, n)`` of ``+1`` and ``-1``.

    Every entry is an independent fair coin, drawn from ``generator``.
    ``C_k^{-1} = C_k``: a binary context is its own inverse.
    """
    n_tasks, n = check_positive_int("n_tasks", n_tasks), check_positive_int("n", n)
    bits = torch.randint(0, 2, (n_tasks, n), generator=generator, device=_generator_device(generator))
    return (2 * bits - 1).to(dtype)


def complex_contexts(
    n_tasks: int, n: int, generator: torch.Generator | None = None, *, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Random phase contexts ``c_k = e^{i phi_k}``, ``phi`` uniform on ``[0, 2 pi)``: ``(n_tasks, n, 2)``.

    Returned as ``torch.view_as_real`` of the complex numbers: ``[..., 0]`` is
    ``cos phi`` (the real part), ``[..., 1]`` is ``sin phi``. Every ``|c| = 1``,
    so ``C_k^{-1} = conj(C_k)``.
    """
    n_tasks, n = check_positive_int("n_tasks", n_tasks), check_positive_int("n", n)
    phi = 2 * math.pi * torch.rand(n_tasks, n, generator=generator, dtype=torch.float64,
                                   device=_generator_device(generator))
    return torch.stack([phi.cos(), phi.sin()], dim=-1).to(dtype)


def rotation_contexts(
    n_tasks: int, n: int, generator: torch.Generator | None = None, *, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Random orthogonal contexts, uniform (Haar) on ``O(n)``: ``(n_tasks, n, n)``.

    The QR decomposition of a Gaussian matrix, with each column of ``Q``
    multiplied by the sign of ``R``'s diagonal: without that correction the
    factorisation's sign convention makes ``Q`` non-uniform (LAPACK's
    ``Q[0, 0]`` is never positive).
    """
    n_tasks, n = check_positive_int("n_tasks", n_tasks), check_positive_int("n", n)
    G = torch.randn(n_tasks, n, n, generator=generator, dtype=torch.float64, device=_generator_device(generator))
    Q, R = torch.linalg.qr(G)
    signs = torch.sign(torch.diagonal(R, dim1=-2, dim2=-1))
    signs = torch.where(signs == 0, torch.ones_like(signs), signs)
    return (Q * signs[..., None, :]).to(dtype)


def context_powers(c: torch.Tensor, n_tasks: int) -> torch.Tensor:
    """Powers of one complex context, ``c_k = c^k`` for ``k = 1 .. n_tasks``: ``(n_tasks, n, 2)``.

    Args:
        c: ``(n, 2)`` one complex context as ``torch.view_as_real`` (unit modulus).
        n_tasks: how many powers.

    Task ``k`` (counted from 0) gets ``c^(k+1)``: the phases ``(k+1) phi``.
    Only ``c`` is stored, whatever the number of tasks. Differences of phases
    ``(k - j) phi`` are again uniform on the circle for ``k != j``, so the
    powers interfere like independent contexts.
    """
    check_tensor("c", c, shape=(None, 2), names=("n", "2"))
    n_tasks = check_positive_int("n_tasks", n_tasks)
    z = torch.view_as_complex(c.detach().to(torch.float64).contiguous())
    k = torch.arange(1, n_tasks + 1, device=c.device, dtype=torch.float64)
    powers = torch.polar(z.abs()[None] ** k[:, None], z.angle()[None] * k[:, None])
    return torch.view_as_real(powers).to(c.dtype)


def rotation_powers(Q: torch.Tensor, n_tasks: int) -> torch.Tensor:
    """Powers of one rotation, ``Q^k`` for ``k = 1 .. n_tasks``: ``(n_tasks, n, n)`` from ``Q (n, n)``."""
    check_tensor("Q", Q, shape=(None, None), names=("n", "n"))
    if Q.shape[0] != Q.shape[1]:
        raise ValueError(f"Q must be square (n, n), got {tuple(Q.shape)}")
    n_tasks = check_positive_int("n_tasks", n_tasks)
    Q64 = Q.detach().to(torch.float64)
    out = [Q64]
    for _ in range(n_tasks - 1):
        out.append(out[-1] @ Q64)
    return torch.stack(out).to(Q.dtype)


def draw_contexts(
    kind: str, n_tasks: int, n: int, generator: torch.Generator | None = None, *, powers: bool = False,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``n_tasks`` contexts of ``kind`` for inputs of ``n`` dimensions, in their compact form.

    ``powers=True`` draws one context and uses its powers (``complex`` and
    ``rotation``; for ``binary`` the powers alternate between ``s`` and ``1``).
    Shapes: ``none``/``binary`` ``(n_tasks, n)``, ``complex`` ``(n_tasks, n, 2)``,
    ``rotation`` ``(n_tasks, n, n)``.
    """
    kind = _kind(kind)
    n_tasks, n = check_positive_int("n_tasks", n_tasks), check_positive_int("n", n)
    if kind == "none":
        return torch.ones(n_tasks, n, dtype=dtype, device=_generator_device(generator))
    if kind == "binary":
        if powers:
            s = binary_contexts(1, n, generator, dtype=dtype)[0]
            k = torch.arange(1, n_tasks + 1, device=s.device)
            return torch.where((k % 2 == 1)[:, None], s[None], torch.ones_like(s)[None])
        return binary_contexts(n_tasks, n, generator, dtype=dtype)
    if kind == "complex":
        if powers:
            return context_powers(complex_contexts(1, n, generator, dtype=torch.float64)[0], n_tasks).to(dtype)
        return complex_contexts(n_tasks, n, generator, dtype=dtype)
    if powers:
        return rotation_powers(rotation_contexts(1, n, generator, dtype=torch.float64)[0], n_tasks).to(dtype)
    return rotation_contexts(n_tasks, n, generator, dtype=dtype)


def read_dim(n: int, kind: str) -> int:
    """How many inputs the weights have for ``n``-dimensional data: ``2 n`` for complex contexts, else ``n``."""
    return 2 * n if _kind(kind) == "complex" else n


def _check_compact(contexts: torch.Tensor, kind: str, lead: int = 1) -> None:
    """``contexts`` has the compact shape of ``kind`` after ``lead`` leading dimensions."""
    tail = {"none": 1, "binary": 1, "complex": 2, "rotation": 2}[kind]
    if not isinstance(contexts, torch.Tensor) or contexts.dim() != lead + tail:
        got = tuple(contexts.shape) if isinstance(contexts, torch.Tensor) else type(contexts).__name__
        want = {"none": "(n_tasks, n)", "binary": "(n_tasks, n)", "complex": "(n_tasks, n, 2)",
                "rotation": "(n_tasks, n, n)"}[kind]
        raise ValueError(f"contexts of kind {kind!r} must have shape {'(n_instances, ' * (lead - 1)}{want[1:]}, got {got}")
    if kind == "complex" and contexts.shape[-1] != 2:
        raise ValueError(f"complex contexts must end in 2 (real, imaginary), got shape {tuple(contexts.shape)}")
    if kind == "rotation" and contexts.shape[-1] != contexts.shape[-2]:
        raise ValueError(f"rotation contexts must be square (..., n, n), got shape {tuple(contexts.shape)}")


def context_matrices(contexts: torch.Tensor, kind: str) -> torch.Tensor:
    """The dense context matrices ``C_k``: ``(n_tasks, read_dim(n), n)``.

    ``binary``/``none``: ``diag(s_k)``; ``complex``: ``[diag(Re c_k); diag(Im c_k)]``
    (the real form of ``diag(c_k)`` acting on real inputs); ``rotation``: as given.
    Task ``k`` reads its model as ``W C_k`` with ``W`` ``(n_out, read_dim(n))``.
    """
    kind = _kind(kind)
    _check_compact(contexts, kind)
    if kind in ("none", "binary"):
        return torch.diag_embed(contexts)
    if kind == "complex":
        return torch.cat([torch.diag_embed(contexts[..., 0]), torch.diag_embed(contexts[..., 1])], dim=-2)
    return contexts


def apply_context(x: torch.Tensor, context: torch.Tensor, kind: str) -> torch.Tensor:
    """``C x`` for inputs ``x (..., n)`` and one context per leading position: ``(..., read_dim(n))``.

    ``context`` is one task's compact context, ``(n,)``, ``(n, 2)`` or ``(n, n)``
    (or with leading dimensions that broadcast against ``x``'s, e.g. one context
    per instance ``(n_instances, n)`` for ``x (batch, n_instances, n)``).
    """
    kind = _kind(kind)
    if kind in ("none", "binary"):
        return x * context
    if kind == "complex":
        return torch.cat([x * context[..., 0], x * context[..., 1]], dim=-1)
    return torch.einsum("...j,...ij->...i", x, context)


def contexted_subspaces(contexts: torch.Tensor, kind: str, U: torch.Tensor) -> torch.Tensor:
    """``C_k U`` for every task: ``(n_tasks, read_dim(n), d)``, the subspace task ``k``'s inputs fill as the weights see them."""
    kind = _kind(kind)
    _check_compact(contexts, kind)
    if kind in ("none", "binary"):
        return contexts[..., :, None] * U
    if kind == "complex":
        return torch.cat([contexts[..., 0, None] * U, contexts[..., 1, None] * U], dim=-2)
    return contexts @ U


# --------------------------------------------------------------------------- the toy task


def subspace_task(
    n: int, d: int, n_out: int, n_tasks: int, generator: torch.Generator | None = None,
    *, dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The toy task's subspace and maps: ``U (n, d)`` orthonormal columns, ``A (n_tasks, n_out, d)`` standard normal.

    Inputs are ``x = U z`` with ``z ~ N(0, I_d)`` and task ``k``'s targets are ``y = A_k z``.
    """
    n, d = check_positive_int("n", n), check_positive_int("d", d)
    n_out, n_tasks = check_positive_int("n_out", n_out), check_positive_int("n_tasks", n_tasks)
    if d > n:
        raise ValueError(f"d must be at most n={n}, got {d}")
    dev = _generator_device(generator)
    U, _ = torch.linalg.qr(torch.randn(n, d, generator=generator, dtype=torch.float64, device=dev))
    A = torch.randn(n_tasks, n_out, d, generator=generator, dtype=torch.float64, device=dev)
    return U.to(dtype), A.to(dtype)


def _check_task(W: torch.Tensor, contexts: torch.Tensor, U: torch.Tensor, A: torch.Tensor) -> tuple[int, int, int, int, int]:
    check_tensor("W", W, shape=(None, None), names=("n_out", "n_read"))
    check_tensor("contexts", contexts, shape=(None, None, None), names=("n_tasks", "n_read", "n"))
    check_tensor("U", U, shape=(None, None), names=("n", "d"))
    check_tensor("A", A, shape=(None, None, None), names=("n_tasks", "n_out", "d"))
    n_out, n_read = W.shape
    n_tasks, _, n = contexts.shape
    d = U.shape[1]
    if contexts.shape[1] != n_read:
        raise ValueError(f"contexts must have shape (n_tasks, n_read={n_read}, n) to match W, got {tuple(contexts.shape)}")
    if U.shape[0] != n:
        raise ValueError(f"U must have shape (n={n}, d) to match contexts, got {tuple(U.shape)}")
    if A.shape != (n_tasks, n_out, d):
        raise ValueError(f"A must have shape (n_tasks={n_tasks}, n_out={n_out}, d={d}), got {tuple(A.shape)}")
    return n_out, n_read, n_tasks, n, d


def train_sequential(
    W: torch.Tensor,
    contexts: torch.Tensor,
    U: torch.Tensor,
    A: torch.Tensor,
    steps: int = 500,
    lr: float = 0.5,
    batch_size: int = 64,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Train one superposed linear layer on the tasks in order; returns the trained ``W`` (a new tensor).

    Args:
        W: ``(n_out, n_read)`` the initial weights (left unchanged).
        contexts: ``(n_tasks, n_read, n)`` the context matrices ``C_k`` (:func:`context_matrices`).
        U: ``(n, d)`` the input subspace; ``A``: ``(n_tasks, n_out, d)`` each task's map.
        steps: SGD steps per task; ``lr``: learning rate; ``batch_size``: examples per step.
        generator: draws every batch.

    For each task ``k`` in order and each step: ``z = randn(batch_size, d)`` (from
    ``generator``, ``W``'s dtype), ``x = z U^T``, ``y = z A_k^T``; the prediction
    is ``y_hat = (x C_k^T) W^T``; the loss is the mean of ``(y_hat - y)^2`` over
    the batch and the outputs; ``W <- W - lr * dloss/dW``. This plain loop is
    the reference that :func:`train_sequential_instances` computes faster.
    """
    _, _, n_tasks, _, d = _check_task(W, contexts, U, A)
    steps, batch_size = check_positive_int("steps", steps), check_positive_int("batch_size", batch_size)
    W = W.detach().clone()
    C, U, A = contexts.detach().to(W), U.detach().to(W), A.detach().to(W)
    for k in range(n_tasks):
        for _ in range(steps):
            z = torch.randn(batch_size, d, generator=generator, dtype=W.dtype, device=W.device)
            x_k = z @ U.T @ C[k].T  # (batch, n_read): the input as task k's context presents it
            err = x_k @ W.T - z @ A[k].T  # (batch, n_out)
            W = W - lr * 2 * err.T @ x_k / err.numel()
    return W


def converged_sequential(W: torch.Tensor, contexts: torch.Tensor, U: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """Where :func:`train_sequential` ends when every task is trained to convergence: ``(n_out, n_read)``.

    Each SGD step adds ``err^T x_k``, a matrix whose rows lie in the span of
    ``V_k = C_k U``; training stops when ``W V_k = A_k``. So task ``k`` changes
    ``W`` by exactly ``(A_k - W V_k) V_k^+`` (the pseudo-inverse), whatever
    the batches were: the smallest change that solves task ``k``. Computed in float64.
    """
    _check_task(W, contexts, U, A)
    out = W.detach().to(torch.float64).clone()
    V = contexts.detach().to(torch.float64) @ U.detach().to(torch.float64)
    for k in range(V.shape[0]):
        out = out + (A[k].detach().to(torch.float64) - out @ V[k]) @ torch.linalg.pinv(V[k])
    return out.to(W.dtype)


def relative_error(W: torch.Tensor, contexts: torch.Tensor, U: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """Each task's relative squared error ``||W C_k U - A_k||_F^2 / ||A_k||_F^2``: ``(n_tasks,)``.

    With ``z ~ N(0, I)`` this is ``E||y_hat - y||^2 / E||y||^2``: 0 for a task
    solved exactly, 1 for a model that outputs 0, about 2 for a model that
    answers an unrelated task of the same size.
    ``W`` may have leading instance dimensions, ``(..., n_out, n_read)``, and
    ``contexts``, ``U``, ``A`` the same leading dimensions: the result is then ``(..., n_tasks)``.
    """
    for name, t in (("W", W), ("contexts", contexts), ("U", U), ("A", A)):
        check_tensor(name, t)
    V = contexts @ U.unsqueeze(-3)  # (..., n_tasks, n_read, d)
    diff = W.unsqueeze(-3) @ V - A
    return diff.square().sum(dim=(-2, -1)) / A.square().sum(dim=(-2, -1))


def interference(contexts: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
    """``I[j, k] = ||U^T C_j^T C_k U||_F^2 / d``: how much of an update stored under context ``j`` task ``k`` reads back.

    Args:
        contexts: ``(n_tasks, n_read, n)`` the context matrices; ``U``: ``(n, d)`` orthonormal columns.

    Returns ``(n_tasks, n_tasks)``, symmetric, 1 on the diagonal (the contexts
    are isometries). For independent random contexts the off-diagonal entries
    are about ``d / n``: ``d / n`` for rotations, ``(d + 2) / n`` for binary
    contexts (a diagonal context leaks more through coordinates where ``U`` is
    large), ``(d + 2) / (2 n)`` for complex ones (only the real part of the
    crosstalk ``e^{i (phi_k - phi_j)}`` reaches the output, through ``2 n`` real weights).
    """
    check_tensor("contexts", contexts, shape=(None, None, None), names=("n_tasks", "n_read", "n"))
    check_tensor("U", U, shape=(contexts.shape[2], None), names=("n", "d"))
    return subspace_interference(contexts @ U)


def subspace_interference(V: torch.Tensor) -> torch.Tensor:
    """:func:`interference` from the contexted subspaces ``V (..., n_tasks, n_read, d)`` (``V_k = C_k U``): ``(..., n_tasks, n_tasks)``.

    ``I[j, k] = ||V_j^T V_k||_F^2 / d``; leading instance dimensions are kept.
    """
    check_tensor("V", V)
    if V.dim() < 3:
        raise ValueError(f"V must have shape (..., n_tasks, n_read, d), got {tuple(V.shape)}")
    M = torch.einsum("...jrd,...kre->...jkde", V, V)
    return M.square().sum(dim=(-2, -1)) / V.shape[-1]


def predicted_error(I: torch.Tensor, task: int = 0) -> torch.Tensor:
    """Predicted relative error of ``task`` after each number of tasks ``K = 1 .. n_tasks``: ``(n_tasks,)``.

    ``sum_{j <= K-1, j != task} I[j, task]`` for the tasks trained after it
    (0 until ``task`` itself is trained): every later task writes an update
    the size of its own map, and ``task`` reads back the fraction ``I[j, task]`` of it.
    """
    check_tensor("I", I, shape=(None, None), names=("n_tasks", "n_tasks"))
    after = I[:, task].clone()
    after[: task + 1] = 0
    return after.cumsum(0)


def train_sequential_instances(
    V: torch.Tensor,
    A: torch.Tensor,
    steps: int = 500,
    lr: float = 0.5,
    batch_size: int = 64,
    generator: torch.Generator | None = None,
    W: torch.Tensor | None = None,
    progress: object | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Many superposed layers trained at once: :func:`train_sequential` with an instance dimension, computed in ``d`` dimensions.

    Args:
        V: ``(n_instances, n_tasks, n_read, d)`` each task's contexted subspace ``V_k = C_k U``
            (:func:`contexted_subspaces`); instances may differ in contexts, subspace and kind.
        A: ``(n_instances, n_tasks, n_out, d)`` the tasks' maps.
        W: ``(n_instances, n_out, n_read)`` initial weights (default zeros).
        progress: an object with ``advance(n)`` (e.g. a progress bar), told after each task.

    Returns ``(W, errors)``: the trained weights and ``errors (n_instances,
    n_tasks, n_tasks)``, ``errors[i, t, j]`` the relative error of task ``j``
    once tasks ``0 .. t`` are trained.

    The same SGD as the plain loop, without ever forming an ``n_read``-dimensional
    input: task ``k``'s inputs are ``x = V_k z``, so the prediction needs only
    ``G_k = W V_k`` ``(n_out, d)``, and a step changes ``W`` by ``-s E V_k^T`` with
    ``E = err^T z`` ``(n_out, d)``, which changes every ``G_j`` by ``-s E V_k^T V_j``.
    During task ``k`` only ``G_k`` is updated (through the Gram block
    ``V_k^T V_k``); the steps' sum reaches the other tasks and ``W`` once the
    task ends. Each step draws ``z (n_instances, batch_size, d)``, so for one
    instance the batches are those of :func:`train_sequential` (same generator)
    and the results agree up to float rounding (``tests/test_contexts.py``).
    """
    check_tensor("V", V, shape=(None, None, None, None), names=("n_instances", "n_tasks", "n_read", "d"))
    n_inst, n_tasks, n_read, d = V.shape
    check_tensor("A", A, shape=(n_inst, n_tasks, None, d), names=("n_instances", "n_tasks", "n_out", "d"))
    steps, batch_size = check_positive_int("steps", steps), check_positive_int("batch_size", batch_size)
    n_out = A.shape[2]
    W = torch.zeros(n_inst, n_out, n_read, dtype=V.dtype, device=V.device) if W is None else W.detach().clone()
    check_tensor("W", W, shape=(n_inst, n_out, n_read), names=("n_instances", "n_out", "n_read"))
    A = A.to(V)
    G = W[:, None] @ V  # (I, n_tasks, n_out, d): every task's map as the layer reads it now
    norms = A.square().sum(dim=(-2, -1))  # (I, n_tasks)
    errors = torch.empty(n_inst, n_tasks, n_tasks, dtype=V.dtype)
    scale = 2 * lr / (batch_size * n_out)
    for k in range(n_tasks):
        Vk, Ak = V[:, k], A[:, k]  # (I, n_read, d), (I, n_out, d)
        cross = Vk.mT[:, None] @ V  # (I, n_tasks, d, d): V_k^T V_j
        Gk = G[:, k].clone()
        E_sum = torch.zeros(n_inst, n_out, d, dtype=V.dtype, device=V.device)
        for _ in range(steps):
            z = torch.randn(n_inst, batch_size, d, generator=generator, dtype=V.dtype, device=V.device)
            err = z @ (Gk - Ak).mT  # (I, batch, n_out): prediction z G_k^T minus target z A_k^T
            E = scale * err.mT @ z  # (I, n_out, d)
            Gk = Gk - E @ cross[:, k]
            E_sum = E_sum + E
        G = G - E_sum[:, None] @ cross
        G[:, k] = Gk
        W = W - E_sum @ Vk.mT
        errors[:, k] = ((G - A).square().sum(dim=(-2, -1)) / norms).cpu()
        if progress is not None:
            progress.advance(1)
    return W, errors
