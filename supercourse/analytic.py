"""Hand-written training steps for the later lessons' models: the neuron models and the sparse autoencoder.

Training many small models is dominated by overhead, not arithmetic, so, as
:mod:`supercourse.fast` does for the toy model, each step here computes the
loss's gradient by hand into preallocated buffers: no autograd graph, one
``bmm`` per matrix product, the instance dimension first. A step reads its
batch from ``batches()`` (the model's own ``generate_batch``, a dataset, or
:func:`~supercourse.sae.train_sae`'s sampler) as ``(batch, n_instances, n)``,
copies it to an instance-major ``(n_instances, batch, n)`` buffer, fills each
parameter's ``.grad`` and returns the per-instance loss when asked.
``tests/test_analytic.py`` checks every gradient against autograd.

Notation: ``B`` the batch, ``s_i = 2 I_i / (B n)`` (the derivative of the
importance-weighted mean squared error), ``[.]`` a 0/1 mask, products per
instance.

:class:`NeuronStep`, ``x' = ReLU(W^T ReLU(W x) + b)`` (tied ``W``)::

    h = ReLU(W x)      pre = W^T h + b      g = s (ReLU(pre) - x) [pre > 0]
    dL/dW = h g^T + ([h > 0] (W g)) x^T      dL/db = sum_batch g

:class:`AbsValueStep`, ``y' = ReLU(W2 ReLU(W1 x) + b)`` with target ``|x|``::

    h = ReLU(W1 x)     pre = W2 h + b       g = s (ReLU(pre) - |x|) [pre > 0]
    dL/dW2 = g h^T     dL/dW1 = ([h > 0] (W2^T g)) x^T      dL/db = sum_batch g

:class:`SAEStep`, ``f = act(W_e (h - b_d) + b_e)``, ``h_hat = W_d f + b_d``,
loss ``mean (h_hat - h)^2 + lambda sum_j f_j`` (mean over batch and ``d_in``,
the L1 term averaged over the batch)::

    r = h_hat - h      dr = 2 r / (B d_in)      df = W_d^T dr + lambda / B
    dpre = df [f > 0]  (ReLU; TopK: the kept latents, which are the positive ones)
    dL/dW_d = dr f^T   dL/dW_e = dpre (h - b_d)^T   dL/db_e = sum_batch dpre
    dL/db_d = sum_batch dr - W_e^T sum_batch dpre
"""

from __future__ import annotations

import torch
from torch import nn

from .instanced import Batches

__all__ = ["NeuronStep", "AbsValueStep", "SAEStep"]

_threshold_backward = torch.ops.aten.threshold_backward.grad_input


