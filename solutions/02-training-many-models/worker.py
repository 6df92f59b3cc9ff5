"""Objects the grader asks the worker to build for lesson 02's checks (``Construct("lesson:X", kwargs)``).

They run beside the learner's code, so everything they record is untrusted:
a check may use :meth:`grading_records` to word a message or to withhold
points, and awards them from what only a correct implementation returns (loss
histories, final weights, measured rates), compared with what the grader
computes itself. The one exception is :class:`FakeTrainer`, whose speed is
drawn as each call runs, so that no one (the grader included) can read it
beforehand: its records say, after the fact, how slow each call was. Code that
rewrites them tampers with the grader's double (the check bounds the factors it
accepts); code that only reads the double before timing learns nothing.

* :class:`ScriptedModel`: a ``ToyModel`` whose batches come from its own
  seeded stream (so the grader can replay them) and which records the batches
  it hands out, the optimizer steps it sees, whether torch's global random
  stream moved, and whether the graph of a forward pass outlived ``train``
  (a loss history kept attached to it).
* :class:`ProbeSchedule`: a learning-rate schedule ``f(step, steps)`` that
  records its calls.
* :class:`SimulatedMachine` / :class:`RealMachine`: make ``torch`` in this
  process report (or stop reporting) CUDA GPUs and Apple's MPS, including
  allocating tensors on them; :class:`RealMachine` undoes every patch.
* :class:`Instances`: an object with ``n_instances`` (a model as
  ``measure_throughput`` sees it).
* :class:`FakeTrainer`: a trainer whose speed no one knows before it runs (each
  call draws its own from the operating system's random source, as it runs),
  with a slow start, slow first steps and, on a simulated "cuda" or "mps"
  device, an asynchronous queue run by a thread that only the matching
  synchronisation (or timing events) waits for. What it ran comes back in its
  records, after the fact: nothing readable before a call tells its duration.

Imports only ``torch`` and the standard library at module level; ``supercourse``
lazily (this file is copied into the sandbox as ``grading_worker.lesson``).
"""

from __future__ import annotations

import collections
import math
import random
import threading
import time
import weakref
from typing import Any, Callable

import torch
from torch.overrides import TorchFunctionMode

__all__ = ["ScriptedModel", "ProbeSchedule", "SimulatedMachine", "RealMachine", "Instances", "FakeTrainer", "restore_all"]

_PATCHES: list[tuple[Any, str, Any, bool]] = []
_UNDO: list[Callable[[], None]] = []


def _patch(owner: Any, name: str, value: Any) -> None:
    """Set ``owner.name = value``, remembering how to undo it."""
    had = name in vars(owner) if hasattr(owner, "__dict__") else hasattr(owner, name)
    _PATCHES.append((owner, name, getattr(owner, name, None), had))
    setattr(owner, name, value)


def restore_all() -> None:
    """Undo every patch, hook and mode the spies installed (latest first)."""
    while _UNDO:
        try:
            _UNDO.pop()()
        except Exception:  # noqa: BLE001 - undo what can be undone
            pass
    while _PATCHES:
        owner, name, old, had = _PATCHES.pop()
        try:
            if had:
                setattr(owner, name, old)
            else:
                delattr(owner, name)
        except Exception:  # noqa: BLE001
            pass


# --------------------------------------------------------------------------- train


def _ToyModel():
    from supercourse.model import ToyModel

    return ToyModel


class ScriptedModel(torch.nn.Module):
    """Placeholder replaced by :func:`_scripted_class` on first use (ToyModel is imported lazily)."""

    def __new__(cls, *args: Any, **kwargs: Any):  # type: ignore[misc]
        return _scripted_class()(*args, **kwargs)


_SCRIPTED: type | None = None


