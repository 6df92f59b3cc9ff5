"""Local almost-orthogonal bases (lesson 06): 2 sets of 10 correlated features in m=10.

Twenty features, two correlated sets of ten, ten dimensions, uniform
importance. Inside a set every feature is active whenever the others are, so
the model gives each set an (almost) orthogonal basis of its own: the set's
10 x 10 block of ``W^T W`` is near the identity. The two sets share the ten
dimensions, so all the interference lands *across* sets, between features that
are rarely active together.

``supercourse reproduce local-bases`` prints the block statistics and writes
``gram.png`` (``W^T W`` with the bias), ``params.safetensors`` and ``summary.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .. import plots
from ..correlation import SetModel, block_interference
from ..training import History
from . import correlated
from ._common import ExperimentResult, SummaryRow, summarize
from ._correlated import BATCH_SIZE, LR, POLISH_STEPS, make_set_model, train_sets
from ._optimum import report
from ._run import Run

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

NAME = "local-bases"
DESCRIPTION = "2 sets of 10 correlated features in m=10: each set an almost orthogonal basis of its own"
N_HIDDEN = 10
SET_SIZE = 10
N_SETS = 2
DENSITIES = (0.05, 0.02)
DEFAULT_STEPS = 3000
DEFAULT_SEED = 0
RESTARTS = 1
"""One init per density: this geometry has no competing local optimum at these densities."""


def make_model(activation: str = "relu", seed: int = DEFAULT_SEED) -> SetModel:
    """The untrained model: ``(len(DENSITIES), 10, 20)``."""
    if activation != "relu":
        raise ValueError(f"activation must be 'relu' for this experiment, got {activation!r}")
    return make_set_model("correlated", N_SETS, SET_SIZE, N_HIDDEN, DENSITIES, seed)


def summary(model: SetModel, history: History | None = None) -> list[SummaryRow]:
    """One :class:`SummaryRow` per density."""
    return summarize(model, history)


def readout(model: SetModel) -> list[dict]:
    """Per instance: density and :func:`~supercourse.correlation.block_interference`'s three means."""
    blocks = block_interference(model.W.detach().cpu(), SET_SIZE)
    return [
        {"density": float(p), "diagonal": d, "within": w, "across": a}
        for p, d, w, a in zip(model.set_probability[:, 0].tolist(), blocks["diagonal"].tolist(),
                              blocks["within"].tolist(), blocks["across"].tolist())
    ]


def run(
    out_dir: str | Path = "out/local-bases",
    steps: int = DEFAULT_STEPS,
    device: str | torch.device | None = None,
    seed: int = DEFAULT_SEED,
    console: "Console | None" = None,
) -> ExperimentResult:
    """Train (each density's model the best found at it), print the block statistics, write ``gram.png``, params and summary."""
    from rich.table import Table

    run = Run(NAME, out_dir, steps, device, seed, console)
    trained = train_sets("correlated", N_SETS, SET_SIZE, N_HIDDEN, DENSITIES, run.steps, run.seed, run.device,
                         RESTARTS, progress=run.progress)
    run.trained(f"{len(DENSITIES)} densities x {run.steps} steps", trained.seconds, part="train")
    run.print(report(DENSITIES, trained.optimum))
    model = trained.model
    rows = readout(model)
    table = Table(
        title=f"{NAME}: 2 sets of 10 correlated features, m=10 ({run.steps} steps)", title_justify="left",
        header_style="bold", caption_justify="left",
        caption="diagonal: mean ||W_i||^2 (1: every feature represented)\n"
        "within set: mean |W_i . W_j| over distinct features of the same set (0: an orthogonal basis per set)\n"
        "across sets: mean |W_i . W_j| over features of different sets (where the interference goes)",
    )
    for col in ("1-S", "diagonal", "within set", "across sets"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(f"{r['density']:.3g}", f"{r['diagonal']:.3f}", f"{r['within']:.3f}", f"{r['across']:.3f}")
    run.table(table)
    run.figure("gram", plots.gram_heatmaps(model.W.detach(), model.b_final.detach(),
                                           titles=[f"1-S = {r['density']:.3g}" for r in rows]))
    return run.finish(
        models={"local_bases": model}, histories={"local_bases": trained.history},
        summaries={"local_bases": summary(model, trained.history)},
        config={"kind": "correlated", "n_sets": N_SETS, "set_size": SET_SIZE, "densities": DENSITIES,
                "restarts": RESTARTS, "batch_size": BATCH_SIZE, "lr": LR, "polish_steps": POLISH_STEPS},
        table=rows, optimality=correlated.optimality(trained),
    )
