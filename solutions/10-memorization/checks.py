"""Lesson 10's checks: the finite dataset, full-batch training, data-point dimensionality, test loss, the sweep over T.

Random outputs (the dataset, the test loss, the sweep) are judged by statistics with stated error
rates; deterministic ones (full-batch training from a given start, dimensionalities) against the
reference library on inputs drawn from the grading run's secret.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from autograder.exercises import Exercise
from autograder.framework import CheckFailed, Construct, call, expect, prop
from autograder.toolkit import close, describe, diagnose, fmt, fmt_pair, secret_gen, secret_seed, show_difference, tensor_out
from autograder.toolkit.stats import ks_statistic, ks_threshold, z_for
from supercourse import memorization as mem
from supercourse.model import ToyModel

from .mistakes import MISTAKES

LESSON = "10-memorization"

_SAMPLERS = ("supercourse.memorization.finite_dataset", "supercourse.memorization.sparse_points")
_LOSSES = ("supercourse.memorization.reconstruction_loss", "supercourse.memorization._sparse_loss",
           "supercourse.memorization._FullBatch")
EXERCISES = {
    "finite_dataset": Exercise("finite_dataset", "A fixed training set of unit-norm sparse points", reference=_SAMPLERS),
    "train_full_batch": Exercise(
        "train_full_batch", "Full-batch AdamW with warm-up and cosine decay",
        reference=("supercourse.memorization.train_full_batch", "supercourse.memorization.train_points",
                   "supercourse.memorization.sweep", *_LOSSES),
        modifies=("model",),
    ),
    "data_dimensionality": Exercise(
        "data_dimensionality", "The dimensionality of each training point",
        reference=("supercourse.memorization.data_dimensionality", "supercourse.memorization.dimensionalities",
                   "supercourse.memorization.feature_dimensionality", "supercourse.metrics.feature_dimensionality"),
    ),
    "test_loss": Exercise(
        "test_loss", "The loss on fresh points",
        reference=("supercourse.memorization.test_loss", *_LOSSES),
    ),
    "sweep": Exercise(
        "sweep", "The sweep over T, keeping the lowest training loss",
        reference=("supercourse.memorization.sweep", "supercourse.memorization.SweepResult"),
    ),
}

ALPHA = 1e-7
"""Error rate of each statistical test of a correct implementation."""
Z = z_for(ALPHA)


def _randint(salt: object, low: int, high: int) -> int:
    """A secret integer in [low, high]."""
    return int(torch.randint(low, high + 1, (1,), generator=secret_gen(salt)).item())


def _uniform(salt: object, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(1, generator=secret_gen(salt)).item())


# --------------------------------------------------------------------------- 10.finite_dataset


def _dataset(submission, T: int, n: int, p: float, n_instances: int | None, salt: object) -> torch.Tensor:
    """The learner's dataset as float64, checked to be a finite tensor ``(T, n_instances, n)``."""
    kwargs = {"generator": secret_gen(salt)}
    if n_instances is not None:
        kwargs["n_instances"] = n_instances
    text = f"finite_dataset({T}, {n}, {p:.3g}" + (f", n_instances={n_instances}" if n_instances is not None else "") + ", generator=...)"
    x = call(submission, T, n, p, what="finite_dataset", **kwargs)
    shape = (T, 1 if n_instances is None else n_instances, n)
    expect(isinstance(x, torch.Tensor) and tuple(x.shape) == shape,
           f"Shape: {text} should return a tensor of shape (n_points, n_instances, n_features) = {shape}, got {describe(x)}.")
    expect(x.is_floating_point(), f"Dtype: {text} should return floats, got {describe(x)}.")
    x = x.detach().double()
    bad = int((~torch.isfinite(x)).sum())
    expect(bad == 0,
           f"Finite values: {text} returned {bad} NaN or infinite entries. A point with no active feature has norm 0: "
           "dividing it by its norm is 0 / 0. Such a point stays zero: divide only where the norm is > 0.")
    return x


