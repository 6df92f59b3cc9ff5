"""nbgrader preprocessors that make ``nbgrader autograde`` grade through the trusted grader.

``configure()`` (:mod:`autograder.nbgrader_settings`) puts them in place of
nbgrader's own steps:

* :func:`preflight` runs before the first submission is touched: it starts
  one grading worker. Without a working sandbox (or with a worker that cannot
  start) grading stops there, with why and what to do, before any grade is
  written: a grader's fault is never a student's zero.
* :class:`RebuildFromRelease` runs first while a submission is sanitised: the
  notebook is rebuilt from the release (:mod:`autograder.rebuild`), so no
  metadata a student edited (flags, points, schema versions, duplicate or
  unknown grade ids) reaches nbgrader's other steps, locked cells are the
  instructor's, and the learner's markdown is made safe to render. Files the
  student put beside the notebook are not kept for formgrader to serve.
* :class:`SandboxedGrade` replaces nbgrader's ``Execute``: no kernel runs the
  student's notebook. The code runs in the sandboxed worker and the checks in
  this (the instructor's) process (:func:`autograder.grader.grade_notebook`);
  each check cell's output is then written from the trusted verdict (the
  verdict as HTML, and the score as the cell's value, which nbgrader's
  ``SaveAutoGrades`` reads). Feedback and gradebook so always agree. Every
  limit of :class:`~autograder.limits.GradingLimits` is a trait of the same
  name (``--SandboxedGrade.notebook_seconds=300``).

Every graded submission is appended to ``grading-report.jsonl`` in the course
directory (score, the secret its check inputs were drawn from, time, restarts),
and so is every exercise that could not be graded normally (crash, time-out,
reference used, name missing), with student, exercise and reason.
"""

from __future__ import annotations

import json
import time
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
from nbformat import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Float, Integer, Unicode

from .limits import DEFAULT_LIMITS, GradingLimits
from .nbgrader_settings import COURSE_ID
from .rebuild import rebuild, release_given
from .render import verdict_html

if TYPE_CHECKING:
    from .grader import GradeResult

# The grader (and torch, 1-2 s to import) is imported where a notebook is graded: the course's config loads
# this module for every nbgrader command, and generate_assignment, generate_feedback and export need none of it.

__all__ = ["RebuildFromRelease", "SandboxedGrade", "UNSANDBOXED_HELP", "preflight", "REPORT"]

REPORT = "grading-report.jsonl"

UNSANDBOXED_HELP = (
    "supercourse: refusing to grade without a sandbox, and no grade was written: bubblewrap is not available on "
    "this machine (Linux: `apt-get install bubblewrap`). To grade anyway, with students' code running unsandboxed "
    "as your user, pass --SandboxedGrade.allow_unsandboxed=True."
)


def _assignment_file(root: str, folder: str, resources: dict[str, Any]) -> Path:
    info = resources["nbgrader"]
    return Path(root) / folder / info["assignment"] / f"{info['notebook']}.ipynb"


class RebuildFromRelease(NbGraderPreprocessor):
    """Replace the submitted notebook by one rebuilt from the release (see :mod:`autograder.rebuild`)."""

    course_root = Unicode("", help="The course directory (holds release/).").tag(config=True)
    release_directory = Unicode("release").tag(config=True)
    source_directory = Unicode("source").tag(config=True)
    autograded_directory = Unicode("autograded").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        path = _assignment_file(self.course_root, self.release_directory, resources)
        if not path.is_file():
            raise FileNotFoundError(f"no release notebook at {path}: run `nbgrader generate_assignment` first")
        rebuilt = rebuild(nb, nbformat.read(path, as_version=4))
        student = resources["nbgrader"]["student"]
        for change in rebuilt.changes:
            self.log.info("%s: %s", student, change)
        self._drop_student_files(resources)
        resources.setdefault("supercourse", {})["changes"] = rebuilt.changes
        resources["supercourse"]["given"] = rebuilt.given
        return rebuilt.notebook, resources

    def _drop_student_files(self, resources: dict[str, Any]) -> None:
        """Remove what nbgrader copied from the submission beside the notebook: formgrader would serve it
        (an ``.html`` or ``.svg`` there would run in the instructor's browser). The lesson's own files stay."""
        if not self.course_root:
            return
        info = resources["nbgrader"]
        out = Path(self.course_root) / self.autograded_directory / info["student"] / info["assignment"]
        source = Path(self.course_root) / self.source_directory / info["assignment"]
        if not out.is_dir():
            return
        for path in sorted(out.rglob("*"), reverse=True):
            rel = path.relative_to(out)
            if path.is_symlink() or path.is_file():
                if path.suffix == ".ipynb" or ((source / rel).is_file() and not (source / rel).is_symlink()):
                    continue
                path.unlink()
                self.log.info("%s: not keeping %s from the submission", info["student"], rel)
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()


def _limit_traits() -> dict[str, Any]:
    traits = {}
    for f in fields(GradingLimits):
        default = getattr(DEFAULT_LIMITS, f.name)
        kind = Float if isinstance(default, float) else Integer
        traits[f.name] = kind(default, help=f"GradingLimits.{f.name} (see autograder.limits)").tag(config=True)
    return traits


