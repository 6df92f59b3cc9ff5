"""Every solution notebook runs end to end on the CPU at its default size, and every check passes."""

from __future__ import annotations

import time

import nbformat
import pytest
from nbclient import NotebookClient

from autograder.build import lesson_slugs
from autograder.notebook import is_check_cell
from lesson_tools import solution_path

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("slug", lesson_slugs())
def test_solution_runs_end_to_end(slug, monkeypatch):
    for var in ("SUPERCOURSE_GRADING", "NBGRADER_EXECUTION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    path = solution_path(slug)
    nb = nbformat.read(path, as_version=4)
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
