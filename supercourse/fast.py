"""The fast training step for :class:`~supercourse.model.ToyModel`.

Training many tiny models is dominated by overhead, not arithmetic: autograd's
graph, fresh allocations, broadcasting over a ``(batch, instances, features)``
layout, two random draws per entry. :class:`ToyModelStep` does the same maths
without any of that:

* **Instance-major, feature-by-batch layout.** Each instance's batch is stored
  as ``(n_features, batch)``, so every product is one ``bmm`` over contiguous
  matrices and every per-feature constant broadcasts along contiguous rows.
* **One uniform draw per entry** gives both the mask and the magnitude:
  feature ``i`` is active when ``u >= 1 - p_i`` and its value is then
  ``(u - (1 - p_i)) / p_i``, uniform on [0, 1) (the distribution of
  :func:`~supercourse.data.sparse_uniform`).
* **Only the active entries of very sparse instances are generated** (CPU):
  geometric gaps between active entries along each feature's row of the batch,
  a fresh magnitude for each (:class:`_NumpySampler`); below 4% density the
  two products with the input gather and scatter those entries instead of
  multiplying mostly-zero matrices.
* **NumPy's PCG64 on the CPU**, about 1.5x faster per number than torch's CPU
  generator, seeded from the torch generator (seeded runs stay deterministic).
  Other devices use ``torch.rand`` with the given generator.
* **Blocks of instances** of about ``BLOCK_ENTRIES`` batch entries each, with
  their own streams (fixed by the shapes, never by the thread count), so that
  :func:`supercourse.train` can run torch single-threaded and spread the blocks
  over worker threads: one join per step instead of a parallel region per
  small operation.
* **The gradient of the tied model is written out by hand** (below), into
  preallocated buffers: no autograd graph, no per-step allocation.
* **Or the model's own data.** Given ``batches`` (a subclass's
  ``generate_batch``, or a dataset), the step copies each batch into the same
  layout (``a = 1``: ``z = x``) and runs the same maths: a subclass that only
  changes the data, such as :class:`~supercourse.correlation.SetModel`, keeps
  the hand-written gradient.
* **Two exact formulations**, chosen by shape. For ``n`` comparable to ``m``
  (the n=2, m=1 phase diagram) the "Gram" form works with the ``n x n``
  matrix ``A = W^T W``: one ``bmm`` gives both the pre-activation and the
  residual, one more the whole weight gradient. For ``n >> m`` the standard
  form keeps the ``m``-wide bottleneck (five skinny ``bmm``).

The step stores ``z = x / a`` (``a = 1 / p`` per feature) rather than ``x``:
drawing ``z = relu(u - (1 - p))`` costs one pass less, and the factor ``a``
is folded into the small ``(m, n)`` matrices instead.

The gradient. With ``x`` the input, ``h = W x``, ``pre = W^T h + b``,
``x_hat = ReLU(pre)`` (or ``pre``), the per-instance loss
``L = mean_{batch, i} I_i (x_hat_i - x_i)^2`` and
``g = dL/dpre = s * (x_hat - x) * [pre > 0]`` with ``s_i = 2 I_i / (batch * n)``,
the tied weight gets a gradient from both of its uses::

    dL/dW = h g^T + (W g) x^T  =  W (x g^T + g x^T)        dL/db = sum_batch g

``tests/test_fast.py`` checks it against autograd.
"""

from __future__ import annotations

import queue
import threading

import numpy as np
import torch

from .instanced import Batches
from .model import ToyModel

__all__ = ["ToyModelStep", "use_gram_form"]

_threshold_backward = torch.ops.aten.threshold_backward.grad_input

BLOCK_ENTRIES = 1 << 19
"""Instances are processed in blocks of about this many batch entries (2 MiB per
float32 buffer). Each block draws from its own stream, so the data depend on the
shapes only, and blocks can run in parallel threads."""

SPLIT_ENTRIES = 1 << 16
"""Problems of at least this many batch entries get two blocks or more, so that
two cores share even a small problem (W1: 143,360 entries)."""

SPARSE_SLOTS_FRACTION = 8
"""A row of the batch (one feature of one instance over the batch) is drawn
sparsely when the slots reserved for its active entries number at most
``batch / 8`` (density below about 6% at batch 1024)."""

