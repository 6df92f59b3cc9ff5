"""What the two neuron experiments (``privileged-basis``, ``absolute-value``) share.

* :func:`train_best` trains ``restarts`` copies of every setting side by side and
  keeps the lowest-loss one of each (the paper kept the best of many restarts);
  then, with ``polish_steps``, it makes each density's model the best of the kept
  models on that density's data (:func:`._optimum.polish`): a sweep's sparse
  models trained from scratch can be several times worse than a denser model's
  configuration trained on their data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from ..neurons import AbsValueModel, NeuronModel, best_of_restarts
from ..training import History, train
from ._optimum import Polished, check_budget, polish

__all__ = ["NeuronRow", "TrainedNeurons", "train_best"]


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


@dataclass
class TrainedNeurons:
    """What :func:`train_best` returns.

    Attributes:
        model: the kept model (one instance per setting, on the CPU).
        history: the training history of every restart.
        chosen: ``(n,)`` the restart kept for each setting.
        losses: ``(n, restarts)`` every restart's expected loss.
        optimum: the optimality check (:class:`~._optimum.Polished`), ``None`` when skipped.
    """

    model: NeuronModel | AbsValueModel
    history: History
    chosen: torch.Tensor
    losses: torch.Tensor
    optimum: Polished | None

    @property
    def kept_losses(self) -> torch.Tensor:
        """``(n,)`` each kept model's expected loss: after the check when it ran, else its restart's."""
        if self.optimum is not None:
            return self.optimum.cross.diagonal().float()
        return self.losses.amin(dim=1)


def train_best(
    model: NeuronModel | AbsValueModel,
    restarts: int,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: torch.device | str | None,
    progress: bool = False,
    polish_steps: int | None = None,
    contenders: int | None = None,
    min_rounds: int = 1,
) -> TrainedNeurons:
    """Train ``model`` (``restarts`` copies of each setting, restart-major), keep the best copy of each, then check.

    With ``polish_steps``, each setting's kept model is made the best of the kept
    models on its data (:func:`._optimum.polish`, ``contenders`` other models tried
    per setting, ``None``: all), at least ``min_rounds`` rounds: by default every kept model is
    optimised locally once (lr decaying to 0), whatever the gaps; a short run gets a short check
    (:func:`~._optimum.check_budget`).
    """
    # Threads: train() picks them by measurement (supercourse.threads), polish trains through it too.
    checked = None
    history = train(model, steps=steps, batch_size=batch_size, lr=lr, seed=seed, device=device, progress=progress)
    kept, chosen, losses = best_of_restarts(model, restarts, seed=seed + 1)
    if polish_steps is not None and kept.n_instances > 1:
        polish_steps, n_samples = check_budget(steps, batch_size, polish_steps)
        checked = polish(kept, polish_steps, lr=lr, batch_size=batch_size, seed=seed, device=device,
                         contenders=contenders, n_samples=n_samples, min_rounds=min_rounds)
        kept = checked.model
    return TrainedNeurons(kept.cpu(), history, chosen, losses, checked)
