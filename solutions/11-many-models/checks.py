"""Lesson 11 checks: many models in one set of weights (parameter superposition, Cheung et al. 2019).

Six exercises, compared with :mod:`supercourse.contexts` on inputs drawn from the grading run's secret.

* ``11.binary_contexts`` ``binary_contexts(n_tasks, n, generator=None) -> (n_tasks, n)`` of +1 and -1.
* ``11.complex_contexts`` ``complex_contexts(n_tasks, n, generator=None) -> (n_tasks, n, 2)``:
  ``torch.view_as_real`` of ``e^{i phi}`` with phases uniform on the circle (complex tensors do not cross
  to the grader, hence the real form).
* ``11.rotation_contexts`` ``rotation_contexts(n_tasks, n, generator=None) -> (n_tasks, n, n)``: uniform
  (Haar) random orthogonal matrices.
  The three generators are checked statistically (binomial and KS tests at ``alpha = 1e-6``, so a correct
  generator fails about once in a million runs) and for using the generator they are given.
* ``11.context_powers`` ``context_powers(c, n_tasks) -> (n_tasks, n, 2)``: ``c^1 .. c^n_tasks``.
* ``11.train_sequential`` ``train_sequential(W, contexts, U, A, steps=500, lr=0.5, batch_size=64,
  generator=None) -> W``: one exact SGD step against the reference; several tasks trained to convergence
  against where the projections say SGD must end (independent of how the batches were drawn); the
  generator; arguments left unchanged.
* ``11.interference`` ``interference(contexts, U) -> (n_tasks, n_tasks)``: ``||U^T C_j^T C_k U||_F^2 / d``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from autograder.exercises import Exercise
from autograder.framework import CheckFailed, call, expect, prop
from autograder.toolkit import Case, close, describe, fmt, show_difference, tensor_out, tensor_properties
from autograder.toolkit.randomness import secret_gen, secret_seed
from autograder.toolkit.stats import ks_test, proportion_ok, uniform_cdf
from supercourse import contexts as cx

from .mistakes import MISTAKES

LESSON = "11-many-models"
EXERCISES = {
    "binary_contexts": Exercise(
        "binary_contexts", "Binary contexts: random signs",
        reference=("supercourse.contexts.binary_contexts", "supercourse.contexts.draw_contexts"),
    ),
    "complex_contexts": Exercise(
        "complex_contexts", "Complex contexts: random phases",
        reference=("supercourse.contexts.complex_contexts", "supercourse.contexts.draw_contexts"),
    ),
    "rotation_contexts": Exercise(
        "rotation_contexts", "Rotation contexts: uniform random orthogonal matrices",
        reference=("supercourse.contexts.rotation_contexts", "supercourse.contexts.draw_contexts"),
    ),
    "context_powers": Exercise(
        "context_powers", "Powers of one context",
        reference=("supercourse.contexts.context_powers", "supercourse.contexts.draw_contexts"),
    ),
    "train_sequential": Exercise(
        "train_sequential", "Sequential training, each task through its own context",
        reference=("supercourse.contexts.train_sequential", "supercourse.contexts.train_sequential_instances",
                   "supercourse.contexts.converged_sequential"),
    ),
    "interference": Exercise(
        "interference", "The interference between contexts",
        reference=("supercourse.contexts.interference", "supercourse.contexts.subspace_interference"),
    ),
}


def _sizes(salt: int, low: int, high: int) -> int:
    """A size the learner cannot predict, in ``[low, high]``."""
    return int(torch.randint(low, high + 1, (1,), generator=secret_gen(("size", salt))).item())


def _out(submission: Any, name: str, args: tuple, shape: tuple[int, ...], meaning: str, hint: str = "") -> torch.Tensor:
    """The learner's tensor, of exactly ``shape`` and floating point (a complex result gets a hint)."""
    try:
        out = call(submission, *args, what=name)
    except CheckFailed as err:
        if "complex" in str(err):
            raise CheckFailed(f"{err} Complex tensors cannot be graded: return torch.view_as_real(c), the real and "
                              "imaginary parts in a last axis of size 2.") from None
        raise
    if isinstance(out, torch.Tensor) and out.is_complex():  # a process without the wire (the learner's own check)
        raise CheckFailed(f"{name} returned a complex tensor: return torch.view_as_real(c), shape {meaning} = {shape}.")
    expect(isinstance(out, torch.Tensor), f"{name} should return a torch.Tensor of shape {meaning} = {shape}, "
           f"got {describe(out)}.")
    expect(tuple(out.shape) == shape, f"{name}{args[:2]}: expected shape {meaning} = {shape}, got shape "
           f"{tuple(out.shape)}.{hint}")
    expect(out.is_floating_point(), f"{name} should return a floating-point tensor (contexts multiply inputs), got "
           f"dtype {out.dtype}.")
    return out.detach()


