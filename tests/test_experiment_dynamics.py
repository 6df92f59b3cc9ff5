"""supercourse.experiments.dynamics and .adversarial, and lesson 7's headline results at CPU size.

The fast tests check the recipes (constants, models, the correlated data, the callback
wiring, the ``reproduce`` targets' files). The ``slow`` tests train the lesson's CPU
defaults for seeds 0 and 1 and assert what lesson 7 teaches:

* energy levels (n=15, m=3, densities 0.35, 0.3, 0.25, 0.2, 6,000 steps): at least 5
  jumps between levels (seeds 0, 1: 12 and 8, every one between 2/5 and 1/2); the loss
  on the fixed batch drops during at least 80% of them (measured: all of them, by 0.3%
  to 8.4%) and by more than 0.5% at the median (2.6% and 2.3%); at the end at least 90%
  of the represented features sit within 0.02 of a polytope fraction, 3/8 included (all
  26 and 27: digons, pentagons, and with seed 1 a square antiprism at 1-S = 0.2);
* correlated sets (2 sets of 3, m=3, density 0.1, 4 instances): every instance goes
  through the stages in order (collapsed, splitting, orthogonal sets, octahedron, each
  possibly from the first snapshot) and ends as an octahedron (within-set ``|cos|``
  below 0.1, most negative across-set cosine below -0.9; measured -0.93 to -1.00),
  its loss below a fifth of the first snapshot's;
* the attack sweep (n=40, m=5, densities 1 to 1/50, 10,000 steps): relative
  vulnerability within 0.05 of 1 for the dense model (1.00, 1.02), at least 1.9 at
  1-S = 0.33 where features per dimension reach 2 (2.20, 2.20), at least 2.5 at its
  largest (2.94, 2.99), below features per dimension for the sparse models, and
  correlated with features per dimension across the sweep (r >= 0.7; 0.82, 0.85).
"""

from __future__ import annotations

import io
import json

import pytest
import torch
from rich.console import Console

from supercourse import adversarial as adv, dynamics as dyn, metrics
from supercourse.data import correlated_sparse
from supercourse.geometry import DIMENSIONALITY_LINES
from supercourse.experiments import EXPERIMENTS, adversarial, dynamics
from supercourse.training import uses_fast_path


def quiet_console() -> Console:
    return Console(file=io.StringIO(), width=160)


# --------------------------------------------------------------------------- recipes


def test_registered_under_their_names():
    assert EXPERIMENTS["dynamics"] is dynamics and EXPERIMENTS["adversarial"] is adversarial


def test_dynamics_constants_and_models():
    model = dynamics.make_model(seed=0)
    assert model.W.shape == (4, 3, 15) and (model.importance == 1).all()
    assert model.feature_probability[:, 0].tolist() == pytest.approx(list(dynamics.DENSITIES))
    corr = dynamics.make_correlated_model(seed=0)
    assert corr.W.shape == (4, 3, 6) and corr.set_size == 3
    assert not uses_fast_path(corr), "the correlated model trains on its own data, through autograd"
    assert (dynamics.DEFAULT_STEPS, dynamics.LOG_EVERY, dynamics.BATCH_SIZE, dynamics.LR) == (6000, 20, 1024, 1e-3)


def test_correlated_model_draws_whole_sets_at_the_marginal_density():
    corr = dynamics.make_correlated_model(seed=0)
    x = corr.generate_batch(20_000, generator=torch.Generator().manual_seed(0))
    active = x > 0
    sets = active.reshape(20_000, 4, 2, 3)
    # A set is all on or all off (a U[0, 1) value is 0 with probability 0).
    assert (sets.all(-1) | ~sets.any(-1)).all()
    # Marginal density 0.1: standard error sqrt(0.1 * 0.9 / 20000) = 0.0021, tolerance 5 sigma.
    assert active.float().mean(0).sub(0.1).abs().max() < 0.011
    assert torch.equal(x, correlated_sparse(20_000, torch.full((4, 2), 0.1), 3, generator=torch.Generator().manual_seed(0)))


def test_record_keeps_a_snapshot_per_logged_step():
    rec, history = dynamics.record(dynamics.make_correlated_model(seed=0), steps=41, seed=0)
    assert rec.steps.tolist() == history.steps.tolist() == [0, 20, 40]
    assert rec.weights.shape == (3, 4, 3, 6) and rec.losses.shape == (3, 4)


