"""Lesson 12's known mistakes: wrong implementations learners plausibly write, each with the hint that names it.

The checks diagnose with this table (a learner's output that matches a mistake's gets its hint), and the
generic proof (tests/test_lesson_proofs.py) grades every entry and requires it to lose points with its keyword
in the messages. Mistakes with ``compare=False`` break a contract (a shape, NaN on an edge case): the property
that catches them names them in its own message.

The kinds of mistake (issue 19):

* **binning**: zeros thrown into the quantile bins with everything else, or a zero bin whose quantile edges are
  still computed over the zeros too; equal-width bins; quantiles over the whole matrix instead of each column;
  ``|v|`` in place of ``v``; the ``bins`` argument ignored; non-zero labels starting at 0 (sharing the zero bin);
* **entropy in the wrong base**: bits or decimal digits where the docstring says nats (mutual information), the
  natural log or ``log2`` where DCI needs base ``K`` (the number of factors), or base ``n_codes``;
* **normalising by the wrong entropy**: MIG divided by the best code's entropy, by nothing, or by the joint
  entropy; the gap taken to the mean instead of the second best; the gap over codes instead of factors;
* **CKA**: uncentred, un-normalised (HSIC alone), normalised by traces, centred over the wrong axis, not squared,
  NaN for a constant representation;
* **DCI**: rows and columns swapped (completeness), an unweighted mean, NaN for a code with no importance, only
  2-D input handled.
"""

from __future__ import annotations

import math

import torch

from autograder.toolkit import Mistake

__all__ = ["MISTAKES", "labels_per_column", "plugin_mi", "plugin_entropy"]


# --------------------------------------------------------------------------- shared pieces


def labels_per_column(values: torch.Tensor, bins: int, edges_from=None, zero_bin: bool = True,
                      start: int = 1) -> torch.Tensor:
    """Quantile labels column by column; ``edges_from(column) -> values the quantiles are taken of``."""
    v = values.detach().double()
    out = torch.zeros(v.shape, dtype=torch.long)
    q = torch.arange(1, bins, dtype=torch.float64) / bins
    for j in range(v.shape[1]):
        col = v[:, j]
        nz = col != 0 if zero_bin else torch.ones_like(col, dtype=torch.bool)
        if not bool(nz.any()):
            continue
        source = col[nz] if edges_from is None else edges_from(col)
        edges = torch.quantile(source, q) if bins > 1 else source.new_empty(0)
        out[nz, j] = torch.bucketize(col[nz], edges, right=True) + start
    return out


def plugin_entropy(labels: torch.Tensor, log=torch.log) -> torch.Tensor:
    """``(n_vars,)`` plug-in entropies of integer label columns with the logarithm ``log``."""
    out = []
    for j in range(labels.shape[1]):
        p = torch.bincount(labels[:, j].long()).double()
        p = p[p > 0] / labels.shape[0]
        out.append(-(p * log(p)).sum())
    return torch.stack(out)


def plugin_mi(a: torch.Tensor, b: torch.Tensor, log=torch.log, stride=None, normalise: bool = False,
              sign: float = 1.0) -> torch.Tensor:
    """``(n_a, n_b)`` plug-in mutual information; ``stride(a_col, b_col)`` encodes joint labels."""
    a, b = a.long(), b.long()
    ha, hb = plugin_entropy(a, log), plugin_entropy(b, log)
    out = torch.zeros(a.shape[1], b.shape[1], dtype=torch.float64)
    for i in range(a.shape[1]):
        for j in range(b.shape[1]):
            s = int(b[:, j].max()) + 1 if stride is None else stride(a[:, i], b[:, j])
            joint = plugin_entropy((a[:, i] * s + b[:, j])[:, None], log)[0]
            out[i, j] = sign * (ha[i] + hb[j] - joint)
            if normalise:
                out[i, j] = out[i, j] / torch.sqrt(ha[i] * hb[j]).clamp_min(1e-12)
    return out


def _gap(info: torch.Tensor, h_factor: torch.Tensor) -> torch.Tensor:
    top = info.topk(2, dim=0).values
    return ((top[0] - top[1]) / h_factor.clamp_min(1e-12)).mean()


