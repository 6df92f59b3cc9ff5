"""Lesson 12's own tests: what the generic proof (tests/test_lesson_proofs.py) does not already hold.

The generic proof grades the solution, the stub, every mistake of ``mistakes.py`` and every alternative of
``alternatives.py``; here: the points, that the mistakes issue 19 names are in the table and are *diagnosed*
(the message names the cause, not only the numbers), and that the numbers the notebook's prose quotes are the
library's.
"""

from __future__ import annotations

import json
import re

import nbformat
import pytest

from autograder.exercises import get_exercise
from autograder.lessons import get_lesson
from autograder.toolkit.testing import grade, messages
from supercourse.experiments import disentanglement as exp

LESSON = "12-disentanglement"
NAMES = ["discretize", "mutual_information", "mig", "dci_disentanglement", "linear_cka"]
SECRET = 0x12_D15E_4A46

# issue 19: "a wrong binning of zeros, entropy in the wrong base, normalising by the wrong entropy,
# uncentred CKA, CKA on un-normalised Gram matrices"
REQUIRED = [
    ("discretize", "zeros_in_quantile_bins", "give every 0 the label 0"),
    ("discretize", "edges_over_all_values", "quantiles of the non-zero values only"),
    ("mig", "no_zero_bin", "label 0 for exactly zero"),
    ("mutual_information", "bits", "in bits"),
    ("dci_disentanglement", "natural_log", "natural log"),
    ("mig", "normalised_by_the_code", "entropy of the factor"),
    ("linear_cka", "uncentred", "without centring"),
    ("linear_cka", "unnormalised", "un-normalised Gram matrices"),
]


def _mistake(name: str, mistake: str):
    table = get_lesson(LESSON).module("mistakes").MISTAKES[name]
    return next(m for m in table if m.name == mistake)


def test_points_per_exercise():
    assert [get_exercise(f"12.{n}").points for n in NAMES] == [4, 4, 4, 4, 4]


def test_references_are_declared():
    assert "supercourse.disentanglement.mig_per_factor" in get_exercise("12.mig").reference
    assert all(get_exercise(f"12.{n}").reference for n in NAMES)


@pytest.mark.parametrize("name, mistake, diagnosis", REQUIRED, ids=[f"{n}-{m}" for n, m, _ in REQUIRED])
def test_the_issues_mistakes_are_diagnosed(name, mistake, diagnosis):
    verdict = grade(f"12.{name}", _mistake(name, mistake).implementation, secret=SECRET)
    assert verdict.points < verdict.max_points
    assert diagnosis in messages(verdict), messages(verdict)


def _cell(grade_id: str) -> str:
    nb = nbformat.read(get_lesson(LESSON).notebook, as_version=4)
    return next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def test_the_codes_table_in_the_prose_is_the_measured_one():
    # figures/summary.json is the study the expected figures come from (tests/test_experiment_disentanglement.py
    # recomputes its codes with the library and holds the rest of the prose to it)
    measured = json.loads((get_lesson(LESSON).folder / "figures" / "summary.json").read_text(encoding="utf-8"))
    rows = {r["code"]: r for r in measured["codes"]["rows"]}
    text = _cell("readout_expected")
    for name, prose in (("identity", "identity"), ("rotated 45°", "rotated 45°"), ("pentagon", "pentagon"),
                        ("read-out b=0", "read-out, $b = 0$"), ("read-out b=-0.1", "read-out, $b = -0.1$"),
                        ("read-out b=-0.2", "read-out, $b = -0.2$"), ("read-out b=-0.31", "read-out, $b = -0.31$")):
        line = next(ln for ln in text.splitlines() if ln.startswith(f"| {prose} |"))
        numbers = [float(x) for x in re.findall(r"(?<![\d.])\d\.\d{3}(?![\d])", line)]
        r = rows[name]
        assert f"{r['mig']:.3f}" in line, (line, r)
        assert f"{abs(r['dci']):.3f}" in line and f"{r['dci_lasso']:.3f}" in line, (line, r)
        ind_mig, ind_dci = exp.INDEPENDENT[name]
        assert ind_mig in numbers, (line, ind_mig)


def test_the_closing_table_quotes_the_independent_figures():
    text = _cell("summary")
    for name, (ind_mig, ind_dci) in exp.INDEPENDENT.items():
        assert f"{ind_mig:.3f}" in text, name
    assert "0.16" in text and "1.00" in text
