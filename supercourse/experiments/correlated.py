"""Correlated feature pairs in m=2 (lesson 06, the paper's panels a and c).

Two sets of two correlated features (a set is all zero or all active, each
feature at marginal density ``1 - S``), uniform importance, m=2: the partners
of a set are represented **orthogonally** and each feature is **antipodal** to
a feature of the *other* set. Correlated features are active together, so any
interference between partners costs on every active sample; features of
different sets are rarely active together, so they take the antipodal slots.
With **three** sets of two there is no room for three orthogonal pairs: the
features form a hexagon with partners **side by side** (cosine about 1/2),
positive interference being cheaper than negative for correlated features.

``supercourse reproduce correlated`` trains both, best of
:data:`~._correlated.RESTARTS` inits per density, prints a table and writes
``directions.png`` (both models' feature directions), ``params.safetensors``
(the two-pair model as ``W``/``b_final``, the three-pair one under
``three_pairs.``) and ``summary.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..correlation import SetModel, collapsed_sets, cross_set_min_cosines, partner_cosines
from ..correlation_plots import set_directions
from ..metrics import feature_norms
from ..training import History
from ._common import ExperimentResult, SummaryRow, save_figure, summarize
from ._correlated import BATCH_SIZE, LR, POLISH_STEPS, RESTARTS, TrainedSets, make_set_model, train_sets
from ._optimum import report
from ._run import Run

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

NAME = "correlated"
DESCRIPTION = "m=2: correlated pairs orthogonal (pairs antipodal to each other); three pairs side by side"
N_HIDDEN = 2
SET_SIZE = 2
N_SETS = 2
N_SETS_SIDE_BY_SIDE = 3
DENSITIES = (0.05, 0.02, 0.01)
"""Marginal densities of the two-pair model (one instance each)."""
DENSITIES_SIDE_BY_SIDE = (0.005, 0.003)
"""Marginal densities of the three-pair model: sparse enough that no pair collapses (lesson 06, collapse)."""
DEFAULT_STEPS = 4000
DEFAULT_SEED = 0


def make_model(activation: str = "relu", seed: int = DEFAULT_SEED) -> SetModel:
    """The untrained two-pair model: ``(n_instances=len(DENSITIES), 2, 4)``."""
    if activation != "relu":
        raise ValueError(f"activation must be 'relu' for this experiment, got {activation!r}")
    return make_set_model("correlated", N_SETS, SET_SIZE, N_HIDDEN, DENSITIES, seed)


def summary(model: SetModel, history: History | None = None) -> list[SummaryRow]:
    """One :class:`SummaryRow` per density."""
    return summarize(model, history)


def readout(model: SetModel) -> list[dict]:
    """Per instance: density, partner cosines per set, each feature's most negative cross-set cosine, norms, collapsed sets."""
    W = model.W.detach().cpu()
    return [
        {"density": float(p), "partner_cosine": pc, "cross_set_min_cosine": xc, "norms": nm, "collapsed_sets": int(c)}
        for p, pc, xc, nm, c in zip(
            model.set_probability[:, 0].tolist(),
            partner_cosines(W, SET_SIZE).tolist(),
            cross_set_min_cosines(W, SET_SIZE).tolist(),
            feature_norms(W).tolist(),
            collapsed_sets(W, SET_SIZE).tolist(),
        )
    ]


def _table(rows: list[dict], title: str):
    from rich.table import Table

    table = Table(
        title=title, title_justify="left", header_style="bold", caption_justify="left",
        caption="partner cos: cosine between the two features of each set (0 orthogonal, -1 antipodal, "
        "0.5 side by side, 1 collapsed)\n"
        "cross-set min cos: each feature's most negative cosine with a feature of another set (-1: antipodal)\n"
        "||W_i||: feature norms (1: fully represented)",
    )
    for col in ("1-S", "partner cos", "cross-set min cos", "||W_i||", "collapsed"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            f"{r['density']:.3g}",
            " ".join(f"{c:+.2f}" for c in r["partner_cosine"]),
            " ".join(f"{c:+.2f}" for c in r["cross_set_min_cosine"]),
            " ".join(f"{c:.2f}" for c in r["norms"]),
            str(r["collapsed_sets"]),
        )
    return table


def write_figures(models: dict[str, SetModel], out_dir: Path) -> dict[str, Path]:
    """``directions_<name>.png`` per model: every instance's feature directions, a colour per set."""
    import matplotlib.pyplot as plt

    figures = {}
    for key, model in models.items():
        titles = [f"1-S = {p:.3g}" for p in model.set_probability[:, 0].tolist()]
        fig = set_directions(model.W.detach().cpu(), model.set_size, model.kind, titles=titles)
        name = f"directions_{key.replace(' ', '_')}"
        figures[name] = save_figure(fig, Path(out_dir) / f"{name}.png")
        plt.close(fig)
    return figures


def optimality(trained: TrainedSets) -> dict:
    """The optimality check of a :func:`~._correlated.train_sets` result, as plain numbers (empty when skipped)."""
    return {} if trained.optimum is None else trained.optimum.as_dict()


def run(
    out_dir: str | Path = "out/correlated",
    steps: int = DEFAULT_STEPS,
    device: str | torch.device | None = None,
    seed: int = DEFAULT_SEED,
    console: "Console | None" = None,
    restarts: int = RESTARTS,
) -> ExperimentResult:
    """Train both models (best of ``restarts``, each the best found at its density), print their tables, write figures, params and summary."""
    run = Run(NAME, out_dir, steps, device, seed, console)
    models, histories, tables, checks = {}, {}, {}, {}
    for key, n_sets, densities in (("two pairs", N_SETS, DENSITIES),
                                   ("three pairs", N_SETS_SIDE_BY_SIDE, DENSITIES_SIDE_BY_SIDE)):
        trained = train_sets("correlated", n_sets, SET_SIZE, N_HIDDEN, densities, run.steps, run.seed, run.device,
                             restarts, progress=run.progress)
        run.trained(f"[bold]{key}[/]: {len(densities)} densities x {restarts} restarts x {run.steps} steps",
                    trained.seconds, part=key)
        run.print(report(densities, trained.optimum))
        models[key], histories[key], tables[key] = trained.model, trained.history, readout(trained.model)
        checks[key.replace(" ", "_")] = optimality(trained)
        run.table(_table(tables[key], f"{NAME}: {n_sets} correlated pairs, m=2 ({run.steps} steps, best of {restarts})"))
    run.figures_written(write_figures(models, run.out))
    return run.finish(
        models={"three_pairs": models["three pairs"], "two_pairs": models["two pairs"]}, main="two_pairs",
        histories=histories, summaries={k: summary(m, histories[k]) for k, m in models.items()},
        config={"kind": "correlated", "set_size": SET_SIZE, "n_sets": {"two_pairs": N_SETS, "three_pairs": N_SETS_SIDE_BY_SIDE},
                "densities": {"two_pairs": DENSITIES, "three_pairs": DENSITIES_SIDE_BY_SIDE},
                "restarts": restarts, "batch_size": BATCH_SIZE, "lr": LR, "polish_steps": POLISH_STEPS},
        table={k.replace(" ", "_"): v for k, v in tables.items()},
        optimality=checks,
    )
