"""Disentanglement and similarity under superposition: the metrics, the codes they are tested on, two studies.

**Metrics.** A *code* ``z: (n_samples, n_codes)`` is compared with the *factors*
``v: (n_samples, n_factors)`` that made the data:

* :func:`mig`, the mutual information gap (Chen et al. 2018): for each factor,
  the gap between the two codes that know most about it, in units of the
  factor's entropy. Mutual information is estimated from histograms
  (:func:`discretize`): sparse values are exactly zero most of the time, so
  zero gets a bin of its own and the non-zeros share :data:`BINS` quantile bins;
* :func:`dci_disentanglement` (Eastwood & Williams 2018), from an importance
  matrix ``R: (n_codes, n_factors)``; :func:`probe_importance` fits the linear
  probe (least squares, or a lasso) whose coefficients make ``R``;
* :func:`linear_cka` (Kornblith et al. 2019), the similarity of two
  representations of the same inputs, and :func:`mean_max_correlation`, a
  unit-by-unit alternative.

**Codes** (:func:`code_suite`): the factors themselves, the same code rotated,
the toy model's pentagon ``h = W x`` (five factors in two dimensions) and an
SAE-like read-out ``ReLU(W^T h + b)`` with the true directions.

**Similarity under superposition** (:func:`similarity_study`): two networks
see the same sparse features through different random maps; their hidden
layers look dissimilar to CKA, and SAEs trained on each (:mod:`supercourse.sae`)
bring back much of the shared content.

**A generative model's latent space** (:class:`LatentVAE`, :func:`latent_study`):
instanced VAEs and autoencoders with fewer latent dimensions than factors,
trained on observations made by a fixed random map (:class:`ObservationMap`),
measured with the course's own tools (factor directions, feature
dimensionality, MIG, SAE recovery); and the rotation invariance of the
beta-VAE objective with an isotropic Gaussian prior (:func:`rotated_objective`).

Shapes: samples first for codes and factors; models keep the instance dimension
first for parameters and second for batches, ``(batch, n_instances, ...)``.
Every metric returns float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Literal

import torch
from torch import nn

from . import metrics
from . import sae as sae_lib
from ._validate import check_positive_int, check_probability, check_tensor
from .data import sparse_uniform
from .instanced import InstancedModel

__all__ = [
    "BINS",
    "DENSITY",
    "sparse_factors",
    "discretize",
    "entropy",
    "mutual_information",
    "mig_per_factor",
    "mig",
    "probe_importance",
    "dci_disentanglement",
    "dci",
    "linear_cka",
    "mean_max_correlation",
    "polygon",
    "rotation_2d",
    "random_rotation",
    "linear_code",
    "readout_code",
    "Code",
    "code_suite",
    "READOUT_BIASES",
    "random_maps",
    "SimilarityResult",
    "similarity_study",
    "ObservationMap",
    "observation_map",
    "LatentVAE",
    "factor_directions",
    "factor_fvu",
    "LatentResult",
    "latent_study",
    "rotated_objective",
]

BINS = 20
"""Quantile bins for the non-zero values in :func:`discretize` (zero has a bin of its own)."""

DENSITY = 0.05
"""The factors' density in the lesson's codes: ``x_i = Bernoulli(0.05) * U[0, 1]``."""

_EPS = 1e-12


# --------------------------------------------------------------------------- factors


def sparse_factors(
    n_samples: int, n_factors: int, density: float = DENSITY, generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Independent sparse factors ``v_i = Bernoulli(density) * U[0, 1]``: ``(n_samples, n_factors)``.

    The course's data (:func:`supercourse.data.sparse_uniform`) with one instance, in ``dtype``.
    """
    n_samples = check_positive_int("n_samples", n_samples)
    n_factors = check_positive_int("n_factors", n_factors)
    p = check_probability("density", torch.full((1, n_factors), float(density), dtype=dtype))
    return sparse_uniform(n_samples, p, generator=generator)[:, 0, :]


# --------------------------------------------------------------------------- mutual information


def _check_samples(name: str, value: object, n_samples: int | None = None, floating: bool = True) -> torch.Tensor:
    t = check_tensor(name, value, shape=(n_samples, None), names=("n_samples", f"n_{name}"), floating=floating)
    if t.shape[0] < 2:
        raise ValueError(f"{name} must have at least 2 samples, got {t.shape[0]}")
    return t.detach()


def discretize(values: torch.Tensor, bins: int = BINS) -> torch.Tensor:
    """Histogram labels for sparse values: zero in a bin of its own, the non-zeros in quantile bins.

    Each column is binned on its own. Label 0 is exactly zero; the non-zero values
    of a column get labels ``1 .. bins`` by where they fall among the edges at the
    quantiles ``1/bins, ..., (bins-1)/bins`` of that column's non-zero values
    (``torch.quantile``): label ``1 + #{edges <= value}``. Negative values are
    non-zero like any other.

    Args:
        values: ``(n_samples, n_vars)`` floats.
        bins: quantile bins for the non-zeros.

    Returns:
        ``(n_samples, n_vars)`` int64 labels in ``[0, bins]``.
    """
    values = _check_samples("values", values)
    bins = check_positive_int("bins", bins)
    v = values.double()
    out = torch.zeros(v.shape, dtype=torch.long, device=v.device)
    q = torch.arange(1, bins, dtype=torch.float64, device=v.device) / bins
    for j in range(v.shape[1]):
        nz = v[:, j] != 0
        if not bool(nz.any()):
            continue
        vals = v[nz, j]
        edges = torch.quantile(vals, q) if bins > 1 else vals.new_empty(0)
        out[nz, j] = torch.bucketize(vals, edges, right=True) + 1
    return out


def _check_labels(name: str, labels: object, n_samples: int | None = None) -> torch.Tensor:
    t = _check_samples(name, labels, n_samples, floating=False)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer labels, got dtype {t.dtype}")
    if bool((t < 0).any()):
        raise ValueError(f"{name} must hold labels >= 0, got {int(t.min())}")
    return t.long()


