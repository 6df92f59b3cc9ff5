"""Anticorrelated feature pairs in m=2 (lesson 06, the paper's panel b).

Two sets of two anticorrelated features (at most one feature of a set is
active; each feature at marginal density ``1 - S``, so a set is active with
probability ``2(1 - S)``), uniform importance, m=2: each feature is
**antipodal to its own partner**. Partners are never active together, so the
negative interference of an antipodal pair never costs anything (the ReLU
removes it), which no other arrangement of four features in two dimensions
achieves. The other arrangement (partners orthogonal, sets antipodal) is a
local optimum close in loss, hence the restarts.

``supercourse reproduce anticorrelated`` prints a table and writes
``directions.png``, ``params.safetensors`` and ``summary.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..correlation import SetModel
from ..training import History
from . import correlated
from ._common import ExperimentResult, SummaryRow, summarize
from ._correlated import BATCH_SIZE, LR, POLISH_STEPS, RESTARTS, make_set_model, train_sets
from ._optimum import report
from ._run import Run

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

NAME = "anticorrelated"
DESCRIPTION = "m=2: anticorrelated partners antipodal (they are never active together)"
N_HIDDEN = 2
SET_SIZE = 2
N_SETS = 2
DENSITIES = (0.1, 0.05, 0.02)
DEFAULT_STEPS = 4000
DEFAULT_SEED = 0
RESTARTS_ANTI = 2 * RESTARTS
"""More restarts than the correlated panels: the two arrangements differ in loss by terms of order (1-S)^2."""


def make_model(activation: str = "relu", seed: int = DEFAULT_SEED) -> SetModel:
    """The untrained model: 2 anticorrelated pairs, ``(len(DENSITIES), 2, 4)``."""
    if activation != "relu":
        raise ValueError(f"activation must be 'relu' for this experiment, got {activation!r}")
    return make_set_model("anticorrelated", N_SETS, SET_SIZE, N_HIDDEN, DENSITIES, seed)


def summary(model: SetModel, history: History | None = None) -> list[SummaryRow]:
    """One :class:`SummaryRow` per density."""
    return summarize(model, history)


def run(
    out_dir: str | Path = "out/anticorrelated",
    steps: int = DEFAULT_STEPS,
    device: str | torch.device | None = None,
    seed: int = DEFAULT_SEED,
    console: "Console | None" = None,
    restarts: int = RESTARTS_ANTI,
) -> ExperimentResult:
    """Train (best of ``restarts``, each the best found at its density), print the table, write figures, params and summary."""
    run = Run(NAME, out_dir, steps, device, seed, console)
    trained = train_sets("anticorrelated", N_SETS, SET_SIZE, N_HIDDEN, DENSITIES, run.steps, run.seed, run.device,
                         restarts, progress=run.progress)
    run.trained(f"{len(DENSITIES)} densities x {restarts} restarts x {run.steps} steps", trained.seconds, part="train")
    run.print(report(DENSITIES, trained.optimum))
    model = trained.model
    rows = correlated.readout(model)
    run.table(correlated._table(rows, f"{NAME}: 2 anticorrelated pairs, m=2 ({run.steps} steps, best of {restarts})"))
    run.figures_written(correlated.write_figures({"anticorrelated pairs": model}, run.out))
    return run.finish(
        models={"anticorrelated": model}, histories={"anticorrelated": trained.history},
        summaries={"anticorrelated": summary(model, trained.history)},
        config={"kind": "anticorrelated", "n_sets": N_SETS, "set_size": SET_SIZE, "densities": DENSITIES,
                "restarts": restarts, "batch_size": BATCH_SIZE, "lr": LR, "polish_steps": POLISH_STEPS},
        table=rows, optimality=correlated.optimality(trained),
    )
