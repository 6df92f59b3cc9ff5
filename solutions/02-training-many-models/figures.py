"""Lesson 2's expected figures, drawn with the reference library.

* ``lr_schedules.png`` the constant, linear and cosine factors of
  :mod:`supercourse.schedules` over a 100-step run.
* ``throughput.png`` steps/s and instance-steps/s against the number of
  instances of the n=20, m=5 model (batch 1024) on the CPU, for a plain
  autograd loop (what the lesson's ``train`` is) and for :func:`supercourse.train`.
  Timings: each point is the best of :data:`REPEATS` timed runs after a warm-up.
* ``feature_bars.png`` the n=20, m=5 sweep (seven densities, linear and ReLU)
  trained with the lesson's CPU recipe: :data:`SWEEP_STEPS` steps at lr
  :data:`SWEEP_LR`, cosine decay.

About a minute on an idle 2-core machine. The plotting code mirrors the
notebook's ``plot_schedules`` and ``plot_throughput`` so the learner's figures
and these look alike.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

import supercourse
from supercourse import plots, schedules
from supercourse.experiments import basic_results
from supercourse.experiments._common import save_figure

__all__ = ["make", "THROUGHPUT_INSTANCES", "THROUGHPUT_STEPS", "SWEEP_STEPS", "SWEEP_LR", "SWEEP_SCHEDULE"]

THROUGHPUT_INSTANCES = (1, 4, 16, 64, 256)
THROUGHPUT_STEPS = 10
WARMUP_STEPS = 2
REPEATS = 5
SWEEP_STEPS = 3_000
SWEEP_LR = 1e-2
SWEEP_SCHEDULE = "cosine"
SEED = 0


class _AutogradToyModel(nn.Module):
    """A ToyModel behind a plain module, so that :func:`supercourse.train` trains it with autograd
    (zero_grad, backward, AdamW step: the loop the lesson asks for) instead of its fast step."""

    def __init__(self, inner: supercourse.ToyModel) -> None:
        super().__init__()
        self.inner = inner
        self.n_instances = inner.n_instances

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)

    def generate_batch(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.inner.generate_batch(batch_size, generator=generator)

    def per_instance_loss(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        return self.inner.per_instance_loss(x, x_hat)

    def loss(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        return self.inner.loss(x, x_hat)


def _throughput_model(n_instances: int) -> supercourse.ToyModel:
    return supercourse.ToyModel(
        basic_results.N_FEATURES, basic_results.N_HIDDEN, n_instances=n_instances,
        feature_probability=0.1, importance=basic_results.importance(), seed=SEED,
    )


def _best_rate(train_fn: Callable[[nn.Module, int], object], model: nn.Module) -> float:
    """Steps per second of ``train_fn(model, THROUGHPUT_STEPS)`` on the CPU: warm-up, then the best of a few runs."""
    train_fn(model, WARMUP_STEPS)
    best = 0.0
    for _ in range(REPEATS):
        start = time.perf_counter()
        train_fn(model, THROUGHPUT_STEPS)
        best = max(best, THROUGHPUT_STEPS / (time.perf_counter() - start))
    return best


def throughput_rates() -> dict[str, list[dict[str, float]]]:
    """``{trainer: [{"steps_per_second", "instance_steps_per_second"} per K in THROUGHPUT_INSTANCES]}``."""
    trainers = {
        "your train": (lambda m, n: supercourse.train(m, n, device="cpu", progress=False), _AutogradToyModel),
        "supercourse.train": (lambda m, n: supercourse.train(m, n, device="cpu", progress=False), lambda m: m),
    }
    rates: dict[str, list[dict[str, float]]] = {name: [] for name in trainers}
    for k in THROUGHPUT_INSTANCES:
        for name, (train_fn, wrap) in trainers.items():
            rate = _best_rate(train_fn, wrap(_throughput_model(k)))
            rates[name].append({"steps_per_second": rate, "instance_steps_per_second": rate * k})
    return rates


def schedules_figure(steps: int = 100):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.2), layout="constrained")
    ax = fig.subplots()
    for name in ("constant", "linear", "cosine"):
        ax.plot(range(steps), [schedules.lr_factor(name, s, steps) for s in range(steps)], label=name, lw=2)
    ax.set_xlabel("step")
    ax.set_ylabel("lr factor")
    ax.set_ylim(-0.03, 1.08)
    ax.legend(frameon=False)
    ax.set_title(f"learning-rate schedules, steps = {steps}")
    return fig


def throughput_figure(rates: dict[str, list[dict[str, float]]], instances=THROUGHPUT_INSTANCES, title: str = ""):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.5, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    for name, rows in rates.items():
        left.plot(instances, [r["steps_per_second"] for r in rows], "o-", label=name)
        right.plot(instances, [r["instance_steps_per_second"] for r in rows], "o-", label=name)
    for ax, label in ((left, "steps / s"), (right, "instance-steps / s")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("instances K")
        ax.set_ylabel(label)
        ax.grid(True, which="major", color="0.9")
    right.legend(frameon=False)
    fig.suptitle(title)
    return fig


def sweep_models() -> dict[str, supercourse.ToyModel]:
    """The basic-results models trained with the lesson's CPU recipe (on the CPU, seed 0)."""
    models = {}
    for activation in basic_results.ACTIVATIONS:
        model = basic_results.make_model(activation, seed=SEED)
        supercourse.train(model, steps=SWEEP_STEPS, lr=SWEEP_LR, lr_schedule=SWEEP_SCHEDULE, seed=SEED,
                          device="cpu", progress=False)
        models[activation] = model.cpu()
    return models


def make(out_dir: Path) -> list[Path]:
    """Draw lesson 2's figures into ``out_dir``; returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []

    written.append(save_figure(schedules_figure(), out_dir / "lr_schedules.png"))

    threads = torch.get_num_threads()
    fig = throughput_figure(throughput_rates(), title=f"n=20, m=5, batch 1024, on cpu ({threads} thread{'s' if threads != 1 else ''})")
    written.append(save_figure(fig, out_dir / "throughput.png"))

    models = sweep_models()
    fig = plots.feature_bars(
        {basic_results.MODEL_NAMES[a]: m.W for a, m in models.items()},
        titles=plots.density_titles(basic_results.DENSITIES),
    )
    written.append(save_figure(fig, out_dir / "feature_bars.png"))
    return written
