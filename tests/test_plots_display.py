"""Figures returned by supercourse.plots display as a cell's value in IPython, whatever the backend."""

import torch


def test_returned_figure_renders_as_png_in_ipython():
    from IPython.core.interactiveshell import InteractiveShell

    from supercourse import plots

    shell = InteractiveShell.instance()
    try:
        fig = plots.feature_bars(torch.randn(2, 5, 20))
        data, _ = shell.display_formatter.format(fig)
        assert "image/png" in data and data["image/png"]
    finally:
        InteractiveShell.clear_instance()
