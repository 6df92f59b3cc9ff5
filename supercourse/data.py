"""Sparse synthetic features: the data every toy model in the course is trained on.

Each feature is 0 with probability ``1 - p`` (the sparsity ``S``) and otherwise
uniform on [0, 1]. Batches are laid out ``(batch, n_instances, n_features)`` as in
the paper's notebook, so one batch feeds many independently-trained models.

Three generators:

* :func:`sparse_uniform` independent features (the paper's main setting).
* :func:`correlated_sparse` sets of features that are zero or non-zero together.
* :func:`anticorrelated_sparse` sets in which at most one feature is active.

All three take the *marginal* probability that each feature is non-zero, so a
feature has the same density whichever generator made it.
"""

from __future__ import annotations

from typing import Literal

import torch

from ._validate import check_positive_int, check_probability, check_tensor

__all__ = [
    "per_feature",
    "sparse_uniform",
    "correlated_sparse",
    "anticorrelated_sparse",
]


def per_feature(
    name: str,
    value: float | torch.Tensor,
    n_instances: int,
    n_features: int,
    prefer: Literal["instances", "features"] = "instances",
) -> torch.Tensor:
    """Broadcast a float or a tensor to shape ``(n_instances, n_features)``.

    Accepts a number, or a tensor (or list) of shape ``(n_instances,)``,
    ``(n_features,)`` or ``(n_instances, n_features)``. A 1-D value whose length
    matches both sizes is read along ``prefer``. Returns a new float32 tensor.
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a float or a tensor, got a bool")
    try:
        t = torch.as_tensor(value, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{name} must be a float or a tensor, got {type(value).__name__}") from err
    if isinstance(value, torch.Tensor):
        t = value.detach().to(dtype=torch.float32, device="cpu")
    if t.dim() == 0:
        return t.expand(n_instances, n_features).clone()
    if t.dim() == 1:
        along_instances = t.shape[0] == n_instances
        along_features = t.shape[0] == n_features
        if along_instances and (prefer == "instances" or not along_features):
            return t[:, None].expand(n_instances, n_features).clone()
        if along_features:
            return t[None, :].expand(n_instances, n_features).clone()
    if t.dim() == 2 and tuple(t.shape) == (n_instances, n_features):
        return t.clone()
    raise ValueError(
        f"{name} must be a float or have shape (n_instances={n_instances},), "
        f"(n_features={n_features},) or ({n_instances}, {n_features}); got shape {tuple(t.shape)}"
    )


def _check_density(name: str, p: torch.Tensor) -> torch.Tensor:
    check_tensor(name, p, shape=(None, None), names=("n_instances", "n_features"))
    return check_probability(name, p)


def sparse_uniform(
    batch_size: int,
    feature_probability: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Independent sparse features.

    ``feature_probability: (n_instances, n_features)`` is the chance that each
    feature is non-zero; non-zero values are uniform on [0, 1).
    Returns ``x: (batch_size, n_instances, n_features)`` on the device of
    ``feature_probability``.

    One uniform draw ``u`` per entry decides both: the feature is active when
    ``u < p`` and its value is then ``u / p``, which is uniform on [0, 1) given
    that it is active. This halves the random numbers needed.
    """
    batch_size = check_positive_int("batch_size", batch_size)
    p = _check_density("feature_probability", feature_probability)
    u = torch.rand((batch_size, *p.shape), generator=generator, device=p.device, dtype=p.dtype)
    return sparse_from_uniform(u, p)


def sparse_from_uniform(u: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Turn uniform draws ``u`` into sparse features of density ``p`` (in place).

    ``u: (..., n_features)`` in [0, 1), ``p`` broadcastable to it. Entries with
    ``u >= p`` become 0, the rest ``u / p``.
    """
    # A density of 0 maps every u > 0 far above 1 (and u == 0 to the value 0).
    u.mul_(p.clamp_min(1e-30).reciprocal())
    return u.mul_(u < 1)


def _set_layout(name: str, feature_probability: torch.Tensor, set_size: int) -> tuple[int, int]:
    set_size = check_positive_int("set_size", set_size)
    p = _check_density(name, feature_probability)
    return p.shape[0], p.shape[1]


def correlated_sparse(
    batch_size: int,
    feature_probability: torch.Tensor,
    set_size: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sets of ``set_size`` features that are zero or non-zero together.

    ``feature_probability: (n_instances, n_sets)`` is each feature's marginal
    density (shared by the features of a set). Values of active features are
    independent uniforms on [0, 1).
    Returns ``(batch_size, n_instances, n_sets * set_size)``; features
    ``k*set_size ... (k+1)*set_size - 1`` form set ``k``.
    """
    batch_size = check_positive_int("batch_size", batch_size)
    n_inst, n_sets = _set_layout("feature_probability", feature_probability, set_size)
    p = feature_probability
    gen = dict(generator=generator, device=p.device, dtype=p.dtype)
    active = torch.rand((batch_size, n_inst, n_sets, 1), **gen) < p[..., None]
    values = torch.rand((batch_size, n_inst, n_sets, set_size), **gen)
    return (values * active).reshape(batch_size, n_inst, n_sets * set_size)


def anticorrelated_sparse(
    batch_size: int,
    feature_probability: torch.Tensor,
    set_size: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sets of ``set_size`` features of which at most one is non-zero.

    ``feature_probability: (n_instances, n_sets)`` is each feature's marginal
    density: a set has an active feature with probability ``set_size * p``
    (so ``p <= 1 / set_size``), and which one is uniform over the set.
    Returns ``(batch_size, n_instances, n_sets * set_size)``.
    """
    batch_size = check_positive_int("batch_size", batch_size)
    n_inst, n_sets = _set_layout("feature_probability", feature_probability, set_size)
    p = feature_probability
    if (p * set_size > 1 + 1e-6).any():
        raise ValueError(
            f"feature_probability must be <= 1/set_size = {1 / set_size:g} for anticorrelated sets "
            f"(at most one active feature per set), got {p.max().item():g}"
        )
    gen = dict(generator=generator, device=p.device, dtype=p.dtype)
    set_active = torch.rand((batch_size, n_inst, n_sets), **gen) < p * set_size
    which = torch.randint(set_size, (batch_size, n_inst, n_sets), generator=generator, device=p.device)
    onehot = torch.nn.functional.one_hot(which, set_size).to(p.dtype) * set_active[..., None]
    values = torch.rand((batch_size, n_inst, n_sets, set_size), **gen)
    return (values * onehot).reshape(batch_size, n_inst, n_sets * set_size)
