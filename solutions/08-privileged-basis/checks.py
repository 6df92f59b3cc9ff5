"""Lesson 8 checks: neurons in a privileged basis, and computing |x| in superposition.

Four exercises, each a plain function on tensors compared with :mod:`supercourse.neurons`. Every answer is
determined by the inputs, so every comparison is exact up to float rounding (``rtol = 1e-5``, ``atol = 1e-6``);
no statistical tolerances.

* ``08.neuron_forward`` ``neuron_forward(W, b, x) -> x'``: ``ReLU(W^T ReLU(W x) + b)`` per instance. Hand-built
  cases isolate the hidden ReLU (a neuron driven negative must not pass its value on) and the output ReLU and
  bias; random cases with a different size per axis (and one square ``W``) catch transposes and instances mixed
  up; a forward pass must carry gradients back to ``W``, ``b`` and ``x``.
* ``08.abs_forward`` ``abs_forward(W1, W2, b, x) -> y'``: ``ReLU(W2 ReLU(W1 x) + b)`` with untied weights; the
  exact hand-built ``|x|`` network must return ``|x|``, ``W2``'s orientation ``(n_instances, n_features,
  n_hidden)`` is tested with a square ``W2``; gradients must reach ``W1``, ``W2``, ``b`` and ``x``.
* ``08.neuron_readout`` ``neuron_readout(W) -> (top_feature, monosemanticity)``: per neuron, the feature with the
  largest *positive* weight and the share ``max_i max(W_ji, 0)^2 / sum_i max(W_ji, 0)^2`` (0 for a neuron with
  no positive weight). Inhibitory (negative) weights must not count.
* ``08.count_neurons`` ``count_neurons(W, mono_share=0.9, dead_norm=0.1) -> {"monosemantic", "polysemantic",
  "dead"}``: int tensors ``(n_instances,)``. A neuron is dead when the norm of its positive weights is below
  ``dead_norm``, monosemantic when alive with share ``>= mono_share``, polysemantic otherwise; checked on exact
  boundaries (a share of exactly 1 with ``mono_share=1.0``, a norm of exactly ``dead_norm``).

Every hand-built input keeps its structure but is permuted, flipped, scaled or jittered by the grading run's
secret, so no answer can be recorded in advance. Failures are diagnosed with the lesson's mistake table
(``mistakes.py``), the table the generic proof also grades.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from autograder.exercises import Exercise
from autograder.framework import CheckFailed, call, expect, prop
from autograder.toolkit import ATOL, RTOL, as_parameter, close, describe, diagnose, show_difference, tensor_out
from autograder.toolkit.randomness import secret_gen
from supercourse import neurons

from .mistakes import MISTAKES

LESSON = "08-privileged-basis"
EXERCISES = {
    "neuron_forward": Exercise(
        "neuron_forward",
        "The neuron model's forward pass ReLU(W^T ReLU(W x) + b)",
        reference=(
            "supercourse.neurons.neuron_forward",
            "supercourse.neurons.NeuronModel.forward",
            "supercourse.neurons.NeuronModel.hidden",
            "supercourse.analytic.NeuronStep",  # the hand-written training step computes the same forward pass
        ),
        differentiable=True,
    ),
    "neuron_readout": Exercise(
        "neuron_readout",
        "Read each neuron: its top feature and how monosemantic it is",
        reference=(
            "supercourse.neurons.monosemanticity",
            "supercourse.neurons.excitatory",
            "supercourse.neurons.neuron_features",
        ),
    ),
    "count_neurons": Exercise(
        "count_neurons",
        "Count monosemantic, polysemantic and dead neurons",
        reference=(
            "supercourse.neurons.count_neurons",
            "supercourse.neurons.monosemanticity",
            "supercourse.neurons.excitatory",
        ),
    ),
    "abs_forward": Exercise(
        "abs_forward",
        "The absolute-value model's forward pass ReLU(W2 ReLU(W1 x) + b)",
        reference=(
            "supercourse.neurons.abs_forward",
            "supercourse.neurons.AbsValueModel.forward",
            "supercourse.neurons.AbsValueModel.hidden",
            "supercourse.analytic.AbsValueStep",
        ),
        differentiable=True,
    ),
}


_PARAMETER_HINT = (" Hint: stay in torch (a .numpy() round trip fails on tensors that require grad, and the model "
                   "could not train through it).")


# --------------------------------------------------------------------------- shared pieces


def _rand(g: torch.Generator, lo: float, hi: float, *shape: int) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(tuple(shape), generator=g)


def _pick(g: torch.Generator, options: list[int]) -> int:
    return options[int(torch.randint(len(options), (), generator=g))]


def _sizes(salt: Any, square: bool = False) -> tuple[int, int, int, int]:
    """``(n_instances, n_hidden, n_features, batch)``: every axis a different size (``n_hidden == n_features`` if
    ``square``), drawn from the secret."""
    g = secret_gen(("sizes", salt))
    k = _pick(g, [2, 3])
    m = _pick(g, [4, 5, 6])
    n = m if square else _pick(g, [7, 8, 9])
    batch = _pick(g, [10, 11, 12, 13])
    return k, m, n, batch


def _random_case(salt: Any, k: int, m: int, n: int, batch: int):
    """``W (k, m, n)``, ``b (k, n)``, non-negative sparse ``x (batch, k, n)``."""
    g = secret_gen(("case", salt))
    W = torch.randn(k, m, n, generator=g)
    b = torch.randn(k, n, generator=g) * 0.3
    x = torch.rand(batch, k, n, generator=g) * (torch.rand(batch, k, n, generator=g) < 0.6)
    return W, b, x


def _abs_case(salt: Any, k: int, m: int, n: int, batch: int):
    """``W1 (k, m, n)``, ``W2 (k, n, m)``, ``b (k, n)``, signed sparse ``x (batch, k, n)``."""
    g = secret_gen(("abs", salt))
    W1 = torch.randn(k, m, n, generator=g)
    W2 = torch.randn(k, n, m, generator=g)
    b = torch.randn(k, n, generator=g) * 0.3
    x = (torch.rand(batch, k, n, generator=g) * 2 - 1) * (torch.rand(batch, k, n, generator=g) < 0.7)
    return W1, W2, b, x


def _forward_out(submission, name: str, args: tuple, what: str) -> torch.Tensor:
    """The learner's forward pass on copies of ``args``, checked against its contract (the last argument is x)."""
    x = args[-1]
    out = call(submission, *[a.clone() if not isinstance(a, torch.nn.Parameter) else a for a in args], what=name)
    return tensor_out(out, what=what, shape=tuple(x.shape), meaning="(batch, n_instances, n_features)", like=x)


