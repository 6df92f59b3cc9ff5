"""Redaction covers every path to a graded answer (issue: delegation through another module).

For each lesson, the library's public functions and methods are called on each exercise's inputs, inside
the lesson's grading library (what a learner's code can reach while it is graded): none may give the
solution's answer. On the full library the same search finds the references themselves, so it can fail.
"""

from __future__ import annotations

import pytest

from autograder.lessons import all_lessons
from delegation import uncovered
from lesson_tools import solution_namespace

SECRET = 0xDE1E_6A7E
SLUGS = [lesson.slug for lesson in all_lessons() if lesson.has("checks")]


@pytest.mark.parametrize("slug", SLUGS)
def test_no_library_path_answers_an_exercise_while_it_is_graded(slug):
    found = {k: v for k, v in uncovered(slug, solution_namespace(slug), SECRET).items() if v}
    assert not found, f"add these to the exercises' reference=: {found}"


def test_the_search_finds_what_redaction_hides():
    found = uncovered("03-measuring-superposition", solution_namespace("03-measuring-superposition"), SECRET,
                      redact=False)
    assert "supercourse.metrics.feature_norms" in found["03.feature_norms"]
    assert "supercourse.metrics.gram" in found["03.gram"]
