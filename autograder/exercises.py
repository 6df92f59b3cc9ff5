"""The registry of lessons and exercises: the one source of truth for ids, names and points.

Each lesson's check module (``autograder/checks/lessonNN.py``) declares::

    LESSON = "01-sparse-features"
    EXERCISES = {"generate_batch": Exercise("generate_batch", "Sparse features ...")}

and its tests carry the points (:func:`autograder.framework.prop`). An
exercise's id is ``"NN.name"`` (``"01.generate_batch"``); its points are the sum
of its properties' points. Solution notebooks' test cells must agree with this
(``tests/test_lessons.py`` checks it).
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from functools import lru_cache
from types import ModuleType

__all__ = ["Exercise", "Property", "CHECK_MODULES", "lessons", "exercises", "get_exercise", "lesson_of"]

CHECK_MODULES: tuple[str, ...] = (
    "autograder.checks.lesson01",
    "autograder.checks.lesson02",
    "autograder.checks.lesson03",
    "autograder.checks.lesson04",
    "autograder.checks.lesson05",
    "autograder.checks.lesson06",
    "autograder.checks.lesson07",
    "autograder.checks.lesson08",
    "autograder.checks.lesson09",
)
"""Every lesson's check module, in course order. Adding a lesson = one line here."""


@dataclass(frozen=True)
class Property:
    """One graded property: a test function and its points."""

    test: str
    points: float


@dataclass(frozen=True)
class Exercise:
    """An exercise as learners see it.

    Args:
        function: the name the learner's implementation has in the notebook
            (what ``supercourse check`` looks up in the kernel).
        title: a few words for tables and messages.
        forbid: names the implementation must not use (the reference
            functions it would otherwise just call), such as ``"metrics"`` or
            ``"plots.feature_bars"``: matched as code tokens of its source
            (comments and docstrings may mention them) and against the
            ``supercourse`` objects its globals name (so aliases are caught).
        reference: dotted names of the library objects (functions, classes,
            methods or whole modules, e.g. ``"supercourse.data.sparse_uniform"``)
            that implement what the exercise asks: while the exercise is
            graded they are not importable in the worker that runs the
            learner's code.
    """

    function: str
    title: str
    forbid: tuple[str, ...] = ()
    reference: tuple[str, ...] = ()
    # Filled in by the registry:
    name: str = ""
    lesson: str = ""
    id: str = ""
    module: str = ""
    properties: tuple[Property, ...] = field(default=())

    @property
    def points(self) -> float:
        return float(sum(p.points for p in self.properties))


def _properties(module: ModuleType) -> dict[str, list[Property]]:
    """Each exercise's properties in the order the check module defines them (the order learners read)."""
    found: dict[str, list[Property]] = {}
    functions = sorted(inspect.getmembers(module, inspect.isfunction), key=lambda item: inspect.unwrap(item[1]).__code__.co_firstlineno)
    for name, fn in functions:
        if not name.startswith("test"):
            continue
        for mark in getattr(fn, "pytestmark", []):
            if mark.name == "sc_property":
                found.setdefault(mark.kwargs["exercise"], []).append(Property(name, float(mark.kwargs["points"])))
    return found


@lru_cache(maxsize=None)
def _load(module_name: str) -> tuple[str, tuple[Exercise, ...]]:
    module = importlib.import_module(module_name)
    lesson: str = module.LESSON
    number = lesson.split("-", 1)[0]
    props = _properties(module)
    unknown = set(props) - set(module.EXERCISES)
    if unknown:
        raise RuntimeError(f"{module_name}: tests mark unknown exercises {sorted(unknown)}")
    out = []
    for name, ex in module.EXERCISES.items():
        if not props.get(name):
            raise RuntimeError(f"{module_name}: exercise {name!r} has no checks")
        out.append(
            Exercise(
                function=ex.function,
                title=ex.title,
                forbid=ex.forbid,
                reference=ex.reference,
                name=name,
                lesson=lesson,
                id=f"{number}.{name}",
                module=module_name,
                properties=tuple(props[name]),
            )
        )
    return lesson, tuple(out)


def lessons() -> dict[str, tuple[Exercise, ...]]:
    """``{lesson slug: exercises in order}`` for every lesson."""
    return dict(_load(m) for m in CHECK_MODULES)


def exercises() -> dict[str, Exercise]:
    """``{exercise id: Exercise}`` across the course."""
    return {ex.id: ex for exs in lessons().values() for ex in exs}


def get_exercise(exercise_id: str) -> Exercise:
    """Look an exercise up by id (``"01.generate_batch"``), with a helpful error."""
    table = exercises()
    if exercise_id not in table:
        raise KeyError(f"no exercise {exercise_id!r}; known: {', '.join(sorted(table))}")
    return table[exercise_id]


def lesson_of(name: str) -> str:
    """The lesson slug for a notebook name or path such as ``lessons/01-sparse-features/01-sparse-features.ipynb``."""
    stem = name.replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".ipynb")
    for slug in lessons():
        if stem == slug or stem.startswith(slug.split("-", 1)[0] + "-"):
            return slug
    raise KeyError(f"{name!r} is not a lesson notebook; lessons are {', '.join(lessons())}")
