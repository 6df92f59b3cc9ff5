"""Checks for lesson 2, training many models at once.

The learner's code runs in a separate worker; only plain data crosses. Four exercises, every input drawn
from the grading run's secret (run lengths, steps, names, machines, model sizes, seeds, speeds):

* ``lr_factor(schedule, step, steps)``: values against :mod:`supercourse.schedules`
  with float32-exact tolerances over run lengths drawn at random, and exactly ``ValueError`` for unknown
  names (misspellings drawn at random).
* ``pick_device(preferred=None)``: each call carries the machine it runs on
  (:class:`~autograder.lessons.lesson02.worker.SimulatedMachine`: CUDA and MPS available
  or not, built but not available, a random number of GPUs, tensors allocated on the
  simulated devices) and the answers are compared with the rule cuda, then
  mps, then cpu; an explicit choice (a random GPU index) wins and an unavailable one raises ValueError.
* ``train(model, steps, ...)``: the worker gets a
  :class:`~autograder.lessons.lesson02.worker.ScriptedModel` whose batches come from its
  own seeded stream (or from the generator ``train`` passes it), and the check
  replays the run in its own process with plain autograd and
  ``torch.optim.AdamW`` (:func:`supercourse.reference_loop.reference_train`)
  on the same batches: the returned loss history and the model's final
  weights must match that trajectory. The mistake table (each mistake a wrong
  ``train`` replayed here) names the mistake; what the model recorded in the
  worker words the message, and withholds the points of a history kept attached
  to the graph or of a re-seeded global random stream.
* ``measure_throughput(train_fn, model, steps, device, warmup_steps=5)``:
  timed against a :class:`~autograder.lessons.lesson02.worker.FakeTrainer` built in the
  worker, whose every call draws its own speed as it runs (slow start, steps that stay
  slow until warmed up, asynchronous queues on a simulated "cuda" or "mps"): nothing
  readable before the timed call tells its duration, so only timing finds the rate.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from autograder.exercises import Exercise
from autograder.framework import CheckFailed, Construct, LearnerError, call, expect, prop
from autograder.toolkit import Mistake, close, describe, fmt, fmt_pair, secret_gen, secret_seed
from supercourse import schedules

from .mistakes import LR_MISTAKES, TRAIN_MISTAKES

LESSON = "02-training-many-models"
EXERCISES = {
    "lr_factor": Exercise(
        "lr_factor",
        "Learning-rate schedules",
        reference=("supercourse.schedules",),
    ),
    "pick_device": Exercise(
        "pick_device",
        "Choosing the device",
        reference=("supercourse.devices",),
    ),
    "train": Exercise(
        "train",
        "A training loop for many instances at once",
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
        _session(submission).probe("state_of", Construct("lesson:RealMachine"))
    except Exception:  # noqa: BLE001 - a dead worker needs no reset
        pass


def _raises(fn: Any, args: tuple, label: str, kwargs: dict | None = None) -> tuple[Any, BaseException | None]:
    """Call the learner's code; return ``(result, None)`` or ``(None, the learner's error)``."""
    try:
        return fn(*args, **(kwargs or {})), None
    except LearnerError as err:
        if err.reference:
            raise CheckFailed(f"implement this yourself: {err.message}", reference=True) from None
        if err.type_name == "NotImplementedError":
            raise CheckFailed(f"`{label}` {NOT_IMPLEMENTED}") from None
        return None, err


def _draw(gen: torch.Generator, low: int, high: int) -> int:
    """An int in [low, high] from ``gen``."""
    return int(torch.randint(low, high + 1, (1,), generator=gen))


def _uniform(gen: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=gen, dtype=torch.float64))


# =========================================================================== lr_factor

RTOL_FACTOR, ATOL_FACTOR = 1e-5, 1e-6
"""A factor computed in float32 (torch.cos on a float32 tensor) is within 1e-6 of the exact one."""


def _run_lengths() -> list[int]:
    """Secret run lengths, the informative ones first (their failures say the most): short, medium, 1, 2, long."""
    gen = secret_gen("run lengths")
    return [_draw(gen, 3, 12), _draw(gen, 40, 100), 1, 2, _draw(gen, 5_000, 20_000)]


def _steps_to_try(steps: int, gen: torch.Generator) -> list[int]:
    if steps <= 100:
        return list(range(steps))
    inside = torch.randint(3, steps - 2, (4,), generator=gen).tolist()
    return sorted({0, 1, 2, *inside, steps - 2, steps - 1})


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


def _ref_factor(schedule: str, step: int, steps: int) -> float:
    return schedules.SCHEDULES[schedule](step, steps)


def _check_schedule(submission: Any, name: str) -> None:
    formula = _FORMULAS[name]
    gen = secret_gen(("steps", name))
    for steps in _run_lengths():
        tried = _steps_to_try(steps, gen)
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
            if not m.compare:
                continue
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


def _unknown_names() -> list[str]:
    """Names that are not schedules, drawn at random: near misses of each name (case, a letter, a suffix) and others."""
    gen = secret_gen("unknown names")
    names = []
    for name in ("constant", "linear", "cosine"):
        i = _draw(gen, 1, len(name) - 1)
        near = [name[:i] + name[i + 1:], name.capitalize(), name.upper(), f" {name}", f"{name}_decay",
                f"{name}-{_draw(gen, 1, 99)}", name[:i] + name[i].upper() + name[i + 1:]]
        names.append(near[_draw(gen, 0, len(near) - 1)])
    others = ["exponential", "step", "warmup", "onecycle", "polynomial", "inverse_sqrt", "", "none"]
    names.append(others[_draw(gen, 0, len(others) - 1)])
    return names


@prop("lr_factor", points=1)
def test_unknown_schedule_is_a_value_error(submission):
    gen = secret_gen("unknown steps")
    for name in _unknown_names():
        steps = _draw(gen, 2, 50)
        step = _draw(gen, 0, steps - 1)
        got, err = _raises(submission, (name, step, steps), "lr_factor")
        if isinstance(err, ValueError):
            continue
        if err is not None:
            raise CheckFailed(
                f"lr_factor({name!r}, {step}, {steps}) raised {err.type_name}; the docstring promises a ValueError for "
                "an unknown schedule name (check the name yourself and `raise ValueError(...)`, rather than letting a "
                "dict lookup raise KeyError)."
            )
        raise CheckFailed(
            f"lr_factor({name!r}, {step}, {steps}) returned {got!r}: an unknown schedule name (only 'constant', "
            "'linear' and 'cosine' exactly) must raise a ValueError, or a typo would silently train with the wrong "
            "schedule."
        )


# =========================================================================== pick_device


def _machine_name(cuda: bool, mps: bool, n_cuda: int = 1, cuda_built: bool = False, mps_built: bool = False) -> str:
    have = [name for name, ok in ((f"{n_cuda} CUDA GPU{'s' if n_cuda > 1 else ''}", cuda), ("Apple's MPS", mps)) if ok]
    text = "a machine with " + " and ".join(have) if have else "a CPU-only machine"
    built = [n for n, b, ok in (("CUDA", cuda_built, cuda), ("MPS", mps_built, mps)) if b and not ok]
    if built:
        text += f" (torch built with {' and '.join(built)}, but no such device present)"
    return text


def _where(config: dict[str, Any]) -> str:
    return _machine_name(config.get("cuda", False), config.get("mps", False), config.get("n_cuda", 1),
                         config.get("cuda_built", False), config.get("mps_built", False))


def _on_machine(submission: Any, config: dict[str, Any]):
    """The learner's pick_device, called on the machine ``config`` describes.

    The machine travels with each call (built in the worker as the request is read, before the call), so
    every question names its machine and a grading run's machines are its own (a secret name, random GPU
    counts).
    """
    machine = Construct("lesson:SimulatedMachine", {**config, "name": f"{secret_seed(('machine', repr(sorted(config.items())))):x}"})

    def pick_device(*args: Any) -> Any:
        return _session(submission).ask({"op": "call", "target": submission.__name__, "args": list(args),
                                         "kwargs": {}, "allow_modified": [], "machine": machine})

    return pick_device


def _picked(submission: Any, config: dict[str, Any], args: tuple) -> torch.device:
    got = call(_on_machine(submission, config), *args, what="pick_device")
    arg = repr(args[0]) if args else ""
    expect(
        isinstance(got, torch.device),
        f"On {_where(config)}, pick_device({arg}) must return a torch.device, got {describe(got)}; wrap the name, as in "
        "torch.device('cpu').",
    )
    return got


def _n_cuda(salt: object) -> int:
    return _draw(secret_gen(("GPUs", salt)), 2, 8)


def _expect_auto(submission: Any, configs: list[dict[str, Any]], want: str, hint: str) -> None:
    try:
        for config in configs:
            got = _picked(submission, config, ())
            ok = got.type == want and (got.index in (None, 0) if want == "cuda" else True)
            expect(ok, f"On {_where(config)}, pick_device() should give {want!r}, got {str(got)!r}: {hint}")
    finally:
        _reset(submission)


@prop("pick_device", points=1)
def test_prefers_cuda(submission):
    n = _n_cuda("prefers")
    _expect_auto(submission, [{"cuda": True}, {"cuda": True, "mps": True, "n_cuda": n}, {"cuda": True, "n_cuda": n}],
                 "cuda", "a CUDA GPU comes first when there is one.")


@prop("pick_device", points=1)
def test_then_mps(submission):
    _expect_auto(submission, [{"mps": True}, {"mps": True, "cuda_built": True}], "mps",
                 "without CUDA, use Apple's GPU when torch.backends.mps.is_available() (is_built() only says "
                 "torch could use one, not that this machine has one).")


@prop("pick_device", points=1)
def test_falls_back_to_cpu(submission):
    configs = [{}, {"mps_built": True}, {"cuda_built": True}, {"cuda_built": True, "mps_built": True}]
    order = torch.randperm(len(configs), generator=secret_gen("order")).tolist()
    _expect_auto(submission, [configs[i] for i in order], "cpu",
                 "ask torch what is there (torch.cuda.is_available(), torch.backends.mps.is_available()) instead "
                 "of assuming a GPU; a device torch was built for but cannot find is not available "
                 "(is_built() says what torch supports, is_available() what this machine has).")


def _explicit_cases() -> list[tuple[dict[str, Any], Any, str]]:
    gen = secret_gen("explicit")
    n = _draw(gen, 2, 8)
    i, j = _draw(gen, 1, n - 1), _draw(gen, 0, n - 1)
    gpu = {"cuda": True, "n_cuda": n}
    cases = [(gpu, p, w) for p, w in [("cpu", "cpu"), (torch.device("cpu"), "cpu"), ("cuda", "cuda"),
                                      (f"cuda:{i}", f"cuda:{i}"), ("cuda:0", "cuda:0"),
                                      (torch.device("cuda", j), f"cuda:{j}")]]
    cases += [({"mps": True}, p, w) for p, w in [("cpu", "cpu"), ("mps", "mps"), (torch.device("mps"), "mps")]]
    order = torch.randperm(len(cases), generator=gen).tolist()
    return [cases[k] for k in order]


@prop("pick_device", points=1)
def test_honours_an_explicit_choice(submission):
    try:
        for config, preferred, want in _explicit_cases():
            got = _picked(submission, config, (preferred,))
            expect(
                got == torch.device(want),
                f"On {_where(config)}, pick_device({preferred!r}) should give {want!r}, got {str(got)!r}: a device the "
                "caller names explicitly wins over the automatic choice, index included (torch.device(preferred) "
                "keeps it).",
            )
    finally:
        _reset(submission)


def _unavailable_cases() -> list[tuple[dict[str, Any], Any]]:
    gen = secret_gen("unavailable")
    i, j = _draw(gen, 0, 7), _draw(gen, 1, 7)
    cases = [({}, p) for p in ("cuda", f"cuda:{i}", torch.device("cuda", j), "mps", torch.device("mps"))]
    cases += [({"cuda_built": True, "mps_built": True}, p) for p in ("cuda", f"cuda:{j}", "mps")]
    cases += [({"cuda": True, "n_cuda": _draw(gen, 1, 4)}, p) for p in ("mps", torch.device("mps"))]
    cases += [({"mps": True}, p) for p in ("cuda", f"cuda:{i}")]
    order = torch.randperm(len(cases), generator=gen).tolist()
    return [cases[k] for k in order]


@prop("pick_device", points=1)
def test_rejects_an_unavailable_device(submission):
    try:
        for config, preferred in _unavailable_cases():
            where = _where(config)
            got, err = _raises(_on_machine(submission, config), (preferred,), "pick_device")
            if isinstance(err, ValueError):
                continue
            if err is not None:
                raise CheckFailed(
                    f"On {where} pick_device({preferred!r}) raised {err.type_name}: {err.message[:120]}; the docstring "
                    "promises a ValueError that says the device is not available (catch torch's error and raise "
                    "ValueError, or check torch.cuda.is_available() / torch.backends.mps.is_available() first)."
                )
            raise CheckFailed(
                f"On {where} pick_device({preferred!r}) returned {got!r}: raise a ValueError saying {str(preferred)!r} "
                "is not available, so the mistake shows here rather than deep inside torch later (a torch.device object "
                "or an indexed name like 'cuda:0' must be checked too)."
            )
    finally:
        _reset(submission)


def _machine(submission: Any, **config: Any) -> None:
    """Make torch in the worker report a machine until the next reset (see :class:`SimulatedMachine`)."""
    _session(submission).probe("state_of", Construct("lesson:SimulatedMachine", config))


# =========================================================================== train


def _small_kwargs(salt: object, n_instances: int | None = None, scripted: bool = True,
                  importance_scale: float = 1.0) -> dict[str, Any]:
    """A small ScriptedModel's arguments, all drawn from the secret: sizes, densities, importances and seeds."""
    gen = secret_gen(("model", salt))
    n = _draw(gen, 4, 8)
    m = _draw(gen, 2, n - 1)
    k = _draw(gen, 2, 6) if n_instances is None else n_instances
    p = 0.25 + 0.7 * torch.rand(k, generator=gen)
    decay = _uniform(gen, 0.6, 0.95)
    return {"n_features": n, "n_hidden": m, "n_instances": k, "feature_probability": p,
            "importance": importance_scale * decay ** torch.arange(n, dtype=torch.float32), "activation": "relu",
            "seed": secret_seed(("init", salt)), "script_seed": secret_seed(("script", salt)) if scripted else None}