def _uses_generator(submission: Any, name: str, args: tuple, salt: int) -> None:
    seed = secret_seed(salt)
    a = call(submission, *args, torch.Generator().manual_seed(seed), what=name)
    b = call(submission, *args, torch.Generator().manual_seed(seed), what=name)
    c = call(submission, *args, torch.Generator().manual_seed(seed + 1), what=name)
    same = isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    other = isinstance(c, torch.Tensor) and c.shape == a.shape and not torch.equal(a, c)
    expect(same and other, f"{name}: draw every random number from the generator argument "
           "(torch.rand(..., generator=generator)): two calls with generators seeded alike must return the same "
           "contexts, and differently seeded ones different contexts (do not re-seed torch's global generator).")


# --------------------------------------------------------------------------- 11.binary_contexts


@prop("binary_contexts", points=1)
def test_binary_shape_and_signs(submission):
    for salt in range(2):
        n_tasks, n = _sizes(salt, 1, 5), _sizes(10 + salt, 6, 40)
        s = _out(submission, "binary_contexts", (n_tasks, n, secret_gen(salt)), (n_tasks, n), "(n_tasks, n)",
                 " One context per task, one sign per input dimension.")
        bad = s[(s != 1) & (s != -1)]
        expect(bad.numel() == 0, f"binary_contexts: every entry must be +1 or -1 (C_k = diag(s_k) is then its own "
               f"inverse), got values {fmt(s.unique())}. Hint: 2 * bits - 1 turns bits 0/1 into -1/+1.")


@prop("binary_contexts", points=1)
def test_binary_fair_and_independent(submission):
    n_tasks, n = 30, 400
    s = _out(submission, "binary_contexts", (n_tasks, n, secret_gen(2)), (n_tasks, n), "(n_tasks, n)")
    per_task = s.mean(dim=1).abs()
    expect(bool((per_task < 6 / math.sqrt(n)).all()), f"binary_contexts: every input dimension needs its own random "
           f"sign, but task {int(per_task.argmax())} has mean sign {float(s[int(per_task.argmax())].mean()):+.3f} "
           f"over its {n} dimensions (fair independent signs give 0 +- {1 / math.sqrt(n):.3f}).")
    overlap = (s @ s.T / n)[~torch.eye(n_tasks, dtype=torch.bool)].abs()
    expect(bool((overlap < 6 / math.sqrt(n)).all()), f"binary_contexts: every task needs its own, independent "
           f"context, but two tasks' contexts overlap by s_j . s_k / n = {float(overlap.max()):.3f} (independent "
           f"signs give 0 +- {1 / math.sqrt(n):.3f}). Draw the whole (n_tasks, n) tensor at once.")
    plus = float((s == 1).sum())
    expect(proportion_ok(plus, s.numel(), 0.5), f"binary_contexts: each sign should be +1 with probability 1/2, "
           f"got +1 in {plus / s.numel():.3f} of {s.numel()} entries.")


@prop("binary_contexts", points=1)
def test_binary_uses_the_generator(submission):
    _uses_generator(submission, "binary_contexts", (4, 50), 3)


# --------------------------------------------------------------------------- 11.complex_contexts


def _phases(c: torch.Tensor) -> torch.Tensor:
    return torch.atan2(c[..., 1].double(), c[..., 0].double()) % (2 * math.pi)


