"""Checks for lesson 2, training many models at once.

Four exercises:

* ``lr_factor(schedule, step, steps)``: exact comparison with :mod:`supercourse.schedules`.
* ``pick_device(preferred=None)``: the check pretends to be machines with and
  without CUDA / MPS (it patches torch's availability functions) and compares
  with the reference rule: cuda, then mps, then cpu; an explicit choice wins.
* ``train(model, steps, ...)``: behavioural. Tiny models, a few steps, and a
  global optimizer hook that records, at every ``optimizer.step()``, the
  optimizer, its learning rate and the gradients it is about to apply; the
  check recomputes each step's gradient with autograd on the batch the model
  handed out and compares.
* ``measure_throughput(train_fn, model, steps, device)``: timed against a fake
  trainer of known speed, with a slow first call (warm-up) and, for "cuda", an
  asynchronous queue that only ``torch.cuda.synchronize()`` waits for.

Every property runs in well under a second on 2 CPU cores.
"""

from __future__ import annotations

import copy
import math
import time
import types
from typing import Any

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from autograder.exercises import Exercise
from autograder.framework import CheckFailed, call, describe, expect, prop
from supercourse import schedules
from supercourse.data import sparse_uniform
from supercourse.model import ToyModel

LESSON = "02-training-many-models"
EXERCISES = {
    "lr_factor": Exercise(
        "lr_factor",
        "Learning-rate schedules",
        forbid=("supercourse.schedules", "resolve_schedule", "schedules.linear", "schedules.cosine", "SCHEDULES["),
    ),
    "pick_device": Exercise(
        "pick_device",
        "Choosing the device",
        forbid=("supercourse.pick_device", "supercourse.devices", "devices.pick_device"),
    ),
    "train": Exercise(
        "train",
        "A training loop for many instances at once",
        forbid=("supercourse.train", "ToyModelStep", "make_adamw", "training.train"),
    ),
    "measure_throughput": Exercise("measure_throughput", "Measuring steps and instance-steps per second"),
}