def test_adversarial_constants_and_model():
    model = adversarial.make_model(seed=0)
    assert model.W.shape == (8, 5, 40)
    assert adversarial.DENSITIES[0] == 1.0 and adversarial.DENSITIES[-1] == pytest.approx(0.02)
    assert adversarial.DEFAULT_STEPS == 10_000 and adv.ATTACK_FRACTION == 0.1


def _read_outputs(out):
    from safetensors.torch import load_file

    params = load_file(str(out / "params.safetensors"))
    summary = json.loads((out / "summary.json").read_text())
    return params, summary


def test_dynamics_run_writes_figures_params_and_summary(tmp_path):
    result = dynamics.run(tmp_path, steps=120, seed=3, console=quiet_console())
    assert set(result.figures) == {"energy_levels", "correlated_stages"}
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in result.figures.values())
    params, summary = _read_outputs(tmp_path)
    assert params["W"].shape == (4, 3, 15) and params["b_final"].shape == (4, 15)
    assert params["correlated_W"].shape == (4, 3, 6)
    assert torch.equal(params["W"], result.models["levels"].W.detach())
    assert summary["steps"] == 120 and summary["seed"] == 3
    assert summary["energy_levels"]["densities"] == pytest.approx(list(dynamics.DENSITIES))
    assert len(summary["correlated"]["stages"]) == 4


def test_adversarial_run_writes_figure_params_and_summary(tmp_path):
    result = adversarial.run(tmp_path, steps=3, seed=2, console=quiet_console())  # the interface: the sweep is tested below
    assert set(result.figures) == {"vulnerability"}
    params, summary = _read_outputs(tmp_path)
    assert params["W"].shape == (8, 5, 40) and params["b_final"].shape == (8, 40)
    assert len(summary["table"]) == 8 and summary["config"]["attack_fraction"] == 0.1
    assert {"density", "relative", "features_per_dimension", "vulnerability", "baseline",
            "relative_without_bias", "attack_norm"} <= set(summary["table"][0])
    assert summary["peak"]["paper"] == adversarial.PAPER_VULNERABILITY


# --------------------------------------------------------------------------- headline results (slow)


@pytest.fixture(scope="module", params=[0, 1])
def dynamics_runs(request):
    seed = request.param
    levels, _ = dynamics.record(dynamics.make_model(seed=seed), seed=seed, device="cpu")
    stages, _ = dynamics.record(dynamics.make_correlated_model(seed=seed), seed=seed, device="cpu")
    return seed, levels, stages


@pytest.mark.slow
def test_energy_levels_jump_with_loss_drops(dynamics_runs):
    seed, levels, _ = dynamics_runs
    jumps = dynamics.jump_table(levels)
    assert len(jumps) >= 5, f"seed {seed}: {len(jumps)} jumps"
    drops = torch.tensor([j["loss_drop"] for j in jumps])
    assert (drops > 0).float().mean() >= 0.8, f"seed {seed}: loss drops {drops.tolist()}"
    assert drops.median() > 0.005
    D = levels.dimensionalities[-1]
    rep = metrics.represented(levels.weights[-1])
    lines = (0.0,) + tuple(float(f) for f in DIMENSIONALITY_LINES.values())  # 3/8 included: seed 1 ends with one
    on_level = dyn.nearest_level(D, lines) >= 0
    assert (on_level & rep).sum() >= 0.9 * rep.sum()


@pytest.mark.slow
def test_correlated_sets_pass_through_stages_to_an_octahedron(dynamics_runs):
    seed, _, stages = dynamics_runs
    for row in dynamics.stage_table(stages):
        order = [dyn.STAGES.index(s) for s in row["stages"]]
        assert order == sorted(order), f"seed {seed}: {row['stages']}"
        assert row["final_stage"] == "octahedron", f"seed {seed}: {row}"
        assert row["final_within"] < 0.1 and row["final_across"] < -0.9
        first_loss = stages.losses[0, row["instance"]]
        assert row["final_loss"] < 0.2 * first_loss


@pytest.fixture(scope="module", params=[0, 1])
def attack_sweep(request):
    seed = request.param
    model, _, checked = adversarial.train_sweep(seed=seed, device="cpu")
    return seed, model, checked, adversarial.vulnerability_rows(model, seed)


