"""Training every instance of a model at once with AdamW.

:func:`train` is the course's one training entry point. For a plain
:class:`~supercourse.model.ToyModel` (or a subclass that keeps its data,
forward and loss: :func:`uses_fast_path`) it uses the fast analytic step in
:mod:`supercourse.fast` and a single fused AdamW kernel per step (on CUDA the
two are replayed as a CUDA graph, a chunk of steps per launch). Everything
else (a subclass with its own ``generate_batch``, ``forward`` or loss, the
later lessons' models, training on a fixed ``dataset``) trains through
autograd with the same recipe, schedule, logging, callback and progress bar.
:mod:`supercourse.reference_loop` is the plain loop both must agree with.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterator, Literal

import torch
from torch import nn

from ._validate import check_positive_int
from .devices import pick_device
from .fast import ToyModelStep
from .instanced import InstancedModel
from .model import ToyModel
from .schedules import Schedule, resolve_schedule
from .threads import ThreadChooser, torch_threads

__all__ = ["History", "train", "make_adamw", "uses_fast_path", "gradient_path", "show_progress", "Callback",
           "GradientPath"]

GradientPath = Literal["fast", "analytic", "autograd"]

Callback = Callable[[int, nn.Module, torch.Tensor], object]
"""``callback(step, model, per_instance_loss)``, called by :func:`train` at every logged step."""


@dataclass
class History:
    """What :func:`train` measured.

    Attributes:
        steps: ``(n_logged,)`` the step numbers at which losses were logged.
        losses: ``(n_logged, n_instances)`` per-instance loss at those steps (CPU).
        wall_time: seconds spent in the training loop.
        device: the device trained on.
        extra: ``seed``; ``path`` (:func:`gradient_path`); ``threads``, torch's CPU
            threads the steps settled on, and ``thread_steps``, ``{threads: steps}``
            (:class:`~supercourse.threads.ThreadChooser`); ``n_examples`` when trained
            on a dataset.
    """

    steps: torch.Tensor
    losses: torch.Tensor
    wall_time: float
    device: str
    batch_size: int = 0
    n_instances: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def final_loss(self) -> torch.Tensor:
        """``(n_instances,)`` the last logged loss of each instance."""
        return self.losses[-1]

    @property
    def steps_per_second(self) -> float:
        n_steps = int(self.steps[-1].item()) + 1 if len(self.steps) else 0
        return n_steps / self.wall_time if self.wall_time > 0 else float("nan")

    @property
    def instance_steps_per_second(self) -> float:
        return self.steps_per_second * self.n_instances


def make_adamw(params: list[torch.Tensor], lr: float, weight_decay: float) -> torch.optim.AdamW:
    """``torch.optim.AdamW``, fused where this torch build supports it for the device."""
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, foreach=True)


class FusedAdamW:
    """AdamW over a fixed list of parameters: one fused kernel per step, no bookkeeping.

    The same update as ``torch.optim.AdamW(fused=True)`` (defaults ``betas=(0.9,
    0.999)``, ``eps=1e-8``), made by calling its kernel ``torch._fused_adamw_``
    directly: ``Optimizer.step``'s Python overhead is a sizeable part of a step
    that trains a small model in a fraction of a millisecond.
    ``step(lr)`` takes the learning rate as a float, or as a 0-d tensor on the
    parameters' device (which a CUDA graph can capture and vary).
    """

    def __init__(self, params: list[torch.Tensor], weight_decay: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = [p.detach() for p in params]  # in-place updates through aliases, outside autograd
        self._leaves = list(params)
        self.weight_decay, self.betas, self.eps = float(weight_decay), betas, float(eps)
        self.exp_avgs = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p) for p in self.params]
        self.state_steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]

    @staticmethod
    def available(params: list[torch.Tensor]) -> bool:
        """Whether the fused kernel runs for these parameters (tried on scratch copies)."""
        if not hasattr(torch, "_fused_adamw_") or not params:
            return False
        try:
            probe = FusedAdamW([torch.zeros(2, device=params[0].device, dtype=params[0].dtype)], 0.0)
            probe.step(1e-3, grads=[torch.ones_like(probe.params[0])])
            return bool(torch.isfinite(probe.params[0]).all())
        except (RuntimeError, TypeError, NotImplementedError):
            return False

    def state(self, param: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(exp_avg, exp_avg_sq)`` of ``param``: Adam's first and second moments, to read or edit in place."""
        for leaf, m, v in zip(self._leaves, self.exp_avgs, self.exp_avg_sqs):
            if leaf is param:
                return m, v
        raise KeyError("param is not one of this optimizer's parameters")

    def step(self, lr: float | torch.Tensor, grads: list[torch.Tensor] | None = None) -> None:
        params, exp_avgs, exp_avg_sqs, state_steps = self.params, self.exp_avgs, self.exp_avg_sqs, self.state_steps
        if grads is None:
            grads = [p.grad for p in self._leaves]
            if any(g is None for g in grads):  # as torch.optim: a parameter without a gradient is not stepped
                keep = [i for i, g in enumerate(grads) if g is not None]
                params, exp_avgs, exp_avg_sqs, state_steps, grads = (
                    [seq[i] for i in keep] for seq in (params, exp_avgs, exp_avg_sqs, state_steps, grads)
                )
                if not keep:
                    return
        torch._foreach_add_(state_steps, 1)
        torch._fused_adamw_(
            params,
            grads,
            exp_avgs,
            exp_avg_sqs,
            [],
            state_steps,
            lr=lr,
            beta1=self.betas[0],
            beta2=self.betas[1],
            weight_decay=self.weight_decay,
            eps=self.eps,
            amsgrad=False,
            maximize=False,
        )


