"""The grading-throughput benchmark (``supercourse course bench``): its class, its modes, its figures."""

from __future__ import annotations

import json

import nbformat
import pytest

from autograder import throughput
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


def test_ratios_are_medians_of_the_rounds():
    result = throughput.ThroughputResult(3, 2, True, 60.0, 3.0, {}, {
        "in-kernel": [10.0, 30.0, 20.0], "out of process": [4.0, 6.0, 5.0], "sandboxed": [6.0, 5.0, 7.0]})
    assert result.ratios == pytest.approx({"sandboxed / in-kernel": 0.3, "sandboxed / out of process": 1.2})
    assert json.loads(json.dumps(result.to_json()))["medians"]["in-kernel"] == 20.0


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="rounds"):
        throughput.run_benchmark(3, rounds=0, folder=tmp_path)
    with pytest.raises(ValueError, match="modes"):
        throughput.run_benchmark(3, modes=("sideways",), folder=tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(not sandbox_available(), reason="needs bubblewrap (Linux user namespaces)")
def test_a_small_class_is_graded_in_parallel_with_deserved_scores(tmp_path):
    result = throughput.run_benchmark(3, jobs=2, rounds=1, folder=tmp_path)
    # honest: full marks; blank: nothing; faulty: its looping generate_batch and crashing
    # importance_loss score 0, ToyModel (graded between them, in a restarted worker) keeps its points.
    assert result.scores == {"honest": [FULL], "blank": [0.0], "faulty": [6.0]}
    assert result.sandboxed and result.submissions_per_minute > 0
    assert set(result.per_submission) == {"in-kernel", "out of process", "sandboxed"}
    assert all(t > 0 for times in result.per_submission.values() for t in times)
    assert set(result.ratios) == {"sandboxed / in-kernel", "sandboxed / out of process"}
