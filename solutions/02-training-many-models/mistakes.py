"""Lesson 2's mistake table: wrong implementations learners plausibly write, and the words that name them.

``lr_factor`` and ``train`` diagnose with their tables (the check replays each ``compare=True`` mistake on
the learner's inputs and names the one that gives the learner's answer); the others are caught by their
properties' own words (``compare=False``). The lesson proof requires that every entry loses points with a
message containing its keyword.

Most wrong implementations are the solution with one edit (:func:`train_variant`, :func:`pick_variant`,
:func:`measure_variant`), so each differs from correct code in exactly the way its name says.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import torch

import supercourse
from autograder.toolkit import Mistake


def _defined(source: str, name: str) -> Callable[..., Any]:
    """The function ``name`` defined by ``source`` (with ``torch``, ``math``, ``time`` and ``supercourse`` imported)."""
    ns: dict[str, Any] = {"torch": torch, "math": math, "time": time, "supercourse": supercourse}
    exec(compile(source, f"<mistake {name}>", "exec"), ns)  # noqa: S102 - the course's own code
    return ns[name]


def _variant(source: str, name: str, edits: tuple[tuple[str, str], ...]) -> Callable[..., Any]:
    for old, new in edits:
        if old not in source:
            raise ValueError(f"edit does not apply: {old!r}")
        source = source.replace(old, new, 1)
    return _defined(source, name)


# =========================================================================== lr_factor

_FACTORS = {
    "constant": lambda step, steps: 1.0,
    "linear": lambda step, steps: 1.0 - step / steps,
    "cosine": lambda step, steps: 0.5 * (1.0 + math.cos(math.pi * step / steps)),
}


def _schedule(name: str, **formulas: Callable[[int, int], float]) -> Callable[[str, int, int], float]:
    """An ``lr_factor`` that raises ValueError for unknown names, with some formulas replaced."""
    table = {**_FACTORS, **formulas}

    def lr_factor(schedule: str, step: int, steps: int) -> float:
        if schedule not in table:
            raise ValueError(f"unknown schedule {schedule!r}")
        return table[schedule](step, steps)

    lr_factor.__qualname__ = f"lr_factor<{name}>"
    return lr_factor


def _everywhere(change: Callable[[Callable[[int, int], float]], Callable[[int, int], float]]) -> dict[str, Any]:
    return {name: change(f) for name, f in _FACTORS.items()}


LR_MISTAKES = [
    Mistake("shifted", _schedule("shifted", **_everywhere(lambda f: lambda k, n: f(k + 1, n))), "shifted by one step",
            "it is shifted by one step: steps count from 0, and step 0 must give factor 1."),
    Mistake("ends_at_last_step", _schedule("ends_at_last_step", **_everywhere(
        lambda f: lambda k, n: f(k * n / (n - 1), n) if n > 1 else 1.0)), "reaches 0 at the last step",
        "your schedule reaches 0 at the last step, which then updates nothing; the end value belongs to "
        "step = steps, one past the last step."),
    Mistake("ignores_step", _schedule("ignores_step", linear=lambda k, n: 1.0, cosine=lambda k, n: 1.0), "ignore `step`",
            "the factor must change with the step (did you return 1, ignore `step`, or use integer division "
            "`step // steps`, which is 0 before the end?)."),
    Mistake("integer_division", _schedule("integer_division", **_everywhere(lambda f: lambda k, n: f(k // n, n))),
            "integer division", "`step // steps` is integer division (always 0 here): divide with `/`."),
    Mistake("full_period", _schedule("full_period", cosine=lambda k, n: 0.5 * (1 + math.cos(2 * math.pi * k / n))),
            "half a period", "the cosine must fall over half a period: cos(pi * step/steps), not 2 pi."),
    Mistake("no_half", _schedule("no_half", cosine=lambda k, n: 1 + math.cos(math.pi * k / n)),
            "divide by 2", "(1 + cos) runs from 2 to 0: divide by 2 so it starts at 1."),
    Mistake("degrees", _schedule("degrees", cosine=lambda k, n: 0.5 * (1 + math.cos(180 * k / n))),
            "radians", "math.cos takes radians: use math.pi, not 180."),
    Mistake("linear_never_ends", _schedule("linear_never_ends", linear=lambda k, n: 1 - 0.9 * k / n),
            "1 - step/steps", compare=False),
    Mistake("rounded", _schedule("rounded", linear=lambda k, n: round(1 - k / n, 2),
                                 cosine=lambda k, n: round(0.5 * (1 + math.cos(math.pi * k / n)), 2)),
            "check the formula", compare=False),
    Mistake("key_error", _defined(
        "def lr_factor(schedule, step, steps):\n"
        "    table = {'constant': lambda: 1.0, 'linear': lambda: 1 - step / steps,\n"
        "             'cosine': lambda: 0.5 * (1 + math.cos(math.pi * step / steps))}\n"
        "    return table[schedule]()", "lr_factor"), "promises a ValueError", compare=False),
    Mistake("falls_back_to_constant", _defined(
        "def lr_factor(schedule, step, steps):\n"
        "    if schedule == 'linear':\n        return 1 - step / steps\n"
        "    if schedule == 'cosine':\n        return 0.5 * (1 + math.cos(math.pi * step / steps))\n"
        "    return 1.0", "lr_factor"), "must raise a ValueError", compare=False),
    Mistake("case_insensitive", _defined(
        "def lr_factor(schedule, step, steps):\n"
        "    schedule = schedule.lower().strip()\n"
        "    if schedule == 'constant':\n        return 1.0\n"
        "    if schedule == 'linear':\n        return 1 - step / steps\n"
        "    if schedule == 'cosine':\n        return 0.5 * (1 + math.cos(math.pi * step / steps))\n"
        "    raise ValueError(schedule)", "lr_factor"), "must raise a ValueError", compare=False),
    Mistake("prefix_match", _defined(
        "def lr_factor(schedule, step, steps):\n"
        "    if schedule.startswith('cos'):\n        return 0.5 * (1 + math.cos(math.pi * step / steps))\n"
        "    if schedule.startswith('lin'):\n        return 1 - step / steps\n"
        "    if schedule.startswith('const'):\n        return 1.0\n"
        "    raise ValueError(schedule)", "lr_factor"), "must raise a ValueError", compare=False),
]

# =========================================================================== pick_device

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
    return _variant(_PICK, "pick_device", edits)


_CUDA_FIRST = '    if torch.cuda.is_available():\n        return torch.device("cuda")\n'
_NOT_AVAILABLE = '            raise ValueError(f"{preferred!r} is not available")\n'
PICK_MISTAKES = [
    Mistake("hard_coded_cuda", _defined('def pick_device(preferred=None):\n    return torch.device(preferred or "cuda")',
                                        "pick_device"), "instead of assuming a GPU", compare=False),
    Mistake("mps_before_cuda", pick_variant((_CUDA_FIRST, ""), ('    return torch.device("cpu")', _CUDA_FIRST + '    return torch.device("cpu")')),
            "a CUDA GPU comes first", compare=False),
    Mistake("explicit_ignored", pick_variant(("if preferred is not None:", "if False:")), "explicitly wins", compare=False),
    Mistake("returns_string", _defined(
        'def pick_device(preferred=None):\n    if preferred is not None:\n        return str(preferred)\n'
        '    return "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"',
        "pick_device"), "must return a torch.device", compare=False),
    Mistake("never_validates", pick_variant((_NOT_AVAILABLE, "            pass\n"), (_NOT_AVAILABLE, "            pass\n")),
            "raise a ValueError", compare=False),
    Mistake("mps_is_built", pick_variant(("if torch.backends.mps.is_available():\n        return",
                                          "if torch.backends.mps.is_built():\n        return")), "is_built", compare=False),
    Mistake("cuda_is_built", pick_variant(("    if torch.cuda.is_available():\n        return",
                                           "    if torch.backends.cuda.is_built():\n        return")), "is_built", compare=False),
    Mistake("runtime_error", pick_variant(('raise ValueError(f"{preferred!r} is not available")',
                                           'raise RuntimeError(f"{preferred!r} is not available")')),
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

# =========================================================================== train

TRAIN_SOURCE = '''
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
"""A correct ``train`` (the solution, with the device resolved by hand): the base of every train variant."""


def train_variant(*edits: tuple[str, str]) -> Callable[..., torch.Tensor]:
    """A ``train`` written like the solution, with each ``(old, new)`` edit applied."""
    return _variant(TRAIN_SOURCE, "train", edits)


_LOOP = "    for step in range(steps):\n"
_SET_LR = ("        factor = 1.0 if lr_schedule is None else lr_schedule(step, steps)\n"
           "        for group in optimizer.param_groups:\n"
           '            group["lr"] = lr * factor\n')
_DRAW = "        x = model.generate_batch(batch_size, generator=generator)\n"
_MAKE_GEN = "    generator = torch.Generator(device=device).manual_seed(seed)\n"
_MAKE_OPT = "    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)\n"
_LOG = "losses[step] = per_instance.detach()"
_DEVICE = 'device = torch.device("cpu" if device is None else device)'

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
    Mistake("mean_logged", train_variant((_LOG, "losses[step] = per_instance.detach().mean()")),
            "each instance's own loss", "every column holds the mean over instances: store each instance's own loss, per_instance_loss(x, x_hat)."),
    Mistake("logged_after_update", train_variant((_LOG, "losses[step] = model.per_instance_loss(x, model(x)).detach()")),
            "before that step's update", "the history holds the loss after each update: store the loss computed before that step's update."),
    Mistake("clipped_over_all", train_variant(("per_instance.sum().backward()\n",
                                               "per_instance.sum().backward()\n        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)\n")),
            "mix instances", "nothing may mix instances, e.g. no gradient clipping over the whole model, no loss normalised by the total."),
    Mistake("normalised_by_the_batch", train_variant(("per_instance.sum().backward()",
                                                      "(per_instance.sum() / x.pow(2).mean()).backward()")),
            "statistic of the batch", "the objective was divided by a statistic of the batch (e.g. the mean square of x): "
            "minimise model.per_instance_loss(x, x_hat).sum() itself, so every step's gradient has the loss's own scale."),
    Mistake("wrong_defaults", train_variant(("lr=1e-3, weight_decay=0.01", "lr=1e-2, weight_decay=0.0")), "defaults",
            "check the defaults the docstring gives: batch_size=1024, lr=1e-3, weight_decay=0.01, seed=0."),
    # Caught by the properties' own words.
    Mistake("history_attached", train_variant((_LOG, "losses[step] = per_instance")), "attached to the autograd graph",
            compare=False),
    Mistake("history_list_attached", train_variant(("    losses = torch.empty(steps, model.n_instances, device=device)\n",
                                                    "    losses = []\n"),
                                                   (_LOG, "losses.append(per_instance)"),
                                                   ("return losses.cpu()", "return torch.stack(losses).cpu()")),
            "attached to the autograd graph", compare=False),
    Mistake("global_stream_seeded", train_variant((_MAKE_GEN, "    torch.manual_seed(seed)\n"),
                                                  ("generator=generator)", "generator=None)")),
            "global random", compare=False),
    Mistake("global_reseeded_from_generator", train_variant((_MAKE_GEN, _MAKE_GEN + "    torch.manual_seed(generator.initial_seed())\n")),
            "global random", compare=False),
    Mistake("squeezed", train_variant(("return losses.cpu()", "return losses.squeeze().cpu()")), "shape", compare=False),
    Mistake("hard_coded_cuda", train_variant((_DEVICE, 'device = torch.device("cuda")')), "device you are given", compare=False),
    Mistake("device_ignored", train_variant((_DEVICE, 'device = torch.device("cuda" if torch.cuda.is_available() else "cpu")')),
            "device you are given", compare=False),
    Mistake("calls_the_library", _defined(
        "def train(model, steps, batch_size=1024, lr=1e-3, weight_decay=0.01, lr_schedule=None, device=None, seed=0):\n"
        "    return supercourse.train(model, steps, batch_size=batch_size, lr=lr, device=device, seed=seed).losses",
        "train"), "implement this yourself", compare=False),
]

# =========================================================================== measure_throughput

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
    return _variant(_MEASURE, "measure_throughput", edits)


def reads_the_test_trainer(train_fn, model, steps, device, warmup_steps=5):
    """The attack of issue 16: the rate read off the test trainer the check hands over, nothing timed.

    Against a trainer that kept its speed in an attribute (``step_seconds``) this was the exact answer, at
    no cost. Every readable number of the trainer is tried, the per-step seconds first.
    """
    settings = vars(train_fn) if hasattr(train_fn, "__dict__") else {}
    numbers = [v for k, v in sorted(settings.items(), key=lambda kv: kv[0] != "step_seconds")
               if isinstance(v, float) and v > 0]
    rate = 1.0 / numbers[0] if numbers else 1000.0
    return {"steps_per_second": rate, "instance_steps_per_second": rate * model.n_instances}


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
    Mistake("reads_the_test_trainer", reads_the_test_trainer, "not measured", compare=False),
]

MISTAKES = {
    "lr_factor": LR_MISTAKES,
    "pick_device": PICK_MISTAKES,
    "train": TRAIN_MISTAKES,
    "measure_throughput": MEASURE_MISTAKES,
}
