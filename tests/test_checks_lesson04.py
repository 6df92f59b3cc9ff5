"""Lesson 4's checks bite: the solution notebook scores full marks, plausible mistakes lose points.

Each mutant is a mistake a learner could really make. The test asserts that it
loses points and that a failing property's message names the mistake (a
keyword from the message the learner would read).
"""

from __future__ import annotations

import math

import pytest
import torch

from autograder import run_exercise
from autograder.exercises import get_exercise
from lesson_tools import assert_rejected as _assert_rejected, solution_namespace
from supercourse.theory import configuration_losses  # noqa: F401  (the global the phase_diagram mutants call)

LESSON = "04-phase-change"
NAMES = ["configuration_losses", "phase_diagram", "make_grid", "classify", "aggregate_restarts", "n3m2_losses"]


@pytest.fixture(scope="module")
def ns():
    return solution_namespace(LESSON)


# --------------------------------------------------------------------------- the registry


def test_points_per_exercise():
    points = {name: get_exercise(f"04.{name}").points for name in NAMES}
    assert points == {
        "configuration_losses": 4,
        "phase_diagram": 3,
        "make_grid": 4,
        "classify": 3,
        "aggregate_restarts": 3,
        "n3m2_losses": 2,
    }


def test_calling_the_reference_is_refused():
    import supercourse.theory

    def wrapped(r, p):
        return supercourse.theory.configuration_losses(r, p)

    verdict = run_exercise("04.configuration_losses", wrapped)
    assert verdict.points == 0 and "implement this yourself" in verdict.message


# --------------------------------------------------------------------------- 04.configuration_losses


def _rp(r, p):
    r, p = torch.as_tensor(r, dtype=torch.float64), torch.as_tensor(p, dtype=torch.float64)
    return torch.broadcast_tensors(r, p)


def losses_without_bias(r, p):
    r, p = _rp(r, p)
    dropped = p / 3  # the dropped feature's output left at 0 instead of its mean
    return torch.stack([r * dropped, dropped, (1 + r) * p**2 / 6], dim=-1)


def importance_on_the_wrong_configuration(r, p):
    r, p = _rp(r, p)
    var = p / 3 - p**2 / 4
    return torch.stack([var, r * var, (1 + r) * p**2 / 6], dim=-1)


def superposition_with_e_x_squared(r, p):
    r, p = _rp(r, p)
    var = p / 3 - p**2 / 4
    return torch.stack([r * var, var, (1 + r) * p**2 / 3], dim=-1)


def superposition_linear_in_p(r, p):
    r, p = _rp(r, p)
    var = p / 3 - p**2 / 4
    return torch.stack([r * var, var, (1 + r) * p / 6], dim=-1)


def stacked_on_the_first_axis(r, p):
    r, p = _rp(r, p)
    var = p / 3 - p**2 / 4
    return torch.stack([r * var, var, (1 + r) * p**2 / 6], dim=0)


def floats_not_handled(r, p):
    var = p / 3 - p**2 / 4
    return torch.stack([r * var, var, (1 + r) * p**2 / 6], dim=-1)


@pytest.mark.parametrize(
    "impl, keyword",
    [
        (losses_without_bias, "its mean p/2"),
        (importance_on_the_wrong_configuration, "extra"),
        (superposition_with_e_x_squared, "1/6"),
        (superposition_linear_in_p, "both"),
        (stacked_on_the_first_axis, "last axis"),
        (floats_not_handled, "plain floats"),
    ],
)
def test_configuration_losses_mutants(impl, keyword):
    _assert_rejected("04.configuration_losses", impl, keyword)


def test_each_configuration_is_its_own_property():
    verdict = run_exercise("04.configuration_losses", superposition_with_e_x_squared)
    assert [p.test for p in verdict.properties if not p.passed] == ["test_superposition"]
    assert verdict.points == 3


# --------------------------------------------------------------------------- 04.phase_diagram


def diagram_argmax(relative_importance, density):
    return configuration_losses(relative_importance[:, None], density[None, :]).argmax(dim=-1)