def _values(submission, name: str, args: tuple, want: torch.Tensor, what: str, text: str) -> None:
    out = _forward_out(submission, name, args, what)
    if not close(out, want, RTOL, ATOL):
        hint = diagnose(MISTAKES[name], out, list(args), rtol=RTOL, atol=ATOL)
        raise CheckFailed(f"{what}: {text} {show_difference(out, want, RTOL, ATOL)}.{hint}")


def _shapes_and_dtypes(submission, name: str, make: Callable[..., tuple], reference: Callable[..., torch.Tensor],
                       params: tuple[int, ...]) -> None:
    """Sizes drawn from the secret, one instance with a batch of one, float64 inputs, parameters as nn.Parameter."""
    k, m, n, batch = _sizes((name, "shape"))
    for label, args in (
        (f"{k} instances, {m} neurons, {n} features, a batch of {batch}", make(("shape", 0), k, m, n, batch)),
        ("one instance, a batch of one", make(("shape", 1), 1, m, n, 1)),
        ("float64 inputs", tuple(a.double() for a in make(("shape", 2), k, m, n, batch))),
    ):
        what = f"Shape and dtype ({label})"
        out = _forward_out(submission, name, args, what)
        want = reference(*args)
        expect(close(out, want, RTOL, ATOL),
               f"{what}: values differ from the model's, {show_difference(out, want, RTOL, ATOL)}."
               f"{diagnose(MISTAKES[name], out, list(args), rtol=RTOL, atol=ATOL)}")
    args = make(("shape", 3), k, m, n, batch)
    with_params = tuple(as_parameter(a) if i in params else a for i, a in enumerate(args))
    what = "Parameters (the weights and bias as nn.Parameter, requires_grad=True)"
    try:
        out = _forward_out(submission, name, with_params, what)
    except CheckFailed as err:
        raise CheckFailed(f"{err}{_PARAMETER_HINT}") from None
    expect(close(out, reference(*args), RTOL, ATOL), f"{what}: your values differ from the model's.{_PARAMETER_HINT}")


