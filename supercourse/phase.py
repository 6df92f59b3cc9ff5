"""Empirical phase diagrams: train a whole (relative importance, density) grid at once.

The paper's phase-change experiment trains the smallest models that can show
superposition, ``n = 2`` features in ``m = 1`` dimension (and ``n = 3`` in
``m = 2``), on a grid of (importance of the *extra*, last feature, density of
every feature) points, several initialisations ("restarts") per point. Every
grid point and restart is one instance of a single :class:`~supercourse.ToyModel`,
so :func:`supercourse.train` trains the whole diagram in one batched run.

The pipeline, one function per step:

* :func:`log_axis` log-spaced axis values; :func:`make_grid` the instances of a
  grid (a :class:`PhaseGrid`: per-instance importance and density tensors);
* :func:`evaluate_losses` each trained instance's expected loss, with common
  random numbers so that restarts of one point are compared on the same inputs;
* :func:`classify` what each trained model does with the extra feature
  (:func:`supercourse.theory.classify_n2m1`, :func:`classify_n3m2`);
* :func:`aggregate_restarts` the paper's aggregation: drop the worst restart(s)
  of each point, and count the phases of the rest; :func:`majority`;
* :func:`distance_to_boundary`, :func:`distance_to_point`, :func:`agreement`
  compare the empirical diagram with the theory (distances in decades, i.e.
  in ``log10`` units of both axes);
* :func:`empirical_phase_diagram` all of it in one call, returning an
  :class:`EmpiricalPhaseDiagram`.

Instances are laid out point-major: instance ``(i * P + j) * K + k`` is restart
``k`` of relative importance ``r[i]`` and density ``p[j]`` (``R, P, K`` = number
of importances, densities, restarts), so ``values.reshape(R, P, K)`` recovers the grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from . import theory
from ._validate import check_positive_int, check_tensor
from .model import ToyModel
from .training import History, train

__all__ = [
    "IMPORTANCE_RANGE",
    "DENSITY_RANGE",
    "PHASES_N3M2_EMPIRICAL",
    "OTHER",
    "PhaseGrid",
    "EmpiricalPhaseDiagram",
    "log_axis",
    "make_grid",
    "evaluate_losses",
    "classify",
    "classify_n3m2",
    "aggregate_restarts",
    "majority",
    "best_restart",
    "distance_to_boundary",
    "distance_to_point",
    "agreement",
    "empirical_phase_diagram",
]

IMPORTANCE_RANGE = (0.1, 10.0)
"""The paper's range of the extra feature's relative importance (log axis)."""

DENSITY_RANGE = (0.01, 1.0)
"""The paper's range of the feature density ``1 - S`` (log axis)."""

OTHER = 4
"""Label of an ``n = 3, m = 2`` model that matches none of the four candidates."""

PHASES_N3M2_EMPIRICAL = (*theory.PHASES_N3M2, "other")
"""Labels of :func:`classify_n3m2`: the four candidates of :data:`supercourse.theory.PHASES_N3M2`, then ``"other"``."""

_COS_ANTIPODAL = -0.7
"""Two represented features count as antipodal when their cosine is below this."""


# --------------------------------------------------------------------------- the grid


def log_axis(low: float, high: float, n: int) -> torch.Tensor:
    """``n`` values from ``low`` to ``high`` (both included), evenly spaced in ``log``: ``(n,)`` float64."""
    n = check_positive_int("n", n)
    if not (0 < low <= high):
        raise ValueError(f"log_axis needs 0 < low <= high, got low={low!r}, high={high!r}")
    if n == 1:
        return torch.tensor([math.sqrt(low * high)], dtype=torch.float64)
    return torch.logspace(math.log10(low), math.log10(high), n, dtype=torch.float64)


