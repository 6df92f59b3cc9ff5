"""For the tests of the checks: prove that a mistake loses points, and that correct code keeps them.

Both run the exercise's checks exactly as the self-check does (the learner's
function served over the in-process loopback channel, with the same encoding
as the sandboxed worker), so a check that inspects the submission, or relies on
object identity, fails here as it would in grading.
"""

from __future__ import annotations

from typing import Any, Callable

from .mistakes import Mistake

__all__ = ["grade", "assert_rejected", "assert_full_marks", "messages"]


def grade(exercise_id: str, implementation: Callable[..., Any]):
    """The :class:`autograder.runner.Verdict` of ``implementation`` on ``exercise_id``'s checks."""
    from autograder.runner import self_check

    return self_check(exercise_id, implementation)


def messages(verdict: Any) -> str:
    """Every failed property's message of a verdict, joined."""
    return " ".join(p.message for p in verdict.properties if not p.passed)


def assert_rejected(exercise_id: str, mistake: Mistake | Callable[..., Any], keyword: str | None = None) -> None:
    """A wrong implementation loses points, and the messages contain its keyword."""
    impl, key = (mistake.implementation, mistake.keyword) if isinstance(mistake, Mistake) else (mistake, keyword)
    verdict = grade(exercise_id, impl)
    assert verdict.points < verdict.max_points, f"{exercise_id}: the wrong implementation scored full marks"
    text = messages(verdict)
    assert key is None or key.lower() in text.lower(), f"{exercise_id}: expected {key!r} in the messages, got: {text}"


def assert_full_marks(exercise_id: str, implementation: Callable[..., Any]) -> None:
    """A correct implementation keeps every point."""
    verdict = grade(exercise_id, implementation)
    assert verdict.passed, f"{exercise_id}: a correct implementation lost points:\n{verdict.report()}"
