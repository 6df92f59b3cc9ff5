"""``supercourse course grade LESSON``: a whole class graded in parallel, into nbgrader's own gradebook.

nbgrader's ``autograde`` grades one submission after another in one process. This command runs
nbgrader's own per-student pipeline (the ``Autograde`` converter with the course's
``nbgrader_config.py``: the submission rebuilt from the release, sanitised, entered in the gradebook
with its timestamp, written to ``autograded/``, its grades saved by ``SaveAutoGrades``, late penalties
assigned) in this process, the only one that writes the gradebook, and computes the one expensive step,
:func:`~autograder.grader.grade_notebook` (the learner's code in a sandboxed worker, the checks in the
grading process), in a pool of ``jobs`` grading processes (processes, not threads: the checks redirect
stdout and set torch's thread count). ``nbgrader generate_feedback`` and ``nbgrader export`` then work
unchanged.

What each submission gets is what ``nbgrader autograde`` gives it:

* the notebook graded in a pool process is the one this process rebuilt from the release; the
  ``SandboxedGrade`` step of nbgrader's pipeline (here :class:`PooledGrade`) takes that result only if
  the notebook nbgrader hands it has the same code cells (a fingerprint), and grades it itself otherwise;
* its check inputs are drawn from a fresh secret per submission, drawn here (``--SandboxedGrade.seed=HEX``
  gives every submission that secret, to reproduce grades), and written to ``grading-report.jsonl``;
* a grader fault (the worker cannot start) stops grading before that submission's grade is written,
  and the submission is removed from the gradebook, exactly as under ``nbgrader autograde``.

Blank (untouched) submissions are graded here at once, without a worker. A rerun grades only new or
changed submissions: the digest of every submitted folder graded is kept in ``.grading-state.json`` in
the course folder (``--force`` regrades everything).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import multiprocessing
import os
import sys
import time
import warnings
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import nbformat
from nbformat import NotebookNode

from .grader import GradeResult, _untouched, grade_notebook
from .limits import GradingLimits
from .nbgrader_speed import shared_gradebook_work
from .progress import ClassProgress, live_progress
from .rebuild import rebuild
from .sandbox import GraderFault, sandbox_available
from .toolkit.randomness import new_secret, parse_secret

__all__ = ["ClassGradeResult", "grade_class", "release_lesson", "fingerprint", "submission_digest", "STATE_FILE", "default_jobs"]

STATE_FILE = ".grading-state.json"
"""Per course folder: the digest of every submission graded by ``supercourse course grade``."""
LOCK_DIR = ".grading-locks"
"""Per course folder: one lock file per student, held while that student is entered in the gradebook."""

_RESULTS: dict[tuple[str, str, str], tuple[str, Any]] = {}
"""(student, lesson, notebook) -> (fingerprint, GradeResult or the exception grading raised): for PooledGrade."""
_GRADED: list[tuple[str, GradeResult]] = []
_INLINE: list[tuple[str, str, str]] = []


def default_jobs() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def fingerprint(nb: NotebookNode) -> str:
    """A digest of what grading reads from a notebook: every code cell's source and its nbgrader role."""
    cells = []
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {})
        cells.append([cell.get("source", ""), {k: meta.get(k) for k in ("grade", "solution", "grade_id")}])
    return hashlib.sha256(json.dumps(cells, sort_keys=True).encode()).hexdigest()


def submission_digest(folder: Path) -> str:
    """A digest of every file in a submitted folder (names and contents; links are not followed)."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        h.update(path.relative_to(folder).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------- pool side

def _context() -> Any:
    """Grading processes forked from one server that has imported the grader once (each starts in
    milliseconds, not the seconds an import of torch takes); the server starts with the first pool."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["autograder.classgrade"])
    return ctx


def warm() -> float:
    """Start the grading processes' server now (the benchmark does, before it times classes); returns seconds."""
    start = time.monotonic()
    with ProcessPoolExecutor(max_workers=1, mp_context=_context(), initializer=_pool_setup) as pool:
        pool.submit(_pool_setup).result()
    return time.monotonic() - start


