"""``supercourse course grade``: a class graded in parallel into nbgrader's gradebook (issue 20, item 1).

The end-to-end test grades one small lesson-01 class twice, from the same secret: by ``grade_class``
with two workers, and one submission after another by ``nbgrader autograde`` itself. Gradebook scores
and every check cell's verdict must be identical; nbgrader's own ``generate_feedback`` and ``export``
then work unchanged on the parallel course; a rerun regrades only the submission that changed; the
blank submission starts no worker; a grader that cannot start a worker writes no grade at all.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from autograder.classgrade import ClassGradeResult, _State, fingerprint, grade_class, release_lesson, submission_digest
from autograder.command import init_course
from autograder.exercises import lessons
from autograder.progress import ClassProgress, format_seconds
from autograder.sandbox import sandbox_available
from nbgrader_cli import nbgrader as _nbgrader
from submissions import make_submission, raising

LESSON = "01-sparse-features"
SEED = "0123456789abcdef0123456789abcdef"
FLAGS = ["--SandboxedGrade.cell_seconds=10", f"--SandboxedGrade.seed={SEED}"]


def test_progress_line_counts_eta_and_slowest():
    now = [100.0]
    progress = ClassProgress(5, blank=1, clock=lambda: now[0])
    assert progress.line().startswith("graded 0/5") and "ETA ?" in progress.line()
    now[0] += 1.0
    progress.done("blank-one", 0.01, blank=True)
    assert progress.eta is None  # a blank submission says nothing about how long the others take
    now[0] += 9.0
    progress.done("ann", 8.0)
    assert progress.eta == pytest.approx(10.0 / 1 * 3)  # 3 costly submissions left at 10 s each so far
    now[0] += 10.0
    progress.done("bob", 12.5)
    line = progress.line()
    assert "graded 3/5" in line and "slowest so far: bob 12.5 s" in line and "ETA 20 s" in line
    assert format_seconds(185) == "3 min 05 s" and format_seconds(3720) == "1 h 02 min"
    with pytest.raises(ValueError, match="blank must be at most total"):
        ClassProgress(2, blank=3)


def test_digests_see_what_grading_reads(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_markdown_cell("hi")])
    before = fingerprint(nb)
    nb.cells[1].source = "changed prose"
    assert fingerprint(nb) == before  # prose is not graded
    nb.cells[0].source = "x = 2"
    assert fingerprint(nb) != before
    (tmp_path / "a.ipynb").write_text("1")
    first = submission_digest(tmp_path)
    (tmp_path / "notes.txt").write_text("2")
    assert submission_digest(tmp_path) != first


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="course must be a course folder"):
        grade_class(tmp_path, LESSON)
    course = init_course(tmp_path / "course")
    with pytest.raises(ValueError, match="jobs must be a positive int"):
        grade_class(course, LESSON, jobs=0)
    with pytest.raises(ValueError, match="lesson must be released first"):
        grade_class(course, LESSON, jobs=1)


def _class(course: Path) -> dict[str, float]:
    """Write the class; return the score each student deserves."""
    exercises = lessons()[LESSON]
    everything = {ex.name for ex in exercises}
    first, last = exercises[0], exercises[-1]
    release = course / "release" / LESSON / f"{LESSON}.ipynb"
    solution = course / "source" / LESSON / f"{LESSON}.ipynb"
    total = sum(ex.points for ex in exercises)
    cases = {
        "honest": (make_submission(release, solution, everything), total),
        "blank": (make_submission(release, solution, set()), 0.0),
        "partial": (make_submission(release, solution, {first.name}), first.points),
        "raises": (make_submission(release, solution, everything, extra={last.name: raising(last)}),
                   total - last.points),
    }
    for student, (nb, _) in cases.items():
        folder = course / "submitted" / student / LESSON
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{LESSON}.ipynb")
    return {student: score for student, (_, score) in cases.items()}


def _gradebook(course: Path) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "supercourse") as gb:
        return {s.student_id: s.score for s in gb.assignment_submissions(LESSON)}


def _verdicts(course: Path, student: str) -> list[tuple[str, str, str]]:
    nb = nbformat.read(course / "autograded" / student / LESSON / f"{LESSON}.ipynb", as_version=4)
    return [(c.metadata["nbgrader"]["grade_id"], c.outputs[0]["data"]["text/plain"], c.outputs[0]["data"]["text/html"])
            for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")
            and not c.metadata["nbgrader"].get("solution")]


@pytest.mark.slow
@pytest.mark.skipif(not sandbox_available(), reason="needs bubblewrap (Linux user namespaces)")
def test_a_class_graded_in_parallel_is_graded_as_nbgrader_grades_it(tmp_path):
    parallel = init_course(tmp_path / "parallel")
    serial = init_course(tmp_path / "serial")
    for course in (parallel, serial):
        release_lesson(course, LESSON)
        expected = _class(course)

    result = grade_class(parallel, LESSON, jobs=2, argv=FLAGS, show_progress=False)
    _nbgrader(serial, "autograde", LESSON, *FLAGS)  # nbgrader's own: one submission after another

    assert sorted(result.graded) == sorted(expected) and not result.failed and not result.skipped
    assert result.scores == pytest.approx(expected)
    assert _gradebook(parallel) == pytest.approx(expected) == _gradebook(serial)
    for student in expected:
        if student != "blank":  # see below
            assert _verdicts(parallel, student) == _verdicts(serial, student), student
    # The blank one scores the same, but starts no worker here. (Under `nbgrader autograde` SandboxedGrade
    # does not learn the release's own cells, `given`, which RebuildFromRelease found in nbgrader's other
    # pass, so it runs the stubs in a worker and its messages name each stub's call.)
    assert [v[:2] for v in _verdicts(parallel, "blank")] == [v[:2] for v in _verdicts(serial, "blank")]
    assert result.blank == ["blank"]
    report = [json.loads(line) for line in (parallel / "grading-report.jsonl").read_text().splitlines()]
    graded = {r["student"]: r for r in report if r["kind"] == "graded"}
    assert graded["blank"]["workers"] == 0 and graded["honest"]["workers"] >= 1
    assert {r["seed"] for r in graded.values()} == {SEED}

    # nbgrader's own tools read the gradebook unchanged.
    _nbgrader(parallel, "generate_feedback", LESSON)
    _nbgrader(parallel, "export", "--to", "grades.csv")
    assert all((parallel / "feedback" / s / LESSON / f"{LESSON}.html").is_file() for s in expected)
    with open(parallel / "grades.csv", newline="") as fh:
        exported = {r["student_id"]: float(r["raw_score"]) for r in csv.DictReader(fh) if r["assignment"] == LESSON}
    assert exported == pytest.approx(expected)

    # A rerun grades only what changed: partial now solves everything, and a new student arrives blank.
    exercises = lessons()[LESSON]
    release = parallel / "release" / LESSON / f"{LESSON}.ipynb"
    solution = parallel / "source" / LESSON / f"{LESSON}.ipynb"
    nbformat.write(make_submission(release, solution, {ex.name for ex in exercises}),
                   parallel / "submitted" / "partial" / LESSON / f"{LESSON}.ipynb")
    (parallel / "submitted" / "late" / LESSON).mkdir(parents=True)
    nbformat.write(make_submission(release, solution, set()), parallel / "submitted" / "late" / LESSON / f"{LESSON}.ipynb")
    again = grade_class(parallel, LESSON, jobs=2, argv=FLAGS, show_progress=False)
    assert sorted(again.graded) == ["late", "partial"] and sorted(again.skipped) == ["blank", "honest", "raises"]
    assert again.scores == {"late": 0.0, "partial": expected["honest"]}
    assert _gradebook(parallel) == pytest.approx({**expected, "partial": expected["honest"], "late": 0.0})


@pytest.mark.skipif(not sandbox_available(), reason="needs bubblewrap (Linux user namespaces)")
def test_a_grader_that_cannot_start_a_worker_writes_no_grade(tmp_path):
    course = init_course(tmp_path / "course")
    release_lesson(course, LESSON)
    _class(course)
    with pytest.raises(SystemExit, match="no grade was written"):
        grade_class(course, LESSON, jobs=2, argv=["--SandboxedGrade.startup_seconds=0.001"], show_progress=False)
    assert _gradebook(course) == {}
    assert not (course / "autograded").exists() or not any((course / "autograded").rglob("*.ipynb"))


def test_the_result_says_submissions_per_minute():
    result = ClassGradeResult(LESSON, 2, graded=["a", "b", "c"], seconds=30.0)
    assert result.per_minute == pytest.approx(6.0)
    assert json.loads(json.dumps(result.to_json()))["per_minute"] == 6.0


_ENTER = """
import sys, time
from pathlib import Path
from autograder.classgrade import _State
state = _State(Path(sys.argv[1]))
print("ready", flush=True)
with state.entering(sys.argv[2]):
    print(time.monotonic(), flush=True)
