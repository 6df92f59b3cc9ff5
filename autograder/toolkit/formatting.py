"""Numbers and tensors in check messages, with digits enough to see a difference.

A message that says "should be 0.0495156, got 0.0495156" is worse than none.
:func:`fmt` prints a value; :func:`fmt_pair` prints an expected and a received
value with as many significant digits as it takes for them to read differently
(when they differ at all), so the learner always sees where they part.
"""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["fmt", "fmt_pair", "number", "describe"]

MAX_ITEMS = 8
"""How many entries of a tensor a message shows before it writes "..."."""


def _flat(values: Any) -> list:
    if isinstance(values, torch.Tensor):
        t = values.detach().cpu()
        if t.dtype == torch.bool:
            return [bool(v) for v in t.flatten().tolist()]
        return t.flatten().tolist()
    if isinstance(values, (list, tuple)):
        out: list = []
        for v in values:
            out.extend(_flat(v) if isinstance(v, (list, tuple, torch.Tensor)) else [v])
        return out
    return [values]


def number(x: Any, digits: int = 4) -> str:
    """One number with ``digits`` significant digits; ints, bools and non-finite values as they are."""
    if isinstance(x, bool) or isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            return str(x)
        return f"{x:.{digits}g}"
    return str(x)


def fmt(values: Any, digits: int = 4, limit: int = MAX_ITEMS) -> str:
    """``[v0, v1, ...]`` for a tensor or a sequence (at most ``limit`` entries), or one number."""
    if isinstance(values, (int, float, bool)) and not isinstance(values, torch.Tensor):
        return number(values, digits)
    if isinstance(values, torch.Tensor) and values.dim() == 0:
        return number(values.item(), digits)
    flat = _flat(values)
    shown = ", ".join(number(v, digits) for v in flat[:limit])
    return "[" + shown + (", ...]" if len(flat) > limit else "]")


def fmt_pair(want: Any, got: Any, digits: int = 4, limit: int = MAX_ITEMS, max_digits: int = 17) -> tuple[str, str]:
    """``(expected, received)`` formatted alike, with the fewest digits (at least ``digits``) that tell them apart.

    If the values differ only beyond ``max_digits`` digits, or are equal, both
    are written with ``digits`` digits.
    """
    a, b = _flat(want), _flat(got)
    if a != b and len(a) == len(b):
        for d in range(digits, max_digits + 1):
            sa, sb = fmt(want, d, limit), fmt(got, d, limit)
            if sa != sb:
                return sa, sb
    return fmt(want, digits, limit), fmt(got, digits, limit)


def describe(value: Any) -> str:
    """Short description of a value for messages: shape, dtype and device for tensors."""
    if isinstance(value, torch.Tensor):
        grad = ", requires_grad" if value.requires_grad else ""
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype} on {value.device}{grad}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)}: {value!r}"[:160]
    from autograder.remote import RemoteObject

    if isinstance(value, RemoteObject):
        return f"an object of type {value.remote_type.rsplit('.', 1)[-1]}"
    return f"{type(value).__name__} {value!r}"[:160]