def _pool_setup() -> None:
    """Each grading process computes on one thread: there is one per core already.

    The server imported torch with the instructor's environment, so torch would use a thread per core in
    every grading process: with 2 processes on 2 cores, 4 compute threads (and their spinning waits) beside
    2 sandboxed workers. Measured on 2 cores, 16 honest lesson-01 submissions: 3.4 CPU s per submission
    with 2 workers against 2.7 s with 1; with one thread, 2.5 s with either (27.6 s -> 20.2 s for the class).
    """
    import torch

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    torch.set_num_threads(1)


def _grade_in_pool(text: str, lesson: str, files: str, sandbox: bool, limits: GradingLimits,
                   given: frozenset[str], secret: int) -> GradeResult:
    return grade_notebook(nbformat.reads(text, as_version=4), lesson, files=Path(files), sandbox=sandbox,
                          limits=limits, given=given, secret=secret)


# ---------------------------------------------------------------------------------------------- nbgrader side

_POOLED: Any = None


def _pooled_grade_class() -> Any:
    """:class:`PooledGrade` (made on first use: nbgrader is imported only by instructors' commands)."""
    global _POOLED
    if _POOLED is not None:
        return _POOLED
    from .nbgrader_plugin import SandboxedGrade, write_outputs

    class PooledGrade(SandboxedGrade):
        """``SandboxedGrade`` whose grading was done ahead, in the pool; it grades itself what was not."""

        def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
            info = resources["nbgrader"]
            key = (info["student"], info["assignment"], info["notebook"])
            entry = _RESULTS.pop(key, None)
            if entry is None or entry[0] != fingerprint(nb):
                _INLINE.append(key)
                self.log.warning("%s/%s: not graded ahead (its notebook changed on the way), grading it now",
                                 key[0], key[1])
                return super().preprocess(nb, resources)
            result = entry[1]
            if isinstance(result, GraderFault):
                self._forget(resources)
                raise SystemExit(f"supercourse: grading stopped at {key[0]}/{key[1]}, and no grade was written "
                                 f"for it: {result}")
            if isinstance(result, BaseException):
                # the grading process itself failed (killed, out of memory): the grader's fault, not the
                # student's zero. nbgrader reports this submission as failed; nothing of it stays entered.
                self._forget(resources)
                raise RuntimeError(f"supercourse: could not grade {key[0]}/{key[1]} (not the student's fault): "
                                   f"its grading process failed: {result!r}") from result
            write_outputs(nb, result)
            self._report(key[0], key[1], result)
            return nb, resources

        def _report(self, student: str, lesson: str, result: GradeResult) -> None:
            super()._report(student, lesson, result)
            _GRADED.append((student, result))

    _POOLED = PooledGrade
    return PooledGrade


def _app(course: Path, argv: Sequence[str]) -> Any:
    """nbgrader's application machinery: the course's config read exactly as ``nbgrader autograde`` reads it."""
    from nbgrader.apps.baseapp import NbGrader

    class ClassGradeApp(NbGrader):
        name = "supercourse-course-grade"
        description = "supercourse course grade: a class graded in parallel"

    # nbgrader's gradebook runs the `alembic` command it installed: found beside this interpreter even when
    # the environment is not activated (``.venv/bin/supercourse course grade ...``).
    here = str(Path(sys.executable).parent)
    if here not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join(filter(None, [here, os.environ.get("PATH")]))
    app = ClassGradeApp()  # not the singleton: a process may grade several courses (tests, the benchmark)
    app.log_level = logging.ERROR
    app.initialize(list(argv), root=str(course))
    return app


@dataclass
class _Submission:
    student: str
    folder: Path
    digest: str
    notebooks: list[str]


