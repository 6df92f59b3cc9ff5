"""Lesson 2's checks bite: the solution and correct alternatives keep full marks, and plausible wrong
implementations (the check module's mistake tables plus a few written here) lose points with a message
that names the mistake.

Every implementation is served to the checks over the in-process loopback channel, with the same
encoding as the sandboxed worker: the model, the schedule and the trainer the checks hand over are
built "in the worker" from plain data, as in grading.
"""

from __future__ import annotations

import itertools
import linecache

import pytest
import torch
import torch.optim.optimizer as _optimizer_module

from autograder import run_exercise
from autograder.checks import lesson02 as checks
from autograder.exercises import lessons
from autograder.toolkit import Mistake
from autograder.toolkit.testing import assert_full_marks, assert_rejected, grade, messages
from lesson_tools import solution_namespace

LESSON = "02-training-many-models"
EXERCISES = ("lr_factor", "pick_device", "train", "measure_throughput")

_count = itertools.count()


def _define(name: str, source: str):
    """Run ``source`` in a copy of the solution notebook's namespace and return ``name`` (registered with linecache, like a cell)."""
    filename = f"<implementation {next(_count)} of {name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    ns = dict(solution_namespace(LESSON))
    exec(compile(source, filename, "exec"), ns)
    return ns[name]


def _verdict(name: str, impl):
    return run_exercise(f"02.{name}", impl)


# --------------------------------------------------------------------------- the reference and the stubs


def test_registry_lists_the_exercises():
    assert [ex.name for ex in lessons()[LESSON]] == list(EXERCISES)


@pytest.mark.parametrize("name", EXERCISES)
def test_solution_keeps_full_marks(name):
    assert_full_marks(f"02.{name}", solution_namespace(LESSON)[name])


@pytest.mark.parametrize("name", EXERCISES)
def test_stub_scores_zero_and_says_so(name):
    stub = _define(name, f"def {name}(*args, **kwargs):\n    # YOUR CODE HERE\n    raise NotImplementedError()")
    verdict = _verdict(name, stub)
    assert verdict.points == 0, verdict.report()
    assert all("not implemented" in p.message for p in verdict.properties), verdict.report()


# --------------------------------------------------------------------------- wrong implementations

EXTRA_MISTAKES = {
    "lr_factor": [
        Mistake("key_error", _define("lr_factor", (
            "def lr_factor(schedule, step, steps):\n"
            "    table = {'constant': lambda: 1.0, 'linear': lambda: 1 - step / steps,\n"
            "             'cosine': lambda: 0.5 * (1 + math.cos(math.pi * step / steps))}\n"
            "    return table[schedule]()")), "promises a ValueError", compare=False),
        Mistake("falls_back_to_constant", _define("lr_factor", (
            "def lr_factor(schedule, step, steps):\n"
            "    if schedule == 'linear':\n        return 1 - step / steps\n"
            "    if schedule == 'cosine':\n        return 0.5 * (1 + math.cos(math.pi * step / steps))\n"
            "    return 1.0")), "must raise a ValueError", compare=False),
        Mistake("case_insensitive", _define("lr_factor", (
            "def lr_factor(schedule, step, steps):\n"
            "    schedule = schedule.lower()\n"
            "    if schedule == 'constant':\n        return 1.0\n"
            "    if schedule == 'linear':\n        return 1 - step / steps\n"
            "    if schedule == 'cosine':\n        return 0.5 * (1 + math.cos(math.pi * step / steps))\n"
            "    raise ValueError(schedule)")), "must raise a ValueError", compare=False),
        Mistake("linear_never_ends", _define("lr_factor", (
            "def lr_factor(schedule, step, steps):\n"
            "    if schedule == 'constant':\n        return 1.0\n"
            "    if schedule == 'linear':\n        return 1 - 0.9 * step / steps\n"
            "    if schedule == 'cosine':\n        return 0.5 * (1 + math.cos(math.pi * step / steps))\n"
            "    raise ValueError(schedule)")), "1 - step/steps", compare=False),
        Mistake("rounded", _define("lr_factor", (
            "def lr_factor(schedule, step, steps):\n"
            "    if schedule == 'constant':\n        return 1.0\n"
            "    if schedule == 'linear':\n        return round(1 - step / steps, 2)\n"
            "    if schedule == 'cosine':\n        return round(0.5 * (1 + math.cos(math.pi * step / steps)), 2)\n"
            "    raise ValueError(schedule)")), "check the formula", compare=False),
    ],
    "train": [
        Mistake("calls_the_reference", _define("train", (
            "def train(model, steps, batch_size=1024, lr=1e-3, weight_decay=0.01, lr_schedule=None, device=None, seed=0):\n"
            "    return supercourse.train(model, steps, batch_size=batch_size, lr=lr, device=device, seed=seed).losses")),
            "implement this yourself", compare=False),
    ],
}

