"""Learning dynamics: feature dimensionalities recorded during training, and their jumps.

While a model trains, each feature's dimensionality ``D_i`` (lesson 5) does not
drift smoothly from its initial value to its final one: it sits on an "energy
level" (0 unlearned, 1/2 in a digon, 2/5 in a pentagon, ...), leaves it, and
settles on another, and the loss drops when it does. This module records the
snapshots and finds the jumps:

* :class:`DimensionalityRecorder` is a ``callback(step, model, per_instance_loss)``
  for :func:`supercourse.train`: at every logged step it keeps a copy of ``W``
  and the loss (on a fixed evaluation batch, when given one, so that the loss
  curve is free of batch noise).
* :func:`dimensionality_snapshots` turns the stacked snapshots ``(n_snapshots,
  n_instances, n_hidden, n_features)`` into ``D_i`` over time.
* :func:`find_jumps` labels every snapshot of every feature with the level it
  sits on (:func:`nearest_level`) and reports each change from one level held
  for ``min_hold`` snapshots to another as a :class:`Jump`.
* :func:`loss_drop` measures how much of the loss disappears during a jump.
* :func:`set_geometry` and :func:`stage` read the geometry of features in
  correlated sets (the n=6, m=3 run of two sets of 3 features: collapsed onto
  one direction per set, then split apart, then an octahedron).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ._validate import check_positive_int, check_tensor
from .geometry import DIMENSIONALITY_LINES
from .metrics import feature_dimensionality, unit_directions

__all__ = [
    "LEVELS",
    "LEVEL_TOLERANCE",
    "MIN_HOLD",
    "DimensionalityRecorder",
    "dimensionality_snapshots",
    "nearest_level",
    "Jump",
    "find_jumps",
    "loss_drop",
    "set_geometry",
    "stage",
    "STAGES",
]

LEVELS: tuple[float, ...] = (0.0,) + tuple(
    sorted(float(f) for name, f in DIMENSIONALITY_LINES.items() if name != "square antiprism")
)
"""The energy levels: 0 (unlearned) and the polytope fractions 2/5, 1/2, 2/3, 3/4, 1 of
:data:`supercourse.geometry.DIMENSIONALITY_LINES`, in increasing order. The square
antiprism's 3/8 is left out: it is only 0.025 below 2/5, so a feature drifting up to a
pentagon would seem to jump from 3/8 to 2/5 (pass your own ``levels`` to include it)."""

LEVEL_TOLERANCE = 0.02
"""A dimensionality sits on a level when within this of it (levels 3/8 and 2/5 are 0.025 apart)."""

MIN_HOLD = 5
"""A feature holds a level when it sits on it for this many consecutive snapshots."""


class DimensionalityRecorder:
    """A :func:`supercourse.train` callback that keeps ``W`` and the loss at every logged step.

    Args:
        eval_batch: optional ``(batch, n_instances, n_features)`` inputs; when given, the
            recorded loss is the model's ``per_instance_loss`` on this fixed batch (a smooth
            curve), otherwise the training batch's loss that ``train`` passes in.

    After training: ``steps (n_snapshots,)``, ``weights (n_snapshots, n_instances, n_hidden,
    n_features)``, ``losses (n_snapshots, n_instances)`` and ``dimensionalities
    (n_snapshots, n_instances, n_features)``, all on the CPU.
    """

    def __init__(self, eval_batch: torch.Tensor | None = None) -> None:
        if eval_batch is not None:
            eval_batch = check_tensor(
                "eval_batch", eval_batch, shape=(None, None, None), names=("batch", "n_instances", "n_features")
            )
        self.eval_batch = eval_batch
        self._steps: list[int] = []
        self._weights: list[torch.Tensor] = []
        self._losses: list[torch.Tensor] = []

    @torch.no_grad()
    def __call__(self, step: int, model: nn.Module, per_instance_loss: torch.Tensor) -> None:
        W = getattr(model, "W", None)
        if not isinstance(W, torch.Tensor) or W.dim() != 3:
            raise TypeError(f"DimensionalityRecorder needs a model with W (n_instances, n_hidden, n_features), "
                            f"got {type(model).__name__}")
        loss = per_instance_loss
        if self.eval_batch is not None:
            x = self.eval_batch.to(W.device, W.dtype)
            loss = model.per_instance_loss(x, model(x))
        self._steps.append(int(step))
        self._weights.append(W.detach().cpu().clone())
        self._losses.append(loss.detach().cpu().reshape(-1).clone())

    def __len__(self) -> int:
        return len(self._steps)

    def _need(self) -> None:
        if not self._steps:
            raise ValueError("nothing recorded yet: pass the recorder to train(..., callback=recorder)")

    @property
    def steps(self) -> torch.Tensor:
        """``(n_snapshots,)`` the logged steps."""
        self._need()
        return torch.tensor(self._steps)

    @property
    def weights(self) -> torch.Tensor:
        """``(n_snapshots, n_instances, n_hidden, n_features)``."""
        self._need()
        return torch.stack(self._weights)

    @property
    def losses(self) -> torch.Tensor:
        """``(n_snapshots, n_instances)``."""
        self._need()
        return torch.stack(self._losses)

    @property
    def dimensionalities(self) -> torch.Tensor:
        """``(n_snapshots, n_instances, n_features)``: :func:`dimensionality_snapshots` of :attr:`weights`."""
        return dimensionality_snapshots(self.weights)


def _check_snapshots(Ws: object) -> torch.Tensor:
    return check_tensor(
        "Ws", Ws, shape=(None, None, None, None), names=("n_snapshots", "n_instances", "n_hidden", "n_features")
    ).detach()


def dimensionality_snapshots(Ws: torch.Tensor) -> torch.Tensor:
    """Feature dimensionalities at every snapshot.

    ``Ws: (n_snapshots, n_instances, n_hidden, n_features) -> (n_snapshots, n_instances, n_features)``,
    :func:`supercourse.metrics.feature_dimensionality` of each snapshot (0 for zero columns).
    """
    Ws = _check_snapshots(Ws)
    T, k, m, n = Ws.shape
    return feature_dimensionality(Ws.reshape(T * k, m, n)).reshape(T, k, n)


def _check_levels(levels: object) -> torch.Tensor:
    try:
        t = torch.as_tensor(levels, dtype=torch.float64).flatten()
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"levels must be a sequence of numbers, got {type(levels).__name__}") from err
    if t.numel() == 0:
        raise ValueError("levels must hold at least one level, got none")
    return t


def nearest_level(
    D: torch.Tensor, levels: tuple[float, ...] = LEVELS, tolerance: float = LEVEL_TOLERANCE
) -> torch.Tensor:
    """The index into ``levels`` of the level each value sits on, ``-1`` when none is within ``tolerance``.

    ``D`` of any shape; returns an int64 tensor of the same shape. A value within
    ``tolerance`` of two levels gets the nearer one.
    """
    D = check_tensor("D", D).detach()
    lv = _check_levels(levels).to(D.device)
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance!r}")
    dist = (D.double()[..., None] - lv).abs()
    best = dist.min(dim=-1)
    return torch.where(best.values <= tolerance, best.indices, torch.full_like(best.indices, -1))


@dataclass(frozen=True)
class Jump:
    """Feature ``feature`` of instance ``instance`` left level ``start`` (last held at step
    ``left``) and settled on level ``end`` (held from step ``step`` on)."""

    step: int
    instance: int
    feature: int
    start: float
    end: float
    left: int

    def as_tuple(self) -> tuple[int, int, int, float, float]:
        """``(step, instance, feature, start, end)``."""
        return (self.step, self.instance, self.feature, self.start, self.end)


def find_jumps(
    D: torch.Tensor,
    steps: torch.Tensor,
    levels: tuple[float, ...] = LEVELS,
    tolerance: float = LEVEL_TOLERANCE,
    min_hold: int = MIN_HOLD,
) -> list[Jump]:
    """Every jump of a feature from one energy level to another.

    A feature *holds* a level from snapshot ``t`` when it sits on that level
    (:func:`nearest_level`) at snapshots ``t, ..., t + min_hold - 1``. Reading
    its held levels in time order, each change from one level to a different
    one is a jump, dated at the first snapshot of the new hold; snapshots in
    between (in transit, or on a level for fewer than ``min_hold`` snapshots)
    are skipped.

    Args:
        D: ``(n_snapshots, n_instances, n_features)`` dimensionalities.
        steps: ``(n_snapshots,)`` the training step of each snapshot.

    Returns:
        the jumps sorted by ``(step, instance, feature)``.
    """
    D = check_tensor("D", D, shape=(None, None, None), names=("n_snapshots", "n_instances", "n_features")).detach()
    steps = torch.as_tensor(steps)
    if steps.shape != (D.shape[0],):
        raise ValueError(f"steps must have shape (n_snapshots={D.shape[0]},), got {tuple(steps.shape)}")
    min_hold = check_positive_int("min_hold", min_hold)
    lv = _check_levels(levels)
    labels = nearest_level(D, levels, tolerance).cpu()  # (T, k, n)
    T = labels.shape[0]
    if T < min_hold:
        return []
    # held[t] is the level held from t (all of t .. t+min_hold-1 on it), else -1.
    windows = labels.unfold(0, min_hold, 1)  # (T - min_hold + 1, k, n, min_hold)
    same = (windows == windows[..., :1]).all(dim=-1) & (windows[..., 0] >= 0)
    held = torch.where(same, windows[..., 0], torch.full_like(windows[..., 0], -1))
    out = []
    for k in range(D.shape[1]):
        for i in range(D.shape[2]):
            current, last_seen = -1, -1
            for t, level in enumerate(held[:, k, i].tolist()):
                if level < 0:
                    continue
                if current >= 0 and level != current:
                    out.append(Jump(int(steps[t]), k, i, float(lv[current]), float(lv[level]), int(steps[last_seen + min_hold - 1])))
                current, last_seen = level, t
    return sorted(out, key=lambda j: (j.step, j.instance, j.feature))


def loss_drop(losses: torch.Tensor, steps: torch.Tensor, jump: Jump) -> float:
    """The fraction of the loss that disappears while ``jump`` happens: ``1 - L(step) / L(left)``.

    ``losses: (n_snapshots, n_instances)`` at ``steps: (n_snapshots,)``.
    """
    losses = check_tensor("losses", losses, shape=(None, None), names=("n_snapshots", "n_instances")).detach()
    steps = torch.as_tensor(steps).tolist()
    before = losses[steps.index(jump.left), jump.instance]
    after = losses[steps.index(jump.step), jump.instance]
    return float(1 - after / before)


def set_geometry(W: torch.Tensor, set_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """How features in consecutive sets of ``set_size`` sit relative to each other.

    Args:
        W: ``(n_instances, n_hidden, n_features)``, features ``s*set_size ... (s+1)*set_size - 1`` forming set ``s``.

    Returns:
        ``(within, across)``, each ``(n_instances,)``: the largest ``|cos|`` between two
        features of the same set (near 1: they share a direction, as in a PCA-like solution
        that represents a set by fewer directions than it has features; near 0: the set's
        features are orthogonal), and the mean over features of the most negative cosine to a feature
        of another set (near -1: every feature has an antipodal partner in another set).
    """
    W = check_tensor("W", W, shape=(None, None, None), names=("n_instances", "n_hidden", "n_features")).detach()
    set_size = check_positive_int("set_size", set_size)
    n = W.shape[2]
    if n % set_size or n // set_size < 2:
        raise ValueError(f"set_size must divide n_features={n} into at least 2 sets, got set_size={set_size}")
    Wh = unit_directions(W)
    cos = Wh.mT @ Wh  # (k, n, n)
    group = torch.arange(n, device=W.device) // set_size
    same = group[:, None] == group[None, :]
    off = ~torch.eye(n, dtype=torch.bool, device=W.device)
    within = cos.abs().masked_fill(~(same & off), 0).amax(dim=(1, 2))
    across = cos.masked_fill(same, float("inf")).amin(dim=-1).mean(dim=-1)
    return within, across


STAGES = ("collapsed", "splitting", "orthogonal sets", "octahedron")
"""The stages of the correlated-sets run, in the order training goes through them."""


def stage(W: torch.Tensor, set_size: int) -> list[str]:
    """Name each instance's stage from :func:`set_geometry`.

    ``"collapsed"`` (two features of a set share a direction, ``|cos| > 0.9``: the
    PCA-like start), ``"octahedron"`` (sets orthogonal inside, ``within < 0.1``, and every
    feature nearly antipodal to one of another set, ``across < -0.9``), ``"orthogonal
    sets"`` (orthogonal inside, partners not yet antipodal), ``"splitting"`` otherwise.
    """
    within, across = set_geometry(W, set_size)
    names = []
    for w, a in zip(within.tolist(), across.tolist()):
        if w > 0.9:
            names.append("collapsed")
        elif w < 0.1 and a < -0.9:
            names.append("octahedron")
        elif w < 0.1:
            names.append("orthogonal sets")
        else:
            names.append("splitting")
    return names
