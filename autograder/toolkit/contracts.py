"""Contracts on what an exercise returns, and comparisons with stated tolerances.

:func:`tensor_out` enforces, with one message per broken promise: a tensor, of
exactly the promised shape (never compared after a reshape), of the promised
kind (integers for counts and labels, floats for rates and fractions), whose
dtype and device follow the input's where the docstring implies it, with no
NaN or inf. :func:`close` compares in float64 with tolerances loose enough for
any float32-exact answer.
"""

from __future__ import annotations

from typing import Any, Callable, Literal

import torch

from autograder.framework import CheckFailed, expect

from .formatting import describe, fmt_pair

__all__ = ["tensor_out", "close", "first_difference", "show_difference", "Kind", "RTOL", "ATOL"]

Kind = Literal["float", "integer", "any"]

RTOL = 1e-4
"""Relative tolerance of value comparisons: float32 rounding (about 1e-7 per operation) stays far below it."""

ATOL = 1e-6
"""Absolute tolerance, relative to the largest expected magnitude (so tiny inputs are judged at their own scale)."""


def _scale(want: torch.Tensor) -> float:
    """The magnitude absolute tolerances are relative to: the largest expected value, or 1 if all are 0."""
    m = float(want.abs().nan_to_num(0, 0, 0).max()) if want.numel() else 0.0
    return m if m > 0 else 1.0


def close(got: torch.Tensor, want: torch.Tensor, rtol: float = RTOL, atol: float = ATOL) -> bool:
    """``got`` equals ``want`` within ``rtol`` and ``atol * max|want|`` (``atol`` itself when every expected value is 0), compared in float64.

    False (not an error) when ``got`` is not a tensor or the shapes differ. A NaN never passes (not even
    against a NaN), and an infinity only where exactly the same infinity is expected.
    """
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(want.shape):
        return False
    g = got.detach().cpu().double()
    w = want.detach().cpu().double()
    if bool(g.isnan().any()) or bool(w.isnan().any()):
        return False
    infinite = g.isinf() | w.isinf()
    if bool(infinite.any()) and not torch.equal(g[infinite], w[infinite]):
        return False
    return bool(torch.isclose(g, w, rtol=rtol, atol=atol * _scale(w)).all())


def first_difference(got: torch.Tensor, want: torch.Tensor, rtol: float = RTOL, atol: float = ATOL) -> tuple[int, ...]:
    """The index of the first entry where ``got`` and ``want`` (same shape) differ."""
    g, w = got.detach().cpu().double(), want.detach().cpu().double()
    bad = ~torch.isclose(g, w, rtol=rtol, atol=atol * _scale(w))
    idx = torch.nonzero(bad)
    return tuple(idx[0].tolist()) if len(idx) else tuple(0 for _ in g.shape)


def show_difference(got: torch.Tensor, want: torch.Tensor, rtol: float = RTOL, atol: float = ATOL) -> str:
    """'at [k, i] expected X, got Y (row k: expected [...], got [...])' for same-shaped tensors."""
    at = first_difference(got, want, rtol, atol)
    w, g = fmt_pair(want[at], got[at])
    text = f"at {list(at)} expected {w}, got {g}"
    if want.dim() >= 2:
        row = at[:-1]
        wr, gr = fmt_pair(want[row], got[row])
        text += f" (row {list(row)}: expected {wr}, got {gr})"
    return text


def _kind_ok(out: torch.Tensor, kind: Kind) -> bool:
    if kind == "float":
        return out.is_floating_point()
    if kind == "integer":
        return not out.is_floating_point() and not out.is_complex() and out.dtype != torch.bool
    return True


def tensor_out(
    out: Any,
    *,
    what: str,
    shape: tuple[int, ...],
    meaning: str,
    kind: Kind = "float",
    like: torch.Tensor | None = None,
    finite: bool = True,
    shape_hint: Callable[[tuple[int, ...]], str] | None = None,
) -> torch.Tensor:
    """Check a returned tensor against its contract; return it detached.

    Args:
        out: what the learner's code returned.
        what: the property's name, first word of every message.
        shape: the exact expected shape; ``meaning`` names its dimensions, e.g. ``"(n_instances, n_features)"``.
        kind: ``"float"`` (rates, lengths: no truncation), ``"integer"`` (counts, labels) or ``"any"``.
        like: the input whose dtype (for float results) and device the result must follow.
        finite: no NaN or inf anywhere.
        shape_hint: ``got_shape -> str``, a hint naming a likely mistake for a wrong shape.
    """
    expect(
        isinstance(out, torch.Tensor),
        f"{what}: should return a torch.Tensor of shape {meaning} = {shape}, got {describe(out)}.",
    )
    got = tuple(out.shape)
    if got != shape:
        hint = shape_hint(got) if shape_hint else ""
        if not hint and out.numel() == int(torch.tensor(shape).prod()) and shape:
            hint = " The right number of values in another shape: return exactly the promised shape."
        raise CheckFailed(f"{what}: expected shape {meaning} = {shape}, got shape {got}.{hint}")
    if not _kind_ok(out, kind):
        if kind == "integer":
            whole = out.is_floating_point() and bool(torch.equal(out.detach(), out.detach().round()))
            raise CheckFailed(
                f"{what}: counts and labels are integers, got dtype {out.dtype}."
                + (" Your values are whole numbers stored as floats: keep the integer dtype (a sum of a bool "
                   "tensor is int64; argmin returns int64), or convert with .long()." if whole else "")
            )
        raise CheckFailed(
            f"{what}: expected a floating-point tensor (these are rates, lengths or fractions, not counts), got dtype "
            f"{out.dtype}: integer values truncate. Hint: compute in floats, e.g. .float() or .double() before dividing."
        )
    if like is not None:
        if kind == "float" and like.is_floating_point():
            expect(
                out.dtype == like.dtype,
                f"{what}: the result should have the input's dtype: for a {like.dtype} input expected {like.dtype}, got "
                f"{out.dtype}. Hint: do not convert with .float() or torch.tensor(..., dtype=...); let the input's "
                "dtype carry through.",
            )
        expect(
            out.device == like.device,
            f"{what}: the result should be on the input's device ({like.device}), got {out.device}.",
        )
    if finite and out.is_floating_point():
        bad = ~torch.isfinite(out.detach())
        if bad.any():
            at = tuple(torch.nonzero(bad)[0].tolist())
            raise CheckFailed(f"{what}: every value should be finite; entry {list(at)} is {out[at].item()}.")
    return out.detach()
