"""What a ``reproduce`` target leaves beside its figures: the trained parameters and a summary.

* ``params.safetensors``: tensors by name, at least ``W`` ``(n_instances, n_hidden,
  n_features)`` and ``b_final`` ``(n_instances, n_features)``, loadable with
  ``safetensors.torch.load_file`` (no pickle).
* ``summary.json``: the run's configuration (sizes, densities per instance, steps,
  seed, device) and the numbers its table prints, as plain JSON.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

import torch

__all__ = ["save_params", "save_summary", "jsonable", "PARAMS_FILE", "SUMMARY_FILE"]

PARAMS_FILE = "params.safetensors"
SUMMARY_FILE = "summary.json"


def save_params(out_dir: str | Path, tensors: Mapping[str, torch.Tensor]) -> Path:
    """Write ``tensors`` (CPU, contiguous copies) to ``out_dir/params.safetensors``; needs ``W`` and ``b_final``.

    Written like any other file (``open``, so the umask decides: 0644 as a rule);
    ``safetensors.torch.save_file`` would create it with mode 0600.
    """
    from safetensors.torch import save

    missing = {"W", "b_final"} - set(tensors)
    if missing:
        raise ValueError(f"tensors must include W and b_final, missing {sorted(missing)}")
    path = Path(out_dir) / PARAMS_FILE
    path.write_bytes(save({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}))
    return path


def jsonable(value: Any) -> Any:
    """``value`` with tensors as (nested) lists, tuples as lists, non-finite floats as ``None``."""
    if isinstance(value, torch.Tensor):
        return jsonable(value.detach().cpu().tolist())
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    return str(value)


def save_summary(out_dir: str | Path, summary: Mapping[str, Any]) -> Path:
    """Write ``summary`` (made :func:`jsonable`) to ``out_dir/summary.json``."""
    path = Path(out_dir) / SUMMARY_FILE
    path.write_text(json.dumps(jsonable(summary), indent=2) + "\n")
    return path