def _options(salt: object, **fixed: Any) -> dict[str, Any]:
    """train's keyword arguments drawn from the secret (those in ``fixed`` as given)."""
    gen = secret_gen(("options", salt))
    drawn = {"batch_size": _draw(gen, 16, 48), "lr": _uniform(gen, 0.01, 0.03),
             "weight_decay": _uniform(gen, 0.02, 0.1), "seed": secret_seed(("seed", salt))}
    return {**drawn, **fixed}


def _steps(salt: object, low: int = 4, high: int = 7) -> int:
    return _draw(secret_gen(("steps", salt)), low, high)


def _local_model(kwargs: dict[str, Any], state: dict[str, torch.Tensor] | None) -> torch.nn.Module:
    from .worker import scripted_model

    model = scripted_model(**{k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()})
    model.grading_records()  # the grader's copy records nothing (removes its optimizer hook)
    if state is not None:
        model.load_state_dict(state)
    return model


def _initial_state(kwargs: dict[str, Any], edit: Any = None) -> dict[str, torch.Tensor]:
    state = {k: v.detach().clone() for k, v in _local_model(kwargs, None).state_dict().items()}
    if edit is not None:
        edit(state)
    return state


def _reference_run(kwargs: dict[str, Any], state: dict[str, torch.Tensor], steps: int, options: dict[str, Any]):
    """The trajectory a correct train follows: ``(losses (steps, k), {"W", "b_final"})``, by plain autograd + AdamW."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    from .worker import ProbeSchedule
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
    from .worker import ProbeSchedule

    model = _local_model(kwargs, state)
    opts = dict(options)
    if opts.get("lr_schedule") is not None:
        opts["lr_schedule"] = ProbeSchedule()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(secret_seed("global stream of a replayed mistake"))
        losses = mistake.implementation(model, steps, **opts)
    return losses, {"W": model.W.detach().clone(), "b_final": model.b_final.detach().clone()}


def _describe_options(options: dict[str, Any]) -> str:
    def show(k: str, v: Any) -> str:
        if k == "lr_schedule":
            return "<a test schedule>"
        if k == "seed":
            return "<a seed>"
        return f"{v:.4g}" if isinstance(v, float) else repr(v)

    return "".join(f", {k}={show(k, v)}" for k, v in options.items())


class _TrainRun:
    """One call of the learner's ``train`` on a model built in the worker, and the reference trajectory."""

    def __init__(self, submission: Any, steps: int, kwargs: dict[str, Any], state: dict[str, torch.Tensor],
                 options: dict[str, Any]) -> None:
        self.steps, self.kwargs, self.state, self.options = steps, kwargs, state, options
        self.model = Construct("lesson:ScriptedModel", kwargs, state)
        opts = dict(options)
        self.schedule = None
        if opts.get("lr_schedule") is not None:
            self.schedule = opts["lr_schedule"] = Construct("lesson:ProbeSchedule")
        self.call_text = f"train(model, {steps}{_describe_options(options)})"
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
        return (isinstance(self.out, torch.Tensor) and isinstance(losses, torch.Tensor) and close(self.out, losses)
                and all(isinstance(mine[n], torch.Tensor) and close(mine[n], state[n]) for n in ("W", "b_final")))

    def diagnosis(self) -> str:
        """The hint of the first mistake whose replayed run gives what the learner's did, else what the model saw."""
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
        """A hint from what the model recorded in the worker (untrusted: it only words the message)."""
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
            err = (got.double() - self.want_losses.double()).abs().nan_to_num(float("inf"))
            row = int(err.amax(dim=1).argmax())
            w, g = fmt_pair(self.want_losses[row], got[row], digits=5)
            where = f"the loss history differs at step {row}: expected {w}, got {g}"
        else:
            name = "W" if not close(mine["W"], self.want_state["W"]) else "b_final"
            diff = (mine[name].double() - self.want_state[name].double()).abs().max().item()
            where = f"the losses are right but the final {name} differs from AdamW's by up to {fmt(diff)}"
        raise CheckFailed(f"{what}: after {self.call_text}, {where}.{self.diagnosis()}")

    def expect_detached_history(self) -> None:
        """The returned history holds numbers, not the graph of every step (the model saw its forward graphs outlive train)."""
        alive = self.records.get("graphs_alive")
        expect(
            not (isinstance(alive, int) and alive > 0),
            f"after {self.call_text}, the loss history is still attached to the autograd graph ({alive} forward "
            "passes' graphs outlived train): store per_instance.detach() (or the numbers), or every step's graph "
            "stays in memory as long as the history does.",
        )

    def expect_global_stream_untouched(self) -> None:
        expect(
            self.records.get("global_rng_moved") is not True,
            f"after {self.call_text}, torch's global random state had changed: train re-seeded it "
            "(torch.manual_seed) or drew from it. Every batch comes from the one generator seeded with `seed`, "
            "passed to model.generate_batch; leave the global random stream of the caller alone.",
        )


