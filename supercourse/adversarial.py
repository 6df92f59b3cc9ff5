"""Adversarial vulnerability of the toy model, and how superposition makes it worse.

For the ReLU-output model ``x' = ReLU(W^T W x + b)`` a perturbation ``delta`` of
the input moves the pre-activation by ``W^T W delta``. The attack that moves
feature ``i``'s pre-activation the most for a given L2 norm ``eps`` is the
perturbation along row ``i`` of ``W^T W``::

    delta_i = eps * (W^T W)_i / ||(W^T W)_i||

It raises feature ``i``'s pre-activation by ``eps * ||(W^T W)_i||``: by ``eps``
for a feature with a dedicated dimension (``(W^T W)_i = e_i``), by ``eps *
sqrt(sum_j (W_i . W_j)^2)`` for one in superposition, since every feature that
shares its direction adds to the attack. No gradient is needed, which matters
for sparse models: a gradient attack sees almost no signal when nearly every
ReLU is off.

The attack's size is a fixed fraction (:data:`ATTACK_FRACTION`, the paper's
0.1) of the average input norm, so models trained at different sparsities are
attacked in proportion to their data. A model's **vulnerability** is the loss
increase ``L' - L`` of the most damaging single-feature attack; it is compared
with the vulnerability of the model *without* superposition, which gives each
of the first ``m`` features a dedicated dimension (``W = [I_m | 0]``, ``b = 0``)
and whose worst attack raises the loss by exactly ``max_i I_i eps^2 / n``.
"""

from __future__ import annotations

import torch

from ._validate import check_tensor
from .data import per_feature

__all__ = [
    "ATTACK_FRACTION",
    "attack_directions",
    "mean_input_norm",
    "attack_perturbations",
    "attacked_loss_increase",
    "vulnerability",
    "no_superposition_weights",
    "relative_vulnerability",
    "features_per_dimension",
]

ATTACK_FRACTION = 0.1
"""The attack's L2 norm as a fraction of the average input norm (the paper's value)."""

_EPS = 1e-12


def _check_W(W: object) -> torch.Tensor:
    return check_tensor("W", W, shape=(None, None, None), names=("n_instances", "n_hidden", "n_features")).detach()


def _check_x(x: object, W: torch.Tensor) -> torch.Tensor:
    x = check_tensor("x", x, shape=(None, W.shape[0], W.shape[2]), names=("batch", "n_instances", "n_features"))
    if x.shape[0] == 0:
        raise ValueError("x must hold at least one example, got a batch of 0")
    return x.detach()


def _check_fraction(fraction: object) -> float:
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
        raise TypeError(f"fraction must be a number, got {fraction!r} ({type(fraction).__name__})")
    if not fraction >= 0:
        raise ValueError(f"fraction must be >= 0, got {fraction!r}")
    return float(fraction)


def attack_directions(W: torch.Tensor) -> torch.Tensor:
    """The optimal L2 attack direction on each feature: rows of ``W^T W``, normalised.

    Args:
        W: ``(n_instances, n_hidden, n_features)``.

    Returns:
        ``(n_instances, n_features, n_features)``: entry ``[k, i]`` is the unit
        vector ``(W^T W)_i / ||(W^T W)_i||`` of instance ``k`` (all zero for an
        unlearned feature, whose row is zero).
    """
    W = _check_W(W)
    G = W.mT @ W  # (k, n, n), symmetric: row i = column i
    norms = G.norm(dim=-1, keepdim=True)
    return torch.where(norms > _EPS, G / norms.clamp_min(_EPS), torch.zeros_like(G))


def mean_input_norm(x: torch.Tensor) -> torch.Tensor:
    """The average L2 norm of the inputs of each instance: ``x: (batch, n_instances, n_features) -> (n_instances,)``."""
    x = check_tensor("x", x, shape=(None, None, None), names=("batch", "n_instances", "n_features")).detach()
    return x.norm(dim=-1).mean(dim=0)


def attack_perturbations(W: torch.Tensor, x: torch.Tensor, fraction: float = ATTACK_FRACTION) -> torch.Tensor:
    """The attack on every feature, scaled to ``fraction`` of the average input norm.

    Args:
        W: ``(n_instances, n_hidden, n_features)``.
        x: ``(batch, n_instances, n_features)`` inputs that define the average norm.
        fraction: the attack's norm over the average input norm (default 0.1).

    Returns:
        ``(n_instances, n_features, n_features)``: ``[k, i]`` is the perturbation
        ``delta_i`` attacking feature ``i`` of instance ``k``, of norm
        ``fraction * mean_b ||x[b, k]||`` (zero for an unlearned feature).
    """
    W = _check_W(W)
    x = _check_x(x, W)
    eps = _check_fraction(fraction) * mean_input_norm(x)  # (k,)
    return eps[:, None, None] * attack_directions(W)


