"""The tied-weight toy model of superposition, many instances at once.

For each instance, with ``W: (n_hidden, n_features)`` and ``b: (n_features,)``::

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

from ._validate import check_nonnegative, check_positive_int, check_probability, check_tensor
from .data import per_feature, sparse_uniform

__all__ = ["ToyModel", "ACTIVATIONS"]

ACTIVATIONS = ("relu", "linear")


class ToyModel(nn.Module):
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
        super().__init__()
        self.n_features = check_positive_int("n_features", n_features)
        self.n_hidden = check_positive_int("n_hidden", n_hidden)
        self.n_instances = check_positive_int("n_instances", n_instances)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.activation = activation
        p = per_feature("feature_probability", feature_probability, n_instances, n_features, "instances")
        imp = per_feature("importance", importance, n_instances, n_features, "features")
        self.register_buffer("feature_probability", check_probability("feature_probability", p))
        self.register_buffer("importance", check_nonnegative("importance", imp))
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

    @property
    def device(self) -> torch.device:
        return self.W.device

    def extra_repr(self) -> str:
        return (
            f"n_features={self.n_features}, n_hidden={self.n_hidden}, "
            f"n_instances={self.n_instances}, activation={self.activation!r}"
        )

    def _check_batch(self, name: str, x: object) -> torch.Tensor:
        x = check_tensor(
            name,
            x,
            shape=(None, self.n_instances, self.n_features),
            names=("batch", "n_instances", "n_features"),
        )
        if x.device != self.W.device:
            raise ValueError(f"{name} is on {x.device} but the model is on {self.W.device}; move one of them")
        if x.dtype != self.W.dtype:
            raise TypeError(f"{name} has dtype {x.dtype} but the model's weights are {self.W.dtype}")
        return x

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (batch, n_instances, n_features) -> h: (batch, n_instances, n_hidden)``."""
        x = self._check_batch("x", x)
        return torch.einsum("bif,ihf->bih", x, self.W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (batch, n_instances, n_features) -> x_hat`` of the same shape."""
        h = self.hidden(x)
        out = torch.einsum("bih,ihf->bif", h, self.W) + self.b_final
        return torch.relu(out) if self.activation == "relu" else out

    def generate_batch(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Sparse uniform features at the model's densities.

        Returns ``x: (batch_size, n_instances, n_features)`` on the model's device.
        """
        return sparse_uniform(batch_size, self.feature_probability, generator=generator)

    def per_instance_loss(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """Importance-weighted squared error, mean over batch and features.

        ``x, x_hat: (batch, n_instances, n_features) -> (n_instances,)``.
        """
        x = self._check_batch("x", x)
        x_hat = self._check_batch("x_hat", x_hat)
        if x.shape != x_hat.shape:
            raise ValueError(f"x_hat must have the shape of x {tuple(x.shape)}, got {tuple(x_hat.shape)}")
        return (self.importance * (x - x_hat) ** 2).mean(dim=(0, 2))

    def loss(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """The training objective: :meth:`per_instance_loss` summed over instances (a scalar).

        Summing (not averaging) keeps each instance's gradient independent of
        how many instances share the batch.
        """
        return self.per_instance_loss(x, x_hat).sum()
