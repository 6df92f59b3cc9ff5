"""The realistic part of lesson 11: permuted digits, learned in sequence by an MLP whose every layer is superposed.

Task ``k`` is scikit-learn's 8x8 digits (bundled with it, no download) with its
64 pixels in a fixed random permutation (task 0 unpermuted): the same
classification problem, inputs shuffled so that a plain network cannot reuse
what it learned. :class:`SuperposedMLP` reads task ``k`` through a context at
every layer (:mod:`supercourse.contexts`); with kind ``"none"`` it is the plain
MLP that forgets. :func:`train_permuted_tasks` trains the tasks one after
another and records every task's test accuracy after each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from ._validate import check_positive_int, check_tensor
from .contexts import _kind, apply_context, draw_contexts, read_dim

__all__ = ["SuperposedMLP", "DigitsTasks", "permuted_digits", "train_permuted_tasks", "accuracy"]


class SuperposedMLP(nn.Module):
    """An MLP whose every linear layer is superposed, many instances at once (no biases).

    Layer ``l`` computes ``h_{l+1} = W_l C_{l,k} h_l`` for task ``k`` (ReLU
    between layers), with its own contexts for each task, drawn from
    ``seed``: kind ``"none"`` is a plain MLP.

    Args:
        sizes: ``(n_in, hidden..., n_out)``, e.g. ``(64, 256, 256, 10)``.
        n_tasks: how many contexts each layer keeps.
        n_instances: independent models (own initial weights and contexts).
        kind: one of :data:`KINDS`; ``powers``: contexts as powers of one (complex and rotation).

    Weights ``W_l``: ``(n_instances, sizes[l+1], read_dim(sizes[l]))``, scaled
    so every layer starts with unit gain (Kaiming for ReLU). Contexts of layer
    ``l``: ``(n_instances, n_tasks, ...)`` buffers. Input ``(batch,
    n_instances, n_in)``, output logits ``(batch, n_instances, n_out)``.
    """

    def __init__(self, sizes: Sequence[int], n_tasks: int, n_instances: int = 1, kind: str = "binary",
                 seed: int | None = 0, powers: bool = False) -> None:
        super().__init__()
        self.sizes = tuple(check_positive_int("sizes", s) for s in sizes)
        if len(self.sizes) < 2:
            raise ValueError(f"sizes must list at least an input and an output size, got {tuple(sizes)}")
        self.kind = _kind(kind)
        self.n_tasks = check_positive_int("n_tasks", n_tasks)
        self.n_instances = check_positive_int("n_instances", n_instances)
        gen = torch.Generator()
        if seed is not None:
            gen.manual_seed(seed)
        self.weights = nn.ParameterList()
        for l, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            gain = math.sqrt(2.0 if l < len(self.sizes) - 2 else 1.0)
            W = torch.randn(n_instances, n_out, read_dim(n_in, kind), generator=gen) * gain / math.sqrt(n_in)
            self.weights.append(nn.Parameter(W))
            C = torch.stack([draw_contexts(kind, n_tasks, n_in, gen, powers=powers) for _ in range(n_instances)])
            self.register_buffer(f"contexts_{l}", C)

    def contexts(self, layer: int) -> torch.Tensor:
        """Layer ``layer``'s contexts ``(n_instances, n_tasks, ...)`` in compact form."""
        return getattr(self, f"contexts_{layer}")

    def forward(self, x: torch.Tensor, task: int) -> torch.Tensor:
        """Logits ``(batch, n_instances, n_out)`` for inputs ``x (batch, n_instances, n_in)`` read as ``task``."""
        check_tensor("x", x, shape=(None, self.n_instances, self.sizes[0]), names=("batch", "n_instances", "n_in"))
        if not 0 <= task < self.n_tasks:
            raise ValueError(f"task must lie in [0, {self.n_tasks}), got {task}")
        h = x
        for l, W in enumerate(self.weights):
            h = apply_context(h, self.contexts(l)[:, task], self.kind)
            h = torch.einsum("bir,ior->bio", h, W)
            if l < len(self.weights) - 1:
                h = torch.relu(h)
        return h


