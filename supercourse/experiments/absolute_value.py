"""Computation in superposition: a ReLU network that computes ``y = |x|``.

The paper's section "Computation in Superposition". The absolute-value model
(:class:`supercourse.neurons.AbsValueModel`) ``h = ReLU(W1 x)``, ``y' = ReLU(W2 h + b)``,
untied, with ``x_i = 0`` with probability ``S`` and otherwise uniform on [-1, 1]
and target ``|x|``. Two studies:

* **small** (``n = 3``, ``m = 6``): since ``|x| = ReLU(x) + ReLU(-x)``, each
  feature gets two neurons, one for ``ReLU(x_i)`` and one for ``ReLU(-x_i)``
  (after removing the rescaling symmetry with :func:`~supercourse.neurons.balance_neurons`).
* **sweep** (the paper: ``n = 100``, ``m = 40``, ``I_i = 0.8^i``, one instance per
  density): monosemantic neurons when dense, polysemantic neurons growing in
  number as sparsity grows, and the most important features keeping their
  monosemantic neurons longest. The default (CPU) recipe uses ``n = 50``,
  ``m = 20`` (the same ratio ``m / n = 0.4`` and the same importances, whose
  tail past feature 40 weighs below ``1e-4``), a quarter of the paper's cost;
  :data:`SIZES` has both, and ``make_model(size="paper")`` builds the paper's.

Every setting is trained from a few random initialisations side by side and the
lowest-loss one is kept. Recipe: AdamW, batch 256, lr 3e-3, weight decay 0.01.
Then the kept models are checked against each other (:mod:`._optimum`): trained
from scratch, the sweep's sparse models (1-S <= 0.05) stop 4-5 times above the
loss of a denser density's configuration on their own data, so that
configuration is trained on their data (:data:`POLISH_STEPS`) and kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import torch

from ..neurons import AbsValueModel, count_neurons, monosemanticity
from ..plots import density_titles
from ._common import ExperimentResult
from ._neurons import NeuronRow, TrainedNeurons, train_best
from ._optimum import report
from ._run import Run

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console
    from rich.table import Table

NAME = "absolute-value"
DESCRIPTION = "y=|x| with ReLU neurons: n=3, m=6 gives ReLU(x_i), ReLU(-x_i) pairs; a sweep shows polysemanticity grow"

SIZES: dict[str, tuple[int, int]] = {"cpu": (50, 20), "paper": (100, 40)}
"""``(n_features, n_hidden)`` of the sweep at each scale."""
N_FEATURES, N_HIDDEN = SIZES["cpu"]
IMPORTANCE_BASE = 0.8
"""``I_i = 0.8^i`` in the sweep."""
DENSITIES: tuple[float, ...] = (1.0, 0.3, 0.1, 0.05, 0.03, 0.01)
"""The sweep's densities ``1 - S``, one instance each."""
SWEEP_RESTARTS = 2

SMALL_FEATURES, SMALL_HIDDEN = 3, 6
SMALL_DENSITIES: tuple[float, ...] = (1.0, 0.3, 0.1)
SMALL_RESTARTS = 4
SMALL_STEPS = 4_000

DEFAULT_STEPS = 5_000
"""Steps of the sweep (the small study trains :data:`SMALL_STEPS`)."""
POLISH_STEPS = 3_000
"""Steps of each candidate's local optimisation when the kept models are checked against each other (lr
decaying from :data:`LR` to 0). The sweep's sparse models trained from scratch are 2-5 times worse on their own
data than a denser model's configuration: the check trains that configuration on their data and keeps it."""
SWEEP_CONTENDERS = 1
"""Other densities' models tried on each density's data per round of the check (the best-scoring one)."""
SMALL_POLISH_STEPS = 1_000
DEFAULT_SEED = 0
BATCH_SIZE = 256
LR = 3e-3


def _check_class(model_class: object) -> type[AbsValueModel]:
    if not (isinstance(model_class, type) and issubclass(model_class, AbsValueModel)):
        raise TypeError(f"model_class must be AbsValueModel or a subclass of it, got {model_class!r}")
    return model_class


