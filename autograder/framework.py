"""What a check module is written with.

A lesson's checks are pytest test functions in ``autograder/checks/lessonNN.py``.
Each test is one *property* of one exercise and carries its points::

    @prop("generate_batch", points=1)
    def test_density_per_instance(submission):
        x = call(submission, 4096, p)
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
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from .remote import LearnerError, RemoteObject, SoftTimeout
from .sandbox import WorkerDied
from .worker.wire import Construct

_HERE = Path(__file__).resolve().parent

__all__ = ["CheckFailed", "prop", "expect", "call", "describe", "close", "probe", "figure_data", "Construct", "LearnerError"]


class CheckFailed(AssertionError):
    """A property of the learner's implementation does not hold; ``str()`` is the message.

    ``reference`` is True when the learner's code used the reference it is
    asked to write (the whole exercise then scores 0).
    """

    def __init__(self, message: str = "", reference: bool = False) -> None:
        super().__init__(message)
        self.reference = reference


def prop(exercise: str, points: float = 1) -> pytest.MarkDecorator:
    """Mark a test as one property of ``exercise`` worth ``points``.

    A parametrized test earns its points only if every case passes.
    """
    return pytest.mark.sc_property(exercise=exercise, points=points)


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


def describe(t: object) -> str:
    """Short description of a value for messages: shape and dtype for tensors."""
    if isinstance(t, torch.Tensor):
        return f"a tensor of shape {tuple(t.shape)} and dtype {t.dtype} on {t.device}"
    if isinstance(t, RemoteObject):
        return f"an object of type {t.remote_type.rsplit('.', 1)[-1]}"
    return f"{type(t).__name__} {t!r}"[:120]


def close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-5, atol: float = 1e-6) -> bool:
    """``torch.allclose`` that is False (not an error) for mismatched shapes."""
    return isinstance(a, torch.Tensor) and a.shape == b.shape and torch.allclose(a.float(), b.float(), rtol=rtol, atol=atol)