def _run(submission: Any, steps: int, kwargs: dict[str, Any], options: dict[str, Any], edit=None) -> _TrainRun:
    return _TrainRun(submission, steps, kwargs, _initial_state(kwargs, edit), {"device": "cpu", **options})


@prop("train", points=1)
def test_returns_the_per_instance_loss_history(submission):
    steps = _steps("history")
    run = _run(submission, steps, _small_kwargs("history"), _options("history"))
    got = run.losses()
    if not close(got, run.want_losses):
        err = (got.double() - run.want_losses.double()).abs().nan_to_num(float("inf"))
        row = int(err.amax(dim=1).argmax())
        w, g = fmt_pair(run.want_losses[row], got[row], digits=5)
        raise CheckFailed(
            f"the loss history is wrong at step {row}: expected {w}, got {g}; row s must be "
            f"model.per_instance_loss(x, model(x)) of step s's batch, before that step's update.{run.diagnosis()}"
        )
    run.expect_detached_history()


@prop("train", points=2)
def test_follows_adamw_step_by_step(submission):
    _run(submission, _steps("adamw", 5, 8), _small_kwargs("adamw"), _options("adamw")).expect_trajectory("AdamW trajectory")


@prop("train", points=1)
def test_loss_is_summed_over_instances(submission):
    # Gradients near AdamW's eps (importance 1e-7): the update then depends on the gradient's scale.
    kwargs = _small_kwargs("summed", importance_scale=1e-7)
    _run(submission, _steps("summed"), kwargs, _options("summed", weight_decay=0.01)).expect_trajectory("Summed loss")