def make_model(
    seed: int | None = DEFAULT_SEED,
    restarts: int = 1,
    size: str = "cpu",
    densities: Sequence[float] = DENSITIES,
    model_class: type[AbsValueModel] = AbsValueModel,
) -> AbsValueModel:
    """The untrained sweep model: ``restarts`` copies of every density (restart-major), ``I_i = 0.8^i``.

    ``model_class`` may be a subclass of :class:`~supercourse.neurons.AbsValueModel`.
    """
    model_class = _check_class(model_class)
    if size not in SIZES:
        raise ValueError(f"size must be one of {tuple(SIZES)}, got {size!r}")
    if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts <= 0:
        raise ValueError(f"restarts must be a positive int, got {restarts!r}")
    n, m = SIZES[size]
    p = torch.as_tensor(list(densities), dtype=torch.float32).reshape(-1)
    return model_class(
        n, m, n_instances=restarts * p.numel(), feature_probability=p.repeat(restarts),
        importance=IMPORTANCE_BASE ** torch.arange(n, dtype=torch.float32), seed=seed,
    )


def make_small_model(
    seed: int | None = DEFAULT_SEED, restarts: int = 1, model_class: type[AbsValueModel] = AbsValueModel
) -> AbsValueModel:
    """The untrained ``n = 3``, ``m = 6`` model, ``restarts`` copies of each of :data:`SMALL_DENSITIES`."""
    model_class = _check_class(model_class)
    if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts <= 0:
        raise ValueError(f"restarts must be a positive int, got {restarts!r}")
    p = torch.tensor(SMALL_DENSITIES).repeat(restarts)
    return model_class(SMALL_FEATURES, SMALL_HIDDEN, n_instances=p.numel(), feature_probability=p, seed=seed)


def relu_pairs(model: AbsValueModel, mono_share: float = 0.9) -> list[list[tuple[int, int]]]:
    """Each instance's monosemantic neurons as ``(feature, sign)``: ``+1`` computes ``ReLU(x_i)``, ``-1`` ``ReLU(-x_i)``.

    Read from the balanced ``W1`` (:meth:`~supercourse.neurons.AbsValueModel.neuron_weights`);
    neurons below ``mono_share`` (or dead) are left out. Sorted.
    """
    W = model.neuron_weights()
    mono = monosemanticity(W, positive_only=False)
    alive = W.norm(dim=2) >= 0.1
    top = W.abs().argmax(dim=2)
    out = []
    for k in range(W.shape[0]):
        pairs = []
        for j in range(W.shape[1]):
            if alive[k, j] and mono[k, j] >= mono_share:
                i = int(top[k, j])
                pairs.append((i, 1 if W[k, j, i] > 0 else -1))
        out.append(sorted(pairs))
    return out


def summary(model: AbsValueModel, losses: torch.Tensor | None = None) -> list[NeuronRow]:
    """One row per instance: neuron counts (signed readout) and the features that keep their own neurons.

    ``losses``: ``(n_instances,)`` or ``(n_instances, restarts)`` (the minimum is reported).
    """
    if not isinstance(model, AbsValueModel):
        raise TypeError(f"model must be a supercourse.neurons.AbsValueModel, got {type(model).__name__}")
    W = model.neuron_weights()
    counts = count_neurons(W, positive_only=False)
    pairs = relu_pairs(model)
    represented = (W.norm(dim=1) > 0.5).sum(dim=1)
    if losses is None:
        loss = [float("nan")] * model.n_instances
    else:
        loss = (losses.amin(dim=1) if losses.dim() == 2 else losses).tolist()
    rows = []
    for k in range(model.n_instances):
        feats = tuple(sorted({i for i, _ in pairs[k]}))
        both = sum(1 for i in feats if (i, 1) in pairs[k] and (i, -1) in pairs[k])
        rows.append(
            NeuronRow(
                density=float(model.feature_probability[k, 0]),
                represented=int(represented[k]),
                monosemantic=int(counts.monosemantic[k]),
                polysemantic=int(counts.polysemantic[k]),
                dead=int(counts.dead[k]),
                mono_features=feats,
                loss=float(loss[k]),
                extra={"features_with_both_signs": both, "relu_pairs": [list(p) for p in pairs[k]]},
            )
        )
    return rows


