"""`supercourse.experiments.disentanglement` (lesson 12's reproduce target): its interface and what `run` writes.

The science the study measures is asserted in tests/test_disentanglement.py (across seeds); here the recipe's
constants, the tables, the read-out as a toy model, and one short end-to-end run through ``run()``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from rich.console import Console

from supercourse import disentanglement as dis
from supercourse.experiments import ExperimentResult
from supercourse.experiments import disentanglement as exp
from supercourse.model import ToyModel


def test_interface_constants():
    assert exp.NAME == "disentanglement" and exp.DESCRIPTION
    assert exp.DEFAULT_STEPS == exp.VAE_STEPS and exp.DEFAULT_SEED == 0
    assert exp.CODE_SAMPLES == 200_000  # the independent figures' sample size
    assert set(exp.INDEPENDENT) == {c.name for c in dis.code_suite(10, seed=0)}
    assert exp.SIM_K == round(exp.SIM_FEATURES * exp.SIM_DENSITY)
    assert exp.make_model(seed=0).n_instances == len(exp.DENSITIES) == 1  # the experiment interface
    assert exp.instance(exp.ROTATION_BETA, exp.ROTATION_DENSITY) < len(exp.BETAS)  # the scan rotates a sparse VAE


def test_grid_layout():
    vae = exp.make_vae(seed=0)
    assert vae.n_instances == len(exp.BETAS) * len(exp.VAE_DENSITIES)
    for p in exp.VAE_DENSITIES:
        for b in exp.BETAS:
            k = exp.instance(b, p)
            assert float(vae.beta[k]) == pytest.approx(b) and float(vae.density[k]) == pytest.approx(p)


def test_the_readout_is_a_toy_model():
    model = exp.make_model()
    assert isinstance(model, ToyModel) and model.W.shape == (1, 2, 5)
    v = dis.sparse_factors(100, 5, 0.05, torch.Generator().manual_seed(0), dtype=torch.float32)
    with torch.no_grad():
        out = model(v[:, None, :])[:, 0]
    assert torch.allclose(out, dis.readout_code(v, dis.polygon(5, dtype=torch.float32), dis.READOUT_BIASES[-1]).float(), atol=1e-6)
    assert len(exp.summary(model)) == 1


def test_codes_table_reads_the_rows():
    rows = exp.measure_codes(5_000, seed=0)
    assert [r["code"] for r in rows] == list(exp.INDEPENDENT)
    console = Console(record=True, width=140)
    console.print(exp.codes_table(rows, "t"))
    text = console.export_text()
    assert "rotated 45°" in text and f"{rows[2]['mig']:.3f}" in text and "0.177" in text


def test_rotation_scan_of_a_briefly_trained_vae():
    vae = exp.make_vae(seed=1)
    exp.train_vae(vae, steps=30, seed=1)
    scan = exp.rotation_scan(vae, seed=1, n_samples=512)
    assert scan["angles"].shape == scan["gaussian"].shape == scan["laplace"].shape == scan["mig"].shape
    assert float(scan["gaussian"].abs().max()) < 1e-4  # nats (float32 rounding)
    assert float(scan["laplace"].abs().max()) > 1e-3
    assert scan["gaussian"][0] == 0 and scan["laplace"][0] == 0


@pytest.mark.slow
def test_run_writes_everything(tmp_path, monkeypatch):
    monkeypatch.setattr(exp, "CODE_SAMPLES", 20_000)
    monkeypatch.setattr(exp, "SIM_SAMPLES", 4_000)
    monkeypatch.setattr(exp, "LATENT_SAMPLES", 4_000)
    console = Console(record=True, width=120)
    result = exp.run(tmp_path / "out", steps=100, device="cpu", seed=0, console=console)
    assert isinstance(result, ExperimentResult) and result.name == exp.NAME and result.steps == 100
    out = tmp_path / "out"
    names = {"codes", "metrics", "similarity", "latents", "latent_grid", "rotation"}
    assert set(result.figures) == names
    for name in names:
        assert (out / f"{name}.png").stat().st_size > 10_000
    text = console.export_text()
    for stage in ("[1/4]", "[2/4]", "[3/4]", "[4/4]"):
        assert stage in text  # progress
    assert "read-out b=-0.31" in text and "SAE A vs SAE B" in text and "rotating" in text  # the tables
    summary = json.loads((out / "summary.json").read_text())
    # the shared template's keys (supercourse.experiments.Run), and the study in "table"
    assert {"experiment", "steps", "seed", "device", "wall_time", "seconds", "config", "table"} <= set(summary)
    assert summary["experiment"] == exp.NAME and summary["steps"] == 100 and summary["seed"] == 0
    assert {"codes", "similarity", "vae_training", "latent", "figures"} <= set(summary["seconds"])
    assert summary["config"] == json.loads(json.dumps(exp.config()))
    table = summary["table"]
    assert table["codes"]["n_samples"] == 20_000 and len(table["codes"]["rows"]) == len(exp.INDEPENDENT)
    assert {"cka_hidden", "cka_sae", "mmc_hidden", "mmc_sae"} <= set(table["similarity"])
    assert len(table["vae"]["rows"]) == len(exp.BETAS) * len(exp.VAE_DENSITIES) and table["vae"]["steps"] == 100
    assert table["rotation"]["max_abs_gaussian"] < 1e-4
    assert summary["models"]["readout"]["n_features"] == 5 and summary["main_model"] == "readout"
    from safetensors.torch import load_file

    params = load_file(str(out / "params.safetensors"))
    assert params["W"].shape == (1, 2, 5) and params["b_final"].shape == (1, 5)
    assert params["vae.directions"].shape == (15, 2, 5) and "vae.enc1_W" in params and "similarity.sae.W_d" in params
    assert result.artifacts["params"] == out / "params.safetensors"


def test_run_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="steps"):
        exp.run(tmp_path, steps=0)
    with pytest.raises(ValueError, match="seed"):
        exp.run(tmp_path, seed=-1)


# --------------------------------------------------------------------------- the lesson's prose


SLUG = "12-disentanglement"
MEASURED = Path(__file__).resolve().parents[1] / "solutions" / SLUG / "figures" / "summary.json"
"""The seed-0 study at the CPU defaults, written with the expected figures by the lesson's ``figures.py``:
the ``table`` of ``supercourse reproduce disentanglement``'s ``summary.json``."""


