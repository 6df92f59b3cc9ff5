"""Lesson 6's own tests: what the generic proof (tests/test_lesson_proofs.py) does not already hold.

The generic proof grades the solution, the stub, every mistake of ``mistakes.py`` and every alternative of
``alternatives.py``; here: the points, and messages that must diagnose rather than only show numbers.
"""

from __future__ import annotations

import torch

from autograder.exercises import get_exercise
from autograder.lessons import get_lesson
from autograder.toolkit.testing import grade

LESSON = "06-correlated-features"
NAMES = ["correlated_sets", "anticorrelated_sets", "partner_cosines", "collapsed_sets"]
SECRET = 0x06_C0_22_24


def _mistake(name: str, mistake: str):
    table = get_lesson(LESSON).module("mistakes").MISTAKES[name]
    return next(m for m in table if m.name == mistake).implementation


def test_points_per_exercise():
    assert [get_exercise(f"06.{n}").points for n in NAMES] == [4, 4, 3, 3]


def test_references_are_declared():
    assert "supercourse.data.correlated_sparse" in get_exercise("06.correlated_sets").reference
    assert all(get_exercise(f"06.{n}").reference for n in NAMES)


def test_partner_cosines_over_the_wrong_axis_is_diagnosed_as_the_axis():
    # issue 22: the learner got numbers only, under a property called "Inputs (float64 input)"
    verdict = grade("06.partner_cosines", _mistake("partner_cosines", "rows_normalised"), secret=SECRET)
    failed = {p.test: p.message for p in verdict.properties if not p.passed}
    inputs = failed["test_partner_float64_and_parameter"]
    assert "wrong axis" in inputs and "dim=1" in inputs, inputs
    assert "dtype is not the cause" in inputs, inputs
    assert "wrong axis" in failed["test_partner_values"], failed


def test_a_float32_only_implementation_is_told_the_dtype_is_the_cause():
    def float32_only(W, set_size=2):
        W = W.detach().float()
        U = W / W.norm(dim=1, keepdim=True).clamp_min(1e-12)
        C = U.mT @ U
        K, n = C.shape[0], C.shape[1]
        s = n // set_size
        off = ~torch.eye(set_size, dtype=torch.bool)
        blocks = torch.diagonal(C.reshape(K, s, set_size, s, set_size), dim1=1, dim2=3).permute(0, 3, 1, 2)
        return blocks[..., off].mean(-1)

    verdict = grade("06.partner_cosines", float32_only, secret=SECRET)
    failed = {p.test: p.message for p in verdict.properties if not p.passed}
    assert list(failed) == ["test_partner_float64_and_parameter"], failed
    assert "dtype" in failed["test_partner_float64_and_parameter"]


def test_the_anticorrelated_density_message_reads_as_a_sentence():
    verdict = grade("06.anticorrelated_sets", _mistake("anticorrelated_sets", "set_active_with_p"), secret=SECRET)
    text = " ".join(p.message for p in verdict.properties if not p.passed)
    assert "which feature uniform" not in text
    assert "chosen uniformly from the set" in text, text
