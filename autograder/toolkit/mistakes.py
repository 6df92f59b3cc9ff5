"""Mistake tables: each exercise's known mistakes, defined once.

A :class:`Mistake` is a wrong implementation a learner plausibly writes, the
hint that names it, and a keyword that hint (or the property that catches it)
contains. The check uses the table to *diagnose*: it runs every mistake on the
inputs it gave the learner (in the check's own process) and, when the learner's
output matches one, appends that mistake's hint. The tests use the same table
to *prove* the check rejects each mistake with a message containing its keyword.

Some mistakes are caught by a contract rather than by their values (a float32
result for float64 input, a NumPy round-trip that breaks on a Parameter): they
have ``compare=False`` and no hint; their keyword is in the property's message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from .contracts import close

__all__ = ["Mistake", "diagnose", "outputs_match"]


@dataclass(frozen=True)
class Mistake:
    """One known mistake of one exercise.

    Args:
        name: identifier, e.g. ``"squared_norms"`` (used as the test id).
        implementation: the wrong function, same signature as the exercise.
        keyword: a phrase the learner's message must contain when this mistake is made.
        hint: what the check appends when the learner's output matches this
            mistake's; must contain ``keyword`` (case-insensitive). Empty for
            mistakes a contract catches (``compare=False``).
        compare: whether the check compares outputs with this mistake's to diagnose.
    """

    name: str
    implementation: Callable[..., Any]
    keyword: str
    hint: str = ""
    compare: bool = True

    def __post_init__(self) -> None:
        if self.compare and self.keyword.lower() not in self.hint.lower():
            raise ValueError(f"mistake {self.name!r}: its hint must contain its keyword {self.keyword!r}")

    def __repr__(self) -> str:  # short ids in pytest output
        return self.name


def outputs_match(got: Any, expected: Any, rtol: float, atol: float) -> bool:
    """Equal tensors (within tolerance; integers exactly), or equal plain data (lists, tuples, numbers, strings)."""
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
            return False
        if not expected.is_floating_point() and not got.is_floating_point():
            return bool(torch.equal(got.cpu().long(), expected.cpu().long()))
        return close(got, expected, rtol, atol)
    if isinstance(expected, (list, tuple)):
        return (
            isinstance(got, (list, tuple))
            and len(got) == len(expected)
            and all(outputs_match(g, e, rtol, atol) for g, e in zip(got, expected))
        )
    return got == expected


def diagnose(
    mistakes: Sequence[Mistake],
    got: Any,
    args: Sequence[Any],
    kwargs: dict[str, Any] | None = None,
    rtol: float = 1e-4,
    atol: float = 1e-6,
    same: Callable[[Any, Any], bool] | None = None,
) -> str:
    """The hint of the first mistake whose output on ``args`` equals ``got``, or ``""``.

    Each mistake runs on fresh copies of the inputs; one that raises on them is skipped.
    ``same(got, theirs)`` replaces the default comparison (e.g. order-free lists).
    """
    kwargs = kwargs or {}
    for m in mistakes:
        if not m.compare:
            continue
        try:
            a = [x.detach().clone() if isinstance(x, torch.Tensor) else x for x in args]
            theirs = m.implementation(*a, **kwargs)
        except Exception:
            continue
        if isinstance(theirs, torch.Tensor):
            theirs = theirs.detach()
        ok = same(got, theirs) if same is not None else outputs_match(got, theirs, rtol, atol)
        if ok:
            return " " + m.hint
    return ""
