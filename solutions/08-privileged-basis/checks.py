"""Lesson 8 checks: neurons in a privileged basis, and computing |x| in superposition.

Four exercises, each a plain function on tensors compared with
:mod:`supercourse.neurons` on hand-built and seeded inputs. Every answer is
determined by the inputs, so every comparison is exact up to float rounding
(``rtol = 1e-5``, ``atol = 1e-6``); no statistical tolerances.

* ``08.neuron_forward`` ``neuron_forward(W, b, x) -> x'``: ``ReLU(W^T ReLU(W x) + b)``
  per instance. Hand-built cases isolate the hidden ReLU (a neuron driven
  negative must not pass its value on) and the output ReLU and bias; random
  cases with different sizes per axis catch transposes and instances mixed up.
* ``08.abs_forward`` ``abs_forward(W1, W2, b, x) -> y'``: ``ReLU(W2 ReLU(W1 x) + b)``
  with untied weights; the exact hand-built ``|x|`` network must return ``|x|``,
  and ``W2``'s orientation ``(n_instances, n_features, n_hidden)`` is tested
  with a square ``W2`` (where a transpose does not raise).
* ``08.neuron_readout`` ``neuron_readout(W) -> (top_feature, monosemanticity)``:
  per neuron, the feature with the largest *positive* weight and the share
  ``max_i max(W_ji, 0)^2 / sum_i max(W_ji, 0)^2`` (0 for a neuron with no positive
  weight). Inhibitory (negative) weights must not count.
* ``08.count_neurons`` ``count_neurons(W, mono_share=0.9, dead_norm=0.1)
  -> {"monosemantic", "polysemantic", "dead"}``: int tensors ``(n_instances,)``.
  A neuron is dead when the norm of its positive weights is below ``dead_norm``,
  monosemantic when alive with share ``>= mono_share``, polysemantic otherwise.
"""

from __future__ import annotations

import math
from itertools import combinations

import torch

from autograder.exercises import Exercise
from autograder.framework import call, close, describe, expect, prop
from supercourse import neurons

LESSON = "08-privileged-basis"
EXERCISES = {
    "neuron_forward": Exercise(
        "neuron_forward",
        "The neuron model's forward pass ReLU(W^T ReLU(W x) + b)",
        forbid=("supercourse.neurons", "neurons.neuron_forward", "NeuronModel"),
        reference=(
            "supercourse.neurons.neuron_forward",
            "supercourse.neurons.NeuronModel.forward",
            "supercourse.neurons.NeuronModel.hidden",
        ),
    ),
    "neuron_readout": Exercise(
        "neuron_readout",
        "Read each neuron: its top feature and how monosemantic it is",
        forbid=("supercourse.neurons", "monosemanticity", "excitatory", "neuron_features"),
        reference=(
            "supercourse.neurons.monosemanticity",
            "supercourse.neurons.excitatory",
            "supercourse.neurons.neuron_features",
        ),
    ),
    "count_neurons": Exercise(
        "count_neurons",
        "Count monosemantic, polysemantic and dead neurons",
        forbid=("supercourse.neurons", "neurons.count_neurons", "monosemanticity", "excitatory"),
        reference=(
            "supercourse.neurons.count_neurons",
            "supercourse.neurons.monosemanticity",
            "supercourse.neurons.excitatory",
        ),
    ),
    "abs_forward": Exercise(
        "abs_forward",
        "The absolute-value model's forward pass ReLU(W2 ReLU(W1 x) + b)",
        forbid=("supercourse.neurons", "neurons.abs_forward", "AbsValueModel"),
        reference=(
            "supercourse.neurons.abs_forward",
            "supercourse.neurons.AbsValueModel.forward",
            "supercourse.neurons.AbsValueModel.hidden",
        ),
    ),
}

RTOL, ATOL = 1e-5, 1e-6


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _fmt(values: torch.Tensor, digits: int = 3) -> str:
    return "[" + ", ".join(f"{v:.{digits}g}" for v in values.flatten().tolist()) + "]"


def _random_case(seed: int, k: int = 3, m: int = 4, n: int = 7, batch: int = 6):
    """``W (k, m, n)``, ``b (k, n)``, non-negative sparse ``x (batch, k, n)``: every axis a different size."""
    g = _gen(seed)
    W = torch.randn(k, m, n, generator=g)
    b = torch.randn(k, n, generator=g) * 0.3
    x = torch.rand(batch, k, n, generator=g) * (torch.rand(batch, k, n, generator=g) < 0.6)
    return W, b, x


