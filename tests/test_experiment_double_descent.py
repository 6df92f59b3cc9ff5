"""`supercourse reproduce double-descent`: the interface, what `run` writes, and (slow) the lesson's headline at the
CPU recipe.

Measured with the CPU recipe (n = 1,000, 1 - S = 0.01, m = 2, 5,000 steps, T = 3 ... 10,000, seed 0; the lesson
quotes it; about two minutes on two CPU cores): median D_X 0.540 / 0.400 / 0.256 at T = 3 / 5 / 8 (m/T = 0.667 /
0.400 / 0.250), training loss 0 up to T = 6, test loss 1.076 at T = 3 and 1.001-1.020 for T = 8-30, a bump to 1.36
at T = 300, 0.988 from T = 2,000 to 10,000 with five features in a pentagon (top feature dimensionality 0.310 at
T = 10,000).
"""

from __future__ import annotations

import json

import pytest
import torch
from rich.console import Console

from supercourse import memorization as mem
from supercourse.experiments import EXPERIMENTS
from supercourse.experiments import double_descent as dd


def quiet_console() -> Console:
    return Console(file=open("/dev/null", "w"), width=140)


def test_interface_and_recipes():
    assert dd.NAME == "double-descent" and dd.DESCRIPTION
    assert dd.DEFAULT_STEPS == 5_000 and dd.DEFAULT_SEED == 0
    cpu, paper = dd.recipe("cpu"), dd.recipe("paper")
    assert (cpu.n_features, cpu.density, cpu.n_hidden) == (1000, 0.01, 2)
    assert (paper.n_features, paper.density, paper.steps) == (10_000, 0.001, 50_000)
    assert cpu.steps == dd.DEFAULT_STEPS and paper.steps == 50_000
    assert cpu.sizes[0] == 3 and cpu.sizes[-1] >= 10_000 and paper.sizes[-1] >= 100_000  # the whole curve on a CPU
    assert list(cpu.sizes) == sorted(set(cpu.sizes))
    with pytest.raises(ValueError, match="scale"):
        dd.recipe("gpu")
    model = dd.make_model(seed=0)
    assert model.W.shape == (len(dd.SIZES), 2, 1000)


def test_discovered():
    assert EXPERIMENTS[dd.NAME] is dd


def test_crossover_and_take_over_read_the_rows():
    rows = [{"T": T, "data_dim_top": d, "feature_dim_top": f}
            for T, d, f in [(3, 0.6, 0.1), (10, 0.2, 0.05), (100, 0.02, 0.03), (300, 0.02, 0.01), (1000, 0.05, 0.3)]]
    assert dd.crossover(rows) == 1000  # 100 is passed back at 300
    assert dd.features_take_over(rows) == 1000
    assert dd.crossover(rows[:2]) is None


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("double-descent")
    return out, dd.run(out, steps=40, seed=3, console=quiet_console(), sizes=[3, 5, 40])


def test_run_writes_its_figures_summary_and_parameters(small_run):
    out, result = small_run
    assert {p.name for p in out.iterdir()} == {
        "geometry.png", "test_loss.png", "dimensionality.png", "summary.txt", "summary.json", "params.safetensors"}
    assert set(result.figures) == {"geometry", "test_loss", "dimensionality"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["experiment"] == "double-descent" and summary["steps"] == 40 and summary["seed"] == 3
    assert [row["T"] for row in summary["table"]] == [3, 5, 40]
    assert set(summary["headline"]) >= {"median_D_X", "test_loss", "first", "last", "crossover"}
    assert summary["config"]["sizes"] == [3, 5, 40] and summary["config"]["n_features"] == 1000
    assert "T" in (out / "summary.txt").read_text()
    from safetensors.torch import load_file

    params = load_file(str(out / "params.safetensors"))
    assert params["W"].shape == (3, 2, 1000) and params["b_final"].shape == (3, 1000)
    assert params["sizes"].tolist() == [3, 5, 40] and params["train_loss"].shape == (3, 3)
    # the kept training sets are saved: the kept model's loss on them is its training loss
    for s, T in enumerate([3, 5, 40]):
        data = mem.SparsePoints(params[f"data.T{T}.idx"], params[f"data.T{T}.val"], 1000)
        loss = mem.reconstruction_loss(params["W"][s : s + 1], params["b_final"][s : s + 1], data)[0]
        assert loss == pytest.approx(float(params["train_loss"][s, int(params["kept_seed"][s])]), abs=1e-5)
    kept = result.models["kept"]
    assert torch.equal(kept.W.detach(), params["W"])


def test_run_is_deterministic_and_checks_its_arguments(tmp_path, small_run, monkeypatch):
    _, first = small_run
    monkeypatch.setattr(dd, "write_figures", lambda *args: None)
    again = dd.run(tmp_path, steps=40, seed=3, console=quiet_console(), sizes=[3, 5, 40])
    assert torch.equal(first.models["kept"].W, again.models["kept"].W)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        dd.run(tmp_path, steps=0, console=quiet_console())


@pytest.mark.slow
def test_the_cpu_recipe_reaches_both_ends(tmp_path):
    """The whole CPU recipe (about two minutes on two CPU cores): memorizing at the start, a bump, generalizing at the
    end, T = 10,000."""
    result = dd.run(tmp_path, console=quiet_console())
    head = json.loads((tmp_path / "summary.json").read_text())["headline"]
    # memorizing: regular T-gons, each point m/T of a dimension, the whole budget of m = 2 spent
    for T in ("5", "8"):
        assert head["median_D_X"][T] == pytest.approx(head["m_over_T"][T], rel=0.15)
    assert 0.45 <= head["median_D_X"]["3"] <= 0.75  # a triangle has slack: 1/2 to 2/3
    assert all(abs(v - 2.0) < 0.1 for v in head["sum_D_X"].values())
    assert all(head["train_loss"][T] < 0.01 for T in ("3", "4", "5", "6"))
    assert all(head["test_loss"][T] >= 0.99 for T in ("3", "4", "5", "6", "8", "10", "15", "20", "30"))
    # the bump: the highest test loss lies between the memorizing and the generalizing end, above the zero model
    first, last, peak = head["first"], head["last"], head["peak"]
    assert last["T"] >= 10_000
    assert 30 < peak["T"] < 1000 and peak["test_loss"] > 1.1, peak
    # generalizing: below the zero model and every memorizing size; the features own the dimensions
    assert last["test_loss"] < 0.995 and last["test_loss"] < min(head["test_loss_8_30"])
    assert first["data_dim_top"] > 4 * first["feature_dim_top"] and last["feature_dim_top"] > 4 * last["data_dim_top"]
    assert last["feature_dim_top"] > 0.2 and last["represented"] >= 3, last
    assert head["crossover"] is not None and head["features_take_over"] is not None
    assert head["crossover"] <= peak["T"] < head["features_take_over"]
    assert result.wall_time > 0