CASES = [(ex, m) for ex, table in checks.MISTAKES.items() for m in table]
CASES += [(ex, m) for ex, table in EXTRA_MISTAKES.items() for m in table]


@pytest.mark.parametrize("exercise,mistake", CASES, ids=[f"{ex}-{m.name}" for ex, m in CASES])
def test_mistake_loses_points_with_a_message_naming_it(exercise, mistake):
    assert_rejected(f"02.{exercise}", mistake)


def test_every_exercise_has_at_least_eight_wrong_implementations():
    counts = {name: 0 for name in EXERCISES}
    for name, _ in CASES:
        counts[name] += 1
    assert all(n >= 8 for n in counts.values()), counts


def test_mistake_hints_name_their_keyword():
    for table in checks.MISTAKES.values():
        for m in table:
            assert not m.compare or m.keyword.lower() in m.hint.lower(), m.name


def test_partial_credit_is_partial():
    """One mistake costs the properties it breaks, not the whole exercise."""
    table = {m.name: m for m in checks.TRAIN_MISTAKES}
    for name in ("mean_over_instances", "schedule_off_by_one", "logged_after_update"):
        verdict = grade("02.train", table[name].implementation)
        assert 0 < verdict.points < verdict.max_points, f"{name}:\n{verdict.report()}"


def test_diagnosis_names_the_mistake_it_replays():
    """The train diagnosis replays the table: averaging over instances is named as such, not as a generic mismatch."""
    table = {m.name: m for m in checks.TRAIN_MISTAKES}
    for name in ("mean_over_instances", "optimizer_in_loop"):
        text = messages(grade("02.train", table[name].implementation))
        assert table[name].hint.lower() in text.lower(), f"{name}: {text}"


# --------------------------------------------------------------------------- correct alternatives

