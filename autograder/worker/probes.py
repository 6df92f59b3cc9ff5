"""Small, fixed operations the grader may ask the worker to run on a learner's objects.

They run beside the learner's code, so their answers are as untrusted as the
learner's own: a check earns points only by comparing what comes back with
what the trusted reference computes in the grader's process.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["state_of", "report_of", "module_summary", "load_parameters", "forward_backward", "figure_data"]


def state_of(obj: Any) -> dict[str, torch.Tensor] | None:
    """``obj.state_dict()`` as plain detached tensors, or None for objects without one."""
    state = getattr(obj, "state_dict", None)
    if not callable(state):
        return None
    return {str(k): v.detach().clone() for k, v in state().items() if isinstance(v, torch.Tensor)}


def report_of(obj: Any) -> dict[str, Any]:
    """What a constructed object sends back after a call: its state, and what a spy recorded (``grading_records()``)."""
    records = getattr(obj, "grading_records", None)
    return {"state": state_of(obj), "records": records() if callable(records) else None}


def module_summary(obj: Any) -> dict[str, Any]:
    """What a model looks like: whether it is an ``nn.Module``, its registered parameters, its tensor attributes."""
    is_module = isinstance(obj, torch.nn.Module)
    params = {}
    if is_module:
        for name, p in obj.named_parameters():
            params[name] = {"shape": tuple(p.shape), "dtype": str(p.dtype).removeprefix("torch."), "requires_grad": bool(p.requires_grad)}
    attributes = {}
    for name in ("W", "b_final", "W1", "W2", "b"):
        t = getattr(obj, name, None)
        if isinstance(t, torch.Tensor):
            attributes[name] = {
                "shape": tuple(t.shape),
                "dtype": str(t.dtype).removeprefix("torch."),
                "parameter": isinstance(t, torch.nn.Parameter),
                "registered": is_module and any(t is p for p in obj.parameters()),
                "value": t.detach().clone(),
            }
        elif t is not None:
            attributes[name] = {"type": type(t).__name__}
    return {"is_module": is_module, "type": type(obj).__qualname__, "parameters": params, "attributes": attributes}


def load_parameters(obj: Any, values: dict[str, torch.Tensor]) -> None:
    """Copy ``values`` into the tensors ``obj.<name>`` in place (no gradient)."""
    with torch.no_grad():
        for name, value in values.items():
            getattr(obj, name).copy_(value)


def forward_backward(obj: Any, x: torch.Tensor, weights: torch.Tensor | None = None, names: tuple[str, ...] = ("W", "b_final")) -> dict[str, Any]:
    """Run ``obj(x)``; with ``weights``, backpropagate ``(out * weights).sum()`` and return the gradients of ``names``."""
    if weights is not None:
        for p in obj.parameters():
            p.grad = None
    out = obj(x)
    result: dict[str, Any] = {"out": out, "requires_grad": bool(getattr(out, "requires_grad", False))}
    if weights is not None and isinstance(out, torch.Tensor) and out.requires_grad:
        (out * weights).sum().backward()
        result["grads"] = {n: getattr(getattr(obj, n, None), "grad", None) for n in names}
    return result


def figure_data(fig: Any) -> dict[str, Any]:
    """A matplotlib figure as plain data (see ``autograder.worker.figures``)."""
    from .figures import figure_data as describe

    return describe(fig)
