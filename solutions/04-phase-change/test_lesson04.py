"""Lesson 4's own tests: what the generic lesson proof (tests/test_lesson_proofs.py) does not already do.

The mistakes live in ``mistakes.py`` and the correct alternatives in ``alternatives.py``; the generic proof
grades all of them.
"""

from __future__ import annotations

import pytest

from autograder.exercises import get_exercise
from autograder.lessons import get_lesson
from autograder.toolkit.testing import grade, messages

LESSON = "04-phase-change"
NAMES = ["configuration_losses", "phase_diagram", "make_grid", "classify", "aggregate_restarts", "n3m2_losses"]
MISTAKES = get_lesson(LESSON).module("mistakes").MISTAKES


def _mistake(name: str, mistake: str):
    return next(m for m in MISTAKES[name] if m.name == mistake).implementation


def test_points_per_exercise():
    assert [get_exercise(f"04.{n}").points for n in NAMES] == [4, 3, 4, 3, 3, 2]


@pytest.mark.parametrize("mistake, failing", [
    ("e_x_squared", ["test_superposition"]),
    ("square_of_the_mean", ["test_superposition"]),
    ("no_importance", ["test_not_represented"]),
    ("bias_square_missing", ["test_not_represented", "test_dedicated"]),
])
def test_each_configuration_is_its_own_property(mistake, failing):
    verdict = grade("04.configuration_losses", _mistake("configuration_losses", mistake))
    assert [p.test for p in verdict.properties if not p.passed] == failing


def test_a_wrong_phase_diagram_gets_its_own_diagnosis_not_a_crash():
    # The old hint called the reference with swapped arguments, which raised "density must lie in [0, 1]".
    for name in ("argmax", "axes_swapped", "losses_without_bias"):
        mistake = next(m for m in MISTAKES["phase_diagram"] if m.name == name)
        text = messages(grade("04.phase_diagram", mistake.implementation))
        assert "could not run" not in text and "must lie in" not in text and mistake.keyword in text, text


@pytest.mark.parametrize("mistake", ["at_the_threshold", "squared", "fixed_threshold"])
def test_threshold_mistakes_are_caught_by_the_ties_not_by_luck(mistake):
    # The weights at, just above and between the thresholds are built from the drawn threshold: these
    # mistakes fail the ties property under every secret.
    for secret in (1, 2, 3):
        verdict = grade("04.classify", _mistake("classify", mistake), secret=secret)
        failed = [p.test for p in verdict.properties if not p.passed]
        assert "test_threshold_argument_and_ties" in failed, verdict.report()


def test_drop_worst_zero_is_not_an_empty_slice():
    text = messages(grade("04.aggregate_restarts", _mistake("aggregate_restarts", "slice_minus_zero")))
    assert "[..., :-0]" in text
