"""The instructor's workflow, end to end, with nbgrader's own commands in a scratch course.

Per lesson, six simulated students: the solution (full marks), the untouched
lesson (0), a partly correct one (the first exercise only), one whose last
exercise raises, one whose last exercise never returns (that exercise scores 0
on its time limit, the rest are graded), and one who deleted a check cell
(nbgrader restores it). Every student's grade is what their own work earns.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.build import lesson_slugs
from autograder.command import init_course
from autograder.exercises import lessons
from submissions import looping, make_submission, raising

pytestmark = pytest.mark.slow

SLUGS = lesson_slugs()


# The looping student's loop also hangs every demo cell that calls the function;
# a shorter cell limit than the shipped 60 s keeps this test quick.
CELL_LIMIT = "--SandboxedGrade.cell_timeout=30"


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    # nbgrader runs `alembic` for its gradebook: the virtualenv's bin must be on PATH.
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def students(slug: str, course: Path) -> dict[str, float]:
    """Write every simulated student's submission; return the score each should get."""
    exercises = lessons()[slug]
    first = exercises[0]
    # The last exercise is broken: later exercises may build on earlier ones
    # (a student whose feature_norms is wrong rightly loses points where they reuse it).
    last = exercises[-1]
    total = sum(ex.points for ex in exercises)
    everything = {ex.name for ex in exercises}
    release = course / "release" / slug / f"{slug}.ipynb"
    solution = course / "source" / slug / f"{slug}.ipynb"
    cases = {
        "solution": (make_submission(release, solution, everything), total),
        "untouched": (make_submission(release, solution, set()), 0.0),
        "partial": (make_submission(release, solution, {first.name}), first.points),
        "raises": (make_submission(release, solution, everything, extra={last.name: raising(last)}), total - last.points),
        "loops": (make_submission(release, solution, everything, extra={last.name: looping(last)}), total - last.points),
        "deleted-check": (make_submission(release, solution, everything, delete_checks={f"check_{first.name}"}), total),
    }
    expected = {}
    for student, (nb, score) in cases.items():
        folder = course / "submitted" / student / slug
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{slug}.ipynb")
        expected[student] = score
    return expected


@pytest.mark.parametrize("slug", SLUGS)
def test_instructor_workflow(slug, tmp_path):
    course = init_course(tmp_path / "course")
    nbgrader(course, "generate_assignment", slug)
    expected = students(slug, course)

    nbgrader(course, "autograde", slug, CELL_LIMIT)
    nbgrader(course, "generate_feedback", slug)
    nbgrader(course, "export", "--to", "grades.csv")

    for student in expected:
        feedback = course / "feedback" / student / slug / f"{slug}.html"
        assert feedback.exists(), f"no feedback for {student}"
    with open(course / "grades.csv", newline="") as fh:
        rows = {r["student_id"]: r for r in csv.DictReader(fh) if r["assignment"] == slug}
    got = {student: float(rows[student]["raw_score"]) for student in expected}
    assert got == pytest.approx(expected), f"scores {got} != expected {expected}"
    max_score = {float(rows[s]["max_score"]) for s in expected}
    assert max_score == {expected["solution"]}

    # The deleted check cell is back in the graded notebook (rebuilt from the release), with its verdict.
    graded = nbformat.read(course / "autograded" / "deleted-check" / slug / f"{slug}.ipynb", as_version=4)
    first = lessons()[slug][0]
    restored = [c for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade_id") == f"check_{first.name}"]
    assert restored and "[PASS]" in restored[0].outputs[0]["text"]
