"""``supercourse lessons new``: one command makes a lesson folder whose example already passes the proofs."""

from __future__ import annotations

import os
import secrets

import pytest

from autograder import exercises as registry
from autograder import lessons as catalog
from autograder.scaffold import new_lesson
from autograder.toolkit.testing import generic_mutant, grade, messages
from replay import record, replay

SLUG = "97-scaffolded"


@pytest.fixture
def scaffolded(monkeypatch, tmp_path):
    root = tmp_path / "solutions"
    root.mkdir()
    for lesson in catalog.all_lessons():
        os.symlink(lesson.folder, root / lesson.slug)
    folder = new_lesson(SLUG, "A scaffolded lesson", root=root, build=False)
    monkeypatch.setattr(catalog, "SOLUTIONS", root)
    registry._load.cache_clear()
    yield folder
    registry._load.cache_clear()


def test_new_lesson_is_one_folder_that_passes_the_proofs(scaffolded):
    names = sorted(p.name for p in scaffolded.iterdir())
    assert names == [f"{SLUG}.ipynb", "alternatives.py", "checks.py", "figures", "figures.py", "mistakes.py",
                     "test_lesson97.py"]
    lesson = catalog.get_lesson(SLUG)
    assert [ex.id for ex in registry.lessons()[SLUG]] == ["97.column_norms"]
    import nbformat

    ns: dict = {}
    nb = nbformat.read(lesson.notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "check(" not in cell.source:
            exec(cell.source, ns)  # noqa: S102 - the scaffold's own notebook
    solution = ns["column_norms"]
    assert grade("97.column_norms", solution).passed
    for mistake in lesson.module("mistakes").MISTAKES["column_norms"]:
        verdict = grade("97.column_norms", mistake.implementation)
        assert verdict.points < verdict.max_points and mistake.keyword.lower() in messages(verdict).lower(), mistake.name
    for alternative in lesson.module("alternatives").ALTERNATIVES["column_norms"]:
        assert grade("97.column_norms", alternative).passed, alternative.__name__
    for kind in ("nan", "inf", "in_place"):
        mutant, _ = generic_mutant(solution, kind)
        assert not grade("97.column_norms", mutant).passed, kind
    table = record("97.column_norms", solution, 1)
    assert replay("97.column_norms", table, 1)[0].passed
    assert replay("97.column_norms", table, secrets.randbits(128))[0].points == 0
    assert lesson.module("figures").make(scaffolded / "figures") == [scaffolded / "figures" / "column_norms.png"]


def test_new_lesson_refuses_bad_names_and_taken_numbers(tmp_path):
    with pytest.raises(ValueError, match="NN-words-with-dashes"):
        new_lesson("lesson-thirteen", root=tmp_path)
    with pytest.raises(ValueError, match="taken by 01-sparse-features"):
        new_lesson("01-again")
