"""nbgrader preprocessors that make ``nbgrader autograde`` grade through the trusted grader.

``configure()`` (:mod:`autograder.nbgrader_settings`) puts them in place of
nbgrader's own steps:

* :class:`RebuildFromRelease` runs first while a submission is sanitised: the
  notebook is rebuilt from the release (:mod:`autograder.rebuild`), so no
  metadata a student edited (flags, points, schema versions, duplicate or
  unknown grade ids) reaches nbgrader's other steps, and locked cells are the
  instructor's.
* :class:`SandboxedGrade` replaces nbgrader's ``Execute``: no kernel runs the
  student's notebook. The code runs in the sandboxed worker and the checks in
  this (the instructor's) process (:func:`autograder.grader.grade_notebook`);
  each check cell's output is then written from the trusted verdict (its
  text, and the score as the cell's result, which nbgrader's ``SaveAutoGrades``
  reads). Feedback and gradebook so always agree.

A student or exercise that could not be graded normally (crash, time-out,
reference used, name missing) is logged with student, exercise and reason,
and appended to ``grading-report.jsonl`` in the course directory.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Unicode

from .grader import grade_notebook, is_check_cell
from .rebuild import rebuild
from .sandbox import sandbox_available

__all__ = ["RebuildFromRelease", "SandboxedGrade", "UNSANDBOXED_HELP"]

UNSANDBOXED_HELP = (
    "refusing to grade without a sandbox: bubblewrap is not available on this machine (Linux: "
    "`apt-get install bubblewrap`). To grade anyway, with students' code running unsandboxed as your user, "
    "pass --SandboxedGrade.allow_unsandboxed=True."
)


def _assignment_file(root: str, folder: str, resources: dict[str, Any]) -> Path:
    info = resources["nbgrader"]
    return Path(root) / folder / info["assignment"] / f"{info['notebook']}.ipynb"


class RebuildFromRelease(NbGraderPreprocessor):
    """Replace the submitted notebook by one rebuilt from the release (see :mod:`autograder.rebuild`)."""

    course_root = Unicode("", help="The course directory (holds release/).").tag(config=True)
    release_directory = Unicode("release").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        path = _assignment_file(self.course_root, self.release_directory, resources)
        if not path.is_file():
            raise FileNotFoundError(f"no release notebook at {path}: run `nbgrader generate_assignment` first")
        rebuilt = rebuild(nb, nbformat.read(path, as_version=4))
        student = resources["nbgrader"]["student"]
        for change in rebuilt.changes:
            self.log.info("%s: %s", student, change)
        resources.setdefault("supercourse", {})["changes"] = rebuilt.changes
        resources["supercourse"]["given"] = rebuilt.given
        return rebuilt.notebook, resources


class SandboxedGrade(NbGraderPreprocessor):
    """Grade the notebook in the trusted grader and write every check cell's output from its verdict."""

    course_root = Unicode("", help="The course directory (holds source/ and the grading report).").tag(config=True)
    source_directory = Unicode("source").tag(config=True)
    allow_unsandboxed = Bool(False, help="Grade even where bubblewrap is not available (students' code then runs unsandboxed).").tag(config=True)
    cell_timeout = Unicode("60", help="Seconds each notebook cell may run in the worker.").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        sandboxed = sandbox_available()
        if not sandboxed and not self.allow_unsandboxed:
            raise RuntimeError(UNSANDBOXED_HELP)
        info = resources["nbgrader"]
        lesson, student = info["assignment"], info["student"]
        files = Path(self.course_root) / self.source_directory / lesson
        given = resources.get("supercourse", {}).get("given", frozenset())
        result = grade_notebook(nb, lesson, files=files, sandbox=sandboxed, cell_timeout=float(self.cell_timeout),
                                given=given)
        by_check = {f"check_{v.id.split('.', 1)[1]}": v for v in result.verdicts}
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            cell.outputs = []
            if is_check_cell(cell):
                verdict = by_check.get(cell.metadata["nbgrader"].get("grade_id", ""))
                if verdict is None:
                    continue
                cell.outputs = [
                    nbformat.v4.new_output("stream", name="stdout", text=verdict.report() + "\n"),
                    nbformat.v4.new_output("execute_result", data={"text/plain": f"{verdict.points:g}"}, execution_count=index),
                ]
                continue
            run = result.cells.get(index)
            if run is None:
                continue
            if run.stdout:
                cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text=run.stdout))
            if run.error:
                name, _, value = run.error.partition(": ")
                cell.outputs.append(nbformat.v4.new_output("error", ename=name, evalue=value, traceback=[run.error]))
        self._report(student, lesson, result)
        return nb, resources

    def _report(self, student: str, lesson: str, result: Any) -> None:
        if not result.sandboxed:
            self.log.warning("%s/%s was graded WITHOUT a sandbox (allow_unsandboxed)", student, lesson)
        rows = []
        for exercise, why in result.faults:
            self.log.warning("could not grade %s, %s, %s: %s", student, lesson, exercise, why)
            rows.append({"student": student, "lesson": lesson, "exercise": exercise, "reason": why})
        self.log.info("graded %s/%s: %g/%g in %.1f s", student, lesson, result.score, result.max_score, result.seconds)
        if rows and self.course_root:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
            with open(Path(self.course_root) / "grading-report.jsonl", "a", encoding="utf-8") as fh:
                for row in rows:
                    fh.write(json.dumps({"time": stamp, **row}) + "\n")
