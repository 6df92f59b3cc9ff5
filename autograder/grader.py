"""The trusted grader: run a notebook's code in a sandboxed worker and grade each exercise from outside.

:func:`grade_notebook` is the one grading path, used by ``supercourse check``
and by ``nbgrader autograde`` (through :mod:`autograder.nbgrader_plugin`):

1. the submission is rebuilt from the release (:mod:`autograder.rebuild`);
2. a worker starts in the sandbox with the lesson's own files in its scratch
   folder and, on its import path, a ``supercourse`` without the references of
   the lesson's exercises (:mod:`autograder.redact`);
3. the worker runs the notebook's code cells in order, as the learner's
   notebook would (each under a time limit: interrupted in the worker, and the
   worker killed from outside if the interrupt is ignored). Each exercise is
   graded after its check cell *and* after the last cell that defines its
   name: the last definition wins, wherever the learner put it;
4. each exercise's checks run here, in this process, calling the learner's
   functions in the worker (:mod:`autograder.remote`), on inputs drawn from a
   secret of this grading run (:mod:`autograder.toolkit.randomness`).

A worker that dies or hangs costs only what it was doing: a cell that crashes
or hangs it is skipped and the worker is started again for the remaining
exercises (re-running the other cells); an exercise whose checks crash or hang
it scores what its completed properties earned, and the next exercise gets a
fresh worker. The whole notebook, restarts included, has one time limit.
A worker that cannot start at all is the grader's fault (:class:`GraderFault`):
no grade is given.
"""

from __future__ import annotations

import ast
import time
from dataclasses import dataclass, field
from typing import Any, Collection

from nbformat import NotebookNode

from .exercises import Exercise, exercises_of
from .lessons import get_lesson
from .limits import DEFAULT_LIMITS, GradingLimits
from .redact import build_library
from .remote import RemoteFunction, Session
from .runner import PropertyResult, Verdict, run_exercise
from .sandbox import GraderFault, Worker, WorkerDied, WorkerTimeout, sandbox_available
from .toolkit.randomness import derive, new_secret

__all__ = ["CellRun", "GradeResult", "grade_notebook", "is_check_cell", "defined_names", "GraderFault"]

NOT_IMPLEMENTED = "is not implemented yet: replace `raise NotImplementedError()` with your code."


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
    """A graded notebook: every exercise's verdict, what the cells did, and how it was graded.

    The one result every front end shows: the notebook table of ``supercourse check``, the workspace's
    progress table, nbgrader's check-cell outputs and report, and ``--json``.
    """

    lesson: str
    verdicts: list[Verdict]
    cells: dict[int, CellRun] = field(default_factory=dict)
    sandboxed: bool = True
    seconds: float = 0.0
    restarts: int = 0
    seed: str = ""
    notebook: str = ""
    changes: list[str] = field(default_factory=list)
    confinement: str = ""
    out_of_time: bool = False
    workers: int = 0
    """Worker processes started (0 for a notebook with no learner code at all)."""

    @property
    def score(self) -> float:
        return float(sum(v.points for v in self.verdicts))

    @property
    def max_score(self) -> float:
        return float(sum(v.max_points for v in self.verdicts))

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)

    @property
    def faults(self) -> list[tuple[str, str]]:
        """``(exercise id, why)`` for every exercise that could not be graded normally."""
        return [(v.id, v.fault) for v in self.verdicts if v.fault]

    @property
    def cell_errors(self) -> list[str]:
        return [f"cell {i + 1}: {run.error}"[:200] for i, run in sorted(self.cells.items()) if run.error]

    @property
    def exercises(self) -> list[dict[str, Any]]:
        """One row per exercise: ``name`` (its id), title, points, max_points, passed, message, fault, properties."""
        return [
            {"name": v.id, "title": v.title, "points": v.points, "max_points": v.max_points, "passed": v.passed,
             "message": v.message, "fault": v.fault, "properties": v.to_json()["properties"]}
            for v in self.verdicts
        ]

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
            "seed": self.seed,
            "seconds": round(self.seconds, 3),
            "restarts": self.restarts,
            "workers": self.workers,
            "confinement": self.confinement,
        }


