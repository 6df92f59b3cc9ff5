"""Lesson 9 checks: sparse autoencoders on superposed features.

Six exercises, plain functions on tensors, compared with :mod:`supercourse.sae`
on hand-built and seeded inputs. Everything but the resampling draw is
determined by the inputs, so comparisons are exact up to float rounding
(``rtol = 1e-4``, ``atol = 1e-6``); the resampling draw is tested with a
binomial bound (false-alarm rate below 1e-6).

Parameters are instance-first: ``W_e (n_instances, d_sae, d_in)``,
``b_e (n_instances, d_sae)``, ``W_d (n_instances, d_in, d_sae)``,
``b_d (n_instances, d_in)``; batches ``(batch, n_instances, d_in)``.
Test sizes use a different number for every axis so that a transpose or a
reduction over the wrong axis shows as a wrong shape or wrong values.

* ``09.sae_forward`` ``sae_forward(h, W_e, b_e, W_d, b_d, l1_coeff) -> (h_hat, f, loss)``.
* ``09.normalize_decoder`` ``normalize_decoder(W_d) -> W_d`` with unit columns.
* ``09.feature_recovery`` ``feature_recovery(features, W_d, threshold=0.9) -> (mmcs, fraction)``.
* ``09.topk_activations`` ``topk_activations(pre, k)``: ReLU of the ``k`` largest entries per row.
* ``09.dead_latents`` ``dead_latents(f) -> bool (n_instances, d_sae)``.
* ``09.resample_dead_latents`` ``resample_dead_latents(W_e, b_e, W_d, b_d, dead, h, generator) -> (W_e, b_e, W_d)``.
"""

from __future__ import annotations

import torch

from autograder.exercises import Exercise
from autograder.framework import call, describe, expect, prop
from autograder.toolkit import close, fmt, fmt_pair
from supercourse import sae

LESSON = "09-sparse-autoencoders"
EXERCISES = {
    "sae_forward": Exercise(
        "sae_forward",
        "The SAE's forward pass and loss: MSE + lambda * L1",
        forbid=("sae.sae_forward", "SparseAutoencoder"),
        reference=("supercourse.sae.sae_forward", "supercourse.sae.SparseAutoencoder"),
    ),
    "normalize_decoder": Exercise(
        "normalize_decoder",
        "Unit-norm decoder columns",
        forbid=("sae.normalize_decoder", "normalize_decoder_"),
        reference=("supercourse.sae.normalize_decoder",),
    ),
    "feature_recovery": Exercise(
        "feature_recovery",
        "Feature recovery: MMCS and the fraction recovered",
        forbid=("sae.mmcs", "max_cosines", "sae.fraction_recovered"),
        reference=("supercourse.sae.mmcs", "supercourse.sae.max_cosines", "supercourse.sae.fraction_recovered"),
    ),
    "topk_activations": Exercise(
        "topk_activations",
        "TopK activations: keep the k largest latents",
        forbid=("sae.topk_activations",),
        reference=("supercourse.sae.topk_activations",),
    ),
    "dead_latents": Exercise(
        "dead_latents",
        "Dead latents: the ones that never fire",
        forbid=("sae.dead_latents", "sae.latent_frequency"),
        reference=("supercourse.sae.dead_latents", "supercourse.sae.latent_frequency"),
    ),
    "resample_dead_latents": Exercise(
        "resample_dead_latents",
        "Resample dead latents toward badly reconstructed inputs",
        forbid=("sae.resample_dead_latents",),
        reference=("supercourse.sae.resample_dead_latents",),
    ),
}

RTOL, ATOL = 1e-4, 1e-6


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_params(seed: int, n_inst: int = 3, d_sae: int = 7, d_in: int = 5, unit: bool = False):
    """``(W_e, b_e, W_d, b_d)`` with every axis a different size; decoder columns of varied norms unless ``unit``."""
    g = _gen(seed)
    W_d = torch.randn(n_inst, d_in, d_sae, generator=g)
    W_d = W_d / W_d.norm(dim=1, keepdim=True)
    if not unit:
        W_d = W_d * (0.5 + torch.rand(n_inst, 1, d_sae, generator=g))
    W_e = W_d.mT.clone() + 0.3 * torch.randn(n_inst, d_sae, d_in, generator=g)
    b_e = 0.2 * torch.randn(n_inst, d_sae, generator=g)
    b_d = 0.3 * torch.randn(n_inst, d_in, generator=g)
    return W_e, b_e, W_d, b_d


def random_h(seed: int, batch: int = 11, n_inst: int = 3, d_in: int = 5) -> torch.Tensor:
    return torch.randn(batch, n_inst, d_in, generator=_gen(seed))


