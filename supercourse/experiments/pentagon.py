"""The pentagon study: five features in two dimensions, and one of them gets sparser.

The paper's section "The Geometry of Superposition", non-uniform sparsity.
With ``n = 5`` features of equal importance in ``m = 2`` dimensions, all at
density ``1 - S = 0.05``, the ReLU-output model puts the five features on a
regular pentagon (feature dimensionality 2/5 each). Now make feature 0
``ratio`` times sparser (density ``0.05 / ratio``) than the other four:

* for small ratios the pentagon survives, deformed;
* past a critical ratio the model drops feature 0 and puts the other four on
  **two digons** (two orthogonal antipodal pairs, dimensionality 1/2 each).

The change is a *first-order* phase transition: both arrangements are local
minima on both sides of it and they swap which one has the lower loss. Two-
dimensional models often stop in the worse one, so every ratio is trained
from several random initialisations (*restarts*), plus one started on each
arrangement, and the one with the lowest loss is kept.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import torch

from .. import plots
from .._validate import check_positive_int
from ..geometry import tegum_factors
from ..model import ToyModel
from ..training import History, train
from ._common import ExperimentResult, SummaryRow, save_figure, summarize
from ._run import Run

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console
    from rich.table import Table

NAME = "pentagon"
DESCRIPTION = "n=5, m=2, density 0.05: a regular pentagon; make one feature sparser and it jumps to two digons"

N_FEATURES = 5
N_HIDDEN = 2
DENSITY = 0.05
"""The density ``1 - S`` of features 1 to 4 (and of feature 0 at ratio 1)."""
SPARSE_FEATURE = 0
MAX_RATIO = 6.0
N_RATIOS = 12
RATIOS: tuple[float, ...] = tuple(torch.logspace(0, math.log10(MAX_RATIO), N_RATIOS).tolist())
"""How many times sparser feature 0 is than the others, one per instance: 1 to 6, log-spaced."""
DENSITIES: tuple[float, ...] = tuple(DENSITY / r for r in RATIOS)
"""Feature 0's density at each ratio (the other features stay at :data:`DENSITY`)."""
DEFAULT_STEPS = 10_000
DEFAULT_SEED = 0
BATCH_SIZE = 1024
LR = 1e-3
"""The paper's recipe (AdamW, weight decay 0.01, constant learning rate): about half a minute on two cores."""
RESTARTS = 4
"""Random initialisations per ratio; two more start on the pentagon and on the two digons."""
EVAL_POINTS = 2048
"""Quasi-random points per set of active features in :func:`expected_loss`."""

PENTAGON = "pentagon"
TWO_DIGONS = "two digons"


def feature_probability(ratios: Sequence[float] | torch.Tensor = RATIOS) -> torch.Tensor:
    """``(n_ratios, 5)``: :data:`DENSITY` everywhere, except feature 0 at ``DENSITY / ratio``."""
    r = torch.as_tensor(ratios, dtype=torch.float32).reshape(-1)
    if not bool((r >= 1).all()):
        raise ValueError(f"ratios must be >= 1 (feature 0 is sparser than the others), got {r.tolist()}")
    p = torch.full((r.shape[0], N_FEATURES), DENSITY)
    p[:, SPARSE_FEATURE] = DENSITY / r
    return p


def pentagon_W() -> torch.Tensor:
    """``(2, 5)``: a regular pentagon of unit vectors, feature ``i`` at angle ``72° i``."""
    angles = torch.arange(N_FEATURES) * 2 * math.pi / N_FEATURES
    return torch.stack([angles.cos(), angles.sin()])


def two_digons_W() -> torch.Tensor:
    """``(2, 5)``: features 1, 2 antipodal on one axis, 3, 4 on the other, feature 0 dropped."""
    return torch.tensor([[0.0, 1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0, -1.0]])


