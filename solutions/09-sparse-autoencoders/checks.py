"""Lesson 9 checks: sparse autoencoders on superposed features.

Six exercises, plain functions on tensors, compared with :mod:`supercourse.sae` on inputs drawn from the
grading run's secret (hand-built ones keep their structure and are turned, permuted or scaled by it).
Everything but the resampling draw is determined by the inputs, so comparisons are exact up to float rounding
(``rtol = 1e-4``, ``atol = 1e-6``); the resampling draw is tested with binomial bounds (false-alarm rate below
1e-5).

Parameters are instance-first: ``W_e (n_instances, d_sae, d_in)``, ``b_e (n_instances, d_sae)``,
``W_d (n_instances, d_in, d_sae)``, ``b_d (n_instances, d_in)``; batches ``(batch, n_instances, d_in)``. Sizes
use a different number for every axis, so a transpose or a reduction over the wrong axis shows as a wrong shape
or wrong values.

* ``09.sae_forward`` ``sae_forward(h, W_e, b_e, W_d, b_d, l1_coeff) -> (h_hat, f, loss)``. Each part is graded
  on its own: the decoder from the learner's own ``f``, the loss from their own ``h_hat`` and ``f``, so one bug
  costs one property (issue 22); gradients must reach every parameter and ``h`` through every output.
* ``09.normalize_decoder`` ``normalize_decoder(W_d) -> W_d`` with unit columns (zero columns stay zero, short
  ones become unit), a new tensor.
* ``09.feature_recovery`` ``feature_recovery(features, W_d, threshold=0.9) -> (mmcs, fraction)``; a cosine of
  exactly the threshold does not exceed it.
* ``09.topk_activations`` ``topk_activations(pre, k)``: ReLU of the ``k`` largest entries per row, any leading
  shape; the gradient reaches the kept entries.
* ``09.dead_latents`` ``dead_latents(f) -> bool (n_instances, d_sae)``: never firing, whatever the frequency.
* ``09.resample_dead_latents`` ``resample_dead_latents(W_e, b_e, W_d, b_d, dead, h, generator) -> (W_e, b_e, W_d)``:
  draws weighted by the squared loss of the full reconstruction (live latents and decoder bias included),
  uniform when every loss is 0.

Failures are diagnosed with the lesson's mistake table (``mistakes.py``), the table the generic proof also grades.
"""

from __future__ import annotations

from typing import Any

import torch

from autograder.exercises import Exercise
from autograder.framework import CheckFailed, call, expect, prop
from autograder.toolkit import ATOL, RTOL, as_parameter, close, describe, diagnose, fmt, rotation, show_difference, tensor_out
from autograder.toolkit.randomness import secret_gen, secret_seed
from supercourse import sae

from .mistakes import LOSSES, MISTAKES, hint

LESSON = "09-sparse-autoencoders"
EXERCISES = {
    "sae_forward": Exercise(
        "sae_forward",
        "The SAE's forward pass and loss: MSE + lambda * L1",
        reference=("supercourse.sae.sae_forward", "supercourse.sae.SparseAutoencoder", "supercourse.analytic.SAEStep"),
        differentiable=True,
    ),
    "normalize_decoder": Exercise(
        "normalize_decoder",
        "Unit-norm decoder columns",
        # Any library function that makes columns unit-norm answers it (found by tests/test_delegation.py).
        reference=("supercourse.sae.normalize_decoder", "supercourse.metrics.unit_directions"),
    ),
    "feature_recovery": Exercise(
        "feature_recovery",
        "Feature recovery: MMCS and the fraction recovered",
        reference=("supercourse.sae.mmcs", "supercourse.sae.max_cosines", "supercourse.sae.fraction_recovered"),
    ),
    "topk_activations": Exercise(
        "topk_activations",
        "TopK activations: keep the k largest latents",
        reference=("supercourse.sae.topk_activations",),
        differentiable=True,
    ),
    "dead_latents": Exercise(
        "dead_latents",
        "Dead latents: the ones that never fire",
        reference=("supercourse.sae.dead_latents", "supercourse.sae.latent_frequency"),
    ),
    "resample_dead_latents": Exercise(
        "resample_dead_latents",
        "Resample dead latents toward badly reconstructed inputs",
        reference=("supercourse.sae.resample_dead_latents",),
    ),
}


_PARAMETER_HINT = (" Hint: stay in torch (a .numpy() round trip fails on tensors that require grad, and the SAE "
                   "could not train through it).")


def _pick(g: torch.Generator, options: list[int]) -> int:
    return options[int(torch.randint(len(options), (), generator=g))]


def _sizes(salt: Any) -> tuple[int, int, int, int]:
    """``(n_instances, d_sae, d_in, batch)``, every axis a different size, drawn from the secret."""
    g = secret_gen(("sizes", salt))
    return _pick(g, [2, 3]), _pick(g, [7, 8, 9]), _pick(g, [4, 5, 6]), _pick(g, [10, 11, 12, 13])


def random_params(seed: Any, n_inst: int = 3, d_sae: int = 7, d_in: int = 5, unit: bool = False):
    """``(W_e, b_e, W_d, b_d)`` with every axis a different size; decoder columns of varied norms unless ``unit``."""
    g = secret_gen(("params", seed))
    W_d = torch.randn(n_inst, d_in, d_sae, generator=g)
    W_d = W_d / W_d.norm(dim=1, keepdim=True)
    if not unit:
        W_d = W_d * (0.5 + torch.rand(n_inst, 1, d_sae, generator=g))
    W_e = W_d.mT.clone() + 0.3 * torch.randn(n_inst, d_sae, d_in, generator=g)
    b_e = 0.2 * torch.randn(n_inst, d_sae, generator=g)
    b_d = 0.3 * torch.randn(n_inst, d_in, generator=g)
    return W_e, b_e, W_d, b_d


def random_h(seed: Any, batch: int = 11, n_inst: int = 3, d_in: int = 5) -> torch.Tensor:
    return torch.randn(batch, n_inst, d_in, generator=secret_gen(("h", seed)))


def _case(salt: Any):
    n_inst, d_sae, d_in, batch = _sizes(salt)
    return (random_h(salt, batch, n_inst, d_in), *random_params(salt, n_inst, d_sae, d_in))


def _first_differences(got: torch.Tensor, want: torch.Tensor) -> str:
    return show_difference(got, want, RTOL, ATOL)


# --------------------------------------------------------------------------- 09.sae_forward

