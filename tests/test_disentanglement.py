"""supercourse.disentanglement: the metrics, and the science of lesson 12 against issue 19's independent figures.

Independent figures (factors ``Bernoulli(0.05) * U[0, 1]``, 200,000 samples):

| code | MIG | DCI-D |
|---|---|---|
| identity, n = m = 2 | 0.996 | 1.000 |
| rotated 45° | 0.123 | 0.000 |
| pentagon h = W x, n = 5, m = 2 | 0.177 | 0.109 |
| read-out ReLU(W^T h + b), b = 0, -0.1, -0.2, -0.31 | 0.089, 0.232, 0.365, 0.538 | "1.0 throughout" |

Linear CKA of two networks seeing the same 100 sparse features (p = 0.02) through different random
100 -> 20 maps: 0.16; a rotation: 1.00.

The course's measurements at 200,000 samples, seeds 0-2 (the ranges the assertions allow for): MIG identity
0.997, rotated 0.113-0.128, pentagon 0.175-0.177, read-outs 0.086-0.090, 0.222-0.231, 0.360-0.369,
0.533-0.544. DCI-D with a least-squares probe: 1, 0, pentagon 0.104-0.110 (its population value, from the
exact probe ``(W W^T)^-1 W``, is 0.1095), read-outs 0.26, 0.41, 0.65, 0.87: a linear probe credits the
neighbouring codes that correct the interference, so the read-out is *not* 1.0 with it. With a lasso probe
(l1 = 0.002) the read-outs score 1.000 at every bias (the independent figure) and the pentagon 0.134.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from supercourse import disentanglement as dis
from supercourse import train

SEEDS = (0, 1, 2)
MEASURED = Path(__file__).resolve().parents[1] / "solutions" / "12-disentanglement" / "figures" / "summary.json"
"""The lesson's seed-0 study (written with its expected figures; the table of the reproduce target's summary.json)."""


# --------------------------------------------------------------------------- discretize, entropy, MI


def test_discretize_puts_zero_in_its_own_bin_and_balances_the_nonzeros():
    gen = torch.Generator().manual_seed(0)
    v = dis.sparse_factors(40_000, 3, 0.1, gen)
    v[:, 2] = -v[:, 2] * 7  # negative values, another scale: binned on their own
    labels = dis.discretize(v, bins=8)
    assert labels.dtype == torch.long and labels.shape == v.shape
    assert torch.equal(labels == 0, v == 0)
    for j in range(3):
        counts = torch.bincount(labels[:, j], minlength=9)[1:]
        nz = int((v[:, j] != 0).sum())
        assert counts.shape == (8,) and int(counts.sum()) == nz
        assert (counts - nz / 8).abs().max() <= 2, counts  # quantile bins: equal counts up to ties
    # monotone: larger values never get smaller labels (column 0, positive values)
    order = v[:, 0].argsort()
    nzo = order[v[order, 0] != 0]
    assert bool((labels[nzo, 0].diff() >= 0).all())
    # negative values: the most negative get label 1
    assert int(labels[v[:, 2].argmin(), 2]) == 1


def test_discretize_one_bin_and_all_zero_columns():
    v = torch.tensor([[0.0, 0.0], [0.3, 0.0], [0.7, 0.0]])
    assert dis.discretize(v, bins=1).tolist() == [[0, 0], [1, 0], [1, 0]]


@pytest.mark.parametrize("call, name", [
    (lambda: dis.discretize(torch.zeros(5)), "values"),
    (lambda: dis.discretize(torch.zeros(5, 2), bins=0), "bins"),
    (lambda: dis.mutual_information(torch.zeros(5, 2), torch.zeros(5, 1, dtype=torch.long)), "a"),
    (lambda: dis.mutual_information(torch.zeros(5, 2, dtype=torch.long), torch.zeros(4, 1, dtype=torch.long)), "b"),
    (lambda: dis.mutual_information(-torch.ones(5, 2, dtype=torch.long), torch.zeros(5, 1, dtype=torch.long)), "a"),
    (lambda: dis.mig(torch.zeros(10, 1), torch.zeros(10, 2)), "codes"),
    (lambda: dis.mig(torch.zeros(10, 2), torch.zeros(9, 2)), "factors"),
    (lambda: dis.dci_disentanglement(torch.ones(3, 1)), "importance"),
    (lambda: dis.dci_disentanglement(-torch.ones(3, 2)), "importance"),
    (lambda: dis.linear_cka(torch.zeros(10, 2), torch.zeros(11, 2)), "Y"),
    (lambda: dis.probe_importance(torch.zeros(10, 2), torch.zeros(10, 2), l1=-1.0), "l1"),
])
def test_errors_name_the_argument(call, name):
    with pytest.raises((ValueError, TypeError)) as err:
        call()
    assert str(err.value).startswith(name), str(err.value)


def test_mutual_information_in_nats():
    gen = torch.Generator().manual_seed(1)
    a = torch.randint(2, (100_000, 1), generator=gen)
    b = torch.randint(4, (100_000, 1), generator=gen)
    both = torch.cat([a, b, a], dim=1)
    info = dis.mutual_information(both, both)
    assert info.shape == (3, 3) and info.dtype == torch.float64
    assert info[0, 0].item() == pytest.approx(math.log(2), abs=1e-3)  # H(a) in nats
    assert info[1, 1].item() == pytest.approx(math.log(4), abs=1e-3)
    assert info[0, 2].item() == pytest.approx(info[0, 0].item(), abs=1e-12)  # a copy knows everything
    assert info[0, 1].item() < 1e-4  # independent: plug-in bias only
    assert torch.allclose(info, info.T)
    assert torch.allclose(dis.entropy(both), info.diagonal())


# --------------------------------------------------------------------------- MIG, DCI, CKA: properties


def test_mig_is_invariant_to_code_order_and_to_monotone_maps_that_keep_zero():
    gen = torch.Generator().manual_seed(2)
    v = dis.sparse_factors(30_000, 5, 0.05, gen)
    h = dis.readout_code(v, dis.polygon(5), -0.1)
    base = dis.mig(h, v)
    assert dis.mig(h[:, [3, 0, 4, 2, 1]], v).item() == pytest.approx(base.item(), abs=1e-12)
    assert dis.mig(h.pow(3) * 5, v).item() == pytest.approx(base.item(), abs=1e-12)
    # a code equal to the factors: the best code knows everything; the gap falls short of 1 only by the
    # plug-in estimate's positive bias on the independent second-best code (about (bins)^2 / 2N nats)
    gaps = dis.mig_per_factor(v, v)
    info = dis.mutual_information(dis.discretize(v), dis.discretize(v))
    second = (info - torch.diag(info.diagonal() + 1)).max(dim=0).values
    assert torch.allclose(gaps, 1 - second / info.diagonal(), atol=1e-12)
    assert 0.97 < dis.mig(v, v).item() < 1


def test_dci_disentanglement_extremes_and_batches():
    assert dis.dci_disentanglement(torch.eye(4)).item() == pytest.approx(1.0)
    assert dis.dci_disentanglement(torch.ones(3, 4)).item() == pytest.approx(0.0, abs=1e-12)
    R = torch.rand(2, 3, 5, 4, generator=torch.Generator().manual_seed(3))
    out = dis.dci_disentanglement(R)
    assert out.shape == (2, 3) and out.dtype == torch.float64
    assert out[1, 2].item() == pytest.approx(dis.dci_disentanglement(R[1, 2]).item())
    R[0, 0, 2] = 0  # a code no factor uses: weight 0, no NaN
    assert torch.isfinite(dis.dci_disentanglement(R)).all()
    assert dis.dci_disentanglement(torch.zeros(3, 2)).item() == 0.0


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 6), st.integers(2, 6), st.integers(0, 2**31 - 1), st.floats(0.01, 100.0))
def test_dci_is_a_weighted_mean_in_unit_range_invariant_to_scale_and_code_order(n_codes, n_factors, seed, scale):
    R = torch.rand(n_codes, n_factors, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    d = dis.dci_disentanglement(R).item()
    assert -1e-12 <= d <= 1 + 1e-12
    assert dis.dci_disentanglement(R * scale).item() == pytest.approx(d, abs=1e-10)
    assert dis.dci_disentanglement(R.flip(0)).item() == pytest.approx(d, abs=1e-10)


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 6), st.integers(1, 5), st.integers(0, 2**31 - 1), st.floats(0.1, 10.0))
def test_linear_cka_is_invariant_to_rotation_scale_and_shift(d_x, d_y, seed, scale):
    d_y = min(d_y, d_x)
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(200, d_x, generator=gen, dtype=torch.float64)
    Y = X[:, :d_y] @ torch.randn(d_y, d_y, generator=gen, dtype=torch.float64) + 0.3 * torch.randn(200, d_y, generator=gen, dtype=torch.float64)
    base = dis.linear_cka(X, Y).item()
    Q = dis.random_rotation(d_x, gen)
    assert 0 <= base <= 1 + 1e-12
    assert dis.linear_cka(scale * X @ Q + 3.0, Y).item() == pytest.approx(base, abs=1e-9)
    assert dis.linear_cka(Y, X).item() == pytest.approx(base, abs=1e-12)
    assert dis.linear_cka(X, X).item() == pytest.approx(1.0, abs=1e-12)


def test_linear_cka_edge_cases_and_what_it_is_not_invariant_to():
    gen = torch.Generator().manual_seed(4)
    X = torch.randn(500, 3, generator=gen, dtype=torch.float64)
    assert dis.linear_cka(X, torch.ones(500, 2)).item() == 0.0  # a constant representation: 0, not NaN
    stretched = X * torch.tensor([1.0, 1.0, 10.0], dtype=torch.float64)  # not a rotation: CKA drops
    assert dis.linear_cka(X, stretched).item() < 0.7


def test_probe_importance_reads_a_linear_code_exactly():
    gen = torch.Generator().manual_seed(5)
    v = dis.sparse_factors(50_000, 2, 0.05, gen)
    R = dis.rotation_2d(0.3)
    imp = dis.probe_importance(dis.linear_code(v, R), v)
    assert torch.allclose(imp, R.abs(), atol=1e-8)  # factors = R^T z: the probe's coefficients are R's entries


# --------------------------------------------------------------------------- the codes against the independent figures


@pytest.fixture(scope="module", params=SEEDS, ids=lambda s: f"seed{s}")
def codes(request):
    """Every code of the suite at 200,000 samples (the independent figures' size): {name: (MIG, DCI-D, lasso DCI-D, code)}."""
    out = {}
    for code in dis.code_suite(200_000, seed=request.param):
        out[code.name] = (dis.mig(code.codes, code.factors).item(), dis.dci(code.codes, code.factors).item(),
                          dis.dci(code.codes, code.factors, l1=0.002).item(), code)
    return out


def test_identity_code(codes):
    mig, dci, _, code = codes["identity"]
    assert mig == pytest.approx(0.996, abs=0.004)  # measured 0.997; the gap below 1 is the plug-in bias
    assert dci == pytest.approx(1.0, abs=1e-9)
    assert code.mean_dimensionality == pytest.approx(1.0)


def test_rotation_defeats_both_metrics_without_superposition(codes):
    mig, dci, lasso, code = codes["rotated 45°"]
    assert mig == pytest.approx(0.123, abs=0.015)  # measured 0.113-0.128
    assert abs(dci) < 1e-9 and abs(lasso) < 1e-4  # the lasso stops at its tolerance
    assert code.mean_dimensionality == pytest.approx(1.0)  # each factor still has a whole dimension


def test_pentagon(codes):
    mig, dci, lasso, code = codes["pentagon"]
    assert mig == pytest.approx(0.177, abs=0.01)  # measured 0.175-0.177
    assert dci == pytest.approx(0.109, abs=0.01)  # measured 0.104-0.110 (population 0.1095)
    assert lasso == pytest.approx(0.134, abs=0.01)
    assert code.mean_dimensionality == pytest.approx(0.4)  # 2/5: five factors share two dimensions


def test_pentagon_population_dci_is_the_independent_figure():
    W = dis.polygon(5)
    # the least-squares probe on infinitely many samples: factors ~ (W W^T)^-1 W z (equal factor variances)
    exact = torch.linalg.solve(W @ W.T, W).abs()
    assert dis.dci_disentanglement(exact).item() == pytest.approx(0.1095, abs=5e-4)


@pytest.mark.parametrize("bias, expected", [(0.0, 0.089), (-0.1, 0.232), (-0.2, 0.365), (-0.31, 0.538)])
def test_readout_mig_rises_as_the_bias_filters_interference(codes, bias, expected):
    mig, dci, lasso, _ = codes[f"read-out b={bias:g}"]
    assert mig == pytest.approx(expected, abs=0.015)  # measured within 0.008 of each
    assert lasso >= 0.99  # the independent "1.0 throughout": a sparse probe credits one code per factor
    assert dci < lasso  # a least-squares probe also credits the neighbours that correct interference


def test_readout_least_squares_dci_rises_with_the_bias(codes):
    values = [codes[f"read-out b={b:g}"][1] for b in dis.READOUT_BIASES]
    for got, want in zip(values, (0.264, 0.41, 0.65, 0.87)):
        assert got == pytest.approx(want, abs=0.03)
    assert all(a < b for a, b in zip(values, values[1:]))


# --------------------------------------------------------------------------- similarity under superposition


@pytest.mark.parametrize("seed", SEEDS)
def test_two_networks_with_the_same_features_look_dissimilar_to_cka(seed):
    gen = torch.Generator().manual_seed(seed)
    maps = dis.random_maps(100, 20, 2, gen)
    x = dis.sparse_factors(20_000, 100, 0.02, gen, dtype=torch.float32)
    hA, hB = x @ maps[0].T, x @ maps[1].T
    assert dis.linear_cka(hA, hB).item() == pytest.approx(0.16, abs=0.04)  # measured 0.16-0.18
    Q = dis.random_rotation(20, gen, torch.float32)
    assert dis.linear_cka(hA, hA @ Q.T).item() == pytest.approx(1.0, abs=1e-6)
    assert dis.mean_max_correlation(hA, hB).item() < 0.3


@pytest.mark.slow
@pytest.mark.parametrize("seed", (0, 1))
def test_saes_on_each_network_restore_much_of_the_alignment(seed):
    result = dis.similarity_study(seed=seed)  # TopK SAEs, k = 2, 100 latents, 4,000 steps
    s = result.scores()
    assert s["cka_hidden"] == pytest.approx(0.16, abs=0.04)
    assert s["mmcs_a"] >= 0.93 and s["mmcs_b"] >= 0.93  # measured 0.96-0.98
    # measured (seeds 0, 1): CKA 0.17 -> 0.53-0.54, mean max correlation 0.20 -> 0.65-0.67
    assert s["cka_sae"] >= 2.5 * s["cka_hidden"]
    assert s["mmc_sae"] >= 2.5 * s["mmc_hidden"]
    assert s["cka_sae"] < 0.9  # restored in part: the latents' scales and splits still differ
    # what the lesson reports: seed 0 is the reproduce target's (its summary.json, beside the expected figures,
    # recomputed here to within thread-order rounding), seed 1 is quoted in the prose
    if seed == 0:
        measured = json.loads(MEASURED.read_text(encoding="utf-8"))["similarity"]
        for key, value in s.items():
            assert value == pytest.approx(measured[key], abs=0.005), key
    else:
        from notebook_prose import assert_quotes

        assert_quotes("12-disentanglement", [("similarity_expected", (
            f"The same pattern holds for seed 1 (CKA {s['cka_hidden']:.2f} -> {s['cka_sae']:.2f}, mean max correlation "
            f"{s['mmc_hidden']:.2f} -> {s['mmc_sae']:.2f};"))])


# --------------------------------------------------------------------------- the VAE


def _vae(betas=(0.0, 0.1), density=0.05, seed=0):
    return dis.LatentVAE(dis.observation_map(5, 16, seed=seed), 2, list(betas), [density] * len(betas), hidden=16, seed=seed)


def test_latent_vae_shapes_loss_and_deterministic_instances():
    vae = _vae((0.0, 0.5))
    obs = vae.generate_batch(64, torch.Generator().manual_seed(0))
    assert obs.shape == (64, 2, 16)
    recon, mu, logvar = vae(obs)
    assert recon.shape == obs.shape and mu.shape == logvar.shape == (64, 2, 2)
    loss = vae.per_instance_loss(obs, (recon, mu, logvar))
    assert loss.shape == (2,)
    err = (recon - obs).square().sum(-1).mean(0)
    assert loss[0].item() == pytest.approx(err[0].item(), rel=1e-6)  # the autoencoder has no KL term
    assert loss[1].item() > err[1].item()
    vae.eval()
    again, mu2, _ = vae(obs)
    assert torch.equal(again, vae.decode(mu2))  # eval mode decodes the mean
    with pytest.raises(ValueError, match="^beta"):
        dis.LatentVAE(dis.observation_map(), 2, [-1.0], [0.05])
    with pytest.raises(ValueError, match="^density"):
        dis.LatentVAE(dis.observation_map(), 2, [0.1], [1.5])
    with pytest.raises(TypeError, match="^obs_map"):
        dis.LatentVAE("map", 2, [0.1], [0.05])


def test_factor_directions_of_a_factor_that_never_fires_are_zero():
    vae = _vae()
    factors = vae.sample_factors(500, torch.Generator().manual_seed(1))
    factors[..., 3] = 0
    d = dis.factor_directions(vae, factors)
    assert d.shape == (2, 2, 5)
    assert torch.equal(d[:, :, 3], torch.zeros(2, 2)) and bool((d[:, :, 0].norm(dim=1) > 0).all())


def test_the_beta_vae_objective_is_invariant_to_rotations_only_with_the_isotropic_prior():
    torch.manual_seed(0)
    vae = _vae((0.5, 1.0))
    vae.eval()
    gen = torch.Generator().manual_seed(2)
    obs = vae.generate_batch(2048, gen)
    eps = torch.randn(2048, 2, 2, generator=gen)
    base = {p: dis.rotated_objective(vae, obs, torch.eye(2), eps, p) for p in ("gaussian", "laplace")}
    for angle in (0.3, 1.1, 2.5):
        R = dis.rotation_2d(angle, torch.float32)
        gauss = dis.rotated_objective(vae, obs, R, eps, "gaussian")
        assert torch.allclose(gauss, base["gaussian"], rtol=1e-5, atol=1e-5), (gauss, base["gaussian"])
        laplace = dis.rotated_objective(vae, obs, R, eps, "laplace")
        assert (laplace - base["laplace"]).abs().max() > 1e-3  # a factorised prior prefers a basis


@pytest.mark.slow
@pytest.mark.parametrize("seed", (0, 1))
def test_vae_latents_superpose_sparse_factors_unless_the_posterior_collapses(seed):
    # measured (seeds 0-2, 5,000 steps): AE and beta <= 0.3 at density 0.05 keep all 5 factors in 2 dims,
    # summed dimensionality 1.78-2.00, SAE MMCS 0.90-0.97; beta = 1 collapses (FVU 1.00, KL 0.00).
    vae = dis.LatentVAE(dis.observation_map(5, 16, seed=seed), 2, [0.0, 0.1, 1.0], [0.05] * 3, seed=seed)
    train(vae, steps=5000, batch_size=256, lr=1e-3, weight_decay=0.0, seed=seed, progress=False)
    res = dis.latent_study(vae, seed=seed, n_samples=20_000, n_probe=10_000, sae_steps=2000)
    for k in (0, 1):
        assert int(res.represented[k].sum()) == 5, res.rows()[k]
        assert 1.7 <= float(res.dimensionality[k].sum()) <= 2.05, res.rows()[k]  # two dimensions' worth
        assert float(res.fvu[k]) < 0.1
        assert float(res.sae_mmcs[k]) >= 0.85
        assert float(res.mig[k]) < 0.3  # superposed: not disentangled
    assert float(res.fvu[2]) > 0.95 and int(res.represented[2].sum()) == 0 and float(res.kl[2]) < 0.05