def _tensor(out: object, shape: tuple[int, ...], what: str, meaning: str) -> torch.Tensor:
    expect(
        isinstance(out, torch.Tensor) and tuple(out.shape) == shape and out.is_floating_point(),
        f"{what}: expected a float tensor of shape {meaning} = {shape}, got {describe(out)}.",
    )
    expect(bool(torch.isfinite(out).all()), f"{what}: every value should be finite, got NaN or inf.")
    return out.detach()


def _diff(got: torch.Tensor, want: torch.Tensor) -> str:
    w, g = fmt_pair(want.flatten()[:6], got.flatten()[:6])
    return f"expected {w}..., got {g}..."


# --------------------------------------------------------------------------- 09.sae_forward


def _forward(submission, h, W_e, b_e, W_d, b_d, l1_coeff):
    """The learner's (h_hat, f, loss), format-checked."""
    args = [t.clone() for t in (h, W_e, b_e, W_d, b_d)]
    out = call(submission, *args, l1_coeff, what="sae_forward")
    batch, n_inst, d_in = h.shape
    d_sae = W_e.shape[1]
    expect(
        isinstance(out, (tuple, list)) and len(out) == 3,
        f"sae_forward should return a tuple (h_hat, f, loss), got {describe(out)}.",
    )
    h_hat = _tensor(out[0], (batch, n_inst, d_in), "h_hat", "(batch, n_instances, d_in)")
    f = _tensor(out[1], (batch, n_inst, d_sae), "f", "(batch, n_instances, d_sae)")
    loss = out[2]
    if isinstance(loss, torch.Tensor) and loss.dim() == 0:
        expect(False, "loss: expected one loss per instance, shape (n_instances,), got a single number: keep the "
               "instances apart (each SAE is trained on its own loss); do not sum or average over instances.")
    loss = _tensor(loss, (n_inst,), "loss", "(n_instances,)")
    return h_hat, f, loss


@prop("sae_forward", points=1)
def test_sae_forward_shapes(submission):
    W_e, b_e, W_d, b_d = random_params(0)
    h = random_h(1)
    before = [t.clone() for t in (h, W_e, b_e, W_d, b_d)]
    out = call(submission, h, W_e, b_e, W_d, b_d, 0.01, what="sae_forward")
    expect(isinstance(out, (tuple, list)) and len(out) == 3,
           f"sae_forward should return a tuple (h_hat, f, loss), got {describe(out)}.")
    _forward(submission, h, W_e, b_e, W_d, b_d, 0.01)
    expect(all(torch.equal(a, b) for a, b in zip(before, (h, W_e, b_e, W_d, b_d))),
           "sae_forward must not modify its inputs in place (no -=, relu_ or similar on h or the parameters).")


def _f_hint(f: torch.Tensor, h, W_e, b_e, b_d) -> str:
    pre_centered = torch.einsum("bid,isd->bis", h - b_d, W_e) + b_e
    pre_raw = torch.einsum("bid,isd->bis", h, W_e) + b_e
    if close(f, pre_centered):
        return " Your f has negative entries: f = ReLU(W_e (h - b_d) + b_e), apply the ReLU."
    if close(f, pre_raw.relu()):
        return " Your f matches ReLU(W_e h + b_e): subtract the decoder bias first, f = ReLU(W_e (h - b_d) + b_e)."
    if close(f, torch.einsum("bid,isd->bis", h - b_d, W_e).relu()):
        return " Your f ignores the encoder bias b_e."
    if close(f, (torch.einsum("bid,isd->bis", h - b_d, W_e).relu() + b_e)):
        return " Add b_e before the ReLU, not after it."
    return ""


@prop("sae_forward", points=1)
def test_sae_forward_encoder(submission):
    W_e, b_e, W_d, b_d = random_params(2)
    h = random_h(3)
    _, f, _ = _forward(submission, h, W_e, b_e, W_d, b_d, 0.01)
    _, want, _ = sae.sae_forward(h, W_e, b_e, W_d, b_d, 0.01)
    expect(close(f, want, RTOL, ATOL),
           f"Latents f = ReLU(W_e (h - b_d) + b_e): on random parameters {_diff(f, want)}.{_f_hint(f, h, W_e, b_e, b_d)}")