@prop("finite_dataset", points=1)
def test_shape_and_dtype(submission):
    T, n, I = _randint("T", 2, 20), _randint("n", 3, 30), _randint("I", 2, 4)
    _dataset(submission, T, n, 0.3, I, 1)
    _dataset(submission, _randint("T1", 2, 9), _randint("n1", 2, 9), 0.5, None, 2)  # n_instances left out: one instance
    x = _dataset(submission, 3, 1, 1.0, 2, 3)
    expect(bool((x == 1).all()),
           f"One feature that is always on: every point is that feature at norm 1, so finite_dataset(3, 1, 1.0, "
           f"n_instances=2) should be all ones, got {fmt(x.flatten())}.")


@prop("finite_dataset", points=1)
def test_unit_norm(submission):
    # n = 6 features at density 0.3: a point has no active feature with probability 0.7^6 = 0.118.
    T, n, p = 4000, 6, 0.3
    x = _dataset(submission, T, n, p, 2, 10)
    norms = x.norm(dim=2)
    empty = (x == 0).all(dim=2)
    off = (norms[~empty] - 1).abs()
    expect(bool((off <= 1e-5).all()),
           f"Unit norm: every point with an active feature should have norm 1 (||x||_2, over its features), got norms "
           f"{fmt(norms[~empty][off > 1e-5][:6])}. Divide each point by its Euclidean norm x.norm(dim=-1, keepdim=True).")
    frac, want = float(empty.double().mean()), (1 - p) ** n
    tol = Z * math.sqrt(want * (1 - want) / empty.numel()) + 1e-3
    expect(abs(frac - want) <= tol,
           f"Points with no active feature: a fraction {want:.3f} of the points should be all zero ((1 - p)^n), got "
           f"{frac:.3f}. Such points stay zero: do not redraw them, and do not leave any other point at zero.")


@prop("finite_dataset", points=1)
def test_density_and_independence(submission):
    p = _uniform("p", 0.1, 0.35)
    T, n, I = 3000, 10, 2
    x = _dataset(submission, T, n, p, I, 20)
    active = (x != 0).double()
    got = float(active.mean())
    tol = Z * math.sqrt(p * (1 - p) / active.numel()) + 1e-4
    if abs(got - p) > tol:
        hint = " Your density looks like 1 - p: feature_probability is the chance that a feature is non-zero." if abs(
            got - (1 - p)) <= tol else ""
        raise CheckFailed(f"Density: each feature should be non-zero with probability p = {p:.3f}, got a fraction "
                          f"{got:.4f} over {active.numel()} entries.{hint}")
    counts = active.sum(dim=2).flatten()
    var, want = float(counts.var()), n * p * (1 - p)
    # The sample variance of a binomial count: standard error about want * sqrt(2 / N) (plus the kurtosis term).
    tol = Z * want * math.sqrt(3.0 / counts.numel()) + 0.02
    expect(abs(var - want) <= tol,
           f"Independence: the number of active features per point should vary as a Binomial(n={n}, p={p:.3f}) count "
           f"(variance {want:.3f}), got variance {var:.3f}. Each feature must be switched on independently: draw one "
           "random number per entry (point, instance, feature), not one per point.")


@prop("finite_dataset", points=1)
def test_values_uniform(submission):
    # Two features, always on: x = (u1, u2) / ||(u1, u2)||. With u uniform on [0, 1] the angle theta has
    # P(theta <= a) = tan(a) / 2 below 45 degrees and 1 - cot(a) / 2 above.
    T = 20_000
    x = _dataset(submission, T, 2, 1.0, 1, 30)
    expect(bool((x >= 0).all()),
           f"Values: the active features are uniform on [0, 1] (then rescaled), so no entry is negative; got "
           f"{fmt(x[x < 0][:4])}.")
    theta = torch.atan2(x[..., 1], x[..., 0]).flatten()

    def cdf(a: torch.Tensor) -> torch.Tensor:
        a = a.clamp(0, math.pi / 2)
        return torch.where(a <= math.pi / 4, torch.tan(a) / 2, 1 - 1 / (2 * torch.tan(a).clamp_min(1e-12)))

    stat, limit = ks_statistic(theta, cdf), ks_threshold(theta.numel(), ALPHA)
    expect(stat <= limit,
           f"Values: with two features that are always on, the direction of (u1, u2) / ||(u1, u2)|| should follow from "
           f"u1, u2 uniform on [0, 1]; the angles of your points are off by {stat:.3f} (Kolmogorov-Smirnov; at most "
           f"{limit:.3f} by chance). Draw the active values with torch.rand (uniform), then rescale.")


