"""The adversarial catalogue: hostile and messy submissions graded with honest ones, both ways.

Every student of :mod:`attacks` is put in a scratch course with its group and graded with the instructor's
``nbgrader autograde`` and with ``supercourse check``. Each must get exactly the score it deserves under
both, honest classmates keep full marks, every fault is reported with student, exercise and reason, and
nothing outside the sandbox changed: the installed course's files, the course's ``nbgrader_config.py``,
other students' submissions, ``HOME``, the host's ``/tmp``; no process of a submission outlives its
grading. The groups are separate tests so that they run in parallel.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import secrets
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from attacks import FULL, GROUPS, LESSON, POINTS, STUDENTS, write
from autograder.command import init_course
from autograder.limits import DEFAULT_LIMITS
from autograder.nbgrader_settings import REPO_ROOT
from autograder.notebook import check_notebook
from autograder.sandbox import sandbox_available
from lesson_tools import solution_namespace
from nbgrader_cli import nbgrader
from processes import alive_with
from replay import dump, record, replay_cell

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sandbox_available(), reason="needs bubblewrap (Linux user namespaces)"),
]

CELL_SECONDS = 10
SHORTER = {"faults": {"cell_seconds": 6.0, "property_seconds": 8.0},
           "time": {"cell_seconds": 5.0, "notebook_seconds": 20.0}}
"""Short limits for the test: a looping cell costs 10 s (the shipped limit is 60 s). The groups whose students
loop have no honest classmate that sleeps: there a loop costs 5-6 s, a looping property 8 s (shipped: 20 s; the
slowest honest property of any lesson takes about 3 s), and the notebook of the time group at most 20 s
(shipped: 600 s)."""


def _limits(group: str):
    return DEFAULT_LIMITS.with_(**{"cell_seconds": float(CELL_SECONDS), **SHORTER.get(group, {})})


LIMITS = _limits("")
RECORDED_SECRET = secrets.randbits(128)


def _digest(paths: list[Path]) -> dict[str, str]:
    out = {}
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        for p in files:
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _worker_leftovers() -> set[str]:
    return {p.name for p in Path("/tmp").glob("supercourse-worker-*")}


@pytest.fixture(scope="module")
def replay_table():
    """The table a learner records at home: every question the checks ask the solution, under a known secret.

    It lies in a folder anyone may read (pytest's own temporary folders are private to their owner, and the
    sandboxed worker runs as a uid of its own).
    """
    folder = Path(tempfile.mkdtemp(prefix="supercourse-recorded-at-home-"))
    folder.chmod(0o755)
    ns = solution_namespace(LESSON)
    tables = [record(f"01.{name}", ns[name], RECORDED_SECRET) for name in POINTS]
    dump(tables, folder / "answers.json")
    (folder / "answers.json").chmod(0o644)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _flags(group: str) -> list[str]:
    limits = _limits(group)
    return [f"--SandboxedGrade.{name}={getattr(limits, name)}"
            for name in ("cell_seconds", "property_seconds", "notebook_seconds")]


@pytest.mark.parametrize("group", GROUPS)
def test_every_student_gets_what_they_deserve_and_harms_nobody(group, tmp_path, replay_table, monkeypatch):
    students = [s for s in STUDENTS if s.group == group]
    course = init_course(tmp_path / "course")
    nbgrader(course, "generate_assignment", LESSON)
    marker = f"supercourse-attack-{uuid.uuid4().hex[:8]}"
    paths = {"course": str(course), "repo": str(REPO_ROOT), "home": str(Path.home()), "marker": marker,
             "replay_cell": replay_cell(replay_table / "answers.json")}
    release = course / "release" / LESSON / f"{LESSON}.ipynb"
    solution = course / "source" / LESSON / f"{LESSON}.ipynb"
    notebooks = {s.name: write(s, release, solution, course / "submitted" / s.name / LESSON, **paths) for s in students}
    # The recorded table reaches the worker on a read-only folder of the import path (a channel opened on
    # purpose: the test is of the secret, not of the channel).
    pythonpath = os.pathsep.join([str(replay_table), os.environ.get("PYTHONPATH", "")])
    monkeypatch.syspath_prepend(str(replay_table))

    watched = [REPO_ROOT / "autograder", REPO_ROOT / "supercourse", REPO_ROOT / "solutions",
               course / "nbgrader_config.py", course / "source"]
    before = _digest(watched)
    submissions_before = _digest([course / "submitted"])
    startup = Path.home() / ".ipython" / "profile_default" / "startup"
    startup_before = sorted(os.listdir(startup)) if startup.is_dir() else []
    leftovers_before = _worker_leftovers()

    start = time.monotonic()
    nbgrader(course, "autograde", LESSON, *_flags(group), env_extra={"PYTHONPATH": pythonpath})
    print(f"{group}: nbgrader autograde of {len(students)} students took {time.monotonic() - start:.0f} s")
    # Had a detached process survived, it would have struck by now.
    time.sleep(max([s.strikes_after + 2.0 for s in students if s.strikes_after], default=0.0))
    nbgrader(course, "generate_feedback", LESSON)
    nbgrader(course, "export", "--to", "grades.csv")

    with open(course / "grades.csv", newline="") as fh:
        rows = {r["student_id"]: r for r in csv.DictReader(fh) if r["assignment"] == LESSON}
    got = {s.name: float(rows[s.name]["raw_score"]) for s in students}
    deserved = {s.name: float(s.deserved) for s in students}
    assert got == deserved, {name: (got[name], deserved[name]) for name in got if got[name] != deserved[name]}
    assert {float(r["max_score"]) for r in rows.values()} == {float(FULL)}

    # Feedback shows what the gradebook holds.
    for s in students:
        html = (course / "feedback" / s.name / LESSON / f"{LESSON}.html").read_text()
        assert f"Score: {s.deserved:g}" in html.replace(".0 /", " /").replace(".0<", "<") or f"{s.deserved:g} / {FULL}" in html

    # The report names every fault with student, exercise and reason, and the secret of every grading.
    report = [json.loads(line) for line in (course / "grading-report.jsonl").read_text().splitlines()]
    graded = {r["student"]: r for r in report if r.get("kind") == "graded"}
    assert set(graded) == {s.name for s in students}
    assert len({r["seed"] for r in graded.values()}) == len(students), "each submission gets a fresh secret"
    faults = {(r["student"], r["exercise"]) for r in report if r.get("kind") == "fault"}
    for s in students:
        for exercise in s.faults:
            assert (s.name, exercise) in faults, f"{s.name} {exercise} not in the report {sorted(faults)}"
        if s.deserved == FULL:
            assert not {e for n, e in faults if n == s.name}, f"{s.name} has faults: {faults}"

    # `supercourse check` gives every student the same score.
    for s in students:
        result = check_notebook(notebooks[s.name], limits=_limits(group), lesson=LESSON, sandbox=True)
        assert result.score == s.deserved, (s.name, result.score, [(e["name"], e["message"]) for e in result.exercises])

    # Nothing outside the sandbox changed, and no process of a submission is left.
    assert _digest(watched) == before
    assert _digest([course / "submitted"]) == submissions_before
    assert (sorted(os.listdir(startup)) if startup.is_dir() else []) == startup_before
    assert not list(Path("/tmp").glob(f"{marker}*"))
    assert alive_with(marker) == []  # every process a student starts carries the marker
    assert _worker_leftovers() <= leftovers_before, "a worker left its scratch folder on the grader's disk"
    # Students' own files beside the notebook are not kept where formgrader would serve them.
    for s in students:
        for rel in s.files:
            assert not (course / "autograded" / s.name / LESSON / rel).exists(), rel


def test_the_replay_works_under_the_recorded_secret_and_earns_nothing_otherwise(tmp_path, replay_table, monkeypatch):
    """The control: the same table earns full marks when the secret is the one it was recorded under."""
    student = next(s for s in STUDENTS if s.name == "replay-recorded-answers")
    course = init_course(tmp_path / "course")
    nbgrader(course, "generate_assignment", LESSON)
    monkeypatch.syspath_prepend(str(replay_table))
    path = write(student, course / "release" / LESSON / f"{LESSON}.ipynb", course / "source" / LESSON / f"{LESSON}.ipynb",
                 tmp_path / "sub", replay_cell=replay_cell(replay_table / "answers.json"))
    recorded = check_notebook(path, limits=LIMITS, lesson=LESSON, sandbox=True, secret=RECORDED_SECRET)
    assert recorded.score == FULL, [(e["name"], e["message"]) for e in recorded.exercises]
    fresh = check_notebook(path, limits=LIMITS, lesson=LESSON, sandbox=True)
    assert fresh.score == 0
