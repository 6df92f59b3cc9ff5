"""supercourse.schedules: learning-rate factors and how train() applies them."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import supercourse
from supercourse import schedules
from supercourse.schedules import SCHEDULES, lr_factor, resolve_schedule


def test_names():
    assert set(SCHEDULES) == {"constant", "linear", "cosine"}


def test_constant():
    assert [lr_factor("constant", s, 10) for s in range(10)] == [1.0] * 10


def test_linear_endpoints_and_midpoint():
    assert lr_factor("linear", 0, 100) == 1.0
    assert lr_factor("linear", 50, 100) == pytest.approx(0.5)
    assert lr_factor("linear", 99, 100) == pytest.approx(0.01)
    assert lr_factor("linear", 100, 100) == pytest.approx(0.0)


def test_cosine_endpoints_and_midpoint():
    assert lr_factor("cosine", 0, 100) == pytest.approx(1.0)
    assert lr_factor("cosine", 50, 100) == pytest.approx(0.5)
    assert lr_factor("cosine", 25, 100) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_factor("cosine", 100, 100) == pytest.approx(0.0, abs=1e-12)


@settings(deadline=None)
@given(steps=st.integers(1, 10_000), data=st.data())
def test_factors_in_unit_interval_and_non_increasing(steps, data):
    step = data.draw(st.integers(0, steps - 1))
    for name in ("linear", "cosine"):
        f = lr_factor(name, step, steps)
        assert 0.0 < f <= 1.0
        if step + 1 < steps:
            assert lr_factor(name, step + 1, steps) <= f


def test_callable_passes_through():
    f = lambda step, steps: 0.25  # noqa: E731
    assert resolve_schedule(f) is f
    assert lr_factor(f, 3, 10) == 0.25
    assert resolve_schedule("cosine") is schedules.cosine


@pytest.mark.parametrize("bad", ["exp", "Constant", "", None, 3, ["linear"], {"constant": 1}])
def test_bad_schedule_names_the_argument(bad):
    with pytest.raises(ValueError, match="lr_schedule"):
        resolve_schedule(bad)


def test_train_applies_the_schedule_at_every_step():
    calls = []

    def record(step, steps):
        calls.append((step, steps))
        return 1.0

    supercourse.train(supercourse.ToyModel(3, 2, seed=0), steps=7, batch_size=8, lr_schedule=record, seed=0, progress=False)
    assert calls == [(s, 7) for s in range(7)]


def test_zero_factor_freezes_the_weights():
    m = supercourse.ToyModel(4, 2, seed=0)
    w0 = m.W.detach().clone()
    supercourse.train(m, steps=5, batch_size=16, lr_schedule=lambda s, n: 0.0, seed=0, progress=False, device="cpu")
    assert torch.equal(m.W.detach(), w0)
    supercourse.train(m, steps=5, batch_size=16, lr_schedule="linear", seed=0, progress=False, device="cpu")
    assert not torch.equal(m.W.detach(), w0)


def test_linear_schedule_moves_less_than_constant():
    moved = {}
    for name in ("constant", "linear"):
        m = supercourse.ToyModel(5, 2, seed=1)
        w0 = m.W.detach().clone()
        supercourse.train(m, steps=50, batch_size=64, lr=1e-2, lr_schedule=name, seed=1, progress=False, device="cpu")
        moved[name] = (m.W.detach() - w0).norm().item()
    assert moved["linear"] < moved["constant"]


def test_train_rejects_a_bad_schedule():
    with pytest.raises(ValueError, match="lr_schedule"):
        supercourse.train(supercourse.ToyModel(3, 2), steps=2, lr_schedule="step", progress=False, device="cpu")