def _output(submission, what: str, *args) -> torch.Tensor:
    shape = tuple(args[-1].shape)
    out = call(submission, *[a.clone() for a in args], what=what)
    expect(
        isinstance(out, torch.Tensor) and tuple(out.shape) == shape,
        f"Shape: {what} should return a tensor of the shape of x, (batch, n_instances, n_features) = {shape}; "
        f"got {describe(out)}.",
    )
    return out.detach()


# --------------------------------------------------------------------------- 08.neuron_forward


@prop("neuron_forward", points=1)
def test_neuron_forward_shape(submission):
    for k, m, n, batch in [(3, 4, 7, 6), (1, 1, 1, 1), (2, 5, 10, 32)]:
        W, b, x = _random_case(k + m + n, k, m, n, batch)
        out = call(submission, W, b, x, what="neuron_forward")
        expect(
            isinstance(out, torch.Tensor) and tuple(out.shape) == (batch, k, n),
            f"Shape: neuron_forward(W {tuple(W.shape)}, b {tuple(b.shape)}, x {tuple(x.shape)}) should return "
            f"(batch, n_instances, n_features) = {(batch, k, n)}; got {describe(out)}.",
        )


@prop("neuron_forward", points=1)
def test_neuron_forward_hidden_relu(submission):
    # Neuron 0 reads feature 0 with weight +1; neuron 1 reads feature 1 with weight -1 (never fires
    # on non-negative inputs). Feature 1 then has no way out: x'_1 = ReLU(b_1) whatever x_1 is.
    W = torch.tensor([[[1.0, 0.0], [0.0, -1.0]]])
    b = torch.tensor([[0.0, 0.25]])
    x = torch.tensor([[[0.5, 0.8]], [[0.0, 0.3]]])
    out = _output(submission, "neuron_forward", W, b, x)
    want = neurons.neuron_forward(W, b, x)
    if not close(out, want, RTOL, ATOL):
        hint = ""
        if close(out, torch.relu(torch.einsum("bif,ihf->bih", x, W) @ W[0] + b), RTOL, ATOL):
            hint = " Your output matches a model without the hidden ReLU: h = ReLU(W x), not W x."
        expect(
            False,
            f"Hidden ReLU: with W = [[1, 0], [0, -1]] (neuron 1 has a negative weight, so it never fires), b = [0, 0.25] "
            f"and x = [0.5, 0.8], x' should be {_fmt(want[0])}, got {_fmt(out[0])}.{hint}",
        )


@prop("neuron_forward", points=1)
def test_neuron_forward_output_relu_and_bias(submission):
    # One neuron reading both features: h = x_0 + x_1; x'_i = ReLU(h - 1) with b = -1.
    W = torch.tensor([[[1.0, 1.0]]])
    b = torch.tensor([[-1.0, 0.5]])
    x = torch.tensor([[[0.2, 0.3]], [[0.9, 0.6]]])
    out = _output(submission, "neuron_forward", W, b, x)
    want = neurons.neuron_forward(W, b, x)
    if not close(out, want, RTOL, ATOL):
        h = x.sum(-1, keepdim=True)
        hint = ""
        if close(out, h + b, RTOL, ATOL):
            hint = " Your output is negative where it should be 0: apply the ReLU to the output too, x' = ReLU(W^T h + b)."
        elif close(out, torch.relu(h.expand_as(x)), RTOL, ATOL) or close(out, h.expand_as(x), RTOL, ATOL):
            hint = " Your output ignores the bias b."
        expect(
            False,
            f"Output ReLU and bias: with one neuron W = [[1, 1]], b = [-1, 0.5] and x = [0.2, 0.3], x' should be "
            f"{_fmt(want[0])}, got {_fmt(out[0])}.{hint}",
        )


@prop("neuron_forward", points=1)
def test_neuron_forward_matches_reference(submission):
    for seed in range(3):
        W, b, x = _random_case(100 + seed)
        out = _output(submission, "neuron_forward", W, b, x)
        want = neurons.neuron_forward(W, b, x)
        if not close(out, want, RTOL, ATOL):
            hint = ""
            swapped = neurons.neuron_forward(W[[1, 2, 0]], b, x)
            if close(out[:, 0], want[:, 0], RTOL, ATOL) and not close(out, swapped, RTOL, ATOL):
                hint = " Instance 0 is right but others are not: instance k must use W[k] and b[k] only."
            expect(
                False,
                f"Values: on random W (3, 4, 7), b and sparse x, your x' differs from ReLU(W^T ReLU(W x) + b) by up to "
                f"{(out - want).abs().max().item():.3g}.{hint} Check that instance k uses W[k] and b[k], and that "
                "h = W x sums over features (W[k] has shape (n_hidden, n_features)).",
            )


