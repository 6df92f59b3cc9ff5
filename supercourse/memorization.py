"""Memorization and double descent (Henighan et al. 2023): the toy model trained on T fixed points.

The ReLU-output toy model ``x' = ReLU(W^T W x + b)`` of lesson 1, trained on a finite
training set of ``T`` points instead of fresh data:

* each point has ``n`` features, each zero with probability ``S`` and otherwise
  uniform on [0, 1); the point is then rescaled to ``||x|| = 1`` (a point with no
  active feature stays zero). So the zero model's loss is exactly 1;
* the loss is the squared error summed over features, averaged over the points:
  ``L = (1/T) sum_t ||x'_t - x_t||^2``;
* training is full-batch AdamW (weight decay 1e-2), a linear warm-up over the first
  5% of the steps, then a cosine decay to zero (:func:`warmup_cosine`).

Small ``T``: the model *memorizes*. The hidden vectors ``h_t = W x_t`` of the training
points form a regular ``T``-gon (in ``m = 2``), each point has dimensionality about
``m / T`` (:func:`data_dimensionality`), the training loss reaches 0 and the test
loss (:func:`test_loss`) is at or above the zero model's 1. Large ``T``: the model
*generalizes*, as lesson 1's model on infinite data: a few features get long
columns ``W_i`` (high feature dimensionality, :func:`feature_dimensionality`), the
data points' dimensionality falls and the test loss drops below 1. In between,
the test loss has a bump (double descent).

Sparse points are stored sparse (:class:`SparsePoints`: the indices and values of
the active features, about ``n (1 - S)`` per point), so the forward pass ``W x``
costs ``O(n (1 - S) m)`` per point. The output side ``ReLU(W^T h + b)`` is dense and
is computed chunk by chunk with its gradient (:func:`train_points`), so training
a point costs a few ``n m`` multiply-adds per step and no ``(T, n)`` tensor is ever
held. :func:`sweep` trains every size ``T`` and several seeds at once (sizes of
similar ``T`` padded into one batch of instances, batches spread over CPU threads)
and keeps, for each ``T``, the seed with the lowest training loss.

:func:`train_full_batch` is the plain autograd loop on a dense dataset that
:func:`train_points` must agree with (the tests check it).
"""

from __future__ import annotations

import math
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from ._validate import check_positive_int, check_tensor

__all__ = [
    "LR",
    "WEIGHT_DECAY",
    "WARMUP_FRACTION",
    "TEST_POINTS",
    "SparsePoints",
    "sparse_points",
    "finite_dataset",
    "warmup_cosine",
    "warmup_steps_for",
    "reconstruction_loss",
    "train_full_batch",
    "hidden_vectors",
    "dimensionalities",
    "data_dimensionality",
    "feature_dimensionality",
    "test_loss",
    "init_params",
    "train_points",
    "SweepResult",
    "sweep",
    "size_buckets",
    "seeds_for",
    "top_dimensionality",
]

LR = 1e-3
"""AdamW's peak learning rate (the paper's)."""
WEIGHT_DECAY = 1e-2
"""AdamW's decoupled weight decay (the paper's)."""
WARMUP_FRACTION = 0.05
"""The linear warm-up's share of the steps: the paper warms up for 2,500 of 50,000 steps."""
TEST_POINTS = 10_000
"""Fresh points on which :func:`test_loss` measures a model by default."""

_EPS = 1e-12


# --------------------------------------------------------------------------- the finite dataset


@dataclass
class SparsePoints:
    """A set of sparse points, stored as the indices and values of their active features.

    Point ``t`` of instance ``k`` is ``x = sum_j val[t, k, j] e_{idx[t, k, j]}``; the
    ``k_max`` slots of a point beyond its active features hold value 0 (and index 0), so
    they add nothing. The active indices of a point are distinct.

    Attributes:
        idx: ``(n_points, n_instances, k_max)`` int64 feature indices.
        val: ``(n_points, n_instances, k_max)`` float values (0 in unused slots).
        n_features: ``n``, the dimension of each point.
    """

    idx: torch.Tensor
    val: torch.Tensor
    n_features: int

    def __post_init__(self) -> None:
        check_tensor("idx", self.idx, shape=(None, None, None), names=("n_points", "n_instances", "k_max"), floating=False)
        check_tensor("val", self.val, shape=tuple(self.idx.shape), names=("n_points", "n_instances", "k_max"))
        self.n_features = check_positive_int("n_features", self.n_features)

    @property
    def n_points(self) -> int:
        return int(self.idx.shape[0])

    @property
    def n_instances(self) -> int:
        return int(self.idx.shape[1])

    @property
    def device(self) -> torch.device:
        return self.val.device

    def dense(self) -> torch.Tensor:
        """The points as a dense tensor ``(n_points, n_instances, n_features)``."""
        out = torch.zeros(self.n_points, self.n_instances, self.n_features, dtype=self.val.dtype, device=self.device)
        return out.scatter_add_(2, self.idx, self.val)

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> "SparsePoints":
        return SparsePoints(self.idx.to(device), self.val.to(device=device, dtype=dtype), self.n_features)

    def instances(self, which: int | Sequence[int] | torch.Tensor) -> "SparsePoints":
        """The points of some instances only: ``which`` an index (kept as one instance) or a list of them."""
        sel = torch.as_tensor([which] if isinstance(which, int) else which, dtype=torch.long, device=self.idx.device)
        return SparsePoints(self.idx[:, sel], self.val[:, sel], self.n_features)


def _check_probability_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = float(value.item())
        else:
            raise TypeError(f"{name} must be a number in [0, 1] (the density 1 - S), got {value!r}")
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1] (the density 1 - S), got {value!r}")
    return value