@dataclass
class DigitsTasks:
    """Permuted-digits tasks: scikit-learn's 8x8 digits, task ``k`` with its pixels in permutation ``k`` (task 0 unpermuted).

    Attributes:
        x_train ``(n_train, 64)``, y_train ``(n_train,)``, x_test, y_test: pixels in [0, 1] and labels 0-9.
        permutations: ``(n_tasks, 64)``; task ``k``'s input is ``x[:, permutations[k]]``.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    permutations: torch.Tensor

    @property
    def n_tasks(self) -> int:
        return self.permutations.shape[0]

    def inputs(self, x: torch.Tensor, task: int) -> torch.Tensor:
        """``x (..., 64)`` with task ``task``'s pixel permutation."""
        return x[..., self.permutations[task]]


def permuted_digits(n_tasks: int, seed: int = 0, test_fraction: float = 0.3) -> DigitsTasks:
    """Load the digits bundled with scikit-learn (no download), split them and draw ``n_tasks`` permutations.

    1,797 images of 8x8 pixels (values 0-16, scaled to [0, 1]); a seeded
    split keeps ``test_fraction`` of them for testing.
    """
    n_tasks = check_positive_int("n_tasks", n_tasks)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(y), generator=gen)
    n_test = round(test_fraction * len(y))
    test, train = order[:n_test], order[n_test:]
    perms = torch.stack([torch.arange(x.shape[1])] + [torch.randperm(x.shape[1], generator=gen) for _ in range(n_tasks - 1)])
    return DigitsTasks(x[train], y[train], x[test], y[test], perms)


@torch.no_grad()
def accuracy(model: SuperposedMLP, tasks: DigitsTasks, task: int, test: bool = True) -> torch.Tensor:
    """Each instance's accuracy on ``task``'s test (or training) set: ``(n_instances,)``."""
    x, y = (tasks.x_test, tasks.y_test) if test else (tasks.x_train, tasks.y_train)
    dev = next(model.parameters()).device
    x = tasks.inputs(x, task).to(dev)[:, None].expand(-1, model.n_instances, -1)
    pred = model(x, task).argmax(-1)  # (batch, n_instances)
    return (pred == y.to(dev)[:, None]).float().mean(0).cpu()


def train_permuted_tasks(
    model: SuperposedMLP,
    tasks: DigitsTasks,
    epochs: int = 10,
    lr: float = 0.05,
    batch_size: int = 32,
    seed: int = 0,
    progress: object | None = None,
) -> torch.Tensor:
    """Train ``model`` on the tasks one after another (plain SGD, cross-entropy); returns the accuracy history.

    Every instance sees the same batches. Returns ``acc (n_instances, n_tasks,
    n_tasks)``: ``acc[i, t, j]`` is instance ``i``'s test accuracy on task ``j``
    once tasks ``0 .. t`` are trained. ``progress.advance(1)`` after each task.
    """
    epochs, batch_size = check_positive_int("epochs", epochs), check_positive_int("batch_size", batch_size)
    if tasks.n_tasks > model.n_tasks:
        raise ValueError(f"model has contexts for {model.n_tasks} tasks, tasks has {tasks.n_tasks}")
    gen = torch.Generator().manual_seed(seed)
    dev = next(model.parameters()).device
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    n = len(tasks.y_train)
    acc = torch.zeros(model.n_instances, tasks.n_tasks, tasks.n_tasks)
    for k in range(tasks.n_tasks):
        xk = tasks.inputs(tasks.x_train, k).to(dev)
        yk = tasks.y_train.to(dev)
        for _ in range(epochs):
            for idx in torch.randperm(n, generator=gen).split(batch_size):
                logits = model(xk[idx][:, None].expand(-1, model.n_instances, -1), k)
                # summed over instances: each instance's gradient is its own loss's
                loss = nn.functional.cross_entropy(logits.flatten(0, 1), yk[idx].repeat_interleave(model.n_instances),
                                                   reduction="sum") / len(idx)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        for j in range(tasks.n_tasks):
            acc[:, k, j] = accuracy(model, tasks, j)
        if progress is not None:
            progress.advance(1)
    return acc