# --------------------------------------------------------------------------- 08.abs_forward


def _abs_case(seed: int, k: int = 2, m: int = 5, n: int = 3, batch: int = 8):
    g = _gen(seed)
    W1 = torch.randn(k, m, n, generator=g)
    W2 = torch.randn(k, n, m, generator=g)
    b = torch.randn(k, n, generator=g) * 0.3
    x = (torch.rand(batch, k, n, generator=g) * 2 - 1) * (torch.rand(batch, k, n, generator=g) < 0.7)
    return W1, W2, b, x


@prop("abs_forward", points=1)
def test_abs_forward_shape(submission):
    for k, m, n, batch in [(2, 5, 3, 8), (1, 1, 1, 1), (3, 6, 4, 16)]:
        W1, W2, b, x = _abs_case(k * m + n, k, m, n, batch)
        out = call(submission, W1, W2, b, x, what="abs_forward")
        expect(
            isinstance(out, torch.Tensor) and tuple(out.shape) == (batch, k, n),
            f"Shape: abs_forward(W1 {tuple(W1.shape)}, W2 {tuple(W2.shape)}, b {tuple(b.shape)}, x {tuple(x.shape)}) "
            f"should return (batch, n_instances, n_features) = {(batch, k, n)}; got {describe(out)}.",
        )


@prop("abs_forward", points=1)
def test_abs_forward_computes_abs_by_hand(submission):
    # |x| = ReLU(x) + ReLU(-x): neurons 0-2 compute ReLU(x_i), neurons 3-5 ReLU(-x_i).
    W1 = torch.cat([torch.eye(3), -torch.eye(3)])[None]
    W2 = W1.mT.abs().contiguous()
    b = torch.zeros(1, 3)
    x = torch.tensor([[[0.5, -0.25, 0.0]], [[-1.0, 0.75, -0.5]]])
    out = _output(submission, "abs_forward", W1, W2, b, x)
    if not close(out, x.abs(), RTOL, ATOL):
        hint = ""
        if close(out, torch.relu(x), RTOL, ATOL) or close(out, x, RTOL, ATOL):
            hint = " Your output keeps the sign of x: the ReLU(-x_i) neurons did not fire; apply ReLU to W1 x (each neuron), not to x."
        elif close(out, torch.zeros_like(x), RTOL, ATOL):
            hint = (
                " Your output is all zero: the ReLU(x_i) and ReLU(-x_i) neurons cancelled each other, as they do "
                "when the neurons have no ReLU of their own: apply ReLU to W1 x (each neuron), not to x."
            )
        expect(
            False,
            f"Hand-built |x| network: with W1 = [I; -I], W2 = [I, I] and b = 0 the model computes |x| exactly; for "
            f"x = [0.5, -0.25, 0] it should return [0.5, 0.25, 0], got {_fmt(out[0])}.{hint}",
        )


@prop("abs_forward", points=1)
def test_abs_forward_hidden_and_output_relu(submission):
    # Neuron 0 gets W1 x = -x_0 < 0 for x_0 > 0: it must stay silent. The output bias -1 pushes y' below 0: ReLU.
    W1 = torch.tensor([[[-1.0, 0.0], [0.0, 1.0]]])
    W2 = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    b = torch.tensor([[0.0, -1.0]])
    x = torch.tensor([[[0.5, 0.5]]])
    out = _output(submission, "abs_forward", W1, W2, b, x)
    want = neurons.abs_forward(W1, W2, b, x)
    if not close(out, want, RTOL, ATOL):
        hint = ""
        if out[0, 0, 0] < -1e-6:
            hint = " Feature 0 came out negative: the neuron with W1 x = -0.5 must output ReLU(-0.5) = 0."
        elif out[0, 0, 1] < -1e-6:
            hint = " Feature 1 came out negative: apply the ReLU to the output too, y' = ReLU(W2 h + b)."
        expect(
            False,
            f"ReLUs: with W1 = [[-1, 0], [0, 1]], W2 = I, b = [0, -1] and x = [0.5, 0.5], y' should be "
            f"{_fmt(want[0])}, got {_fmt(out[0])}.{hint}",
        )