@prop("finite_dataset", points=1)
def test_instances_and_generator(submission):
    seed = secret_seed("generator")
    a = call(submission, 300, 8, 0.4, n_instances=2, generator=torch.Generator().manual_seed(seed), what="finite_dataset")
    torch.rand(17)  # the global generator moves on: a result that depends on it changes
    b = call(submission, 300, 8, 0.4, n_instances=2, generator=torch.Generator().manual_seed(seed), what="finite_dataset")
    c = call(submission, 300, 8, 0.4, n_instances=2, generator=torch.Generator().manual_seed(seed + 1), what="finite_dataset")
    for t in (a, b, c):
        expect(isinstance(t, torch.Tensor) and tuple(t.shape) == (300, 2, 8),
               f"Shape: finite_dataset(300, 8, 0.4, n_instances=2, generator=...) should have shape (300, 2, 8), got {describe(t)}.")
    expect(torch.equal(a, b),
           "Generator: two calls with generators seeded alike should return the same dataset: draw every random "
           "number from the generator argument (torch.rand(..., generator=generator)), never from the global one.")
    expect(not torch.equal(a, c), "Generator: generators seeded differently should give different datasets.")
    expect(not torch.equal(a[:, 0], a[:, 1]),
           "Instances: each instance needs its own training set; instances 0 and 1 got the same points. Draw "
           "(n_points, n_instances, n_features) random numbers.")
    act = (a != 0).double()
    agree = float((act[:, 0] == act[:, 1]).double().mean())
    want = 0.4**2 + 0.6**2
    tol = Z * math.sqrt(want * (1 - want) / act[:, 0].numel())
    expect(abs(agree - want) <= tol,
           f"Instances: the instances' points should be independent; their active features agree on {agree:.3f} of the "
           f"entries, expected {want:.3f} for independent draws.")


# --------------------------------------------------------------------------- 10.train_full_batch


class _Run:
    """One call of the learner's ``train_full_batch`` on a ToyModel built in the worker, and the reference run."""

    def __init__(self, submission, salt: str, steps: int, options: dict[str, Any]) -> None:
        n, I, T = _randint((salt, "n"), 8, 16), _randint((salt, "I"), 2, 3), _randint((salt, "T"), 3, 7)
        self.steps, self.options = steps, options
        self.kwargs = {"n_features": n, "n_hidden": 2, "n_instances": I}
        ref = ToyModel(**self.kwargs, seed=secret_seed((salt, "init")))
        with torch.no_grad():
            ref.W.mul_(4.0)  # four times Xavier: the ReLU outputs are large, so every mistake moves the loss visibly
            ref.b_final.copy_(0.05 * torch.randn(I, n, generator=secret_gen((salt, "b"))))
        self.state = {k: v.detach().clone() for k, v in ref.state_dict().items()}
        self.dataset = mem.finite_dataset(T, n, 0.35, I, secret_gen((salt, "data")))
        self.model = Construct("supercourse.model.ToyModel", dict(self.kwargs), {k: v.clone() for k, v in self.state.items()})
        shown = "".join(f", {k}={v:.3g}" if isinstance(v, float) else f", {k}={v}" for k, v in options.items())
        self.text = f"train_full_batch(model, dataset of shape {tuple(self.dataset.shape)}, {steps}{shown})"
        self.out = call(submission, self.model, self.dataset.clone(), steps, what="train_full_batch", **options)
        self.final = self.model.final_state or {}
        self.want_losses, self.want_state = self.replay(mem.train_full_batch)

    def replay(self, fn) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model = ToyModel(**self.kwargs)
        model.load_state_dict(self.state)
        losses = fn(model, self.dataset.clone(), self.steps, **self.options)
        return losses.detach(), {"W": model.W.detach().clone(), "b_final": model.b_final.detach().clone()}

    def losses(self) -> torch.Tensor:
        I = self.kwargs["n_instances"]
        return tensor_out(self.out, what="Loss history", shape=(self.steps, I), meaning="(steps, n_instances)")

    def matches(self, losses: Any, state: dict[str, torch.Tensor]) -> bool:
        return (isinstance(self.out, torch.Tensor) and close(self.out, losses, rtol=2e-3, atol=2e-4)
                and all(isinstance(self.final.get(k), torch.Tensor) and close(self.final[k], state[k], rtol=2e-3, atol=2e-4)
                        for k in ("W", "b_final")))

    def diagnosis(self) -> str:
        """The hint of the first known mistake whose replay gives what the learner's run gave."""
        for m in MISTAKES["train_full_batch"]:
            if not m.compare:
                continue
            try:
                losses, state = self.replay(m.implementation)
            except Exception:  # noqa: BLE001 - a mistake that cannot run on these inputs
                continue
            if self.matches(losses, state):
                return " " + m.hint
        return ""

    def expect_trajectory(self, what: str) -> None:
        got = self.losses()
        for name in ("W", "b_final"):
            mine = self.final.get(name)
            expect(isinstance(mine, torch.Tensor) and tuple(mine.shape) == tuple(self.want_state[name].shape),
                   f"{what}: after {self.text} the model has no {name} of shape {tuple(self.want_state[name].shape)}: "
                   "train the model you are given, in place.")
        ok_losses = close(got, self.want_losses, rtol=2e-3, atol=2e-4)
        ok_state = all(close(self.final[k], self.want_state[k], rtol=2e-3, atol=2e-4) for k in ("W", "b_final"))
        if ok_losses and ok_state:
            return
        where = (f"the loss history differs {show_difference(got, self.want_losses, 2e-3, 2e-4)}" if not ok_losses else
                 "the loss history matches but the final weights differ: "
                 + show_difference(self.final["W"], self.want_state["W"], 2e-3, 2e-4))
        raise CheckFailed(f"{what}: after {self.text}, {where}.{self.diagnosis()}")


