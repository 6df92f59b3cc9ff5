"""What the correlated-features targets share (lesson 06): training sets of features with restarts.

Small models on correlated data often stop in a worse local optimum (with
m=2, two arrangements of four features differ in loss only by terms of order
``p^2``), so every density is trained from :data:`RESTARTS` random inits side
by side and the restart with the lowest expected loss (on one large common
batch of the model's own data) is kept, as the paper does.
"""

from __future__ import annotations

import time

import torch

from ..correlation import SetModel
from ..training import History, train

__all__ = ["BATCH_SIZE", "LR", "RESTARTS", "EVAL_SAMPLES", "train_sets", "expected_set_loss"]

BATCH_SIZE = 256
LR = 1e-2
RESTARTS = 3
EVAL_SAMPLES = 2**15


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
) -> tuple[SetModel, History, torch.Tensor, float]:
    """Train ``restarts`` inits per density; keep the best of each.

    Returns the kept model (one instance per density, on the CPU), the training
    history cut to the kept instances, the kept restart of each density
    ``(n_densities,)`` and the seconds training took.
    """
    many = make_set_model(kind, n_sets, set_size, n_hidden, densities, seed, restarts)
    start = time.perf_counter()
    history = train(many, steps=steps, batch_size=BATCH_SIZE, lr=LR, seed=seed, device=device, progress=progress)
    wall = time.perf_counter() - start
    many.cpu()
    k = len(densities)
    chosen = expected_set_loss(many, seed=seed + 1).reshape(restarts, k).argmin(0)
    idx = chosen * k + torch.arange(k)
    best = make_set_model(kind, n_sets, set_size, n_hidden, densities, seed)
    with torch.no_grad():
        best.W.copy_(many.W[idx])
        best.b_final.copy_(many.b_final[idx])
    from dataclasses import replace

    history = replace(history, losses=history.losses[:, idx], n_instances=k)
    return best, history, chosen, wall
