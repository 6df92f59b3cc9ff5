"""Find every library path to a graded answer: the library's public callables tried on each exercise's inputs.

Redaction hides each exercise's named ``reference``. A learner may instead delegate to something else that
computes the same thing: another lesson's model class whose ``loss`` is the exercise, a helper, an experiment.
:func:`uncovered` records the calls the checks make to the solution (its inputs and answers), then, in a
process whose import path starts with the lesson's grading library (what a learner's code sees while the
lesson is graded), calls every public function, class method and method of ``supercourse`` on those inputs
(:mod:`delegation_search`), and reports each one whose result, or a plain reduction of it (sum, mean, an
element of a tuple), equals the solution's answer on every recorded call. Each is a path a learner could
take: the test requires there is none.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

from autograder.exercises import lessons
from autograder.lessons import get_lesson
from autograder.redact import build_library
from autograder.toolkit.testing import grade

__all__ = ["uncovered"]

_CALLS_PER_EXERCISE = 3
_HERE = Path(__file__).resolve().parent


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value.detach()]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


def _record(exercise_id: str, implementation: Callable[..., Any], secret: int) -> list[tuple[tuple, dict, Any]]:
    """The solution's calls during grading whose answer holds a tensor: ``(args, kwargs, answer)``."""
    calls: list[tuple[tuple, dict, Any]] = []

    def clone(v: Any) -> Any:
        return v.detach().clone() if isinstance(v, torch.Tensor) else v

    def recording(*args, **kwargs):
        out = implementation(*args, **kwargs)
        if len(calls) < _CALLS_PER_EXERCISE and _tensors(out):
            calls.append((tuple(clone(a) for a in args), {k: clone(v) for k, v in kwargs.items()}, _tensors(out)[0]))
        return out

    recording.__signature__ = inspect.signature(implementation)
    grade(exercise_id, recording, secret=secret)
    return [c for c in calls if all(_plain(a) for a in (*c[0], *c[1].values()))]


def _plain(value: Any) -> bool:
    """Data a learner could hand a library function (not the grader's test doubles or generators)."""
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor, torch.device, torch.dtype)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    return False


def uncovered(slug: str, solutions: dict[str, Any], secret: int, redact: bool = True) -> dict[str, list[str]]:
    """``{exercise id: library callables that answer it while the lesson is graded}`` for the lesson's
    function exercises (a class exercise's reference is its whole module). ``redact=False`` searches the
    whole library instead (then the references themselves are found)."""
    exercises = lessons()[slug]
    recorded = {}
    for ex in exercises:
        implementation = solutions[ex.function]
        if inspect.isclass(implementation):
            continue
        try:
            names = list(inspect.signature(implementation).parameters)
        except (TypeError, ValueError):
            names = []
        recorded[ex.id] = (_record(ex.id, implementation, secret), names)
    lesson = get_lesson(slug)
    lib = build_library(tuple(r for ex in exercises for r in ex.reference) if redact else (),
                        lesson.folder / "worker.py" if lesson.has("worker") else None)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "calls.pt"
        torch.save(recorded, path)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(lib), str(_HERE)]), SUPERCOURSE_GRADING="1",
                   OMP_NUM_THREADS="1")
        proc = subprocess.run([sys.executable, str(_HERE / "delegation_search.py"), str(path)], capture_output=True,
                              text=True, env=env, cwd=tmp, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"the delegation search failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