@dataclass
class ClassGradeResult:
    """What one ``grade_class`` run did."""

    lesson: str
    jobs: int
    graded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    blank: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    stopped: str | None = None
    inline: int = 0
    faults: int = 0

    @property
    def per_minute(self) -> float:
        return 60.0 * len(self.graded) / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"lesson": self.lesson, "jobs": self.jobs, "graded": self.graded, "skipped": self.skipped,
                "failed": self.failed, "blank": self.blank, "scores": self.scores, "seconds": round(self.seconds, 2),
                "per_minute": round(self.per_minute, 2), "stopped": self.stopped, "inline": self.inline,
                "faults": self.faults}


@contextlib.contextmanager
def _locked(path: Path):
    """Hold an exclusive ``flock`` on ``path`` (made if missing) until the block ends (closing releases it)."""
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


class _State:
    """``.grading-state.json``: what was graded, read and updated under a lock (two graders may share a course)."""

    def __init__(self, course: Path) -> None:
        self.path = course / STATE_FILE
        self.lock = course / (STATE_FILE + ".lock")

    def read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data.get("submissions", {}) if isinstance(data, dict) else {}

    @contextlib.contextmanager
    def entering(self, student: str):
        """Hold ``student``'s lock: two graders sharing a course never enter one student at once.

        nbgrader's ``update_or_create_student`` / ``update_or_create_submission`` look a row up and add
        it if missing; two processes doing that for one student at once both add it, and the second
        fails on the database's unique key (seen with PostgreSQL) and the student goes ungraded. The
        ``autograded/`` folder of that student would be written by both as well.
        """
        locks = self.path.parent / LOCK_DIR
        locks.mkdir(exist_ok=True)
        name = hashlib.sha256(student.encode("utf-8", "surrogateescape")).hexdigest()[:32]
        with _locked(locks / f"{name}.lock"):
            yield

    def record(self, key: str, entry: dict[str, Any]) -> None:
        with _locked(self.lock):
            data = self.read()
            data[key] = entry
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"version": 1, "submissions": data}, indent=1, sort_keys=True) + "\n",
                           encoding="utf-8")
            os.replace(tmp, self.path)


def _find(coursedir: Any, lesson: str, release_names: list[str], student_glob: str) -> list[_Submission]:
    import glob

    pattern = coursedir.format_path(coursedir.submitted_directory, student_glob, lesson)
    exclude = set(filter(None, coursedir.student_id_exclude.split(","))) if coursedir.student_id_exclude else set()
    out = []
    for folder in sorted(glob.glob(pattern)):
        folder_path = Path(folder)
        student = folder_path.parent.name
        if not folder_path.is_dir() or student in exclude:
            continue
        names = [n for n in release_names if (folder_path / f"{n}.ipynb").is_file()]
        if not names:
            continue  # nbgrader skips a folder without a notebook of the lesson
        out.append(_Submission(student, folder_path, submission_digest(folder_path), names))
    return out