def _mig_with(codes, factors, bins=20, labels=None, mi=None, finish=None):
    labels = labels or (lambda v, b: labels_per_column(v, b))
    mi = mi or plugin_mi
    zc, zf = labels(codes, bins), labels(factors, bins)
    info = mi(zc, zf)
    if finish is not None:
        return finish(info, zc, zf)
    return _gap(info, plugin_entropy(zf))


# --------------------------------------------------------------------------- 12.discretize


def _disc_zeros_in_quantiles(values, bins=20):
    # no zero bin: zeros share the quantile bins with everything else
    return labels_per_column(values, bins, zero_bin=False)


def _disc_edges_over_all_values(values, bins=20):
    # a zero bin, but the quantiles are those of the whole column, zeros included
    return labels_per_column(values, bins, edges_from=lambda col: col)


def _disc_equal_width(values, bins=20):
    v = values.detach().double()
    out = torch.zeros(v.shape, dtype=torch.long)
    for j in range(v.shape[1]):
        nz = v[:, j] != 0
        if not bool(nz.any()):
            continue
        lo, hi = v[nz, j].min(), v[nz, j].max()
        edges = lo + (hi - lo) * torch.arange(1, bins, dtype=torch.float64) / bins
        out[nz, j] = torch.bucketize(v[nz, j], edges, right=True) + 1
    return out


def _disc_global_quantiles(values, bins=20):
    v = values.detach().double()
    nz = v != 0
    edges = torch.quantile(v[nz], torch.arange(1, bins, dtype=torch.float64) / bins)
    out = torch.zeros(v.shape, dtype=torch.long)
    out[nz] = torch.bucketize(v[nz], edges, right=True) + 1
    return out


def _disc_abs(values, bins=20):
    return labels_per_column(values.abs(), bins)


def _disc_fixed_bins(values, bins=20):
    return labels_per_column(values, 20 if bins != 20 else 10)


def _disc_start_at_zero(values, bins=20):
    return labels_per_column(values, bins, start=0)


# --------------------------------------------------------------------------- 12.mutual_information


def _mi_bits(a, b):
    return plugin_mi(a, b, log=torch.log2)


def _mi_log10(a, b):
    return plugin_mi(a, b, log=torch.log10)


def _mi_colliding_joint(a, b):
    # joint label a * max(b) + b: (1, 0) and (0, max) collide
    return plugin_mi(a, b, stride=lambda ai, bj: max(int(bj.max()), 1))


def _mi_sum_joint(a, b):
    return plugin_mi(a, b, stride=lambda ai, bj: 1)


def _mi_normalised(a, b):
    return plugin_mi(a, b, normalise=True)


def _mi_sign(a, b):
    return plugin_mi(a, b, sign=-1.0)


def _mi_counts(a, b):
    # entropies of raw counts instead of probabilities
    def log_counts(p):
        return torch.log(p * a.shape[0])
    return plugin_mi(a, b, log=log_counts)


def _mi_transposed(a, b):
    return plugin_mi(a, b).T.contiguous()


# --------------------------------------------------------------------------- 12.mig


def _mig_code_entropy(codes, factors, bins=20):
    def finish(info, zc, zf):
        best = info.argmax(dim=0)
        top = info.topk(2, dim=0).values
        return ((top[0] - top[1]) / plugin_entropy(zc)[best].clamp_min(1e-12)).mean()
    return _mig_with(codes, factors, bins, finish=finish)


def _mig_unnormalised(codes, factors, bins=20):
    def finish(info, zc, zf):
        top = info.topk(2, dim=0).values
        return (top[0] - top[1]).mean()
    return _mig_with(codes, factors, bins, finish=finish)


def _mig_joint_entropy(codes, factors, bins=20):
    def finish(info, zc, zf):
        best = info.argmax(dim=0)
        top = info.topk(2, dim=0).values
        hj = torch.stack([plugin_entropy((zc[:, int(best[k])] * (int(zf[:, k].max()) + 1) + zf[:, k])[:, None])[0]
                          for k in range(zf.shape[1])])
        return ((top[0] - top[1]) / hj).mean()
    return _mig_with(codes, factors, bins, finish=finish)


