"""Lesson 10's own tests: what the generic proof (tests/test_lesson_proofs.py) does not already hold.

The generic proof grades the solution, the stub, every mistake of ``mistakes.py`` and every alternative of
``alternatives.py``; here: the points and references, diagnoses that must name the mistake in the property
that catches it, and the prose's numbers against the reference run (``figures/reference_numbers.json``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from autograder.exercises import get_exercise
from autograder.lessons import get_lesson
from autograder.toolkit.testing import grade

LESSON = "10-memorization"
NAMES = ["finite_dataset", "train_full_batch", "data_dimensionality", "test_loss", "sweep"]
SECRET = 0x10_D0_0B1E
HERE = Path(__file__).resolve().parent


def _mistake(name: str, mistake: str):
    table = get_lesson(LESSON).module("mistakes").MISTAKES[name]
    return next(m for m in table if m.name == mistake)


def _failed(name: str, mistake: str) -> dict[str, str]:
    verdict = grade(f"10.{name}", _mistake(name, mistake).implementation, secret=SECRET)
    return {p.test: p.message for p in verdict.properties if not p.passed}


def test_points_per_exercise():
    assert [get_exercise(f"10.{n}").points for n in NAMES] == [5, 6, 4, 4, 5]


def test_references_are_declared():
    assert "supercourse.memorization.sweep" in get_exercise("10.sweep").reference
    assert "supercourse.memorization.train_points" in get_exercise("10.train_full_batch").reference
    assert all(get_exercise(f"10.{n}").reference for n in NAMES)


def test_a_wrong_schedule_is_diagnosed_from_its_trajectory():
    failed = _failed("train_full_batch", "no_warmup")
    assert set(failed) == {"test_adamw_with_warmup_and_cosine", "test_decoupled_weight_decay", "test_defaults"}, failed
    assert "linear warm-up" in failed["test_adamw_with_warmup_and_cosine"], failed


def test_adam_with_l2_is_told_to_use_adamw():
    failed = _failed("train_full_batch", "adam_l2")
    assert list(failed) == ["test_decoupled_weight_decay"], failed
    assert "torch.optim.AdamW" in failed["test_decoupled_weight_decay"]


def test_a_loss_averaged_over_features_is_named_at_the_first_step():
    failed = _failed("train_full_batch", "mean_over_features")
    assert "sum over features" in failed["test_loss_at_the_first_step"], failed


def test_the_zero_model_names_the_loss_normalisation():
    failed = _failed("test_loss", "mean_over_features")
    assert "sum over features" in failed["test_zero_model_scores_one"], failed
    failed = _failed("test_loss", "sum_over_points")
    assert "mean over the points" in failed["test_zero_model_scores_one"], failed


def test_dimensionality_of_the_inputs_is_told_to_use_hidden_vectors():
    failed = _failed("data_dimensionality", "of_the_inputs")
    assert "h_t = W x_t" in failed["test_regular_polygon"], failed


# --------------------------------------------------------------------------- the prose quotes the reference run


def _quotes() -> list[tuple[str, str]]:
    ref = json.loads((HERE / "figures" / "reference_numbers.json").read_text())
    h, rows = ref["headline"], ref["rows"]
    f3 = lambda v: f"{v:.3f}"  # noqa: E731
    big = lambda T: f"{T:,}".replace(",", "{,}")  # noqa: E731  (LaTeX: 2{,}000)
    last = h["last"]["T"]
    tl = h["test_loss"]
    small = [tl[T] for T in ("3", "4", "5", "6", "8")]
    sums = list(h["sum_D_X"].values())
    tgon = ", ".join(f3(h["median_D_X"][T]) for T in ("3", "5", "8"))
    return [
        ("sweep_expected", f"{f3(h['median_D_X']['3'])}, {f3(h['median_D_X']['5'])} and {f3(h['median_D_X']['8'])}"),
        ("sweep_expected", f"{f3(tl['3'])} ($T = 3$)"),
        ("curve_expected", f"{f3(min(small))} to {f3(max(small))}"),
        ("curve_expected", f"{h['peak']['test_loss']:.2f} at $T = {h['peak']['T']}$"),
        ("curve_expected", f"{f3(tl[str(last)])} at $T = {big(last)}$"),
        ("dims_expected", f"from {f3(min(sums))} to {f3(max(sums))}"),
        ("dims_expected", f"top $D_X$ {f3(h['first']['data_dim_top'])} at $T = 3$"),
        ("dims_expected", f"top $D_i$ {f3(h['last']['feature_dim_top'])} at $T = {big(last)}$, {h['last']['represented']}"),
        ("dims_expected", f"$T = {big(h['crossover'])}$"),
        ("dims_expected", f"$T = {big(h['features_take_over'])}$"),
        ("summary", f"| {tgon} |"),
        ("summary", f"| test loss at $T = 3$ | {f3(tl['3'])} |"),
        ("summary", f"| test loss, $T = 8$ to 30 | {f3(h['test_loss_8_30'][0])} to {f3(h['test_loss_8_30'][1])} |"),
        ("summary", f"| test loss at $T = 100$ | {f3(tl['100'])} |"),
        ("summary", f"| test loss at $T = {big(last)}$ | {f3(tl[str(last)])} |"),
        ("test_expected", ", ".join(f3(v) for v in rows["5"]["test_loss_seeds"])),
    ]


def test_the_prose_quotes_the_reference_run():
    sys.path.insert(0, str(HERE.parents[1] / "tests"))
    from notebook_prose import assert_quotes

    assert_quotes(LESSON, _quotes())


def test_the_reference_numbers_are_the_recipe_s():
    from supercourse.experiments import double_descent

    ref = json.loads((HERE / "figures" / "reference_numbers.json").read_text())
    recipe = double_descent.recipe("cpu")
    assert [int(T) for T in ref["rows"]] == list(recipe.sizes)
    assert ref["config"]["steps"] == recipe.steps and ref["config"]["n_features"] == recipe.n_features
    assert ref["config"]["feature_probability"] == recipe.density and ref["config"]["seed"] == 0
