"""A newcomer's first hour (issue 12): install, doctor's advice, CLI help, the namespace trap, tables.

Items 1 (install/doctor), 3 (learners install no instructor tools), 7 (reproduce tables),
8 (CLI help in plain words) and 9 (running from the folder above the clone).
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from supercourse import doctor
from supercourse.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- 1. install that fits the machine


def test_quick_start_offers_cpu_and_cuda_torch():
    quick = README[README.index("## Quick start"):README.index("## For learners")]
    assert "python -m venv" in quick and "git clone" in quick
    assert doctor.CPU_WHEELS in quick  # PyTorch's CPU-only wheel index
    assert "cu1" in quick  # a CUDA wheel index as well


@pytest.mark.parametrize(
    "cuda_build, available, gpu, expect",
    [
        ("13.0", False, False, doctor.CPU_WHEELS),  # CUDA build, no GPU: get the small CPU build
        (None, False, True, "CPU-only build, so the GPU sits idle"),  # CPU build, GPU present
        ("13.0", False, True, "driver"),  # CUDA build, GPU present but unusable
        ("12.6", True, True, "uses the NVIDIA GPU"),
        (None, False, False, "the right build"),
    ],
)
def test_doctor_says_what_to_do(cuda_build, available, gpu, expect):
    (line,) = doctor.advice(cuda_build, available, gpu)
    assert expect in line


def test_doctor_table_has_advice(capsys):
    assert main(["doctor", "--seconds", "0"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "what to do" in out and "training will use" in out


# --------------------------------------------------------------------------- 3. learners get no instructor tools


def test_learners_install_no_nbgrader_instructors_and_tests_do():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = lambda reqs: {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower() for r in reqs}  # noqa: E731
    assert "nbgrader" not in names(project["dependencies"])
    assert "jupyterlab" in names(project["dependencies"])  # learners still get JupyterLab
    extras = project["optional-dependencies"]
    assert "nbgrader" in names(extras["instructor"])
    assert {"nbgrader", "playwright", "sphinx", "myst-nb"} <= names(extras["dev"])
    assert ".[instructor]" in README


def test_learner_commands_do_not_need_nbgrader():
    """start, check and the check cells work with nbgrader absent (it is not installed for learners)."""
    code = (
        "import sys; sys.modules['nbgrader'] = None\n"  # any import of nbgrader now fails
        "from supercourse.cli import build_parser\n"
        "import autograder, autograder.runner, autograder.notebook, autograder.workspace, autograder.render\n"
        "build_parser().parse_args(['start', 'x']); print('ok')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert proc.stdout.strip() == "ok", proc.stderr[-2000:]


# --------------------------------------------------------------------------- 7. reproduce tables


def test_summary_table_has_a_legend_and_no_negative_zero():
    from rich.console import Console

    from supercourse.experiments import SummaryRow, summary_table
    from supercourse.experiments._common import SUMMARY_LEGEND, fixed

    rows = [SummaryRow(0.1, 5, 2, ((0, 1),), -0.00004, 0.5, 0.01), SummaryRow(1.0, 5, 0, (), 0.00004, -0.0, 0.02)]
    buf = io.StringIO()
    Console(file=buf, width=200, color_system=None).print(summary_table(rows, "t"))
    text = " ".join(buf.getvalue().split())  # the legend is wrapped to the table's width
    for column, meaning in SUMMARY_LEGEND.items():
        assert f"{column}: {meaning}" in text
    assert "-0.000" not in text and "+0.000" not in text
    assert fixed(-0.0004) == "0.000" and fixed(-0.2, sign=True) == "-0.200" and fixed(0.2, sign=True) == "+0.200"


def test_phase_change_table_explains_every_column():
    from supercourse.experiments import phase_change

    source = Path(phase_change.__file__).read_text(encoding="utf-8")
    caption = source[source.index("caption="):source.index("caption_justify")]
    for column in ("points x restarts", "paper's average", "best restart", "best, far from triple pt",
                   "misses on boundary"):
        assert f"{column}:" in caption


def test_reproduce_writes_the_summary_file(tmp_path):
    out = tmp_path / "intro"
    assert main(["reproduce", "intro", "--out", str(out), "--steps", "30"]) == 0
    text = (out / "summary.txt").read_text(encoding="utf-8")
    assert "represented: features stored" in text and "figures:" in text


# --------------------------------------------------------------------------- 8. CLI help in plain words


def _helps():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.choices and "check" in a.choices)
    yield "supercourse", parser.format_help()
    for name, p in sub.choices.items():
        yield name, p.format_help()


def test_help_has_no_sphinx_markup_and_says_who_commands_are_for():
    helps = dict(_helps())
    for name, text in helps.items():
        assert not re.search(r":(func|mod|class|meth):|``", text), f"{name} --help:\n{text}"
    assert "For course authors" in helps["lessons"] and "For instructors" in helps["course"]
    assert "folder" in helps["check"] and "workspace" in helps["start"]


def test_device_error_is_plain():
    from supercourse.devices import pick_device

    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError) as err:
        pick_device("cuda")
    assert "None" not in str(err.value) and "leave the device unset" in str(err.value)


# --------------------------------------------------------------------------- 9. the folder above the clone


def test_folder_above_the_clone_is_detected(tmp_path):
    (tmp_path / "supercourse").symlink_to(ROOT, target_is_directory=True)  # like `git clone` makes
    code = "import supercourse\nfrom autograder import check"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=180)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: `import supercourse` finds the folder")
    assert "folder above it" in last and "restart the kernel" in last
    from autograder.environment import library_problem

    assert library_problem() is None  # here, in the clone, all is well


def test_doctor_notices_the_folder_above_the_clone(tmp_path, monkeypatch):
    (tmp_path / "supercourse" / "supercourse").mkdir(parents=True)
    (tmp_path / "supercourse" / "supercourse" / "__init__.py").write_text("")
    monkeypatch.chdir(tmp_path)
    rows = [value for what, value in doctor.environment() if what == "what to do"]
    assert any("folder above the clone" in value for value in rows)