def grade_class(course: str | Path, lesson: str, jobs: int | None = None, force: bool = False,
                students: str = "*", argv: Sequence[str] = (), console: Any = None,
                show_progress: bool = True) -> ClassGradeResult:
    """Grade every new or changed submission of ``lesson`` in the nbgrader course folder ``course``.

    Args:
        course: the course folder (its ``nbgrader_config.py`` is read, as nbgrader reads it).
        jobs: grading processes at once (default: the cores this process may use).
        force: regrade submissions already graded and unchanged.
        students: a glob of student ids (nbgrader's ``--student``).
        argv: nbgrader-style options, e.g. ``["--SandboxedGrade.cell_seconds=10"]``.

    Raises:
        ValueError: a bad argument, or a course whose config does not grade through ``SandboxedGrade``.
        SystemExit: no sandbox (and ``allow_unsandboxed`` not set), or a grader fault: grading stopped.
    """
    from nbgrader.converters import Autograde
    from nbgrader.converters.base import NbGraderException
    from nbgrader.utils import temp_attrs

    from .nbgrader_plugin import UNSANDBOXED_HELP, SandboxedGrade

    course = Path(course).resolve()
    if not (course / "nbgrader_config.py").is_file():
        raise ValueError(f"course must be a course folder with an nbgrader_config.py (supercourse course init), "
                         f"got {course}")
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1):
        raise ValueError(f"jobs must be a positive int, got {jobs!r}")
    jobs = jobs or default_jobs()
    pooled = _pooled_grade_class()
    app = _app(course, argv)
    config = app.config
    steps = list(config.Autograde.autograde_preprocessors) if "autograde_preprocessors" in config.Autograde else []
    if SandboxedGrade not in steps:
        raise ValueError(f"the course's nbgrader_config.py does not grade through supercourse's SandboxedGrade "
                         f"({course}); make the course with `supercourse course init`")
    config.Autograde.autograde_preprocessors = [pooled if s is SandboxedGrade else s for s in steps]
    config.Autograde.pre_convert_hook = None  # this function proves the sandbox itself, once, below
    coursedir = app.coursedir
    grade = pooled(config=config)
    release_dir = Path(coursedir.format_path(coursedir.release_directory, ".", lesson))
    releases = {p.stem: nbformat.read(p, as_version=4) for p in sorted(release_dir.glob("*.ipynb"))}
    if not releases:
        raise ValueError(f"lesson must be released first (nbgrader generate_assignment {lesson}): no notebook in "
                         f"{release_dir}")
    sandboxed = sandbox_available()
    if not sandboxed and not grade.allow_unsandboxed:
        raise SystemExit(UNSANDBOXED_HELP)
    limits = grade.limits()
    files = str(course / grade.source_directory / lesson)
    fixed_secret = parse_secret(grade.seed) if grade.seed else None

    state = _State(course)
    known = state.read()
    found = _find(coursedir, lesson, list(releases), students)
    result = ClassGradeResult(lesson, jobs)
    todo = []
    for sub in found:
        autograded = Path(coursedir.format_path(coursedir.autograded_directory, sub.student, lesson))
        fresh = all((autograded / f"{n}.ipynb").is_file() for n in sub.notebooks)
        entry = known.get(f"{lesson}/{sub.student}", {})
        if not force and fresh and entry.get("digest") == sub.digest:
            result.skipped.append(sub.student)
        else:
            todo.append(sub)

    _RESULTS.clear()
    _GRADED.clear()
    _INLINE.clear()
    start = time.monotonic()
    pool = None
    futures: dict[Future, tuple[_Submission, str, str]] = {}
    ready: dict[str, int] = {}  # student -> notebooks graded here already (untouched ones)
    try:
        for sub in todo:
            for name in sub.notebooks:
                try:
                    submitted = nbformat.read(sub.folder / f"{name}.ipynb", as_version=4)
                except Exception:  # noqa: BLE001 - nbgrader's own pipeline meets it and reports it, as autograde does
                    continue
                made = rebuild(submitted, releases[name])
                rebuilt, given = made.notebook, made.given
                secret = fixed_secret if fixed_secret is not None else new_secret()
                fp = fingerprint(rebuilt)
                if _untouched(rebuilt, given):  # no learner code: graded at once, without a worker
                    _RESULTS[(sub.student, lesson, name)] = (fp, grade_notebook(
                        rebuilt, lesson, files=Path(files), sandbox=sandboxed, limits=limits, given=given, secret=secret))
                    ready[sub.student] = ready.get(sub.student, 0) + 1
                    continue
                if pool is None:
                    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=_context(), initializer=_pool_setup)
                fut = pool.submit(_grade_in_pool, nbformat.writes(rebuilt), lesson, files, sandboxed, limits, given,
                                  secret)
                futures[fut] = (sub, name, fp)
        if todo:
            _preflight(sandboxed, limits)  # while the pool grades; before this process writes any grade
    except BaseException:
        if pool is not None:
            for fut in futures:
                fut.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
        raise
    in_pool = {sub.student for sub, _, _ in futures.values()}
    blank = [s.student for s in todo if ready.get(s.student) == len(s.notebooks)]
    progress = ClassProgress(len(todo), blank=len(blank), skipped=len(result.skipped))

    waiting = {student: sum(1 for sub, _, _ in futures.values() if sub.student == student) for student in in_pool}
    by_student = {sub.student: sub for sub in todo}

    def enter(student: str, refresh) -> None:
        """Run nbgrader's pipeline for ``student`` (every notebook's result is ready)."""
        sub = by_student[student]
        before = len(_GRADED)
        with state.entering(student), temp_attrs(coursedir, assignment_id=lesson, student_id=student):
            converter = Autograde(coursedir=coursedir, parent=app)
            converter.force = True
            converter.create_student = True
            try:
                converter.start()
            except NbGraderException:
                result.failed.append(student)
                refresh(f"[red]could not grade {student}[/] (nbgrader's log above says why)")
                return
        graded = _GRADED[before:]
        seconds = sum(r.seconds for _, r in graded)
        score = sum(r.score for _, r in graded)
        result.graded.append(student)
        result.scores[student] = score
        result.faults += sum(len(r.faults) for _, r in graded)
        if all(r.workers == 0 for _, r in graded):
            result.blank.append(student)
        state.record(f"{lesson}/{student}", {"digest": sub.digest, "score": score,
                                             "seeds": [r.seed for _, r in graded],
                                             "graded_at": time.strftime("%Y-%m-%dT%H:%M:%S")})
        progress.done(student, seconds, blank=student in result.blank)
        max_score = sum(r.max_score for _, r in graded)
        refresh(f"{student}: {score:g}/{max_score:g} in {seconds:.1f} s")

    try:
        with warnings.catch_warnings(), _quiet(show_progress, progress, console) as refresh, shared_gradebook_work():
            # nbgrader's gradebook code trips SQLAlchemy 2's autoflush warnings; they say nothing about grading
            warnings.filterwarnings("ignore", message=".*not in session.*")
            for student in [s.student for s in todo if s.student not in in_pool]:
                enter(student, refresh)
            for fut in as_completed(futures):
                sub, name, fp = futures[fut]
                try:
                    graded = fut.result()
                except BaseException as err:  # noqa: BLE001 - handed to nbgrader's pipeline, which reports it
                    graded = err
                _RESULTS[(sub.student, lesson, name)] = (fp, graded)
                waiting[sub.student] -= 1
                if waiting[sub.student] == 0:
                    enter(sub.student, refresh)
    except SystemExit as stop:
        result.stopped = str(stop.code)
        for fut in futures:
            fut.cancel()
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        result.seconds = time.monotonic() - start
        result.inline = len(_INLINE)
    return result