@prop("sae_forward", points=1)
def test_sae_forward_decoder(submission):
    W_e, b_e, W_d, b_d = random_params(4)
    h = random_h(5)
    h_hat, f, _ = _forward(submission, h, W_e, b_e, W_d, b_d, 0.01)
    want, want_f, _ = sae.sae_forward(h, W_e, b_e, W_d, b_d, 0.01)
    if close(h_hat, want, RTOL, ATOL):
        return
    hint = ""
    if close(h_hat, want - b_d):
        hint = " Your h_hat misses the decoder bias: h_hat = W_d f + b_d."
    elif close(f, want_f) and close(h_hat, torch.einsum("bis,ids->bid", want_f, W_d / W_d.norm(dim=1, keepdim=True)) + b_d):
        hint = " Use W_d as given: normalising the decoder is a separate step (normalize_decoder), after each update."
    expect(False, f"Reconstruction h_hat = W_d f + b_d (column j of W_d[k] is latent j's direction): {_diff(h_hat, want)}.{hint}")


def _loss_hint(loss, h, h_hat, f, lam) -> str:
    err = (h - h_hat).square()
    l1 = f.sum(-1).mean(0)
    candidates = [
        (err.sum(-1).mean(0) + lam * l1, "You summed the squared error over d_in: take its mean over d_in (and the batch)."),
        (err.mean(dim=(0, 2)) + lam * f.mean(dim=(0, 2)), "Your L1 term is a mean over latents: sum |f| over latents, average over the batch."),
        (err.mean(dim=(0, 2)) + lam * f.square().sum(-1).mean(0), "Your penalty squares f: the L1 penalty is the sum of |f| (f >= 0 already)."),
        (err.mean(dim=(0, 2)), "Your loss has no sparsity penalty: add l1_coeff * (sum of f over latents, averaged over the batch)."),
        (err.mean(dim=(0, 2)).sqrt() + lam * l1, "Your reconstruction term is a root mean square: use the mean squared error."),
        (err.mean(dim=(0, 2)) + lam * f.sum(-1).sum(0), "Your L1 term is summed over the batch: average it over the batch."),
    ]
    for value, text in candidates:
        if close(loss, value):
            return " " + text
    return ""


@prop("sae_forward", points=1)
def test_sae_forward_loss(submission):
    W_e, b_e, W_d, b_d = random_params(6)
    h = random_h(7)
    lam = 0.05
    _, _, loss = _forward(submission, h, W_e, b_e, W_d, b_d, lam)
    h_hat, f, want = sae.sae_forward(h, W_e, b_e, W_d, b_d, lam)
    expect(close(loss, want, RTOL, ATOL),
           f"Loss per instance = mean over batch and d_in of (h - h_hat)^2 + l1_coeff * mean over batch of sum_j f_j: "
           f"with l1_coeff = {lam}, expected {fmt_pair(want, loss)[0]}, got {fmt_pair(want, loss)[1]}."
           f"{_loss_hint(loss, h, h_hat, f, lam)}")


@prop("sae_forward", points=1)
def test_sae_forward_l1_per_instance(submission):
    W_e, b_e, W_d, b_d = random_params(8)
    h = random_h(9)
    lam = torch.tensor([0.0, 0.01, 0.3])
    _, _, loss = _forward(submission, h, W_e, b_e, W_d, b_d, lam)
    _, _, want = sae.sae_forward(h, W_e, b_e, W_d, b_d, lam)
    expect(close(loss, want, RTOL, ATOL),
           f"l1_coeff may be a tensor with one lambda per instance, (n_instances,) = {fmt(lam)}: instance k uses "
           f"lambda[k]. Expected losses {fmt_pair(want, loss)[0]}, got {fmt_pair(want, loss)[1]}.")


# --------------------------------------------------------------------------- 09.normalize_decoder


def _normalized(submission, W_d: torch.Tensor) -> torch.Tensor:
    before = W_d.clone()
    out = call(submission, W_d, what="normalize_decoder")
    out = _tensor(out, tuple(W_d.shape), "normalize_decoder", "the shape of W_d (n_instances, d_in, d_sae)")
    expect(torch.equal(W_d, before), "normalize_decoder must return a new tensor and leave W_d unchanged "
           "(no /= or in-place division).")
    return out


@prop("normalize_decoder", points=1)
def test_normalize_decoder_unit_columns(submission):
    _, _, W_d, _ = random_params(10, n_inst=3, d_sae=7, d_in=5)
    W_d = W_d * torch.tensor([0.2, 1.0, 3.0])[:, None, None]
    out = _normalized(submission, W_d)
    norms = out.norm(dim=1)
    hint = ""
    if torch.allclose(out.norm(dim=2), torch.ones(()), atol=1e-4):
        hint = " Your rows have norm 1: the dictionary directions are the *columns* W_d[k, :, j] (normalise over dim 1, d_in)."
    elif torch.allclose(out.norm(dim=(1, 2)), torch.ones(()), atol=1e-4):
        hint = " You divided by the norm of the whole matrix: every column gets its own norm."
    elif (norms < 0.999).any() and (norms <= 1 + 1e-4).all():
        hint = " Short columns must be lengthened too: divide every column by its norm, not by max(norm, 1)."
    expect(torch.allclose(norms, torch.ones_like(norms), atol=1e-4),
           f"Every decoder column W_d[k, :, j] should have norm 1; column norms of instance 0: {fmt(norms[0])}.{hint}")