def _scripted_class() -> type:
    global _SCRIPTED
    if _SCRIPTED is not None:
        return _SCRIPTED
    ToyModel = _ToyModel()

    class Scripted(ToyModel):
        """A ToyModel that draws its batches from its own stream (``script_seed``) and records what train did.

        With ``script_seed=None`` it draws from the generator it is given, as a
        plain ToyModel does. Records: the batch sizes asked for, whether a
        generator was passed, at every optimizer step that trains this model
        the optimizer's settings and whether gradients were present, whether
        torch's global random state changed, and how many forward passes'
        graphs are still alive (each forward's output passes through an
        identity node this model holds a weak reference to).
        """

        def __init__(self, n_features: int, n_hidden: int, n_instances: int = 1, feature_probability: Any = 1.0,
                     importance: Any = 1.0, activation: str = "relu", seed: int | None = None,
                     script_seed: int | None = None) -> None:
            super().__init__(n_features, n_hidden, n_instances=n_instances, feature_probability=feature_probability,
                             importance=importance, activation=activation, seed=seed)
            self._script = None if script_seed is None else torch.Generator().manual_seed(int(script_seed))
            self._sizes: list[Any] = []
            self._with_generator: list[bool] = []
            self._steps: list[dict[str, Any]] = []
            self._optimizers: list[int] = []
            from torch.optim.optimizer import register_optimizer_step_pre_hook

            handle = register_optimizer_step_pre_hook(self._on_step)
            self._handle = handle
            _UNDO.append(handle.remove)
            self._graphs: list[Any] = []
            self._global_state = torch.random.get_rng_state()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = super().forward(x)
            if out.requires_grad:
                out = _Tag.apply(out)
                self._graphs.append(weakref.ref(out.grad_fn))
            return out

        def generate_batch(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
            self._sizes.append(batch_size if isinstance(batch_size, (int, float)) else str(batch_size))
            self._with_generator.append(generator is not None)
            if self._script is None:
                return super().generate_batch(batch_size, generator=generator)
            from supercourse.data import sparse_uniform

            p = self.feature_probability.detach().cpu()
            return sparse_uniform(int(batch_size), p, generator=self._script).to(self.W.device, self.W.dtype)

        def _on_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
            mine = [self.W, self.b_final]
            params = [p for g in optimizer.param_groups for p in g["params"]]
            if not any(p is q for p in params for q in mine):
                return
            if id(optimizer) not in self._optimizers:
                self._optimizers.append(id(optimizer))
            group = optimizer.param_groups[0]
            self._steps.append({
                "optimizer": self._optimizers.index(id(optimizer)),
                "cls": type(optimizer).__name__,
                "adamw": isinstance(optimizer, torch.optim.AdamW) or bool(group.get("decoupled_weight_decay", False)),
                "lr": [float(g["lr"]) for g in optimizer.param_groups],
                "weight_decay": [float(g.get("weight_decay", 0.0)) for g in optimizer.param_groups],
                "all_parameters": len(params) == 2 and all(any(p is q for p in params) for q in mine),
                "has_grad": all(q.grad is not None and bool(q.grad.abs().sum() > 0) for q in mine),
                "batches": len(self._sizes),
            })

        def grading_records(self) -> dict[str, Any]:
            try:
                self._handle.remove()
            except Exception:  # noqa: BLE001
                pass
            return {"sizes": list(self._sizes), "with_generator": list(self._with_generator), "steps": list(self._steps),
                    "graphs_alive": sum(ref() is not None for ref in self._graphs),
                    "global_rng_moved": not torch.equal(torch.random.get_rng_state(), self._global_state)}

    Scripted.__qualname__ = Scripted.__name__ = "ScriptedModel"
    _SCRIPTED = Scripted
    return Scripted


class _Tag(torch.autograd.Function):
    """The identity, as a node of the graph whose lifetime the model can watch."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad


def scripted_model(**kwargs: Any) -> torch.nn.Module:
    """A :class:`ScriptedModel` built here (the grader replays a run with it)."""
    return _scripted_class()(**kwargs)


class ProbeSchedule:
    """A learning-rate schedule no one would use, so that every way of mis-applying it shows.

    ``factor(step, steps) = 0.2 + 0.8 * ((7 * step + steps) % 5) / 4``; records its calls.
    """

    def __init__(self) -> None:
        self.calls: list[Any] = []

    @staticmethod
    def factor(step: int, steps: int) -> float:
        return 0.2 + 0.8 * ((7 * int(step) + int(steps)) % 5) / 4

    def __call__(self, step: int, steps: int) -> float:
        self.calls.append([step if isinstance(step, int) else str(step), steps if isinstance(steps, int) else str(steps)])
        return self.factor(step, steps)

    def grading_records(self) -> list[Any]:
        return list(self.calls)


# --------------------------------------------------------------------------- machines


class _Devices(TorchFunctionMode):
    """Tensors asked for on a simulated "cuda"/"mps" device are made on the CPU; on an absent one, torch's error."""

    def __init__(self, machine: "SimulatedMachine") -> None:
        super().__init__()
        self.machine = machine

    def _device(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                dev = torch.device(value)
            except (RuntimeError, TypeError, ValueError):
                return value
        elif isinstance(value, torch.device):
            dev = value
        else:
            return value
        if dev.type not in ("cuda", "mps"):
            return value
        self.machine.validate(dev)
        return torch.device("cpu")

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        name = getattr(func, "__name__", "")
        if "device" in kwargs:
            kwargs["device"] = self._device(kwargs["device"])
        if name == "to":
            args = tuple(self._device(a) if i > 0 else a for i, a in enumerate(args))
        elif name == "cuda":
            self.machine.validate(torch.device("cuda", args[1] if len(args) > 1 and isinstance(args[1], int) else None))
            return args[0]
        return func(*args, **kwargs)


class SimulatedMachine:
    """Make ``torch`` in this process report a machine with (or without) CUDA GPUs and MPS.

    Args:
        cuda: whether CUDA is available; ``n_cuda`` GPUs when it is.
        mps: whether Apple's MPS is available.
        cuda_built, mps_built: whether torch was built with it (default: as available;
            True with the device unavailable is a "built but not available" machine).
        allocate: simulate allocating tensors on available devices (made on the CPU);
            without it, only the availability functions are simulated and using a
            GPU fails as it does on this CPU build.
        name: the machine's name (in ``torch.cuda.get_device_name``), drawn by the
            check from the grading run's secret.

    The patches stay until a :class:`RealMachine` is built (or :func:`restore_all`).
    """

    def __init__(self, cuda: bool = False, mps: bool = False, n_cuda: int = 1, cuda_built: bool | None = None,
                 mps_built: bool | None = None, allocate: bool = True, name: str = "") -> None:
        restore_all()
        self.name = str(name)  # the check draws it: no two grading runs ask about the same machine
        self.cuda, self.mps, self.n_cuda = bool(cuda), bool(mps), int(n_cuda) if cuda else 0
        cuda_built = self.cuda if cuda_built is None else bool(cuda_built)
        mps_built = self.mps if mps_built is None else bool(mps_built)
        _patch(torch.cuda, "is_available", lambda: self.cuda)
        _patch(torch.cuda, "device_count", lambda: self.n_cuda)
        _patch(torch.cuda, "is_initialized", lambda: self.cuda)
        if self.cuda:
            _patch(torch.cuda, "current_device", lambda: 0)
            _patch(torch.cuda, "get_device_name", lambda *a, **k: f"Simulated GPU {self.name}".strip())
        _patch(torch.backends.cuda, "is_built", lambda: cuda_built)
        _patch(torch.backends.mps, "is_available", lambda: self.mps)
        _patch(torch.backends.mps, "is_built", lambda: mps_built)
        if hasattr(torch, "mps") and hasattr(torch.mps, "is_available"):
            _patch(torch.mps, "is_available", lambda: self.mps)
        if hasattr(torch.mps, "device_count"):
            _patch(torch.mps, "device_count", lambda: 1 if self.mps else 0)
        acc = getattr(torch, "accelerator", None)
        kind = "cuda" if self.cuda else ("mps" if self.mps else None)
        # torch's own optimizers consult torch.accelerator on every step: simulate it only where nothing trains.
        if acc is not None and allocate:
            if hasattr(acc, "is_available"):
                _patch(acc, "is_available", lambda: kind is not None)
            if hasattr(acc, "current_accelerator"):
                _patch(acc, "current_accelerator", lambda *a, **k: torch.device(kind) if kind else None)
            if hasattr(acc, "device_count"):
                _patch(acc, "device_count", lambda: self.n_cuda if self.cuda else (1 if self.mps else 0))
        if allocate:
            mode = _Devices(self)
            mode.__enter__()
            _UNDO.append(lambda: mode.__exit__(None, None, None))

    def validate(self, dev: torch.device) -> None:
        """Raise as torch does when a tensor is asked for on a device this machine does not have."""
        if dev.type == "cuda":
            if not self.cuda:
                raise RuntimeError("Found no NVIDIA driver on your system (simulated machine without CUDA)")
            if dev.index is not None and not 0 <= dev.index < self.n_cuda:
                raise RuntimeError("CUDA error: invalid device ordinal")
        if dev.type == "mps" and not self.mps:
            raise RuntimeError("The MPS backend is not available on this machine (simulated)")

    def grading_records(self) -> None:
        return None


class RealMachine:
    """Undo every simulation: torch reports this machine again."""

    def __init__(self) -> None:
        restore_all()


# --------------------------------------------------------------------------- measure_throughput


class Instances:
    """A model as ``measure_throughput`` sees it: only ``n_instances`` is read."""

    def __init__(self, n_instances: int) -> None:
        self.n_instances = int(n_instances)


_RANDOM = random.SystemRandom()
"""The operating system's random source: no seed, so nothing in this process can tell a call's speed beforehand."""


def _slow_down(spread: float) -> float:
    """A call's slow-down factor, log-uniform on [1, spread], drawn when the call's work runs."""
    return math.exp(_RANDOM.uniform(0.0, math.log(spread))) if spread > 1.0 else 1.0


def _sleep_until(t: float) -> None:
    while True:
        left = t - time.perf_counter()
        if left <= 0:
            return
        time.sleep(left)


class _Queue:
    """A simulated device's queue: its work runs in order, in a background thread, after the call that queued it returned."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._items: collections.deque[Any] = collections.deque()
        self._running: Any = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="simulated-device-queue", daemon=True)
        self._thread.start()

    def put(self, item: Any) -> None:
        with self._cv:
            self._items.append(item)
            self._cv.notify_all()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._items and not self._stopped.is_set():
                    self._cv.wait(0.05)
                if self._stopped.is_set():
                    return
                item = self._running = self._items.popleft()
            item.run(self._stopped)
            with self._cv:
                self._running = None
                self._cv.notify_all()

    def wait_for(self, done: Callable[[], bool]) -> None:
        """Block the caller until ``done()`` (checked under the queue's lock) or the queue is stopped."""
        with self._cv:
            while not done() and not self._stopped.is_set():
                self._cv.wait(0.05)

    def drain(self) -> None:
        self.wait_for(lambda: not self._items and self._running is None)

    def stop(self) -> list[Any]:
        """Stop the thread (interrupting the work it runs); return the work it never started."""
        with self._cv:
            if self._stopped.is_set():
                return []
            self._stopped.set()
            pending = list(self._items)
            self._items.clear()
            self._cv.notify_all()
        self._thread.join(timeout=2.0)
        return pending


class _Work:
    def __init__(self, trainer: "FakeTrainer", call: int, steps: int, slow: int, first: bool) -> None:
        self.trainer, self.call, self.steps, self.slow, self.first = trainer, call, steps, slow, first

    def run(self, stopped: threading.Event | None = None) -> None:
        self.trainer._execute(self, stopped)


class _Event:
    """``torch.cuda.Event``/``torch.mps.Event`` on the simulated device: a mark in its queue, timed when the queue reaches it."""

    def __init__(self, queue: _Queue, enable_timing: bool = False, *args: Any, **kwargs: Any) -> None:
        self._queue, self.enable_timing, self.at = queue, bool(enable_timing), None

    def record(self, *args: Any, **kwargs: Any) -> None:
        self.at = None
        self._queue.put(self)

    def run(self, stopped: threading.Event | None = None) -> None:
        self.at = time.perf_counter()

    def query(self) -> bool:
        return self.at is not None

    def synchronize(self) -> None:
        self._queue.wait_for(lambda: self.at is not None)

    def wait(self, *args: Any, **kwargs: Any) -> None:
        pass

    def elapsed_time(self, end: "_Event") -> float:
        if not (self.enable_timing and end.enable_timing):
            raise RuntimeError("Both events must be created with argument 'enable_timing=True'.")
        if self.at is None or end.at is None:
            raise RuntimeError("CUDA error: device not ready (both events must be recorded and reached: synchronize "
                               "before reading an event's time)")
        return (end.at - self.at) * 1000.0


class FakeTrainer:
    """A trainer whose speed is only known once it has run: ``train_fn(model, steps)``.

    Args:
        step_seconds: the fastest a warm step can be. Each call runs its warm steps ``f`` times slower,
            with ``f`` log-uniform on ``[1, spread]``, drawn from the operating system's random source
            when the call's work runs (so nothing readable before a call tells how long it takes).
        spread: the largest slow-down of a call.
        first_call_seconds: extra seconds of the very first call (start-up).
        slow_steps, slow_factor: the first ``slow_steps`` steps overall cost ``slow_factor`` warm steps each
            (a warm-up that needs that many steps).
        device: "cpu" (work happens during the call) or a simulated "cuda"/"mps": calls return at once
            and the work runs in a background thread, in order, which only the matching synchronisation
            (``torch.cuda.synchronize``, ``torch.mps.synchronize``, ``torch.accelerator.synchronize``,
            events) waits for. On such a device, torch reports that device available.

    :meth:`grading_records` reports what ran: each call's steps, slow steps and slow-down factor,
    and whether its work finished before the grader asked.
    """

    def __init__(self, step_seconds: float, spread: float = 1.0, first_call_seconds: float = 0.0,
                 slow_steps: int = 0, slow_factor: float = 1.0, device: str = "cpu") -> None:
        self.step_seconds, self.spread = float(step_seconds), max(1.0, float(spread))
        self.first_call_seconds = float(first_call_seconds)
        self.slow_steps, self.slow_factor = int(slow_steps), float(slow_factor)
        self.device = str(device)
        self.calls: list[Any] = []
        self.syncs: list[str] = []
        self._queued_steps = 0
        self._runs: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._queue: _Queue | None = None
        restore_all()
        if self.device in ("cuda", "mps"):
            SimulatedMachine(cuda=self.device == "cuda", mps=self.device == "mps", allocate=False)
            self._queue = _Queue()
            _UNDO.append(self._queue.stop)
            sync = self._synchronize
            wrong = self._wrong_sync
            _patch(torch.cuda, "synchronize", sync if self.device == "cuda" else wrong("torch.cuda.synchronize"))
            _patch(torch.mps, "synchronize", sync if self.device == "mps" else wrong("torch.mps.synchronize"))
            if hasattr(torch, "accelerator") and hasattr(torch.accelerator, "synchronize"):
                _patch(torch.accelerator, "synchronize", sync)
            queue = self._queue
            event = lambda *a, **k: _Event(queue, *a, **k)  # noqa: E731
            stream = type("Stream", (), {"synchronize": lambda s: sync(), "wait_stream": lambda s, o: None})()
            if self.device == "cuda":
                _patch(torch.cuda, "Event", event)
                _patch(torch.cuda, "current_stream", lambda *a, **k: stream)
            else:
                _patch(torch.mps, "Event", event)
                if hasattr(torch.mps, "event"):
                    _patch(torch.mps.event, "Event", event)

    def _synchronize(self, *args: Any, **kwargs: Any) -> None:
        self.syncs.append(self.device)
        if self._queue is not None:
            self._queue.drain()

    def _wrong_sync(self, name: str) -> Callable[..., None]:
        def sync(*args: Any, **kwargs: Any) -> None:
            self.syncs.append(name)
            raise RuntimeError(f"{name}() on a machine without that device (the simulated machine has {self.device!r})")
        return sync

    def _execute(self, work: _Work, stopped: threading.Event | None = None) -> None:
        """Run one call's work: draw its slow-down now, take that long, then write down what ran."""
        factor = _slow_down(self.spread)
        warm = self.step_seconds * factor
        cost = (self.first_call_seconds if work.first else 0.0) + warm * (work.slow * self.slow_factor + work.steps - work.slow)
        finished = True
        if stopped is None:
            _sleep_until(time.perf_counter() + cost)
        else:
            finished = not stopped.wait(cost)
        with self._lock:
            self._runs.append({"call": work.call, "steps": work.steps, "slow": work.slow, "first": work.first,
                               "factor": factor, "finished": finished})

    def __call__(self, model: Any, steps: int) -> None:
        n = int(steps)
        slow = max(0, min(n, self.slow_steps - self._queued_steps))
        work = _Work(self, len(self.calls), n, slow, not self.calls)
        self.calls.append(n)
        self._queued_steps += n
        if self._queue is not None:
            self._queue.put(work)
        else:
            work.run()

    def grading_records(self) -> dict[str, Any]:
        if self._queue is not None:
            for item in self._queue.stop():  # queued work that never ran: the learner did not wait for it
                if isinstance(item, _Work):
                    with self._lock:
                        self._runs.append({"call": item.call, "steps": item.steps, "slow": item.slow,
                                           "first": item.first, "factor": _slow_down(self.spread), "finished": False})
        with self._lock:
            runs = sorted(self._runs, key=lambda r: r["call"])
        records = {"calls": list(self.calls), "syncs": list(self.syncs), "runs": runs}
        restore_all()
        return records
