"""Lesson 7 checks: learning dynamics and adversarial vulnerability.

Four exercises, each graded on its own and compared with :mod:`supercourse` on
seeded or hand-built inputs. Every answer is determined by its inputs, so the
comparisons are exact up to float rounding (:data:`autograder.toolkit.RTOL`).

* ``07.dimensionality_snapshots`` ``dimensionality_snapshots(Ws) -> (n_snapshots,
  n_instances, n_features)``: ``D_i`` at every snapshot, 0 (never NaN) for zero columns.
* ``07.find_jumps`` ``find_jumps(D, steps, levels, tolerance, min_hold) -> list of
  (step, instance, feature, start, end)``: a feature holds a level when it stays within
  ``tolerance`` of it for ``min_hold`` snapshots; each change of held level is a jump,
  dated at the first snapshot of the new hold. Checked on hand-built trajectories
  (transit, short visits, noise, returns to the same level), with every argument varied,
  and against :func:`supercourse.dynamics.find_jumps` on a recorded-like run.
* ``07.attack_perturbations`` ``attack_perturbations(W, x, fraction) -> (n_instances,
  n_features, n_features)``: row ``i`` is ``eps (W^T W)_i / ||(W^T W)_i||`` with ``eps =
  fraction * mean_b ||x_b||`` per instance (zero for a zero row).
* ``07.vulnerability`` ``vulnerability(W, b, x, importance, fraction) -> (n_instances,)``:
  the largest loss increase ``L'_i - L`` over single-feature attacks, the loss being the
  importance-weighted squared error against the clean input, mean over batch and features.

The tensor exercises use the toolkit's property families and diagnose with
:data:`MISTAKES`, the table the tests also use.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from autograder.exercises import Exercise
from autograder.framework import CheckFailed, call, expect, prop
from autograder.toolkit import Case, Mistake, describe, fmt, random_W, tensor_properties, with_zero_columns
from autograder.toolkit.mistakes import diagnose
from autograder.toolkit.polytopes import digon, regular_polygon, tegum_product, tetrahedron
from supercourse import adversarial, dynamics

LESSON = "07-dynamics-adversarial"
EXERCISES = {
    "dimensionality_snapshots": Exercise(
        "dimensionality_snapshots", "Feature dimensionalities at every snapshot",
        forbid=("metrics", "dynamics"),
        # unit_directions stays available: the lesson's stage() uses it (and it is only a step of the exercise).
        reference=("supercourse.dynamics.dimensionality_snapshots", "supercourse.metrics.feature_dimensionality"),
    ),
    "find_jumps": Exercise(
        "find_jumps", "Jumps between energy levels", forbid=("dynamics",),
        reference=("supercourse.dynamics.find_jumps", "supercourse.dynamics.nearest_level"),
    ),
    "attack_perturbations": Exercise(
        "attack_perturbations", "The optimal L2 attack on every feature", forbid=("adversarial",),
        reference=("supercourse.adversarial.attack_perturbations", "supercourse.adversarial.attack_directions",
                   "supercourse.adversarial.mean_input_norm"),
    ),
    "vulnerability": Exercise(
        "vulnerability", "Vulnerability: the worst attack's loss increase", forbid=("adversarial",),
        reference=("supercourse.adversarial.vulnerability", "supercourse.adversarial.attacked_loss_increase",
                   "supercourse.adversarial.relative_vulnerability"),
    ),
}

_DTYPE = "the input's dtype"
_GRAD = "requires_grad"


# --------------------------------------------------------------------------- mistakes: 07.dimensionality_snapshots


def _unit(W: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    n = W.norm(dim=-2, keepdim=True)
    return torch.where(n > eps, W / n.clamp_min(eps), torch.zeros_like(W))


def _guard(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    return torch.where(den > 1e-8, num / den.clamp_min(1e-8), torch.zeros_like(num))


def _dims(Ws: torch.Tensor, overlaps: torch.Tensor, numerator: torch.Tensor | None = None) -> torch.Tensor:
    num = Ws.square().sum(dim=-2) if numerator is None else numerator
    return _guard(num, overlaps.square().sum(-1))


def _snap_excluding_self(Ws):
    sq = (_unit(Ws).mT @ Ws).square()
    return _guard(Ws.square().sum(-2), sq.sum(-1) - sq.diagonal(dim1=-2, dim2=-1))


def _snap(Ws: torch.Tensor) -> torch.Tensor:
    """The right values (the checks' own copy, not the library's)."""
    return _dims(Ws, _unit(Ws).mT @ Ws)


def _snap_numpy(Ws):
    A = Ws.numpy()
    norms = np.linalg.norm(A, axis=-2, keepdims=True)
    hat = np.where(norms > 1e-8, A / np.where(norms > 1e-8, norms, 1), 0)
    den = np.square(np.swapaxes(hat, -1, -2) @ A).sum(-1)
    return torch.from_numpy(np.where(den > 1e-8, np.square(A).sum(-2) / np.where(den > 1e-8, den, 1), 0))


MISTAKES: dict[str, list[Mistake]] = {
    "dimensionality_snapshots": [
        Mistake("excluding_self", _snap_excluding_self, "includes j = i",
                "Your values match a denominator without feature i itself: the sum over j includes j = i, which adds ||W_i||^2."),
        Mistake("unnormalised", lambda Ws: _dims(Ws, Ws.mT @ Ws), "unit direction",
                "Your values match a denominator of (W_i . W_j)^2: project on the unit direction W_hat_i = W_i / ||W_i||, "
                "and keep W_j at its length."),
        Mistake("cosines", lambda Ws: _dims(Ws, _unit(Ws).mT @ _unit(Ws)), "both features",
                "Your values match a denominator of squared cosines (both features normalised): only W_i is normalised."),
        Mistake("not_squared_norm", lambda Ws: _dims(Ws, _unit(Ws).mT @ Ws, Ws.norm(dim=-2)), "squared norm",
                "Your values match a numerator of ||W_i||: the numerator is the squared norm ||W_i||^2."),
        Mistake("epsilon", lambda Ws: _dims(Ws, (Ws / (Ws.norm(dim=-2, keepdim=True) + 1e-3)).mT @ Ws), "epsilon",
                "Your values match W_i / (||W_i|| + epsilon) with a large epsilon, which distorts short features: guard "
                "only zero columns (torch.where on the norm)."),
        Mistake("nan_zero_columns", lambda Ws: Ws.square().sum(-2) / ((Ws / Ws.norm(dim=-2, keepdim=True)).mT @ Ws).square().sum(-1),
                "finite", compare=False),
        Mistake("last_snapshot", lambda Ws: _snap(Ws[-1:])[0], "shape", compare=False),
        Mistake("mean_over_snapshots", lambda Ws: _snap(Ws).mean(0), "shape", compare=False),
        Mistake("rows", lambda Ws: _dims(Ws.mT, _unit(Ws.mT).mT @ Ws.mT), "shape", compare=False),
        Mistake("flattened", lambda Ws: _snap(Ws).reshape(-1, Ws.shape[-1]), "shape", compare=False),
        Mistake("float32", lambda Ws: _snap(Ws.float()), _DTYPE, compare=False),
        Mistake("numpy", _snap_numpy, _GRAD, compare=False),
    ],
}


# --------------------------------------------------------------------------- 07.dimensionality_snapshots


def _snapshots(seed: int, T: int, k: int, m: int, n: int) -> Case:
    return Case(f"random snapshots Ws of shape {(T, k, m, n)}",
                lambda: (torch.stack([random_W(seed * 100 + t, k, m, n) for t in range(T)]),))


def _polytope_snapshots() -> torch.Tensor:
    """Three snapshots of 2 instances in 3 dimensions: a tetrahedron, a triangle beside a digon..."""
    shapes = [
        [tetrahedron(), tegum_product([regular_polygon(3), digon()[:, :1]], m=3)[:, :4]],
        [tegum_product([regular_polygon(3), digon()[:, :1]], m=3)[:, :4], tegum_product([digon(), digon()], m=3)],
        [tegum_product([digon(), digon()], m=3), tegum_product([regular_polygon(4)], m=3)],
    ]
    return torch.stack([torch.stack([s.float() for s in snap]) for snap in shapes])


def _zero_column_snapshots() -> torch.Tensor:
    Ws = torch.stack([random_W(70 + t, 2, 3, 5) for t in range(3)])
    Ws[0, 0, :, 1] = 0
    Ws[1] = with_zero_columns(Ws[1], [(1, 4)], instances=[0])
    Ws[2, 1, :, 0] = 0
    return Ws


def _snap_shape_hint(got: tuple[int, ...], args: tuple[Any, ...]) -> str:
    T, k, m, n = args[0].shape
    if got == (k, n):
        return " That is one snapshot's (or an average's) shape: keep the snapshot dimension, one row per snapshot."
    if got == (T, k, m):
        return " One value per hidden dimension: feature i is the column Ws[t, k, :, i] (reduce over dim -2)."
    return ""


_SNAP_SHAPES = [_snapshots(1, 4, 3, 2, 5), _snapshots(2, 1, 1, 4, 3), _snapshots(3, 3, 2, 3, 1)]

globals().update(tensor_properties(
    "dimensionality_snapshots", function="dimensionality_snapshots", reference=dynamics.dimensionality_snapshots,
    meaning="(n_snapshots, n_instances, n_features)", shape=lambda Ws: (Ws.shape[0], Ws.shape[1], Ws.shape[3]),
    points={"shape": 1, "inputs": 0.5, "values": 1, "edges": 0.5},
    mistakes=MISTAKES["dimensionality_snapshots"], shape_cases=_SNAP_SHAPES, input_case=_snapshots(4, 2, 2, 3, 4),
    value_cases=[
        Case("polytopes over three snapshots (tetrahedron, triangle beside a dedicated dimension, two digons, square)",
             lambda: (_polytope_snapshots(),)),
        _snapshots(5, 5, 3, 4, 7),
    ],
    edge_cases=[
        Case("snapshots with zero columns (unlearned features)", lambda: (_zero_column_snapshots(),),
             note="A zero column is an unlearned feature: its D_i is 0, not NaN (torch.where on the norm)."),
        Case("tiny norms (0.005 to 0.1)", lambda: (torch.stack([random_W(80 + t, 2, 3, 6, norms=(0.005, 0.1))
                                                               for t in range(2)]),)),
    ],
    argument="Ws", shape_hint=_snap_shape_hint, prefix="snapshots",
))


# --------------------------------------------------------------------------- mistakes: 07.find_jumps

_LV = tuple(float(v) for v in dynamics.LEVELS)
_TOL = float(dynamics.LEVEL_TOLERANCE)
_HOLD = int(dynamics.MIN_HOLD)


def _labels(D: torch.Tensor, levels, tolerance) -> torch.Tensor:
    lv = torch.as_tensor(levels, dtype=torch.float64)
    dist = (D.double()[..., None] - lv).abs()
    best = dist.min(-1)
    return torch.where(best.values <= tolerance, best.indices, torch.full_like(best.indices, -1))


def _jumps_generic(D, steps, levels=_LV, tolerance=_TOL, min_hold=_HOLD, *,
                   hold=None, date="first", same=False, order="time", value="level", keep_noise=False,
                   use_tol=True, swap=False, instances=None):
    """The reference algorithm with one switch per known mistake."""
    hold = min_hold if hold is None else hold
    tol = tolerance if use_tol else float("inf")
    lab = _labels(D, levels, tol)
    steps = [int(s) for s in torch.as_tensor(steps).tolist()]
    T, K, N = lab.shape
    out = []
    for k in range(K if instances is None else instances):
        for i in range(N):
            current = -1
            for t in range(T - hold + 1):
                window = lab[t : t + hold, k, i]
                if window[0] < 0 or not bool((window == window[0]).all()):
                    continue
                level = int(window[0])
                if current >= 0 and (level != current or (same and t > 0 and lab[t - 1, k, i] != level)):
                    when = {"first": steps[t], "index": t, "end": steps[t + hold - 1]}[date]
                    a, b = (float(levels[current]), float(levels[level])) if value == "level" else (current, level)
                    if swap:
                        a, b = b, a
                    out.append((when, k, i, a, b))
                current = level
    if order == "time":
        out.sort(key=lambda j: (j[0], j[1], j[2]))
    return out


def _fj(**switches):
    def impl(D, steps, levels=_LV, tolerance=_TOL, min_hold=_HOLD):
        return _jumps_generic(D, steps, levels, tolerance, min_hold, **switches)
    return impl


def _fj_default_levels(D, steps, levels=_LV, tolerance=_TOL, min_hold=_HOLD):
    return _jumps_generic(D, steps, _LV, tolerance, min_hold)


def _fj_default_tolerance(D, steps, levels=_LV, tolerance=_TOL, min_hold=_HOLD):
    return _jumps_generic(D, steps, levels, _TOL, min_hold)


def _fj_consecutive(D, steps, levels=_LV, tolerance=_TOL, min_hold=_HOLD):
    """Compares consecutive labelled snapshots, no holding at all."""
    lab = _labels(D, levels, tolerance)
    steps = [int(s) for s in torch.as_tensor(steps).tolist()]
    out = []
    for k in range(lab.shape[1]):
        for i in range(lab.shape[2]):
            prev = -1
            for t in range(lab.shape[0]):
                cur = int(lab[t, k, i])
                if cur < 0:
                    continue
                if prev >= 0 and cur != prev:
                    out.append((steps[t], k, i, float(levels[prev]), float(levels[cur])))
                prev = cur
    return sorted(out, key=lambda j: (j[0], j[1], j[2]))


def _fj_held_start_only(D, steps, levels=_LV, tolerance=_TOL, min_hold=_HOLD):
    """Only the first held level and the last one: one jump at most per feature."""
    full = _jumps_generic(D, steps, levels, tolerance, min_hold, order="feature")
    first: dict[tuple[int, int], tuple] = {}
    for j in full:
        key = (j[1], j[2])
        first[key] = (j[0], j[1], j[2], first[key][3] if key in first else j[3], j[4])
    out = [j for j in first.values() if j[3] != j[4]]
    return sorted(out, key=lambda j: (j[0], j[1], j[2]))


MISTAKES["find_jumps"] = [
    Mistake("no_hold", _fj(hold=1), "min_hold",
            "Your jumps match a version that counts every snapshot on a level, however briefly: a feature holds a level "
            "only when it stays on it for min_hold consecutive snapshots (transit through a level is not a jump)."),
    Mistake("consecutive", _fj_consecutive, "min_hold",
            "Your jumps match a comparison of consecutive snapshots on levels: a feature holds a level only when it stays "
            "on it for min_hold consecutive snapshots (transit through a level is not a jump)."),
    Mistake("index", _fj(date="index"), "training step",
            "Your jumps are dated by the snapshot's index: report the training step, steps[t]."),
    Mistake("end_of_hold", _fj(date="end"), "first snapshot of the new hold",
            "Your jumps are dated at the last snapshot of the new level's first min_hold window: date them at the first "
            "snapshot of the new hold."),
    Mistake("no_tolerance", _fj(use_tol=False), "tolerance",
            "Your jumps match a version that snaps every value to its nearest level: a value is on a level only within "
            "`tolerance` of it (values in between are in transit)."),
    Mistake("default_levels", _fj_default_levels, "levels argument",
            "Your jumps match a version that ignores the levels argument: use the `levels` you are given."),
    Mistake("default_tolerance", _fj_default_tolerance, "tolerance argument",
            "Your jumps match a version that ignores the tolerance argument: use the `tolerance` you are given."),
    Mistake("default_hold", _fj(hold=_HOLD), "min_hold argument",
            "Your jumps match a version that ignores the min_hold argument: use the `min_hold` you are given."),
    Mistake("same_level", _fj(same=True), "same level",
            "Your jumps include a feature coming back to the same level after leaving it: a jump is a change to a "
            "*different* level."),
    Mistake("unsorted", _fj(order="feature"), "sorted",
            "Your jumps are right but not sorted: return them sorted by (step, instance, feature)."),
    Mistake("indices", _fj(value="index"), "values of the levels",
            "Your start and end are indices into `levels`: report the values of the levels (e.g. 0.5, not 3)."),
    Mistake("swapped", _fj(swap=True), "start",
            "Your start and end are swapped: each jump is (step, instance, feature, start level, end level)."),
    Mistake("first_instance", _fj(instances=1), "every instance",
            "Your jumps cover only instance 0: look at every instance (dim 1 of D)."),
    Mistake("one_jump_per_feature", _fj_held_start_only, "every change",
            "Your jumps match one jump per feature, from its first held level to its last: report every change of held level."),
]


# --------------------------------------------------------------------------- 07.find_jumps


def _as_jumps(out: Any, what: str) -> list[tuple]:
    fmt_text = ("find_jumps should return a list of tuples (step, instance, feature, start, end): ints for the first "
                "three, the levels' values (floats) for the last two")
    expect(isinstance(out, (list, tuple)), f"{what}: {fmt_text}; got {describe(out)}.")
    jumps = []
    for j in out:
        expect(isinstance(j, (list, tuple)) and len(j) == 5, f"{what}: {fmt_text}; got an item {describe(j)}.")
        step, k, i, a, b = j
        ints = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                   or isinstance(v, torch.Tensor) and v.numel() == 1 and not v.is_floating_point() for v in (step, k, i))
        nums = all(isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool)
                   or isinstance(v, torch.Tensor) and v.numel() == 1 for v in (a, b))
        expect(ints and nums, f"{what}: {fmt_text}; got an item {j!r}.")
        jumps.append((int(step), int(k), int(i), float(a), float(b)))
    return jumps


def _reference_jumps(D, steps, levels=_LV, tolerance=dynamics.LEVEL_TOLERANCE, min_hold=dynamics.MIN_HOLD):
    return [j.as_tuple() for j in dynamics.find_jumps(D, steps, levels, tolerance, min_hold)]


def _show(jumps: list[tuple], limit: int = 6) -> str:
    text = ", ".join(f"({s}, {k}, {i}, {a:.3g}, {b:.3g})" for s, k, i, a, b in jumps[:limit])
    return "[" + text + (", ..." if len(jumps) > limit else "") + "]"


def _same_jumps(got: list[tuple], want: list[tuple]) -> bool:
    return len(got) == len(want) and all(
        g[:3] == w[:3] and abs(g[3] - w[3]) < 1e-6 and abs(g[4] - w[4]) < 1e-6 for g, w in zip(got, want))


def _check_jumps(submission, label: str, D: torch.Tensor, steps: torch.Tensor, **kwargs) -> None:
    what = label
    out = call(submission, D.clone(), steps.clone(), what="find_jumps", **kwargs)
    got = _as_jumps(out, what)
    want = _reference_jumps(D, steps, **kwargs)
    if _same_jumps(got, want):
        return
    args = "" if not kwargs else " with " + ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    hint = diagnose(MISTAKES["find_jumps"], got, [D, steps], kwargs,
                    same=lambda g, theirs: _same_jumps(g, [tuple(t) for t in theirs]))
    raise CheckFailed(f"{what}{args}: expected the jumps {_show(want)}, got {_show(got)}.{hint}")


def _trajectory(values: list[float], noise: float = 0.0, seed: int = 0) -> torch.Tensor:
    """One instance, one feature: ``(T, 1, 1)``."""
    D = torch.tensor(values, dtype=torch.float32)[:, None, None]
    if noise:
        D = D + noise * (2 * torch.rand(D.shape, generator=torch.Generator().manual_seed(seed)) - 1)
    return D


def _ramp(a: float, b: float, n: int) -> list[float]:
    return torch.linspace(a, b, n + 2)[1:-1].tolist()


def _steps(T: int, every: int = 10, start: int = 0) -> torch.Tensor:
    return torch.arange(T) * every + start


@prop("find_jumps", points=1)
def test_find_jumps_format_and_one_jump(submission):
    # 0 held, a smooth transit, then 1/2 held: one jump, dated at the first snapshot on 1/2.
    D = _trajectory([0.0] * 6 + _ramp(0.0, 0.5, 5) + [0.5] * 8, noise=0.01, seed=1)
    _check_jumps(submission, "One feature going from 0 to 1/2 through a transit (steps 0, 10, 20, ...)", D, _steps(len(D)))
    # Nothing ever held: no jump (an empty list).
    D = _trajectory(torch.linspace(0.05, 0.95, 12).tolist())
    _check_jumps(submission, "A feature sweeping from 0.05 to 0.95 without resting on a level", D, _steps(12))


@prop("find_jumps", points=1)
def test_find_jumps_ignores_transit_and_short_visits(submission):
    # 1/2 -> passes through 2/5 for 3 snapshots (fewer than min_hold=5) -> 0: one jump 1/2 -> 0.
    values = [0.5] * 7 + [0.45] + [0.4] * 3 + [0.2] + [0.0] * 7
    _check_jumps(submission, "A feature from 1/2 to 0, resting on 2/5 for only 3 snapshots on the way",
                 _trajectory(values, noise=0.005, seed=2), _steps(len(values), 5, 100))
    # Leaves 2/5, wanders, comes back to 2/5, then settles on 1/2: only 2/5 -> 1/2.
    values = [0.4] * 6 + [0.3, 0.25, 0.3] + [0.4] * 6 + _ramp(0.4, 0.5, 3) + [0.5] * 6
    _check_jumps(submission, "A feature that leaves 2/5, comes back to it, then settles on 1/2",
                 _trajectory(values, noise=0.005, seed=3), _steps(len(values), 20))


@prop("find_jumps", points=1)
def test_find_jumps_uses_its_arguments(submission):
    values = [0.0] * 4 + [0.33] * 6 + [0.5] * 3 + [0.66] * 6 + [0.75] * 6
    D = _trajectory(values, noise=0.004, seed=4)
    steps = _steps(len(values), 50)
    _check_jumps(submission, "A feature visiting 0, 1/3, 1/2 (3 snapshots), 2/3, 3/4", D, steps)
    _check_jumps(submission, "The same feature", D, steps, levels=(0.0, 1 / 3, 0.5, 2 / 3, 0.75, 1.0))
    _check_jumps(submission, "The same feature", D, steps, levels=(0.0, 1 / 3, 0.5, 2 / 3, 0.75, 1.0), min_hold=3)
    _check_jumps(submission, "The same feature", D, steps, levels=(0.0, 0.3, 0.5, 0.7, 0.75), tolerance=0.035,
                 min_hold=4)


def _recorded_like(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(60, 3, 5)`` trajectories like a recorded run: features settling on levels, some jumping later."""
    gen = torch.Generator().manual_seed(seed)
    T, K, N = 60, 3, 5
    D = torch.empty(T, K, N)
    levels = [0.0, 0.4, 0.5, 2 / 3, 0.75, 1.0]
    for k in range(K):
        for i in range(N):
            path = [levels[int(torch.randint(len(levels), (1,), generator=gen))] for _ in range(3)]
            cuts = sorted(torch.randint(5, T - 5, (2,), generator=gen).tolist())
            start = float(torch.rand(1, generator=gen)) * 0.9
            x = torch.full((T,), path[2])
            x[: cuts[0]] = path[0]
            x[cuts[0] : cuts[1]] = path[1]
            for t in range(4):  # initial relaxation, then 3-snapshot transits before each cut
                x[t] = start + (path[0] - start) * t / 4
            for c, (a, b) in zip(cuts, [(path[0], path[1]), (path[1], path[2])]):
                for t in range(3):
                    if c + t < T:
                        x[c + t] = a + (b - a) * (t + 1) / 4
            D[:, k, i] = x
    D = D + 0.006 * (2 * torch.rand(D.shape, generator=gen) - 1)
    return D.clamp_min(0), _steps(T, 20)


