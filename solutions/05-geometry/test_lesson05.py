"""Lesson 5's own tests: what the generic lesson proof (tests/test_lesson_proofs.py) does not already do.

The mistakes live in ``mistakes.py`` and the correct alternatives in ``alternatives.py``; the generic proof
grades all of them.
"""

from __future__ import annotations

from autograder.exercises import get_exercise
from autograder.lessons import get_lesson
from autograder.toolkit.testing import grade, messages

LESSON = "05-geometry"
NAMES = ["dimensions_per_feature", "feature_dimensionality", "tegum_factors", "name_polytopes"]
MISTAKES = get_lesson(LESSON).module("mistakes").MISTAKES


def _mistake(name: str, mistake: str):
    return next(m for m in MISTAKES[name] if m.name == mistake).implementation


def test_points_per_exercise():
    assert [get_exercise(f"05.{n}").points for n in NAMES] == [3, 4, 5, 4]


def test_dot_products_are_told_to_use_cosines_not_the_overlap_argument():
    text = messages(grade("05.tegum_factors", _mistake("tegum_factors", "dot_products")))
    assert "dot products" in text and "use the overlap argument" not in text.lower()


def test_a_coarse_zero_column_guard_fails_only_on_short_columns():
    verdict = grade("05.feature_dimensionality", _mistake("feature_dimensionality", "coarse_guard"))
    assert [p.test for p in verdict.properties if not p.passed] == ["test_feature_dimensionality_edges"], verdict.report()
    assert "short but non-zero" in messages(verdict)