class _Restart(Exception):
    pass


class _OutOfTime(Exception):
    pass


def defined_names(source: str) -> set[str]:
    """The names a cell binds at its top level (``def``, ``class``, assignments, imports), magics allowed."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - IPython's transformer may reject odd input; parse what is there
        pass
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    names: set[str] = set()

    def targets(node: ast.AST) -> None:
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for elt in node.elts:
                targets(elt)
        elif isinstance(node, ast.Starred):
            targets(node.value)

    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                targets(t)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets(node.target)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, (ast.For, ast.With, ast.If, ast.Try)):
            for sub in ast.walk(node):
                if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.add(sub.name)
                elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    names.add(sub.id)
    return names


def _program(nb: NotebookNode, exercises: list[Exercise]) -> list[tuple[str, int, Any]]:
    """The cells to run and, between them, where each exercise is graded.

    An exercise is graded after its check cell and after the last cell that binds its name, whichever
    comes later (the last definition wins). Cells after the last grading cannot change a grade: not run.
    """
    steps: list[tuple[str, int, Any]] = []
    check_at: dict[str, int] = {}
    by_check = {f"check_{ex.function}": ex for ex in exercises}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if is_check_cell(cell):
            ex = by_check.get(cell.metadata["nbgrader"].get("grade_id", ""))
            if ex is not None and ex.id not in check_at:
                check_at[ex.id] = len(steps)
            continue
        steps.append(("run", i, cell.source))
    after: dict[int, list[Exercise]] = {}
    for ex in exercises:
        where = check_at.get(ex.id, len(steps))
        for k, (_, _, source) in enumerate(steps):
            if ex.function in defined_names(source):
                where = max(where, k + 1)
        after.setdefault(where, []).append(ex)
    program: list[tuple[str, int, Any]] = []
    for k in range(len(steps) + 1):
        program += [("grade", -1, ex) for ex in after.get(k, [])]
        if k < len(steps):
            program.append(steps[k])
    while program and program[-1][0] == "run":
        program.pop()
    return program


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


def _untouched(nb: NotebookNode, given: Collection[str]) -> bool:
    """Whether every code cell is the release's own (no learner code at all): every exercise is its stub."""
    code = [c.source for c in nb.cells if c.cell_type == "code" and not is_check_cell(c)]
    return bool(given) and all(source in given for source in code)


