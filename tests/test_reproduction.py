"""The paper's results, reproduced on the CPU with ``supercourse.train`` and the paper's recipe.

Recipe (the official notebook's): Xavier-normal init, zero bias, AdamW lr 1e-3,
weight decay 0.01, batch 1024, 10,000 steps, constant lr; seeded (init and data),
so each run is deterministic on a given platform. The assertions carry the
tolerances of a faithful reproduction rather than the exact numbers of one seed
(they hold for seeds 0-3). Each trained model belongs to one test, which checks
all its facts and reports every failed one (``pytest -n 3`` then never trains a
model twice, as module fixtures shared across workers would).

Recipe constants come from :mod:`supercourse.experiments` when it exists (its
values are checked against the paper here), else from the fallbacks below.
"""

from __future__ import annotations

import pytest
import torch

import supercourse
from supercourse import ToyModel, metrics as M, theory

try:  # the experiments package is optional for this file
    from supercourse.experiments import basic_results as _basic
except Exception:  # pragma: no cover - package missing or broken
    _basic = None
try:
    from supercourse.experiments import intro as _intro
except Exception:  # pragma: no cover
    _intro = None

# ---- the paper's recipe
STEPS, LR, BATCH, SEED = 10_000, 1e-3, 1024, 0

# ---- basic results (n=20, m=5, I_i = 0.7^i)
BASIC_N = getattr(_basic, "N_FEATURES", 20)
BASIC_M = getattr(_basic, "N_HIDDEN", 5)
BASIC_DECAY = getattr(_basic, "IMPORTANCE_DECAY", 0.7)
BASIC_DENSITIES = tuple(getattr(_basic, "DENSITIES", (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001)))

# ---- intro (n=5, m=2, I_i = 0.9^i); the pentagon appears at density 1/20
INTRO_N = getattr(_intro, "N_FEATURES", 5)
INTRO_M = getattr(_intro, "N_HIDDEN", 2)
INTRO_DECAY = getattr(_intro, "IMPORTANCE_DECAY", 0.9)
INTRO_SPARSE = 1.0 / getattr(_intro, "MAX_SPARSITY_FACTOR", 20.0)
INTRO_DENSE_RESTARTS, INTRO_SPARSE_RESTARTS = 2, 6


def _train(model: ToyModel) -> ToyModel:
    supercourse.train(model, steps=STEPS, lr=LR, batch_size=BATCH, seed=SEED, progress=False, device="cpu")
    return model