@prop("normalize_decoder", points=1)
def test_normalize_decoder_keeps_directions(submission):
    _, _, W_d, _ = random_params(11, n_inst=2, d_sae=6, d_in=4)
    out = _normalized(submission, W_d)
    want = sae.normalize_decoder(W_d)
    hint = ""
    if close(out, W_d / W_d.norm(dim=1, keepdim=True).square()):
        hint = " You divided by the squared norm."
    expect(close(out, want, RTOL, ATOL),
           f"Each column should keep its direction and only change its length: {_diff(out, want)}.{hint}")


@prop("normalize_decoder", points=1)
def test_normalize_decoder_zero_column(submission):
    _, _, W_d, _ = random_params(12, n_inst=2, d_sae=5, d_in=4)
    W_d[1, :, 3] = 0.0
    out = call(submission, W_d.clone(), what="normalize_decoder")
    expect(isinstance(out, torch.Tensor) and bool(torch.isfinite(out).all()),
           "A zero column (a latent with no direction yet) must stay finite, not become NaN: divide by the norm "
           "clamped away from zero, e.g. norm.clamp_min(1e-12).")
    expect(close(out[1, :, 3], torch.zeros(4)), f"A zero column should stay zero, got {fmt(out[1, :, 3])}.")


# --------------------------------------------------------------------------- 09.topk_activations


def _topk(submission, pre: torch.Tensor, k: int) -> torch.Tensor:
    before = pre.clone()
    out = call(submission, pre, k, what="topk_activations")
    out = _tensor(out, tuple(pre.shape), "topk_activations", "the shape of pre")
    expect(torch.equal(pre, before), "topk_activations must not modify pre in place.")
    return out


@prop("topk_activations", points=1)
def test_topk_keeps_k_per_row(submission):
    pre = torch.randn(6, 3, 9, generator=_gen(20)).abs() + 0.1  # all positive: exactly k non-zeros per row
    out = _topk(submission, pre, 3)
    counts = (out != 0).sum(-1)
    hint = ""
    if counts.sum() == 3:
        hint = " Only 3 entries in the whole tensor: keep k per row (per input and instance), along the last dimension."
    elif not (counts == 3).all():
        hint = " Take the top k along the last dimension (dim=-1, the latents), not along the batch or the instances."
    expect((counts == 3).all(), f"With k = 3 and positive pre-activations, each row (one input, one instance) "
           f"should keep exactly 3 latents; got counts {fmt(counts[:, 0])} (instance 0).{hint}")


@prop("topk_activations", points=1)
def test_topk_keeps_the_largest(submission):
    pre = torch.randn(5, 2, 8, generator=_gen(21))
    out = _topk(submission, pre, 2)
    want = sae.topk_activations(pre, 2)
    hint = ""
    if close(out, sae.topk_activations(-pre, 2).neg().relu()) or close(out, torch.zeros_like(out).scatter(-1, pre.topk(2, -1, largest=False).indices, pre.topk(2, -1, largest=False).values)):
        hint = " You kept the smallest entries: keep the largest (torch.topk's default)."
    elif close(out, torch.zeros_like(pre).scatter(-1, pre.abs().topk(2, -1).indices, pre.gather(-1, pre.abs().topk(2, -1).indices).relu())):
        hint = " You ranked by absolute value: rank by the signed pre-activation, the largest ones."
    elif close(out, torch.zeros_like(pre).scatter(-1, pre.topk(2, -1).indices, pre.topk(2, -1).values)):
        hint = " A negative pre-activation among the top k must become 0: apply the ReLU to the kept values."
    elif close(out, torch.zeros_like(pre).scatter(-1, pre.topk(3, -1).indices, pre.topk(3, -1).values.relu())):
        hint = " You kept k + 1 entries."
    expect(close(out, want, RTOL, ATOL),
           f"topk_activations(pre, k=2) should be ReLU(pre) at the 2 largest entries of each row and 0 elsewhere: "
           f"{_diff(out, want)}.{hint}")


