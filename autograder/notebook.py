"""``supercourse check``: grade a learner's notebook exactly as the instructor's autograde does.

The notebook is rebuilt from the lesson's release (``lessons/<lesson>/``) and
graded by :func:`autograder.grader.grade_notebook`: the learner's code runs in
a sandboxed worker process (or, where no sandbox is available, out of process
and the report says so), and the checks run in this process on inputs drawn
from a fresh secret. So a deleted or edited check cell changes nothing, a cell
that raises does not stop the rest, and a crash or hang costs only what it
stopped.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from .grader import GradeResult, grade_notebook, is_check_cell
from .lessons import get_lesson, lesson_of
from .limits import DEFAULT_LIMITS, GradingLimits
from .rebuild import rebuild

__all__ = ["check_notebook", "is_check_cell", "release_notebook"]


def release_notebook(lesson: str) -> tuple[nbformat.NotebookNode, Path]:
    """The lesson's release notebook (what learners were handed) and its folder."""
    path = get_lesson(lesson).release
    if not path.is_file():
        raise FileNotFoundError(f"the release of lesson {lesson} is missing ({path}); run `supercourse lessons build`")
    return nbformat.read(path, as_version=4), path.parent


def check_notebook(path: str | Path, limits: GradingLimits = DEFAULT_LIMITS, lesson: str | None = None,
                   sandbox: bool | None = None, secret: int | None = None) -> GradeResult:
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
    result = grade_notebook(rebuilt.notebook, slug, files=folder, sandbox=sandbox, limits=limits,
                            given=rebuilt.given, secret=secret)
    result.notebook = str(path)
    result.changes = rebuilt.changes
    return result
