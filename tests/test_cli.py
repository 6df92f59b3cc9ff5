"""The ``supercourse`` command line: reproduce, doctor, optional commands, one-line errors."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest
import torch

from supercourse import __version__, cli, doctor


def subcommands(parser: argparse.ArgumentParser) -> set[str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(action.choices)


def assert_one_line_error(err: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("supercourse: error: ")
    assert "Traceback" not in err


def test_reproduce_basic_results_writes_figures_and_prints_tables(tmp_path, capsys):
    out = tmp_path / "br"
    assert cli.main(["reproduce", "basic-results", "--steps", "300", "--out", str(out)]) == 0
    for name in ("feature_bars", "gram", "training_curves"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    captured = capsys.readouterr()
    assert "linear model (n=20, m=5, 300 steps)" in captured.out
    assert "ReLU output model" in captured.out
    assert "1-S" in captured.out and "0.003" in captured.out
    assert str(out / "gram.png") in captured.out
    assert captured.err == ""
    # Every file it leaves is written like any other: the umask decides (params.safetensors included).
    probe = tmp_path / "probe"
    probe.write_text("")
    expected = probe.stat().st_mode & 0o777
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()}
    assert {"params.safetensors", "summary.json", cli.SUMMARY_FILE} <= set(modes)
    assert set(modes.values()) == {expected}, modes


def test_reproduce_help_names_the_files_it_writes(capsys):
    assert cli.main(["reproduce", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for name in (cli.SUMMARY_FILE, "summary.json", "params.safetensors"):
        assert name in text, name
    assert "table.txt" not in text


def test_reproduce_defaults_to_out_name_and_the_experiments_steps(tmp_path, monkeypatch, capsys):
    from supercourse.experiments import intro

    seen = {}

    def fake_run(out_dir, steps, device, seed, console):
        seen.update(out_dir=out_dir, steps=steps, device=device, seed=seed)
        from supercourse.experiments import ExperimentResult

        return ExperimentResult(name="intro", models={}, histories={}, summaries={})

    monkeypatch.setattr(intro, "run", fake_run)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["reproduce", "intro"]) == 0
    assert str(seen["out_dir"]) == os.path.join("out", "intro")
    assert seen["steps"] == intro.DEFAULT_STEPS and seen["seed"] == intro.DEFAULT_SEED
    assert cli.main(["reproduce", "intro", "--seed", "7", "--device", "cpu", "--steps", "12"]) == 0
    assert (seen["seed"], seen["steps"], str(seen["device"])) == (7, 12, "cpu")


BAD_ARGS = [
    (["reproduce", "nope"], "invalid choice: 'nope'"),
    (["reproduce", "intro", "--steps", "0"], "--steps: must be a positive integer, got 0"),
    (["reproduce", "intro", "--steps", "-3"], "--steps"),
    (["reproduce", "intro", "--steps", "many"], "--steps"),
    (["reproduce", "intro", "--seed", "-1"], "--seed"),
    (["reproduce", "intro", "--device", "tpu"], "device must be"),
    (["reproduce"], "NAME"),
    ([], "COMMAND"),
    (["frobnicate"], "invalid choice"),
    (["doctor", "--seconds", "-1"], "--seconds"),
]


@pytest.mark.parametrize("argv, message", BAD_ARGS, ids=[" ".join(a) or "<none>" for a, _ in BAD_ARGS])
def test_bad_arguments_give_one_line_and_exit_2(argv, message, capsys, tmp_path):
    assert cli.main([*argv, "--out", str(tmp_path)] if argv[:2] == ["reproduce", "intro"] else argv) == 2
    captured = capsys.readouterr()
    assert_one_line_error(captured.err)
    assert message in captured.err
    assert captured.out == ""


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_missing_cuda_from_a_subprocess(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "supercourse.cli", "reproduce", "intro", "--device", "cuda", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert_one_line_error(proc.stderr)
    assert "CUDA" in proc.stderr
    assert not any(tmp_path.iterdir())  # failed before writing anything


def command_entry_points(monkeypatch, *modules: str) -> None:
    """Make ``modules`` (each with a ``register``) the only installed ``supercourse.commands`` entry points."""
    from importlib import metadata

    points = [metadata.EntryPoint(m.rsplit(".", 1)[-1], f"{m}:register", cli.COMMAND_GROUP) for m in modules]
    monkeypatch.setattr(cli.metadata, "entry_points", lambda group=None: points if group == cli.COMMAND_GROUP else [])


def fake_command(monkeypatch, func) -> None:
    """Register a ``fake`` subcommand running ``func`` through the entry-point hook."""
    module = type(sys)("supercourse_fake_commands")
    module.register = lambda subparsers: subparsers.add_parser("fake").set_defaults(func=func)
    monkeypatch.setitem(sys.modules, "supercourse_fake_commands", module)
    command_entry_points(monkeypatch, "supercourse_fake_commands")


def test_library_errors_from_a_command_become_one_line(monkeypatch, capsys):
    def broken(args):
        raise TypeError("W must be a torch.Tensor, got list")

    fake_command(monkeypatch, broken)
    assert cli.main(["fake"]) == 2
    assert capsys.readouterr().err == "supercourse: error: W must be a torch.Tensor, got list\n"


def test_systemexit_with_a_message_becomes_one_line(monkeypatch, capsys):
    def exits(args):
        raise SystemExit("--device cuda: no GPU\nhere")

    fake_command(monkeypatch, exits)
    assert cli.main(["fake"]) == 2
    assert capsys.readouterr().err == "supercourse: error: --device cuda: no GPU here\n"


def test_doctor_prints_environment_and_throughput(capsys):
    assert cli.main(["doctor", "--seconds", "0.2", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    for text in ("torch", torch.__version__, "CUDA", "MPS", "training will use", "CPU threads", "steps/s", "instance-steps/s"):
        assert text in out


def test_doctor_probe_and_environment_functions():
    probe = doctor.probe_throughput(0.1, device="cpu")
    assert probe.device == "cpu" and probe.n_instances == 7 and probe.steps >= 10
    assert probe.instance_steps_per_second == pytest.approx(7 * probe.steps_per_second)
    rows = dict(doctor.environment())
    assert "torch" in rows and "training will use" in rows
    from autograder.sandbox import sandbox_available

    assert rows["grading sandbox"].startswith("yes" if sandbox_available() else "no: ")
    with pytest.raises(ValueError, match="seconds"):
        doctor.probe_throughput(0)


def test_doctor_without_probe(capsys):
    assert cli.main(["doctor", "--seconds", "0"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "steps/s" not in out


def test_threads_option_sets_torchs_cpu_threads(capsys):
    before = torch.get_num_threads()
    try:
        assert cli.main(["--threads", "2", "doctor", "--seconds", "0"]) == 0
        assert torch.get_num_threads() == 2
        assert f"2 / {os.cpu_count()}" in capsys.readouterr().out
    finally:
        torch.set_num_threads(before)
    assert cli.main(["--threads", "0", "doctor"]) == 2
    assert_one_line_error(capsys.readouterr().err)


def test_version_and_help(capsys):
    assert cli.main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out
    assert cli.main(["reproduce", "--help"]) == 0
    out = capsys.readouterr().out
    assert "basic-results" in out and "intro" in out and "--steps" in out


def test_parser_registers_builtin_commands():
    assert {"reproduce", "doctor"} <= subcommands(cli.build_parser())


def test_command_entry_points_are_skipped_when_missing(monkeypatch, capsys):
    command_entry_points(monkeypatch, "supercourse_no_such_module", "supercourse.no_such_module")
    assert subcommands(cli.build_parser()) == {"reproduce", "doctor"}
    assert capsys.readouterr().err == ""


def test_command_entry_points_are_registered_when_present(monkeypatch):
    fake_command(monkeypatch, lambda args: 3)
    assert "fake" in subcommands(cli.build_parser())
    assert cli.main(["fake"]) == 3


def test_a_broken_entry_point_warns_but_the_cli_works(monkeypatch, capsys, tmp_path):
    (tmp_path / "supercourse_exploding.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "supercourse_exploding", raising=False)
    command_entry_points(monkeypatch, "supercourse_exploding")
    assert subcommands(cli.build_parser()) == {"reproduce", "doctor"}
    err = capsys.readouterr().err
    assert err.startswith("supercourse: warning: supercourse_exploding:register could not be imported (RuntimeError: boom)")
    assert len(err.strip().splitlines()) == 1
