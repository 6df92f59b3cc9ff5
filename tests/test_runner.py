"""The check machinery: partial credit, messages, time limits, stdout only, forbidden shortcuts."""

import json
import warnings

import pytest
import torch

from autograder import exercises as registry
from autograder.runner import RESULTS_ENV, check, run_exercise


@pytest.fixture(autouse=True)
def fake_lesson(monkeypatch):
    monkeypatch.setattr(registry, "CHECK_MODULES", registry.CHECK_MODULES + ("fake_checks",))


def good(x):
    return x * 2


def test_correct_implementation_gets_full_points():
    v = run_exercise("98.double", good)
    assert (v.points, v.max_points, v.passed) == (3, 3, True)
    assert v.message == "all 2 checks passed"
    assert repr(v) == "3"  # nbgrader reads this as the cell's partial credit


def test_partial_credit_needs_every_parametrized_case():
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

    v = run_exercise("98.double", loops, time_limit=0.3)
    assert v.points == 0
    assert "took longer than 0.3 s" in v.message
    assert v.seconds < 3  # later properties fail at once instead of each waiting again


def test_forbidden_shortcut_scores_zero():
    def lazy(x):
        return x.mul(2)

    v = run_exercise("98.double", lazy)
    assert v.points == 0 and "implement this yourself" in v.message


def test_missing_function_scores_zero():
    v = run_exercise("98.double", None)
    assert v.points == 0 and "`double` is not defined" in v.message


def test_check_prints_only_to_stdout(capfd):
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


def test_forbidden_names_in_comments_and_docstrings_are_fine():
    def honest(x):
        """Unlike x.mul(2), this adds."""
        # x.mul(2) would be the shortcut
        return x + x

    v = run_exercise("98.double", honest)
    assert v.points == v.max_points, v.report()


def test_forbidden_reference_behind_an_alias_scores_zero():
    import supercourse.metrics

    ns = {"norms": supercourse.metrics.feature_norms}  # made in another cell
    exec("def feature_norms(W):\n    return norms(W)\n", ns)
    v = run_exercise("03.feature_norms", ns["feature_norms"])
    assert v.points == 0
    assert "`norms`, which is `supercourse.metrics.feature_norms`" in v.message