def table(rows: Sequence[NeuronRow], title: str = "") -> "Table":
    """A :class:`rich.table.Table`, one line per density."""
    from rich.table import Table

    t = Table(
        title=title, title_justify="left", header_style="bold",
        caption="mono/poly: neurons whose top feature holds >= 90% / < 90% of their squared input weights "
        "(balanced W1); own neuron: features with a monosemantic neuron; both signs: features with a "
        "ReLU(x_i) and a ReLU(-x_i) neuron",
        caption_justify="left",
    )
    for col in ("1-S", "mono", "poly", "dead", "features with own neuron", "both signs", "loss"):
        t.add_column(col, justify="right")
    for r in rows:
        feats = ",".join(map(str, r.mono_features)) or "-"
        if len(r.mono_features) > 12:
            feats = f"{len(r.mono_features)}: " + ",".join(map(str, r.mono_features[:10])) + ",..."
        t.add_row(
            f"{r.density:.3g}", str(r.monosemantic), str(r.polysemantic), str(r.dead), feats,
            str(r.extra.get("features_with_both_signs", "")), f"{r.loss:.3g}",
        )
    return t


def markdown_table(rows: Sequence[NeuronRow]) -> str:
    """The sweep's rows as a Markdown table (lesson 08 quotes the reference run's; a test holds it to a fresh one)."""
    lines = ["| 1-S | monosemantic | polysemantic | features with a neuron of their own | "
             "features with a ReLU(x) and a ReLU(-x) neuron |", "|---|---|---|---|---|"]
    for r in rows:
        own = ", ".join(map(str, r.mono_features)) or "none"
        lines.append(f"| {r.density:.3g} | {r.monosemantic} | {r.polysemantic} | {own} | "
                     f"{r.extra.get('features_with_both_signs', 0)} |")
    return "\n".join(lines)


def figures(small: AbsValueModel, sweep: AbsValueModel) -> dict:
    """``small_neurons``, ``sweep_neurons`` (stacked weights of the balanced ``W1``) and ``sweep_counts``."""
    from ..neuron_plots import neuron_counts_by_density, stacked_neuron_weights

    return {
        "small_neurons": stacked_neuron_weights(
            small.neuron_weights(), titles=density_titles(small.feature_probability[:, 0]), positive_only=False
        ),
        "sweep_neurons": stacked_neuron_weights(
            sweep.neuron_weights(), titles=density_titles(sweep.feature_probability[:, 0]), positive_only=False, ncols=3
        ),
        "sweep_counts": neuron_counts_by_density(
            sweep.neuron_weights(), sweep.feature_probability[:, 0], positive_only=False
        ),
    }


def train_small(
    steps: int = SMALL_STEPS, restarts: int = SMALL_RESTARTS, seed: int = DEFAULT_SEED,
    device: str | torch.device | None = None, progress: bool = False,
    model_class: type[AbsValueModel] = AbsValueModel,
) -> tuple[AbsValueModel, torch.Tensor]:
    """The ``n = 3``, ``m = 6`` study (:func:`train_small_checked`): ``(model, losses (n_densities, restarts))``."""
    trained = train_small_checked(steps, restarts, seed, device, progress, model_class)
    return trained.model, trained.losses


def train_small_checked(
    steps: int = SMALL_STEPS, restarts: int = SMALL_RESTARTS, seed: int = DEFAULT_SEED,
    device: str | torch.device | None = None, progress: bool = False,
    model_class: type[AbsValueModel] = AbsValueModel,
) -> TrainedNeurons:
    """Train the ``n = 3``, ``m = 6`` study, keep the best restart, make each density's the best found at it."""
    model = make_small_model(seed, restarts, model_class)
    return train_best(model, restarts, steps, BATCH_SIZE, LR, seed, device, progress, polish_steps=SMALL_POLISH_STEPS)


def train_sweep(
    steps: int = DEFAULT_STEPS, restarts: int = SWEEP_RESTARTS, seed: int = DEFAULT_SEED,
    device: str | torch.device | None = None, size: str = "cpu", progress: bool = False,
    model_class: type[AbsValueModel] = AbsValueModel,
) -> tuple[AbsValueModel, torch.Tensor]:
    """The sweep (:func:`train_sweep_checked`): ``(model, losses (n_densities, restarts))``."""
    trained = train_sweep_checked(steps, restarts, seed, device, size, progress, model_class)
    return trained.model, trained.losses