def _mig_no_zero_bin(codes, factors, bins=20):
    return _mig_with(codes, factors, bins, labels=lambda v, b: labels_per_column(v, b, zero_bin=False))


def _mig_bits_over_nats(codes, factors, bins=20):
    return _mig_with(codes, factors, bins, finish=lambda info, zc, zf: _gap(info / math.log(2), plugin_entropy(zf)))


def _mig_gap_to_mean(codes, factors, bins=20):
    def finish(info, zc, zf):
        top = info.max(dim=0).values
        rest = (info.sum(dim=0) - top) / (info.shape[0] - 1)
        return ((top - rest) / plugin_entropy(zf)).mean()
    return _mig_with(codes, factors, bins, finish=finish)


def _mig_over_codes(codes, factors, bins=20):
    # the gap for each code (its two best factors), divided by the code's entropy
    def finish(info, zc, zf):
        return _gap(info.T, plugin_entropy(zc))
    return _mig_with(codes, factors, bins, finish=finish)


def _mig_unsorted(codes, factors, bins=20):
    def finish(info, zc, zf):
        return ((info[0] - info[1]).abs() / plugin_entropy(zf)).mean()
    return _mig_with(codes, factors, bins, finish=finish)


def _mig_fixed_bins(codes, factors, bins=20):
    return _mig_with(codes, factors, 20)


# --------------------------------------------------------------------------- 12.dci_disentanglement


def _dci_with(R, log=None, rows=True, weighted=True, guard=True):
    R = R.double()
    if not rows:
        R = R.transpose(-1, -2)
    K = R.shape[-1]
    s = R.sum(dim=-1, keepdim=True)
    P = R / (s.clamp_min(1e-12) if guard else s)
    logP = torch.where(P > 0, P.log(), torch.zeros_like(P)) if guard else P.log()
    H = -(P * logP).sum(dim=-1) / (math.log(K) if log is None else log(K))
    if not weighted:
        return (1 - H).mean(dim=-1)
    rho = s[..., 0] / s[..., 0].sum(dim=-1, keepdim=True).clamp_min(1e-12)
    return (rho * (1 - H)).sum(dim=-1)


def _dci_natural_log(importance):
    return _dci_with(importance, log=lambda K: 1.0)


def _dci_log2(importance):
    return _dci_with(importance, log=lambda K: math.log(2))


def _dci_base_codes(importance):
    n_codes = importance.shape[-2]
    return _dci_with(importance, log=lambda K: math.log(max(n_codes, 2)))


def _dci_columns(importance):
    # P over codes for each factor: that is DCI completeness, not disentanglement
    return _dci_with(importance.transpose(-1, -2)) if importance.shape[-2] >= 2 else _dci_with(importance)


def _dci_unweighted(importance):
    return _dci_with(importance, weighted=False)


def _dci_nan_zero_rows(importance):
    return _dci_with(importance, guard=False)


def _dci_two_d_only(importance):
    R = importance.reshape(-1, importance.shape[-1])
    return _dci_with(R)


# --------------------------------------------------------------------------- 12.linear_cka


def _cka_with(X, Y, centre="columns", normalise="frobenius", square=True):
    X, Y = X.detach().double(), Y.detach().double()
    if centre == "columns":
        X, Y = X - X.mean(0), Y - Y.mean(0)
    elif centre == "rows":
        X, Y = X - X.mean(1, keepdim=True), Y - Y.mean(1, keepdim=True)
    cross = (Y.T @ X).square().sum()
    if normalise == "none":
        return cross
    if normalise == "trace":
        return cross / ((X * X).sum() * (Y * Y).sum())
    nx, ny = torch.linalg.matrix_norm(X.T @ X), torch.linalg.matrix_norm(Y.T @ Y)
    if not square:
        return cross.sqrt() / (nx * ny).sqrt()
    if normalise == "x_only":
        return cross / (nx * nx)
    return cross / (nx * ny)


def _cka_uncentred(X, Y):
    return _cka_with(X, Y, centre="none")


def _cka_unnormalised(X, Y):
    return _cka_with(X, Y, normalise="none")


