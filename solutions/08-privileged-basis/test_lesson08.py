"""Lesson 8's checks bite: the solution scores full marks, correct alternatives too, plausible mistakes lose points.

Each mutant is a mistake a learner could really make. The test asserts that it
loses points and that a failing property's message names the mistake (a
keyword from the message the learner would read). Each exercise also has
correct implementations written differently from the solution (other einsum
strings, matmuls, loops, other reductions) that must keep full marks. (In-place
changes to the arguments are not checked: the learner's function receives
copies, in the grading worker as over the in-process loopback.)
"""

from __future__ import annotations

import pytest
import torch

from autograder import run_exercise
from autograder.exercises import get_exercise, lessons
from lesson_tools import assert_rejected as _assert_rejected, solution_namespace

LESSON = "08-privileged-basis"
EXERCISES = ("neuron_forward", "neuron_readout", "count_neurons", "abs_forward")


@pytest.fixture(scope="module")
def ns():
    return solution_namespace(LESSON)


def _full_marks(exercise_id: str, impl) -> None:
    verdict = run_exercise(exercise_id, impl)
    failed = [f"{p.test}: {p.message}" for p in verdict.properties if not p.passed]
    assert verdict.points == verdict.max_points, f"{exercise_id}: a correct alternative lost points: {failed}"


# --------------------------------------------------------------------------- the registry


def test_points_per_exercise():
    for name in EXERCISES:
        assert get_exercise(f"08.{name}").points == 4, name


def test_every_property_is_worth_one_point_and_names_its_reference():
    for ex in lessons()[LESSON]:
        assert all(p.points == 1 for p in ex.properties), ex.id
        assert ex.reference and all(r.startswith("supercourse.neurons.") for r in ex.reference), ex.id


@pytest.mark.parametrize("name", EXERCISES)
def test_solution_scores_full_marks(ns, name):
    _full_marks(f"08.{name}", ns[name])


# --------------------------------------------------------------------------- 08.neuron_forward


def fwd_no_hidden_relu(W, b, x):
    h = torch.einsum("bif,ihf->bih", x, W)
    return torch.relu(torch.einsum("bih,ihf->bif", h, W) + b)


def fwd_no_output_relu(W, b, x):
    h = torch.relu(torch.einsum("bif,ihf->bih", x, W))
    return torch.einsum("bih,ihf->bif", h, W) + b


def fwd_no_bias(W, b, x):
    h = torch.relu(torch.einsum("bif,ihf->bih", x, W))
    return torch.relu(torch.einsum("bih,ihf->bif", h, W))


def fwd_bias_inside_hidden(W, b, x):
    h = torch.relu(torch.einsum("bif,ihf->bih", x + b, W))
    return torch.relu(torch.einsum("bih,ihf->bif", h, W))


def fwd_relu_of_features_not_neurons(W, b, x):
    # ReLU on the input instead of the neurons: the hidden layer stays linear.
    h = torch.einsum("bif,ihf->bih", torch.relu(x), W)
    return torch.relu(torch.einsum("bih,ihf->bif", h, W) + b)


def fwd_first_instance_weights(W, b, x):
    h = torch.relu(torch.einsum("bif,hf->bih", x, W[0]))
    return torch.relu(torch.einsum("bih,hf->bif", h, W[0]) + b)


def fwd_bias_of_first_instance(W, b, x):
    h = torch.relu(torch.einsum("bif,ihf->bih", x, W))
    return torch.relu(torch.einsum("bih,ihf->bif", h, W) + b[0])


def fwd_sigmoid_hidden(W, b, x):
    h = torch.sigmoid(torch.einsum("bif,ihf->bih", x, W))
    return torch.relu(torch.einsum("bih,ihf->bif", h, W) + b)


def fwd_from_the_reference(W, b, x):
    from supercourse.neurons import neuron_forward

    return neuron_forward(W, b, x)