@prop("topk_activations", points=1)
def test_topk_negative_and_any_shape(submission):
    pre = -torch.rand(4, 3, 6, generator=_gen(22)) - 0.1  # every pre-activation negative: nothing fires
    out = _topk(submission, pre, 2)
    expect((out == 0).all(), "When every pre-activation is negative nothing may fire: the kept top-k values pass "
           f"through a ReLU (ReLU of a negative number is 0); got non-zeros such as {fmt(out[out != 0][:3])}.")
    pre = torch.randn(7, 10, generator=_gen(23))
    out = _topk(submission, pre, 4)
    want = sae.topk_activations(pre, 4)
    expect(close(out, want, RTOL, ATOL), f"pre of shape (7, 10) (no instance dimension) with k = 4: {_diff(out, want)}. "
           "Work along the last dimension (dim=-1) so any leading shape works.")


# --------------------------------------------------------------------------- 09.feature_recovery


def _recovery(submission, features, W_d, threshold=0.9):
    n_inst = W_d.shape[0]
    out = call(submission, features.clone(), W_d.clone(), threshold, what="feature_recovery")
    expect(isinstance(out, (tuple, list)) and len(out) == 2,
           f"feature_recovery should return a tuple (mmcs, fraction), got {describe(out)}.")
    m = _tensor(out[0], (n_inst,), "mmcs", "(n_instances,)")
    fr = _tensor(out[1], (n_inst,), "fraction", "(n_instances,)")
    return m, fr


def _recovery_case(seed: int, n_inst: int = 3, d_in: int = 6, n: int = 5, d_sae: int = 8):
    """True features with varied norms, and decoders made of noisy copies of some features (varied norms too)."""
    g = _gen(seed)
    F = torch.randn(d_in, n, generator=g)
    F = F / F.norm(dim=0) * (0.5 + torch.rand(n, generator=g))
    W_d = torch.randn(n_inst, d_in, d_sae, generator=g)
    for k in range(n_inst):
        for j in range(min(n, d_sae) - k):
            W_d[k, :, j] = F[:, j] + (0.1 + 0.3 * k) * torch.randn(d_in, generator=g) * F[:, j].norm()
    W_d = W_d * (0.3 + 2 * torch.rand(n_inst, 1, d_sae, generator=g))
    return F, W_d


def _recovery_hint(m, fr, F, W_d, threshold) -> str:
    Fu, Du = F / F.norm(dim=0), W_d / W_d.norm(dim=1, keepdim=True)
    cos = Fu.T @ Du
    raw = F.T @ W_d
    options = [
        ((F.T @ Du).max(-1).values.mean(-1), "Normalise the true features too: a cosine divides by both norms."),
        ((Fu.T @ W_d).max(-1).values.mean(-1), "Normalise the decoder columns: a cosine divides by both norms."),
        (raw.max(-1).values.mean(-1), "Compare directions, not dot products: normalise features and decoder columns."),
        (cos.max(-2).values.mean(-1), "You took, for each latent, its best feature: MMCS takes, for each *true feature*, "
                                      "its best latent (max over latents), then the mean over features."),
        (cos.abs().max(-1).values.mean(-1), "Use the signed cosine: a latent pointing against a feature (cos -1) does not "
                                            "recover it, since latents are non-negative."),
        (cos.mean(-1).mean(-1), "Take the max over latents before averaging over features."),
        (cos.max(-1).values.max(-1).values,
         "MMCS is the mean over features of the max cosine, not the max of the max."),
    ]
    for value, text in options:
        if close(m, value, 1e-3, 1e-5):
            return " " + text
    return ""


@prop("feature_recovery", points=1)
def test_feature_recovery_format(submission):
    F, W_d = _recovery_case(30)
    _recovery(submission, F, W_d)


@prop("feature_recovery", points=1)
def test_mmcs_of_a_known_dictionary(submission):
    # Instance 0: the dictionary contains every feature (scaled) plus junk: MMCS 1.
    # Instance 1: only the negatives of the features: the best positive cosine is what the junk offers.
    g = _gen(31)
    d_in, n = 6, 4
    F = torch.linalg.qr(torch.randn(d_in, d_in, generator=g))[0][:, :n] * torch.tensor([1.0, 2.0, 0.5, 3.0])
    junk = F[:, :1] * 0 + torch.linalg.qr(torch.randn(d_in, d_in, generator=g))[0][:, -1:]
    W_d = torch.stack([torch.cat([3 * F, junk], 1), torch.cat([-F, F[:, :1] + F[:, 1:2]], 1)])
    m, _ = _recovery(submission, F, W_d)
    want = sae.mmcs(F, W_d)
    expect(close(m, want, 1e-4, 1e-5),
           f"A dictionary holding every feature (scaled by 3) should give MMCS 1; one holding only the features' negatives "
           f"(and one mixed column) gives {want[1]:.4f}. Expected {fmt(want)}, got {fmt(m)}.{_recovery_hint(m, None, F, W_d, 0.9)}")