@prop("find_jumps", points=1)
def test_find_jumps_on_a_recorded_like_run(submission):
    for seed in (11, 12):
        D, steps = _recorded_like(seed)
        _check_jumps(submission, f"Trajectories like a recorded run (60 snapshots, 3 instances, 5 features, seed {seed})",
                     D, steps)


# --------------------------------------------------------------------------- mistakes: 07.attack_perturbations


def _gram_rows(W: torch.Tensor) -> torch.Tensor:
    G = W.mT @ W
    n = G.norm(dim=-1, keepdim=True)
    return torch.where(n > 1e-12, G / n.clamp_min(1e-12), torch.zeros_like(G))


def _eps(x: torch.Tensor, fraction: float) -> torch.Tensor:
    return fraction * x.norm(dim=-1).mean(0)


def _ap(direction, eps=_eps):
    def impl(W, x, fraction=0.1):
        return eps(x, fraction)[:, None, None] * direction(W)
    return impl


def _ap_numpy(W, x, fraction=0.1):
    G = np.einsum("kmi,kmj->kij", W.numpy(), W.numpy())
    n = np.linalg.norm(G, axis=-1, keepdims=True)
    eps = fraction * np.linalg.norm(x.numpy(), axis=-1).mean(0)
    return torch.from_numpy(eps[:, None, None] * np.where(n > 0, G / np.where(n > 0, n, 1), 0))