class _Step:
    """What the steps share: the batch buffer, the gradient buffers, the batch's shape check."""

    PARAMS: tuple[str, ...] = ()

    def __init__(self, model: nn.Module, batch_size: int, batches: Batches, n_inputs: int) -> None:
        self.model, self.batches = model, batches
        self.K, self.B, self.n = model.n_instances, batch_size, n_inputs
        ref = getattr(model, self.PARAMS[0])
        self.device, self.dtype = ref.device, ref.dtype
        self._x = self._buf(self.K, self.B, self.n)
        self._drawn = False
        for name in self.PARAMS:
            p = getattr(model, name)
            p.grad = torch.zeros_like(p)

    def _buf(self, *shape: int) -> torch.Tensor:
        return torch.empty(*shape, device=self.device, dtype=self.dtype)

    def _params_and_grads(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        out = []
        for name in self.PARAMS:
            p = getattr(self.model, name)
            if p.grad is None or p.grad.shape != p.shape:
                p.grad = torch.zeros_like(p)
            out.append((p.detach(), p.grad))
        return out

    def _load(self) -> torch.Tensor:
        """Copy the next batch ``(B, K, n)`` into the ``(K, B, n)`` buffer."""
        x = self.batches()
        if tuple(x.shape) != (self.B, self.K, self.n):
            raise ValueError(
                f"a batch must have shape (batch={self.B}, n_instances={self.K}, {self.n}), got {tuple(x.shape)}"
            )
        self._x.copy_(x.transpose(0, 1))
        self._drawn = True
        return self._x

    @property
    def x(self) -> torch.Tensor:
        """The batch the last call trained on, ``(n_instances, batch, n)`` (zeros before the first call)."""
        return self._x if self._drawn else torch.zeros_like(self._x)


class _SparseFeatureStep(_Step):
    """Both neuron models: ``s = 2 I / (B n)`` and the importance-weighted loss."""

    def __init__(self, model: nn.Module, batch_size: int, batches: Batches) -> None:
        super().__init__(model, batch_size, batches, model.n_features)
        imp = model.importance.to(self.device, self.dtype)
        self.imp_row = imp[:, None, :].contiguous()  # (K, 1, n)
        self.s_row = (imp * (2.0 / (self.B * self.n)))[:, None, :].contiguous()
        m = model.n_hidden
        self._h = self._buf(self.K, self.B, m)
        self._dh = self._buf(self.K, self.B, m)
        self._pre = self._buf(self.K, self.B, self.n)
        self._r = self._buf(self.K, self.B, self.n)
        self._g = self._buf(self.K, self.B, self.n)

    def _output_error(self, target: torch.Tensor, want_loss: bool) -> torch.Tensor | None:
        """From ``pre``: ``r = ReLU(pre) - target``, ``g = s r [pre > 0]``; the loss ``mean I r^2`` if wanted."""
        pre, r, g = self._pre, self._r, self._g
        torch.clamp_min(pre, 0.0, out=r)
        r.sub_(target)
        torch.mul(r, self.s_row, out=g)
        _threshold_backward(g, pre, 0.0, grad_input=g)
        if not want_loss:
            return None
        return torch.mean(r.square().mul_(self.imp_row), (1, 2))


class NeuronStep(_SparseFeatureStep):
    """One step of :class:`~supercourse.neurons.NeuronModel`: forward and analytic backward on the next batch.

    Calling it fills ``W.grad`` ``(n_instances, n_hidden, n_features)`` and
    ``b_final.grad`` and returns the per-instance loss ``(n_instances,)``
    when ``want_loss`` (else ``None``).
    """

    PARAMS = ("W", "b_final")

    def __call__(self, want_loss: bool = False) -> torch.Tensor | None:
        (W, gW), (b, gb) = self._params_and_grads()
        x, h, dh = self._load(), self._h, self._dh
        torch.bmm(x, W.mT, out=h)  # (K, B, m) pre-activations of the neurons
        h.relu_()
        torch.baddbmm(b[:, None, :], h, W, out=self._pre)
        loss = self._output_error(x, want_loss)
        g = self._g
        torch.bmm(g, W.mT, out=dh)
        _threshold_backward(dh, h, 0.0, grad_input=dh)
        torch.bmm(h.mT, g, out=gW)
        gW.baddbmm_(dh.mT, x)
        torch.sum(g, 1, out=gb)
        return loss


class AbsValueStep(_SparseFeatureStep):
    """One step of :class:`~supercourse.neurons.AbsValueModel` (target ``|x|``).

    Fills ``W1.grad``, ``W2.grad`` and ``b_final.grad``; returns the
    per-instance loss ``(n_instances,)`` when ``want_loss``.
    """

    PARAMS = ("W1", "W2", "b_final")

    def __init__(self, model: nn.Module, batch_size: int, batches: Batches) -> None:
        super().__init__(model, batch_size, batches)
        self._t = self._buf(self.K, self.B, self.n)

    def __call__(self, want_loss: bool = False) -> torch.Tensor | None:
        (W1, gW1), (W2, gW2), (b, gb) = self._params_and_grads()
        x, h, dh = self._load(), self._h, self._dh
        torch.abs(x, out=self._t)
        torch.bmm(x, W1.mT, out=h)
        h.relu_()
        torch.baddbmm(b[:, None, :], h, W2.mT, out=self._pre)
        loss = self._output_error(self._t, want_loss)
        g = self._g
        torch.bmm(g.mT, h, out=gW2)
        torch.bmm(g, W2, out=dh)
        _threshold_backward(dh, h, 0.0, grad_input=dh)
        torch.bmm(dh.mT, x, out=gW1)
        torch.sum(g, 1, out=gb)
        return loss


class SAEStep(_Step):
    """One step of :class:`~supercourse.sae.SparseAutoencoder` (ReLU with L1, or TopK; masked dictionaries).

    Fills the ``.grad`` of ``W_e``, ``b_e``, ``W_d`` and ``b_d``, returns the
    per-instance loss ``(n_instances,)`` when ``want_loss``, and ORs into
    :attr:`fired` ``(n_instances, d_sae)`` the latents that fired on the batch.
    """

    PARAMS = ("W_e", "b_e", "W_d", "b_d")

    def __init__(self, model: nn.Module, batch_size: int, batches: Batches) -> None:
        super().__init__(model, batch_size, batches, model.d_in)
        K, B, L = self.K, self.B, model.d_sae
        self.k = model.k
        lam = torch.zeros(K) if model.k is not None else model.l1_coeff
        self.lam = lam.to(self.device, self.dtype)
        self.lam_per_sample = (self.lam / B)[:, None, None].contiguous()  # added to df: d(lambda mean_b sum_j f)/df
        mask = model.latent_mask
        self.masked = None if bool(mask.all()) else (~mask.to(self.device))[:, None, :]
        self.fired = torch.zeros(K, L, dtype=torch.bool, device=self.device)
        self._xc = self._buf(K, B, self.n)
        self._pre = self._buf(K, B, L)
        self._f = self._buf(K, B, L)
        self._r = self._buf(K, B, self.n)
        self._dpre = self._buf(K, B, L)
        self._gbd = self._buf(K, 1, self.n)

    def __call__(self, want_loss: bool = False) -> torch.Tensor | None:
        (W_e, gW_e), (b_e, gb_e), (W_d, gW_d), (b_d, gb_d) = self._params_and_grads()
        h, xc, pre, f, r, dpre = self._load(), self._xc, self._pre, self._f, self._r, self._dpre
        torch.sub(h, b_d[:, None, :], out=xc)  # the input as the encoder sees it
        torch.baddbmm(b_e[:, None, :], xc, W_e.mT, out=pre)
        if self.k is None:
            if self.masked is not None:
                pre.masked_fill_(self.masked, 0.0)
            torch.clamp_min(pre, 0.0, out=f)
        else:
            if self.masked is not None:
                pre.masked_fill_(self.masked, -torch.inf)
            values, index = pre.topk(self.k, dim=-1)
            f.zero_().scatter_(-1, index, values.relu_())
        torch.baddbmm(xc, f, W_d.mT, beta=-1.0, out=r)  # h_hat - h = W_d f - (h - b_d)
        self.fired |= (f > 0).any(dim=1)
        loss = None
        if want_loss:
            loss = r.square().mean((1, 2)) + self.lam * f.sum((1, 2)) / self.B
        r.mul_(2.0 / (self.B * self.n))  # dr
        torch.bmm(r.mT, f, out=gW_d)
        torch.baddbmm(self.lam_per_sample, r, W_d, out=dpre)  # df
        _threshold_backward(dpre, f, 0.0, grad_input=dpre)
        torch.bmm(dpre.mT, xc, out=gW_e)
        torch.sum(dpre, 1, out=gb_e)
        torch.bmm(gb_e[:, None, :], W_e, out=self._gbd)
        torch.sum(r, 1, out=gb_d)
        gb_d.sub_(self._gbd[:, 0])
        return loss
