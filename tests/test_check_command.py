"""`supercourse check`: executes a notebook headless and grades every exercise."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest

from autograder.build import lesson_slugs
from autograder.exercises import lessons
from autograder.notebook import check_notebook, is_check_cell
from lesson_tools import lesson_path, solution_path

pytestmark = pytest.mark.slow
SLUGS = lesson_slugs()


def supercourse(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "supercourse.cli", *args], capture_output=True, text=True)


def test_solution_scores_full_marks_as_json():
    slug = SLUGS[0]  # every lesson's solution is graded by nbgrader in test_nbgrader_workflow.py
    proc = supercourse("check", str(solution_path(slug)), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["score"] == report["max_score"] == sum(ex.points for ex in lessons()[slug])
    assert [e["name"] for e in report["exercises"]] == [ex.id for ex in lessons()[slug]]
    for row in report["exercises"]:
        assert set(row) >= {"name", "points", "max_points", "passed", "message"} and row["passed"]
    assert report["cell_errors"] == []  # the given code runs too, even where the grading library hides references
    assert len(report["seed"]) == 32, "the report says which secret the inputs were drawn from"


def test_a_seed_reproduces_a_grade_exactly(tmp_path):
    slug = SLUGS[0]
    nb = nbformat.read(solution_path(slug), as_version=4)
    for cell in nb.cells:  # a submission whose statistical checks sit near their thresholds would show it too
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "generate_batch":
            cell.source += "\n_inner = generate_batch\ndef generate_batch(*a, **k):\n    return _inner(*a, **k).round(decimals=1)\n"
    path = tmp_path / f"{slug}.ipynb"
    nbformat.write(nb, path)
    first = json.loads(supercourse("check", str(path), "--json").stdout)
    again = json.loads(supercourse("check", str(path), "--json", "--seed", first["seed"]).stdout)
    assert again["seed"] == first["seed"]
    strip = lambda r: [(e["name"], e["points"], [p["message"] for p in e["properties"]]) for e in r["exercises"]]  # noqa: E731
    assert strip(again) == strip(first)


@pytest.mark.parametrize("slug", SLUGS)
def test_untouched_lesson_scores_zero_in_a_table(slug):  # no worker starts: this costs the start-up of the command
    proc = supercourse("check", str(lesson_path(slug)))
    assert proc.returncode == 1
    assert "total" in proc.stdout and f"0/{sum(ex.points for ex in lessons()[slug]):g}" in proc.stdout
    assert "not implemented yet" in proc.stdout
    assert proc.stderr == ""


def test_deleted_check_cells_and_broken_cells_do_not_change_the_grade(tmp_path):
    slug = SLUGS[0]
    nb = nbformat.read(solution_path(slug), as_version=4)
    nb.cells = [c for c in nb.cells if not is_check_cell(c)]
    nb.cells.insert(2, nbformat.v4.new_code_cell("raise RuntimeError('a broken cell')"))
    path = tmp_path / f"{slug}.ipynb"
    nbformat.write(nb, path)
    report = check_notebook(path, lesson=slug)
    assert report.passed and report.score == report.max_score
    assert any("a broken cell" in e for e in report.cell_errors)


def test_bad_arguments_give_one_line(tmp_path):
    for args in (["check", str(tmp_path / "missing.ipynb")], ["check", "README.md"]):
        proc = supercourse(*args)
        assert proc.returncode == 2
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