@dataclass(frozen=True)
class PhaseGrid:
    """The instances of a phase-diagram run.

    Attributes:
        relative_importance: ``(R,)`` the extra (last) feature's importance; the others have 1.
        density: ``(P,)`` every feature's density ``1 - S``.
        n_restarts: ``K`` initialisations per grid point.
        n_features: 2 (``m = 1``) or more (``m = n_features - 1``).
    """

    relative_importance: torch.Tensor
    density: torch.Tensor
    n_restarts: int
    n_features: int = 2

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(R, P, K)``."""
        return (self.relative_importance.numel(), self.density.numel(), self.n_restarts)

    @property
    def n_instances(self) -> int:
        R, P, K = self.shape
        return R * P * K

    @property
    def n_hidden(self) -> int:
        return self.n_features - 1

    def importance(self) -> torch.Tensor:
        """``(n_instances, n_features)``: 1 for every feature but the last, which gets its point's ``r``."""
        R, P, K = self.shape
        r = self.relative_importance.to(torch.float32)[:, None, None].expand(R, P, K).reshape(-1)
        imp = torch.ones(self.n_instances, self.n_features)
        imp[:, -1] = r
        return imp

    def feature_probability(self) -> torch.Tensor:
        """``(n_instances, n_features)``: every feature of an instance has its point's density."""
        R, P, K = self.shape
        p = self.density.to(torch.float32)[None, :, None].expand(R, P, K).reshape(-1)
        return p[:, None].expand(-1, self.n_features).clone()

    def unflatten(self, values: torch.Tensor) -> torch.Tensor:
        """Per-instance ``(n_instances, ...)`` -> ``(R, P, K, ...)``."""
        if values.shape[0] != self.n_instances:
            raise ValueError(f"values must have n_instances={self.n_instances} rows, got shape {tuple(values.shape)}")
        return values.reshape(*self.shape, *values.shape[1:])

    def make_model(self, seed: int | None = None, activation: str = "relu") -> ToyModel:
        """An untrained ReLU-output :class:`ToyModel` with one instance per grid point and restart."""
        return ToyModel(
            self.n_features,
            self.n_hidden,
            n_instances=self.n_instances,
            feature_probability=self.feature_probability(),
            importance=self.importance(),
            activation=activation,
            seed=seed,
        )


def _axis(name: str, values: object) -> torch.Tensor:
    t = torch.as_tensor(values, dtype=torch.float64).detach().cpu().reshape(-1)
    if t.numel() == 0:
        raise ValueError(f"{name} must not be empty")
    if torch.isnan(t).any() or (t <= 0).any():
        raise ValueError(f"{name} must be positive, got {t.min().item():g}")
    return t


def make_grid(relative_importance, density, n_restarts: int = 10, n_features: int = 2) -> PhaseGrid:
    """The instances for every ``(relative_importance[i], density[j])`` point, ``n_restarts`` each.

    ``relative_importance: (R,)`` positive, ``density: (P,)`` in (0, 1]. See
    :class:`PhaseGrid` for the per-instance tensors and the instance order.
    """
    r = _axis("relative_importance", relative_importance)
    p = _axis("density", density)
    if (p > 1).any():
        raise ValueError(f"density must lie in (0, 1], got {p.max().item():g}")
    n_restarts = check_positive_int("n_restarts", n_restarts)
    n_features = check_positive_int("n_features", n_features)
    if n_features < 2:
        raise ValueError(f"n_features must be at least 2 (the extra feature is the last), got {n_features}")
    return PhaseGrid(r, p, n_restarts, n_features)


# --------------------------------------------------------------------------- evaluating and classifying


