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

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from .model import ToyModel

__all__ = ["ToyModelStep", "use_gram_form"]

_threshold_backward = torch.ops.aten.threshold_backward.grad_input

TILE_ELEMENTS = 1 << 17
"""Target entries ``(instances x features x batch)`` of one CPU tile: 512 KiB per float32 buffer."""

UNTILED_MAX = 1 << 19
"""Problems with at most this many entries per batch run as a single tile."""

SPARSE_SLOTS_FRACTION = 8
"""A row of the batch (one feature of one instance) is drawn sparsely when the
slots reserved for its active entries number at most ``batch / 8``: density
below about 6% at batch 1024."""


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


def _tiles_wanted(device: torch.device) -> bool:
    # A tile is a dozen operations; with several intra-op threads each one is a
    # parallel region, whose barrier costs a scheduler time slice whenever the
    # cores are shared with other work. Tiles pay when operations run inline.
    return device.type == "cpu" and torch.get_num_threads() == 1


class _Tile:
    """One block of instances ``[k0, k1)`` and batch entries ``[b0, b1)``."""

    __slots__ = ("k0", "k1", "b0", "b1", "first", "size", "sampler")

    def __init__(self, k0: int, k1: int, b0: int, b1: int, n: int) -> None:
        self.k0, self.k1, self.b0, self.b1 = k0, k1, b0, b1
        self.first = b0 == 0
        self.size = (k1 - k0) * n * (b1 - b0)
        self.sampler = None


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


def _runs(flags: list[bool]) -> list[tuple[int, int, bool]]:
    """Maximal runs ``(start, stop, flag)`` of equal flags."""
    out: list[tuple[int, int, bool]] = []
    for i, f in enumerate(flags):
        if out and out[-1][2] == f:
            out[-1] = (out[-1][0], i + 1, f)
        else:
            out.append((i, i + 1, f))
    return out


_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 1)), thread_name_prefix="supercourse-rng")
    return _POOL