SPARSE_PRODUCT_DENSITY = 0.04
"""Below this density (every feature of every instance of a block), the two
products with the input, ``h = W x`` and ``dh x^T``, gather and scatter the
active entries instead of multiplying dense matrices. An indexed update costs
as much as a few dozen multiply-adds of a dense ``bmm``; on W2 (single thread)
the threshold 1% gives 1.08x, 4% 1.14x, 7% 1.08x."""

SPARSE_PRODUCT_MIN_WORK = 1 << 22
"""... and only where the dense products are big enough for it to matter:
``instances x features x batch x hidden`` of the block at least this."""


def use_gram_form(n_features: int, n_hidden: int) -> bool:
    """Whether :class:`ToyModelStep` uses the ``W^T W`` ("Gram") form for this shape.

    It costs ``~6 n^2`` flops per sample against ``~10 m n`` for the standard
    form, but runs two batched products instead of five and no elementwise
    pass for ``x``; it wins while ``n`` is within about ``2 m`` (measured on
    CPU: n=2, m=1 runs 1.3x faster this way; n=20, m=5 1.1x slower).
    """
    return n_features <= 2 * n_hidden + 2


def _numpy_dtype(dtype: torch.dtype):
    return {torch.float32: np.float32, torch.float64: np.float64}.get(dtype)


def _runs(flags: list[bool]) -> list[tuple[int, int, bool]]:
    """Maximal runs ``(start, stop, flag)`` of equal flags."""
    out: list[tuple[int, int, bool]] = []
    for i, f in enumerate(flags):
        if out and out[-1][2] == f:
            out[-1] = (out[-1][0], i + 1, f)
        else:
            out.append((i, i + 1, f))
    return out


class _Workers:
    """Persistent daemon threads that run blocks of a step; the caller runs the first share.

    Plain queues rather than ``concurrent.futures``: a hand-over costs about
    10 us instead of 50-250 us, which matters for a step of a few hundred.
    Threads start inside :func:`supercourse.train`, which has set torch to one
    intra-op thread, and torch keeps that setting per thread.
    """

    def __init__(self) -> None:
        self._inboxes: list[queue.SimpleQueue] = []
        self._lock = threading.Lock()

    def _ensure(self, n: int) -> None:
        with self._lock:
            while len(self._inboxes) < n:
                inbox: queue.SimpleQueue = queue.SimpleQueue()
                name = f"supercourse-step-{len(self._inboxes)}"
                threading.Thread(target=self._serve, args=(inbox,), name=name, daemon=True).start()
                self._inboxes.append(inbox)

    @staticmethod
    def _serve(inbox: queue.SimpleQueue) -> None:
        while True:
            fn, args, done = inbox.get()
            try:
                fn(*args)
                result = None
            except BaseException as err:  # noqa: BLE001 - handed to the caller
                result = err
            fn = args = None  # hold no reference to the step between calls
            done.put(result)

    def run(self, fn, shares: list[tuple], done: queue.SimpleQueue) -> None:
        """``fn(*shares[0])`` here and ``fn(*share)`` for the others in worker threads; re-raises."""
        self._ensure(len(shares) - 1)
        for inbox, args in zip(self._inboxes, shares[1:]):
            inbox.put((fn, args, done))
        error = None
        try:
            fn(*shares[0])
        except BaseException as err:  # noqa: BLE001 - wait for the workers first
            error = err
        for _ in shares[1:]:
            result = done.get()
            if error is None and result is not None:
                error = result
        if error is not None:
            raise error


_WORKERS = _Workers()