@prop("complex_contexts", points=1)
def test_complex_shape_and_unit_modulus(submission):
    for salt in range(2):
        n_tasks, n = _sizes(20 + salt, 1, 5), _sizes(30 + salt, 3, 30)
        c = _out(submission, "complex_contexts", (n_tasks, n, secret_gen(20 + salt)), (n_tasks, n, 2),
                 "(n_tasks, n, 2)", " The last axis holds (real, imaginary): torch.view_as_real of a complex "
                 "(n_tasks, n) tensor.")
        mod = c.double().square().sum(-1).sqrt()
        expect(close(mod, torch.ones_like(mod), atol=1e-5), f"complex_contexts: every context entry e^(i phi) has "
               f"modulus 1 (so that C^-1 = conj(C)), got moduli from {float(mod.min()):.3f} to {float(mod.max()):.3f}. "
               "Draw a phase phi and return (cos phi, sin phi).")


@prop("complex_contexts", points=1)
def test_complex_phases_uniform(submission):
    c = _out(submission, "complex_contexts", (10, 2000, secret_gen(22)), (10, 2000, 2), "(n_tasks, n, 2)")
    phi = _phases(c).flatten()
    expect(ks_test(phi, uniform_cdf(0.0, 2 * math.pi)), f"complex_contexts: the phases must be uniform on the whole "
           f"circle [0, 2 pi), got phases with mean {float(phi.mean()):.3f} (expected {math.pi:.3f}) and "
           f"{float((phi > math.pi).double().mean()):.3f} of them above pi (expected 0.5). Hint: "
           "phi = 2 * pi * torch.rand(...).")


@prop("complex_contexts", points=1)
def test_complex_independent_and_generator(submission):
    n_tasks, n = 12, 800
    c = _out(submission, "complex_contexts", (n_tasks, n, secret_gen(23)), (n_tasks, n, 2), "(n_tasks, n, 2)").double()
    # mean of cos(phi_j - phi_k) over the n dimensions: 0 +- 1/sqrt(2n) for independent phases
    overlap = ((c[:, None, :, 0] * c[None, :, :, 0] + c[:, None, :, 1] * c[None, :, :, 1]).mean(-1))
    overlap = overlap[~torch.eye(n_tasks, dtype=torch.bool)].abs()
    expect(bool((overlap < 6 / math.sqrt(2 * n)).all()), f"complex_contexts: every task needs its own, independent "
           f"phases, but two tasks' contexts have mean cos(phi_j - phi_k) = {float(overlap.max()):.3f} (independent "
           f"phases give 0 +- {1 / math.sqrt(2 * n):.3f}).")
    _uses_generator(submission, "complex_contexts", (3, 40), 24)


# --------------------------------------------------------------------------- 11.rotation_contexts


@prop("rotation_contexts", points=1)
def test_rotation_shape_and_orthogonal(submission):
    for salt in range(2):
        n_tasks, n = _sizes(40 + salt, 1, 4), _sizes(50 + salt, 2, 9)
        Q = _out(submission, "rotation_contexts", (n_tasks, n, secret_gen(40 + salt)), (n_tasks, n, n),
                 "(n_tasks, n, n)").double()
        err = (Q.mT @ Q - torch.eye(n, dtype=torch.float64)).abs()
        expect(bool((err < 1e-4).all()), f"rotation_contexts: every context must be orthogonal, Q^T Q = I (then "
               f"Q^-1 = Q^T), but entry {tuple(torch.nonzero(err >= 1e-4)[0].tolist()) if (err >= 1e-4).any() else ''} "
               f"of Q^T Q is off by {float(err.nan_to_num(1e9).max()):.3g}. Hint: orthonormalise a random matrix with "
               "torch.linalg.qr.")