MISTAKES["attack_perturbations"] = [
    Mistake("unnormalised", _ap(lambda W: W.mT @ W), "normalise",
            "Your perturbations are rows of W^T W scaled by eps without being normalised first: divide each row by its "
            "norm, so every perturbation has norm eps."),
    Mistake("own_axis", _ap(lambda W: torch.eye(W.shape[2], dtype=W.dtype).expand(W.shape[0], -1, -1)), "(W^T W)_i",
            "Your attack on feature i pushes along feature i's own axis e_i: the optimal attack is along (W^T W)_i, which "
            "also uses every feature that shares feature i's direction."),
    Mistake("cosines", _ap(lambda W: _gram_rows(_unit(W))), "W^T W",
            "Your directions are rows of the cosine matrix W_hat^T W_hat: use W^T W itself (norms included), then normalise each row."),
    Mistake("negative", _ap(lambda W: -_gram_rows(W)), "raises",
            "Your perturbations point the wrong way: the attack raises feature i's pre-activation, +(W^T W)_i."),
    Mistake("batch_norm", _ap(_gram_rows, lambda x, f: f * x.norm(dim=(0, 2))), "average input norm",
            "Your eps uses the norm of the whole batch: it is fraction times the average input norm, mean over the batch "
            "of ||x_b||."),
    Mistake("rms", _ap(_gram_rows, lambda x, f: f * x.square().sum(-1).mean(0).sqrt()), "mean of the norms",
            "Your eps uses the root mean square input norm sqrt(E ||x||^2): use the mean of the norms, E ||x||."),
    Mistake("one_eps", _ap(_gram_rows, lambda x, f: (f * x.norm(dim=-1).mean()).expand(x.shape[1])), "each instance",
            "Your eps is one number for all instances: each instance's attack is scaled by its own average input norm."),
    Mistake("entry_norm", _ap(_gram_rows, lambda x, f: f * x.abs().mean(dim=(0, 2))), "average input norm",
            "Your eps uses the mean absolute entry of x: it is fraction times the average input norm, mean over the batch "
            "of ||x_b|| (the L2 norm over the features)."),
    Mistake("fixed_fraction", lambda W, x, fraction=0.1: _ap(_gram_rows)(W, x, 0.1), "fraction argument",
            "Your perturbations ignore the fraction argument (0.1 is used): scale by the fraction you are given."),
    Mistake("max_norm", _ap(_gram_rows, lambda x, f: f * x.norm(dim=-1).amax(0)), "average input norm",
            "Your eps uses the largest input norm: it is fraction times the average input norm, mean over the batch."),
    Mistake("nan_zero_rows", _ap(lambda W: (W.mT @ W) / (W.mT @ W).norm(dim=-1, keepdim=True)), "finite", compare=False),
    Mistake("float32", lambda W, x, fraction=0.1: _ap(_gram_rows)(W.float(), x.float(), fraction), _DTYPE,
            compare=False),
    Mistake("numpy", _ap_numpy, _GRAD, compare=False),
]