@pytest.mark.parametrize(
    "impl, keyword",
    [
        (fwd_no_hidden_relu, "without the hidden ReLU"),
        (fwd_no_output_relu, "apply the ReLU to the output"),
        (fwd_no_bias, "ignores the bias"),
        (fwd_bias_inside_hidden, "Output ReLU and bias"),
        (fwd_relu_of_features_not_neurons, "Hidden ReLU"),
        (fwd_first_instance_weights, "instance k must use W[k]"),
        (fwd_bias_of_first_instance, "instance k must use W[k]"),
        (fwd_sigmoid_hidden, "Hidden ReLU"),
        (fwd_from_the_reference, "implement this yourself"),
    ],
    ids=lambda v: v.__name__ if callable(v) else "",
)
def test_neuron_forward_mutants(impl, keyword):
    _assert_rejected("08.neuron_forward", impl, keyword)


def fwd_matmul(W, b, x):
    h = torch.relu((x.unsqueeze(-2) @ W.mT).squeeze(-2))  # (batch, k, 1, n) @ (k, n, m)
    return torch.relu((h.unsqueeze(-2) @ W).squeeze(-2) + b)


def fwd_loop(W, b, x):
    outs = []
    for k in range(W.shape[0]):
        h = torch.clamp(x[:, k] @ W[k].T, min=0)
        outs.append(torch.clamp(h @ W[k] + b[k], min=0))
    return torch.stack(outs, dim=1)


def fwd_broadcast(W, b, x):
    h = torch.nn.functional.relu((x[:, :, None, :] * W[None]).sum(-1))
    return torch.nn.functional.relu((h[..., None] * W[None]).sum(-2) + b)


@pytest.mark.parametrize("impl", [fwd_matmul, fwd_loop, fwd_broadcast], ids=lambda f: f.__name__)
def test_neuron_forward_correct_alternatives(impl):
    _full_marks("08.neuron_forward", impl)


# --------------------------------------------------------------------------- 08.abs_forward


def abs_no_hidden_relu(W1, W2, b, x):
    h = torch.einsum("bif,ihf->bih", x, W1)
    return torch.relu(torch.einsum("bih,ifh->bif", h, W2) + b)


def abs_no_output_relu(W1, W2, b, x):
    h = torch.relu(torch.einsum("bif,ihf->bih", x, W1))
    return torch.einsum("bih,ifh->bif", h, W2) + b


def abs_W2_transposed(W1, W2, b, x):
    h = torch.relu(torch.einsum("bif,ihf->bih", x, W1))
    return torch.relu(torch.einsum("bih,ihf->bif", h, W2.mT) + b) if W2.shape[1] != W2.shape[2] else torch.relu(
        torch.einsum("bih,ihf->bif", h, W2) + b
    )


def abs_tied(W1, W2, b, x):
    h = torch.relu(torch.einsum("bif,ihf->bih", x, W1))
    return torch.relu(torch.einsum("bih,ihf->bif", h, W1) + b)


def abs_relu_of_input(W1, W2, b, x):
    h = torch.einsum("bif,ihf->bih", torch.relu(x), W1)
    return torch.relu(torch.einsum("bih,ifh->bif", h, W2) + b)


def abs_of_output(W1, W2, b, x):
    # Takes |.| of the output instead of computing it with neurons.
    h = torch.einsum("bif,ihf->bih", x, W1)
    return (torch.einsum("bih,ifh->bif", h, W2) + b).abs()


def abs_no_bias(W1, W2, b, x):
    h = torch.relu(torch.einsum("bif,ihf->bih", x, W1))
    return torch.relu(torch.einsum("bih,ifh->bif", h, W2))


def abs_first_instance(W1, W2, b, x):
    h = torch.relu(torch.einsum("bif,hf->bih", x, W1[0]))
    return torch.relu(torch.einsum("bih,fh->bif", h, W2[0]) + b)


def abs_from_the_reference(W1, W2, b, x):
    from supercourse import neurons

    return neurons.abs_forward(W1, W2, b, x)


