"""Lesson 2's own tests: what the generic proof (tests/test_lesson_proofs.py) does not already do.

The generic proof grades the solution, the stubs, every mistake of ``mistakes.py`` and every alternative of
``alternatives.py``, and replays recorded answers. Here: partial credit, the diagnosis naming the mistake it
replays, the test doubles of ``worker.py`` (a trainer whose speed nothing readable tells, a simulated GPU's
queue, the model's records), and that grading leaves torch as it found it.
"""

from __future__ import annotations

import random

import pytest
import torch
import torch.optim.optimizer as _optimizer_module

from autograder.exercises import lessons
from autograder.lessons import get_lesson
from autograder.toolkit.testing import grade, messages
from lesson_tools import solution_namespace

LESSON = "02-training-many-models"
EXERCISES = ("lr_factor", "pick_device", "train", "measure_throughput")
SECRET = 0x02_5EC2E7


def _module(part: str):
    return get_lesson(LESSON).module(part)


def _mistake(exercise: str, name: str):
    return next(m for m in _module("mistakes").MISTAKES[exercise] if m.name == name)


def test_registry_lists_the_exercises():
    assert [ex.name for ex in lessons()[LESSON]] == list(EXERCISES)


# --------------------------------------------------------------------------- partial credit and diagnosis


@pytest.mark.parametrize("name", ["mean_over_instances", "schedule_off_by_one", "logged_after_update"])
def test_one_training_mistake_costs_only_what_it_breaks(name):
    verdict = grade("02.train", _mistake("train", name).implementation, secret=SECRET)
    assert 0 < verdict.points < verdict.max_points, f"{name}:\n{verdict.report()}"


@pytest.mark.parametrize("name", ["mean_over_instances", "optimizer_in_loop", "normalised_by_the_batch"])
def test_the_train_diagnosis_names_the_mistake_it_replays(name):
    mistake = _mistake("train", name)
    text = messages(grade("02.train", mistake.implementation, secret=SECRET))
    assert mistake.hint.lower() in text.lower(), f"{name}: {text}"


@pytest.mark.parametrize("name", ["history_attached", "global_stream_seeded"])
def test_what_the_model_saw_costs_one_property(name):
    """A history attached to the graph and a re-seeded global stream train correctly: they cost one point each."""
    verdict = grade("02.train", _mistake("train", name).implementation, secret=SECRET)
    assert verdict.points == verdict.max_points - 1, verdict.report()


# --------------------------------------------------------------------------- the test trainer


def test_reading_the_test_trainer_earns_nothing():
    """Issue 16 point 7: the rate read off the trainer the check hands over, with nothing timed, scores 0."""
    verdict = grade("02.measure_throughput", _mistake("measure_throughput", "reads_the_test_trainer").implementation,
                    secret=SECRET)
    assert verdict.points == 0, verdict.report()
    assert all("not measured" in p.message for p in verdict.properties), verdict.report()


def _reads_then_runs(train_fn, model, steps, device, warmup_steps=5):
    """The attack made to look busy: it runs the trainer (so time passes) but returns the rate read off it."""
    train_fn(model, warmup_steps)
    train_fn(model, steps)
    if str(device).split(":")[0] == "cuda":
        torch.cuda.synchronize()
    elif str(device).split(":")[0] == "mps":
        torch.mps.synchronize()
    rate = 1.0 / train_fn.step_seconds
    return {"steps_per_second": rate, "instance_steps_per_second": rate * model.n_instances}


def test_the_speed_is_drawn_as_each_call_runs(monkeypatch):
    """No readable setting is the speed: each call's own slow-down (here made large) is what the check compares with."""
    worker = _module("worker")
    monkeypatch.setattr(worker, "_RANDOM", random.Random(0))
    monkeypatch.setattr(worker, "_slow_down", lambda spread: spread)  # every call runs `spread` times slower
    verdict = grade("02.measure_throughput", _reads_then_runs, secret=SECRET)
    failed = {p.test for p in verdict.properties if not p.passed}
    assert {"test_waits_for_a_cuda_gpu", "test_waits_for_apples_gpu", "test_instance_steps_and_warmup_steps"} <= failed
    solution = grade("02.measure_throughput", solution_namespace(LESSON)["measure_throughput"], secret=SECRET)
    assert solution.passed, solution.report()


def test_nothing_before_a_call_holds_its_duration():
    worker = _module("worker")
    trainer = worker.FakeTrainer(0.001, spread=3.0)
    before = {k: v for k, v in vars(trainer).items() if isinstance(v, float)}
    trainer(None, 3)
    records = trainer.grading_records()
    (run,) = records["runs"]
    assert 1.0 <= run["factor"] <= 3.0 and run["finished"]
    assert before == {"step_seconds": 0.001, "spread": 3.0, "first_call_seconds": 0.0, "slow_factor": 1.0}


def test_a_simulated_gpu_runs_its_work_after_the_call_returns():
    worker = _module("worker")
    trainer = worker.FakeTrainer(0.001, first_call_seconds=30.0, device="cuda")
    try:
        trainer(None, 2)  # returns at once: 30 s of start-up are queued, not run
        records = trainer.grading_records()  # stops the queue: the work never finished
    finally:
        worker.restore_all()
    (run,) = records["runs"]
    assert run["first"] and not run["finished"] and records["calls"] == [2]


def test_a_simulated_gpu_event_is_timed_when_the_queue_reaches_it():
    worker = _module("worker")
    trainer = worker.FakeTrainer(0.001, device="cuda")
    try:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        trainer(None, 3)
        end.record()
        torch.cuda.synchronize()
        assert start.query() and end.query() and start.elapsed_time(end) > 0
        records = trainer.grading_records()
    finally:
        worker.restore_all()
    assert [r["finished"] for r in records["runs"]] == [True]


def test_the_model_sees_a_history_kept_on_the_graph():
    worker = _module("worker")
    model = worker.scripted_model(n_features=4, n_hidden=2, n_instances=2, seed=1, script_seed=2)
    kept = []
    for _ in range(3):
        x = model.generate_batch(8)
        kept.append(model.per_instance_loss(x, model(x)))
    records = model.grading_records()
    assert records["graphs_alive"] == 3 and records["global_rng_moved"] is False
    del kept


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
        grade(f"02.{name}", solution_namespace(LESSON)[name], secret=SECRET)
    # a learner's error half-way through a simulation must not leave it behind either
    from autograder.toolkit.testing import grade as grade_again

    def raising(preferred=None):
        raise KeyError("boom")

    grade_again("02.pick_device", raising, secret=SECRET)
    grade("02.train", _mistake("train", "device_ignored").implementation, secret=SECRET)
    assert state() == before
    assert torch.equal(torch.random.get_rng_state(), rng), "a check changed the learner's global random state"