def _outputs(W: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``ReLU(W^T W x + b)`` for ``x: (..., n_instances, n_features)``."""
    G = W.mT @ W
    return torch.relu(torch.einsum("kij,...kj->...ki", G, x) + b)


def _check_b_importance(b: object, importance: object, W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    k, n = W.shape[0], W.shape[2]
    b = check_tensor("b", b, shape=(k, n), names=("n_instances", "n_features")).detach()
    imp = per_feature("importance", importance, k, n, "features").to(W.device, W.dtype)
    return b.to(W.dtype), imp


def attacked_loss_increase(
    W: torch.Tensor,
    b: torch.Tensor,
    x: torch.Tensor,
    importance: float | torch.Tensor = 1.0,
    fraction: float = ATTACK_FRACTION,
) -> torch.Tensor:
    """``L'_i - L``: how much attacking feature ``i`` raises the loss, for every feature.

    The loss is the course's importance-weighted squared error, mean over the
    batch and the features, against the *clean* input: ``L'_i`` compares
    ``ReLU(W^T W (x + delta_i) + b)`` with ``x``.

    Args:
        W: ``(n_instances, n_hidden, n_features)``; b: ``(n_instances, n_features)``.
        x: ``(batch, n_instances, n_features)`` inputs (the same batch for ``L`` and ``L'``).
        importance: a float, ``(n_features,)``, ``(n_instances,)`` or ``(n_instances, n_features)``.
        fraction: the attack's norm over the average input norm.

    Returns:
        ``(n_instances, n_features)``.
    """
    W = _check_W(W)
    x = _check_x(x, W).to(W.dtype)
    b, imp = _check_b_importance(b, importance, W)
    delta = attack_perturbations(W, x, fraction)  # (k, n_attacked, n)
    G = W.mT @ W
    clean = (imp * (x - _outputs(W, b, x)) ** 2).mean(dim=(0, 2))  # (k,)
    n = W.shape[2]
    # Attack a chunk of features at a time: (batch, k, chunk, n) stays below about 2^24 numbers.
    chunk = max(1, (1 << 24) // max(1, x.shape[0] * x.shape[1] * n))
    parts = []
    for a0 in range(0, n, chunk):
        attacked_x = x[:, :, None, :] + delta[:, a0 : a0 + chunk]  # (batch, k, chunk, n)
        out = torch.relu(torch.einsum("kij,bkaj->bkai", G, attacked_x) + b[:, None, :])
        parts.append((imp[:, None, :] * (x[:, :, None, :] - out) ** 2).mean(dim=(0, 3)))  # (k, chunk)
    attacked = torch.cat(parts, dim=1)
    return attacked - clean[:, None]


def vulnerability(
    W: torch.Tensor,
    b: torch.Tensor,
    x: torch.Tensor,
    importance: float | torch.Tensor = 1.0,
    fraction: float = ATTACK_FRACTION,
) -> torch.Tensor:
    """The loss increase of the worst single-feature attack, ``max_i (L'_i - L)``: ``(n_instances,)``.

    Arguments as in :func:`attacked_loss_increase`.
    """
    return attacked_loss_increase(W, b, x, importance, fraction).max(dim=-1).values


def no_superposition_weights(
    n_instances: int, n_hidden: int, n_features: int, importance: float | torch.Tensor = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The model without superposition: the ``n_hidden`` most important features on dedicated dimensions.

    Returns ``W: (n_instances, n_hidden, n_features)`` with ``W[k, j, f_j] = 1``
    for the ``j``-th most important feature ``f_j`` of instance ``k`` (the first
    ones on ties) and ``b = 0: (n_instances, n_features)``.
    """
    if n_hidden > n_features:
        raise ValueError(f"n_hidden must be <= n_features, got n_hidden={n_hidden} and n_features={n_features}")
    imp = per_feature("importance", importance, n_instances, n_features, "features")
    order = torch.sort(-imp, dim=-1, stable=True).indices[:, :n_hidden]  # (k, m)
    W = torch.zeros(n_instances, n_hidden, n_features)
    W.scatter_(2, order[:, :, None], 1.0)
    return W, torch.zeros(n_instances, n_features)


def relative_vulnerability(
    W: torch.Tensor,
    b: torch.Tensor,
    x: torch.Tensor,
    importance: float | torch.Tensor = 1.0,
    fraction: float = ATTACK_FRACTION,
) -> torch.Tensor:
    """:func:`vulnerability` of ``(W, b)`` over that of the model without superposition on the same inputs.

    ``(n_instances,)``: 1 for a model whose features all have dedicated
    dimensions, more when its features share them.
    """
    W = _check_W(W)
    W0, b0 = no_superposition_weights(W.shape[0], W.shape[1], W.shape[2], importance)
    base = vulnerability(W0.to(W), b0.to(W), x, importance, fraction)
    return vulnerability(W, b, x, importance, fraction) / base.clamp_min(_EPS)


def features_per_dimension(W: torch.Tensor) -> torch.Tensor:
    """``||W||_F^2 / m`` for each instance (the inverse of ``D*``): ``(n_instances,)``."""
    W = _check_W(W)
    return W.square().sum(dim=(1, 2)) / W.shape[1]
