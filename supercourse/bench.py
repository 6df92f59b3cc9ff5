"""``supercourse bench``: supercourse's trainers against the straightforward ones, on every kind of model.

One run measures, on the same workloads and the same device, the plain
training loop a learner would write first (:func:`baseline_train`, the
reference loop of :mod:`supercourse.reference_loop`; for an SAE
:func:`baseline_train_sae`) and the course's trainer
(:func:`supercourse.train`; :func:`supercourse.sae.train_sae`), and reports
steps per second, instance-steps per second, the speed-up, the gradient path
the trainer took (:func:`supercourse.training.gradient_path`), the floor set by
the step's matrix products and the fraction of it each trainer reaches, wall
time and peak memory, with the machine's load average before and after.

Workloads: the toy model's fast path (batch 1024, AdamW lr 1e-3, weight decay
0.01, ReLU output model):

* **W1** basic results: n=20, m=5, 7 instances (densities 1 ... 0.001, importance ``0.7^i``).
* **W2** geometry sweep: n=400, m=30, 20 instances (densities 1 ... 0.001, uniform importance).
* **W3** phase-diagram grid: n=2, m=1, 4,000 instances (40 densities x 100 relative importances).
* **W4** scaling: n=20, m=5 from 1 to 10,000 instances: how instance-steps/s grows.

and the general path and the later lessons' models, at their lesson sizes and recipes
(read from :mod:`supercourse.experiments`):

* **G1** a ``ToyModel`` subclass with its own ``forward`` (autograd): n=6, m=3, 8 instances, batch 1024.
* **L06** lesson 06's correlated sets (``SetModel``: its own data, the toy model's gradient), ``collapse``.
* **L08** lesson 08's ``NeuronModel`` (``privileged-basis``), and **L08F** the learner's subclass of it
  with its own ``forward`` (autograd), **L08A** the ``AbsValueModel`` sweep (``absolute-value``).
* **L09** lesson 09's L1 SAE sweep at its largest dictionary (``sae``), trained by ``train_sae``.

Each (workload, trainer) pair is warmed up, then timed over a time budget in
several rounds that alternate the two trainers, so that both see the same load
on a shared machine; the speed-up is the median of the per-round ratios. GPU
timings synchronise the device. The floor is the time of the matrix products
one step needs (forward and backward, as ``bmm`` on preallocated buffers, the
faster of one thread and torch's threads); a trainer's "floor %" is that time
over its time per step. Peak memory is ``torch.cuda.max_memory_allocated``
above what was allocated before the run on a GPU; on the CPU it is the rise of
the process's peak resident set size over its resident size before the run
(Linux resets the peak through ``/proc/self/clear_refs``; elsewhere the
``ru_maxrss`` rise is a lower bound). ``--load N`` runs N CPU-bound processes
beside the benchmark (to measure a busy machine).

Results go to a table on the terminal and a JSON file
(``bench-results/bench-<device>.json`` by default). ``--quick`` runs every
workload for a couple of steps (W4 up to 100 instances): a check of the
harness, not a measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn

from .experiments import absolute_value, collapse, privileged_basis
from .experiments import sparse_autoencoders as sae_exp
from .experiments._correlated import make_set_model
from .model import ToyModel
from .neurons import NeuronModel, neuron_forward
from .reference_loop import reference_train
from .sae import SparseAutoencoder, normalize_decoder, sae_forward, train_sae
from .threads import torch_threads
from .training import gradient_path, train

__all__ = [
    "WORKLOADS",
    "TARGETS",
    "Workload",
    "baseline_train",
    "baseline_train_sae",
    "make_model",
    "matmul_floor",
    "measure",
    "run_benchmark",
    "register",
    "add_arguments",
    "run",
    "main",
]

BATCH_SIZE = 1024
LR = 1e-3
WEIGHT_DECAY = 0.01


# ------------------------------------------------------------------ workloads


def _log_densities(k: int, lowest: float = 1e-3) -> torch.Tensor:
    """``k`` densities log-spaced from 1 down to ``lowest`` (just 1 for ``k = 1``)."""
    return torch.logspace(0.0, math.log10(lowest), k) if k > 1 else torch.ones(1)


def _decaying_importance(n: int, decay: float = 0.7) -> torch.Tensor:
    return decay ** torch.arange(n, dtype=torch.float32)


def _phase_grid(k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """W3's grid: 40 densities (0.01 ... 1) x k/40 relative importances (0.1 ... 10) of feature 2."""
    n_dens = 40 if k % 40 == 0 else 1
    dens = torch.logspace(-2.0, 0.0, n_dens) if n_dens > 1 else torch.full((1,), 0.1)
    rel = torch.logspace(-1.0, 1.0, k // n_dens)
    p = dens.repeat_interleave(k // n_dens)
    r = rel.repeat(n_dens)
    importance = torch.stack([torch.ones(k), r], dim=1)
    return p, importance


@dataclasses.dataclass(frozen=True)
class Workload:
    """A training problem: the model's shape and data, at one or more instance counts.

    A toy-model workload gives ``data`` (``k -> (feature_probability,
    importance)``) and is built at any instance count; a lesson workload gives
    ``build`` (``seed -> model``, at its lesson size). ``kind`` names the
    step's matrix products (:func:`matmul_floor`): ``"tied"`` (the toy and
    neuron models), ``"untied"`` (the absolute-value model) or ``"sae"``
    (``n_features`` is then ``d_in``, ``n_hidden`` ``d_sae``).
    """

    name: str
    title: str
    n_features: int
    n_hidden: int
    instances: tuple[int, ...]
    quick_instances: tuple[int, ...]
    data: Callable[[int], tuple[torch.Tensor, torch.Tensor]] | None = None
    build: Callable[[int], nn.Module] | None = None
    batch_size: int = BATCH_SIZE
    lr: float = LR
    kind: str = "tied"

    def describe(self) -> str:
        k = "/".join(f"{i:,}" for i in self.instances)
        sizes = f"d_in={self.n_features}, d_sae={self.n_hidden}" if self.kind == "sae" else (
            f"n={self.n_features}, m={self.n_hidden}"
        )
        return f"{self.title}: {sizes}, {k} instance(s), batch {self.batch_size}"


class _OwnForward(ToyModel):
    """A ``ToyModel`` subclass with its own ``forward`` (the same maths, written out): trains through autograd."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(torch.einsum("bih,ihf->bif", self.hidden(x), self.W) + self.b_final)


class _LearnersNeuronModel(NeuronModel):
    """Lesson 08's ``MyNeuronModel``: a ``NeuronModel`` whose ``forward`` is the learner's ``neuron_forward``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return neuron_forward(self.W, self.b_final, x)


def _general_model(seed: int) -> ToyModel:
    k = 8
    return _OwnForward(6, 3, n_instances=k, feature_probability=_log_densities(k), importance=_decaying_importance(6),
                       seed=seed)


def _sets_model(seed: int) -> nn.Module:
    return make_set_model("correlated", collapse.N_SETS, collapse.SET_SIZE, collapse.N_HIDDEN, collapse.DENSITIES,
                          seed, restarts=collapse.RESTARTS)


def _sae_model(seed: int) -> SparseAutoencoder:
    ratio = max(sae_exp.RATIOS)
    return SparseAutoencoder(sae_exp.D_IN, sae_exp.dict_size(ratio), len(sae_exp.L1_COEFFS),
                             l1_coeff=torch.tensor(sae_exp.L1_COEFFS), seed=seed)


def _lesson(name: str, title: str, sizes: tuple[int, int, int], build: Callable[[int], nn.Module], batch_size: int,
            lr: float, kind: str) -> Workload:
    """A lesson workload: ``sizes = (n_features or d_in, n_hidden or d_sae, n_instances)`` from the experiment's
    constants (no model is built here: the grading library's stand-ins could not be)."""
    n, m, k = sizes
    return Workload(name, title, n, m, (k,), (k,), build=build, batch_size=batch_size, lr=lr, kind=kind)


_NEURON_SIZES = (privileged_basis.N_FEATURES, privileged_basis.N_HIDDEN,
                 len(privileged_basis.DENSITIES) * privileged_basis.RESTARTS)

WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("W1", "basic results", 20, 5, (7,), (7,), lambda k: (_log_densities(k), _decaying_importance(20))),
        Workload("W2", "geometry sweep", 400, 30, (20,), (20,), lambda k: (_log_densities(k), torch.ones(400))),
        Workload("W3", "phase-diagram grid", 2, 1, (4000,), (4000,), _phase_grid),
        Workload(
            "W4",
            "scaling",
            20,
            5,
            (1, 10, 100, 1000, 10_000),
            (1, 10, 100),
            lambda k: (_log_densities(k), _decaying_importance(20)),
        ),
        _lesson("G1", "ToyModel subclass, own forward", (6, 3, 8), _general_model, BATCH_SIZE, LR, "tied"),
        _lesson("L06", "lesson 06 correlated sets (collapse)",
                (collapse.N_SETS * collapse.SET_SIZE, collapse.N_HIDDEN, len(collapse.DENSITIES) * collapse.RESTARTS),
                _sets_model, collapse.BATCH_SIZE, collapse.LR, "tied"),
        _lesson("L08", "lesson 08 NeuronModel (privileged-basis)", _NEURON_SIZES,
                lambda seed: privileged_basis.make_model(seed, restarts=privileged_basis.RESTARTS),
                privileged_basis.BATCH_SIZE, privileged_basis.LR, "tied"),
        _lesson("L08F", "lesson 08 NeuronModel, learner's forward", _NEURON_SIZES,
                lambda seed: privileged_basis.make_model(seed, restarts=privileged_basis.RESTARTS,
                                                         model_class=_LearnersNeuronModel),
                privileged_basis.BATCH_SIZE, privileged_basis.LR, "tied"),
        _lesson("L08A", "lesson 08 AbsValueModel sweep (absolute-value)",
                (*absolute_value.SIZES["cpu"], len(absolute_value.DENSITIES) * absolute_value.SWEEP_RESTARTS),
                lambda seed: absolute_value.make_model(seed, restarts=absolute_value.SWEEP_RESTARTS),
                absolute_value.BATCH_SIZE, absolute_value.LR, "untied"),
        _lesson("L09", "lesson 09 L1 SAE sweep, largest dictionary (sae)",
                (sae_exp.D_IN, sae_exp.dict_size(max(sae_exp.RATIOS)), len(sae_exp.L1_COEFFS)),
                _sae_model, sae_exp.BATCH_SIZE, sae_exp.LR, "sae"),
    )
}