_OUTPUTS = ("h_hat", "f", "loss")
_ARGS = ("h", "W_e", "b_e", "W_d", "b_d")
_DEPENDS = {"h_hat": _ARGS, "f": ("h", "W_e", "b_e", "b_d"), "loss": _ARGS}
_MEANINGS = {"h_hat": "(batch, n_instances, d_in)", "f": "(batch, n_instances, d_sae)", "loss": "(n_instances,)"}


def _forward(submission, args: tuple, lam: Any, what: str):
    """The learner's (h_hat, f, loss), each checked against its contract (dtype following h's)."""
    h, W_e = args[0], args[1]
    sent = [a if isinstance(a, torch.nn.Parameter) else a.clone() for a in args]
    out = call(submission, *sent, lam.clone() if isinstance(lam, torch.Tensor) else lam, what="sae_forward")
    batch, n_inst, d_in = h.shape
    d_sae = W_e.shape[1]
    expect(isinstance(out, (tuple, list)) and len(out) == 3,
           f"{what}: sae_forward should return a tuple (h_hat, f, loss), got {describe(out)}.")
    h_hat = tensor_out(out[0], what=f"{what} (h_hat)", shape=(batch, n_inst, d_in),
                       meaning="(batch, n_instances, d_in)", like=h)
    f = tensor_out(out[1], what=f"{what} (f)", shape=(batch, n_inst, d_sae), meaning="(batch, n_instances, d_sae)",
                   like=h)
    loss = out[2]
    if isinstance(loss, torch.Tensor) and loss.dim() == 0:
        raise CheckFailed(f"{what} (loss): expected one loss per instance, shape (n_instances,), got a single number: "
                          "keep the instances apart (each SAE is trained on its own loss); do not sum or average over "
                          "instances.")
    loss = tensor_out(loss, what=f"{what} (loss)", shape=(n_inst,), meaning="(n_instances,)", like=h)
    return h_hat, f, loss


def _part(index: int):
    def same(got, theirs):
        return isinstance(theirs, (tuple, list)) and len(theirs) == 3 and close(got, theirs[index], RTOL, ATOL)

    return same


@prop("sae_forward", points=0.5)
def test_sae_forward_shapes(submission):
    n_inst, d_sae, d_in, batch = _sizes("shapes")
    cases = [
        (f"{n_inst} instances, d_sae={d_sae}, d_in={d_in}, a batch of {batch}", _case("shapes")),
        ("one instance, a batch of one", (random_h("one", 1, 1, d_in), *random_params("one", 1, d_sae, d_in))),
        ("float64 inputs", tuple(t.double() for t in _case("float64"))),
    ]
    for label, args in cases:
        _forward(submission, args, 0.01, f"Shapes ({label})")
    h, *params = _case("parameters")
    what = "Parameters (W_e, b_e, W_d, b_d as nn.Parameter, requires_grad=True)"
    try:
        _forward(submission, (h, *(as_parameter(p) for p in params)), 0.01, what)
    except CheckFailed as err:
        raise CheckFailed(f"{err}{_PARAMETER_HINT}") from None


@prop("sae_forward", points=0.5)
def test_sae_forward_gradients(submission):
    args = _case("gradients")
    lam = 0.05
    leaves = [a.detach().clone().requires_grad_(True) for a in args]
    reference = sae.sae_forward(*leaves, lam)
    for index, name in enumerate(_OUTPUTS):
        weights = torch.randn(reference[index].shape, generator=secret_gen(("gradient weights", index)))
        result = call(submission.with_grad, *[a.clone() for a in args], lam, wrt=(0, 1, 2, 3, 4), weights=weights,
                      output=index, what="sae_forward")
        out = result.get("out") if isinstance(result, dict) else None
        if name == "loss" and isinstance(out, torch.Tensor) and out.dim() == 0:
            raise CheckFailed("Gradients (loss): expected one loss per instance, shape (n_instances,), got a single "
                              "number.")
        tensor_out(out, what=f"Gradients ({name})", shape=tuple(reference[index].shape), meaning=_MEANINGS[name],
                   like=args[0])
        expect(bool(result.get("requires_grad")) and result.get("grads") is not None,
               f"Gradients: your {name} carries no gradient (no gradient reaches h, W_e, b_e, W_d or b_d through it), "
               "so an SAE trained with it would never learn. Compute it with torch operations on the arguments "
               "themselves: no torch.no_grad(), .detach(), .item() or NumPy.")
        want = torch.autograd.grad((reference[index] * weights).sum(), leaves, allow_unused=True, retain_graph=True)
        if not close(out, reference[index], RTOL, ATOL):
            continue  # wrong values cost the value properties; what they depend on follows from the bug
        for arg, got, expected in zip(_ARGS, result["grads"], want):
            if arg not in _DEPENDS[name]:
                continue
            expect(got is not None,
                   f"Gradients: no gradient reaches {arg} through your {name}: it does not depend on {arg} through "
                   f"operations autograd can follow (was {arg} detached, or used under torch.no_grad()?). An SAE "
                   f"trained with it would never update {arg}" + (" from this term." if name != "loss" else "."))
            expect(expected is None or close(got, expected, 1e-4, 1e-6),
                   f"Gradients: the gradient of your {name} with respect to {arg} differs from the reference's although "
                   f"the values match ({show_difference(got, expected, 1e-4, 1e-6)}).")


@prop("sae_forward", points=1)
def test_sae_forward_encoder(submission):
    args = _case("encoder")
    _, f, _ = _forward(submission, args, 0.01, "Latents")
    _, want, _ = sae.sae_forward(*args, 0.01)
    expect(close(f, want, RTOL, ATOL),
           f"Latents f = ReLU(W_e (h - b_d) + b_e): on random parameters {_first_differences(f, want)}."
           f"{diagnose(MISTAKES['sae_forward'], f, [*args, 0.01], same=_part(1))}")


@prop("sae_forward", points=1)
def test_sae_forward_decoder(submission):
    h, W_e, b_e, W_d, b_d = args = _case("decoder")
    h_hat, f, _ = _forward(submission, args, 0.01, "Reconstruction")
    want_f = sae.sae_forward(*args, 0.01)[1]
    own = torch.einsum("bis,ids->bid", f.double(), W_d.double()) + b_d.double()  # decoded from the learner's own f
    if close(h_hat, own, RTOL, ATOL):
        return
    hint_text = ""
    unit = sae.normalize_decoder(W_d).double()
    for name, value in (("no_decoder_bias", own - b_d.double()),
                        ("normalizes_decoder", torch.einsum("bis,ids->bid", f.double(), unit) + b_d.double())):
        if close(h_hat, value, RTOL, ATOL):
            hint_text = hint("sae_forward", name)
            break
    note = "" if close(f, want_f, RTOL, ATOL) else (" (Graded from your own f, which is wrong too: see Latents.)")
    raise CheckFailed(f"Reconstruction h_hat = W_d f + b_d (column j of W_d[k] is latent j's direction), from the f "
                      f"you return: {_first_differences(h_hat, own)}.{hint_text}{note}")