@pytest.fixture()
def attack_rows(attack_sweep):
    seed, _, _, rows = attack_sweep
    return seed, rows


@pytest.mark.slow
def test_each_density_keeps_the_best_attacked_model_found(attack_sweep):
    """The sweep's models against each other on each density's data (measured, seeds 0 and 1: the paper's recipe
    already gives the best at every density, every gap below 0.1%; no polishing needed)."""
    from supercourse.experiments._optimum import GAP_TOLERANCE

    seed, _, checked, _ = attack_sweep
    assert (checked.gaps <= GAP_TOLERANCE).all(), (seed, checked.gaps)


@pytest.mark.slow
def test_the_paper_s_three_is_not_reached_and_the_biases_say_why(attack_rows):
    """The cpu sweep's relative vulnerability peaks below the paper's "more than 3" (measured 2.94, seed 0). The
    negative biases absorb the attack: with b = 0 the same models would be far more vulnerable than 3."""
    seed, rows = attack_rows
    peak = max(r.relative for r in rows)
    assert peak < adversarial.PAPER_VULNERABILITY, (seed, peak)
    assert rows[-1].relative_without_bias > adversarial.PAPER_VULNERABILITY > rows[-1].relative, (seed, rows[-1])
    assert rows[-1].attack_norm < rows[0].attack_norm / 5, (seed, rows[-1])  # the attack shrinks with the inputs


@pytest.mark.slow
def test_lesson_prose_quotes_the_attack_sweep(attack_rows):
    from notebook_prose import assert_quotes

    seed, rows = attack_rows
    if seed != 0:
        pytest.skip("the lesson quotes seed 0")
    rel = torch.tensor([r.relative for r in rows])
    fpd = torch.tensor([r.features_per_dimension for r in rows])
    peak = rows[int(rel.argmax())]
    last = rows[-1]
    corr = float(torch.corrcoef(torch.stack([rel, fpd]))[0, 1])
    assert_quotes("07-dynamics-adversarial", [
        ("sweep_expected", f"peaks at **{peak.relative:.2f}** (at $1 - S = {peak.density:.2g}$)"),
        ("sweep_expected", f"correlation {corr:.2f}"),
        ("sweep_expected", f"to about {last.features_per_dimension:.1f} at $1-S = {last.density:.2g}$"),
        ("sweep_expected", f"the attack's norm falls from {rows[0].attack_norm:.2f} to {last.attack_norm:.3f}"),
        ("sweep_expected", f"with $b = 0$ the same model's ratio would be **{last.relative_without_bias:.0f}**"),
    ])


@pytest.mark.slow
def test_vulnerability_rises_sharply_with_superposition_and_tracks_features_per_dimension(attack_rows):
    seed, rows = attack_rows
    rel = torch.tensor([r.relative for r in rows])
    fpd = torch.tensor([r.features_per_dimension for r in rows])
    assert abs(rel[0] - 1) < 0.05, f"seed {seed}: dense {rel[0]:.2f}"
    assert rel[2] >= 1.9 and fpd[2] >= 1.8, f"seed {seed}: 1-S = {rows[2].density:.2f}: {rel[2]:.2f}, {fpd[2]:.2f}"
    assert rel.max() >= 2.5, f"seed {seed}: max {rel.max():.2f}"
    assert (rel[-3:] >= 2.0).all() and (rel[-3:] < fpd[-3:]).all()
    assert torch.corrcoef(torch.stack([rel, fpd]))[0, 1] >= 0.7


def test_lesson_figure_maker_draws_the_three_figures(tmp_path, monkeypatch):
    from autograder.lessons import get_lesson

    # Short runs: the figures at full length are the experiments' own tests. (train_sweep's default steps are bound
    # when it is defined: setting adversarial.DEFAULT_STEPS would leave the sweep at 10,000 steps.)
    record, train_sweep = dynamics.record, adversarial.train_sweep
    monkeypatch.setattr(dynamics, "record", lambda model, seed=0, device=None: record(model, steps=60, seed=seed, device=device))
    monkeypatch.setattr(adversarial, "train_sweep", lambda seed=0, device=None: train_sweep(steps=3, seed=seed, device=device))
    paths = get_lesson("07-dynamics-adversarial").module("figures").make(tmp_path)
    assert [p.name for p in paths] == ["energy_levels.png", "correlated_stages.png", "vulnerability.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)
