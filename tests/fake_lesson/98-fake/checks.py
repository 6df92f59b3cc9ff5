"""A tiny lesson's checks, used by tests/test_runner.py to test the check machinery itself."""

import torch

from autograder.exercises import Exercise
from autograder.framework import call, expect, prop
from autograder.toolkit import close, secret_gen

EXERCISES = {
    "double": Exercise("double", "Double a tensor"),
}


@prop("double", points=1)
def test_shape(submission):
    out = call(submission, torch.rand(3, generator=secret_gen(0)))
    expect(isinstance(out, torch.Tensor) and out.shape == (3,), "double must keep the shape (3,)")


@prop("double", points=2)
def test_values(submission):
    for value in (1.0, -2.0, 0.5):
        x = torch.full((3,), value) + 0.0 * torch.rand(3, generator=secret_gen(value))
        expect(close(call(submission, x), 2 * x), f"double({value}) should be {2 * value}")
