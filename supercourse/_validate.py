"""Argument checks that fail early with a message naming the argument.

Every public function in :mod:`supercourse` validates what a learner can get
wrong (shape, dtype, device, value range) here, so errors read like
``W must have shape (n_instances, n_hidden, n_features), got (5, 20)`` rather
than a traceback from deep inside torch.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ._home import require_package

require_package()  # the folder-above-the-clone trap stops here, with words that say what to do

__all__ = [
    "check_positive_int",
    "check_tensor",
    "check_probability",
    "check_nonnegative",
]


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` as an int, or raise if it is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
            value = int(value.item())
        else:
            raise TypeError(f"{name} must be a positive int, got {value!r} ({type(value).__name__})")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return value


def _shape_str(shape: Sequence[int | str]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def check_tensor(
    name: str,
    value: object,
    shape: Sequence[int | str | None] | None = None,
    names: Sequence[str] | None = None,
    floating: bool = True,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Check that ``value`` is a tensor of the given shape, dtype class and device.

    ``shape`` entries may be ints (exact) or ``None`` (any size); ``names``
    gives the dimension names used in the message, e.g.
    ``("batch", "n_instances", "n_features")``.
    """
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if floating and not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if shape is not None:
        bad = value.dim() != len(shape) or any(
            s is not None and s != got for s, got in zip(shape, value.shape)
        )
        if bad:
            expected = names if names is not None else ["*" if s is None else s for s in shape]
            if names is not None:
                expected = [n if s is None else f"{n}={s}" for n, s in zip(names, shape)]
            raise ValueError(
                f"{name} must have shape {_shape_str(expected)}, got {_shape_str(tuple(value.shape))}"
            )
    if device is not None and value.device != torch.device(device) and not (
        torch.device(device).type == value.device.type and torch.device(device).index is None
    ):
        raise ValueError(f"{name} is on device {value.device}, expected {torch.device(device)}")
    return value


def check_probability(name: str, value: torch.Tensor) -> torch.Tensor:
    """Raise unless every entry of ``value`` lies in [0, 1] (NaN rejected)."""
    if torch.isnan(value).any() or (value < 0).any() or (value > 1).any():
        bad = value[(value < 0) | (value > 1) | torch.isnan(value)].flatten()[0].item()
        raise ValueError(f"{name} must lie in [0, 1], got a value of {bad:g}")
    return value


def check_nonnegative(name: str, value: torch.Tensor) -> torch.Tensor:
    """Raise unless every entry of ``value`` is finite and >= 0."""
    if (~torch.isfinite(value)).any() or (value < 0).any():
        bad = value[(value < 0) | ~torch.isfinite(value)].flatten()[0].item()
        raise ValueError(f"{name} must be finite and >= 0, got a value of {bad:g}")
    return value
