"""Sparse autoencoders (dictionary learning) on hidden activations, many at once.

A sparse autoencoder (SAE) learns an overcomplete basis in which activations
``h`` are sparse (Bricken et al. 2023, "Towards Monosemanticity"). For each
instance, with ``d_in`` input dimensions and ``d_sae`` latents::

    f     = ReLU(W_e (h - b_d) + b_e)     (d_sae,)  latent activations
    h_hat = W_d f + b_d                   (d_in,)   reconstruction
    loss  = mean_dims (h - h_hat)^2 + l1_coeff * sum_j f_j        (averaged over the batch)

The decoder's columns ``W_d[:, j]`` (the *dictionary*) are kept at unit norm,
so the L1 penalty cannot be dodged by shrinking ``f`` and growing ``W_d``. A
latent that never fires is *dead*; :func:`resample_dead_latents` points it at
inputs the SAE reconstructs badly. The **TopK** variant keeps the ``k``
largest pre-activations of every input (``f`` has exactly ``k`` non-zeros at
most) and needs no L1 penalty.

Shapes keep the instance dimension first, as everywhere in the course:
``W_e: (n_instances, d_sae, d_in)``, ``b_e: (n_instances, d_sae)``,
``W_d: (n_instances, d_in, d_sae)``, ``b_d: (n_instances, d_in)``; batches are
``(batch, n_instances, d_in)``. Instances differ by their L1 coefficient and
by their dictionary size (a ``latent_mask`` switches off the latents beyond an
instance's size), so a whole sweep trains as one model.

Feature recovery: given the true feature directions ``(d_in, n_features)``,
:func:`max_cosines` is each feature's best cosine with a decoder column;
:func:`mmcs` (mean max cosine similarity) averages it and
:func:`fraction_recovered` counts the features above a threshold.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from ._validate import check_nonnegative, check_positive_int, check_tensor
from .data import sparse_uniform
from .instanced import Batches, InstancedModel

__all__ = [
    "SparseAutoencoder",
    "SAEHistory",
    "ToyFeatures",
    "sae_forward",
    "topk_activations",
    "normalize_decoder",
    "max_cosines",
    "mmcs",
    "fraction_recovered",
    "latent_frequency",
    "dead_latents",
    "resample_dead_latents",
    "train_sae",
    "toy_features",
    "RESAMPLE_ENCODER_SCALE",
    "FEATURE_SEED_OFFSET",
    "hidden_dataset",
]

RESAMPLE_ENCODER_SCALE = 0.2
"""A resampled latent's encoder row gets this times the mean norm of the live rows (Bricken et al.)."""

FEATURE_SEED_OFFSET = 1_000_003
""":func:`toy_features` seeds its directions with ``FEATURE_SEED_OFFSET + seed``: never the stream of an SAE's init."""

_EPS = 1e-12


# --------------------------------------------------------------------------- functional core


def _check_params(
    W_e: object, b_e: object, W_d: object, b_d: object
) -> tuple[int, int, int]:
    """Validate SAE parameters; return ``(n_instances, d_sae, d_in)``."""
    check_tensor("W_e", W_e, shape=(None, None, None), names=("n_instances", "d_sae", "d_in"))
    n_inst, d_sae, d_in = W_e.shape  # type: ignore[union-attr]
    check_tensor("b_e", b_e, shape=(n_inst, d_sae), names=("n_instances", "d_sae"))
    check_tensor("W_d", W_d, shape=(n_inst, d_in, d_sae), names=("n_instances", "d_in", "d_sae"))
    check_tensor("b_d", b_d, shape=(n_inst, d_in), names=("n_instances", "d_in"))
    return n_inst, d_sae, d_in


def _check_batch(name: str, h: object, n_inst: int, d_in: int) -> torch.Tensor:
    return check_tensor(name, h, shape=(None, n_inst, d_in), names=("batch", "n_instances", "d_in"))


