"""The fast training step for :class:`~supercourse.model.ToyModel`.

Training many tiny models is dominated by overhead, not arithmetic: autograd's
graph, fresh allocations, broadcasting over a ``(batch, instances, features)``
layout, two random draws per entry. :class:`ToyModelStep` does the same maths
without any of that:

* **Instance-major, feature-by-batch layout.** Each instance's batch is stored
  as ``(n_features, batch)``, so every product is one contiguous ``bmm`` and
  every per-feature constant broadcasts along contiguous rows.
* **One uniform draw per entry** gives both the mask and the magnitude:
  feature ``i`` is active when ``u >= 1 - p_i`` and its value is then
  ``(u - (1 - p_i)) / p_i``, uniform on [0, 1) (the distribution of
  :func:`~supercourse.data.sparse_uniform`). On the CPU the draws come from
  NumPy's PCG64 (about 1.5x faster than torch's CPU generator, and seeded from
  the torch generator, so seeded runs stay deterministic); on other devices from
  ``torch.rand`` with the given generator.
* **The gradient of the tied model is written out by hand** (below), into
  preallocated buffers; nothing is allocated per step.
* **Two exact formulations**, chosen by shape. For ``n`` comparable to ``m``
  (e.g. the n=2, m=1 phase diagram) the "Gram" form works with the ``n x n``
  matrix ``A = W^T W``: one ``bmm`` gives both the pre-activation and the
  residual, and one gives the whole weight gradient. For ``n >> m`` the
  standard form keeps the ``m``-wide bottleneck.
* **Cache tiling on the CPU.** Large problems are processed a tile of
  instances (and, for wide models, a slice of the batch) at a time, so the
  batch, pre-activation and residual of a tile stay in cache between the
  operations that use them. Tiles only split sums over the batch, so the result
  is the same maths; the tiling is a function of the shapes only, so seeded runs
  are deterministic.

The gradient. With ``x`` the input, ``h = W x``, ``pre = W^T h + b``,
``x_hat = ReLU(pre)`` (or ``pre``), the per-instance loss
``L = mean_{batch, i} I_i (x_hat_i - x_i)^2`` and
``g = dL/dpre = s * (x_hat - x) * [pre > 0]`` with ``s_i = 2 I_i / (batch * n)``,
the tied weight gets a gradient from both of its uses::

    dL/dW = h g^T + (W g) x^T  =  W (x g^T + g x^T)        dL/db = sum_batch g

``tests/test_fast.py`` checks it against autograd.
"""

from __future__ import annotations

import numpy as np
import torch

from .model import ToyModel

__all__ = ["ToyModelStep", "use_gram_form"]

_threshold_backward = torch.ops.aten.threshold_backward.grad_input

TILE_ELEMENTS = 1 << 17
"""Target entries ``(instances x features x batch)`` of one CPU tile: 512 KiB per float32 buffer."""

UNTILED_MAX = 1 << 19
"""Problems with at most this many entries per batch run as a single tile."""


def use_gram_form(n_features: int, n_hidden: int) -> bool:
    """Whether :class:`ToyModelStep` uses the ``W^T W`` ("Gram") form for this shape.

    It costs ``~6 n^2`` flops per sample against ``~10 m n`` for the standard
    form, but runs two matrix products instead of five and never materialises
    the input or the hidden layer; it wins while ``n`` is within about
    ``2 m`` (measured on CPU: n=2, m=1 is 1.3x faster this way; n=20, m=5 is
    1.1x slower).
    """
    return n_features <= 2 * n_hidden + 2


def _numpy_dtype(dtype: torch.dtype):
    return {torch.float32: np.float32, torch.float64: np.float64}.get(dtype)


class _Tile:
    """One block of instances ``[k0, k1)`` and batch entries ``[b0, b1)``."""

    __slots__ = ("k0", "k1", "b0", "b1", "first", "size")

    def __init__(self, k0: int, k1: int, b0: int, b1: int, n: int) -> None:
        self.k0, self.k1, self.b0, self.b1 = k0, k1, b0, b1
        self.first = b0 == 0
        self.size = (k1 - k0) * n * (b1 - b0)


