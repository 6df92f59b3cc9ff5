"""The sparse-feature models of the course, and the tied-weight toy model of superposition.

:class:`SparseFeatureModel` is what every model trained on sparse features
shares (this toy model, and the neuron models of :mod:`supercourse.neurons`):
``n_features`` inputs, ``n_hidden`` hidden units, each instance's feature
densities and importances, and the importance-weighted squared error against
:meth:`~supercourse.instanced.InstancedModel.target`.

For each instance of :class:`ToyModel`, with ``W: (n_hidden, n_features)`` and ``b: (n_features,)``::

    h  = W x                      (n_hidden,)   the bottleneck
    x' = ReLU(W^T h + b)          (n_features,) ReLU-output model
    x' = W^T h + b                (n_features,) linear model

Parameters keep the instance dimension first, so a single ``einsum`` runs every
instance: ``W: (n_instances, n_hidden, n_features)``,
``b_final: (n_instances, n_features)``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from ._validate import check_nonnegative, check_positive_int, check_probability
from .data import per_feature, sparse_uniform
from .instanced import Batches, InstancedModel

__all__ = ["SparseFeatureModel", "ToyModel", "ACTIVATIONS"]

ACTIVATIONS = ("relu", "linear")


class SparseFeatureModel(InstancedModel):
    """Base of the models trained on sparse features: sizes, densities, importances, the weighted loss.

    Args:
        n_features: number of input features ``n``.
        n_hidden: hidden width ``m``.
        n_instances: number of independent models trained side by side.
        feature_probability: density ``1 - S`` of each feature; a float or a
            tensor of shape ``(n_instances,)``, ``(n_features,)`` or
            ``(n_instances, n_features)`` (a 1-D value of ambiguous length is
            read per instance).
        importance: weight ``I_i`` of each feature's squared error; same shapes
            (a 1-D value of ambiguous length is read per feature).

    Attributes:
        feature_probability, importance: buffers ``(n_instances, n_features)``.
    """

    INPUT_DIM = "n_features"

    feature_probability: torch.Tensor
    importance: torch.Tensor
    b_final: nn.Parameter

    def __init__(
        self,
        n_features: int,
        n_hidden: int,
        n_instances: int = 1,
        feature_probability: float | torch.Tensor = 1.0,
        importance: float | torch.Tensor = 1.0,
    ) -> None:
        self_n_features = check_positive_int("n_features", n_features)
        self_n_hidden = check_positive_int("n_hidden", n_hidden)
        super().__init__(n_instances)
        self.n_features, self.n_hidden = self_n_features, self_n_hidden
        p = per_feature("feature_probability", feature_probability, n_instances, n_features, "instances")
        imp = per_feature("importance", importance, n_instances, n_features, "features")
        self.register_buffer("feature_probability", check_probability("feature_probability", p))
        self.register_buffer("importance", check_nonnegative("importance", imp))

    def _reference_parameter(self) -> torch.Tensor:
        return self.b_final

    def extra_repr(self) -> str:
        return f"n_features={self.n_features}, n_hidden={self.n_hidden}, n_instances={self.n_instances}"

    def generate_batch(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Sparse features uniform on [0, 1) at the model's densities.

        Returns ``x: (batch_size, n_instances, n_features)`` on the model's device.
        """
        return sparse_uniform(batch_size, self.feature_probability, generator=generator)

    def per_instance_loss(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """Importance-weighted squared error against :meth:`target`, mean over batch and features.

        ``x, x_hat: (batch, n_instances, n_features) -> (n_instances,)``.
        """
        x = self._check_batch("x", x)
        x_hat = self._check_batch("x_hat", x_hat)
        if x.shape != x_hat.shape:
            raise ValueError(f"x_hat must have the shape of x {tuple(x.shape)}, got {tuple(x_hat.shape)}")
        return (self.importance * (self.target(x) - x_hat) ** 2).mean(dim=(0, 2))


class ToyModel(SparseFeatureModel):
    """Tied-weight autoencoder ``x -> W x -> act(W^T W x + b)``, batched over instances.

    Args:
        n_features: number of input features ``n``.
        n_hidden: bottleneck width ``m``.
        n_instances: number of independent models trained side by side.
        feature_probability: density ``1 - S`` of each feature; a float or a
            tensor of shape ``(n_instances,)``, ``(n_features,)`` or
            ``(n_instances, n_features)`` (a 1-D value of ambiguous length is
            read per instance).
        importance: weight ``I_i`` of each feature's squared error; same shapes
            (a 1-D value of ambiguous length is read per feature).
        activation: ``"relu"`` (ReLU-output model) or ``"linear"``.
        seed: seeds the Xavier-normal initialisation of ``W`` (``None`` uses
            torch's global generator).

    Attributes:
        W: ``(n_instances, n_hidden, n_features)``; column ``W[k, :, i]`` is
            feature ``i``'s direction in instance ``k``.
        b_final: ``(n_instances, n_features)``, zeros at init.
        feature_probability, importance: buffers ``(n_instances, n_features)``.
    """

    GRADIENT_OF = ("hidden", "forward", "target", "per_instance_loss", "loss")

    W: nn.Parameter
    b_final: nn.Parameter
    feature_probability: torch.Tensor
    importance: torch.Tensor

    def __init__(
        self,
        n_features: int,
        n_hidden: int,
        n_instances: int = 1,
        feature_probability: float | torch.Tensor = 1.0,
        importance: float | torch.Tensor = 1.0,
        activation: Literal["relu", "linear"] = "relu",
        seed: int | None = None,
    ) -> None:
        super().__init__(n_features, n_hidden, n_instances, feature_probability, importance)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.activation = activation
        self.W = nn.Parameter(torch.empty(n_instances, n_hidden, n_features))
        self.b_final = nn.Parameter(torch.zeros(n_instances, n_features))
        self.reset_parameters(seed)

    def reset_parameters(self, seed: int | None = None) -> None:
        """Xavier-normal ``W`` (per instance: std ``sqrt(2 / (n + m))``), zero bias."""
        gen = None
        if seed is not None:
            gen = torch.Generator(device=self.W.device).manual_seed(seed)
        std = math.sqrt(2.0 / (self.n_features + self.n_hidden))
        with torch.no_grad():
            self.W.normal_(0.0, std, generator=gen)
            self.b_final.zero_()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, activation={self.activation!r}"

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (batch, n_instances, n_features) -> h: (batch, n_instances, n_hidden)``."""
        x = self._check_batch("x", x)
        return torch.einsum("bif,ihf->bih", x, self.W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (batch, n_instances, n_features) -> x_hat`` of the same shape."""
        h = self.hidden(x)
        out = torch.einsum("bih,ihf->bif", h, self.W) + self.b_final
        return torch.relu(out) if self.activation == "relu" else out

    def _analytic_step(self, batch_size: int, generator: torch.Generator, batches: Batches):
        """The hand-written step of :mod:`supercourse.fast`, fed with ``batches`` (its own data or a dataset)."""
        from .fast import ToyModelStep

        return ToyModelStep(self, batch_size, generator, batches=batches)