def grade_notebook(
    nb: NotebookNode,
    lesson: str,
    files: Any = None,
    sandbox: bool | None = None,
    limits: GradingLimits = DEFAULT_LIMITS,
    given: Collection[str] = (),
    secret: int | None = None,
    confinement: str | None = None,
) -> GradeResult:
    """Grade every exercise of ``lesson`` in the (rebuilt) notebook ``nb``.

    Args:
        nb: the notebook to grade, already rebuilt from the release.
        files: the lesson's own folder; its files (figures) are shown read-only in the worker's scratch folder.
        sandbox: True to require bubblewrap, False to run out of process only,
            None for "the sandbox where available".
        limits: every time and size limit (:class:`~autograder.limits.GradingLimits`).
        given: the sources of the release's own code cells. An exception in such a cell, unchanged,
            is not reported as the learner's: the course's given code may call a library function the
            grading library hides (and the cells after it then miss its results). It cannot change a
            grade: exercises are graded by calling the learner's own definitions.
        secret: the secret the check inputs are drawn from (:func:`~autograder.toolkit.randomness.new_secret`
            by default; give the report's ``seed`` back to reproduce a grade exactly).
        confinement: force a kind of sandbox bound (tests); None picks the best available.

    Raises:
        GraderFault: grading cannot work here (the worker cannot start): no grade is given.
    """
    start = time.perf_counter()
    deadline = time.monotonic() + limits.notebook_seconds
    exercises = list(exercises_of(lesson))
    secret = new_secret() if secret is None else secret
    seed = f"{secret:032x}"
    if sandbox is None:
        sandbox = sandbox_available()
    if _untouched(nb, given):
        verdicts = [_zero(ex, f"`{ex.function}` {NOT_IMPLEMENTED}") for ex in exercises]
        return GradeResult(lesson, verdicts, {}, sandbox, time.perf_counter() - start, 0, seed)
    found = get_lesson(lesson)
    helpers = found.folder / "worker.py" if found.has("worker") else None
    lib = build_library(tuple(r for ex in exercises for r in ex.reference), helpers)
    program = _program(nb, exercises)
    solutions = _solution_sources(nb)
    cells: dict[int, CellRun] = {}
    skipped: set[int] = set()
    verdicts: dict[str, Verdict] = {}
    restarts = -1
    workers = 0
    kind = ""
    out_of_time = False
    while len(verdicts) < len(exercises) and not out_of_time:
        restarts += 1
        worker = None
        try:
            if time.monotonic() >= deadline:
                raise _OutOfTime()
            worker = Worker(lib, files, sandbox=sandbox, limits=limits, confinement=confinement,
                            seed=derive(secret, "worker", workers))
            workers += 1
            kind = worker.confinement.kind
            session = Session(worker, limits)
            session.hard_deadline = deadline
            for kind_, index, what in program:
                if time.monotonic() >= deadline:
                    raise _OutOfTime()
                if kind_ == "run":
                    if index not in skipped:
                        _run_cell(worker, index, what, cells, skipped, limits, deadline, what in given)
                    continue
                if what.id in verdicts:
                    continue
                defined = worker.request({"op": "defined", "names": [what.function]}, limits.startup_seconds)["ok"]
                verdict = _grade_one(what, session, defined, solutions, cells, limits, secret)
                verdicts[what.id] = verdict
                if verdict.fault and not _answers(worker, limits):
                    raise _Restart()
        except _Restart:
            pass
        except _OutOfTime:
            out_of_time = True
        except WorkerDied as err:
            # The worker died outside any cell or exercise: fail what is left.
            for ex in exercises:
                if ex.id not in verdicts:
                    verdicts[ex.id] = _zero(ex, f"could not grade: the worker running your code died ({err})", str(err))
        finally:
            if worker is not None:
                worker.close()
    if out_of_time:
        why = (f"not graded: your notebook ran past its time limit of {limits.notebook_seconds:g} s in all "
               f"(restarts included: {restarts} after cells that crashed or ran too long). Look for loops that "
               "never end and for work much larger than the lesson's sizes.")
        for ex in exercises:
            if ex.id not in verdicts:
                verdicts[ex.id] = _zero(ex, why, why)
    return GradeResult(lesson, [verdicts[ex.id] for ex in exercises], cells, sandbox, time.perf_counter() - start,
                       max(restarts, 0), seed, confinement=kind, out_of_time=out_of_time, workers=workers)


def _answers(worker: Worker, limits: GradingLimits) -> bool:
    """Whether the worker is still alive and answering (after a fault it may be dying, not yet reaped)."""
    try:
        worker.request({"op": "defined", "names": []}, limits.startup_seconds)
    except WorkerDied:
        return False
    return True


def _run_cell(worker: Worker, index: int, source: str, cells: dict[int, CellRun], skipped: set[int],
              limits: GradingLimits, deadline: float, given: bool = False) -> None:
    timeout = max(0.05, min(limits.cell_seconds, deadline - time.monotonic()))
    try:
        answer = worker.request({"op": "run_cell", "source": source, "timeout": timeout}, timeout + limits.grace_seconds)
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
               cells: dict[int, CellRun], limits: GradingLimits, secret: int) -> Verdict:
    is_defined = isinstance(defined, dict) and defined.get(ex.function) is True
    if not is_defined:
        reason = f"nothing to check: `{ex.function}` is not defined (did you rename it, or does its cell raise?)"
        where = solutions.get(ex.function)
        if where is not None and cells.get(where[0]) and cells[where[0]].error:
            error = cells[where[0]].error
            if error.startswith("ReferenceUnavailable"):
                reason = "implement this yourself: " + error.split(": ", 1)[-1]
            else:
                reason = f"nothing to check: the cell defining `{ex.function}` raised {error}"
        return _zero(ex, reason, reason)
    return run_exercise(ex.id, RemoteFunction(session, ex.function, ex.modifies), limits, secret)