@prop("train_full_batch", points=1)
def test_loss_history_format(submission):
    run = _Run(submission, "format", 12, {"lr": 0.05, "weight_decay": 0.0, "warmup_steps": 3})
    run.losses()


@prop("train_full_batch", points=1)
def test_loss_at_the_first_step(submission):
    run = _Run(submission, "first", 5, {"lr": 0.05, "weight_decay": 0.0, "warmup_steps": 2})
    got, want = run.losses()[0], run.want_losses[0]
    if not close(got, want, rtol=1e-4, atol=1e-6):
        w, g = fmt_pair(want, got)
        per_feature = close(got * run.kwargs["n_features"], want, rtol=1e-4, atol=1e-6)  # the mean over features
        hint = " " + MISTAKES["train_full_batch"][0].hint if per_feature else ""
        raise CheckFailed(f"Loss: at step 0 (the model as given) each instance's loss should be {w}, got {g}: the mean "
                          f"over the points of ||ReLU(W^T W x + b) - x||^2, recorded before the update.{hint}")


@prop("train_full_batch", points=2)
def test_adamw_with_warmup_and_cosine(submission):
    steps = _randint("steps", 20, 30)
    run = _Run(submission, "trajectory", steps,
               {"lr": _uniform("lr", 0.03, 0.06), "weight_decay": 0.0, "warmup_steps": _randint("warmup", 4, 8)})
    run.expect_trajectory("Training (AdamW, full batch, warm-up then cosine decay)")


@prop("train_full_batch", points=1)
def test_decoupled_weight_decay(submission):
    run = _Run(submission, "decay", 20, {"lr": 0.05, "weight_decay": _uniform("wd", 0.5, 1.5), "warmup_steps": 3})
    run.expect_trajectory("Weight decay (AdamW's, decoupled)")


@prop("train_full_batch", points=1)
def test_defaults(submission):
    steps = _randint("steps", 30, 50)
    run = _Run(submission, "defaults", steps, {})
    run.expect_trajectory(f"Defaults (lr=1e-3, weight_decay=1e-2, warmup_steps=round(0.05 * steps) = "
                          f"{mem.warmup_steps_for(steps)})")


# --------------------------------------------------------------------------- 10.data_dimensionality


def _dims(submission, W: torch.Tensor, x: torch.Tensor, what: str) -> torch.Tensor:
    out = call(submission, W.clone(), x.clone(), what="data_dimensionality")
    out = tensor_out(out, what=what, shape=(W.shape[0], x.shape[0]), meaning="(n_instances, n_points)", like=W, finite=False)
    bad = int((~torch.isfinite(out)).sum())
    expect(bad == 0, f"{what}: {bad} dimensionalities are NaN or infinite. A point with no active feature (x = 0) has "
                     "h = 0: its dimensionality is zero, not 0 / 0 (guard the division).")
    return out