@prop("train", points=1)
def test_instances_train_independently(submission):
    gen = secret_gen("inflated")
    w_scale, imp_scale = _uniform(gen, 20.0, 60.0), _uniform(gen, 20.0, 80.0)

    def inflate(state):  # instance 0 becomes wildly different; the others stay as they are
        state["W"][0] *= w_scale
        state["importance"][0] *= imp_scale

    _run(submission, _steps("independent", 5, 8), _small_kwargs("independent"), _options("independent"),
         edit=inflate).expect_trajectory("Independent instances")


@prop("train", points=1)
def test_lr_schedule_every_step(submission):
    steps = _steps("schedule", 5, 8)
    run = _run(submission, steps, _small_kwargs("schedule"), _options("schedule", lr_schedule=True))
    try:
        run.expect_trajectory("Learning-rate schedule")
    except CheckFailed as err:
        calls = run.schedule.records if isinstance(run.schedule.records, list) else None
        note = ""
        if calls is not None and len(calls) != steps and "schedule" not in str(err):
            note = f" (lr_schedule was called {len(calls)} times in {steps} steps: call it once per step, lr_schedule(step, steps).)"
        raise CheckFailed(str(err) + note) from None


@prop("train", points=1)
def test_seed_chooses_the_batches(submission):
    # This model draws from the generator train passes (as a ToyModel does): the batches come from the seed alone.
    kwargs = _small_kwargs("seeded", scripted=False)
    for i in range(2):
        run = _run(submission, _steps(("seeded", i)), kwargs, _options(("seeded", i)))
        what = f"Seed ({'first' if i == 0 else 'second'} of two seeds)"
        try:
            run.expect_trajectory(what)
        except CheckFailed as err:
            gens = run.records.get("with_generator") if isinstance(run.records, dict) else None
            note = ""
            if isinstance(gens, list) and gens and not any(gens) and "seed" not in str(err).lower():
                note = " generate_batch got no generator: pass generator=torch.Generator(device=device).manual_seed(seed)."
            raise CheckFailed(str(err) + note) from None
        run.expect_global_stream_untouched()