def sparse_points(
    n_points: int,
    n_features: int,
    feature_probability: float,
    n_instances: int = 1,
    generator: torch.Generator | None = None,
    device: str | torch.device | None = None,
) -> SparsePoints:
    """Draw ``n_points`` unit-norm sparse points per instance, stored sparse.

    Each feature is active independently with probability ``feature_probability``
    (``1 - S``) with a value uniform on [0, 1); each point is then divided by its
    norm (a point with no active feature stays zero). The active features are drawn
    as the gaps of a Bernoulli process (geometric gaps), so the cost is
    ``O(n_points * n_features * feature_probability)``, not ``O(n_points * n_features)``.

    Returns a :class:`SparsePoints` with ``idx, val: (n_points, n_instances, k_max)``
    on ``device`` (default: the generator's device, else the CPU).
    """
    n_points = check_positive_int("n_points", n_points)
    n_features = check_positive_int("n_features", n_features)
    n_instances = check_positive_int("n_instances", n_instances)
    p = _check_probability_float("feature_probability", feature_probability)
    dev = torch.device(device) if device is not None else (generator.device if generator is not None else torch.device("cpu"))
    rows = n_points * n_instances
    mean, sd = n_features * p, math.sqrt(n_features * p * (1.0 - p))
    k_cap = min(n_features, max(1, math.ceil(mean + 8.0 * sd + 8.0)))
    while True:
        # Geometric gaps: G = floor(log(U) / log(1 - p)) + 1 >= 1; positions cumsum(G) - 1.
        u = 1.0 - torch.rand(rows, k_cap, generator=generator, device=dev, dtype=torch.float64)  # (0, 1]
        with torch.no_grad():
            log_q = math.log1p(-p) if p < 1.0 else -math.inf
            gaps = torch.floor(torch.log(u) / log_q) + 1.0 if p > 0.0 else torch.full_like(u, math.inf)
            pos = torch.cumsum(gaps.clamp_max(2.0 * n_features), dim=1) - 1.0
        if k_cap >= n_features or bool((pos[:, -1] >= n_features).all()):
            break  # every point's k_cap-th candidate lies past the last feature: no active feature was cut off
        k_cap = min(n_features, 2 * k_cap)
    active = pos < n_features
    idx = torch.where(active, pos, torch.zeros_like(pos)).long()
    val = torch.rand(rows, k_cap, generator=generator, device=dev, dtype=torch.float32) * active
    norm = val.norm(dim=1, keepdim=True)
    val = torch.where(norm > 0, val / norm.clamp_min(_EPS), val)
    k_max = max(1, int(active.sum(dim=1).max()))
    idx, val = idx[:, :k_max], val[:, :k_max]  # active slots come first (positions increase)
    return SparsePoints(idx.reshape(n_points, n_instances, k_max), val.reshape(n_points, n_instances, k_max), n_features)


