"""The lesson pipeline's invariants: lessons/ is nbgrader's build of solutions/, and the
notebooks agree with the exercise registry (ids, function names, points)."""

from __future__ import annotations

import re

import nbformat
import pytest

from autograder.build import lesson_slugs, out_of_sync
from autograder import run_exercise
from autograder.exercises import exercises, get_exercise, lessons
from autograder.notebook import is_check_cell
from lesson_tools import ROOT, is_solution_cell, lesson_namespace, lesson_path, solution_namespace, solution_path

SLUGS = lesson_slugs()
CHECK_CALL = re.compile(r'^check\("(?P<id>[\w.]+)", (?P<name>\w+)\)$', re.M)


def test_lessons_exist():
    assert SLUGS[:2] == ["01-sparse-features", "02-training-many-models"]


@pytest.mark.parametrize("slug", SLUGS)
def test_lesson_is_in_sync_with_its_solution(slug):
    assert out_of_sync([slug]) == [], "run `supercourse lessons build` and commit lessons/"


@pytest.mark.parametrize("slug", SLUGS)
def test_check_cells_match_the_registry(slug):
    nb = nbformat.read(solution_path(slug), as_version=4)
    found = {}
    for cell in nb.cells:
        if not is_check_cell(cell):
            continue
        meta = cell.metadata.nbgrader
        calls = CHECK_CALL.findall(cell.source)
        assert len(calls) == 1, f"check cell {meta['grade_id']} must end with one check(...) call"
        ex_id, name = calls[0]
        assert cell.source.rstrip().endswith(f'check("{ex_id}", {name})'), "check(...) must be the last line"
        assert cell.source.startswith(f"# Check your work (autograded, {meta['points']:g} points)\n")
        assert meta["locked"] is True
        found[ex_id] = (name, float(meta["points"]), meta["grade_id"])
    expected = {ex.id: (ex.function, ex.points, f"check_{ex.name}") for ex in lessons()[slug]}
    assert found == expected
    assert list(found) == list(expected), "the registry lists a lesson's exercises in notebook order"


@pytest.mark.parametrize("exercise_id", sorted(exercises()))
def test_reference_scores_full_marks(exercise_id):
    ex = get_exercise(exercise_id)
    verdict = run_exercise(exercise_id, solution_namespace(ex.lesson)[ex.function])
    assert verdict.points == verdict.max_points == ex.points, verdict.report()
    assert all(p.passed for p in verdict.properties), verdict.report()


@pytest.mark.parametrize("exercise_id", sorted(exercises()))
def test_released_stub_scores_zero_and_says_so(exercise_id):
    ex = get_exercise(exercise_id)
    verdict = run_exercise(exercise_id, lesson_namespace(ex.lesson)[ex.function])
    assert verdict.points == 0, verdict.report()
    assert any("not implemented" in p.message for p in verdict.properties), verdict.report()


@pytest.mark.parametrize("slug", SLUGS)
def test_solution_cells_only_define_and_are_marked(slug):
    nb = nbformat.read(solution_path(slug), as_version=4)
    names = {ex.name for ex in lessons()[slug]}
    solution_ids = set()
    for cell in nb.cells:
        if is_solution_cell(cell):
            solution_ids.add(cell.metadata.nbgrader["grade_id"])
            assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source
    assert names <= solution_ids, f"exercises without a solution cell named after them: {names - solution_ids}"


@pytest.mark.parametrize("slug", SLUGS)
def test_setup_cell_has_the_scale_setting(slug):
    nb = nbformat.read(solution_path(slug), as_version=4)
    setup = next(c for c in nb.cells if c.cell_type == "code")
    assert re.search(r'^SCALE = "cpu"', setup.source, re.M)
    assert "from autograder import check" in setup.source


@pytest.mark.parametrize("slug", SLUGS)
def test_lessons_have_stubs_and_no_outputs(slug):
    nb = nbformat.read(lesson_path(slug), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
            assert "### BEGIN SOLUTION" not in cell.source
    stubs = [c for c in nb.cells if is_solution_cell(c)]
    assert stubs and all("raise NotImplementedError()" in c.source for c in stubs if c.cell_type == "code")


@pytest.mark.parametrize("slug", SLUGS)
def test_figures_shown_in_the_lesson_exist(slug):
    nb = nbformat.read(lesson_path(slug), as_version=4)
    images = [m for c in nb.cells if c.cell_type == "markdown" for m in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", c.source)]
    assert images, "a lesson shows the figures a learner should expect"
    for rel in images:
        assert (ROOT / "lessons" / slug / rel).is_file(), f"{rel} is missing"