@prop("feature_recovery", points=1)
def test_mmcs_matches_reference(submission):
    F, W_d = _recovery_case(32)
    m, _ = _recovery(submission, F, W_d)
    want = sae.mmcs(F, W_d)
    expect(close(m, want, 1e-4, 1e-5),
           f"MMCS = mean over true features of max over latents of cos(feature, decoder column), per instance: "
           f"expected {fmt_pair(want, m)[0]}, got {fmt_pair(want, m)[1]}.{_recovery_hint(m, None, F, W_d, 0.9)}")


@prop("feature_recovery", points=1)
def test_fraction_recovered(submission):
    F, W_d = _recovery_case(33, n_inst=4)
    for threshold in (0.9, 0.6):
        _, fr = _recovery(submission, F, W_d, threshold)
        want = sae.fraction_recovered(F, W_d, threshold)
        hint = ""
        if close(fr, want * F.shape[1]):
            hint = " You returned a count: divide by the number of features for a fraction."
        elif threshold != 0.9 and close(fr, sae.fraction_recovered(F, W_d, 0.9)):
            hint = " Use the threshold argument rather than a fixed 0.9."
        expect(close(fr, want, 1e-5, 1e-6),
               f"The fraction of true features whose max cosine exceeds threshold = {threshold}: expected "
               f"{fmt(want)}, got {fmt(fr)}.{hint}")


# --------------------------------------------------------------------------- 09.dead_latents


def _dead(submission, f: torch.Tensor) -> torch.Tensor:
    out = call(submission, f.clone(), what="dead_latents")
    shape = (f.shape[1], f.shape[2])
    expect(isinstance(out, torch.Tensor) and tuple(out.shape) == shape,
           f"dead_latents: expected a bool tensor of shape (n_instances, d_sae) = {shape}, got {describe(out)}.")
    expect(out.dtype == torch.bool, f"dead_latents: expected a bool tensor (True = dead), got dtype {out.dtype}. "
           "A comparison such as (...) == 0 gives one.")
    return out


def _dead_case(seed: int, batch: int = 40, n_inst: int = 3, d_sae: int = 9) -> torch.Tensor:
    g = _gen(seed)
    f = torch.rand(batch, n_inst, d_sae, generator=g) * (torch.rand(batch, n_inst, d_sae, generator=g) < 0.3)
    f[:, 0, 2] = 0.0               # dead
    f[:, 1, [0, 5]] = 0.0          # dead
    f[:, 2, 7] = 0.0
    f[17, 2, 7] = 0.8              # fires once: alive
    f[:, 0, 4] = 0.0
    f[33, 0, 4] = 1e-4             # fires once, weakly: alive
    f[:, 1, 8] = 0.5               # fires always: alive
    return f


@prop("dead_latents", points=1)
def test_dead_latents_format(submission):
    _dead(submission, _dead_case(40))


@prop("dead_latents", points=1)
def test_dead_latents_never_fire(submission):
    f = _dead_case(41)
    got = _dead(submission, f)
    want = sae.dead_latents(f)
    hint = ""
    if torch.equal(got, ~want):
        hint = " You returned the live latents: dead means never fires."
    elif torch.equal(got, (f == 0).any(0)):
        hint = " A latent is dead when it is zero on *every* input, not on some input."
    elif got.sum() < want.sum():
        hint = " Some latents that never fire were called alive."
    elif got.sum() > want.sum():
        hint = " Some latents that fire were called dead: look at every input of the batch (dim 0), not just some."
    expect(torch.equal(got, want), f"Dead latents are those with f = 0 on every input of the batch: expected "
           f"{want.nonzero().tolist()} ([instance, latent]), got {got.nonzero().tolist()}.{hint}")


@prop("dead_latents", points=1)
def test_rare_latents_are_alive(submission):
    f = _dead_case(42)
    got = _dead(submission, f)
    expect(not bool(got[2, 7]) and not bool(got[0, 4]),
           "A latent that fires on one input out of 40 (or fires weakly, f = 1e-4) is rare, not dead: dead means "
           "f = 0 on every input. Do not use a frequency or magnitude threshold.")
    f = (torch.arange(9) % 2).float().expand(1, 3, 9).clone()
    got = _dead(submission, f)
    expect(torch.equal(got, f[0] == 0), "With a batch of one input, a latent is dead exactly where f is 0.")


# --------------------------------------------------------------------------- 09.resample_dead_latents