CORRECT = {
    "lr_factor": [
        # float32 torch arithmetic: "should be 0.0495156, got 0.0495156" must not happen any more
        ("def lr_factor(schedule, step, steps):\n"
         "    t = torch.tensor(step / steps, dtype=torch.float32)\n"
         "    if schedule == 'constant':\n        return 1.0\n"
         "    if schedule == 'linear':\n        return float(1 - t)\n"
         "    if schedule == 'cosine':\n        return float((1 + torch.cos(torch.pi * t)) / 2)\n"
         "    raise ValueError(f'unknown schedule {schedule!r}')"),
        ("def lr_factor(schedule, step, steps):\n"
         "    table = {'constant': lambda f: 1.0, 'linear': lambda f: 1.0 - f,\n"
         "             'cosine': lambda f: math.cos(math.pi * f / 2) ** 2}\n"
         "    if schedule not in table:\n        raise ValueError(schedule)\n"
         "    return table[schedule](step / steps)"),
        ("def lr_factor(schedule, step, steps):\n"
         "    match schedule:\n"
         "        case 'constant':\n            return 1\n"
         "        case 'linear':\n            return (steps - step) / steps\n"
         "        case 'cosine':\n            return 0.5 + 0.5 * math.cos(step * math.pi / steps)\n"
         "    raise ValueError('no such schedule: ' + schedule)"),
    ],
    "pick_device": [
        # validates by allocating a tensor on the device
        ("def pick_device(preferred=None):\n"
         "    if preferred is None:\n"
         "        for name, ok in (('cuda', torch.cuda.is_available()), ('mps', torch.backends.mps.is_available())):\n"
         "            if ok:\n                return torch.device(name)\n"
         "        return torch.device('cpu')\n"
         "    device = torch.device(preferred)\n"
         "    try:\n        torch.zeros(1, device=device)\n"
         "    except Exception as err:\n"
         "        raise ValueError(f'device {preferred!r} is not available: {err}') from err\n"
         "    return device"),
        # torch.accelerator
        ("def pick_device(preferred=None):\n"
         "    if preferred is not None:\n"
         "        device = torch.device(preferred)\n"
         "        if device.type != 'cpu':\n"
         "            acc = torch.accelerator.current_accelerator() if torch.accelerator.is_available() else None\n"
         "            if acc is None or acc.type != device.type:\n"
         "                raise ValueError(f'{device} is not available')\n"
         "        return device\n"
         "    acc = torch.accelerator.current_accelerator() if torch.accelerator.is_available() else None\n"
         "    return torch.device(acc.type) if acc is not None else torch.device('cpu')"),
        # string work, then one torch.device, with tensor.to as validation
        ("def pick_device(preferred=None):\n"
         "    if preferred is None:\n"
         "        name = 'cuda' if torch.cuda.is_available() else ('mps' if torch.backends.mps.is_available() else 'cpu')\n"
         "        return torch.device(name)\n"
         "    kind = str(preferred).split(':')[0]\n"
         "    available = {'cpu': True, 'cuda': torch.cuda.is_available(), 'mps': torch.backends.mps.is_available()}\n"
         "    if not available.get(kind, True):\n        raise ValueError(f'{preferred} is not available here')\n"
         "    torch.empty(0).to(preferred)\n"
         "    return torch.device(preferred)"),
    ],
    "train": [
        # manual loss, a list of losses stacked at the end, LambdaLR for the schedule
        ("def train(model, steps, batch_size=1024, lr=1e-3, weight_decay=0.01, lr_schedule=None, device=None, seed=0):\n"
         "    device = pick_device(device)\n"
         "    model = model.to(device)\n"
         "    gen = torch.Generator(device=device)\n"
         "    gen.manual_seed(seed)\n"
         "    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)\n"
         "    sched = None if lr_schedule is None else torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_schedule(s, steps))\n"
         "    history = []\n"
         "    for _ in range(steps):\n"
         "        x = model.generate_batch(batch_size, generator=gen)\n"
         "        x_hat = model(x)\n"
         "        per = (model.importance * (x - x_hat) ** 2).mean(dim=(0, 2))\n"
         "        opt.zero_grad(set_to_none=False)\n"
         "        per.sum().backward()\n"
         "        opt.step()\n"
         "        if sched is not None:\n            sched.step()\n"
         "        history.append(per.detach().cpu())\n"
         "    return torch.stack(history)"),
        # model.loss, lr set through param_groups[0], float64 copy of the history
        ("def train(model, steps, batch_size=1024, lr=1e-3, weight_decay=0.01, lr_schedule=None, device=None, seed=0):\n"
         "    device = pick_device(device)\n"
         "    model.to(device)\n"
         "    generator = torch.Generator(device).manual_seed(seed)\n"
         "    optimizer = torch.optim.AdamW(params=list(model.parameters()), lr=lr, weight_decay=weight_decay)\n"
         "    losses = torch.zeros(steps, model.n_instances, dtype=torch.float64)\n"
         "    for step in range(steps):\n"
         "        optimizer.param_groups[0]['lr'] = lr if lr_schedule is None else lr * lr_schedule(step, steps)\n"
         "        optimizer.zero_grad()\n"
         "        x = model.generate_batch(batch_size, generator=generator)\n"
         "        x_hat = model(x)\n"
         "        model.loss(x, x_hat).backward()\n"
         "        optimizer.step()\n"
         "        with torch.no_grad():\n"
         "            losses[step] = model.per_instance_loss(x, x_hat).double().cpu()\n"
         "    return losses"),
        # torch.device from the argument by hand, loss computed per instance in a loop
        ("def train(model, steps, batch_size=1024, lr=1e-3, weight_decay=0.01, lr_schedule=None, device=None, seed=0):\n"
         "    device = torch.device(device) if device is not None else pick_device()\n"
         "    model.to(device)\n"
         "    rng = torch.Generator(device=device).manual_seed(seed)\n"
         "    adamw = torch.optim.AdamW(model.parameters(), lr, weight_decay=weight_decay)\n"
         "    out = torch.empty(steps, model.n_instances)\n"
         "    for s in range(steps):\n"
         "        for g in adamw.param_groups:\n"
         "            g['lr'] = lr * (lr_schedule(s, steps) if lr_schedule else 1.0)\n"
         "        x = model.generate_batch(batch_size, rng)\n"
         "        x_hat = model(x)\n"
         "        per = torch.stack([model.per_instance_loss(x, x_hat)[k] for k in range(model.n_instances)])\n"
         "        loss = sum(per[k] for k in range(model.n_instances))\n"
         "        adamw.zero_grad()\n"
         "        loss.backward()\n"
         "        adamw.step()\n"
         "        out[s] = per.detach().to('cpu')\n"
         "    return out"),
    ],
    "measure_throughput": [
        # CUDA events on a GPU, perf_counter elsewhere
        ("def measure_throughput(train_fn, model, steps, device, warmup_steps=5):\n"
         "    device = torch.device(device)\n"
         "    def sync():\n"
         "        if device.type == 'cuda':\n            torch.cuda.synchronize()\n"
         "        elif device.type == 'mps':\n            torch.mps.synchronize()\n"
         "    train_fn(model, warmup_steps)\n"
         "    sync()\n"
         "    if device.type == 'cuda':\n"
         "        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)\n"
         "        start.record()\n"
         "        train_fn(model, steps)\n"
         "        end.record()\n"
         "        torch.cuda.synchronize()\n"
         "        seconds = start.elapsed_time(end) / 1000\n"
         "    else:\n"
         "        t0 = time.perf_counter()\n"
         "        train_fn(model, steps)\n"
         "        sync()\n"
         "        seconds = time.perf_counter() - t0\n"
         "    rate = steps / seconds\n"
         "    return {'steps_per_second': rate, 'instance_steps_per_second': rate * model.n_instances}"),
        # torch.accelerator.synchronize for any accelerator, time.monotonic, string prefixes
        ("def measure_throughput(train_fn, model, steps, device, warmup_steps=5):\n"
         "    on_gpu = str(device).split(':')[0] in ('cuda', 'mps')\n"
         "    train_fn(model, warmup_steps)\n"
         "    if on_gpu:\n        torch.accelerator.synchronize()\n"
         "    t0 = time.monotonic()\n"
         "    train_fn(model, steps)\n"
         "    if on_gpu:\n        torch.accelerator.synchronize()\n"
         "    elapsed = time.monotonic() - t0\n"
         "    return dict(steps_per_second=steps / elapsed, instance_steps_per_second=steps * model.n_instances / elapsed)"),
        # nanoseconds, numpy floats
        ("import numpy as np\n"
         "def measure_throughput(train_fn, model, steps, device, warmup_steps=5):\n"
         "    kind = torch.device(device).type\n"
         "    wait = {'cuda': torch.cuda.synchronize, 'mps': torch.mps.synchronize}.get(kind, lambda: None)\n"
         "    train_fn(model, warmup_steps)\n"
         "    wait()\n"
         "    t0 = time.perf_counter_ns()\n"
         "    train_fn(model, steps)\n"
         "    wait()\n"
         "    seconds = np.float64(time.perf_counter_ns() - t0) / 1e9\n"
         "    sps = steps / seconds\n"
         "    return {'steps_per_second': float(sps), 'instance_steps_per_second': float(sps * model.n_instances)}"),
    ],
}

