"""The plain training loop: what :func:`supercourse.train` computes, written out.

Every step draws a fresh batch with the model's own ``generate_batch``, runs
the model's own ``forward``, takes the per-instance losses summed over
instances as the objective (what :meth:`ToyModel.loss` is), lets autograd
compute the gradient, steps a default ``torch.optim.AdamW`` and runs the
model's ``after_step`` (a course model's hook: an SAE's unit-norm decoder).
:func:`supercourse.train` must agree with it: to rounding on the analytic and
autograd paths, which draw the same batches from the same seed, and
statistically on the fast path, which draws its own; the benchmark times it as
its baseline and the lesson 02 check compares learners' loops with it.
"""

from __future__ import annotations

import torch
from torch import nn

from ._validate import check_positive_int
from .instanced import InstancedModel

__all__ = ["reference_train"]


def reference_train(
    model: nn.Module,
    steps: int,
    batch_size: int = 1024,
    lr: float = 1e-3,
    weight_decay: float = 0.01,
    seed: int = 0,
    log_every: int = 1,
) -> torch.Tensor:
    """Train ``model`` in place for ``steps`` steps of AdamW; return its loss history.

    Args:
        model: a :class:`~supercourse.model.ToyModel` or any module with
            ``generate_batch(batch_size, generator)`` returning ``x: (batch,
            n_instances, n_features)``, ``forward(x) -> x_hat`` of that shape and
            ``per_instance_loss(x, x_hat) -> (n_instances,)``. It trains on the
            device its parameters are on.
        steps, batch_size, lr, weight_decay: the recipe (as :func:`supercourse.train`).
        seed: seeds the generator handed to ``generate_batch``.
        log_every: keep the loss of every this many steps (from step 0) and of the last.

    Returns:
        ``(n_logged, n_instances)`` on the CPU: row ``r`` is the per-instance loss
        of logged step ``r``'s batch, before that step's update (with
        ``log_every=1``, ``(steps, n_instances)``).
    """
    steps, batch_size = check_positive_int("steps", steps), check_positive_int("batch_size", batch_size)
    log_every = check_positive_int("log_every", log_every)
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    history = []
    for step in range(steps):
        x = model.generate_batch(batch_size, generator=generator)  # (batch, n_instances, n_features)
        x_hat = model(x)
        per_instance = model.per_instance_loss(x, x_hat)  # (n_instances,)
        loss = per_instance.sum()  # summed, so each instance trains as if alone
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if isinstance(model, InstancedModel):
            model.after_step()  # e.g. an SAE puts its decoder columns back on the unit sphere
        if step % log_every == 0 or step == steps - 1:
            history.append(per_instance.detach())
    return torch.stack(history).cpu()