@pytest.fixture(autouse=True)
def _one_thread_and_own_rng():
    """Run each property on one CPU thread (the check's tensors are tiny, and on a busy machine
    extra threads only wait for each other), with torch's global random state restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        torch.set_num_threads(n)


# =========================================================================== lr_factor

_STEPS = (7, 100, 1, 2, 10_000)  # the informative run lengths first: their failures say the most


def _steps_to_try(steps: int) -> list[int]:
    if steps <= 100:
        return list(range(steps))
    return sorted({0, 1, 2, steps // 3, steps // 2, steps - 2, steps - 1})


def _factor(submission: Any, name: str, step: int, steps: int) -> float:
    got = call(submission, name, step, steps, what="lr_factor")
    try:
        value = float(got)
    except (TypeError, ValueError):
        raise CheckFailed(f"lr_factor({name!r}, {step}, {steps}) must return a number, got {describe(got)}.") from None
    if not math.isfinite(value):
        raise CheckFailed(f"lr_factor({name!r}, {step}, {steps}) returned {value}; a factor must be a finite number.")
    return value


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 + 1e-7 * abs(b)


def _check_schedule(submission: Any, name: str, formula: str) -> None:
    ref = schedules.SCHEDULES[name]
    for steps in _STEPS:
        tried = _steps_to_try(steps)
        got = [_factor(submission, name, step, steps) for step in tried]
        want = [ref(step, steps) for step in tried]
        bad = [i for i, (g, w) in enumerate(zip(got, want)) if not _same(g, w)]
        if not bad:
            continue
        i = bad[0]
        where = f"lr_factor({name!r}, {tried[i]}, {steps}) should be {formula} = {want[i]:.6g}, got {got[i]:.6g}"
        if all(_same(g, ref(step + 1, steps)) for g, step in zip(got, tried)):
            hint = "it is shifted by one step: steps count from 0, and step 0 must give factor 1."
        elif steps > 2 and all(_same(g, ref(step * steps / (steps - 1), steps)) for g, step in zip(got, tried)):
            hint = (
                "your schedule reaches 0 at the last step, which then updates nothing; "
                "the end value belongs to step = steps, one past the last step."
            )
        elif name != "constant" and all(_same(g, 1.0) for g in got):
            hint = "the factor must change with the step (did you return 1, or ignore `step`?)."
        else:
            hint = f"check the formula {formula} (step counts from 0 to steps - 1)."
        raise CheckFailed(f"{where}: {hint}")


@prop("lr_factor", points=1)
def test_constant(submission):
    _check_schedule(submission, "constant", "1")


@prop("lr_factor", points=1)
def test_linear(submission):
    _check_schedule(submission, "linear", "1 - step/steps")


@prop("lr_factor", points=1)
def test_cosine(submission):
    _check_schedule(submission, "cosine", "(1 + cos(pi * step/steps)) / 2")


@prop("lr_factor", points=1)
def test_unknown_schedule_is_an_error(submission):
    for name in ("cosin", "Linear", "exponential"):
        try:
            got = submission(name, 3, 10)
        except NotImplementedError:
            raise CheckFailed("`lr_factor` is not implemented yet: replace `raise NotImplementedError()` with your code.") from None
        except (ValueError, KeyError):
            continue
        except Exception as err:  # noqa: BLE001 - the learner's choice of error, reported
            raise CheckFailed(
                f"lr_factor({name!r}, 3, 10) raised {type(err).__name__}; an unknown schedule name should raise a ValueError."
            ) from None
        raise CheckFailed(
            f"lr_factor({name!r}, 3, 10) returned {got!r}: an unknown schedule name must raise a ValueError, "
            "or a typo would silently train with the wrong schedule."
        )


# =========================================================================== pick_device


def _machine(monkeypatch: pytest.MonkeyPatch, cuda: bool, mps: bool, n_cuda: int = 1) -> None:
    """Make torch report a machine with (or without) CUDA GPUs and Apple's MPS."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n_cuda if cuda else 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    monkeypatch.setattr(torch.backends.mps, "is_built", lambda: mps)
    if hasattr(torch, "mps") and hasattr(torch.mps, "is_available"):
        monkeypatch.setattr(torch.mps, "is_available", lambda: mps)
    acc = getattr(torch, "accelerator", None)
    if acc is not None:
        kind = "cuda" if cuda else ("mps" if mps else None)
        if hasattr(acc, "is_available"):
            monkeypatch.setattr(acc, "is_available", lambda: kind is not None)
        if hasattr(acc, "current_accelerator"):
            monkeypatch.setattr(acc, "current_accelerator", lambda *a, **k: torch.device(kind) if kind else None)
        if hasattr(acc, "device_count"):
            monkeypatch.setattr(acc, "device_count", lambda: (n_cuda if cuda else 1 if mps else 0))


def _machine_name(cuda: bool, mps: bool) -> str:
    have = [name for name, ok in (("a CUDA GPU", cuda), ("Apple's MPS", mps)) if ok]
    return "a machine with " + " and ".join(have) if have else "a CPU-only machine"


def _picked(submission: Any, *args: Any) -> torch.device:
    got = call(submission, *args, what="pick_device")
    arg = repr(args[0]) if args else ""
    expect(
        isinstance(got, torch.device),
        f"pick_device({arg}) must return a torch.device, got {describe(got)}; wrap the name, as in torch.device('cpu').",
    )
    return got


def _expect_device(got: torch.device, want: str, cuda: bool, mps: bool, call_text: str, hint: str) -> None:
    ok = got.type == want and (got.index in (None, 0) if want == "cuda" else True)
    expect(ok, f"On {_machine_name(cuda, mps)}, {call_text} should give {want!r}, got {str(got)!r}: {hint}")


@prop("pick_device", points=1)
def test_prefers_cuda(submission, monkeypatch):
    for mps in (False, True):
        _machine(monkeypatch, cuda=True, mps=mps)
        _expect_device(_picked(submission), "cuda", True, mps, "pick_device()", "a CUDA GPU comes first when there is one.")


@prop("pick_device", points=1)
def test_then_mps(submission, monkeypatch):
    _machine(monkeypatch, cuda=False, mps=True)
    _expect_device(
        _picked(submission), "mps", False, True, "pick_device()",
        "without CUDA, use Apple's GPU when torch.backends.mps.is_available().",
    )


