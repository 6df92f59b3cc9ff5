"""Choosing where to train: CUDA, then Apple's MPS, then the CPU."""

from __future__ import annotations

import torch

__all__ = ["pick_device"]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """Return the device to train on.

    ``None`` picks ``cuda`` when a GPU is present, then ``mps``, then ``cpu``.
    A named device is checked: asking for ``"cuda"`` on a machine without one
    raises a ``ValueError`` that says so, rather than failing later inside torch.
    """
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}") from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was asked for, but torch finds no CUDA GPU here: use 'cpu', or leave the device "
                "unset to let training pick (supercourse doctor says why there is no GPU)"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) are present")
    elif dev.type == "mps" and not _mps_available():
        raise ValueError(
            f"device={device!r} was asked for, but MPS (Apple GPU) is not available here: use 'cpu', or leave the "
            "device unset to let training pick"
        )
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}")
    return dev
