"""Running an exercise's checks against a learner's implementation: each property called directly.

The checks always run in the grader's own process and reach the learner's
code only through :mod:`autograder.remote`: plain data in, plain data out.

* For a grade, the learner's code runs in a separate, sandboxed worker process
  (:mod:`autograder.grader`); a property that runs past its time limit kills
  that worker from outside.
* For the self-check cell in a learner's own notebook, :func:`check` serves
  the learner's object to the same checks over an in-process loopback channel
  (same encoding, instant feedback; the self-check is never the grade).

Every property draws its inputs from a secret of the run
(:mod:`autograder.toolkit.randomness`), so answers recorded at home cannot be
replayed. :func:`run_exercise` never raises for a learner's bug: every failure
becomes a property's message.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import os
import sys
import time
import types
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from .exercises import Exercise, Property, get_exercise
from .framework import CheckFailed
from .limits import DEFAULT_LIMITS, GradingLimits
from .remote import Loopback, RemoteFunction, Session, SoftTimeout
from .sandbox import WorkerDied, WorkerTimeout
from .toolkit.randomness import new_secret, property_seed

__all__ = ["PropertyResult", "Verdict", "run_exercise", "self_check", "check", "RESULTS_ENV"]

RESULTS_ENV = "SUPERCOURSE_RESULTS"
"""If set, :func:`check` appends each verdict as a JSON line to this file."""


@dataclass
class PropertyResult:
    test: str
    points: float
    max_points: float
    passed: bool
    message: str


@dataclass
class Verdict:
    """The outcome of one exercise.

    ``fault`` says why the exercise could not be graded normally (the worker
    crashed or was killed, the code uses the reference, the name is not
    defined), or is None. In a notebook it shows as HTML; ``repr()`` is the
    score (what nbgrader reads as a check cell's partial credit).
    """

    id: str
    title: str
    points: float
    max_points: float
    properties: list[PropertyResult] = field(default_factory=list)
    seconds: float = 0.0
    fault: str | None = None

    @property
    def passed(self) -> bool:
        return self.points == self.max_points

    @property
    def message(self) -> str:
        failed = [p for p in self.properties if not p.passed]
        if not failed:
            return f"all {len(self.properties)} checks passed"
        return failed[0].message

    def __repr__(self) -> str:
        return f"{self.points:g}"

    def _repr_html_(self) -> str:
        from .render import verdict_html

        return verdict_html(self.to_json())

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(passed=self.passed, message=self.message)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Verdict":
        props = [PropertyResult(**{k: p[k] for k in ("test", "points", "max_points", "passed", "message")}) for p in data["properties"]]
        return cls(data["id"], data["title"], float(data["points"]), float(data["max_points"]), props,
                   float(data.get("seconds", 0.0)), data.get("fault"))

    def report(self) -> str:
        """The verdict as plain text, one line per property (failed ones with their message)."""
        from .render import verdict_text

        return verdict_text(self.to_json())


REFERENCE_PREFIX = "implement this yourself"


class _Outcome:
    """What one exercise's run has learned so far: faults end it, a used reference zeroes it."""

    def __init__(self, limits: GradingLimits) -> None:
        self.limits = limits
        self.fault: str | None = None
        self.stop: str | None = None
        self.reference: str | None = None

    def message(self, err: BaseException) -> str:
        if isinstance(err, CheckFailed):
            if err.reference:  # said plainly, without the context a check may have wrapped it in
                text = str(err)
                plain = text[text.find(REFERENCE_PREFIX):] if REFERENCE_PREFIX in text else text
                self.reference = self.reference or plain
            return str(err)
        if isinstance(err, (WorkerTimeout, SoftTimeout)):
            message = (
                f"took longer than {self.limits.property_seconds:g} s, so it was stopped: look for a loop that never "
                "ends, or work that grows with the batch far faster than it should."
            )
            self.stop = message
            if isinstance(err, WorkerTimeout):
                self.fault = self.fault or message
            return message
        if isinstance(err, WorkerDied):
            message = self.fault or (
                f"your code stopped the process that ran it ({err}): look for os._exit, sys.exit, a crash in "
                "native code, or memory use beyond the limit. The exercise's other checks were not run."
            )
            self.fault = self.stop = message
            return message
        if isinstance(err, AssertionError):
            return str(err).split("\n")[0] or "an assertion in the check failed"
        return f"the check could not run your code: {type(err).__name__}: {err}"


def _run_property(prop: Property, exercise: Exercise, submission: RemoteFunction, secret: int,
                  outcome: _Outcome) -> str | None:
    """Call one property; its failure message, or None when it holds."""
    session = submission.session
    session.deadline = time.monotonic() + outcome.limits.property_seconds
    threads = torch.get_num_threads()
    sink = io.StringIO()
    try:
        with property_seed(secret, exercise.id, prop.test), warnings.catch_warnings(), \
                contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            prop.function(submission)
        return None
    except Exception as err:  # CheckFailed, the learner's errors, the worker's death: all become messages
        return outcome.message(err)
    finally:
        session.deadline = None
        torch.set_num_threads(threads)


def _blocked(exercise: Exercise, reason: str, start: float, fault: str | None = None) -> Verdict:
    results = [PropertyResult(p.test, 0.0, p.points, False, reason) for p in exercise.properties]
    return Verdict(exercise.id, exercise.title, 0.0, exercise.points, results, time.perf_counter() - start, fault)


def run_exercise(exercise_id: str, submission: Any, limits: GradingLimits = DEFAULT_LIMITS,
                 secret: int | None = None) -> Verdict:
    """Run every property of ``exercise_id`` against ``submission``; never raises for learner bugs.

    Args:
        submission: the learner's implementation as a :class:`RemoteFunction`
            (a local object is served over the in-process loopback, as in :func:`check`).
        limits: the time limits (``property_seconds``).
        secret: the run's secret (:func:`~autograder.toolkit.randomness.new_secret`); a fresh one by default.
    """
    if not isinstance(submission, RemoteFunction):
        return self_check(exercise_id, submission, limits, secret)
    exercise = get_exercise(exercise_id)
    secret = new_secret() if secret is None else secret
    start = time.perf_counter()
    outcome = _Outcome(limits)
    results = []
    for prop in exercise.properties:
        message = outcome.stop if outcome.stop is not None else _run_property(prop, exercise, submission, secret, outcome)
        ok = message is None
        results.append(PropertyResult(prop.test, prop.points if ok else 0.0, prop.points, ok, message or ""))
    if outcome.reference is not None:
        return _blocked(exercise, outcome.reference, start, fault=outcome.reference)
    return Verdict(
        id=exercise.id,
        title=exercise.title,
        points=float(sum(r.points for r in results)),
        max_points=exercise.points,
        properties=results,
        seconds=time.perf_counter() - start,
        fault=outcome.fault,
    )


# --------------------------------------------------------------------------- the self-check


def _qualified_name(obj: Any) -> str:
    if inspect.ismodule(obj):
        return obj.__name__
    module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{module}.{name}" if isinstance(module, str) and isinstance(name, str) else ""


def _referenced_globals(fn: Any) -> dict[str, Any]:
    """The globals a function's code (and the functions nested in it) refers to, by name."""
    code = getattr(fn, "__code__", None)
    namespace = getattr(fn, "__globals__", None)
    if code is None or not isinstance(namespace, dict):
        return {}
    names: set[str] = set()
    stack = [code]
    while stack:
        c = stack.pop()
        names.update(c.co_names)
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    return {name: namespace[name] for name in sorted(names) if name in namespace}


def _uses_reference(exercise: Exercise, submission: Any) -> str | None:
    """The self-check's look at a local object: does it name one of the exercise's references?

    Only a courtesy for instant feedback (anything in the learner's process can be patched): in grading,
    the references are not there at all (:mod:`autograder.redact`).
    """
    if not exercise.reference:
        return None
    seen: dict[str, Any] = {}
    candidates = [submission]
    if inspect.isclass(submission):
        seen.update({f"a base class {b.__name__}": b for b in submission.__mro__[1:]})
        candidates += [v for v in vars(submission).values() if inspect.isfunction(v)]
    for fn in candidates:
        seen.update(_referenced_globals(fn))
    for alias, obj in seen.items():
        qualified = _qualified_name(obj)
        if not qualified.startswith("supercourse"):
            continue
        for name in exercise.reference:
            if qualified == name or qualified.startswith(name + ".") or name.startswith(qualified + "."):
                return (
                    f"implement this yourself: your code uses `{alias}`, which is `{qualified}`, "
                    "the reference this exercise asks you to write."
                )
    return None


def self_check(exercise_id: str, submission: Any, limits: GradingLimits = DEFAULT_LIMITS,
               secret: int | None = None) -> Verdict:
    """The self-check: the learner's local object served to the checks over an in-process loopback channel."""
    exercise = get_exercise(exercise_id)
    start = time.perf_counter()
    if submission is None:
        return _blocked(exercise, f"nothing to check: `{exercise.function}` is not defined (did you run its cell, or rename it?)", start)
    reason = _uses_reference(exercise, submission)
    if reason is not None:
        return _blocked(exercise, reason, start)
    session = Session(Loopback({exercise.function: submission}, lesson=exercise.lesson), limits)
    return run_exercise(exercise_id, RemoteFunction(session, exercise.function, exercise.modifies), limits, secret)


def _in_jupyter() -> bool:
    """Whether a notebook front end will show the returned verdict (as HTML)."""
    shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def check(exercise_id: str, submission: Any) -> Verdict:
    """Check a learner's implementation (the self-check cell).

    Returns the :class:`Verdict`: a notebook shows it once, as HTML; elsewhere
    its text is printed. This is feedback only: a grade is always decided by
    :mod:`autograder.grader`, outside the learner's process.
    """
    with contextlib.redirect_stderr(sys.stdout):
        verdict = self_check(exercise_id, submission)
        if not _in_jupyter():
            print(verdict.report())
        path = os.environ.get(RESULTS_ENV)
        if path:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(verdict.to_json()) + "\n")
    return verdict