# --------------------------------------------------------------------------- 07.attack_perturbations


def _x(seed: int, batch: int, k: int, n: int, p: float = 0.3) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    active = torch.rand(batch, k, n, generator=gen) < p
    return torch.rand(batch, k, n, generator=gen) * active


def _attack_case(seed: int, k: int, m: int, n: int, batch: int = 64, fraction: float | None = None, **kw) -> Case:
    label = f"random W of shape {(k, m, n)} and x of shape {(batch, k, n)}"
    kwargs = {} if fraction is None else {"fraction": fraction}
    return Case(label, lambda: (random_W(seed, k, m, n, **kw), _x(seed + 1, batch, k, n)), kwargs)


def _pentagon_and_dedicated() -> tuple[torch.Tensor, torch.Tensor]:
    """Instance 0: a pentagon beside a dedicated dimension; 1: three dedicated dimensions and three unlearned features."""
    W0 = tegum_product([regular_polygon(5), torch.ones(1, 1)], m=3)
    W1 = torch.cat([torch.eye(3), torch.zeros(3, 3)], dim=1)
    return torch.stack([W0, W1]).float(), _x(5, 32, 2, 6)


def _zero_rows() -> tuple[torch.Tensor, torch.Tensor]:
    W = with_zero_columns(random_W(21, 3, 3, 6), [(0, 2), (1, 0), (1, 5)])
    return W, _x(22, 40, 3, 6)


