"""Lesson 8's known mistakes: wrong implementations learners plausibly write, each with the hint that names it.

The checks diagnose with this table (a learner's output that matches a mistake's gets its hint), and the
generic proof (tests/test_lesson_proofs.py) grades every entry and requires it to lose points with its keyword
in the messages. Mistakes with ``compare=False`` give the right values but break a contract (no gradient, a
float32 answer for float64 inputs, a NumPy round trip, an argument changed in place, a wrong return type): the
property that catches them names them in its own message.

The kinds of mistake (issue 24):

* the forward passes: a ReLU missing or misplaced, the bias missing or added in the wrong place, the untied
  weights tied, ``W`` where ``W^T`` belongs, instance 0's weights used for every instance;
* gradient flow: a forward pass computed under ``torch.no_grad()`` or on detached weights (right values, but
  the model cannot train), a NumPy round trip;
* the readouts: inhibitory (negative) weights counted, the share of weights not squared, the wrong axis, NaN
  (0 / 0) for a neuron with no positive weight;
* the counts: the squared norm compared with the norm threshold, strict against non-strict boundaries, fixed
  thresholds or other defaults, the whole norm instead of the positive weights', every instance counted at once;
* in-place edits of the arguments (``W.clamp_(min=0)``: the worker notices them).
"""

from __future__ import annotations

import numpy as np
import torch

from autograder.toolkit import Mistake

__all__ = ["MISTAKES"]


# --------------------------------------------------------------------------- 08.neuron_forward


def _hidden(x, W):
    return torch.einsum("bif,ihf->bih", x, W)


def _out(h, W):
    return torch.einsum("bih,ihf->bif", h, W)


def _fwd_no_hidden_relu(W, b, x):
    return torch.relu(_out(_hidden(x, W), W) + b)


def _fwd_no_output_relu(W, b, x):
    return _out(torch.relu(_hidden(x, W)), W) + b


def _fwd_no_bias(W, b, x):
    return torch.relu(_out(torch.relu(_hidden(x, W)), W))


def _fwd_bias_inside_hidden(W, b, x):
    return torch.relu(_out(torch.relu(_hidden(x + b, W)), W))


def _fwd_bias_after_relu(W, b, x):
    return torch.relu(_out(torch.relu(_hidden(x, W)), W)) + b


def _fwd_relu_of_input(W, b, x):
    # ReLU on the input (a no-op on x >= 0) instead of on the neurons: the hidden layer stays linear.
    return torch.relu(_out(_hidden(torch.relu(x), W), W) + b)


def _fwd_first_instance(W, b, x):
    h = torch.relu(torch.einsum("bif,hf->bih", x, W[0]))
    return torch.relu(torch.einsum("bih,hf->bif", h, W[0]) + b[0])


def _fwd_bias_of_first_instance(W, b, x):
    return torch.relu(_out(torch.relu(_hidden(x, W)), W) + b[0])


def _fwd_sigmoid(W, b, x):
    return torch.relu(_out(torch.sigmoid(_hidden(x, W)), W) + b)


def _fwd_output_through_W(W, b, x):
    # W h instead of W^T h at the output: only runs when W is square (n_hidden == n_features).
    h = torch.relu(_hidden(x, W))
    return torch.relu(torch.einsum("bih,ifh->bif", h, W) + b)


def _fwd_no_grad(W, b, x):
    with torch.no_grad():
        return torch.relu(_out(torch.relu(_hidden(x, W)), W) + b)


def _fwd_detached_weights(W, b, x):
    Wd = W.detach()
    return torch.relu(_out(torch.relu(_hidden(x, Wd)), Wd) + b)


def _fwd_float32(W, b, x):
    W, b, x = W.float(), b.float(), x.float()
    return torch.relu(_out(torch.relu(_hidden(x, W)), W) + b)


def _fwd_numpy(W, b, x):
    Wn, bn, xn = W.numpy(), b.numpy(), x.numpy()
    h = np.maximum(np.einsum("bif,ihf->bih", xn, Wn), 0)
    return torch.from_numpy(np.maximum(np.einsum("bih,ihf->bif", h, Wn) + bn, 0))


# --------------------------------------------------------------------------- 08.abs_forward


def _abs_hidden(x, W1):
    return torch.einsum("bif,ihf->bih", x, W1)


def _abs_out(h, W2):
    return torch.einsum("bih,ifh->bif", h, W2)


