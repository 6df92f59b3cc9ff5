"""Simulated students: submissions made from a lesson's release and solution notebooks."""

from __future__ import annotations

from pathlib import Path

import nbformat

from autograder.exercises import Exercise
from autograder.notebook import is_check_cell


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _without_markers(source: str) -> str:
    return "\n".join(l for l in source.splitlines() if l.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))


def make_submission(
    release_nb: Path,
    solution_nb: Path,
    solved: set[str],
    extra: dict[str, str] | None = None,
    delete_checks: set[str] = frozenset(),
):
    """A student's notebook: the release with the solution cells named in ``solved`` filled in.

    ``extra`` appends code to a solution cell (by grade_id), e.g. a redefinition
    that raises or never returns; ``delete_checks`` removes check cells by grade_id.
    """
    nb = nbformat.read(release_nb, as_version=4)
    solution = {_grade_id(c): c for c in nbformat.read(solution_nb, as_version=4).cells if _grade_id(c)}
    extra = extra or {}
    cells = []
    for cell in nb.cells:
        gid = _grade_id(cell)
        if gid in solved:
            cell.source = _without_markers(solution[gid].source)
        if gid in extra:
            cell.source += "\n\n" + extra[gid]
        if gid in delete_checks and is_check_cell(cell):
            continue
        cells.append(cell)
    nb.cells = cells
    return nb


def raising(ex: Exercise) -> str:
    """Code that replaces an exercise's implementation with one that raises."""
    return f"def {ex.function}(*args, **kwargs):\n    raise RuntimeError('oops, a bug')"


def looping(ex: Exercise) -> str:
    """Code that replaces an exercise's implementation with one that never returns.

    It waits rather than spins: the time limit ends both the same way (an interrupt in the worker, a kill from
    outside if that is ignored), and a spinning loop burnt a whole core for each limit, about 100 CPU-seconds
    over the workflow's twelve lessons, taken from the tests running beside it. Spinning loops that ignore
    every signal are graded in the attack catalogue (``tests/attacks.py``: the faults and time groups).
    """
    return f"def {ex.function}(*args, **kwargs):\n    import time\n    while True:\n        time.sleep(0.05)"
