"""A learner's workspace: ``supercourse start [DIR]`` and ``supercourse check DIR``.

Learners work in a copy of the lessons that nothing else writes to: not
``lessons/`` (which ``supercourse lessons build`` regenerates and ``git pull``
updates), but a folder of their own, ``supercourse-work/`` by default.

* :func:`start_workspace` copies every lesson (notebook and expected figures)
  into the workspace. Run again after a ``git pull``, it adds lessons and files
  that are new and never overwrites a file the learner already has.
* :func:`check_workspace` grades every lesson notebook in a folder with
  :func:`autograder.notebook.check_notebook` (a fresh sandboxed worker
  each, in grading mode) and returns one row per lesson: points, exercises passed, and a total.
  A notebook still exactly as handed out is reported as "not started"
  without being run.
* :func:`worked_reasons` says whether a notebook holds a learner's work
  compared with the one the build would write; :mod:`autograder.build` uses it
  to refuse to overwrite such a notebook.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .nbgrader_settings import REPO_ROOT

__all__ = [
    "DEFAULT_WORKSPACE", "MARKER", "LessonRow", "WorkspaceReport", "start_workspace", "lesson_notebooks",
    "check_workspace", "worked_reasons", "register", "print_workspace_report",
]

DEFAULT_WORKSPACE = Path("supercourse-work")
"""Where ``supercourse start`` puts the lessons when no folder is given (relative to the current folder)."""
MARKER = ".supercourse-workspace"
"""A small JSON file that marks a folder as a learner workspace (where its lessons came from)."""
_SKIP = {".ipynb_checkpoints", "__pycache__"}
_STUBS = ("YOUR CODE HERE", "YOUR ANSWER HERE")


# --------------------------------------------------------------------------- worked notebooks


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def worked_reasons(notebook: dict[str, Any], fresh: dict[str, Any]) -> list[str]:
    """Why ``notebook`` holds a learner's work that writing ``fresh`` over it would lose (empty: nothing).

    Both are notebook JSON dicts. Work is: a code cell that was run (it has
    outputs or an execution count), or a solution cell (nbgrader ``solution``
    metadata) whose stub was replaced by something that is not in ``fresh``.
    An author's change to the lesson itself (prose, checks, new cells) is not work.
    """
    for name, nb in (("notebook", notebook), ("fresh", fresh)):
        if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
            raise TypeError(f"{name} must be a notebook dict with a 'cells' list, got {type(nb).__name__}")
    reasons: list[str] = []
    ran = sum(
        1 for c in notebook["cells"]
        if c.get("cell_type") == "code" and (c.get("outputs") or c.get("execution_count") is not None)
    )
    if ran:
        reasons.append(f"{ran} cell(s) have been run (they have outputs)")
    fresh_sources = {
        c.get("metadata", {}).get("nbgrader", {}).get("grade_id"): _source(c) for c in fresh["cells"]
    }
    for c in notebook["cells"]:
        meta = c.get("metadata", {}).get("nbgrader", {})
        if not meta.get("solution"):
            continue
        text = _source(c)
        if any(stub in text for stub in _STUBS) or text == fresh_sources.get(meta.get("grade_id")):
            continue
        reasons.append(f"the answer cell {meta.get('grade_id', '?')!r} has been edited")
    return reasons


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- start


def _check_destination(directory: Path, source: Path) -> Path:
    if not isinstance(directory, (str, Path)):
        raise TypeError(f"directory must be a path, got {type(directory).__name__}")
    target = Path(directory).expanduser().resolve()
    if target.name == "supercourse":
        raise ValueError(
            f"choose another name than {target}: Python started in {target.parent} would import a folder named "
            "'supercourse' instead of the library (e.g. supercourse start supercourse-work)"
        )
    for generated in (source.resolve(), (REPO_ROOT / "solutions").resolve()):
        if target == generated or generated in target.parents:
            raise ValueError(
                f"{target} is inside {generated}, which the course regenerates; choose a folder of your own "
                "(default: supercourse-work)"
            )
    if target.exists() and not target.is_dir():
        raise ValueError(f"{target} exists and is not a folder")
    return target


def start_workspace(directory: str | Path = DEFAULT_WORKSPACE, source: str | Path | None = None) -> list[tuple[str, str]]:
    """Copy every lesson in ``source`` (default: the repository's ``lessons/``) into ``directory``.

    Never overwrites a file that exists in ``directory``. Returns
    ``[(lesson slug, what happened)]``, one row per lesson in course order.
    Raises ``ValueError`` for a destination inside the generated folders or
    named ``supercourse``.
    """
    src = Path(source) if source is not None else REPO_ROOT / "lessons"
    if not src.is_dir():
        raise ValueError(f"no lessons folder at {src}")
    target = _check_destination(Path(directory), src)
    target.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str]] = []
    for lesson in sorted(p for p in src.iterdir() if p.is_dir() and (p / f"{p.name}.ipynb").is_file()):
        copied, kept_changed = 0, []
        for path in sorted(lesson.rglob("*")):
            rel = path.relative_to(src)
            if not path.is_file() or _SKIP & set(rel.parts):
                continue
            dest = target / rel
            if not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest)
                copied += 1
            elif not filecmp.cmp(path, dest, shallow=False):
                kept_changed.append(str(rel.relative_to(lesson.name)))
        total = sum(1 for p in lesson.rglob("*") if p.is_file() and not _SKIP & set(p.relative_to(src).parts))
        if copied == total:
            status = "copied"
        elif not copied and not kept_changed:
            status = "already here, unchanged"
        else:
            status = f"yours kept ({len(kept_changed)} file(s) differ from the course's)" if kept_changed else "yours kept"
            if copied:
                status += f"; {copied} new file(s) copied"
        rows.append((lesson.name, status))
    from supercourse import __version__

    (target / MARKER).write_text(
        json.dumps({"course": "supercourse", "version": __version__, "lessons_from": str(src.resolve())}, indent=2)
        + "\n",
        encoding="utf-8",
    )
    return rows


# --------------------------------------------------------------------------- check


def lesson_notebooks(directory: str | Path) -> list[tuple[str, Path]]:
    """``[(lesson slug, notebook path)]`` of the lessons found in ``directory``, in course order.

    A lesson is found as ``directory/<slug>/<slug>.ipynb`` (a workspace) or
    ``directory/<slug>.ipynb`` (one lesson's own folder).
    """
    from .exercises import lessons

    folder = Path(directory)
    if not folder.is_dir():
        raise ValueError(f"no folder at {folder}")
    found = []
    for slug in lessons():
        for candidate in (folder / slug / f"{slug}.ipynb", folder / f"{slug}.ipynb"):
            if candidate.is_file():
                found.append((slug, candidate))
                break
    return found


@dataclass
class LessonRow:
    """One lesson of a workspace: its status (graded / not started) and grade."""

    lesson: str
    notebook: str
    status: str
    score: float
    max_score: float
    passed_exercises: int
    n_exercises: int
    exercises: list[dict[str, Any]] = field(default_factory=list)
    cell_errors: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.passed_exercises == self.n_exercises


@dataclass
class WorkspaceReport:
    """Every lesson found in a folder, graded; the totals."""

    directory: str
    lessons: list[LessonRow]

    @property
    def score(self) -> float:
        return float(sum(r.score for r in self.lessons))

    @property
    def max_score(self) -> float:
        return float(sum(r.max_score for r in self.lessons))

    @property
    def passed(self) -> bool:
        return bool(self.lessons) and all(r.passed for r in self.lessons)

    def to_json(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "lessons": [
                {
                    "lesson": r.lesson, "notebook": r.notebook, "status": r.status, "score": r.score,
                    "max_score": r.max_score, "passed_exercises": r.passed_exercises,
                    "n_exercises": r.n_exercises, "exercises": r.exercises, "cell_errors": r.cell_errors,
                }
                for r in self.lessons
            ],
            "score": self.score,
            "max_score": self.max_score,
        }


def _untouched(path: Path, slug: str) -> bool:
    pristine = REPO_ROOT / "lessons" / slug / f"{slug}.ipynb"
    if not pristine.is_file():
        return False
    try:
        mine, fresh = _read(path), _read(pristine)
    except (OSError, ValueError):
        return False
    if worked_reasons(mine, fresh):
        return False
    return [_source(c) for c in mine["cells"]] == [_source(c) for c in fresh["cells"]]


def check_workspace(
    directory: str | Path,
    limits: Any = None,
    on_lesson: Callable[[int, int, str], None] | None = None,
) -> WorkspaceReport:
    """Grade every lesson notebook in ``directory`` (see :func:`lesson_notebooks`).

    ``on_lesson(i, n, slug)`` is called before each lesson that is run (for a
    progress line). A notebook still as handed out scores 0 as "not started"
    without being run. Raises ``ValueError`` when the folder holds no lesson.
    """
    from .exercises import lessons

    found = lesson_notebooks(directory)
    if not found:
        raise ValueError(
            f"no lesson notebooks in {directory} (expected e.g. {Path(directory) / '01-sparse-features'}"
            "/01-sparse-features.ipynb; make a workspace with: supercourse start)"
        )
    registry = lessons()
    rows = []
    for i, (slug, path) in enumerate(found):
        exercises = registry[slug]
        if _untouched(path, slug):
            rows.append(LessonRow(slug, str(path), "not started", 0.0, sum(e.points for e in exercises), 0,
                                  len(exercises)))
            continue
        if on_lesson is not None:
            on_lesson(i, len(found), slug)
        from .notebook import check_notebook  # nbclient and nbformat: imported only when there is work

        report = check_notebook(path, **({} if limits is None else {"limits": limits}))
        rows.append(
            LessonRow(
                slug, str(path), "graded", report.score, report.max_score,
                sum(1 for e in report.exercises if e["passed"]), len(report.exercises),
                list(report.exercises), list(report.cell_errors),
            )
        )
    return WorkspaceReport(str(directory), rows)


def print_workspace_report(report: WorkspaceReport, console: Any = None) -> None:
    """Print ``report`` as a progress table: lesson, points, exercises passed, status; then the total."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(soft_wrap=False, width=None if sys.stdout.isatty() else 120)
    table = Table(title=f"progress: {report.directory}", title_justify="left", header_style="bold")
    table.add_column("lesson", style="bold")
    table.add_column("points", justify="right")
    table.add_column("exercises passed", justify="right")
    table.add_column("status")
    for r in report.lessons:
        colour = "green" if r.passed else ("yellow" if r.score else "red")
        status = r.status
        if r.status == "graded" and not r.passed:
            todo = [e["name"] for e in r.exercises if not e["passed"]]
            status = "to do: " + ", ".join(todo)
        table.add_row(
            r.lesson, f"[{colour}]{r.score:g}/{r.max_score:g}[/]", f"{r.passed_exercises}/{r.n_exercises}", status
        )
    table.add_section()
    table.add_row(
        "total", f"{report.score:g}/{report.max_score:g}",
        f"{sum(r.passed_exercises for r in report.lessons)}/{sum(r.n_exercises for r in report.lessons)}", "",
    )
    console.print(table)


def check_folder_command(args: argparse.Namespace) -> int:
    """``supercourse check FOLDER [--json] [--timeout S]``: grade every lesson in a folder; exit 0 if all pass."""
    from rich.console import Console

    err = Console(stderr=True)

    def progress(i: int, n: int, slug: str) -> None:
        if not args.json:
            err.print(f"[dim]grading {slug} ({i + 1}/{n}) ...[/]")

    from .limits import DEFAULT_LIMITS

    limits = DEFAULT_LIMITS if args.timeout is None else DEFAULT_LIMITS.with_(cell_seconds=float(args.timeout))
    report = check_workspace(args.notebook, limits=limits, on_lesson=progress)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print_workspace_report(report)
    return 0 if report.passed else 1


def _start(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    rows = start_workspace(args.directory)
    target = Path(args.directory).expanduser().resolve()
    console = Console()
    table = Table(title=f"workspace: {target}", title_justify="left", header_style="bold")
    table.add_column("lesson", style="bold")
    table.add_column("what happened")
    for slug, status in rows:
        table.add_row(slug, status)
    console.print(table)
    first = rows[0][0] if rows else "01-sparse-features"
    console.print(
        f"next: jupyter lab {args.directory}   (open {first}/{first}.ipynb)\n"
        f"grade everything: supercourse check {args.directory}",
        soft_wrap=True,
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``start [DIR]`` to the ``supercourse`` command line."""
    parser = subparsers.add_parser(
        "start",
        help="copy the lessons into a folder of your own to work in (default ./supercourse-work)",
        description="Copy every lesson notebook and its expected figures into DIR, your workspace. "
        "Work there, not in the repository's lessons/ folder: rebuilding the lessons or pulling course "
        "updates never touches DIR. Run it again after a git pull to add new lessons; files you "
        "already have are never overwritten. Grade your progress with: supercourse check DIR",
    )
    parser.add_argument(
        "directory", nargs="?", type=Path, default=DEFAULT_WORKSPACE, metavar="DIR",
        help=f"the workspace folder (default: {DEFAULT_WORKSPACE})",
    )
    parser.set_defaults(func=_start)
    return parser