TARGETS: dict[str, list[dict]] = {
    "cpu": [
        {"workload": "W1", "what": "speed-up over the baseline", "min": 5.0},
        {"workload": "W2", "what": "speed-up over the baseline", "min": 4.0},
        {"workload": "W3", "what": "speed-up over the baseline", "min": 5.0},
        # the general path (autograd) at least as fast as the plain loop on the same shapes
        {"workload": "G1", "what": "speed-up over the baseline", "min": 1.0},
        {"workload": "L08F", "what": "speed-up over the baseline", "min": 1.0},
        # the hand-written gradients of the lessons' own models
        {"workload": "L06", "what": "speed-up over the baseline", "min": 1.5},
        {"workload": "L08", "what": "speed-up over the baseline", "min": 1.0},
        {"workload": "L08A", "what": "speed-up over the baseline", "min": 1.5},
        {"workload": "L09", "what": "speed-up over the baseline", "min": 1.5},
    ],
    "cuda": [
        {"workload": "W1", "what": "speed-up over the baseline", "min": 20.0},
        {"workload": "W4", "n_instances": 10_000, "what": "instance-steps/s", "min": 5e6},
        {"workload": "W3", "what": "seconds for 10,000 steps", "max": 5.0},
    ],
}
"""The issues' targets, checked at the end of a full (non-quick) run."""