def _plan_tiles(n_instances: int, n_features: int, batch: int, tiled: bool) -> list[_Tile]:
    """Tiles covering every (instance, batch entry); a function of the shapes only."""
    K, n, B = n_instances, n_features, batch
    if not tiled or K * n * B <= UNTILED_MAX:
        return [_Tile(0, K, 0, B, n)]
    if n * B <= TILE_ELEMENTS:
        kt, bt = max(1, TILE_ELEMENTS // (n * B)), B
    else:
        n_blocks = -(-n * B // TILE_ELEMENTS)
        kt, bt = 1, max(1, -(-B // n_blocks))
    return [_Tile(k0, min(K, k0 + kt), b0, min(B, b0 + bt), n) for k0 in range(0, K, kt) for b0 in range(0, B, bt)]


class ToyModelStep:
    """One data draw, forward and analytic backward for every instance of ``model``.

    Calling it fills ``model.W.grad`` and ``model.b_final.grad`` (allocated
    once, written in place) and returns the per-instance loss
    ``(n_instances,)`` when ``want_loss`` (else ``None``).

    Args:
        model: the :class:`ToyModel` to train (its parameters are read at each call).
        batch_size: fresh samples per instance per step.
        generator: seeds the data stream (``None``: torch's default generator).
        gram: force the Gram (``True``) or standard (``False``) formulation;
            ``None`` chooses by shape (:func:`use_gram_form`).
        tiled: process large CPU problems tile by tile (``None``: on CPU only).
        numpy_rng: draw the CPU uniforms with NumPy's PCG64 (``None``: on CPU
            for float32/float64); otherwise ``torch.rand`` with ``generator``.

    Attributes:
        x: the batch drawn by the last call, ``(n_instances, batch, n_features)``.
    """

    def __init__(
        self,
        model: ToyModel,
        batch_size: int,
        generator: torch.Generator | None,
        *,
        gram: bool | None = None,
        tiled: bool | None = None,
        numpy_rng: bool | None = None,
    ) -> None:
        self.model = model
        self.generator = generator
        K, m, n, B = model.n_instances, model.n_hidden, model.n_features, batch_size
        self.K, self.m, self.n, self.B = K, m, n, B
        dev, dt = model.W.device, model.W.dtype
        self.device = dev
        self.relu = model.activation == "relu"
        self.gram = use_gram_form(n, m) if gram is None else bool(gram)
        on_cpu = dev.type == "cpu"
        self.tiles = _plan_tiles(K, n, B, on_cpu if tiled is None else bool(tiled))
        np_dtype = _numpy_dtype(dt)
        self.numpy_rng = on_cpu and np_dtype is not None if numpy_rng is None else bool(numpy_rng)
        if self.numpy_rng and not (on_cpu and np_dtype is not None):
            raise ValueError("numpy_rng needs a float32 or float64 model on the CPU")

        def buf(*shape: int) -> torch.Tensor:
            return torch.empty(*shape, device=dev, dtype=dt)

        p = model.feature_probability.to(dev, dt)
        imp = model.importance.to(dev, dt)
        # Entry active when u >= q = 1 - p, value (u - q) * a with a = 1/p rounded
        # one ulp down so that the largest draw stays below 1.
        q = (1.0 - model.feature_probability.to(dev, torch.float64)).to(dt)
        a = p.clamp_min(1e-30).reciprocal()
        a = torch.nextafter(a, torch.zeros_like(a))
        self.q3 = q[:, :, None].contiguous()  # (K, n, 1)
        self.a3 = a[:, :, None].contiguous()
        self.a_row = a[:, None, :].contiguous()  # (K, 1, n)
        self.s = imp * (2.0 / (B * n))  # (K, n) loss weight -> gradient scale
        self.s_row = self.s[:, None, :].contiguous()
        self.imp3 = imp[:, :, None].contiguous()

        E = max(t.size for t in self.tiles)
        rows = max((t.k1 - t.k0) * (t.b1 - t.b0) for t in self.tiles)
        self._u = buf(E)  # the tile's draws, turned in place into its batch
        self._g = buf(E)  # the tile's dL/dpre (unscaled)
        self._gb = buf(K, n)
        if self.gram:
            self._pd = buf(2 * E)  # [pre; pre - x] stacked per instance
            self._A2 = buf(K, 2 * n, n)
            self._b2 = buf(K, 2 * n, 1)
            self._M = buf(K, n, n)
            self._diag_a = torch.diag_embed(a)
        else:
            self._pre = buf(E)
            self._h = buf(rows * m)
            self._dh = buf(rows * m)
            self._gW1 = buf(K, m, n)
        self._views = [self._tile_views(t) for t in self.tiles]

        self._np_gen = None
        self._np_u = None
        self._rng_state = None
        if self.numpy_rng:
            seed = int(torch.randint(0, 2**63 - 1, (1,), generator=generator).item())
            self._np_gen = np.random.Generator(np.random.PCG64(seed))
            self._np_u = self._u.numpy()
            self._np_dtype = np_dtype
        self._drawn = False
        model.W.grad = torch.zeros_like(model.W)
        model.b_final.grad = torch.zeros_like(model.b_final)

    # -- buffers -----------------------------------------------------------------

    def _tile_views(self, t: _Tile) -> dict[str, torch.Tensor]:
        kk, bb, n, m = t.k1 - t.k0, t.b1 - t.b0, self.n, self.m
        sl = slice(t.k0, t.k1)
        v = {
            "u": self._u[: t.size].view(kk, n, bb),
            "g": self._g[: t.size].view(kk, n, bb),
            "q3": self.q3[sl],
            "a3": self.a3[sl],
            "imp3": self.imp3[sl],
            "gb": self._gb[sl],
        }
        if self.gram:
            v["pd"] = self._pd[: 2 * t.size].view(kk, 2 * n, bb)
            v["A2"], v["b2"], v["M"] = self._A2[sl], self._b2[sl], self._M[sl]
        else:
            v["pre"] = self._pre[: t.size].view(kk, n, bb)
            v["h"] = self._h[: kk * m * bb].view(kk, m, bb)
            v["dh"] = self._dh[: kk * m * bb].view(kk, m, bb)
            v["gW1"] = self._gW1[sl]
        return v

    def _draw(self, t: _Tile, u: torch.Tensor) -> None:
        if self._np_gen is not None:
            self._np_gen.random(out=self._np_u[: t.size], dtype=self._np_dtype)
        else:
            torch.rand(u.shape, generator=self.generator, out=u)

    # -- the step ------------------------------------------------------------------

    def __call__(self, want_loss: bool = False) -> torch.Tensor | None:
        model = self.model
        W, b = model.W.detach(), model.b_final.detach()
        gW, gb_out = model.W.grad, model.b_final.grad
        if gW is None or gW.shape != W.shape:
            gW = model.W.grad = torch.zeros_like(model.W)
        if gb_out is None or gb_out.shape != b.shape:
            gb_out = model.b_final.grad = torch.zeros_like(model.b_final)
        if len(self.tiles) > 1:  # lets .x redraw the batch
            if self._np_gen is not None:
                self._rng_state = self._np_gen.bit_generator.state
            else:
                self._rng_state = (self.generator or torch.default_generator).get_state()
        loss = torch.zeros(self.K, device=self.device, dtype=W.dtype) if want_loss else None
        if self.gram:
            self._gram_step(W, b, gW, loss)
        else:
            self._standard_step(W, b, gW, loss)
        torch.mul(self._gb, self.s, out=gb_out)
        self._drawn = True
        return None if loss is None else loss.div_(self.B * self.n)

    def _gram_step(self, W, b, gW, loss) -> None:
        # pre = W^T W x + b = A x + b and pre - x = (A - I) x + b, one bmm for both.
        # The tile holds z = x / a = relu(p - u), so a is folded into A2's columns.
        n = self.n
        A2 = self._A2
        torch.bmm(W.mT, W, out=self._M)
        torch.mul(self._M, self.a_row, out=A2[:, :n])
        torch.sub(A2[:, :n], self._diag_a, out=A2[:, n:])
        self._b2[:, :n, 0] = b
        self._b2[:, n:, 0] = b
        for t, v in zip(self.tiles, self._views):
            z, g, pd = v["u"], v["g"], v["pd"]
            self._draw(t, z)
            torch.sub(z, v["q3"], out=z)
            z.relu_()  # z = x / a = relu(u - q)
            torch.baddbmm(v["b2"], v["A2"], z, out=pd)
            if self.relu:
                _threshold_backward(pd[:, n:], pd[:, :n], 0.0, grad_input=g)
            else:
                g.copy_(pd[:, n:])
            if loss is not None:
                xhat = pd[:, :n].clamp_min(0.0) if self.relu else pd[:, :n]
                err = xhat - z * v["a3"]
                loss[t.k0 : t.k1] += (err.square_() * v["imp3"]).sum((1, 2))
            if t.first:
                torch.bmm(z, g.mT, out=v["M"])
                torch.sum(g, -1, out=v["gb"])
            else:
                v["M"].baddbmm_(z, g.mT)
                v["gb"].add_(g.sum(-1))
        # x g'^T = diag(a) (z g^T) diag(s); dL/dW = W (x g'^T + g' x^T).
        Ms = self._M.mul_(self.a3).mul_(self.s_row)
        torch.bmm(W, Ms + Ms.mT, out=gW)

    def _standard_step(self, W, b, gW, loss) -> None:
        WS = W * self.s_row  # W diag(s): dh = W g' = (W diag(s)) g
        b3 = b[:, :, None]
        for t, v in zip(self.tiles, self._views):
            x, g, pre, h, dh = v["u"], v["g"], v["pre"], v["h"], v["dh"]
            Wk = W[t.k0 : t.k1]
            self._draw(t, x)
            torch.sub(x, v["q3"], out=x)
            x.relu_().mul_(v["a3"])  # x = relu(u - q) * a
            torch.bmm(Wk, x, out=h)
            torch.baddbmm(b3[t.k0 : t.k1], Wk.mT, h, out=pre)
            torch.sub(pre, x, out=g)
            if self.relu:
                _threshold_backward(g, pre, 0.0, grad_input=g)
            if loss is not None:
                err = pre.clamp_min(0.0).sub_(x) if self.relu else g
                loss[t.k0 : t.k1] += (err.square() * v["imp3"]).sum((1, 2))
            torch.bmm(WS[t.k0 : t.k1], g, out=dh)
            gWk = gW[t.k0 : t.k1]
            if t.first:
                torch.bmm(h, g.mT, out=v["gW1"])
                torch.bmm(dh, x.mT, out=gWk)
                torch.sum(g, -1, out=v["gb"])
            else:
                v["gW1"].baddbmm_(h, g.mT)
                gWk.baddbmm_(dh, x.mT)
                v["gb"].add_(g.sum(-1))
        gW.addcmul_(self._gW1, self.s_row)  # h g'^T = (h g^T) diag(s)

    # -- the batch, for tests and inspection ----------------------------------------

    @property
    def x(self) -> torch.Tensor:
        """The batch the last call trained on: ``(n_instances, batch, n_features)``."""
        K, n, B = self.K, self.n, self.B
        if not self._drawn:
            return torch.zeros(K, B, n, device=self.device, dtype=self.model.W.dtype)
        if len(self.tiles) == 1:
            u = self._views[0]["u"]
            return (u * self.a3 if self.gram else u).transpose(1, 2)
        # Redraw every tile from the generator state saved by the last call.
        dt = self.model.W.dtype
        if self._np_gen is not None:
            gen = np.random.Generator(np.random.PCG64())
            gen.bit_generator.state = self._rng_state
        else:
            tgen = torch.Generator(device=self.device)
            tgen.set_state(self._rng_state)
        out = torch.empty(K, n, B, device=self.device, dtype=dt)
        for t in self.tiles:
            shape = (t.k1 - t.k0, n, t.b1 - t.b0)
            if self._np_gen is not None:
                u = torch.from_numpy(gen.random(t.size, dtype=self._np_dtype)).view(shape)
            else:
                u = torch.rand(shape, generator=tgen, device=self.device, dtype=dt)
            sl = slice(t.k0, t.k1)
            out[sl, :, t.b0 : t.b1] = (u - self.q3[sl]).relu_() * self.a3[sl]
        return out.transpose(1, 2)