@prop("pick_device", points=1)
def test_falls_back_to_cpu(submission, monkeypatch):
    _machine(monkeypatch, cuda=False, mps=False)
    _expect_device(
        _picked(submission), "cpu", False, False, "pick_device()",
        "ask torch what is there (torch.cuda.is_available()) instead of assuming a GPU.",
    )


@prop("pick_device", points=1)
def test_honours_an_explicit_choice(submission, monkeypatch):
    _machine(monkeypatch, cuda=True, mps=True, n_cuda=2)
    for preferred, want in (("cpu", "cpu"), (torch.device("cpu"), "cpu"), ("cuda:1", "cuda:1"), ("mps", "mps")):
        got = _picked(submission, preferred)
        expect(
            got == torch.device(want),
            f"On {_machine_name(True, True)}, pick_device({preferred!r}) should give {want!r}, got {str(got)!r}: "
            "a device the caller names explicitly wins over the automatic choice.",
        )


@prop("pick_device", points=1)
def test_rejects_an_unavailable_device(submission, monkeypatch):
    _machine(monkeypatch, cuda=False, mps=False)
    for preferred in ("cuda", "mps"):
        try:
            got = submission(preferred)
        except NotImplementedError:
            raise CheckFailed("`pick_device` is not implemented yet: replace `raise NotImplementedError()` with your code.") from None
        except ValueError:
            continue
        except Exception as err:  # noqa: BLE001
            raise CheckFailed(
                f"On a CPU-only machine pick_device({preferred!r}) raised {type(err).__name__}: {err}; raise a ValueError "
                "that says the device is not available."
            ) from None
        raise CheckFailed(
            f"On a CPU-only machine pick_device({preferred!r}) returned {got!r}: raise a ValueError saying {preferred!r} "
            "is not available, so the mistake shows here rather than deep inside torch later."
        )


# =========================================================================== train


