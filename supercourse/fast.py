"""The fast training step for :class:`~supercourse.model.ToyModel`.

Training many tiny models is dominated by overhead, not arithmetic: autograd's
graph, fresh allocations, two random draws per entry. This step does the same
maths with none of that:

* tensors are laid out instance-major, ``(n_instances, batch, n_features)``, so
  every product is one contiguous ``bmm``;
* one uniform draw per entry gives both the mask and the magnitude
  (:func:`~supercourse.data.sparse_from_uniform`), written into a reused buffer;
* the gradient of the tied model is written out by hand.

With ``g = dL/dpre`` (``pre = W^T W x + b``; for ReLU, zero where ``pre <= 0``)
and ``h = W x``, the tied weight gets a gradient from both of its uses::

    dL/dW = h^T g + (g W^T)^T x        dL/db = sum over batch of g

It trains exactly what ``loss.backward()`` would: ``tests/test_fast.py`` checks
the gradient against autograd.
"""

from __future__ import annotations

import torch

from .model import ToyModel

__all__ = ["ToyModelStep"]


class ToyModelStep:
    """One data-draw, forward and analytic backward for every instance of ``model``.

    Calling it fills ``model.W.grad`` and ``model.b_final.grad`` and returns the
    per-instance loss ``(n_instances,)`` when ``want_loss`` (else ``None``).
    """

    def __init__(self, model: ToyModel, batch_size: int, generator: torch.Generator | None) -> None:
        self.model = model
        self.generator = generator
        n_inst, m, n = model.n_instances, model.n_hidden, model.n_features
        dev, dt = model.W.device, model.W.dtype
        self.relu = model.activation == "relu"
        p = model.feature_probability.to(dev, dt)
        self.inv_p = p.clamp_min(1e-30).reciprocal()[:, None, :]
        self.importance = model.importance.to(dev, dt)[:, None, :]
        self.grad_scale = self.importance * (2.0 / (batch_size * n))
        self.x = torch.empty(n_inst, batch_size, n, device=dev, dtype=dt)
        self.pre = torch.empty_like(self.x)
        self.g = torch.empty_like(self.x)
        self.h = torch.empty(n_inst, batch_size, m, device=dev, dtype=dt)
        self.dh = torch.empty_like(self.h)
        model.W.grad = torch.zeros_like(model.W)
        model.b_final.grad = torch.zeros_like(model.b_final)

    def __call__(self, want_loss: bool = False) -> torch.Tensor | None:
        W, b = self.model.W.detach(), self.model.b_final.detach()
        x, h, pre, g, dh = self.x, self.h, self.pre, self.g, self.dh
        torch.rand(x.shape, generator=self.generator, out=x)
        x.mul_(self.inv_p)
        x.mul_(x < 1)
        torch.bmm(x, W.mT, out=h)
        torch.baddbmm(b.unsqueeze(1), h, W, out=pre)
        if self.relu:
            torch.clamp_min(pre, 0.0, out=g)
        else:
            g.copy_(pre)
        g.sub_(x)  # g = x_hat - x
        loss = None
        if want_loss:
            loss = (g.square() * self.importance).mean(dim=(1, 2))
        g.mul_(self.grad_scale)
        if self.relu:
            g.mul_(pre > 0)
        gW = self.model.W.grad
        torch.bmm(h.mT, g, out=gW)
        torch.bmm(g, W.mT, out=dh)
        gW.baddbmm_(dh.mT, x)
        torch.sum(g, dim=1, out=self.model.b_final.grad)
        return loss
