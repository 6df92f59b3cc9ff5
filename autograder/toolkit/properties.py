"""A generator for the property families every tensor-returning exercise shares.

:func:`tensor_properties` returns ``{test name: test function}`` to put in a
check module's globals (``globals().update(...)``); each function is an
ordinary graded property (:func:`autograder.framework.prop`). Families, each
one property worth ``points[family]`` (a family without points is left out):

* ``shape``: exact shape (no reshape) on every :class:`Case` of ``shape_cases``
  (sizes chosen so a wrong axis cannot match: one instance, one feature,
  ``n_hidden != n_features``), the promised kind (integer or float);
* ``inputs``: ``input_case`` again with its first argument as float64 (the
  result follows the input's dtype and device) and as an ``nn.Parameter``
  (``requires_grad``: code that goes through NumPy breaks), values against the
  reference;
* ``values``: the reference's output on every named case of ``value_cases``,
  with the mistake table's diagnosis when they differ;
* ``edges``: the same on ``edge_cases`` (zero columns, tiny norms, ties), where
  every value must also be finite.

Learner code is only ever called through :func:`autograder.framework.call`
with plain data, so the families work however the submission reaches the check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch

from autograder.framework import CheckFailed, call, expect, prop

from .contracts import ATOL, RTOL, Kind, close, show_difference, tensor_out
from .formatting import fmt_pair
from .mistakes import Mistake, diagnose
from .weights import as_parameter

__all__ = ["Case", "tensor_properties", "FAMILIES"]

FAMILIES = ("shape", "inputs", "values", "edges")


@dataclass(frozen=True)
class Case:
    """A named input: ``make()`` returns the positional arguments (fresh tensors each call).

    ``note`` is added to the message when the learner's output has NaN or inf on this case.
    """

    name: str
    make: Callable[[], tuple[Any, ...]]
    kwargs: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def _copy(args: Sequence[Any]) -> list[Any]:
    return [a.detach().clone() if isinstance(a, torch.Tensor) else a for a in args]


def _kw(kwargs: Mapping[str, Any]) -> str:
    return "".join(f", {k}={v!r}" for k, v in kwargs.items())


def tensor_properties(
    exercise: str,
    *,
    function: str,
    reference: Callable[..., torch.Tensor],
    meaning: str,
    shape: Callable[..., tuple[int, ...]],
    points: Mapping[str, float],
    mistakes: Sequence[Mistake] = (),
    kind: Kind = "float",
    shape_cases: Sequence[Case] = (),
    input_case: Case | None = None,
    value_cases: Sequence[Case] = (),
    edge_cases: Sequence[Case] = (),
    follows_input: bool = True,
    argument: str = "W",
    rtol: float = RTOL,
    atol: float = ATOL,
    shape_hint: Callable[[tuple[int, ...], tuple[Any, ...]], str] | None = None,
    prefix: str | None = None,
) -> dict[str, Callable[[Any], None]]:
    """Build the standard properties of one exercise (see the module docstring).

    Args:
        exercise: the registry name (``"feature_norms"``); ``function`` the learner's function name.
        reference: computes the expected output from the same arguments (the check's trusted copy).
        meaning: the output's dimensions in words, e.g. ``"(n_instances, n_features)"``.
        shape: ``shape(*args) -> expected shape``.
        points: points per family name; families without points are not generated.
        mistakes: the exercise's mistake table, for diagnosis.
        kind: ``"float"`` or ``"integer"`` results (integers are compared exactly).
        follows_input: the result's dtype (floats) and device follow the first argument's.
        argument: the first argument's name in messages.
        shape_hint: ``(got shape, args) -> hint`` for wrong shapes.
        prefix: test-name prefix (default ``exercise``).
    """
    unknown = set(points) - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown property families {sorted(unknown)}; known: {FAMILIES}")
    prefix = prefix or exercise

    def run(submission: Any, case: Case, what: str, transform: Callable[[Any], Any] | None = None,
            finite: bool = False) -> tuple[list[Any], torch.Tensor]:
        args = list(case.make())
        if transform is not None:
            args[0] = transform(args[0])
        before = _copy(args)
        out = call(submission, *args, what=function, **case.kwargs)
        want_shape = tuple(shape(*before, **case.kwargs))
        hint = (lambda got: shape_hint(got, tuple(before))) if shape_hint else None
        got = tensor_out(out, what=what, shape=want_shape, meaning=meaning, kind=kind,
                         like=args[0] if follows_input and isinstance(args[0], torch.Tensor) else None,
                         finite=finite, shape_hint=hint)
        return before, got

    def compare(got: torch.Tensor, args: list[Any], case: Case, what: str) -> None:
        want = reference(*_copy(args), **case.kwargs)
        if kind == "integer":
            ok = torch.equal(got.cpu().long(), want.cpu().long())
        else:
            ok = close(got, want, rtol, atol)
        if ok:
            return
        nonfinite = got.is_floating_point() and not torch.isfinite(got).all()
        if kind == "integer":
            w, g = fmt_pair(want, got)
            detail = f"expected {w}, got {g}"
        else:
            detail = show_difference(got, want, rtol, atol)
        diagnosis = diagnose(mistakes, got, args, case.kwargs, rtol, atol)
        note = f" {case.note}" if nonfinite and case.note else ""
        raise CheckFailed(f"{what}: {function}({argument}{_kw(case.kwargs)}) on {case.name}: {detail}.{note}{diagnosis}")

    tests: dict[str, Callable[[Any], None]] = {}

    if "shape" in points:
        def test_shape(submission: Any) -> None:
            for case in shape_cases:
                run(submission, case, f"Shape ({case.name})")
        tests[f"test_{prefix}_shape"] = prop(exercise, points["shape"])(test_shape)

    if "inputs" in points and input_case is not None:
        def test_inputs(submission: Any) -> None:
            variants = [
                ("float64 input", lambda t: t.double(), ""),
                (f"{argument} as an nn.Parameter (requires_grad=True)", as_parameter,
                 " Hint: stay in torch (a .numpy() round-trip fails on tensors that require grad; .detach() first "
                 "if you need one), and do not modify the input."),
            ]
            for label, transform, hint in variants:
                what = f"Inputs ({label})"
                try:
                    args, got = run(submission, input_case, what, transform)
                except CheckFailed as err:
                    text = str(err) if str(err).startswith(what) else f"{what}: {err}"
                    raise CheckFailed(f"{text}{hint}") from None
                compare(got, args, input_case, what)
        tests[f"test_{prefix}_inputs"] = prop(exercise, points["inputs"])(test_inputs)

    if "values" in points:
        def test_values(submission: Any) -> None:
            for case in value_cases:
                args, got = run(submission, case, "Values")
                compare(got, args, case, "Values")
        tests[f"test_{prefix}_values"] = prop(exercise, points["values"])(test_values)

    if "edges" in points:
        def test_edges(submission: Any) -> None:
            for case in edge_cases:
                what = f"Edge case ({case.name})"
                args, got = run(submission, case, what)
                if got.is_floating_point() and not torch.isfinite(got).all():
                    at = tuple(torch.nonzero(~torch.isfinite(got))[0].tolist())
                    expect(False, f"{what}: every value should be finite; entry {list(at)} is {got[at].item()}. "
                                  f"{case.note}".rstrip())
                compare(got, args, case, what)
        tests[f"test_{prefix}_edges"] = prop(exercise, points["edges"])(test_edges)

    for name, fn in tests.items():
        fn.__name__ = fn.__qualname__ = name
    return tests
