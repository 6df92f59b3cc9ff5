"""Correlated pairs collapse onto their principal component as density grows (lesson 06).

Three correlated pairs in m=2 (uniform importance) across densities. Sparse,
the pairs sit side by side on a hexagon (:mod:`.correlated`). As the features
get denser, interference costs more, and one pair after another stops
storing its two features and stores their sum, the principal component
``(x_a + x_b)/sqrt(2)``, in one direction: both partners' columns of ``W``
point the same way (:func:`supercourse.correlation.collapsed_sets`). The table
counts the collapsed sets at each density: none when sparse, then one, two,
all three (the paper's figure, read approximately: one set from about 1-S =
0.05, all by 0.25-0.5).

``supercourse reproduce collapse`` writes ``directions.png``, ``collapse.png``
(collapsed sets against density), ``params.safetensors`` and ``summary.json``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..correlation import SetModel, collapsed_sets, partner_cosines
from ..training import History
from . import correlated
from ._common import ExperimentResult, SummaryRow, get_console, prepare_run, save_figure, summarize, write_artifacts
from ._correlated import BATCH_SIZE, LR, RESTARTS, make_set_model, train_sets

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
    """Train the sweep (best of ``restarts``), print collapsed sets per density, write figures, params, summary."""
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure
    from rich.table import Table

    start = time.perf_counter()
    out, steps, dev, seed = prepare_run(out_dir, steps, device, seed)
    console = get_console(console)
    model, history, _, wall = train_sets("correlated", N_SETS, SET_SIZE, N_HIDDEN, DENSITIES, steps, seed, dev,
                                         restarts, progress=console.is_terminal)
    console.print(f"trained: {len(DENSITIES)} densities x {restarts} restarts x {steps} steps on {dev.type} in {wall:.1f} s")
    W = model.W.detach().cpu()
    counts = collapsed_sets(W, SET_SIZE).tolist()
    cos = partner_cosines(W, SET_SIZE).tolist()
    rows = [{"density": p, "collapsed_sets": c, "partner_cosine": pc} for p, c, pc in zip(DENSITIES, counts, cos)]
    table = Table(
        title=f"{NAME}: 3 correlated pairs, m=2 ({steps} steps, best of {restarts})", title_justify="left",
        header_style="bold", caption_justify="left",
        caption="collapsed: pairs stored as their sum, both partners represented along one direction (cos > 0.9)\n"
        "partner cos: each pair's cosine (about 0.5 side by side on a hexagon, 1 collapsed)",
    )
    for col in ("1-S", "collapsed", "partner cos"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(f"{r['density']:.3g}", str(r["collapsed_sets"]), " ".join(f"{c:+.2f}" for c in r["partner_cosine"]))
    console.print(table)
    figures = correlated.write_figures({"three pairs": model}, out)
    fig = Figure(figsize=(4.5, 3.0), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(DENSITIES, counts, "o-")
    ax.set_xscale("log")
    ax.set_yticks(range(N_SETS + 1))
    ax.set_xlabel("feature density 1-S")
    ax.set_ylabel("pairs collapsed")
    ax.set_title("pairs stored as their principal component", fontsize=10)
    figures["collapse"] = save_figure(fig, out / "collapse.png")
    plt.close(fig)
    artifacts = write_artifacts(
        out, NAME, {"collapse": model}, steps=steps, seed=seed, device=dev,
        config={"kind": "correlated", "n_sets": N_SETS, "set_size": SET_SIZE, "densities": DENSITIES,
                "restarts": restarts, "batch_size": BATCH_SIZE, "lr": LR},
        table=rows,
    )
    return ExperimentResult(
        name=NAME, models={"collapse": model}, histories={"collapse": history},
        summaries={"collapse": summary(model, history)}, figures=figures,
        steps=steps, seed=seed, device=str(dev), wall_time=time.perf_counter() - start, artifacts=artifacts,
    )
