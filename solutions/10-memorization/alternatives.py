"""Lesson 10: correct implementations written differently from the solution; each keeps full marks.

None of them calls the reference it stands in for: each draws, trains and measures on its own (or
with library code the lesson leaves available: ``supercourse.train``, ``supercourse.data``, ``ToyModel``).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from supercourse import ToyModel, train
from supercourse.data import sparse_uniform
from supercourse.memorization import warmup_cosine, warmup_steps_for

# --------------------------------------------------------------------------- finite_dataset


def fd_bernoulli_normalize(n_points, n_features, feature_probability, n_instances=1, generator=None):
    """torch.bernoulli for the mask, F.normalize (whose eps leaves zero points at zero)."""
    shape = (n_points, n_instances, n_features)
    mask = torch.bernoulli(torch.full(shape, float(feature_probability)), generator=generator)
    values = torch.rand(shape, generator=generator)
    return F.normalize(mask * values, dim=-1)


def fd_one_draw(n_points, n_features, feature_probability, n_instances=1, generator=None):
    """Lesson 1's single uniform draw (active when u < p, value u / p), in float64, a norm clamped away from 0."""
    u = torch.rand(n_points, n_instances, n_features, generator=generator, dtype=torch.float64)
    p = float(feature_probability)
    x = torch.where(u < p, u / max(p, 1e-300), torch.zeros_like(u))
    return (x / x.norm(dim=-1, keepdim=True).clamp_min(1e-300)).float()


def fd_sparse_uniform_loop(n_points, n_features, feature_probability, n_instances=1, generator=None):
    """supercourse.data.sparse_uniform for the features, then each instance rescaled in a loop."""
    p = torch.full((n_instances, n_features), float(feature_probability))
    x = sparse_uniform(n_points, p, generator=generator)
    out = torch.zeros_like(x)
    for k in range(n_instances):
        norm = torch.linalg.vector_norm(x[:, k], dim=1, keepdim=True)
        out[:, k] = torch.where(norm > 0, x[:, k] / torch.where(norm > 0, norm, torch.ones_like(norm)), x[:, k])
    return out


# --------------------------------------------------------------------------- train_full_batch


def tfb_supercourse_train(model, dataset, steps, lr=1e-3, weight_decay=1e-2, warmup_steps=None):
    """supercourse.train on the dataset, one batch of all T points per step, a logged loss at every step.

    train() logs ToyModel's loss, a mean over features: times n it is the sum over features.
    """
    warmup = warmup_steps_for(steps) if warmup_steps is None else warmup_steps
    history = train(model, steps, batch_size=dataset.shape[0], lr=lr, weight_decay=weight_decay,
                                lr_schedule=functools.partial(warmup_cosine, warmup_steps=warmup), log_every=1,
                                dataset=dataset, progress=False, device=model.W.device)
    return history.losses * model.n_features


def tfb_adamw_by_hand(model, dataset, steps, lr=1e-3, weight_decay=1e-2, warmup_steps=None):
    """AdamW written out (torch.optim.AdamW's update), gradients from autograd."""
    warmup = warmup_steps_for(steps) if warmup_steps is None else warmup_steps
    params = [model.W, model.b_final]
    m1 = [torch.zeros_like(p) for p in params]
    m2 = [torch.zeros_like(p) for p in params]
    losses = []
    for step in range(steps):
        out = torch.relu(torch.einsum("tkm,kmn->tkn", torch.einsum("tkn,kmn->tkm", dataset, model.W), model.W)
                         + model.b_final)
        per = ((out - dataset) ** 2).sum(dim=2).mean(dim=0)
        grads = torch.autograd.grad(per.sum(), params)
        lr_now = lr * warmup_cosine(step, steps, warmup)
        t = step + 1
        with torch.no_grad():
            for p, g, a, v in zip(params, grads, m1, m2):
                p.mul_(1 - lr_now * weight_decay)
                a.mul_(0.9).add_(g, alpha=0.1)
                v.mul_(0.999).addcmul_(g, g, value=0.001)
                denom = (v / (1 - 0.999**t)).sqrt().add_(1e-8)
                p.addcdiv_(a, denom, value=-lr_now / (1 - 0.9**t))
        losses.append(per.detach())
    return torch.stack(losses)


def tfb_lambda_lr(model, dataset, steps, lr=1e-3, weight_decay=1e-2, warmup_steps=None):
    """torch.optim.AdamW with a LambdaLR scheduler; the model's own forward; a loop over instances for the loss."""
    warmup = warmup_steps_for(steps) if warmup_steps is None else warmup_steps
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, steps, warmup))
    history = torch.zeros(steps, model.n_instances)
    for step in range(steps):
        out = model(dataset)
        per = torch.stack([(out[:, k] - dataset[:, k]).pow(2).sum(dim=1).mean() for k in range(model.n_instances)])
        opt.zero_grad()
        per.sum().backward()
        opt.step()
        sched.step()
        history[step] = per.detach()
    return history