def _abs_no_hidden_relu(W1, W2, b, x):
    return torch.relu(_abs_out(_abs_hidden(x, W1), W2) + b)


def _abs_no_output_relu(W1, W2, b, x):
    return _abs_out(torch.relu(_abs_hidden(x, W1)), W2) + b


def _abs_W2_transposed(W1, W2, b, x):
    # W2 read as (n_instances, n_hidden, n_features): only runs when W2 is square.
    h = torch.relu(_abs_hidden(x, W1))
    return torch.relu(torch.einsum("bih,ihf->bif", h, W2) + b)


def _abs_tied(W1, W2, b, x):
    h = torch.relu(_abs_hidden(x, W1))
    return torch.relu(torch.einsum("bih,ihf->bif", h, W1) + b)


def _abs_relu_of_input(W1, W2, b, x):
    return torch.relu(_abs_out(_abs_hidden(torch.relu(x), W1), W2) + b)


def _abs_of_output(W1, W2, b, x):
    # |.| of a linear model instead of computing it with the neurons.
    return (_abs_out(_abs_hidden(x, W1), W2) + b).abs()


def _abs_no_bias(W1, W2, b, x):
    return torch.relu(_abs_out(torch.relu(_abs_hidden(x, W1)), W2))


def _abs_first_instance(W1, W2, b, x):
    h = torch.relu(torch.einsum("bif,hf->bih", x, W1[0]))
    return torch.relu(torch.einsum("bih,fh->bif", h, W2[0]) + b[0])


def _abs_no_grad(W1, W2, b, x):
    with torch.no_grad():
        return torch.relu(_abs_out(torch.relu(_abs_hidden(x, W1)), W2) + b)


def _abs_detached_W2(W1, W2, b, x):
    return torch.relu(_abs_out(torch.relu(_abs_hidden(x, W1)), W2.detach()) + b)


def _abs_float32(W1, W2, b, x):
    W1, W2, b, x = W1.float(), W2.float(), b.float(), x.float()
    return torch.relu(_abs_out(torch.relu(_abs_hidden(x, W1)), W2) + b)


def _abs_numpy(W1, W2, b, x):
    h = np.maximum(np.einsum("bif,ihf->bih", x.numpy(), W1.numpy()), 0)
    return torch.from_numpy(np.maximum(np.einsum("bih,ifh->bif", h, W2.numpy()) + b.numpy(), 0))


# --------------------------------------------------------------------------- 08.neuron_readout


def _share(A):
    sq = A.square()
    total = sq.sum(-1)
    return torch.where(total > 0, sq.amax(-1) / total.clamp(min=1e-30), torch.zeros_like(total))


def _ro_abs_weights(W):
    A = W.abs()
    return A.argmax(-1), _share(A)


def _ro_not_squared(W):
    A = W.clamp(min=0)
    total = A.sum(-1)
    return A.argmax(-1), torch.where(total > 0, A.amax(-1) / total.clamp(min=1e-30), torch.zeros_like(total))


def _ro_over_norm(W):
    # max_i A / ||A||: the square root of the share.
    A = W.clamp(min=0)
    n = A.norm(dim=-1)
    return A.argmax(-1), torch.where(n > 0, A.amax(-1) / n.clamp(min=1e-30), torch.zeros_like(n))


def _ro_nan_for_silent(W):
    sq = W.clamp(min=0).square()
    return W.clamp(min=0).argmax(-1), sq.amax(-1) / sq.sum(-1)


def _ro_over_neurons(W):
    # normalises over the neuron axis: reads features, not neurons
    sq = W.clamp(min=0).square()
    total = sq.sum(1, keepdim=True)
    share = torch.where(total > 0, sq / total.clamp(min=1e-30), torch.zeros_like(sq))
    return W.clamp(min=0).argmax(-1), share.amax(-1)


def _ro_top_over_mean(W):
    sq = W.clamp(min=0).square()
    return W.clamp(min=0).argmax(-1), torch.where(sq.sum(-1) > 0, sq.amax(-1) / sq.mean(-1).clamp(min=1e-30),
                                                  torch.zeros_like(sq[..., 0]))


def _ro_float_top(W):
    A = W.clamp(min=0)
    return A.argmax(-1).float(), _share(A)


def _ro_one_for_silent(W):
    sq = W.clamp(min=0).square()
    total = sq.sum(-1)
    share = torch.where(total > 0, sq.amax(-1) / total.clamp(min=1e-30), torch.ones_like(total))
    return W.clamp(min=0).argmax(-1), share