def topk_activations(pre: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest entries of each row of ``pre`` (ReLU'd), zero the rest.

    Args:
        pre: ``(..., d_sae)`` pre-activations.
        k: how many latents may be active, ``1 <= k <= d_sae``.

    Returns:
        ``(..., d_sae)``: ``ReLU(pre)`` at the ``k`` largest entries of the last
        dimension, 0 elsewhere; a negative entry among the top ``k`` stays 0.
    """
    check_tensor("pre", pre)
    k = check_positive_int("k", k)
    if k > pre.shape[-1]:
        raise ValueError(f"k must be at most d_sae = {pre.shape[-1]}, got {k}")
    values, index = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, index, values.relu())


def sae_forward(
    h: torch.Tensor,
    W_e: torch.Tensor,
    b_e: torch.Tensor,
    W_d: torch.Tensor,
    b_d: torch.Tensor,
    l1_coeff: float | torch.Tensor = 0.0,
    k: int | None = None,
    latent_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Encode, decode and score a batch: the SAE's forward pass and loss.

    Args:
        h: ``(batch, n_instances, d_in)`` activations to reconstruct.
        W_e, b_e, W_d, b_d: ``(n_instances, d_sae, d_in)``, ``(n_instances, d_sae)``,
            ``(n_instances, d_in, d_sae)``, ``(n_instances, d_in)``.
        l1_coeff: the L1 coefficient lambda, a float or ``(n_instances,)``.
        k: ``None`` for the ReLU (L1) SAE; an int for TopK (``k`` largest
            pre-activations kept, per input).
        latent_mask: optional ``(n_instances, d_sae)`` bool, False for latents
            that do not exist in an instance (smaller dictionaries); their
            activations are 0.

    Returns:
        ``(h_hat, f, loss)``: ``h_hat (batch, n_instances, d_in)``, ``f (batch,
        n_instances, d_sae)`` and ``loss (n_instances,)``, per instance the
        squared error averaged over batch and ``d_in`` plus ``l1_coeff`` times
        the sum of ``f`` over latents averaged over the batch.
    """
    n_inst, d_sae, d_in = _check_params(W_e, b_e, W_d, b_d)
    _check_batch("h", h, n_inst, d_in)
    lam = torch.as_tensor(l1_coeff, dtype=h.dtype, device=h.device)
    if lam.dim() not in (0, 1) or (lam.dim() == 1 and lam.shape[0] != n_inst):
        raise ValueError(f"l1_coeff must be a float or have shape (n_instances={n_inst},), got shape {tuple(lam.shape)}")
    check_nonnegative("l1_coeff", lam)
    x = (h - b_d).transpose(0, 1)  # (n_instances, batch, d_in)
    pre = torch.baddbmm(b_e[:, None, :], x, W_e.mT)  # (n_instances, batch, d_sae)
    if latent_mask is not None:
        check_tensor("latent_mask", latent_mask, shape=(n_inst, d_sae), names=("n_instances", "d_sae"), floating=False)
        pre = pre.masked_fill(~latent_mask[:, None, :], -torch.inf if k is not None else 0.0)
    f = pre.relu() if k is None else topk_activations(pre, k)
    h_hat = torch.baddbmm(b_d[:, None, :], f, W_d.mT)  # (n_instances, batch, d_in)
    mse = (h_hat - x - b_d[:, None, :]).square().mean(dim=(1, 2))
    l1 = f.sum(dim=2).mean(dim=1)
    return h_hat.transpose(0, 1), f.transpose(0, 1), mse + lam * l1


def normalize_decoder(W_d: torch.Tensor) -> torch.Tensor:
    """Unit-norm decoder columns: ``W_d[k, :, j] / ||W_d[k, :, j]||`` (a zero column stays zero).

    ``W_d: (n_instances, d_in, d_sae)`` -> the same shape; a new tensor.
    """
    check_tensor("W_d", W_d, shape=(None, None, None), names=("n_instances", "d_in", "d_sae"))
    return W_d / W_d.norm(dim=1, keepdim=True).clamp_min(_EPS)


def _unit_columns(name: str, M: torch.Tensor) -> torch.Tensor:
    return M / M.norm(dim=-2, keepdim=True).clamp_min(_EPS)


def max_cosines(features: torch.Tensor, W_d: torch.Tensor, latent_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Each true feature's largest cosine similarity with any decoder column.

    Args:
        features: ``(d_in, n_features)`` or ``(n_instances, d_in, n_features)``:
            the true feature directions as columns (any norms; zero columns get 0).
        W_d: ``(n_instances, d_in, d_sae)`` decoder; columns of any norm.
        latent_mask: optional ``(n_instances, d_sae)`` bool; masked-out latents are ignored.

    Returns:
        ``(n_instances, n_features)``: ``max_j cos(features_i, W_d[:, j])``.
        Signed: a decoder column pointing *against* a feature does not recover it
        (latents are non-negative).
    """
    check_tensor("W_d", W_d, shape=(None, None, None), names=("n_instances", "d_in", "d_sae"))
    n_inst, d_in = W_d.shape[0], W_d.shape[1]
    check_tensor("features", features)
    if features.dim() == 2:
        features = features.expand(n_inst, *features.shape)
    check_tensor("features", features, shape=(n_inst, d_in, None), names=("n_instances", "d_in", "n_features"))
    cos = _unit_columns("features", features).mT @ _unit_columns("W_d", W_d)  # (n_inst, n_features, d_sae)
    if latent_mask is not None:
        check_tensor("latent_mask", latent_mask, shape=(n_inst, W_d.shape[2]), names=("n_instances", "d_sae"), floating=False)
        cos = cos.masked_fill(~latent_mask[:, None, :], -1.0)
    return cos.max(dim=-1).values


def mmcs(features: torch.Tensor, W_d: torch.Tensor, latent_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean max cosine similarity of the true features against the dictionary: ``(n_instances,)``.

    The mean over features of :func:`max_cosines` (same arguments). 1 means
    every feature has a decoder column exactly along it.
    """
    return max_cosines(features, W_d, latent_mask).mean(dim=-1)


def fraction_recovered(
    features: torch.Tensor, W_d: torch.Tensor, threshold: float = 0.9, latent_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """The fraction of true features whose max cosine with the dictionary exceeds ``threshold``: ``(n_instances,)``."""
    if not -1.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must lie in [-1, 1], got {threshold!r}")
    return (max_cosines(features, W_d, latent_mask) > threshold).float().mean(dim=-1)


def latent_frequency(f: torch.Tensor) -> torch.Tensor:
    """How often each latent fires: ``f: (batch, n_instances, d_sae)`` -> ``(n_instances, d_sae)`` in [0, 1]."""
    check_tensor("f", f, shape=(None, None, None), names=("batch", "n_instances", "d_sae"))
    return (f > 0).float().mean(dim=0)


def dead_latents(f: torch.Tensor, latent_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Latents that never fire on the batch: ``f: (batch, n_instances, d_sae)`` -> bool ``(n_instances, d_sae)``.

    Masked-out latents (``latent_mask`` False) are not counted as dead.
    """
    dead = latent_frequency(f) == 0
    if latent_mask is not None:
        dead = dead & latent_mask
    return dead


@torch.no_grad()
def resample_dead_latents(
    W_e: torch.Tensor,
    b_e: torch.Tensor,
    W_d: torch.Tensor,
    b_d: torch.Tensor,
    dead: torch.Tensor,
    h: torch.Tensor,
    generator: torch.Generator | None = None,
    k: int | None = None,
    encoder_scale: float = RESAMPLE_ENCODER_SCALE,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Point dead latents at inputs the SAE reconstructs badly (Bricken et al. 2023, simplified).

    For each instance, every dead latent draws one input ``h_s`` of the batch,
    with replacement, with probability proportional to the *square* of its
    reconstruction loss ``||h_s - h_hat_s||^2`` (uniformly when every loss is
    0). With ``v = (h_s - b_d) / ||h_s - b_d||`` (the input as the encoder sees
    it, as a unit vector):

    * decoder column ``W_d[:, j] = v``;
    * encoder row ``W_e[j] = encoder_scale * (mean norm of the live encoder rows) * v``
      (1 when no latent is live);
    * encoder bias ``b_e[j] = 0``.

    Live latents and ``b_d`` are untouched.

    Args:
        W_e, b_e, W_d, b_d: the SAE's parameters (shapes as in :func:`sae_forward`).
        dead: ``(n_instances, d_sae)`` bool, the latents to resample.
        h: ``(batch, n_instances, d_in)`` inputs to draw from.
        generator: seeds the draws.
        k: the TopK SAE's ``k`` when resampling one (``None``: L1 SAE).
        encoder_scale: see above.

    Returns:
        new ``(W_e, b_e, W_d)``; the inputs are not modified.
    """
    n_inst, d_sae, d_in = _check_params(W_e, b_e, W_d, b_d)
    check_tensor("dead", dead, shape=(n_inst, d_sae), names=("n_instances", "d_sae"), floating=False)
    _check_batch("h", h, n_inst, d_in)
    h_hat, _, _ = sae_forward(h, W_e, b_e, W_d, b_d, 0.0, k=k)
    loss = (h - h_hat).square().sum(dim=-1).T.double()  # (n_instances, batch)
    weights = loss.square()
    weights = torch.where(weights.sum(dim=1, keepdim=True) > 0, weights, torch.ones_like(weights))
    W_e, b_e, W_d = W_e.clone(), b_e.clone(), W_d.clone()
    live_norm = W_e.norm(dim=2)  # (n_instances, d_sae)
    for i in range(n_inst):
        idx = dead[i].nonzero().flatten()
        if idx.numel() == 0:
            continue
        chosen = torch.multinomial(weights[i].to(h.device), idx.numel(), replacement=True, generator=generator)
        v = h[chosen, i] - b_d[i]  # (n_dead, d_in)
        v = v / v.norm(dim=1, keepdim=True).clamp_min(_EPS)
        live = ~dead[i]
        scale = live_norm[i, live].mean() if bool(live.any()) else torch.ones((), dtype=W_e.dtype, device=W_e.device)
        W_d[i][:, idx] = v.T.to(W_d.dtype)
        W_e[i][idx] = (encoder_scale * scale * v).to(W_e.dtype)
        b_e[i][idx] = 0.0
    return W_e, b_e, W_d


# --------------------------------------------------------------------------- the module


def _per_instance(name: str, value: float | torch.Tensor, n_instances: int) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float32).flatten()
    if t.numel() == 1:
        t = t.expand(n_instances).clone()
    if t.shape != (n_instances,):
        raise ValueError(f"{name} must be a float or have shape (n_instances={n_instances},), got shape {tuple(t.shape)}")
    return t


class SparseAutoencoder(InstancedModel):
    """``n_instances`` sparse autoencoders side by side, each with its own L1 coefficient and dictionary size.

    An :class:`~supercourse.instanced.InstancedModel` like the course's other
    models: batches ``(batch, n_instances, d_in)``, :meth:`per_instance_loss`
    of ``forward``'s output, and :meth:`after_step` (unit-norm decoder columns)
    after every update, so :func:`supercourse.train` trains it on a
    ``dataset`` too; :func:`train_sae` adds sampling with replacement and
    dead-latent resampling. Its gradient is written out by hand
    (:class:`supercourse.analytic.SAEStep`).

    Args:
        d_in: width of the activations reconstructed.
        d_sae: number of latents (the largest dictionary, when sizes differ).
        n_instances: SAEs trained at once.
        l1_coeff: lambda, a float or ``(n_instances,)`` (ignored by TopK).
        k: ``None`` for the L1 SAE, an int for TopK.
        dict_sizes: optional ``(n_instances,)`` ints ``<= d_sae``: instance ``i``
            uses only its first ``dict_sizes[i]`` latents.
        seed: seeds the initialisation: decoder columns random unit vectors,
            encoder ``W_e = W_d^T``, both biases 0.

    Attributes:
        W_e ``(n_instances, d_sae, d_in)``, b_e ``(n_instances, d_sae)``,
        W_d ``(n_instances, d_in, d_sae)``, b_d ``(n_instances, d_in)``;
        buffers ``l1_coeff (n_instances,)`` and ``latent_mask (n_instances, d_sae)``.
    """

    INPUT_DIM = "d_in"
    GRADIENT_OF = ("forward", "target", "per_instance_loss", "loss")

    def __init__(
        self,
        d_in: int,
        d_sae: int,
        n_instances: int = 1,
        l1_coeff: float | torch.Tensor = 0.01,
        k: int | None = None,
        dict_sizes: list[int] | torch.Tensor | None = None,
        seed: int | None = None,
    ) -> None:
        d_in = check_positive_int("d_in", d_in)
        d_sae = check_positive_int("d_sae", d_sae)
        super().__init__(n_instances)
        self.d_in, self.d_sae = d_in, d_sae
        if k is not None:
            k = check_positive_int("k", k)
            if k > d_sae:
                raise ValueError(f"k must be at most d_sae = {d_sae}, got {k}")
        self.k = k
        lam = _per_instance("l1_coeff", l1_coeff, n_instances)
        check_nonnegative("l1_coeff", lam)
        self.register_buffer("l1_coeff", lam)
        sizes = torch.full((n_instances,), d_sae) if dict_sizes is None else torch.as_tensor(dict_sizes).flatten()
        if sizes.shape != (n_instances,) or sizes.is_floating_point() or (sizes < 1).any() or (sizes > d_sae).any():
            raise ValueError(f"dict_sizes must be {n_instances} ints in [1, d_sae={d_sae}], got {sizes.tolist()}")
        if k is not None and (sizes < k).any():
            raise ValueError(f"dict_sizes must all be >= k = {k}, got {sizes.tolist()}")
        self.register_buffer("latent_mask", torch.arange(d_sae)[None, :] < sizes[:, None])
        self.W_e = nn.Parameter(torch.empty(n_instances, d_sae, d_in))
        self.b_e = nn.Parameter(torch.zeros(n_instances, d_sae))
        self.W_d = nn.Parameter(torch.empty(n_instances, d_in, d_sae))
        self.b_d = nn.Parameter(torch.zeros(n_instances, d_in))
        self.reset_parameters(seed)

    @torch.no_grad()
    def reset_parameters(self, seed: int | None = None) -> None:
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        W_d = torch.randn(self.n_instances, self.d_in, self.d_sae, generator=gen)
        self.W_d.copy_(normalize_decoder(W_d))
        self.W_e.copy_(self.W_d.mT)
        self.b_e.zero_()
        self.b_d.zero_()

    @property
    def dict_sizes(self) -> torch.Tensor:
        """``(n_instances,)`` the number of latents each instance uses."""
        return self.latent_mask.sum(dim=1)

    def extra_repr(self) -> str:
        kind = f"k={self.k}" if self.k is not None else f"l1_coeff={self.l1_coeff.tolist()}"
        return f"d_in={self.d_in}, d_sae={self.d_sae}, n_instances={self.n_instances}, {kind}"

    def _mask(self) -> torch.Tensor | None:
        return None if bool(self.latent_mask.all()) else self.latent_mask

    def _reference_parameter(self) -> torch.Tensor:
        return self.W_e

    def _lambda(self) -> float | torch.Tensor:
        return 0.0 if self.k is not None else self.l1_coeff

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``h: (batch, n_instances, d_in)`` -> ``(h_hat, f, loss (n_instances,))`` (:func:`sae_forward`)."""
        lam, mask = self._lambda(), self._mask()
        return sae_forward(h, self.W_e, self.b_e, self.W_d, self.b_d, lam, k=self.k, latent_mask=mask)

    def per_instance_loss(self, h: torch.Tensor, output: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The loss of ``output = self(h)``: squared error (mean over batch and ``d_in``) plus lambda times the L1.

        ``h: (batch, n_instances, d_in)``; ``output``'s first two entries are
        ``h_hat (batch, n_instances, d_in)`` and ``f (batch, n_instances, d_sae)``.
        Returns ``(n_instances,)`` (what :func:`sae_forward` returns as its loss).
        """
        h = self._check_batch("h", h)
        if not isinstance(output, (tuple, list)) or len(output) < 2:
            raise TypeError(f"output must be the SAE's (h_hat, f, ...), got {type(output).__name__}")
        h_hat, f = output[0], output[1]
        h_hat = self._check_batch("h_hat", h_hat)
        check_tensor("f", f, shape=(h.shape[0], self.n_instances, self.d_sae), names=("batch", "n_instances", "d_sae"))
        mse = (h_hat - self.target(h)).square().mean(dim=(0, 2))
        return mse + self._lambda() * f.sum(dim=2).mean(dim=0)

    def after_step(self) -> None:
        """Unit-norm decoder columns after every update (:meth:`normalize_decoder_`)."""
        self.normalize_decoder_()

    def _analytic_step(self, batch_size: int, generator: torch.Generator, batches: Batches):
        """The hand-written step (:class:`supercourse.analytic.SAEStep`), fed with ``batches``."""
        from .analytic import SAEStep

        return SAEStep(self, batch_size, batches)

    def decoder_directions(self) -> torch.Tensor:
        """``(n_instances, d_in, d_sae)`` the decoder columns, zero for latents outside an instance's dictionary."""
        return (self.W_d * self.latent_mask[:, None, :]).detach()

    @torch.no_grad()
    def normalize_decoder_(self) -> None:
        """Project every decoder column back to unit norm, in place."""
        self.W_d.copy_(normalize_decoder(self.W_d))

    @torch.no_grad()
    def recovery(self, features: torch.Tensor, threshold: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mmcs (n_instances,), fraction recovered above threshold (n_instances,))`` of ``features (d_in, n)``."""
        W_d, mask = self.W_d.detach(), self.latent_mask
        return mmcs(features, W_d, mask), fraction_recovered(features, W_d, threshold, mask)

    @torch.no_grad()
    def dead(self, h: torch.Tensor) -> torch.Tensor:
        """``(n_instances, d_sae)`` bool: latents of the dictionary that never fire on ``h (batch, n_instances, d_in)``."""
        _, f, _ = self(h)
        return dead_latents(f, self.latent_mask)


# --------------------------------------------------------------------------- data


@dataclass
class ToyFeatures:
    """Known sparse features embedded in a smaller space: ``h = features @ x``.

    Attributes:
        features: ``(d_in, n_features)`` unit feature directions (columns).
        probability: ``(n_features,)`` each feature's chance to be active; active
            values are uniform on [0, 1).
    """

    features: torch.Tensor
    probability: torch.Tensor

    @property
    def expected_l0(self) -> float:
        """The expected number of active features per input."""
        return float(self.probability.sum())

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(batch_size, 1, d_in)`` activations (one instance dimension, broadcast over SAEs)."""
        x = sparse_uniform(batch_size, self.probability[None, :].to(self.features.device), generator=generator)
        return x @ self.features.T


def toy_features(
    d_in: int = 32, n_features: int = 64, expected_l0: float = 3.0, decay: float = 0.99, seed: int = 0
) -> ToyFeatures:
    """Random unit features in ``d_in`` dims, feature ``i`` active with probability ``∝ decay^i``, ``expected_l0`` on average.

    The features' directions are Gaussian vectors normalised (seeded by ``seed``, on a stream
    offset by :data:`FEATURE_SEED_OFFSET` so that an SAE initialised with the same seed does not
    start on the answer); probabilities ``c * decay^i`` with ``c`` chosen so that they sum to
    ``expected_l0``.
    """
    d_in, n_features = check_positive_int("d_in", d_in), check_positive_int("n_features", n_features)
    if not 0 < expected_l0 <= n_features:
        raise ValueError(f"expected_l0 must lie in (0, n_features={n_features}], got {expected_l0!r}")
    if not 0 < decay <= 1:
        raise ValueError(f"decay must lie in (0, 1], got {decay!r}")
    gen = torch.Generator().manual_seed(FEATURE_SEED_OFFSET + seed)
    F = torch.randn(d_in, n_features, generator=gen)
    F = F / F.norm(dim=0, keepdim=True)
    p = decay ** torch.arange(n_features, dtype=torch.float64)
    p = (p * expected_l0 / p.sum()).float()
    if (p > 1).any():
        raise ValueError(f"expected_l0={expected_l0} with decay={decay} gives probabilities above 1; lower the decay")
    return ToyFeatures(F, p)


# --------------------------------------------------------------------------- training


@dataclass
class SAEHistory:
    """What :func:`train_sae` measured.

    Attributes:
        steps: ``(n_logged,)`` step numbers.
        losses: ``(n_logged, n_instances)`` each instance's loss at those steps.
        resampled: ``(n_instances,)`` latents resampled in total.
        wall_time: seconds in the training loop.
    """

    steps: torch.Tensor
    losses: torch.Tensor
    resampled: torch.Tensor
    wall_time: float
    extra: dict = field(default_factory=dict)

    @property
    def final_loss(self) -> torch.Tensor:
        return self.losses[-1]


Data = Callable[[int, torch.Generator], torch.Tensor] | torch.Tensor


def _batch_source(data: Data, n_instances: int, d_in: int) -> Callable[[int, torch.Generator], torch.Tensor]:
    if isinstance(data, torch.Tensor):
        check_tensor("data", data, shape=(None, None, d_in), names=("n_samples", "n_instances or 1", "d_in"))
        if data.shape[1] not in (1, n_instances):
            raise ValueError(f"data must have shape (n_samples, 1 or n_instances={n_instances}, d_in), got {tuple(data.shape)}")

        def sample(batch_size: int, generator: torch.Generator) -> torch.Tensor:
            idx = torch.randint(data.shape[0], (batch_size,), generator=generator, device=generator.device)
            return data[idx.to(data.device)]

        return sample
    if callable(data):
        return data
    raise TypeError(f"data must be a tensor (n_samples, n_instances or 1, d_in) or a function (batch_size, generator) -> batch, got {type(data).__name__}")


def train_sae(
    sae: SparseAutoencoder,
    data: Data,
    steps: int = 4000,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    resample_every: int | None = None,
    resample_batch: int = 4096,
    log_every: int | None = None,
    progress: bool = True,
) -> SAEHistory:
    """Train every instance of ``sae`` at once: Adam, unit-norm decoder after every step, optional resampling.

    The step is :class:`supercourse.analytic.SAEStep` (the gradient written
    out by hand; a subclass with its own ``forward`` or loss trains through
    autograd), the update one fused Adam kernel, on one CPU thread or on
    torch's threads, whichever runs faster here (:mod:`supercourse.threads`).

    Args:
        sae: trained in place (on the device of its parameters).
        data: ``(n_samples, n_instances or 1, d_in)`` activations to draw batches
            from (with replacement), or ``f(batch_size, generator) -> (batch,
            n_instances or 1, d_in)``. A size-1 instance dimension feeds every
            SAE the same batch.
        steps, batch_size, lr: Adam's recipe (no weight decay).
        seed: seeds the batches and the resampling draws.
        resample_every: if given, every this many steps (not in the last quarter of
            training) the latents that did not fire since the last check are
            resampled (:func:`resample_dead_latents`) on a batch of
            ``resample_batch`` inputs, and their Adam moments reset.
        log_every: log the losses every this many steps (default about 100 points).
        progress: show a progress bar (never while autograding).

    Returns:
        a :class:`SAEHistory`; its ``extra`` holds ``seed``, ``batch_size``,
        ``lr``, ``path`` (``"analytic"`` or ``"autograd"``), ``threads`` and
        ``thread_steps`` (as :class:`supercourse.History`).
    """
    from .threads import ThreadChooser, torch_threads
    from .training import FusedAdamW, _Progress, _progress_wanted, _thread_record, gradient_path

    if not isinstance(sae, SparseAutoencoder):
        raise TypeError(f"sae must be a SparseAutoencoder, got {type(sae).__name__}")
    steps = check_positive_int("steps", steps)
    batch_size = check_positive_int("batch_size", batch_size)
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if resample_every is not None:
        resample_every = check_positive_int("resample_every", resample_every)
    log_every = check_positive_int("log_every", log_every) if log_every is not None else max(1, steps // 100)
    device = sae.W_e.device
    sample = _batch_source(data, sae.n_instances, sae.d_in)
    gen = torch.Generator(device=device).manual_seed(seed)
    params = [sae.W_e, sae.b_e, sae.W_d, sae.b_d]

    def batches() -> torch.Tensor:
        return sample(batch_size, gen).to(device).expand(batch_size, sae.n_instances, sae.d_in)

    for p in params:
        p.grad = None
    path = gradient_path(sae)
    step_fn = sae._analytic_step(batch_size, gen, batches) if path == "analytic" else _AutogradSAEStep(sae, batches)
    if FusedAdamW.available(params):  # AdamW without weight decay is Adam
        fused = FusedAdamW(params, weight_decay=0.0)
        update, moments = fused.step, fused.state
    else:  # pragma: no cover - torch builds without the fused kernel for this device
        optimizer = torch.optim.Adam(params, lr=lr)
        update, moments = (lambda lr_now: optimizer.step()), _adam_moments(optimizer)
    chooser = None
    if device.type == "cpu":
        key = ("train_sae", type(sae).__qualname__, tuple(tuple(p.shape) for p in params), batch_size, path,
               torch.get_num_threads())
        chooser = ThreadChooser.resume(key, torch.get_num_threads())
    resampled = torch.zeros(sae.n_instances, dtype=torch.long)
    log_steps, losses = [], []
    bar = _Progress(_progress_wanted(progress), steps, f"training {sae.n_instances} SAE(s) on {device.type}")
    bar_every = max(1, steps // 200)
    start = time.perf_counter()
    try:
        with torch_threads(torch.get_num_threads()):  # the chooser's settings end with the run
            for step in range(steps):
                if chooser is not None:
                    chooser.begin()
                loss = step_fn(step % log_every == 0 or step == steps - 1)
                update(lr)
                sae.after_step()
                if chooser is not None:
                    chooser.end()
                if loss is not None:
                    log_steps.append(step)
                    losses.append(loss.detach().cpu())
                if resample_every is not None and (step + 1) % resample_every == 0 and step + 1 <= 0.75 * steps:
                    dead = ~step_fn.fired & sae.latent_mask
                    if bool(dead.any()):
                        h_big = sample(resample_batch, gen).to(device).expand(resample_batch, sae.n_instances, sae.d_in)
                        W_e, b_e, W_d = resample_dead_latents(
                            sae.W_e.detach(), sae.b_e.detach(), sae.W_d.detach(), sae.b_d.detach(), dead, h_big, gen,
                            k=sae.k,
                        )
                        with torch.no_grad():
                            sae.W_e.copy_(W_e)
                            sae.b_e.copy_(b_e)
                            sae.W_d.copy_(W_d)
                        _reset_moments(moments, sae, dead)
                        resampled += dead.sum(dim=1).cpu()
                    step_fn.fired.zero_()
                if (step + 1) % bar_every == 0 or step == steps - 1:
                    bar.update(step + 1, losses[-1] if losses else None)
        if chooser is not None:
            chooser.save(key)
    finally:
        bar.close()
    for p in params:
        p.grad = None
    return SAEHistory(
        steps=torch.tensor(log_steps),
        losses=torch.stack(losses),
        resampled=resampled,
        wall_time=time.perf_counter() - start,
        extra={"seed": seed, "batch_size": batch_size, "lr": lr, "path": path,
               **_thread_record(chooser, torch.get_num_threads(), steps)},
    )


class _AutogradSAEStep:
    """:func:`train_sae`'s step through autograd (an SAE subclass with its own forward or loss)."""

    def __init__(self, sae: SparseAutoencoder, batches: Batches) -> None:
        self.sae, self.batches = sae, batches
        self.fired = torch.zeros(sae.n_instances, sae.d_sae, dtype=torch.bool, device=sae.W_e.device)

    def __call__(self, want_loss: bool) -> torch.Tensor | None:
        h = self.batches()
        out = self.sae(h)
        loss = self.sae.loss(h, out)
        for p in self.sae.parameters():
            p.grad = None
        loss.backward()
        self.fired |= (out[1].detach() > 0).any(dim=0)
        if not want_loss:
            return None
        with torch.no_grad():
            return self.sae.per_instance_loss(h, tuple(o.detach() for o in out))


def _adam_moments(optimizer: torch.optim.Optimizer):
    def moments(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        state = optimizer.state.get(p, {})
        return (state["exp_avg"], state["exp_avg_sq"]) if "exp_avg" in state else None

    return moments


@torch.no_grad()
def _reset_moments(moments, sae: SparseAutoencoder, dead: torch.Tensor) -> None:
    """Zero Adam's moments of the resampled latents (their encoder rows, biases and decoder columns).

    ``moments(param)`` returns the ``(exp_avg, exp_avg_sq)`` of a parameter (``None`` before its first step).
    """
    masks = {
        sae.W_e: dead[:, :, None].expand_as(sae.W_e),
        sae.b_e: dead,
        sae.W_d: dead[:, None, :].expand_as(sae.W_d),
    }
    for p, mask in masks.items():
        for moment in moments(p) or ():
            moment.masked_fill_(mask, 0.0)


def hidden_dataset(W: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A toy model's hidden activations ``h = W x``: ``W (n_instances, m, n)``, ``x (batch, n_instances, n)`` -> ``(batch, n_instances, m)``."""
    check_tensor("W", W, shape=(None, None, None), names=("n_instances", "n_hidden", "n_features"))
    check_tensor("x", x, shape=(None, W.shape[0], W.shape[2]), names=("batch", "n_instances", "n_features"))
    return torch.einsum("bif,ihf->bih", x, W)


def log_spaced(lo: float, hi: float, n: int) -> list[float]:
    """``n`` values from ``lo`` to ``hi``, evenly spaced on a log scale."""
    return [float(v) for v in torch.logspace(math.log10(lo), math.log10(hi), n, dtype=torch.float64)]