def _random_case(salt: object, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    I, m, n, T = _randint((salt, "I"), 1, 3), _randint((salt, "m"), 2, 4), _randint((salt, "n"), 5, 12), _randint((salt, "T"), 3, 9)
    W = torch.randn(I, m, n, generator=secret_gen((salt, "W")), dtype=torch.float64).to(dtype)
    x = mem.finite_dataset(T, n, 0.4, I, secret_gen((salt, "x"))).to(dtype)
    return W, x


@prop("data_dimensionality", points=1)
def test_dimensionality_format(submission):
    W, x = _random_case("format")
    _dims(submission, W, x, "Format")
    W64, x64 = _random_case("format64", torch.float64)
    _dims(submission, W64, x64, "Format (float64 inputs)")
    W1, x1 = W[:1], x[:1, :1]
    out = _dims(submission, W1, x1, "Format (one instance, one point)")
    want = mem.data_dimensionality(W1, x1)
    expect(close(out, want),
           f"One point alone: its dimensionality is {fmt(want)} (1 if h is non-zero: it has a dimension to itself), "
           f"got {fmt(out)}. The sum over s includes the point itself.")


@prop("data_dimensionality", points=1)
def test_regular_polygon(submission):
    T = _randint("T", 3, 9)
    angle0, radius = _uniform("angle", 0, 2 * math.pi), _uniform("r", 0.5, 3.0)
    angles = angle0 + 2 * math.pi * torch.arange(T, dtype=torch.float64) / T
    n = T + 2
    W = torch.zeros(1, 2, n, dtype=torch.float64)
    W[0, 0, :T], W[0, 1, :T] = radius * torch.cos(angles), radius * torch.sin(angles)
    W[0, :, T:] = torch.randn(2, 2, generator=secret_gen("extra"), dtype=torch.float64)  # features no point uses
    perm = torch.randperm(T, generator=secret_gen("perm"))
    x = torch.zeros(T, 1, n, dtype=torch.float64)
    x[torch.arange(T), 0, perm] = 1.0  # point t is feature perm[t]: the hidden vectors are a regular T-gon
    got = _dims(submission, W, x, "Regular polygon")
    want = torch.full((1, T), 2.0 / T, dtype=torch.float64)
    if not close(got, want):
        hint = diagnose(MISTAKES["data_dimensionality"], got, (W, x))
        raise CheckFailed(f"Regular polygon: {T} points whose hidden vectors h_t = W x_t form a regular {T}-gon of "
                          f"radius {radius:.2f} each have dimensionality m/T = 2/{T} = {2 / T:.4f}, got {fmt(got)}.{hint}")


@prop("data_dimensionality", points=1)
def test_against_the_reference(submission):
    for salt in ("a", "b"):
        W, x = _random_case(salt)
        got = _dims(submission, W, x, "Random models")
        want = mem.data_dimensionality(W, x)
        if not close(got, want):
            hint = diagnose(MISTAKES["data_dimensionality"], got, (W, x))
            raise CheckFailed(f"Random models: W of shape {tuple(W.shape)}, {x.shape[0]} points: "
                              f"{show_difference(got, want)}.{hint}")


@prop("data_dimensionality", points=1)
def test_zero_points_and_instances(submission):
    W, x = _random_case("zero")
    W = torch.cat([W, W.flip(0) * 2.0])  # more instances, each with its own points
    x = torch.cat([x, mem.finite_dataset(x.shape[0], x.shape[2], 0.4, x.shape[1], secret_gen("more"))], dim=1)
    x[_randint("row", 0, x.shape[0] - 1), 0] = 0.0  # a point with no active feature: h = 0
    got = _dims(submission, W, x, "Zero points")
    want = mem.data_dimensionality(W, x)
    if not close(got, want):
        hint = diagnose(MISTAKES["data_dimensionality"], got, (W, x))
        raise CheckFailed(f"Zero points and several instances: a point with x = 0 has h = 0 and dimensionality 0; each "
                          f"instance's points are compared with that instance's points only. "
                          f"{show_difference(got, want)}.{hint}")


# --------------------------------------------------------------------------- 10.test_loss


def _test_loss(submission, W, b, p, n_points, salt, what="Test loss") -> torch.Tensor:
    out = call(submission, W.clone(), b.clone(), p, n_points=n_points, generator=secret_gen(salt), what="test_loss")
    return tensor_out(out, what=what, shape=(W.shape[0],), meaning="(n_instances,)")


def _model(salt: object, I: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    W = 0.8 * torch.randn(I, 2, n, generator=secret_gen((salt, "W")))
    # Biases of a few tenths, mostly negative (as a trained model's): leaving b out moves the loss by many tolerances.
    b = 0.3 * torch.randn(I, n, generator=secret_gen((salt, "b"))) - 0.3
    return W, b


def _expected(W, b, p, salt, n_points: int = 40_000) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's test loss on ``n_points`` points, and the standard deviation of one point's loss: ``(I,)`` each."""
    x = mem.finite_dataset(n_points, W.shape[2], p, W.shape[0], secret_gen((salt, "reference")))
    h = torch.einsum("tkn,kmn->tkm", x, W)
    per = (torch.relu(torch.einsum("tkm,kmn->tkn", h, W) + b) - x).square().sum(dim=2)  # (points, I)
    return per.mean(dim=0), per.std(dim=0)


@prop("test_loss", points=1)
def test_test_loss_format(submission):
    I, n = _randint("I", 1, 3), _randint("n", 5, 12)
    W, b = _model("format", I, n)
    _test_loss(submission, W, b, 0.3, 500, "format")
    Wp, bp = torch.nn.Parameter(W.clone()), torch.nn.Parameter(b.clone())
    out = call(submission, Wp, bp, 0.3, n_points=200, generator=secret_gen("param"), what="test_loss")
    tensor_out(out, what="Test loss (W and b nn.Parameters)", shape=(I,), meaning="(n_instances,)")


@prop("test_loss", points=1)
def test_zero_model_scores_one(submission):
    I, n = _randint("I", 1, 3), _randint("n", 40, 60)  # no point is empty: (1 - 0.3)^40 < 1e-6
    W, b = torch.zeros(I, 2, n), torch.zeros(I, n)
    got = _test_loss(submission, W, b, 0.3, 2000, "zero", "Zero model")
    if not close(got, torch.ones(I), rtol=1e-4, atol=1e-4):
        hint = diagnose(MISTAKES["test_loss"], got, (W, b, 0.3, 2000), same=lambda g, t: close(g, t, 1e-3, 1e-3))
        raise CheckFailed(f"Zero model: the model that outputs 0 loses ||x||^2 = 1 on every (unit-norm) point, so its "
                          f"test loss is 1; got {fmt(got)}. Sum the squared error over features and average it over "
                          f"the points.{hint}")


@prop("test_loss", points=1)
def test_matches_the_expected_loss(submission):
    I, n = _randint("I", 2, 3), _randint("n", 6, 12)
    p = _uniform("p", 0.15, 0.4)
    W, b = _model("expected", I, n)
    N = 20_000
    got = _test_loss(submission, W, b, p, N, "expected", "Expected loss")
    want, sd = _expected(W, b, p, "expected")
    tol = Z * sd * math.sqrt(1 / N + 1 / 40_000) + 1e-4
    if not bool(((got - want).abs() <= tol).all()):
        hint = ""
        for m in MISTAKES["test_loss"]:
            if not m.compare:
                continue
            theirs = m.implementation(W.clone(), b.clone(), p, 40_000, secret_gen((m.name, "expected")))
            if isinstance(theirs, torch.Tensor) and theirs.shape == got.shape and bool(((got - theirs).abs() <= 2 * tol).all()):
                hint = " " + m.hint
                break
        w, g = fmt_pair(want, got)
        raise CheckFailed(f"Expected loss: test_loss(W, b, {p:.3f}, n_points={N}) of a random model should be about {w} "
                          f"(within {fmt(tol)}), got {g}: the mean over fresh unit-norm points of "
                          f"||ReLU(W^T W x + b) - x||^2.{hint}")


@prop("test_loss", points=1)
def test_fresh_points_from_the_generator(submission):
    I, n, k = 2, 4, 7  # a point is empty with probability 0.7^4 = 0.24
    W, b = torch.zeros(I, 2, n), torch.zeros(I, n)
    seed = secret_seed("fresh")
    a = call(submission, W, b, 0.3, n_points=k, generator=torch.Generator().manual_seed(seed), what="test_loss")
    torch.rand(11)
    again = call(submission, W, b, 0.3, n_points=k, generator=torch.Generator().manual_seed(seed), what="test_loss")
    expect(isinstance(a, torch.Tensor) and isinstance(again, torch.Tensor) and torch.equal(a, again),
           "Generator: two calls with generators seeded alike should give the same test loss: draw the fresh points "
           "with the generator argument (pass it on to your finite_dataset).")
    seen = set()
    for j in range(12):
        out = call(submission, W, b, 0.3, n_points=k, generator=secret_gen(("draw", j)), what="test_loss")
        out = tensor_out(out, what="n_points", shape=(I,), meaning="(n_instances,)").double()
        counts = out * k  # the zero model loses exactly 1 per non-empty point
        expect(bool(((counts - counts.round()).abs() <= 1e-4).all()),
               f"n_points: with n_points={k} the zero model's test loss is (number of non-empty points) / {k}, a "
               f"multiple of 1/{k}; got {fmt(out)}. Draw exactly n_points fresh points per instance.")
        seen.add(tuple(counts.round().long().tolist()))
    expect(len(seen) > 1, f"Generator: twelve differently seeded generators all gave the same test loss {fmt(out)}: "
                          "draw fresh points from the generator each call.")


# --------------------------------------------------------------------------- 10.sweep

REFERENCE_POINTS = 200_000
"""Fresh points on which the check measures the kept model's test loss."""
_SWEEP_KEYS = ("sizes", "W", "b", "data", "train_loss", "kept", "test_loss")


class _Sweep:
    """One call of the learner's sweep on tiny sizes, its contract checked."""

    def __init__(self, submission, salt: object, seed: int | None = None) -> None:
        self.n, self.p, self.R = _randint((salt, "n"), 10, 16), 0.3, _randint((salt, "R"), 3, 4)
        small, large = _randint((salt, "small"), 2, 4), _randint((salt, "large"), 6, 9)
        self.sizes = [small, large]
        # Many test points: the kept seed's test loss must be told apart from the seeds' mean (a few hundredths away).
        self.steps, self.lr, self.n_test = 60, 0.05, 40_000
        self.seed = secret_seed((salt, "seed")) % 10_000 if seed is None else seed
        self.text = (f"sweep({self.sizes}, {self.n}, {self.p}, n_seeds={self.R}, steps={self.steps}, lr={self.lr}, "
                     f"seed={self.seed}, n_test={self.n_test})")
        self.out = call(submission, self.sizes, self.n, self.p, n_seeds=self.R, steps=self.steps, lr=self.lr,
                        seed=self.seed, n_test=self.n_test, what="sweep")
        self._check_format()

    def _check_format(self) -> None:
        out, S, R, n = self.out, len(self.sizes), self.R, self.n
        expect(isinstance(out, dict) and all(k in out for k in _SWEEP_KEYS),
               f"Format: {self.text} should return a dict with keys {list(_SWEEP_KEYS)}, got "
               f"{sorted(out) if isinstance(out, dict) else describe(out)}.")
        sizes = out["sizes"]
        sizes = sizes.tolist() if isinstance(sizes, torch.Tensor) else list(sizes) if isinstance(sizes, (list, tuple)) else sizes
        expect(sizes == self.sizes, f"Format: 'sizes' should be the sizes given, {self.sizes}, got {sizes}.")
        self.W = tensor_out(out["W"], what="Format ('W')", shape=(S, R, 2, n), meaning="(n_sizes, n_seeds, m, n_features)")
        self.b = tensor_out(out["b"], what="Format ('b')", shape=(S, R, n), meaning="(n_sizes, n_seeds, n_features)")
        self.train = tensor_out(out["train_loss"], what="Format ('train_loss')", shape=(S, R), meaning="(n_sizes, n_seeds)")
        self.kept = tensor_out(out["kept"], what="Format ('kept')", shape=(S,), meaning="(n_sizes,)", kind="integer")
        self.test = tensor_out(out["test_loss"], what="Format ('test_loss')", shape=(S,), meaning="(n_sizes,)")
        data = out["data"]
        expect(isinstance(data, (list, tuple)) and len(data) == S,
               f"Format: 'data' should be a list with one training set per size ({S}), got {describe(data)}.")
        self.data = [tensor_out(d, what=f"Format ('data' of T = {T})", shape=(T, R, n), meaning="(T, n_seeds, n_features)")
                     for d, T in zip(data, self.sizes)]


@prop("sweep", points=1)
def test_sweep_format(submission):
    _Sweep(submission, "format")


@prop("sweep", points=1)
def test_each_seed_has_its_own_training_set(submission):
    run = _Sweep(submission, "data")
    for T, x in zip(run.sizes, run.data):
        x = x.double()
        norms = x.norm(dim=2)
        ok = ((norms - 1).abs() <= 1e-5) | (x == 0).all(dim=2)
        expect(bool(ok.all()), f"Training sets: the points of size T = {T} should have norm 1 (or be zero), got norms "
                               f"{fmt(norms[~ok][:5])}: draw them with your finite_dataset.")
        for r in range(1, run.R):
            expect(not torch.equal(x[:, 0], x[:, r]),
                   f"Training sets: seeds 0 and {r} of size T = {T} trained on the same points; each seed needs its own "
                   "training set (finite_dataset(T, n, p, n_instances=n_seeds, generator=...)).")


@prop("sweep", points=1)
def test_models_are_trained_and_measured(submission):
    run = _Sweep(submission, "trained")
    losses, zeros = [], []
    for s, (T, x) in enumerate(zip(run.sizes, run.data)):
        want = mem.reconstruction_loss(run.W[s].float(), run.b[s].float(), x.float())
        expect(close(run.train[s], want, rtol=1e-3, atol=1e-4),
               f"Training loss: 'train_loss' of size T = {T} should be each trained model's loss on its own training "
               f"set (measured after training, with the W and b you return): expected {fmt(want)}, got {fmt(run.train[s])}.")
        losses.append(want.double().mean())
        zeros.append(x.double().square().sum(dim=2).mean())
    # Trained with these settings the reference's models reach about 0.1 to 0.25 of the zero model's loss (their
    # starting point is 0.5 to 1); with lr = 1e-3, or untrained, they stay above 0.45.
    got, zero = float(torch.stack(losses).mean()), float(torch.stack(zeros).mean())
    expect(got <= 0.4 * zero,
           f"Trained: with steps={run.steps}, lr={run.lr} the models should fit their few points: their mean training "
           f"loss should be well below the zero model's {zero:.3f} (at most 40% of it), got {got:.3f}. Train each "
           "size's models with your train_full_batch, passing steps, lr and weight_decay on.")


@prop("sweep", points=1)
def test_keeps_the_lowest_training_loss(submission):
    run = _Sweep(submission, "kept")
    want_kept = run.train.argmin(dim=1)
    expect(torch.equal(run.kept.long(), want_kept),
           f"Kept seed: for each size keep the seed with the lowest training loss: train_loss {fmt(run.train)} gives "
           f"kept = {want_kept.tolist()}, got {run.kept.tolist()}.")
    for s, T in enumerate(run.sizes):
        k = int(want_kept[s])
        W, b = run.W[s, k : k + 1].float(), run.b[s, k : k + 1].float()
        want, sd = _expected(W, b, run.p, ("sweep", s), REFERENCE_POINTS)
        tol = float(Z * sd[0] * math.sqrt(1 / run.n_test + 1 / REFERENCE_POINTS)) + 1e-4
        got = float(run.test[s])
        expect(abs(got - float(want[0])) <= tol,
               f"Test loss: 'test_loss' of size T = {T} should be the kept model's loss on {run.n_test} fresh points, "
               f"about {float(want[0]):.4f} (within {tol:.4f}), got {got:.4f}. Measure it with your test_loss on the "
               "kept seed's W and b, not on the training points.")


@prop("sweep", points=1)
def test_seeded(submission):
    seed = secret_seed("seeded") % 10_000
    a = _Sweep(submission, "seeded", seed)
    torch.rand(13)
    b = _Sweep(submission, "seeded", seed)
    same = torch.equal(a.W, b.W) and all(torch.equal(x, y) for x, y in zip(a.data, b.data))
    expect(same, f"Seed: two calls of {a.text} should return the same training sets and models: seed every draw "
                 "(the data's generator and the models' initialisation) from the seed argument.")
    c = _Sweep(submission, "seeded", seed + 1)
    expect(not all(torch.equal(x, y) for x, y in zip(a.data, c.data)),
           "Seed: a different seed should give different training sets.")
