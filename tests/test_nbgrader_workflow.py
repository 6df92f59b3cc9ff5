"""Every lesson through the instructor's workflow, end to end, with nbgrader's own commands.

One scratch course per lesson (the lessons run in parallel), and one ``nbgrader autograde`` for all its
simulated students: the solution (full marks), the untouched lesson (0, without starting a worker), a
partly correct one (the first exercise only), one whose last exercise raises, one whose last exercise
never returns (that exercise scores 0 on its time limit, the rest are graded), one who deleted a check
cell and added a cell that raises among correct answers (the check is restored, with its verdict; the broken
cell costs nothing: two honest slips, one submission, one grading fewer per lesson), and one who
delegates every exercise that has a reference to that reference under a built-string alias (those score
0 with "implement this yourself", the rest keep their points). Every grade is what that work earns, and
feedback and export work unchanged.
"""

from __future__ import annotations

import csv
import importlib
import json
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
# The looping student's loop also hangs every given cell that calls the function: a short cell limit keeps
# this test quick.
FLAGS = ["--SandboxedGrade.cell_seconds=10"]


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    # nbgrader runs `alembic` for its gradebook: the virtualenv's bin must be on PATH.
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def _reference_target(ex) -> tuple[str, str] | None:
    """(module, attribute) of the library object an exercise's code would delegate to, if it has one."""
    for name in ex.reference:
        try:
            module = importlib.import_module(name)
        except ImportError:
            module_name, attr = name.rsplit(".", 1)
            if callable(getattr(importlib.import_module(module_name), attr, None)):
                return module_name, attr
            continue
        if hasattr(module, ex.function):
            return name, ex.function
    return None


def _delegating(nb: nbformat.NotebookNode, slug: str) -> dict[str, str]:
    """Answer every exercise that has a reference with a built-string alias of it; returns {exercise id: target}."""
    targets = {ex.function: (ex.id, _reference_target(ex)) for ex in lessons()[slug]}
    delegated = {}
    for cell in nb.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if cell.cell_type != "code" or grade_id not in targets or targets[grade_id][1] is None:
            continue
        module, attr = targets[grade_id][1]
        half = len(attr) // 2
        cell.source = (f"import importlib\n{grade_id} = getattr(importlib.import_module({module!r}), "
                       f"{attr[:half]!r} + {attr[half:]!r})\n")
        delegated[targets[grade_id][0]] = f"{module}.{attr}"
    return delegated


def students(slug: str, course: Path) -> tuple[dict[str, float], dict[str, str]]:
    """Write every simulated student's submission; return the score each should get, and what was delegated."""
    exercises = lessons()[slug]
    first, last = exercises[0], exercises[-1]
    # The last exercise is the broken one: later exercises may build on earlier ones.
    total = sum(ex.points for ex in exercises)
    everything = {ex.name for ex in exercises}
    release = course / "release" / slug / f"{slug}.ipynb"
    solution = course / "source" / slug / f"{slug}.ipynb"
    slips = make_submission(release, solution, everything, delete_checks={f"check_{first.name}"})
    slips.cells.insert(2, nbformat.v4.new_code_cell("raise RuntimeError('a broken cell')"))
    delegating = make_submission(release, solution, everything)
    delegated = _delegating(delegating, slug)
    assert delegated, f"lesson {slug} redacts no reference: set Exercise(reference=...) in its checks"
    cases = {
        "solution": (make_submission(release, solution, everything), total),
        "untouched": (make_submission(release, solution, set()), 0.0),
        "partial": (make_submission(release, solution, {first.name}), first.points),
        "raises": (make_submission(release, solution, everything, extra={last.name: raising(last)}), total - last.points),
        "loops": (make_submission(release, solution, everything, extra={last.name: looping(last)}), total - last.points),
        "deleted-check-broken-cell": (slips, total),
        "delegating": (delegating, total - sum(ex.points for ex in exercises if ex.id in delegated)),
    }
    expected = {}
    for student, (nb, score) in cases.items():
        folder = course / "submitted" / student / slug
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{slug}.ipynb")
        expected[student] = score
    return expected, delegated


@pytest.mark.parametrize("slug", SLUGS)
def test_instructor_workflow(slug, tmp_path):
    course = init_course(tmp_path / "course")
    nbgrader(course, "generate_assignment", slug)
    expected, delegated = students(slug, course)

    nbgrader(course, "autograde", slug, *FLAGS)
    nbgrader(course, "generate_feedback", slug)
    nbgrader(course, "export", "--to", "grades.csv")

    for student in expected:
        feedback = course / "feedback" / student / slug / f"{slug}.html"
        assert feedback.exists(), f"no feedback for {student}"
    with open(course / "grades.csv", newline="") as fh:
        rows = {r["student_id"]: r for r in csv.DictReader(fh) if r["assignment"] == slug}
    got = {student: float(rows[student]["raw_score"]) for student in expected}
    assert got == pytest.approx(expected), f"scores {got} != expected {expected}"
    assert {float(rows[s]["max_score"]) for s in expected} == {expected["solution"]}

    # The deleted check cell is back in the graded notebook (rebuilt from the release), with its verdict.
    graded = nbformat.read(course / "autograded" / "deleted-check-broken-cell" / slug / f"{slug}.ipynb", as_version=4)
    first = lessons()[slug][0]
    restored = [c for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade_id") == f"check_{first.name}"]
    assert restored and "[PASS]" in restored[0].outputs[0]["data"]["text/html"]
    # The solution's given code runs too, even where the grading library hides references.
    solution = nbformat.read(course / "autograded" / "solution" / slug / f"{slug}.ipynb", as_version=4)
    assert not [o for c in solution.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]

    # Delegation is refused, and said so, for exactly the delegated exercises.
    report = [json.loads(line) for line in (course / "grading-report.jsonl").read_text().splitlines()]
    refused = {r["exercise"]: r["reason"] for r in report if r.get("kind") == "fault" and r["student"] == "delegating"}
    assert set(refused) == set(delegated), (refused, delegated)
    assert all("implement this yourself" in why for why in refused.values()), refused
    untouched = next(r for r in report if r.get("kind") == "graded" and r["student"] == "untouched")
    assert untouched["workers"] == 0 and untouched["score"] == 0, "an untouched submission starts no worker"