BASELINE_MAX_ENTRIES = {"cpu": 25_000_000, "cuda": 400_000_000}
"""The baseline is skipped above this many batch entries (instances x features x batch):
it would need several GB and minutes per step (W4 at 10,000 instances on a CPU)."""


def make_model(workload: Workload | str, n_instances: int | None = None, seed: int = 0) -> nn.Module:
    """An untrained model for ``workload``: a ReLU-output :class:`ToyModel` (at its first instance count by
    default) for W1-W4, the lesson's own model at its lesson size for the others."""
    w = WORKLOADS[workload] if isinstance(workload, str) else workload
    k = w.instances[0] if n_instances is None else n_instances
    if w.build is not None:
        if k not in w.instances:
            raise ValueError(f"workload {w.name} runs at {w.instances[0]} instances only, got {k}")
        return w.build(seed)
    p, importance = w.data(k)
    return ToyModel(w.n_features, w.n_hidden, n_instances=k, feature_probability=p, importance=importance, seed=seed)


def _sae_data() -> Callable[[int, torch.Generator], torch.Tensor]:
    """Lesson 09's known features (seed 0): ``(batch_size, generator) -> (batch, 1, d_in)``."""
    return sae_exp.features(0).sample


# ------------------------------------------------------------------ the baseline


def baseline_train(
    model: nn.Module,
    steps: int,
    batch_size: int = BATCH_SIZE,
    lr: float = LR,
    weight_decay: float = WEIGHT_DECAY,
    seed: int = 0,
) -> torch.Tensor:
    """The straightforward training loop: the benchmark's reference.

    :func:`supercourse.reference_loop.reference_train`, the plain loop the
    trainer is tested against: each step draws a fresh batch with the model's
    ``generate_batch`` (``(batch, instances, features)``), runs its ``einsum``
    forward, lets autograd compute the gradient, and steps a default
    ``torch.optim.AdamW``, on torch's threads. It trains ``model`` in place on
    its device and returns the last step's per-instance loss ``(n_instances,)`` (CPU).
    """
    # Only the first and last steps' losses are kept, so memory does not grow with the steps timed.
    return reference_train(
        model, steps, batch_size=batch_size, lr=lr, weight_decay=weight_decay, seed=seed, log_every=steps
    )[-1]


