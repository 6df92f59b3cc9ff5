"""Lesson 3's own tests: what the generic lesson proof (tests/test_lesson_proofs.py) does not already do.

The mistakes live in ``mistakes.py`` and the correct alternatives in ``alternatives.py``; the generic proof
grades all of them.
"""

from __future__ import annotations

import pytest

from autograder.exercises import get_exercise
from autograder.lessons import get_lesson
from autograder.toolkit.testing import grade, messages
from lesson_tools import solution_namespace

LESSON = "03-measuring-superposition"
NAMES = ["feature_norms", "superposition", "gram", "feature_bars", "features_per_density"]
MISTAKES = get_lesson(LESSON).module("mistakes").MISTAKES


@pytest.fixture(scope="module")
def ns():
    return solution_namespace(LESSON)


def _mistake(name: str, mistake: str):
    return next(m for m in MISTAKES[name] if m.name == mistake).implementation


def test_points_per_exercise():
    assert [get_exercise(f"03.{n}").points for n in NAMES] == [2, 4, 2, 4, 2]


def test_a_superposition_mistake_costs_points_only_in_superposition(ns):
    # feature_bars and features_per_density take the norms and superpositions: graded on their own.
    assert not grade("03.superposition", _mistake("superposition", "unnormalised")).passed
    for name in ("feature_bars", "features_per_density"):
        assert grade(f"03.{name}", ns[name]).passed


@pytest.mark.parametrize("name", ["feature_norms", "superposition", "gram", "features_per_density"])
def test_a_squeeze_is_named_on_one_instance_or_one_feature(name):
    verdict = grade(f"03.{name}", _mistake(name, "squeezed"))
    failed = [p.test for p in verdict.properties if not p.passed]
    assert any(t.endswith("_shape") for t in failed), verdict.report()
    assert "squeeze()" in messages(verdict)


def test_a_coarse_zero_column_guard_fails_only_on_short_columns():
    verdict = grade("03.superposition", _mistake("superposition", "coarse_guard"))
    assert [p.test for p in verdict.properties if not p.passed] == ["test_superposition_edges"], verdict.report()
    assert "short but non-zero" in messages(verdict)


def test_ties_and_the_threshold_argument_cost_points_in_values_or_edges():
    for mistake in ("at_or_above", "fixed_threshold", "squared"):
        verdict = grade("03.features_per_density", _mistake("features_per_density", mistake))
        assert not verdict.passed and all(p.passed for p in verdict.properties if p.test == "test_counts_shape")
