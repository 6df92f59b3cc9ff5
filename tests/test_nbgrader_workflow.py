"""Every lesson through the instructor's workflow, end to end, with nbgrader's own commands.

The lessons are released, graded, fed back and exported as a course holds them: a few lessons per scratch
course (the courses run in parallel), and one ``nbgrader autograde`` for every simulated student of every
lesson in it. Each student submits every lesson of the course: the solution (full marks), the untouched
lesson (0, without starting a worker), a partly correct one (the first exercise right, the middle ones
untouched, the last raising), one who slipped three ways among correct answers (deleted the first check
cell, added a cell that raises, and left a last exercise that never returns: the check is restored with its
verdict, the broken cell costs nothing, the looping exercise scores 0 on its time limit and the rest are
graded; one submission, two gradings fewer per lesson), and one who delegates every exercise that has a
reference to that reference under a built-string alias (those score 0 with "implement this yourself", the
rest keep their points).
Every grade is what that work earns, and feedback and export work unchanged.
"""

from __future__ import annotations

import csv
import importlib
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from autograder.build import lesson_slugs
from autograder.command import init_course
from autograder.exercises import lessons
from nbgrader_cli import nbgrader
from submissions import looping, make_submission, raising

pytestmark = pytest.mark.slow

SLUGS = lesson_slugs()
COURSES = 3
"""Scratch courses: lessons 01, 04, 07, 10 in one, 02, 05, 08, 11 in the next, ... (early and late lessons in
each, so that the courses take about as long). One course per lesson paid nbgrader's start-up, four
commands of several seconds each, twelve times over."""
# The looping student's loop costs a graded property's limit, and a cell's for every given cell that calls
# the function: short limits keep this test quick (shipped: 20 s and 60 s). The slowest honest property of
# any lesson takes about 3 s (lesson 02's throughput), and a whole honest lesson grades in 2-14 s.
FLAGS = ["--SandboxedGrade.cell_seconds=6", "--SandboxedGrade.property_seconds=8"]


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
    slips = make_submission(release, solution, everything, extra={last.name: looping(last)},
                            delete_checks={f"check_{first.name}"})
    slips.cells.insert(2, nbformat.v4.new_code_cell("raise RuntimeError('a broken cell')"))
    delegating = make_submission(release, solution, everything)
    delegated = _delegating(delegating, slug)
    assert delegated, f"lesson {slug} redacts no reference: set Exercise(reference=...) in its checks"
    cases = {
        "solution": (make_submission(release, solution, everything), total),
        "untouched": (make_submission(release, solution, set()), 0.0),
        # the first exercise right, the middle ones untouched, the last raising: partial credit, and a raising
        # exercise costs only its own points
        "partial-raises": (make_submission(release, solution, {first.name, last.name}, extra={last.name: raising(last)}),
                           first.points),
        # a deleted check, a broken cell, a last exercise that loops: only the loop costs points
        "slips": (slips, total - last.points),
        "delegating": (delegating, total - sum(ex.points for ex in exercises if ex.id in delegated)),
    }
    expected = {}
    for student, (nb, score) in cases.items():
        folder = course / "submitted" / student / slug
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{slug}.ipynb")
        expected[student] = score
    return expected, delegated


def _course_of(slugs: list[str], folder: Path) -> Path:
    """A scratch course holding only ``slugs``, released with one ``nbgrader generate_assignment``."""
    course = init_course(folder)
    for lesson in (course / "source").iterdir():
        if lesson.name not in slugs:
            shutil.rmtree(lesson)
    nbgrader(course, "generate_assignment", "*")
    assert sorted(p.name for p in (course / "release").iterdir()) == sorted(slugs)
    return course


@pytest.mark.parametrize("slugs", [SLUGS[i::COURSES] for i in range(COURSES)],
                         ids=["+".join(s[:2] for s in SLUGS[i::COURSES]) for i in range(COURSES)])
def test_instructor_workflow(slugs, tmp_path):
    course = _course_of(slugs, tmp_path / "course")
    expected, delegated = {}, {}
    for slug in slugs:
        expected[slug], delegated[slug] = students(slug, course)

    nbgrader(course, "autograde", "*", *FLAGS)
    nbgrader(course, "generate_feedback", "*")
    nbgrader(course, "export", "--to", "grades.csv")

    with open(course / "grades.csv", newline="") as fh:
        rows = {(r["assignment"], r["student_id"]): r for r in csv.DictReader(fh)}
    report = [json.loads(line) for line in (course / "grading-report.jsonl").read_text().splitlines()]
    for slug in slugs:
        _assert_lesson(course, slug, expected[slug], delegated[slug], rows, [r for r in report if r["lesson"] == slug])


def _assert_lesson(course: Path, slug: str, expected: dict[str, float], delegated: dict[str, str],
                   rows: dict[tuple[str, str], dict[str, str]], report: list[dict]) -> None:
    for student in expected:
        feedback = course / "feedback" / student / slug / f"{slug}.html"
        assert feedback.exists(), f"{slug}: no feedback for {student}"
    got = {student: float(rows[slug, student]["raw_score"]) for student in expected}
    assert got == pytest.approx(expected), f"{slug}: scores {got} != expected {expected}"
    assert {float(rows[slug, s]["max_score"]) for s in expected} == {expected["solution"]}, slug

    # The deleted check cell is back in the graded notebook (rebuilt from the release), with its verdict.
    graded = nbformat.read(course / "autograded" / "slips" / slug / f"{slug}.ipynb", as_version=4)
    first = lessons()[slug][0]
    restored = [c for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade_id") == f"check_{first.name}"]
    assert restored and "[PASS]" in restored[0].outputs[0]["data"]["text/html"], slug
    # The solution's given code runs too, even where the grading library hides references.
    solution = nbformat.read(course / "autograded" / "solution" / slug / f"{slug}.ipynb", as_version=4)
    errors = [o for c in solution.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{slug}: {errors}"

    # Delegation is refused, and said so, for exactly the delegated exercises.
    refused = {r["exercise"]: r["reason"] for r in report if r.get("kind") == "fault" and r["student"] == "delegating"}
    assert set(refused) == set(delegated), (slug, refused, delegated)
    assert all("implement this yourself" in why for why in refused.values()), (slug, refused)
    untouched = next(r for r in report if r.get("kind") == "graded" and r["student"] == "untouched")
    assert untouched["workers"] == 0 and untouched["score"] == 0, f"{slug}: an untouched submission starts no worker"
