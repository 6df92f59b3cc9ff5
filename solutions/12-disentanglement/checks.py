"""Lesson 12 checks: disentanglement and similarity metrics.

Five exercises, plain functions on tensors, compared with :mod:`supercourse.disentanglement` on inputs drawn
from the grading run's secret (sparse factors ``Bernoulli(p) * U[0, 1]`` at random densities, random linear
codes, rotations, read-outs and importance matrices), and diagnosed with the lesson's mistake table
(``mistakes.py``), the table the generic proof also grades.

* ``12.discretize`` ``discretize(values, bins=20) -> (n_samples, n_vars)`` int64: 0 for exactly zero, the
  non-zeros of each column in ``bins`` quantile bins (labels 1 .. bins). Checked by contract (the zero bin,
  the label range), by balance (each bin holds ``n_nonzero / bins`` values, give or take ties) and by agreement
  with the reference on at least 98% of the samples (so rank-based binning, which may put a boundary value in
  the neighbouring bin, is as good as ``torch.quantile``).
* ``12.mutual_information`` ``mutual_information(a, b) -> (n_a, n_b)`` plug-in mutual information in nats;
  exact up to float rounding.
* ``12.mig`` ``mig(codes, factors, bins=20) -> 0-dim``: compared within 0.006 (rank-based binning, which puts
  boundary samples in the neighbouring bin, moves it by up to 0.0025 at the sizes used, 40 secrets measured).
* ``12.dci_disentanglement`` ``dci_disentanglement(importance (..., n_codes, n_factors)) -> (...)``; exact up to
  float rounding (rtol 1e-4).
* ``12.linear_cka`` ``linear_cka(X, Y) -> 0-dim``; exact up to float rounding (rtol 1e-4).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from autograder.exercises import Exercise
from autograder.framework import CheckFailed, call, expect, prop
from autograder.toolkit import as_parameter, describe, diagnose, fmt, fmt_pair, rotation, tensor_out
from autograder.toolkit.randomness import secret_gen, secret_seed
from supercourse import disentanglement as dis

from .mistakes import MISTAKES

LESSON = "12-disentanglement"
EXERCISES = {
    "discretize": Exercise(
        "discretize", "Histogram labels: zero in its own bin, quantile bins for the rest",
        reference=("supercourse.disentanglement.discretize",),
    ),
    "mutual_information": Exercise(
        "mutual_information", "Plug-in mutual information in nats",
        reference=("supercourse.disentanglement.mutual_information", "supercourse.disentanglement.entropy",
                   "supercourse.disentanglement._entropy_of_counts"),
    ),
    "mig": Exercise(
        "mig", "The mutual information gap",
        reference=("supercourse.disentanglement.mig", "supercourse.disentanglement.mig_per_factor"),
    ),
    "dci_disentanglement": Exercise(
        "dci_disentanglement", "DCI disentanglement from an importance matrix",
        reference=("supercourse.disentanglement.dci_disentanglement", "supercourse.disentanglement.dci"),
    ),
    "linear_cka": Exercise(
        "linear_cka", "Linear centred kernel alignment",
        reference=("supercourse.disentanglement.linear_cka",),
    ),
}

RTOL, ATOL = 1e-4, 1e-6
MIG_TOL = 6e-3
MIG_DIAGNOSIS = 2.5e-3
"""A learner's MIG within this of a known mistake's (a tenth of that below a MIG of 0.1, where mistakes crowd
together) is diagnosed as that mistake: binning alone moves it less."""
AGREEMENT = 0.98


def _int(salt: object, lo: int, hi: int) -> int:
    """A secret integer in ``[lo, hi]``."""
    return lo + secret_seed(salt) % (hi - lo + 1)


def _sparse(salt: object, n_samples: int, n_vars: int, lo: float = 0.03, hi: float = 0.4) -> torch.Tensor:
    """``(n_samples, n_vars)`` sparse factors, each column with its own secret density in ``[lo, hi]``."""
    g = secret_gen(salt)
    p = lo + (hi - lo) * torch.rand(n_vars, generator=g, dtype=torch.float64)
    on = torch.rand(n_samples, n_vars, generator=g, dtype=torch.float64) < p
    return torch.rand(n_samples, n_vars, generator=g, dtype=torch.float64) * on


def _number(out: Any, what: str) -> torch.Tensor:
    """A 0-dim tensor (or a Python float) as a float64 0-dim tensor; anything else fails with ``what``."""
    if isinstance(out, (float, int)) and not isinstance(out, bool):
        out = torch.tensor(float(out), dtype=torch.float64)
    expect(isinstance(out, torch.Tensor) and out.dim() == 0 and out.is_floating_point(),
           f"{what}: should return one number, a 0-dim float tensor, got {describe(out)}.")
    value = out.detach().double()
    expect(bool(torch.isfinite(value)), f"{what}: the value should be finite, got {value.item()}.")
    return value


# --------------------------------------------------------------------------- 12.discretize


def _labels(submission: Any, values: torch.Tensor, what: str, **kwargs: Any) -> torch.Tensor:
    out = call(submission, values.clone(), what="discretize", **kwargs)
    return tensor_out(out, what=what, shape=tuple(values.shape), meaning="(n_samples, n_vars)", kind="integer").long()


def _bins_ok(got: torch.Tensor, values: torch.Tensor, bins: int) -> str:
    """``""`` when ``got`` has a zero bin and balanced quantile bins per column, else what is wrong."""
    zero = values == 0
    if not torch.equal(got == 0, zero):
        j = int(torch.nonzero((got == 0) != zero)[0, 1])
        n_bad = int(((got == 0) != zero)[:, j].sum())
        return (f"column {j}: {n_bad} samples break the zero bin (label 0 must be given to exactly the values that are 0, "
                f"and to nothing else)")
    if bool((got < 0).any()) or bool((got > bins).any()):
        return f"labels must lie in 0 .. bins = {bins}, got labels from {int(got.min())} to {int(got.max())}"
    for j in range(values.shape[1]):
        nz = ~zero[:, j]
        n = int(nz.sum())
        if n == 0:
            continue
        counts = torch.bincount(got[nz, j], minlength=bins + 1)[1:]
        slack = max(2.0, 0.02 * n / bins)
        if bool(((counts.double() - n / bins).abs() > slack).any()):
            return (f"column {j}: the {n} non-zero values should fill the {bins} bins equally (about {n / bins:.1f} each: "
                    f"quantile bins), got counts {fmt(counts.tolist(), limit=12)}")
        order = values[nz, j].argsort()
        if bool((got[nz, j][order].diff() < 0).any()):
            return f"column {j}: a larger value got a smaller label (labels must grow with the value)"
    return ""


def _check_labels(got: torch.Tensor, values: torch.Tensor, bins: int, what: str, kwargs: dict) -> None:
    problem = _bins_ok(got, values, bins)
    want = dis.discretize(values, bins)
    agree = float((got == want).double().mean())
    if not problem and agree < AGREEMENT:
        problem = (f"your labels agree with quantile bins (edges at torch.quantile(non-zeros, k / bins)) on only "
                   f"{agree:.1%} of the samples")
    if problem:
        raise CheckFailed(f"{what}: {problem}.{diagnose(MISTAKES['discretize'], got, [values], kwargs)}")


@prop("discretize", points=1)
def test_discretize_zero_bin(submission):
    values = _sparse("values", 3000, 3)
    bins = _int("bins", 3, 9)
    got = _labels(submission, values, "Zero bin", bins=bins)
    zero = values == 0
    if not torch.equal(got == 0, zero) or bool((got < 0).any()) or bool((got > bins).any()):
        _check_labels(got, values, bins, f"Zero bin (bins = {bins})", {"bins": bins})


@prop("discretize", points=1.5)
def test_discretize_quantile_bins_per_column(submission):
    g = secret_gen("scales")
    values = _sparse("values", 4000, 4) * torch.tensor([1.0, 50.0, 0.01, 3.0], dtype=torch.float64)
    values = values + (values != 0) * torch.rand(4, generator=g, dtype=torch.float64) * 2  # shifted non-zeros
    bins = _int("bins", 5, 12)
    got = _labels(submission, values, "Quantile bins", bins=bins)
    _check_labels(got, values, bins, f"Quantile bins, each column on its own scale (bins = {bins})", {"bins": bins})


@prop("discretize", points=1)
def test_discretize_negative_values_and_the_bins_argument(submission):
    values = _sparse("values", 3000, 2)
    values[:, 1] = values[:, 1] - 0.5 * (values[:, 1] != 0)  # non-zeros on both sides of 0
    for bins in (_int("bins", 3, 8), _int("more bins", 10, 16)):
        got = _labels(submission, values, f"Negative values (bins = {bins})", bins=bins)
        _check_labels(got, values, bins, f"Negative values and bins = {bins}", {"bins": bins})
    got = _labels(submission, values, "Default bins")
    _check_labels(got, values, dis.BINS, "Default bins (bins left out: 20)", {})


@prop("discretize", points=0.5)
def test_discretize_edges(submission):
    values = _sparse("values", 500, 3).float()
    values[:, 1] = 0
    values[:, 2] = 0
    values[_int("where", 0, 499), 2] = 0.5
    bins = _int("bins", 2, 6)
    got = _labels(submission, values, "Edge cases (a column of zeros, a column with one non-zero)", bins=bins)
    expect(bool((got[:, 1] == 0).all()), "Edge cases: a column that is all zeros must be all label 0.")
    one = got[values[:, 2] != 0, 2]
    expect(bool(((one >= 1) & (one <= bins)).all()) and bool((got[values[:, 2] == 0, 2] == 0).all()),
           f"Edge cases: a column with a single non-zero value must give it a label in 1 .. {bins} and 0 elsewhere.")
    _check_labels(got, values.double(), bins, "Edge cases (float32 input)", {"bins": bins})


# --------------------------------------------------------------------------- 12.mutual_information


def _dependent_labels(salt: object, n: int, n_a: int, n_b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels ``a (n, n_a)``, ``b (n, n_b)`` with secret alphabets; some columns of ``b`` depend on ``a``."""
    g = secret_gen(salt)
    ka = [int(k) for k in torch.randint(2, 7, (n_a,), generator=g)]
    a = torch.stack([torch.randint(k, (n,), generator=g) for k in ka], dim=1)
    cols = []
    for j in range(n_b):
        kb = int(torch.randint(2, 6, (1,), generator=g))
        noise = torch.randint(kb, (n,), generator=g)
        keep = torch.rand(n, generator=g) < 0.3 + 0.2 * j
        cols.append(torch.where(keep, a[:, j % n_a] % kb, noise))
    return a, torch.stack(cols, dim=1)