def _check_number(name: str, value: object, minimum: float, strict: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    bad = value <= minimum if strict else value < minimum
    if bad or value != value:
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum:g}, got {value!r}")
    return float(value)


_SHOW_PROGRESS = 0
"""How many :func:`show_progress` blocks are open."""


@contextlib.contextmanager
def show_progress() -> Iterator[None]:
    """Inside this block every :func:`train` and :func:`~supercourse.sae.train_sae` shows its progress bar,
    even when its caller passed ``progress=False`` (never while autograding).

    For long runs made of many trainings whose callers chose no bar, e.g.
    ``with show_progress(): experiment.run(...)`` in ``supercourse reproduce``.
    """
    global _SHOW_PROGRESS
    _SHOW_PROGRESS += 1
    try:
        yield
    finally:
        _SHOW_PROGRESS -= 1


def _progress_wanted(progress: bool) -> bool:
    # Autograding executes notebooks headless: no bars in graded output.
    grading = os.environ.get("NBGRADER_EXECUTION") or os.environ.get("SUPERCOURSE_GRADING")
    return (progress or _SHOW_PROGRESS > 0) and not grading


def _in_jupyter() -> bool:
    """True inside a Jupyter kernel (JupyterLab, nbclient), where a live terminal bar does not belong."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class _Progress:
    """Training progress that reaches the last step and leaves one final line.

    In a terminal: a rich bar, refreshed once more at the end so it shows the
    last step. In Jupyter: one output that updates in place (an HTML
    ``<progress>`` and a line of text) and, when training ends, is replaced by
    the final line ``<description>: <steps>/<steps> steps, loss <loss>, <s> s``;
    that line is what a saved or statically rendered notebook shows (no widget).
    """

    JUPYTER_REFRESH_S = 0.25

    def __init__(self, enabled: bool, steps: int, description: str) -> None:
        self.bar = None
        self.handle = None
        self.steps, self.description = steps, description
        self.completed, self.loss = 0, "-"
        self.start = self._shown = time.perf_counter()
        if not enabled:
            return
        if _in_jupyter():
            from IPython.display import display

            self.handle = display(self._bundle(final=False), raw=True, display_id=True)
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeRemainingColumn(),
        )
        self.task = self.bar.add_task(description, total=steps, loss="-")
        self.bar.start()

    def line(self, final: bool = False) -> str:
        """``training ...: 2000/2000 steps, loss 0.0123, 4.1 s`` (``stopped at`` when it ended early)."""
        elapsed = time.perf_counter() - self.start
        done = f"{self.completed}/{self.steps} steps" if not final or self.completed == self.steps else (
            f"stopped at {self.completed}/{self.steps} steps"
        )
        return f"{self.description}: {done}, loss {self.loss}, {elapsed:.1f} s"

    def _bundle(self, final: bool) -> dict[str, str]:
        import html

        text = self.line(final)
        bar = "" if final else (
            f'<progress value="{self.completed}" max="{self.steps}" '
            'style="width:14em;vertical-align:middle;margin-right:0.6em"></progress>'
        )
        return {"text/plain": text, "text/html": f'<div class="sc-progress">{bar}{html.escape(text)}</div>'}

    def update(self, completed: int, loss: torch.Tensor | None) -> None:
        if self.bar is None and self.handle is None:
            return
        self.completed = completed
        self.loss = f"{loss.sum().item():.4g}" if loss is not None else "-"
        if self.bar is not None:
            self.bar.update(self.task, completed=completed, loss=self.loss)
        elif time.perf_counter() - self._shown >= self.JUPYTER_REFRESH_S:
            self.handle.update(self._bundle(final=False), raw=True)
            self._shown = time.perf_counter()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=self.completed, loss=self.loss)
            self.bar.refresh()  # rich skips the final refresh in Jupyter; this one also ends the terminal bar
            self.bar.stop()
        if self.handle is not None:
            self.handle.update(self._bundle(final=True), raw=True)


FAST_PATH_METHODS = ("hidden", "forward", "target", "per_instance_loss", "loss", "generate_batch")
"""The :class:`ToyModel` methods whose maths the fast step reproduces, its data included
(``ToyModel.GRADIENT_OF`` and ``generate_batch``): a subclass that overrides none of them gets the fast path."""

ANALYTIC_DTYPES = (torch.float32, torch.float64)


def _gradient_owner(model: nn.Module) -> type | None:
    """The class of ``model`` whose hand-written gradient applies (``None``: none, or a method it reproduces is
    overridden)."""
    if not isinstance(model, InstancedModel) or model._forward_hooks or model._forward_pre_hooks:
        return None  # forward hooks run only when the module is called, i.e. through autograd
    cls = type(model)
    owner = next((c for c in cls.__mro__ if "_analytic_step" in vars(c) and c is not InstancedModel), None)
    if owner is None:
        return None
    for name in owner.GRADIENT_OF:
        if name in vars(model) or getattr(cls, name) is not getattr(owner, name):
            return None
    return owner


def gradient_path(model: nn.Module, dataset: torch.Tensor | None = None) -> GradientPath:
    """Which gradient :func:`train` uses for ``model``: ``"fast"``, ``"analytic"`` or ``"autograd"``.

    * ``"fast"``: a :class:`ToyModel` that overrides none of :data:`FAST_PATH_METHODS`
      (its data included), trained without a ``dataset``: :mod:`supercourse.fast`
      draws the data itself;
    * ``"analytic"``: a model whose class writes its gradient out by hand
      (``_analytic_step``) and that overrides none of the methods that gradient
      reproduces (``GRADIENT_OF``: forward, target, losses), has no forward
      hooks, float32/float64 parameters that all train: it is fed with its own
      ``generate_batch`` (or the ``dataset``), e.g.
      :class:`~supercourse.correlation.SetModel`,
      :class:`~supercourse.neurons.NeuronModel`, the SAE;
    * ``"autograd"``: anything else.
    """
    owner = _gradient_owner(model)
    if owner is None:
        return "autograd"
    params = list(model.parameters())
    if not params or not all(p.requires_grad for p in params) or any(p.dtype not in ANALYTIC_DTYPES for p in params):
        return "autograd"
    if dataset is None and owner is ToyModel:
        if all(name not in vars(model) and getattr(type(model), name) is getattr(ToyModel, name)
               for name in FAST_PATH_METHODS):
            return "fast"
    return "analytic"


def uses_fast_path(model: nn.Module) -> bool:
    """Whether :func:`train` trains ``model`` with the fast step of :mod:`supercourse.fast` on data it draws itself.

    True exactly when :func:`gradient_path` is ``"fast"``: ``model`` is a
    :class:`ToyModel` whose class (and instance) overrides none of
    :data:`FAST_PATH_METHODS` and which has no forward hooks. (A subclass with
    its own data only keeps the hand-written gradient: ``"analytic"``.)
    """
    return gradient_path(model) == "fast"


def train(
    model: nn.Module,
    steps: int = 10_000,
    batch_size: int = 1024,
    lr: float = 1e-3,
    weight_decay: float = 0.01,
    lr_schedule: Schedule = "constant",
    seed: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    log_every: int | None = None,
    callback: Callback | None = None,
    dataset: torch.Tensor | None = None,
) -> History:
    """Train every instance of ``model`` at once with AdamW (the paper's recipe by default).

    Args:
        model: a :class:`ToyModel` or any model of the course
            (:class:`~supercourse.instanced.InstancedModel`), or any module with
            ``generate_batch(batch_size, generator)`` and ``loss(x, x_hat)`` (and
            optionally ``per_instance_loss``). Trained in place and moved to
            ``device``. A subclass's own ``generate_batch``, ``forward`` and
            losses are what it trains on (:func:`gradient_path` says which
            gradient runs): the gradient is that of ``model.loss``, the logged
            loss ``model.per_instance_loss``; an ``InstancedModel``'s
            ``after_step()`` runs after every update.
        steps, batch_size: optimisation steps, and fresh samples per step per instance.
        lr, weight_decay: AdamW's learning rate and decoupled weight decay.
        lr_schedule: ``"constant"``, ``"linear"``, ``"cosine"`` or ``f(step, steps) -> factor``.
        seed: seeds the data stream; a seeded CPU run is deterministic. ``None``
            draws a seed from torch's global generator.
        device: ``None`` picks cuda, then mps, then cpu.
        progress: show a rich progress bar (never while autograding).
        log_every: log the per-instance loss every this many steps (default:
            about 100 points) and always at the last step.
        callback: ``callback(step, model, per_instance_loss)`` called at every
            logged step, after that step's update (so ``model``'s parameters
            are the ones step ``step + 1`` starts from), with the loss logged at
            that step (``(n_instances,)`` on the training device, measured on
            step ``step``'s batch before the update; ``(1,)``, the total, for a
            module without ``per_instance_loss``). It may read the model or
            change its parameters in place (under ``torch.no_grad()``; the
            optimizer keeps its state); its return value is ignored. Works on
            both paths.
        dataset: train on this fixed finite dataset instead of fresh draws:
            ``(n_examples, n_instances, n_features)``, row ``j`` being example
            ``j`` of every instance. Each step takes the next
            ``min(batch_size, n_examples)`` rows of a seeded random permutation
            (reshuffled when too few are left for a batch: batches never repeat
            an example, and with ``batch_size >= n_examples`` every step is
            the full dataset). ``model.generate_batch`` is not called.

    Returns:
        a :class:`History` with ``losses: (n_logged, n_instances)``; for a module
        without ``per_instance_loss``, ``losses: (n_logged, 1)``, the total loss.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module such as supercourse.ToyModel, got {type(model).__name__}")
    steps = check_positive_int("steps", steps)
    batch_size = check_positive_int("batch_size", batch_size)
    lr = _check_number("lr", lr, 0.0, strict=True)
    weight_decay = _check_number("weight_decay", weight_decay, 0.0, strict=False)
    schedule = resolve_schedule(lr_schedule)
    log_every = check_positive_int("log_every", log_every) if log_every is not None else max(1, steps // 100)
    if callback is not None and not callable(callback):
        raise TypeError(
            f"callback must be callable as callback(step, model, per_instance_loss), got {type(callback).__name__}"
        )
    if dataset is not None:
        dataset = _check_dataset(dataset, model)
    dev = pick_device(device)
    model.to(dev)
    if dataset is not None:
        dataset = dataset.to(dev)

    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,)).item())
    generator = torch.Generator(device=dev).manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    lrs = [lr * schedule(step, steps) for step in range(steps)]

    path = gradient_path(model, dataset)
    if path != "fast":
        for method in ("generate_batch", "loss") if dataset is None else ("loss",):
            if not callable(getattr(model, method, None)):
                raise TypeError(f"model must define {method}(); {type(model).__name__} does not")
    user_threads = torch.get_num_threads()
    if path == "fast":
        # On the CPU torch runs single-threaded while training and the step
        # spreads its blocks of instances over `user_threads` workers instead:
        # one join per step rather than a parallel region (and its barrier) per
        # small operation, which costs a scheduler time slice whenever the
        # cores are shared.
        step_fn = ToyModelStep(model, batch_size, generator, workers=user_threads if dev.type == "cpu" else 1)
    else:
        for p in params:
            p.grad = None
        batches = _Batches(model, batch_size, generator, dataset)
        batch_size = batches.batch_size
        step_fn = model._analytic_step(batch_size, generator, batches) if path == "analytic" else None
        if step_fn is None or any(p.grad is None for p in params):  # the step must fill every gradient
            path, step_fn = "autograd", _AutogradStep(model, batches, params)
    # On the CPU the fast step runs torch on one thread (its workers share the cores); the other paths run
    # each step on one thread or on torch's threads, whichever this machine runs faster now.
    chooser = key = None
    if dev.type == "cpu" and path != "fast":
        shapes = tuple(tuple(p.shape) for p in params)
        key = ("train", type(model).__qualname__, shapes, batch_size, path, user_threads)
        chooser = ThreadChooser.resume(key, user_threads)
    threads = 1 if dev.type == "cpu" else user_threads
    n_instances = int(getattr(model, "n_instances", 1))
    # Without per_instance_loss only the total is known: log it in one column
    # rather than repeat it under every instance.
    loss_columns = 1 if isinstance(step_fn, _AutogradStep) and step_fn.per_instance is None else n_instances
    if FusedAdamW.available(params):
        fused = FusedAdamW(params, weight_decay)
        update = fused.step
    else:  # pragma: no cover - torch builds without the fused kernel for this device
        fused, optimizer = None, make_adamw(params, lr, weight_decay)
        update = _optimizer_update(optimizer)
    after_step = model.after_step if _has_after_step(model) else None

    log_steps = list(range(0, steps, log_every))
    if log_steps[-1] != steps - 1:
        log_steps.append(steps - 1)
    log_set = set(log_steps)
    graphs = None
    if path == "fast" and fused is not None and _cuda_graphs_wanted(dev):
        graphs = _GraphedSteps(step_fn, fused, lrs, generator, log_every)
    losses = torch.empty(len(log_steps), loss_columns, device=dev)
    bar = _Progress(_progress_wanted(progress), steps, f"training {n_instances} instance(s) on {dev.type}")
    bar_every = max(1, steps // 200)
    next_bar = 1
    row = 0
    start = time.perf_counter()
    try:
        with torch_threads(threads):
            step = 0
            while step < steps:
                if graphs is not None and step not in log_set and (done := graphs.run(step, steps, log_set)):
                    step += done
                else:
                    if chooser is not None:
                        chooser.begin()
                    loss = step_fn(step in log_set)
                    update(lrs[step])
                    if after_step is not None:
                        after_step()
                    if chooser is not None:
                        chooser.end()
                    if loss is not None:
                        losses[row] = loss.detach()
                        row += 1
                        if callback is not None:
                            with torch_threads(user_threads):  # the user's code runs with the user's threads
                                callback(step, model, losses[row - 1].clone())
                    step += 1
                if step >= next_bar or step == steps:
                    bar.update(step, losses[row - 1] if row else None)
                    next_bar = step + bar_every
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
        if chooser is not None:
            chooser.save(key)
    finally:
        bar.close()
    wall = time.perf_counter() - start
    for p in params:
        p.grad = None
    return History(
        steps=torch.tensor(log_steps),
        losses=losses.cpu(),
        wall_time=wall,
        device=str(dev),
        batch_size=batch_size,
        n_instances=n_instances,
        extra={"seed": seed, "path": path, **_thread_record(chooser, threads, step)}
        | ({} if dataset is None else {"n_examples": int(dataset.shape[0])}),
    )


def _thread_record(chooser: ThreadChooser | None, threads: int, steps: int) -> dict:
    """``threads`` (those the steps settled on) and ``thread_steps`` (``{threads: steps}``) for a history."""
    if chooser is None:
        return {"threads": threads, "thread_steps": {threads: steps}}
    return {"threads": chooser.chosen, "thread_steps": dict(chooser.steps_on)}


def _has_after_step(model: nn.Module) -> bool:
    """Whether ``model`` is an :class:`InstancedModel` with an ``after_step`` that does something."""
    return isinstance(model, InstancedModel) and (
        "after_step" in vars(model) or type(model).after_step is not InstancedModel.after_step
    )


def _check_dataset(dataset: object, model: nn.Module) -> torch.Tensor:
    """``dataset: (n_examples, n_instances, n_inputs)``, checked against what ``model`` declares."""
    dim = model.INPUT_DIM if isinstance(model, InstancedModel) else "n_features"
    if not isinstance(dataset, torch.Tensor):
        raise TypeError(
            f"dataset must be a torch.Tensor of shape (n_examples, n_instances, {dim}), got {type(dataset).__name__}"
        )
    if not dataset.is_floating_point():
        raise TypeError(f"dataset must be a floating-point tensor, got dtype {dataset.dtype}")
    size = model.n_inputs if isinstance(model, InstancedModel) else getattr(model, "n_features", None)
    want = (int(getattr(model, "n_instances", dataset.shape[1] if dataset.dim() == 3 else -1)),
            int(size if size is not None else (dataset.shape[2] if dataset.dim() == 3 else -1)))
    if dataset.dim() != 3 or dataset.shape[0] < 1 or tuple(dataset.shape[1:]) != want:
        raise ValueError(
            f"dataset must have shape (n_examples >= 1, n_instances={want[0]}, {dim}={want[1]}), "
            f"got {tuple(dataset.shape)}"
        )
    return dataset.detach()


def _optimizer_update(optimizer: torch.optim.Optimizer):
    def update(lr_now: float) -> None:
        for group in optimizer.param_groups:
            group["lr"] = lr_now
        optimizer.step()

    return update


def _cuda_graphs_wanted(device: torch.device) -> bool:
    return device.type == "cuda" and os.environ.get("SUPERCOURSE_CUDA_GRAPHS", "1") not in ("0", "false", "no")


class _GraphedSteps:
    """CUDA only: ``chunk`` consecutive training steps captured once, replayed as one graph.

    On a GPU a toy-model step is a few dozen tiny kernels, so launching them
    costs more than running them. The fast step and :class:`FusedAdamW` write
    only into preallocated buffers, which is what a CUDA graph needs: the data
    draw (the generator is registered with the graph, so its state advances on
    every replay), the forward and backward and the AdamW update of ``chunk``
    steps become one launch. The learning rates of the chunk are copied into
    the graph from a device tensor before each replay. Steps that log a loss
    run eagerly on the same buffers. If capture fails for any reason, training
    goes on eagerly (set ``SUPERCOURSE_CUDA_GRAPHS=0`` to never try).
    """

    MAX_CHUNK = 16
    WARMUP = 3

    def __init__(self, step_fn, fused: FusedAdamW, lrs: list[float], generator, log_every: int) -> None:
        self.step_fn, self.fused, self.generator = step_fn, fused, generator
        self.chunk = min(self.MAX_CHUNK, log_every - 1)
        self.device = fused.params[0].device
        self.lrs = torch.tensor(lrs, dtype=torch.float32, device=self.device)
        self.lr_buf = torch.empty(max(self.chunk, 1), dtype=torch.float32, device=self.device)
        self.graph = None
        self.eager_steps = 0
        self.failed = self.chunk < 2

    def _capture(self) -> None:
        graph = torch.cuda.CUDAGraph()
        if self.generator is not None:
            graph.register_generator_state(self.generator)
        with torch.cuda.graph(graph):
            for i in range(self.chunk):
                self.step_fn(False)
                self.fused.step(self.lr_buf[i])
        self.graph = graph

    def run(self, step: int, steps: int, log_set: set[int]) -> int:
        """Replay the chunk starting at ``step`` and return its length, or 0 to step eagerly."""
        if self.failed:
            return 0
        if self.graph is None:
            if self.eager_steps < self.WARMUP:  # eager steps first: cuBLAS handles, buffers
                self.eager_steps += 1
                return 0
            try:
                self._capture()
            except Exception as err:  # noqa: BLE001 - any failure means: train eagerly
                self.failed, self.graph = True, None
                warnings.warn(f"CUDA graph capture failed ({err!r}); training without graphs", stacklevel=3)
                return 0
        end = step + self.chunk
        if end > steps or any(s in log_set for s in range(step, end)):
            return 0
        self.lr_buf.copy_(self.lrs[step:end])
        self.graph.replay()
        return self.chunk


class _Batches:
    """A step's data: the model's own ``generate_batch``, or seeded permutations of a fixed ``dataset``.

    Each call returns the next ``(batch_size, n_instances, n_features)`` batch.
    With a dataset, the batch is ``min(batch_size, n_examples)`` rows of a
    seeded permutation, a fresh one when too few rows are left.
    """

    def __init__(
        self, model: nn.Module, batch_size: int, generator: torch.Generator, dataset: torch.Tensor | None
    ) -> None:
        self.model, self.generator, self.dataset = model, generator, dataset
        self.batch_size = batch_size if dataset is None else min(batch_size, int(dataset.shape[0]))
        self._order = torch.empty(0, dtype=torch.long)
        self._next = 0

    def __call__(self) -> torch.Tensor:
        if self.dataset is None:
            return self.model.generate_batch(self.batch_size, generator=self.generator)
        if self._next + self.batch_size > len(self._order):  # a fresh permutation of the examples
            n = self.dataset.shape[0]
            self._order = torch.randperm(n, generator=self.generator, device=self.generator.device)
            self._next = 0
        idx = self._order[self._next : self._next + self.batch_size]
        self._next += self.batch_size
        return self.dataset[idx.to(self.dataset.device)]


class _AutogradStep:
    """The plain step: the next batch, the model's own forward and loss, through autograd.

    The gradient is that of ``model.loss(x, x_hat)``; at logged steps the
    logged loss is ``model.per_instance_loss(x, x_hat)`` ``(n_instances,)``,
    or the total ``(1,)`` for a module without one.
    """

    def __init__(self, model: nn.Module, batches: _Batches, params: list[torch.Tensor]) -> None:
        self.model, self.batches, self.params = model, batches, params
        self.per_instance = getattr(model, "per_instance_loss", None)

    def __call__(self, want_loss: bool) -> torch.Tensor | None:
        x = self.batches()
        x_hat = self.model(x)
        loss = self.model.loss(x, x_hat)
        per = None
        if want_loss:
            if self.per_instance is not None:
                with torch.no_grad():
                    per = self.per_instance(x, _detached(x_hat)).detach()
            else:
                per = loss.detach().reshape(1)
        for p in self.params:
            p.grad = None
        loss.backward()
        return per


def _detached(output: object) -> object:
    """``output`` with its tensors detached (a model may return a tuple, as the SAE does)."""
    if isinstance(output, torch.Tensor):
        return output.detach()
    if isinstance(output, (tuple, list)):
        return type(output)(_detached(o) for o in output)
    return output