def _ro_argmin(W):
    return W.argmin(-1), _share(W.clamp(min=0))


def _ro_top_over_neurons(W):
    # the top neuron of each feature (argmax over the neuron axis): shape (n_instances, n_features)
    return W.clamp(min=0).argmax(1), _share(W.clamp(min=0))


def _ro_clamp_in_place(W):
    A = W.clamp_(min=0) if not W.requires_grad else W.clamp(min=0)  # clamps the caller's W
    return A.argmax(-1), _share(A)


def _ro_swapped(W):
    A = W.clamp(min=0)
    return _share(A), A.argmax(-1)


# --------------------------------------------------------------------------- 08.count_neurons


def _count(mono, poly, dead):
    return {"monosemantic": mono.sum(-1), "polysemantic": poly.sum(-1), "dead": dead.sum(-1)}


def _classify(W, mono_share=0.9, dead_norm=0.1, *, excite=lambda W: W.clamp(min=0), norm=None, share=None,
              strict_mono=False, strict_dead=False):
    A = excite(W)
    n = A.norm(dim=-1) if norm is None else norm(W)
    s = _share(A) if share is None else share(W)
    alive = n > dead_norm if strict_dead else n >= dead_norm
    mono = alive & ((s > mono_share) if strict_mono else (s >= mono_share))
    return _count(mono, alive & ~mono, ~alive)


def _cn_abs(W, mono_share=0.9, dead_norm=0.1):
    return _classify(W, mono_share, dead_norm, excite=torch.abs)


def _cn_full_norm(W, mono_share=0.9, dead_norm=0.1):
    return _classify(W, mono_share, dead_norm, norm=lambda W: W.norm(dim=-1))


def _cn_squared_norm(W, mono_share=0.9, dead_norm=0.1):
    return _classify(W, mono_share, dead_norm, norm=lambda W: W.clamp(min=0).square().sum(-1))


def _cn_fixed(W, mono_share=0.9, dead_norm=0.1):
    return _classify(W, 0.9, 0.1)


def _cn_other_defaults(W, mono_share=0.8, dead_norm=0.05):
    return _classify(W, mono_share, dead_norm)


def _cn_strict_mono(W, mono_share=0.9, dead_norm=0.1):
    return _classify(W, mono_share, dead_norm, strict_mono=True)


def _cn_strict_dead(W, mono_share=0.9, dead_norm=0.1):
    return _classify(W, mono_share, dead_norm, strict_dead=True)


def _cn_dead_as_poly(W, mono_share=0.9, dead_norm=0.1):
    c = _classify(W, mono_share, dead_norm)
    return {"monosemantic": c["monosemantic"], "polysemantic": c["polysemantic"] + c["dead"],
            "dead": torch.zeros_like(c["dead"])}


def _cn_all_instances(W, mono_share=0.9, dead_norm=0.1):
    c = _classify(W, mono_share, dead_norm)
    return {k: v.sum().expand(W.shape[0]).clone() for k, v in c.items()}


def _cn_float(W, mono_share=0.9, dead_norm=0.1):
    return {k: v.float() for k, v in _classify(W, mono_share, dead_norm).items()}


def _cn_missing_dead(W, mono_share=0.9, dead_norm=0.1):
    c = _classify(W, mono_share, dead_norm)
    return {"monosemantic": c["monosemantic"], "polysemantic": c["polysemantic"]}


def _cn_clamp_in_place(W, mono_share=0.9, dead_norm=0.1):
    W.clamp_(min=0)  # the caller's W loses its inhibitory weights
    return _classify(W, mono_share, dead_norm)


def _cn_max_weight(W, mono_share=0.9, dead_norm=0.1):
    # dead when no weight is large in size: an all-negative neuron counts as alive
    return _classify(W, mono_share, dead_norm, norm=lambda W: W.abs().amax(-1))


# --------------------------------------------------------------------------- the table