def _gradients(submission, name: str, args: tuple, names: tuple[str, ...],
               reference: Callable[..., torch.Tensor]) -> None:
    """Gradients of a weighted sum of the output reach every argument, and equal the model's."""
    x = args[-1]
    weights = torch.randn(x.shape, generator=secret_gen((name, "weights")))
    result = call(submission.with_grad, *[a.clone() for a in args], wrt=tuple(range(len(args))), weights=weights,
                  what=name)
    out = result["out"] if isinstance(result, dict) else None
    tensor_out(out, what="Gradients", shape=tuple(x.shape), meaning="(batch, n_instances, n_features)", like=x)
    expect(result["requires_grad"] and result["grads"] is not None,
           f"Gradients: {name}'s output carries no gradient (no gradient reaches {', '.join(names)}), so a model "
           "trained with it would never learn. Compute it with torch operations on the arguments themselves: no "
           "torch.no_grad(), .detach(), .item() or NumPy.")
    leaves = [a.detach().clone().requires_grad_(True) for a in args]
    want_out = reference(*leaves)
    want = torch.autograd.grad((want_out * weights).sum(), leaves)
    values_right = close(out, want_out, RTOL, ATOL)  # wrong values cost the value properties, not this one
    for arg, got, expected in zip(names, result["grads"], want):
        expect(got is not None,
               f"Gradients: no gradient reaches {arg}: the output does not depend on {arg} through operations "
               f"autograd can follow (was {arg} detached, or used under torch.no_grad()?). A model trained with it "
               f"would never update {arg}.")
        expect(not values_right or close(got, expected, 1e-4, 1e-6),
               f"Gradients: the gradient with respect to {arg} differs from the model's although the values match "
               f"({show_difference(got, expected, 1e-4, 1e-6)}).")


# --------------------------------------------------------------------------- 08.neuron_forward


def _hidden_relu_case(salt: Any = 0):
    """Two instances of 3 neurons and 4 features: neuron a reads feature p (weight > 0), neuron c reads feature q
    with a negative weight only (it never fires on x >= 0), neuron e reads one feature positively and one
    negatively. Neurons and features in a secret order, weights and biases secret; every x_i in [0.2, 1)."""
    g = secret_gen(("hidden relu", salt))
    k, m, n, batch = 2, 3, 4, 6
    W = torch.zeros(k, m, n)
    for i in range(k):
        a, c, e = torch.randperm(m, generator=g).tolist()
        p, q, r, s = torch.randperm(n, generator=g).tolist()
        W[i, a, p] = _rand(g, 0.6, 1.4)
        W[i, c, q] = -_rand(g, 0.6, 1.4)
        W[i, e, r] = _rand(g, 0.6, 1.4)
        W[i, e, s] = -_rand(g, 0.3, 0.8)
    b = _rand(g, 0.1, 0.4, k, n) * torch.where(torch.rand(k, n, generator=g) < 0.5, 1.0, -1.0)
    b = b.abs() * (W.sum(1) < 0) + b * (W.sum(1) >= 0)  # the silent neuron's feature gets b > 0: its output shows
    x = _rand(g, 0.2, 1.0, batch, k, n)
    return W, b, x


def _output_relu_case(salt: Any = 0):
    """Two instances of one neuron reading every feature (weights > 0); biases below -0.5 for some features, above
    0 for others, so the output ReLU cuts some samples and not others."""
    g = secret_gen(("output relu", salt))
    k, n, batch = 2, 3, 8
    W = _rand(g, 0.5, 1.5, k, 1, n)
    negative = torch.rand(k, n, generator=g) < 0.5
    negative[:, 0] = True
    negative[:, 1] = False
    order = torch.stack([torch.randperm(n, generator=g) for _ in range(k)])
    negative = torch.gather(negative, 1, order)
    b = torch.where(negative, -_rand(g, 0.5, 1.2, k, n), _rand(g, 0.1, 0.6, k, n))
    x = torch.rand(batch, k, n, generator=g)
    return W, b, x


@prop("neuron_forward", points=0.5)
def test_neuron_forward_shape_and_dtype(submission):
    _shapes_and_dtypes(submission, "neuron_forward", lambda salt, k, m, n, batch: _random_case(salt, k, m, n, batch),
                       neurons.neuron_forward, params=(0, 1))