def _loss_message(loss, h, h_hat, f, lam: torch.Tensor) -> str:
    for name, formula in LOSSES.items():
        if close(loss, formula(h.double(), h_hat.double(), f.double(), lam.double()), RTOL, ATOL):
            return hint("sae_forward", name)
    return ""


def _expected_loss(h, h_hat, f, lam: torch.Tensor) -> torch.Tensor:
    """The loss the learner's own h_hat and f give: the mean squared error + lambda * (sum over latents, mean over
    batch)."""
    h, h_hat, f = h.double(), h_hat.double(), f.double()
    return (h - h_hat).square().mean(dim=(0, 2)) + lam.double() * f.sum(-1).mean(0)


@prop("sae_forward", points=1)
def test_sae_forward_loss(submission):
    args = _case("loss")
    lam = 0.02 + 0.08 * float(torch.rand((), generator=secret_gen("lambda")))
    h_hat, f, loss = _forward(submission, args, lam, "Loss")
    want = _expected_loss(args[0], h_hat, f, torch.tensor(lam))
    note = "" if close(f, sae.sae_forward(*args, lam)[1], RTOL, ATOL) else (
        " (Graded from your own h_hat and f; your f is wrong: see Latents.)")
    expect(close(loss, want, RTOL, ATOL),
           f"Loss per instance = mean over batch and d_in of (h - h_hat)^2 + l1_coeff * (mean over batch of sum_j f_j), "
           f"from the h_hat and f you return, with l1_coeff = {lam:.4g}: {_first_differences(loss, want)}."
           f"{_loss_message(loss, args[0], h_hat, f, torch.tensor(lam))}{note}")


@prop("sae_forward", points=1)
def test_sae_forward_l1_per_instance(submission):
    args = _case("lambdas")
    n_inst = args[0].shape[1]
    g = secret_gen("lambdas")
    lam = 0.01 + 0.3 * torch.rand(n_inst, generator=g)
    lam[int(torch.randint(n_inst, (), generator=g))] = 0.0
    h_hat, f, loss = _forward(submission, args, lam, "Per-instance lambda")
    want = _expected_loss(args[0], h_hat, f, lam)
    expect(close(loss, want, RTOL, ATOL),
           f"l1_coeff may be a tensor with one lambda per instance, (n_instances,) = {fmt(lam)}: instance k uses "
           f"lambda[k]. From the h_hat and f you return, {_first_differences(loss, want)}."
           f"{_loss_message(loss, args[0], h_hat, f, lam)}")


# --------------------------------------------------------------------------- 09.normalize_decoder


def _normalized(submission, W_d: torch.Tensor, what: str) -> torch.Tensor:
    sent = W_d if isinstance(W_d, torch.nn.Parameter) else W_d.clone()
    out = call(submission, sent, what="normalize_decoder")
    try:
        return tensor_out(out, what=what, shape=tuple(W_d.shape), meaning="the shape of W_d (n_instances, d_in, d_sae)",
                          like=W_d)
    except CheckFailed as err:
        if isinstance(out, torch.Tensor) and out.is_floating_point() and not bool(torch.isfinite(out).all()):
            raise CheckFailed(f"{err} A zero column (a latent with no direction yet) must stay finite, not become "
                              "NaN: divide by the norm clamped away from zero, e.g. norm.clamp_min(1e-12).") from None
        raise


def _decoder(salt: Any) -> torch.Tensor:
    n_inst, d_sae, d_in, _ = _sizes(salt)
    W_d = random_params(salt, n_inst, d_sae, d_in)[2]
    scales = 10 ** (torch.rand(n_inst, 1, 1, generator=secret_gen(("scales", salt))) * 2 - 1)  # 0.1 to 10 per instance
    return W_d * scales


def _normalize_hint(out: torch.Tensor, W_d: torch.Tensor) -> str:
    return diagnose(MISTAKES["normalize_decoder"], out, [W_d.detach()])


@prop("normalize_decoder", points=1)
def test_normalize_decoder_unit_columns(submission):
    W_d = _decoder("unit")
    out = _normalized(submission, W_d, "Unit columns")
    norms = out.norm(dim=1)
    expect(bool(((norms - 1).abs() <= 1e-4).all()),
           f"Every decoder column W_d[k, :, j] should have norm 1; column norms of instance 0: {fmt(norms[0])}."
           f"{_normalize_hint(out, W_d)}")


@prop("normalize_decoder", points=1)
def test_normalize_decoder_keeps_directions(submission):
    for label, W_d in (("random W_d", _decoder("directions")), ("float64 W_d", _decoder("float64").double())):
        out = _normalized(submission, W_d, f"Directions ({label})")
        want = sae.normalize_decoder(W_d)
        expect(close(out, want, RTOL, ATOL),
               f"Directions ({label}): each column should keep its direction and only change its length: "
               f"{_first_differences(out, want)}.{_normalize_hint(out, W_d)}")
    W_d = as_parameter(_decoder("parameter"))
    what = "Directions (W_d an nn.Parameter, requires_grad=True)"
    try:
        out = _normalized(submission, W_d, what)
    except CheckFailed as err:
        raise CheckFailed(f"{err}{_PARAMETER_HINT}") from None
    expect(close(out, sae.normalize_decoder(W_d.detach()), RTOL, ATOL), f"{what}: your values differ.{_PARAMETER_HINT}")