def _attack_shape_hint(got: tuple[int, ...], args: tuple[Any, ...]) -> str:
    k, m, n = args[0].shape
    if got == (k, n):
        return " That is one vector per instance: return one perturbation per attacked feature, (n_instances, n_features, n_features)."
    if got == (k, m, n) or got == (k, n, m):
        return " Your perturbations live in the hidden space: an attack perturbs the input x, so it has n_features entries."
    return ""


globals().update(tensor_properties(
    "attack_perturbations", function="attack_perturbations", reference=adversarial.attack_perturbations,
    meaning="(n_instances, n_features, n_features)", shape=lambda W, x, **kw: (W.shape[0], W.shape[2], W.shape[2]),
    points={"shape": 0.5, "inputs": 0.5, "values": 1.5, "edges": 0.5},
    mistakes=MISTAKES["attack_perturbations"],
    shape_cases=[_attack_case(1, 3, 2, 5), _attack_case(2, 1, 4, 3), _attack_case(3, 2, 3, 7, batch=1)],
    input_case=_attack_case(4, 2, 3, 5),
    value_cases=[
        Case("a pentagon beside a dedicated dimension, and three dedicated dimensions with three unlearned features",
             _pentagon_and_dedicated),
        _attack_case(6, 3, 4, 8, batch=100),
        _attack_case(7, 2, 3, 6, batch=50, fraction=0.25),
    ],
    edge_cases=[Case("W with zero columns (unlearned features, whose attack is 0)", _zero_rows,
                     note="An unlearned feature has a zero row of W^T W: its perturbation is 0, not NaN.")],
    shape_hint=_attack_shape_hint, prefix="attack",
))


