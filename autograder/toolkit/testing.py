"""For the tests of the checks: prove that a mistake loses points, and that correct code keeps them.

Both run the exercise's checks exactly as the self-check does (the learner's
function served over the in-process loopback channel, with the same encoding
as the sandboxed worker), so a check that inspects the submission, or relies on
object identity, fails here as it would in grading.
"""

from __future__ import annotations

from typing import Any, Callable

from .mistakes import Mistake

__all__ = ["grade", "assert_rejected", "assert_full_marks", "messages", "generic_mutant", "Generic"]


def grade(exercise_id: str, implementation: Callable[..., Any], secret: int | None = None):
    """The :class:`autograder.runner.Verdict` of ``implementation`` on ``exercise_id``'s checks.

    ``secret`` fixes the check inputs (a fresh secret by default, as in grading).
    """
    from autograder.runner import self_check

    return self_check(exercise_id, implementation, secret=secret)


def messages(verdict: Any) -> str:
    """Every failed property's message of a verdict, joined."""
    return " ".join(p.message for p in verdict.properties if not p.passed)


def assert_rejected(exercise_id: str, mistake: Mistake | Callable[..., Any], keyword: str | None = None) -> None:
    """A wrong implementation loses points, and the messages contain its keyword."""
    impl, key = (mistake.implementation, mistake.keyword) if isinstance(mistake, Mistake) else (mistake, keyword)
    verdict = grade(exercise_id, impl)
    assert verdict.points < verdict.max_points, f"{exercise_id}: the wrong implementation scored full marks"
    text = messages(verdict)
    assert key is None or key.lower() in text.lower(), f"{exercise_id}: expected {key!r} in the messages, got: {text}"


def assert_full_marks(exercise_id: str, implementation: Callable[..., Any]) -> None:
    """A correct implementation keeps every point."""
    verdict = grade(exercise_id, implementation)
    assert verdict.passed, f"{exercise_id}: a correct implementation lost points:\n{verdict.report()}"


# --------------------------------------------------------------------------- generic mutants
# Wrong implementations made from a correct one, for every exercise alike: the lesson proofs
# require that each loses points where it applies (``applied`` says whether it changed anything).


class Generic:
    """A correct implementation turned wrong in one generic way (see :func:`generic_mutant`)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.applied = False


def _first_float(value: Any, path: tuple = ()) -> tuple | None:
    import torch

    if isinstance(value, torch.Tensor):
        return path if value.is_floating_point() and value.numel() > 0 else None
    if isinstance(value, float):
        return path
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found = _first_float(v, (*path, i))
            if found is not None:
                return found
    if isinstance(value, dict):
        for k, v in value.items():
            found = _first_float(v, (*path, k))
            if found is not None:
                return found
    return None


def _replace(value: Any, path: tuple, fn: Callable[[Any], Any]) -> Any:
    if not path:
        return fn(value)
    head, rest = path[0], path[1:]
    if isinstance(value, list):
        return [_replace(v, rest, fn) if i == head else v for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return tuple(_replace(v, rest, fn) if i == head else v for i, v in enumerate(value))
    return {k: (_replace(v, rest, fn) if k == head else v) for k, v in value.items()}


def _corrupt(value: Any, state: Generic) -> Any:
    """``value`` with one entry of its first float tensor set to NaN or inf, or detached."""
    import torch

    path = _first_float(value)
    if path is None:
        return value

    def change(t: Any) -> Any:
        if isinstance(t, float):
            if state.kind == "detached":
                return t
            state.applied = True
            return float("nan") if state.kind == "nan" else float("inf")
        state.applied = True
        if state.kind == "detached":
            return t.detach()
        t = t.detach().clone()
        t.view(-1)[t.numel() // 2] = float("nan") if state.kind == "nan" else float("inf")
        return t

    return _replace(value, path, change)


def _edit_arguments(args: tuple, kwargs: dict, state: Generic, spare: tuple[str, ...]) -> None:
    """Change the first float tensor argument in place (the mistake the worker must notice)."""
    import torch

    for value in [*args, *(v for k, v in kwargs.items() if k not in spare)]:
        if isinstance(value, torch.Tensor) and value.is_floating_point() and value.numel() > 0:
            with torch.no_grad():
                value.add_(1.0)
            state.applied = True
            return


def generic_mutant(implementation: Any, kind: str, spare: tuple[str, ...] = ()) -> tuple[Any, Generic]:
    """``implementation`` made wrong one generic way, and a record of whether the change ever applied.

    Kinds: ``"nan"`` and ``"inf"`` (one entry of the first float tensor of the answer), ``"detached"``
    (the answer carries no gradient), ``"in_place"`` (the first float tensor argument is changed in
    place; arguments named in ``spare`` may be). A class is changed in its ``forward``.
    """
    import inspect

    state = Generic(kind)
    if inspect.isclass(implementation):
        original = implementation.forward

        def forward(self, *args, **kwargs):
            out = original(self, *args, **kwargs)
            if kind == "in_place":
                _edit_arguments(args, kwargs, state, spare)
                return out
            return _corrupt(out, state)

        return type(implementation.__name__, (implementation,), {"forward": forward}), state

    def mutant(*args, **kwargs):
        out = implementation(*args, **kwargs)
        if kind == "in_place":
            _edit_arguments(args, kwargs, state, spare)
            return out
        return _corrupt(out, state)

    mutant.__name__ = mutant.__qualname__ = getattr(implementation, "__name__", "mutant")
    return mutant, state
