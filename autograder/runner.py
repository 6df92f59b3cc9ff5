"""Running an exercise's pytest checks against a learner's implementation.

:func:`run_exercise` runs pytest in-process on the lesson's check module,
selecting the exercise's properties and handing the implementation to the
tests through the ``submission`` fixture. Each property runs under a time
limit (an infinite loop fails that property, it does not hang grading), and
nothing is written to stderr: nbgrader zeroes a test cell that writes there.

:func:`check` is what a notebook's check cell calls: it prints the verdict on
stdout and returns a :class:`Verdict` whose plain-text form is the score, which
nbgrader reads as partial credit.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import os
import signal
import sys
import textwrap
import threading
import time
import tokenize
import types
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .exercises import Exercise, get_exercise
from .framework import CheckFailed

__all__ = ["PropertyResult", "Verdict", "run_exercise", "check", "DEFAULT_TIME_LIMIT", "RESULTS_ENV"]

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
    """The outcome of one exercise. ``repr()`` is the score (nbgrader's partial credit)."""

    id: str
    title: str
    points: float
    max_points: float
    properties: list[PropertyResult] = field(default_factory=list)
    seconds: float = 0.0

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
        colour = "#1a7f37" if self.passed else ("#9a6700" if self.points else "#cf222e")
        return f'<b style="color:{colour}">{self.id}: {self.points:g} / {self.max_points:g} points</b>'

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(passed=self.passed, message=self.message)
        return out

    def report(self) -> str:
        """The verdict as plain text, one line per failed property."""
        mark = "PASS" if self.passed else "FAIL"
        lines = [f"[{mark}] {self.id} {self.title}: {self.points:g}/{self.max_points:g} points"]
        said = set()
        for p in self.properties:
            if p.passed:
                lines.append(f"  ok    {p.test.removeprefix('test_').replace('_', ' ')}")
            elif p.message not in said:
                said.add(p.message)
                lines.append(f"  FAIL  {p.message}")
        return "\n".join(lines)


class _Timeout(BaseException):
    """Raised inside the learner's code when a property exceeds its time limit."""


class _Plugin:
    """Gives the tests the learner's implementation and collects their outcomes."""

    def __init__(self, exercise: Exercise, submission: Any, time_limit: float) -> None:
        self.exercise = exercise
        self._submission = submission
        self.time_limit = time_limit
        self.outcomes: dict[str, list[str]] = {p.test: [] for p in exercise.properties}
        self.failures: dict[str, str] = {}
        self.timed_out = False

    def pytest_runtest_setup(self, item) -> None:
        # After one time-out, the exercise's other properties fail at once.
        if self.timed_out:
            raise _Timeout()

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
        use_alarm = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
        previous = None
        if use_alarm:
            def on_alarm(signum, frame):
                self.timed_out = True
                raise _Timeout()

            previous = signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, self.time_limit)
        try:
            yield
        finally:
            if use_alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)

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
            return str(err)
        if isinstance(err, _Timeout):
            return (
                f"took longer than {self.time_limit:g} s, so it was stopped: look for a loop that never "
                "ends, or work that grows with the batch far faster than it should."
            )
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


def _forbidden(exercise: Exercise, submission: Any) -> str | None:
    """Why ``submission`` may not be graded (it calls the reference it should implement), or None.

    Two looks: the code tokens of its source (so comments and docstrings that
    mention a forbidden name are fine), and what the globals its code uses are
    (so an alias made in another cell, ``fn = supercourse.metrics.feature_norms``,
    is caught too).
    """
    if not exercise.forbid:
        return None
    message = "implement this yourself: your code uses `{}`, the reference this exercise asks you to write."
    try:
        tokens = _code_tokens(inspect.getsource(submission))
    except (OSError, TypeError):
        tokens = []
    for name in exercise.forbid:
        if _contains(tokens, _code_tokens(name)):
            return message.format(name)
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


def run_exercise(exercise_id: str, submission: Any, time_limit: float = DEFAULT_TIME_LIMIT) -> Verdict:
    """Run every property of ``exercise_id`` against ``submission``; never raises for learner bugs."""
    exercise = get_exercise(exercise_id)
    start = time.perf_counter()
    results: list[PropertyResult] = []
    blocked = _forbidden(exercise, submission)
    if blocked is None and submission is None:
        blocked = f"nothing to check: `{exercise.function}` is not defined (did you run its cell, or rename it?)"
    if blocked is not None:
        results = [PropertyResult(p.test, 0.0, p.points, False, blocked) for p in exercise.properties]
    else:
        plugin = _Plugin(exercise, submission, time_limit)
        args = [
            "--pyargs", exercise.module,
            "-c", str(_INI), "--rootdir", str(_INI.parent),
            "-p", "no:cacheprovider", "-p", "no:terminal", "-p", "no:logging",
            "--capture=sys", "-W", "ignore",
        ]
        sink = io.StringIO()
        with warnings.catch_warnings(), contextlib.redirect_stderr(sink), contextlib.redirect_stdout(sink):
            warnings.simplefilter("ignore")
            pytest.main(args, plugins=[plugin])
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
    )


def check(exercise_id: str, submission: Any, time_limit: float = DEFAULT_TIME_LIMIT) -> Verdict:
    """Check a learner's implementation and print the verdict on stdout.

    Returns the :class:`Verdict`; as a cell's last expression its text form is
    the score, which nbgrader takes as partial credit.
    """
    with contextlib.redirect_stderr(sys.stdout):
        verdict = run_exercise(exercise_id, submission, time_limit)
        print(verdict.report())
        path = os.environ.get(RESULTS_ENV)
        if path:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(verdict.to_json()) + "\n")
    return verdict
