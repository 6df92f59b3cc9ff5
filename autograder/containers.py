"""Grading one submission inside a hosted grader's container (Gradescope, PrairieLearn): what both share.

A hosted grader starts one container per submission, with a time limit and a memory limit for the
whole container. Inside it, :func:`grade_in_container` grades the submission with the course's own
grader (:func:`autograder.notebook.check_notebook`: rebuilt from the release, the code in a
bubblewrap sandbox, the checks outside it on inputs from a fresh secret), and

* fits the platform's limits: the notebook's own time limit is what is left of the platform's
  (less a margin for writing the results), and the sandbox's memory what the container has less what
  the grading process itself needs (:data:`GRADER_RESERVE_BYTES`);
* reports every exercise the moment it is graded (``on_verdict``), so that results written as it goes
  still show what was graded when the platform stops the container;
* never turns a grader fault into a zero: a sandbox that cannot start raises :class:`GraderFault`
  (each front end then writes no score), and without bubblewrap it refuses to grade unless the
  autograder was built with ``allow_unsandboxed``.

:func:`write_course` copies what the container needs of the course (the library, the grader, the
lesson's folder and its release) into a build folder; :data:`TORCH_VERSION` is the torch it installs.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator
from unittest import mock

from .limits import DEFAULT_LIMITS, GradingLimits

__all__ = ["TORCH_VERSION", "GRADER_RESERVE_BYTES", "MARGIN_SECONDS", "Platform", "write_course", "find_notebook",
           "grade_in_container", "NotANotebook", "clip",
           "refuse_unsandboxed", "started_at", "write_json_atomically", "course_files"]

TORCH_VERSION = "2.13.0"
"""The torch the hosted graders install (the CPU build): the version the course's tests run with (README)."""

MiB = 2**20
GRADER_RESERVE_BYTES = 384 * MiB
"""Memory the grading process itself needs in the container (Python, torch, the checks): the sandbox gets the rest."""
MARGIN_SECONDS = 30.0
"""Seconds kept back from the platform's time limit, to write the results after the notebook's own limit."""

_REPO = Path(__file__).resolve().parents[1]
_SKIP = ("__pycache__", ".ipynb_checkpoints", ".pytest_cache")


class NotANotebook(ValueError):
    """The submission is not a notebook of the lesson (the learner's to fix, not a grade)."""


@dataclass(frozen=True)
class Platform:
    """A hosted grader's limits for one submission's container."""

    name: str
    timeout_seconds: float
    memory_bytes: int
    cpus: float

    def limits(self, elapsed: float, base: GradingLimits = DEFAULT_LIMITS) -> GradingLimits:
        """The grading limits that fit what is left of this container (``elapsed``: seconds it has run so far)."""
        left = self.timeout_seconds - elapsed - MARGIN_SECONDS
        memory = self.memory_bytes - GRADER_RESERVE_BYTES
        if memory < 128 * MiB:
            raise ValueError(f"{self.name}: memory_bytes must leave the sandbox at least 128 MiB beside the grader's "
                             f"{GRADER_RESERVE_BYTES // MiB} MiB, got {self.memory_bytes // MiB} MiB")
        return base.with_(notebook_seconds=max(10.0, min(base.notebook_seconds, left)),
                          memory_bytes=min(base.memory_bytes, memory))


def _lesson_paths(lesson: str) -> list[tuple[Path, str]]:
    from .lessons import get_lesson

    found = get_lesson(lesson)
    pairs = [(found.folder, f"solutions/{lesson}"), (found.release.parent, f"lessons/{lesson}")]
    out = []
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (_REPO / name).is_file():
            out.append((_REPO / name, name))
    for package in ("supercourse", "autograder"):
        pairs.append((_REPO / package, package))
    for root, rel in pairs:
        for path in sorted(root.rglob("*")):
            parts = path.relative_to(root).parts
            if path.is_file() and not path.is_symlink() and not set(parts) & set(_SKIP) and path.suffix != ".pyc":
                out.append((path, f"{rel}/{path.relative_to(root).as_posix()}"))
    return out


def write_course(lesson: str, dest: Path) -> list[str]:
    """Copy the course as the container needs it (library, grader, the lesson's folder and release) into ``dest``."""
    written = []
    for path, rel in _lesson_paths(lesson):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        written.append(rel)
    return written


