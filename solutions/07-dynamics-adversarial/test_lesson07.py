"""Lesson 7's own tests: what the generic proof (tests/test_lesson_proofs.py) does not already hold.

The generic proof grades the solution, the stub, every mistake of ``mistakes.py`` and every alternative of
``alternatives.py``; here: the points, and a learner calling the library function it is asked to write.
"""

from __future__ import annotations

from autograder.exercises import get_exercise
from autograder.toolkit.testing import assert_rejected
from supercourse import adversarial

NAMES = ["dimensionality_snapshots", "find_jumps", "attack_perturbations", "vulnerability"]


def test_points_per_exercise():
    assert [get_exercise(f"07.{n}").points for n in NAMES] == [3, 4, 4, 4]


def test_calling_the_reference_is_refused_by_the_self_check():
    # The self-check's courtesy (a name the function's code refers to); in grading the library itself is redacted,
    # which tests/test_delegation.py proves for every exercise.
    def uses_the_library(W, x, fraction=0.1):
        return adversarial.attack_perturbations(W, x, fraction)

    assert_rejected("07.attack_perturbations", uses_the_library, "implement this yourself")
