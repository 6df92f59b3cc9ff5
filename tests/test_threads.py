"""supercourse.threads: steps run on one thread or on torch's threads, whichever is measured faster; the
setting comes back after training, and the thread count changes the speed, not the numbers."""

from __future__ import annotations

import copy

import pytest
import torch

import supercourse.training as training
from supercourse import ToyModel, train
from supercourse import sae as sae_lib
from supercourse.neurons import NeuronModel
from supercourse.threads import ThreadChooser, torch_threads


@pytest.fixture
def four_threads(monkeypatch):
    """torch on 4 threads, and no choice remembered from earlier runs."""
    monkeypatch.setattr(ThreadChooser, "_memory", {})
    old = torch.get_num_threads()
    torch.set_num_threads(4)
    yield 4
    torch.set_num_threads(old)


class FakeClock:
    """A clock in which a step on ``n`` threads takes ``cost[n]`` seconds (set per phase by the test)."""

    def __init__(self, cost: dict[int, float]) -> None:
        self.cost, self.now = cost, 0.0

    def __call__(self) -> float:
        return self.now

    def run(self, chooser: ThreadChooser) -> int:
        threads = chooser.begin()
        assert torch.get_num_threads() == threads
        self.now += self.cost[threads]
        chooser.end()
        return threads


def test_torch_threads_sets_and_restores(four_threads):
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 4
    with pytest.raises(RuntimeError):
        with torch_threads(2):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == 4
    with torch_threads(4):
        torch.set_num_threads(1)  # e.g. a chooser inside the block
    assert torch.get_num_threads() == 4


@pytest.mark.parametrize("cost, best", [({1: 0.01, 4: 0.006}, 4), ({1: 0.01, 4: 0.25}, 1), ({1: 0.01, 4: 0.012}, 1)],
                         ids=["quiet: threads win", "busy: one thread wins", "no gain: one thread"])
def test_the_chooser_keeps_the_faster(four_threads, cost, best):
    clock = FakeClock(cost)
    chooser = ThreadChooser(4, clock=clock)
    used = [clock.run(chooser) for _ in range(40)]
    assert chooser.chosen == best
    trial = 2 * (1 + ThreadChooser.TRIAL_STEPS)
    assert used[0] == 1, "training starts on one thread"
    assert set(used[trial:]) == {best}, "after the trial every step runs on the choice (40 steps: no second trial)"


def test_a_slow_trial_is_cut_short(four_threads):
    clock = FakeClock({1: 1.0, 4: 50.0})
    chooser = ThreadChooser(4, clock=clock)
    for _ in range(7):
        clock.run(chooser)
    assert chooser.steps_on == {1: 6, 4: 1}, "the warm-up step on 4 threads is slow enough to end the trial"
    assert chooser.chosen == 1


def test_the_chooser_checks_again_and_follows_the_load(four_threads):
    clock = FakeClock({1: 1.0, 4: 0.5})
    chooser = ThreadChooser(4, clock=clock)
    for _ in range(20):
        clock.run(chooser)
    assert chooser.chosen == 4
    clock.cost = {1: 1.0, 4: 10.0}  # another job takes a core
    for _ in range(60):
        clock.run(chooser)
    assert chooser.chosen == 1
    assert chooser.recheck_s > ThreadChooser.RECHECK_S, "a choice that holds is checked less and less often"


def test_one_thread_available_means_no_trials():
    chooser = ThreadChooser(1, clock=FakeClock({1: 1.0}))
    for _ in range(10):
        assert chooser.begin() == 1
        chooser.end()
    assert chooser.steps_on == {1: 10}


class OwnForward(NeuronModel):
    def forward(self, x):
        return super().forward(x)


@pytest.mark.parametrize("make", [lambda: NeuronModel(5, 2, n_instances=3, seed=0),
                                  lambda: OwnForward(5, 2, n_instances=3, seed=0)], ids=["analytic", "autograd"])