@prop("normalize_decoder", points=1)
def test_normalize_decoder_zero_and_short_columns(submission):
    W_d = _decoder("edges")
    g = secret_gen("edges")
    n_inst, d_in, d_sae = W_d.shape
    zero = (int(torch.randint(n_inst, (), generator=g)), int(torch.randint(d_sae, (), generator=g)))
    short = torch.randperm(d_sae, generator=g)[:3]
    lengths = 10 ** (-4 + 1.5 * torch.rand(n_inst, 1, 3, generator=g))  # 1e-4 to 3e-3
    W_d[:, :, short] *= lengths / W_d[:, :, short].norm(dim=1, keepdim=True)
    W_d[zero[0], :, zero[1]] = 0.0
    out = _normalized(submission, W_d, "Zero and short columns")
    expect(bool((out[zero[0], :, zero[1]] == 0).all()),
           f"A zero column (a latent with no direction yet) should stay zero, got {fmt(out[zero[0], :, zero[1]])}.")
    norms = out.norm(dim=1)
    alive = torch.ones_like(norms, dtype=torch.bool)
    alive[zero] = False
    expect(bool(((norms[alive] - 1).abs() <= 1e-4).all()),
           f"Columns with norms from 1e-4 to 3e-3 are short, not zero: each must become a unit vector too; your column "
           f"norms after normalising range from {norms[alive].min().item():.4g} to {norms[alive].max().item():.4g}."
           f"{_normalize_hint(out, W_d)}")


# --------------------------------------------------------------------------- 09.feature_recovery


def _recovery(submission, features, W_d, threshold=0.9, what: str = "Recovery"):
    n_inst = W_d.shape[0]
    out = call(submission, features.clone(), W_d.clone(), threshold, what="feature_recovery")
    expect(isinstance(out, (tuple, list)) and len(out) == 2,
           f"{what}: feature_recovery should return a tuple (mmcs, fraction), got {describe(out)}.")
    try:
        m = tensor_out(out[0], what=f"{what} (mmcs)", shape=(n_inst,), meaning="(n_instances,)")
        fr = tensor_out(out[1], what=f"{what} (fraction)", shape=(n_inst,), meaning="(n_instances,)")
    except CheckFailed as err:
        if any(isinstance(o, torch.Tensor) and o.is_floating_point() and not bool(torch.isfinite(o).all())
               for o in out):
            raise CheckFailed(f"{err} A zero decoder column (a latent with no direction) gives 0 / 0 = NaN: clamp the "
                              "norms away from zero (its cosine is then 0).") from None
        raise
    return m, fr


def _recovery_case(seed: Any, n_inst: int = 3, d_in: int = 6, n: int = 5, d_sae: int = 8):
    """True features with varied norms, and decoders made of noisy copies of some features (varied norms too)."""
    g = secret_gen(("recovery", seed))
    F = torch.randn(d_in, n, generator=g)
    F = F / F.norm(dim=0) * (0.5 + torch.rand(n, generator=g))
    W_d = torch.randn(n_inst, d_in, d_sae, generator=g)
    for k in range(n_inst):
        for j in range(min(n, d_sae) - k):
            W_d[k, :, j] = F[:, j] + (0.1 + 0.3 * k) * torch.randn(d_in, generator=g) * F[:, j].norm()
    W_d = W_d * (0.3 + 2 * torch.rand(n_inst, 1, d_sae, generator=g))
    return F, W_d[:, :, torch.randperm(d_sae, generator=g)]


def _exact_case(seed: Any = 0):
    """Features along secret (signed, scaled) axes; decoders holding exact scaled copies of some of them (cosine
    exactly 1 in floats) beside random columns."""
    g = secret_gen(("exact", seed))
    d_in, n, d_sae = 6, 4, 7
    axes = torch.randperm(d_in, generator=g)[:n]
    signs = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    F = torch.zeros(d_in, n)
    F[axes, torch.arange(n)] = signs * (0.5 + torch.rand(n, generator=g))
    W_d = torch.randn(2, d_in, d_sae, generator=g)
    for k, copies in enumerate((3, 1)):
        for j, i in enumerate(torch.randperm(n, generator=g)[:copies].tolist()):
            W_d[k, :, j] = 0.0
            W_d[k, axes[i], j] = signs[i] * (0.5 + 2 * torch.rand((), generator=g))
    return F, W_d[:, :, torch.randperm(d_sae, generator=g)]


def _recovery_hint(got: tuple[torch.Tensor, torch.Tensor], F, W_d, threshold, part: int) -> str:
    def same(g, theirs):
        return isinstance(theirs, (tuple, list)) and len(theirs) == 2 and close(g, theirs[part], 1e-3, 1e-5)

    return diagnose(MISTAKES["feature_recovery"], got[part], [F, W_d], {"threshold": threshold}, same=same)


@prop("feature_recovery", points=1)
def test_feature_recovery_format(submission):
    F, W_d = _recovery_case("format")
    _recovery(submission, F, W_d, what="Format")
    F, W_d = _recovery_case("one instance", n_inst=1, d_in=5, n=3, d_sae=4)
    _recovery(submission, F, W_d, what="Format (one instance)")


@prop("feature_recovery", points=1)
def test_mmcs_of_a_known_dictionary(submission):
    # Instance 0: the dictionary contains every feature (scaled) plus junk: MMCS 1.
    # Instance 1: only the negatives of the features: the best positive cosine is what the junk offers.
    g = secret_gen("known")
    d_in, n = 6, 4
    F = torch.linalg.qr(torch.randn(d_in, d_in, generator=g))[0][:, :n] * (0.5 + 2.5 * torch.rand(n, generator=g))
    junk = torch.linalg.qr(torch.randn(d_in, d_in, generator=g))[0][:, -1:]
    W_d = torch.stack([torch.cat([3 * F, junk], 1), torch.cat([-F, F[:, :1] + F[:, 1:2]], 1)])
    m, fr = _recovery(submission, F, W_d, what="Known dictionary")
    want = sae.mmcs(F, W_d)
    expect(close(m, want, 1e-4, 1e-5),
           f"A dictionary holding every feature (scaled by 3) should give MMCS 1; one holding only the features' negatives "
           f"(and one mixed column) gives {want[1]:.4f}. Expected {fmt(want)}, got {fmt(m)}."
           f"{_recovery_hint((m, fr), F, W_d, 0.9, 0)}")


@prop("feature_recovery", points=1)
def test_mmcs_matches_reference(submission):
    F, W_d = _recovery_case("reference")
    g = secret_gen("zero column")
    W_d[int(torch.randint(W_d.shape[0], (), generator=g)), :, int(torch.randint(W_d.shape[2], (), generator=g))] = 0.0
    m, fr = _recovery(submission, F, W_d, what="MMCS")
    want = sae.mmcs(F, W_d)
    expect(close(m, want, 1e-4, 1e-5),
           f"MMCS = mean over true features of max over latents of cos(feature, decoder column), per instance (a zero "
           f"decoder column has cosine 0): {_first_differences(m, want)}.{_recovery_hint((m, fr), F, W_d, 0.9, 0)}")