@prop("rotation_contexts", points=1.5)
def test_rotation_uniform(submission):
    n_tasks, n = 3000, 4
    Q = _out(submission, "rotation_contexts", (n_tasks, n, secret_gen(42)), (n_tasks, n, n), "(n_tasks, n, n)").double()
    positive = (Q > 0).double().sum(0)  # (n, n)
    mean_sq = Q.square().mean(0)
    fair = all(proportion_ok(float(positive[i, j]), n_tasks, 0.5) for i in range(n) for j in range(n))
    spread = bool(((mean_sq - 1 / n).abs() < 0.05).all())
    at = divmod(int((positive / n_tasks - 0.5).abs().argmax()), n)
    expect(fair and spread, f"rotation_contexts: uniform (Haar) random rotations have every entry positive in half "
           f"of the draws, with mean square 1/n = {1 / n:.3f}; over {n_tasks} draws entry {list(at)} was positive in "
           f"{float(positive[at] / n_tasks):.3f} of them, and the mean squares ranged from "
           f"{float(mean_sq.min()):.3f} to {float(mean_sq.max()):.3f}. Hint: QR of a Gaussian matrix (torch.randn), "
           "then multiply each column of Q by the sign of R's diagonal: without that sign correction torch's QR "
           "gives Q[0, 0] < 0 every time.")


@prop("rotation_contexts", points=0.5)
def test_rotation_independent_and_generator(submission):
    Q = _out(submission, "rotation_contexts", (6, 5, secret_gen(43)), (6, 5, 5), "(n_tasks, n, n)").double()
    gaps = (Q[:, None] - Q[None]).flatten(2).norm(dim=-1)[~torch.eye(6, dtype=torch.bool)]
    expect(bool((gaps > 1e-3).all()), "rotation_contexts: every task needs its own random rotation, but two tasks "
           "got the same matrix. Draw a (n_tasks, n, n) Gaussian tensor: QR works on a batch of matrices.")
    _uses_generator(submission, "rotation_contexts", (2, 5), 44)


# --------------------------------------------------------------------------- 11.context_powers


