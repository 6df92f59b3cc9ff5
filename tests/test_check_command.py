"""`supercourse check`: executes a notebook headless and grades every exercise."""

from __future__ import annotations

import importlib
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


@pytest.mark.parametrize("slug", SLUGS)
def test_solution_scores_full_marks_as_json(slug):
    proc = supercourse("check", str(solution_path(slug)), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["score"] == report["max_score"] == sum(ex.points for ex in lessons()[slug])
    assert [e["name"] for e in report["exercises"]] == [ex.id for ex in lessons()[slug]]
    for row in report["exercises"]:
        assert set(row) >= {"name", "points", "max_points", "passed", "message"} and row["passed"]
    assert report["cell_errors"] == []  # the given code runs too, even where the grading library hides references


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


def _delegating(slug: str, tmp_path) -> tuple[object, dict[str, str]]:
    """The solution notebook with every exercise that has a reference answered by a built-string alias of it."""
    nb = nbformat.read(solution_path(slug), as_version=4)
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
    path = tmp_path / f"{slug}.ipynb"
    nbformat.write(nb, path)
    return path, delegated


@pytest.mark.parametrize("slug", SLUGS)
def test_delegating_to_the_reference_scores_zero_for_that_exercise_only(slug, tmp_path):
    path, delegated = _delegating(slug, tmp_path)
    assert delegated, f"lesson {slug} redacts no reference: set Exercise(reference=...) in its checks"
    report = check_notebook(path, lesson=slug)
    for row in report.exercises:
        if row["name"] in delegated:
            assert row["points"] == 0, (row["name"], delegated[row["name"]], row["message"])
            assert "implement this yourself" in row["message"], (row["name"], row["message"])
        else:
            assert row["passed"], (row["name"], row["message"])


@pytest.mark.parametrize("slug", SLUGS)
def test_untouched_lesson_scores_zero_in_a_table(slug):
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
