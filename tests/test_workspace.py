"""A learner's workspace and work that no rebuild can overwrite (issue 12, item 2).

* ``supercourse start DIR`` copies every lesson and its figures, never overwrites a learner's file;
* ``supercourse check DIR`` grades every lesson in a folder into a progress table and a total;
* ``supercourse lessons build`` refuses to overwrite a notebook that holds work, unless forced,
  and leaves ``.ipynb_checkpoints`` alone.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import build, workspace
from autograder.nbgrader_settings import REPO_ROOT
from autograder.grader import GradeResult
from supercourse.cli import main

LESSONS = REPO_ROOT / "lessons"
FIRST = "01-sparse-features"


def _lesson_dirs() -> list[str]:
    return sorted(p.name for p in LESSONS.iterdir() if (p / f"{p.name}.ipynb").is_file())


def test_start_copies_every_lesson_with_its_figures(tmp_path):
    rows = workspace.start_workspace(tmp_path / "work")
    assert [slug for slug, _ in rows] == _lesson_dirs()
    assert all(status == "copied" for _, status in rows)
    for slug in _lesson_dirs():
        for src in (LESSONS / slug).rglob("*"):
            if src.is_file() and ".ipynb_checkpoints" not in src.parts:
                assert (tmp_path / "work" / src.relative_to(LESSONS)).read_bytes() == src.read_bytes()
    assert json.loads((tmp_path / "work" / workspace.MARKER).read_text())["course"] == "supercourse"


def test_start_again_never_overwrites_work_and_adds_what_is_new(tmp_path):
    work = tmp_path / "work"
    workspace.start_workspace(work)
    mine = work / FIRST / f"{FIRST}.ipynb"
    mine.write_text(mine.read_text().replace("raise NotImplementedError()", "return 1", 1))
    worked = mine.read_bytes()
    shutil.rmtree(work / "02-training-many-models")  # as if lesson 02 had just been published
    rows = dict(workspace.start_workspace(work))
    assert mine.read_bytes() == worked
    assert rows[FIRST].startswith("yours kept (1 file(s) differ")
    assert rows["02-training-many-models"] == "copied"
    assert rows["03-measuring-superposition"] == "already here, unchanged"


@pytest.mark.parametrize("where", ["supercourse", "lessons/x", "solutions"])
def test_start_refuses_generated_folders_and_the_namespace_trap(tmp_path, where):
    target = tmp_path / "supercourse" if where == "supercourse" else REPO_ROOT / where
    with pytest.raises(ValueError, match="supercourse|regenerates"):
        workspace.start_workspace(target)


def test_start_command(tmp_path, capsys):
    assert main(["start", str(tmp_path / "w")]) == 0
    out = capsys.readouterr().out
    assert FIRST in out and "copied" in out and f"supercourse check {tmp_path / 'w'}" in " ".join(out.split())


def _notebook(cells):
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _solution(grade_id, source):
    return {"cell_type": "code", "source": source, "outputs": [], "execution_count": None,
            "metadata": {"nbgrader": {"solution": True, "grade_id": grade_id}}}


def test_worked_reasons():
    fresh = _notebook([_solution("f", "def f():\n    # YOUR CODE HERE\n    raise NotImplementedError()")])
    assert workspace.worked_reasons(fresh, fresh) == []
    edited = _notebook([_solution("f", "def f():\n    return 1")])
    assert workspace.worked_reasons(edited, fresh) == ["the answer cell 'f' has been edited"]
    ran = _notebook([dict(fresh["cells"][0], execution_count=3)])
    assert workspace.worked_reasons(ran, fresh) == ["1 cell(s) have been run (they have outputs)"]
    # An author's change (new prose, a new stub) is not work.
    author = _notebook([_solution("f", "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()"),
                        {"cell_type": "markdown", "source": "new", "metadata": {}}])
    assert workspace.worked_reasons(fresh, author) == []
    with pytest.raises(TypeError, match="notebook must be a notebook dict"):
        workspace.worked_reasons([], fresh)


def _fake_report(path, limits=None, lesson=None):
    slug = Path(path).stem
    from autograder.exercises import lessons
    from autograder.runner import PropertyResult, Verdict

    exs = lessons()[slug]
    verdicts = [Verdict(e.id, e.title, e.points if i == 0 else 0.0, e.points,
                        [PropertyResult("test_x", e.points if i == 0 else 0.0, e.points, i == 0, "" if i == 0 else "not yet")])
                for i, e in enumerate(exs)]
    return GradeResult(slug, verdicts, notebook=str(path))


def test_check_folder_progress_table_and_total(tmp_path, monkeypatch, capsys):
    import autograder.notebook

    work = tmp_path / "work"
    workspace.start_workspace(work)
    mine = work / FIRST / f"{FIRST}.ipynb"
    mine.write_text(mine.read_text().replace("raise NotImplementedError()", "return 1", 1))
    graded = []
    monkeypatch.setattr(autograder.notebook, "check_notebook",
                        lambda p, **kw: graded.append(Path(p).name) or _fake_report(p, **kw))
    report = workspace.check_workspace(work)
    assert graded == [f"{FIRST}.ipynb"]  # notebooks as handed out are not run
    statuses = {r.lesson: r.status for r in report.lessons}
    assert statuses[FIRST] == "graded" and set(statuses.values()) == {"graded", "not started"}
    first = report.lessons[0]
    assert first.passed_exercises == 1 and first.score > 0 and not report.passed
    from autograder.exercises import lessons

    assert report.max_score == sum(e.points for slug in statuses for e in lessons()[slug])
    assert main(["check", str(work)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "lesson" in out and "exercises passed" in out and "total" in out and "not started" in out
    assert f"{first.score:g}/{report.max_score:g}" in out
    assert main(["check", str(work), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["score"] == report.score and data["lessons"][0]["status"] == "graded"


def test_check_empty_folder_says_what_to_do(tmp_path, capsys):
    assert main(["check", str(tmp_path)]) == 2
    assert "supercourse start" in capsys.readouterr().err


def test_missing_notebook_answers_at_once():
    """No notebook machinery (nbformat, seconds to import) is loaded to say a file is missing."""
    code = (
        "import sys; from supercourse.cli import main\n"
        "rc = main(['check', 'no-such-lesson.ipynb'])\n"
        "print(rc, 'nbformat' in sys.modules, 'nbclient' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["2", "False", "False"], proc.stdout + proc.stderr
    assert "no such file or folder: no-such-lesson.ipynb" in proc.stderr


def _built_copy(tmp_path: Path) -> Path:
    release = tmp_path / "release"
    shutil.copytree(LESSONS / FIRST, release / FIRST)
    return release


@pytest.mark.slow  # two nbgrader builds of lesson 01
def test_build_refuses_to_overwrite_work_unless_forced(tmp_path):
    release = _built_copy(tmp_path)
    nb_path = release / FIRST / f"{FIRST}.ipynb"
    nb = json.loads(nb_path.read_text())
    for cell in nb["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("solution"):
            cell["source"] = "def generate_batch(*a):\n    return 1\n"
            break
    nb_path.write_text(json.dumps(nb))
    checkpoint = release / FIRST / ".ipynb_checkpoints" / f"{FIRST}-checkpoint.ipynb"
    checkpoint.parent.mkdir()
    checkpoint.write_text("{}")
    worked = nb_path.read_bytes()
    with pytest.raises(ValueError, match=r"not overwriting notebooks that hold work.*has been edited.*--force"):
        build.build_lessons([FIRST], release)
    assert nb_path.read_bytes() == worked
    build.build_lessons([FIRST], release, force=True)
    assert nb_path.read_bytes() == (LESSONS / FIRST / f"{FIRST}.ipynb").read_bytes()
    assert checkpoint.read_text() == "{}"  # JupyterLab's autosaves survive a build