class _NumpySampler:
    """Draws one tile's ``z = x / a = relu(u - q)`` into its buffer, on the CPU with NumPy.

    Instances whose features are all dense enough get one PCG64 uniform per
    entry, turned into ``z`` in place; a large dense part is split into fixed
    chunks with their own streams, drawn in parallel threads (the split depends
    on the shapes only, so results do not depend on the number of threads).
    For very sparse instances only the active entries are generated: along each
    row (one feature over the batch) the gaps between active entries are
    geometric, ``floor(log(1 - U) / log(1 - p))``, and each active entry gets a
    fresh uniform magnitude. A row reserves ``mu + 5 sigma + 5`` slots for its
    ``Binomial(batch, p)`` active entries; in the rare step where that is not
    enough, its gap sequence is simply continued, so the draw is exact.
    """

    SLOT_SIGMAS = 5.0
    SLOT_EXTRA = 5.0
    CHUNK_ELEMENTS = 1 << 19
    MAX_CHUNKS = 8

    def __init__(
        self,
        p: np.ndarray,
        q: torch.Tensor,
        batch: int,
        np_dtype,
        gen: np.random.Generator,
        parallel: bool,
        max_runs: int = 16,
    ) -> None:
        kk, n = p.shape
        self.kk, self.n, self.bb, self.np_dtype = kk, n, batch, np_dtype
        self.q = q  # (kk, n, 1) torch view
        self.prev: np.ndarray | None = None
        mu = batch * p
        slots = np.ceil(mu + self.SLOT_SIGMAS * np.sqrt(mu * (1.0 - p)) + self.SLOT_EXTRA)
        slots = np.where(p > 0, np.maximum(slots, 1.0), 0.0).astype(np.int64)
        slots = np.minimum(slots, batch)
        sparse_rows = (slots * SPARSE_SLOTS_FRACTION <= batch) & (p < 1.0)
        sparse_inst = sparse_rows.all(axis=1).tolist()
        runs = _runs(sparse_inst)
        if len(runs) > max_runs or not any(sparse_inst):
            runs = [(0, kk, False)]
        self.dense_runs = [(k0, k1) for k0, k1, sp in runs if not sp]
        self.sparse_runs = [(k0, k1) for k0, k1, sp in runs if sp]
        self._plan_chunks(gen, parallel)
        rows = [k * n + i for k0, k1 in self.sparse_runs for k in range(k0, k1) for i in range(n)]
        rows = np.asarray(rows, dtype=np.int64)
        L = slots.reshape(-1)[rows] if len(rows) else np.zeros(0, dtype=np.int64)
        keep = L > 0  # rows of density 0 stay zero
        rows, p_rows, L = rows[keep], p.reshape(-1)[rows][keep], L[keep]
        # Slots are grouped by the number L of slots of their row, and laid out
        # slot-major within a group, (L, rows): the running sum down each row is
        # then a vectorised cumulative sum over axis 0.
        self.groups: list[tuple[int, int, int]] = []  # (offset, L, rows)
        order, slot_row, last, off = [], [], [], 0
        for length in np.unique(L).tolist():
            members = np.flatnonzero(L == length)
            order.append(members)
            slot_row.append(np.tile(members, length))
            last.append(off + (length - 1) * len(members) + np.arange(len(members)))
            self.groups.append((off, length, len(members)))
            off += length * len(members)
        self.T = T = off
        if T == 0:
            return
        slot_row = np.concatenate(slot_row)
        self.rows, self.p_rows = rows, p_rows
        self.last_slot = np.empty(len(rows), dtype=np.int64)
        self.last_slot[np.concatenate(order)] = np.concatenate(last)
        self.c_slot = (1.0 / np.log1p(-p_rows))[slot_row].astype(np.float32)  # log(1-U) * c = log(1-U) / log(1-p)
        self.p_slot = p_rows[slot_row].astype(np.float32)
        self.rowbase_slot = (rows * batch)[slot_row]
        self.U = np.empty(T, dtype=np.float32)
        self.pos = np.empty(T, dtype=np.float32)

    def _plan_chunks(self, gen: np.random.Generator, parallel: bool) -> None:
        """Split the dense runs into chunks; chunks after the first get their own streams."""
        nb = self.n * self.bb
        chunks = [(k0 * nb, k1 * nb, k0, k1) for k0, k1 in self.dense_runs]
        total = sum(e - s for s, e, _, _ in chunks)
        n_chunks = min(self.MAX_CHUNKS, total // self.CHUNK_ELEMENTS) if parallel else 1
        if n_chunks > 1:
            per = -(-total // n_chunks)
            split = []
            for s, e, _, _ in chunks:
                for a in range(s, e, per):
                    split.append((a, min(e, a + per)))
            chunks = split
        else:
            chunks = [(s, e) for s, e, _, _ in chunks]
        self.chunks = chunks
        seeds = gen.integers(0, 2**63, max(0, len(chunks) - 1)).tolist()
        self.streams = [gen] + [np.random.Generator(np.random.PCG64(x)) for x in seeds]

    def fill(self, z: torch.Tensor, z_np: np.ndarray, keep_zeros: bool, gen: np.random.Generator | None = None) -> None:
        """Write the tile's ``z``; ``keep_zeros``: the buffer still holds this tile's last draw.

        ``gen`` replaces the main stream (to redraw a batch from a saved state;
        only for a sampler without parallel chunks).
        """
        nb, dtype = self.n * self.bb, self.np_dtype
        main = self.streams[0] if gen is None else gen
        jobs = [
            _pool().submit(g.random, out=z_np[s:e], dtype=dtype) for (s, e), g in zip(self.chunks[1:], self.streams[1:])
        ]
        if self.chunks:
            s, e = self.chunks[0]
            main.random(out=z_np[s:e], dtype=dtype)
        if self.sparse_runs:
            self._fill_sparse(z_np, nb, keep_zeros, main)
        for j in jobs:
            j.result()
        for k0, k1 in self.dense_runs:
            seg = z[k0:k1]
            torch.sub(seg, self.q[k0:k1], out=seg)
            seg.relu_()

    def _fill_sparse(self, z_np: np.ndarray, nb: int, keep_zeros: bool, gen: np.random.Generator) -> None:
        if keep_zeros and self.prev is not None:
            z_np[self.prev] = 0
        else:
            for k0, k1 in self.sparse_runs:
                z_np[k0 * nb : k1 * nb] = 0
        if self.T == 0:
            return
        bb, U, pos = self.bb, self.U, self.pos
        gen.random(out=U, dtype=np.float32)
        np.negative(U, out=pos)
        np.log1p(pos, out=pos)
        np.multiply(pos, self.c_slot, out=pos)
        np.minimum(pos, bb, out=pos)
        np.floor(pos, out=pos)
        pos += 1.0  # steps between active entries: 1 ... bb + 1
        for off, length, n_rows in self.groups:  # running sums down each row
            block = pos[off : off + length * n_rows].reshape(length, n_rows)
            np.cumsum(block, axis=0, out=block)
        pos -= 1.0  # 0-based position of each slot's entry in its row (exact: < 2^24)
        short = np.flatnonzero(pos[self.last_slot] < bb)
        sel = np.flatnonzero(pos < bb)
        idx = self.rowbase_slot[sel] + pos[sel].astype(np.int64)
        vals = gen.random(len(sel), dtype=np.float32)
        vals *= self.p_slot[sel]
        if len(short):  # more active entries than slots: continue those rows' gap sequences
            extra_idx, extra_vals = self._continue_rows(short, pos, gen)
            idx = np.concatenate([idx, extra_idx])
            vals = np.concatenate([vals, extra_vals])
        z_np[idx] = vals
        self.prev = idx

    def _continue_rows(self, which: np.ndarray, pos: np.ndarray, gen: np.random.Generator):
        idx, vals = [], []
        for r in which.tolist():
            at = float(pos[self.last_slot[r]])
            c, p = 1.0 / np.log1p(-self.p_rows[r]), float(self.p_rows[r])
            while True:
                at += min(np.floor(np.log1p(-gen.random()) * c), self.bb) + 1.0
                if at >= self.bb:
                    break
                idx.append(int(self.rows[r]) * self.bb + int(at))
                vals.append(gen.random() * p)
        return np.asarray(idx, dtype=np.int64), np.asarray(vals, dtype=np.float32)


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
        tiled: process a large CPU problem tile by tile (``None``: when torch
            runs single-threaded, see :func:`_tiles_wanted`).
        numpy_rng: draw on the CPU with NumPy, generating only the active
            entries of very sparse instances (``None``: on CPU for
            float32/float64); otherwise ``torch.rand`` with ``generator``, one
            uniform per entry.

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
        self.tiles = _plan_tiles(K, n, B, _tiles_wanted(dev) if tiled is None else bool(tiled))
        np_dtype = _numpy_dtype(dt)
        self.numpy_rng = on_cpu and np_dtype is not None if numpy_rng is None else bool(numpy_rng)
        if self.numpy_rng and not (on_cpu and np_dtype is not None):
            raise ValueError("numpy_rng needs a float32 or float64 model on the CPU")

        def buf(*shape: int) -> torch.Tensor:
            return torch.empty(*shape, device=dev, dtype=dt)

        p64 = model.feature_probability.to(dev, torch.float64)
        p = p64.to(dt)
        imp = model.importance.to(dev, dt)
        # Entry active when u >= q = 1 - p; then x = (u - q) * a, with a = 1/p
        # rounded one ulp down so the largest draw stays below 1. The step works
        # with z = x / a = relu(u - q) and folds a into its small matrices.
        a = p.clamp_min(1e-30).reciprocal()
        a = torch.nextafter(a, torch.zeros_like(a))
        self.q3 = (1.0 - p64).to(dt)[:, :, None].contiguous()  # (K, n, 1)
        self.a3 = a[:, :, None].contiguous()
        self.neg_a3 = (-a)[:, :, None].contiguous()
        self.a_row = a[:, None, :].contiguous()  # (K, 1, n)
        self.s = imp * (2.0 / (B * n))  # (K, n): loss weight -> gradient scale
        self.s_row = self.s[:, None, :].contiguous()
        self.imp3 = imp[:, :, None].contiguous()

        E = max(t.size for t in self.tiles)
        rows = max((t.k1 - t.k0) * (t.b1 - t.b0) for t in self.tiles)
        self._z = buf(E)  # the tile's batch as z = x / a
        self._g = buf(E)  # the tile's dL/dpre, without the factor s
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
            self._gW1 = buf(K, m, n)  # h g^T
            self._gWz = buf(K, m, n)  # dh z^T
        self._views = [self._tile_views(t) for t in self.tiles]

        self._np_gen = None
        if self.numpy_rng:
            seed = int(torch.randint(0, 2**63 - 1, (1,), generator=generator).item())
            self._np_gen = np.random.Generator(np.random.PCG64(seed))
            self._z_np = self._z.numpy()
            p_np = model.feature_probability.detach().to("cpu", torch.float64).numpy()
            parallel = len(self.tiles) == 1 and torch.get_num_threads() > 1
            for t, v in zip(self.tiles, self._views):
                t.sampler = _NumpySampler(p_np[t.k0 : t.k1], v["q3"], t.b1 - t.b0, np_dtype, self._np_gen, parallel)
        self._rng_state = None
        self._drawn = False
        model.W.grad = torch.zeros_like(model.W)
        model.b_final.grad = torch.zeros_like(model.b_final)

    # -- buffers -----------------------------------------------------------------

    def _tile_views(self, t: _Tile) -> dict[str, torch.Tensor]:
        kk, bb, n, m = t.k1 - t.k0, t.b1 - t.b0, self.n, self.m
        sl = slice(t.k0, t.k1)
        v = {
            "z": self._z[: t.size].view(kk, n, bb),
            "g": self._g[: t.size].view(kk, n, bb),
            "q3": self.q3[sl],
            "a3": self.a3[sl],
            "neg_a3": self.neg_a3[sl],
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
            v["gW1"], v["gWz"] = self._gW1[sl], self._gWz[sl]
        return v

    def _draw(self, t: _Tile, z: torch.Tensor, q3: torch.Tensor) -> None:
        """Fill the tile's ``z = relu(u - q)``."""
        if self._np_gen is not None:
            t.sampler.fill(z, self._z_np[: t.size], keep_zeros=len(self.tiles) == 1)
        else:
            torch.rand(z.shape, generator=self.generator, out=z)
            torch.sub(z, q3, out=z)
            z.relu_()

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
        # pre = W^T W x + b = A x + b and pre - x = (A - I) x + b, both from one
        # bmm of the stacked [A; A - I] diag(a) with z = x / a.
        n = self.n
        A2 = self._A2
        torch.bmm(W.mT, W, out=self._M)
        torch.mul(self._M, self.a_row, out=A2[:, :n])
        torch.sub(A2[:, :n], self._diag_a, out=A2[:, n:])
        self._b2[:, :n, 0] = b
        self._b2[:, n:, 0] = b
        for t, v in zip(self.tiles, self._views):
            z, g, pd = v["z"], v["g"], v["pd"]
            self._draw(t, z, v["q3"])
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
        Wa = W * self.a_row  # h = W x = (W diag(a)) z
        WS = W * self.s_row  # dh = W g' = (W diag(s)) g
        b3 = b[:, :, None]
        for t, v in zip(self.tiles, self._views):
            z, g, pre, h, dh = v["z"], v["g"], v["pre"], v["h"], v["dh"]
            self._draw(t, z, v["q3"])
            torch.bmm(Wa[t.k0 : t.k1], z, out=h)
            torch.baddbmm(b3[t.k0 : t.k1], W[t.k0 : t.k1].mT, h, out=pre)
            torch.addcmul(pre, z, v["neg_a3"], out=g)  # pre - x
            if self.relu:
                _threshold_backward(g, pre, 0.0, grad_input=g)
            if loss is not None:
                xhat = pre.clamp_min(0.0) if self.relu else pre.clone()
                err = xhat.addcmul_(z, v["neg_a3"])
                loss[t.k0 : t.k1] += (err.square_() * v["imp3"]).sum((1, 2))
            torch.bmm(WS[t.k0 : t.k1], g, out=dh)
            if t.first:
                torch.bmm(h, g.mT, out=v["gW1"])
                torch.bmm(dh, z.mT, out=v["gWz"])
                torch.sum(g, -1, out=v["gb"])
            else:
                v["gW1"].baddbmm_(h, g.mT)
                v["gWz"].baddbmm_(dh, z.mT)
                v["gb"].add_(g.sum(-1))
        # dL/dW = h g'^T + dh x^T = (h g^T) diag(s) + (dh z^T) diag(a)
        torch.mul(self._gWz, self.a_row, out=gW)
        gW.addcmul_(self._gW1, self.s_row)

    # -- the batch, for tests and inspection ----------------------------------------

    @property
    def x(self) -> torch.Tensor:
        """The batch the last call trained on: ``(n_instances, batch, n_features)``."""
        K, n, B = self.K, self.n, self.B
        dt = self.model.W.dtype
        if not self._drawn:
            return torch.zeros(K, B, n, device=self.device, dtype=dt)
        if len(self.tiles) == 1:
            return (self._views[0]["z"] * self.a3).transpose(1, 2)
        # Redraw every tile from the generator state saved by the last call.
        out = torch.empty(K, n, B, device=self.device, dtype=dt)
        z = torch.empty(max(t.size for t in self.tiles), device=self.device, dtype=dt)
        if self._np_gen is not None:
            gen = np.random.Generator(np.random.PCG64())
            gen.bit_generator.state = self._rng_state
            z_np = z.numpy()
        else:
            tgen = torch.Generator(device=self.device)
            tgen.set_state(self._rng_state)
        for t in self.tiles:
            sl = slice(t.k0, t.k1)
            zt = z[: t.size].view(t.k1 - t.k0, n, t.b1 - t.b0)
            if self._np_gen is not None:
                t.sampler.fill(zt, z_np[: t.size], keep_zeros=False, gen=gen)
            else:
                torch.rand(zt.shape, generator=tgen, out=zt)
                zt.sub_(self.q3[sl]).relu_()
            out[sl, :, t.b0 : t.b1] = zt * self.a3[sl]
        return out.transpose(1, 2)