def _cka_traces(X, Y):
    return _cka_with(X, Y, normalise="trace")


def _cka_rows_centred(X, Y):
    return _cka_with(X, Y, centre="rows")


def _cka_not_squared(X, Y):
    return _cka_with(X, Y, square=False)


def _cka_one_norm(X, Y):
    return _cka_with(X, Y, normalise="x_only")


def _cka_nan_constant(X, Y):
    return _cka_with(X, Y)  # no guard: 0 / 0 for a constant representation


MISTAKES: dict[str, list[Mistake]] = {
    "discretize": [
        Mistake("zeros_in_quantile_bins", _disc_zeros_in_quantiles, "zero",
                "Your labels match quantile bins over all values with no bin of their own for zeros: a sparse value is "
                "exactly 0 most of the time, so give every 0 the label 0 and bin only the non-zero values."),
        Mistake("edges_over_all_values", _disc_edges_over_all_values, "non-zero values",
                "Your labels match quantile edges computed over the whole column, zeros included (most edges are then 0 "
                "and the non-zeros crowd into the top bins): take the quantiles of the non-zero values only."),
        Mistake("equal_width_bins", _disc_equal_width, "quantile",
                "Your labels match equal-width bins between the smallest and largest non-zero value: the bins must be "
                "quantile bins, edges at torch.quantile(non-zero values, k / bins), so each holds as many values."),
        Mistake("quantiles_of_the_whole_matrix", _disc_global_quantiles, "each column",
                "Your labels match quantiles over every column at once: bin each column on its own (codes and factors "
                "have their own scales)."),
        Mistake("absolute_values", _disc_abs, "negative",
                "Your labels match binning |v|: a negative value is non-zero like any other and sits below the positive "
                "ones (do not take the absolute value)."),
        Mistake("ignores_bins", _disc_fixed_bins, "bins argument",
                "Your labels do not change with the bins argument: make bins quantile bins for the non-zeros."),
        Mistake("labels_start_at_zero", _disc_start_at_zero, "label 0",
                "Your non-zero values' labels start at 0, the zero bin's label: label 0 is for exactly zero, the "
                "non-zeros get labels 1 .. bins."),
    ],
    "mutual_information": [
        Mistake("bits", _mi_bits, "nats",
                "Your values match the mutual information in bits (log2): the docstring asks for nats, the natural log."),
        Mistake("decimal_digits", _mi_log10, "nats",
                "Your values match the mutual information with log10: the docstring asks for nats, the natural log."),
        Mistake("colliding_joint_labels", _mi_colliding_joint, "joint",
                "Your values match joint labels a * max(b) + b, where two different pairs can share a label: use "
                "a * (max(b) + 1) + b so that every pair (a, b) gets its own joint label."),
        Mistake("summed_joint_labels", _mi_sum_joint, "joint",
                "Your values match joint labels a + b, which merge different pairs: the joint entropy needs one label "
                "per pair (a, b), e.g. a * (max(b) + 1) + b."),
        Mistake("normalised", _mi_normalised, "normalis",
                "Your values match a normalised mutual information (divided by sqrt(H(a) H(b))): return I(a; b) itself, "
                "in nats, and let MIG do its own normalising."),
        Mistake("wrong_sign", _mi_sign, "H(a) + H(b) - H(a, b)",
                "Your values are negative: I(a; b) = H(a) + H(b) - H(a, b) >= 0."),
        Mistake("entropy_of_counts", _mi_counts, "probabilit",
                "Your values match entropies computed from raw counts: divide the counts by n_samples to get "
                "probabilities before -sum p log p."),
        Mistake("transposed", _mi_transposed, "shape", compare=False),
    ],
    "mig": [
        Mistake("normalised_by_the_code", _mig_code_entropy, "entropy of the factor",
                "Your MIG matches dividing each gap by the entropy of the best code: MIG divides by the entropy of the "
                "factor, H(v_k), so it reads 'how much of what there is to know about v_k'."),
        Mistake("normalised_by_the_joint", _mig_joint_entropy, "entropy of the factor",
                "Your MIG matches dividing by the joint entropy of the factor and its best code: divide by the entropy "
                "of the factor, H(v_k)."),
        Mistake("not_normalised", _mig_unnormalised, "divide",
                "Your MIG matches the raw gap in nats: divide each factor's gap by its entropy H(v_k), so that MIG lies "
                "in [0, 1]."),
        Mistake("no_zero_bin", _mig_no_zero_bin, "zero",
                "Your MIG matches histograms without a bin of their own for zeros: discretize with label 0 for exactly "
                "zero and quantile bins for the non-zero values (your discretize)."),
        Mistake("bits_over_nats", _mig_bits_over_nats, "base",
                "Your MIG matches mutual information in bits divided by an entropy in nats: use the same base (nats) "
                "for both, e.g. your mutual_information and the factor's I(v_k; v_k) = H(v_k)."),
        Mistake("gap_to_the_mean", _mig_gap_to_mean, "second",
                "Your MIG matches the gap between the best code and the mean of the others: MIG is the gap between the "
                "best and the second best code (sort the codes' mutual informations with the factor)."),
        Mistake("gap_over_codes", _mig_over_codes, "each factor",
                "Your MIG matches a gap computed for each code over the factors: MIG takes, for each factor, the gap "
                "between its two most informative codes, then averages over factors."),
        Mistake("first_two_codes", _mig_unsorted, "second",
                "Your MIG matches the gap between codes 0 and 1: sort each factor's mutual informations and take the "
                "best minus the second best."),
        Mistake("ignores_bins", _mig_fixed_bins, "bins",
                "Your MIG does not change with the bins argument: pass bins on to discretize."),
    ],
    "dci_disentanglement": [
        Mistake("natural_log", _dci_natural_log, "base",
                "Your value matches an entropy with the natural log: DCI uses the entropy in base K, the number of "
                "factors (divide by log K), so that a code spread evenly over all factors scores exactly 0."),
        Mistake("log2", _dci_log2, "base",
                "Your value matches an entropy in bits: DCI uses base K, the number of factors (divide by log K)."),
        Mistake("base_number_of_codes", _dci_base_codes, "number of factors",
                "Your value matches an entropy in base n_codes: the base is K, the number of factors (the columns)."),
        Mistake("over_codes", _dci_columns, "row",
                "Your value matches distributions over the codes for each factor (that is DCI completeness): normalise "
                "each code's row over the factors, P_jk = R_jk / sum_k R_jk."),
        Mistake("unweighted", _dci_unweighted, "weight",
                "Your value matches a plain mean over codes: weight each code by its share of the total importance, "
                "rho_j = sum_k R_jk / sum_jk R_jk."),
        Mistake("nan_on_zero_rows", _dci_nan_zero_rows, "zero importance", compare=False),
        Mistake("two_d_only", _dci_two_d_only, "leading", compare=False),
    ],
    "linear_cka": [
        Mistake("uncentred", _cka_uncentred, "centre",
                "Your value matches CKA without centring: subtract each column's mean over the samples from X and Y "
                "first (the Gram matrices must be centred)."),
        Mistake("unnormalised", _cka_unnormalised, "normalis",
                "Your value matches <K, L> = ||Y^T X||_F^2 of un-normalised Gram matrices (it grows with the scale of "
                "X and Y): normalise, divide by ||X^T X||_F ||Y^T Y||_F."),
        Mistake("traces", _cka_traces, "Frobenius",
                "Your value matches dividing by the traces of the Gram matrices: divide by their Frobenius norms, "
                "||X^T X||_F ||Y^T Y||_F."),
        Mistake("centred_over_features", _cka_rows_centred, "column",
                "Your value matches removing each sample's mean over its features: centre each column (feature) over "
                "the samples, X - X.mean(dim=0)."),
        Mistake("not_squared", _cka_not_squared, "square",
                "Your value matches the square root of CKA: CKA = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F), with the "
                "square."),
        Mistake("one_norm", _cka_one_norm, "both",
                "Your value matches dividing by ||X^T X||_F twice: normalise by both representations' norms, "
                "||X^T X||_F ||Y^T Y||_F."),
        Mistake("nan_for_a_constant", _cka_nan_constant, "constant", compare=False),
    ],
}
