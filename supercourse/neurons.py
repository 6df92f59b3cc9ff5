"""Models with a privileged basis: neurons that can be read one at a time.

The toy model of lesson 1 has no activation function on its hidden layer, so
any rotation of ``h`` works as well as any other and no single hidden
dimension means anything. Put a ReLU on every hidden unit and the basis
becomes *privileged*: each unit (a **neuron**) now computes something that a
rotation would destroy, and it becomes meaningful to ask which features a
neuron responds to. The paper's section "Superposition in a Privileged Basis"
and "Computation in Superposition" study two such models, both batched over
instances here (parameters keep the instance dimension first):

* :class:`NeuronModel` (tied weights)::

      h  = ReLU(W x)              W: (n_instances, n_hidden, n_features)
      x' = ReLU(W^T h + b)        b: (n_instances, n_features)

* :class:`AbsValueModel` (untied, it *computes* ``y = |x|``)::

      h  = ReLU(W1 x)             W1: (n_instances, n_hidden, n_features)
      y' = ReLU(W2 h + b)         W2: (n_instances, n_features, n_hidden)

  with ``x_i`` zero with probability ``S`` and otherwise uniform on [-1, 1].

Both are :class:`~supercourse.model.SparseFeatureModel` s (the toy model's
base: densities, importances, the importance-weighted loss against
``target``), so :func:`supercourse.train` trains them; their gradients are
written out by hand in :mod:`supercourse.analytic` (a subclass with its own
``forward`` trains through autograd). The functional
forms :func:`neuron_forward` and :func:`abs_forward` are what the lesson's
exercises ask for.

**Neuron readouts.** Row ``j`` of ``W`` (or of ``W1``) holds the input weight
of every feature on neuron ``j``. Only *excitatory* weights make a neuron fire
(:func:`excitatory`: the positive ones when inputs are non-negative, as in the
neuron model; both signs for the signed inputs of the absolute-value model).
:func:`monosemanticity` is the share of a neuron's squared excitatory weights
on its largest feature (1 for a neuron with a single feature),
:func:`neuron_features` lists the features with a large weight on each neuron
(:func:`feature_neurons` the neurons of each feature), and
:func:`count_neurons` classifies neurons as monosemantic, polysemantic or dead. For the absolute-value model first remove the rescaling
symmetry (``W1`` row times ``a``, ``W2`` column divided by ``a`` computes the
same function) with :func:`balance_neurons`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ._validate import check_positive_int, check_tensor
from .data import sparse_uniform
from .instanced import Batches
from .model import SparseFeatureModel

__all__ = [
    "NeuronModel",
    "AbsValueModel",
    "neuron_forward",
    "abs_forward",
    "signed_sparse_uniform",
    "balance_neurons",
    "excitatory",
    "monosemanticity",
    "neuron_features",
    "feature_neurons",
    "count_neurons",
    "NeuronCounts",
    "select_instances",
    "expected_loss",
    "best_of_restarts",
    "MONOSEMANTIC_SHARE",
    "FEATURE_WEIGHT_SHARE",
    "DEAD_NORM",
]

MONOSEMANTIC_SHARE = 0.9
"""A neuron is monosemantic when at least this share of its squared input weights sits on one feature."""

FEATURE_WEIGHT_SHARE = 0.1
"""A feature counts as one of a neuron's features when its squared weight is at least this share of the row."""

DEAD_NORM = 0.1
"""A neuron whose excitatory input weights have norm below this responds to nothing: dead."""


# --------------------------------------------------------------------------- validation helpers


def _check_float(name: str, value: object, shape, names) -> torch.Tensor:
    return check_tensor(name, value, shape=shape, names=names)


def _check_same(name: str, t: torch.Tensor, ref_name: str, ref: torch.Tensor) -> None:
    if t.device != ref.device:
        raise ValueError(f"{name} is on {t.device} but {ref_name} is on {ref.device}; move one of them")
    if t.dtype != ref.dtype:
        raise TypeError(f"{name} has dtype {t.dtype} but {ref_name} has dtype {ref.dtype}")