MISTAKES = {
    "neuron_forward": [
        Mistake("no_hidden_relu", _fwd_no_hidden_relu, "hidden ReLU",
                "Your output matches a model without the hidden ReLU: the neurons are h = ReLU(W x), so a neuron "
                "driven negative passes nothing on (a ReLU of the input x does nothing: x >= 0)."),
        Mistake("no_output_relu", _fwd_no_output_relu, "ReLU to the output",
                "Your output matches a model without its output ReLU (it can go negative): apply the ReLU to the "
                "output too, x' = ReLU(W^T h + b)."),
        Mistake("no_bias", _fwd_no_bias, "ignores the bias",
                "Your output matches a model that ignores the bias b: x' = ReLU(W^T h + b)."),
        Mistake("bias_inside_hidden", _fwd_bias_inside_hidden, "bias belongs",
                "Your output matches b added to the input before the neurons: the bias belongs to the output, "
                "inside the output ReLU, x' = ReLU(W^T h + b)."),
        Mistake("bias_after_relu", _fwd_bias_after_relu, "bias belongs",
                "Your output matches b added after the output ReLU: the bias belongs inside it, x' = ReLU(W^T h + b)."),
        Mistake("relu_of_input", _fwd_relu_of_input, "hidden ReLU",
                "Your output matches a ReLU of the input x (which does nothing, x >= 0) and a linear hidden layer: "
                "the hidden ReLU acts on each neuron, h = ReLU(W x)."),
        Mistake("first_instance", _fwd_first_instance, "W[k]",
                "Your output matches every instance computed with instance 0's weights: instance k uses W[k] and "
                "b[k]."),
        Mistake("bias_of_first_instance", _fwd_bias_of_first_instance, "b[k]",
                "Your output matches every instance given instance 0's bias: instance k uses W[k] and b[k]."),
        Mistake("sigmoid", _fwd_sigmoid, "sigmoid",
                "Your output matches sigmoid neurons: the neurons are ReLUs, h = ReLU(W x), not a sigmoid."),
        Mistake("output_through_W", _fwd_output_through_W, "W^T",
                "Your output matches W h at the output (it only runs for a square W): the output layer is W^T h, "
                "x'_i = sum_j W[k, j, i] h_j."),
        Mistake("no_grad", _fwd_no_grad, "no gradient", compare=False),
        Mistake("detached_weights", _fwd_detached_weights, "no gradient reaches W", compare=False),
        Mistake("float32", _fwd_float32, "dtype", compare=False),
        Mistake("numpy_round_trip", _fwd_numpy, "stay in torch", compare=False),
    ],
    "abs_forward": [
        Mistake("no_hidden_relu", _abs_no_hidden_relu, "hidden ReLU",
                "Your output matches a model without the hidden ReLU: apply ReLU to W1 x (each neuron), h = "
                "ReLU(W1 x); without it the ReLU(x_i) and ReLU(-x_i) neurons cancel."),
        Mistake("no_output_relu", _abs_no_output_relu, "ReLU to the output",
                "Your output matches a model without its output ReLU (it can go negative): apply the ReLU to the "
                "output too, y' = ReLU(W2 h + b)."),
        Mistake("W2_transposed", _abs_W2_transposed, "W2 transposed",
                "Your output matches W2 transposed: W2[k] has shape (n_features, n_hidden), so y'_i = sum_j "
                "W2[k, i, j] h_j (W2 @ h, not W2^T @ h)."),
        Mistake("tied", _abs_tied, "untied",
                "Your output matches W1^T at the output: the weights are untied, the output layer is W2."),
        Mistake("relu_of_input", _abs_relu_of_input, "not to x",
                "Your output matches a ReLU of the input x and a linear hidden layer: apply the ReLU to each "
                "neuron's W1 x, not to x."),
        Mistake("abs_of_output", _abs_of_output, "with its neurons",
                "Your output matches |W2 W1 x + b|: the model computes |x| with its neurons, ReLU(W2 ReLU(W1 x) + b); "
                "do not take .abs() of anything."),
        Mistake("no_bias", _abs_no_bias, "ignores the bias",
                "Your output matches a model that ignores the bias b: y' = ReLU(W2 h + b)."),
        Mistake("first_instance", _abs_first_instance, "W1[k]",
                "Your output matches every instance computed with instance 0's parameters: instance k uses W1[k], "
                "W2[k] and b[k]."),
        Mistake("no_grad", _abs_no_grad, "no gradient", compare=False),
        Mistake("detached_W2", _abs_detached_W2, "no gradient reaches W2", compare=False),
        Mistake("float32", _abs_float32, "dtype", compare=False),
        Mistake("numpy_round_trip", _abs_numpy, "stay in torch", compare=False),
    ],
    "neuron_readout": [
        Mistake("abs_weights", _ro_abs_weights, "largest positive weight",
                "Your readout matches |W|: a negative weight inhibits the neuron (inputs are >= 0), so use the "
                "largest positive weight, A = max(W, 0), not the largest |W_ji|."),
        Mistake("not_squared", _ro_not_squared, "squared",
                "Your monosemanticity matches max_i A_ji / sum_i A_ji: the share is of squared weights, "
                "max_i A_ji^2 / sum_i A_ji^2."),
        Mistake("over_the_norm", _ro_over_norm, "squared",
                "Your monosemanticity matches max_i A_ji / ||A_j||, the square root of the share: divide squared "
                "weights by their sum, max_i A_ji^2 / sum_i A_ji^2."),
        Mistake("over_neurons", _ro_over_neurons, "axis",
                "Your monosemanticity matches shares taken over the neuron axis (dim=1): neuron j is the row "
                "W[k, j, :], so reduce over the last axis, the features."),
        Mistake("top_over_mean", _ro_top_over_mean, "sum over features",
                "Your monosemanticity matches the top squared weight over the mean: divide by the sum over "
                "features, not the mean."),
        Mistake("one_for_silent", _ro_one_for_silent, "0 for a neuron with no positive weight",
                "A neuron with no positive weight never fires: its monosemanticity is 0 for a neuron with no "
                "positive weight, not 1."),
        Mistake("argmin", _ro_argmin, "largest",
                "Your top features match argmin: the top feature has the largest positive weight (argmax)."),
        Mistake("nan_for_silent", _ro_nan_for_silent, "0 / 0", compare=False),
        Mistake("float_top", _ro_float_top, "integer", compare=False),
        Mistake("top_over_neurons", _ro_top_over_neurons, "last axis", compare=False),
        Mistake("swapped_order", _ro_swapped, "(top_feature, monosemanticity)", compare=False),
        Mistake("clamp_in_place", _ro_clamp_in_place, "In-place edit", compare=False),
    ],
    "count_neurons": [
        Mistake("abs_weights", _cn_abs, "only positive weights count",
                "Your counts match |W|: a negative weight inhibits a neuron (inputs are >= 0), so only positive "
                "weights count, A = max(W, 0), for the share and for the norm."),
        Mistake("full_norm", _cn_full_norm, "never fires",
                "Your counts match the norm of all the weights: a neuron whose weights are all negative never fires "
                "on non-negative inputs, it is dead. Measure the norm of the positive weights, ||max(W, 0)||."),
        Mistake("squared_norm", _cn_squared_norm, "squared norm",
                "Your counts match the squared norm ||A_j||^2 compared with dead_norm: the threshold is on the norm "
                "||A_j|| itself."),
        Mistake("fixed_thresholds", _cn_fixed, "arguments",
                "Your counts match fixed thresholds 0.9 and 0.1: use the mono_share and dead_norm arguments."),
        Mistake("other_defaults", _cn_other_defaults, "default",
                "Your counts match other default thresholds: the defaults are mono_share=0.9 and dead_norm=0.1."),
        Mistake("strict_share", _cn_strict_mono, "share >= mono_share",
                "Your counts match share > mono_share: a live neuron is monosemantic when its share >= mono_share "
                "(a share of exactly mono_share counts)."),
        Mistake("strict_norm", _cn_strict_dead, "exactly dead_norm",
                "Your counts match norm > dead_norm for a live neuron: a neuron is dead when the norm is *below* "
                "dead_norm, so a norm of exactly dead_norm is alive (>=)."),
        Mistake("dead_as_polysemantic", _cn_dead_as_poly, "dead",
                "Your counts put the dead neurons among the polysemantic ones: a neuron whose positive weights have "
                "norm below dead_norm is dead, and neither monosemantic nor polysemantic."),
        Mistake("all_instances", _cn_all_instances, "each instance",
                "Your counts match every instance counted together: count each instance separately (sum over the "
                "neurons, axis 1)."),
        Mistake("max_weight", _cn_max_weight, "never fires",
                "Your counts match dead meaning no weight is large in size: a neuron whose weights are all negative "
                "never fires on non-negative inputs, it is dead; measure the norm of the positive weights."),
        Mistake("float_counts", _cn_float, "integer", compare=False),
        Mistake("missing_dead", _cn_missing_dead, "dict with keys", compare=False),
        Mistake("clamp_in_place", _cn_clamp_in_place, "In-place edit", compare=False),
    ],
}
