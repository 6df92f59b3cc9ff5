"""The grading-throughput benchmark (``supercourse course bench``): its class, its modes, its figures."""

from __future__ import annotations

import json

import nbformat
import pytest

from autograder import throughput
from autograder.cpu import cpu_ceiling
from autograder.exercises import lessons
from autograder.sandbox import sandbox_available

FULL = sum(ex.points for ex in lessons()[throughput.LESSON])


def test_simulated_class_cycles_through_the_kinds(tmp_path):
    students = throughput.simulated_class(tmp_path, 5)
    assert [kind for kind, _ in students] == ["honest", "blank", "faulty", "honest", "blank"]
    faulty = nbformat.read(students[2][1], as_version=4)
    sources = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in faulty.cells}
    assert "os._exit" in sources["importance_loss"] and "while True" in sources["generate_batch"]
    blank = nbformat.read(students[1][1], as_version=4)
    assert "raise NotImplementedError" in blank.cells[4].source
    for bad in (0, -1, 2.5, "3"):
        with pytest.raises(ValueError, match="n_students must be a positive int"):
            throughput.simulated_class(tmp_path, bad)


def test_ratios_are_medians_of_the_rounds_and_speedup_is_one_over_many_workers():
    result = throughput.ThroughputResult(True, classes=[
        throughput.ClassRun("honest, 1 worker", 8, 1, 40.0, {"honest": [FULL] * 8}, 0.5, 1.0),
        throughput.ClassRun("honest, 2 workers", 8, 2, 21.0, {"honest": [FULL] * 8}, 1.0, 2.0),
    ], per_submission={
        "in-kernel": [10.0, 30.0, 20.0], "out of process": [4.0, 6.0, 5.0], "sandboxed": [6.0, 5.0, 7.0]})
    assert result.ratios == pytest.approx({"sandboxed / in-kernel": 0.3, "sandboxed / out of process": 1.2})
    assert result.speedup == pytest.approx(40.0 / 21.0) and result.ok
    assert result.run("honest, 1 worker").per_minute == pytest.approx(12.0)
    data = json.loads(json.dumps(result.to_json()))
    assert data["medians"]["in-kernel"] == 20.0 and data["classes"][1]["per_minute"] == pytest.approx(8 * 60 / 21)
    assert data["speedup_of_ceiling"] is None  # no ceiling measured
    result.machine["cpu_ceiling"] = 1.9
    assert result.to_json()["speedup_of_ceiling"] == pytest.approx(40.0 / 21.0 / 1.9)
    # rounds: the speed-up is of the medians, against the most workers only
    result.classes += [throughput.ClassRun("honest, 1 worker", 8, 1, 50.0, {"honest": [FULL] * 8}, 0.5, 1.0),
                       throughput.ClassRun("honest, 1 worker", 8, 1, 44.0, {"honest": [FULL] * 8}, 0.5, 1.0),
                       throughput.ClassRun("honest, 2 workers", 8, 2, 25.0, {"honest": [FULL] * 8}, 1.0, 2.0),
                       throughput.ClassRun("honest, 2 workers", 8, 2, 23.0, {"honest": [FULL] * 8}, 1.0, 2.0),
                       throughput.ClassRun("honest, 3 workers", 8, 3, 20.0, {"honest": [FULL] * 8}, 1.0, 2.0)]
    assert result.speedup == pytest.approx(44.0 / 20.0)
    result.classes = result.classes[:-1]
    assert result.speedup == pytest.approx(44.0 / 23.0)


def test_the_machines_ceiling_is_measured_against_one_process():
    # One process "at once" with itself is no speed-up; two CPU-only processes are a speed-up of more than 1 and at
    # most about 2 (however loaded the machine: both are measured under the same load).
    assert 0.6 <= cpu_ceiling(1, loops=1_000_000) <= 1.6
    assert 1.0 < cpu_ceiling(2, loops=1_000_000) <= 2.4
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="jobs must be a positive int"):
            cpu_ceiling(bad)
    with pytest.raises(ValueError, match="loops must be a positive int"):
        cpu_ceiling(1, loops=0)


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="rounds"):
        throughput.run_benchmark(3, rounds=0, folder=tmp_path)
    with pytest.raises(ValueError, match="modes"):
        throughput.run_benchmark(3, modes=("sideways",), folder=tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(not sandbox_available(), reason="needs bubblewrap (Linux user namespaces)")
def test_a_small_class_is_graded_in_parallel_with_deserved_scores(tmp_path):
    result = throughput.run_benchmark(0, 3, jobs=2, rounds=1, modes=("out of process", "sandboxed"), folder=tmp_path)
    # honest: full marks; blank: nothing; faulty: its looping generate_batch and crashing
    # importance_loss score 0, ToyModel (graded between them, in a restarted worker) keeps its points.
    mixed = result.run("mixed, 2 workers")
    assert mixed.scores == {"honest": [FULL], "blank": [0.0], "faulty": [6.0]}
    assert result.sandboxed and mixed.per_minute > 0 and mixed.blank_without_worker == 1
    assert set(result.per_submission) == {"out of process", "sandboxed"}
    assert all(t > 0 for times in result.per_submission.values() for t in times)
    assert set(result.ratios) == {"sandboxed / out of process"}
