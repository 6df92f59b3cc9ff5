"""The course's lessons, discovered: each lesson is one folder ``solutions/NN-slug/``.

A lesson folder holds everything about one lesson::

    solutions/NN-slug/
        NN-slug.ipynb      the solution notebook (nbgrader source)
        figures/           the figures a learner should expect (drawn by figures.py)
        checks.py          EXERCISES and their graded properties (run in the trusted grader)
        mistakes.py        MISTAKES: each exercise's known mistakes, to diagnose and to prove the checks
        alternatives.py    ALTERNATIVES: correct implementations written differently (they keep full marks)
        figures.py         make(out_dir) -> list[Path]: draws figures/
        worker.py          (optional) helpers the checks build inside the sandboxed worker
        test_lessonNN.py   (optional) the lesson's own tests

Nothing lists the lessons: a folder named ``NN-slug`` holding ``NN-slug.ipynb`` is a
lesson. Its Python files load as the package ``autograder.lessons.lessonNN``, so a
check module imports its mistake table with ``from .mistakes import MISTAKES``.
Nothing here imports torch.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import ModuleType

__all__ = ["Lesson", "SOLUTIONS", "REPO_ROOT", "all_lessons", "get_lesson", "slugs", "lesson_of", "SLUG"]

REPO_ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = REPO_ROOT / "solutions"
SLUG = re.compile(r"(?P<number>\d\d)-[a-z0-9]+(?:-[a-z0-9]+)*")
"""A lesson folder's name: two digits, a dash, then lower-case words joined by dashes."""

PARTS = ("checks", "mistakes", "alternatives", "figures", "worker")
"""The Python files a lesson folder may hold, each loaded as a module of the lesson's package."""


@dataclass(frozen=True)
class Lesson:
    """One lesson folder."""

    slug: str
    folder: Path

    @property
    def number(self) -> str:
        """``"01"``: the prefix of exercise ids (``"01.generate_batch"``)."""
        return self.slug.split("-", 1)[0]

    @property
    def package(self) -> str:
        """``"autograder.lessons.lesson01"``: the package its Python files load into."""
        return f"{__name__}.lesson{self.number}"

    @property
    def notebook(self) -> Path:
        return self.folder / f"{self.slug}.ipynb"

    @property
    def release(self) -> Path:
        """The learner's notebook as generated into ``lessons/`` (never edited by hand)."""
        return REPO_ROOT / "lessons" / self.slug / f"{self.slug}.ipynb"

    def has(self, part: str) -> bool:
        return (self.folder / f"{part}.py").is_file()

    def module(self, part: str) -> ModuleType:
        """The lesson's ``part`` module (``"checks"``, ``"mistakes"``, ...), imported once."""
        if part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, got {part!r}")
        if not self.has(part):
            raise LookupError(f"lesson {self.slug} has no {part}.py in {self.folder}")
        _package(self)
        return importlib.import_module(f"{self.package}.{part}")


def _package(lesson: Lesson) -> ModuleType:
    """The lesson's package: a module whose ``__path__`` is the lesson folder (made once)."""
    name = lesson.package
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_loader(name, loader=None, is_package=True)
        module = importlib.util.module_from_spec(spec)
        module.__path__ = [str(lesson.folder)]
        module.__doc__ = f"Lesson {lesson.slug}: {lesson.folder}"
        sys.modules[name] = module
    return module


@lru_cache(maxsize=None)
def _discover(root: str) -> tuple[Lesson, ...]:
    found = []
    base = Path(root)
    if base.is_dir():
        for folder in sorted(base.iterdir()):
            if folder.is_dir() and SLUG.fullmatch(folder.name) and (folder / f"{folder.name}.ipynb").is_file():
                found.append(Lesson(folder.name, folder))
    numbers = [lesson.number for lesson in found]
    duplicated = sorted({n for n in numbers if numbers.count(n) > 1})
    if duplicated:
        raise RuntimeError(f"two lesson folders share the number(s) {duplicated} in {root}")
    return tuple(found)


def all_lessons() -> tuple[Lesson, ...]:
    """Every lesson folder under ``solutions/``, in course order."""
    return _discover(str(SOLUTIONS))


def slugs() -> list[str]:
    """Every lesson's slug, in course order."""
    return [lesson.slug for lesson in all_lessons()]


def get_lesson(slug: str) -> Lesson:
    """The lesson called ``slug`` (``"01-sparse-features"``), or a ``KeyError`` listing the lessons."""
    for lesson in all_lessons():
        if lesson.slug == slug:
            return lesson
    raise KeyError(f"no lesson {slug!r}; lessons are {', '.join(slugs())}")


def lesson_of(name: str) -> str:
    """The lesson slug for a notebook name or path such as ``lessons/01-sparse-features/01-sparse-features.ipynb``."""
    stem = str(name).replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".ipynb")
    for lesson in all_lessons():
        if stem == lesson.slug or stem.startswith(lesson.number + "-"):
            return lesson.slug
    raise KeyError(f"{name!r} is not a lesson notebook; lessons are {', '.join(slugs())}")