# --------------------------------------------------------------------------- data_dimensionality


def dd_moment_matrix(W, x):
    """D_t = ||h_t||^4 / (h_t^T M h_t) with M = sum_s h_s h_s^T (m x m): no T x T matrix."""
    h = torch.einsum("tkn,kmn->ktm", x, W)
    M = h.mT @ h
    quad = torch.einsum("ktm,kmn,ktn->kt", h, M, h)
    sq = h.square().sum(-1)
    return torch.where(quad > 0, sq.square() / torch.where(quad > 0, quad, torch.ones_like(quad)), torch.zeros_like(sq))


def dd_loop_normalize(W, x):
    """A loop over instances, F.normalize for the unit vectors."""
    out = []
    for k in range(W.shape[0]):
        h = x[:, k] @ W[k].T  # (T, m)
        overlaps = F.normalize(h, dim=1, eps=1e-30) @ h.T
        denom = overlaps.square().sum(dim=1)
        out.append(torch.where(denom > 0, h.square().sum(1) / denom.clamp_min(1e-300), torch.zeros_like(denom)))
    return torch.stack(out)


def dd_cosines_float64(W, x):
    """Through cosines: (h_hat_t . h_s)^2 = ||h_s||^2 cos^2, computed in float64."""
    h = torch.einsum("tkn,kmn->ktm", x.double(), W.double())
    norms = h.norm(dim=-1)
    safe = torch.where(norms > 0, norms, torch.ones_like(norms))
    cos = (h @ h.mT) / (safe[..., :, None] * safe[..., None, :])
    denom = (cos.square() * norms[..., None, :].square()).sum(-1)
    d = torch.where(denom > 0, norms.square() / torch.where(denom > 0, denom, torch.ones_like(denom)), torch.zeros_like(denom))
    return d.to(W.dtype)


# --------------------------------------------------------------------------- test_loss


def _fresh(n_points, n_features, p, n_instances, generator):
    mask = torch.rand(n_points, n_instances, n_features, generator=generator) < p
    x = torch.rand(n_points, n_instances, n_features, generator=generator) * mask
    return F.normalize(x, dim=-1)


def tl_toy_model(W, b, feature_probability, n_points=10_000, generator=None):
    """The points through a ToyModel holding W and b."""
    model = ToyModel(W.shape[2], W.shape[1], n_instances=W.shape[0])
    with torch.no_grad():
        model.W.copy_(W)
        model.b_final.copy_(b)
        x = _fresh(n_points, W.shape[2], feature_probability, W.shape[0], generator)
        return (model(x) - x).square().sum(dim=2).mean(dim=0)


def tl_loop_over_instances(W, b, feature_probability, n_points=10_000, generator=None):
    """One instance at a time, in float64."""
    x = _fresh(n_points, W.shape[2], feature_probability, W.shape[0], generator).double()
    out = []
    for k in range(W.shape[0]):
        Wk, bk = W[k].detach().double(), b[k].detach().double()
        recon = torch.relu(x[:, k] @ Wk.T @ Wk + bk)
        out.append(((recon - x[:, k]) ** 2).sum(dim=1).mean())
    return torch.stack(out).float()


def tl_chunked(W, b, feature_probability, n_points=10_000, generator=None):
    """The points drawn at once, the loss summed in chunks of 1,000 points."""
    x = _fresh(n_points, W.shape[2], feature_probability, W.shape[0], generator)
    W, b = W.detach(), b.detach()
    total = torch.zeros(W.shape[0])
    for s in range(0, n_points, 1000):
        xc = x[s : s + 1000]
        out = torch.relu(torch.einsum("tkm,kmn->tkn", torch.einsum("tkn,kmn->tkm", xc, W), W) + b)
        total += (out - xc).square().sum(dim=(0, 2))
    return total / n_points


# --------------------------------------------------------------------------- sweep


def _dataset(T, n, p, R, generator):
    return _fresh(T, n, p, R, generator)


def _train(model, x, steps, lr, weight_decay):
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    warmup = warmup_steps_for(steps)
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr * warmup_cosine(step, steps, warmup)
        loss = (model(x) - x).square().sum(dim=2).mean(dim=0).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()


def _loss(W, b, x):
    out = torch.relu(torch.einsum("tkm,kmn->tkn", torch.einsum("tkn,kmn->tkm", x, W), W) + b)
    return (out - x).square().sum(dim=2).mean(dim=0)