def _plan_blocks(n_instances: int, n_features: int, batch: int) -> list[tuple[int, int]]:
    """Contiguous blocks of instances; a function of the shapes only."""
    total = n_instances * n_features * batch
    n_blocks = max(-(-total // BLOCK_ENTRIES), 2 if total >= SPLIT_ENTRIES else 1)
    per = -(-n_instances // min(n_blocks, n_instances))
    return [(k0, min(n_instances, k0 + per)) for k0 in range(0, n_instances, per)]


class _NumpySampler:
    """Draws ``z = x / a = relu(u - q)`` for a block of instances, on the CPU with NumPy.

    Instances with a feature that is not very sparse get one PCG64 uniform per
    entry, turned into ``z`` in place by two torch passes. For very sparse
    instances only the active entries are generated: along each row (one
    feature over the batch) the gaps between active entries are geometric,
    ``floor(log(1 - U) / log(1 - p))``, and each active entry gets a fresh
    uniform magnitude. A row reserves ``mu + 5 sigma + 5`` slots for its
    ``Binomial(batch, p)`` active entries; in the rare step where that is not
    enough, its gap sequence is continued, so the draw is exact.
    """

    SLOT_SIGMAS = 5.0
    SLOT_EXTRA = 5.0
    MAX_RUNS = 16

    def __init__(self, p: np.ndarray, q: torch.Tensor, batch: int, np_dtype, gen: np.random.Generator) -> None:
        K, n = p.shape
        self.K, self.n, self.bb, self.np_dtype, self.gen = K, n, batch, np_dtype, gen
        self.q = q  # (K, n, 1): 1 - p
        self.prev: np.ndarray | None = None  # where the last draw put its sparse entries
        self.prev_vals: np.ndarray | None = None  # and their z values
        mu = batch * p
        slots = np.ceil(mu + self.SLOT_SIGMAS * np.sqrt(mu * (1.0 - p)) + self.SLOT_EXTRA)
        slots = np.where(p > 0, np.maximum(slots, 1.0), 0.0).astype(np.int64)
        slots = np.minimum(slots, batch)
        sparse_rows = (slots * SPARSE_SLOTS_FRACTION <= batch) & (p < 1.0)
        runs = _runs(sparse_rows.all(axis=1).tolist())
        if len(runs) > self.MAX_RUNS:
            runs = [(0, K, False)]
        self.dense_runs = [(k0, k1) for k0, k1, sp in runs if not sp]
        self.sparse_runs = [(k0, k1) for k0, k1, sp in runs if sp]
        self._plan_slots(p, slots)

    def _plan_slots(self, p: np.ndarray, slots: np.ndarray) -> None:
        n, bb = self.n, self.bb
        rows = np.asarray([k * n + i for k0, k1 in self.sparse_runs for k in range(k0, k1) for i in range(n)], np.int64)
        L = slots.reshape(-1)[rows]
        keep = L > 0  # rows of density 0 stay zero
        rows, p_rows, L = rows[keep], p.reshape(-1)[rows][keep], L[keep]
        # Slots are grouped by the number L of slots of their row and laid out
        # slot-major within a group, (L, rows): the running sum along each row
        # is then a cumulative sum over axis 0, vectorised across rows.
        self.groups: list[tuple[int, int, int]] = []  # (offset, L, rows)
        slot_row, last, off = [], np.empty(len(rows), np.int64), 0
        for length in np.unique(L).tolist():
            members = np.flatnonzero(L == length)
            slot_row.append(np.tile(members, length))
            last[members] = off + (length - 1) * len(members) + np.arange(len(members))
            self.groups.append((off, length, len(members)))
            off += length * len(members)
        self.T = off
        if off == 0:
            return
        slot_row = np.concatenate(slot_row)
        self.rows, self.p_rows, self.last_slot = rows, p_rows, last
        self.c_slot = (1.0 / np.log1p(-p_rows))[slot_row].astype(np.float32)  # log(1-U) c = log(1-U) / log(1-p)
        self.p_slot = p_rows[slot_row].astype(np.float32)
        self.rowbase_slot = (rows * bb)[slot_row]
        self.pos = np.empty(off, dtype=np.float32)

    def fill(self, z: torch.Tensor, z_np: np.ndarray) -> None:
        """Write the block's ``z`` (the buffer holds the block's previous draw, or is fresh)."""
        nb = self.n * self.bb
        for k0, k1 in self.dense_runs:
            self.gen.random(out=z_np[k0 * nb : k1 * nb], dtype=self.np_dtype)
        if self.sparse_runs:
            self._fill_sparse(z_np, nb)
        for k0, k1 in self.dense_runs:
            seg = z[k0:k1]
            torch.sub(seg, self.q[k0:k1], out=seg)
            seg.relu_()

    def _fill_sparse(self, z_np: np.ndarray, nb: int) -> None:
        gen = self.gen
        if self.prev is not None:
            z_np[self.prev] = 0
        else:
            for k0, k1 in self.sparse_runs:
                z_np[k0 * nb : k1 * nb] = 0
        if self.T == 0:
            self.prev, self.prev_vals = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
            return
        bb, pos = self.bb, self.pos
        gen.random(out=pos, dtype=np.float32)
        np.negative(pos, out=pos)
        np.log1p(pos, out=pos)
        np.multiply(pos, self.c_slot, out=pos)
        np.minimum(pos, bb, out=pos)
        np.floor(pos, out=pos)
        pos += 1.0  # steps between active entries: 1 ... bb + 1
        for off, length, n_rows in self.groups:  # running sums along each row
            block = pos[off : off + length * n_rows].reshape(length, n_rows)
            np.cumsum(block, axis=0, out=block)
        pos -= 1.0  # 0-based position of each slot's entry in its row (exact: far below 2^24)
        short = np.flatnonzero(pos[self.last_slot] < bb)
        sel = np.flatnonzero(pos < bb)
        idx = self.rowbase_slot[sel] + pos[sel].astype(np.int64)
        vals = gen.random(len(sel), dtype=np.float32)
        vals *= self.p_slot[sel]
        if len(short):  # more active entries than slots: continue those rows' gap sequences
            extra_idx, extra_vals = self._continue_rows(short, gen)
            idx = np.concatenate([idx, extra_idx])
            vals = np.concatenate([vals, extra_vals])
        z_np[idx] = vals
        self.prev, self.prev_vals = idx, vals

    def _continue_rows(self, which: np.ndarray, gen: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        idx, vals = [], []
        for r in which.tolist():
            at = float(self.pos[self.last_slot[r]])
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
        numpy_rng: draw on the CPU with NumPy, generating only the active
            entries of very sparse instances (``None``: on CPU for
            float32/float64 models); otherwise ``torch.rand`` with
            ``generator``, one uniform per entry.
        workers: CPU threads that process blocks of instances in parallel.
            Meant for a caller that runs torch single-threaded meanwhile, as
            :func:`supercourse.train` does; the blocks, their streams and so
            the results do not depend on it.
        batches: train on these batches instead of drawing: each call returns
            the next ``x: (batch_size, n_instances, n_features)`` (e.g. the
            model's own ``generate_batch``); ``generator`` and ``numpy_rng``
            are then unused.

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
        numpy_rng: bool | None = None,
        workers: int = 1,
        batches: Batches | None = None,
    ) -> None:
        self.model = model
        self.generator = generator
        self.batches = batches
        K, m, n, B = model.n_instances, model.n_hidden, model.n_features, batch_size
        self.K, self.m, self.n, self.B = K, m, n, B
        dev, dt = model.W.device, model.W.dtype
        self.device = dev
        self.relu = model.activation == "relu"
        self.gram = use_gram_form(n, m) if gram is None else bool(gram)
        np_dtype = _numpy_dtype(dt)
        usable = dev.type == "cpu" and np_dtype is not None and batches is None
        self.numpy_rng = usable if numpy_rng is None else bool(numpy_rng)
        if self.numpy_rng and not usable:
            raise ValueError("numpy_rng needs a float32 or float64 model on the CPU")
        # Blocks only matter where NumPy draws: each has its own stream.
        self.blocks = _plan_blocks(K, n, B) if self.numpy_rng else [(0, K)]
        self.workers = max(1, min(int(workers), len(self.blocks))) if dev.type == "cpu" else 1

        def buf(*shape: int) -> torch.Tensor:
            return torch.empty(*shape, device=dev, dtype=dt)

        p64 = model.feature_probability.to(dev, torch.float64)
        p = p64.to(dt)
        imp = model.importance.to(dev, dt)
        # Entry active when u >= q = 1 - p; then x = (u - q) a with a = 1/p
        # rounded one ulp down, so that the largest draw stays below 1.
        a = p.clamp_min(1e-30).reciprocal()
        a = torch.nextafter(a, torch.zeros_like(a)) if batches is None else torch.ones_like(p)
        self.q3 = (1.0 - p64).to(dt)[:, :, None].contiguous()  # (K, n, 1)
        self.a3 = a[:, :, None].contiguous()
        self.neg_a3 = (-a)[:, :, None].contiguous()
        self.a_row = a[:, None, :].contiguous()  # (K, 1, n)
        self.s = imp * (2.0 / (B * n))  # (K, n): loss weight -> gradient scale
        self.s_row = self.s[:, None, :].contiguous()
        self.imp3 = imp[:, :, None].contiguous()

        self._z = buf(K, n, B)  # the batch, as z = x / a
        self._g = buf(K, n, B)  # dL/dpre without the factor s
        self._gb = buf(K, n)
        if self.gram:
            self._pd = buf(K, 2 * n, B)  # [pre; pre - x] per instance
            self._A2 = buf(K, 2 * n, n)
            self._b2 = buf(K, 2 * n, 1)
            self._M = buf(K, n, n)
            self._diag_a = torch.diag_embed(a)
        else:
            self._pre = buf(K, n, B)
            self._h = buf(K, m, B)
            self._dh = buf(K, m, B)
            self._Wa = buf(K, m, n)  # W diag(a): h = W x = (W diag(a)) z
            self._WS = buf(K, m, n)  # W diag(s): dh = W g' = (W diag(s)) g
            self._gW1 = buf(K, m, n)  # h g^T
            self._gWz = buf(K, m, n)  # dh z^T

        self._samplers: list[_NumpySampler] = []
        self._sparse_products = [False] * len(self.blocks)
        if self.numpy_rng:
            seed = int(torch.randint(0, 2**63 - 1, (1,), generator=generator).item())
            p_np = model.feature_probability.detach().to("cpu", torch.float64).numpy()
            streams = np.random.SeedSequence(seed).spawn(len(self.blocks))
            for j, ((k0, k1), ss) in enumerate(zip(self.blocks, streams)):
                gen = np.random.Generator(np.random.PCG64(ss))
                sampler = _NumpySampler(p_np[k0:k1], self.q3[k0:k1], B, np_dtype, gen)
                self._samplers.append(sampler)
                self._sparse_products[j] = (
                    not self.gram
                    and sampler.sparse_runs == [(0, k1 - k0)]
                    and bool((p_np[k0:k1] < SPARSE_PRODUCT_DENSITY).all())
                    and (k1 - k0) * n * B * m >= SPARSE_PRODUCT_MIN_WORK
                )
        if any(self._sparse_products):
            self._hT = buf(K, B, m)  # h, batch-major, for scattered updates
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._drawn = False
        model.W.grad = torch.zeros_like(model.W)
        model.b_final.grad = torch.zeros_like(model.b_final)

    def __call__(self, want_loss: bool = False) -> torch.Tensor | None:
        model = self.model
        W, b = model.W.detach(), model.b_final.detach()
        gW, gb_out = model.W.grad, model.b_final.grad
        if gW is None or gW.shape != W.shape:
            gW = model.W.grad = torch.zeros_like(model.W)
        if gb_out is None or gb_out.shape != b.shape:
            gb_out = model.b_final.grad = torch.zeros_like(model.b_final)
        n = self.n
        loss = torch.empty(self.K, device=self.device, dtype=W.dtype) if want_loss else None
        if self.batches is not None:
            x = self.batches()
            if tuple(x.shape) != (self.B, self.K, n):
                raise ValueError(
                    f"a batch must have shape (batch={self.B}, n_instances={self.K}, n_features={n}), "
                    f"got {tuple(x.shape)}"
                )
            self._z.copy_(x.permute(1, 2, 0))
        if self.gram:
            # pre = W^T W x + b = A x + b and pre - x = (A - I) x + b, both from
            # one bmm of the stacked [A; A - I] diag(a) with z = x / a.
            A2 = self._A2
            torch.bmm(W.mT, W, out=self._M)
            torch.mul(self._M, self.a_row, out=A2[:, :n])
            torch.sub(A2[:, :n], self._diag_a, out=A2[:, n:])
            self._b2[:, :n, 0] = b
            self._b2[:, n:, 0] = b
            block = self._gram_block
        else:
            torch.mul(W, self.a_row, out=self._Wa)
            torch.mul(W, self.s_row, out=self._WS)
            block = self._standard_block
        if self.workers > 1:
            _WORKERS.run(self._blocks, [(block, j, W, b, loss) for j in range(self.workers)], self._done)
        else:
            self._blocks(block, 0, W, b, loss)
        if self.gram:
            # x g'^T = diag(a) (z g^T) diag(s); dL/dW = W (x g'^T + g' x^T).
            Ms = self._M.mul_(self.a3).mul_(self.s_row)
            torch.bmm(W, Ms + Ms.mT, out=gW)
        else:
            # dL/dW = h g'^T + dh x^T = (h g^T) diag(s) + (dh z^T) diag(a)
            torch.mul(self._gWz, self.a_row, out=gW)
            gW.addcmul_(self._gW1, self.s_row)
        torch.mul(self._gb, self.s, out=gb_out)
        self._drawn = True
        return loss

    def _blocks(self, block, first: int, W, b, loss) -> None:
        for i in range(first, len(self.blocks), self.workers):
            k0, k1 = self.blocks[i]
            z = self._z[k0:k1]
            if self.batches is not None:
                pass  # copied in by __call__
            elif self._samplers:
                self._samplers[i].fill(z, self._z[k0:k1].numpy().reshape(-1))
            else:
                torch.rand(z.shape, generator=self.generator, out=z)
                torch.sub(z, self.q3[k0:k1], out=z)
                z.relu_()
            block(i, k0, k1, W, b, None if loss is None else loss[k0:k1])

    def _loss(self, xhat: torch.Tensor, k0: int, k1: int, out: torch.Tensor) -> None:
        err = xhat.addcmul_(self._z[k0:k1], self.neg_a3[k0:k1])  # x_hat - x
        torch.mean(err.square_().mul_(self.imp3[k0:k1]), (1, 2), out=out)

    def _gram_block(self, i: int, k0: int, k1: int, W, b, loss) -> None:
        n, z, g, pd = self.n, self._z[k0:k1], self._g[k0:k1], self._pd[k0:k1]
        torch.baddbmm(self._b2[k0:k1], self._A2[k0:k1], z, out=pd)
        pre = pd[:, :n]
        if self.relu:
            _threshold_backward(pd[:, n:], pre, 0.0, grad_input=g)
        else:
            g.copy_(pd[:, n:])
        if loss is not None:
            self._loss(pre.clamp_min(0.0) if self.relu else pre.clone(), k0, k1, loss)
        torch.bmm(z, g.mT, out=self._M[k0:k1])
        torch.sum(g, -1, out=self._gb[k0:k1])

    def _standard_block(self, i: int, k0: int, k1: int, W, b, loss) -> None:
        z, g, pre, dh = self._z[k0:k1], self._g[k0:k1], self._pre[k0:k1], self._dh[k0:k1]
        sparse = self._sparse_products[i]
        if sparse:
            h, rows_n, rows_b, vals = self._sparse_hidden(i, k0, k1)
        else:
            h = self._h[k0:k1]
            torch.bmm(self._Wa[k0:k1], z, out=h)
        torch.baddbmm(b[k0:k1, :, None], W[k0:k1].mT, h, out=pre)
        torch.addcmul(pre, z, self.neg_a3[k0:k1], out=g)  # pre - x
        if self.relu:
            _threshold_backward(g, pre, 0.0, grad_input=g)
        if loss is not None:
            self._loss(pre.clamp_min(0.0) if self.relu else pre.clone(), k0, k1, loss)
        torch.bmm(self._WS[k0:k1], g, out=dh)
        torch.bmm(h, g.mT, out=self._gW1[k0:k1])
        if sparse:  # dh z^T: scatter dh[:, b] z[i, b] over the active (i, b)
            kk, n, m = k1 - k0, self.n, self.m
            dhT = dh.transpose(1, 2).reshape(kk * self.B, m)
            gWzT = torch.zeros(kk * n, m, dtype=dh.dtype)
            gWzT.index_add_(0, rows_n, dhT.index_select(0, rows_b).mul_(vals))
            self._gWz[k0:k1].copy_(gWzT.view(kk, n, m).transpose(1, 2))
        else:
            torch.bmm(dh, z.mT, out=self._gWz[k0:k1])
        torch.sum(g, -1, out=self._gb[k0:k1])

    def _sparse_hidden(self, i: int, k0: int, k1: int):
        """``h = (W diag(a)) z`` from the block's active entries: rows of ``(W diag(a))^T`` scattered into ``h^T``."""
        sampler, kk, n, m, B = self._samplers[i], k1 - k0, self.n, self.m, self.B
        idx = sampler.prev
        k = idx // (n * B)
        rest = idx - k * (n * B)
        f = rest // B
        rows_n = torch.from_numpy(k * n + f)  # (instance, feature)
        rows_b = torch.from_numpy(k * B + (rest - f * B))  # (instance, batch entry)
        vals = torch.from_numpy(sampler.prev_vals).unsqueeze(1)
        WaT = self._Wa[k0:k1].transpose(1, 2).reshape(kk * n, m)
        hT = self._hT[k0:k1]
        hT.zero_()
        hT.view(kk * B, m).index_add_(0, rows_b, WaT.index_select(0, rows_n).mul_(vals))
        return hT.transpose(1, 2), rows_n, rows_b, vals

    @property
    def x(self) -> torch.Tensor:
        """The batch the last call trained on: ``(n_instances, batch, n_features)``."""
        if not self._drawn:
            return torch.zeros(self.K, self.B, self.n, device=self.device, dtype=self.model.W.dtype)
        return (self._z * self.a3).transpose(1, 2)
