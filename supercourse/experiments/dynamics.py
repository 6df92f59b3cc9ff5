"""Learning dynamics: energy-level jumps of feature dimensionalities, and the stages of a correlated run.

Two runs, both recorded with :class:`supercourse.dynamics.DimensionalityRecorder`
(``W`` and the loss on a fixed evaluation batch every :data:`LOG_EVERY` steps):

* **Energy levels.** :data:`N_FEATURES` features of equal importance in
  :data:`N_HIDDEN` dimensions, one instance per density in :data:`DENSITIES`.
  Each feature's dimensionality ``D_i`` sits on a level (0, 2/5, 1/2, ...),
  leaves it and settles on another; :func:`supercourse.dynamics.find_jumps`
  finds the jumps, and the loss drops while they happen.
* **Geometric stages.** Two correlated sets of 3 features (a set is zero or
  active together) in 3 dimensions, density :data:`CORRELATED_DENSITY`,
  :data:`CORRELATED_INSTANCES` seeds side by side. Training goes through
  distinct stages, each with its own drop of the loss: features of a set
  collapsed onto shared directions (PCA-like), the sets' features splitting
  apart, then orthogonal inside each set, and the end,
  an octahedron (features of a set orthogonal, every feature antipodal to one
  of the other set).

Both train with the paper's recipe (AdamW, lr 1e-3, batch 1024), in about a
minute on two CPU cores.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .. import dynamics
from ..data import correlated_sparse
from ..model import ToyModel
from ..training import History, train
from ._common import ExperimentResult, SummaryRow, save_figure, summarize
from ._run import Run

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure
    from rich.console import Console

NAME = "dynamics"
DESCRIPTION = "feature dimensionalities jump between energy levels with loss drops; correlated sets pass through stages to an octahedron"

N_FEATURES = 15
N_HIDDEN = 3
DENSITIES: tuple[float, ...] = (0.35, 0.3, 0.25, 0.2)
"""One instance per density, equal importance."""

SET_SIZE = 3
N_SETS = 2
CORRELATED_DENSITY = 0.1
CORRELATED_INSTANCES = 4
"""The correlated run: 2 sets of 3 features in 3 dimensions, 4 seeds side by side."""

DEFAULT_STEPS = 6000
DEFAULT_SEED = 0
BATCH_SIZE = 1024
LR = 1e-3
LOG_EVERY = 20
EVAL_BATCH = 4096
"""Snapshots every 20 steps; the recorded loss is measured on one fixed batch of 4096."""
FIGURE_INSTANCE = 2
"""The energy-level figure shows this instance (1-S = 0.25: pentagons and digons, features jumping between them)."""


class CorrelatedSetsModel(ToyModel):
    """A :class:`ToyModel` trained on ``n_features / set_size`` correlated sets (all zero or all active).

    ``feature_probability`` is each feature's marginal density (the same for a set's features).
    """

    def __init__(self, n_sets: int, set_size: int, n_hidden: int, **kwargs) -> None:
        super().__init__(n_sets * set_size, n_hidden, **kwargs)
        self.set_size = set_size

    def generate_batch(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(batch_size, n_instances, n_features)``: correlated sets at the model's densities."""
        p = self.feature_probability[:, :: self.set_size].contiguous()
        return correlated_sparse(batch_size, p, self.set_size, generator=generator)


def make_model(activation: str = "relu", seed: int | None = DEFAULT_SEED) -> ToyModel:
    """The energy-level model: ``W: (4, 3, 15)``, equal importance, one instance per density."""
    return ToyModel(N_FEATURES, N_HIDDEN, n_instances=len(DENSITIES), feature_probability=torch.tensor(DENSITIES),
                    importance=1.0, activation=activation, seed=seed)


def make_correlated_model(seed: int | None = DEFAULT_SEED) -> CorrelatedSetsModel:
    """The correlated-sets model: ``W: (4, 3, 6)``, 2 sets of 3 features, density 0.1."""
    return CorrelatedSetsModel(N_SETS, SET_SIZE, N_HIDDEN, n_instances=CORRELATED_INSTANCES,
                               feature_probability=CORRELATED_DENSITY, seed=seed)


def summary(model: ToyModel, history: History | None = None) -> list[SummaryRow]:
    """One row per instance (:func:`supercourse.experiments.summarize`)."""
    return summarize(model, history)


def record(
    model: ToyModel, steps: int = DEFAULT_STEPS, seed: int = DEFAULT_SEED, device: str | torch.device | None = None,
    progress: bool = False,
) -> tuple[dynamics.DimensionalityRecorder, History]:
    """Train ``model`` with the recipe, recording ``W`` and the evaluation loss every :data:`LOG_EVERY` steps.

    The evaluation batch is drawn from the model's own ``generate_batch`` with seed ``seed + 1``.
    The model ends on the CPU.
    """
    eval_batch = model.generate_batch(EVAL_BATCH, generator=torch.Generator().manual_seed(seed + 1))
    recorder = dynamics.DimensionalityRecorder(eval_batch)
    history = train(model, steps=steps, batch_size=BATCH_SIZE, lr=LR, seed=seed, device=device,
                    progress=progress, log_every=LOG_EVERY, callback=recorder)
    model.cpu()
    return recorder, history


