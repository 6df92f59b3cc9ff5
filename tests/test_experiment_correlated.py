"""Lesson 06's headlines, reproduced on two seeds each (CPU-sized runs of the reproduce targets' recipes).

Each test trains with :func:`supercourse.experiments._correlated.train_sets` (best of a few restarts per
density, then the check that each density's model is the best found at its density, as the targets do),
mostly for fewer steps and densities than the targets' defaults, and asserts the geometry with the
tolerances stated beside it. The collapse sweep runs at the target's defaults: its staircase is what the
lesson quotes, and each density's model must be the best of the sweep's models on that density's data.
"""

from __future__ import annotations

import pytest
import torch

from supercourse.correlation import block_interference, collapsed_sets, cross_set_min_cosines, partner_cosines
from supercourse.experiments import anticorrelated, collapse, correlated, local_bases
from supercourse.experiments._correlated import OPTIMUM_SAMPLES, RESTARTS, train_sets
from supercourse.experiments._optimum import GAP_TOLERANCE, cross_losses, optimality_gaps
from supercourse.metrics import feature_norms

SEEDS = (0, 1)
pytestmark = pytest.mark.slow

ORTHOGONAL_TOL = 0.1
"""|cosine| below this counts as orthogonal."""
ANTIPODAL_COS = -0.95
"""A cosine below this counts as antipodal."""
REPRESENTED = 0.9
"""Every feature's norm above this: all features fully represented."""


def _train(kind, n_sets, set_size, n_hidden, densities, steps, seed, restarts):
    trained = train_sets(kind, n_sets, set_size, n_hidden, densities, steps, seed, torch.device("cpu"), restarts)
    if trained.optimum is not None:
        assert (trained.optimum.gaps <= GAP_TOLERANCE).all(), trained.optimum.gaps
    return trained.model.W.detach()


@pytest.mark.parametrize("seed", SEEDS)
def test_correlated_pairs_are_orthogonal_and_the_pairs_antipodal(seed):
    W = _train("correlated", 2, 2, 2, correlated.DENSITIES[:2], 2500, seed, restarts=2)
    assert (partner_cosines(W, 2).abs() < ORTHOGONAL_TOL).all(), partner_cosines(W, 2)
    assert (cross_set_min_cosines(W, 2) < ANTIPODAL_COS).all(), cross_set_min_cosines(W, 2)
    assert (feature_norms(W) > REPRESENTED).all(), feature_norms(W)


@pytest.mark.parametrize("seed", SEEDS)
def test_anticorrelated_partners_are_antipodal(seed):
    W = _train("anticorrelated", 2, 2, 2, anticorrelated.DENSITIES[:2], 2500, seed, restarts=anticorrelated.RESTARTS_ANTI)
    assert (partner_cosines(W, 2) < ANTIPODAL_COS).all(), partner_cosines(W, 2)
    assert (feature_norms(W) > REPRESENTED).all(), feature_norms(W)


@pytest.mark.parametrize("seed", SEEDS)
def test_three_correlated_pairs_sit_side_by_side(seed):
    # a hexagon with partners adjacent: cosine 1/2 for a regular one; positive, not orthogonal, not collapsed
    W = _train("correlated", 3, 2, 2, correlated.DENSITIES_SIDE_BY_SIDE[:1], 3000, seed, restarts=3)
    pc = partner_cosines(W, 2)
    assert ((pc > 0.25) & (pc < 0.75)).all(), pc
    assert collapsed_sets(W, 2).tolist() == [0]
    assert (feature_norms(W) > 0.5).all(), feature_norms(W)


@pytest.mark.parametrize("seed", SEEDS)
def test_two_sets_of_ten_form_local_orthogonal_bases(seed):
    W = _train("correlated", 2, 10, 10, local_bases.DENSITIES[:1], 2000, seed, restarts=1)
    blocks = block_interference(W, 10)
    assert (blocks["within"] < 0.05).all(), blocks
    assert (blocks["across"] > 3 * blocks["within"]).all(), blocks
    assert ((blocks["diagonal"] - 1).abs() < 0.1).all(), blocks


@pytest.fixture(scope="module", params=SEEDS, ids=lambda s: f"seed{s}")
def collapse_sweep(request):
    """The collapse target's sweep at its defaults (8 densities, best of 3 x 4,000 steps, then the check)."""
    seed = request.param
    trained = train_sets("correlated", collapse.N_SETS, collapse.SET_SIZE, collapse.N_HIDDEN, collapse.DENSITIES,
                         collapse.DEFAULT_STEPS, seed, torch.device("cpu"), RESTARTS)
    return seed, trained


def test_each_density_keeps_the_best_collapse_model_found(collapse_sweep):
    """Every kept model against every other on its own data: none beats it by more than the tolerance.

    Measured (seed 0): the best restarts alone were 1.7% and 2.8% worse at 1-S = 0.005 and 0.01 than another
    density's configuration trained there; after the check every gap is below 0.3%.
    """
    seed, trained = collapse_sweep
    assert (trained.optimum.gaps <= GAP_TOLERANCE).all(), f"seed {seed}: {trained.optimum.gaps}"
    # On inputs no choice was made on (a fresh seed, a quarter as many): the same, up to their noise (about 0.5%).
    fresh = optimality_gaps(cross_losses(trained.model, OPTIMUM_SAMPLES // 4, seed=1000 + seed), trained.optimum.baseline)
    assert (fresh <= 2 * GAP_TOLERANCE).all(), f"seed {seed}: {fresh}"


def test_pairs_collapse_as_density_grows(collapse_sweep):
    """No pair collapsed up to 1-S = 0.05, all three at 0.5, never fewer as density grows (measured, seeds 0 and 1:
    0, 0, 0, 0, 1, 2, 2, 3)."""
    seed, trained = collapse_sweep
    counts = collapsed_sets(trained.model.W.detach(), 2).tolist()
    assert counts[:4] == [0, 0, 0, 0] and counts[-1] == 3, f"seed {seed}: {counts}"
    assert counts == sorted(counts), f"seed {seed}: {counts}"


def test_lesson_prose_quotes_the_collapse_sweep(collapse_sweep):
    """Lesson 06 quotes the seed-0 sweep: the counts after the check, the restarts' own counts and their gaps."""
    from notebook_prose import assert_quotes

    seed, trained = collapse_sweep
    if seed != 0:
        pytest.skip("the lesson quotes seed 0")
    counts = collapsed_sets(trained.model.W.detach(), 2).tolist()
    alone = collapsed_sets(trained.restarts_only.W.detach(), 2).tolist()
    worse = [(p, g) for p, g in zip(collapse.DENSITIES, trained.optimum.before.tolist()) if g > GAP_TOLERANCE]
    assert len(worse) == 2, worse  # the prose names two densities
    (p1, g1), (p2, g2) = worse
    assert_quotes("06-correlated-features", [
        ("collapse_answer", "**" + ", ".join(map(str, counts)) + "** collapsed pairs at 1-S = "
         + ", ".join(f"{p:g}" for p in collapse.DENSITIES)),
        ("collapse_answer", "the restarts alone counted **" + ", ".join(map(str, alone)) + "** collapsed pairs"),
        ("collapse_answer", f"at 1-S = {p1:g} and {p2:g} were local optima {100 * g1:.1f}% and {100 * g2:.1f}% worse"),
    ])
