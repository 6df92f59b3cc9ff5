"""Adversarial vulnerability across a sparsity sweep: superposition makes models easier to attack.

:data:`N_FEATURES` features of equal importance in :data:`N_HIDDEN` dimensions,
one instance per density in :data:`DENSITIES` (dense to sparse). After training,
each instance is attacked with the analytic optimal L2 attack of
:mod:`supercourse.adversarial` (along ``(W^T W)_i``, norm 0.1 of the average input
norm, the most damaging feature taken), on a fixed evaluation batch. Its
vulnerability ``L' - L`` is divided by that of the model without superposition
(the first ``m`` features on dedicated dimensions). The ratio is 1 for the dense
models, rises sharply where superposition forms, and follows features per
dimension ``||W||_F^2 / m`` across the sweep.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .. import adversarial, metrics
from ..model import ToyModel
from ..training import History, train
from ._artifacts import save_params, save_summary
from ._common import ExperimentResult, SummaryRow, densities_of, get_console, prepare_run, save_figure, summarize

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure
    from rich.console import Console

NAME = "adversarial"
DESCRIPTION = "analytic optimal L2 attack: vulnerability rises sharply with superposition and tracks ||W||_F^2 / m"

N_FEATURES = 40
N_HIDDEN = 5
MAX_SPARSITY_FACTOR = 50.0
N_INSTANCES = 8
DENSITIES: tuple[float, ...] = tuple((MAX_SPARSITY_FACTOR ** -torch.linspace(0, 1, N_INSTANCES)).tolist())
"""``50^-linspace(0, 1, 8)``: from 1 (dense) to 0.02."""

DEFAULT_STEPS = 10_000
DEFAULT_SEED = 0
BATCH_SIZE = 1024
LR = 1e-3
EVAL_BATCH = 8192
"""The attack is measured on one fixed batch of 8192 inputs per instance (seed ``seed + 1``)."""


def make_model(activation: str = "relu", seed: int | None = DEFAULT_SEED) -> ToyModel:
    """The sweep: ``W: (8, 5, 40)``, equal importance, one instance per density."""
    return ToyModel(N_FEATURES, N_HIDDEN, n_instances=len(DENSITIES), feature_probability=torch.tensor(DENSITIES),
                    importance=1.0, activation=activation, seed=seed)


def summary(model: ToyModel, history: History | None = None) -> list[SummaryRow]:
    """One row per density (:func:`supercourse.experiments.summarize`)."""
    return summarize(model, history)


@dataclass(frozen=True)
class VulnerabilityRow:
    """One instance: its density, vulnerability (absolute and relative), features per dimension."""

    density: float
    vulnerability: float
    baseline: float
    relative: float
    features_per_dimension: float
    represented: int


@torch.no_grad()
def vulnerability_rows(model: ToyModel, seed: int = DEFAULT_SEED, fraction: float = adversarial.ATTACK_FRACTION
                       ) -> list[VulnerabilityRow]:
    """Attack every instance of a trained sweep on a fixed evaluation batch (seed ``seed + 1``)."""
    x = model.generate_batch(EVAL_BATCH, generator=torch.Generator(device=model.device).manual_seed(seed + 1))
    W, b = model.W.detach(), model.b_final.detach()
    imp = model.importance
    vul = adversarial.vulnerability(W, b, x, imp, fraction)
    W0, b0 = adversarial.no_superposition_weights(W.shape[0], W.shape[1], W.shape[2], imp.cpu())
    base = adversarial.vulnerability(W0.to(W), b0.to(W), x, imp, fraction)
    fpd = adversarial.features_per_dimension(W)
    rep = metrics.n_represented(W)
    return [
        VulnerabilityRow(float(p), float(v), float(b_), float(v / b_), float(f), int(r))
        for p, v, b_, f, r in zip(densities_of(model).tolist(), vul.tolist(), base.tolist(), fpd.tolist(), rep.tolist())
    ]


def vulnerability_figure(rows: list[VulnerabilityRow]) -> "Figure":
    """Relative vulnerability and features per dimension against ``1 / (1 - S)`` (log x)."""
    import matplotlib.pyplot as plt

    x = [1 / r.density for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.8), layout="constrained")
    ax.plot(x, [r.relative for r in rows], "o-", color="C3", label="vulnerability / no-superposition model's")
    ax.plot(x, [r.features_per_dimension for r in rows], "s--", color="C0", label="features per dimension ||W||_F^2 / m")
    ax.axhline(1, color="0.7", lw=0.8)
    ax.set(xscale="log", xlabel="1 / (1 - S)", ylabel="ratio", ylim=(0, None),
           title=f"analytic L2 attack (norm 0.1 of the mean input norm), n={N_FEATURES}, m={N_HIDDEN}")
    ax.legend(loc="upper left", fontsize=8)
    return fig


def run(
    out_dir: str | Path = "out/adversarial",
    steps: int = DEFAULT_STEPS,
    device: str | torch.device | None = None,
    seed: int = DEFAULT_SEED,
    console: "Console | None" = None,
) -> ExperimentResult:
    """Train the sweep, attack it, print the table, write the figure, ``params.safetensors`` and ``summary.json``."""
    import matplotlib.pyplot as plt
    from rich.table import Table

    start = time.perf_counter()
    out, steps, dev, seed = prepare_run(out_dir, steps, device, seed)
    console = get_console(console)
    model = make_model(seed=seed)
    history = train(model, steps=steps, batch_size=BATCH_SIZE, lr=LR, seed=seed, device=dev,
                    progress=console.is_terminal)
    console.print(f"trained {model.n_instances} instances (n={N_FEATURES}, m={N_HIDDEN}) x {steps} steps on "
                  f"{dev.type} in {time.perf_counter() - start:.1f} s")
    rows = vulnerability_rows(model, seed)
    model.cpu()
    table = Table(title=f"{NAME}: n={N_FEATURES}, m={N_HIDDEN}, attack norm {adversarial.ATTACK_FRACTION:g} x mean "
                        "input norm", title_justify="left", header_style="bold")
    for col in ("1-S", "represented", "L' - L", "no-superp. L' - L", "relative", "||W||_F^2 / m"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(f"{r.density:.3g}", str(r.represented), f"{r.vulnerability:.3g}", f"{r.baseline:.3g}",
                      f"{r.relative:.2f}", f"{r.features_per_dimension:.2f}")
    console.print(table)
    rel = torch.tensor([r.relative for r in rows])
    fpd = torch.tensor([r.features_per_dimension for r in rows])
    corr = float(torch.corrcoef(torch.stack([rel, fpd]))[0, 1])
    console.print(f"correlation of relative vulnerability with features per dimension: {corr:.2f}")
    fig = vulnerability_figure(rows)
    figures = {"vulnerability": save_figure(fig, out / "vulnerability.png")}
    plt.close(fig)
    save_params(out, {"W": model.W, "b_final": model.b_final})
    save_summary(out, {
        "name": NAME, "steps": steps, "seed": seed, "device": str(dev), "batch_size": BATCH_SIZE, "lr": LR,
        "n_features": N_FEATURES, "n_hidden": N_HIDDEN, "densities": list(DENSITIES), "importance": 1.0,
        "attack_fraction": adversarial.ATTACK_FRACTION, "eval_batch": EVAL_BATCH,
        "rows": [asdict(r) for r in rows], "correlation": corr,
    })
    return ExperimentResult(
        name=NAME, models={"relu": model}, histories={"relu": history}, summaries={"relu": summary(model, history)},
        figures=figures, steps=steps, seed=seed, device=str(dev), wall_time=time.perf_counter() - start,
    )
