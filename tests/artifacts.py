"""What every ``supercourse reproduce`` target leaves beside its figures, asserted in one place."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

TOY_TARGETS_NOT = {"many-models"}
"""Targets whose models are not the toy model (no ``W (n_instances, n_hidden, n_features)`` and ``b_final``)."""


def assert_artifacts(out: Path, name: str, steps: int, seed: int) -> None:
    """What every reproduce target leaves in ``out``: its parameters (safetensors) and the template's summary.json."""
    params = load_file(str(out / "params.safetensors"))
    assert params
    if name in TOY_TARGETS_NOT:
        assert all(torch.isfinite(t).all() for t in params.values())
    else:  # (tables beside the weights may hold NaN for runs not made, e.g. double-descent's unused seeds)
        W, b = params["W"], params["b_final"]
        assert W.dim() == 3 and b.dim() == 2, (W.shape, b.shape)
        assert W.shape[0] == b.shape[0] and W.shape[2] == b.shape[1], "W: (n_instances, n_hidden, n_features)"
        assert torch.isfinite(W).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == steps and summary["seed"] == seed
    # One template (supercourse.experiments.Run): the same keys in every target's summary.json.
    assert set(summary) >= {"experiment", "steps", "seed", "device", "wall_time", "seconds", "config", "table"}
    assert summary["experiment"] == name and summary["device"] == "cpu"
    assert (out / "params.safetensors").stat().st_mode & 0o777 == (out / "summary.json").stat().st_mode & 0o777