def baseline_train_sae(
    sae: SparseAutoencoder,
    data: Callable[[int, torch.Generator], torch.Tensor],
    steps: int,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
) -> torch.Tensor:
    """The straightforward SAE loop (lesson 09's, and :func:`~supercourse.sae.train_sae` without resampling).

    Each step draws ``data(batch_size, generator)``, runs :func:`~supercourse.sae.sae_forward`,
    backpropagates the summed loss through autograd, steps a default
    ``torch.optim.Adam`` and puts the decoder columns back on the unit
    sphere. Returns the last step's per-instance loss ``(n_instances,)`` (CPU).
    """
    gen = torch.Generator(device=sae.W_e.device).manual_seed(seed)
    params = [sae.W_e, sae.b_e, sae.W_d, sae.b_d]
    optimizer = torch.optim.Adam(params, lr=lr)
    lam = 0.0 if sae.k is not None else sae.l1_coeff
    mask = None if bool(sae.latent_mask.all()) else sae.latent_mask
    loss = None
    for _ in range(steps):
        h = data(batch_size, gen).to(sae.W_e.device).expand(batch_size, sae.n_instances, sae.d_in)
        _, _, loss = sae_forward(h, *params, lam, k=sae.k, latent_mask=mask)
        optimizer.zero_grad()
        loss.sum().backward()
        optimizer.step()
        with torch.no_grad():
            sae.W_d.copy_(normalize_decoder(sae.W_d))
    return loss.detach().cpu()


LOG_EVERY = 100
"""The fast trainer logs its per-instance loss every 100 steps, as it does by
default on a 10,000-step run (short timed runs would otherwise log every step)."""


def fast_train(
    model: nn.Module, steps: int, seed: int = 0, batch_size: int = BATCH_SIZE, lr: float = LR
) -> torch.Tensor:
    """:func:`supercourse.train` with the benchmark's recipe; returns the last logged per-instance loss."""
    history = train(
        model,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        weight_decay=WEIGHT_DECAY,
        seed=seed,
        device=next(model.parameters()).device,
        progress=False,
        log_every=LOG_EVERY,
    )
    return history.final_loss


def _trainer(name: str, workload: Workload) -> Callable[[nn.Module, int], object]:
    """``fn(model, steps)``: the baseline or the course's trainer, with the workload's recipe."""
    B, lr = workload.batch_size, workload.lr
    data = _sae_data() if workload.kind == "sae" else None
    if name == "baseline":
        if data is not None:
            return lambda sae, steps: baseline_train_sae(sae, data, steps, batch_size=B, lr=lr)
        return lambda model, steps: baseline_train(model, steps, batch_size=B, lr=lr)

    def ours(model: nn.Module, steps: int) -> torch.Tensor:
        if data is not None:
            history = train_sae(model, data, steps=steps, batch_size=B, lr=lr, progress=False, log_every=LOG_EVERY)
        else:
            history = train(model, steps=steps, batch_size=B, lr=lr, weight_decay=WEIGHT_DECAY, seed=0,
                            device=next(model.parameters()).device, progress=False, log_every=LOG_EVERY)
        ours.thread_steps = history.extra.get("thread_steps")  # type: ignore[attr-defined]
        return history.final_loss

    return ours


TRAINERS = ("baseline", "fast")
"""The two trainers each workload times: the plain loop, and the course's trainer (``fast``)."""


# ------------------------------------------------------------------ measuring


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


_LIBC = _libc()


def _return_freed_memory() -> None:
    """Make glibc give freed memory back, so that RSS tracks what a run holds.

    glibc raises its mmap threshold as large blocks are freed and keeps freed
    heap memory, so a second run reuses pages the first one touched and shows
    no rise in RSS. A fixed 1 MiB threshold (mallopt M_MMAP_THRESHOLD) maps
    every large tensor afresh and unmaps it when freed; malloc_trim returns the
    rest.
    """
    if _LIBC is not None:
        try:
            _LIBC.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD
            _LIBC.malloc_trim(0)
        except (AttributeError, OSError):  # pragma: no cover - not glibc
            pass


