"""Helpers for tests that need a lesson's reference solutions."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def solution_path(lesson: str) -> Path:
    """``solutions/<lesson>/<lesson>.ipynb``."""
    from autograder.lessons import get_lesson

    return get_lesson(lesson).notebook


def lesson_path(lesson: str) -> Path:
    """``lessons/<lesson>/<lesson>.ipynb``."""
    from autograder.lessons import get_lesson

    return get_lesson(lesson).release


def is_solution_cell(cell: Any) -> bool:
    return cell.cell_type == "code" and bool(cell.metadata.get("nbgrader", {}).get("solution"))


@lru_cache(maxsize=None)
def _namespace(lesson: str, kind: str = "solution") -> dict[str, Any]:
    path = solution_path(lesson) if kind == "solution" else lesson_path(lesson)
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    ns: dict[str, Any] = {"__name__": f"{kind}_{lesson.replace('-', '_')}"}
    # The setup cell (first code cell) and every solution cell: they only define things.
    for cell in [code[0]] + [c for c in code[1:] if is_solution_cell(c)]:
        exec(compile(cell.source, f"<{lesson} {kind}>", "exec"), ns)
    return ns


def solution_namespace(lesson: str) -> dict[str, Any]:
    """The names the solution notebook's setup and solution cells define (executed once)."""
    return _namespace(lesson, "solution")


def lesson_namespace(lesson: str) -> dict[str, Any]:
    """The same for the learner's notebook as released: every exercise is its stub."""
    return _namespace(lesson, "lesson")




def assert_rejected(exercise_id: str, impl: Any, keyword: str) -> None:
    """A wrong implementation loses points, and the messages name its mistake (``keyword``)."""
    from autograder.toolkit.testing import assert_rejected as rejected

    rejected(exercise_id, impl, keyword)
