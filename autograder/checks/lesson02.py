"""Checks for lesson 2, training many models at once.

The learner's code runs in a separate worker; only plain data crosses. Four exercises:

* ``lr_factor(schedule, step, steps)``: values against :mod:`supercourse.schedules`
  with float32-exact tolerances, and exactly ``ValueError`` for unknown names.
* ``pick_device(preferred=None)``: the worker simulates machines
  (:class:`~autograder.worker.spies.SimulatedMachine`: CUDA and MPS available
  or not, built but not available, several GPUs, tensors allocated on the
  simulated devices) and the answers are compared with the rule cuda, then
  mps, then cpu; an explicit choice wins and an unavailable one raises ValueError.
* ``train(model, steps, ...)``: the worker gets a
  :class:`~autograder.worker.spies.ScriptedModel` whose batches come from its
  own seeded stream (or from the generator ``train`` passes it), and the check
  replays the run in its own process with plain autograd and
  ``torch.optim.AdamW`` (:func:`supercourse.reference_loop.reference_train`)
  on the same batches: the returned loss history and the model's final
  weights must match that trajectory. A mistake table (each mistake a wrong
  ``train`` replayed here) names the mistake; what the spy recorded in the
  worker only words the message.
* ``measure_throughput(train_fn, model, steps, device, warmup_steps=5)``:
  timed against a :class:`~autograder.worker.spies.FakeTrainer` of known
  speed built in the worker (slow start, steps that stay slow until warmed
  up, asynchronous queues on a simulated "cuda" or "mps").
"""

from __future__ import annotations

import math
from typing import Any, Callable

import pytest
import torch

from autograder.exercises import Exercise
from autograder.framework import CheckFailed, Construct, LearnerError, call, expect, prop
from autograder.toolkit import Mistake, close, describe, fmt, fmt_pair
from supercourse import schedules

LESSON = "02-training-many-models"
EXERCISES = {
    "lr_factor": Exercise(
        "lr_factor",
        "Learning-rate schedules",
        forbid=("supercourse.schedules", "resolve_schedule", "schedules.linear", "schedules.cosine", "SCHEDULES["),
        reference=("supercourse.schedules",),
    ),
    "pick_device": Exercise(
        "pick_device",
        "Choosing the device",
        forbid=("supercourse.pick_device", "supercourse.devices", "devices.pick_device"),
        reference=("supercourse.devices",),
    ),
    "train": Exercise(
        "train",
        "A training loop for many instances at once",
        forbid=("supercourse.train", "ToyModelStep", "make_adamw", "training.train", "reference_train", "reference_loop"),
        # Every library training loop; the model and its data (which the check's ScriptedModel needs) stay.
        reference=("supercourse.training", "supercourse.reference_loop", "supercourse.fast"),
    ),
    "measure_throughput": Exercise("measure_throughput", "Measuring steps and instance-steps per second",
                                   reference=("supercourse.bench.measure", "supercourse.bench._timed",
                                              "supercourse.bench._sync")),
}

NOT_IMPLEMENTED = "is not implemented yet: replace `raise NotImplementedError()` with your code."


def _session(submission: Any):
    return submission.session


def _reset(submission: Any) -> None:
    """Undo every simulation in the worker (patched torch, hooks), whatever the learner's code did."""
    try:
        _session(submission).probe("state_of", Construct("worker:spies.RealMachine"))
    except Exception:  # noqa: BLE001 - a dead worker needs no reset
        pass


def _raises(submission: Any, args: tuple, label: str, kwargs: dict | None = None) -> tuple[Any, BaseException | None]:
    """Call the learner's code; return ``(result, None)`` or ``(None, the learner's error)``."""
    try:
        return submission(*args, **(kwargs or {})), None
    except LearnerError as err:
        if err.reference:
            raise CheckFailed(f"implement this yourself: {err.message}", reference=True) from None
        if err.type_name == "NotImplementedError":
            raise CheckFailed(f"`{label}` {NOT_IMPLEMENTED}") from None
        return None, err


# =========================================================================== lr_factor

_STEPS = (7, 100, 1, 2, 10_000)  # the informative run lengths first: their failures say the most
RTOL_FACTOR, ATOL_FACTOR = 1e-5, 1e-6
"""A factor computed in float32 (torch.cos on a float32 tensor) is within 1e-6 of the exact one."""


