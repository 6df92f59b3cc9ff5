"""Lesson 11's checks bite and are fair, and its prose quotes what was measured.

* the solution notebook's implementations score full marks, the released stubs zero;
* every mistake of ``mistakes.py`` loses points with a message containing its keyword;
* every correct implementation of ``alternatives.py`` keeps full marks;
* the closing note's numbers are the ones ``figures.py`` measured (``figures/numbers.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from autograder.exercises import get_exercise
from autograder.lessons import get_lesson
from autograder.toolkit.testing import assert_full_marks, assert_rejected, grade
from lesson_tools import lesson_namespace, solution_namespace
from supercourse.experiments.many_models import INDEPENDENT

LESSON = "11-many-models"
HERE = Path(__file__).resolve().parent
NAMES = ["binary_contexts", "complex_contexts", "rotation_contexts", "context_powers", "train_sequential", "interference"]
MISTAKES = get_lesson(LESSON).module("mistakes").MISTAKES
ALTERNATIVES = get_lesson(LESSON).module("alternatives").ALTERNATIVES


def test_points_per_exercise():
    assert [get_exercise(f"11.{n}").points for n in NAMES] == [3, 3, 3, 3, 5, 3]
    assert set(MISTAKES) == set(ALTERNATIVES) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_the_solution_keeps_full_marks(name):
    verdict = grade(f"11.{name}", solution_namespace(LESSON)[name])
    assert verdict.passed, verdict.report()


@pytest.mark.parametrize("name", NAMES)
def test_the_stub_scores_zero(name):
    verdict = grade(f"11.{name}", lesson_namespace(LESSON)[name])
    assert verdict.points == 0, verdict.report()


@pytest.mark.parametrize("name", NAMES)
def test_at_least_six_mistakes_and_three_alternatives(name):
    assert len(MISTAKES[name]) >= 6 and len(ALTERNATIVES[name]) >= 3


@pytest.mark.parametrize("name, mistake", [(n, m) for n, ms in MISTAKES.items() for m in ms],
                         ids=lambda v: v if isinstance(v, str) else repr(v))
def test_every_mistake_loses_points_and_is_named(name, mistake):
    assert_rejected(f"11.{name}", mistake)


@pytest.mark.parametrize("name, implementation", [(n, f) for n, fs in ALTERNATIVES.items() for f in fs],
                         ids=lambda v: v if isinstance(v, str) else v.__name__)
def test_correct_code_written_differently_keeps_full_marks(name, implementation):
    assert_full_marks(f"11.{name}", implementation)


# --------------------------------------------------------------------------- the prose quotes the measurements


def _closing_note() -> str:
    nb = nbformat.read(HERE / f"{LESSON}.ipynb", as_version=4)
    return next(c.source for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("## Closing note"))


def quoted_numbers() -> dict[str, str]:
    """The measured numbers the closing note must quote, formatted as it quotes them, from ``figures/numbers.json``."""
    numbers = json.loads((HERE / "figures" / "numbers.json").read_text())
    rows = numbers["toy"]

    def mean(setting, d, K):
        return next(r["mean"] for r in rows if r["setting"] == setting and r["d"] == d and r["K"] == K)

    out = {f"B{d}_{K}": f"{mean('binary', d, K):.3f}" for d, Ks in ((10, (2, 5, 10, 20, 50)), (50, (2, 5, 10, 20))) for K in Ks}
    agree = [mean("binary", d, K) / value for d, row in INDEPENDENT.items() for K, value in row.items()]
    out["AGREE_MIN"], out["AGREE_MAX"] = f"{min(agree):.2f}", f"{max(agree):.2f}"
    k50 = next(r["errors"] for r in rows if r["setting"] == "binary" and r["d"] == 10 and r["K"] == 50)
    out["K50_MIN"], out["K50_MAX"] = f"{min(k50):.2f}", f"{max(k50):.2f}"
    none = [e for r in rows if r["setting"] == "no contexts" for e in r["errors"]]
    none_means = [r["mean"] for r in rows if r["setting"] == "no contexts"]
    out["NONE_MEAN"] = f"{sum(none_means) / len(none_means):.2f}"
    out["NONE_MIN"], out["NONE_MAX"] = f"{min(none):.2f}", f"{max(none):.2f}"
    ratios = [r["mean"] / r["prediction"] for r in rows if r["setting"] == "binary"]
    out["RATIO_MIN"], out["RATIO_MAX"] = f"{min(ratios):.2f}", f"{max(ratios):.2f}"
    fits = [r["mean"] / (sum(r["interference_prediction"]) / len(r["interference_prediction"]))
            for r in rows if r["setting"] != "no contexts"]
    out["FIT_MIN"], out["FIT_MAX"] = f"{min(fits):.2f}", f"{max(fits):.2f}"
    half = [r["mean"] / mean("binary", r["d"], r["K"]) for r in rows if r["setting"] == "complex"]
    out["COMPLEX_HALF"] = f"{sum(half) / len(half):.2f}"
    powers = [r["mean"] / mean(r["setting"].split(",")[0], r["d"], r["K"]) for r in rows if "powers" in r["setting"]]
    out["POWERS"] = f"{sum(powers) / len(powers):.2f}"
    for kind in ("none", "binary", "complex", "rotation"):
        final = numbers["digits"][kind]["task1_final"]
        out[f"DIGITS_{kind.upper()}"] = f"{sum(final) / len(final):.2f} ({min(final):.2f}-{max(final):.2f})"
    return out


def test_the_closing_note_quotes_the_measured_numbers():
    text = _closing_note()
    assert "@" not in text, "a placeholder was left in the closing note"
    for key, value in quoted_numbers().items():
        assert value in text, f"{key}: the closing note should quote {value} (figures/numbers.json)"