def train_sweep_checked(
    steps: int = DEFAULT_STEPS, restarts: int = SWEEP_RESTARTS, seed: int = DEFAULT_SEED,
    device: str | torch.device | None = None, size: str = "cpu", progress: bool = False,
    model_class: type[AbsValueModel] = AbsValueModel, densities: Sequence[float] = DENSITIES,
    polish_steps: int | None = POLISH_STEPS,
) -> TrainedNeurons:
    """Train the sweep, keep the best restart of each density, and make each the best found at its density."""
    model = make_model(seed, restarts, size, densities, model_class=model_class)
    return train_best(model, restarts, steps, BATCH_SIZE, LR, seed, device, progress, polish_steps=polish_steps,
                      contenders=SWEEP_CONTENDERS)


def run(
    out_dir: str | Path = "out/absolute-value",
    steps: int = DEFAULT_STEPS,
    device: str | torch.device | None = None,
    seed: int = DEFAULT_SEED,
    console: "Console | None" = None,
    size: str = "cpu",
) -> ExperimentResult:
    """Train both studies, print their tables, write three figures, ``params.safetensors`` and ``summary.json``.

    ``steps`` is the sweep's; the small study trains ``min(steps, SMALL_STEPS)``.
    """
    run = Run(NAME, out_dir, steps, device, seed, console)
    if size not in SIZES:
        raise ValueError(f"size must be one of {tuple(SIZES)}, got {size!r}")
    small_steps = min(run.steps, SMALL_STEPS)
    with run.timed("small"):
        trained_small = train_small_checked(small_steps, SMALL_RESTARTS, run.seed, run.device, run.progress)
    small = trained_small.model
    run.trained(f"small study: {len(SMALL_DENSITIES)} densities x {SMALL_RESTARTS} restarts x {small_steps} steps",
                run.seconds["small"])
    run.print(report(SMALL_DENSITIES, trained_small.optimum))
    small_rows = summary(small, trained_small.kept_losses)
    run.table(table(small_rows, f"{NAME}: n={SMALL_FEATURES}, m={SMALL_HIDDEN} (best of {SMALL_RESTARTS})"))
    for r in small_rows:
        signs = ", ".join(f"ReLU({'' if s > 0 else '-'}x{i})" for i, s in r.extra["relu_pairs"])
        run.print(f"  1-S = {r.density:g}: {signs}")
    with run.timed("sweep"):
        trained = train_sweep_checked(run.steps, SWEEP_RESTARTS, run.seed, run.device, size, run.progress)
    sweep = trained.model
    n, m = SIZES[size]
    run.trained(f"sweep: {len(DENSITIES)} densities x {SWEEP_RESTARTS} restarts x {run.steps} steps",
                run.seconds["sweep"])
    run.print(report(DENSITIES, trained.optimum))
    sweep_rows = summary(sweep, trained.kept_losses)
    run.table(table(sweep_rows, f"{NAME}: n={n}, m={m}, I_i = {IMPORTANCE_BASE}^i (best of {SWEEP_RESTARTS})"))
    for name, fig in figures(small, sweep).items():
        run.figure(name, fig)
    optimum = {key: {} if t.optimum is None else t.optimum.as_dict() for key, t in (("small", trained_small), ("sweep", trained))}
    return run.finish(
        models={"small": small, "sweep": sweep},
        tensors={"W": sweep.W1, "W2": sweep.W2, "b_final": sweep.b_final, "feature_probability": sweep.feature_probability,
                 "importance": sweep.importance, "restart_losses": trained.losses, "small_W1": small.W1,
                 "small_W2": small.W2, "small_b_final": small.b_final, "small_restart_losses": trained_small.losses},
        summaries={"small": small_rows, "sweep": sweep_rows},
        config={
            "small": {"n_features": SMALL_FEATURES, "n_hidden": SMALL_HIDDEN, "densities": list(SMALL_DENSITIES),
                      "steps": small_steps, "restarts": SMALL_RESTARTS, "polish_steps": SMALL_POLISH_STEPS},
            "sweep": {"size": size, "n_features": n, "n_hidden": m, "importance_base": IMPORTANCE_BASE,
                      "densities": list(DENSITIES), "steps": run.steps, "restarts": SWEEP_RESTARTS,
                      "polish_steps": POLISH_STEPS, "contenders": SWEEP_CONTENDERS},
            "batch_size": BATCH_SIZE, "lr": LR, "weight_decay": 0.01,
        },
        table={"small": [r.as_dict() for r in small_rows], "sweep": [r.as_dict() for r in sweep_rows]},
        optimality=optimum,
    )