def _resample(submission, W_e, b_e, W_d, b_d, dead, h, seed=0):
    args = [t.clone() for t in (W_e, b_e, W_d, b_d, dead, h)]
    out = call(submission, *args, _gen(seed), what="resample_dead_latents")
    expect(isinstance(out, (tuple, list)) and len(out) == 3,
           f"resample_dead_latents should return a tuple (W_e, b_e, W_d), got {describe(out)}.")
    new_W_e = _tensor(out[0], tuple(W_e.shape), "W_e", "(n_instances, d_sae, d_in)")
    new_b_e = _tensor(out[1], tuple(b_e.shape), "b_e", "(n_instances, d_sae)")
    new_W_d = _tensor(out[2], tuple(W_d.shape), "W_d", "(n_instances, d_in, d_sae)")
    expect(all(torch.equal(a, b) for a, b in zip(args, (W_e, b_e, W_d, b_d, dead, h))),
           "resample_dead_latents must return new tensors and leave its inputs unchanged (clone before editing).")
    return new_W_e, new_b_e, new_W_d


def resample_case(seed: int, n_inst: int = 2, d_sae: int = 7, d_in: int = 5, batch: int = 12):
    """Parameters whose latents never fire on ``h`` (b_e very negative), so that h_hat = b_d and the loss of
    input s is ||h_s - b_d||^2; ``dead`` marks about half of them."""
    W_e, b_e, W_d, b_d = random_params(seed, n_inst, d_sae, d_in, unit=True)
    W_e = W_e * (0.5 + torch.rand(n_inst, d_sae, 1, generator=_gen(seed + 1)))
    b_e = b_e - 100.0
    dead = torch.zeros(n_inst, d_sae, dtype=torch.bool)
    dead[0, [1, 4, 5]] = True
    dead[1, [0, 6]] = True
    h = random_h(seed + 2, batch, n_inst, d_in)
    return W_e, b_e, W_d, b_d, dead, h


@prop("resample_dead_latents", points=1)
def test_resample_keeps_live_latents(submission):
    W_e, b_e, W_d, b_d, dead, h = resample_case(50)
    new_W_e, new_b_e, new_W_d = _resample(submission, W_e, b_e, W_d, b_d, dead, h)
    live = ~dead
    expect(torch.equal(new_W_e[live], W_e[live]) and torch.equal(new_b_e[live], b_e[live])
           and torch.equal(new_W_d.mT[live], W_d.mT[live]),
           "Live latents (dead = False) must keep their encoder rows, biases and decoder columns exactly.")
    expect(not torch.equal(new_W_d.mT[dead], W_d.mT[dead]), "The dead latents' decoder columns were not changed.")


def _centered_directions(h, b_d, i):
    v = h[:, i] - b_d[i]
    return v / v.norm(dim=1, keepdim=True)


@prop("resample_dead_latents", points=1)
def test_resampled_decoder_points_at_an_input(submission):
    W_e, b_e, W_d, b_d, dead, h = resample_case(51)
    _, _, new_W_d = _resample(submission, W_e, b_e, W_d, b_d, dead, h)
    for i in range(dead.shape[0]):
        cols = new_W_d[i][:, dead[i]]
        norms = cols.norm(dim=0)
        expect(torch.allclose(norms, torch.ones_like(norms), atol=1e-4),
               f"A resampled decoder column should be a unit vector; instance {i}'s have norms {fmt(norms)}.")
        cos_centered = (_centered_directions(h, b_d, i) @ cols).max(dim=0).values
        raw = h[:, i] / h[:, i].norm(dim=1, keepdim=True)
        hint = ""
        if torch.allclose((raw @ cols).max(dim=0).values, torch.ones(cols.shape[1]), atol=1e-4):
            hint = (" Your columns point along an input h_s itself: the encoder sees h - b_d, so use the centred "
                    "input (h_s - b_d) / ||h_s - b_d||.")
        expect(torch.allclose(cos_centered, torch.ones_like(cos_centered), atol=1e-4),
               f"Each resampled decoder column should point exactly along one centred input (h_s - b_d) of the batch "
               f"(instance {i}: best cosines {fmt(cos_centered)}).{hint}")