@prop("neuron_forward", points=1)
def test_neuron_forward_hidden_relu(submission):
    W, b, x = _hidden_relu_case()
    _values(submission, "neuron_forward", (W, b, x), neurons.neuron_forward(W, b, x), "Hidden ReLU",
            "in each instance one neuron reads a feature through a negative weight only, so on inputs x >= 0 it "
            "never fires and that feature's output is ReLU(b_i) whatever x_i is; x' = ReLU(W^T ReLU(W x) + b):")


@prop("neuron_forward", points=1)
def test_neuron_forward_output_relu_and_bias(submission):
    W, b, x = _output_relu_case()
    _values(submission, "neuron_forward", (W, b, x), neurons.neuron_forward(W, b, x), "Output ReLU and bias",
            "with one neuron reading every feature and a negative bias b_i on some features, x'_i = "
            "ReLU(W_i h + b_i) is 0 where the bias wins:")


@prop("neuron_forward", points=1)
def test_neuron_forward_matches_reference(submission):
    cases = [_sizes("values square", square=True), _sizes("values 1"), _sizes("values 2")]
    for i, (k, m, n, batch) in enumerate(cases):
        W, b, x = _random_case(("values", i), k, m, n, batch)
        shape = "square W" if m == n else "W"
        _values(submission, "neuron_forward", (W, b, x), neurons.neuron_forward(W, b, x), "Values",
                f"on random {shape} {tuple(W.shape)}, b and sparse x, x' = ReLU(W^T ReLU(W x) + b) per instance "
                "(instance k uses W[k] and b[k]; h = W x sums over features):")


@prop("neuron_forward", points=0.5)
def test_neuron_forward_gradients(submission):
    k, m, n, batch = _sizes("gradients")
    g = secret_gen("gradient case")
    W = torch.randn(k, m, n, generator=g)
    b = torch.rand(k, n, generator=g) * 0.5  # mostly positive: the output ReLU passes most gradients
    x = torch.rand(batch, k, n, generator=g)
    _gradients(submission, "neuron_forward", (W, b, x), ("W", "b", "x"), neurons.neuron_forward)


# --------------------------------------------------------------------------- 08.abs_forward


def _abs_by_hand(salt: Any = 0):
    """Two instances of the exact |x| network, n features on 2n neurons: neuron j computes a_j ReLU(+-x_i) and
    writes 1/a_j to feature i (|x| = ReLU(x) + ReLU(-x)); neurons in a secret order, a_j secret; b = 0."""
    g = secret_gen(("abs by hand", salt))
    k, n, batch = 2, 3, 6
    m = 2 * n
    W1 = torch.zeros(k, m, n)
    W2 = torch.zeros(k, n, m)
    for i in range(k):
        order = torch.randperm(m, generator=g)
        scale = _rand(g, 0.5, 2.0, m)
        for j in range(m):
            neuron, feature, sign = int(order[j]), j % n, 1.0 if j < n else -1.0
            W1[i, neuron, feature] = sign * scale[j]
            W2[i, feature, neuron] = 1.0 / scale[j]
    b = torch.zeros(k, n)
    x = _rand(g, 0.1, 1.0, batch, k, n) * torch.where(torch.rand(batch, k, n, generator=g) < 0.5, 1.0, -1.0)
    x = x * (torch.rand(batch, k, n, generator=g) < 0.8)
    return W1, W2, b, x


def _abs_relus_case(salt: Any = 0):
    """Two instances, two features, two neurons: neuron p reads feature 0 with a negative weight (silent for
    x_0 > 0), neuron q reads feature 1 positively; W2 writes neuron p to feature 0, q to feature 1; the bias of
    feature 1 is negative enough that the output ReLU cuts some samples. Neurons and features in secret order."""
    g = secret_gen(("abs relus", salt))
    k, n, batch = 2, 2, 6
    W1 = torch.zeros(k, 2, n)
    W2 = torch.zeros(k, n, 2)
    b = torch.zeros(k, n)
    for i in range(k):
        p, q = torch.randperm(2, generator=g).tolist()
        f0, f1 = torch.randperm(2, generator=g).tolist()
        W1[i, p, f0] = -_rand(g, 0.5, 1.5)
        W1[i, q, f1] = _rand(g, 0.5, 1.5)
        W2[i, f0, p] = _rand(g, 0.5, 1.5)
        W2[i, f1, q] = _rand(g, 0.5, 1.5)
        b[i, f1] = -float(W1[i, q, f1] * W2[i, f1, q]) * _rand(g, 0.4, 0.6)
        b[i, f0] = _rand(g, 0.0, 0.2)
    x = _rand(g, 0.1, 1.0, batch, k, n)
    return W1, W2, b, x


