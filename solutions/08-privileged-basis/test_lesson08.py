"""Lesson 8's own tests: what the generic proof (tests/test_lesson_proofs.py) does not already hold.

The generic proof grades the solution, the stub, every mistake of ``mistakes.py`` and every alternative of
``alternatives.py``, the generic mutants (NaN, inf, an argument changed in place, a detached answer) and the
replay of recorded answers; here: the points, the hand-built inputs (drawn from the secret, with the structure
and the exact boundaries they promise), and messages that diagnose.
"""

from __future__ import annotations

import pytest
import torch

from autograder.exercises import get_exercise, lessons
from autograder.lessons import get_lesson
from autograder.toolkit.randomness import property_seed
from autograder.toolkit.testing import assert_rejected, grade
from supercourse import neurons

LESSON = "08-privileged-basis"
NAMES = ["neuron_forward", "neuron_readout", "count_neurons", "abs_forward"]
SECRET = 0x08_C0_22_24


def _checks():
    return get_lesson(LESSON).module("checks")


def _mistake(name: str, mistake: str):
    table = get_lesson(LESSON).module("mistakes").MISTAKES[name]
    return next(m for m in table if m.name == mistake).implementation


def test_points_per_exercise():
    assert [get_exercise(f"08.{n}").points for n in NAMES] == [4, 4, 4, 4]


def test_forward_passes_are_declared_differentiable_and_nothing_may_change_its_arguments():
    for ex in lessons()[LESSON]:
        assert ex.differentiable == (ex.name in ("neuron_forward", "abs_forward")), ex.id
        assert ex.modifies == (), ex.id
        # the lesson's module, and the hand-written gradients that compute the same forward pass (issue 21)
        assert ex.reference and all(r.startswith(("supercourse.neurons.", "supercourse.analytic.")) for r in ex.reference), ex.id
        assert any(r.startswith("supercourse.neurons.") for r in ex.reference), ex.id


@pytest.mark.parametrize("secret", [1, 2, 3])
def test_hand_built_inputs_follow_the_secret_and_keep_their_structure(secret):
    checks = _checks()
    with property_seed(secret, "08.test", "p"):
        W, b, x = checks._hidden_relu_case()
        W1, W2, b1, x1 = checks._abs_by_hand()
        readout = checks._readout_W()
    with property_seed(secret + 100, "08.test", "p"):
        other = checks._hidden_relu_case()[0]
    assert not torch.equal(W, other)
    # every instance has a neuron with only a negative weight, on a feature nothing else reads
    for k in range(W.shape[0]):
        silent = [j for j in range(W.shape[1]) if (W[k, j] < 0).any() and not (W[k, j] > 0).any()]
        assert len(silent) == 1
    assert bool((x >= 0.2).all())
    # the hand-built |x| network computes |x| (up to float rounding)
    assert torch.allclose(neurons.abs_forward(W1, W2, b1, x1), x1.abs(), atol=1e-6)
    # the readout's neurons: one per instance with no positive weight, no ties among the top weights
    assert int((neurons.excitatory(readout).amax(-1) == 0).sum()) == 2
    top2 = neurons.excitatory(readout).topk(2, dim=-1).values
    alive = top2[..., 0] > 0
    assert bool((top2[..., 0] > top2[..., 1])[alive].all())


@pytest.mark.parametrize("secret", [1, 2, 3, 4])
def test_count_boundaries_are_exact(secret):
    checks = _checks()
    with property_seed(secret, "08.test", "p"):
        d = float(torch.tensor(0.15 + 0.3 * torch.rand(()).item()))
        W = checks._boundary_W(d)
    A = W.clamp(min=0)
    assert bool((A.norm(dim=-1) == d).sum(-1).eq(1).all()), "one neuron per instance has a norm of exactly dead_norm"
    c = neurons.count_neurons(W, mono_share=1.0, dead_norm=d)
    assert c.monosemantic.tolist() == [3, 3] and c.polysemantic.tolist() == [1, 1] and c.dead.tolist() == [1, 1]
    above = float(torch.nextafter(torch.tensor(d), torch.tensor(1.0)))  # the next float32 above d
    strict = neurons.count_neurons(W, mono_share=1.0, dead_norm=above)
    assert strict.dead.tolist() == [2, 2]


def test_no_hidden_relu_is_named_in_the_hand_built_property():
    verdict = grade("08.neuron_forward", _mistake("neuron_forward", "no_hidden_relu"), secret=SECRET)
    failed = {p.test: p.message for p in verdict.properties if not p.passed}
    assert "hidden ReLU" in failed["test_neuron_forward_hidden_relu"], failed
    assert "test_neuron_forward_gradients" not in failed, "a wrong value must not also cost the gradient property"


def test_a_forward_pass_under_no_grad_loses_only_the_gradient_points():
    verdict = grade("08.abs_forward", _mistake("abs_forward", "no_grad"), secret=SECRET)
    failed = {p.test: p.message for p in verdict.properties if not p.passed}
    assert list(failed) == ["test_abs_forward_gradients"], failed
    assert verdict.points == verdict.max_points - 0.5


def test_strict_boundaries_are_diagnosed():
    verdict = grade("08.count_neurons", _mistake("count_neurons", "strict_share"), secret=SECRET)
    text = " ".join(p.message for p in verdict.properties if not p.passed)
    assert "share >= mono_share" in text and "exactly" in text, text


def test_calling_the_reference_is_refused_by_the_self_check():
    # The self-check's courtesy (a name the function's code refers to); in grading the library itself is redacted,
    # which tests/test_delegation.py proves for every exercise.
    def uses_the_library(W, b, x):
        return neurons.neuron_forward(W, b, x)

    assert_rejected("08.neuron_forward", uses_the_library, "implement this yourself")