def _unit_c(salt: int, n: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    phi = 2 * math.pi * torch.rand(n, generator=secret_gen(salt), dtype=torch.float64)
    return torch.stack([phi.cos(), phi.sin()], dim=-1).to(dtype)


def _edge_c() -> torch.Tensor:
    """Entries 1, -1, i, -i and phases just either side of pi (where atan(im / re) loses the quadrant)."""
    eps = 1e-3
    phi = torch.tensor([0.0, math.pi, math.pi / 2, -math.pi / 2, math.pi - eps, -math.pi + eps, 2.5, -2.0],
                       dtype=torch.float64)
    phi = phi[torch.randperm(len(phi), generator=secret_gen(61))]
    return torch.stack([phi.cos(), phi.sin()], dim=-1).float()


def _powers_shape_hint(got, args):
    c, n_tasks = args
    if got == (n_tasks, c.shape[0]):
        return " That is one number per entry: return the powers as (real, imaginary) pairs, like c itself."
    return ""


globals().update(tensor_properties(
    "context_powers", function="context_powers", reference=cx.context_powers,
    meaning="(n_tasks, n, 2)", shape=lambda c, n_tasks: (n_tasks, c.shape[0], 2),
    points={"shape": 0.5, "inputs": 0.5, "values": 1.5, "edges": 0.5},
    mistakes=MISTAKES["context_powers"], argument="c", atol=1e-5, rtol=1e-4,
    shape_cases=[Case("n=5, 3 tasks", lambda: (_unit_c(62, 5), 3)),
                 Case("n=1, one task", lambda: (_unit_c(63, 1), 1)),
                 Case("n=4, 7 tasks", lambda: (_unit_c(64, 4), 7))],
    input_case=Case("random phases, n=6, 4 tasks", lambda: (_unit_c(65, 6), 4)),
    value_cases=[Case("random phases, n=7, 6 tasks", lambda: (_unit_c(66, 7), 6)),
                 Case("random phases, n=3, 2 tasks", lambda: (_unit_c(67, 3), 2))],
    edge_cases=[Case("c = 1, -1, i, -i and phases next to pi, 5 tasks", lambda: (_edge_c(), 5))],
    shape_hint=_powers_shape_hint, prefix="powers",
))


# --------------------------------------------------------------------------- 11.train_sequential


def _problem(salt: int, n: int, d: int, n_out: int, n_tasks: int, dtype=torch.float32):
    """Rotation contexts (not symmetric: C and C^T differ), a subspace, maps and a random initial W."""
    g = secret_gen(salt)
    U, A = cx.subspace_task(n, d, n_out, n_tasks, g, dtype=dtype)
    C = cx.rotation_contexts(n_tasks, n, g, dtype=dtype)
    W = (0.3 * torch.randn(n_out, n, generator=g, dtype=torch.float64)).to(dtype)
    return W, C, U, A


def _train(submission: Any, args: tuple, kwargs: dict, what: str) -> torch.Tensor:
    W = args[0]
    out = call(submission, *args, what="train_sequential", **kwargs)
    expect(isinstance(out, torch.Tensor) and tuple(out.shape) == tuple(W.shape), f"{what}: train_sequential should "
           f"return the trained W, shape (n_out, n_read) = {tuple(W.shape)}, got {describe(out)}.")
    expect(out.dtype == W.dtype, f"{what}: the trained W should keep W's dtype {W.dtype}, got {out.dtype} (draw z "
           "with dtype=W.dtype).")
    return out.detach()


def _copy(args):
    return [a.detach().clone() if isinstance(a, torch.Tensor) else a for a in args]


def _compare(got, want, args, kwargs, seed, what, rtol, atol):
    """``got`` equals ``want``, or a failure naming the first mistake of the table that gives ``got``."""
    if close(got, want, rtol, atol):
        return
    hint = ""
    for m in MISTAKES["train_sequential"]:
        if not m.compare:
            continue
        try:
            theirs = m.implementation(*_copy(args), **kwargs, generator=torch.Generator().manual_seed(seed))
        except Exception:
            continue
        if isinstance(theirs, torch.Tensor) and close(got, theirs.detach(), rtol, atol):
            hint = " " + m.hint
            break
    raise CheckFailed(f"{what}: {show_difference(got, want, rtol, atol)}.{hint}")


@prop("train_sequential", points=1)
def test_train_returns_new_weights_and_leaves_arguments(submission):
    for dtype in (torch.float32, torch.float64):
        W, C, U, A = _problem(70, 6, 2, 3, 2, dtype)
        C = cx.context_matrices(cx.complex_contexts(2, 6, secret_gen(71), dtype=dtype), "complex")  # n_read = 12
        W = (0.3 * torch.randn(3, 12, generator=secret_gen(72), dtype=torch.float64)).to(dtype)
        args = (W, C, U, A)
        before = _copy(args)
        _train(submission, args, dict(steps=3, lr=0.4, batch_size=5, generator=secret_gen(73)),
               f"Return value ({dtype})")
        for name, a, b in zip(("W", "contexts", "U", "A"), args, before):
            expect(torch.equal(a, b), f"train_sequential must leave its arguments unchanged, but it modified {name}: "
                   "start from W = W.detach().clone() (or W.clone()) and update the copy, not W in place.")


@prop("train_sequential", points=1.5)
def test_train_one_sgd_step(submission):
    W, C, U, A = _problem(74, 7, 3, 4, 1)
    lr = float(0.1 + 0.8 * torch.rand(1, generator=secret_gen(75)))
    batch = _sizes(76, 3, 9)
    seed = secret_seed(77)
    args = (W, C, U, A)
    kwargs = dict(steps=1, lr=lr, batch_size=batch)
    got = _train(submission, _copy(args), dict(kwargs, generator=torch.Generator().manual_seed(seed)), "One SGD step")
    want = cx.train_sequential(*_copy(args), **kwargs, generator=torch.Generator().manual_seed(seed))
    _compare(got, want, args, kwargs, seed,
             f"One SGD step (one task, lr={lr:.3f}, batch_size={batch}; z = torch.randn(batch_size, d, "
             "generator=generator) first)", 1e-4, 1e-5)


@prop("train_sequential", points=1.5)
def test_train_tasks_in_sequence(submission):
    n_tasks = 3
    W, C, U, A = _problem(78, 8, 2, 3, n_tasks)
    args = (W, C, U, A)
    kwargs, seed = dict(steps=150, lr=1.0, batch_size=16), secret_seed(79)
    got = _train(submission, _copy(args), dict(kwargs, generator=torch.Generator().manual_seed(seed)),
                 "Three tasks in sequence")
    expect(bool(torch.isfinite(got).all()), "Three tasks in sequence (lr=1.0, batch_size=16): the weights diverged "
           "to inf or NaN: average the squared error over the batch and the outputs (err.numel() examples x outputs).")
    want = cx.converged_sequential(*_copy(args))
    _compare(got, want, args, kwargs, seed, "Three tasks in sequence, each trained to convergence (150 steps, lr=1.0); "
             "SGD must end where task k's projection puts it, whatever the batches", 1e-3, 1e-4)


@prop("train_sequential", points=1)
def test_train_uses_the_generator(submission):
    W, C, U, A = _problem(80, 6, 2, 3, 2)
    seed = secret_seed(81)
    runs = [call(submission, *_copy((W, C, U, A)), steps=2, lr=0.5, batch_size=4,
                 generator=torch.Generator().manual_seed(s), what="train_sequential") for s in (seed, seed, seed + 1)]
    ok = all(isinstance(r, torch.Tensor) and r.shape == W.shape for r in runs)
    expect(ok and torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2]),
           "train_sequential: draw every batch from the generator argument (torch.randn(batch_size, d, "
           "generator=generator)): two runs with generators seeded alike must give the same weights, and "
           "differently seeded ones different weights.")