def course_files(lesson: str) -> list[tuple[Path, str]]:
    """``(file, path inside the course copy)`` for everything :func:`write_course` copies."""
    return _lesson_paths(lesson)


def find_notebook(folder: Path, lesson: str) -> Path:
    """The submitted notebook: ``LESSON.ipynb`` anywhere in ``folder``, else its only ``.ipynb``.

    Raises:
        NotANotebook: none, or several and none named for the lesson.
    """
    found = sorted(p for p in Path(folder).rglob("*.ipynb")
                   if p.is_file() and not set(p.relative_to(folder).parts) & set(_SKIP))
    named = [p for p in found if p.name == f"{lesson}.ipynb"]
    if named:
        return named[0]
    if len(found) == 1:
        return found[0]
    if not found:
        raise NotANotebook(f"no notebook was submitted: submit your {lesson}.ipynb (the notebook itself, "
                           "not a zip or a PDF of it)")
    raise NotANotebook(f"{len(found)} notebooks were submitted and none is named {lesson}.ipynb: submit only your "
                       f"{lesson}.ipynb")


@contextmanager
def _verdicts(callback: Callable[[Any], None] | None) -> Iterator[None]:
    """Call ``callback(verdict)`` as each exercise is graded (the grader itself only returns them at the end)."""
    if callback is None:
        yield
        return
    from . import grader

    original = grader.run_exercise

    def run_exercise(*args: Any, **kwargs: Any) -> Any:
        verdict = original(*args, **kwargs)
        try:
            callback(verdict)
        except Exception:  # noqa: BLE001 - writing partial results must never change a grade
            pass
        return verdict

    with mock.patch.object(grader, "run_exercise", run_exercise):
        yield


def refuse_unsandboxed(allow_unsandboxed: bool) -> None:
    """Raise :class:`GraderFault` when there is no sandbox here and grading without one was not allowed."""
    from .sandbox import GraderFault, sandbox_available

    if not sandbox_available() and not allow_unsandboxed:
        raise GraderFault(
            "bubblewrap cannot make a sandbox in this container (it needs user namespaces, which the container's "
            "seccomp profile may block). No grade was written. Rebuild the autograder with --allow-unsandboxed to "
            "grade with the container as the only boundary (the student's code could then forge its own grade).")


def started_at() -> float:
    """When the container started grading: ``SUPERCOURSE_STARTED`` (set by the run script), else now."""
    try:
        return float(os.environ["SUPERCOURSE_STARTED"])
    except (KeyError, ValueError):
        return time.time()


def grade_in_container(path: Path, lesson: str, platform: Platform, started: float, allow_unsandboxed: bool = False,
                       on_verdict: Callable[[Any], None] | None = None, base: GradingLimits = DEFAULT_LIMITS) -> Any:
    """Grade the submitted notebook ``path`` within ``platform``'s limits; returns the :class:`GradeResult`.

    ``started`` is when the platform started the container (``time.time()``, as the run script records it).

    Raises:
        NotANotebook: the file is not a readable notebook.
        GraderFault: grading cannot work here (no sandbox and ``allow_unsandboxed`` not set, or the worker
            cannot start): never a grade.
    """
    from .notebook import check_notebook
    from .sandbox import sandbox_available

    refuse_unsandboxed(allow_unsandboxed)
    sandboxed = sandbox_available()
    try:
        with open(path, encoding="utf-8") as fh:
            json.load(fh)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise NotANotebook(f"{path.name} is not a notebook (not readable as a notebook's JSON: {str(err)[:200]})") from None
    limits = platform.limits(time.time() - started, base)
    with _verdicts(on_verdict):
        try:
            return check_notebook(path, limits=limits, lesson=lesson, sandbox=sandboxed)
        except ValueError as err:  # check_notebook: not a readable notebook
            raise NotANotebook(str(err)[:500]) from None


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying so."""
    text = str(text)
    return text if len(text) <= limit else text[: max(0, limit - 40)] + f"\n... ({len(text) - limit + 40} more characters)"


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` so that a reader (or a container stopped mid-write) sees the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
