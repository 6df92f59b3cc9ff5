"""Running an exercise's pytest checks against a learner's implementation.

The checks always run in the grader's own process and reach the learner's
code only through :mod:`autograder.remote`: plain data in, plain data out.

* For a grade, the learner's code runs in a separate, sandboxed worker process
  (:mod:`autograder.grader`); a property that runs past its time limit kills
  that worker from outside.
* For the self-check cell in a learner's own notebook, :func:`check` serves
  the learner's object to the same checks over an in-process loopback channel
  (same encoding, instant feedback; the self-check is never the grade).

:func:`run_exercise` never raises for a learner's bug: every failure becomes a
property's message.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import os
import sys
import textwrap
import time
import tokenize
import types
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from .exercises import Exercise, get_exercise
from .framework import CheckFailed
from .remote import Loopback, RemoteFunction, Session, SoftTimeout
from .sandbox import WorkerDied, WorkerTimeout

__all__ = ["PropertyResult", "Verdict", "run_exercise", "check", "DEFAULT_TIME_LIMIT", "RESULTS_ENV", "forbidden_in_source"]

DEFAULT_TIME_LIMIT = 20.0
"""Seconds one property may take before it fails as a probable infinite loop."""

RESULTS_ENV = "SUPERCOURSE_RESULTS"
"""If set, :func:`check` appends each verdict as a JSON line to this file."""

_INI = Path(__file__).with_name("checks") / "pytest.ini"


@dataclass
class PropertyResult:
    test: str
    points: float
    max_points: float
    passed: bool
    message: str


@dataclass
class Verdict:
    """The outcome of one exercise. ``repr()`` is the score.

    ``fault`` says why the exercise could not be graded normally (the worker
    crashed or was killed, the code uses the reference, the name is not
    defined), or is None.
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


class _Plugin:
    """Gives the tests the learner's implementation and collects their outcomes."""

    def __init__(self, exercise: Exercise, submission: RemoteFunction, time_limit: float) -> None:
        self.exercise = exercise
        self._submission = submission
        self.time_limit = time_limit
        self.outcomes: dict[str, list[str]] = {p.test: [] for p in exercise.properties}
        self.failures: dict[str, str] = {}
        self.fault: str | None = None
        self.timed_out: str | None = None
        self.reference: str | None = None

    def pytest_runtest_setup(self, item) -> None:
        # After the worker died (crash, time-out), the exercise's other properties fail at once.
        if self.fault is not None:
            raise WorkerDied(self.fault)
        if self.timed_out is not None:
            raise SoftTimeout(self.timed_out)

    @pytest.fixture
    def submission(self) -> Any:
        return self._submission

    def pytest_collection_modifyitems(self, config, items) -> None:
        keep, drop = [], []
        for item in items:
            mark = item.get_closest_marker("sc_property")
            (keep if mark and mark.kwargs["exercise"] == self.exercise.name else drop).append(item)
        items[:] = keep
        if drop:
            config.hook.pytest_deselected(items=drop)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        # The property's time budget: each call into the learner's code gets what is left of it.
        session = self._submission.session
        session.deadline = time.monotonic() + self.time_limit
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                yield
        finally:
            session.deadline = None

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        name = getattr(item, "originalname", item.name)
        if report.when == "call" or report.failed:
            self.outcomes.setdefault(name, []).append(report.outcome)
        if report.failed and name not in self.failures and call.excinfo is not None:
            self.failures[name] = self._message(call.excinfo.value)

    def _message(self, err: BaseException) -> str:
        if isinstance(err, CheckFailed):
            if getattr(err, "reference", None):
                self.reference = self.reference or str(err)
            return str(err)
        if isinstance(err, (WorkerTimeout, SoftTimeout)):
            message = (
                f"took longer than {self.time_limit:g} s, so it was stopped: look for a loop that never "
                "ends, or work that grows with the batch far faster than it should."
            )
            self.timed_out = message
            if isinstance(err, WorkerTimeout):
                self.fault = self.fault or message
            return message
        if isinstance(err, WorkerDied):
            message = self.fault or (
                f"your code stopped the process that ran it ({err}): look for os._exit, sys.exit, a crash in "
                "native code, or memory use beyond the limit. The exercise's other checks were not run."
            )
            self.fault = self.fault or message
            return message
        if isinstance(err, AssertionError):
            return str(err).split("\n")[0] or "an assertion in the check failed"
        return f"the check could not run your code: {type(err).__name__}: {err}"


_SKIPPED_TOKENS = {
    tokenize.COMMENT, tokenize.STRING, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
    tokenize.ENDMARKER, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING),
}


def _code_tokens(text: str) -> list[str]:
    """The tokens of ``text`` that are code: comments, docstrings and other strings left out."""
    found: list[str] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(textwrap.dedent(text)).readline):
            if tok.type not in _SKIPPED_TOKENS:
                found.append(tok.string)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass  # an unfinished fragment such as "SCHEDULES[": keep what was read
    return found


def _contains(tokens: list[str], part: list[str]) -> bool:
    n = len(part)
    return n > 0 and any(tokens[i : i + n] == part for i in range(len(tokens) - n + 1))


