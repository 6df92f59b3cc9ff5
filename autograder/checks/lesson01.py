"""PROTOTYPE (to be replaced by the lesson-1 author)."""
import torch
import supercourse
from autograder.exercises import Exercise
from autograder.framework import call, expect, prop, describe

LESSON = "01-sparse-features"
EXERCISES = {"generate_batch": Exercise("generate_batch", "Sparse features", forbid=("sparse_uniform",))}

@prop("generate_batch", points=1)
def test_shape(submission):
    p = torch.full((3, 5), 0.5)
    x = call(submission, 16, p)
    expect(isinstance(x, torch.Tensor) and x.shape == (16, 3, 5), f"expected shape (16, 3, 5), got {describe(x)}")

@prop("generate_batch", points=2)
def test_density(submission):
    p = torch.tensor([[0.1] * 5, [0.9] * 5])
    x = call(submission, 4000, p)
    got = (x != 0).float().mean(0)
    expect((got - p).abs().max() < 0.03, f"density per instance should match, got {got[:,0].tolist()}")