# --------------------------------------------------------------------------- 11.interference


def _contexts_and_U(salt: int, kind: str, n_tasks: int, n: int, d: int):
    g = secret_gen(salt)
    C = cx.context_matrices(cx.draw_contexts(kind, n_tasks, n, g), kind)
    U, _ = cx.subspace_task(n, d, 1, 1, g)
    return C, U


def _shared_contexts(salt: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Tasks 0 and 2 share one rotation, task 1 has the identity: I = 1 between 0 and 2."""
    C, U = _contexts_and_U(salt, "rotation", 3, 6, 2)
    C[2] = C[0]
    C[1] = torch.eye(6)
    return C, U


globals().update(tensor_properties(
    "interference", function="interference", reference=cx.interference,
    meaning="(n_tasks, n_tasks)", shape=lambda contexts, U: (contexts.shape[0], contexts.shape[0]),
    points={"shape": 0.5, "values": 1.5, "edges": 0.5},
    mistakes=MISTAKES["interference"], argument="contexts", atol=1e-5, rtol=1e-4,
    shape_cases=[Case("4 rotation contexts, n=5, d=2", lambda: _contexts_and_U(90, "rotation", 4, 5, 2)),
                 Case("one task, n=3, d=1", lambda: _contexts_and_U(91, "binary", 1, 3, 1))],
    value_cases=[Case("5 rotation contexts, n=7, d=2", lambda: _contexts_and_U(93, "rotation", 5, 7, 2)),
                 Case("4 binary contexts as matrices, n=9, d=3", lambda: _contexts_and_U(94, "binary", 4, 9, 3)),
                 Case("3 complex contexts as (2n, n) matrices, n=5, d=2", lambda: _contexts_and_U(95, "complex", 3, 5, 2))],
    edge_cases=[Case("no contexts (identity for every task), n=6, d=2", lambda: _contexts_and_U(96, "none", 3, 6, 2)),
                Case("two tasks sharing a context", lambda: _shared_contexts(97))],
    prefix="interference",
))


@prop("interference", points=0.5)
def test_interference_inputs(submission):
    C, U = _contexts_and_U(92, "rotation", 3, 6, 3)
    for label, args in (("float64 contexts and U", (C.double(), U.double())),
                        ("contexts as an nn.Parameter (requires_grad=True)", (torch.nn.Parameter(C.clone()), U))):
        before = [a.detach().clone() for a in args]
        out = call(submission, *args, what="interference")
        got = tensor_out(out, what=f"Inputs ({label})", shape=(3, 3), meaning="(n_tasks, n_tasks)", like=args[0])
        want = cx.interference(*before)
        expect(close(got, want, 1e-4, 1e-6), f"Inputs ({label}): {show_difference(got, want)}. Hint: stay in torch "
               "(a .numpy() round trip fails on tensors that require grad) and let the inputs' dtype carry through.")
        expect(all(torch.equal(a.detach(), b) for a, b in zip(args, before)),
               f"Inputs ({label}): interference must leave its arguments unchanged.")
