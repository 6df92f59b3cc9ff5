"""Lesson 6's checks bite and are fair: every known mistake loses points with a message that names it,
and correct implementations written in other ways keep full marks.

The wrong implementations are the check module's mistake tables (``lesson06.MISTAKES``), the same
definitions the checks diagnose with; the correct alternatives are here.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autograder.checks import lesson06
from autograder.exercises import get_exercise
from autograder.toolkit.testing import assert_full_marks, assert_rejected, grade
from lesson_tools import solution_namespace

LESSON = "06-correlated-features"
NAMES = ["correlated_sets", "anticorrelated_sets", "partner_cosines", "collapsed_sets"]


@pytest.fixture(scope="module")
def ns():
    return solution_namespace(LESSON)


def test_points_per_exercise():
    assert [get_exercise(f"06.{n}").points for n in NAMES] == [4, 4, 3, 3]


def test_references_are_declared():
    assert "supercourse.data.correlated_sparse" in get_exercise("06.correlated_sets").reference
    assert all(get_exercise(f"06.{n}").reference for n in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_the_solution_keeps_full_marks_quickly(ns, name):
    verdict = grade(f"06.{name}", ns[name])
    assert verdict.passed, verdict.report()
    assert verdict.seconds < 15, f"{name}: {verdict.seconds:.1f} s"


MISTAKES = [(name, m) for name in NAMES for m in lesson06.MISTAKES[name]]


@pytest.mark.parametrize("name, mistake", MISTAKES, ids=[f"{n}-{m.name}" for n, m in MISTAKES])
def test_every_mistake_loses_points_and_is_named(name, mistake):
    assert_rejected(f"06.{name}", mistake)


def test_every_exercise_has_at_least_four_mistakes():
    assert all(len(lesson06.MISTAKES[n]) >= 4 for n in NAMES), {n: len(lesson06.MISTAKES[n]) for n in NAMES}


# --------------------------------------------------------------------------- correct alternatives


def correlated_by_set_loop(batch_size, feature_probability, set_size, generator=None):
    # one set at a time, values drawn before the activity
    n_inst, n_sets = feature_probability.shape
    parts = []
    for k in range(n_sets):
        values = torch.rand((batch_size, n_inst, set_size), generator=generator)
        on = torch.rand((batch_size, n_inst, 1), generator=generator) < feature_probability[:, k, None]
        parts.append(values * on)
    return torch.cat(parts, dim=-1)


def correlated_with_where(batch_size, feature_probability, set_size, generator=None):
    p = feature_probability.repeat_interleave(set_size, dim=1)
    u = torch.rand((batch_size, feature_probability.shape[0], feature_probability.shape[1]), generator=generator)
    on = (u < feature_probability).repeat_interleave(set_size, dim=2)
    return torch.where(on, torch.rand((batch_size, *p.shape), generator=generator), torch.zeros(()))


def anticorrelated_by_cumulative_bins(batch_size, feature_probability, set_size, generator=None):
    # one uniform per set: feature j is active when u falls in [j p, (j + 1) p)
    p = feature_probability[..., None]
    u = torch.rand((batch_size, *feature_probability.shape, 1), generator=generator)
    j = torch.arange(set_size)
    on = (u >= j * p) & (u < (j + 1) * p)
    values = torch.rand((batch_size, *feature_probability.shape, set_size), generator=generator)
    return (values * on).reshape(batch_size, feature_probability.shape[0], -1)


def partner_cosines_numpy_loops(W, set_size=2):
    A = W.detach().double().numpy()
    K, _, n = A.shape
    out = np.zeros((K, n // set_size))
    for k in range(K):
        for s in range(n // set_size):
            cols = range(s * set_size, (s + 1) * set_size)
            vals = []
            for i in cols:
                for j in cols:
                    if i != j:
                        ni, nj = np.linalg.norm(A[k, :, i]), np.linalg.norm(A[k, :, j])
                        vals.append(0.0 if ni == 0 or nj == 0 else A[k, :, i] @ A[k, :, j] / (ni * nj))
            out[k, s] = np.mean(vals)
    return torch.from_numpy(out).to(W.dtype)


def partner_cosines_cosine_similarity(W, set_size=2):
    K, m, n = W.shape
    cols = W.transpose(1, 2).reshape(K, n // set_size, set_size, m)
    cos = torch.nn.functional.cosine_similarity(cols[:, :, :, None], cols[:, :, None, :], dim=-1, eps=1e-30)
    return (cos.sum((-1, -2)) - torch.diagonal(cos, dim1=-2, dim2=-1).sum(-1)) / (set_size * (set_size - 1))


def collapsed_by_min_cosine(W, set_size=2, cosine=0.9):
    K, m, n = W.shape
    norms = W.norm(dim=1)
    unit = W / norms.clamp_min(1e-30)[:, None, :]
    count = torch.zeros(K, dtype=torch.long)
    for s in range(n // set_size):
        block = unit[:, :, s * set_size:(s + 1) * set_size]
        cos = block.mT @ block
        ok = (cos > cosine).all(-1).all(-1) & (norms[:, s * set_size:(s + 1) * set_size] > 0.5).all(-1)
        count += ok.long()
    return count


@pytest.mark.parametrize("name, impl", [
    ("correlated_sets", correlated_by_set_loop),
    ("correlated_sets", correlated_with_where),
    ("anticorrelated_sets", anticorrelated_by_cumulative_bins),
    ("partner_cosines", partner_cosines_numpy_loops),
    ("partner_cosines", partner_cosines_cosine_similarity),
    ("collapsed_sets", collapsed_by_min_cosine),
], ids=lambda x: getattr(x, "__name__", x))
def test_correct_alternatives_keep_full_marks(name, impl):
    assert_full_marks(f"06.{name}", impl)