def make_model(
    activation: str = "relu",
    seed: int | None = DEFAULT_SEED,
    restarts: int = 1,
    ratios: Sequence[float] | torch.Tensor = RATIOS,
    warm_starts: bool = False,
) -> ToyModel:
    """An untrained model with ``restarts`` random initialisations of every ratio, restart-major.

    Instance ``r * n_ratios + k`` is restart ``r`` of ratio ``k``: ``W: (restarts *
    n_ratios, 2, 5)``. With ``warm_starts``, two more restarts per ratio begin on
    :func:`pentagon_W` and on :func:`two_digons_W` (``(restarts + 2) * n_ratios`` instances).
    """
    restarts = check_positive_int("restarts", restarts)
    p = feature_probability(ratios)
    copies = restarts + (2 if warm_starts else 0)
    model = ToyModel(
        N_FEATURES,
        N_HIDDEN,
        n_instances=copies * p.shape[0],
        feature_probability=p.repeat(copies, 1),
        importance=1.0,
        activation=activation,
        seed=seed,
    )
    if warm_starts:
        n = p.shape[0]
        with torch.no_grad():
            model.W[restarts * n : (restarts + 1) * n] = pentagon_W()
            model.W[(restarts + 1) * n :] = two_digons_W()
    return model


def summary(model: ToyModel, history: History | None = None) -> list[SummaryRow]:
    """One row per instance: features represented, in superposition, antipodal pairs, min bias, ``D*``."""
    return summarize(model, history)


def shape_of(W: torch.Tensor) -> list[str]:
    """Name each instance's arrangement: ``"pentagon"``, ``"two digons"``, or its tegum factors.

    ``W: (n_instances, 2, 5)``. A pentagon is one factor of all five features
    spanning two dimensions (deformed or not); two digons are two antipodal
    pairs (and feature 0 unlearned). Anything else is described by its factors,
    e.g. ``"digon + 2 features in 2 dimensions"``.
    """
    out = []
    for factors in tegum_factors(W):
        names = sorted(f.name for f in factors)
        if names == ["pentagon"]:
            out.append(PENTAGON)
        elif names == ["digon", "digon"]:
            out.append(TWO_DIGONS)
        else:
            out.append(" + ".join(names) if names else "nothing")
    return out


@torch.no_grad()
def expected_loss(model: ToyModel, points: int = EVAL_POINTS, seed: int = 1) -> torch.Tensor:
    """Each instance's expected loss, computed by cases: ``(n_instances,)``.

    The expectation is split over which features are active: for each subset
    ``A`` of the ``n`` features (``2^n`` of them; ``n <= 12``), the chance that
    exactly ``A`` is active (from each instance's densities) times the mean
    loss over ``points`` quasi-random (scrambled Sobol) values of the active
    features, the same values for every instance. Rare cases (two or three
    features at once) get as many points as common ones, so the result is
    precise to about 1e-4 relative, where a plain sample of the same size would
    be off by several percent; and arrangements that differ only by a rotation
    or a relabelling of features get the same loss. The loss is the model's
    (:meth:`~supercourse.ToyModel.per_instance_loss`: importance-weighted
    squared error, mean over features); cases are summed in float64.
    """
    points = check_positive_int("points", points)
    n = model.n_features
    if n > 12:
        raise ValueError(f"expected_loss enumerates all 2^n active sets; n_features={n} is too many (at most 12)")
    W, b = model.W.detach().cpu().float(), model.b_final.detach().cpu().float()
    p = model.feature_probability.detach().cpu().double()  # (n_instances, n)
    importance = model.importance.detach().cpu().float()
    G = W.mT @ W  # (n_instances, n, n): x' = act(x G + b) for every instance
    total = torch.zeros(model.n_instances, dtype=torch.float64)
    for k in range(n + 1):
        values = torch.zeros(1, 0)
        if k:
            values = torch.quasirandom.SobolEngine(k, scramble=True, seed=seed + k).draw(points)
        for active in combinations(range(n), k):
            idx = list(active)
            mask = torch.zeros(n, dtype=torch.bool)
            mask[idx] = True
            weight = torch.where(mask, p, 1 - p).prod(dim=1)  # (n_instances,)
            # The same active values for every instance: one matmul gives every instance's output.
            pre = torch.einsum("pa,ian->pin", values, G[:, idx, :]) + b  # (points, n_instances, n)
            out = torch.relu(pre) if model.activation == "relu" else pre
            x = torch.zeros(values.shape[0], 1, n)
            x[:, 0, idx] = values
            loss = (importance * (x - out).square()).mean(dim=(0, 2))  # per_instance_loss of this case
            total += weight * loss.double()
    return total.float()


