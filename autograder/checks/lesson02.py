"""PROTOTYPE."""
LESSON = "02-training-many-models"
from autograder.exercises import Exercise
from autograder.framework import prop
EXERCISES = {"noop": Exercise("noop", "noop")}
@prop("noop", points=1)
def test_noop(submission):
    pass