@prop("feature_recovery", points=1)
def test_fraction_recovered(submission):
    F, W_d = _recovery_case("fraction", n_inst=4)
    other = round(0.5 + 0.3 * float(torch.rand((), generator=secret_gen("threshold"))), 3)
    for threshold in (0.9, other):
        m, fr = _recovery(submission, F, W_d, threshold, what="Fraction")
        want = sae.fraction_recovered(F, W_d, threshold)
        expect(close(fr, want, 1e-5, 1e-6),
               f"The fraction of true features whose max cosine exceeds threshold = {threshold}: expected "
               f"{fmt(want)}, got {fmt(fr)}.{_recovery_hint((m, fr), F, W_d, threshold, 1)}")
    F, W_d = _exact_case()
    m, fr = _recovery(submission, F, W_d, 1.0, what="Fraction")
    want = sae.fraction_recovered(F, W_d, 1.0)
    expect(close(fr, want, 1e-5, 1e-6),
           f"Exact copies: with features along axes and decoders holding exact copies of some (cosine exactly 1), no "
           f"feature's max cosine exceeds threshold = 1.0: expected {fmt(want)}, got {fmt(fr)}."
           f"{_recovery_hint((m, fr), F, W_d, 1.0, 1)}")


# --------------------------------------------------------------------------- 09.topk_activations


def _topk(submission, pre: torch.Tensor, k: int, what: str) -> torch.Tensor:
    out = call(submission, pre.clone(), k, what="topk_activations")
    return tensor_out(out, what=what, shape=tuple(pre.shape), meaning="the shape of pre", like=pre)


def _topk_hint(out, pre, k) -> str:
    return diagnose(MISTAKES["topk_activations"], out, [pre, k])


@prop("topk_activations", points=1)
def test_topk_keeps_k_per_row(submission):
    g = secret_gen("k per row")
    n_inst, d_sae, _, batch = _sizes("topk rows")
    k = int(torch.randint(2, d_sae - 2, (), generator=g))
    pre = torch.rand(batch, n_inst, d_sae, generator=g) + 0.1  # all positive: exactly k non-zeros per row
    out = _topk(submission, pre, k, "Kept per row")
    counts = (out != 0).sum(-1)
    expect(bool((counts == k).all()),
           f"With k = {k} and positive pre-activations, each row (one input, one instance) should keep exactly {k} "
           f"latents; got counts {fmt(counts[:, 0])} (instance 0).{_topk_hint(out, pre, k)}")


@prop("topk_activations", points=1)
def test_topk_keeps_the_largest(submission):
    g = secret_gen("largest")
    n_inst, d_sae, _, batch = _sizes("topk largest")
    k = int(torch.randint(2, 5, (), generator=g))
    pre = torch.randn(batch, n_inst, d_sae, generator=g)
    pre = pre - 1.5 * (torch.rand(batch, n_inst, 1, generator=g) < 0.3)  # rows with negatives among their top k
    weights = torch.randn(pre.shape, generator=g)
    result = call(submission.with_grad, pre.clone(), k, wrt=(0,), weights=weights, what="topk_activations")
    out = tensor_out(result.get("out") if isinstance(result, dict) else None, what="Largest", shape=tuple(pre.shape),
                     meaning="the shape of pre", like=pre)
    want = sae.topk_activations(pre, k)
    expect(close(out, want, RTOL, ATOL),
           f"topk_activations(pre, k={k}) should be ReLU(pre) at the {k} largest entries of each row and 0 elsewhere: "
           f"{_first_differences(out, want)}.{_topk_hint(out, pre, k)}")
    expect(bool(result["requires_grad"]) and result["grads"] is not None and result["grads"][0] is not None,
           "Gradient: your output carries no gradient back to pre, so a TopK SAE trained with it would never learn. "
           "Compute it with torch operations on pre (topk, scatter, gather, where): no torch.no_grad() or .detach().")
    leaf = pre.clone().requires_grad_(True)
    (want_grad,) = torch.autograd.grad((sae.topk_activations(leaf, k) * weights).sum(), leaf)
    expect(close(result["grads"][0], want_grad, RTOL, ATOL),
           "Gradient: the gradient reaches pre differently from ReLU at the kept entries: it should pass through "
           "each kept positive entry and nowhere else.")


@prop("topk_activations", points=1)
def test_topk_negative_and_any_shape(submission):
    g = secret_gen("negative")
    pre = -torch.rand(4, 3, 6, generator=g) - 0.1  # every pre-activation negative: nothing fires
    out = _topk(submission, pre, 2, "All negative")
    expect(bool((out == 0).all()), "When every pre-activation is negative nothing may fire: the kept top-k values pass "
           f"through a ReLU (ReLU of a negative number is 0); got non-zeros such as {fmt(out[out != 0][:3])}."
           f"{_topk_hint(out, pre, 2)}")
    for shape, k in (((7, 10), 4), ((9,), 3)):
        pre = torch.randn(*shape, generator=g)
        what = f"Any shape (pre of shape {shape}, k = {k})"
        try:
            out = _topk(submission, pre, k, what)
        except CheckFailed as err:
            raise CheckFailed(f"{err} Work along the last dimension (dim=-1) so any leading shape works.") from None
        want = sae.topk_activations(pre, k)
        expect(close(out, want, RTOL, ATOL), f"{what}: {_first_differences(out, want)}. Work along the last "
               f"dimension (dim=-1) so any leading shape works.{_topk_hint(out, pre, k)}")


# --------------------------------------------------------------------------- 09.dead_latents


def _dead(submission, f: torch.Tensor, what: str) -> torch.Tensor:
    out = call(submission, f.clone(), what="dead_latents")
    shape = (f.shape[1], f.shape[2])
    expect(isinstance(out, torch.Tensor) and tuple(out.shape) == shape,
           f"{what}: expected a bool tensor of shape (n_instances, d_sae) = {shape}, got {describe(out)}.")
    expect(out.dtype == torch.bool, f"{what}: expected a bool tensor (True = dead), got dtype {out.dtype}. "
           "A comparison such as (...) == 0 gives one.")
    return out