def jump_table(recorder: dynamics.DimensionalityRecorder) -> list[dict]:
    """Every jump of the energy-level run, with the fraction of the loss that disappears during it."""
    jumps = dynamics.find_jumps(recorder.dimensionalities, recorder.steps)
    losses, steps = recorder.losses, recorder.steps
    return [
        {"step": j.step, "left": j.left, "instance": j.instance, "feature": j.feature, "from": j.start, "to": j.end,
         "loss_drop": dynamics.loss_drop(losses, steps, j)}
        for j in jumps
    ]


def stage_table(recorder: dynamics.DimensionalityRecorder) -> list[dict]:
    """For each instance of the correlated run: the stages in the order they are first reached, the first
    step of each and the loss there, and the final geometry."""
    Ws, steps, losses = recorder.weights, recorder.steps, recorder.losses
    T, k = Ws.shape[:2]
    names = [dynamics.stage(Ws[t], SET_SIZE) for t in range(T)]
    rows = []
    for i in range(k):
        first: dict[str, int] = {}
        for t in range(T):
            first.setdefault(names[t][i], t)
        within, across = dynamics.set_geometry(Ws[-1, i : i + 1], SET_SIZE)
        order = sorted(first, key=first.get)  # stages in the order training first reaches them
        rows.append({
            "instance": i,
            "stages": order,
            "first_step": {s: int(steps[first[s]]) for s in order},
            "loss_at": {s: float(losses[first[s], i]) for s in order},
            "final_stage": names[-1][i],
            "final_within": float(within[0]),
            "final_across": float(across[0]),
            "final_loss": float(losses[-1, i]),
        })
    return rows


def levels_figure(recorder: dynamics.DimensionalityRecorder, instance: int = FIGURE_INSTANCE) -> "Figure":
    """``D_i`` of every feature of one instance over training (log steps), the levels, and the loss below."""
    import matplotlib.pyplot as plt

    D, steps, losses = recorder.dimensionalities[:, instance], recorder.steps, recorder.losses[:, instance]
    x = (steps + 1).numpy()
    fig, (ax, ax_loss) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True, height_ratios=(2.2, 1), layout="constrained")
    for level in dynamics.LEVELS[1:]:
        ax.axhline(level, color="0.82", lw=0.8, zorder=0)
    ax.plot(x, D.numpy(), lw=1.2)
    ax.set(xscale="log", ylabel="feature dimensionality D_i", ylim=(-0.03, 1.05),
           title=f"energy levels (n={N_FEATURES}, m={N_HIDDEN}, 1-S={DENSITIES[instance]:g})")
    for j in dynamics.find_jumps(recorder.dimensionalities[:, instance : instance + 1], steps):
        for a in (ax, ax_loss):
            a.axvspan(j.left + 1, j.step + 1, color="C3", alpha=0.08, lw=0)
    ax_loss.plot(x, losses.numpy(), color="k", lw=1.2)
    ax_loss.set(xscale="log", yscale="log", xlabel="training step + 1", ylabel="loss (fixed batch)")
    return fig


def stages_figure(recorder: dynamics.DimensionalityRecorder, instance: int = 0) -> "Figure":
    """The correlated run: the loss, the within-set and across-set cosines, and ``W`` at each stage."""
    import matplotlib.pyplot as plt

    Ws, steps, losses = recorder.weights[:, instance : instance + 1], recorder.steps, recorder.losses[:, instance]
    within = torch.stack([dynamics.set_geometry(w, SET_SIZE)[0][0] for w in Ws])
    across = torch.stack([dynamics.set_geometry(w, SET_SIZE)[1][0] for w in Ws])
    names = [dynamics.stage(w, SET_SIZE)[0] for w in Ws]
    firsts = [names.index(s) for s in dynamics.STAGES if s in names]
    x = (steps + 1).numpy()
    fig = plt.figure(figsize=(8, 6.5), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=(1.4, 1))
    ax_loss, ax_cos = top.subplots(2, 1, sharex=True)
    ax_loss.plot(x, losses.numpy(), color="k")
    ax_loss.set(xscale="log", yscale="log", ylabel="loss (fixed batch)",
                title=f"2 correlated sets of 3 features, m=3, 1-S={CORRELATED_DENSITY:g}")
    ax_cos.plot(x, within.numpy(), label="within a set: max |cos|")
    ax_cos.plot(x, across.numpy(), label="across sets: mean most negative cos")
    ax_cos.axhline(0, color="0.8", lw=0.8)
    ax_cos.set(xscale="log", xlabel="training step + 1", ylim=(-1.05, 1.05))
    ax_cos.legend(loc="center left", fontsize=8)
    for t in firsts:
        for a in (ax_loss, ax_cos):
            a.axvline(x[t], color="C3", lw=0.8, ls="--")
    show = firsts if names[-1] == names[firsts[-1]] else firsts + [len(names) - 1]
    axes = bottom.subplots(1, len(show), subplot_kw={"projection": "3d"})
    for a, t in zip(axes if len(show) > 1 else [axes], show):
        w = Ws[t, 0]
        for i in range(w.shape[1]):
            color = "C0" if i < SET_SIZE else "C1"
            a.plot([0, w[0, i]], [0, w[1, i]], [0, w[2, i]], color=color, lw=2)
        a.set(xlim=(-1, 1), ylim=(-1, 1), zlim=(-1, 1), xticks=[], yticks=[], zticks=[])
        a.set_title(f"step {int(steps[t])}\n{names[t]}", fontsize=8)
    return fig


