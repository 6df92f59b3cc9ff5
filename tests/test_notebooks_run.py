"""Every solution notebook runs end to end on the CPU at its default size, and every check passes.

Every cell runs at its CPU size (``SCALE = "cpu"``: the same models, sweeps, restarts, batches and
figures), but the optimizer steps are capped: each top-level ``*STEPS = sized(...)`` is followed by
``*STEPS = min(*STEPS, STEP_CAP)`` (``*EPOCHS``: ``EPOCH_CAP``). What this proves is that every cell
runs, writes nothing to stderr, and that every check cell passes on the solution; the science at full
length is proven by the experiment tests (``tests/test_experiment_*.py``), which run the same library code
the notebooks call at the lessons' own step counts, and by each lesson's reference numbers
(``solutions/NN-slug/figures/``, drawn at full length and quoted by the prose, checked by the lesson's tests).
"""

from __future__ import annotations

import ast
import re
import time

import nbformat
import pytest
from nbclient import NotebookClient

from autograder.build import lesson_slugs
from autograder.notebook import is_check_cell
from lesson_tools import solution_path

pytestmark = pytest.mark.slow

STEP_CAP = 20
"""Enough steps for every cell after a training cell to have a trained model to read (measured: the 12
notebooks took 282 s of test time at 60 steps and 204 s at 20, three at once; lesson 07's optimality check draws
steps x batch inputs, so it shrinks with the cap)."""
EPOCH_CAP = 1
_CAPPED = re.compile(r"[A-Z0-9_]*(STEPS|EPOCHS)")


def cap_steps(source: str) -> tuple[str, list[str]]:
    """``source`` with every top-level ``NAME = sized(...)`` for a step or epoch count capped; and the names."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython syntax (magics): such a cell sets no step count
        return source, []
    lines = source.splitlines()
    capped = []
    for node in reversed(tree.body):
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Call) and getattr(node.value.func, "id", None) == "sized"):
            continue
        name = node.targets[0].id
        match = _CAPPED.fullmatch(name)
        if not match:
            continue
        cap = EPOCH_CAP if match.group(1) == "EPOCHS" else STEP_CAP
        lines.insert(node.end_lineno, f"{name} = min({name}, {cap})  # test_notebooks_run: capped")
        capped.append(name)
    return "\n".join(lines), capped


def test_cap_steps_caps_step_counts_only():
    src = ("SCALE = 'cpu'\nSTEPS = sized(SCALE, cpu=10_000,\n              paper=20_000)\nLR = sized(SCALE, cpu=1e-2, paper=1e-3)\n"
           "EPOCHS = sized(SCALE, cpu=3, paper=10)\n%matplotlib inline\n")
    assert cap_steps(src) == (src, [])  # a magic: left alone
    out, names = cap_steps(src.replace("%matplotlib inline\n", ""))
    assert sorted(names) == ["EPOCHS", "STEPS"]
    ns = {"sized": lambda scale, cpu, paper: cpu}
    exec(out, ns)
    assert (ns["STEPS"], ns["EPOCHS"], ns["LR"]) == (STEP_CAP, EPOCH_CAP, 1e-2)


def test_every_lesson_caps_its_steps():
    """The cap reaches every lesson: each names its step counts ``*STEPS = sized(...)``."""
    for slug in lesson_slugs():
        nb = nbformat.read(solution_path(slug), as_version=4)
        assert any(cap_steps(c.source)[1] for c in nb.cells if c.cell_type == "code"), slug


@pytest.mark.parametrize("slug", lesson_slugs())
def test_solution_runs_end_to_end(slug, monkeypatch):
    for var in ("SUPERCOURSE_GRADING", "NBGRADER_EXECUTION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    path = solution_path(slug)
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = cap_steps(cell.source)[0]
    start = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    elapsed = time.perf_counter() - start
    for cell in nb.cells:
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error" or o.get("name") == "stderr"]
        assert not errors, f"cell failed or wrote to stderr:\n{cell.source[:300]}\n{errors[0]}"
        if is_check_cell(cell):  # the verdict shows once, as HTML (its score is the cell's value)
            html = "".join(o.get("data", {}).get("text/html", "") for o in cell.outputs if o.output_type == "execute_result")
            assert "[PASS]" in html, f"{cell.metadata.nbgrader['grade_id']}: {html[:500]}"
    print(f"{slug}: {elapsed:.0f} s")