def diagram_transposed(relative_importance, density):
    return configuration_losses(relative_importance[None, :], density[:, None]).argmin(dim=-1)


def diagram_elementwise(relative_importance, density):
    return configuration_losses(relative_importance, density).argmin(dim=-1)


def diagram_float_labels(relative_importance, density):
    return configuration_losses(relative_importance[:, None], density[None, :]).argmin(dim=-1).float()


def diagram_axes_swapped(relative_importance, density):
    # r and p passed the wrong way round: the shape is right, the values are not.
    return configuration_losses(density[None, :], relative_importance[:, None]).argmin(dim=-1)


@pytest.mark.parametrize(
    "impl, keyword",
    [
        (diagram_argmax, "lowest"),
        (diagram_transposed, "one row per importance"),
        (diagram_elementwise, "phase_diagram"),
        (diagram_float_labels, "integer"),
        (diagram_axes_swapped, "density must lie in [0, 1]"),
    ],
)
def test_phase_diagram_mutants(impl, keyword):
    _assert_rejected("04.phase_diagram", impl, keyword)


def test_phase_diagram_is_checked_with_the_reference_losses(ns):
    # A correct phase_diagram is not charged for a wrong configuration_losses beside it.
    glb = dict(ns)
    glb["configuration_losses"] = losses_without_bias
    exec(
        "def phase_diagram(relative_importance, density):\n"
        "    return configuration_losses(relative_importance[:, None], density[None, :]).argmin(dim=-1)\n",
        glb,
    )
    verdict = run_exercise("04.phase_diagram", glb["phase_diagram"])
    assert verdict.points == verdict.max_points, verdict.report()
    assert glb["configuration_losses"] is losses_without_bias  # restored afterwards


# --------------------------------------------------------------------------- 04.make_grid


def _axes(n_importance, n_density, importance_range, density_range, space=torch.logspace):
    if space is torch.logspace:
        r = torch.logspace(math.log10(importance_range[0]), math.log10(importance_range[1]), n_importance)
        p = torch.logspace(math.log10(density_range[0]), math.log10(density_range[1]), n_density)
    else:
        r = torch.linspace(*importance_range, n_importance)
        p = torch.linspace(*density_range, n_density)
    return r, p


def _instances(r_inst, p_inst, extra_first=False):
    ones = torch.ones_like(r_inst)
    importance = torch.stack([r_inst, ones] if extra_first else [ones, r_inst], dim=1)
    return importance, torch.stack([p_inst, p_inst], dim=1)


def grid_linear(n_importance, n_density, n_restarts, importance_range=(0.1, 10.0), density_range=(0.01, 1.0)):
    r, p = _axes(n_importance, n_density, importance_range, density_range, space=torch.linspace)
    R, P, K = n_importance, n_density, n_restarts
    return (r, p, *_instances(r[:, None, None].expand(R, P, K).reshape(-1), p[None, :, None].expand(R, P, K).reshape(-1)))


def grid_without_restarts(n_importance, n_density, n_restarts, importance_range=(0.1, 10.0), density_range=(0.01, 1.0)):
    r, p = _axes(n_importance, n_density, importance_range, density_range)
    R, P = n_importance, n_density
    return (r, p, *_instances(r[:, None].expand(R, P).reshape(-1), p[None, :].expand(R, P).reshape(-1)))


def grid_restarts_outermost(n_importance, n_density, n_restarts, importance_range=(0.1, 10.0), density_range=(0.01, 1.0)):
    r, p = _axes(n_importance, n_density, importance_range, density_range)
    R, P, K = n_importance, n_density, n_restarts
    r_point, p_point = r[:, None].expand(R, P).reshape(-1), p[None, :].expand(R, P).reshape(-1)
    return (r, p, *_instances(r_point.repeat(K), p_point.repeat(K)))