def _check_fraction(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
    return float(value)


def _check_nonneg_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    if not float(value) >= 0.0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return float(value)


# --------------------------------------------------------------------------- functional forms


def neuron_forward(W: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The neuron model's output ``x' = ReLU(W^T ReLU(W x) + b)`` for every instance.

    Args:
        W: ``(n_instances, n_hidden, n_features)``; row ``W[k, j]`` is neuron ``j``'s input weights.
        b: ``(n_instances, n_features)``.
        x: ``(batch, n_instances, n_features)``.

    Returns:
        ``(batch, n_instances, n_features)``.
    """
    W = _check_float("W", W, (None, None, None), ("n_instances", "n_hidden", "n_features"))
    k, m, n = W.shape
    b = _check_float("b", b, (k, n), ("n_instances", "n_features"))
    x = _check_float("x", x, (None, k, n), ("batch", "n_instances", "n_features"))
    _check_same("b", b, "W", W)
    _check_same("x", x, "W", W)
    h = torch.relu(torch.einsum("bif,ihf->bih", x, W))
    return torch.relu(torch.einsum("bih,ihf->bif", h, W) + b)


def abs_forward(W1: torch.Tensor, W2: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The absolute-value model's output ``y' = ReLU(W2 ReLU(W1 x) + b)`` for every instance.

    Args:
        W1: ``(n_instances, n_hidden, n_features)`` input weights (row ``j``: neuron ``j``).
        W2: ``(n_instances, n_features, n_hidden)`` output weights (column ``j``: neuron ``j``).
        b: ``(n_instances, n_features)``.
        x: ``(batch, n_instances, n_features)``.

    Returns:
        ``(batch, n_instances, n_features)``, the model's estimate of ``|x|``.
    """
    W1 = _check_float("W1", W1, (None, None, None), ("n_instances", "n_hidden", "n_features"))
    k, m, n = W1.shape
    W2 = _check_float("W2", W2, (k, n, m), ("n_instances", "n_features", "n_hidden"))
    b = _check_float("b", b, (k, n), ("n_instances", "n_features"))
    x = _check_float("x", x, (None, k, n), ("batch", "n_instances", "n_features"))
    for name, t in (("W2", W2), ("b", b), ("x", x)):
        _check_same(name, t, "W1", W1)
    h = torch.relu(torch.einsum("bif,ihf->bih", x, W1))
    return torch.relu(torch.einsum("bih,ifh->bif", h, W2) + b)


def signed_sparse_uniform(
    batch_size: int, feature_probability: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Sparse features with random sign: zero with probability ``1 - p``, else uniform on [-1, 1).

    ``feature_probability: (n_instances, n_features)``. Returns
    ``(batch_size, n_instances, n_features)`` on its device.
    """
    x = sparse_uniform(batch_size, feature_probability, generator=generator)
    active = x != 0
    return x.mul_(2).sub_(1).mul_(active)


# --------------------------------------------------------------------------- the models


class NeuronModel(SparseFeatureModel):
    """The tied-weight model with a ReLU on every hidden unit, ``x -> ReLU(W^T ReLU(W x) + b)``.

    Args:
        n_features: ``n``. n_hidden: ``m``, the number of neurons.
        n_instances: independent models trained side by side.
        feature_probability: density ``1 - S`` (float, per instance, per feature or both;
            as in :class:`~supercourse.ToyModel`).
        importance: ``I_i`` (same shapes; a 1-D value of ambiguous length is read per feature).
        seed: seeds the Xavier-normal initialisation of ``W``.

    Attributes:
        W: ``(n_instances, n_hidden, n_features)``; row ``W[k, j]`` is neuron ``j``'s input weights,
            column ``W[k, :, i]`` feature ``i``'s direction.
        b_final: ``(n_instances, n_features)``, zero at init.
    """

    GRADIENT_OF = ("hidden", "forward", "target", "per_instance_loss", "loss")

    W: nn.Parameter
    b_final: nn.Parameter

    def __init__(
        self,
        n_features: int,
        n_hidden: int,
        n_instances: int = 1,
        feature_probability: float | torch.Tensor = 1.0,
        importance: float | torch.Tensor = 1.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(n_features, n_hidden, n_instances, feature_probability, importance)
        self.W = nn.Parameter(torch.empty(n_instances, n_hidden, n_features))
        self.b_final = nn.Parameter(torch.zeros(n_instances, n_features))
        self.reset_parameters(seed)

    def reset_parameters(self, seed: int | None = None) -> None:
        """Xavier-normal ``W`` (std ``sqrt(2 / (n + m))``), zero bias."""
        gen = torch.Generator(device=self.W.device).manual_seed(seed) if seed is not None else None
        with torch.no_grad():
            self.W.normal_(0.0, math.sqrt(2.0 / (self.n_features + self.n_hidden)), generator=gen)
            self.b_final.zero_()

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """Neuron activations ``ReLU(W x)``: ``(batch, n_instances, n_features) -> (batch, n_instances, n_hidden)``."""
        x = self._check_batch("x", x)
        return torch.relu(torch.einsum("bif,ihf->bih", x, self.W))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (batch, n_instances, n_features) -> x'`` of the same shape."""
        return torch.relu(torch.einsum("bih,ihf->bif", self.hidden(x), self.W) + self.b_final)

    def neuron_weights(self) -> torch.Tensor:
        """``(n_instances, n_hidden, n_features)``: each neuron's input weights (a detached CPU copy of ``W``)."""
        return self.W.detach().cpu().clone()

    def _analytic_step(self, batch_size: int, generator: torch.Generator, batches: Batches):
        """The hand-written step (:class:`supercourse.analytic.NeuronStep`), fed with ``batches``."""
        from .analytic import NeuronStep

        return NeuronStep(self, batch_size, batches)


class AbsValueModel(SparseFeatureModel):
    """An untied model that computes ``|x|``: ``y' = ReLU(W2 ReLU(W1 x) + b)``.

    Inputs are zero with probability ``S`` and otherwise uniform on [-1, 1)
    (:func:`signed_sparse_uniform`); the target is ``|x|``. Args as
    :class:`NeuronModel`.

    Attributes:
        W1: ``(n_instances, n_hidden, n_features)`` input weights, Xavier-normal.
        W2: ``(n_instances, n_features, n_hidden)`` output weights, Xavier-normal.
        b_final: ``(n_instances, n_features)``, zero at init.
    """

    GRADIENT_OF = ("hidden", "forward", "target", "per_instance_loss", "loss")

    W1: nn.Parameter
    W2: nn.Parameter
    b_final: nn.Parameter

    def __init__(
        self,
        n_features: int,
        n_hidden: int,
        n_instances: int = 1,
        feature_probability: float | torch.Tensor = 1.0,
        importance: float | torch.Tensor = 1.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(n_features, n_hidden, n_instances, feature_probability, importance)
        self.W1 = nn.Parameter(torch.empty(n_instances, n_hidden, n_features))
        self.W2 = nn.Parameter(torch.empty(n_instances, n_features, n_hidden))
        self.b_final = nn.Parameter(torch.zeros(n_instances, n_features))
        self.reset_parameters(seed)

    def reset_parameters(self, seed: int | None = None) -> None:
        """Xavier-normal ``W1`` and ``W2`` (std ``sqrt(2 / (n + m))``), zero bias."""
        gen = torch.Generator(device=self.W1.device).manual_seed(seed) if seed is not None else None
        std = math.sqrt(2.0 / (self.n_features + self.n_hidden))
        with torch.no_grad():
            self.W1.normal_(0.0, std, generator=gen)
            self.W2.normal_(0.0, std, generator=gen)
            self.b_final.zero_()

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """Neuron activations ``ReLU(W1 x)``: ``(batch, n_instances, n_features) -> (batch, n_instances, n_hidden)``."""
        x = self._check_batch("x", x)
        return torch.relu(torch.einsum("bif,ihf->bih", x, self.W1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (batch, n_instances, n_features) -> y'``, the estimate of ``|x|`` (same shape)."""
        return torch.relu(torch.einsum("bih,ifh->bif", self.hidden(x), self.W2) + self.b_final)

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """``|x|``."""
        return x.abs()

    def generate_batch(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Signed sparse features (:func:`signed_sparse_uniform`): ``(batch_size, n_instances, n_features)``."""
        return signed_sparse_uniform(batch_size, self.feature_probability, generator=generator)

    def neuron_weights(self) -> torch.Tensor:
        """``(n_instances, n_hidden, n_features)``: each neuron's input weights after :func:`balance_neurons`."""
        W1, _ = balance_neurons(self.W1.detach().cpu(), self.W2.detach().cpu())
        return W1

    def _analytic_step(self, batch_size: int, generator: torch.Generator, batches: Batches):
        """The hand-written step (:class:`supercourse.analytic.AbsValueStep`), fed with ``batches``."""
        from .analytic import AbsValueStep

        return AbsValueStep(self, batch_size, batches)


# --------------------------------------------------------------------------- neuron readouts


def balance_neurons(W1: torch.Tensor, W2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Remove the rescaling symmetry of a ReLU neuron: equal input and output weight norms.

    ``ReLU(a z) = a ReLU(z)`` for ``a > 0``, so scaling neuron ``j``'s input
    weights ``W1[:, j, :]`` by ``a`` and its output weights ``W2[:, :, j]`` by
    ``1 / a`` computes the same function. This picks ``a`` so that both have the
    norm ``sqrt(||W1_j|| ||W2_j||)``; a neuron with either norm zero is left as it is.

    Args:
        W1: ``(n_instances, n_hidden, n_features)``. W2: ``(n_instances, n_features, n_hidden)``.

    Returns:
        ``(W1, W2)`` rescaled, new tensors of the same shapes.
    """
    W1 = _check_float("W1", W1, (None, None, None), ("n_instances", "n_hidden", "n_features"))
    k, m, n = W1.shape
    W2 = _check_float("W2", W2, (k, n, m), ("n_instances", "n_features", "n_hidden"))
    n_in = W1.norm(dim=2)  # (k, m)
    n_out = W2.norm(dim=1)  # (k, m)
    ok = (n_in > 0) & (n_out > 0)
    a = torch.where(ok, (n_out / n_in.clamp_min(1e-30)).sqrt(), torch.ones_like(n_in))
    return W1 * a[:, :, None], W2 / a[:, None, :]


def _weights(W: object) -> torch.Tensor:
    return _check_float("W", W, (None, None, None), ("n_instances", "n_hidden", "n_features"))


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r} ({type(value).__name__})")
    return value


def excitatory(W: torch.Tensor, positive_only: bool = True) -> torch.Tensor:
    """The part of each neuron's input weights that can make it fire.

    With non-negative inputs (the neuron model) a neuron fires for feature ``i``
    only through ``W_ji > 0``; a negative weight inhibits it. With signed
    inputs (the absolute-value model) either sign can make it fire. Returns
    ``W.clamp_min(0)`` if ``positive_only``, else ``|W|``, shape ``(n_instances, n_hidden, n_features)``.
    """
    W = _weights(W)
    return W.clamp_min(0) if _check_bool("positive_only", positive_only) else W.abs()


def monosemanticity(W: torch.Tensor, positive_only: bool = True) -> torch.Tensor:
    """How much of each neuron belongs to one feature: ``max_i A_ji^2 / sum_i A_ji^2``.

    ``A`` is :func:`excitatory` (``max(W, 0)`` by default, ``|W|`` with
    ``positive_only=False``).

    Args:
        W: ``(n_instances, n_hidden, n_features)``; row ``j`` is neuron ``j``'s input weights.
        positive_only: read only the weights that excite the neuron on non-negative inputs.

    Returns:
        ``(n_instances, n_hidden)`` in ``[1/n, 1]``: 1 for a neuron that reads a
        single feature, ``1/k`` for one that reads ``k`` features equally; 0 for a
        neuron that nothing excites.
    """
    sq = excitatory(W, positive_only).square()
    total = sq.sum(dim=2)
    top = sq.amax(dim=2)
    return torch.where(total > 0, top / total.clamp_min(1e-30), torch.zeros_like(total))


def neuron_features(
    W: torch.Tensor,
    share: float = FEATURE_WEIGHT_SHARE,
    dead_norm: float = DEAD_NORM,
    positive_only: bool = True,
) -> list[list[list[int]]]:
    """The features each neuron reads: those holding at least ``share`` of its squared excitatory weights.

    Args:
        W: ``(n_instances, n_hidden, n_features)``.
        share: the fraction of ``sum_i A_ji^2`` a feature's ``A_ji^2`` must reach
            (``A`` = :func:`excitatory`).
        dead_norm: neurons with ``||A_j|| < dead_norm`` read nothing (an empty list).
        positive_only: as in :func:`excitatory`.

    Returns:
        ``[instance][neuron] -> feature indices``, sorted by decreasing weight.
    """
    A = excitatory(W, positive_only).detach().cpu()
    share = _check_fraction("share", share)
    dead_norm = _check_nonneg_number("dead_norm", dead_norm)
    sq = A.square()
    total = sq.sum(dim=2, keepdim=True)
    big = (sq >= share * total) & (total.sqrt() >= dead_norm) & (sq > 0)
    order = sq.argsort(dim=2, descending=True, stable=True)
    out: list[list[list[int]]] = []
    for k in range(A.shape[0]):
        out.append([[int(i) for i in order[k, j].tolist() if bool(big[k, j, i])] for j in range(A.shape[1])])
    return out


def feature_neurons(
    W: torch.Tensor, share: float = 0.25, min_norm: float = 0.5, positive_only: bool = True
) -> list[list[list[int]]]:
    """The neurons each represented feature excites: the feature-side view of :func:`neuron_features`.

    Args:
        W: ``(n_instances, n_hidden, n_features)``.
        share: a neuron counts when its ``A_ji^2`` is at least this share of ``sum_j A_ji^2``.
        min_norm: features whose excitatory column norm ``||A_i||`` is below this are
            not represented (an empty list).
        positive_only: as in :func:`excitatory`.

    Returns:
        ``[instance][feature] -> neuron indices``, sorted by decreasing weight. In
        the very sparse regime of the neuron model every feature gets a *pair*.
    """
    A = excitatory(W, positive_only).detach().cpu().mT  # (k, n, m)
    return neuron_features(A, share=share, dead_norm=min_norm, positive_only=True)


@dataclass(frozen=True)
class NeuronCounts:
    """Neurons of each instance by kind, each ``(n_instances,)`` int64.

    Attributes:
        monosemantic: neurons whose top feature holds at least ``MONOSEMANTIC_SHARE`` of their squared weights.
        polysemantic: live neurons that are not monosemantic.
        dead: neurons with input-weight norm below ``DEAD_NORM``.
    """

    monosemantic: torch.Tensor
    polysemantic: torch.Tensor
    dead: torch.Tensor

    def as_dict(self) -> dict[str, list[int]]:
        return {"monosemantic": self.monosemantic.tolist(), "polysemantic": self.polysemantic.tolist(), "dead": self.dead.tolist()}


def count_neurons(
    W: torch.Tensor,
    mono_share: float = MONOSEMANTIC_SHARE,
    dead_norm: float = DEAD_NORM,
    positive_only: bool = True,
) -> NeuronCounts:
    """Count each instance's monosemantic, polysemantic and dead neurons.

    Args:
        W: ``(n_instances, n_hidden, n_features)``.
        mono_share: the :func:`monosemanticity` a live neuron needs to count as monosemantic.
        dead_norm: neurons whose excitatory weights (:func:`excitatory`) have norm below this are dead.
        positive_only: as in :func:`excitatory`.

    Returns:
        a :class:`NeuronCounts`; the three counts add up to ``n_hidden``.
    """
    A = excitatory(W, positive_only).detach()
    mono_share = _check_fraction("mono_share", mono_share)
    dead_norm = _check_nonneg_number("dead_norm", dead_norm)
    alive = A.norm(dim=2) >= dead_norm
    mono = alive & (monosemanticity(A) >= mono_share)
    return NeuronCounts(
        monosemantic=mono.sum(dim=1).long(),
        polysemantic=(alive & ~mono).sum(dim=1).long(),
        dead=(~alive).sum(dim=1).long(),
    )


# --------------------------------------------------------------------------- restarts


def _check_model(model: object) -> NeuronModel | AbsValueModel:
    if not isinstance(model, (NeuronModel, AbsValueModel)):
        raise TypeError(f"model must be a NeuronModel or an AbsValueModel, got {type(model).__name__}")
    return model


@torch.no_grad()
def expected_loss(model: NeuronModel | AbsValueModel, n_samples: int = 2**16, seed: int = 0) -> torch.Tensor:
    """Each instance's loss on one large fresh seeded batch (a low-noise estimate): ``(n_instances,)`` on the CPU."""
    model = _check_model(model)
    n_samples = check_positive_int("n_samples", n_samples)
    gen = torch.Generator(device=model.device).manual_seed(seed)
    total = torch.zeros(model.n_instances, dtype=torch.float64)
    chunk = max(1, 2**20 // (model.n_instances * model.n_features))
    done = 0
    while done < n_samples:
        size = min(chunk, n_samples - done)
        x = model.generate_batch(size, generator=gen)
        total += model.per_instance_loss(x, model(x)).double().cpu() * size
        done += size
    return (total / n_samples).float()


@torch.no_grad()
def select_instances(model: NeuronModel | AbsValueModel, index: torch.Tensor | list[int]) -> NeuronModel | AbsValueModel:
    """A new model of the same kind made of ``model``'s instances ``index`` (weights, densities, importances copied)."""
    model = _check_model(model)
    idx = torch.as_tensor(index, dtype=torch.long).reshape(-1)
    if idx.numel() == 0 or int(idx.min()) < 0 or int(idx.max()) >= model.n_instances:
        raise ValueError(f"index must hold instance numbers in [0, {model.n_instances}), got {idx.tolist()}")
    out = type(model)(
        model.n_features,
        model.n_hidden,
        n_instances=idx.numel(),
        feature_probability=model.feature_probability[idx.to(model.device)].cpu(),
        importance=model.importance[idx.to(model.device)].cpu(),
    ).to(model.device)
    dev_idx = idx.to(model.device)
    for name, p in model.named_parameters():
        getattr(out, name).copy_(p[dev_idx])
    return out


def best_of_restarts(
    model: NeuronModel | AbsValueModel, restarts: int, seed: int = 0, n_samples: int = 2**16
) -> tuple[NeuronModel | AbsValueModel, torch.Tensor, torch.Tensor]:
    """Keep, for each setting, the restart with the lowest :func:`expected_loss`.

    ``model`` holds ``restarts * n`` instances, restart-major (instance ``r * n + k``
    is restart ``r`` of setting ``k``). Returns the kept model (``n`` instances),
    the chosen restart of each setting ``(n,)`` and every restart's loss ``(n, restarts)``.
    """
    model = _check_model(model)
    restarts = check_positive_int("restarts", restarts)
    if model.n_instances % restarts:
        raise ValueError(f"model.n_instances={model.n_instances} is not a multiple of restarts={restarts}")
    n = model.n_instances // restarts
    losses = expected_loss(model, n_samples=n_samples, seed=seed).reshape(restarts, n).T.contiguous()
    chosen = losses.argmin(dim=1)
    return select_instances(model, chosen * n + torch.arange(n)), chosen, losses