def _steps_to_try(steps: int) -> list[int]:
    if steps <= 100:
        return list(range(steps))
    return sorted({0, 1, 2, steps // 3, steps // 2, steps - 2, steps - 1})


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= ATOL_FACTOR + RTOL_FACTOR * abs(b)


def _factor(submission: Any, name: str, step: int, steps: int) -> float:
    got = call(submission, name, step, steps, what="lr_factor")
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        raise CheckFailed(f"lr_factor({name!r}, {step}, {steps}) must return a number, got {describe(got)}.")
    value = float(got)
    if not math.isfinite(value):
        raise CheckFailed(f"lr_factor({name!r}, {step}, {steps}) returned {value}; a factor must be a finite number.")
    return value


_FORMULAS = {"constant": "1", "linear": "1 - step/steps", "cosine": "(1 + cos(pi * step/steps)) / 2"}


def _lr_mistake(name: str, fn: Callable[[str, int, int], float], keyword: str, hint: str) -> Mistake:
    return Mistake(name, fn, keyword, hint)


def _ref_factor(schedule: str, step: int, steps: int) -> float:
    return schedules.SCHEDULES[schedule](step, steps)


def _or_error(schedule: str, table: dict[str, Callable[[int, int], float]], step: int, steps: int) -> float:
    if schedule not in table:
        raise ValueError(f"unknown schedule {schedule!r}")
    return table[schedule](step, steps)


LR_MISTAKES = [
    _lr_mistake("shifted", lambda s, k, n: _ref_factor(s, k + 1, n), "shifted by one step",
                "it is shifted by one step: steps count from 0, and step 0 must give factor 1."),
    _lr_mistake("ends_at_last_step", lambda s, k, n: _ref_factor(s, k * n / (n - 1), n) if n > 1 else 1.0,
                "reaches 0 at the last step",
                "your schedule reaches 0 at the last step, which then updates nothing; the end value belongs to "
                "step = steps, one past the last step."),
    _lr_mistake("ignores_step", lambda s, k, n: 1.0, "ignore `step`",
                "the factor must change with the step (did you return 1, ignore `step`, or use integer division `step // steps`, "
                "which is 0 before the end?)."),
    _lr_mistake("integer_division", lambda s, k, n: _ref_factor(s, k // n, n), "integer division",
                "`step // steps` is integer division (always 0 here): divide with `/`."),
    _lr_mistake("full_period", lambda s, k, n: 0.5 * (1 + math.cos(2 * math.pi * k / n)) if s == "cosine" else _ref_factor(s, k, n),
                "half a period", "the cosine must fall over half a period: cos(pi * step/steps), not 2 pi."),
    _lr_mistake("no_half", lambda s, k, n: 1 + math.cos(math.pi * k / n) if s == "cosine" else _ref_factor(s, k, n),
                "divide by 2", "(1 + cos) runs from 2 to 0: divide by 2 so it starts at 1."),
    _lr_mistake("degrees", lambda s, k, n: 0.5 * (1 + math.cos(180 * k / n)) if s == "cosine" else _ref_factor(s, k, n),
                "radians", "math.cos takes radians: use math.pi, not 180."),
]


def _check_schedule(submission: Any, name: str) -> None:
    formula = _FORMULAS[name]
    for steps in _STEPS:
        tried = _steps_to_try(steps)
        got = [_factor(submission, name, step, steps) for step in tried]
        want = [_ref_factor(name, step, steps) for step in tried]
        bad = [i for i, (g, w) in enumerate(zip(got, want)) if not _same(g, w)]
        if not bad:
            continue
        i = bad[0]
        w, g = fmt_pair(want[i], got[i], digits=6)
        where = f"lr_factor({name!r}, {tried[i]}, {steps}) should be {formula} = {w}, got {g}"
        hint = ""
        for m in LR_MISTAKES:
            try:
                theirs = [float(m.implementation(name, step, steps)) for step in tried]
            except Exception:  # noqa: BLE001 - a mistake that does not apply here
                continue
            if all(_same(a, b) for a, b in zip(got, theirs)):
                hint = m.hint
                break
        raise CheckFailed(f"{where}: {hint or f'check the formula {formula} (step counts from 0 to steps - 1).'}")


@prop("lr_factor", points=1)
def test_constant(submission):
    _check_schedule(submission, "constant")


@prop("lr_factor", points=1)
def test_linear(submission):
    _check_schedule(submission, "linear")


@prop("lr_factor", points=1)
def test_cosine(submission):
    _check_schedule(submission, "cosine")


@prop("lr_factor", points=1)
def test_unknown_schedule_is_a_value_error(submission):
    for name in ("cosin", "Linear", "exponential", ""):
        got, err = _raises(submission, (name, 3, 10), "lr_factor")
        if isinstance(err, ValueError):
            continue
        if err is not None:
            raise CheckFailed(
                f"lr_factor({name!r}, 3, 10) raised {err.type_name}; the docstring promises a ValueError for an unknown "
                "schedule name (check the name yourself and `raise ValueError(...)`, rather than letting a dict lookup "
                "raise KeyError)."
            )
        raise CheckFailed(
            f"lr_factor({name!r}, 3, 10) returned {got!r}: an unknown schedule name must raise a ValueError, "
            "or a typo would silently train with the wrong schedule."
        )


# =========================================================================== pick_device


def _machine(submission: Any, **config: Any) -> None:
    """Make torch in the worker report a machine (see :class:`autograder.worker.spies.SimulatedMachine`)."""
    _session(submission).probe("state_of", Construct("worker:spies.SimulatedMachine", config))


def _machine_name(cuda: bool, mps: bool, n_cuda: int = 1, cuda_built: bool = False, mps_built: bool = False) -> str:
    have = [name for name, ok in ((f"{n_cuda} CUDA GPU{'s' if n_cuda > 1 else ''}", cuda), ("Apple's MPS", mps)) if ok]
    text = "a machine with " + " and ".join(have) if have else "a CPU-only machine"
    built = [n for n, b, ok in (("CUDA", cuda_built, cuda), ("MPS", mps_built, mps)) if b and not ok]
    if built:
        text += f" (torch built with {' and '.join(built)}, but no such device present)"
    return text


def _picked(submission: Any, args: tuple, where: str) -> torch.device:
    got = call(submission, *args, what="pick_device")
    arg = repr(args[0]) if args else ""
    expect(
        isinstance(got, torch.device),
        f"On {where}, pick_device({arg}) must return a torch.device, got {describe(got)}; wrap the name, as in "
        "torch.device('cpu').",
    )
    return got


def _expect_auto(submission: Any, config: dict[str, Any], want: str, hint: str) -> None:
    where = _machine_name(config.get("cuda", False), config.get("mps", False), config.get("n_cuda", 1),
                          config.get("cuda_built", False), config.get("mps_built", False))
    _machine(submission, **config)
    try:
        got = _picked(submission, (), where)
    finally:
        _reset(submission)
    ok = got.type == want and (got.index in (None, 0) if want == "cuda" else True)
    expect(ok, f"On {where}, pick_device() should give {want!r}, got {str(got)!r}: {hint}")


@prop("pick_device", points=1)
def test_prefers_cuda(submission):
    for config in ({"cuda": True}, {"cuda": True, "mps": True}, {"cuda": True, "n_cuda": 3}):
        _expect_auto(submission, config, "cuda", "a CUDA GPU comes first when there is one.")


@prop("pick_device", points=1)
def test_then_mps(submission):
    for config in ({"mps": True}, {"mps": True, "cuda_built": True}):
        _expect_auto(submission, config, "mps",
                     "without CUDA, use Apple's GPU when torch.backends.mps.is_available() (is_built() only says "
                     "torch could use one, not that this machine has one).")


@prop("pick_device", points=1)
def test_falls_back_to_cpu(submission):
    for config in ({}, {"mps_built": True}, {"cuda_built": True}, {"cuda_built": True, "mps_built": True}):
        _expect_auto(submission, config, "cpu",
                     "ask torch what is there (torch.cuda.is_available(), torch.backends.mps.is_available()) instead "
                     "of assuming a GPU; a device torch was built for but cannot find is not available "
                     "(is_built() says what torch supports, is_available() what this machine has).")


_EXPLICIT = {
    # (cuda, mps, n_cuda): [(preferred, expected)]
    (True, False, 2): [("cpu", "cpu"), (torch.device("cpu"), "cpu"), ("cuda", "cuda"), ("cuda:1", "cuda:1"),
                       ("cuda:0", "cuda:0"), (torch.device("cuda", 1), "cuda:1")],
    (False, True, 0): [("cpu", "cpu"), ("mps", "mps"), (torch.device("mps"), "mps")],
}


@prop("pick_device", points=1)
def test_honours_an_explicit_choice(submission):
    for (cuda, mps, n_cuda), cases in _EXPLICIT.items():
        where = _machine_name(cuda, mps, n_cuda)
        _machine(submission, cuda=cuda, mps=mps, n_cuda=max(n_cuda, 1))
        try:
            for preferred, want in cases:
                got = _picked(submission, (preferred,), where)
                expect(
                    got == torch.device(want),
                    f"On {where}, pick_device({preferred!r}) should give {want!r}, got {str(got)!r}: a device the "
                    "caller names explicitly wins over the automatic choice, index included (torch.device(preferred) "
                    "keeps it).",
                )
        finally:
            _reset(submission)


@prop("pick_device", points=1)
def test_rejects_an_unavailable_device(submission):
    cases = [({}, p) for p in ("cuda", "cuda:0", torch.device("cuda"), "mps", torch.device("mps"))]
    cases += [({"cuda_built": True, "mps_built": True}, p) for p in ("cuda", "mps")]
    cases += [({"cuda": True, "n_cuda": 1}, "mps")]
    for config, preferred in cases:
        where = _machine_name(config.get("cuda", False), False, config.get("n_cuda", 1),
                              config.get("cuda_built", False), config.get("mps_built", False))
        _machine(submission, **config)
        try:
            got, err = _raises(submission, (preferred,), "pick_device")
        finally:
            _reset(submission)
        if isinstance(err, ValueError):
            continue
        if err is not None:
            raise CheckFailed(
                f"On {where} pick_device({preferred!r}) raised {err.type_name}: {err.message[:120]}; the docstring "
                "promises a ValueError that says the device is not available (catch torch's error and raise ValueError, "
                "or check torch.cuda.is_available() / torch.backends.mps.is_available() first)."
            )
        raise CheckFailed(
            f"On {where} pick_device({preferred!r}) returned {got!r}: raise a ValueError saying {str(preferred)!r} "
            "is not available, so the mistake shows here rather than deep inside torch later (a torch.device object "
            "or an indexed name like 'cuda:0' must be checked too)."
        )


# =========================================================================== train

_TRAIN_SOURCE = '''
def train(model, steps, batch_size=1024, lr=1e-3, weight_decay=0.01, lr_schedule=None, device=None, seed=0):
    device = torch.device("cpu" if device is None else device)
    model.to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    losses = torch.empty(steps, model.n_instances, device=device)
    for step in range(steps):
        factor = 1.0 if lr_schedule is None else lr_schedule(step, steps)
        for group in optimizer.param_groups:
            group["lr"] = lr * factor
        x = model.generate_batch(batch_size, generator=generator)
        per_instance = model.per_instance_loss(x, model(x))
        optimizer.zero_grad()
        per_instance.sum().backward()
        optimizer.step()
        losses[step] = per_instance.detach()
    return losses.cpu()
'''


def train_variant(*edits: tuple[str, str]) -> Callable[..., torch.Tensor]:
    """A ``train`` written like the solution, with each ``(old, new)`` edit applied (for the mistake table and tests)."""
    source = _TRAIN_SOURCE
    for old, new in edits:
        if old not in source:
            raise ValueError(f"edit does not apply: {old!r}")
        source = source.replace(old, new, 1)
    ns: dict[str, Any] = {"torch": torch}
    exec(compile(source, "<train variant>", "exec"), ns)  # noqa: S102 - the check's own code
    return ns["train"]


_LOOP = "    for step in range(steps):\n"
_SET_LR = ("        factor = 1.0 if lr_schedule is None else lr_schedule(step, steps)\n"
           "        for group in optimizer.param_groups:\n"
           '            group["lr"] = lr * factor\n')
_DRAW = "        x = model.generate_batch(batch_size, generator=generator)\n"
_MAKE_GEN = "    generator = torch.Generator(device=device).manual_seed(seed)\n"
_MAKE_OPT = "    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)\n"

_SAME_BATCH = ("every step trained on the same batch: draw a fresh batch inside the loop, one per step, from one generator "
               "made and seeded once before the loop (re-seeding it every step replays the same numbers).")

TRAIN_MISTAKES = [
    Mistake("mean_over_instances", train_variant(("per_instance.sum().backward()", "per_instance.mean().backward()")),
            "averaged", "you averaged the per-instance losses over instances: sum them "
            "(model.per_instance_loss(x, x_hat).sum()), so each instance trains as if it were alone."),
    Mistake("step_before_backward", train_variant(("        optimizer.step()\n", ""),
                                                  ("optimizer.zero_grad()\n", "optimizer.zero_grad()\n        optimizer.step()\n")),
            "backward() before optimizer.step()", "the optimizer stepped before the gradient of this batch was there: "
            "call loss.backward() before optimizer.step() (zero_grad, backward, step)."),
    Mistake("no_zero_grad", train_variant(("        optimizer.zero_grad()\n", "")), "zero_grad",
            "gradients add up across steps unless you call optimizer.zero_grad() every step."),
    Mistake("optimizer_in_loop", train_variant((_MAKE_OPT, ""), (_LOOP, _LOOP + "    " + _MAKE_OPT)),
            "one AdamW before the loop", "create one AdamW before the loop: it keeps running averages of the "
            "gradients from step to step, and a new one every step forgets them."),
    Mistake("adam", train_variant(("torch.optim.AdamW(", "torch.optim.Adam(")), "AdamW",
            "the paper's recipe is torch.optim.AdamW (decoupled weight decay); Adam's weight_decay adds to the gradient instead."),
    Mistake("weight_decay_ignored", train_variant(("lr=lr, weight_decay=weight_decay)", "lr=lr)")), "weight_decay",
            "pass the weight_decay argument to AdamW (its own default is 0.01)."),
    Mistake("lr_ignored", train_variant(('group["lr"] = lr * factor', 'group["lr"] = 1e-3 * factor')), "the lr argument",
            "train with the lr argument (lr * the schedule's factor), not a fixed learning rate."),
    Mistake("schedule_ignored", train_variant(('group["lr"] = lr * factor', 'group["lr"] = lr')), "never applied",
            "the schedule was never applied: set group['lr'] = lr * lr_schedule(step, steps) for every param group each step."),
    Mistake("schedule_once", train_variant((_SET_LR, ""), (_LOOP, _SET_LR.replace("        ", "    ").replace("step, steps", "0, steps") + _LOOP)),
            "applied once", "the schedule was applied once, before the loop: set the lr inside the loop, every step."),
    Mistake("schedule_off_by_one", train_variant(("lr_schedule(step, steps)", "lr_schedule(step + 1, steps)")), "off by one",
            "the schedule is off by one: step s of the loop (counting from 0) uses lr * lr_schedule(s, steps)."),
    Mistake("schedule_multiplied", train_variant(('group["lr"] = lr * factor', 'group["lr"] = group["lr"] * factor')),
            "multiplied", "the factors were multiplied into the lr step after step: set lr = base lr * lr_schedule(step, steps)."),
    Mistake("batch_once", train_variant((_DRAW, ""), (_LOOP, "    x = model.generate_batch(batch_size, generator=generator)\n" + _LOOP)),
            "same batch", _SAME_BATCH),
    Mistake("reseeded", train_variant((_MAKE_GEN, ""), (_DRAW, "    " + _MAKE_GEN + _DRAW)), "same batch", _SAME_BATCH),
    Mistake("seed_ignored", train_variant(("generator=generator)", "generator=None)")), "seed",
            "the batches do not come from the seed: draw every batch from torch.Generator(device=device).manual_seed(seed), "
            "passed to model.generate_batch(batch_size, generator=...)."),
    Mistake("mean_logged", train_variant(("losses[step] = per_instance.detach()", "losses[step] = per_instance.detach().mean()")),
            "each instance's own loss", "every column holds the mean over instances: store each instance's own loss, per_instance_loss(x, x_hat)."),
    Mistake("logged_after_update", train_variant(("losses[step] = per_instance.detach()",
                                                  "losses[step] = model.per_instance_loss(x, model(x)).detach()")),
            "before that step's update", "the history holds the loss after each update: store the loss computed before that step's update."),
    Mistake("clipped_over_all", train_variant(("per_instance.sum().backward()\n",
                                               "per_instance.sum().backward()\n        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)\n")),
            "mix instances", "nothing may mix instances, e.g. no gradient clipping over the whole model, no loss normalised by the total."),
    Mistake("wrong_defaults", train_variant(("lr=1e-3, weight_decay=0.01", "lr=1e-2, weight_decay=0.0")), "defaults",
            "check the defaults the docstring gives: batch_size=1024, lr=1e-3, weight_decay=0.01, seed=0."),
    Mistake("squeezed", train_variant(("return losses.cpu()", "return losses.squeeze().cpu()")), "shape", compare=False),
    Mistake("hard_coded_cuda", train_variant(('device = torch.device("cpu" if device is None else device)', 'device = torch.device("cuda")')),
            "device you are given", compare=False),
    Mistake("device_ignored", train_variant(('device = torch.device("cpu" if device is None else device)',
                                             'device = torch.device("cuda" if torch.cuda.is_available() else "cpu")')),
            "device you are given", compare=False),
]


def _small_kwargs(n_instances: int = 4, script_seed: int | None = 11, seed: int = 5, importance_scale: float = 1.0,
                  n: int = 6, m: int = 3) -> dict[str, Any]:
    p = torch.tensor([0.7, 0.4, 0.9, 0.5, 0.3, 0.6, 0.8, 0.45])[:n_instances]
    return {"n_features": n, "n_hidden": m, "n_instances": n_instances, "feature_probability": p,
            "importance": importance_scale * 0.8 ** torch.arange(n, dtype=torch.float32), "activation": "relu",
            "seed": seed, "script_seed": script_seed}


def _local_model(kwargs: dict[str, Any], state: dict[str, torch.Tensor] | None) -> torch.nn.Module:
    from autograder.worker.spies import scripted_model

    model = scripted_model(**{k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()})
    model.grading_records()  # the grader's copy records nothing (removes its optimizer hook)
    if state is not None:
        model.load_state_dict(state)
    return model


def _initial_state(kwargs: dict[str, Any], edit: Callable[[dict[str, torch.Tensor]], None] | None = None) -> dict[str, torch.Tensor]:
    state = {k: v.detach().clone() for k, v in _local_model(kwargs, None).state_dict().items()}
    if edit is not None:
        edit(state)
    return state


def _reference_run(kwargs: dict[str, Any], state: dict[str, torch.Tensor], steps: int, options: dict[str, Any]):
    """The trajectory a correct train follows: ``(losses (steps, k), {"W", "b_final"})``, by plain autograd + AdamW."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    from autograder.worker.spies import ProbeSchedule
    from supercourse.reference_loop import reference_train

    model = _local_model(kwargs, state)
    lr = options.get("lr", 1e-3)
    handle = None
    if options.get("lr_schedule") is not None:
        count = [0]

        def set_lr(optimizer, args, kw):
            for group in optimizer.param_groups:
                group["lr"] = lr * ProbeSchedule.factor(count[0], steps)
            count[0] += 1

        handle = register_optimizer_step_pre_hook(set_lr)
    try:
        with torch.random.fork_rng(devices=[]):
            losses = reference_train(model, steps, batch_size=options.get("batch_size", 1024), lr=lr,
                                     weight_decay=options.get("weight_decay", 0.01), seed=options.get("seed", 0))
    finally:
        if handle is not None:
            handle.remove()
    return losses, {"W": model.W.detach().clone(), "b_final": model.b_final.detach().clone()}


def _mistake_run(mistake: Mistake, kwargs: dict[str, Any], state: dict[str, torch.Tensor], steps: int, options: dict[str, Any]):
    from autograder.worker.spies import ProbeSchedule

    model = _local_model(kwargs, state)
    opts = dict(options)
    if opts.get("lr_schedule") is not None:
        opts["lr_schedule"] = ProbeSchedule()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(12345)
        losses = mistake.implementation(model, steps, **opts)
    return losses, {"W": model.W.detach().clone(), "b_final": model.b_final.detach().clone()}


class _TrainRun:
    """One call of the learner's ``train`` on a model built in the worker, and the reference trajectory."""

    def __init__(self, submission: Any, steps: int, kwargs: dict[str, Any], state: dict[str, torch.Tensor],
                 options: dict[str, Any]) -> None:
        self.steps, self.kwargs, self.state, self.options = steps, kwargs, state, options
        self.model = Construct("worker:spies.ScriptedModel", kwargs, state)
        opts = dict(options)
        self.schedule = None
        if opts.get("lr_schedule") is not None:
            self.schedule = opts["lr_schedule"] = Construct("worker:spies.ProbeSchedule")
        self.call_text = f"train(model, {steps}" + "".join(
            f", {k}={('<a test schedule>' if k == 'lr_schedule' else repr(v))}" for k, v in options.items()) + ")"
        try:
            self.out = call(submission, self.model, steps, what="train", **opts)
        finally:
            _reset(submission)
        self.final = self.model.final_state or {}
        self.records = self.model.records if isinstance(self.model.records, dict) else {}
        self.want_losses, self.want_state = _reference_run(kwargs, state, steps, options)

    # ------------------------------------------------------------------ contract
    def losses(self) -> torch.Tensor:
        k = self.kwargs["n_instances"]
        out = self.out
        expect(
            isinstance(out, torch.Tensor),
            f"{self.call_text} must return the loss history as a tensor of shape (steps, n_instances) = "
            f"({self.steps}, {k}), got {describe(out)}.",
        )
        expect(
            tuple(out.shape) == (self.steps, k),
            f"{self.call_text} must return the loss history with shape exactly (steps, n_instances) = ({self.steps}, {k}), "
            f"got shape {tuple(out.shape)}" + (" (no .squeeze(): with one instance the shape is still (steps, 1))." if out.numel() == self.steps * k else "."),
        )
        expect(out.is_floating_point(), f"the loss history must hold floats, got dtype {out.dtype}.")
        return out.detach()

    def weights(self) -> dict[str, torch.Tensor]:
        return {name: self.final.get(name) for name in ("W", "b_final")}

    def matches(self, losses: torch.Tensor, state: dict[str, torch.Tensor]) -> bool:
        mine = self.weights()
        return (isinstance(self.out, torch.Tensor) and close(self.out, losses)
                and all(isinstance(mine[n], torch.Tensor) and close(mine[n], state[n]) for n in ("W", "b_final")))

    def diagnosis(self) -> str:
        """The hint of the first mistake whose replayed run gives what the learner's did, else what the spy saw."""
        for m in TRAIN_MISTAKES:
            if not m.compare:
                continue
            try:
                losses, state = _mistake_run(m, self.kwargs, self.state, self.steps, self.options)
            except Exception:  # noqa: BLE001 - a mistake that cannot run here
                continue
            if self.matches(losses, state):
                return " " + m.hint[0].upper() + m.hint[1:]
        return self._from_records()

    def _from_records(self) -> str:
        """A hint from what the spy recorded in the worker (untrusted: it only words the message)."""
        try:
            steps = self.records.get("steps") or []
            sizes = self.records.get("sizes") or []
            if not steps:
                return (" No torch optimizer's step() ran on the model's parameters: create "
                        "torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay) and call optimizer.step() once per step.")
            if len(steps) != self.steps:
                return f" optimizer.step() ran {len(steps)} times in {self.steps} steps; it should run once per step."
            if len(sizes) != self.steps:
                return f" model.generate_batch was called {len(sizes)} times in {self.steps} steps: draw one fresh batch per step."
            if len({s.get('optimizer') for s in steps}) > 1:
                return " more than one optimizer was used: create one AdamW before the loop."
            if not all(s.get("adamw") for s in steps):
                return f" train used {steps[0].get('cls')}; the paper's recipe is torch.optim.AdamW."
            if not all(s.get("all_parameters") for s in steps):
                return " the optimizer must get exactly the model's parameters: torch.optim.AdamW(model.parameters(), ...)."
            if not all(s.get("has_grad") for s in steps):
                return " at some optimizer step the gradients were missing or zero: call loss.backward() before optimizer.step()."
        except Exception:  # noqa: BLE001 - records are untrusted data
            return ""
        return (" Each step must: draw a batch, loss = model.per_instance_loss(x, model(x)).sum(), zero_grad, backward, "
                "then AdamW's step, with lr * lr_schedule(step, steps) when a schedule is given.")

    def expect_trajectory(self, what: str) -> None:
        """The loss history and the final weights follow the reference trajectory."""
        got = self.losses()
        mine = self.weights()
        expect(all(isinstance(t, torch.Tensor) for t in mine.values()),
               f"{what}: after {self.call_text} the model has no W and b_final to compare.")
        if close(got, self.want_losses) and all(close(mine[n], self.want_state[n]) for n in mine):
            return
        if not close(got, self.want_losses):
            row = int(((got.double() - self.want_losses.double()).abs().amax(dim=1)).argmax())
            w, g = fmt_pair(self.want_losses[row], got[row], digits=5)
            where = f"the loss history differs at step {row}: expected {w}, got {g}"
        else:
            name = "W" if not close(mine["W"], self.want_state["W"]) else "b_final"
            diff = (mine[name].double() - self.want_state[name].double()).abs().max().item()
            where = f"the losses are right but the final {name} differs from AdamW's by up to {fmt(diff)}"
        raise CheckFailed(f"{what}: after {self.call_text}, {where}.{self.diagnosis()}")


def _run(submission: Any, steps: int, kwargs: dict[str, Any] | None = None, edit=None, **options: Any) -> _TrainRun:
    kwargs = kwargs or _small_kwargs()
    return _TrainRun(submission, steps, kwargs, _initial_state(kwargs, edit), {"device": "cpu", **options})


@prop("train", points=1)
def test_returns_the_per_instance_loss_history(submission):
    run = _run(submission, 5, batch_size=32, lr=1e-2)
    got = run.losses()
    if not close(got, run.want_losses):
        row = int(((got.double() - run.want_losses.double()).abs().amax(dim=1)).argmax())
        w, g = fmt_pair(run.want_losses[row], got[row], digits=5)
        raise CheckFailed(
            f"the loss history is wrong at step {row}: expected {w}, got {g}; row s must be "
            f"model.per_instance_loss(x, model(x)) of step s's batch, before that step's update.{run.diagnosis()}"
        )


@prop("train", points=2)
def test_follows_adamw_step_by_step(submission):
    _run(submission, 6, batch_size=32, lr=2e-2, weight_decay=0.05, seed=1).expect_trajectory("AdamW trajectory")


@prop("train", points=1)
def test_loss_is_summed_over_instances(submission):
    # Gradients near AdamW's eps (importance 1e-7): the update then depends on the gradient's scale.
    kwargs = _small_kwargs(importance_scale=1e-7)
    _run(submission, 4, kwargs, batch_size=32, lr=1e-2).expect_trajectory("Summed loss")


@prop("train", points=1)
def test_instances_train_independently(submission):
    def inflate(state):  # instance 0 becomes wildly different; the others stay as they are
        state["W"][0] *= 40.0
        state["importance"][0] *= 50.0

    _run(submission, 6, edit=inflate, batch_size=32, lr=2e-2).expect_trajectory("Independent instances")


@prop("train", points=1)
def test_lr_schedule_every_step(submission):
    run = _run(submission, 6, batch_size=32, lr=0.02, lr_schedule=True)
    try:
        run.expect_trajectory("Learning-rate schedule")
    except CheckFailed as err:
        calls = run.schedule.records if isinstance(run.schedule.records, list) else None
        note = ""
        if calls is not None and len(calls) != 6 and "schedule" not in str(err):
            note = f" (lr_schedule was called {len(calls)} times in 6 steps: call it once per step, lr_schedule(step, steps).)"
        raise CheckFailed(str(err) + note) from None


@prop("train", points=1)
def test_seed_chooses_the_batches(submission):
    # This model draws from the generator train passes (as a ToyModel does): the batches come from the seed alone.
    kwargs = _small_kwargs(script_seed=None)
    for seed in (3, 4):
        run = _run(submission, 4, kwargs, batch_size=64, lr=1e-2, seed=seed)
        try:
            run.expect_trajectory(f"Seed {seed}")
        except CheckFailed as err:
            gens = run.records.get("with_generator") if isinstance(run.records, dict) else None
            note = ""
            if isinstance(gens, list) and gens and not any(gens) and "seed" not in str(err).lower():
                note = " generate_batch got no generator: pass generator=torch.Generator(device=device).manual_seed(seed)."
            raise CheckFailed(str(err) + note) from None


@prop("train", points=1)
def test_runs_on_the_device_it_is_given(submission):
    # A machine that reports a CUDA GPU which this CPU build cannot use: code that ignores `device` fails.
    for device in ("cpu", torch.device("cpu")):
        kwargs = _small_kwargs(script_seed=3)
        _machine(submission, cuda=True, allocate=False)
        try:
            out, err = _raises(submission, (Construct("worker:spies.ScriptedModel", kwargs, _initial_state(kwargs)), 2),
                               "train", {"batch_size": 16, "lr": 1e-2, "device": device})
        finally:
            _reset(submission)
        if err is not None:
            raise CheckFailed(
                f"train(model, 2, device={device!r}) on a machine that also has a GPU raised {err.type_name}: "
                f"{err.message[:120]}: use the device you are given (pick_device(device)), never a hard-coded 'cuda'."
            )
        expect(isinstance(out, torch.Tensor) and tuple(out.shape) == (2, 4),
               f"train(model, 2, device={device!r}) should return the loss history of shape (2, 4), got {describe(out)}.")


@prop("train", points=1)
def test_default_arguments(submission):
    _run(submission, 3).expect_trajectory("Defaults (batch_size=1024, lr=1e-3, weight_decay=0.01, seed=0)")


@prop("train", points=1)
def test_one_instance_batch_of_one(submission):
    kwargs = _small_kwargs(n_instances=1, script_seed=7)
    _run(submission, 4, kwargs, batch_size=1, lr=1e-2, weight_decay=0.0).expect_trajectory("One instance, batches of 1")


# =========================================================================== measure_throughput


def _measure(submission: Any, trainer: dict[str, Any], steps: int, device: Any, n_instances: int = 37,
             **kwargs: Any) -> tuple[dict[str, float], Any, str]:
    fake = Construct("worker:spies.FakeTrainer", trainer)
    model = Construct("worker:spies.Instances", {"n_instances": n_instances})
    extra = "".join(f", {k}={v!r}" for k, v in kwargs.items())
    text = f"measure_throughput(train_fn, model, {steps}, {device!r}{extra})"
    try:
        out = call(submission, fake, model, steps, device, what="measure_throughput", **kwargs)
    finally:
        _reset(submission)
    expect(
        isinstance(out, dict) and {"steps_per_second", "instance_steps_per_second"} <= set(out),
        f"{text} must return a dict with 'steps_per_second' and 'instance_steps_per_second', got {describe(out)}.",
    )
    rates = {}
    for key in ("steps_per_second", "instance_steps_per_second"):
        value = out[key]
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        expect(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
               f"{text}: {key} must be a finite number, got {describe(value)}.")
        rates[key] = float(value)
    return rates, (fake.records if isinstance(fake.records, dict) else {}), text


def _calls_note(records: dict) -> str:
    calls = records.get("calls") if isinstance(records, dict) else None
    return f" (train_fn was called with steps {calls})" if isinstance(calls, list) else ""


def _within(got: float, want: float, tol: float = 0.25) -> bool:
    return (1 - tol) * want <= got <= (1 + tol) * want


@prop("measure_throughput", points=1)
def test_measures_steps_per_second(submission):
    # A fast trainer with a slow start, then a slow one (under one step per second): rates are floats, not truncated.
    for trainer, steps, kwargs in (({"step_seconds": 0.004, "first_call_seconds": 0.3}, 50, {}),
                                   ({"step_seconds": 1.1}, 1, {"warmup_steps": 1})):
        rates, records, text = _measure(submission, trainer, steps, "cpu", **kwargs)
        want = 1 / trainer["step_seconds"]
        got = rates["steps_per_second"]
        if _within(got, want):
            continue
        if got == int(got) and _within(int(want), got, 0.01) or (want < 1 and got == 0):
            hint = "the rate was truncated to a whole number: return steps / seconds as a float."
        elif got < want and trainer.get("first_call_seconds"):
            hint = "the slow first call was timed: run an untimed warm-up call of train_fn(model, warmup_steps) first, and time only the next call."
        else:
            hint = "time one call train_fn(model, steps) and divide steps by the seconds it took."
        w, g = fmt_pair(want, got)
        raise CheckFailed(f"{text}: measured {g} steps/s, but the test trainer runs at {w} steps/s{_calls_note(records)}: {hint}")


@prop("measure_throughput", points=1)
def test_instance_steps_and_warmup_steps(submission):
    # The first 8 steps are slow (0.03 s each): only a warm-up of warmup_steps=8 steps leaves the timed call fast.
    for k, warm in ((37, 8), (1, 8)):
        trainer = {"step_seconds": 0.004, "slow_steps": warm, "slow_step_seconds": 0.03}
        rates, records, text = _measure(submission, trainer, 40, "cpu", n_instances=k, warmup_steps=warm)
        want = 1 / 0.004
        got = rates["steps_per_second"]
        if not _within(got, want):
            w, g = fmt_pair(want, got)
            raise CheckFailed(
                f"{text}: measured {g} steps/s, but once warmed up the test trainer runs at {w} steps/s"
                f"{_calls_note(records)}: the warm-up call must run warmup_steps steps (the argument, not a fixed number)."
            )
        per = rates["instance_steps_per_second"]
        expect(
            abs(per - got * k) <= 1e-6 * got * k,
            f"{text}: for a model with {k} instance(s), instance_steps_per_second should be steps_per_second x {k} = "
            f"{fmt(got * k)}, got {fmt(per)}: every step trains every instance once.",
        )


def _check_async(submission: Any, kind: str, devices: tuple[Any, ...]) -> None:
    sync = "torch.cuda.synchronize()" if kind == "cuda" else "torch.mps.synchronize()"
    for device in devices:
        trainer = {"step_seconds": 0.004, "first_call_seconds": 0.3, "device": kind}
        try:
            rates, records, text = _measure(submission, trainer, 50, device)
        except CheckFailed as err:
            raise CheckFailed(f"{err} (on a simulated {kind!r} machine: wait for the device with {sync} when given "
                              f"{device!r}; a torch.device or an indexed name like 'cuda:0' names the same device type)") from None
        want = 1 / 0.004
        got = rates["steps_per_second"]
        if _within(got, want):
            continue
        calls = records.get("calls") if isinstance(records, dict) else None
        if isinstance(calls, list) and len(calls) < 2 and not _within(got, want):
            hint = f"the first call (slow on a GPU: start-up) was the timed one: make an untimed warm-up call first, {sync}, then time."
        elif got > 1.25 * want:
            hint = (f"a GPU runs your steps asynchronously, so the clock stopped before the work was done: call {sync} "
                    f"before reading the clock (compare torch.device(device).type, so {device!r} counts too).")
        else:
            hint = (f"the timed interval included work queued before it (the warm-up): call {sync} after the warm-up, "
                    "before starting the clock, and again before stopping it.")
        w, g = fmt_pair(want, got)
        raise CheckFailed(f"{text}: measured {g} steps/s, but the simulated {kind} trainer runs at {w} steps/s: {hint}")


@prop("measure_throughput", points=1)
def test_waits_for_a_cuda_gpu(submission):
    _check_async(submission, "cuda", ("cuda", torch.device("cuda"), "cuda:0"))


@prop("measure_throughput", points=1)
def test_waits_for_apples_gpu(submission):
    _check_async(submission, "mps", ("mps", torch.device("mps")))


MISTAKES: dict[str, list[Mistake]] = {"lr_factor": LR_MISTAKES, "train": TRAIN_MISTAKES}
"""The mistake tables of the exercises whose diagnosis replays mistakes here (the tests add the others)."""


# =========================================================================== mistake tables of the other exercises


def _defined(source: str, name: str) -> Callable[..., Any]:
    """The function ``name`` defined by ``source`` (with ``torch``, ``math`` and ``time`` imported)."""
    import time

    ns: dict[str, Any] = {"torch": torch, "math": math, "time": time}
    exec(compile(source, f"<mistake {name}>", "exec"), ns)  # noqa: S102 - the check's own code
    return ns[name]


_PICK = '''
def pick_device(preferred=None):
    if preferred is not None:
        device = torch.device(preferred)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"{preferred!r} is not available")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"{preferred!r} is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
'''


def pick_variant(*edits: tuple[str, str]) -> Callable[..., torch.device]:
    """A ``pick_device`` written like the solution, with each ``(old, new)`` edit applied."""
    source = _PICK
    for old, new in edits:
        if old not in source:
            raise ValueError(f"edit does not apply: {old!r}")
        source = source.replace(old, new, 1)
    return _defined(source, "pick_device")


_CUDA_FIRST = '    if torch.cuda.is_available():\n        return torch.device("cuda")\n'
PICK_MISTAKES = [
    Mistake("hard_coded_cuda", _defined('def pick_device(preferred=None):\n    return torch.device(preferred or "cuda")', "pick_device"),
            "instead of assuming a GPU", compare=False),
    Mistake("mps_before_cuda", pick_variant((_CUDA_FIRST, ""), ('    return torch.device("cpu")', _CUDA_FIRST + '    return torch.device("cpu")')),
            "a CUDA GPU comes first", compare=False),
    Mistake("explicit_ignored", pick_variant(("if preferred is not None:", "if False:")), "explicitly wins", compare=False),
    Mistake("returns_string", _defined(
        'def pick_device(preferred=None):\n    if preferred is not None:\n        return str(preferred)\n'
        '    return "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"', "pick_device"),
        "must return a torch.device", compare=False),
    Mistake("never_validates", pick_variant(('            raise ValueError(f"{preferred!r} is not available")\n', "            pass\n"),
                                            ('            raise ValueError(f"{preferred!r} is not available")\n', "            pass\n")),
            "raise a ValueError", compare=False),
    Mistake("mps_is_built", pick_variant(("if torch.backends.mps.is_available():\n        return", "if torch.backends.mps.is_built():\n        return")),
            "is_built", compare=False),
    Mistake("runtime_error", pick_variant(('raise ValueError(f"{preferred!r} is not available")', 'raise RuntimeError(f"{preferred!r} is not available")')),
            "promises a ValueError", compare=False),
    Mistake("drops_index", pick_variant(("        return device\n", "        return torch.device(device.type)\n")),
            "index included", compare=False),
    Mistake("exact_names_only", _defined(
        'def pick_device(preferred=None):\n'
        '    if preferred == "cuda" and not torch.cuda.is_available():\n        raise ValueError("no cuda")\n'
        '    if preferred == "mps" and not torch.backends.mps.is_available():\n        raise ValueError("no mps")\n'
        '    if preferred is not None:\n        return torch.device(preferred)\n'
        '    return torch.device("cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu")',
        "pick_device"), "'cuda:0'", compare=False),
    Mistake("accelerator_of_any_kind", _defined(
        'def pick_device(preferred=None):\n'
        '    if preferred is not None:\n        return torch.device(preferred)\n'
        '    return torch.device("cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu")',
        "pick_device"), "raise a ValueError", compare=False),
]

_MEASURE = '''
def measure_throughput(train_fn, model, steps, device, warmup_steps=5):
    device = torch.device(device)

    def wait_for_device():
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elif device.type == "mps":
            torch.mps.synchronize()

    train_fn(model, warmup_steps)
    wait_for_device()
    start = time.perf_counter()
    train_fn(model, steps)
    wait_for_device()
    seconds = time.perf_counter() - start
    steps_per_second = steps / seconds
    return {"steps_per_second": steps_per_second, "instance_steps_per_second": steps_per_second * model.n_instances}
'''


def measure_variant(*edits: tuple[str, str]) -> Callable[..., dict]:
    """A ``measure_throughput`` written like the solution, with each ``(old, new)`` edit applied."""
    source = _MEASURE
    for old, new in edits:
        if old not in source:
            raise ValueError(f"edit does not apply: {old!r}")
        source = source.replace(old, new, 1)
    return _defined(source, "measure_throughput")


_WARM = "    train_fn(model, warmup_steps)\n    wait_for_device()\n"
MEASURE_MISTAKES = [
    Mistake("no_warm_up", measure_variant((_WARM, "")), "warm-up", compare=False),
    Mistake("warm_up_timed", measure_variant(("    start = time.perf_counter()\n", ""),
                                             (_WARM, "    start = time.perf_counter()\n" + _WARM)), "warm-up", compare=False),
    Mistake("never_waits", measure_variant(("torch.cuda.synchronize(device)", "pass"), ("torch.mps.synchronize()", "pass")),
            "before reading the clock", compare=False),
    Mistake("waits_only_at_the_end", measure_variant((_WARM, "    train_fn(model, warmup_steps)\n")),
            "after the warm-up", compare=False),
    Mistake("instances_not_multiplied", measure_variant(("steps_per_second * model.n_instances", "steps_per_second")),
            "every step trains every instance once", compare=False),
    Mistake("truncated", measure_variant(("steps_per_second = steps / seconds", "steps_per_second = int(steps / seconds)")),
            "truncated", compare=False),
    Mistake("fixed_warm_up", measure_variant(("train_fn(model, warmup_steps)", "train_fn(model, 5)")), "warmup_steps", compare=False),
    Mistake("string_compare", measure_variant(('    device = torch.device(device)\n', ""), ('device.type == "cuda"', 'device == "cuda"'),
                                              ('device.type == "mps"', 'device == "mps"')),
            "torch.device(device).type", compare=False),
    Mistake("cuda_sync_everywhere", measure_variant(('if device.type == "cuda"', 'if device.type != "cpu"')),
            "torch.mps.synchronize()", compare=False),
    Mistake("whole_seconds", measure_variant(("seconds = time.perf_counter() - start", "seconds = max(1, round(time.perf_counter() - start))")),
            "steps/s", compare=False),
]

MISTAKES.update({"pick_device": PICK_MISTAKES, "measure_throughput": MEASURE_MISTAKES})
