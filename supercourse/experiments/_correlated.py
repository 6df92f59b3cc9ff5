"""What the correlated-features targets share (lesson 06): training sets of features until each density's model is the best found.

Small models on correlated data often stop in a worse local optimum (with
m=2, two arrangements of four features differ in loss only by terms of order
``p^2``), so:

1. every density is trained from :data:`RESTARTS` random inits side by side, and
   the restart with the lowest expected loss (on one large common batch of the
   model's own data) is kept, as the paper does;
2. the kept models are checked against each other (:mod:`._optimum`): each
   density's model must be the best of all the kept models on its own data,
   within :data:`~._optimum.GAP_TOLERANCE`. Where another density's
   configuration does better, it is trained on this density's data
   (:data:`POLISH_STEPS`, learning rate decaying to 0) and kept if it wins.
   Without this step the collapse sweep kept local optima 2-9% above the best
   configuration it had found, and counted collapsed pairs where none belong.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import torch

from ..correlation import SetModel
from ..training import History, train
from ._optimum import Polished, check_budget, polish

__all__ = ["BATCH_SIZE", "LR", "RESTARTS", "EVAL_SAMPLES", "POLISH_STEPS", "OPTIMUM_SAMPLES", "train_sets",
           "expected_set_loss", "make_set_model", "TrainedSets"]

BATCH_SIZE = 256
LR = 1e-2
RESTARTS = 3
EVAL_SAMPLES = 2**15
POLISH_STEPS = 2000
"""Steps of every candidate's local optimisation in the optimality check (lr decaying from :data:`LR` to 0)."""
OPTIMUM_SAMPLES = 2**20
"""Inputs per density (stratified by the number of active sets) behind each loss of the optimality check: the
configurations of a sparse m=2 model differ by about 1%, which fewer inputs cannot resolve."""


def make_set_model(
    kind: str, n_sets: int, set_size: int, n_hidden: int, densities: "tuple[float, ...]", seed: int, restarts: int = 1
) -> SetModel:
    """An untrained :class:`SetModel`: ``restarts`` copies of one instance per density, restart-major."""
    p = torch.tensor(densities, dtype=torch.float32).repeat(restarts)
    return SetModel(n_sets, set_size, n_hidden, n_instances=len(p), kind=kind, feature_probability=p, seed=seed)


@torch.no_grad()
def expected_set_loss(model: SetModel, n_samples: int = EVAL_SAMPLES, seed: int = 0) -> torch.Tensor:
    """``(n_instances,)`` each instance's loss on one large fresh batch of its own data (CPU)."""
    gen = torch.Generator(device=model.device).manual_seed(seed)
    x = model.generate_batch(n_samples, generator=gen)
    return model.per_instance_loss(x, model(x)).cpu()


@dataclass
class TrainedSets:
    """What :func:`train_sets` returns.

    Attributes:
        model: the kept model, one instance per density, on the CPU.
        history: the training history cut to the kept restarts.
        chosen: ``(n_densities,)`` the restart kept for each density.
        seconds: how long training and the check took.
        optimum: the optimality check (:class:`~._optimum.Polished`), ``None`` when skipped.
        restarts_only: the best restart of each density, before the check (``model`` when it changed nothing).
    """

    model: SetModel
    history: History
    chosen: torch.Tensor
    seconds: float
    optimum: Polished | None
    restarts_only: SetModel


def train_sets(
    kind: str,
    n_sets: int,
    set_size: int,
    n_hidden: int,
    densities: "tuple[float, ...]",
    steps: int,
    seed: int,
    device: torch.device,
    restarts: int = RESTARTS,
    progress: bool = False,
    polish_steps: int | None = POLISH_STEPS,
) -> TrainedSets:
    """Train ``restarts`` inits per density, keep the best of each, then make each the best found at its density.

    ``polish_steps=None`` skips the check (:mod:`._optimum`); so does a single density. A short run
    gets a short check (:func:`~._optimum.check_budget`).
    """
    many = make_set_model(kind, n_sets, set_size, n_hidden, densities, seed, restarts)
    start = time.perf_counter()
    history = train(many, steps=steps, batch_size=BATCH_SIZE, lr=LR, seed=seed, device=device, progress=progress)
    many.cpu()
    k = len(densities)
    chosen = expected_set_loss(many, seed=seed + 1).reshape(restarts, k).argmin(0)
    idx = chosen * k + torch.arange(k)
    best = make_set_model(kind, n_sets, set_size, n_hidden, densities, seed)
    with torch.no_grad():
        best.W.copy_(many.W[idx])
        best.b_final.copy_(many.b_final[idx])
    history = replace(history, losses=history.losses[:, idx], n_instances=k)
    checked, restarts_only = None, best
    if polish_steps is not None and k > 1:
        polish_steps, n_samples = check_budget(steps, BATCH_SIZE, polish_steps, OPTIMUM_SAMPLES)
        checked = polish(best, polish_steps, lr=LR, batch_size=BATCH_SIZE, seed=seed, device=device,
                         n_samples=n_samples)
        best = checked.model
    return TrainedSets(best, history, chosen, time.perf_counter() - start, checked, restarts_only)