@pytest.mark.parametrize(
    "impl, keyword",
    [
        (abs_no_hidden_relu, "apply ReLU to W1 x"),
        (abs_no_output_relu, "apply the ReLU to the output"),
        (abs_W2_transposed, "W2 transposed"),
        (abs_tied, "untied"),
        (abs_relu_of_input, "not to x"),
        (abs_of_output, "ReLUs"),
        (abs_no_bias, "Values"),
        (abs_first_instance, "Values"),
        (abs_from_the_reference, "implement this yourself"),
    ],
    ids=lambda v: v.__name__ if callable(v) else "",
)
def test_abs_forward_mutants(impl, keyword):
    _assert_rejected("08.abs_forward", impl, keyword)


def abs_matmul(W1, W2, b, x):
    h = torch.relu((W1 @ x.unsqueeze(-1)).squeeze(-1))  # (batch, k, m, n) @ (batch, k, n, 1)
    return torch.relu((W2 @ h.unsqueeze(-1)).squeeze(-1) + b)


def abs_loop(W1, W2, b, x):
    out = torch.empty_like(x)
    for k in range(W1.shape[0]):
        h = (x[:, k] @ W1[k].T).clamp(min=0)
        out[:, k] = (h @ W2[k].T + b[k]).clamp(min=0)
    return out


def abs_maximum(W1, W2, b, x):
    pre = torch.einsum("kmn,bkn->bkm", W1, x)
    h = torch.maximum(pre, torch.zeros_like(pre))
    y = torch.einsum("knm,bkm->bkn", W2, h) + b[None]
    return torch.where(y > 0, y, torch.zeros_like(y))


@pytest.mark.parametrize("impl", [abs_matmul, abs_loop, abs_maximum], ids=lambda f: f.__name__)
def test_abs_forward_correct_alternatives(impl):
    _full_marks("08.abs_forward", impl)


# --------------------------------------------------------------------------- 08.neuron_readout


def _share(A):
    sq = A.square()
    total = sq.sum(-1)
    return torch.where(total > 0, sq.amax(-1) / total.clamp(min=1e-30), torch.zeros_like(total))


def readout_abs_weights(W):
    A = W.abs()
    return A.argmax(-1), _share(A)


def readout_not_squared(W):
    A = W.clamp(min=0)
    total = A.sum(-1)
    return A.argmax(-1), torch.where(total > 0, A.amax(-1) / total.clamp(min=1e-30), torch.zeros_like(total))


def readout_nan_for_silent_neurons(W):
    A = W.clamp(min=0)
    sq = A.square()
    return A.argmax(-1), sq.amax(-1) / sq.sum(-1)


def readout_over_neurons(W):
    # Reduces over the neuron axis: reads features, not neurons.
    A = W.clamp(min=0)
    sq = A.square()
    total = sq.sum(1, keepdim=True)
    share = torch.where(total > 0, sq / total.clamp(min=1e-30), torch.zeros_like(sq))
    return A.argmax(-1), share.amax(-1)


def readout_top_over_mean(W):
    A = W.clamp(min=0)
    sq = A.square()
    return A.argmax(-1), torch.where(sq.sum(-1) > 0, sq.amax(-1) / sq.mean(-1).clamp(min=1e-30), torch.zeros_like(sq[..., 0]))


def readout_float_top(W):
    A = W.clamp(min=0)
    return A.argmax(-1).float(), _share(A)


def readout_one_for_silent(W):
    A = W.clamp(min=0)
    sq = A.square()
    total = sq.sum(-1)
    return A.argmax(-1), torch.where(total > 0, sq.amax(-1) / total.clamp(min=1e-30), torch.ones_like(total))


def readout_argmin(W):
    A = W.clamp(min=0)
    return W.argmin(-1), _share(A)


def readout_swapped_order(W):
    A = W.clamp(min=0)
    return _share(A), A.argmax(-1)


def readout_from_the_reference(W):
    from supercourse.neurons import excitatory, monosemanticity

    return excitatory(W).argmax(-1), monosemanticity(W)