def _entropy_of_counts(counts: torch.Tensor) -> torch.Tensor:
    """Plug-in entropy in nats of each row of ``counts (..., n_cells)``."""
    counts = counts.double()
    p = counts / counts.sum(dim=-1, keepdim=True).clamp_min(1)
    return -(p * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum(dim=-1)


def entropy(labels: torch.Tensor) -> torch.Tensor:
    """Plug-in entropy in nats of each column: ``labels (n_samples, n_vars)`` int -> ``(n_vars,)`` float64."""
    labels = _check_labels("labels", labels)
    return torch.stack([_entropy_of_counts(torch.bincount(labels[:, j])) for j in range(labels.shape[1])])


def mutual_information(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Plug-in mutual information in nats between every column of ``a`` and every column of ``b``.

    ``I(a_i; b_j) = H(a_i) + H(b_j) - H(a_i, b_j)``, each entropy from the
    empirical frequencies of the labels (natural log).

    Args:
        a: ``(n_samples, n_a)`` integer labels >= 0 (e.g. :func:`discretize` of a code).
        b: ``(n_samples, n_b)`` integer labels >= 0, the same samples.

    Returns:
        ``(n_a, n_b)`` float64, entry ``[i, j] = I(a_i; b_j)``.
    """
    a = _check_labels("a", a)
    b = _check_labels("b", b, a.shape[0])
    n_b = b.shape[1]
    ka, kb = int(a.max()) + 1, int(b.max()) + 1
    h_a = entropy(a)
    h_b = entropy(b)
    offsets = torch.arange(n_b, device=b.device) * (ka * kb)
    out = torch.empty(a.shape[1], n_b, dtype=torch.float64, device=a.device)
    for i in range(a.shape[1]):
        joint = (a[:, i, None] * kb + b + offsets).flatten()
        counts = torch.bincount(joint, minlength=n_b * ka * kb).reshape(n_b, ka * kb)
        out[i] = h_a[i] + h_b - _entropy_of_counts(counts)
    return out.clamp_min(0.0)


def mig_per_factor(codes: torch.Tensor, factors: torch.Tensor, bins: int = BINS) -> torch.Tensor:
    """Each factor's mutual information gap: ``(n_factors,)`` float64.

    For factor ``k`` with the codes' mutual informations sorted,
    ``I_(1) >= I_(2) >= ...``: ``(I_(1) - I_(2)) / H(v_k)``, codes and factors
    discretized alike (:func:`discretize`). A constant factor (no entropy) gets 0.

    Args:
        codes: ``(n_samples, n_codes)``, at least two codes.
        factors: ``(n_samples, n_factors)``.
        bins: quantile bins of the non-zero values.
    """
    codes = _check_samples("codes", codes)
    factors = _check_samples("factors", factors, codes.shape[0])
    if codes.shape[1] < 2:
        raise ValueError(f"codes must have at least 2 columns (a gap needs two codes), got {codes.shape[1]}")
    zc, zf = discretize(codes, bins), discretize(factors, bins)
    info = mutual_information(zc, zf)  # (n_codes, n_factors)
    top = info.topk(2, dim=0).values  # (2, n_factors)
    h = entropy(zf)
    return torch.where(h > _EPS, (top[0] - top[1]) / h.clamp_min(_EPS), torch.zeros_like(h))


def mig(codes: torch.Tensor, factors: torch.Tensor, bins: int = BINS) -> torch.Tensor:
    """The mutual information gap (Chen et al. 2018): the mean over factors of :func:`mig_per_factor`.

    ``codes: (n_samples, n_codes)``, ``factors: (n_samples, n_factors)`` -> 0-dim float64 in [0, 1]:
    1 when every factor is known to one code alone, 0 when its two best codes know it equally.
    """
    return mig_per_factor(codes, factors, bins).mean()


# --------------------------------------------------------------------------- DCI


def _lasso(X: torch.Tensor, y: torch.Tensor, alpha: float, iterations: int = 2000, tol: float = 1e-10) -> torch.Tensor:
    """Coordinate descent for ``min (1/2N) ||y - X beta||^2 + alpha ||beta||_1`` on centred ``X (N, d)``, ``y (N, k)``."""
    n = X.shape[0]
    col_sq = X.square().sum(dim=0) / n  # (d,)
    beta = torch.zeros(X.shape[1], y.shape[1], dtype=X.dtype, device=X.device)
    residual = y.clone()
    for _ in range(iterations):
        largest = 0.0
        for j in range(X.shape[1]):
            if col_sq[j] <= 0:
                continue
            old = beta[j].clone()
            rho = X[:, j] @ residual / n + col_sq[j] * old
            new = torch.sign(rho) * (rho.abs() - alpha).clamp_min(0) / col_sq[j]
            residual -= X[:, j, None] * (new - old)[None, :]
            beta[j] = new
            largest = max(largest, float((new - old).abs().max()))
        if largest < tol:
            break
    return beta


def probe_importance(codes: torch.Tensor, factors: torch.Tensor, l1: float = 0.0) -> torch.Tensor:
    """The importance matrix of a linear probe predicting every factor from the codes: ``(n_codes, n_factors)``.

    ``R[j, k] = |beta_jk|``, the coefficients of the probe ``v_k ~ sum_j beta_jk z_j + c_k``:
    least squares (``l1 = 0``), or a lasso minimising ``(1/2N) ||v_k - Z beta_k - c_k||^2 + l1 ||beta_k||_1``
    (the codes as given, not standardised). A linear probe reads a linear code
    exactly; the lasso credits only the codes a factor cannot do without.

    Args:
        codes: ``(n_samples, n_codes)``; factors: ``(n_samples, n_factors)``.
        l1: the lasso's penalty (>= 0).
    """
    codes = _check_samples("codes", codes).double()
    factors = _check_samples("factors", factors, codes.shape[0]).double()
    if not l1 >= 0:
        raise ValueError(f"l1 must be >= 0, got {l1!r}")
    Z = codes - codes.mean(dim=0)
    V = factors - factors.mean(dim=0)
    if l1 == 0:
        beta = torch.linalg.lstsq(Z, V, driver="gelsd" if Z.device.type == "cpu" else None).solution
    else:
        beta = _lasso(Z, V, float(l1))
    return beta.abs()


def dci_disentanglement(importance: torch.Tensor) -> torch.Tensor:
    """DCI disentanglement from an importance matrix (Eastwood & Williams 2018).

    With ``R = importance`` and ``K = n_factors``: each code ``j`` spreads its importance
    over the factors as ``P_jk = R_jk / sum_k R_jk``; its disentanglement is
    ``D_j = 1 - H_K(P_j)`` with the entropy in base ``K`` (so ``D_j`` is 1 for a code
    that matters to one factor, 0 for one that matters to all equally), and the
    score is the average of ``D_j`` weighted by each code's share of the total
    importance, ``rho_j = sum_k R_jk / sum_jk R_jk``. A code with no importance
    (a zero row) has weight 0; an all-zero matrix scores 0.

    Args:
        importance: ``(..., n_codes, n_factors)`` non-negative, at least 2 factors;
            leading dimensions (instances) are kept.

    Returns:
        ``(...)`` float64.
    """
    R = check_tensor("importance", importance).detach()
    if R.dim() < 2:
        raise ValueError(f"importance must have shape (..., n_codes, n_factors), got {tuple(R.shape)}")
    if R.shape[-1] < 2:
        raise ValueError(f"importance must have at least 2 factors (columns), got {R.shape[-1]}")
    if not bool(torch.isfinite(R).all()) or bool((R < 0).any()):
        raise ValueError("importance must be finite and >= 0")
    R = R.double()
    rows = R.sum(dim=-1)  # (..., n_codes)
    P = R / rows[..., None].clamp_min(_EPS)
    H = -(P * torch.where(P > 0, P.log(), torch.zeros_like(P))).sum(dim=-1) / math.log(R.shape[-1])
    rho = rows / rows.sum(dim=-1, keepdim=True).clamp_min(_EPS)
    return (rho * (1 - H)).sum(dim=-1)


def dci(codes: torch.Tensor, factors: torch.Tensor, l1: float = 0.0) -> torch.Tensor:
    """DCI disentanglement of ``codes`` against ``factors`` with a linear probe (:func:`probe_importance`): 0-dim float64."""
    return dci_disentanglement(probe_importance(codes, factors, l1))


# --------------------------------------------------------------------------- similarity


def linear_cka(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """Linear centred kernel alignment of two representations of the same samples (Kornblith et al. 2019).

    With ``X`` and ``Y`` centred (each column's mean over samples removed), and
    ``K = X X^T``, ``L = Y Y^T`` their Gram matrices over samples::

        CKA = <K, L>_F / (||K||_F ||L||_F) = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)

    1 for representations that differ by a rotation and an overall scale; 0 when
    either is constant (no NaN).

    Args:
        X: ``(n_samples, d_x)``; Y: ``(n_samples, d_y)``, row ``s`` of both from input ``s``.

    Returns:
        0-dim float64 in [0, 1].
    """
    X = _check_samples("X", X).double()
    Y = _check_samples("Y", Y, X.shape[0]).double()
    X = X - X.mean(dim=0)
    Y = Y - Y.mean(dim=0)
    cross = (Y.mT @ X).square().sum()
    norm = torch.linalg.matrix_norm(X.mT @ X) * torch.linalg.matrix_norm(Y.mT @ Y)
    return torch.where(norm > _EPS, cross / norm.clamp_min(_EPS), torch.zeros_like(norm))


def mean_max_correlation(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """For each unit of ``X`` that varies, its largest Pearson correlation with a unit of ``Y``; their mean.

    ``X: (n_samples, d_x)``, ``Y: (n_samples, d_y)`` -> 0-dim float64. Unlike CKA
    it looks for a partner unit by unit, so it rewards two codes whose units
    match one to one (a permutation), not codes that only span the same space.
    """
    X = _check_samples("X", X).double()
    Y = _check_samples("Y", Y, X.shape[0]).double()
    X = X - X.mean(dim=0)
    Y = Y - Y.mean(dim=0)
    nx, ny = X.norm(dim=0), Y.norm(dim=0)
    live = nx > _EPS
    if not bool(live.any()):
        return torch.zeros((), dtype=torch.float64)
    C = (X / nx.clamp_min(_EPS)).mT @ (Y / ny.clamp_min(_EPS))
    return C.max(dim=1).values[live].mean()


# --------------------------------------------------------------------------- codes


def polygon(n_vertices: int, angle: float = 0.0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Unit vectors at ``angle + 2 pi k / n_vertices``: ``(2, n_vertices)``; ``polygon(5)`` is the toy model's pentagon."""
    n_vertices = check_positive_int("n_vertices", n_vertices)
    a = float(angle) + 2 * math.pi * torch.arange(n_vertices, dtype=torch.float64) / n_vertices
    return torch.stack([a.cos(), a.sin()]).to(dtype)


def rotation_2d(angle: float, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The ``(2, 2)`` rotation by ``angle`` radians (counter-clockwise)."""
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, -s], [s, c]], dtype=dtype)


def random_rotation(d: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A random ``(d, d)`` rotation (Haar measure, determinant +1)."""
    d = check_positive_int("d", d)
    q, r = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    if torch.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q.to(dtype)


def linear_code(factors: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """``h = W x`` for every sample: ``factors (n_samples, n)``, ``W (m, n)`` -> ``(n_samples, m)``."""
    factors = _check_samples("factors", factors)
    W = check_tensor("W", W, shape=(None, factors.shape[1]), names=("m", "n_factors"))
    return factors @ W.to(factors.dtype).mT


def readout_code(factors: torch.Tensor, W: torch.Tensor, bias: float | torch.Tensor) -> torch.Tensor:
    """An SAE-like read-out with the true directions, ``ReLU(W^T W x + b)``: ``(n_samples, n)``.

    ``factors (n_samples, n)``, ``W (m, n)``, ``bias`` a float or ``(n,)``. The
    read-out's latent ``i`` is ``ReLU(x_i ||W_i||^2 + sum_{j != i} (W_i . W_j) x_j + b_i)``:
    feature ``i`` plus the interference of the others, cut by the bias.
    """
    h = linear_code(factors, W)
    return torch.relu(h @ W.to(h.dtype) + torch.as_tensor(bias, dtype=h.dtype, device=h.device))


READOUT_BIASES: tuple[float, ...] = (0.0, -0.1, -0.2, -0.31)
"""The read-out biases of the lesson: -0.31 just filters the pentagon's neighbours, whose interference is at most cos 72 deg = 0.309."""


@dataclass(frozen=True)
class Code:
    """One code of :func:`code_suite`.

    Attributes:
        name: what it is, e.g. ``"rotated 45°"``.
        codes: ``(n_samples, n_codes)``; factors: ``(n_samples, n_factors)``, the same samples.
        W: ``(n_codes, n_factors)`` the linear map from factors to codes (``None`` for a non-linear code).
    """

    name: str
    codes: torch.Tensor
    factors: torch.Tensor
    W: torch.Tensor | None = None

    @property
    def mean_dimensionality(self) -> float:
        """The mean feature dimensionality ``D_i`` of the map's columns (:func:`supercourse.metrics.feature_dimensionality`), ``nan`` without ``W``."""
        if self.W is None:
            return float("nan")
        return float(metrics.feature_dimensionality(self.W[None].float())[0].mean())


def code_suite(n_samples: int = 200_000, seed: int = 0, density: float = DENSITY,
               biases: tuple[float, ...] = READOUT_BIASES) -> list[Code]:
    """The lesson's codes, on fresh factors ``Bernoulli(density) * U[0, 1]`` (float64):

    * ``identity``: two factors as they are (``n = m = 2``);
    * ``rotated 45°``: the same two factors rotated (a distributed code, not superposed);
    * ``pentagon``: five factors in two dimensions, ``h = W x`` with ``W = polygon(5)``;
    * ``read-out b=...``: ``ReLU(W^T h + b)`` for each bias in ``biases``.
    """
    gen = torch.Generator().manual_seed(seed)
    two = sparse_factors(n_samples, 2, density, gen)
    five = sparse_factors(n_samples, 5, density, gen)
    R = rotation_2d(math.pi / 4)
    W = polygon(5)
    suite = [
        Code("identity", two.clone(), two, torch.eye(2, dtype=torch.float64)),
        Code("rotated 45°", linear_code(two, R), two, R),
        Code("pentagon", linear_code(five, W), five, W),
    ]
    suite += [Code(f"read-out b={b:g}", readout_code(five, W, b), five) for b in biases]
    return suite


# --------------------------------------------------------------------------- two networks, one set of features


def random_maps(n_features: int, n_hidden: int, n_networks: int = 2, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random maps from features to hidden layers, unit columns: ``(n_networks, n_hidden, n_features)``.

    Column ``[k, :, i]`` is feature ``i``'s direction in network ``k`` (Gaussian, normalised):
    networks that hold the same features in different superposition arrangements.
    """
    n_features, n_hidden, n_networks = (check_positive_int(k, v) for k, v in
                                        (("n_features", n_features), ("n_hidden", n_hidden), ("n_networks", n_networks)))
    M = torch.randn(n_networks, n_hidden, n_features, generator=generator)
    return M / M.norm(dim=1, keepdim=True).clamp_min(_EPS)


@dataclass
class SimilarityResult:
    """What :func:`similarity_study` returns (everything on the CPU).

    Attributes:
        x: ``(n_samples, n_features)`` the shared features of the evaluation inputs.
        maps: ``(2, n_hidden, n_features)`` each network's feature directions.
        h: ``(n_samples, 2, n_hidden)`` each network's hidden layer on those inputs.
        rotation: ``(n_hidden, n_hidden)`` a random rotation (``h[:, 0] @ rotation.T`` is network A rotated).
        sae: the SAEs, one instance per network, trained on ``h``.
        f: ``(n_samples, 2, d_sae)`` the SAEs' latents on the evaluation inputs.
        mmcs: ``(2,)`` each SAE's recovery of its network's feature directions.
    """

    x: torch.Tensor
    maps: torch.Tensor
    h: torch.Tensor
    rotation: torch.Tensor
    sae: sae_lib.SparseAutoencoder
    f: torch.Tensor
    mmcs: torch.Tensor
    seconds: float = 0.0

    def scores(self, cka: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = linear_cka,
               mmc: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = mean_max_correlation) -> dict[str, float]:
        """Similarities of the hidden layers and of the SAE latents (``cka`` may be a learner's own function)."""
        hA, hB, fA, fB = self.h[:, 0], self.h[:, 1], self.f[:, 0], self.f[:, 1]
        return {
            "cka_hidden": float(cka(hA, hB)),
            "cka_rotation": float(cka(hA, hA @ self.rotation.mT)),
            "cka_features_hidden": float(cka(self.x, hA)),
            "cka_sae": float(cka(fA, fB)),
            "cka_features_sae": float(cka(self.x, fA)),
            "mmc_hidden": float(mmc(hA, hB)),
            "mmc_sae": float(mmc(fA, fB)),
            "mmcs_a": float(self.mmcs[0]),
            "mmcs_b": float(self.mmcs[1]),
        }


def similarity_study(
    n_features: int = 100, n_hidden: int = 20, density: float = 0.02, seed: int = 0, n_samples: int = 20_000,
    d_sae: int = 100, k: int | None = 2, l1_coeff: float = 0.02, sae_steps: int = 4000, batch_size: int = 256,
    device: str | torch.device = "cpu", progress: bool = False,
) -> SimilarityResult:
    """Two networks see the same sparse features through different random maps; SAEs on each hidden layer.

    The features ``x (n_samples, n_features)`` are ``Bernoulli(density) * U[0, 1]``; network ``k``'s
    hidden layer is ``h_k = M_k x`` with ``M = random_maps(...)``. One
    :class:`~supercourse.sae.SparseAutoencoder` with an instance per network
    (TopK with ``k`` latents, or L1 with ``l1_coeff`` when ``k`` is None) is
    trained on the pairs ``(h_A, h_B)`` of the same inputs and read on fresh ones.
    """
    import time

    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    maps = random_maps(n_features, n_hidden, 2, gen)
    p = torch.full((1, n_features), float(density))
    train_x = sparse_uniform(4 * n_samples, p, generator=gen)  # (N, 1, n)
    x = sparse_uniform(n_samples, p, generator=gen)[:, 0]
    h_train = sae_lib.hidden_dataset(maps, train_x.expand(-1, 2, -1))  # (N, 2, m)
    h = sae_lib.hidden_dataset(maps, x[:, None, :].expand(-1, 2, -1))
    sae = sae_lib.SparseAutoencoder(n_hidden, d_sae, 2, l1_coeff=0.0 if k is not None else l1_coeff, k=k, seed=seed + 1)
    sae.to(device)
    sae_lib.train_sae(sae, h_train.to(device), steps=sae_steps, batch_size=batch_size, seed=seed + 2, progress=progress)
    sae.cpu()
    with torch.no_grad():
        _, f, _ = sae(h)
    mmcs = sae_lib.mmcs(maps, sae.W_d.detach())
    return SimilarityResult(x=x, maps=maps, h=h, rotation=random_rotation(n_hidden, gen, torch.float32), sae=sae,
                            f=f.detach(), mmcs=mmcs, seconds=time.perf_counter() - start)


# --------------------------------------------------------------------------- a generative model's latent space


@dataclass(frozen=True)
class ObservationMap:
    """A fixed random generator of observations from factors: ``obs = tanh(v M^T + c)``.

    Attributes:
        M: ``(d_obs, n_factors)``; c: ``(d_obs,)``.
    """

    M: torch.Tensor
    c: torch.Tensor

    @property
    def n_factors(self) -> int:
        return self.M.shape[1]

    @property
    def d_obs(self) -> int:
        return self.M.shape[0]

    def __call__(self, factors: torch.Tensor) -> torch.Tensor:
        """``factors (..., n_factors)`` -> observations ``(..., d_obs)``."""
        check_tensor("factors", factors)
        if factors.shape[-1] != self.n_factors:
            raise ValueError(f"factors must have n_factors={self.n_factors} in the last dimension, got {tuple(factors.shape)}")
        M, c = self.M.to(factors), self.c.to(factors)
        return torch.tanh(factors @ M.mT + c)


def observation_map(n_factors: int = 5, d_obs: int = 16, scale: float = 1.5, seed: int = 0) -> ObservationMap:
    """A random :class:`ObservationMap`: ``M`` Gaussian times ``scale`` (the tanh bends), ``c`` Gaussian times 0.3."""
    n_factors, d_obs = check_positive_int("n_factors", n_factors), check_positive_int("d_obs", d_obs)
    gen = torch.Generator().manual_seed(10_007 + seed)
    return ObservationMap(M=scale * torch.randn(d_obs, n_factors, generator=gen), c=0.3 * torch.randn(d_obs, generator=gen))


def _linear_init(n: int, fan_out: int, fan_in: int, gen: torch.Generator) -> tuple[nn.Parameter, nn.Parameter]:
    bound = 1 / math.sqrt(fan_in)
    W = (torch.rand(n, fan_out, fan_in, generator=gen) * 2 - 1) * bound
    b = (torch.rand(n, fan_out, generator=gen) * 2 - 1) * bound
    return nn.Parameter(W), nn.Parameter(b)


class LatentVAE(InstancedModel):
    """Many small VAEs (and autoencoders) at once, on observations of sparse factors.

    Encoder ``obs -> ReLU layer of width hidden -> (mu, log sigma^2)`` of
    ``d_latent`` dimensions; decoder ``z -> ReLU layer of width hidden -> obs``. Instance ``k``:

    * stochastic (``beta[k] > 0``): ``z = mu + sigma * eps``, loss = squared error
      (summed over ``d_obs``) + ``beta[k]`` KL(q(z|obs) || N(0, I)) (summed over
      latent dimensions), averaged over the batch: the beta-VAE objective;
    * deterministic (``beta[k] == 0``): ``z = mu``, loss = the squared error, a plain autoencoder.

    Each instance draws its own factors with its own ``density``
    (``generate_batch``), mapped to observations by the shared ``obs_map``.
    The sampling noise comes from a generator seeded with ``seed``, so a seeded
    run is deterministic. In ``eval()`` mode ``z = mu``. Weights are instance
    first: ``enc1_W (n_instances, hidden, d_obs)``, ``enc2_W (n_instances, 2 d_latent, hidden)``,
    ``dec1_W (n_instances, hidden, d_latent)``, ``dec2_W (n_instances, d_obs, hidden)``.

    Args:
        obs_map: the fixed generator of observations.
        d_latent: latent dimensions (fewer than the factors, to ask for superposition).
        beta: ``(n_instances,)`` KL weights (0: autoencoder).
        density: ``(n_instances,)`` each instance's factor density.
        hidden: width of the hidden layers.
        seed: seeds the initialisation and the sampling noise.
    """

    INPUT_DIM = "d_obs"

    def __init__(self, obs_map: ObservationMap, d_latent: int, beta: torch.Tensor | list[float],
                 density: torch.Tensor | list[float], hidden: int = 64, seed: int = 0) -> None:
        if not isinstance(obs_map, ObservationMap):
            raise TypeError(f"obs_map must be an ObservationMap, got {type(obs_map).__name__}")
        beta = torch.as_tensor(beta, dtype=torch.float32).flatten()
        density = torch.as_tensor(density, dtype=torch.float32).flatten()
        if beta.shape != density.shape:
            raise ValueError(f"beta and density must have one entry per instance, got {beta.numel()} and {density.numel()}")
        if not bool(torch.isfinite(beta).all()) or bool((beta < 0).any()):
            raise ValueError(f"beta must be finite and >= 0, got {beta.tolist()}")
        check_probability("density", density)
        super().__init__(beta.numel())
        self.d_obs, self.n_factors = obs_map.d_obs, obs_map.n_factors
        self.d_latent = check_positive_int("d_latent", d_latent)
        self.hidden = check_positive_int("hidden", hidden)
        self.register_buffer("beta", beta)
        self.register_buffer("density", density)
        self.register_buffer("M", obs_map.M.float().clone())
        self.register_buffer("c", obs_map.c.float().clone())
        gen = torch.Generator().manual_seed(seed)
        n, H, D, m = self.n_instances, hidden, self.d_obs, self.d_latent
        self.enc1_W, self.enc1_b = _linear_init(n, H, D, gen)
        self.enc2_W, self.enc2_b = _linear_init(n, 2 * m, H, gen)
        self.dec1_W, self.dec1_b = _linear_init(n, H, m, gen)
        self.dec2_W, self.dec2_b = _linear_init(n, D, H, gen)
        self.noise = torch.Generator().manual_seed(seed + 1)

    def extra_repr(self) -> str:
        return (f"n_factors={self.n_factors}, d_obs={self.d_obs}, d_latent={self.d_latent}, hidden={self.hidden}, "
                f"beta={self.beta.tolist()}, density={self.density.tolist()}")

    @property
    def obs_map(self) -> ObservationMap:
        """The fixed generator of observations (a copy of the buffers)."""
        return ObservationMap(self.M.detach().cpu().clone(), self.c.detach().cpu().clone())

    @staticmethod
    def _layer(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``x (n_instances, batch, in)``, ``W (n_instances, out, in)``, ``b (n_instances, out)`` -> ``(n_instances, batch, out)``."""
        return torch.baddbmm(b[:, None, :], x, W.mT)

    def sample_factors(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(batch_size, n_instances, n_factors)`` factors, instance ``k`` at density ``density[k]``."""
        p = self.density[:, None].expand(self.n_instances, self.n_factors).contiguous()
        return sparse_uniform(batch_size, p, generator=generator).to(self.dtype)

    def observe(self, factors: torch.Tensor) -> torch.Tensor:
        """``factors (..., n_factors)`` -> observations ``(..., d_obs)`` (the fixed map)."""
        return torch.tanh(factors @ self.M.mT + self.c)

    def generate_batch(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Fresh observations ``(batch_size, n_instances, d_obs)``."""
        return self.observe(self.sample_factors(batch_size, generator))

    def encode(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``obs (batch, n_instances, d_obs)`` -> ``(mu, logvar)``, each ``(batch, n_instances, d_latent)``."""
        obs = self._check_batch("obs", obs)
        a = torch.relu(self._layer(obs.transpose(0, 1), self.enc1_W, self.enc1_b))
        mu, logvar = self._layer(a, self.enc2_W, self.enc2_b).transpose(0, 1).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``z (batch, n_instances, d_latent)`` -> reconstructions ``(batch, n_instances, d_obs)``."""
        a = torch.relu(self._layer(z.transpose(0, 1), self.dec1_W, self.dec1_b))
        return self._layer(a, self.dec2_W, self.dec2_b).transpose(0, 1)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``obs (batch, n_instances, d_obs)`` -> ``(reconstruction, mu, logvar)``."""
        mu, logvar = self.encode(obs)
        z = mu
        if self.training:
            eps = torch.randn(mu.shape, generator=self.noise, dtype=mu.dtype).to(mu.device)
            stochastic = (self.beta > 0).to(mu.dtype)[:, None]
            z = mu + stochastic * (0.5 * logvar).exp() * eps
        return self.decode(z), mu, logvar

    def per_instance_loss(self, obs: torch.Tensor, output: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Squared error summed over ``d_obs`` plus ``beta`` times the KL, averaged over the batch: ``(n_instances,)``."""
        recon, mu, logvar = output
        err = (recon - obs).square().sum(dim=-1).mean(dim=0)
        kl = 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum(dim=-1).mean(dim=0)
        return err + torch.where(self.beta > 0, self.beta * kl, torch.zeros_like(kl))

    @torch.no_grad()
    def latents(self, factors: torch.Tensor) -> torch.Tensor:
        """The posterior means of the observations of ``factors (batch, n_instances, n_factors)``: ``(batch, n_instances, d_latent)``."""
        return self.encode(self.observe(factors.to(self.dtype)))[0]


def _knockouts(vae: "LatentVAE", factors: torch.Tensor):
    """For each factor ``i``: the inputs where it is active, and the same inputs with it switched off."""
    for i in range(vae.n_factors):
        active = factors[..., i] > 0  # (N, I)
        off = factors.clone()
        off[..., i] = 0
        yield i, active, off


@torch.no_grad()
def factor_directions(vae: LatentVAE, factors: torch.Tensor) -> torch.Tensor:
    """Each factor's direction in each instance's latent space: ``(n_instances, d_latent, n_factors)``.

    Column ``i`` is the mean displacement of the posterior mean when factor ``i``
    is switched on in its context, ``E[mu(v) - mu(v with v_i = 0) | v_i > 0]`` over the
    samples ``factors (n_samples, n_instances, n_factors)``: the latent analogue of a
    toy model's column ``W_i`` (for sparse factors, mostly ``mu(v_i e_i) - mu(0)``),
    ready for :mod:`supercourse.metrics` (feature dimensionality, superposition).
    A factor never active in the samples gets a zero column.
    """
    mu = vae.latents(factors)
    out = torch.zeros(vae.n_instances, vae.d_latent, vae.n_factors)
    for i, active, off in _knockouts(vae, factors):
        disp = (mu - vae.latents(off)) * active[..., None]  # (N, I, m)
        out[:, :, i] = (disp.sum(0) / active.sum(0)[:, None].clamp_min(1)).cpu()
    return out


@torch.no_grad()
def factor_fvu(vae: LatentVAE, factors: torch.Tensor) -> torch.Tensor:
    """How much of each factor's effect on the observation the model's reconstruction misses: ``(n_instances, n_factors)``.

    For factor ``i``, over the samples where it is active, with ``off`` the same
    factors with ``v_i = 0``, ``obs`` the observation map and ``rec`` the
    reconstruction through the posterior mean::

        E ||(rec(v) - rec(off)) - (obs(v) - obs(off))||^2 / E ||obs(v) - obs(off)||^2

    0 when the model reproduces what factor ``i`` does to the observation, 1 when it ignores it.
    """
    def rec(f: torch.Tensor) -> torch.Tensor:
        return vae.decode(vae.latents(f))

    obs_v, rec_v = vae.observe(factors), rec(factors)
    out = torch.zeros(vae.n_instances, vae.n_factors)
    for i, active, off in _knockouts(vae, factors):
        effect = obs_v - vae.observe(off)
        miss = ((rec_v - rec(off)) - effect).square().sum(-1) * active
        signal = effect.square().sum(-1) * active
        out[:, i] = (miss.sum(0) / signal.sum(0).clamp_min(_EPS)).cpu()
    return out


@dataclass
class LatentResult:
    """What :func:`latent_study` measured, per VAE instance (``(n_instances, ...)`` tensors, CPU).

    Attributes:
        beta, density: each instance's setting.
        fvu: fraction of the observations' variance the reconstruction (from ``mu``) leaves unexplained.
        kl: the mean KL per input (0 for autoencoders).
        directions: ``(n_instances, d_latent, n_factors)`` (:func:`factor_directions`).
        factor_fvu: ``(n_instances, n_factors)`` (:func:`factor_fvu`): the fraction of each factor's
            effect on the observation the reconstruction misses (1: the factor is lost).
        represented: ``(n_instances, n_factors)`` bool, ``factor_fvu < 0.5``.
        dimensionality: ``(n_instances, n_factors)`` feature dimensionality of the directions.
        mig: ``(n_instances,)`` MIG of the posterior means against the factors.
        sae_mmcs: ``(n_instances,)`` MMCS of the kept SAE against the represented factors' directions.
        sae_max_cos: ``(n_instances, n_factors)`` each factor's best cosine with the kept SAE's decoder.
        sae_mig: ``(n_instances,)`` MIG of the kept SAE's latents against the factors.
        mu: ``(n_samples, n_instances, d_latent)`` posterior means of the evaluation inputs.
        factors: ``(n_samples, n_instances, n_factors)`` the same inputs' factors (float64).
        sae_W_d: ``(n_instances, d_latent, n_factors)`` the kept SAE's decoder, one per instance.
        seconds: time spent measuring and training the SAEs.
    """

    beta: torch.Tensor
    density: torch.Tensor
    fvu: torch.Tensor
    kl: torch.Tensor
    directions: torch.Tensor
    factor_fvu: torch.Tensor
    represented: torch.Tensor
    dimensionality: torch.Tensor
    mig: torch.Tensor
    sae_mmcs: torch.Tensor
    sae_max_cos: torch.Tensor
    sae_mig: torch.Tensor
    mu: torch.Tensor
    factors: torch.Tensor
    sae_W_d: torch.Tensor
    seconds: dict = field(default_factory=dict)

    @property
    def n_represented(self) -> torch.Tensor:
        return self.represented.sum(dim=1)

    def rows(self) -> list[dict]:
        """One plain dict per instance (for tables and ``summary.json``)."""
        out = []
        for k in range(self.beta.shape[0]):
            rep = self.represented[k]
            out.append({
                "beta": float(self.beta[k]), "density": float(self.density[k]), "fvu": float(self.fvu[k]),
                "kl": float(self.kl[k]), "represented": int(rep.sum()),
                "sum_dimensionality": float(self.dimensionality[k][rep].sum()),
                "dimensionality": self.dimensionality[k].tolist(), "factor_fvu": self.factor_fvu[k].tolist(),
                "mig": float(self.mig[k]),
                "sae_mmcs": float(self.sae_mmcs[k]), "sae_mig": float(self.sae_mig[k]),
            })
        return out


def latent_study(
    vae: LatentVAE, seed: int = 0, n_samples: int = 50_000, n_probe: int = 20_000, sae_steps: int = 3000, sae_restarts: int = 4,
    sae_l1: float = 0.01, device: str | torch.device = "cpu",
    mig_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> LatentResult:
    """Measure a trained :class:`LatentVAE`'s latent space with the course's tools, instance by instance (on the CPU).

    Factor directions and their feature dimensionality (:func:`factor_directions`,
    :func:`supercourse.metrics.feature_dimensionality`), which factors are
    represented, the MIG of the posterior means, and SAEs on the latent space:
    for each instance ``sae_restarts`` SAEs with ``n_factors`` latents (L1 ``sae_l1``),
    trained on its posterior means measured from ``mu(0)`` and scaled so that the
    factor directions have mean norm 1 (the toy model's scale); the one with the
    lowest loss is kept (not the best recovery: that would use the answer). ``mig_fn(codes, factors)``
    replaces :func:`mig` (a learner's own, in the lesson).
    """
    import time

    mig_fn = mig if mig_fn is None else mig_fn
    vae.cpu().eval()  # measured on the CPU (its data generators are CPU generators); the SAEs train on ``device``
    seconds = {}
    t = time.perf_counter()
    gen = torch.Generator().manual_seed(seed + 31)
    factors = vae.sample_factors(n_samples, gen).to(vae.device)
    with torch.no_grad():
        obs = vae.observe(factors)
        recon, mu, logvar = vae(obs)
        fvu = (recon - obs).square().sum(dim=(0, 2)) / (obs - obs.mean(dim=0)).square().sum(dim=(0, 2)).clamp_min(_EPS)
        kl = 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum(-1).mean(0)
        kl = torch.where(vae.beta > 0, kl, torch.zeros_like(kl))
        mu0 = vae.latents(torch.zeros(1, vae.n_instances, vae.n_factors, device=vae.device))
    factors, mu, mu0 = factors.cpu().double(), mu.cpu(), mu0.cpu()
    probe = vae.sample_factors(n_probe, torch.Generator().manual_seed(seed + 37)).to(vae.device)
    directions = factor_directions(vae, probe)
    fvus = factor_fvu(vae, probe)
    represented = fvus < 0.5
    dim = metrics.feature_dimensionality(directions)
    migs = torch.tensor([float(mig_fn(mu[:, k].double(), factors[:, k])) for k in range(vae.n_instances)])
    seconds["measure"] = time.perf_counter() - t
    # SAEs on each instance's latent space, several restarts side by side.
    t = time.perf_counter()
    I, R, m, n = vae.n_instances, sae_restarts, vae.d_latent, vae.n_factors
    scale = directions.norm(dim=1).mean(dim=1).clamp_min(_EPS)  # (I,)
    h = ((mu - mu0) / scale[None, :, None]).repeat_interleave(R, dim=1)  # (N, I*R, m)
    sae = sae_lib.SparseAutoencoder(m, n, I * R, l1_coeff=sae_l1, seed=seed + 5).to(device)
    sae_lib.train_sae(sae, h.to(device), steps=sae_steps, batch_size=256, seed=seed + 6, progress=False)
    sae.cpu()
    with torch.no_grad():
        _, f, loss = sae(h)
    kept = loss.reshape(I, R).argmin(dim=1) + torch.arange(I) * R
    W_d = sae.W_d.detach()[kept]  # (I, m, n_latents)
    max_cos = sae_lib.max_cosines(directions, W_d)  # (I, n)
    mmcs = torch.stack([max_cos[k][represented[k]].mean() if bool(represented[k].any()) else torch.tensor(float("nan"))
                        for k in range(I)])
    sae_mig = torch.tensor([float(mig_fn(f[:, int(j)].double(), factors[:, k])) for k, j in enumerate(kept)])
    seconds["sae"] = time.perf_counter() - t
    return LatentResult(
        beta=vae.beta.cpu(), density=vae.density.cpu(), fvu=fvu.cpu(), kl=kl.cpu(), directions=directions,
        factor_fvu=fvus, represented=represented, dimensionality=dim, mig=migs, sae_mmcs=mmcs,
        sae_max_cos=max_cos, sae_mig=sae_mig, mu=mu, factors=factors, sae_W_d=W_d, seconds=seconds,
    )


# --------------------------------------------------------------------------- rotation invariance


@torch.no_grad()
def rotated_objective(
    vae: LatentVAE, obs: torch.Tensor, rotation: torch.Tensor, eps: torch.Tensor,
    prior: Literal["gaussian", "laplace"] = "gaussian",
) -> torch.Tensor:
    """The beta-VAE objective of ``vae`` with its latent space rotated by ``rotation``, per instance: ``(n_instances,)``.

    The rotated model encodes ``q'(z|x) = N(R mu, R diag(sigma^2) R^T)`` and decodes
    ``decoder(R^T z)``: the same model, seen in a rotated basis. Its objective,
    squared error + ``beta`` KL(q' || prior), is estimated with the noise ``eps``
    (``z' = R (mu + sigma eps)``) and a Monte Carlo KL, ``log q'(z') - log p(z')``.
    With the isotropic Gaussian prior ``N(0, I)`` every term is unchanged by ``R``;
    with a factorised Laplace prior (unit variance) the KL depends on the basis.

    Args:
        vae: a trained model (stochastic instances; ``beta > 0``).
        obs: ``(batch, n_instances, d_obs)``.
        rotation: ``(d_latent, d_latent)`` orthogonal.
        eps: ``(batch, n_instances, d_latent)`` standard normal noise (the same for every rotation).
        prior: ``"gaussian"`` or ``"laplace"``.
    """
    obs = vae._check_batch("obs", obs)
    m = vae.d_latent
    R = check_tensor("rotation", rotation, shape=(m, m), names=("d_latent", "d_latent")).to(obs)
    check_tensor("eps", eps, shape=obs.shape[:2] + (m,), names=("batch", "n_instances", "d_latent"))
    if prior not in ("gaussian", "laplace"):
        raise ValueError(f"prior must be 'gaussian' or 'laplace', got {prior!r}")
    mu, logvar = vae.encode(obs)
    sigma = (0.5 * logvar).exp()
    z = (mu + sigma * eps) @ R.mT  # z' = R (mu + sigma eps)
    recon = vae.decode(z @ R)  # decoder(R^T z')
    err = (recon - obs).square().sum(-1).mean(0)
    # log q'(z') = log q(z) = sum log N(eps) - sum log sigma (a rotation has |det| = 1)
    log_q = (-0.5 * eps.square() - 0.5 * math.log(2 * math.pi)).sum(-1) - (0.5 * logvar).sum(-1)
    if prior == "gaussian":
        log_p = (-0.5 * z.square() - 0.5 * math.log(2 * math.pi)).sum(-1)
    else:
        b = 1 / math.sqrt(2)  # unit variance
        log_p = (-z.abs() / b - math.log(2 * b)).sum(-1)
    kl = (log_q - log_p).mean(0)
    return err + vae.beta * kl