@prop("attack_perturbations", points=1)
def test_attack_is_the_largest_push_on_its_feature(submission):
    W, x = random_W(30, 2, 3, 7), _x(31, 80, 2, 7)
    out = call(submission, W.clone(), x.clone(), 0.1, what="attack_perturbations")
    expect(isinstance(out, torch.Tensor) and tuple(out.shape) == (2, 7, 7),
           f"attack_perturbations should return a tensor of shape (2, 7, 7), got {describe(out)}.")
    out = out.detach().double()
    eps = 0.1 * x.norm(dim=-1).mean(0).double()
    norms = out.norm(dim=-1)
    expect(torch.allclose(norms, eps[:, None].expand_as(norms), rtol=1e-4),
           f"Every perturbation should have norm eps = 0.1 x the average input norm = {fmt(eps)} (per instance); "
           f"got norms {fmt(norms[0])} (instance 0).")
    G = (W.mT @ W).double()
    push = torch.einsum("kij,kij->ki", G, out)  # feature i's pre-activation change under its own attack
    best = eps[:, None] * G.norm(dim=-1)
    expect(torch.allclose(push, best, rtol=1e-4),
           f"The attack on feature i should raise feature i's pre-activation (W^T W delta_i)_i by eps ||(W^T W)_i||, the "
           f"most any perturbation of norm eps can: expected {fmt(best[0])}, got {fmt(push[0])} (instance 0).")