def restart_losses(model: ToyModel, n_ratios: int, points: int = EVAL_POINTS) -> torch.Tensor:
    """:func:`expected_loss` of every instance, arranged ``(n_ratios, n_restarts)`` (instances restart-major)."""
    if model.n_instances % n_ratios:
        raise ValueError(f"model.n_instances={model.n_instances} is not a multiple of n_ratios={n_ratios}")
    return expected_loss(model, points).view(-1, n_ratios).T.contiguous()


@dataclass
class Study:
    """The outcome of the pentagon study.

    Attributes:
        ratios: ``(n_ratios,)`` how many times sparser feature 0 is.
        W: ``(n_ratios, 2, 5)`` the kept (lowest-loss) model of each ratio.
        b: ``(n_ratios, 5)`` its bias.
        losses: ``(n_ratios, n_restarts)`` every restart's loss.
        shapes: ``n_ratios`` rows of ``n_restarts`` shape names.
        kept: ``(n_ratios,)`` the index of the kept restart.
        transition: the ratio where the kept shape changes from pentagon to two
            digons (the geometric mean of the two ratios around it), or ``None``
            when the sweep shows no single clean switch.
    """

    ratios: torch.Tensor
    W: torch.Tensor
    b: torch.Tensor
    losses: torch.Tensor
    shapes: list[list[str]]
    kept: torch.Tensor
    transition: float | None

    @property
    def kept_shapes(self) -> list[str]:
        return [row[int(k)] for row, k in zip(self.shapes, self.kept)]


def transition_ratio(ratios: Sequence[float] | torch.Tensor, kept_shapes: Sequence[str]) -> float | None:
    """Where the kept shape switches from pentagon to two digons, once and for all.

    The geometric mean of the last pentagon ratio and the first two-digons
    ratio, when the kept shapes are pentagons up to some ratio and two digons
    from the next one on; ``None`` otherwise.
    """
    r = torch.as_tensor(ratios, dtype=torch.float64).reshape(-1).tolist()
    shapes = list(kept_shapes)
    if len(shapes) != len(r):
        raise ValueError(f"kept_shapes must have one entry per ratio ({len(r)}), got {len(shapes)}")
    for i in range(1, len(shapes)):
        if all(s == PENTAGON for s in shapes[:i]) and all(s == TWO_DIGONS for s in shapes[i:]):
            return math.sqrt(r[i - 1] * r[i])
    return None


def analyse(model: ToyModel, ratios: Sequence[float] | torch.Tensor = RATIOS, points: int = EVAL_POINTS) -> Study:
    """Compare the restarts of a trained :func:`make_model` by their expected loss and keep the best of each ratio."""
    r = torch.as_tensor(ratios, dtype=torch.float64).reshape(-1)
    n = r.shape[0]
    losses = restart_losses(model, n, points)
    W = model.W.detach().cpu()
    names = shape_of(W)
    shapes = [[names[j * n + i] for j in range(losses.shape[1])] for i in range(n)]
    kept = losses.argmin(dim=1)
    index = kept * n + torch.arange(n)
    kept_shapes = [row[int(k)] for row, k in zip(shapes, kept)]
    return Study(
        ratios=r,
        W=W[index],
        b=model.b_final.detach().cpu()[index],
        losses=losses,
        shapes=shapes,
        kept=kept,
        transition=transition_ratio(r, kept_shapes),
    )


def run_study(
    steps: int = DEFAULT_STEPS,
    restarts: int = RESTARTS,
    ratios: Sequence[float] | torch.Tensor = RATIOS,
    device: str | torch.device | None = None,
    seed: int = DEFAULT_SEED,
    progress: bool = False,
    points: int = EVAL_POINTS,
) -> tuple[Study, History]:
    """Train every ratio from ``restarts`` random inits and the two warm starts (the paper's recipe), then :func:`analyse`.

    Returns the :class:`Study` and the training :class:`~supercourse.training.History`.
    """
    model = make_model(seed=seed, restarts=restarts, ratios=ratios, warm_starts=True)
    history = train(model, steps=steps, batch_size=BATCH_SIZE, lr=LR, seed=seed, device=device, progress=progress)
    return analyse(model.cpu(), ratios, points), history


