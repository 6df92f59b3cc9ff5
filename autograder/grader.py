"""The trusted grader: run a notebook's code in a sandboxed worker and grade each exercise from outside.

:func:`grade_notebook` is the one grading path, used by ``supercourse check``
and by ``nbgrader autograde`` (through :mod:`autograder.nbgrader_plugin`):

1. the submission is rebuilt from the release (:mod:`autograder.rebuild`);
2. a worker starts in the sandbox with the lesson's own files in its scratch
   folder and, on its import path, a ``supercourse`` without the references of
   the lesson's exercises (:mod:`autograder.redact`);
3. the worker runs the notebook's code cells in order (each under a time
   limit: interrupted in the worker, and the worker killed from outside if the
   interrupt is ignored); where a check cell stands, that exercise is graded
   instead, so it sees the state nbgrader's kernel would have there; cells
   after the last check cell are not run (they cannot change a grade);
4. each exercise's checks run here, in this process, calling the learner's
   functions in the worker (:mod:`autograder.remote`).

A worker that dies or hangs costs only what it was doing: a cell that crashes
or hangs it is skipped and the worker is started again for the remaining
exercises (re-running the other cells); an exercise whose checks crash or hang
it scores what its completed properties earned, and the next exercise gets a
fresh worker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection

from nbformat import NotebookNode

from .exercises import Exercise, lessons
from .nbgrader_settings import CELL_TIMEOUT
from .redact import build_library
from .remote import GRACE, RemoteFunction, Session
from .runner import DEFAULT_TIME_LIMIT, PropertyResult, Verdict, run_exercise
from .sandbox import Limits, Worker, WorkerDied, WorkerTimeout, sandbox_available

__all__ = ["CellRun", "GradeResult", "grade_notebook", "is_check_cell"]

_STARTUP_TIMEOUT = 120.0


def is_check_cell(cell: Any) -> bool:
    """An nbgrader autograder test cell (graded, not a solution)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


@dataclass
class CellRun:
    """What one code cell did in the worker."""

    index: int
    error: str | None = None
    stdout: str = ""


@dataclass
class GradeResult:
    """The verdict of every exercise of a lesson, and what the cells did."""

    lesson: str
    verdicts: list[Verdict]
    cells: dict[int, CellRun] = field(default_factory=dict)
    sandboxed: bool = True
    seconds: float = 0.0
    restarts: int = 0

    @property
    def score(self) -> float:
        return float(sum(v.points for v in self.verdicts))

    @property
    def max_score(self) -> float:
        return float(sum(v.max_points for v in self.verdicts))

    @property
    def faults(self) -> list[tuple[str, str]]:
        """``(exercise id, why)`` for every exercise that could not be graded normally."""
        return [(v.id, v.fault) for v in self.verdicts if v.fault]


class _Restart(Exception):
    pass


def _solution_sources(nb: NotebookNode) -> dict[str, tuple[int, str]]:
    out = {}
    for i, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution") and meta.get("grade_id"):
            out.setdefault(meta["grade_id"], (i, cell.source))
    return out


def _zero(ex: Exercise, reason: str, fault: str | None = None) -> Verdict:
    props = [PropertyResult(p.test, 0.0, p.points, False, reason) for p in ex.properties]
    return Verdict(ex.id, ex.title, 0.0, ex.points, props, 0.0, fault)


