"""The exact theory of the smallest superposition: n = 2 features, m = 1 dimension.

Feature 1 has importance 1, the extra feature importance ``r``; both are
non-zero with probability ``p`` (uniform on [0, 1] when on). With one hidden
dimension the extra feature can be

* **not represented**: ``W = [1, 0]``, its bias set to its mean ``p/2``;
  expected loss ``r (p/3 - p^2/4)``;
* **dedicated**: ``W = [0, 1]``, feature 1 dropped instead; loss ``p/3 - p^2/4``;
* **in superposition** (antipodal): ``W = [1, -1]``, ``b = 0``; the ReLU removes
  the interference whenever only one feature is on, so only both-on inputs
  cost: loss ``(1 + r) p^2 / 6``.

The phase diagram is the argmin. All three meet at the triple point
``r = 1, p = 4/7``: there ``p/3 - p^2/4 = p^2/3``.
"""

from __future__ import annotations

import torch

from ._validate import check_nonnegative, check_probability, check_tensor

__all__ = [
    "PHASES",
    "NOT_REPRESENTED",
    "DEDICATED",
    "SUPERPOSITION",
    "loss_not_represented",
    "loss_dedicated",
    "loss_antipodal",
    "configuration_losses",
    "phase_diagram",
    "triple_point",
    "classify_n2m1",
    "PHASES_N3M2",
    "N3M2_NULL_DIRECTIONS",
    "configuration_losses_n3m2",
    "phase_diagram_n3m2",
]

PHASES = ("not represented", "dedicated", "superposition")
NOT_REPRESENTED, DEDICATED, SUPERPOSITION = 0, 1, 2


def _as_tensors(r, p) -> tuple[torch.Tensor, torch.Tensor]:
    r = torch.as_tensor(r, dtype=torch.float64)
    p = torch.as_tensor(p, dtype=torch.float64)
    check_nonnegative("relative_importance", r)
    check_probability("density", p)
    return torch.broadcast_tensors(r, p)


def loss_not_represented(r, p) -> torch.Tensor:
    """Expected loss with ``W = [1, 0]``: ``r (p/3 - p^2/4)``."""
    r, p = _as_tensors(r, p)
    return r * (p / 3 - p**2 / 4)


def loss_dedicated(r, p) -> torch.Tensor:
    """Expected loss with ``W = [0, 1]``: ``p/3 - p^2/4``."""
    r, p = _as_tensors(r, p)
    return (p / 3 - p**2 / 4) * torch.ones_like(r)


def loss_antipodal(r, p) -> torch.Tensor:
    """Expected loss with ``W = [1, -1]``, ``b = 0``: ``(1 + r) p^2 / 6``."""
    r, p = _as_tensors(r, p)
    return (1 + r) * p**2 / 6


def configuration_losses(r, p) -> torch.Tensor:
    """The three losses stacked on a last axis, in the order of :data:`PHASES`."""
    return torch.stack([loss_not_represented(r, p), loss_dedicated(r, p), loss_antipodal(r, p)], dim=-1)


def phase_diagram(relative_importance, density) -> torch.Tensor:
    """The optimal configuration at each ``(r, p)`` grid point.

    ``relative_importance: (R,)``, ``density: (P,)`` ->
    ``labels: (R, P)`` integers indexing :data:`PHASES`.
    """
    r = torch.as_tensor(relative_importance, dtype=torch.float64).reshape(-1, 1)
    p = torch.as_tensor(density, dtype=torch.float64).reshape(1, -1)
    return configuration_losses(r, p).argmin(dim=-1)


def triple_point() -> tuple[float, float]:
    """``(r, p) = (1, 4/7)``, where all three configurations have the same loss."""
    return 1.0, 4.0 / 7.0


def classify_n2m1(W: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Label trained n=2, m=1 models by what they do with the extra feature (index 1).

    ``W: (n_instances, 1, 2)`` -> ``(n_instances,)`` integers indexing :data:`PHASES`:
    superposition when both features are represented with opposite signs,
    dedicated when only the extra feature is, otherwise not represented.
    """
    W = check_tensor("W", W, shape=(None, 1, 2), names=("n_instances", "n_hidden=1", "n_features=2")).detach()
    w1, w2 = W[:, 0, 0], W[:, 0, 1]
    on1, on2 = w1.abs() > threshold, w2.abs() > threshold
    labels = torch.full_like(w1, NOT_REPRESENTED, dtype=torch.long)
    labels[on2 & ~on1] = DEDICATED
    labels[on1 & on2 & (w1 * w2 < 0)] = SUPERPOSITION
    return labels


# --------------------------------------------------------------------------- n = 3 features, m = 2 dimensions

PHASES_N3M2 = (
    "not represented",
    "dedicated, a feature dropped",
    "antipodal to a feature",
    "dedicated, others antipodal",
)
"""The four candidate solutions for three features in two dimensions, named by what the extra (third) feature gets."""

N3M2_NULL_DIRECTIONS = ((0, 0, 1), (1, 0, 0), (0, 1, 1), (1, 1, 0))
"""The direction each candidate's ``W`` ignores (``W v = 0``), in the order of :data:`PHASES_N3M2`.

``W ⊥ [0,0,1]`` drops the extra feature; ``W ⊥ [1,0,0]`` drops a first feature
so the extra one gets its dimension; ``W ⊥ [0,1,1]`` makes the extra feature
antipodal to a first one (``W_2 = -W_3``); ``W ⊥ [1,1,0]`` puts the first two
in an antipodal pair and gives the extra feature a dimension. (The paper leaves
out ``W ⊥ [1,1,1]``, all three in joint superposition.)
"""


def configuration_losses_n3m2(r, p) -> torch.Tensor:
    """Expected losses (summed over features) of the four candidates of :data:`PHASES_N3M2`, on a last axis.

    Features 1 and 2 have importance 1, the extra feature ``r``; all have density
    ``p``. A dropped feature costs its importance times its variance
    ``p/3 - p^2/4``; an antipodal pair costs ``p^2/6`` per unit of importance;
    dedicated features cost nothing::

        W ⊥ [0,0,1]: r (p/3 - p^2/4)      W ⊥ [1,0,0]: p/3 - p^2/4
        W ⊥ [0,1,1]: (1 + r) p^2 / 6      W ⊥ [1,1,0]: p^2 / 3

    All four are equal at the triple point ``r = 1, p = 4/7``.
    """
    r, p = _as_tensors(r, p)
    drop = p / 3 - p**2 / 4
    return torch.stack([r * drop, drop * torch.ones_like(r), (1 + r) * p**2 / 6, p**2 / 3 * torch.ones_like(r)], dim=-1)


def phase_diagram_n3m2(relative_importance, density) -> torch.Tensor:
    """The best of the four ``n = 3, m = 2`` candidates at each point: ``(R,), (P,) -> (R, P)`` indexing :data:`PHASES_N3M2`."""
    r = torch.as_tensor(relative_importance, dtype=torch.float64).reshape(-1, 1)
    p = torch.as_tensor(density, dtype=torch.float64).reshape(1, -1)
    return configuration_losses_n3m2(r, p).argmin(dim=-1)
