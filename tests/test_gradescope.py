"""The Gradescope autograder (issue 20, item 3): the zip ``supercourse course gradescope LESSON`` writes, its
``run_autograder`` run in a simulated ``/autograder`` (bubblewrap binds the folders; a cgroup gives it
Gradescope's default half CPU and 768 MB), with honest, blank, crashing, hostile and non-notebook
submissions, one stopped mid-way, and one in a container where no sandbox can be made.

The course inside the container is the zip's own copy (``PYTHONPATH=/autograder/source/course``), so
what is tested is what is uploaded; only the installs of ``setup.sh`` (network) are not run.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.exercises import lessons
from autograder.gradescope import GRADESCOPE, RUN_AUTOGRADER, SETUP_SH, build_zip, results_json
from autograder.sandbox import sandbox_available
from hosted import limits_available, run_in_container
from submissions import looping, make_submission

LESSON = "01-sparse-features"
EXERCISES = lessons()[LESSON]
TOTAL = sum(ex.points for ex in EXERCISES)
REPO = Path(__file__).resolve().parents[1]
RELEASE = REPO / "lessons" / LESSON / f"{LESSON}.ipynb"
SOLUTION = REPO / "solutions" / LESSON / f"{LESSON}.ipynb"
HOSTILE = """
import json, os
for path in ("/autograder/results/results.json", "/autograder/source/supercourse-autograder.json"):
    try:
        with open(path, "w") as fh:
            fh.write(json.dumps({"score": 1000, "tests": [], "output": "FORGED"}))
    except OSError:
        pass
try:
    os.listdir("/autograder")
    print("I CAN SEE /autograder")
except OSError:
    pass