def forbidden_in_source(exercise: Exercise, source: str) -> str | None:
    """Why the source of the learner's cell may not be graded (it names the reference it should implement), or None.

    Only code tokens count: comments and docstrings may mention the names.
    """
    tokens = _code_tokens(source)
    for name in exercise.forbid:
        if _contains(tokens, _code_tokens(name)):
            return f"implement this yourself: your code uses `{name}`, the reference this exercise asks you to write."
    return None


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


def _forbidden_local(exercise: Exercise, submission: Any) -> str | None:
    """The self-check's look at a local object: its source tokens, and what its globals are (aliases)."""
    if not exercise.forbid:
        return None
    try:
        found = forbidden_in_source(exercise, inspect.getsource(submission))
    except (OSError, TypeError):
        found = None
    if found:
        return found
    for alias, obj in _referenced_globals(submission).items():
        qualified = _qualified_name(obj)
        if not qualified.startswith("supercourse"):
            continue
        for name in exercise.forbid:
            dotted = name.rstrip("[(").strip()
            if dotted and f".{dotted}." in f".{qualified}.":
                return (
                    f"implement this yourself: your code calls `{alias}`, which is `{qualified}`, "
                    "the reference this exercise asks you to write."
                )
    return None


def _blocked(exercise: Exercise, reason: str, start: float, fault: str | None = None) -> Verdict:
    results = [PropertyResult(p.test, 0.0, p.points, False, reason) for p in exercise.properties]
    return Verdict(exercise.id, exercise.title, 0.0, exercise.points, results, time.perf_counter() - start, fault)


def run_exercise(
    exercise_id: str,
    submission: RemoteFunction,
    time_limit: float = DEFAULT_TIME_LIMIT,
    source: str | None = None,
) -> Verdict:
    """Run every property of ``exercise_id`` against ``submission``; never raises for learner bugs.

    Args:
        submission: the learner's implementation as a :class:`RemoteFunction`
            (a local object is served over the in-process loopback, as in :func:`check`).
        source: the source of the learner's cell, for the static look at what it uses.
    """
    if not isinstance(submission, RemoteFunction):
        return self_check(exercise_id, submission, time_limit)
    exercise = get_exercise(exercise_id)
    start = time.perf_counter()
    if source is not None:
        reason = forbidden_in_source(exercise, source)
        if reason is not None:
            return _blocked(exercise, reason, start, fault=reason)
    plugin = _Plugin(exercise, submission, time_limit)
    args = [
        "--pyargs", exercise.module,
        "-c", str(_INI), "--rootdir", str(_INI.parent),
        "-p", "no:cacheprovider", "-p", "no:terminal", "-p", "no:logging",
        "--capture=no", "-W", "ignore",
    ]
    sink = io.StringIO()
    threads = torch.get_num_threads()
    with warnings.catch_warnings(), contextlib.redirect_stderr(sink), contextlib.redirect_stdout(sink):
        warnings.simplefilter("ignore")
        try:
            pytest.main(args, plugins=[plugin])
        finally:
            torch.set_num_threads(threads)
    if plugin.reference is not None:
        return _blocked(exercise, plugin.reference, start, fault=plugin.reference)
    results = []
    for prop in exercise.properties:
        outcomes = plugin.outcomes.get(prop.test, [])
        ok = bool(outcomes) and all(o == "passed" for o in outcomes)
        msg = "" if ok else plugin.failures.get(prop.test, "this check did not run")
        results.append(PropertyResult(prop.test, prop.points if ok else 0.0, prop.points, ok, msg))
    return Verdict(
        id=exercise.id,
        title=exercise.title,
        points=float(sum(r.points for r in results)),
        max_points=exercise.points,
        properties=results,
        seconds=time.perf_counter() - start,
        fault=plugin.fault,
    )


def self_check(exercise_id: str, submission: Any, time_limit: float = DEFAULT_TIME_LIMIT) -> Verdict:
    """The self-check: the learner's local object served to the checks over an in-process loopback channel."""
    exercise = get_exercise(exercise_id)
    start = time.perf_counter()
    if submission is None:
        return _blocked(exercise, f"nothing to check: `{exercise.function}` is not defined (did you run its cell, or rename it?)", start)
    reason = _forbidden_local(exercise, submission)
    if reason is not None:
        return _blocked(exercise, reason, start)
    session = Session(Loopback({exercise.function: submission}), time_limit)
    return run_exercise(exercise_id, RemoteFunction(session, exercise.function), time_limit)


def check(exercise_id: str, submission: Any, time_limit: float = DEFAULT_TIME_LIMIT) -> Verdict:
    """Check a learner's implementation (the self-check cell) and print the verdict on stdout.

    Returns the :class:`Verdict`. This is feedback only: a grade is always
    decided by :mod:`autograder.grader`, outside the learner's process.
    """
    with contextlib.redirect_stderr(sys.stdout):
        verdict = self_check(exercise_id, submission, time_limit)
        print(verdict.report())
        path = os.environ.get(RESULTS_ENV)
        if path:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(verdict.to_json()) + "\n")
    return verdict
