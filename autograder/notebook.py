"""``supercourse check``: grade a learner's notebook headless, the way nbgrader would.

The notebook runs top to bottom in a fresh kernel in grading mode (lessons
shrink their experiments, see :mod:`supercourse.course`), with its own check
cells left out; then one appended cell runs every exercise of the lesson
against whatever the learner's notebook defined under the exercise's name.
So a deleted or edited check cell changes nothing, a cell that raises does
not stop the rest, and a hung cell is interrupted after ``cell_timeout``.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError

from .exercises import Exercise, lesson_of, lessons
from .nbgrader_settings import CELL_TIMEOUT, KERNEL

__all__ = ["NotebookReport", "check_notebook", "is_check_cell"]


@dataclass
class NotebookReport:
    """The grade of one notebook: one row per exercise, plus what went wrong while running it."""

    notebook: str
    lesson: str
    exercises: list[dict[str, Any]]
    cell_errors: list[str] = field(default_factory=list)

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
        }


def is_check_cell(cell: Any) -> bool:
    """An nbgrader autograder test cell (graded, not a solution)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


_GRADE_CELL = """\
import json as _json
from autograder.runner import run_exercise as _run_exercise
for _id, _name in {pairs!r}:
    _verdict = _run_exercise(_id, globals().get(_name))
    with open({out!r}, "a", encoding="utf-8") as _fh:
        _fh.write(_json.dumps(_verdict.to_json()) + "\\n")
"""


def _row(ex: Exercise, found: dict[str, dict[str, Any]], reason: str) -> dict[str, Any]:
    got = found.get(ex.id)
    if got is None:
        return {"name": ex.id, "title": ex.title, "points": 0.0, "max_points": ex.points, "passed": False, "message": reason}
    return {
        "name": ex.id,
        "title": ex.title,
        "points": got["points"],
        "max_points": got["max_points"],
        "passed": got["passed"],
        "message": got["message"],
    }


def check_notebook(path: str | Path, cell_timeout: int = CELL_TIMEOUT, lesson: str | None = None) -> NotebookReport:
    """Execute ``path`` headless and grade every exercise of its lesson."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no notebook at {path}")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # nbformat raises several kinds for a damaged file
        raise ValueError(f"{path} is not a readable notebook: {err}") from err
    slug = lesson or lesson_of(path.name)
    exercises = lessons()[slug]
    kept = [(i + 1, c) for i, c in enumerate(nb.cells) if not is_check_cell(c)]
    nb.cells = [c for _, c in kept]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.jsonl"
        pairs = [(ex.id, ex.function) for ex in exercises]
        nb.cells.append(nbformat.v4.new_code_cell(_GRADE_CELL.format(pairs=pairs, out=str(out))))
        client = NotebookClient(
            nb,
            timeout=cell_timeout,
            kernel_name=KERNEL,
            allow_errors=True,
            interrupt_on_timeout=True,
            # The kernel's own start-up chatter (e.g. its TCP warning) is not the learner's output.
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
            resources={"metadata": {"path": str(path.parent.resolve())}},
        )
        saved = os.environ.get("SUPERCOURSE_GRADING")
        os.environ["SUPERCOURSE_GRADING"] = "1"
        reason = "the check did not run: the notebook's kernel stopped before grading"
        try:
            client.execute()
        except DeadKernelError as err:
            reason = f"the check did not run: the kernel died ({err})"
        except CellExecutionError as err:  # only with allow_errors=False; kept for safety
            reason = f"the check did not run: {err}"
        finally:
            if saved is None:
                os.environ.pop("SUPERCOURSE_GRADING", None)
            else:
                os.environ["SUPERCOURSE_GRADING"] = saved
        found = {}
        if out.exists():
            for line in out.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                found[row["id"]] = row
    errors = []
    for number, cell in kept:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                errors.append(f"cell {number}: {o.get('ename')}: {o.get('evalue', '')}"[:200])
    return NotebookReport(str(path), slug, [_row(ex, found, reason) for ex in exercises], errors)