@prop("abs_forward", points=0.5)
def test_abs_forward_shape_and_dtype(submission):
    _shapes_and_dtypes(submission, "abs_forward", lambda salt, k, m, n, batch: _abs_case(salt, k, m, n, batch),
                       neurons.abs_forward, params=(0, 1, 2))


@prop("abs_forward", points=1)
def test_abs_forward_computes_abs_by_hand(submission):
    W1, W2, b, x = _abs_by_hand()
    _values(submission, "abs_forward", (W1, W2, b, x), neurons.abs_forward(W1, W2, b, x), "Hand-built |x| network",
            "with W1 = [I; -I] (neurons in a random order, each scaled by a_j), W2 writing 1/a_j back to its "
            "feature and b = 0, the model computes |x| exactly (|x| = ReLU(x) + ReLU(-x)):")


@prop("abs_forward", points=1)
def test_abs_forward_hidden_and_output_relu(submission):
    W1, W2, b, x = _abs_relus_case()
    _values(submission, "abs_forward", (W1, W2, b, x), neurons.abs_forward(W1, W2, b, x), "ReLUs",
            "one neuron reads a feature through a negative weight (for x > 0 it must output ReLU(W1 x) = 0), and a "
            "negative output bias pushes the other feature below 0 on some samples (y' = ReLU(W2 h + b)):")


@prop("abs_forward", points=1)
def test_abs_forward_matches_reference(submission):
    cases = [_sizes("abs square", square=True), _sizes("abs values 1"), _sizes("abs values 2")]
    for i, (k, m, n, batch) in enumerate(cases):
        W1, W2, b, x = _abs_case(("values", i), k, m, n, batch)
        shape = "square W2" if m == n else "W2"
        _values(submission, "abs_forward", (W1, W2, b, x), neurons.abs_forward(W1, W2, b, x), "Values",
                f"on random W1 {tuple(W1.shape)}, {shape} {tuple(W2.shape)}, b and signed sparse x, "
                "y' = ReLU(W2 ReLU(W1 x) + b) per instance:")


@prop("abs_forward", points=0.5)
def test_abs_forward_gradients(submission):
    k, m, n, batch = _sizes("abs gradients")
    W1, W2, _, x = _abs_case("gradients", k, m, n, batch)
    b = torch.rand(k, n, generator=secret_gen("abs gradient bias")) * 0.5
    _gradients(submission, "abs_forward", (W1, W2, b, x), ("W1", "W2", "b", "x"), neurons.abs_forward)


# --------------------------------------------------------------------------- 08.neuron_readout


