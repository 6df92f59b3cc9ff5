"""Lesson 06's headlines, reproduced on two seeds each (CPU-sized runs of the reproduce targets' recipes).

Each test trains with :func:`supercourse.experiments._correlated.train_sets` (best of a few restarts per
density, as the targets do) for fewer steps and densities than the targets' defaults, and asserts the
geometry with the tolerances stated beside it.
"""

from __future__ import annotations

import pytest
import torch

from supercourse.correlation import block_interference, collapsed_sets, cross_set_min_cosines, partner_cosines
from supercourse.experiments import anticorrelated, collapse, correlated, local_bases
from supercourse.experiments._correlated import train_sets
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
    model, _, _, _ = train_sets(kind, n_sets, set_size, n_hidden, densities, steps, seed, torch.device("cpu"), restarts)
    return model.W.detach()


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


@pytest.mark.parametrize("seed", SEEDS)
def test_pairs_collapse_as_density_grows(seed):
    densities = (collapse.DENSITIES[0], 0.1, collapse.DENSITIES[-1])
    W = _train("correlated", 3, 2, 2, densities, 3000, seed, restarts=3)
    counts = collapsed_sets(W, 2).tolist()
    assert counts[0] == 0 and counts[-1] == 3, counts
    assert counts == sorted(counts), counts
