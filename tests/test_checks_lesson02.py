"""Lesson 2's checks bite: the solution notebook's functions score full points, and plausible
wrong implementations (real learner mistakes) lose points with a message that names the mistake.

Most mutants are the solution cell's own source with one small edit (so they stay in step with
the reference); a few are written out in full.
"""

from __future__ import annotations

import itertools
import linecache
from functools import lru_cache

import nbformat
import pytest

from autograder import run_exercise
from autograder.exercises import lessons
from lesson_tools import is_solution_cell, solution_namespace, solution_path

LESSON = "02-training-many-models"
EXERCISES = ("lr_factor", "pick_device", "train", "measure_throughput")


@lru_cache(maxsize=None)
def _solution_source(name: str) -> str:
    nb = nbformat.read(solution_path(LESSON), as_version=4)
    for cell in nb.cells:
        if is_solution_cell(cell) and cell.metadata.nbgrader["grade_id"] == name:
            keep = [l for l in cell.source.splitlines() if l.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")]
            return "\n".join(keep)
    raise KeyError(f"no solution cell {name!r}")


_count = itertools.count()


def _define(name: str, source: str):
    """Run ``source`` in a copy of the solution notebook's namespace and return ``name``.

    Like a notebook cell, the source is registered with ``linecache``, so that
    ``inspect.getsource`` (which the autograder's ``forbid`` list uses) sees it.
    """
    filename = f"<mutant {next(_count)} of {name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    ns = dict(solution_namespace(LESSON))
    exec(compile(source, filename, "exec"), ns)
    return ns[name]


def _edited(name: str, *edits: tuple[str, str]):
    source = _solution_source(name)
    for old, new in edits:
        assert old in source, f"the mutant's edit no longer applies to the solution of {name}: {old!r}"
        source = source.replace(old, new, 1)
    return _define(name, source)


def _verdict(name: str, impl):
    return run_exercise(f"02.{name}", impl)


# --------------------------------------------------------------------------- the reference passes


def test_registry_lists_the_exercises():
    assert [ex.name for ex in lessons()[LESSON]] == list(EXERCISES)


@pytest.mark.parametrize("name", EXERCISES)
def test_stub_scores_zero_and_says_so(name):
    stub = _define(name, f"def {name}(*args, **kwargs):\n    # YOUR CODE HERE\n    raise NotImplementedError()")
    verdict = _verdict(name, stub)
    assert verdict.points == 0, verdict.report()
    assert all("not implemented" in p.message for p in verdict.properties), verdict.report()


# --------------------------------------------------------------------------- mutants


MUTANTS = {
    # ---- lr_factor
    "lr_factor: off by one": (
        "lr_factor",
        [("return 1.0 - step / steps", "return 1.0 - (step + 1) / steps")],
        "shifted by one step",
    ),
    "lr_factor: linear reaches 0 at the last step": (
        "lr_factor",
        [("return 1.0 - step / steps", "return 1.0 - step / max(steps - 1, 1)")],
        "reaches 0 at the last step",
    ),
    "lr_factor: linear never reaches its end value": (
        "lr_factor",
        [("return 1.0 - step / steps", "return 1.0 - 0.9 * step / steps")],
        "1 - step/steps",
    ),
    "lr_factor: cosine over a full period": (
        "lr_factor",
        [("math.cos(math.pi * step / steps)", "math.cos(2 * math.pi * step / steps)")],
        "(1 + cos(pi * step/steps)) / 2",
    ),
    "lr_factor: unknown name falls back to constant": (
        "lr_factor",
        [("raise ValueError(", "return 1.0\n    raise ValueError(")],
        "must raise a ValueError",
    ),
    # ---- pick_device
    "pick_device: hard-coded cuda": (
        "pick_device",
        'def pick_device(preferred=None):\n    return torch.device(preferred or "cuda")',
        "instead of assuming a GPU",
    ),
    "pick_device: mps before cuda": (
        "pick_device",
        [
            ('    if torch.cuda.is_available():\n        return torch.device("cuda")\n', ""),
            ('    return torch.device("cpu")', '    if torch.cuda.is_available():\n        return torch.device("cuda")\n    return torch.device("cpu")'),
        ],
        "a CUDA GPU comes first",
    ),
    "pick_device: ignores the explicit choice": (
        "pick_device",
        [("if preferred is not None:", "if False:")],
        "explicitly wins",
    ),
    "pick_device: returns a string": (
        "pick_device",
        'def pick_device(preferred=None):\n'
        '    if preferred is not None:\n        return str(preferred)\n'
        '    return "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"',
        "must return a torch.device",
    ),
    "pick_device: no check that the device exists": (
        "pick_device",
        [
            ('raise ValueError(f"device {preferred!r} was asked for, but torch finds no CUDA GPU here")', "pass"),
            ('raise ValueError(f"device {preferred!r} was asked for, but MPS is not available here")', "pass"),
        ],
        "raise a ValueError",
    ),
    # ---- train
    "train: loss averaged over instances": (
        "train",
        [("per_instance.sum().backward()", "per_instance.mean().backward()")],
        "averaged the per-instance losses over instances",
    ),
    "train: optimizer steps before backward": (
        "train",
        [("optimizer.zero_grad()\n        per_instance.sum().backward()\n        optimizer.step()",
          "optimizer.zero_grad()\n        optimizer.step()\n        per_instance.sum().backward()")],
        "call loss.backward() before optimizer.step()",
    ),
    "train: forgets zero_grad": (
        "train",
        [("        optimizer.zero_grad()\n", "")],
        "zero_grad() every step",
    ),
    "train: hard-coded cuda": (
        "train",
        [("device = pick_device(device)", 'device = torch.device("cuda")')],
        "never a hard-coded 'cuda'",
    ),
    "train: ignores the device argument": (
        "train",
        [("device = pick_device(device)", "device = pick_device()")],
        "use the device you are given",
    ),
    "train: schedule applied once": (
        "train",
        [("    for step in range(steps):\n"
          "        factor = 1.0 if lr_schedule is None else lr_schedule(step, steps)\n"
          "        for group in optimizer.param_groups:\n"
          '            group["lr"] = lr * factor\n',
          "    factor = 1.0 if lr_schedule is None else lr_schedule(0, steps)\n"
          "    for group in optimizer.param_groups:\n"
          '        group["lr"] = lr * factor\n'
          "    for step in range(steps):\n")],
        "applied once, before the loop",
    ),
    "train: schedule off by one": (
        "train",
        [("lr_schedule(step, steps)", "lr_schedule(step + 1, steps)")],
        "off by one",
    ),
    "train: schedule multiplied into the current lr": (
        "train",
        [('group["lr"] = lr * factor', 'group["lr"] = group["lr"] * factor')],
        "multiplied into the lr",
    ),
    "train: schedule ignored": (
        "train",
        [('group["lr"] = lr * factor', 'group["lr"] = lr')],
        "never applied",
    ),
    "train: lr argument ignored": (
        "train",
        [('group["lr"] = lr * factor', 'group["lr"] = 1e-3 * factor')],
        "the lr argument",
    ),
    "train: data generated once outside the loop": (
        "train",
        [("        x = model.generate_batch(batch_size, generator=generator)\n", ""),
         ("    for step in range(steps):\n", "    x = model.generate_batch(batch_size, generator=generator)\n    for step in range(steps):\n")],
        "draw a fresh batch inside the loop",
    ),
    "train: generator re-seeded every step": (
        "train",
        [("    generator = torch.Generator(device=device).manual_seed(seed)\n", ""),
         ("        x = model.generate_batch(", "        generator = torch.Generator(device=device).manual_seed(seed)\n        x = model.generate_batch(")],
        "re-seeding it every step",
    ),
    "train: seed ignored": (
        "train",
        [("generator = torch.Generator(device=device).manual_seed(seed)", "generator = None")],
        "two runs with seed=1 trained differently",
    ),
    "train: Adam instead of AdamW": (
        "train",
        [("torch.optim.AdamW(", "torch.optim.Adam(")],
        "torch.optim.AdamW",
    ),
    "train: weight decay argument ignored": (
        "train",
        [("lr=lr, weight_decay=weight_decay)", "lr=lr)")],
        "expected the weight_decay argument",
    ),
    "train: optimizer created inside the loop": (
        "train",
        [("    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)\n", ""),
         ("    for step in range(steps):\n",
          "    for step in range(steps):\n        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)\n")],
        "create one AdamW before the loop",
    ),
    "train: gradient clipped over all instances": (
        "train",
        [("per_instance.sum().backward()\n",
          "per_instance.sum().backward()\n        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)\n")],
        "changing instance 0 changed how instances 1-3 trained",
    ),
    "train: logs the mean loss instead of each instance's": (
        "train",
        [("losses[step] = per_instance.detach()", "losses[step] = per_instance.detach().mean()")],
        "mean over instances",
    ),
    "train: calls supercourse.train": (
        "train",
        "def train(model, steps, batch_size=1024, lr=1e-3, weight_decay=0.01, lr_schedule=None, device=None, seed=0):\n"
        "    return supercourse.train(model, steps, batch_size=batch_size, lr=lr, device=device, seed=seed).losses",
        "implement this yourself",
    ),
    # ---- measure_throughput
    "measure_throughput: no warm-up": (
        "measure_throughput",
        [("    train_fn(model, warmup_steps)\n    wait_for_device()\n", "")],
        "warm-up",
    ),
    "measure_throughput: warm-up inside the timed interval": (
        "measure_throughput",
        [("    start = time.perf_counter()\n", ""),
         ("    train_fn(model, warmup_steps)\n", "    start = time.perf_counter()\n    train_fn(model, warmup_steps)\n")],
        "warm-up",
    ),
    "measure_throughput: never waits for the GPU": (
        "measure_throughput",
        [("torch.cuda.synchronize(device)", "pass")],
        "call torch.cuda.synchronize() before reading the clock",
    ),
    "measure_throughput: waits for the GPU only at the end": (
        "measure_throughput",
        [("    train_fn(model, warmup_steps)\n    wait_for_device()\n", "    train_fn(model, warmup_steps)\n")],
        "after the warm-up, before starting the clock",
    ),
    "measure_throughput: instance-steps not multiplied by the instances": (
        "measure_throughput",
        [("steps_per_second * model.n_instances", "steps_per_second")],
        "every step trains every instance once",
    ),
}


def _mutant(name: str, change):
    return _define(name, change) if isinstance(change, str) else _edited(name, *change)


@pytest.mark.parametrize("label", list(MUTANTS))
def test_mutant_loses_points_with_a_message_naming_its_mistake(label):
    name, change, fragment = MUTANTS[label]
    verdict = _verdict(name, _mutant(name, change))
    assert verdict.points < verdict.max_points, f"{label} was not caught:\n{verdict.report()}"
    messages = [p.message for p in verdict.properties if not p.passed]
    assert any(fragment in m for m in messages), f"{label}: no message mentions {fragment!r}:\n{verdict.report()}"


def test_every_exercise_has_at_least_three_mutants():
    counts = {name: 0 for name in EXERCISES}
    for name, _, _ in MUTANTS.values():
        counts[name] += 1
    assert all(n >= 3 for n in counts.values()), counts


def test_partial_credit_is_partial():
    """One mistake costs the properties it breaks, not the whole exercise."""
    for label in ("train: loss averaged over instances", "train: schedule off by one", "train: forgets zero_grad"):
        name, change, _ = MUTANTS[label]
        verdict = _verdict(name, _mutant(name, change))
        assert 0 < verdict.points < verdict.max_points, f"{label}:\n{verdict.report()}"


def test_checks_leave_torch_as_they_found_it():
    import torch

    def state():
        return (torch.cuda.is_available, torch.cuda.device_count, torch.cuda.synchronize,
                torch.backends.mps.is_available, torch.get_num_threads())

    before, rng = state(), torch.random.get_rng_state()
    for name in EXERCISES:
        _verdict(name, solution_namespace(LESSON)[name])
    assert state() == before
    assert torch.equal(torch.random.get_rng_state(), rng), "a check changed the learner's global random state"