class _PeakMemory:
    """Peak memory a run adds: CUDA allocator peak, or CPU peak RSS over the RSS before."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.method = ""

    def __enter__(self) -> "_PeakMemory":
        if self.device.type != "cuda":
            _return_freed_memory()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.before = torch.cuda.memory_allocated(self.device)
            self.method = "torch.cuda.max_memory_allocated"
            return self
        self.before = _rss_bytes("VmRSS")
        reset = False
        if self.before is not None:
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")  # resets VmHWM, the peak RSS, to the current RSS
                reset = True
            except OSError:
                reset = False
        if reset:
            self.method = "peak RSS (VmHWM, reset before the run) - RSS before"
        else:
            self.before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
            self.method = "rise of ru_maxrss (a lower bound)"
        self._reset = reset
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = max(0, torch.cuda.max_memory_allocated(self.device) - self.before)
        elif self._reset:
            self.peak = max(0, (_rss_bytes("VmHWM") or 0) - self.before)
        else:
            now = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
            self.peak = max(0, now - self.before)


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def measure(
    workload: Workload,
    n_instances: int,
    device: torch.device,
    *,
    budget_s: float = 2.0,
    rounds: int = 3,
    warmup_steps: int = 2,
    min_steps: int = 2,
    max_steps: int = 100_000,
    fixed_steps: dict[str, int] | None = None,
    trainers: tuple[str, ...] = ("baseline", "fast"),
    log: Callable[[str], None] = lambda s: None,
) -> dict:
    """Time each trainer on one workload point; rounds alternate the trainers.

    Each trainer gets its own copy of the same initial model. After
    ``warmup_steps`` untimed steps, the step count of a round is chosen so the
    round takes about ``budget_s`` (``fixed_steps[trainer]`` overrides it).
    Returns a JSON-ready dict with, per trainer, the median steps/s,
    instance-steps/s, wall time of a round and peak memory, and the speed-up
    (median of per-round ratios of fast to baseline steps/s).
    """
    models = {t: make_model(workload, n_instances, seed=0).to(device) for t in trainers}
    fns = {t: _trainer(t, workload) for t in trainers}
    steps: dict[str, int] = {}
    for t in trainers:
        warm = max(1, warmup_steps)
        elapsed = _timed(lambda t=t, warm=warm: fns[t](models[t], warm), device)
        if fixed_steps and t in fixed_steps:
            steps[t] = fixed_steps[t]
            continue
        # The warm-up pays one-off costs: calibrate on runs that double until
        # one takes a tenth of the budget.
        n_cal, per_step = warm, elapsed / warm
        for _ in range(8):
            elapsed = _timed(lambda t=t, n=n_cal: fns[t](models[t], n), device)
            per_step = elapsed / n_cal
            if elapsed >= 0.1 * budget_s or n_cal >= max_steps:
                break
            n_cal = min(max_steps, max(2 * n_cal, int(0.1 * budget_s / max(per_step, 1e-7))))
        steps[t] = int(min(max_steps, max(min_steps, budget_s / max(per_step, 1e-7))))
    per_round: dict[str, list[float]] = {t: [] for t in trainers}
    walls: dict[str, list[float]] = {t: [] for t in trainers}
    peaks: dict[str, int] = {}
    methods: dict[str, str] = {}
    for r in range(rounds):
        for t in trainers:
            with _PeakMemory(device) as mem:
                wall = _timed(lambda t=t: fns[t](models[t], steps[t]), device)
            peaks[t] = max(peaks.get(t, 0), mem.peak)
            methods[t] = mem.method
            walls[t].append(wall)
            per_round[t].append(steps[t] / wall)
            log(f"  {workload.name} k={n_instances} {t:8s} round {r + 1}: {steps[t]} steps in {wall:.2f} s")
    out: dict = {"workload": workload.name, "n_instances": n_instances, "device": str(device)}
    for t in trainers:
        sps = statistics.median(per_round[t])
        out[t] = {
            "steps": steps[t],
            "rounds": rounds,
            "steps_per_s": sps,
            "instance_steps_per_s": sps * n_instances,
            "wall_s": statistics.median(walls[t]),
            "steps_per_s_rounds": per_round[t],
            "peak_mem_bytes": peaks[t],
            "peak_mem_method": methods[t],
        }
        if hasattr(fns[t], "thread_steps"):  # the threads the trainer's steps ran on, in its last call
            out[t]["thread_steps"] = {str(k): v for k, v in fns[t].thread_steps.items()}
    if "baseline" in trainers and "fast" in trainers:
        ratios = [f / b for f, b in zip(per_round["fast"], per_round["baseline"])]
        out["speedup"] = statistics.median(ratios)
        out["speedup_rounds"] = ratios
    else:
        out["speedup"] = None
    return out


def _products(workload: Workload, k: int) -> list[tuple[int, int, int, int]]:
    """The matrix products of one training step, each ``(K, a, b, c)``: a ``bmm`` of ``(K, a, b) @ (K, b, c)``.

    Forward and backward in the cheapest layout: for the tied models ``h = W x``,
    ``W^T h``, ``W g`` (back through the output), ``h g^T`` and ``dh x^T`` (the
    weight gradient); for the untied model the same with ``W1``, ``W2``; for an
    SAE the encoder, the decoder, the decoder's transpose and the two weight gradients.
    """
    B, n, m = workload.batch_size, workload.n_features, workload.n_hidden
    if workload.kind == "sae":  # n = d_in, m = d_sae
        return [(k, B, n, m), (k, B, m, n), (k, B, n, m), (k, n, B, m), (k, m, B, n)]
    if workload.kind == "untied":
        return [(k, m, n, B), (k, n, m, B), (k, m, n, B), (k, n, B, m), (k, m, B, n)]
    return [(k, m, n, B), (k, n, m, B), (k, m, n, B), (k, m, B, n), (k, m, B, n)]


def matmul_floor(
    workload: Workload,
    n_instances: int,
    device: torch.device,
    budget_s: float = 0.3,
    threads: tuple[int, ...] | None = None,
) -> dict:
    """The floor set by a step's matrix products: seconds per step for those products alone.

    Times :func:`_products` as ``bmm`` into preallocated outputs (float32) for
    about ``budget_s`` at each thread count of ``threads`` (default: 1 and
    torch's setting) and keeps the fastest. Returns ``{"flops": per step,
    "seconds": per step, "threads": the fastest count, "gflops_per_s"}``.
    """
    products = _products(workload, n_instances)
    flops = float(sum(2 * k * a * b * c for k, a, b, c in products))
    mats = [
        (torch.rand(k, a, b, device=device), torch.rand(k, b, c, device=device), torch.empty(k, a, c, device=device))
        for k, a, b, c in products
    ]

    def step() -> None:
        for A, Bm, out in mats:
            torch.bmm(A, Bm, out=out)

    best = (math.inf, 1)
    if threads is None:
        threads = tuple(sorted({1, torch.get_num_threads()})) if device.type == "cpu" else (torch.get_num_threads(),)
    for n_threads in threads:
        with torch_threads(n_threads):
            step()
            n, elapsed = 1, _timed(step, device)
            while elapsed < budget_s and n < 1_000_000:
                n = max(2 * n, int(n * 0.5 * budget_s / max(elapsed, 1e-9)))
                elapsed = _timed(lambda n=n: [step() for _ in range(n)], device)
            best = min(best, (elapsed / n, n_threads))
    return {"flops": flops, "seconds": best[0], "threads": best[1], "gflops_per_s": flops / best[0] / 1e9}


def _time_w3_10k(device: torch.device, log: Callable[[str], None]) -> float:
    """Seconds for :func:`supercourse.train` to run W3 for 10,000 steps (the GPU target)."""
    model = make_model("W3").to(device)
    fast_train(model, 20)
    wall = _timed(lambda: fast_train(model, 10_000), device)
    log(f"  W3 10,000 steps: {wall:.2f} s")
    return wall


# ------------------------------------------------------------------ the run


def run_benchmark(
    device: str | torch.device = "cpu",
    workloads: list[str] | None = None,
    quick: bool = False,
    budget_s: float | None = None,
    rounds: int | None = None,
    log: Callable[[str], None] = lambda s: None,
    load: int = 0,
) -> dict:
    """Run the benchmark on one device and return the JSON-ready results.

    ``load`` CPU-bound processes run beside it the whole time (:func:`busy_processes`).
    """
    dev = torch.device(device)
    names = workloads or list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise ValueError(f"unknown workload(s) {unknown}; choose from {sorted(WORKLOADS)}")
    budget = budget_s if budget_s is not None else (0.0 if quick else 2.0)
    n_rounds = rounds if rounds is not None else (1 if quick else 3)
    results = []
    with busy_processes(load):
        load_before = _loadavg()
        started = time.perf_counter()
        for name in names:
            w = WORKLOADS[name]
            for k in w.quick_instances if quick else w.instances:
                results.append(_run_workload(w, k, dev, quick, budget, n_rounds, log))
        extra = {}
        if dev.type == "cuda" and not quick and "W3" in names:
            extra["w3_10k_steps_s"] = _time_w3_10k(dev, log)
        load_after = _loadavg()
    out = {
        "device": str(dev),
        "device_name": _device_name(dev),
        "quick": quick,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "budget_s": budget,
        "rounds": n_rounds,
        "load_processes": load,
        "results": results,
        **extra,
        "total_s": time.perf_counter() - started,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    }
    out["targets"] = [] if quick else check_targets(out)
    return out


def _run_workload(w: Workload, k: int, dev: torch.device, quick: bool, budget: float, n_rounds: int, log) -> dict:
    entries = k * w.n_features * w.batch_size
    trainers = ("baseline", "fast")
    if entries > BASELINE_MAX_ENTRIES.get(dev.type, BASELINE_MAX_ENTRIES["cpu"]):
        trainers = ("fast",)
    log(f"{w.name} ({w.title}), {k} instance(s) on {dev}")
    kw = dict(budget_s=budget, rounds=n_rounds, trainers=trainers, log=log)
    if quick:
        kw.update(warmup_steps=1, fixed_steps={"baseline": 2, "fast": 2})
    elif entries >= 50_000_000:  # a step takes seconds on a CPU: one round of a few steps
        kw.update(warmup_steps=1, rounds=1, fixed_steps={"baseline": 2, "fast": 6 if dev.type == "cpu" else 50})
    res = measure(w, k, dev, **kw)
    res["title"] = w.title
    model = make_model(w, k)
    res["path"] = gradient_path(model)
    res["config"] = {
        "n_features": w.n_features,
        "n_hidden": w.n_hidden,
        "n_instances": k,
        "batch_size": w.batch_size,
        "lr": w.lr,
        "weight_decay": 0.0 if w.kind == "sae" else WEIGHT_DECAY,
        "model": type(model).__name__,
    }
    if "baseline" not in trainers:
        res["baseline"] = None
        res["baseline_skipped"] = f"{entries:,} batch entries > {BASELINE_MAX_ENTRIES[dev.type]:,}"
    floor = matmul_floor(w, k, dev, budget_s=0.02 if quick else 0.3)
    res["floor"] = floor
    for t in ("baseline", "fast"):
        if res.get(t):
            res[t]["floor_fraction"] = floor["seconds"] * res[t]["steps_per_s"]
    return res


@contextlib.contextmanager
def busy_processes(n: int) -> Iterator[list[subprocess.Popen]]:
    """Run ``n`` CPU-bound processes (Python busy loops) for the duration of the block, then stop them."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(max(0, int(n)))]
    try:
        if procs:
            time.sleep(1.0)  # let them start spinning
        yield procs
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # pragma: no cover - Windows
        return None


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return platform.processor() or platform.machine()


