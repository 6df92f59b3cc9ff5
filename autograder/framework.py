"""What a check module is written with.

A lesson's checks are plain functions in its folder's ``checks.py``
(``solutions/NN-slug/checks.py``). Each is one *property* of one exercise,
carries its points, and is called with the learner's submission::

    @prop("generate_batch", points=1)
    def test_density_per_instance(submission):
        x = call(submission, 4096, p, generator=secret_gen(1))
        expect(close(x.ne(0).float().mean(0), p, atol=0.02),
               "each instance must use its own density ...")

``submission`` is a fixture holding the learner's implementation as a
:class:`~autograder.remote.RemoteFunction`: the learner's code runs in another
process, so only plain data crosses (tensors, numbers, strings, None,
``torch.Generator``, containers of those; :class:`Construct` for a model the
check hands over). What comes back is plain data or a
:class:`~autograder.remote.RemoteObject` (read a model through
:func:`probe`, a figure through :func:`figure_data`). Failures raise
:class:`CheckFailed` whose message is what the learner reads, so write it as
one or two sentences: which property, expected versus got, and a hint.

Inputs come from :func:`autograder.toolkit.secret_gen`/:func:`~autograder.toolkit.secret_seed`
(and torch's global generator, which the runner seeds): a secret of each
grading run, so no answer can be recorded at home and replayed.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

from .remote import LearnerError, RemoteObject, SoftTimeout
from .sandbox import WorkerDied
from .worker.wire import Construct

_HERE = Path(__file__).resolve().parent

__all__ = ["CheckFailed", "prop", "expect", "call", "probe", "figure_data", "Construct", "LearnerError"]


class CheckFailed(AssertionError):
    """A property of the learner's implementation does not hold; ``str()`` is the message.

    ``reference`` is True when the learner's code used the reference it is
    asked to write (the whole exercise then scores 0). A check that catches
    such a failure and raises its own (to add context) keeps the flag: a
    ``CheckFailed`` made while one with ``reference`` is being handled has it too.
    """

    def __init__(self, message: str = "", reference: bool = False) -> None:
        super().__init__(message)
        handling = sys.exc_info()[1]
        self.reference = reference or bool(getattr(handling, "reference", False) and isinstance(handling, CheckFailed))


def prop(exercise: str, points: float = 1) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    """Mark a function ``test_*(submission)`` as one property of ``exercise`` worth ``points``."""
    from .exercises import PROPERTY_ATTR

    if not isinstance(points, (int, float)) or isinstance(points, bool) or points <= 0:
        raise ValueError(f"points must be a positive number, got {points!r}")

    def mark(fn: Callable[[Any], None]) -> Callable[[Any], None]:
        setattr(fn, PROPERTY_ATTR, (exercise, float(points)))
        return fn

    return mark


def expect(condition: object, message: str) -> None:
    """Fail the property with ``message`` unless ``condition`` is true."""
    if isinstance(condition, torch.Tensor):
        condition = bool(condition.all())
    if not condition:
        raise CheckFailed(message)


def _learner_frame(tb) -> str:
    """The last frame of the traceback that is not library code, as 'line N: source'."""
    frames = traceback.extract_tb(tb)
    for frame in reversed(frames):
        name = frame.filename
        if "site-packages" in name or "/torch/" in name or Path(name).parent == _HERE:
            continue
        where = "a notebook cell" if name.startswith("<") or "ipykernel" in name else name.rsplit("/", 1)[-1]
        return f" (in {where}, line {frame.lineno}: `{(frame.line or '').strip()}`)"
    return ""


def call(fn: Callable[..., Any], *args: Any, what: str | None = None, **kwargs: Any) -> Any:
    """Call the learner's code, turning its exceptions into readable failures."""
    label = what or getattr(fn, "__qualname__", getattr(fn, "__name__", "your code"))
    try:
        return fn(*args, **kwargs)
    except (CheckFailed, SoftTimeout, WorkerDied):  # the grader's own signals: a dead worker is not a learner's exception
        raise
    except LearnerError as err:
        raise learner_failure(label, err) from None
    except NotImplementedError:
        raise CheckFailed(f"`{label}` is not implemented yet: replace `raise NotImplementedError()` with your code.") from None
    except Exception as err:  # the learner's bug, reported rather than propagated
        where = _learner_frame(sys.exc_info()[2])
        raise CheckFailed(f"`{label}` raised {type(err).__name__}: {err}{where}") from None


def learner_failure(label: str, err: LearnerError) -> CheckFailed:
    """The failure to report for an error the learner's code raised in the worker."""
    if err.reference:
        return CheckFailed(f"implement this yourself: {err.message}", reference=True)
    if err.type_name == "NotImplementedError":
        return CheckFailed(f"`{label}` is not implemented yet: replace `raise NotImplementedError()` with your code.")
    if err.type_name == "ModifiedArgument":
        return CheckFailed(f"In-place edit: `{label}` {err.message}")
    where = f" ({err.where})" if err.where else ""
    return CheckFailed(f"`{label}` raised {err.type_name}: {err.message}{where}")


def probe(obj: Any, name: str, *args: Any) -> Any:
    """Run the worker-side helper ``autograder.worker.probes.<name>(obj, *args)`` on a learner's object.

    For a local object (tests of the checks themselves) the helper runs here.
    """
    if isinstance(obj, RemoteObject):
        return obj.probe(name, *args)
    from .worker import probes

    return getattr(probes, name)(obj, *args)


def figure_data(fig: Any) -> dict:
    """A figure the learner's code returned, as plain data (see :mod:`autograder.worker.figures`)."""
    try:
        return probe(fig, "figure_data")
    except LearnerError as err:
        raise CheckFailed(f"could not read the figure your code returned: {err.type_name}: {err.message}") from None