def _eval_loss(model: ToyModel, n: int = 200_000, seed: int = 1) -> torch.Tensor:
    x = model.generate_batch(n, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model.per_instance_loss(x, model(x))


def _basic_model(activation: str) -> ToyModel:
    return ToyModel(
        BASIC_N,
        BASIC_M,
        n_instances=len(BASIC_DENSITIES),
        feature_probability=torch.tensor(BASIC_DENSITIES),
        importance=BASIC_DECAY ** torch.arange(BASIC_N, dtype=torch.float32),
        activation=activation,
        seed=SEED,
    )


class Checks:
    """Collects every failed expectation of one trained model, then fails once listing them all."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def __call__(self, ok, message: str) -> None:
        if not bool(ok):
            self.failed.append(message)

    def done(self) -> None:
        assert not self.failed, "\n".join(self.failed)


def _dense_pca_loss() -> float:
    """Expected loss (averaged over features) of the dense PCA solution: the top m features
    reconstructed exactly, each other one replaced by its mean, costing I_i Var(x_i) = I_i / 12."""
    imp = BASIC_DECAY ** torch.arange(BASIC_N, dtype=torch.float64)
    return (imp[BASIC_M:].sum() / 12 / BASIC_N).item()


def test_recipe_constants_match_the_paper():
    assert (BASIC_N, BASIC_M, BASIC_DECAY) == (20, 5, 0.7)
    assert BASIC_DENSITIES == pytest.approx((1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001))
    assert (INTRO_N, INTRO_M, INTRO_DECAY) == (5, 2, 0.9)
    assert INTRO_SPARSE == pytest.approx(0.05)


# Each trained model below is used by one test only, so ``pytest -n 3`` never trains it twice.

# ---------------------------------------------------------------- basic results: the linear model


def test_linear_model_learns_exactly_the_top_m_features_at_every_density():
    """At every density: norms of features 0-4 within 0.05 of 1, the rest below 0.1; ``W^T W`` within
    0.05 of I on the top 5; interference on them below 0.01 (PCA, no superposition); D* within 0.05
    of 1; unlearned features' bias within 0.05 of their mean p/2; dense loss within 3% of PCA's."""
    model = _train(_basic_model("linear"))
    W = model.W.detach()
    norms = M.feature_norms(W)
    top = slice(0, BASIC_M)
    n_dens = len(BASIC_DENSITIES)
    check = Checks()
    check(((norms[:, top] - 1).abs() < 0.05).all(), f"top-5 norms {norms[:, top].tolist()}")
    check((norms[:, BASIC_M:] < 0.1).all(), f"max other norm per density {norms[:, BASIC_M:].max(1).values.tolist()}")
    G = M.gram(W)[:, top, top]
    check((G - torch.eye(BASIC_M)).abs().max() < 0.05, f"W^T W deviates from I by {(G - torch.eye(BASIC_M)).abs().max():.3f}")
    check((M.superposition(W)[:, top] < 0.01).all(), f"interference {M.superposition(W)[:, top].max():.3f}")
    check(M.n_represented(W).tolist() == [BASIC_M] * n_dens, f"represented {M.n_represented(W).tolist()}")
    check(M.represented(W)[:, top].all(), "a top-5 feature is not represented")
    check(M.n_in_superposition(W).tolist() == [0] * n_dens, f"in superposition {M.n_in_superposition(W).tolist()}")
    d_star = M.dimensions_per_feature(W)
    check(((d_star - 1).abs() < 0.05).all(), f"D* {d_star.tolist()}")
    b = model.b_final.detach()[:, BASIC_M:]
    p = torch.tensor(BASIC_DENSITIES)[:, None].expand_as(b)
    check(((b - p / 2).abs() < 0.05).all(), f"unlearned bias - p/2: {(b - p / 2).abs().max(1).values.tolist()}")
    dense_loss = _eval_loss(model)[0].item()
    check(abs(dense_loss / _dense_pca_loss() - 1) < 0.03, f"dense loss {dense_loss:.6f} vs PCA {_dense_pca_loss():.6f}")
    check.done()


# ---------------------------------------------------------------- basic results: the ReLU-output model


def _idx(density: float) -> int:
    return min(range(len(BASIC_DENSITIES)), key=lambda k: abs(BASIC_DENSITIES[k] - density))


def test_relu_model_superposition_grows_with_sparsity():
    """The ReLU-output model across densities (paper: about 5, 7, 9, 10, 11-12, 12-13, 13-15 features):

    * dense: the linear model's solution (top 5 features, norms within 0.05 of 1, ``W^T W`` within
      0.05 of I, no superposition, loss within 3% of the PCA loss);
    * density 0.3: 7 or 8 represented (||W_i|| > 0.5), every one of the 5 dimensions used by one
      dedicated feature or one antipodal pair (n_represented - n_pairs == 5, so >= 2 pairs), pairs
      at cosine < -0.9, unpaired features orthogonal to all (interference < 0.1), feature 0 unpaired;
    * density 0.001: >= 11 represented, all but at most one in superposition, fewer than half in
      antipodal pairs, minimum bias < -0.1, D* < 0.5;
    * counts non-decreasing up to a dip of 1 between neighbouring densities, each within 2 of the
      paper's band, >= 6 more at the sparsest than dense; the minimum bias drops by > 0.1.
    """
    model = _train(_basic_model("relu"))
    W_all = model.W.detach()
    b_all = model.b_final.detach()
    check = Checks()

    # dense
    W = W_all[:1]
    norms = M.feature_norms(W)[0]
    check(((norms[:BASIC_M] - 1).abs() < 0.05).all() and (norms[BASIC_M:] < 0.1).all(), f"dense norms {norms.tolist()}")
    G = M.gram(W)[0, :BASIC_M, :BASIC_M]
    check((G - torch.eye(BASIC_M)).abs().max() < 0.05, "dense W^T W is not I on the top 5")
    check(M.n_in_superposition(W).item() == 0, "dense model has superposition")
    dense_loss = _eval_loss(model)[0].item()
    check(abs(dense_loss / _dense_pca_loss() - 1) < 0.03, f"dense loss {dense_loss:.6f} vs PCA {_dense_pca_loss():.6f}")

    # density 0.3
    k = _idx(0.3)
    W = W_all[k : k + 1]
    n_rep = M.n_represented(W).item()
    pairs = M.antipodal_pairs(W)[0]
    check(7 <= n_rep <= 8, f"0.3: {n_rep} represented")
    check(len(pairs) >= 2 and n_rep - len(pairs) == BASIC_M, f"0.3: {n_rep} represented, pairs {pairs}")
    Wh = M.unit_directions(W)[0]
    for i, j in pairs:
        check((Wh[:, i] @ Wh[:, j]).item() < -0.9, f"0.3: pair {(i, j)} not antipodal")
    paired = {i for pair in pairs for i in pair}
    solo = [i for i in M.represented(W)[0].nonzero()[:, 0].tolist() if i not in paired]
    check((M.superposition(W)[0, solo] < 0.1).all(), f"0.3: unpaired features {solo} interfere")
    check(0 in solo, "0.3: the most important feature lost its dedicated dimension")

    # density 0.001
    k = _idx(0.001)
    W = W_all[k : k + 1]
    n_rep = M.n_represented(W).item()
    check(n_rep >= 11, f"0.001: only {n_rep} represented")
    check(M.n_in_superposition(W).item() >= n_rep - 1, "0.001: represented features not in superposition")
    check(2 * len(M.antipodal_pairs(W)[0]) < n_rep, "0.001: still only antipodal pairs")
    check(b_all[k].min().item() < -0.1, f"0.001: minimum bias {b_all[k].min().item():.3f}")
    check(M.dimensions_per_feature(W).item() < 0.5, f"0.001: D* {M.dimensions_per_feature(W).item():.3f}")

    # the trend
    counts = M.n_represented(W_all).tolist()
    paper_low, paper_high = (5, 7, 9, 10, 11, 12, 13), (5, 7, 9, 10, 12, 13, 15)
    check(counts[0] == BASIC_M, f"counts {counts}")
    for i in range(1, len(counts)):
        check(counts[i] >= counts[i - 1] - 1, f"counts dip: {counts}")
        check(paper_low[i] - 2 <= counts[i] <= paper_high[i] + 2, f"count at {BASIC_DENSITIES[i]}: {counts}")
    check(counts[-1] - counts[0] >= 6, f"counts {counts}")
    b_min = b_all.min(1).values
    check(b_min[-1] < b_min[0] - 0.1, f"minimum biases {b_min.tolist()}")
    check.done()


# ---------------------------------------------------------------- intro: n=5, m=2


def _intro_model(density: float, restarts: int) -> ToyModel:
    """``restarts`` independent instances at one density, trained with the recipe."""
    model = ToyModel(
        INTRO_N,
        INTRO_M,
        n_instances=restarts,
        feature_probability=density,
        importance=INTRO_DECAY ** torch.arange(INTRO_N, dtype=torch.float32),
        seed=SEED,
    )
    return _train(model)


def test_intro_dense_two_orthogonal_features():
    """Every dense restart: exactly features 0 and 1 represented, norms within 0.05 of 1,
    |cos| between them below 0.05, D_0, D_1 > 0.9. The dropped features decay slowly once the
    solution has formed (seen: norms up to 0.22 after 10,000 steps), so they are only required to
    stay below 0.35, well under the 0.5 that counts as represented."""
    W = _intro_model(1.0, INTRO_DENSE_RESTARTS).W.detach()
    rep = M.represented(W)
    assert rep[:, :2].all() and not rep[:, 2:].any(), M.feature_norms(W)
    norms = M.feature_norms(W)
    assert ((norms[:, :2] - 1).abs() < 0.05).all() and (norms[:, 2:] < 0.35).all(), norms
    Wh = M.unit_directions(W)
    cos01 = (Wh[:, :, 0] * Wh[:, :, 1]).sum(-1)
    assert (cos01.abs() < 0.05).all(), cos01
    assert (M.feature_dimensionality(W)[:, :2] > 0.9).all(), M.feature_dimensionality(W)


def test_intro_sparse_best_restart_is_a_regular_pentagon():
    """At density 1/20 the lowest-loss restart represents all 5 features as a pentagon:
    D_i within 0.03 of 2/5 (sum within 0.05 of m = 2), neighbouring angles within 4 degrees of 72,
    norms within 10% of each other, no antipodal pairs, negative biases, and a loss below 0.7x
    that of keeping 2 dedicated features."""
    model = _intro_model(INTRO_SPARSE, INTRO_SPARSE_RESTARTS)
    losses = _eval_loss(model)
    best = losses.argmin().item()
    W = model.W.detach()[best : best + 1]
    assert M.n_represented(W).item() == INTRO_N
    D = M.feature_dimensionality(W)[0]
    assert ((D - 2 / 5).abs() < 0.03).all(), D
    assert D.sum().item() == pytest.approx(INTRO_M, abs=0.05)  # efficiently packed: sum D_i = m
    angles = torch.rad2deg(torch.atan2(W[0, 1], W[0, 0])).sort().values
    gaps = torch.diff(torch.cat([angles, angles[:1] + 360.0]))
    assert ((gaps - 72.0).abs() < 4.0).all(), gaps
    norms = M.feature_norms(W)[0]
    assert norms.max() / norms.min() < 1.1, norms
    assert M.antipodal_pairs(W) == [[]]
    assert (model.b_final.detach()[best] < 0).all()
    dense_like = ToyModel(INTRO_N, INTRO_M, feature_probability=INTRO_SPARSE, importance=INTRO_DECAY ** torch.arange(float(INTRO_N)))
    with torch.no_grad():  # two dedicated features, the others dropped with bias = their mean
        dense_like.W.copy_(torch.eye(INTRO_M, INTRO_N)[None])
        dense_like.b_final.copy_(torch.tensor([0.0, 0.0] + [INTRO_SPARSE / 2] * (INTRO_N - 2))[None])
    assert losses.min() < 0.7 * _eval_loss(dense_like)[0]


# ---------------------------------------------------------------- the n=2, m=1 phase change


def test_triple_point_constants():
    r, p = theory.triple_point()
    assert r == 1.0 and p == pytest.approx(4 / 7)
    losses = theory.configuration_losses(r, p)
    assert (losses.max() - losses.min()).item() < 1e-15


def test_trained_n2m1_models_land_in_the_predicted_phase():
    """Points well inside each region, 4 restarts each, the lowest-loss restart kept (the paper
    kept the best of 10): its configuration is the one theory predicts."""
    points = [(10.0, 1.0), (0.1, 1.0), (1.0, 0.05), (3.0, 0.1), (0.3, 0.05)]
    restarts = 4
    r = torch.tensor([a for a, _ in points]).repeat_interleave(restarts)
    p = torch.tensor([b for _, b in points]).repeat_interleave(restarts)
    model = ToyModel(2, 1, n_instances=len(r), feature_probability=p, importance=torch.stack([torch.ones_like(r), r], 1), seed=SEED)
    _train(model)
    labels = theory.classify_n2m1(model.W).reshape(len(points), restarts)
    losses = _eval_loss(model).reshape(len(points), restarts)
    best = labels.gather(1, losses.argmin(1, keepdim=True))[:, 0]
    predicted = torch.stack([theory.phase_diagram([a], [b])[0, 0] for a, b in points])
    assert best.tolist() == predicted.tolist(), (labels.tolist(), predicted.tolist())
    assert set(predicted.tolist()) == {theory.NOT_REPRESENTED, theory.DEDICATED, theory.SUPERPOSITION}
    # the kept restarts reach the closed-form loss of their configuration (x2: the model averages over
    # 2 features): no more than 3% above it (sampling noise), and no more than 15% below it (training
    # may fine-tune the hand-set weights and biases; seed 0 gives ratios 0.93-1.00)
    closed = torch.stack([theory.configuration_losses(a, b)[lab] for (a, b), lab in zip(points, predicted.tolist())])
    kept = losses.min(1).values.double() * 2
    ratio = kept / closed
    assert ((ratio < 1.03) & (ratio > 0.85)).all(), ratio.tolist()
