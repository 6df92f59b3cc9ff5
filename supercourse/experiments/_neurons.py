"""What the two neuron experiments (``privileged-basis``, ``absolute-value``) share.

* :func:`train_best` trains ``restarts`` copies of every setting side by side and
  keeps the lowest-loss one of each (the paper kept the best of many restarts).
* :func:`write_outputs` writes ``params.safetensors`` and ``summary.json`` (:mod:`._artifacts`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping

import torch

from ..neurons import AbsValueModel, NeuronModel, best_of_restarts
from ..training import History, train
from ._artifacts import save_params, save_summary

__all__ = ["NeuronRow", "train_best", "write_outputs"]


@dataclass(frozen=True)
class NeuronRow:
    """What one kept instance does, read neuron by neuron.

    Attributes:
        density: its features' ``1 - S``.
        represented: features whose column has norm above 0.5.
        monosemantic, polysemantic, dead: neuron counts (:func:`supercourse.neurons.count_neurons`).
        mono_features: features that have a monosemantic neuron of their own, sorted.
        loss: the kept restart's expected loss.
        extra: experiment-specific numbers (e.g. features coded on a pair of neurons).
    """

    density: float
    represented: int
    monosemantic: int
    polysemantic: int
    dead: int
    mono_features: tuple[int, ...]
    loss: float
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["mono_features"] = list(self.mono_features)
        return d


def train_best(
    model: NeuronModel | AbsValueModel,
    restarts: int,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: torch.device | str | None,
    progress: bool = False,
) -> tuple[NeuronModel | AbsValueModel, History, torch.Tensor, torch.Tensor]:
    """Train ``model`` (``restarts`` copies of each setting, restart-major) and keep the best copy of each.

    Returns the kept model (on the CPU), the training history, the chosen restart
    per setting ``(n,)`` and every restart's expected loss ``(n, restarts)``.
    """
    # These models are small: on the CPU torch's intra-op threads cost more in
    # barriers than they save (several times slower on two busy cores), so train on one.
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        history = train(model, steps=steps, batch_size=batch_size, lr=lr, seed=seed, device=device, progress=progress)
        kept, chosen, losses = best_of_restarts(model, restarts, seed=seed + 1)
    finally:
        torch.set_num_threads(threads)
    return kept.cpu(), history, chosen, losses


def write_outputs(
    out_dir: Path,
    tensors: Mapping[str, torch.Tensor],
    *,
    name: str,
    steps: int,
    seed: int,
    device: str | torch.device,
    config: Mapping[str, object],
    table: object,
    **extra: object,
) -> dict[str, Path]:
    """Write ``params.safetensors`` (``tensors``, with ``W`` and ``b_final``) and ``summary.json`` into ``out_dir``.

    ``summary.json`` follows the other targets (:func:`._common.write_artifacts`):
    ``experiment``, ``steps``, ``seed``, ``device``, ``config`` and ``table`` (the
    numbers the run's tables print), plus ``extra``. Returns ``{"params": path, "summary": path}``.
    """
    summary = {"experiment": name, "steps": steps, "seed": seed, "device": str(device),
               "config": dict(config), "table": table, **extra}
    return {"params": save_params(out_dir, tensors), "summary": save_summary(out_dir, summary)}