def _mi(submission: Any, a: torch.Tensor, b: torch.Tensor, what: str) -> torch.Tensor:
    out = call(submission, a.clone(), b.clone(), what="mutual_information")
    shape = (a.shape[1], b.shape[1])
    hint = (lambda got: " Rows are a's columns, columns are b's: entry [i, j] = I(a_i; b_j)."
            if got == shape[::-1] else "")
    return tensor_out(out, what=what, shape=shape, meaning="(n_a, n_b)", kind="float", shape_hint=hint).double()


def _compare_mi(got: torch.Tensor, a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    want = dis.mutual_information(a, b)
    if torch.allclose(got, want, rtol=RTOL, atol=1e-6):
        return
    i, j = (int(v) for v in torch.nonzero(~torch.isclose(got, want, rtol=RTOL, atol=1e-6))[0])
    w, g = fmt_pair(want[i, j], got[i, j])
    raise CheckFailed(f"{what}: I(a_{i}; b_{j}) should be {w} nats, got {g}.{diagnose(MISTAKES['mutual_information'], got, [a, b], rtol=RTOL, atol=1e-6)}")


@prop("mutual_information", points=0.5)
def test_mutual_information_shape(submission):
    a, b = _dependent_labels("labels", 400, 3, 2)
    _mi(submission, a, b, "Shape (3 columns of a, 2 of b)")
    a, b = _dependent_labels("more labels", 300, 1, 4)
    _mi(submission, a, b, "Shape (1 column of a, 4 of b)")


@prop("mutual_information", points=1.5)
def test_mutual_information_values(submission):
    a, b = _dependent_labels("labels", 5000, 3, 4)
    got = _mi(submission, a, b, "Values")
    _compare_mi(got, a, b, "Values (labels with secret alphabets, b partly a copy of a)")


@prop("mutual_information", points=1)
def test_mutual_information_of_a_copy_is_the_entropy_in_nats(submission):
    g = secret_gen("uniform")
    k = _int("k", 3, 9)
    a = torch.randint(k, (20_000, 1), generator=g)
    got = _mi(submission, a, a.clone(), "A copy")
    want = dis.mutual_information(a, a)
    if not torch.allclose(got, want, rtol=RTOL, atol=1e-6):
        w, gv = fmt_pair(want[0, 0], got[0, 0])
        raise CheckFailed(
            f"A copy: I(a; a) = H(a), which for labels uniform over {k} values is about ln {k} = {math.log(k):.4f} nats; "
            f"expected {w}, got {gv}.{diagnose(MISTAKES['mutual_information'], got, [a, a.clone()], rtol=RTOL, atol=1e-6)}")


@prop("mutual_information", points=1)
def test_mutual_information_any_labels(submission):
    a, b = _dependent_labels("labels", 3000, 2, 3)
    g = secret_gen("relabel")
    a = a * int(torch.randint(3, 8, (1,), generator=g)) + int(torch.randint(0, 5, (1,), generator=g))  # gaps in the labels
    b = b.to(torch.int32)
    b[:, 2] = int(torch.randint(0, 4, (1,), generator=g))  # a constant column: no information
    got = _mi(submission, a, b, "Any labels (labels with gaps, int32, a constant column)")
    expect(bool((got[:, 2].abs() < 1e-9).all()),
           f"Any labels: a constant column carries no information, I = 0; got {fmt(got[:, 2])}.")
    _compare_mi(got, a, b.long(), "Any labels (labels with gaps, int32, a constant column)")


# --------------------------------------------------------------------------- 12.mig


def _mig(submission: Any, codes: torch.Tensor, factors: torch.Tensor, what: str, **kwargs: Any) -> torch.Tensor:
    out = call(submission, codes.clone(), factors.clone(), what="mig", **kwargs)
    value = _number(out, what)
    expect(-1e-9 <= float(value) <= 1 + 1e-9, f"{what}: MIG lies in [0, 1], got {float(value):.4g}.")
    return value


def _compare_mig(got: torch.Tensor, codes, factors, what: str, **kwargs: Any) -> None:
    want = dis.mig(codes, factors, **kwargs)
    if abs(float(got) - float(want)) <= MIG_TOL:
        return
    w, g = fmt_pair(want, got)
    hint = diagnose(MISTAKES["mig"], got, [codes, factors], kwargs,
                    same=lambda mine, theirs: abs(float(mine) - float(theirs)) <= MIG_DIAGNOSIS * min(1.0, 10 * abs(float(theirs))) + 1e-5)
    raise CheckFailed(f"{what}: expected MIG {w}, got {g}.{hint}")


def _pentagon_codes(salt: object, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Factors (n, 5) at density 0.05, a secretly rotated polygon W (2, 5) with jittered angles."""
    g = secret_gen(salt)
    v = dis.sparse_factors(n, 5, 0.05, g)
    angles = torch.arange(5, dtype=torch.float64) * 2 * math.pi / 5 + torch.rand(5, generator=g, dtype=torch.float64) * 0.3
    W = torch.stack([angles.cos(), angles.sin()])
    W = rotation(secret_seed((salt, "rot")), 2, torch.float64) @ W
    return v, W, dis.linear_code(v, W)


@prop("mig", points=0.5)
def test_mig_is_one_number_in_unit_range(submission):
    v = dis.sparse_factors(2000, 2, 0.1, secret_gen("factors"))
    R = rotation(secret_seed("rot"), 2, torch.float64)
    _mig(submission, dis.linear_code(v, R), v, "One number")
    _mig(submission, v[:, [1, 0]].clone(), v, "One number (a permuted identity code)")


@prop("mig", points=1.5)
def test_mig_values(submission):
    v, W, h = _pentagon_codes("pentagon", 8000)
    got = _mig(submission, h, v, "Values")
    _compare_mig(got, h, v, "Values (five factors in two dimensions, a secretly turned polygon)")
    z = dis.readout_code(v, W, -0.05 - 0.25 * torch.rand(1, generator=secret_gen("bias"), dtype=torch.float64))
    got = _mig(submission, z, v, "Values (a read-out)")
    _compare_mig(got, z, v, "Values (a read-out ReLU(W^T W x + b), five codes)")


@prop("mig", points=1)
def test_mig_normalised_by_the_entropy_of_each_factor(submission):
    # factors of very different densities (entropies) and codes that are sparser or denser than their factor
    v = _sparse("factors", 8000, 3, lo=0.05, hi=0.6)
    g = secret_gen("mix")
    M = torch.eye(3, dtype=torch.float64) + 0.4 * torch.rand(3, 3, generator=g, dtype=torch.float64)
    z = torch.relu(v @ M.T - 0.2)
    got = _mig(submission, z, v, "Normalisation")
    _compare_mig(got, z, v, "Normalisation (three factors of different densities, codes cut by a bias)")


@prop("mig", points=1)
def test_mig_zero_bin_and_bins(submission):
    v = dis.sparse_factors(12_000, 3, 0.05, secret_gen("factors"))
    R = torch.linalg.qr(torch.randn(3, 3, generator=secret_gen("mix"), dtype=torch.float64))[0]
    z = torch.cat([v[:, :1], dis.linear_code(v[:, 1:], R[:2, :2])], dim=1)
    got = _mig(submission, z, v, "Default bins")
    _compare_mig(got, z, v, "Sparse codes, default bins (20)")
    v5 = dis.sparse_factors(10_000, 5, 0.05, secret_gen("five"))
    h = dis.readout_code(v5, rotation(secret_seed("rot"), 2, torch.float64) @ dis.polygon(5), -0.1)
    bins = (4, 5, 7, 8)[_int("bins", 0, 3)]  # counts at which this read-out's MIG differs from 20 bins' by > 0.02
    got = _mig(submission, h, v5, f"bins = {bins}", bins=bins)
    _compare_mig(got, h, v5, f"A read-out, bins = {bins}", bins=bins)


# --------------------------------------------------------------------------- 12.dci_disentanglement


def _importance(salt: object, shape: tuple[int, ...], sparsity: float = 0.4) -> torch.Tensor:
    g = secret_gen(salt)
    R = torch.rand(shape, generator=g, dtype=torch.float64) ** 2
    return R * (torch.rand(shape, generator=g, dtype=torch.float64) > sparsity)


def _dci(submission: Any, R: torch.Tensor, what: str) -> torch.Tensor:
    out = call(submission, R.clone(), what="dci_disentanglement")
    lead = tuple(R.shape[:-2])
    if lead == ():
        return _number(out, what)
    hint = (lambda got: " Keep the leading (instance) dimensions: one score per matrix, "
            "computed over the last two dimensions (codes, factors)." if got in ((), (1,)) else "")
    return tensor_out(out, what=what, shape=lead, meaning="(the leading dimensions of importance)", kind="float",
                      shape_hint=hint).double()


def _compare_dci(got: torch.Tensor, R: torch.Tensor, what: str) -> None:
    want = dis.dci_disentanglement(R)
    if torch.allclose(got, want, rtol=RTOL, atol=ATOL):
        return
    w, g = fmt_pair(want.flatten()[:4], got.flatten()[:4])
    raise CheckFailed(f"{what}: expected {w}, got {g}.{diagnose(MISTAKES['dci_disentanglement'], got, [R], rtol=RTOL, atol=ATOL)}")


@prop("dci_disentanglement", points=1)
def test_dci_shapes_and_leading_dimensions(submission):
    c, k = _int("codes", 2, 6), _int("factors", 2, 6)
    _dci(submission, _importance("one", (c, k)), f"Shape ({c} codes x {k} factors: one number)")
    for lead in ((3,), (2, 3)):
        R = _importance(("batch", lead), (*lead, c, k))
        got = _dci(submission, R, f"Leading dimensions {lead}")
        _compare_dci(got, R, f"Leading dimensions {lead} (one matrix each)")


@prop("dci_disentanglement", points=1.5)
def test_dci_values(submission):
    c, k = _int("codes", 3, 7), _int("factors", 2, 5)
    R = _importance("values", (c, k))
    got = _dci(submission, R, "Values")
    _compare_dci(got, R, f"Values (a random {c} x {k} importance matrix)")


@prop("dci_disentanglement", points=1)
def test_dci_entropy_in_base_k(submission):
    k = _int("factors", 3, 7)
    g = secret_gen("perm")
    perm = torch.eye(k, dtype=torch.float64)[torch.randperm(k, generator=g)] * (0.5 + torch.rand(k, 1, generator=g, dtype=torch.float64))
    even = torch.ones(2, k, dtype=torch.float64) * (0.5 + torch.rand(2, 1, generator=g, dtype=torch.float64))
    mixed = _importance("mixed", (k + 1, k))
    for R, text in ((perm, "one factor per code: 1"), (even, "every code spread evenly: 0"), (mixed, "a random matrix")):
        got = _dci(submission, R, f"Base K = {k}")
        want = dis.dci_disentanglement(R)
        if not torch.allclose(got, want, rtol=RTOL, atol=ATOL):
            w, gv = fmt_pair(want, got)
            raise CheckFailed(
                f"Base K = {k} factors ({text}): expected {w}, got {gv}. The entropy of each code's distribution over "
                f"the factors is taken in base K, so that it lies in [0, 1].{diagnose(MISTAKES['dci_disentanglement'], got, [R], rtol=RTOL, atol=ATOL)}")


@prop("dci_disentanglement", points=0.5)
def test_dci_codes_with_zero_importance(submission):
    c, k = _int("codes", 3, 6), _int("factors", 2, 5)
    R = _importance("zero rows", (c, k))
    R[_int("row", 0, c - 1)] = 0
    got = _dci(submission, R, "A code with zero importance (an all-zero row): the value")
    _compare_dci(got, R, "A code with zero importance (an all-zero row) has weight 0 and must not make NaN")
    got = _dci(submission, torch.zeros(c, k, dtype=torch.float64), "No importance at all (an all-zero matrix)")
    expect(abs(float(got)) < 1e-9, f"No importance at all (zero importance everywhere) scores 0, got {float(got):.4g}.")


# --------------------------------------------------------------------------- 12.linear_cka


def _cka(submission: Any, X: torch.Tensor, Y: torch.Tensor, what: str) -> torch.Tensor:
    out = call(submission, X, Y, what="linear_cka")
    value = _number(out, what)
    if not -1e-9 <= float(value) <= 1 + 1e-6:
        hint = diagnose(MISTAKES["linear_cka"], value, [X.detach(), Y.detach()], rtol=RTOL, atol=1e-7)
        raise CheckFailed(f"{what}: linear CKA lies in [0, 1], got {float(value):.4g}.{hint}")
    return value


def _compare_cka(got: torch.Tensor, X: torch.Tensor, Y: torch.Tensor, what: str) -> None:
    want = dis.linear_cka(X, Y)
    if abs(float(got) - float(want)) <= RTOL * abs(float(want)) + 1e-7:
        return
    w, g = fmt_pair(want, got)
    hint = diagnose(MISTAKES["linear_cka"], got, [X.detach(), Y.detach()], rtol=RTOL, atol=1e-7)
    raise CheckFailed(f"{what}: expected {w}, got {g}.{hint}")


def _pair(salt: object, n: int, d_x: int, d_y: int, noise: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    g = secret_gen(salt)
    X = torch.randn(n, d_x, generator=g, dtype=torch.float64)
    Y = X @ torch.randn(d_x, d_y, generator=g, dtype=torch.float64) + noise * torch.randn(n, d_y, generator=g, dtype=torch.float64)
    return X, Y


@prop("linear_cka", points=1)
def test_cka_of_a_rotated_and_scaled_copy_is_one(submission):
    X, _ = _pair("X", 300, 4, 3)
    Q = rotation(secret_seed("rot"), 4, torch.float64)
    scale = 0.1 + 10 * float(torch.rand(1, generator=secret_gen("scale")))
    got = _cka(submission, X, scale * X @ Q, "A rotated, scaled copy")
    expect(abs(float(got) - 1) < 1e-6,
           f"A rotated, scaled copy: CKA(X, s X Q) = 1 for any rotation Q and scale s > 0, got {float(got):.6g}."
           f"{diagnose(MISTAKES['linear_cka'], got, [X, scale * X @ Q], rtol=RTOL, atol=1e-7)}")


@prop("linear_cka", points=1.5)
def test_cka_values(submission):
    d_x, d_y = _int("dx", 2, 6), _int("dy", 2, 6)
    X, Y = _pair("pair", 400, d_x, d_y)
    got = _cka(submission, X, Y, "Values")
    _compare_cka(got, X, Y, f"Values (X: 400 x {d_x}, Y: 400 x {d_y}, Y a noisy linear map of X)")
    v = dis.sparse_factors(400, 30, 0.1, secret_gen("sparse"))
    maps = torch.randn(2, 8, 30, generator=secret_gen("maps"), dtype=torch.float64)
    A, B = v @ maps[0].T, v @ maps[1].T
    got = _cka(submission, A, B, "Values (two random maps of sparse features)")
    _compare_cka(got, A, B, "Values (two random 30 -> 8 maps of the same sparse features)")


@prop("linear_cka", points=1)
def test_cka_centres_and_normalises(submission):
    X, Y = _pair("pair", 300, 3, 5)
    g = secret_gen("offsets")
    Xs = X * (5 + 20 * torch.rand(1, generator=g, dtype=torch.float64)) + 10 * torch.randn(3, generator=g, dtype=torch.float64)
    Ys = Y + 10 * torch.randn(5, generator=g, dtype=torch.float64)
    got = _cka(submission, Xs, Ys, "Offsets and scale")
    _compare_cka(got, Xs, Ys, "Offsets and scale (X scaled and both shifted: CKA must not change)")


@prop("linear_cka", points=0.5)
def test_cka_edges_and_inputs(submission):
    X, Y = _pair("pair", 256, 3, 2)
    # a dyadic value repeated 256 times: its mean is exact, so centring gives exactly 0
    const = torch.full((256, 2), 0.5 + _int("c", 1, 64) / 64, dtype=torch.float64)
    got = call(submission, X, const, what="linear_cka")
    expect(isinstance(got, (torch.Tensor, float)) and math.isfinite(float(got)) and abs(float(got)) < 1e-9,
           f"A constant representation (every sample the same) has nothing to align: CKA should be 0, not NaN; "
           f"got {got!r}. Guard the division when a Gram matrix is zero.")
    for label, transform in (("float32 input", lambda t: t.float()), ("nn.Parameter input (requires_grad)", as_parameter)):
        got = _cka(submission, transform(X), transform(Y), f"Inputs ({label})")
        _compare_cka(got, X, Y, f"Inputs ({label})")
