"""Lesson 10's expected figures, drawn with the reference library from one sweep.

* ``my_sweep.png`` the kept models at T = 3, 5, 8, 15: training points' hidden vectors and feature columns
  (what the learner's own sweep draws);
* ``test_loss.png`` test and training loss against T, T = 3 ... 2,000, with the zero model's 1;
* ``dimensionality.png`` every training point's and every feature's dimensionality against T;
* ``geometry.png`` points and features at T = 3, 5, 8, 100, 1,000, 2,000;
* ``reference_numbers.json`` the numbers the lesson's prose quotes (:func:`numbers`), checked by the
  lesson's tests against the notebook.

All from :func:`supercourse.experiments.double_descent.run_sweep` at the CPU recipe, seed 0: the same run as
``supercourse reproduce double-descent``. About a minute of CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

from supercourse import memorization as mem
from supercourse import memorization_plots as mplots
from supercourse.experiments import double_descent
from supercourse.experiments._run import save_figure

__all__ = ["make", "draw", "numbers", "SEED", "MY_SIZES", "NUMBERS_FILE"]

SEED = 0
MY_SIZES = (3, 5, 8, 15)
"""The sizes of the learner's own sweep in the notebook (at SCALE = "cpu")."""
NUMBERS_FILE = "reference_numbers.json"


def numbers(result: mem.SweepResult) -> dict:
    """The quoted numbers: :func:`double_descent.headline` plus the rows at :data:`MY_SIZES`, as plain JSON."""
    head = double_descent.headline(result)
    rows = {r["T"]: r for r in result.rows()}
    return {
        "headline": {k: ({str(t): v for t, v in val.items()} if isinstance(val, dict) and k not in ("first", "last", "peak")
                         else val) for k, val in head.items()},
        "rows": {str(T): rows[T] for T in rows},
        "seconds": result.seconds,
        "config": {k: v for k, v in result.config.items() if k != "buckets"},
    }


def draw(result: mem.SweepResult, out_dir: Path) -> list[Path]:
    """Write the four PNGs and :data:`NUMBERS_FILE` of ``result`` into ``out_dir``."""
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = result.rows()
    sizes = result.sizes.tolist()
    mine = [T for T in MY_SIZES if T in sizes]
    shown = [T for T in double_descent.GEOMETRY_SIZES if T in sizes]
    figures = {
        "my_sweep": mplots.geometry_panels(mine, [result.hidden(T) for T in mine], result.W[[result.index(T) for T in mine]],
                                           title="kept models: training points (top) and features (bottom)"),
        "test_loss": mplots.loss_curve(rows),
        "dimensionality": mplots.dimensionality_curve(sizes, result.data_dimensionality(), result.feature_dimensionality(),
                                                      rows, n_hidden=int(result.W.shape[1])),
        "geometry": mplots.geometry_panels(shown, [result.hidden(T) for T in shown], result.W[[result.index(T) for T in shown]],
                                           title="memorizing: the points get the dimensions; generalizing: the features do"),
    }
    paths = []
    for name, fig in figures.items():
        paths.append(save_figure(fig, out_dir / f"{name}.png"))
        plt.close(fig)
    path = out_dir / NUMBERS_FILE
    path.write_text(json.dumps(numbers(result), indent=1, default=float) + "\n")
    return paths + [path]


def make(out_dir: Path) -> list[Path]:
    """Train the CPU recipe's sweep (seed 0) and draw it."""
    return draw(double_descent.run_sweep(seed=SEED, progress=False), out_dir)