def test_train_restores_the_threads_and_the_callback_sees_the_users(four_threads, make):
    seen = []
    h = train(make(), steps=30, batch_size=16, progress=False, device="cpu", seed=0, log_every=10,
              callback=lambda step, model, loss: seen.append(torch.get_num_threads()))
    assert seen == [4] * len(h.steps), "the callback runs with the user's threads"
    assert torch.get_num_threads() == 4
    assert h.extra["threads"] in (1, 4) and sum(h.extra["thread_steps"].values()) == 30


def test_the_fast_path_runs_torch_on_one_thread(four_threads):
    h = train(ToyModel(5, 2, n_instances=3, seed=0), steps=5, batch_size=16, progress=False, device="cpu", seed=0)
    assert h.extra["path"] == "fast" and h.extra["thread_steps"] == {1: 5}
    assert torch.get_num_threads() == 4


def test_the_thread_count_does_not_change_the_numbers(monkeypatch, four_threads):
    # Trials on 1 and 4 threads against a run forced onto one thread: the same parameters, bit for bit.
    init = NeuronModel(10, 5, n_instances=16, feature_probability=0.2, seed=0)
    forced = copy.deepcopy(init)
    with torch_threads(1):
        train(forced, steps=40, batch_size=64, progress=False, device="cpu", seed=0)
    monkeypatch.setattr(ThreadChooser, "RECHECK_S", 0.0)  # a trial after every choice: many switches
    chosen = copy.deepcopy(init)
    h = train(chosen, steps=40, batch_size=64, progress=False, device="cpu", seed=0)
    assert set(h.extra["thread_steps"]) == {1, 4}
    for a, b in zip(chosen.parameters(), forced.parameters()):
        assert torch.equal(a, b)


def test_train_sae_restores_the_threads(four_threads):
    data = sae_lib.toy_features(d_in=4, n_features=6, expected_l0=1.0, seed=0)
    h = sae_lib.train_sae(sae_lib.SparseAutoencoder(4, 8, 2, seed=0), data.sample, steps=30, batch_size=8,
                          progress=False)
    assert h.extra["path"] == "analytic" and sum(h.extra["thread_steps"].values()) == 30
    assert torch.get_num_threads() == 4


def test_training_module_uses_the_chooser():
    assert training.ThreadChooser is ThreadChooser


def test_a_choice_is_resumed_by_the_next_run_of_the_same_step(four_threads):
    clock = FakeClock({1: 0.01, 4: 0.25})
    first = ThreadChooser.resume("step A", 4, clock=clock)
    for _ in range(12):
        clock.run(first)
    first.save("step A")
    assert first.chosen == 1
    again = ThreadChooser.resume("step A", 4, clock=clock)
    assert [clock.run(again) for _ in range(5)] == [1] * 5, "no new trial at the start of the next run"
    other = ThreadChooser.resume("step B", 4, clock=clock)
    assert other.begin() == 1 and other._plan, "another step gets its own trial"
    clock.now += ThreadChooser.MEMORY_S + 1
    stale = ThreadChooser.resume("step A", 4, clock=clock)
    stale.begin()
    assert stale._plan, "a choice saved long ago is measured again"


def test_a_trial_cut_short_by_the_end_of_training_is_not_saved(four_threads):
    clock = FakeClock({1: 0.01, 4: 0.006})
    short = ThreadChooser.resume("step C", 4, clock=clock)
    for _ in range(3):
        clock.run(short)
    short.save("step C")
    assert "step C" not in ThreadChooser._memory


def test_a_warm_up_step_paying_one_off_costs_does_not_end_the_trial(four_threads):
    # 1 ms steps on one thread, 0.5 ms on four, but the first step on four pays 4 ms (a pool waking up)
    clock = FakeClock({1: 0.001, 4: 0.0005})
    chooser = ThreadChooser(4, clock=clock)
    for _ in range(5):
        clock.run(chooser)
    clock.cost[4] = 0.004
    clock.run(chooser)  # the warm-up on 4 threads
    clock.cost[4] = 0.0005
    for _ in range(10):
        clock.run(chooser)
    assert chooser.chosen == 4