"""


def test_two_graders_never_enter_one_student_at_once(tmp_path):
    """nbgrader looks a student's submission up, then adds it: two graders doing that at once both add it and
    the second fails on the gradebook's unique key (CI saw it with PostgreSQL). Entering holds a per-student lock
    shared by every grader of the course folder; other students are not held up."""
    def child(student):
        return subprocess.Popen([sys.executable, "-c", _ENTER, str(tmp_path), student], stdout=subprocess.PIPE, text=True)

    with _State(tmp_path).entering("ada"):
        bob = child("bob")
        assert bob.communicate(timeout=120)[0].startswith("ready"), "another student's entry waited for ada's"
        ada = child("ada")
        assert ada.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        released = time.monotonic()
    entered = float(ada.communicate(timeout=120)[0])
    assert entered >= released, "a second grader entered a student another grader was entering"


_THREADS = """
import os
from concurrent.futures import ProcessPoolExecutor
import torch
from autograder.classgrade import _context, _pool_setup
if __name__ == "__main__":
    with ProcessPoolExecutor(max_workers=1, mp_context=_context(), initializer=_pool_setup) as pool:
        print(torch.get_num_threads(), pool.submit(torch.get_num_threads).result())
"""


def test_each_grading_process_computes_on_one_thread(tmp_path):
    """There is a grading process per core: torch must not start a thread per core in each as well (with the
    instructor's environment, which sets no OMP_NUM_THREADS, 2 processes ran 4 threads on 2 cores: 28% more CPU
    per submission)."""
    script = tmp_path / "threads.py"
    script.write_text(_THREADS)
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120,
                         check=True).stdout.split()
    assert out[1] == "1", f"a grading process computes on {out[1]} threads (the instructor's process: {out[0]})"