# --------------------------------------------------------------------------- mistakes: 07.vulnerability


def _vul(W, b, x, importance=1.0, fraction=0.1, *, target="x", relu=True, reduce="max", bias=True, diff=True,
         mean_features=True, use_importance=True, fixed_fraction=False, direction=None, sign=1.0):
    k, m, n = W.shape
    imp = torch.as_tensor(importance, dtype=W.dtype).expand(k, n) if use_importance else torch.ones(k, n, dtype=W.dtype)
    frac = 0.1 if fixed_fraction else fraction
    G = W.mT @ W
    dirs = _gram_rows(W) if direction is None else direction(W)
    delta = sign * _eps(x, frac)[:, None, None] * dirs  # (k, n, n)
    bb = b if bias else torch.zeros_like(b)

    def out(inp):
        if inp.dim() == 4:  # (batch, k, attacked, n)
            pre = torch.einsum("kij,bkaj->bkai", G, inp) + bb[:, None, :]
        else:
            pre = torch.einsum("kij,bkj->bki", G, inp) + bb
        return torch.relu(pre) if relu else pre

    clean_out = out(x)
    tgt = x if target == "x" else clean_out
    xa = x[:, :, None, :] + delta
    per_clean = imp * (tgt - clean_out) ** 2  # (batch, k, n)
    per = imp[:, None, :] * (tgt[:, :, None, :] - out(xa)) ** 2  # (batch, k, attacked, n)
    if mean_features:
        clean, attacked = per_clean.mean(dim=(0, 2)), per.mean(dim=(0, 3))
    else:
        clean, attacked = per_clean.sum(2).mean(0), per.sum(3).mean(0)
    inc = attacked - clean[:, None] if diff else attacked
    return {"max": inc.max(-1).values, "mean": inc.mean(-1), "sum": inc.sum(-1), "first": inc[:, 0],
            "min": inc.min(-1).values}[reduce]


def _v(**switches):
    def impl(W, b, x, importance=1.0, fraction=0.1):
        return _vul(W, b, x, importance, fraction, **switches)
    return impl


MISTAKES["vulnerability"] = [
    Mistake("mean_over_features", _v(reduce="mean"), "worst",
            "Your vulnerability is the mean over the attacked features: take the worst one, the largest L'_i - L."),
    Mistake("sum_over_features", _v(reduce="sum"), "worst",
            "Your vulnerability sums over the attacked features: take the worst one, the largest L'_i - L."),
    Mistake("first_feature", _v(reduce="first"), "worst",
            "Your vulnerability is feature 0's attack only: attack every feature and take the worst one."),
    Mistake("attacked_loss", _v(diff=False), "L' - L",
            "You returned the attacked loss L': the vulnerability is the increase, L' - L."),
    Mistake("target_clean_output", _v(target="model"), "clean input",
            "Your attacked loss compares with the model's clean output: the loss compares with the clean input x "
            "(the target the model was trained to reconstruct)."),
    Mistake("no_relu", _v(relu=False), "ReLU",
            "Your model has no ReLU: the outputs are ReLU(W^T W x + b)."),
    Mistake("no_bias", _v(bias=False), "bias",
            "Your outputs leave out the bias b: they are ReLU(W^T W x + b)."),
    Mistake("no_importance", _v(use_importance=False), "importance",
            "Your loss ignores `importance`: weight each feature's squared error by I_i."),
    Mistake("sum_features", _v(mean_features=False), "mean over",
            "Your loss sums the squared errors over the features: the course's loss is the mean over batch and features."),
    Mistake("fixed_fraction", _v(fixed_fraction=True), "fraction argument",
            "Your attack ignores the fraction argument (0.1 is used): scale the attack by the fraction you are given."),
    Mistake("own_axis", _v(direction=lambda W: torch.eye(W.shape[2], dtype=W.dtype).expand(W.shape[0], -1, -1)),
            "(W^T W)_i",
            "Your attacks push along each feature's own axis e_i: the optimal attack on feature i is along (W^T W)_i."),
    Mistake("unnormalised", _v(direction=lambda W: W.mT @ W), "normalise",
            "Your attacks are rows of W^T W scaled by eps without being normalised: every attack has norm eps."),
    Mistake("negative", _v(sign=-1.0), "raises",
            "Your attacks point the wrong way: the attack on feature i raises its pre-activation, +(W^T W)_i."),
]


