"""What every model of the course is: many small models side by side, one batch check, one loss contract.

:class:`InstancedModel` is the base of :class:`~supercourse.ToyModel`, the
neuron models (:mod:`supercourse.neurons`) and the sparse autoencoder
(:mod:`supercourse.sae`). Parameters keep the instance dimension first and
batches are ``(batch, n_instances, n_inputs)``; a model's inputs are its
features (``n_features``) or, for an SAE, the activations it reconstructs
(``d_in``). :func:`supercourse.train` trains any of them through this one
contract:

* ``generate_batch(batch_size, generator) -> x`` draws a fresh batch (a model
  with no data of its own, such as an SAE, is trained on a ``dataset``);
* ``forward(x) -> output``;
* ``per_instance_loss(x, output) -> (n_instances,)`` and ``loss(x, output)``,
  their sum: the objective, so each instance's gradient is its own;
* ``after_step()``, run after every optimizer update (a no-op here; the SAE
  puts its decoder columns back on the unit sphere).

A class whose gradient is written out by hand (:mod:`supercourse.fast`,
:mod:`supercourse.analytic`) names the methods that gradient reproduces in
``GRADIENT_OF`` and builds the step in ``_analytic_step``; a subclass that
overrides any of those methods trains through autograd
(:func:`supercourse.training.gradient_path`).
"""

from __future__ import annotations

from typing import Callable, ClassVar

import torch
from torch import nn

from ._validate import check_positive_int, check_tensor

__all__ = ["InstancedModel", "Batches"]

Batches = Callable[[], torch.Tensor]
"""What an analytic step reads its data from: each call returns the next ``(batch, n_instances, n_inputs)`` batch."""


class InstancedModel(nn.Module):
    """Base of the course's models: ``n_instances`` models trained at once, batches ``(batch, n_instances, n_inputs)``.

    Subclasses set :attr:`INPUT_DIM` (the name of the inputs' size, e.g.
    ``"n_features"``) and that attribute, and define ``forward`` and
    :meth:`per_instance_loss`.
    """

    INPUT_DIM: ClassVar[str] = "n_features"
    """The attribute holding the size of the batch's last dimension (and its name in error messages)."""

    GRADIENT_OF: ClassVar[tuple[str, ...]] = ()
    """The methods whose maths the class's hand-written gradient reproduces (empty: autograd only)."""

    n_instances: int

    def __init__(self, n_instances: int) -> None:
        super().__init__()
        self.n_instances = check_positive_int("n_instances", n_instances)

    @property
    def n_inputs(self) -> int:
        """The size of the batch's last dimension (``n_features``, or ``d_in`` for an SAE)."""
        return getattr(self, self.INPUT_DIM)

    def _reference_parameter(self) -> torch.Tensor:
        return next(self.parameters())

    @property
    def device(self) -> torch.device:
        return self._reference_parameter().device

    @property
    def dtype(self) -> torch.dtype:
        return self._reference_parameter().dtype

    def _check_batch(self, name: str, x: object) -> torch.Tensor:
        """Check that ``x`` is a ``(batch, n_instances, n_inputs)`` float tensor on the model's device and dtype."""
        x = check_tensor(
            name, x, shape=(None, self.n_instances, self.n_inputs), names=("batch", "n_instances", self.INPUT_DIM)
        )
        ref = self._reference_parameter()
        if x.device != ref.device:
            raise ValueError(f"{name} is on {x.device} but the model is on {ref.device}; move one of them")
        if x.dtype != ref.dtype:
            raise TypeError(f"{name} has dtype {x.dtype} but the model's weights are {ref.dtype}")
        return x

    def generate_batch(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """A fresh batch ``(batch_size, n_instances, n_inputs)``; the base has no data of its own."""
        raise TypeError(
            f"{type(self).__name__} has no data of its own: train it on data you give it "
            "(supercourse.train(model, dataset=...), or supercourse.sae.train_sae for an SAE)"
        )

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """What the model should output for ``x`` (the input itself: an autoencoder)."""
        return x

    def per_instance_loss(self, x: torch.Tensor, output: object) -> torch.Tensor:
        """Each instance's loss of ``output = self(x)``: ``(n_instances,)``."""
        raise NotImplementedError(f"{type(self).__name__} must define per_instance_loss(x, output)")

    def loss(self, x: torch.Tensor, output: object) -> torch.Tensor:
        """The training objective: :meth:`per_instance_loss` summed over instances (a scalar).

        Summing (not averaging) keeps each instance's gradient independent of
        how many instances share the batch.
        """
        return self.per_instance_loss(x, output).sum()

    def after_step(self) -> None:
        """Called by the trainers after every optimizer update (here: nothing)."""

    def _analytic_step(self, batch_size: int, generator: torch.Generator, batches: Batches):
        """The hand-written training step for this class (``None``: train through autograd).

        Called only when :func:`~supercourse.training.gradient_path` found that
        no method of ``GRADIENT_OF`` is overridden.
        """
        return None