@prop("abs_forward", points=1)
def test_abs_forward_matches_reference(submission):
    cases = [_abs_case(200 + s) for s in range(2)] + [_abs_case(210, k=2, m=4, n=4)]  # the last has a square W2
    for W1, W2, b, x in cases:
        out = _output(submission, "abs_forward", W1, W2, b, x)
        want = neurons.abs_forward(W1, W2, b, x)
        if not close(out, want, RTOL, ATOL):
            hint = ""
            if W2.shape[-1] == W2.shape[-2] and close(out, neurons.abs_forward(W1, W2.mT.contiguous(), b, x), RTOL, ATOL):
                hint = (
                    " Your output matches W2 transposed: W2[k] has shape (n_features, n_hidden), so y'_i = sum_j "
                    "W2[k, i, j] h_j (W2 @ h, not W2^T @ h)."
                )
            elif close(out, neurons.neuron_forward(W1, b, x), RTOL, ATOL):
                hint = " Your output uses W1^T for the output: the weights are untied, use W2."
            expect(
                False,
                f"Values: on random W1 {tuple(W1.shape)}, W2 {tuple(W2.shape)}, b and signed sparse x, your y' differs "
                f"from ReLU(W2 ReLU(W1 x) + b) by up to {(out - want).abs().max().item():.3g}.{hint}",
            )


# --------------------------------------------------------------------------- 08.neuron_readout


