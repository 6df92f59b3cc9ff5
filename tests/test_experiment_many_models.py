"""`supercourse reproduce many-models`: what `run` writes, at sizes small enough for a unit test.

The science of the full-size study is asserted in ``tests/test_contexts.py``; here the recipe is shrunk
(N=60 inputs, two settings, a few tasks, a small MLP) so that `run` finishes in seconds.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
import torch
from rich.console import Console
from safetensors.torch import load_file

from supercourse.experiments import many_models as mm

from artifacts import assert_artifacts


def quiet_console() -> Console:
    return Console(file=io.StringIO(), width=120)


@pytest.fixture
def small(monkeypatch):
    monkeypatch.setattr(mm, "N_INPUT", 60)
    monkeypatch.setattr(mm, "DIMS", (3, 6))
    monkeypatch.setattr(mm, "MAX_TASKS", {3: 5, 6: 3})
    monkeypatch.setattr(mm, "SETTINGS", (mm.Setting("no contexts", "none"), mm.Setting("binary", "binary"),
                                         mm.Setting("rotation, powers of one", "rotation", powers=True)))
    monkeypatch.setattr(mm, "DIGITS_TASKS", 3)
    monkeypatch.setattr(mm, "DIGITS_SIZES", (64, 16, 10))
    monkeypatch.setattr(mm, "DIGITS_KINDS", ("none", "binary"))


def test_interface_constants():
    assert mm.NAME == "many-models" and mm.DEFAULT_STEPS == mm.STEPS_PER_TASK == 500 and mm.DEFAULT_SEED == 0
    assert (mm.N_INPUT, mm.N_OUT, mm.LR, mm.BATCH_SIZE) == (784, 10, 0.5, 64)
    assert mm.setting("binary").kind == "binary"
    with pytest.raises(ValueError, match="unknown setting"):
        mm.setting("ternary")


def test_registered():
    from supercourse.experiments import EXPERIMENTS

    assert EXPERIMENTS.get(mm.NAME) is mm, "register many_models in supercourse/experiments/__init__.py"


def test_run_writes_figures_params_and_summary(small, tmp_path):
    console = quiet_console()
    result = mm.run(tmp_path, steps=40, device="cpu", seed=3, console=console)
    names = {p.name for p in tmp_path.iterdir()}
    assert {"error_vs_tasks.png", "interference_fit.png", "forgetting.png", "digits.png",
            "params.safetensors", "summary.json"} <= names
    assert set(result.figures) == {"error_vs_tasks", "interference_fit", "forgetting", "digits"}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["experiment"] == "many-models" and summary["steps"] == 40 and summary["seed"] == 3
    rows = summary["table"]["toy"]
    assert {(r["setting"], r["d"]) for r in rows} == {(s.label, d) for s in mm.SETTINGS for d in mm.DIMS}
    assert all(len(r["errors"]) == mm.N_SEEDS for r in rows)
    assert set(summary["table"]["digits"]) == {"none", "binary"}
    assert summary["config"]["digits"]["epochs_per_task"] == 1  # round(5 * 40 / 500)
    tensors = load_file(str(tmp_path / "params.safetensors"))
    assert tensors["W"].shape == (mm.N_SEEDS, mm.N_OUT, 60) and tensors["b_final"].shape == (mm.N_SEEDS, mm.N_OUT)
    assert tensors["toy.rotation_powers_of_one.d6.W"].shape == (mm.N_SEEDS, mm.N_OUT, 60)
    assert tensors["digits.binary.weights.0"].shape == (mm.N_SEEDS, 16, 64)
    text = console.file.getvalue()
    assert "tasks learned in sequence" in text and "permuted digits" in text and "(K-1)d/N" in text


def test_seeded_runs_are_reproducible(small, tmp_path, monkeypatch):
    monkeypatch.setattr(mm, "write_figures", lambda *args: None)
    a = mm.run(tmp_path / "a", steps=20, device="cpu", seed=5, console=quiet_console())
    b = mm.run(tmp_path / "b", steps=20, device="cpu", seed=5, console=quiet_console())
    ta, tb = (load_file(str(r.artifacts["params"])) for r in (a, b))
    assert all(torch.equal(ta[k], tb[k]) for k in ta)


def test_run_rejects_bad_arguments_before_training(tmp_path):
    with pytest.raises(ValueError, match="steps must be a positive int"):
        mm.run(tmp_path, steps=0, console=quiet_console())
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        mm.run(tmp_path, seed=-1, console=quiet_console())


@pytest.mark.slow
def test_reproduce_command(tmp_path):
    # The whole target through the command line (its figures, parameters and the template's summary.json: the
    # generic artifact test leaves this target to here, as each run spends 40 s drawing the tasks).
    proc = subprocess.run(
        [sys.executable, "-m", "supercourse.cli", "reproduce", "many-models", "--out", str(tmp_path), "--steps", "10",
         "--seed", "2"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {p.name for p in tmp_path.iterdir()} == {
        "error_vs_tasks.png", "interference_fit.png", "forgetting.png", "digits.png",
        "params.safetensors", "summary.json", "summary.txt",
    }
    assert "task 1" in (tmp_path / "summary.txt").read_text(encoding="utf-8")
    assert_artifacts(tmp_path, "many-models", steps=10, seed=2)


def test_progress_shows_on_a_terminal(small, tmp_path, monkeypatch):
    monkeypatch.setattr(mm, "write_figures", lambda *args: None)
    console = Console(file=io.StringIO(), width=120, force_terminal=True)
    mm.run(tmp_path, steps=5, device="cpu", seed=0, console=console)
    text = console.file.getvalue()
    assert "toy task: contexts drawn, tasks trained" in text and "permuted digits: tasks trained" in text
