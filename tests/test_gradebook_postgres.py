"""The gradebook in PostgreSQL (issue 20, item 5): two ``supercourse course grade`` runs write one gradebook at
once (overlapping students), and nothing is lost or duplicated. The test starts Debian's PostgreSQL itself."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from autograder import throughput
from autograder.classgrade import release_lesson
from autograder.command import init_course
from autograder.sandbox import sandbox_available

BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
LESSON = throughput.LESSON
pytest.importorskip("psycopg")


def _as_postgres(command: str) -> None:
    user = ["su", "postgres", "-s", "/bin/sh", "-c"] if os.geteuid() == 0 else ["sh", "-c"]
    subprocess.run(user + [command], check=True, capture_output=True, timeout=120)


@pytest.fixture
def postgres(tmp_path):
    if not BIN or not (Path(BIN[-1]) / "initdb").exists():
        pytest.skip("Debian's postgresql is not installed (apt-get install postgresql)")
    b = BIN[-1]
    d = Path(tempfile.mkdtemp(prefix="scpg-", dir="/tmp"))  # short (a socket path) and reachable by postgres
    if os.geteuid() == 0:
        shutil.chown(d, "postgres")
    _as_postgres(f"{b}/initdb -D {d}/data -A trust -U grader && {b}/pg_ctl -D {d}/data -w "
                 f"-o '-k {d} -p 54329 -c listen_addresses=' -l {d}/log start && "
                 f"{b}/createdb -h {d} -p 54329 -U grader gradebook")
    try:
        yield f"postgresql+psycopg://grader@/gradebook?host={d}&port=54329"
    finally:
        _as_postgres(f"{b}/pg_ctl -D {d}/data -m immediate stop")
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.skipif(not sandbox_available(), reason="needs bubblewrap (Linux user namespaces)")
def test_two_graders_at_once_lose_and_duplicate_nothing(tmp_path, postgres):
    from nbgrader.api import Gradebook

    course = init_course(tmp_path / "course")
    with open(course / "nbgrader_config.py", "a") as fh:
        fh.write(f"get_config().CourseDirectory.db_url = {postgres!r}\n")
    release_lesson(course, LESSON)
    students = throughput.simulated_class(course / "submitted", 8, ("blank", "blank", "blank", "honest"))
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    runs = [subprocess.Popen([str(Path(sys.executable).parent / "supercourse"), "course", "grade", LESSON, "--course", str(course),
                              "--student", pattern], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for pattern in ("student-00[0-4]*", "student-00[3-7]*")]  # 003 and 004 are graded by both
    for run in runs:
        out = run.communicate(timeout=500)[0]
        assert run.returncode == 0, out[-3000:]
    with Gradebook(postgres, "supercourse") as gb:
        rows = [(s.student_id, s.score) for s in gb.assignment_submissions(LESSON)]
    expected = {path.parent.parent.name: (18.0 if kind == "honest" else 0.0) for kind, path in students}
    assert len(rows) == len(expected) and dict(rows) == expected
