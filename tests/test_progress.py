"""Training progress reaches the last step and leaves one final line (issue 12, item 5)."""

from __future__ import annotations

import pytest
import torch

import supercourse as sc
from supercourse import training


class _Handle:
    def __init__(self, shown: list) -> None:
        self.shown = shown

    def update(self, obj, raw=False):
        assert raw
        self.shown.append(obj)


@pytest.fixture
def not_grading(monkeypatch):
    monkeypatch.delenv("SUPERCOURSE_GRADING", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)


def test_jupyter_progress_ends_with_one_final_line(monkeypatch, not_grading):
    import IPython.display

    shown: list[dict] = []

    def display(obj, raw=False, display_id=False):
        assert raw and display_id
        shown.append(obj)
        return _Handle(shown)

    monkeypatch.setattr(training, "_in_jupyter", lambda: True)
    monkeypatch.setattr(IPython.display, "display", display)
    model = sc.ToyModel(5, 2, n_instances=3, feature_probability=0.1)
    history = sc.train(model, steps=137, seed=0, progress=True)
    final = shown[-1]
    assert final["text/plain"].startswith("training 3 instance(s) on cpu: 137/137 steps, loss ")
    assert final["text/plain"].endswith(" s")
    loss = float(final["text/plain"].split("loss ")[1].split(",")[0])
    assert loss == pytest.approx(history.losses[-1].sum().item(), rel=1e-3)
    assert "<progress" not in final["text/html"]  # the saved notebook keeps a line, not a bar or a widget
    assert all("application/vnd.jupyter.widget-view+json" not in o for o in shown)


def test_terminal_bar_reaches_the_last_step(monkeypatch, not_grading):
    monkeypatch.setattr(training, "_in_jupyter", lambda: False)
    bar = training._Progress(True, 2000, "training")
    for step in range(10, 2000, 10):  # the training loop's last update may come before the last step
        bar.update(step, torch.tensor([0.5]))
    bar.update(2000, torch.tensor([0.25]))
    bar.close()
    task = bar.bar.tasks[0]
    assert task.completed == 2000 and task.finished and task.fields["loss"] == "0.25"


def test_stopped_run_says_so(monkeypatch, not_grading):
    monkeypatch.setattr(training, "_in_jupyter", lambda: False)
    bar = training._Progress(False, 100, "training")
    bar.completed = 40
    assert "stopped at 40/100 steps" in bar.line(final=True)
    assert "40/100 steps" in bar.line(final=False) and "stopped" not in bar.line(final=False)


@pytest.mark.slow
def test_executed_notebook_saves_the_final_line(tmp_path, not_grading):
    """A real kernel (nbclient): the saved output is the final line, not an empty widget."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import supercourse as sc\n"
        "m = sc.ToyModel(5, 2, n_instances=2)\n"
        "_ = sc.train(m, steps=300, seed=0)"
    )]
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[0].outputs
    kinds = [o.output_type for o in outputs]
    assert kinds == ["display_data"], outputs
    data = outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" not in data
    assert "300/300 steps, loss " in data["text/plain"] and "<progress" not in data["text/html"]


def test_show_progress_turns_bars_on_for_callers_that_passed_progress_false(monkeypatch, not_grading):
    assert not training._progress_wanted(False)
    with training.show_progress():
        assert training._progress_wanted(False)
        with training.show_progress():
            assert training._progress_wanted(False)
        assert training._progress_wanted(False), "nested blocks: the outer one still holds"
        monkeypatch.setenv("SUPERCOURSE_GRADING", "1")
        assert not training._progress_wanted(False), "never while autograding"
    monkeypatch.delenv("SUPERCOURSE_GRADING")
    assert not training._progress_wanted(False) and training._progress_wanted(True)