class _RecordingModel(ToyModel):
    """A ToyModel that records every batch it hands out, with the parameters at that moment.

    With ``script_seed`` its batches come from its own seeded stream (whatever
    generator the caller passes), so a check can recompute each step exactly.
    """

    def __init__(self, *args: Any, script_seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._script = None if script_seed is None else torch.Generator().manual_seed(script_seed)
        self.batches: list[torch.Tensor] = []
        self.sizes: list[Any] = []
        self.params_at_batch: list[tuple[torch.Tensor, torch.Tensor]] = []

    def generate_batch(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        self.sizes.append(batch_size)
        if self._script is not None:
            p = self.feature_probability.detach().cpu()
            x = sparse_uniform(int(batch_size), p, generator=self._script).to(self.W.device)
        else:
            x = super().generate_batch(batch_size, generator=generator)
        self.batches.append(x.detach().clone())
        self.params_at_batch.append((self.W.detach().clone(), self.b_final.detach().clone()))
        return x


def _small_model(n_instances: int = 4, script_seed: int | None = 11, seed: int = 5, **kwargs: Any) -> _RecordingModel:
    n, m = 6, 3
    p = torch.tensor([0.7, 0.4, 0.9, 0.5, 0.3, 0.6, 0.8, 0.45])[:n_instances]
    return _RecordingModel(
        n, m, n_instances=n_instances, feature_probability=p, importance=0.8 ** torch.arange(n, dtype=torch.float32),
        activation=kwargs.pop("activation", "relu"), seed=seed, script_seed=script_seed,
    )


def _reference_step(model: ToyModel, W: torch.Tensor, b: torch.Tensor, x: torch.Tensor):
    """Gradients of the summed per-instance loss at ``(W, b)`` on batch ``x``, and the per-instance loss."""
    W = W.detach().clone().requires_grad_(True)
    b = b.detach().clone().requires_grad_(True)
    h = torch.einsum("bif,ihf->bih", x, W)
    out = torch.einsum("bih,ihf->bif", h, W) + b
    if model.activation == "relu":
        out = torch.relu(out)
    per = (model.importance * (x - out) ** 2).mean(dim=(0, 2))
    gW, gb = torch.autograd.grad(per.sum(), [W, b])
    return torch.cat([gW.flatten(), gb.flatten()]), per.detach()


class _Run:
    """What one call of the learner's ``train`` did, as seen by the model and an optimizer hook."""

    def __init__(self, model: _RecordingModel, result: Any, records: list[dict[str, Any]]) -> None:
        self.model, self.result, self.records = model, result, records


def _run(submission: Any, model: _RecordingModel, steps: int, **kwargs: Any) -> _Run:
    records: list[dict[str, Any]] = []

    def hook(optimizer, args, kw):
        grads = [model.W.grad, model.b_final.grad]
        records.append(
            {
                "optimizer": optimizer,
                "cls": type(optimizer),
                "lr": [float(g["lr"]) for g in optimizer.param_groups],
                "weight_decay": [float(g.get("weight_decay", 0.0)) for g in optimizer.param_groups],
                "decoupled": [bool(g.get("decoupled_weight_decay", False)) for g in optimizer.param_groups],
                "params": [p for g in optimizer.param_groups for p in g["params"]],
                "grad": None if any(g is None for g in grads) else torch.cat([g.detach().flatten() for g in grads]).clone(),
                "W": model.W.detach().clone(),
                "b": model.b_final.detach().clone(),
                "n_batches": len(model.batches),
            }
        )

    handle = register_optimizer_step_pre_hook(hook)
    try:
        result = call(submission, model, steps, what="train", **kwargs)
    finally:
        handle.remove()
    return _Run(model, result, records)


def _need_records(run: _Run, steps: int) -> None:
    expect(
        run.records,
        "no torch optimizer's step() ran during train: create torch.optim.AdamW(model.parameters(), ...) "
        "and call optimizer.step() once per step.",
    )
    expect(
        len(run.records) == steps,
        f"optimizer.step() ran {len(run.records)} times in train(model, {steps}); it should run once per step.",
    )


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    na, nb = a.norm().item(), b.norm().item()
    if na == 0 or nb == 0:
        return 0.0
    return float(torch.dot(a, b).item() / (na * nb))


def _gradient_diagnosis(run: _Run) -> tuple[int | None, str, float]:
    """Which gradient the optimizer applied at each step: ``(first bad step or None, message, scale at step 0)``.

    Compares each recorded gradient, up to a positive scale, with the gradient
    of this step's batch at this step's parameters; names the usual mistakes.
    """
    model, records = run.model, run.records
    previous_ref: torch.Tensor | None = None
    scale = float("nan")
    for s, rec in enumerate(records):
        if rec["n_batches"] == 0:
            return s, f"optimizer.step() ran before any batch was drawn (step {s}): draw the batch, backward, then step.", scale
        x = model.batches[rec["n_batches"] - 1]
        ref, _ = _reference_step(model, rec["W"], rec["b"], x)
        grad = rec["grad"]
        if grad is None or grad.norm().item() == 0.0:
            return s, (
                f"at optimizer step {s} the gradients were missing or zero: call loss.backward() before optimizer.step() "
                "(the order is zero_grad, backward, step)."
            ), scale
        if _cos(grad, ref) > 0.999:
            if s == 0:
                scale = float(torch.dot(grad, ref) / torch.dot(ref, ref))
            previous_ref = ref
            continue
        if s > 0 and records[s - 1]["grad"] is not None and _cos(grad, records[s - 1]["grad"] + ref) > 0.999:
            return s, (
                f"at step {s} the gradient was this batch's plus the previous steps': gradients add up across steps "
                "unless you call optimizer.zero_grad() every step."
            ), scale
        if previous_ref is not None and _cos(grad, previous_ref) > 0.999:
            return s, (
                f"at step {s} the optimizer applied the previous step's gradient: call optimizer.step() after "
                "loss.backward() on the current batch."
            ), scale
        return s, (
            f"at step {s} the gradient the optimizer applied is not that of the per-instance losses summed on this step's "
            f"batch (cosine {_cos(grad, ref):.3f}): draw one batch, loss = model.per_instance_loss(x, model(x)).sum(), "
            "then zero_grad, backward, step."
        ), scale
    return None, "", scale


def _check_returned_losses(run: _Run, steps: int) -> None:
    model, out = run.model, run.result
    k = model.n_instances
    expect(
        isinstance(out, torch.Tensor) and tuple(out.shape) == (steps, k),
        f"train(model, {steps}) must return the loss history as a tensor of shape (steps, n_instances) = ({steps}, {k}), "
        f"got {describe(out)}.",
    )
    expect(out.device.type == "cpu", f"return the loss history on the CPU (call .cpu() once at the end), got it on {out.device}.")
    expect(len(model.batches) >= steps, f"train drew {len(model.batches)} batches for {steps} steps; draw one per step.")
    want = torch.stack(
        [_reference_step(model, *model.params_at_batch[s], model.batches[s])[1] for s in range(steps)]
    )
    got = out.detach().float()
    if torch.allclose(got, want, rtol=1e-4, atol=1e-7):
        return
    row = int(((got - want).abs().amax(dim=1)).argmax())
    if torch.allclose(got, want.mean(dim=1, keepdim=True).expand_as(want), rtol=1e-4, atol=1e-7):
        hint = "every column holds the mean over instances: store each instance's own loss, per_instance_loss(x, x_hat)."
    else:
        hint = "row s must be model.per_instance_loss(x, model(x)) of step s's batch, before that step's update."
    raise CheckFailed(
        f"the loss history is wrong at step {row}: expected {[round(v, 5) for v in want[row].tolist()]}, "
        f"got {[round(v, 5) for v in got[row].tolist()]}; {hint}"
    )


@prop("train", points=1)
def test_returns_the_per_instance_loss_history(submission):
    steps = 5
    run = _run(submission, _small_model(), steps, batch_size=32, lr=1e-2, device="cpu")
    _check_returned_losses(run, steps)


@prop("train", points=1)
def test_loss_falls(submission):
    model = ToyModel(5, 2, n_instances=3, feature_probability=torch.tensor([1.0, 0.3, 0.1]),
                     importance=0.9 ** torch.arange(5, dtype=torch.float32), seed=1)
    fixed = torch.Generator().manual_seed(123)
    x = model.generate_batch(20_000, generator=fixed)
    with torch.no_grad():
        before = model.per_instance_loss(x, model(x))
    call(submission, model, 300, what="train", batch_size=256, lr=1e-2, device="cpu", seed=0)
    model = model.cpu()
    with torch.no_grad():
        after = model.per_instance_loss(x, model(x))
    ratio = (after / before).tolist()
    expect(
        all(r < 0.75 for r in ratio),
        f"after 300 steps at lr 1e-2 each instance's loss (on a fixed test batch) should have fallen by a quarter or more; "
        f"after/before = {[round(r, 3) for r in ratio]}. Check that optimizer.step() updates the model's parameters "
        "with the gradient of the loss.",
    )


@prop("train", points=1)
def test_draws_a_fresh_batch_every_step(submission):
    steps, batch = 6, 32
    model = _small_model(script_seed=None)
    call(submission, model, steps, what="train", batch_size=batch, lr=1e-2, device="cpu", seed=3)
    n = len(model.sizes)
    expect(
        n == steps,
        f"train(model, {steps}) called model.generate_batch {n} time(s): "
        + ("draw a fresh batch inside the loop, one per step (one batch reused is a tiny fixed dataset)."
           if n < steps else "call it once per step."),
    )
    expect(all(int(s) == batch for s in model.sizes), f"generate_batch was asked for batch sizes {model.sizes}, expected {batch} each time.")
    for s in range(1, steps):
        expect(
            not torch.equal(model.batches[s], model.batches[s - 1]),
            f"steps {s - 1} and {s} trained on the very same batch: make the generator once, before the loop "
            "(re-seeding it every step replays the same numbers).",
        )


@prop("train", points=1)
def test_zero_grad_backward_step_order(submission):
    steps = 5
    run = _run(submission, _small_model(), steps, batch_size=32, lr=1e-2, device="cpu")
    _need_records(run, steps)
    bad, message, _ = _gradient_diagnosis(run)
    expect(bad is None, message)


@prop("train", points=1)
def test_loss_is_summed_over_instances(submission):
    run = _run(submission, _small_model(n_instances=4), 3, batch_size=32, lr=1e-2, device="cpu")
    expect(run.records, "no torch optimizer's step() ran during train: use torch.optim.AdamW and call optimizer.step().")
    _, _, scale = _gradient_diagnosis(run)
    k = run.model.n_instances
    expect(
        scale == scale,
        "could not find the gradient of this step's batch at the first optimizer step; "
        "draw the batch, compute the loss, then zero_grad, backward, step.",
    )
    if abs(scale - 1.0) <= 1e-3:
        return
    if abs(scale * k - 1.0) <= 1e-3:
        raise CheckFailed(
            f"the gradient is 1/{k} of the summed loss's: you averaged the per-instance losses over instances. Sum them "
            "(model.per_instance_loss(x, x_hat).sum()), so each instance's gradient is what it would be trained alone."
        )
    raise CheckFailed(
        f"the gradient is {scale:.4g} times that of the per-instance losses summed (expected 1): use "
        "loss = model.per_instance_loss(x, x_hat).sum() (the same as model.loss(x, x_hat))."
    )


@prop("train", points=1)
def test_instances_train_independently(submission):
    steps = 6
    plain = _small_model()
    changed = copy.deepcopy(plain)
    with torch.no_grad():  # instance 0 becomes wildly different; the data of the others stays the same
        changed.W[0].mul_(40.0)
        changed.importance[0].mul_(50.0)
    call(submission, plain, steps, what="train", batch_size=32, lr=2e-2, device="cpu")
    call(submission, changed, steps, what="train", batch_size=32, lr=2e-2, device="cpu")
    for name in ("W", "b_final"):
        a, b = getattr(plain, name).detach().cpu()[1:], getattr(changed, name).detach().cpu()[1:]
        expect(
            torch.allclose(a, b, rtol=1e-5, atol=1e-7),
            f"changing instance 0 changed how instances 1-3 trained (their {name} moved by up to "
            f"{(a - b).abs().max().item():.2e}): nothing may mix instances, e.g. no gradient clipping over the "
            "whole model, no loss normalised by the total.",
        )


@prop("train", points=1)
def test_adamw_with_the_given_lr_and_weight_decay(submission):
    steps, lr, wd = 4, 0.02, 0.05
    model = _small_model()
    run = _run(submission, model, steps, batch_size=32, lr=lr, weight_decay=wd, device="cpu")
    expect(run.records, "no torch optimizer's step() ran during train: create torch.optim.AdamW(model.parameters(), lr=..., weight_decay=...).")
    optimizers = {id(r["optimizer"]) for r in run.records}
    expect(
        len(optimizers) == 1,
        f"train used {len(optimizers)} optimizer objects in {steps} steps: create one AdamW before the loop, "
        "since it keeps running averages of the gradients from step to step.",
    )
    _need_records(run, steps)
    rec = run.records[0]
    is_adamw = issubclass(rec["cls"], torch.optim.AdamW) or (issubclass(rec["cls"], torch.optim.Adam) and all(rec["decoupled"]))
    expect(is_adamw, f"train used {rec['cls'].__name__}; the paper's recipe is torch.optim.AdamW (Adam with decoupled weight decay).")
    ids = {id(p) for p in rec["params"]}
    want = {id(p) for p in model.parameters()}
    expect(ids == want, "the optimizer must get exactly the model's parameters: torch.optim.AdamW(model.parameters(), ...).")
    expect(
        all(abs(w - wd) < 1e-12 for w in rec["weight_decay"]),
        f"AdamW's weight_decay was {rec['weight_decay'][0]:g}, expected the weight_decay argument ({wd:g}).",
    )
    expect(
        all(abs(x - lr) <= 1e-12 for r in run.records for x in r["lr"]),
        f"with no schedule the optimizer's lr should be the lr argument ({lr:g}) at every step, got "
        f"{sorted({x for r in run.records for x in r['lr']})}.",
    )


def _probe_schedule(step: int, steps: int) -> float:
    """A schedule no one would use, so that every way of mis-applying it shows: depends on step and steps."""
    return 0.2 + 0.8 * ((7 * step + steps) % 5) / 4


@prop("train", points=1)
def test_lr_schedule_every_step(submission):
    steps, lr = 6, 0.02
    run = _run(submission, _small_model(), steps, batch_size=32, lr=lr, lr_schedule=_probe_schedule, device="cpu")
    _need_records(run, steps)
    got = [r["lr"][0] for r in run.records]
    want = [lr * _probe_schedule(s, steps) for s in range(steps)]
    if all(abs(g - w) <= 1e-9 * lr for g, w in zip(got, want)):
        return

    def same(seq):
        return all(abs(g - w) <= 1e-9 * lr for g, w in zip(got, seq))

    fmt = ", ".join(f"{g:.4g}" for g in got)
    if same([lr] * steps):
        hint = "the schedule was never applied: set group['lr'] = lr * lr_schedule(step, steps) for every param group each step."
    elif same([want[0]] * steps):
        hint = "the schedule was applied once, before the loop: set the lr inside the loop, every step."
    elif same([lr * _probe_schedule(s + 1, steps) for s in range(steps)]):
        hint = "it is off by one: step s of the loop (counting from 0) uses lr * lr_schedule(s, steps)."
    elif same([lr * math.prod(_probe_schedule(t, steps) for t in range(s + 1)) for s in range(steps)]):
        hint = "the factors were multiplied into the lr step after step: set lr = base lr * lr_schedule(step, steps), don't multiply the current lr."
    else:
        hint = "step s must train with lr * lr_schedule(s, steps), set on every param group before optimizer.step()."
    raise CheckFailed(
        f"with lr={lr:g} and a test schedule the optimizer's lr at steps 0-{steps - 1} should be "
        f"{', '.join(f'{w:.4g}' for w in want)}, got {fmt}: {hint}"
    )


@prop("train", points=1)
def test_runs_on_the_device_it_is_given(submission, monkeypatch):
    # Pretend a CUDA GPU is present: code that ignores `device` (or hard-codes "cuda") then tries to use it.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *args, **kwargs: None)
    for device in ("cpu", torch.device("cpu")):
        model = _small_model(script_seed=None)
        try:
            out = submission(model, 2, batch_size=16, lr=1e-2, device=device)
        except NotImplementedError:
            raise CheckFailed("`train` is not implemented yet: replace `raise NotImplementedError()` with your code.") from None
        except Exception as err:  # noqa: BLE001
            text = f"{type(err).__name__}: {err}"[:160]
            raise CheckFailed(
                f"train(model, 2, device={device!r}) on a machine that also has a GPU raised {text}: use the device you are "
                "given (pick_device(device)), never a hard-coded 'cuda'."
            ) from None
        where = {p.device.type for p in model.parameters()} | {b.device.type for b in model.buffers()}
        expect(where == {"cpu"}, f"after train(model, 2, device={device!r}) the model is on {sorted(where)}: move it with model.to(device).")
        expect(
            isinstance(out, torch.Tensor) and out.device.type == "cpu",
            f"train(model, 2, device={device!r}) should return the loss history as a CPU tensor, got {describe(out)}.",
        )


@prop("train", points=1)
def test_seed_makes_runs_repeatable(submission):
    base = ToyModel(5, 2, n_instances=2, feature_probability=0.5, seed=3)
    runs = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        model = copy.deepcopy(base)
        torch.manual_seed(1000 + len(runs))  # a different global RNG state for every run
        out = call(submission, model, 4, what="train", batch_size=64, lr=1e-2, device="cpu", seed=seed)
        losses = out.detach().cpu().flatten() if isinstance(out, torch.Tensor) else torch.zeros(0)
        runs[name] = torch.cat([model.W.detach().cpu().flatten(), losses])
    expect(
        torch.equal(runs["a"], runs["b"]),
        "two runs with seed=1 trained differently: draw every batch from torch.Generator(device=device).manual_seed(seed), "
        "passed to model.generate_batch(batch_size, generator=...).",
    )
    expect(not torch.equal(runs["a"], runs["c"]), "runs with seed=1 and seed=2 trained identically: the seed must choose the data.")


# =========================================================================== measure_throughput


class _FakeTrainer:
    """A trainer of known speed: ``step_seconds`` per step, plus ``first_call_seconds`` on the first call.

    ``asynchronous`` mimics a GPU: calls return at once and the work queues up
    until ``synchronize()`` is called.
    """

    def __init__(self, step_seconds: float, first_call_seconds: float = 0.0, asynchronous: bool = False) -> None:
        self.step_seconds, self.first_call_seconds, self.asynchronous = step_seconds, first_call_seconds, asynchronous
        self.calls: list[int] = []
        self.pending = 0.0

    def __call__(self, model: Any, steps: int) -> None:
        cost = int(steps) * self.step_seconds + (self.first_call_seconds if not self.calls else 0.0)
        self.calls.append(int(steps))
        if self.asynchronous:
            self.pending += cost
        else:
            time.sleep(cost)

    def synchronize(self, *args: Any, **kwargs: Any) -> None:
        time.sleep(self.pending)
        self.pending = 0.0


_FAKE_MODEL = types.SimpleNamespace(n_instances=37)


def _measure(submission: Any, fake: _FakeTrainer, steps: int, device: str) -> dict:
    out = call(submission, fake, _FAKE_MODEL, steps, device, what="measure_throughput")
    expect(
        isinstance(out, dict) and {"steps_per_second", "instance_steps_per_second"} <= set(out),
        f"measure_throughput must return a dict with 'steps_per_second' and 'instance_steps_per_second', got {describe(out)}.",
    )
    try:
        return {k: float(out[k]) for k in ("steps_per_second", "instance_steps_per_second")}
    except (TypeError, ValueError):
        raise CheckFailed(f"the rates must be numbers, got {describe(out['steps_per_second'])}.") from None


def _rate_message(got: float, want: float, what: str) -> str:
    return f"{what}: measured {got:.4g} steps/s, but the test trainer runs at {want:.4g} steps/s"


@prop("measure_throughput", points=1)
def test_measures_steps_per_second(submission):
    fake = _FakeTrainer(0.004)
    got = _measure(submission, fake, 50, "cpu")["steps_per_second"]
    expect(fake.calls and 50 in fake.calls, f"measure_throughput(train_fn, model, 50, 'cpu') never called train_fn(model, 50); calls: {fake.calls}.")
    want = 1 / 0.004
    expect(
        0.75 * want <= got <= 1.25 * want,
        _rate_message(got, want, "on the CPU") + ": time one call train_fn(model, steps) and divide steps by the seconds it took.",
    )


@prop("measure_throughput", points=1)
def test_instance_steps_are_steps_times_instances(submission):
    out = _measure(submission, _FakeTrainer(0.002), 20, "cpu")
    k = _FAKE_MODEL.n_instances
    want = out["steps_per_second"] * k
    expect(
        abs(out["instance_steps_per_second"] - want) <= 1e-6 * want,
        f"for a model with {k} instances, instance_steps_per_second should be steps_per_second x {k} = {want:.4g}, "
        f"got {out['instance_steps_per_second']:.4g}: every step trains every instance once.",
    )


@prop("measure_throughput", points=1)
def test_leaves_out_the_warm_up(submission):
    fake = _FakeTrainer(0.004, first_call_seconds=0.5)
    got = _measure(submission, fake, 50, "cpu")["steps_per_second"]
    want = 1 / 0.004
    expect(
        0.75 * want <= got <= 1.25 * want,
        _rate_message(got, want, "with a slow first call")
        + ": run a short warm-up call of train_fn first (untimed), and time only the next call.",
    )


@prop("measure_throughput", points=1)
def test_waits_for_the_gpu(submission, monkeypatch):
    fake = _FakeTrainer(0.004, first_call_seconds=0.3, asynchronous=True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "synchronize", fake.synchronize)
    acc = getattr(torch, "accelerator", None)
    if acc is not None and hasattr(acc, "synchronize"):
        monkeypatch.setattr(acc, "synchronize", fake.synchronize)
    got = _measure(submission, fake, 50, "cuda")["steps_per_second"]
    want = 1 / 0.004
    if len(fake.calls) < 2 and not 0.75 * want <= got <= 1.25 * want:
        hint = (
            "the first call (slow on a GPU: CUDA starts up) was the timed one: make an untimed warm-up call first, "
            "synchronize, then time."
        )
    elif got > 1.25 * want:
        hint = (
            "a GPU runs your steps asynchronously, so the clock stopped before the work was done: call "
            "torch.cuda.synchronize() before reading the clock."
        )
    elif got < 0.75 * want:
        hint = (
            "the timed interval included work queued before it (the warm-up): call torch.cuda.synchronize() after "
            "the warm-up, before starting the clock, and again before stopping it."
        )
    else:
        return
    raise CheckFailed(_rate_message(got, want, "on 'cuda'") + f" (a simulated GPU): {hint}")