def _dead_case(seed: Any, batch: int = 40, n_inst: int = 3, d_sae: int = 9):
    """Random sparse activations (about 30% firing) with, in secret positions: dead latents, a latent that fires
    on one input only (rare), one that fires once and weakly (1e-7 to 5e-6), one that fires on every input.
    Returns ``f`` and the ``(instance, latent)`` of the rare and the weak one."""
    g = secret_gen(("dead", seed))
    f = torch.rand(batch, n_inst, d_sae, generator=g) * (torch.rand(batch, n_inst, d_sae, generator=g) < 0.3)
    k, j = torch.meshgrid(torch.arange(n_inst), torch.arange(d_sae), indexing="ij")
    for _ in range(2):  # every latent fires at least twice somewhere (no accidental deaths or rare ones)
        f[torch.randint(batch, (n_inst, d_sae), generator=g), k, j] = 0.3 + 0.7 * torch.rand(n_inst, d_sae, generator=g)
    roles = [torch.randperm(d_sae, generator=g) for _ in range(n_inst)]
    f[:, 0, roles[0][0]] = 0.0                     # dead
    f[:, 1, roles[1][:2]] = 0.0                    # dead
    rare = (2, int(roles[2][0]))
    f[:, 2, rare[1]] = 0.0
    f[int(torch.randint(batch, (), generator=g)), 2, rare[1]] = 0.3 + 0.6 * float(torch.rand((), generator=g))
    weak = (0, int(roles[0][1]))
    f[:, 0, weak[1]] = 0.0
    f[int(torch.randint(batch, (), generator=g)), 0, weak[1]] = float(10 ** (-7 + 1.3 * torch.rand((), generator=g)))
    f[:, 1, roles[1][2]] = 0.5                     # fires always
    return f, rare, weak


def _dead_hint(got: torch.Tensor, f: torch.Tensor) -> str:
    return diagnose(MISTAKES["dead_latents"], got, [f], same=lambda g, theirs: isinstance(theirs, torch.Tensor)
                    and theirs.shape == g.shape and theirs.dtype == torch.bool and torch.equal(g, theirs))


@prop("dead_latents", points=1)
def test_dead_latents_format(submission):
    f, _, _ = _dead_case("format")
    _dead(submission, f, "Format")
    f, _, _ = _dead_case("format 2", batch=13, n_inst=3, d_sae=6)
    _dead(submission, f.double(), "Format (float64 f)")


@prop("dead_latents", points=1)
def test_dead_latents_never_fire(submission):
    f, _, _ = _dead_case("never")
    got = _dead(submission, f, "Dead latents")
    want = sae.dead_latents(f)
    expect(torch.equal(got, want), f"Dead latents are those with f = 0 on every input of the batch: expected "
           f"{want.nonzero().tolist()} ([instance, latent]), got {got.nonzero().tolist()}.{_dead_hint(got, f)}")


@prop("dead_latents", points=1)
def test_rare_latents_are_alive(submission):
    f, rare, weak = _dead_case("rare")
    got = _dead(submission, f, "Rare latents")
    expect(not bool(got[rare]) and not bool(got[weak]),
           f"A latent that fires on one input out of {f.shape[0]} (rare) or fires once, weakly (f = "
           f"{float(f[:, weak[0], weak[1]].max()):.2g}), is alive: dead means f = 0 on every input. Do not use a "
           f"frequency or magnitude threshold.{_dead_hint(got, f)}")
    g = secret_gen("one input")
    f = (torch.rand(1, 3, 9, generator=g) < 0.5) * torch.rand(1, 3, 9, generator=g)
    got = _dead(submission, f, "A batch of one")
    expect(torch.equal(got, f[0] == 0), "With a batch of one input, a latent is dead exactly where f is 0."
           f"{_dead_hint(got, f)}")


# --------------------------------------------------------------------------- 09.resample_dead_latents


def _resample(submission, W_e, b_e, W_d, b_d, dead, h, seed: Any = 0, what: str = "Resampling",
              generator: torch.Generator | None = None):
    args = [t.clone() for t in (W_e, b_e, W_d, b_d, dead, h)]
    generator = secret_gen(("resample", seed)) if generator is None else generator
    out = call(submission, *args, generator, what="resample_dead_latents")
    expect(isinstance(out, (tuple, list)) and len(out) == 3,
           f"{what}: resample_dead_latents should return a tuple (W_e, b_e, W_d), got {describe(out)}.")
    new_W_e = tensor_out(out[0], what=f"{what} (W_e)", shape=tuple(W_e.shape), meaning="(n_instances, d_sae, d_in)")
    new_b_e = tensor_out(out[1], what=f"{what} (b_e)", shape=tuple(b_e.shape), meaning="(n_instances, d_sae)")
    new_W_d = tensor_out(out[2], what=f"{what} (W_d)", shape=tuple(W_d.shape), meaning="(n_instances, d_in, d_sae)")
    return new_W_e, new_b_e, new_W_d


def resample_case(seed: Any, n_inst: int = 2, d_sae: int = 7, d_in: int = 5, batch: int = 12):
    """Parameters whose latents never fire on ``h`` (b_e very negative), so that h_hat = b_d and the loss of
    input s is ||h_s - b_d||^2; ``dead`` marks 3 latents of instance 0 and 2 of instance 1, in secret positions."""
    W_e, b_e, W_d, b_d = random_params(seed, n_inst, d_sae, d_in, unit=True)
    g = secret_gen(("resample case", seed))
    W_e = W_e * (0.5 + torch.rand(n_inst, d_sae, 1, generator=g))
    b_e = b_e - 100.0
    dead = torch.zeros(n_inst, d_sae, dtype=torch.bool)
    for k, count in enumerate((3, 2, 4)[:n_inst]):
        dead[k, torch.randperm(d_sae, generator=g)[:count]] = True
    h = random_h(("resample", seed), batch, n_inst, d_in)
    return W_e, b_e, W_d, b_d, dead, h


def _centered_directions(h, b_d, i):
    v = h[:, i] - b_d[i]
    return v / v.norm(dim=1, keepdim=True)


@prop("resample_dead_latents", points=1)
def test_resample_keeps_live_latents(submission):
    W_e, b_e, W_d, b_d, dead, h = resample_case("live")
    new_W_e, new_b_e, new_W_d = _resample(submission, W_e, b_e, W_d, b_d, dead, h, what="Live latents")
    live = ~dead
    expect(torch.equal(new_W_e[live], W_e[live]) and torch.equal(new_b_e[live], b_e[live])
           and torch.equal(new_W_d.mT[live], W_d.mT[live]),
           "Live latents (dead = False) must keep their encoder rows, biases and decoder columns exactly.")
    expect(not torch.equal(new_W_d.mT[dead], W_d.mT[dead]), "The dead latents' decoder columns were not changed.")