@pytest.mark.parametrize(
    "impl, keyword",
    [
        (readout_abs_weights, "largest positive weight"),
        (readout_not_squared, "squared"),
        (readout_nan_for_silent_neurons, "NaN"),
        (readout_over_neurons, "Monosemanticity"),
        (readout_top_over_mean, "Monosemanticity"),
        (readout_float_top, "integer tensor"),
        (readout_one_for_silent, "0 for a neuron with no positive weight"),
        (readout_argmin, "Top feature"),
        (readout_swapped_order, "Dtype"),
        (readout_from_the_reference, "implement this yourself"),
    ],
    ids=lambda v: v.__name__ if callable(v) else "",
)
def test_neuron_readout_mutants(impl, keyword):
    _assert_rejected("08.neuron_readout", impl, keyword)


def readout_relu_and_max(W):
    A = torch.relu(W)
    top_value, top = A.max(dim=2)
    norm2 = (A * A).sum(dim=2)
    return top, torch.nan_to_num(top_value**2 / norm2, nan=0.0)


def readout_normalised(W):
    A = W.clamp(min=0)
    unit = torch.nn.functional.normalize(A, dim=-1)  # zero rows stay zero
    return A.argmax(dim=-1), unit.square().amax(dim=-1)


def readout_loop(W):
    k, m, _ = W.shape
    top = torch.zeros(k, m, dtype=torch.long)
    share = torch.zeros(k, m)
    for a in range(k):
        for j in range(m):
            row = [max(float(v), 0.0) for v in W[a, j]]
            best = max(range(len(row)), key=lambda i: row[i])
            top[a, j] = best
            total = sum(v * v for v in row)
            share[a, j] = row[best] ** 2 / total if total > 0 else 0.0
    return top, share


@pytest.mark.parametrize("impl", [readout_relu_and_max, readout_normalised, readout_loop], ids=lambda f: f.__name__)
def test_neuron_readout_correct_alternatives(impl):
    _full_marks("08.neuron_readout", impl)


# --------------------------------------------------------------------------- 08.count_neurons


def _mono_share(W):
    return _share(W.clamp(min=0))


def _count(mono, poly, dead):
    return {"monosemantic": mono.sum(-1), "polysemantic": poly.sum(-1), "dead": dead.sum(-1)}


def count_abs_weights(W, mono_share=0.9, dead_norm=0.1):
    A = W.abs()
    alive = A.norm(dim=-1) >= dead_norm
    mono = alive & (_share(A) >= mono_share)
    return _count(mono, alive & ~mono, ~alive)


def count_dead_by_full_norm(W, mono_share=0.9, dead_norm=0.1):
    alive = W.norm(dim=-1) >= dead_norm
    mono = alive & (_mono_share(W) >= mono_share)
    return _count(mono, alive & ~mono, ~alive)


def count_fixed_thresholds(W, mono_share=0.9, dead_norm=0.1):
    alive = W.clamp(min=0).norm(dim=-1) >= 0.1
    mono = alive & (_mono_share(W) >= 0.9)
    return _count(mono, alive & ~mono, ~alive)


def count_strict_inequality(W, mono_share=0.9, dead_norm=0.1):
    alive = W.clamp(min=0).norm(dim=-1) > dead_norm
    mono = alive & (_mono_share(W) > mono_share)
    return _count(mono, alive & ~mono, ~alive)


def count_dead_as_polysemantic(W, mono_share=0.9, dead_norm=0.1):
    alive = W.clamp(min=0).norm(dim=-1) >= dead_norm
    mono = alive & (_mono_share(W) >= mono_share)
    return _count(mono, ~mono, torch.zeros_like(mono))


def count_over_all_instances(W, mono_share=0.9, dead_norm=0.1):
    alive = W.clamp(min=0).norm(dim=-1) >= dead_norm
    mono = alive & (_mono_share(W) >= mono_share)
    k = W.shape[0]
    return {key: v.sum().expand(k).clone() for key, v in
            {"monosemantic": mono, "polysemantic": alive & ~mono, "dead": ~alive}.items()}