def grid_importance_on_feature_0(n_importance, n_density, n_restarts, importance_range=(0.1, 10.0), density_range=(0.01, 1.0)):
    r, p = _axes(n_importance, n_density, importance_range, density_range)
    R, P, K = n_importance, n_density, n_restarts
    r_inst, p_inst = r[:, None, None].expand(R, P, K).reshape(-1), p[None, :, None].expand(R, P, K).reshape(-1)
    return (r, p, *_instances(r_inst, p_inst, extra_first=True))


def grid_loops_swapped(n_importance, n_density, n_restarts, importance_range=(0.1, 10.0), density_range=(0.01, 1.0)):
    r, p = _axes(n_importance, n_density, importance_range, density_range)
    R, P, K = n_importance, n_density, n_restarts
    r_inst = r[None, :, None].expand(P, R, K).reshape(-1)  # density outermost
    p_inst = p[:, None, None].expand(P, R, K).reshape(-1)
    return (r, p, *_instances(r_inst, p_inst))


def grid_ignores_the_ranges(n_importance, n_density, n_restarts, importance_range=(0.1, 10.0), density_range=(0.01, 1.0)):
    return _fixed_ranges(n_importance, n_density, n_restarts)


def _fixed_ranges(R, P, K):
    r, p = _axes(R, P, (0.1, 10.0), (0.01, 1.0))
    return (r, p, *_instances(r[:, None, None].expand(R, P, K).reshape(-1), p[None, :, None].expand(R, P, K).reshape(-1)))


@pytest.mark.parametrize(
    "impl, keyword",
    [
        (grid_linear, "logarithmic"),
        (grid_without_restarts, "every restart is an instance"),
        (grid_restarts_outermost, "restarts are outermost"),
        (grid_importance_on_feature_0, "on index 0"),
        (grid_loops_swapped, "swapped"),
        (grid_ignores_the_ranges, "evenly spaced in log"),
    ],
)
def test_make_grid_mutants(impl, keyword):
    _assert_rejected("04.make_grid", impl, keyword)


# --------------------------------------------------------------------------- 04.classify


def classify_by_sign(W, threshold=0.5):
    w0, w1 = W[:, 0, 0], W[:, 0, 1]
    return torch.where(w0 * w1 < 0, 2, torch.where(w1.abs() > w0.abs(), 1, 0))


def classify_extra_is_index_0(W, threshold=0.5):
    w1, w0 = W[:, 0, 0], W[:, 0, 1]
    on0, on1 = w0.abs() > threshold, w1.abs() > threshold
    labels = torch.zeros(W.shape[0], dtype=torch.long)
    labels[on1 & ~on0] = 1
    labels[on0 & on1 & (w0 * w1 < 0)] = 2
    return labels


def classify_without_abs(W, threshold=0.5):
    w0, w1 = W[:, 0, 0], W[:, 0, 1]
    on0, on1 = w0 > threshold, w1 > threshold
    labels = torch.zeros(W.shape[0], dtype=torch.long)
    labels[on1 & ~on0] = 1
    labels[(w0.abs() > threshold) & (w1.abs() > threshold) & (w0 * w1 < 0)] = 2
    return labels


def classify_any_two_represented(W, threshold=0.5):
    # Both represented counts as superposition whatever the signs; dedicated ignores feature 0.
    w0, w1 = W[:, 0, 0], W[:, 0, 1]
    on0, on1 = w0.abs() > threshold, w1.abs() > threshold
    labels = torch.zeros(W.shape[0], dtype=torch.long)
    labels[on1] = 1
    labels[on0 & on1] = 2
    return labels


def classify_float_labels(W, threshold=0.5):
    w0, w1 = W[:, 0, 0], W[:, 0, 1]
    on0, on1 = w0.abs() > threshold, w1.abs() > threshold
    labels = torch.zeros(W.shape[0])
    labels[on1 & ~on0] = 1
    labels[on0 & on1 & (w0 * w1 < 0)] = 2
    return labels


def classify_in_place(W, threshold=0.5):
    W[:, 0, :] = W[:, 0, :].abs() * torch.sign(W[:, 0, :1])  # "normalise the sign" in place
    return classify_by_sign(W, threshold)