def _reconstructed_exactly(seed: Any = 0):
    """One instance, d_in = 4: three live latents along secret signed axes (encoder row = decoder column), b_d with
    entries in multiples of 1/8, and three inputs b_d + a_s e_s that the live latents reconstruct exactly (every
    loss exactly 0 in floats); 60 dead latents that never fire."""
    g = secret_gen(("exact losses", seed))
    d_in, n_live, n_dead = 4, 3, 60
    axes = torch.randperm(d_in, generator=g)[:n_live]
    signs = torch.where(torch.rand(n_live, generator=g) < 0.5, -1.0, 1.0)
    d_sae = n_live + n_dead
    W_e = torch.zeros(1, d_sae, d_in)
    W_d = torch.randn(1, d_in, d_sae, generator=g)
    b_e = torch.full((1, d_sae), -1.0)
    order = torch.randperm(d_sae, generator=g)
    live_idx = order[:n_live]
    for j in range(n_live):
        e = torch.zeros(d_in)
        e[axes[j]] = signs[j]
        W_e[0, live_idx[j]] = e
        W_d[0, :, live_idx[j]] = e
        b_e[0, live_idx[j]] = 0.0
    b_d = (torch.randint(-8, 9, (1, d_in), generator=g) / 8.0)
    a = torch.randint(1, 5, (n_live,), generator=g) / 2.0
    h = torch.stack([b_d[0] + a[s] * W_e[0, live_idx[s]] for s in range(n_live)])[:, None, :]
    dead = torch.ones(1, d_sae, dtype=torch.bool)
    dead[0, live_idx] = False
    return W_e, b_e, W_d, b_d, dead, h


@prop("resample_dead_latents", points=1)
def test_resampled_decoder_points_at_an_input(submission):
    W_e, b_e, W_d, b_d, dead, h = resample_case("points")
    _, _, new_W_d = _resample(submission, W_e, b_e, W_d, b_d, dead, h, what="Decoder columns")
    for i in range(dead.shape[0]):
        cols = new_W_d[i][:, dead[i]]
        norms = cols.norm(dim=0)
        expect(bool(((norms - 1).abs() <= 1e-4).all()),
               f"A resampled decoder column should be a unit vector; instance {i}'s have norms {fmt(norms)}.")
        cos_centered = (_centered_directions(h, b_d, i) @ cols).max(dim=0).values
        raw = h[:, i] / h[:, i].norm(dim=1, keepdim=True)
        hint_text = ""
        if bool(((raw @ cols).max(dim=0).values - 1).abs().le(1e-4).all()):
            hint_text = hint("resample_dead_latents", "uncentred_input")
        expect(bool(((cos_centered - 1).abs() <= 1e-4).all()),
               f"Each resampled decoder column should point exactly along one centred input (h_s - b_d) of the batch "
               f"(instance {i}: best cosines {fmt(cos_centered)}).{hint_text}")
    # Every loss exactly 0: the draw must be uniform over the batch (torch.multinomial raises on all-zero weights).
    W_e, b_e, W_d, b_d, dead, h = _reconstructed_exactly()
    what = "Every loss 0"
    try:
        _, _, new_W_d = _resample(submission, W_e, b_e, W_d, b_d, dead, h, what=what)
    except CheckFailed as err:
        if "without replacement" in str(err):
            raise CheckFailed(f"{err} With {int(dead.sum())} dead latents and {h.shape[0]} inputs, draw with "
                              "replacement (torch.multinomial(..., replacement=True)).") from None
        raise CheckFailed(f"{err} Here the SAE reconstructs every input exactly, so every loss is 0: "
                          "torch.multinomial raises on all-zero weights; the docstring says to draw uniformly "
                          "then.") from None
    cols = new_W_d[0][:, dead[0]]
    picked = (_centered_directions(h, b_d, 0) @ cols)  # (batch, n_dead)
    hits = (picked > 1 - 1e-4).sum(1)
    expect(int(hits.sum()) == cols.shape[1],
           f"{what}: every resampled column should point along one centred input (h_s - b_d); "
           f"{cols.shape[1] - int(hits.sum())} of {cols.shape[1]} do not.")
    expect(bool((hits > 0).all()),
           f"{what}: when every loss is 0 the inputs must be drawn uniformly: with {cols.shape[1]} dead latents and "
           f"{h.shape[0]} inputs every input should be drawn (each misses all {cols.shape[1]} draws with probability "
           f"below 1e-10); yours drew them {hits.tolist()} times.")


@prop("resample_dead_latents", points=1)
def test_resampled_encoder_and_bias(submission):
    W_e, b_e, W_d, b_d, dead, h = resample_case("encoder")
    new_W_e, new_b_e, new_W_d = _resample(submission, W_e, b_e, W_d, b_d, dead, h, what="Encoder")
    for i in range(dead.shape[0]):
        expect(bool((new_b_e[i][dead[i]] == 0).all()),
               f"A resampled latent's encoder bias b_e should be 0, got {fmt(new_b_e[i][dead[i]])}.")
        scale = sae.RESAMPLE_ENCODER_SCALE * W_e[i][~dead[i]].norm(dim=1).mean()
        rows = new_W_e[i][dead[i]]
        want = scale * new_W_d[i][:, dead[i]].T
        hint_text = ""
        if torch.allclose(rows, new_W_d[i][:, dead[i]].T, atol=1e-4):
            hint_text = hint("resample_dead_latents", "unit_encoder_rows")
        elif torch.allclose(rows.norm(dim=1), torch.full((rows.shape[0],), 0.2), atol=1e-4):
            hint_text = hint("resample_dead_latents", "absolute_encoder_scale")
        elif torch.allclose(rows.norm(dim=1), torch.full((rows.shape[0],), float(0.2 * W_e[i].norm(dim=1).mean())),
                            atol=1e-4):
            hint_text = hint("resample_dead_latents", "mean_over_all_rows")
        expect(close(rows, want, 1e-4, 1e-4),
               f"A resampled encoder row should point along its new decoder column with norm 0.2 x the mean norm of "
               f"the live encoder rows ({scale:.4f} for instance {i}); got norms {fmt(rows.norm(dim=1))}.{hint_text}")


N_DRAWS = 400
"""Dead latents in the distribution check: Binomial(400, 16/17) has mean 376 and sd 4.7."""