def grade_notebook(
    nb: NotebookNode,
    lesson: str,
    files: Path | None = None,
    sandbox: bool | None = None,
    cell_timeout: float = CELL_TIMEOUT,
    time_limit: float = DEFAULT_TIME_LIMIT,
    limits: Limits = Limits(),
    given: Collection[str] = (),
) -> GradeResult:
    """Grade every exercise of ``lesson`` in the (rebuilt) notebook ``nb``.

    Args:
        nb: the notebook to grade, already rebuilt from the release.
        files: the lesson's own folder; its non-notebook files are copied into the worker's scratch folder.
        sandbox: True to require bubblewrap, False to run out of process only,
            None for "the sandbox where available".
        given: the sources of the release's own code cells. An exception in such a cell, unchanged,
            is not reported as the learner's: the course's given code may call a library function the
            grading library hides (and the cells after it then miss its results). It cannot change a
            grade: exercises are graded by calling the learner's own definitions.
    """
    start = time.perf_counter()
    exercises = list(lessons()[lesson])
    if sandbox is None:
        sandbox = sandbox_available()
    lib = build_library(tuple(r for ex in exercises for r in ex.reference))
    by_check = {f"check_{ex.function}": ex for ex in exercises}
    # The program: code cells in order, and each exercise graded where its check cell stands (the
    # state nbgrader's kernel would have there). Cells after the last check cell cannot change a grade.
    program: list[tuple[str, int, Any]] = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if is_check_cell(cell):
            ex = by_check.get(cell.metadata["nbgrader"].get("grade_id", ""))
            if ex is not None and all(step[2] is not ex for step in program):
                program.append(("grade", i, ex))
        else:
            program.append(("run", i, cell.source))
    graded = {id(step[2]) for step in program if step[0] == "grade"}
    program += [("grade", len(nb.cells), ex) for ex in exercises if id(ex) not in graded]
    while program and program[-1][0] == "run":
        program.pop()
    solutions = _solution_sources(nb)
    cells: dict[int, CellRun] = {}
    skipped: set[int] = set()
    verdicts: dict[str, Verdict] = {}
    restarts = -1
    while len(verdicts) < len(exercises):
        restarts += 1
        worker = None
        try:
            worker = Worker(lib, files, sandbox=sandbox, limits=limits)
            session = Session(worker, time_limit)
            first = True
            for kind, index, what in program:
                if kind == "run":
                    if index in skipped:
                        continue
                    _run_cell(worker, index, what, cells, skipped, cell_timeout, first, what in given)
                    first = False
                    continue
                if what.id in verdicts:
                    continue
                defined = worker.request({"op": "defined", "names": [what.function]}, _STARTUP_TIMEOUT)["ok"]
                verdict = _grade_one(what, session, defined, solutions, cells, time_limit)
                verdicts[what.id] = verdict
                if verdict.fault and not _answers(worker):
                    raise _Restart()
        except _Restart:
            pass
        except WorkerDied as err:
            # The worker died outside any cell or exercise (e.g. while starting): fail what is left.
            for ex in exercises:
                if ex.id not in verdicts:
                    verdicts[ex.id] = _zero(ex, f"could not grade: the worker running your code died ({err})", str(err))
        finally:
            if worker is not None:
                worker.close()
    return GradeResult(lesson, [verdicts[ex.id] for ex in exercises], cells, sandbox, time.perf_counter() - start, restarts)


def _answers(worker: Worker) -> bool:
    """Whether the worker is still alive and answering (after a fault it may be dying, not yet reaped)."""
    try:
        worker.request({"op": "defined", "names": []}, _STARTUP_TIMEOUT)
    except WorkerDied:
        return False
    return True


def _run_cell(worker: Worker, index: int, source: str, cells: dict[int, CellRun], skipped: set[int],
              timeout: float, first: bool, given: bool = False) -> None:
    try:
        answer = worker.request({"op": "run_cell", "source": source, "timeout": timeout},
                                (_STARTUP_TIMEOUT if first else 0) + timeout + GRACE)
    except WorkerDied as err:
        skipped.add(index)
        why = (f"this cell ran longer than {timeout:g} s and was stopped" if isinstance(err, WorkerTimeout)
               else f"this cell stopped the process running the notebook ({worker._death()})")
        cells[index] = CellRun(index, why, "")
        raise _Restart() from None
    result = answer.get("ok") if isinstance(answer, dict) else None
    if not isinstance(result, dict):
        result = {"error": "the worker sent a malformed answer", "stdout": ""}
    if index not in cells:
        error = result.get("error")
        if isinstance(error, str) and error.startswith("GradingTimeout"):
            error = f"this cell ran longer than {timeout:g} s and was stopped"
        if given:  # the course's own code, unchanged: under grading it may lack a hidden reference (and what follows)
            error = None
        cells[index] = CellRun(index, str(error)[:2000] if error else None, str(result.get("stdout", ""))[-20_000:])


def _grade_one(ex: Exercise, session: Session, defined: Any, solutions: dict[str, tuple[int, str]],
               cells: dict[int, CellRun], time_limit: float) -> Verdict:
    where = solutions.get(ex.function)
    is_defined = isinstance(defined, dict) and defined.get(ex.function) is True
    if not is_defined:
        reason = f"nothing to check: `{ex.function}` is not defined (did you rename it, or does its cell raise?)"
        if where is not None and cells.get(where[0]) and cells[where[0]].error:
            error = cells[where[0]].error
            if error.startswith("ReferenceUnavailable"):
                reason = "implement this yourself: " + error.split(": ", 1)[-1]
            else:
                reason = f"nothing to check: the cell defining `{ex.function}` raised {error}"
        return _zero(ex, reason, reason)
    return run_exercise(ex.id, RemoteFunction(session, ex.function), time_limit,
                        source=where[1] if where is not None else None)
