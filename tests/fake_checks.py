"""A tiny lesson's checks, used by tests/test_runner.py to test the check machinery itself."""

import pytest
import torch

from autograder.exercises import Exercise
from autograder.framework import call, close, expect, prop

LESSON = "98-fake"
EXERCISES = {
    "double": Exercise("double", "Double a tensor", forbid=("mul(2)",)),
}


@prop("double", points=1)
def test_shape(submission):
    out = call(submission, torch.ones(3))
    expect(isinstance(out, torch.Tensor) and out.shape == (3,), "double must keep the shape (3,)")


@prop("double", points=2)
@pytest.mark.parametrize("value", [1.0, -2.0, 0.5])
def test_values(submission, value):
    x = torch.full((3,), value)
    expect(close(call(submission, x), 2 * x), f"double({value}) should be {2 * value}")