def write_figures(levels: dynamics.DimensionalityRecorder, stages: dynamics.DimensionalityRecorder,
                  out_dir: Path, instance: int = FIGURE_INSTANCE) -> dict[str, Path]:
    """``energy_levels.png`` and ``correlated_stages.png`` in ``out_dir``."""
    import matplotlib.pyplot as plt

    figures = {"energy_levels": levels_figure(levels, instance), "correlated_stages": stages_figure(stages, 0)}
    paths = {name: save_figure(fig, Path(out_dir) / f"{name}.png") for name, fig in figures.items()}
    for fig in figures.values():
        plt.close(fig)
    return paths


def run(
    out_dir: str | Path = "out/dynamics",
    steps: int = DEFAULT_STEPS,
    device: str | torch.device | None = None,
    seed: int = DEFAULT_SEED,
    console: "Console | None" = None,
) -> ExperimentResult:
    """Train both runs, print the jumps and the stages, write figures, ``params.safetensors`` and ``summary.json``.

    ``params.safetensors`` holds the energy-level model (``W``, ``b_final``) and the
    correlated model (``correlated_W``, ``correlated_b_final``).
    """
    from rich.table import Table

    run = Run(NAME, out_dir, steps, device, seed, console)
    with run.timed("train"):
        model = make_model(seed=run.seed)
        levels, history = record(model, run.steps, run.seed, run.device, progress=run.progress)
        corr = make_correlated_model(seed=run.seed)
        stages, corr_history = record(corr, run.steps, run.seed, run.device, progress=run.progress)
    run.trained(f"both runs x {run.steps} steps", run.seconds["train"])

    jumps = jump_table(levels)
    table = Table(title=f"{NAME}: energy-level jumps (n={N_FEATURES}, m={N_HIDDEN})", title_justify="left",
                  header_style="bold")
    for col in ("1-S", "feature", "from", "to", "steps", "loss drop"):
        table.add_column(col, justify="right")
    for j in jumps:
        table.add_row(f"{DENSITIES[j['instance']]:g}", str(j["feature"]), f"{j['from']:.3f}", f"{j['to']:.3f}",
                      f"{j['left']}-{j['step']}", f"{100 * j['loss_drop']:.1f}%")
    run.table(table)
    stage_rows = stage_table(stages)
    table = Table(title=f"{NAME}: stages of the correlated run (2 sets of 3, m=3)", title_justify="left",
                  header_style="bold")
    for col in ("seed", "stages (first step: loss)", "final", "within", "across"):
        table.add_column(col, justify="left" if col.startswith("stages") else "right")
    for r in stage_rows:
        text = " -> ".join(f"{s} ({r['first_step'][s]}: {r['loss_at'][s]:.2e})" for s in r["stages"])
        table.add_row(str(r["instance"]), text, r["final_stage"], f"{r['final_within']:.2f}",
                      f"{r['final_across']:.2f}")
    run.table(table)

    run.figures_written(write_figures(levels, stages, run.out))
    energy_levels = {"n_features": N_FEATURES, "n_hidden": N_HIDDEN, "densities": list(DENSITIES),
                     "importance": 1.0, "levels": list(dynamics.LEVELS),
                     "level_tolerance": dynamics.LEVEL_TOLERANCE, "min_hold": dynamics.MIN_HOLD,
                     "final_loss": levels.losses[-1], "final_dimensionalities": levels.dimensionalities[-1],
                     "jumps": jumps}
    correlated = {"n_sets": N_SETS, "set_size": SET_SIZE, "n_hidden": N_HIDDEN,
                  "density": CORRELATED_DENSITY, "instances": CORRELATED_INSTANCES, "stages": stage_rows}
    return run.finish(
        models={"correlated": corr, "levels": model}, main="levels",
        tensors={"W": model.W, "b_final": model.b_final, "correlated_W": corr.W, "correlated_b_final": corr.b_final},
        histories={"levels": history, "correlated": corr_history},
        summaries={"levels": summary(model, history), "correlated": summary(corr, corr_history)},
        config={"batch_size": BATCH_SIZE, "lr": LR, "log_every": LOG_EVERY, "eval_batch": EVAL_BATCH},
        table={"jumps": jumps, "stages": stage_rows},
        energy_levels=energy_levels, correlated=correlated,
    )