@prop("resample_dead_latents", points=1)
def test_resampled_encoder_and_bias(submission):
    W_e, b_e, W_d, b_d, dead, h = resample_case(52)
    new_W_e, new_b_e, new_W_d = _resample(submission, W_e, b_e, W_d, b_d, dead, h)
    for i in range(dead.shape[0]):
        expect(torch.allclose(new_b_e[i][dead[i]], torch.zeros(int(dead[i].sum()))),
               f"A resampled latent's encoder bias b_e should be 0, got {fmt(new_b_e[i][dead[i]])}.")
        scale = sae.RESAMPLE_ENCODER_SCALE * W_e[i][~dead[i]].norm(dim=1).mean()
        rows = new_W_e[i][dead[i]]
        want = scale * new_W_d[i][:, dead[i]].T
        hint = ""
        if torch.allclose(rows, new_W_d[i][:, dead[i]].T, atol=1e-4):
            hint = " Your encoder rows are unit vectors: scale them to 0.2 x the mean norm of the live encoder rows."
        elif torch.allclose(rows.norm(dim=1), torch.full((rows.shape[0],), 0.2), atol=1e-4):
            hint = " 0.2 is relative: multiply by the mean norm of the *live* encoder rows."
        elif torch.allclose(rows.norm(dim=1), torch.full((rows.shape[0],), float(0.2 * W_e[i].norm(dim=1).mean())), atol=1e-4):
            hint = " Average the norms of the live encoder rows only (dead = False), not of every row."
        expect(torch.allclose(rows, want, atol=1e-4),
               f"A resampled encoder row should point along its new decoder column with norm 0.2 x the mean norm of "
               f"the live encoder rows ({scale:.4f} for instance {i}); got norms {fmt(rows.norm(dim=1))}.{hint}")


@prop("resample_dead_latents", points=1)
def test_resampling_prefers_badly_reconstructed_inputs(submission):
    # One instance, 400 dead latents, a batch of 3 inputs whose losses are 0, 1 and 4 (h_hat = b_d = 0):
    # drawn with probability proportional to loss^2: 0, 1/17 and 16/17.
    n_dead, d_in = 400, 3
    W_e = torch.zeros(1, n_dead + 1, d_in)
    W_e[0, -1] = torch.tensor([0.0, 0.0, -1.0])  # the one live latent never fires on these inputs
    b_e = torch.full((1, n_dead + 1), -1.0)
    W_d = torch.zeros(1, d_in, n_dead + 1)
    W_d[0, 2] = 1.0
    b_d = torch.zeros(1, d_in)
    dead = torch.ones(1, n_dead + 1, dtype=torch.bool)
    dead[0, -1] = False
    h = torch.tensor([[[0.0, 0.0, 0.0]], [[1.0, 0.0, 0.0]], [[0.0, 2.0, 0.0]]])
    _, _, new_W_d = _resample(submission, W_e, b_e, W_d, b_d, dead, h, seed=3)
    cols = new_W_d[0][:, :n_dead]
    from_second = int((cols[1] > 0.99).sum())
    from_first = int((cols[0] > 0.99).sum())
    expect(from_first + from_second == n_dead,
           f"Every resampled column should point at input 1 (loss 1) or input 2 (loss 4): the input with loss 0 has no "
           f"direction to offer and must never be drawn; {n_dead - from_first - from_second} of {n_dead} columns point "
           "elsewhere.")
    # Binomial(400, 16/17): mean 376, sd 4.7. Drawing proportional to the loss gives 4/5 of 400 = 320 (sd 8),
    # uniformly over the two 200, the argmax 400. Bounds 354 to 399 (4.7 sd below the mean): false alarm below 1e-5.
    hint = ""
    if from_second == n_dead:
        hint = " Every latent took the worst input: draw at random (torch.multinomial), with replacement."
    elif abs(from_second - 320) < 30:
        hint = " Your draws look proportional to the loss itself: use the loss squared."
    elif abs(from_second - 200) < 30:
        hint = " Your draws look uniform: weight each input by its loss squared."
    expect(354 <= from_second < n_dead,
           f"Inputs should be drawn with probability proportional to the square of their reconstruction loss: with "
           f"losses 0, 1, 4, about 16/17 of 400 draws (354 to 398) should pick the loss-4 input; got {from_second}.{hint}")


@prop("resample_dead_latents", points=1)
def test_resampling_uses_the_generator(submission):
    W_e, b_e, W_d, b_d, dead, h = resample_case(53, batch=40)
    a = _resample(submission, W_e, b_e, W_d, b_d, dead, h, seed=7)[2]
    b = _resample(submission, W_e, b_e, W_d, b_d, dead, h, seed=7)[2]
    expect(torch.equal(a, b), "With the same generator seed, resampling should give the same result: draw with "
           "torch.multinomial(..., generator=generator).")
    seen = set()
    for seed in range(6):
        cols = _resample(submission, W_e, b_e, W_d, b_d, dead, h, seed=seed)[2][0][:, dead[0]]
        seen.add(tuple(round(v, 4) for v in cols.flatten().tolist()))
    expect(len(seen) > 1, "Different generator seeds should (almost always) resample differently: the inputs are drawn at "
           "random, not chosen deterministically.")