@pytest.mark.parametrize(
    "impl, keyword",
    [
        (classify_by_sign, "signs only"),
        (classify_extra_is_index_0, "index 1"),
        (classify_without_abs, "|W_i|"),
        (classify_any_two_represented, "needs opposite signs"),
        (classify_float_labels, "integers"),
        (classify_in_place, "in place"),
    ],
)
def test_classify_mutants(impl, keyword):
    _assert_rejected("04.classify", impl, keyword)


# --------------------------------------------------------------------------- 04.aggregate_restarts


def _one_hot_mean(kept, divide_by=None):
    oh = torch.nn.functional.one_hot(kept.long(), 3).double()
    return oh.sum(dim=-2) / (divide_by if divide_by is not None else kept.shape[-1])


def aggregate_without_dropping(labels, losses, drop_worst=1):
    return _one_hot_mean(labels)


def aggregate_drops_the_best(labels, losses, drop_worst=1):
    K = labels.shape[-1]
    keep = losses.argsort(dim=-1, descending=True)[..., : K - drop_worst]
    return _one_hot_mean(labels.gather(-1, keep))


def aggregate_counts(labels, losses, drop_worst=1):
    K = labels.shape[-1]
    keep = losses.argsort(dim=-1)[..., : K - drop_worst]
    return _one_hot_mean(labels.gather(-1, keep), divide_by=1)


def aggregate_divides_by_all(labels, losses, drop_worst=1):
    K = labels.shape[-1]
    keep = losses.argsort(dim=-1)[..., : K - drop_worst]
    return _one_hot_mean(labels.gather(-1, keep), divide_by=K)


def aggregate_drops_by_position(labels, losses, drop_worst=1):
    K = labels.shape[-1]
    return _one_hot_mean(labels[..., : K - drop_worst])


def aggregate_sorts_in_place(labels, losses, drop_worst=1):
    K = labels.shape[-1]
    order = losses.argsort(dim=-1)
    losses.copy_(losses.gather(-1, order))
    labels.copy_(labels.gather(-1, order))
    return _one_hot_mean(labels[..., : K - drop_worst])


@pytest.mark.parametrize(
    "impl, keyword",
    [
        (aggregate_without_dropping, "nothing was dropped"),
        (aggregate_drops_the_best, "lowest"),
        (aggregate_counts, "counts"),
        (aggregate_divides_by_all, "divided by all"),
        (aggregate_drops_by_position, "by position"),
        (aggregate_sorts_in_place, "in place"),
    ],
)
def test_aggregate_restarts_mutants(impl, keyword):
    _assert_rejected("04.aggregate_restarts", impl, keyword)


# --------------------------------------------------------------------------- 04.n3m2_losses


def _n3(r, p, order=(0, 1, 2, 3), pair_factor=2.0, n_out=4):
    r, p = _rp(r, p)
    dropped = p / 3 - p**2 / 4
    pair = p**2 / 6
    cols = [r * dropped, dropped, (1 + r) * pair, pair_factor * pair]
    return torch.stack([cols[i] for i in order][:n_out], dim=-1)


def n3_one_importance_in_the_pair(r, p):
    return _n3(r, p, pair_factor=1.0)


def n3_candidates_swapped(r, p):
    return _n3(r, p, order=(0, 1, 3, 2))


def n3_only_three_candidates(r, p):
    return _n3(r, p, n_out=3)


def n3_importance_on_the_wrong_drop(r, p):
    return _n3(r, p, order=(1, 0, 2, 3))


@pytest.mark.parametrize(
    "impl, keyword",
    [
        (n3_one_importance_in_the_pair, "(1 + 1)"),
        (n3_candidates_swapped, "keep the order"),
        (n3_only_three_candidates, "shape"),
        (n3_importance_on_the_wrong_drop, "another candidate"),
    ],
)
def test_n3m2_losses_mutants(impl, keyword):
    _assert_rejected("04.n3m2_losses", impl, keyword)
