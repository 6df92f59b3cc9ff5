"""The PrairieLearn external grader (issue 20, item 4): ``/grade/tests``, ``/grade/student``, ``/grade/results``,
run in a simulated container (bubblewrap binds ``/grade``; a cgroup gives half a CPU and 768 MB)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from autograder.exercises import lessons
from autograder.prairielearn import MAX_BYTES, TIMEOUT_SECONDS, build_grader
from autograder.sandbox import sandbox_available
from hosted import run_in_container
from submissions import make_submission

LESSON = "01-sparse-features"
EXERCISES = lessons()[LESSON]
REPO = Path(__file__).resolve().parents[1]
RELEASE = REPO / "lessons" / LESSON / f"{LESSON}.ipynb"
SOLUTION = REPO / "solutions" / LESSON / f"{LESSON}.ipynb"


def _run(tmp_path: Path, files: dict[str, bytes], extra_binds=None):
    out = build_grader(LESSON, tmp_path / "built")
    info = json.loads((out / "question" / "info.json").read_text())
    assert info["externalGradingOptions"]["timeout"] == TIMEOUT_SECONDS <= 600
    grade = tmp_path / "grade"
    shutil.copytree(out / "question" / "tests", grade / "tests")
    (grade / "student").mkdir(parents=True)
    for name, data in files.items():
        (grade / "student" / name).write_bytes(data)
    course = out / "image" / "course"
    proc = run_in_container({"/grade": grade, **(extra_binds or {})},
                            ["bash", str(out / "image" / "run_prairielearn")], 0.5, 768 * 2**20,
                            env={"PYTHONPATH": str(course)})
    results = grade / "results" / "results.json"  # the grader made the folder itself
    assert results.is_file(), proc.stdout[-3000:]
    assert results.stat().st_size < MAX_BYTES
    return proc, json.loads(results.read_text())


@pytest.mark.slow
@pytest.mark.skipif(not sandbox_available(), reason="needs bubblewrap (Linux user namespaces)")
def test_an_honest_submission_scores_one(tmp_path):
    nb = make_submission(RELEASE, SOLUTION, {ex.name for ex in EXERCISES})
    proc, results = _run(tmp_path, {f"{LESSON}.ipynb": nbformat.writes(nb).encode()})
    assert results["gradable"] is True and results["score"] == 1.0, results
    assert [t["max_points"] for t in results["tests"]] == [float(ex.points) for ex in EXERCISES]
    assert all(t["points"] == t["max_points"] and "message" in t for t in results["tests"])


@pytest.mark.skipif(not sandbox_available(), reason="needs bubblewrap (Linux user namespaces)")
def test_not_a_notebook_and_no_sandbox_are_not_gradable(tmp_path):
    _, results = _run(tmp_path / "pdf", {f"{LESSON}.ipynb": b"%PDF-1.4 not json"})
    assert results["gradable"] is False and "not a notebook" in results["format_errors"][0]
    _, results = _run(tmp_path / "nobwrap", {f"{LESSON}.ipynb": RELEASE.read_bytes()},
                      extra_binds={shutil.which("bwrap"): Path("/dev/null")})
    assert results["gradable"] is False and "no fault of yours" in results["format_errors"][0]
