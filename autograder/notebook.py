"""``supercourse check``: grade a learner's notebook exactly as the instructor's autograde does.

The notebook is rebuilt from the lesson's release (``lessons/<lesson>/``) and
graded by :func:`autograder.grader.grade_notebook`: the learner's code runs in
a sandboxed worker process (or, where no sandbox is available, out of process
and the report says so), and the checks run in this process. So a deleted or
edited check cell changes nothing, a cell that raises does not stop the rest,
and a crash or hang costs only what it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from .exercises import lesson_of
from .grader import grade_notebook, is_check_cell
from .nbgrader_settings import CELL_TIMEOUT, REPO_ROOT
from .rebuild import rebuild

__all__ = ["NotebookReport", "check_notebook", "is_check_cell", "release_notebook"]


@dataclass
class NotebookReport:
    """The grade of one notebook: one row per exercise, plus what went wrong while running it."""

    notebook: str
    lesson: str
    exercises: list[dict[str, Any]]
    cell_errors: list[str] = field(default_factory=list)
    sandboxed: bool = True
    changes: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        return float(sum(e["points"] for e in self.exercises))

    @property
    def max_score(self) -> float:
        return float(sum(e["max_points"] for e in self.exercises))

    @property
    def passed(self) -> bool:
        return all(e["passed"] for e in self.exercises)

    def to_json(self) -> dict[str, Any]:
        return {
            "notebook": self.notebook,
            "lesson": self.lesson,
            "exercises": self.exercises,
            "score": self.score,
            "max_score": self.max_score,
            "cell_errors": self.cell_errors,
            "sandboxed": self.sandboxed,
            "changes": self.changes,
        }


def release_notebook(lesson: str) -> tuple[nbformat.NotebookNode, Path]:
    """The lesson's release notebook (what learners were handed) and its folder."""
    folder = REPO_ROOT / "lessons" / lesson
    path = folder / f"{lesson}.ipynb"
    if not path.is_file():
        raise FileNotFoundError(f"the release of lesson {lesson} is missing ({path}); run `supercourse lessons build`")
    return nbformat.read(path, as_version=4), folder


def check_notebook(path: str | Path, cell_timeout: int = CELL_TIMEOUT, lesson: str | None = None,
                   sandbox: bool | None = None) -> NotebookReport:
    """Grade every exercise of ``path``'s lesson; ``sandbox=None`` uses the sandbox where available."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no notebook at {path}")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # nbformat raises several kinds for a damaged file
        raise ValueError(f"{path} is not a readable notebook: {err}") from err
    slug = lesson or lesson_of(path.name)
    release, folder = release_notebook(slug)
    rebuilt = rebuild(nb, release)
    result = grade_notebook(rebuilt.notebook, slug, files=folder, sandbox=sandbox, cell_timeout=cell_timeout,
                            given=rebuilt.given)
    rows = [
        {"name": v.id, "title": v.title, "points": v.points, "max_points": v.max_points, "passed": v.passed,
         "message": v.message, "fault": v.fault, "properties": v.to_json()["properties"]}
        for v in result.verdicts
    ]
    errors = [f"cell {i + 1}: {run.error}"[:200] for i, run in sorted(result.cells.items()) if run.error]
    return NotebookReport(str(path), slug, rows, errors, result.sandboxed, rebuilt.changes)