def _reference_readout(W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return neurons.excitatory(W).argmax(dim=2), neurons.monosemanticity(W)


def _readout(submission, W: torch.Tensor, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    k, m, n = W.shape
    out = call(submission, W.clone(), what="neuron_readout")
    expect(isinstance(out, (tuple, list)) and len(out) == 2,
           f"{what}: neuron_readout should return a pair (top_feature, monosemanticity); got {describe(out)}.")
    top, mono = out

    def hint(got: tuple[int, ...]) -> str:
        if got == (k, n) and m != n:
            return " One value per feature: reduce over the last axis (the features) for each neuron."
        return ""

    for name, t, kind in (("top_feature", top, "integer"), ("monosemanticity", mono, "float")):
        if kind == "integer" and isinstance(t, torch.Tensor) and t.shape == (k, m) and t.is_floating_point():
            raise CheckFailed(f"{what}: top_feature holds feature indices, an integer tensor (argmax gives int64); "
                              f"got {describe(t)}. Return (top_feature, monosemanticity) in that order.")
        try:
            tensor_out(t, what=what if what.lower() == name else f"{what} ({name})", shape=(k, m),
                       meaning="(n_instances, n_hidden)", kind=kind,
                       shape_hint=hint)
        except CheckFailed as err:
            if name == "monosemanticity" and isinstance(t, torch.Tensor) and bool(t.isnan().any()):
                raise CheckFailed(f"{err} A neuron with no positive weight gives 0 / 0 = NaN: return 0 "
                                  "there.") from None
            raise
    return top.detach(), mono.detach()


def _readout_W(salt: Any = 0) -> torch.Tensor:
    """``(2, 4, 5)``: per instance a clean neuron, one with a big inhibitory weight, one reading two features, one
    with no positive weight, and a feature every neuron inhibits; rows scaled, neurons and features in secret
    order."""
    g = secret_gen(("readout", salt))
    base = torch.tensor([[0.9, 0.0, 0.0, 0.1, 0.0], [0.2, 0.8, -2.0, 0.0, 0.0],
                         [0.6, 0.0, 0.55, 0.0, 0.0], [-0.5, -0.3, -1.0, 0.0, 0.0]])
    out = []
    for _ in range(2):
        W = base.clone()
        W[:, 4] = -_rand(g, 0.1, 0.5, 4)
        W = W * _rand(g, 0.5, 2.0, 4, 1)
        out.append(W[torch.randperm(4, generator=g)][:, torch.randperm(5, generator=g)])
    return torch.stack(out)


def _top_ok(top: torch.Tensor, want: torch.Tensor, W: torch.Tensor) -> bool:
    alive = neurons.excitatory(W).amax(dim=2) > 0  # a neuron nothing excites may name any feature
    return bool(torch.equal(top.long()[alive], want[alive]))


def _readout_hint(W: torch.Tensor, got: tuple[torch.Tensor, torch.Tensor], part: int) -> str:
    def same(g, theirs):
        if part == 0:
            return (isinstance(theirs[0], torch.Tensor) and theirs[0].shape == g.shape
                    and _top_ok(g, theirs[0].long(), W))
        return close(g, theirs[1], RTOL, ATOL)

    return diagnose(MISTAKES["neuron_readout"], got[part], [W], same=same)


@prop("neuron_readout", points=1)
def test_readout_shapes(submission):
    k, m, n, _ = _sizes("readout shapes")
    for label, W in ((f"random W ({k}, {m}, {n})", torch.randn(k, m, n, generator=secret_gen("readout shapes 0"))),
                     ("one instance of one neuron", torch.randn(1, 1, n, generator=secret_gen("readout shapes 1"))),
                     ("float64 W", torch.randn(k, m, n, generator=secret_gen("readout shapes 2")).double())):
        _readout(submission, W, f"Shape ({label})")


@prop("neuron_readout", points=1)
def test_readout_top_feature_is_the_largest_positive_weight(submission):
    W = _readout_W()
    top, mono = _readout(submission, W, "Top feature")
    want, _ = _reference_readout(W)
    expect(_top_ok(top, want, W),
           "Top feature: for a clean neuron, one with a strong inhibitory (negative) weight and one reading two "
           f"features, expected {want.tolist()}, got {top.tolist()} (neurons with no positive weight may name any "
           f"feature).{_readout_hint(W, (top, mono), 0)}")
    k, m, n, _ = _sizes("readout top")
    W = torch.randn(k, m, n, generator=secret_gen("readout top"))
    top, mono = _readout(submission, W, "Top feature")
    want, _ = _reference_readout(W)
    expect(_top_ok(top, want, W),
           f"Top feature: on random W {tuple(W.shape)} some neurons' top feature is wrong: for each instance k and "
           f"neuron j, take argmax over i of max(W[k, j, i], 0).{_readout_hint(W, (top, mono), 0)}")


@prop("neuron_readout", points=1)
def test_readout_monosemanticity_hand_built(submission):
    W = _readout_W(1)
    top, mono = _readout(submission, W, "Monosemanticity")
    _, want = _reference_readout(W)
    expect(close(mono, want, RTOL, ATOL),
           "Monosemanticity: max_i max(W_ji, 0)^2 / sum_i max(W_ji, 0)^2 (0 for a neuron with no positive weight), "
           "for a clean neuron, one with a big inhibitory weight, one reading two features and one with no positive "
           f"weight: {show_difference(mono, want, RTOL, ATOL)}.{_readout_hint(W, (top, mono), 1)}")


@prop("neuron_readout", points=1)
def test_readout_matches_reference_per_instance(submission):
    k, m, n, _ = _sizes("readout values")
    k = 4
    g = secret_gen("readout values")
    W = torch.randn(k, m, n, generator=g)
    W[2] = W[2].abs()  # an instance with only positive weights
    silent = int(torch.randint(m, (), generator=g))
    W[3, silent] = -W[3, silent].abs()  # a neuron nothing excites
    top, mono = _readout(submission, W, "Values")
    want_top, want_mono = _reference_readout(W)
    expect(close(mono, want_mono, RTOL, ATOL),
           f"Values: on random W {tuple(W.shape)} your monosemanticity differs from the share of the top squared "
           f"positive weight, {show_difference(mono, want_mono, RTOL, ATOL)}: each neuron is a row W[k, j, :] "
           f"(reduce over the last axis, features), and a neuron with no positive weight gets 0."
           f"{_readout_hint(W, (top, mono), 1)}")
    expect(_top_ok(top, want_top, W),
           f"Values: on random W {tuple(W.shape)} some neurons' top feature is wrong: argmax over features of "
           f"max(W, 0).{_readout_hint(W, (top, mono), 0)}")


# --------------------------------------------------------------------------- 08.count_neurons


KINDS = ("monosemantic", "polysemantic", "dead")


def _counts(submission, W: torch.Tensor, what: str, **kwargs) -> dict[str, torch.Tensor]:
    k = W.shape[0]
    out = call(submission, W.clone(), what="count_neurons", **kwargs)
    expect(isinstance(out, dict) and set(out) >= set(KINDS),
           f"{what}: count_neurons should return a dict with keys {list(KINDS)}; got {describe(out)}.")
    for kind in KINDS:
        tensor_out(out[kind], what=f"{what} (['{kind}'])", shape=(k,), meaning="(n_instances,)", kind="integer")
    return {kind: out[kind].detach().long() for kind in KINDS}


def _reference_counts(W: torch.Tensor, **kwargs) -> dict[str, torch.Tensor]:
    c = neurons.count_neurons(W, **kwargs)
    return {"monosemantic": c.monosemantic, "polysemantic": c.polysemantic, "dead": c.dead}


def _same_counts(got: dict, want: Any) -> bool:
    return (isinstance(want, dict) and set(want) >= set(KINDS)
            and all(isinstance(want[k], torch.Tensor) and want[k].shape == got[k].shape
                    and torch.equal(got[k], want[k].long()) for k in KINDS))


def _show(c: dict[str, torch.Tensor]) -> str:
    return "{" + ", ".join(f"{k}: {v.tolist()}" for k, v in c.items()) + "}"


def _compare_counts(submission, W: torch.Tensor, what: str, text: str, **kwargs) -> None:
    got = _counts(submission, W, what, **kwargs)
    want = _reference_counts(W, **kwargs)
    if not _same_counts(got, want):
        hint = diagnose(MISTAKES["count_neurons"], got, [W], kwargs, same=_same_counts)
        raise CheckFailed(f"{what}: {text} expected {_show(want)}, got {_show(got)}.{hint}")


def _shuffle(W: torch.Tensor, g: torch.Generator, scale: tuple[float, float] = (0.85, 1.15)) -> torch.Tensor:
    """Every neuron's row scaled by a secret factor, neurons and features of every instance in secret order."""
    K, m, n = W.shape
    W = W * _rand(g, *scale, K, m, 1)
    return torch.stack([W[k][torch.randperm(m, generator=g)][:, torch.randperm(n, generator=g)] for k in range(K)])


def _kinds_W(salt: Any = 0) -> torch.Tensor:
    """``(2, 6, 5)``, both instances: a clean neuron, a clean one with a strong inhibition, a weak but clean one
    (0.2), one reading two features, one with only negative weights (dead), one tiny (dead); shuffled."""
    base = torch.tensor([[1.0, 0.0, 0.05, 0.0, 0.0], [0.0, 0.95, -1.5, 0.0, 0.0], [0.0, 0.0, 0.2, 0.0, 0.0],
                         [0.6, 0.0, 0.0, 0.6, 0.0], [-0.7, -0.7, 0.0, 0.0, -0.7], [0.02, 0.03, 0.0, 0.0, 0.0]])
    return _shuffle(base.expand(2, 6, 5), secret_gen(("kinds", salt)))


def _pairs_W(salt: Any = 0) -> torch.Tensor:
    """``(2, 6, 5)``: five features on pairs of five neurons (1/sqrt 2 on each of the pair, -0.5 elsewhere), so two
    neurons read one feature each, three read several; a sixth neuron all zero; shuffled."""
    W = torch.full((6, 5), -0.5)
    for i, (a, c) in enumerate([(0, 1), (0, 2), (0, 3), (0, 4), (1, 2)]):
        W[[a, c], i] = 1 / math.sqrt(2)
    W[5] = 0.0
    return _shuffle(W.expand(2, 6, 5), secret_gen(("pairs", salt)))


def _boundary_W(dead_norm: float, salt: Any = 0) -> torch.Tensor:
    """``(2, 5, 4)``: neurons with one weight (share exactly 1) of exactly ``dead_norm``, of a norm between
    ``dead_norm`` and ``sqrt(dead_norm)``, of half ``dead_norm`` and of 1, and one reading two features equally;
    shuffled without scaling (the boundaries stay exact)."""
    g = secret_gen(("boundary", salt))
    between = (dead_norm + math.sqrt(dead_norm)) / 2
    W = torch.zeros(5, 4)
    W[:, 0] = torch.tensor([dead_norm, between, dead_norm / 2, 1.0, 0.7])
    W[4, 1] = 0.7
    return _shuffle(W.expand(2, 5, 4), g, scale=(1.0, 1.0))


@prop("count_neurons", points=1)
def test_counts_shapes_and_total(submission):
    k, m, n, _ = _sizes("count shapes")
    for label, W in ((f"random W ({k}, {m}, {n})", torch.randn(k, m, n, generator=secret_gen("count shapes"))),
                     ("one instance of one neuron", torch.randn(1, 1, n, generator=secret_gen("count one"))),
                     ("float64 W", torch.randn(k, m, n, generator=secret_gen("count float64")).double())):
        c = _counts(submission, W, f"Total ({label})")
        total = c["monosemantic"] + c["polysemantic"] + c["dead"]
        expect(torch.equal(total, torch.full((W.shape[0],), W.shape[1])),
               f"Total ({label}): every neuron is exactly one of monosemantic, polysemantic or dead, so the three "
               f"counts should add up to n_hidden = {W.shape[1]} for each instance; got {total.tolist()}.")


@prop("count_neurons", points=1)
def test_counts_inhibition_and_dead_neurons(submission):
    W = _kinds_W()
    _compare_counts(submission, W, "Counts",
                    "with the default thresholds, six neurons (one clean, one clean with a -1.5 inhibitory weight, a "
                    "weak clean one of norm about 0.2, one reading two features, one with only negative weights, one "
                    "with weights about 0.02 and 0.03), rows scaled and shuffled, per instance:")


@prop("count_neurons", points=1)
def test_counts_pairs_and_thresholds(submission):
    W = torch.cat([_kinds_W(1), _pairs_W()])
    _compare_counts(submission, W, "Counts",
                    "for two shuffled copies of the six kinds of neuron and two of features on pairs of neurons "
                    "(inhibited elsewhere) with a zero neuron, per instance:")
    g = secret_gen("thresholds")
    strict = 0.9976 + 0.002 * float(torch.rand((), generator=g))  # above the clean neurons' share 0.9975
    loose = 0.3 + 0.15 * float(torch.rand((), generator=g))  # below a share of 1/2
    high = 0.3 + 0.2 * float(torch.rand((), generator=g))  # above the weak neuron's norm, below the others'
    for kwargs in ({"mono_share": round(strict, 5)}, {"dead_norm": round(high, 3)},
                   {"mono_share": round(loose, 3), "dead_norm": 0.0}):
        _compare_counts(submission, W, f"Thresholds ({', '.join(f'{k}={v}' for k, v in kwargs.items())})",
                        "use the mono_share and dead_norm arguments (monosemantic means share >= mono_share, dead "
                        "means norm < dead_norm):", **kwargs)
    dead_norm = float(torch.tensor(0.15 + 0.3 * float(torch.rand((), generator=g))))  # exactly a float32 value
    Wb = _boundary_W(dead_norm)
    _compare_counts(submission, Wb, f"Boundaries (mono_share=1.0, dead_norm={dead_norm:.6g})",
                    "neurons with one positive weight have a share of exactly 1, which counts as monosemantic with "
                    "mono_share=1.0 (>=); one of them has a norm of exactly dead_norm, which is alive (dead means "
                    "below dead_norm); one a norm between dead_norm and its square root:",
                    mono_share=1.0, dead_norm=dead_norm)


@prop("count_neurons", points=1)
def test_counts_match_reference_on_random_models(submission):
    for seed in range(3):
        g = secret_gen(("random models", seed))
        W = torch.randn(5, 6, 8, generator=g) * torch.rand(5, 6, 1, generator=g)
        W = W + 1.5 * torch.nn.functional.one_hot(torch.randint(8, (5, 6), generator=g), 8) * (
            torch.rand(5, 6, 1, generator=g) < 0.5)
        _compare_counts(submission, W, "Random models",
                        "on random models (5 instances of 6 neurons), counted per instance (sum over neurons, "
                        "axis 1):")
