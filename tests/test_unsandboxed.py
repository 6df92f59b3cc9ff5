"""Where bubblewrap is missing: instructors' grading refuses unless told, learners' grading says so plainly."""

from __future__ import annotations

import nbformat
import pytest

from autograder import grader, sandbox
from autograder.nbgrader_plugin import UNSANDBOXED_HELP, SandboxedGrade
from lesson_tools import solution_path
from supercourse import cli

LESSON = "01-sparse-features"


@pytest.fixture
def no_bubblewrap(monkeypatch):
    monkeypatch.setattr(sandbox, "sandbox_available", lambda: False)  # as the nbgrader plugin reads it
    monkeypatch.setattr(grader, "sandbox_available", lambda: False)


def test_instructor_grading_refuses_without_a_sandbox(no_bubblewrap, tmp_path):
    nb = nbformat.read(solution_path(LESSON), as_version=4)
    resources = {"nbgrader": {"assignment": LESSON, "student": "ada", "notebook": LESSON}}
    with pytest.raises(SystemExit) as err:  # nbgrader does not catch it: grading stops before any grade
        SandboxedGrade(course_root=str(tmp_path)).preprocess(nb, resources)
    assert str(err.value) == UNSANDBOXED_HELP
    assert "--SandboxedGrade.allow_unsandboxed=True" in UNSANDBOXED_HELP and "bubblewrap" in UNSANDBOXED_HELP


@pytest.mark.slow
def test_learner_check_grades_out_of_process_and_says_it_is_not_sandboxed(no_bubblewrap, capsys):
    assert cli.main(["check", str(solution_path(LESSON))]) == 0
    out = capsys.readouterr().out
    assert "Not sandboxed" in out and "18/18" in out.replace(" ", "")
