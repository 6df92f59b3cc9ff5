"""Correlated pairs collapse onto their principal component as density grows (lesson 06).

Three correlated pairs in m=2 (uniform importance) across densities. Sparse,
the pairs sit side by side on a hexagon (:mod:`.correlated`). As the features
get denser, interference costs more, and one pair after another stops
storing its two features and stores their sum, the principal component
``(x_a + x_b)/sqrt(2)``, in one direction: both partners' columns of ``W``
point the same way (:func:`supercourse.correlation.collapsed_sets`). The table
counts the collapsed sets at each density: none when sparse, then one, two,
all three (the paper's figure, read approximately: one set from about 1-S =
0.05-0.15, all by 0.25-0.5). Measured (seeds 0 and 1): 0, 0, 0, 0, 1, 2, 2, 3
at the eight :data:`DENSITIES`.

The best restart alone is not enough here: at 1-S = 0.005 and 0.01 it was a
local optimum 1.7% and 2.8% worse than another density's configuration on
its own data (seed 0), and the restarts alone counted 0, 1, 1, 1, 1, 2, 2, 3.
Every density is therefore checked against the other densities' models and
polished (:mod:`._optimum`); the table shows both counts.

``supercourse reproduce collapse`` writes ``directions.png``, ``collapse.png``
(collapsed sets against density), ``params.safetensors`` and ``summary.json`` (with the check's
gaps under ``optimality``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..correlation import SetModel, collapsed_sets, partner_cosines
from ..correlation_plots import collapse_curve
from ..training import History
from . import correlated
from ._common import ExperimentResult, SummaryRow, summarize
from ._correlated import BATCH_SIZE, LR, POLISH_STEPS, RESTARTS, make_set_model, train_sets
from ._optimum import report
from ._run import Run

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

NAME = "collapse"
DESCRIPTION = "3 correlated pairs, m=2: pairs collapse onto their principal component as density grows"
N_HIDDEN = 2
SET_SIZE = 2
N_SETS = 3
DENSITIES = (0.005, 0.01, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5)
DEFAULT_STEPS = 4000
DEFAULT_SEED = 0


def make_model(activation: str = "relu", seed: int = DEFAULT_SEED) -> SetModel:
    """The untrained model: 3 correlated pairs, ``(len(DENSITIES), 2, 6)``."""
    if activation != "relu":
        raise ValueError(f"activation must be 'relu' for this experiment, got {activation!r}")
    return make_set_model("correlated", N_SETS, SET_SIZE, N_HIDDEN, DENSITIES, seed)


def summary(model: SetModel, history: History | None = None) -> list[SummaryRow]:
    """One :class:`SummaryRow` per density."""
    return summarize(model, history)


def run(
    out_dir: str | Path = "out/collapse",
    steps: int = DEFAULT_STEPS,
    device: str | torch.device | None = None,
    seed: int = DEFAULT_SEED,
    console: "Console | None" = None,
    restarts: int = RESTARTS,
) -> ExperimentResult:
    """Train the sweep (best of ``restarts``, each the best found at its density), print collapsed sets per density, write figures, params, summary."""
    from rich.table import Table

    run = Run(NAME, out_dir, steps, device, seed, console)
    trained = train_sets("correlated", N_SETS, SET_SIZE, N_HIDDEN, DENSITIES, run.steps, run.seed, run.device,
                         restarts, progress=run.progress)
    run.trained(f"{len(DENSITIES)} densities x {restarts} restarts x {run.steps} steps", trained.seconds, part="train")
    run.print(report(DENSITIES, trained.optimum))
    model = trained.model
    W = model.W.detach().cpu()
    counts = collapsed_sets(W, SET_SIZE).tolist()
    before = collapsed_sets(trained.restarts_only.W.detach().cpu(), SET_SIZE).tolist()
    cos = partner_cosines(W, SET_SIZE).tolist()
    rows = [{"density": p, "collapsed_sets": c, "partner_cosine": pc, "collapsed_sets_restarts_only": b}
            for p, c, pc, b in zip(DENSITIES, counts, cos, before)]
    table = Table(
        title=f"{NAME}: 3 correlated pairs, m=2 ({run.steps} steps, best of {restarts})", title_justify="left",
        header_style="bold", caption_justify="left",
        caption="collapsed: pairs stored as their sum, both partners represented along one direction (cos > 0.9)\n"
        "partner cos: each pair's cosine (about 0.5 side by side on a hexagon, 1 collapsed)\n"
        "restarts only: collapsed pairs of the best restart, before the check against the other densities' models",
    )
    for col in ("1-S", "collapsed", "partner cos", "restarts only"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(f"{r['density']:.3g}", str(r["collapsed_sets"]), " ".join(f"{c:+.2f}" for c in r["partner_cosine"]),
                      str(r["collapsed_sets_restarts_only"]))
    run.table(table)
    run.figures_written(correlated.write_figures({"three pairs": model}, run.out))
    run.figure("collapse", collapse_curve(DENSITIES, counts, N_SETS))
    return run.finish(
        models={"collapse": model}, histories={"collapse": trained.history},
        summaries={"collapse": summary(model, trained.history)},
        config={"kind": "correlated", "n_sets": N_SETS, "set_size": SET_SIZE, "densities": DENSITIES,
                "restarts": restarts, "batch_size": BATCH_SIZE, "lr": LR, "polish_steps": POLISH_STEPS},
        table=rows, optimality=correlated.optimality(trained),
    )