class SandboxedGrade(NbGraderPreprocessor):
    """Grade the notebook in the trusted grader and write every check cell's output from its verdict."""

    course_root = Unicode("", help="The course directory (holds source/, release/ and the grading report).").tag(config=True)
    source_directory = Unicode("source").tag(config=True)
    release_directory = Unicode("release").tag(config=True)
    allow_unsandboxed = Bool(False, help="Grade even where bubblewrap is not available (students' code then runs unsandboxed).").tag(config=True)
    seed = Unicode("", help="The secret to draw check inputs from (the hex `seed` of a grading-report row), to "
                            "reproduce a grade; empty: a fresh secret for every submission.").tag(config=True)
    locals().update(_limit_traits())  # one typed trait per GradingLimits field, e.g. notebook_seconds (a Float)

    def limits(self) -> GradingLimits:
        """The traits as one :class:`GradingLimits`."""
        return GradingLimits(**{f.name: getattr(self, f.name) for f in fields(GradingLimits)})

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        from .grader import grade_notebook
        from .sandbox import GraderFault, sandbox_available
        from .toolkit.randomness import parse_secret

        sandboxed = sandbox_available()
        if not sandboxed and not self.allow_unsandboxed:
            raise SystemExit(UNSANDBOXED_HELP)
        info = resources["nbgrader"]
        lesson, student = info["assignment"], info["student"]
        files = Path(self.course_root) / self.source_directory / lesson
        given = resources.get("supercourse", {}).get("given")
        if given is None:  # nbgrader sanitises and autogrades with separate resources: read the release again
            release = _assignment_file(self.course_root, self.release_directory, resources)
            given = release_given(nbformat.read(release, as_version=4)) if release.is_file() else frozenset()
        try:
            result = grade_notebook(nb, lesson, files=files, sandbox=sandboxed, limits=self.limits(), given=given,
                                    secret=parse_secret(self.seed) if self.seed else None)
        except GraderFault as err:
            self._forget(resources)
            raise SystemExit(f"supercourse: grading stopped at {student}/{lesson}, and no grade was written for "
                             f"it: {err}") from None
        write_outputs(nb, result)
        self._report(student, lesson, result)
        return nb, resources

    def _forget(self, resources: dict[str, Any]) -> None:
        """Remove the submission nbgrader already entered, so a grader's fault leaves no zero behind."""
        info = resources["nbgrader"]
        try:
            from nbgrader.api import Gradebook

            with Gradebook(info["db_url"], COURSE_ID) as gb:
                gb.remove_submission(info["assignment"], info["student"])
        except Exception as err:  # noqa: BLE001 - nothing was entered yet, or the gradebook is away: say so
            self.log.warning("could not remove the submission of %s from the gradebook: %s", info["student"], err)

    def _report(self, student: str, lesson: str, result: GradeResult) -> None:
        if not result.sandboxed:
            self.log.warning("%s/%s was graded WITHOUT a sandbox (allow_unsandboxed)", student, lesson)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        rows = [{"time": stamp, "kind": "graded", "student": student, "lesson": lesson, "score": result.score,
                 "max_score": result.max_score, "seed": result.seed, "seconds": round(result.seconds, 2),
                 "restarts": result.restarts, "workers": result.workers, "sandboxed": result.sandboxed,
                 "confinement": result.confinement}]
        for exercise, why in result.faults:
            self.log.warning("could not grade %s, %s, %s: %s", student, lesson, exercise, why)
            rows.append({"time": stamp, "kind": "fault", "student": student, "lesson": lesson, "exercise": exercise,
                         "reason": why})
        self.log.info("graded %s/%s: %g/%g in %.1f s (seed %s)", student, lesson, result.score, result.max_score,
                      result.seconds, result.seed)
        if self.course_root:
            with open(Path(self.course_root) / REPORT, "a", encoding="utf-8") as fh:
                for row in rows:
                    fh.write(json.dumps(row) + "\n")


def write_outputs(nb: NotebookNode, result: GradeResult) -> None:
    """Every code cell's outputs from the grading: a check cell shows its verdict (HTML) with the score as its
    value; another cell what it printed and its error. The submission's own outputs are never kept."""
    from .grader import is_check_cell

    by_check = {f"check_{v.id.split('.', 1)[1]}": v for v in result.verdicts}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        cell.outputs = []
        if is_check_cell(cell):
            verdict = by_check.get(cell.metadata["nbgrader"].get("grade_id", ""))
            if verdict is not None:
                cell.outputs = [nbformat.v4.new_output(
                    "execute_result", execution_count=index,
                    data={"text/plain": f"{verdict.points:g}", "text/html": verdict_html(verdict.to_json())},
                )]
            continue
        run = result.cells.get(index)
        if run is None:
            continue
        if run.stdout:
            cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text=run.stdout))
        if run.error:
            name, _, value = run.error.partition(": ")
            cell.outputs.append(nbformat.v4.new_output("error", ename=name, evalue=value, traceback=[run.error]))


_PREFLIGHT_DONE = False


def preflight(assignment: str | None = None, student: str | None = None, notebooks: Any = None, **_: Any) -> None:
    """nbgrader's ``pre_convert_hook``: before the first submission is entered, prove grading can work here.

    Raises ``SystemExit`` (which nbgrader does not catch) with why and what to do when there is no sandbox
    (and unsandboxed grading was not allowed) or a worker cannot start: then no student gets a grade.
    """
    global _PREFLIGHT_DONE
    if _PREFLIGHT_DONE:
        return
    from traitlets.config import Application

    from .redact import build_library
    from .sandbox import GraderFault, Worker, sandbox_available

    config = Application.instance().config if Application.initialized() else None
    grade = SandboxedGrade(config=config) if config is not None else SandboxedGrade()
    sandboxed = sandbox_available()
    if not sandboxed and not grade.allow_unsandboxed:
        raise SystemExit(UNSANDBOXED_HELP)
    try:
        Worker(build_library(()), sandbox=sandboxed, limits=grade.limits()).close()
    except GraderFault as err:
        raise SystemExit(f"supercourse: grading stopped before any submission, and no grade was written: {err}") from None
    _PREFLIGHT_DONE = True