def sw_seeds_apart(sizes, n_features, feature_probability, n_seeds=3, steps=10_000, n_hidden=2, lr=1e-3,
                   weight_decay=1e-2, seed=0, n_test=10_000):
    """Every seed its own one-instance model and training set; results stacked."""
    gen = torch.Generator().manual_seed(seed)
    Ws, bs, data, train, kept, test = [], [], [], [], [], []
    for T in sizes:
        W_T, b_T, x_T = [], [], []
        for r in range(n_seeds):
            x = _dataset(T, n_features, feature_probability, 1, gen)
            model = ToyModel(n_features, n_hidden, n_instances=1, seed=seed * 7919 + T * 31 + r)
            _train(model, x, steps, lr, weight_decay)
            W_T.append(model.W.detach()[0])
            b_T.append(model.b_final.detach()[0])
            x_T.append(x[:, 0])
        W_T, b_T, x_T = torch.stack(W_T), torch.stack(b_T), torch.stack(x_T, dim=1)
        losses = _loss(W_T, b_T, x_T)
        k = int(torch.argmin(losses))
        fresh = _dataset(n_test, n_features, feature_probability, 1, gen)
        Ws.append(W_T), bs.append(b_T), data.append(x_T), train.append(losses), kept.append(k)
        test.append(_loss(W_T[k : k + 1], b_T[k : k + 1], fresh)[0])
    return {"sizes": list(sizes), "W": torch.stack(Ws), "b": torch.stack(bs), "data": data,
            "train_loss": torch.stack(train), "kept": torch.tensor(kept), "test_loss": torch.stack(test)}


def sw_library_trainer(sizes, n_features, feature_probability, n_seeds=3, steps=10_000, n_hidden=2, lr=1e-3,
                       weight_decay=1e-2, seed=0, n_test=10_000):
    """Seeds as instances, trained with supercourse.train(dataset=...); the test loss of every seed, then the kept one."""
    gen = torch.Generator().manual_seed(seed)
    out = {"sizes": list(sizes), "W": [], "b": [], "data": [], "train_loss": [], "kept": [], "test_loss": []}
    for T in sizes:
        x = _dataset(T, n_features, feature_probability, n_seeds, gen)
        model = ToyModel(n_features, n_hidden, n_instances=n_seeds, seed=seed * 10_007 + T)
        train(model, steps, batch_size=T, lr=lr, weight_decay=weight_decay, dataset=x, progress=False,
                          lr_schedule=functools.partial(warmup_cosine, warmup_steps=warmup_steps_for(steps)),
                          seed=seed, device="cpu")
        W, b = model.W.detach(), model.b_final.detach()
        losses = _loss(W, b, x)
        tests = _loss(W, b, _dataset(n_test, n_features, feature_probability, n_seeds, gen))
        k = int(losses.argmin())
        for key, v in (("W", W), ("b", b), ("data", x), ("train_loss", losses), ("kept", k), ("test_loss", tests[k])):
            out[key].append(v)
    return {"sizes": out["sizes"], "W": torch.stack(out["W"]), "b": torch.stack(out["b"]), "data": out["data"],
            "train_loss": torch.stack(out["train_loss"]), "kept": torch.tensor(out["kept"]),
            "test_loss": torch.stack(out["test_loss"])}


def sw_largest_first(sizes, n_features, feature_probability, n_seeds=3, steps=10_000, n_hidden=2, lr=1e-3,
                     weight_decay=1e-2, seed=0, n_test=10_000):
    """The sizes trained from the largest down (each with a generator of its own), then put back in order."""
    results = {}
    for T in sorted(sizes, reverse=True):
        gen = torch.Generator().manual_seed(seed * 1_000_003 + T)
        x = _dataset(T, n_features, feature_probability, n_seeds, gen)
        model = ToyModel(n_features, n_hidden, n_instances=n_seeds,
                                     seed=int(torch.randint(0, 2**31, (1,), generator=gen)))
        _train(model, x, steps, lr, weight_decay)
        W, b = model.W.detach(), model.b_final.detach()
        losses = _loss(W, b, x)
        k = int(losses.min(dim=0).indices)
        test = _loss(W[k : k + 1], b[k : k + 1], _dataset(n_test, n_features, feature_probability, 1, gen))[0]
        results[T] = (W, b, x, losses, k, test)
    rows = [results[T] for T in sizes]
    return {"sizes": list(sizes), "W": torch.stack([r[0] for r in rows]), "b": torch.stack([r[1] for r in rows]),
            "data": [r[2] for r in rows], "train_loss": torch.stack([r[3] for r in rows]),
            "kept": torch.tensor([r[4] for r in rows]), "test_loss": torch.stack([r[5] for r in rows])}


ALTERNATIVES = {
    "finite_dataset": [fd_bernoulli_normalize, fd_one_draw, fd_sparse_uniform_loop],
    "train_full_batch": [tfb_supercourse_train, tfb_adamw_by_hand, tfb_lambda_lr],
    "data_dimensionality": [dd_moment_matrix, dd_loop_normalize, dd_cosines_float64],
    "test_loss": [tl_toy_model, tl_loop_over_instances, tl_chunked],
    "sweep": [sw_seeds_apart, sw_library_trainer, sw_largest_first],
}
