"""Lesson 9's checks bite and are fair: the solution notebook scores full marks, plausible mistakes lose
points with a message that names the mistake, and correct implementations written differently keep full marks.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from autograder.exercises import get_exercise
from autograder.toolkit.testing import assert_full_marks, assert_rejected, grade
from lesson_tools import solution_namespace

LESSON = "09-sparse-autoencoders"
NAMES = ["sae_forward", "normalize_decoder", "feature_recovery", "topk_activations", "dead_latents", "resample_dead_latents"]


@pytest.fixture(scope="module")
def ns():
    return solution_namespace(LESSON)


def test_points_per_exercise():
    assert [get_exercise(f"09.{n}").points for n in NAMES] == [5, 3, 4, 3, 3, 5]


@pytest.mark.parametrize("name", NAMES)
def test_the_solution_keeps_full_marks(ns, name):
    verdict = grade(f"09.{name}", ns[name])
    assert verdict.passed, verdict.report()


# --------------------------------------------------------------------------- 09.sae_forward


def _enc(h, W_e, b_e, b_d):
    return torch.einsum("bid,isd->bis", h - b_d, W_e) + b_e


def _dec(f, W_d, b_d):
    return torch.einsum("bis,ids->bid", f, W_d) + b_d


def _loss(h, h_hat, f, lam):
    return (h - h_hat).square().mean(dim=(0, 2)) + torch.as_tensor(lam) * f.sum(-1).mean(0)


def fwd_no_center(h, W_e, b_e, W_d, b_d, l1_coeff):
    f = torch.relu(torch.einsum("bid,isd->bis", h, W_e) + b_e)
    h_hat = _dec(f, W_d, b_d)
    return h_hat, f, _loss(h, h_hat, f, l1_coeff)


def fwd_no_relu(h, W_e, b_e, W_d, b_d, l1_coeff):
    f = _enc(h, W_e, b_e, b_d)
    h_hat = _dec(f, W_d, b_d)
    return h_hat, f, _loss(h, h_hat, f, l1_coeff)


def fwd_bias_after_relu(h, W_e, b_e, W_d, b_d, l1_coeff):
    f = torch.relu(torch.einsum("bid,isd->bis", h - b_d, W_e)) + b_e
    h_hat = _dec(f, W_d, b_d)
    return h_hat, f, _loss(h, h_hat, f, l1_coeff)


def fwd_no_decoder_bias(h, W_e, b_e, W_d, b_d, l1_coeff):
    f = torch.relu(_enc(h, W_e, b_e, b_d))
    h_hat = torch.einsum("bis,ids->bid", f, W_d)
    return h_hat, f, _loss(h, h_hat, f, l1_coeff)


def fwd_sum_over_dims(h, W_e, b_e, W_d, b_d, l1_coeff):
    f = torch.relu(_enc(h, W_e, b_e, b_d))
    h_hat = _dec(f, W_d, b_d)
    return h_hat, f, (h - h_hat).square().sum(-1).mean(0) + torch.as_tensor(l1_coeff) * f.sum(-1).mean(0)


def fwd_l1_mean_over_latents(h, W_e, b_e, W_d, b_d, l1_coeff):
    f = torch.relu(_enc(h, W_e, b_e, b_d))
    h_hat = _dec(f, W_d, b_d)
    return h_hat, f, (h - h_hat).square().mean(dim=(0, 2)) + torch.as_tensor(l1_coeff) * f.mean(dim=(0, 2))


def fwd_l2_penalty(h, W_e, b_e, W_d, b_d, l1_coeff):
    f = torch.relu(_enc(h, W_e, b_e, b_d))
    h_hat = _dec(f, W_d, b_d)
    return h_hat, f, (h - h_hat).square().mean(dim=(0, 2)) + torch.as_tensor(l1_coeff) * f.square().sum(-1).mean(0)


def fwd_no_penalty(h, W_e, b_e, W_d, b_d, l1_coeff):
    f = torch.relu(_enc(h, W_e, b_e, b_d))
    h_hat = _dec(f, W_d, b_d)
    return h_hat, f, (h - h_hat).square().mean(dim=(0, 2))


def fwd_scalar_loss(h, W_e, b_e, W_d, b_d, l1_coeff):
    f = torch.relu(_enc(h, W_e, b_e, b_d))
    h_hat = _dec(f, W_d, b_d)
    return h_hat, f, _loss(h, h_hat, f, l1_coeff).sum()


def fwd_normalizes_decoder(h, W_e, b_e, W_d, b_d, l1_coeff):
    f = torch.relu(_enc(h, W_e, b_e, b_d))
    h_hat = _dec(f, W_d / W_d.norm(dim=1, keepdim=True), b_d)
    return h_hat, f, _loss(h, h_hat, f, l1_coeff)


def fwd_first_lambda(h, W_e, b_e, W_d, b_d, l1_coeff):
    lam = torch.as_tensor(l1_coeff).flatten()[0]
    f = torch.relu(_enc(h, W_e, b_e, b_d))
    h_hat = _dec(f, W_d, b_d)
    return h_hat, f, _loss(h, h_hat, f, lam)


SAE_FORWARD_MUTANTS = [
    (fwd_no_center, "subtract the decoder bias"),
    (fwd_no_relu, "apply the ReLU"),
    (fwd_bias_after_relu, "before the ReLU"),
    (fwd_no_decoder_bias, "misses the decoder bias"),
    (fwd_sum_over_dims, "summed the squared error over d_in"),
    (fwd_l1_mean_over_latents, "mean over latents"),
    (fwd_l2_penalty, "squares f"),
    (fwd_no_penalty, "no sparsity penalty"),
    (fwd_scalar_loss, "one loss per instance"),
    (fwd_normalizes_decoder, "Use W_d as given"),
    (fwd_first_lambda, "one lambda per instance"),
]


@pytest.mark.parametrize("impl, keyword", SAE_FORWARD_MUTANTS, ids=[m.__name__ for m, _ in SAE_FORWARD_MUTANTS])
def test_sae_forward_mutants(impl, keyword):
    assert_rejected("09.sae_forward", impl, keyword)


def fwd_bmm(h, W_e, b_e, W_d, b_d, l1_coeff):
    x = (h - b_d).transpose(0, 1)                                    # (n_instances, batch, d_in)
    f = torch.relu(torch.bmm(x, W_e.transpose(1, 2)) + b_e[:, None, :])
    h_hat = torch.bmm(f, W_d.transpose(1, 2)) + b_d[:, None, :]
    lam = torch.as_tensor(l1_coeff, dtype=h.dtype).reshape(-1)
    loss = ((h_hat - (h - b_d).transpose(0, 1) - b_d[:, None, :]) ** 2).mean(dim=(1, 2)) + lam * f.abs().sum(2).mean(1)
    return h_hat.transpose(0, 1), f.transpose(0, 1), loss


def fwd_loop(h, W_e, b_e, W_d, b_d, l1_coeff):
    lam = torch.as_tensor(l1_coeff, dtype=h.dtype).expand(W_e.shape[0])
    outs = []
    for k in range(W_e.shape[0]):
        f = F.relu(F.linear(h[:, k] - b_d[k], W_e[k], b_e[k]))
        h_hat = F.linear(f, W_d[k], b_d[k])
        loss = F.mse_loss(h_hat, h[:, k]) + lam[k] * f.norm(p=1, dim=1).mean()
        outs.append((h_hat, f, loss))
    return torch.stack([o[0] for o in outs], 1), torch.stack([o[1] for o in outs], 1), torch.stack([o[2] for o in outs])


def fwd_matmul(h, W_e, b_e, W_d, b_d, l1_coeff):
    pre = ((h - b_d).unsqueeze(-2) @ W_e.mT).squeeze(-2) + b_e
    f = pre.clamp(min=0)
    h_hat = (f.unsqueeze(-2) @ W_d.mT).squeeze(-2) + b_d
    mse = (h - h_hat).pow(2).sum(-1).mean(0) / h.shape[-1]
    return h_hat, f, mse + l1_coeff * f.sum(-1).mean(0)


# --------------------------------------------------------------------------- 09.normalize_decoder


def norm_rows(W_d):
    return W_d / W_d.norm(dim=2, keepdim=True)


def norm_matrix(W_d):
    return W_d / W_d.norm(dim=(1, 2), keepdim=True)


def norm_capped(W_d):
    return W_d / W_d.norm(dim=1, keepdim=True).clamp_min(1.0)


def norm_squared(W_d):
    return W_d / W_d.norm(dim=1, keepdim=True).square().clamp_min(1e-12)


def norm_unguarded(W_d):
    return W_d / W_d.norm(dim=1, keepdim=True)


def norm_instances(W_d):
    return W_d / W_d.norm(dim=0, keepdim=True).clamp_min(1e-12)


def norm_returns_norms(W_d):
    return W_d.norm(dim=1, keepdim=True).expand_as(W_d).clone()


def norm_sign_only(W_d):
    return W_d.sign() / W_d.shape[1] ** 0.5


NORMALIZE_MUTANTS = [
    (norm_rows, "columns"),
    (norm_matrix, "whole matrix"),
    (norm_capped, "max(norm, 1)"),
    (norm_squared, "squared norm"),
    (norm_unguarded, "must stay finite"),
    (norm_instances, "norm 1"),
    (norm_returns_norms, "keep its direction"),
    (norm_sign_only, "keep its direction"),
]


@pytest.mark.parametrize("impl, keyword", NORMALIZE_MUTANTS, ids=[m.__name__ for m, _ in NORMALIZE_MUTANTS])
def test_normalize_decoder_mutants(impl, keyword):
    assert_rejected("09.normalize_decoder", impl, keyword)


def norm_functional(W_d):
    return F.normalize(W_d, dim=1)


def norm_linalg(W_d):
    n = torch.linalg.vector_norm(W_d, dim=-2, keepdim=True)
    return torch.where(n > 0, W_d / torch.where(n > 0, n, torch.ones_like(n)), torch.zeros_like(W_d))


def norm_rsqrt(W_d):
    return W_d * torch.rsqrt(torch.einsum("kds,kds->ks", W_d, W_d).clamp_min(1e-24)).unsqueeze(1)


# --------------------------------------------------------------------------- 09.feature_recovery


def _cos(features, W_d, norm_features=True, norm_decoder=True):
    Fm = features / features.norm(dim=0, keepdim=True) if norm_features else features
    D = W_d / W_d.norm(dim=1, keepdim=True) if norm_decoder else W_d
    return torch.einsum("dn,ids->ins", Fm, D)


def rec_no_feature_norm(features, W_d, threshold=0.9):
    best = _cos(features, W_d, norm_features=False).max(-1).values
    return best.mean(-1), (best > threshold).float().mean(-1)


def rec_no_decoder_norm(features, W_d, threshold=0.9):
    best = _cos(features, W_d, norm_decoder=False).max(-1).values
    return best.mean(-1), (best > threshold).float().mean(-1)


def rec_dot_products(features, W_d, threshold=0.9):
    best = _cos(features, W_d, False, False).max(-1).values
    return best.mean(-1), (best > threshold).float().mean(-1)


def rec_max_over_features(features, W_d, threshold=0.9):
    best = _cos(features, W_d).max(-2).values
    return best.mean(-1), (best > threshold).float().mean(-1)


def rec_abs_cosine(features, W_d, threshold=0.9):
    best = _cos(features, W_d).abs().max(-1).values
    return best.mean(-1), (best > threshold).float().mean(-1)


def rec_mean_cosine(features, W_d, threshold=0.9):
    c = _cos(features, W_d)
    return c.mean(-1).mean(-1), (c.max(-1).values > threshold).float().mean(-1)


def rec_count(features, W_d, threshold=0.9):
    best = _cos(features, W_d).max(-1).values
    return best.mean(-1), (best > threshold).float().sum(-1)


def rec_fixed_threshold(features, W_d, threshold=0.9):
    best = _cos(features, W_d).max(-1).values
    return best.mean(-1), (best > 0.9).float().mean(-1)


def rec_max_of_max(features, W_d, threshold=0.9):
    best = _cos(features, W_d).max(-1).values
    return best.max(-1).values, (best > threshold).float().mean(-1)


RECOVERY_MUTANTS = [
    (rec_no_feature_norm, "Normalise the true features"),
    (rec_no_decoder_norm, "Normalise the decoder columns"),
    (rec_dot_products, "not dot products"),
    (rec_max_over_features, "for each *true feature*"),
    (rec_abs_cosine, "signed cosine"),
    (rec_mean_cosine, "max over latents before averaging"),
    (rec_count, "returned a count"),
    (rec_fixed_threshold, "threshold argument"),
    (rec_max_of_max, "not the max of the max"),
]


@pytest.mark.parametrize("impl, keyword", RECOVERY_MUTANTS, ids=[m.__name__ for m, _ in RECOVERY_MUTANTS])
def test_feature_recovery_mutants(impl, keyword):
    assert_rejected("09.feature_recovery", impl, keyword)


def rec_cosine_similarity(features, W_d, threshold=0.9):
    c = F.cosine_similarity(features.T[None, :, None, :], W_d.mT[:, None, :, :], dim=-1, eps=1e-12)
    best = c.amax(dim=-1)
    return best.mean(dim=-1), best.gt(threshold).to(best.dtype).mean(dim=-1)


def rec_loops(features, W_d, threshold=0.9):
    mm, fr = [], []
    for k in range(W_d.shape[0]):
        vals = []
        for i in range(features.shape[1]):
            a = features[:, i]
            cs = [float(a @ W_d[k, :, j] / (a.norm() * W_d[k, :, j].norm())) for j in range(W_d.shape[2])]
            vals.append(max(cs))
        mm.append(sum(vals) / len(vals))
        fr.append(sum(v > threshold for v in vals) / len(vals))
    return torch.tensor(mm), torch.tensor(fr)


def rec_bmm(features, W_d, threshold=0.9):
    Fu = F.normalize(features, dim=0).expand(W_d.shape[0], -1, -1)
    D = F.normalize(W_d, dim=1)
    best, _ = torch.bmm(Fu.mT, D).max(dim=2)
    return best.mean(1), (best > threshold).sum(1) / best.shape[1]


# --------------------------------------------------------------------------- 09.topk_activations


def topk_smallest(pre, k):
    v, i = pre.topk(k, dim=-1, largest=False)
    return torch.zeros_like(pre).scatter(-1, i, v)


def topk_abs(pre, k):
    i = pre.abs().topk(k, dim=-1).indices
    return torch.zeros_like(pre).scatter(-1, i, pre.gather(-1, i).relu())


def topk_no_relu(pre, k):
    v, i = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, i, v)


def topk_k_plus_one(pre, k):
    v, i = pre.topk(k + 1, dim=-1)
    return torch.zeros_like(pre).scatter(-1, i, v.relu())


def topk_over_batch(pre, k):
    v, i = pre.topk(k, dim=0)
    return torch.zeros_like(pre).scatter(0, i, v.relu())


def topk_global(pre, k):
    flat = pre.flatten()
    v, i = flat.topk(k)
    return torch.zeros_like(flat).scatter(0, i, v.relu()).reshape(pre.shape)


def topk_returns_values(pre, k):
    return pre.topk(k, dim=-1).values.relu()


def topk_mask_only(pre, k):
    i = pre.topk(k, dim=-1).indices
    return torch.zeros_like(pre).scatter(-1, i, 1.0)


def topk_wrong_dim_2(pre, k):
    v, i = pre.topk(k, dim=1)
    return torch.zeros_like(pre).scatter(1, i, v.relu())


TOPK_MUTANTS = [
    (topk_smallest, "smallest"),
    (topk_abs, "absolute value"),
    (topk_no_relu, "ReLU"),
    (topk_k_plus_one, "k + 1"),
    (topk_over_batch, "along the last dimension"),
    (topk_global, "per row"),
    (topk_returns_values, "shape"),
    (topk_mask_only, "ReLU(pre)"),
    (topk_wrong_dim_2, "last dimension"),
]


@pytest.mark.parametrize("impl, keyword", TOPK_MUTANTS, ids=[m.__name__ for m, _ in TOPK_MUTANTS])
def test_topk_mutants(impl, keyword):
    assert_rejected("09.topk_activations", impl, keyword)


def topk_relu_first(pre, k):
    r = pre.relu()
    v, i = r.topk(k, dim=-1)
    return torch.zeros_like(r).scatter(-1, i, v)


def topk_threshold(pre, k):
    kth = pre.topk(k, dim=-1).values[..., -1:]
    return torch.where(pre >= kth, pre.clamp_min(0), torch.zeros_like(pre))


def topk_sort(pre, k):
    order = pre.argsort(dim=-1, descending=True)[..., :k]
    mask = torch.zeros_like(pre, dtype=torch.bool).scatter(-1, order, True)
    return F.relu(pre) * mask


# --------------------------------------------------------------------------- 09.dead_latents


def dead_alive(f):
    return (f > 0).any(dim=0)


def dead_any_zero(f):
    return (f == 0).any(dim=0)


def dead_frequency(f):
    return (f > 0).float().mean(dim=0) < 0.05


def dead_magnitude(f):
    return f.sum(dim=0) < 1e-3


def dead_first_input(f):
    return f[0] == 0


def dead_counts(f):
    return ((f > 0).sum(dim=0) == 0).sum(dim=-1)


def dead_float(f):
    return ((f > 0).sum(dim=0) == 0).float()


def dead_transposed(f):
    return ((f > 0).sum(dim=0) == 0).T


def dead_mean_threshold(f):
    return f.mean(dim=0) < 0.01


DEAD_MUTANTS = [
    (dead_alive, "returned the live latents"),
    (dead_any_zero, "on *every* input"),
    (dead_frequency, "rare, not dead"),
    (dead_magnitude, "fires weakly"),
    (dead_first_input, "were called dead"),
    (dead_counts, "shape (n_instances, d_sae)"),
    (dead_float, "bool tensor"),
    (dead_transposed, "shape (n_instances, d_sae)"),
    (dead_mean_threshold, "rare, not dead"),
]


@pytest.mark.parametrize("impl, keyword", DEAD_MUTANTS, ids=[m.__name__ for m, _ in DEAD_MUTANTS])
def test_dead_latents_mutants(impl, keyword):
    assert_rejected("09.dead_latents", impl, keyword)


def dead_max(f):
    return f.amax(dim=0) <= 0


def dead_all(f):
    return torch.all(f == 0, dim=0)


def dead_count_nonzero(f):
    return torch.count_nonzero(f, dim=0).eq(0)


# --------------------------------------------------------------------------- 09.resample_dead_latents


def _recon_loss(h, W_e, b_e, W_d, b_d):
    f = torch.relu(torch.einsum("bid,isd->bis", h - b_d, W_e) + b_e)
    h_hat = torch.einsum("bis,ids->bid", f, W_d) + b_d
    return (h - h_hat).square().sum(-1).T  # (n_instances, batch)


def make_resampler(weights_fn=None, center=True, encoder="scaled", bias="zero", draw="multinomial", live_only=True,
                   touch_live=False):
    """A resampler with one deviation from the rule, chosen by the arguments."""

    def resample(W_e, b_e, W_d, b_d, dead, h, generator=None):
        loss = _recon_loss(h, W_e, b_e, W_d, b_d)
        weights = loss.square() if weights_fn is None else weights_fn(loss)
        W_e, b_e, W_d = W_e.clone(), b_e.clone(), W_d.clone()
        norms = W_e.norm(dim=2)
        for k in range(W_e.shape[0]):
            idx = dead[k].nonzero().flatten() if not touch_live else torch.arange(W_e.shape[1])
            if len(idx) == 0:
                continue
            w = weights[k] if weights[k].sum() > 0 else torch.ones_like(weights[k])
            if draw == "multinomial":
                s = torch.multinomial(w, len(idx), replacement=True, generator=generator)
            elif draw == "argmax":
                s = w.argmax().expand(len(idx))
            else:  # ignores the generator
                s = torch.multinomial(w, len(idx), replacement=True)
            v = h[s, k] - b_d[k] if center else h[s, k]
            v = v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)
            mean_norm = norms[k][~dead[k]].mean() if live_only else norms[k].mean()
            W_d[k][:, idx] = v.T
            W_e[k][idx] = {"scaled": 0.2 * mean_norm * v, "unit": v, "absolute": 0.2 * v}[encoder]
            if bias == "zero":
                b_e[k][idx] = 0.0
        return W_e, b_e, W_d

    return resample


RESAMPLE_MUTANTS = {
    "proportional_to_loss": (make_resampler(weights_fn=lambda loss: loss), "proportional to the loss itself"),
    "uniform_draws": (make_resampler(weights_fn=lambda loss: torch.ones_like(loss)), "never be drawn"),
    "worst_input_only": (make_resampler(draw="argmax"), "Every latent took the worst input"),
    "uncentred_input": (make_resampler(center=False), "centred input"),
    "unit_encoder_rows": (make_resampler(encoder="unit"), "Your encoder rows are unit vectors"),
    "absolute_encoder_scale": (make_resampler(encoder="absolute"), "mean norm of the *live* encoder rows"),
    "mean_over_all_rows": (make_resampler(live_only=False), "live encoder rows only"),
    "bias_kept": (make_resampler(bias="keep"), "encoder bias b_e should be 0"),
    "ignores_generator": (make_resampler(draw="global"), "same generator seed"),
    "resamples_live_latents": (make_resampler(touch_live=True), "Live latents"),
}


@pytest.mark.parametrize("name", list(RESAMPLE_MUTANTS))
def test_resample_mutants(name):
    impl, keyword = RESAMPLE_MUTANTS[name]
    assert_rejected("09.resample_dead_latents", impl, keyword)


def resample_vectorised(W_e, b_e, W_d, b_d, dead, h, generator=None):
    x = h - b_d
    f = F.relu(torch.einsum("bid,isd->bis", x, W_e) + b_e)
    err = (x - torch.einsum("bis,ids->bid", f, W_d)).pow(2).sum(-1)        # (batch, n_instances)
    probs = err.T.pow(2)
    probs = torch.where(probs.sum(1, keepdim=True) > 0, probs, torch.ones_like(probs))
    n_dead = int(dead.sum(1).max())
    draws = torch.multinomial(probs, max(n_dead, 1), replacement=True, generator=generator)  # (n_instances, n_dead)
    out_e, out_b, out_d = W_e.clone(), b_e.clone(), W_d.clone()
    live_mean = (W_e.norm(dim=2) * ~dead).sum(1) / (~dead).sum(1).clamp_min(1)
    for k in range(W_e.shape[0]):
        cols = torch.where(dead[k])[0]
        v = F.normalize(x[draws[k, : len(cols)], k], dim=1)
        out_d[k, :, cols] = v.T
        out_e[k, cols] = 0.2 * live_mean[k] * v
        out_b[k, cols] = 0
    return out_e, out_b, out_d


def resample_per_latent(W_e, b_e, W_d, b_d, dead, h, generator=None):
    W_e, b_e, W_d = W_e.detach().clone(), b_e.detach().clone(), W_d.detach().clone()
    for k in range(W_e.shape[0]):
        f = F.relu((h[:, k] - b_d[k]) @ W_e[k].T + b_e[k])
        loss = ((f @ W_d[k].T + b_d[k] - h[:, k]) ** 2).sum(1)
        p = loss**2
        if float(p.sum()) == 0.0:
            p = torch.ones_like(p)
        live = ~dead[k]
        scale = W_e[k, live].norm(dim=1).mean() if bool(live.any()) else torch.tensor(1.0)
        chosen = torch.multinomial(p, int(dead[k].sum()), replacement=True, generator=generator) if dead[k].any() else []
        for j, s in zip(dead[k].nonzero().flatten().tolist(), list(chosen)):
            v = h[s, k] - b_d[k]
            v = v / v.norm()
            W_d[k, :, j] = v
            W_e[k, j] = 0.2 * scale * v
            b_e[k, j] = 0.0
    return W_e, b_e, W_d


def resample_with_library_forward(W_e, b_e, W_d, b_d, dead, h, generator=None):
    x = (h - b_d).transpose(0, 1)
    f = torch.relu(torch.baddbmm(b_e[:, None], x, W_e.mT))
    err = (torch.bmm(f, W_d.mT) - x).square().sum(-1)          # (n_instances, batch)
    W_e, b_e, W_d = W_e.clone(), b_e.clone(), W_d.clone()
    for k in range(W_e.shape[0]):
        n = int(dead[k].sum())
        if n == 0:
            continue
        w = err[k] ** 2 if err[k].any() else torch.ones_like(err[k])
        v = F.normalize(x[k][torch.multinomial(w, n, True, generator=generator)], dim=-1)
        scale = 0.2 * W_e[k][~dead[k]].norm(dim=-1).mean()
        W_d[k].T[dead[k]] = v
        W_e[k][dead[k]] = scale * v
        b_e[k][dead[k]] = 0
    return W_e, b_e, W_d


# --------------------------------------------------------------------------- correct alternatives


ALTERNATIVES = {
    "sae_forward": [fwd_bmm, fwd_loop, fwd_matmul],
    "normalize_decoder": [norm_functional, norm_linalg, norm_rsqrt],
    "feature_recovery": [rec_cosine_similarity, rec_loops, rec_bmm],
    "topk_activations": [topk_relu_first, topk_threshold, topk_sort],
    "dead_latents": [dead_max, dead_all, dead_count_nonzero],
    "resample_dead_latents": [resample_vectorised, resample_per_latent, resample_with_library_forward],
}


@pytest.mark.parametrize(
    "name, impl", [(n, f) for n, fs in ALTERNATIVES.items() for f in fs], ids=[f.__name__ for fs in ALTERNATIVES.values() for f in fs]
)
def test_correct_alternatives_keep_full_marks(name, impl):
    assert_full_marks(f"09.{name}", impl)


def test_every_exercise_has_eight_mutants_and_three_alternatives():
    counts = {
        "sae_forward": len(SAE_FORWARD_MUTANTS), "normalize_decoder": len(NORMALIZE_MUTANTS),
        "feature_recovery": len(RECOVERY_MUTANTS), "topk_activations": len(TOPK_MUTANTS),
        "dead_latents": len(DEAD_MUTANTS), "resample_dead_latents": len(RESAMPLE_MUTANTS),
    }
    assert set(counts) == set(NAMES) == set(ALTERNATIVES)
    assert all(c >= 8 for c in counts.values()), counts
    assert all(len(v) >= 3 for v in ALTERNATIVES.values())