# --------------------------------------------------------------------------- 07.vulnerability


def _vul_case(seed: int, k: int, m: int, n: int, batch: int = 200, p: float = 0.2, label: str | None = None,
              **kwargs) -> Case:
    def make():
        W = random_W(seed, k, m, n, norms=(0.6, 1.3))
        b = -0.1 * torch.rand(k, n, generator=torch.Generator().manual_seed(seed + 2))
        return W, b, _x(seed + 1, batch, k, n, p)
    return Case(label or f"random W of shape {(k, m, n)}, negative biases, x of shape {(batch, k, n)}", make, kwargs)


def _trained_like() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Instance 0: a pentagon (m=2 of 3) beside a dedicated dimension; 1: two digons and a dedicated one; 2: dense."""
    W0 = tegum_product([regular_polygon(5), torch.ones(1, 1)], m=3)
    W0 = torch.cat([W0, torch.zeros(3, 1)], dim=1)  # 7 features
    W1 = torch.cat([tegum_product([digon(), digon(), torch.ones(1, 1)], m=3), torch.zeros(3, 2)], dim=1)
    W2 = torch.eye(3)[:, [0, 1, 2, 0, 1, 2, 0]] * torch.tensor([1.0, 1, 1, 0, 0, 0, 0])
    W = torch.stack([W0, W1, W2]).float() * 1.05
    b = torch.stack([torch.full((7,), -0.15), torch.full((7,), -0.05), torch.zeros(7)])
    b[0, 5:] = torch.tensor([0.0, 0.1])
    return W, b, _x(41, 400, 3, 7, 0.15)


def _vul_shape_hint(got: tuple[int, ...], args: tuple[Any, ...]) -> str:
    k, m, n = args[0].shape
    if got == (k, n):
        return " That is the loss increase of every attacked feature: the vulnerability is the worst one, max over features."
    if got in ((), (1,)):
        return " One number for all instances: return one vulnerability per instance."
    return ""


globals().update(tensor_properties(
    "vulnerability", function="vulnerability", reference=adversarial.vulnerability, meaning="(n_instances,)",
    shape=lambda W, b, x, *a, **kw: (W.shape[0],), points={"shape": 0.5, "values": 2, "edges": 0.5},
    mistakes=MISTAKES["vulnerability"],
    shape_cases=[_vul_case(1, 3, 2, 5), _vul_case(2, 1, 3, 4, batch=1, label="one instance, one example")],
    value_cases=[
        Case("weights like trained models' (a pentagon beside a dedicated dimension; two digons; dedicated dimensions)",
             _trained_like),
        _vul_case(3, 2, 3, 8),
        _vul_case(4, 2, 4, 6, label="random W of shape (2, 4, 6), importance 0.8^i, fraction 0.3",
                  importance=torch.tensor([0.8 ** i for i in range(6)]), fraction=0.3),
    ],
    edge_cases=[Case("W with zero columns (unlearned features)",
                     lambda: (with_zero_columns(random_W(5, 2, 3, 6), [(0, 1), (1, 4)]), torch.zeros(2, 6),
                              _x(6, 100, 2, 6)))],
    follows_input=False, shape_hint=_vul_shape_hint, prefix="vulnerability",
))


@prop("vulnerability", points=1)
def test_model_without_superposition_loses_eps_squared(submission):
    # Dedicated dimensions, b = 0: the attack on a represented feature adds eps to it, so L' - L = I_max eps^2 / n.
    W, b = adversarial.no_superposition_weights(2, 3, 6, torch.tensor([0.5, 1.0, 0.9, 0.3, 0.2, 0.1]))
    x = _x(50, 300, 2, 6, 0.3)
    imp = torch.tensor([0.5, 1.0, 0.9, 0.3, 0.2, 0.1])
    out = call(submission, W.clone(), b.clone(), x.clone(), imp.clone(), 0.2, what="vulnerability")
    expect(isinstance(out, torch.Tensor) and tuple(out.shape) == (2,),
           f"vulnerability should return a tensor of shape (n_instances,) = (2,), got {describe(out)}.")
    eps = 0.2 * x.norm(dim=-1).mean(0)
    want = imp.max() * eps.square() / 6
    got = out.detach().float()
    hint = diagnose(MISTAKES["vulnerability"], got, [W, b, x, imp, 0.2])
    expect(torch.allclose(got, want, rtol=1e-3),
           f"The model without superposition (features 1, 2, 0 on dedicated dimensions, b = 0, importance "
           f"{fmt(imp)}, fraction 0.2): the worst attack adds eps to feature 1 (importance 1), so L' - L should be "
           f"I_1 eps^2 / n_features = {fmt(want)}, got {fmt(got)}.{hint}")