def check_targets(out: dict) -> list[dict]:
    """The issue's targets for this device, each with its measured value and whether it is met."""
    dev_type = torch.device(out["device"]).type
    checked = []
    for target in TARGETS.get(dev_type, []):
        value = None
        if target["what"] == "seconds for 10,000 steps":
            value = out.get("w3_10k_steps_s")
        else:
            for r in out["results"]:
                if r["workload"] != target["workload"]:
                    continue
                if "n_instances" in target and r["n_instances"] != target["n_instances"]:
                    continue
                if target["what"] == "instance-steps/s":
                    value = r["fast"]["instance_steps_per_s"]
                else:
                    value = r["speedup"]
        met = None
        if value is not None:
            met = value >= target["min"] if "min" in target else value <= target["max"]
        checked.append({**target, "value": value, "met": met})
    return checked


# ------------------------------------------------------------------ output


def _fmt(x: float | None, unit: str = "") -> str:
    if x is None:
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.2f}M{unit}"
    if x >= 1e4:
        return f"{x / 1e3:.1f}k{unit}"
    if x >= 100:
        return f"{x:.0f}{unit}"
    return f"{x:.3g}{unit}"


def _mib(b: int | None) -> str:
    return "-" if b is None else f"{b / 2**20:.0f}"


def load_line(out: dict) -> str:
    """``load average 0.12 before, 1.05 after (2 cores; 1 CPU-bound process beside the benchmark)``."""
    cores = out.get("cpu_count") or 1
    before, after = out.get("loadavg_before"), out.get("loadavg_after")
    if not before or not after:
        text = "load average: unknown on this system"
    else:
        text = f"load average (1 min) {before[0]:.2f} before, {after[0]:.2f} after"
    procs = out.get("load_processes", 0)
    beside = f"; {procs} CPU-bound process{'es' if procs != 1 else ''} beside the benchmark" if procs else ""
    return f"{text} ({cores} cores{beside})"


