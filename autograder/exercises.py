"""The registry of lessons and exercises: the one source of truth for ids, names and points.

Nothing is listed by hand: each lesson folder's ``checks.py`` (see
:mod:`autograder.lessons`) declares::

    EXERCISES = {"generate_batch": Exercise("generate_batch", "Sparse features ...")}

and its properties carry the points (:func:`autograder.framework.prop`). An
exercise's id is ``"NN.name"`` (``"01.generate_batch"``); its points are the sum
of its properties' points. Solution notebooks' check cells must agree with this
(the generic lesson test checks it).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from functools import lru_cache
from types import ModuleType
from typing import Any, Callable

from .lessons import all_lessons, get_lesson
from .lessons import lesson_of as lesson_of

__all__ = ["Exercise", "Property", "lessons", "exercises", "exercises_of", "get_exercise", "lesson_of", "PROPERTY_ATTR"]

PROPERTY_ATTR = "__sc_property__"
"""The attribute :func:`autograder.framework.prop` sets on a property: ``(exercise name, points)``."""


@dataclass(frozen=True)
class Property:
    """One graded property: a check function of a lesson's ``checks.py`` and its points."""

    test: str
    points: float
    module: str = ""

    @property
    def function(self) -> Callable[[Any], None]:
        """The check function itself (``test(submission)``)."""
        import importlib

        return getattr(importlib.import_module(self.module), self.test)


@dataclass(frozen=True)
class Exercise:
    """An exercise as learners see it.

    Args:
        function: the name the learner's implementation has in the notebook
            (what ``supercourse check`` looks up in the kernel).
        title: a few words for tables and messages.
        reference: dotted names of the library objects (functions, classes,
            methods or whole modules, e.g. ``"supercourse.data.sparse_uniform"``)
            that implement what the exercise asks: while the exercise is
            graded they are not importable in the worker that runs the
            learner's code.
        modifies: the arguments the docstring lets the function change in place (e.g. ``("W_d",)``);
            a change to any other tensor argument costs the property that made the call.
        differentiable: its output carries gradients back to its tensor inputs or parameters (a
            forward pass, a loss); the lesson's proof then requires that a detached answer loses points.
    """

    function: str
    title: str
    reference: tuple[str, ...] = ()
    modifies: tuple[str, ...] = ()
    differentiable: bool = False
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
        mark = getattr(fn, PROPERTY_ATTR, None)
        if mark is None or not name.startswith("test"):
            continue
        exercise, points = mark
        found.setdefault(exercise, []).append(Property(name, float(points), module.__name__))
    return found


@lru_cache(maxsize=None)
def _load(slug: str) -> tuple[Exercise, ...]:
    lesson = get_lesson(slug)
    module = lesson.module("checks")
    props = _properties(module)
    unknown = set(props) - set(module.EXERCISES)
    if unknown:
        raise RuntimeError(f"{module.__name__}: properties mark unknown exercises {sorted(unknown)}")
    out = []
    for name, ex in module.EXERCISES.items():
        if not props.get(name):
            raise RuntimeError(f"{module.__name__}: exercise {name!r} has no checks")
        out.append(
            Exercise(
                function=ex.function,
                title=ex.title,
                reference=ex.reference,
                modifies=ex.modifies,
                differentiable=ex.differentiable,
                name=name,
                lesson=slug,
                id=f"{lesson.number}.{name}",
                module=module.__name__,
                properties=tuple(props[name]),
            )
        )
    return tuple(out)


def lessons() -> dict[str, tuple[Exercise, ...]]:
    """``{lesson slug: exercises in order}`` for every lesson folder that has checks."""
    return {lesson.slug: _load(lesson.slug) for lesson in all_lessons() if lesson.has("checks")}


def exercises() -> dict[str, Exercise]:
    """``{exercise id: Exercise}`` across the course."""
    return {ex.id: ex for exs in lessons().values() for ex in exs}


def exercises_of(slug: str) -> tuple[Exercise, ...]:
    """One lesson's exercises in order (only that lesson's checks are loaded: one broken lesson stops no other)."""
    return _load(slug)


def get_exercise(exercise_id: str) -> Exercise:
    """Look an exercise up by id (``"01.generate_batch"``), loading only its lesson, with a helpful error."""
    number = str(exercise_id).split(".", 1)[0]
    for lesson in all_lessons():
        if lesson.number == number and lesson.has("checks"):
            for ex in _load(lesson.slug):
                if ex.id == exercise_id:
                    return ex
    table = exercises()
    raise KeyError(f"no exercise {exercise_id!r}; known: {', '.join(sorted(table))}")