def study_table(study: Study, title: str = "") -> "Table":
    """A :class:`rich.table.Table`: one line per ratio, the kept shape and what every restart found."""
    from rich.table import Table

    table = Table(
        title=title, title_justify="left", header_style="bold",
        caption="restarts: what each found, P pentagon, D two digons, ? other", caption_justify="left",
    )
    for col in ("ratio", "1-S of feature 0", "kept", "‖W_0‖", "loss", "restarts"):
        table.add_column(col, justify="left" if col in ("kept", "restarts") else "right")
    letters = {PENTAGON: "P", TWO_DIGONS: "D"}
    for i, r in enumerate(study.ratios.tolist()):
        k = int(study.kept[i])
        table.add_row(
            f"{r:.2f}",
            f"{DENSITY / r:.4f}",
            study.shapes[i][k],
            f"{study.W[i, :, SPARSE_FEATURE].norm().item():.2f}",
            f"{study.losses[i, k].item():.4g}",
            "".join(letters.get(s, "?") for s in study.shapes[i]),
        )
    return table


def study_figure(study: Study):
    """The paper-style figure of a :class:`Study` (:func:`supercourse.plots.pentagon_study`)."""
    return plots.pentagon_study(study.ratios, study.W, study.losses, study.shapes, study.kept, study.transition)


def write_figures(study: Study, out_dir: Path) -> dict[str, Path]:
    """``pentagon_study.png`` in ``out_dir``."""
    figures = {"pentagon_study": study_figure(study)}
    return {name: save_figure(fig, Path(out_dir) / f"{name}.png") for name, fig in figures.items()}


def run(
    out_dir: str | Path = "out/pentagon",
    steps: int = DEFAULT_STEPS,
    device: str | torch.device | None = None,
    seed: int = DEFAULT_SEED,
    console: "Console | None" = None,
    restarts: int = RESTARTS,
) -> ExperimentResult:
    """Train the study, print what each ratio keeps and where the transition is, write the figures.

    Writes ``pentagon_study.png`` into ``out_dir``.
    ``ExperimentResult.models["relu"]`` holds the kept model of every ratio.
    """
    run = Run(NAME, out_dir, steps, device, seed, console)
    t0 = time.perf_counter()
    study, history = run_study(run.steps, restarts, RATIOS, run.device, run.seed, progress=run.progress)
    run.trained(f"{len(RATIOS)} ratios x ({restarts} random + 2 warm) restarts x {run.steps} steps",
                time.perf_counter() - t0, part="train")
    run.table(study_table(study, f"{NAME}: n=5, m=2, features 1-4 at 1-S = {DENSITY}"))
    where = "no single clean switch" if study.transition is None else f"at ratio ≈ {study.transition:.2f}"
    run.print(f"pentagon -> two digons: {where}")
    kept = make_model(seed=run.seed)
    with torch.no_grad():
        kept.W.copy_(study.W)
        kept.b_final.copy_(study.b)
    run.figures_written(write_figures(study, run.out))
    table = [
        {"ratio": r, "density_feature_0": DENSITY / r, "kept": study.shapes[i][int(study.kept[i])],
         "norm_W_0": study.W[i, :, SPARSE_FEATURE].norm().item(), "loss": study.losses[i, int(study.kept[i])].item(),
         "restarts": study.shapes[i], "restart_losses": study.losses[i]}
        for i, r in enumerate(study.ratios.tolist())
    ]
    return run.finish(
        models={"relu": kept}, histories={"relu": history}, summaries={"relu": summary(kept)},
        config={"ratios": study.ratios, "density": DENSITY, "sparse_feature": SPARSE_FEATURE,
                "random_restarts": restarts, "warm_starts": 2, "batch_size": BATCH_SIZE, "lr": LR},
        table={"ratios": table, "transition_ratio": study.transition},
    )