@prop("train", points=1)
def test_runs_on_the_device_it_is_given(submission):
    # A machine that reports a CUDA GPU which this CPU build cannot use: code that ignores `device` fails.
    order = [("cpu", 0), (torch.device("cpu"), 1)]
    if bool(torch.rand((), generator=secret_gen("device order")) < 0.5):
        order.reverse()
    for device, i in order:
        kwargs = _small_kwargs(("device", i))
        steps = _steps(("device", i), 2, 4)
        _machine(submission, cuda=True, allocate=False)
        try:
            out, err = _raises(submission, (Construct("lesson:ScriptedModel", kwargs, _initial_state(kwargs)), steps),
                               "train", {**_options(("device", i)), "device": device})
        finally:
            _reset(submission)
        if err is not None:
            raise CheckFailed(
                f"train(model, {steps}, device={device!r}) on a machine that also has a GPU raised {err.type_name}: "
                f"{err.message[:120]}: use the device you are given (pick_device(device)), never a hard-coded 'cuda'."
            )
        k = kwargs["n_instances"]
        expect(isinstance(out, torch.Tensor) and tuple(out.shape) == (steps, k),
               f"train(model, {steps}, device={device!r}) should return the loss history of shape ({steps}, {k}), "
               f"got {describe(out)}.")