def _reference_readout(W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return neurons.excitatory(W).argmax(dim=2), neurons.monosemanticity(W)


def _readout(submission, W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    k, m, _ = W.shape
    out = call(submission, W.clone(), what="neuron_readout")
    expect(
        isinstance(out, (tuple, list)) and len(out) == 2,
        f"Return value: neuron_readout should return a pair (top_feature, monosemanticity); got {describe(out)}.",
    )
    top, mono = out
    for name, t in (("top_feature", top), ("monosemanticity", mono)):
        expect(
            isinstance(t, torch.Tensor) and tuple(t.shape) == (k, m),
            f"Shape: {name} should be a tensor of shape (n_instances, n_hidden) = {(k, m)}; got {describe(t)}.",
        )
    expect(
        not top.is_floating_point(),
        f"Dtype: top_feature holds feature indices, an integer tensor (argmax gives int64); got {describe(top)}.",
    )
    expect(mono.is_floating_point(), f"Dtype: monosemanticity should be a float tensor; got {describe(mono)}.")
    return top.detach(), mono.detach()


def _readout_W() -> torch.Tensor:
    """``(1, 4, 4)``: a clean neuron, one with a big inhibitory weight, a 2-feature neuron, a neuron with no positive weight."""
    return torch.tensor(
        [[[0.9, 0.0, 0.0, 0.1], [0.2, 0.8, -2.0, 0.0], [0.6, 0.0, 0.6, 0.0], [-0.5, -0.3, -1.0, 0.0]]]
    )


@prop("neuron_readout", points=1)
def test_readout_shapes(submission):
    for k, m, n in [(2, 5, 10), (1, 1, 3), (3, 4, 2)]:
        W = torch.randn(k, m, n, generator=_gen(k * 100 + m * 10 + n))
        _readout(submission, W)


@prop("neuron_readout", points=1)
def test_readout_top_feature_is_the_largest_positive_weight(submission):
    W = _readout_W()
    top, _ = _readout(submission, W)
    want, _ = _reference_readout(W)
    alive = torch.tensor([True, True, True, False])  # neuron 3 has no positive weight: any index is fine
    if not torch.equal(top[0, alive], want[0, alive]):
        hint = ""
        if int(top[0, 1]) == 2:
            hint = (
                " For neuron 1 you picked feature 2, whose weight is -2: a negative weight *inhibits* the neuron "
                "(inputs are >= 0), so take the largest positive weight, not the largest |W_ji|."
            )
        elif int(top[0, 0]) != 0:
            hint = " Take the argmax over features (the last axis of W), for each neuron."
        expect(
            False,
            f"Top feature: neurons with weights [0.9, 0, 0, 0.1] and [0.2, 0.8, -2, 0] should read features "
            f"{want[0, :3].tolist()} (neurons 0-2), got {top[0, :3].tolist()}.{hint}",
        )
    W = torch.randn(3, 6, 9, generator=_gen(7))
    top, _ = _readout(submission, W)
    want, _ = _reference_readout(W)
    ok = neurons.excitatory(W).amax(dim=2) > 0
    expect(
        torch.equal(top[ok], want[ok]),
        "Top feature: on random W (3, 6, 9) some neurons' top feature is wrong: for each instance k and neuron j, "
        "take argmax over i of max(W[k, j, i], 0).",
    )


@prop("neuron_readout", points=1)
def test_readout_monosemanticity_hand_built(submission):
    W = _readout_W()
    _, mono = _readout(submission, W)
    _, want = _reference_readout(W)
    if not close(mono, want, RTOL, ATOL):
        hint = ""
        if torch.isnan(mono).any():
            hint = " You returned NaN for the neuron with no positive weight (0 / 0): return 0 there."
        elif abs(float(mono[0, 1]) - 4.0 / 4.68) < 1e-3:
            hint = " Neuron 1's share counts its -2 weight: only positive weights excite a neuron, clamp W at 0 first."
        elif abs(float(mono[0, 0]) - 0.9) < 1e-3:
            hint = " Neuron 0 should give 0.81 / 0.82: the share is of *squared* weights."
        elif abs(float(mono[0, 2]) - 1.0) < 1e-3:
            hint = " A neuron reading two features equally should get 1/2: divide by the sum over features."
        expect(
            False,
            f"Monosemanticity: max_i max(W_ji, 0)^2 / sum_i max(W_ji, 0)^2 (0 for a neuron with no positive weight) "
            f"should be {_fmt(want[0], 4)} for neurons [0.9, 0, 0, 0.1], [0.2, 0.8, -2, 0], [0.6, 0, 0.6, 0], "
            f"[-0.5, -0.3, -1, 0]; got {_fmt(mono[0], 4)}.{hint}",
        )


@prop("neuron_readout", points=1)
def test_readout_matches_reference_per_instance(submission):
    W = torch.randn(4, 5, 10, generator=_gen(11))
    W[2] = W[2].abs()  # an instance with only positive weights
    W[3, 1] = -W[3, 1].abs()  # a neuron nothing excites
    top, mono = _readout(submission, W)
    want_top, want_mono = _reference_readout(W)
    expect(
        close(mono, want_mono, RTOL, ATOL),
        f"Monosemanticity: on random W (4, 5, 10) yours differs from the share of the top squared positive "
        f"weight by up to {(mono - want_mono).nan_to_num(1.0).abs().max().item():.3g}: each neuron is a row W[k, j, :] "
        "(reduce over the last axis, features), and a neuron with no positive weight gets 0.",
    )
    ok = neurons.excitatory(W).amax(dim=2) > 0
    expect(
        torch.equal(top[ok], want_top[ok]),
        "Top feature: on random W (4, 5, 10) some neurons' top feature is wrong: argmax over features of max(W, 0).",
    )


# --------------------------------------------------------------------------- 08.count_neurons


KINDS = ("monosemantic", "polysemantic", "dead")


def _counts(submission, W: torch.Tensor, **kwargs) -> dict[str, torch.Tensor]:
    k = W.shape[0]
    out = call(submission, W.clone(), what="count_neurons", **kwargs)
    expect(
        isinstance(out, dict) and set(out) >= set(KINDS),
        f"Return value: count_neurons should return a dict with keys {list(KINDS)}; got {describe(out)}.",
    )
    for kind in KINDS:
        t = out[kind]
        expect(
            isinstance(t, torch.Tensor) and tuple(t.shape) == (k,) and not t.is_floating_point(),
            f"Shape: count_neurons(...)['{kind}'] should be an integer tensor of shape (n_instances,) = ({k},); "
            f"got {describe(t)}.",
        )
    return {kind: out[kind].detach().long() for kind in KINDS}


def _reference_counts(W: torch.Tensor, **kwargs) -> dict[str, torch.Tensor]:
    c = neurons.count_neurons(W, **kwargs)
    return {"monosemantic": c.monosemantic, "polysemantic": c.polysemantic, "dead": c.dead}


def _pairs_W() -> torch.Tensor:
    """``(1, 5, 10)``: ten features on the C(5, 2) pairs of five neurons, inhibited elsewhere."""
    W = torch.full((1, 5, 10), -0.5)
    for i, (a, c) in enumerate(combinations(range(5), 2)):
        W[0, [a, c], i] = 1 / math.sqrt(2)
    return W


def _counts_W() -> torch.Tensor:
    """``(2, 6, 5)``. Instance 0: clean, clean with a strong inhibition, weak-but-clean, 2-feature, all negative
    (dead), tiny (dead). Instance 1: features on pairs of neurons, inhibited elsewhere, and a zero neuron."""
    W0 = torch.tensor(
        [[1.0, 0.0, 0.05, 0.0, 0.0], [0.0, 0.95, -1.5, 0.0, 0.0], [0.0, 0.0, 0.2, 0.0, 0.0],
         [0.6, 0.0, 0.0, 0.6, 0.0], [-0.7, -0.7, 0.0, 0.0, -0.7], [0.02, 0.03, 0.0, 0.0, 0.0]]
    )
    W1 = torch.zeros(6, 10)
    W1[:5] = _pairs_W()[0, :, :10]
    W1 = W1[:, :5]
    return torch.stack([W0, W1])


@prop("count_neurons", points=1)
def test_counts_shapes_and_total(submission):
    W = torch.randn(3, 7, 9, generator=_gen(21))
    c = _counts(submission, W)
    total = c["monosemantic"] + c["polysemantic"] + c["dead"]
    expect(
        torch.equal(total, torch.full((3,), 7)),
        f"Total: every neuron is exactly one of monosemantic, polysemantic or dead, so the three counts should add "
        f"up to n_hidden = 7 for each instance; got {total.tolist()}.",
    )


@prop("count_neurons", points=1)
def test_counts_inhibition_and_dead_neurons(submission):
    W = _counts_W()
    c = _counts(submission, W)
    want = _reference_counts(W)
    if not all(torch.equal(c[kind][:1], want[kind][:1]) for kind in KINDS):
        got = {kind: int(c[kind][0]) for kind in KINDS}
        exp = {kind: int(want[kind][0]) for kind in KINDS}
        hint = ""
        if got["dead"] < exp["dead"]:
            hint += (
                " A neuron whose weights are all negative never fires on non-negative inputs: it is dead. Measure the "
                "norm of the positive weights (W.clamp(min=0)) against dead_norm."
            )
        if got["monosemantic"] < exp["monosemantic"]:
            hint += " A strong negative weight does not make a neuron polysemantic: only positive weights count."
        expect(
            False,
            f"Counts: six neurons (one clean, one clean with a -1.5 inhibitory weight, a weak clean one with weight 0.2, "
            f"one reading two features, one with only negative weights, one with weights 0.02, 0.03) should give "
            f"{exp}; got {got}.{hint}",
        )


@prop("count_neurons", points=1)
def test_counts_pairs_and_thresholds(submission):
    W = _counts_W()
    c = _counts(submission, W)
    want = _reference_counts(W)
    expect(
        all(torch.equal(c[kind], want[kind]) for kind in KINDS),
        "Counts: for a model with its features on pairs of neurons (inhibited elsewhere) as instance 1, expected "
        f"{ {k: v.tolist() for k, v in want.items()} } over both instances, got { {k: v.tolist() for k, v in c.items()} }. "
        "Count each instance separately (sum over neurons, axis 1).",
    )
    # Thresholds are arguments: a stricter mono_share and a larger dead_norm change the counts.
    for kwargs in ({"mono_share": 0.999}, {"dead_norm": 0.5}, {"mono_share": 0.4, "dead_norm": 0.0}):
        c = _counts(submission, W, **kwargs)
        want = _reference_counts(W, **kwargs)
        expect(
            all(torch.equal(c[kind], want[kind]) for kind in KINDS),
            f"Thresholds: with {kwargs} expected { {k: v.tolist() for k, v in want.items()} }, got "
            f"{ {k: v.tolist() for k, v in c.items()} }. Use the mono_share and dead_norm arguments, not fixed numbers; "
            "monosemantic means share >= mono_share, dead means norm < dead_norm.",
        )


@prop("count_neurons", points=1)
def test_counts_match_reference_on_random_models(submission):
    for seed in range(3):
        W = torch.randn(5, 6, 8, generator=_gen(30 + seed)) * torch.rand(5, 6, 1, generator=_gen(40 + seed))
        W = W + 1.5 * torch.nn.functional.one_hot(torch.randint(8, (5, 6), generator=_gen(50 + seed)), 8) * (
            torch.rand(5, 6, 1, generator=_gen(60 + seed)) < 0.5
        )
        c = _counts(submission, W)
        want = _reference_counts(W)
        expect(
            all(torch.equal(c[kind], want[kind]) for kind in KINDS),
            f"Counts: on random models (5 instances of 6 neurons) expected { {k: v.tolist() for k, v in want.items()} }, "
            f"got { {k: v.tolist() for k, v in c.items()} }. Count per instance (sum over neurons, axis 1).",
        )
