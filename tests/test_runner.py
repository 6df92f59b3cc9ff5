"""The check machinery: partial credit, messages, time limits, stdout only, references behind aliases."""

import json
import os
import warnings
from pathlib import Path

import pytest
import torch

from autograder import exercises as registry
from autograder import lessons as catalog
from autograder.limits import DEFAULT_LIMITS
from autograder.runner import RESULTS_ENV, check, run_exercise

FAKE = Path(__file__).with_name("fake_lesson") / "98-fake"


@pytest.fixture(autouse=True)
def fake_lesson(monkeypatch, tmp_path):
    """The course's lessons plus a tiny fake one (98-fake), discovered as any lesson folder is."""
    root = tmp_path / "solutions"
    root.mkdir()
    for lesson in catalog.all_lessons():
        os.symlink(lesson.folder, root / lesson.slug)
    os.symlink(FAKE, root / FAKE.name)
    monkeypatch.setattr(catalog, "SOLUTIONS", root)
    registry._load.cache_clear()
    yield
    registry._load.cache_clear()


def good(x):
    return x * 2


def test_correct_implementation_gets_full_points():
    v = run_exercise("98.double", good)
    assert (v.points, v.max_points, v.passed) == (3, 3, True)
    assert v.message == "all 2 checks passed"
    assert repr(v) == "3"  # nbgrader reads this as the cell's partial credit


def test_partial_credit_needs_every_case_of_a_property():
    v = run_exercise("98.double", lambda x: x.abs() * 2)  # wrong only for the negative case
    assert v.points == 1 and not v.passed
    assert "double(-2.0) should be -4.0" in v.message


def test_not_implemented_gets_zero_with_a_hint():
    def stub(x):
        raise NotImplementedError()

    v = run_exercise("98.double", stub)
    assert v.points == 0
    assert "not implemented yet" in v.message


def test_exceptions_name_the_learners_line():
    def broken(x):
        return x @ torch.ones(5)

    v = run_exercise("98.double", broken)
    assert v.points == 0
    assert "raised RuntimeError" in v.message and "x @ torch.ones(5)" in v.message


def test_infinite_loop_times_out_and_stops_the_rest_quickly():
    def loops(x):
        while True:
            pass

    calls = []

    def counted(x):
        calls.append(1)
        return loops(x)

    v = run_exercise("98.double", counted, DEFAULT_LIMITS.with_(property_seconds=0.3))
    assert v.points == 0
    assert "took longer than 0.3 s" in v.message
    assert len(calls) == 1, "later properties fail at once instead of each waiting again"
    assert all(p.message == v.message for p in v.properties)


def test_missing_function_scores_zero():
    v = run_exercise("98.double", None)
    assert v.points == 0 and "`double` is not defined" in v.message


def test_check_prints_only_to_stdout_outside_a_notebook(capfd):
    import sys

    def noisy(x):
        print("debug", file=sys.stderr)
        warnings.warn("careful")
        return x * 2

    v = check("98.double", noisy)
    out, err = capfd.readouterr()
    assert err == ""
    assert "[PASS] 98.double" in out and v.passed


def test_check_reports_failures_on_stdout(capfd):
    check("98.double", lambda x: x)
    out, err = capfd.readouterr()
    assert err == ""
    assert "[FAIL] 98.double Double a tensor: 1/3 points" in out
    assert "double(1.0) should be 2.0" in out


def test_results_file_collects_json_lines(tmp_path, monkeypatch):
    path = tmp_path / "r.jsonl"
    monkeypatch.setenv(RESULTS_ENV, str(path))
    check("98.double", good)
    check("98.double", lambda x: x)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["id"], r["points"], r["passed"]) for r in rows] == [("98.double", 3, True), ("98.double", 1, False)]


def test_registry_sums_points_and_rejects_unknown_ids():
    ex = registry.get_exercise("98.double")
    assert ex.points == 3 and ex.function == "double" and ex.lesson == "98-fake"
    with pytest.raises(KeyError, match="no exercise '98.triple'"):
        registry.get_exercise("98.triple")


def test_any_name_is_fine():
    def honest(x):
        """Unlike mul(2), this adds."""
        feature_norms = sparse_uniform = correlation = x  # ordinary names that were once refused
        return feature_norms + sparse_uniform if correlation is x else None

    v = run_exercise("98.double", honest)
    assert v.points == v.max_points, v.report()


def test_in_place_edit_of_an_argument_costs_points():
    def edits(x):
        x.mul_(2)
        return x

    v = run_exercise("98.double", edits)
    assert v.points == 0 and "changed its argument `x` in place" in v.message


def test_a_nan_never_passes():
    def nan(x):
        out = x * 2
        out[1] = float("nan")
        return out

    assert run_exercise("98.double", nan).points == 1  # the shape property holds; every value property fails


def test_the_secret_decides_the_inputs():
    seen = []

    def spy(x):
        seen.append(x.clone())
        return x * 2

    for secret in (1, 1, 2):
        run_exercise("98.double", spy, secret=secret)
    first, again, other = seen[0], seen[len(seen) // 3], seen[2 * len(seen) // 3]
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_a_reference_behind_an_alias_scores_zero():
    import supercourse.metrics

    ns = {"norms": supercourse.metrics.feature_norms}  # made in another cell
    exec("def feature_norms(W):\n    return norms(W)\n", ns)
    v = run_exercise("03.feature_norms", ns["feature_norms"])
    assert v.points == 0
    assert "`norms`, which is `supercourse.metrics.feature_norms`" in v.message