def print_table(out: dict, console=None) -> None:
    """The results as a rich table, the machine's load, and the targets after a full run."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    title = f"supercourse bench: {out['device']} ({out['device_name']}, {out['cpu_threads']} threads)"
    title += "\n" + load_line(out)
    if out["quick"]:
        title += "\n--quick: checks the harness, not a measurement"
    table = Table(title=title)
    columns = ["", "inst", "path", "base st/s", "fast st/s", "speed-up", "fast inst-st/s", "floor ms", "floor % b/f",
               "MiB b/f"]
    for col in columns:
        table.add_column(col, justify="left" if col in ("", "path") else "right")
    for r in out["results"]:
        b, f = r.get("baseline"), r["fast"]
        floor = r.get("floor") or {}
        pct = [f"{100 * m['floor_fraction']:.0f}" if m and "floor_fraction" in m else "-" for m in (b, f)]
        threads = f.get("thread_steps") if r.get("path") != "fast" else None  # the fast step has its own workers
        settled = f" {max(threads, key=threads.get)}t" if threads else ""
        table.add_row(
            r["workload"],
            f"{r['n_instances']:,}",
            r.get("path", "fast") + settled,
            _fmt(b["steps_per_s"]) if b else "skipped",
            _fmt(f["steps_per_s"]),
            f"{r['speedup']:.1f}x" if r.get("speedup") else "-",
            _fmt(f["instance_steps_per_s"]),
            f"{1e3 * floor['seconds']:.3g}" if floor else "-",
            "/".join(pct),
            f"{_mib(b['peak_mem_bytes']) if b else '-'}/{_mib(f['peak_mem_bytes'])}",
        )
    console.print(table)
    cores = out.get("cpu_count") or 1
    loads = [x[0] for x in (out.get("loadavg_before"), out.get("loadavg_after")) if x]
    if loads and max(loads) > cores:
        console.print(
            f"[yellow]warning: the machine was busy (load average up to {max(loads):.1f} on {cores} cores): "
            "timings, and the speed-ups most of all, depend on what else runs[/]"
        )
    console.print(
        "path: the gradient supercourse's trainer took (fast: the toy model's own sampler and step; analytic: the "
        "gradient written out by hand, on the model's own data; autograd), and the torch threads most of its steps "
        "ran on. floor ms: the step's matrix products alone; floor %: that over each trainer's time per step "
        "(b/f: baseline/fast).",
        style="dim",
    )
    for name in dict.fromkeys(r["workload"] for r in out["results"]):
        console.print(f"{name}: {WORKLOADS[name].describe()}", style="dim")
    if "w3_10k_steps_s" in out:
        console.print(f"W3, 10,000 steps: {out['w3_10k_steps_s']:.2f} s")
    for t in out.get("targets", []):
        where = t["workload"] + (f" at {t['n_instances']:,} instances" if "n_instances" in t else "")
        bound = f">= {t['min']:g}" if "min" in t else f"<= {t['max']:g}"
        status = "n/a" if t["met"] is None else ("[green]met[/]" if t["met"] else "[red]NOT met[/]")
        console.print(f"target {where}: {t['what']} {bound}: measured {_fmt(t['value'])} -> {status}")


def default_out(device: str) -> Path:
    return Path("bench-results") / f"bench-{torch.device(device).type}.json"


def write_json(out: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    return path


# ------------------------------------------------------------------ command line


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--device",
        default="auto",
        help="cpu, cuda, cuda:N or auto (default: cpu, and cuda too when a GPU is present)",
    )
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"comma-separated subset of {','.join(WORKLOADS)} (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="a couple of steps per workload: checks the harness")
    parser.add_argument(
        "--out",
        default=None,
        help="JSON file (default: bench-results/bench-<device>.json; with several devices, "
        "'{device}' in the name is replaced, else the device is appended)",
    )
    parser.add_argument("--budget", type=float, default=None, help="seconds per timed round (default 2; quick: 0)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per trainer (default 3; quick: 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument(
        "--load", type=int, default=0, metavar="N",
        help="run N CPU-bound processes beside the benchmark, to measure a busy machine (default 0)",
    )
    return parser


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``bench`` subcommand to the ``supercourse`` command line."""
    parser = subparsers.add_parser(
        "bench",
        help="benchmark supercourse.train against the straightforward trainer",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def _devices(arg: str) -> list[str]:
    if arg == "auto":
        return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    devices = [d.strip() for d in arg.split(",") if d.strip()]
    for d in devices:
        dev = torch.device(d)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise SystemExit(f"--device {d}: torch finds no CUDA GPU here")
        if dev.type not in ("cpu", "cuda"):
            raise SystemExit(f"--device {d}: only cpu and cuda are benchmarked")
    return devices


def _out_path(arg: str | None, device: str, several: bool) -> Path:
    if arg is None:
        return default_out(device)
    tag = device.replace(":", "")
    if "{device}" in arg:
        return Path(arg.replace("{device}", tag))
    if several:
        p = Path(arg)
        return p.with_name(f"{p.stem}-{tag}{p.suffix}")
    return Path(arg)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark for the parsed ``args``; returns the exit status."""
    from rich.console import Console

    console = Console()
    names = [n.strip().upper() for n in args.workloads.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        console.print(f"[red]unknown workload(s) {unknown}; choose from {', '.join(WORKLOADS)}[/]")
        return 2
    devices = _devices(args.device)
    log = (lambda s: None) if args.quiet else (lambda s: console.print(s, style="dim", highlight=False))
    for device in devices:
        out = run_benchmark(device, names, quick=args.quick, budget_s=args.budget, rounds=args.rounds, log=log,
                            load=getattr(args, "load", 0))
        print_table(out, console)
        path = write_json(out, _out_path(args.out, device, len(devices) > 1))
        console.print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m supercourse.bench", description=__doc__.split("\n\n")[1])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