def count_float_counts(W, mono_share=0.9, dead_norm=0.1):
    alive = W.clamp(min=0).norm(dim=-1) >= dead_norm
    mono = alive & (_mono_share(W) >= mono_share)
    return {k: v.float() for k, v in _count(mono, alive & ~mono, ~alive).items()}


def count_missing_dead(W, mono_share=0.9, dead_norm=0.1):
    alive = W.clamp(min=0).norm(dim=-1) >= dead_norm
    mono = alive & (_mono_share(W) >= mono_share)
    return {"monosemantic": mono.sum(-1), "polysemantic": (alive & ~mono).sum(-1)}


def count_dead_by_max_weight(W, mono_share=0.9, dead_norm=0.1):
    # Dead when *every* weight is below dead_norm in size: misses the all-negative neuron.
    alive = W.abs().amax(dim=-1) >= dead_norm
    mono = alive & (_mono_share(W) >= mono_share)
    return _count(mono, alive & ~mono, ~alive)


def count_from_the_reference(W, mono_share=0.9, dead_norm=0.1):
    from supercourse.neurons import count_neurons as reference

    c = reference(W, mono_share, dead_norm)
    return {"monosemantic": c.monosemantic, "polysemantic": c.polysemantic, "dead": c.dead}


@pytest.mark.parametrize(
    "impl, keyword",
    [
        (count_abs_weights, "only positive weights count"),
        (count_dead_by_full_norm, "never fires on non-negative inputs"),
        (count_fixed_thresholds, "Use the mono_share and dead_norm arguments"),
        (count_strict_inequality, "share >= mono_share"),
        (count_dead_as_polysemantic, "it is dead"),
        (count_over_all_instances, "Count each instance separately"),
        (count_float_counts, "integer tensor"),
        (count_missing_dead, "dict with keys"),
        (count_dead_by_max_weight, "it is dead"),
        (count_from_the_reference, "implement this yourself"),
    ],
    ids=lambda v: v.__name__ if callable(v) else "",
)
def test_count_neurons_mutants(impl, keyword):
    _assert_rejected("08.count_neurons", impl, keyword)


def count_with_bincount(W, mono_share=0.9, dead_norm=0.1):
    A = W.clamp(min=0)
    alive = A.norm(dim=-1) >= dead_norm
    mono = alive & (_share(A) >= mono_share)
    kind = torch.where(~alive, 2, torch.where(mono, 0, 1))  # (k, m)
    per = torch.stack([torch.bincount(row, minlength=3) for row in kind])
    return {"monosemantic": per[:, 0], "polysemantic": per[:, 1], "dead": per[:, 2]}


def count_loop(W, mono_share=0.9, dead_norm=0.1):
    k, m, _ = W.shape
    out = {key: torch.zeros(k, dtype=torch.int64) for key in ("monosemantic", "polysemantic", "dead")}
    for a in range(k):
        for j in range(m):
            pos = W[a, j].clamp(min=0)
            if float(pos.norm()) < dead_norm:
                out["dead"][a] += 1
            elif float(pos.max() ** 2 / (pos**2).sum()) >= mono_share:
                out["monosemantic"][a] += 1
            else:
                out["polysemantic"][a] += 1
    return out


def count_by_subtraction(W, mono_share=0.9, dead_norm=0.1):
    pos = torch.relu(W)
    sq = pos**2
    total = sq.sum(-1)
    dead = (total.sqrt() < dead_norm).sum(-1)
    mono = ((total.sqrt() >= dead_norm) & (total > 0) & (sq.max(-1).values >= mono_share * total)).sum(-1)
    return {"dead": dead, "monosemantic": mono, "polysemantic": W.shape[1] - dead - mono}


@pytest.mark.parametrize("impl", [count_with_bincount, count_loop, count_by_subtraction], ids=lambda f: f.__name__)
def test_count_neurons_correct_alternatives(impl):
    _full_marks("08.count_neurons", impl)