class _NullRefresh:
    def __enter__(self):
        return lambda note="": None

    def __exit__(self, *exc: object) -> None:
        return None


def _quiet(show: bool, progress: ClassProgress, console: Any):
    return live_progress(progress, console) if show else _NullRefresh()


def _preflight(sandboxed: bool, limits: GradingLimits) -> None:
    """Start one worker before any grade is written: a sandbox that cannot work stops grading here."""
    from .redact import build_library
    from .sandbox import Worker

    try:
        Worker(build_library(()), sandbox=sandboxed, limits=limits).close()
    except GraderFault as err:
        raise SystemExit(f"supercourse: grading stopped before any submission, and no grade was written: {err}") from None


def release_lesson(course: str | Path, lesson: str) -> Path:
    """``nbgrader generate_assignment LESSON`` in ``course``, in this process; returns the release folder."""
    from nbgrader.converters import GenerateAssignment
    from nbgrader.converters.base import NbGraderException
    from nbgrader.utils import temp_attrs

    app = _app(Path(course).resolve(), [])
    with warnings.catch_warnings(), temp_attrs(app.coursedir, assignment_id=lesson):
        warnings.filterwarnings("ignore", message=".*not in session.*")
        try:
            GenerateAssignment(coursedir=app.coursedir, parent=app).start()
        except NbGraderException as err:
            raise RuntimeError(f"nbgrader generate_assignment {lesson} failed in {course}: {err}") from None
    return Path(app.coursedir.format_path(app.coursedir.release_directory, ".", lesson))
