"""Lesson 9's own tests: what the generic proof (tests/test_lesson_proofs.py) does not already hold.

The generic proof grades the solution, the stub, every mistake of ``mistakes.py`` and every alternative of
``alternatives.py``, the generic mutants (NaN, inf, an argument changed in place, a detached answer) and the
replay of recorded answers; here: the points, the hand-built inputs (the exact losses and draw probabilities
they promise), and messages that diagnose rather than pile up (issue 22).
"""

from __future__ import annotations

import pytest
import torch

from autograder.exercises import get_exercise, lessons
from autograder.lessons import get_lesson
from autograder.toolkit.randomness import property_seed
from autograder.toolkit.testing import assert_rejected, grade
from supercourse import sae

LESSON = "09-sparse-autoencoders"
NAMES = ["sae_forward", "normalize_decoder", "feature_recovery", "topk_activations", "dead_latents",
         "resample_dead_latents"]
SECRET = 0x09_C0_22_24


def _checks():
    return get_lesson(LESSON).module("checks")


def _mistake(name: str, mistake: str):
    table = get_lesson(LESSON).module("mistakes").MISTAKES[name]
    return next(m for m in table if m.name == mistake).implementation


def _failed(verdict) -> dict[str, str]:
    return {p.test: p.message for p in verdict.properties if not p.passed}


def test_points_per_exercise():
    assert [get_exercise(f"09.{n}").points for n in NAMES] == [5, 3, 4, 3, 3, 5]


def test_declarations():
    for ex in lessons()[LESSON]:
        assert ex.differentiable == (ex.name in ("sae_forward", "topk_activations")), ex.id
        assert ex.modifies == (), ex.id  # normalize_decoder's docstring promises a new tensor


# --------------------------------------------------------------------------- issue 22: messages and verdicts


def test_sae_forward_without_subtracting_b_d_costs_one_point_and_says_why():
    verdict = grade("09.sae_forward", _mistake("sae_forward", "no_center"), secret=SECRET)
    failed = _failed(verdict)
    assert list(failed) == ["test_sae_forward_encoder"], failed
    assert verdict.points == verdict.max_points - 1
    assert "subtract the decoder bias" in failed["test_sae_forward_encoder"]


def test_a_decoder_bug_on_top_of_an_encoder_bug_is_named_and_traced():
    def both_biases_missing(h, W_e, b_e, W_d, b_d, l1_coeff):
        f = torch.relu(torch.einsum("bid,isd->bis", h, W_e) + b_e)
        h_hat = torch.einsum("bis,ids->bid", f, W_d)
        return h_hat, f, (h - h_hat).square().mean(dim=(0, 2)) + l1_coeff * f.sum(-1).mean(0)

    failed = _failed(grade("09.sae_forward", both_biases_missing, secret=SECRET))
    assert set(failed) == {"test_sae_forward_encoder", "test_sae_forward_decoder"}, failed
    assert "misses the decoder bias" in failed["test_sae_forward_decoder"]
    assert "your own f" in failed["test_sae_forward_decoder"]


def test_a_wrong_loss_is_named_even_when_the_encoder_is_wrong_too():
    def no_center_and_summed(h, W_e, b_e, W_d, b_d, l1_coeff):
        f = torch.relu(torch.einsum("bid,isd->bis", h, W_e) + b_e)
        h_hat = torch.einsum("bis,ids->bid", f, W_d) + b_d
        return h_hat, f, (h - h_hat).square().sum(-1).mean(0) + l1_coeff * f.sum(-1).mean(0)

    failed = _failed(grade("09.sae_forward", no_center_and_summed, secret=SECRET))
    assert "summed the squared error over d_in" in failed["test_sae_forward_loss"], failed


def test_dead_latents_with_a_frequency_threshold_is_diagnosed_as_such():
    failed = _failed(grade("09.dead_latents", _mistake("dead_latents", "frequency_threshold"), secret=SECRET))
    message = failed["test_dead_latents_never_fire"]
    assert "frequency threshold" in message, message
    assert "not just some" not in message and "look at every input" not in message, message


def test_a_detached_decoder_loses_the_gradient_points_only():
    failed = _failed(grade("09.sae_forward", _mistake("sae_forward", "detached_decoder"), secret=SECRET))
    assert list(failed) == ["test_sae_forward_gradients"], failed
    assert "no gradient reaches W_d" in failed["test_sae_forward_gradients"]


# --------------------------------------------------------------------------- the hand-built inputs


@pytest.mark.parametrize("secret", [1, 2, 3])
def test_every_loss_is_exactly_zero_when_the_live_latents_reconstruct_the_batch(secret):
    with property_seed(secret, "09.test", "p"):
        W_e, b_e, W_d, b_d, dead, h = _checks()._reconstructed_exactly()
    h_hat, f, _ = sae.sae_forward(h, W_e, b_e, W_d, b_d, 0.0)
    assert torch.equal(h_hat, h)
    assert bool((f[:, :, dead[0]] == 0).all())
    assert len({tuple(v.tolist()) for v in (h[:, 0] - b_d[0])}) == h.shape[0], "three distinct directions"


@pytest.mark.parametrize("secret", [1, 2, 3])
def test_the_draw_probabilities_of_each_rule(secret):
    checks = _checks()
    with property_seed(secret, "09.test", "p"):
        W_e, b_e, W_d, b_d, dead, h, order = checks._badly_reconstructed()
    h_hat, _, _ = sae.sae_forward(h, W_e, b_e, W_d, b_d, 0.0)
    loss = (h - h_hat).square().sum(-1)[:, 0][order]  # (exact, loss 1, loss 4)
    assert torch.allclose(loss, torch.tensor([0.0, 1.0, 4.0]), atol=1e-5)
    rules = checks._rule_probabilities()
    without_live = (h - b_d).square().sum(-1)[:, 0][order].double().square()
    assert torch.allclose(rules["loss_without_live_latents"], without_live / without_live.sum(), atol=1e-5)
    f = torch.relu(torch.einsum("bid,isd->bis", h - b_d, W_e) + b_e)
    without_bias = (h - torch.einsum("bis,ids->bid", f, W_d)).square().sum(-1)[:, 0][order].double().square()
    assert torch.allclose(rules["loss_without_decoder_bias"], without_bias / without_bias.sum(), atol=1e-4)


@pytest.mark.parametrize("secret", [1, 2, 3])
def test_exact_copies_have_a_cosine_of_exactly_one(secret):
    with property_seed(secret, "09.test", "p"):
        F, W_d = _checks()._exact_case()
    best = sae.max_cosines(F, W_d)
    assert int((best == 1.0).sum()) == 4 and bool((best <= 1.0).all())
    assert sae.fraction_recovered(F, W_d, 1.0).tolist() == [0.0, 0.0]


def test_calling_the_reference_is_refused_by_the_self_check():
    # The self-check's courtesy (a name the function's code refers to); in grading the library itself is redacted,
    # which tests/test_delegation.py proves for every exercise.
    def uses_the_library(f):
        return sae.dead_latents(f)

    assert_rejected("09.dead_latents", uses_the_library, "implement this yourself")