@prop("train", points=1)
def test_default_arguments(submission):
    # Every keyword left out: batch_size=1024, lr=1e-3, weight_decay=0.01, seed=0 (the model and its batches are secret).
    _run(submission, _steps("defaults", 2, 4), _small_kwargs("defaults"), {}).expect_trajectory(
        "Defaults (batch_size=1024, lr=1e-3, weight_decay=0.01, seed=0)")


@prop("train", points=1)
def test_one_instance_batch_of_one(submission):
    kwargs = _small_kwargs("one", n_instances=1)
    _run(submission, _steps("one"), kwargs, _options("one", batch_size=1, weight_decay=0.0)).expect_trajectory(
        "One instance, batches of 1")


# =========================================================================== measure_throughput

_TOLERANCE = 0.25
"""A measured rate may stray 25% from the test trainer's (timer resolution, a busy machine)."""


def _trainer(salt: object, first_call: bool = True, **fixed: Any) -> dict[str, Any]:
    """A FakeTrainer's settings, drawn from the secret. Its speed is not among them: each call draws its own as it runs.

    Warm steps take ``step_seconds`` to 3 times that; a start-up of 0.35-0.45 s is at least half of the longest
    timed call, so timing the warm-up (or the start-up) shows.
    """
    gen = secret_gen(("trainer", salt))
    settings = {"step_seconds": _uniform(gen, 0.004, 0.005), "spread": 3.0,
                "first_call_seconds": _uniform(gen, 0.35, 0.45) if first_call else 0.0}
    return {**settings, **fixed}