def _badly_reconstructed(seed: Any = 0):
    """One instance, d_in = 4 with a secret orthonormal basis u, w, w', c: one live latent along u (encoder row
    a u, decoder column u / a), b_d = 2c, and three inputs in secret order: b_d + 3u (reconstructed exactly by the
    live latent: loss 0), b_d + w (loss 1) and b_d + 2w' (loss 4). 400 dead latents that never fire.

    Returns the parameters, ``h``, the batch positions of the three inputs, and the probabilities with which each
    rule draws them (the correct one first)."""
    g = secret_gen(("badly reconstructed", seed))
    Q = rotation(secret_seed("resample basis"), 4)
    u, w, w2, c = Q[:, 0], Q[:, 1], Q[:, 2], Q[:, 3]
    a = 0.5 + 1.5 * float(torch.rand((), generator=g))
    d_sae = N_DRAWS + 1
    live = int(torch.randint(d_sae, (), generator=g))
    W_e = torch.zeros(1, d_sae, 4)
    W_e[0, live] = a * u
    W_d = torch.randn(1, 4, d_sae, generator=g)
    W_d = W_d / W_d.norm(dim=1, keepdim=True)
    W_d[0, :, live] = u / a
    b_e = torch.full((1, d_sae), -1.0)
    b_e[0, live] = 0.0
    b_d = (2 * c)[None]
    order = torch.randperm(3, generator=g)
    inputs = torch.stack([b_d[0] + 3 * u, b_d[0] + w, b_d[0] + 2 * w2])
    h = inputs[torch.argsort(order)][:, None, :]  # input t sits at batch position order[t]
    dead = torch.ones(1, d_sae, dtype=torch.bool)
    dead[0, live] = False
    return W_e, b_e, W_d, b_d, dead, h, order


def _rule_probabilities() -> dict[str, torch.Tensor]:
    """For the inputs (exact, loss 1, loss 4) of :func:`_badly_reconstructed`: each rule's draw probabilities."""
    def norm(w):
        w = torch.tensor(w, dtype=torch.float64)
        return w / w.sum()

    return {
        "correct": norm([0.0, 1.0, 16.0]),
        "proportional_to_loss": norm([0.0, 1.0, 4.0]),
        "uniform_draws": norm([1.0, 1.0, 1.0]),
        "worst_input_only": norm([0.0, 0.0, 1.0]),
        "loss_without_live_latents": norm([81.0, 1.0, 16.0]),  # h_hat = b_d: losses 9, 1, 4
        "loss_without_decoder_bias": norm([16.0, 25.0, 64.0]),  # h_hat = W_d f: losses |c|^2 = 4, 5, 8
    }


def _fits(counts: torch.Tensor, p: torch.Tensor) -> bool:
    """Counts of ``N_DRAWS`` draws within 6 sd of the expected ones, and none where the probability is 0."""
    n = counts.sum().item()
    expected = n * p
    sd = (n * p * (1 - p)).sqrt()
    return bool(((counts.double() - expected).abs() <= 6 * sd + 0.5).all())


@prop("resample_dead_latents", points=1)
def test_resampling_prefers_badly_reconstructed_inputs(submission):
    W_e, b_e, W_d, b_d, dead, h, order = _badly_reconstructed()
    what = "Draws"
    try:
        _, _, new_W_d = _resample(submission, W_e, b_e, W_d, b_d, dead, h, seed="draws", what=what)
    except CheckFailed as err:
        if "replacement" not in str(err):
            raise
        raise CheckFailed(f"{err} With {N_DRAWS} dead latents and 3 inputs, draw with replacement "
                          "(torch.multinomial(..., replacement=True)).") from None
    cols = new_W_d[0][:, dead[0]]
    directions = _centered_directions(h, b_d, 0)[order]  # rows: the exact input, loss 1, loss 4
    picked = (directions @ cols) > 1 - 1e-3
    counts = picked.sum(1)
    elsewhere = N_DRAWS - int(counts.sum())
    if elsewhere:
        raw = h[order, 0] / h[order, 0].norm(dim=1, keepdim=True)
        hint_text = hint("resample_dead_latents", "uncentred_input") if int(((raw @ cols) > 1 - 1e-3).sum()) else ""
        raise CheckFailed(f"{what}: every resampled column should point along a centred input (h_s - b_d); "
                          f"{elsewhere} of {N_DRAWS} point elsewhere.{hint_text}")
    rules = _rule_probabilities()
    if int(counts[0]) == 0 and 354 <= int(counts[2]) < N_DRAWS:  # 4.8 sd below the mean: a false alarm below 1e-5
        return
    hint_text = next((hint("resample_dead_latents", name) for name, p in rules.items()
                      if name != "correct" and _fits(counts, p)), "")
    if not hint_text and int(counts[2]) == N_DRAWS:
        hint_text = hint("resample_dead_latents", "worst_input_only")
    raise CheckFailed(
        f"{what}: inputs should be drawn with probability proportional to the square of their reconstruction loss "
        f"||h_s - h_hat_s||^2, h_hat = W_d f + b_d: here one input is reconstructed exactly by the live latent (loss "
        f"0: never drawn), the others have losses 1 and 4, so about 16/17 of {N_DRAWS} draws (354 to 398) should "
        f"pick the loss-4 input. Yours drew the exact one {int(counts[0])} times, the loss-1 one {int(counts[1])} "
        f"times and the loss-4 one {int(counts[2])} times.{hint_text}")


@prop("resample_dead_latents", points=1)
def test_resampling_uses_the_generator(submission):
    W_e, b_e, W_d, b_d, dead, h = resample_case("generator", batch=40)
    a = _resample(submission, W_e, b_e, W_d, b_d, dead, h, seed=7, what="Generator")[2]
    b = _resample(submission, W_e, b_e, W_d, b_d, dead, h, seed=7, what="Generator")[2]
    expect(torch.equal(a, b), "With the same generator seed, resampling should give the same result: draw with "
           "torch.multinomial(..., generator=generator).")
    seen = set()
    for seed in range(6):
        cols = _resample(submission, W_e, b_e, W_d, b_d, dead, h, seed=seed, what="Generator")[2][0][:, dead[0]]
        seen.add(tuple(round(v, 4) for v in cols.flatten().tolist()))
    expect(len(seen) > 1, "Different generator seeds should (almost always) resample differently: the inputs are drawn at "
           "random, not chosen deterministically.")
    gen = secret_gen(("resample", "stream"))
    before = gen.get_state().clone()
    _resample(submission, W_e, b_e, W_d, b_d, dead, h, what="Generator", generator=gen)
    expect(not torch.equal(gen.get_state(), before),
           "Draw every random number from the generator argument (torch.multinomial(..., generator=generator)), so "
           "that the caller's generator advances; after your call it had not advanced. Drawing from torch's global "
           "generator, or re-seeding it (torch.manual_seed(generator.initial_seed())), leaves the caller's generator "
           "where it was, and every call then resamples the same way.")