ALTERNATIVES = [(ex, i) for ex, sources in CORRECT.items() for i in range(len(sources))]


@pytest.mark.parametrize("exercise,index", ALTERNATIVES, ids=[f"{ex}-{i}" for ex, i in ALTERNATIVES])
def test_correct_alternative_keeps_full_marks(exercise, index):
    assert_full_marks(f"02.{exercise}", _define(exercise, CORRECT[exercise][index]))


def test_every_exercise_has_three_correct_alternatives():
    assert all(len(CORRECT[name]) >= 3 for name in EXERCISES)


# --------------------------------------------------------------------------- isolation


def test_checks_leave_torch_as_they_found_it():
    def state():
        return (torch.cuda.is_available, torch.cuda.device_count, torch.cuda.synchronize, torch.cuda.Event,
                torch.backends.mps.is_available, torch.backends.mps.is_built, torch.mps.synchronize,
                torch.accelerator.is_available, torch.accelerator.current_accelerator, torch.accelerator.synchronize,
                torch.get_num_threads(), torch._C._len_torch_function_stack(),
                len(_optimizer_module._global_optimizer_pre_hooks))

    before, rng = state(), torch.random.get_rng_state()
    for name in EXERCISES:
        _verdict(name, solution_namespace(LESSON)[name])
    # a learner's error half-way through a simulation must not leave it behind either
    _verdict("pick_device", _define("pick_device", "def pick_device(preferred=None):\n    raise KeyError('boom')"))
    _verdict("train", checks.TRAIN_MISTAKES[-1].implementation)
    assert state() == before
    assert torch.equal(torch.random.get_rng_state(), rng), "a check changed the learner's global random state"