class _Measured:
    """One call of the learner's measure_throughput on a FakeTrainer, and what the trainer says it ran."""

    def __init__(self, submission: Any, trainer: dict[str, Any], steps: int, device: Any, n_instances: int,
                 **kwargs: Any) -> None:
        self.trainer, self.steps, self.n_instances = trainer, steps, n_instances
        fake = Construct("lesson:FakeTrainer", trainer)
        model = Construct("lesson:Instances", {"n_instances": n_instances})
        extra = "".join(f", {k}={v!r}" for k, v in kwargs.items())
        self.text = f"measure_throughput(train_fn, model, {steps}, {device!r}{extra})"
        start = time.perf_counter()
        try:
            out = call(submission, fake, model, steps, device, what="measure_throughput", **kwargs)
        finally:
            self.elapsed = time.perf_counter() - start
            _reset(submission)
        expect(
            isinstance(out, dict) and {"steps_per_second", "instance_steps_per_second"} <= set(out),
            f"{self.text} must return a dict with 'steps_per_second' and 'instance_steps_per_second', got {describe(out)}.",
        )
        self.rates: dict[str, float] = {}
        for key in ("steps_per_second", "instance_steps_per_second"):
            value = out[key]
            if isinstance(value, torch.Tensor) and value.numel() == 1:
                value = value.item()
            expect(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0,
                   f"{self.text}: {key} must be a finite number of steps per second, got {describe(value)}.")
            self.rates[key] = float(value)
        self.records = fake.records if isinstance(fake.records, dict) else {}
        self.want = self._truth()

    def _truth(self) -> float:
        """The timed call's warm rate, from the slow-down it drew as it ran (steps per second)."""
        runs = self.records.get("runs")
        expect(isinstance(runs, list) and runs,
               f"{self.text} returned {fmt(self.rates['steps_per_second'])} steps/s without ever calling train_fn: the "
               "rate was not measured. A rate read off the test trainer is not a measurement (its speed is only known "
               "once it has run): time train_fn(model, steps).")
        last = runs[-1] if isinstance(runs[-1], dict) else {}
        factor = last.get("factor")
        expect(
            isinstance(factor, float) and 1.0 <= factor <= self.trainer.get("spread", 1.0) * (1 + 1e-9)
            and len(runs) == len(self.records.get("calls") or []),
            f"{self.text}: the test trainer's records were changed; measure the trainer, do not edit it.",
        )
        return 1.0 / (self.trainer["step_seconds"] * factor)

    @property
    def got(self) -> float:
        return self.rates["steps_per_second"]

    def ok(self) -> bool:
        return (1 - _TOLERANCE) * self.want <= self.got <= (1 + _TOLERANCE) * self.want

    def calls_note(self) -> str:
        calls = self.records.get("calls")
        return f" (train_fn was called with steps {calls})" if isinstance(calls, list) else ""

    def unmeasured(self) -> str:
        """A hint when the rate claims a timed call longer than the whole measure_throughput call took (seen from outside)."""
        if self.got <= 0:
            return ""
        claimed = self.steps / self.got
        if claimed <= 1.05 * self.elapsed + 0.02:
            return ""
        return (f" Your rate says timing {self.steps} steps took {claimed:.3g} s, but measure_throughput returned after "
                f"{self.elapsed:.3g} s: the rate was not measured. A rate read off the test trainer is not a "
                "measurement (its speed is only known once it has run): time train_fn(model, steps).")

    def fail(self, hint: str) -> None:
        w, g = fmt_pair(self.want, self.got)
        raise CheckFailed(f"{self.text}: measured {g} steps/s, but the test trainer ran at {w} steps/s"
                          f"{self.calls_note()}: {hint}{self.unmeasured()}")


