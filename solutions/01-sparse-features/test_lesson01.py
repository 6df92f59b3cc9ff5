"""Lesson 1's own tests: what the generic proof (tests/test_lesson_proofs.py) does not already do.

The generic proof grades the solution, the stubs, every mistake of ``mistakes.py`` and every alternative of
``alternatives.py``. Here: the registry's points, partial credit (one mistake costs only the properties it
breaks), the diagnosis naming the mistake it replays, and the statistics' sizes.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from autograder.exercises import get_exercise
from autograder.lessons import get_lesson
from autograder.toolkit.testing import grade, messages

LESSON = "01-sparse-features"
SECRET = 0x01_5EC2E7


def _mistake(exercise: str, name: str):
    table = get_lesson(LESSON).module("mistakes").MISTAKES[exercise]
    return next(m for m in table if m.name == name)


def test_points_per_exercise():
    assert get_exercise("01.generate_batch").points == 8
    assert get_exercise("01.ToyModel").points == 6
    assert get_exercise("01.importance_loss").points == 4


def test_forward_pass_and_loss_are_declared_differentiable():
    assert get_exercise("01.ToyModel").differentiable and get_exercise("01.importance_loss").differentiable
    assert not get_exercise("01.generate_batch").differentiable


def test_a_missing_bias_keeps_the_parameter_and_initialisation_points():
    verdict = grade("01.ToyModel", _mistake("ToyModel", "missing_bias").implementation, secret=SECRET)
    passed = {p.test for p in verdict.properties if p.passed}
    assert {"test_parameters", "test_initialisation"} <= passed
    assert "test_forward_relu" not in passed and "test_forward_linear" not in passed


@pytest.mark.parametrize("name", ["missing_bias", "relu_on_hidden", "bias_after_relu", "first_instance_weights"])
def test_the_forward_diagnosis_replays_the_table(name):
    """The forward mistakes are named by running them on the reference's weights, not by a guess."""
    mistake = _mistake("ToyModel", name)
    text = messages(grade("01.ToyModel", mistake.implementation, secret=SECRET))
    assert "Your output matches a model in which " + mistake.hint in text


def test_averaging_over_instances_costs_only_the_instance_reduction():
    verdict = grade("01.importance_loss", _mistake("importance_loss", "mean_over_instances").implementation,
                    secret=SECRET)
    failed = {p.test for p in verdict.properties if not p.passed}
    assert failed == {"test_sum_over_instances", "test_matches_reference"}


@pytest.mark.parametrize("name", ["relative_to_batch", "importance_normalised", "first_instance_importance"])
def test_the_loss_diagnosis_names_the_mistake(name):
    mistake = _mistake("importance_loss", name)
    assert mistake.hint in messages(grade("01.importance_loss", mistake.implementation, secret=SECRET))


def test_a_model_that_raises_in_init_scores_zero_and_says_so():
    class ToyModel(nn.Module):
        def __init__(self, *args, **kwargs):
            super().__init__()
            raise NotImplementedError()

    verdict = grade("01.ToyModel", ToyModel, secret=SECRET)
    assert verdict.points == 0
    assert all("not implemented" in p.message for p in verdict.properties)


def test_batch_statistics_only_show_in_small_batches():
    """Why the small-batch part exists: on a large batch, dividing by the maximum changes nothing measurable."""
    mistakes = get_lesson(LESSON).module("mistakes")
    gen = torch.Generator().manual_seed(0)
    p = torch.full((3, 8), 0.5)
    x = mistakes.rescaled_by_batch_max(20_000, p, generator=gen)
    active = x[x != 0]
    assert abs(active.mean().item() - 0.5) < 0.01 and active.max().item() == 1.0
    verdict = grade("01.generate_batch", mistakes.rescaled_by_batch_max, secret=SECRET)
    failed = {p.test for p in verdict.properties if not p.passed}
    assert failed == {"test_magnitudes_uniform"}, verdict.report()