@pytest.fixture(scope="module")
def measured() -> dict:
    return json.loads(MEASURED.read_text(encoding="utf-8"))


def _span(values, digits: int = 2) -> str:
    return f"{min(values):.{digits}f} to {max(values):.{digits}f}"


def test_the_measured_summary_is_this_recipes(measured):
    # the file is the study at the lesson's defaults; its codes are recomputed here (the rest is trained:
    # the slow similarity test recomputes that part, and `supercourse reproduce` the whole)
    assert measured["seed"] == 0 and measured["vae"]["steps"] == exp.VAE_STEPS
    assert measured["codes"]["n_samples"] == exp.CODE_SAMPLES
    assert measured["similarity"]["k"] == exp.SIM_K and measured["vae"]["betas"] == list(exp.BETAS)
    assert len(measured["vae"]["rows"]) == len(exp.BETAS) * len(exp.VAE_DENSITIES)
    for got, want in zip(measured["codes"]["rows"], exp.measure_codes(exp.CODE_SAMPLES, seed=0)):
        assert got["code"] == want["code"]
        for key in ("mig", "dci", "dci_lasso"):
            assert got[key] == pytest.approx(want[key], abs=1e-9), (got["code"], key)


def test_the_prose_quotes_the_measured_numbers(measured):
    from notebook_prose import assert_quotes

    codes = {r["code"]: r for r in measured["codes"]["rows"]}
    readouts = [codes[f"read-out b={b:g}"] for b in dis.READOUT_BIASES]
    ident, rot, pent = codes["identity"], codes["rotated 45°"], codes["pentagon"]
    sim = measured["similarity"]
    rows = measured["vae"]["rows"]
    sparse = [rows[exp.instance(b, 0.05)] for b in exp.BETAS]  # AE, then beta = 0.01 .. 1
    kept = [rows[exp.instance(b, 0.05)] for b in exp.BETAS if b <= 0.3]  # the models that keep every factor
    vaes = kept[1:]
    collapsed = rows[exp.instance(1.0, 0.05)]
    mid = rows[exp.instance(1.0, 0.2)]
    dense = [rows[exp.instance(b, 1.0)] for b in exp.BETAS if b < 1]
    dense_ae = rows[exp.instance(0.0, 1.0)]
    rot_scan = measured["rotation"]
    mantissa, exponent = f"{rot_scan['max_abs_gaussian']:.1e}".split("e")
    quotes = [
        ("mig_expected", f"identity **{ident['mig']:.3f}** (0.996), rotated 45° **{rot['mig']:.3f}** (0.123), "
                         f"pentagon **{pent['mig']:.3f}** (0.177)."),
        ("mig_expected", f"MIG falls to {rot['mig']:.2f}"),
        ("mig_expected", f"The pentagon scores {pent['mig']:.2f}"),
        ("readout_expected", f"**The read-out's MIG rises with the bias**, {readouts[0]['mig']:.2f} to "
                             f"{readouts[-1]['mig']:.2f}"),
        ("readout_expected", f"The least-squares probe scores {readouts[0]['dci']:.2f} to {readouts[-1]['dci']:.2f}"),
        ("similarity_expected", f"**Identical content, CKA {sim['cka_hidden']:.2f}** (the independent figure: 0.16). "
                                f"A rotation of $h_A$ scores **{sim['cka_rotation']:.3f}**."),
        ("similarity_expected", f"share only CKA {sim['cka_features_hidden']:.2f}"),
        ("similarity_expected", f"correlates at best {sim['mmc_hidden']:.2f} with a neuron of B"),
        ("similarity_expected", f"(MMCS **{sim['mmcs_a']:.2f}** and **{sim['mmcs_b']:.2f}**)"),
        ("similarity_expected", f"mean max correlation **{sim['mmc_sae']:.2f}**), and CKA rises to **{sim['cka_sae']:.2f}**"),
        ("vae_expected", "| unexplained variance | " + " | ".join(f"{r['fvu']:.3f}" for r in sparse) + " |"),
        ("vae_expected", "| KL (nats per input) | | " + " | ".join(f"{r['kl']:.2f}" for r in sparse[1:]) + " |"),
        ("vae_expected", "| factors represented | " + " | ".join(str(r["represented"]) for r in sparse) + " |"),
        ("vae_expected", "| $\\sum_i D_i$ | " + " | ".join(f"{r['sum_dimensionality']:.2f}" if r["represented"] else "0"
                                                         for r in sparse) + " |"),
        ("vae_expected", "| MIG | " + " | ".join(f"{r['mig']:.3f}" for r in sparse) + " |"),
        ("vae_expected", "| SAE MMCS | " + " | ".join(f"{r['sae_mmcs']:.2f}" for r in kept) + " | |"),
        ("vae_expected", "the five $D_i$ lie between "
                         + _span([d for r in vaes for d in r["dimensionality"]]).replace(" to ", " and ")),
        ("vae_expected", f"the autoencoder's are less even ({_span(sparse[0]['dimensionality'])})"),
        ("vae_expected", f"MIG is low everywhere ({_span([r['mig'] for r in kept], 3)})"),
        ("vae_expected", f"(MMCS {_span([r['sae_mmcs'] for r in kept])}, like lesson 9's pentagon"),
        ("vae_expected", f"the MIG of its latents is {_span([r['sae_mig'] for r in kept])}"),
        ("vae_expected", f"KL {collapsed['kl']:.2f}, nothing reconstructed (unexplained variance {collapsed['fvu']:.2f})"),
        ("vae_expected", f"still scores MIG {collapsed['mig']:.2f}"),
        ("vae_expected", f"β = 1 keeps {mid['represented']} factors (unexplained variance {mid['fvu']:.2f})"),
        ("vae_expected", f"(unexplained variance {_span([r['fvu'] for r in dense])} below β = 1, against "
                         f"{_span([r['fvu'] for r in kept])} when sparse)"),
        ("vae_expected", f"({100 * min(dense_ae['factor_fvu']):.0f}% to {100 * max(dense_ae['factor_fvu']):.0f}% "
                         "missing in the autoencoder)"),
        ("rotation_expected", f"at most ${mantissa} \\times 10^{{{int(exponent)}}}$ nats"),
        ("rotation_expected", f"by up to {rot_scan['laplace_range']:.3f} nats"),
        ("rotation_expected", f"swings between {rot_scan['mig_min']:.2f} and {rot_scan['mig_max']:.2f}"),
        ("summary", f"| MIG / DCI-D, identity code, n = m = 2 | 0.996 / 1.000 | {ident['mig']:.3f} / {ident['dci']:.3f} |"),
        ("summary", f"| MIG / DCI-D, rotated 45° | 0.123 / 0.000 | {rot['mig']:.3f} / {abs(rot['dci']):.3f} |"),
        ("summary", f"| MIG / DCI-D, pentagon n = 5, m = 2 | 0.177 / 0.109 | {pent['mig']:.3f} / {pent['dci']:.3f}"),
        ("summary", "| read-out MIG, b = 0, -0.1, -0.2, -0.31 | 0.089, 0.232, 0.365, 0.538 | "
                    + ", ".join(f"{r['mig']:.3f}" for r in readouts) + " |"),
        ("summary", f"{min(r['dci_lasso'] for r in readouts):.3f} throughout with a lasso probe; "
                    + ", ".join(f"{r['dci']:.2f}" for r in readouts) + " with least squares"),
        ("summary", f"| linear CKA, same features, random 100 -> 20 maps | 0.16 | {sim['cka_hidden']:.2f} |"),
        ("summary", f"| linear CKA, a pure rotation | 1.00 | {sim['cka_rotation']:.3f} |"),
        ("summary", f"| {sim['cka_sae']:.2f} (mean max correlation {sim['mmc_hidden']:.2f} -> {sim['mmc_sae']:.2f}) |"),
        ("summary", f"(ΣD_i {_span([r['sum_dimensionality'] for r in kept]).replace(' to ', '-')})"),
        ("summary", f"score CKA {sim['cka_hidden']:.2f}; SAEs on each raise it to {sim['cka_sae']:.2f}"),
        ("summary", f"MIG swings from {rot_scan['mig_min']:.2f} to {rot_scan['mig_max']:.2f}"),
        ("summary", f"with a lasso probe at every bias, {readouts[0]['dci']:.2f} to {readouts[-1]['dci']:.2f} with least squares"),
    ]
    # the read-out's interference at b = 0, measured on the lesson's samples
    readout = next(c for c in dis.code_suite(exp.CODE_SAMPLES, seed=0) if c.name == "read-out b=0")
    on = readout.codes > 0
    fires = float(on.double().mean())
    own_off = float((on & (readout.factors == 0)).double().sum() / on.double().sum())
    quotes.append(("readout_expected", f"a code fires on {100 * fires:.0f}% of the inputs, and on {100 * own_off:.0f}% "
                                       "of those its own factor is off"))
    assert_quotes(SLUG, quotes)