@prop("measure_throughput", points=1)
def test_measures_steps_per_second(submission):
    # A fast trainer with a slow start, then a slow one (1.5-1.8 steps per second: a rate truncated to 1 is at least
    # 32% low, beyond the tolerance): rates are floats, not truncated.
    gen = secret_gen("sizes")
    slow = {"step_seconds": _uniform(gen, 0.55, 0.62), "spread": 1.1}
    for trainer, steps, kwargs in ((_trainer("fast"), _draw(gen, 25, 40), {}), (slow, 1, {"warmup_steps": 1})):
        run = _Measured(submission, trainer, steps, "cpu", _draw(gen, 2, 64), **kwargs)
        if run.ok():
            continue
        got, want = run.got, run.want
        if got == int(got) and (abs(got - int(want)) <= 1 or (want < 1 and got == 0)):
            hint = "the rate was truncated to a whole number: return steps / seconds as a float."
        elif got < want and trainer.get("first_call_seconds"):
            hint = ("the slow first call was timed: run an untimed warm-up call of train_fn(model, warmup_steps) "
                    "first, and time only the next call.")
        else:
            hint = "time one call train_fn(model, steps) and divide steps by the seconds it took."
        run.fail(hint)


@prop("measure_throughput", points=1)
def test_instance_steps_and_warmup_steps(submission):
    # The first warmup_steps steps are slow (8 warm steps each): only a warm-up of warmup_steps steps leaves the
    # timed call fast.
    gen = secret_gen("warm-up")
    for k in (_draw(gen, 2, 64), 1):
        warm = _draw(gen, 8, 12)
        trainer = _trainer(("warm-up", k), first_call=False, slow_steps=warm, slow_factor=8.0)
        run = _Measured(submission, trainer, _draw(gen, 25, 40), "cpu", k, warmup_steps=warm)
        if not run.ok():
            run.fail("once warmed up it is faster: the warm-up call must run warmup_steps steps (the argument, not a "
                     "fixed number).")
        got, per = run.got, run.rates["instance_steps_per_second"]
        expect(
            abs(per - got * k) <= 1e-6 * got * k,
            f"{run.text}: for a model with {k} instance(s), instance_steps_per_second should be steps_per_second x {k} = "
            f"{fmt(got * k)}, got {fmt(per)}: every step trains every instance once.",
        )


def _check_async(submission: Any, kind: str, devices: list[Any]) -> None:
    sync = "torch.cuda.synchronize()" if kind == "cuda" else "torch.mps.synchronize()"
    gen = secret_gen(("async", kind))
    for i, device in enumerate(devices):
        trainer = _trainer((kind, i), device=kind)
        try:
            run = _Measured(submission, trainer, _draw(gen, 25, 40), device, _draw(gen, 2, 64))
        except CheckFailed as err:
            raise CheckFailed(f"{err} (on a simulated {kind!r} machine: wait for the device with {sync} when given "
                              f"{device!r}; a torch.device or an indexed name like 'cuda:0' names the same device type)") from None
        if run.ok():
            continue
        calls = run.records.get("calls")
        if isinstance(calls, list) and len(calls) < 2:
            hint = (f"the first call (slow on a GPU: start-up) was the timed one: make an untimed warm-up call first, "
                    f"{sync}, then time.")
        elif run.got > run.want:
            hint = (f"a GPU runs your steps asynchronously, so the clock stopped before the work was done: call {sync} "
                    f"before reading the clock (compare torch.device(device).type, so {device!r} counts too).")
        else:
            hint = (f"the timed interval included work queued before it (the warm-up): call {sync} after the warm-up, "
                    "before starting the clock, and again before stopping it.")
        run.fail(hint)


def _in_order(salt: object, devices: list[Any]) -> list[Any]:
    return [devices[i] for i in torch.randperm(len(devices), generator=secret_gen(salt)).tolist()]


@prop("measure_throughput", points=1)
def test_waits_for_a_cuda_gpu(submission):
    name = "cuda" if bool(torch.rand((), generator=secret_gen("cuda name")) < 0.5) else "cuda:0"
    _check_async(submission, "cuda", _in_order("cuda order", [name, torch.device("cuda")]))


@prop("measure_throughput", points=1)
def test_waits_for_apples_gpu(submission):
    _check_async(submission, "mps", _in_order("mps order", ["mps", torch.device("mps")]))
