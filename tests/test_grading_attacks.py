"""The adversarial catalogue: hostile submissions graded together with honest ones, both ways.

Every student of :mod:`attacks` is put in one scratch course and graded with
the instructor's ``nbgrader autograde`` and with ``supercourse check``. Each
must get exactly the score it deserves under both, the honest students keep
full marks, every fault is reported with student, exercise and reason, and
nothing outside the sandbox changed: the installed course's files, the
course's ``nbgrader_config.py``, other students' submissions, ``HOME``, the
host's ``/tmp``; no process is left behind.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from attacks import FULL, LESSON, STUDENTS, write
from autograder.command import init_course
from autograder.nbgrader_settings import REPO_ROOT
from autograder.notebook import check_notebook
from autograder.sandbox import sandbox_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sandbox_available(), reason="needs bubblewrap (Linux user namespaces)"),
]

CELL_TIMEOUT = 10


def _digest(paths: list[Path]) -> dict[str, str]:
    out = {}
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        for p in files:
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _processes_with(marker: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(f"{pid}: {cmdline[:120]}")
    return found


def _nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, capture_output=True, text=True, env=env)


def test_every_attack_gets_what_it_deserves_and_harms_nobody(tmp_path):
    course = init_course(tmp_path / "course")
    proc = _nbgrader(course, "generate_assignment", LESSON)
    assert proc.returncode == 0, proc.stderr[-3000:]
    marker = f"supercourse-attack-{uuid.uuid4().hex[:8]}"
    paths = {"course": str(course), "repo": str(REPO_ROOT), "home": str(Path.home()), "marker": marker}
    release = course / "release" / LESSON / f"{LESSON}.ipynb"
    solution = course / "source" / LESSON / f"{LESSON}.ipynb"
    notebooks = {s.name: write(s, release, solution, course / "submitted" / s.name / LESSON, **paths) for s in STUDENTS}

    watched = [REPO_ROOT / "autograder", REPO_ROOT / "supercourse", course / "nbgrader_config.py", course / "source"]
    before = _digest(watched)
    submissions_before = _digest([course / "submitted"])
    startup = Path.home() / ".ipython" / "profile_default" / "startup"
    startup_before = sorted(os.listdir(startup)) if startup.is_dir() else []

    proc = _nbgrader(course, "autograde", LESSON, f"--SandboxedGrade.cell_timeout={CELL_TIMEOUT}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    time.sleep(6)  # longer than the detached process's sleep: had it survived, it would have struck by now
    proc = _nbgrader(course, "generate_feedback", LESSON)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = _nbgrader(course, "export", "--to", "grades.csv")
    assert proc.returncode == 0, proc.stderr[-3000:]

    with open(course / "grades.csv", newline="") as fh:
        rows = {r["student_id"]: r for r in csv.DictReader(fh) if r["assignment"] == LESSON}
    got = {s.name: float(rows[s.name]["raw_score"]) for s in STUDENTS}
    deserved = {s.name: float(s.deserved) for s in STUDENTS}
    assert got == deserved, {name: (got[name], deserved[name]) for name in got if got[name] != deserved[name]}
    assert {float(r["max_score"]) for r in rows.values()} == {float(FULL)}

    # Feedback shows what the gradebook holds: each check cell's result is the score nbgrader saved.
    for s in STUDENTS:
        html = (course / "feedback" / s.name / LESSON / f"{LESSON}.html").read_text()
        assert f"Score: {s.deserved:g}" in html.replace(".0 /", " /").replace(".0<", "<") or f"{s.deserved:g} / {FULL}" in html

    # Nothing outside the sandbox changed.
    assert _digest(watched) == before
    assert _digest([course / "submitted"]) == submissions_before
    assert (sorted(os.listdir(startup)) if startup.is_dir() else []) == startup_before
    assert not list(Path("/tmp").glob(f"{marker}*"))
    assert _processes_with(marker) == []
    assert _processes_with("sleep 30") == []

    # The instructor sees who could not be graded normally, which exercise, and why.
    report = [json.loads(line) for line in (course / "grading-report.jsonl").read_text().splitlines()]
    reported = {(r["student"], r["exercise"]) for r in report}
    for student, exercise in [
        ("delegate-aliases", "01.generate_batch"), ("delegate-subclass-exec", "01.ToyModel"),
        ("faults-loop-and-segfault", "01.generate_batch"), ("faults-loop-and-segfault", "01.ToyModel"),
        ("faults-exit-stderr-memory", "01.importance_loss"),
    ]:
        assert (student, exercise) in reported, f"{student} {exercise} not in the report {sorted(reported)}"
    assert not {r["student"] for r in report} & {"aa-honest", "zz-honest", "metadata-edits", "cross-student"}

    # `supercourse check` gives every student the same score.
    for s in STUDENTS:
        result = check_notebook(notebooks[s.name], cell_timeout=CELL_TIMEOUT, lesson=LESSON, sandbox=True)
        assert result.score == s.deserved, (s.name, result.score, [(e["name"], e["message"]) for e in result.exercises])
    assert _digest(watched) == before
    assert _processes_with(marker) == []