print("x" * 300_000)
"""
CRASH = "import os\ndef importance_loss(x, x_hat, importance):\n    os._exit(3)\n"


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory) -> Path:
    return build_zip(LESSON, tmp_path_factory.mktemp("zip") / "autograder.zip")


def test_zip_has_gradescopes_layout_and_installs_the_pinned_torch(autograder_zip):
    with zipfile.ZipFile(autograder_zip) as zf:
        names = set(zf.namelist())
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in zf.infolist()}
        setup = zf.read("setup.sh").decode()
    assert {"setup.sh", "run_autograder", "supercourse-autograder.json"} <= names
    assert modes["setup.sh"] == modes["run_autograder"] == 0o755
    assert f"course/solutions/{LESSON}/checks.py" in names and f"course/lessons/{LESSON}/{LESSON}.ipynb" in names
    assert "course/autograder/grader.py" in names and "course/pyproject.toml" in names
    assert not [n for n in names if n.startswith("course/solutions/") and f"/{LESSON}/" not in n], \
        "only this lesson's solutions go in the zip"
    assert "bubblewrap" in setup and "torch==" in setup and "download.pytorch.org/whl/cpu" in setup
    assert setup == SETUP_SH.format(torch=setup.split("torch==")[1].split('"')[0], settings="supercourse-autograder.json")


def test_results_follow_gradescopes_schema_before_anything_is_graded():
    data = results_json(LESSON, {}, 3.4, "nothing yet", final=False)
    assert data["score"] == 0.0 and data["execution_time"] == 3
    assert [t["max_score"] for t in data["tests"]] == [float(ex.points) for ex in EXERCISES]
    for test in data["tests"]:
        assert set(test) >= {"name", "score", "max_score", "status", "output", "visibility"}
        assert test["status"] == "failed" and "stopped" in test["output"]


def _layout(tmp_path: Path, zip_path: Path, submission: dict[str, bytes]) -> Path:
    """``/autograder`` as Gradescope lays it out: ``source/`` (the zip), ``run_autograder``, ``submission/``."""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "run_autograder").chmod(0o755)
    (root / "submission").mkdir()
    (root / "results").mkdir()
    for name, data in submission.items():
        (root / "submission" / name).write_bytes(data)
    return root


def _run(tmp_path: Path, zip_path: Path, submission: dict[str, bytes], extra_binds=None, until=None):
    root = _layout(tmp_path, zip_path, submission)
    binds = {"/autograder": root, **(extra_binds or {})}
    proc = run_in_container(binds, ["bash", "/autograder/run_autograder"], GRADESCOPE.cpus, GRADESCOPE.memory_bytes,
                            env={"PYTHONPATH": "/autograder/source/course"},
                            until=(lambda: until(root)) if until else None)
    results = root / "results" / "results.json"
    return proc, (json.loads(results.read_text()) if results.exists() else None)


def _notebook(nb) -> dict[str, bytes]:
    return {f"{LESSON}.ipynb": nbformat.writes(nb).encode()}


def _scores(results) -> dict[str, float]:
    return {t["name"].split()[0]: t["score"] for t in results["tests"]}


pytestmark_sandbox = pytest.mark.skipif(not sandbox_available(), reason="needs bubblewrap (Linux user namespaces)")


@pytest.mark.slow
@pytestmark_sandbox
def test_an_honest_but_hostile_submission_gets_exactly_its_marks(tmp_path, autograder_zip):
    nb = make_submission(RELEASE, SOLUTION, {ex.name for ex in EXERCISES})
    nb.cells.insert(3, nbformat.v4.new_code_cell(HOSTILE))
    proc, results = _run(tmp_path, autograder_zip, _notebook(nb))
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert results["score"] == TOTAL, results
    assert "FORGED" not in json.dumps(results) and "I CAN SEE" not in json.dumps(results)
    assert all(t["status"] == "passed" and t["visibility"] == "visible" for t in results["tests"])
    assert "in a sandbox" in results["output"] and results["execution_time"] >= 1
    assert results["extra_data"]["sandboxed"] is True
    settings = json.loads((tmp_path / "autograder" / "source" / "supercourse-autograder.json").read_text())
    assert settings["lesson"] == LESSON
    if limits_available():  # graded within Gradescope's defaults: 10 minutes, 768 MB, half a CPU
        assert results["execution_time"] < GRADESCOPE.timeout_seconds


@pytest.mark.slow
@pytestmark_sandbox
def test_blank_and_crashing_submissions(tmp_path, autograder_zip):
    proc, results = _run(tmp_path / "blank", autograder_zip, {f"{LESSON}.ipynb": RELEASE.read_bytes()})
    assert proc.returncode == 0 and results["score"] == 0.0
    assert all("not implemented" in t["output"] for t in results["tests"]), results["tests"]
    assert results["extra_data"]["workers"] == 0

    nb = make_submission(RELEASE, SOLUTION, {ex.name for ex in EXERCISES})
    for cell in nb.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "importance_loss":
            cell.source = CRASH
    proc, results = _run(tmp_path / "crash", autograder_zip, _notebook(nb))
    assert proc.returncode == 0, proc.stdout[-3000:]
    crashed = next(ex for ex in EXERCISES if ex.function == "importance_loss")
    assert _scores(results) == {ex.id: (0.0 if ex is crashed else float(ex.points)) for ex in EXERCISES}


@pytest.mark.slow
@pytestmark_sandbox
def test_a_submission_stopped_mid_way_still_shows_what_was_graded(tmp_path, autograder_zip):
    last = EXERCISES[-1]
    nb = make_submission(RELEASE, SOLUTION, {ex.name for ex in EXERCISES}, extra={last.name: looping(last)})

    def partial_seen(root: Path) -> bool:
        try:
            data = json.loads((root / "results" / "results.json").read_text())
        except (OSError, ValueError):
            return False
        return any(t["status"] == "passed" for t in data["tests"])

    proc, results = _run(tmp_path, autograder_zip, _notebook(nb), until=partial_seen)  # Gradescope's time-out
    assert results is not None, proc.stdout[-3000:]
    passed = [t for t in results["tests"] if t["status"] == "passed"]
    assert passed and results["score"] == sum(t["score"] for t in passed) > 0
    assert any("stopped" in t["output"] for t in results["tests"] if t["status"] == "failed")


@pytestmark_sandbox
def test_a_non_notebook_is_told_so_and_a_missing_sandbox_writes_no_score(tmp_path, autograder_zip):
    proc, results = _run(tmp_path / "pdf", autograder_zip, {"answers.pdf": b"%PDF-1.4 not a notebook"})
    assert proc.returncode == 0 and results["score"] == 0.0
    assert "no notebook was submitted" in results["output"]

    # No bubblewrap in the container: a grader fault, so no results.json (Gradescope: "autograder failed").
    proc, results = _run(tmp_path / "nobwrap", autograder_zip, {f"{LESSON}.ipynb": RELEASE.read_bytes()},
                         extra_binds={shutil.which("bwrap"): Path("/dev/null")})
    assert results is None and proc.returncode != 0
    assert "not the student's fault" in proc.stdout


def test_the_run_script_grades_the_submission_folder():
    assert "/autograder/submission" in RUN_AUTOGRADER and "/autograder/results/results.json" in RUN_AUTOGRADER