def finite_dataset(
    n_points: int,
    n_features: int,
    feature_probability: float,
    n_instances: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A fixed training set of ``n_points`` unit-norm sparse points per instance (dense).

    Features are zero with probability ``1 - feature_probability`` and otherwise uniform
    on [0, 1); each point is then rescaled to norm 1 (a point with no active feature
    stays zero). Each instance gets its own points.

    Returns ``x: (n_points, n_instances, n_features)``, float32.
    """
    return sparse_points(n_points, n_features, feature_probability, n_instances, generator).dense()


# --------------------------------------------------------------------------- the recipe


def warmup_steps_for(steps: int, fraction: float = WARMUP_FRACTION) -> int:
    """The warm-up length of a run of ``steps``: ``round(fraction * steps)`` (2,500 of the paper's 50,000)."""
    return int(round(fraction * check_positive_int("steps", steps)))


def warmup_cosine(step: int, steps: int, warmup_steps: int) -> float:
    """The learning-rate factor at ``step`` of ``steps``: linear warm-up, then cosine decay to 0.

    ``(step + 1) / warmup_steps`` during the first ``warmup_steps`` steps, then
    ``0.5 (1 + cos(pi (step - warmup_steps) / (steps - warmup_steps)))``.
    ``functools.partial(warmup_cosine, warmup_steps=w)`` is a ``supercourse.train`` schedule.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    decay = max(1, steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup_steps) / decay)))


def _check_W_b(W: object, b: object) -> tuple[torch.Tensor, torch.Tensor]:
    W = check_tensor("W", W, shape=(None, None, None), names=("n_instances", "n_hidden", "n_features"))
    b = check_tensor("b", b, shape=(W.shape[0], W.shape[2]), names=("n_instances", "n_features"))
    return W, b


def _check_points(name: str, x: object, W: torch.Tensor) -> torch.Tensor | SparsePoints:
    if isinstance(x, SparsePoints):
        if x.n_instances != W.shape[0] or x.n_features != W.shape[2]:
            raise ValueError(
                f"{name} must hold points of n_instances={W.shape[0]}, n_features={W.shape[2]}, "
                f"got n_instances={x.n_instances}, n_features={x.n_features}"
            )
        return x
    return check_tensor(name, x, shape=(None, W.shape[0], W.shape[2]), names=("n_points", "n_instances", "n_features"))


def reconstruction_loss(W: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The loss of the model ``(W, b)`` on the points ``x``, per instance.

    ``W: (n_instances, n_hidden, n_features)``, ``b: (n_instances, n_features)``,
    ``x: (n_points, n_instances, n_features)``. Returns ``(n_instances,)``: the mean
    over points of ``||ReLU(W^T W x + b) - x||^2`` (summed over features).
    """
    W, b = _check_W_b(W, b)
    x = _check_points("x", x, W)
    if isinstance(x, SparsePoints):
        return _sparse_loss(W, b, x)
    h = torch.einsum("tkn,kmn->tkm", x, W)
    out = torch.relu(torch.einsum("tkm,kmn->tkn", h, W) + b)
    return (out - x).square().sum(dim=2).mean(dim=0)


def train_full_batch(
    model: nn.Module,
    dataset: torch.Tensor,
    steps: int,
    lr: float = LR,
    weight_decay: float = WEIGHT_DECAY,
    warmup_steps: int | None = None,
) -> torch.Tensor:
    """Train ``model`` on the whole of ``dataset`` at every step: the plain loop.

    Full-batch AdamW on the per-instance loss :func:`reconstruction_loss` summed over
    instances; the learning rate at step ``s`` is ``lr * warmup_cosine(s, steps, warmup_steps)``
    (``warmup_steps`` default: :func:`warmup_steps_for`). ``model`` is a ReLU
    :class:`~supercourse.ToyModel` (``W: (n_instances, m, n)``, ``b_final: (n_instances, n)``),
    trained in place; ``dataset: (n_points, n_instances, n_features)``.

    Returns ``(steps, n_instances)``: each instance's loss at each step, measured
    before that step's update.
    """
    steps = check_positive_int("steps", steps)
    warmup = warmup_steps_for(steps) if warmup_steps is None else int(warmup_steps)
    W0, b0 = _check_W_b(model.W, model.b_final)
    dataset = _check_points("dataset", dataset, W0)
    if isinstance(dataset, SparsePoints):
        dataset = dataset.dense()
    optimizer = torch.optim.AdamW([model.W, model.b_final], lr=lr, weight_decay=weight_decay)
    losses = torch.empty(steps, W0.shape[0], dtype=W0.dtype)
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr * warmup_cosine(step, steps, warmup)
        per_instance = reconstruction_loss(model.W, model.b_final, dataset)
        optimizer.zero_grad()
        per_instance.sum().backward()
        optimizer.step()
        losses[step] = per_instance.detach().cpu()
    return losses


# --------------------------------------------------------------------------- dimensionalities and test loss


def hidden_vectors(W: torch.Tensor, x: torch.Tensor | SparsePoints) -> torch.Tensor:
    """``h_t = W x_t`` for every point: ``W: (n_instances, m, n)``, ``x: (n_points, n_instances, n)`` -> ``(n_instances, n_points, m)``."""
    W = check_tensor("W", W, shape=(None, None, None), names=("n_instances", "n_hidden", "n_features"))
    x = _check_points("x", x, W)
    if isinstance(x, SparsePoints):
        return _sparse_hidden(W.mT.contiguous(), x.idx.transpose(0, 1), x.val.transpose(0, 1).to(W.dtype))
    return torch.einsum("tkn,kmn->ktm", x, W)


def dimensionalities(vectors: torch.Tensor) -> torch.Tensor:
    """``D_i = ||v_i||^2 / sum_j (v_hat_i . v_j)^2`` of each of a set of vectors (``j`` includes ``i``).

    ``vectors: (n_instances, n_vectors, m)`` -> ``(n_instances, n_vectors)``; a zero vector gets 0.
    The denominator is ``v_hat_i^T M v_hat_i`` with ``M = sum_j v_j v_j^T`` (``m x m``), so the
    cost is ``O(n_vectors m^2)`` rather than ``O(n_vectors^2 m)``.
    """
    V = check_tensor("vectors", vectors, shape=(None, None, None), names=("n_instances", "n_vectors", "m"))
    M = V.mT @ V  # (n_instances, m, m)
    sq = V.square().sum(dim=2)
    quad = torch.einsum("kim,kmn,kin->ki", V, M, V)  # v_i^T M v_i = ||v_i||^2 sum_j (v_hat_i . v_j)^2
    return torch.where(quad > _EPS * sq.clamp_min(_EPS), sq.square() / quad.clamp_min(_EPS), torch.zeros_like(sq))


def data_dimensionality(W: torch.Tensor, x: torch.Tensor | SparsePoints) -> torch.Tensor:
    """Each training point's dimensionality ``D_t = ||h_t||^2 / sum_s (h_hat_t . h_s)^2``, with ``h_t = W x_t``.

    ``W: (n_instances, m, n)``, ``x: (n_points, n_instances, n)`` (or :class:`SparsePoints`).
    Returns ``(n_instances, n_points)``: ``m / T`` for points whose hidden vectors form a
    regular ``T``-gon; 0 for a point with ``h_t = 0``.
    """
    return dimensionalities(hidden_vectors(W, x))


def feature_dimensionality(W: torch.Tensor) -> torch.Tensor:
    """Each feature's dimensionality ``D_i = ||W_i||^2 / sum_j (W_hat_i . W_j)^2``: ``(n_instances, n_features)``.

    The same as :func:`supercourse.metrics.feature_dimensionality`, at ``O(n m^2)`` cost.
    """
    W = check_tensor("W", W, shape=(None, None, None), names=("n_instances", "n_hidden", "n_features"))
    return dimensionalities(W.mT)


@torch.no_grad()
def test_loss(
    W: torch.Tensor,
    b: torch.Tensor,
    feature_probability: float,
    n_points: int = TEST_POINTS,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The loss of ``(W, b)`` on ``n_points`` fresh points from the training distribution.

    ``W: (n_instances, m, n)``, ``b: (n_instances, n)``. Each instance gets its own fresh
    unit-norm sparse points (:func:`sparse_points` at density ``feature_probability``).
    Returns ``(n_instances,)``: the mean of ``||ReLU(W^T W x + b) - x||^2``. The zero model scores 1.
    """
    W, b = _check_W_b(W, b)
    n_points = check_positive_int("n_points", n_points)
    p = _check_probability_float("feature_probability", feature_probability)
    gen_device = generator.device if generator is not None else W.device
    x = sparse_points(n_points, W.shape[2], p, W.shape[0], generator=generator, device=gen_device).to(W.device, W.dtype)
    return _sparse_loss(W.detach(), b.detach(), x)


# --------------------------------------------------------------------------- the fast full-batch engine


CHUNK_ELEMENTS = {"cpu": 1 << 18, "cuda": 1 << 26}
"""Elements of one ``(n_instances, rows, n_features)`` output chunk: about L2-cache sized on a CPU."""


def _chunk_rows(device: torch.device, n_instances: int, n_features: int, n_points: int) -> int:
    budget = CHUNK_ELEMENTS.get(device.type, CHUNK_ELEMENTS["cuda"])
    return max(1, min(n_points, budget // max(1, n_instances * n_features)))


def _sparse_hidden(Wt: torch.Tensor, idx: torch.Tensor, val: torch.Tensor) -> torch.Tensor:
    """``Wt: (I, n, m)``, ``idx, val: (I, T, K)`` -> ``h: (I, T, m)``."""
    I, T, K = idx.shape
    cols = Wt.gather(1, idx.reshape(I, T * K, 1).expand(I, T * K, Wt.shape[2])).view(I, T, K, Wt.shape[2])
    return (cols * val[..., None]).sum(dim=2)


def _sparse_loss(W: torch.Tensor, b: torch.Tensor, x: SparsePoints) -> torch.Tensor:
    """:func:`reconstruction_loss` on sparse points, chunk by chunk: ``(n_instances,)``."""
    idx, val = x.idx.transpose(0, 1), x.val.transpose(0, 1).to(W.dtype)
    weight = torch.full(idx.shape[:2], 1.0 / x.n_points, dtype=W.dtype, device=W.device)
    return _FullBatch(W.detach(), b.detach(), idx, val, weight).loss()


class _FullBatch:
    """The full-batch loss and its gradient for a batch of instances on sparse points, chunked.

    ``W: (I, m, n)``, ``b: (I, n)``; points ``idx, val: (I, T, K)``; ``weight: (I, T)``,
    each point's weight in its instance's loss (``1 / T_i`` for the ``T_i`` real points of
    instance ``i``, 0 for padding). With ``z = W^T h + b`` and ``r = ReLU(z)``::

        L_i     = sum_t w_t (||r_t||^2 - 2 x_t . r_t + ||x_t||^2)
        dL/dz   = 2 w_t (r_t - x_t * [z_t > 0])

    The dense part ``2 w_t r_t`` is reduced chunk by chunk (``G = [w h, w]^T r`` gives
    the output side of ``dW`` and ``db``; ``W r^T`` the hidden side), the sparse part
    ``-2 w_t x_t [z_t > 0]`` lives on the active features only. The active features are
    kept as one flat list of ``nnz`` entries (point, feature, value) over all instances,
    so the sparse side costs ``O(nnz m)``, with ``m`` the leading dimension of every tensor.
    """

    ROW_OVERHEAD = 16
    """A chunk's fixed cost per point, in dense columns (for cutting the sorted points into chunks)."""
    SORTED_UP_TO = 0.6
    """Skip the linear work (:meth:`_dense_sorted`) only while the ReLU must be computed on at most this
    share of the (point, feature) pairs; above it the plain pass is cheaper."""

    def __init__(self, W: torch.Tensor, b: torch.Tensor, idx: torch.Tensor, val: torch.Tensor, weight: torch.Tensor,
                 sort_points: bool | None = None):
        self.W, self.b, self.weight = W, b, weight
        I, T, K = idx.shape
        m, n = W.shape[1], W.shape[2]
        self.shape = (I, T, m, n)
        self.rows = _chunk_rows(W.device, I, n, T)
        keep = val != 0
        inst = torch.arange(I, device=idx.device)[:, None, None].expand(I, T, K)[keep]
        point = torch.arange(T, device=idx.device)[None, :, None].expand(I, T, K)[keep]
        self.point = inst * T + point  # (nnz,) the entry's point, as a row of (I * T)
        self.feature = inst * n + idx[keep]  # (nnz,) the entry's feature, as a column of (I * n)
        self.val = val[keep]  # (nnz,)
        self.w_entry = weight.reshape(-1)[self.point]  # (nnz,) its point's weight
        self.x_sq = (val * val).sum(dim=2)  # (I, T)
        self.ones = torch.ones(I, T, 1, dtype=W.dtype, device=W.device)
        self._buf: torch.Tensor | None = None
        self.budget = CHUNK_ELEMENTS.get(W.device.type, CHUNK_ELEMENTS["cuda"])
        auto = W.device.type == "cpu" and T * n > 6 * self.budget
        self.sort_points = auto if sort_points is None else bool(sort_points)

    def _buffer(self, size: int) -> torch.Tensor:
        """A reused flat buffer of at least ``size`` elements: chunks write into memory already in cache."""
        if self._buf is None or self._buf.numel() < size:
            self._buf = torch.empty(size, dtype=self.W.dtype, device=self.W.device)
        return self._buf[:size]

    def _pass(self, want_grad: bool, want_loss: bool):
        W, b, w = self.W, self.b, self.weight
        I, T, m, n = self.shape
        point, feature, val = self.point, self.feature, self.val
        # The sparse side: (m, nnz) and (m, I * T) tensors.
        Wf = W.transpose(0, 1).reshape(m, I * n)  # column i * n + j is W[i, :, j]
        cols = Wf.index_select(1, feature)  # (m, nnz): W's column at each entry's feature
        h = torch.zeros(m, I * T, dtype=W.dtype, device=W.device).index_add_(1, point, cols * val)  # h_t = W x_t
        h_entry = h.index_select(1, point)  # (m, nnz)
        r_act = ((cols * h_entry).sum(dim=0) + b.reshape(-1).index_select(0, feature)).clamp_(min=0)  # ReLU(z) there
        # The dense side: r = ReLU([h, 1] [W; b]) for every point and feature.
        Wb = torch.cat([W, b[:, None, :]], dim=1)  # (I, m + 1, n)
        h1 = torch.cat([h.view(m, I, T).permute(1, 2, 0), self.ones], dim=2)  # (I, T, m + 1)
        hw = (h1 * w[..., None]).mT if want_grad else None  # (I, m + 1, T): [w h; w]
        dense = self._dense_sorted if self.sort_points else self._dense_plain
        G, rW, r_sq = dense(h1, hw, W, Wb, want_grad, want_loss)
        loss = None
        if want_loss:
            cross = torch.zeros(I * T, dtype=W.dtype, device=W.device).index_add_(0, point, val * r_act).view(I, T)
            loss = (w * (r_sq - 2.0 * cross + self.x_sq)).sum(dim=1).clamp_min(0.0)  # exact >= 0; rounding is not
        if not want_grad:
            return loss, None, None
        corr = val * (r_act > 0)  # x [z > 0] on the active features, (nnz,)
        wcorr = self.w_entry * corr
        dense_h = rW.permute(1, 0, 2).reshape(m, I * T)  # (m, I * T): W r_t
        sparse_h = torch.zeros(m, I * T, dtype=W.dtype, device=W.device).index_add_(1, point, cols * corr)
        g_h = 2.0 * w.reshape(1, -1) * (dense_h - sparse_h)  # dL/dh, (m, I * T)
        # Each entry's column gets its share of dL/dh (input side) and the sparse output-side term.
        per_entry = g_h.index_select(1, point) * val - 2.0 * h_entry * wcorr  # (m, nnz)
        gWf = torch.zeros(m, I * n, dtype=W.dtype, device=W.device).index_add_(1, feature, per_entry)
        gW = gWf.view(m, I, n).transpose(0, 1).add(G[:, :m], alpha=2.0).contiguous()
        gb = torch.zeros(I * n, dtype=W.dtype, device=W.device).index_add_(0, feature, wcorr).view(I, n)
        gb = gb.mul_(-2.0).add_(G[:, m], alpha=2.0)
        return loss, gW, gb

    def _dense_plain(self, h1, hw, W, Wb, want_grad, want_loss):
        """``G = [w h; w]^T r``, ``rW = W r^T`` and ``||r_t||^2``, every chunk of points in full."""
        I, T, m, n = self.shape
        G = torch.zeros(I, m + 1, n, dtype=W.dtype, device=W.device) if want_grad else None
        rW, r_sq = [], []
        for s in range(0, T, self.rows):
            e = min(T, s + self.rows)
            r = torch.relu_(torch.bmm(h1[:, s:e], Wb, out=self._buffer(I * (e - s) * n).view(I, e - s, n)))
            if want_loss:
                r_sq.append(torch.linalg.vecdot(r, r))
            if want_grad:
                G.baddbmm_(hw[:, :, s:e], r)
                rW.append(torch.bmm(W, r.mT))  # (I, m, rows)
        return G, torch.cat(rW, dim=2) if want_grad else None, torch.cat(r_sq, dim=1) if want_loss else None

    def _dense_sorted(self, h1, hw, W, Wb, want_grad, want_loss):
        """:meth:`_dense_plain`, skipping the work the ReLU makes linear.

        With ``||h_t|| ||W_j|| < |b_j|`` the sign of ``z_tj = W_j . h_t + b_j`` is the sign of
        ``b_j`` for every such point: feature ``j`` is then off (adds nothing) or on, and on it
        ``r = z`` is linear in ``h``, so its sums over a chunk of points reduce to ``(m + 1) x (m + 1)``
        moments of the chunk. Points are sorted by ``||h_t||``, so a chunk of small hidden vectors
        needs the dense ReLU only for the few features whose threshold ``|b_j| / ||W_j||`` it
        passes; chunks are cut so that each holds about the same dense work.
        """
        I, T, m, n = self.shape
        b = Wb[:, m]
        norms, order = h1[..., :m].norm(dim=2).sort(dim=1)  # (I, T), ascending
        w_norm = W.norm(dim=1)  # (I, n)
        b_abs = b.abs()
        thresholds = (b_abs / w_norm.clamp_min(1e-30)).sort(dim=1).values  # uncertain from ||h|| >= threshold
        uncertain = torch.searchsorted(thresholds, norms, right=True).amax(dim=0)  # (T,) dense columns per row
        cost = torch.cumsum(uncertain + self.ROW_OVERHEAD, dim=0).double()
        if float(cost[-1]) > self.SORTED_UP_TO * T * n:  # too little to skip: the plain pass is cheaper
            return self._dense_plain(h1, hw, W, Wb, want_grad, want_loss)
        h1 = h1.gather(1, order[..., None].expand(I, T, m + 1))
        hw = hw.gather(2, order[:, None, :].expand(I, m + 1, T)) if want_grad else None
        n_chunks = max(1, math.ceil(float(cost[-1]) * I / self.budget))
        cuts = torch.searchsorted(cost, torch.arange(1, n_chunks, dtype=torch.float64) * float(cost[-1]) / n_chunks)
        ends = sorted(set(cuts.tolist()) - {0, T}) + [T]
        # G and the chunks' moments in float64: G's bias row is the difference of nearly equal sums.
        G = torch.zeros(I, m + 1, n, dtype=torch.float64, device=W.device) if want_grad else None
        Wb64 = Wb.double()
        rW, r_sq = [], []
        s = 0
        for e in ends:
            h1c = h1[:, s:e]
            unsure = w_norm * norms[:, e - 1, None] >= b_abs  # (I, n): sign of z may change within the chunk
            cols = unsure.any(dim=0)
            on = ((b > 0) & ~cols).to(W.dtype)[:, None, :]  # surely on: r = z, linear
            Wb_on = Wb * on
            if want_grad:
                hwc = hw[:, :, s:e]
                G.baddbmm_(torch.bmm(hwc.double(), h1c.double()), Wb64 * on)
                rWc = torch.bmm(torch.bmm(Wb_on[:, :m], Wb.mT), h1c.mT)  # (I, m, rows)
            if want_loss:
                sq = torch.linalg.vecdot(torch.bmm(h1c, torch.bmm(Wb_on, Wb.mT)), h1c)  # (I, rows)
            U = cols.nonzero()[:, 0]
            if len(U):
                WbU = Wb.index_select(2, U)  # (I, m + 1, u)
                r = torch.relu_(torch.bmm(h1c, WbU, out=self._buffer(I * (e - s) * len(U)).view(I, e - s, len(U))))
                if want_grad:
                    G.index_add_(2, U, torch.bmm(hwc, r).double())
                    rWc.baddbmm_(WbU[:, :m], r.mT)
                if want_loss:
                    sq += torch.linalg.vecdot(r, r)
            if want_grad:
                rW.append(rWc)
            if want_loss:
                r_sq.append(sq)
            s = e
        rW_out = r_sq_out = None
        if want_grad:
            rW_out = torch.empty(I, m, T, dtype=W.dtype, device=W.device).scatter_(
                2, order[:, None, :].expand(I, m, T), torch.cat(rW, dim=2))
        if want_loss:
            r_sq_out = torch.empty(I, T, dtype=W.dtype, device=W.device).scatter_(1, order, torch.cat(r_sq, dim=1))
        return G.to(W.dtype) if want_grad else None, rW_out, r_sq_out

    def loss(self) -> torch.Tensor:
        with torch.no_grad():
            return self._pass(want_grad=False, want_loss=True)[0]

    def gradients(self, want_loss: bool) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            return self._pass(want_grad=True, want_loss=want_loss)


def init_params(
    n_instances: int, n_hidden: int, n_features: int, generator: torch.Generator | None = None,
    device: str | torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The toy model's initialisation: Xavier-normal ``W (n_instances, m, n)`` (std ``sqrt(2 / (n + m))``), zero ``b``."""
    std = math.sqrt(2.0 / (n_features + n_hidden))
    W = torch.randn(n_instances, n_hidden, n_features, generator=generator, device=device) * std
    return W, torch.zeros(n_instances, n_features, device=device)


class _AdamW:
    """AdamW (``torch.optim.AdamW``'s update, ``betas=(0.9, 0.999)``, ``eps=1e-8``) on gradients handed to it.

    Written out rather than ``torch.optim.AdamW``: the first step of a torch optimizer imports
    ``torch._dynamo``, several seconds on a busy machine, and a sweep makes one per batch of sizes.
    """

    def __init__(self, params: list[torch.Tensor], weight_decay: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params, self.weight_decay, self.betas, self.eps = params, float(weight_decay), betas, float(eps)
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0

    @torch.no_grad()
    def step(self, grads: list[torch.Tensor], lr: float) -> None:
        self.t += 1
        beta1, beta2 = self.betas
        bias1, bias2 = 1.0 - beta1**self.t, 1.0 - beta2**self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            p.mul_(1.0 - lr * self.weight_decay)
            m.lerp_(g, 1.0 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
            denom = v.sqrt().div_(math.sqrt(bias2)).add_(self.eps)
            p.addcdiv_(m, denom, value=-lr / bias1)


def train_points(
    W: torch.Tensor,
    b: torch.Tensor,
    data: SparsePoints,
    steps: int,
    lr: float = LR,
    weight_decay: float = WEIGHT_DECAY,
    warmup_steps: int | None = None,
    n_valid: Sequence[int] | torch.Tensor | None = None,
    log_every: int | None = None,
    on_steps: Callable[[int], object] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Full-batch AdamW on sparse points with a hand-written gradient: :func:`train_full_batch`, fast.

    ``W: (n_instances, m, n)`` and ``b: (n_instances, n)`` are the starting parameters (not
    modified); ``data`` holds ``n_points`` points per instance, of which instance ``i`` uses
    the first ``n_valid[i]`` (default: all; the rest is padding, weight 0). The recipe is
    :func:`train_full_batch`'s: the loss averaged over each instance's own points, lr
    ``lr * warmup_cosine(step, steps, warmup_steps)``.
    ``on_steps(k)`` is called after every ``k`` steps done (for progress bars).

    Returns ``(W, b, losses)``: the trained parameters and ``losses: (n_logged, n_instances)``,
    each instance's loss at steps ``0, log_every, ...`` and the last step, before that step's update.
    """
    W, b = _check_W_b(W, b)
    if not isinstance(data, SparsePoints):
        raise TypeError(f"data must be SparsePoints (from sparse_points), got {type(data).__name__}")
    data = _check_points("data", data, W)
    steps = check_positive_int("steps", steps)
    warmup = warmup_steps_for(steps) if warmup_steps is None else int(warmup_steps)
    log_every = max(1, steps // 100) if log_every is None else check_positive_int("log_every", log_every)
    I, T = data.n_instances, data.n_points
    valid = torch.full((I,), T, dtype=torch.long) if n_valid is None else torch.as_tensor(n_valid, dtype=torch.long).cpu()
    if valid.shape != (I,) or bool((valid < 1).any()) or bool((valid > T).any()):
        raise ValueError(f"n_valid must hold {I} counts in [1, {T}], got {valid.tolist()}")
    dev = W.device
    weight = (torch.arange(T)[None, :] < valid[:, None]).to(W.dtype) / valid[:, None].to(W.dtype)
    W, b = W.detach().clone(), b.detach().clone()
    engine = _FullBatch(W, b, data.idx.transpose(0, 1).contiguous().to(dev),
                        data.val.transpose(0, 1).contiguous().to(device=dev, dtype=W.dtype), weight.to(dev))
    optimizer = _AdamW([W, b], weight_decay)
    logged, losses = [], []
    done = 0
    for step in range(steps):
        want = step % log_every == 0 or step == steps - 1
        loss, gW, gb = engine.gradients(want)
        optimizer.step([gW, gb], lr * warmup_cosine(step, steps, warmup))
        if want:
            logged.append(step)
            losses.append(loss)
        if on_steps is not None and (step + 1) % 100 == 0:
            on_steps(step + 1 - done)
            done = step + 1
    if on_steps is not None and done < steps:
        on_steps(steps - done)
    return W, b, torch.stack(losses).cpu()


# --------------------------------------------------------------------------- the sweep over T


STEP_OVERHEAD_POINTS = 300
"""A training step's fixed cost, in padded points per instance: sizes merge into one batch while the
padding they add stays below it (a few dozen small operations cost about as much as 300 points)."""


def size_buckets(sizes: Sequence[int], overhead_points: int = STEP_OVERHEAD_POINTS) -> list[list[int]]:
    """Sizes grouped into batches padded to their largest size: consecutive sorted sizes join a batch
    while the padding that adds (``len(batch) * (T - max(batch))`` points) stays within ``overhead_points``."""
    buckets: list[list[int]] = []
    for T in sorted(sizes):
        if buckets and len(buckets[-1]) * (T - buckets[-1][-1]) <= overhead_points:
            buckets[-1].append(T)
        else:
            buckets.append([T])
    return buckets


def seeds_for(size: int, n_seeds: int, max_seed_points: int | None) -> int:
    """How many seeds a size ``T`` trains: ``n_seeds``, capped at ``max_seed_points // T`` (at least 1)."""
    if max_seed_points is None:
        return n_seeds
    return max(1, min(n_seeds, max_seed_points // size))


def _seed_for(seed: int, size: int, what: int) -> int:
    return (seed * 1_000_003 + size * 7_919 + what) % (2**63 - 1)


@dataclass
class SweepResult:
    """What :func:`sweep` trained, for each size ``T`` (``S`` sizes, up to ``R`` seeds each).

    Attributes:
        sizes: ``(S,)`` the training-set sizes ``T``, increasing.
        W: ``(S, m, n)``, b: ``(S, n)``: the kept model of each size (lowest training loss).
        kept: ``(S,)`` the kept seed of each size.
        train_loss: ``(S, R)`` every seed's final training loss (on its own training set,
            after training); NaN where a size trained fewer seeds.
        test_loss: ``(S, R)`` every seed's loss on fresh points (:func:`test_loss`); NaN likewise.
        data: per size, the kept seed's training set (:class:`SparsePoints`, one instance).
        all_W: per size, ``(R_s, m, n)`` every seed's trained ``W``; all_b: ``(R_s, n)``.
        config: the sweep's settings (``n_features``, ``feature_probability``, ``steps`` ...).
        seconds: wall time per batch of sizes and in total; ``cpu``: each batch's CPU time (its
            thread's), ``cpu_training`` their sum: what the training costs on an idle machine.
    """

    sizes: torch.Tensor
    W: torch.Tensor
    b: torch.Tensor
    kept: torch.Tensor
    train_loss: torch.Tensor
    test_loss: torch.Tensor
    data: list[SparsePoints]
    all_W: list[torch.Tensor]
    all_b: list[torch.Tensor]
    config: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)

    @property
    def kept_train_loss(self) -> torch.Tensor:
        """``(S,)`` the kept seed's training loss."""
        return self.train_loss.gather(1, self.kept[:, None])[:, 0]

    @property
    def kept_test_loss(self) -> torch.Tensor:
        """``(S,)`` the kept seed's test loss."""
        return self.test_loss.gather(1, self.kept[:, None])[:, 0]

    def index(self, size: int) -> int:
        """The row of size ``size``."""
        hits = (self.sizes == int(size)).nonzero()
        if len(hits) == 0:
            raise ValueError(f"size must be one of {self.sizes.tolist()}, got {size!r}")
        return int(hits[0, 0])

    def hidden(self, size: int) -> torch.Tensor:
        """``(T, m)`` the hidden vectors ``h_t = W x_t`` of the kept model's training points."""
        s = self.index(size)
        return hidden_vectors(self.W[s : s + 1], self.data[s])[0]

    def data_dimensionality(self) -> list[torch.Tensor]:
        """Per size, ``(T,)`` each training point's dimensionality (kept model)."""
        return [data_dimensionality(self.W[s : s + 1], d)[0] for s, d in enumerate(self.data)]

    def feature_dimensionality(self) -> torch.Tensor:
        """``(S, n)`` each feature's dimensionality (kept models)."""
        return feature_dimensionality(self.W)

    def rows(self) -> list[dict]:
        """One dict of plain numbers per size: the readouts the lesson, the figures and the tests use.

        ``T``, ``seeds``; ``train_loss``, ``test_loss`` (kept seed) and their ``_seeds`` lists;
        ``data_dim_median`` (median ``D_X``), ``data_dim_sum``, ``data_dim_top`` and
        ``feature_dim_top`` (:func:`top_dimensionality`), ``feature_dim_max``, ``feature_dim_sum``;
        ``represented`` (features with ``||W_i|| > 0.5``), ``W_norm`` (``||W||_F``), ``b_norm``.
        """
        out = []
        fdim = self.feature_dimensionality()
        m = self.W.shape[1]
        for s, (T, ddim) in enumerate(zip(self.sizes.tolist(), self.data_dimensionality())):
            seeds = int((~self.train_loss[s].isnan()).sum())
            out.append({
                "T": int(T),
                "seeds": seeds,
                "train_loss": float(self.kept_train_loss[s]),
                "test_loss": float(self.kept_test_loss[s]),
                "train_loss_seeds": self.train_loss[s, :seeds].tolist(),
                "test_loss_seeds": self.test_loss[s, :seeds].tolist(),
                "kept_seed": int(self.kept[s]),
                "data_dim_median": float(ddim.median()),
                "data_dim_sum": float(ddim.sum()),
                "data_dim_top": top_dimensionality(ddim, m),
                "feature_dim_max": float(fdim[s].max()),
                "feature_dim_sum": float(fdim[s].sum()),
                "feature_dim_top": top_dimensionality(fdim[s], m),
                "represented": int((self.W[s].norm(dim=0) > 0.5).sum()),
                "W_norm": float(self.W[s].norm()),
                "b_norm": float(self.b[s].norm()),
            })
        return out


def top_dimensionality(dims: torch.Tensor, m: int, k: int | None = None) -> float:
    """The mean of the ``k`` largest dimensionalities (default ``k = 2 m + 1``): the room the most
    favoured points (or features) get. Memorizing, about ``m / T`` for the points and little for the
    features; generalizing, the other way round."""
    k = 2 * m + 1 if k is None else k
    k = max(1, min(k, dims.numel()))
    return float(dims.flatten().topk(k).values.mean())


class _Progress:
    """Progress of a sweep: a rich bar in a terminal, one line updated in place in Jupyter, else nothing."""

    def __init__(self, enabled: bool, total: int, description: str) -> None:
        self.total, self.done, self.description = total, 0, description
        self.lock = threading.Lock()
        self.bar = self.handle = None
        self.start = self.shown = time.perf_counter()
        if not enabled or os.environ.get("NBGRADER_EXECUTION") or os.environ.get("SUPERCOURSE_GRADING"):
            return
        try:
            from IPython import get_ipython

            jupyter = type(get_ipython()).__name__ == "ZMQInteractiveShell"
        except ImportError:
            jupyter = False
        if jupyter:
            from IPython.display import display

            self.handle = display({"text/plain": self.line()}, raw=True, display_id=True)
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                            TimeElapsedColumn(), TimeRemainingColumn())
        self.task = self.bar.add_task(description, total=total)
        self.bar.start()

    def line(self) -> str:
        pct = 100.0 * self.done / max(1, self.total)
        return f"{self.description}: {pct:.0f}% done, {time.perf_counter() - self.start:.0f} s"

    def advance(self, work: int) -> None:
        with self.lock:
            self.done += work
            if self.bar is not None:
                self.bar.update(self.task, completed=self.done)
            elif self.handle is not None and time.perf_counter() - self.shown > 1.0:
                self.handle.update({"text/plain": self.line()}, raw=True)
                self.shown = time.perf_counter()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done)
            self.bar.stop()
        if self.handle is not None:
            self.handle.update({"text/plain": self.line()}, raw=True)


def sweep(
    sizes: Sequence[int],
    n_features: int,
    feature_probability: float,
    n_hidden: int = 2,
    n_seeds: int = 3,
    steps: int = 10_000,
    lr: float = LR,
    weight_decay: float = WEIGHT_DECAY,
    warmup_fraction: float = WARMUP_FRACTION,
    seed: int = 0,
    max_seed_points: int | None = None,
    n_test: int = TEST_POINTS,
    device: str | torch.device = "cpu",
    workers: int | None = None,
    progress: bool = True,
    log: Callable[[str], object] | None = None,
) -> SweepResult:
    """Train models on their own training set of each size ``T`` in ``sizes``; keep the best seed per ``T``.

    Size ``T`` trains :func:`seeds_for` ``(T, n_seeds, max_seed_points)`` seeds (``n_seeds``, or fewer
    where ``T * n_seeds`` would pass ``max_seed_points``). Every (size, seed) is one instance with
    its own data (:func:`sparse_points`) and initialisation (:func:`init_params`), both seeded by
    ``(seed, T)``. Sizes are grouped by :func:`size_buckets`; each group trains as one batch of
    instances padded to its largest size, with :func:`train_points`. Groups are independent, so on
    the CPU ``workers`` threads (default: torch's thread count) train them side by side, torch on one
    thread each; the result does not depend on ``workers``. For each size the seed with the lowest
    final training loss is kept. ``log(text)`` gets one line per finished group.

    Returns a :class:`SweepResult`.
    """
    sizes = sorted({check_positive_int("sizes", int(T)) for T in sizes})
    if not sizes:
        raise ValueError("sizes must name at least one training-set size")
    n_features = check_positive_int("n_features", n_features)
    n_hidden = check_positive_int("n_hidden", n_hidden)
    n_seeds = check_positive_int("n_seeds", n_seeds)
    steps = check_positive_int("steps", steps)
    n_test = check_positive_int("n_test", n_test)
    if max_seed_points is not None:
        max_seed_points = check_positive_int("max_seed_points", max_seed_points)
    p = _check_probability_float("feature_probability", feature_probability)
    dev = torch.device(device)
    warmup = warmup_steps_for(steps, warmup_fraction)
    buckets = size_buckets(sizes)
    workers = torch.get_num_threads() if workers is None else check_positive_int("workers", workers)
    workers = 1 if dev.type != "cpu" else max(1, min(workers, len(buckets)))
    seeds = {T: seeds_for(T, n_seeds, max_seed_points) for T in sizes}

    # Data and initial weights per size, drawn up front: independent of the threads.
    data = {T: sparse_points(T, n_features, p, seeds[T], torch.Generator().manual_seed(_seed_for(seed, T, 1)))
            for T in sizes}
    init = {T: init_params(seeds[T], n_hidden, n_features, torch.Generator().manual_seed(_seed_for(seed, T, 2)))
            for T in sizes}
    work = {i: max(bucket) * sum(seeds[T] for T in bucket) * steps for i, bucket in enumerate(buckets)}
    bar = _Progress(progress, sum(work.values()), f"training {sum(seeds.values())} models on {len(sizes)} sizes")
    trained: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    seconds: dict[str, float] = {}
    cpu_seconds: dict[str, float] = {}
    start = time.perf_counter()

    def train_bucket(i: int) -> None:
        bucket = buckets[i]
        t0, c0 = time.perf_counter(), time.thread_time()
        T_pad, n_inst = max(bucket), sum(seeds[T] for T in bucket)
        K = max(data[T].idx.shape[2] for T in bucket)
        idx = torch.zeros(T_pad, n_inst, K, dtype=torch.long)
        val = torch.zeros(T_pad, n_inst, K)
        first = 0
        for T in bucket:
            d = data[T]
            idx[:T, first : first + seeds[T], : d.idx.shape[2]] = d.idx
            val[:T, first : first + seeds[T], : d.val.shape[2]] = d.val
            first += seeds[T]
        W0 = torch.cat([init[T][0] for T in bucket]).to(dev)
        b0 = torch.cat([init[T][1] for T in bucket]).to(dev)
        valid = [T for T in bucket for _ in range(seeds[T])]
        W, b, _ = train_points(W0, b0, SparsePoints(idx, val, n_features).to(dev), steps, lr, weight_decay, warmup,
                               n_valid=valid, log_every=steps, on_steps=lambda k: bar.advance(k * T_pad * n_inst))
        first = 0
        for T in bucket:
            trained[T] = (W[first : first + seeds[T]].cpu(), b[first : first + seeds[T]].cpu())
            first += seeds[T]
        wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
        seconds[f"T={bucket[0]}-{bucket[-1]}"] = wall
        cpu_seconds[f"T={bucket[0]}-{bucket[-1]}"] = cpu
        if log is not None:
            log(f"T = {', '.join(map(str, bucket))}: {n_inst} models x {steps} steps in {wall:.1f} s ({cpu:.1f} s of CPU)")

    order = sorted(range(len(buckets)), key=lambda i: -work[i])  # largest first: the threads finish together
    try:
        if workers == 1:
            for i in order:
                train_bucket(i)
        else:
            _run_threads(train_bucket, order, workers)
    finally:
        bar.close()

    S, R = len(sizes), max(seeds.values())
    train_loss = torch.full((S, R), math.nan)
    test = torch.full((S, R), math.nan)
    test_gen = torch.Generator().manual_seed(_seed_for(seed, 0, 3))
    for s, T in enumerate(sizes):
        W, b = trained[T]
        train_loss[s, : seeds[T]] = reconstruction_loss(W, b, data[T])
        test[s, : seeds[T]] = test_loss(W, b, p, n_test, generator=test_gen)
    kept = torch.where(train_loss.isnan(), math.inf, train_loss).argmin(dim=1)
    seconds["total"] = time.perf_counter() - start
    seconds["cpu_training"] = sum(cpu_seconds.values())
    seconds["cpu"] = cpu_seconds
    return SweepResult(
        sizes=torch.tensor(sizes),
        W=torch.stack([trained[T][0][k] for T, k in zip(sizes, kept.tolist())]),
        b=torch.stack([trained[T][1][k] for T, k in zip(sizes, kept.tolist())]),
        kept=kept,
        train_loss=train_loss,
        test_loss=test,
        data=[data[T].instances(int(k)) for T, k in zip(sizes, kept)],
        all_W=[trained[T][0] for T in sizes],
        all_b=[trained[T][1] for T in sizes],
        config={"n_features": n_features, "feature_probability": p, "n_hidden": n_hidden, "n_seeds": n_seeds,
                "seeds": [seeds[T] for T in sizes], "max_seed_points": max_seed_points, "steps": steps, "lr": lr,
                "weight_decay": weight_decay, "warmup_steps": warmup, "seed": seed, "n_test": n_test,
                "device": str(dev), "workers": workers, "buckets": buckets},
        seconds=seconds,
    )


def _run_threads(fn: Callable[[int], None], items: list[int], workers: int) -> None:
    """``fn(item)`` for every item on ``workers`` threads, torch on one thread each; re-raises the first error."""
    todo: queue.Queue[int] = queue.Queue()
    for item in items:
        todo.put(item)
    errors: list[BaseException] = []

    def serve() -> None:
        while not errors:
            try:
                item = todo.get_nowait()
            except queue.Empty:
                return
            try:
                fn(item)
            except BaseException as err:  # noqa: BLE001 - handed to the caller
                errors.append(err)

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        threads = [threading.Thread(target=serve, daemon=True) for _ in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        torch.set_num_threads(old)
    if errors:
        raise errors[0]