@torch.no_grad()
def evaluate_losses(model: ToyModel, n_samples: int = 2**16, seed: int = 0, max_elements: int = 2**22) -> torch.Tensor:
    """Each instance's expected loss, estimated on ``n_samples`` fresh inputs: ``(n_instances,)`` float64, CPU.

    The loss is the model's own (:meth:`ToyModel.per_instance_loss`: importance-
    weighted, averaged over features). Every instance sees the *same* uniform
    draws (common random numbers), turned into sparse features at its own
    density, so instances of one grid point are ranked on identical inputs.
    Works in chunks of at most ``max_elements`` entries per tensor.
    """
    if not isinstance(model, ToyModel):
        raise TypeError(f"model must be a supercourse.ToyModel, got {type(model).__name__}")
    n_samples = check_positive_int("n_samples", n_samples)
    dev, dt = model.W.device, model.W.dtype
    n_inst, n = model.n_instances, model.n_features
    W, b = model.W.detach(), model.b_final.detach()[:, None, :]
    inv_p = model.feature_probability.to(dev, dt).clamp_min(1e-30).reciprocal()[:, None, :]  # (N, 1, n)
    imp = model.importance.to(dev, dt)[:, None, :]
    gen = torch.Generator(device="cpu").manual_seed(seed)
    chunk = max(1, min(n_samples, max_elements // (n_inst * n)))
    total = torch.zeros(n_inst, dtype=torch.float64, device=dev)
    done = 0
    while done < n_samples:
        rows = min(chunk, n_samples - done)
        u = torch.rand(1, rows, n, generator=gen, dtype=dt).to(dev)
        x = u * inv_p  # (N, rows, n): active where u < p, with value u / p
        x.mul_(x < 1)
        out = torch.baddbmm(b, torch.bmm(x, W.mT), W)
        if model.activation == "relu":
            out.relu_()
        out.sub_(x).square_().mul_(imp)
        total += out.sum(dim=(1, 2), dtype=torch.float64)
        done += rows
    return (total / (n_samples * n)).cpu()


def classify_n3m2(W: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Label trained ``n = 3, m = 2`` models by which candidate of :data:`supercourse.theory.PHASES_N3M2` they are.

    ``W: (n_instances, 2, 3)``; the extra feature is the last. A feature is
    represented when ``||W_i|| > threshold``; two represented features are
    antipodal when their cosine is below -0.7. Returns ``(n_instances,)``
    integers indexing :data:`PHASES_N3M2_EMPIRICAL`:

    * 0 the extra feature is not represented;
    * 2 it is antipodal to one of the first two;
    * 1 it is represented on its own (``|cos| < 0.5`` with every represented first
      feature) and exactly one first feature is represented;
    * 3 it is represented on its own and the first two are antipodal to each other;
    * 4 (:data:`OTHER`) anything else (e.g. all three on a triangle).
    """
    W = check_tensor("W", W, shape=(None, 2, 3), names=("n_instances", "n_hidden=2", "n_features=3")).detach()
    W = W.to(torch.float64)
    norms = W.norm(dim=1)
    rep = norms > threshold
    unit = W / norms.clamp_min(1e-12)[:, None, :]
    cos = unit.mT @ unit  # (N, 3, 3)
    anti = (cos < _COS_ANTIPODAL) & rep[:, :, None] & rep[:, None, :]
    extra = rep[:, 2]
    extra_anti = anti[:, 2, 0] | anti[:, 2, 1]
    firsts = rep[:, 0].long() + rep[:, 1].long()
    firsts_anti = anti[:, 0, 1]
    labels = torch.full((W.shape[0],), OTHER, dtype=torch.long)
    labels[~extra] = 0
    labels[extra & extra_anti] = 2
    overlaps = (cos[:, 2, :2].abs() >= 0.5) & rep[:, :2]  # the extra feature leans on a represented first one
    alone = extra & ~extra_anti & ~overlaps.any(dim=1)
    labels[alone & (firsts == 1)] = 1
    labels[alone & (firsts == 2) & firsts_anti] = 3
    return labels


def classify(W: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """:func:`supercourse.theory.classify_n2m1` for ``W: (N, 1, 2)``, :func:`classify_n3m2` for ``W: (N, 2, 3)``."""
    W = check_tensor("W", W, shape=(None, None, None), names=("n_instances", "n_hidden", "n_features"))
    if tuple(W.shape[1:]) == (1, 2):
        return theory.classify_n2m1(W, threshold)
    if tuple(W.shape[1:]) == (2, 3):
        return classify_n3m2(W, threshold)
    raise ValueError(f"classify knows n=2, m=1 and n=3, m=2 models; W has n_hidden={W.shape[1]}, n_features={W.shape[2]}")


# --------------------------------------------------------------------------- aggregating restarts


def _check_grid_values(labels: object, losses: object) -> tuple[torch.Tensor, torch.Tensor]:
    labels = check_tensor("labels", labels, shape=(None, None, None), names=("R", "P", "n_restarts"), floating=False)
    losses = check_tensor("losses", losses, shape=tuple(labels.shape), names=("R", "P", "n_restarts"))
    if labels.is_floating_point():
        raise TypeError(f"labels must be integers (phase indices), got dtype {labels.dtype}")
    return labels, losses


def aggregate_restarts(labels: torch.Tensor, losses: torch.Tensor, drop_worst: int = 1, n_phases: int = 3) -> torch.Tensor:
    """The fraction of each grid point's kept restarts in each phase, after dropping the worst.

    ``labels: (R, P, K)`` phase indices, ``losses: (R, P, K)``. The
    ``drop_worst`` restarts with the highest loss at each point are discarded
    (the paper trained 10 per point and discarded 1); ``drop_worst = K - 1``
    keeps only the best. Returns ``fractions: (R, P, n_phases)``, summing to 1
    over the last axis.
    """
    labels, losses = _check_grid_values(labels, losses)
    K = labels.shape[-1]
    if isinstance(drop_worst, bool) or not isinstance(drop_worst, int) or not 0 <= drop_worst < K:
        raise ValueError(f"drop_worst must be an int in [0, n_restarts - 1 = {K - 1}], got {drop_worst!r}")
    keep = losses.argsort(dim=-1, stable=True)[..., : K - drop_worst]
    kept = labels.gather(-1, keep)
    if (kept < 0).any() or (kept >= n_phases).any():
        raise ValueError(f"labels must lie in [0, n_phases = {n_phases}), got {kept.min().item()}..{kept.max().item()}")
    counts = torch.nn.functional.one_hot(kept.long(), n_phases).sum(dim=-2)
    return counts.to(torch.float64) / (K - drop_worst)


def majority(fractions: torch.Tensor) -> torch.Tensor:
    """The most frequent phase at each point: ``(R, P, n_phases) -> (R, P)`` (ties go to the lower index)."""
    fractions = check_tensor("fractions", fractions, shape=(None, None, None), names=("R", "P", "n_phases"))
    return fractions.argmax(dim=-1)


def best_restart(labels: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
    """The phase of the lowest-loss restart at each point: ``(R, P)``."""
    labels, losses = _check_grid_values(labels, losses)
    return labels.gather(-1, losses.argmin(dim=-1, keepdim=True))[..., 0]


# --------------------------------------------------------------------------- comparing with the theory


def _log_grid(relative_importance, density) -> tuple[torch.Tensor, torch.Tensor]:
    r = _axis("relative_importance", relative_importance).log10()
    p = _axis("density", density).log10()
    return r[:, None].expand(-1, p.numel()), p[None, :].expand(r.numel(), -1)


def distance_to_point(relative_importance, density, point: tuple[float, float] | None = None) -> torch.Tensor:
    """Distance of each grid point from ``point = (r, p)`` (default the triple point), in decades: ``(R, P)``."""
    r0, p0 = theory.triple_point() if point is None else point
    lr, lp = _log_grid(relative_importance, density)
    return ((lr - math.log10(r0)) ** 2 + (lp - math.log10(p0)) ** 2).sqrt()


def distance_to_boundary(
    relative_importance,
    density,
    diagram: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = theory.phase_diagram,
    resolution: int = 801,
) -> torch.Tensor:
    """Distance of each grid point from the nearest boundary between phases of ``diagram``, in decades: ``(R, P)``.

    ``diagram(r, p) -> (len(r), len(p))`` labels (default the ``n = 2`` theory)
    is evaluated on a ``resolution x resolution`` log grid covering the axes
    (with a margin); the boundary is where neighbouring cells differ. The
    distance is accurate to about one fine cell.
    """
    lr, lp = _log_grid(relative_importance, density)
    margin = 0.5
    fr = torch.linspace(lr.min().item() - margin, lr.max().item() + margin, resolution, dtype=torch.float64)
    fp = torch.linspace(lp.min().item() - margin, lp.max().item() + margin, resolution, dtype=torch.float64)
    fp_valid = fp[fp <= 0]  # densities above 1 do not exist
    labels = torch.as_tensor(diagram(10**fr, 10**fp_valid))
    edge_r = labels[1:, :] != labels[:-1, :]
    edge_p = labels[:, 1:] != labels[:, :-1]
    pts = []
    ir, jp = torch.nonzero(edge_r, as_tuple=True)
    pts.append(torch.stack([(fr[ir] + fr[ir + 1]) / 2, fp_valid[jp]], dim=1))
    ir, jp = torch.nonzero(edge_p, as_tuple=True)
    pts.append(torch.stack([fr[ir], (fp_valid[jp] + fp_valid[jp + 1]) / 2], dim=1))
    boundary = torch.cat(pts)
    if boundary.numel() == 0:
        return torch.full(lr.shape, math.inf, dtype=torch.float64)
    grid = torch.stack([lr.reshape(-1), lp.reshape(-1)], dim=1)
    return torch.cdist(grid, boundary).min(dim=1).values.reshape(lr.shape)


def agreement(empirical: torch.Tensor, theoretical: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """The fraction of grid points (where ``mask`` is true, default all) whose labels agree."""
    if empirical.shape != theoretical.shape:
        raise ValueError(f"empirical {tuple(empirical.shape)} and theoretical {tuple(theoretical.shape)} differ in shape")
    same = empirical == theoretical
    if mask is not None:
        if mask.shape != same.shape:
            raise ValueError(f"mask must have shape {tuple(same.shape)}, got {tuple(mask.shape)}")
        same = same[mask]
    return float(same.double().mean()) if same.numel() else float("nan")


# --------------------------------------------------------------------------- the whole run


@dataclass
class EmpiricalPhaseDiagram:
    """A trained phase diagram, its aggregation and the theory beside it.

    Attributes:
        grid: the :class:`PhaseGrid` trained.
        model: the trained model (on the CPU), one instance per grid point and restart.
        history: what :func:`supercourse.train` measured.
        losses: ``(R, P, K)`` expected loss of each restart (:func:`evaluate_losses`).
        labels: ``(R, P, K)`` each restart's phase (:func:`classify`).
        fractions: ``(R, P, n_phases)`` phases of the kept restarts (:func:`aggregate_restarts`).
        phases: ``(R, P)`` the majority phase of the kept restarts.
        best: ``(R, P)`` the phase of the lowest-loss restart.
        theory: ``(R, P)`` the theoretical phase diagram on the same grid.
        drop_worst: restarts dropped per point.
        phase_names: names of the empirical labels.
    """

    grid: PhaseGrid
    model: ToyModel
    history: History
    losses: torch.Tensor
    labels: torch.Tensor
    fractions: torch.Tensor
    phases: torch.Tensor
    best: torch.Tensor
    theory: torch.Tensor
    drop_worst: int
    phase_names: tuple[str, ...] = field(default=theory.PHASES)

    @property
    def relative_importance(self) -> torch.Tensor:
        return self.grid.relative_importance

    @property
    def density(self) -> torch.Tensor:
        return self.grid.density

    def theory_diagram(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        return theory.phase_diagram if self.grid.n_features == 2 else theory.phase_diagram_n3m2

    def agreement(self, which: str = "phases", min_distance_from_triple_point: float = 0.0) -> float:
        """Fraction of points where ``which`` (``"phases"`` or ``"best"``) equals the theory,
        among points at least ``min_distance_from_triple_point`` decades from the triple point."""
        emp = {"phases": self.phases, "best": self.best}[which]
        mask = distance_to_point(self.relative_importance, self.density) >= min_distance_from_triple_point
        return agreement(emp, self.theory, mask)

    def disagreement_distances(self, which: str = "phases") -> torch.Tensor:
        """Distance (decades) to the theoretical boundary of every point that disagrees with the theory."""
        emp = {"phases": self.phases, "best": self.best}[which]
        dist = distance_to_boundary(self.relative_importance, self.density, self.theory_diagram())
        return dist[emp != self.theory]


def empirical_phase_diagram(
    relative_importance,
    density,
    n_restarts: int = 10,
    drop_worst: int = 1,
    n_features: int = 2,
    steps: int = 10_000,
    batch_size: int = 1024,
    lr: float = 1e-3,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
    eval_samples: int = 2**16,
) -> EmpiricalPhaseDiagram:
    """Train the whole grid in one batched run, classify, aggregate and compare with the theory.

    The paper's recipe by default (AdamW, lr 1e-3, batch 1024, 10,000 steps;
    10 restarts per point, the worst dropped). ``n_features=3`` trains the
    ``n = 3, m = 2`` version and compares it with
    :func:`supercourse.theory.phase_diagram_n3m2`.
    """
    grid = make_grid(relative_importance, density, n_restarts, n_features)
    if grid.n_features not in (2, 3):
        raise ValueError(f"n_features must be 2 or 3 (the paper's diagrams), got {n_features}")
    model = grid.make_model(seed=seed)
    history = train(model, steps=steps, batch_size=batch_size, lr=lr, seed=seed, device=device, progress=progress)
    losses = grid.unflatten(evaluate_losses(model, n_samples=eval_samples, seed=seed + 1))
    model.cpu()
    labels = grid.unflatten(classify(model.W.detach()))
    if n_features == 2:
        names, diagram = theory.PHASES, theory.phase_diagram
    else:
        names, diagram = PHASES_N3M2_EMPIRICAL, theory.phase_diagram_n3m2
    fractions = aggregate_restarts(labels, losses, drop_worst, n_phases=len(names))
    return EmpiricalPhaseDiagram(
        grid=grid,
        model=model,
        history=history,
        losses=losses,
        labels=labels,
        fractions=fractions,
        phases=majority(fractions),
        best=best_restart(labels, losses),
        theory=diagram(grid.relative_importance, grid.density),
        drop_worst=drop_worst,
        phase_names=names,
    )
