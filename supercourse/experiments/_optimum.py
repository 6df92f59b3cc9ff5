"""Is each density's model the best one found at its density? Measure it, and make it so.

A sweep trains one model per density (the best of a few restarts each). Small
models often stop in a local optimum, and a worse one than a configuration the
*same sweep* found at a neighbouring density: the readout of such a model
teaches the wrong picture. Two tools:

* :func:`cross_losses` evaluates every kept model on every density's data: entry
  ``[j, k]`` is model ``j``'s expected loss on density ``k``'s data (all models
  see the same inputs of density ``k``, so their differences are measured with
  little noise; the inputs are stratified by how many features or sets are active,
  so that the rare inputs with two active at once, where configurations differ
  most, are not left to a handful of draws). Model ``k`` is the best found at its
  density when its own entry ``[k, k]`` is the smallest of column ``k``;
  :func:`optimality_gaps` gives ``L[k, k] / min_j L[j, k] - 1`` (0 for the best).
* :func:`polish` locally optimises every configuration of the sweep at every
  density: model ``j``'s weights are trained further on density ``k``'s data,
  with a learning rate that decays to zero (so each ends close to its local
  optimum, not bouncing around it), and density ``k`` keeps the lowest-loss of
  these candidates (every model, or the few that score best on its data) and its
  own model. Rounds repeat until every gap is at most :data:`GAP_TOLERANCE`.

Both work for any of the course's models whose parameters and buffers are all
instance-first (``ToyModel`` and its subclasses, ``NeuronModel``,
``AbsValueModel``): :func:`recombine` builds a model of the same class whose
instance ``i`` has the weights of one instance and the data (density,
importance) of another.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from .._validate import check_positive_int
from ..training import train

__all__ = [
    "GAP_TOLERANCE",
    "EVAL_SAMPLES",
    "check_budget",
    "recombine",
    "cross_losses",
    "optimality_gaps",
    "baseline_losses",
    "EXACT",
    "Polished",
    "polish",
    "report",
]

GAP_TOLERANCE = 0.01
"""A kept model counts as the best found at its density when no other density's model beats it there by
more than 1% of its loss (the estimates' noise on a held-out batch is well below that)."""
EXACT = 1e-6
"""A loss below this fraction of the zero output's is exact: gaps between such models are measured against it."""
EVAL_SAMPLES = 2**16
"""Inputs per density for :func:`cross_losses` (the same inputs for every model)."""


def check_budget(steps: int, batch_size: int, polish_steps: int, n_samples: int = EVAL_SAMPLES) -> tuple[int, int]:
    """``(polish_steps, n_samples)`` for a sweep trained ``steps`` steps of ``batch_size``: never more than it.

    A short run (a smoke test, a lesson shrunk for grading) gets a check as short as
    its training: at most ``steps`` polishing steps and ``steps * batch_size`` inputs
    (at least 4096) per loss.
    """
    return min(polish_steps, steps), min(n_samples, max(4096, steps * batch_size))


def _n_instances(model: nn.Module) -> int:
    return int(getattr(model, "n_instances"))


@torch.no_grad()
def recombine(model: nn.Module, weights_from: torch.Tensor | list[int], data_from: torch.Tensor | list[int]) -> nn.Module:
    """A model of ``model``'s class with ``len(weights_from)`` instances: weights of one instance, data of another.

    Instance ``i`` of the result has the parameters of ``model``'s instance
    ``weights_from[i]`` and the buffers (density, importance) of instance
    ``data_from[i]``. Every parameter and buffer of ``model`` must be
    instance-first, as in every model of the course. The result is a copy (on
    ``model``'s device); ``model`` is unchanged.
    """
    n = _n_instances(model)
    src = torch.as_tensor(weights_from, dtype=torch.long).reshape(-1)
    dst = torch.as_tensor(data_from, dtype=torch.long).reshape(-1)
    if src.shape != dst.shape or src.numel() == 0:
        raise ValueError(f"weights_from and data_from must be equally long and non-empty, got {src.numel()} and {dst.numel()}")
    for name, idx in (("weights_from", src), ("data_from", dst)):
        if int(idx.min()) < 0 or int(idx.max()) >= n:
            raise ValueError(f"{name} must hold instance numbers in [0, {n}), got {idx.tolist()}")
    out = copy.deepcopy(model)
    for name, p in model.named_parameters(recurse=False):
        if p.shape[:1] != (n,):
            raise ValueError(f"parameter {name} {tuple(p.shape)} is not instance-first (n_instances={n})")
        setattr(out, name, nn.Parameter(p.detach()[src.to(p.device)].clone(), requires_grad=p.requires_grad))
    for name, b in model.named_buffers(recurse=False):
        if b.shape[:1] != (n,):
            raise ValueError(f"buffer {name} {tuple(b.shape)} is not instance-first (n_instances={n})")
        setattr(out, name, b[dst.to(b.device)].clone())
    out.n_instances = int(src.numel())
    return out


def _set_layout(model: nn.Module) -> tuple[int, float]:
    """``(set_size, full)``: features per independently active set, and the density at which every set is active."""
    set_size = int(getattr(model, "set_size", 1))
    anti = getattr(model, "kind", "correlated") == "anticorrelated"
    return set_size, (1.0 / set_size if anti else 1.0)


def _set_probability(model: nn.Module) -> torch.Tensor:
    """``(n_instances,)``: the chance that a set (a feature, for independent features) is active, per instance."""
    set_size, full = _set_layout(model)
    p = model.feature_probability.detach().cpu().double()
    if not bool((p == p[:, :1]).all()):
        raise ValueError("the optimality check needs one density per instance (every feature of an instance alike)")
    return (p[:, 0] / full).clamp(0.0, 1.0)


def _strata(q: torch.Tensor, n_sets: int, n_samples: int, floor: int) -> list[tuple[int, torch.Tensor, int]]:
    """``[(c, weights (n_instances,), samples)]``: the counts ``c`` of active sets worth sampling.

    ``weights[k]`` is the binomial chance that exactly ``c`` of ``n_sets`` sets are
    active at instance ``k``'s set probability; a count gets ``n_samples`` times
    its largest weight in samples, at least ``floor`` shared among the counts kept,
    and counts whose weight is below ``1e-9`` everywhere are left out (their share
    of the loss is below it).
    """
    c = torch.arange(n_sets + 1, dtype=torch.float64)
    log_binom = torch.lgamma(torch.tensor(n_sets + 1.0, dtype=torch.float64)) - torch.lgamma(c + 1) - torch.lgamma(n_sets - c + 1)
    qq = q[:, None].clamp(1e-300, 1.0)
    log_w = log_binom + c * qq.log() + (n_sets - c) * torch.log1p(-qq.clamp(max=1 - 1e-16))
    w = torch.where(q[:, None] >= 1.0, (c == n_sets).double().expand(len(q), -1), log_w.exp())  # (n_inst, n_sets + 1)
    w = torch.where(q[:, None] <= 0.0, (c == 0).double().expand(len(q), -1), w)
    kept = [count for count in range(n_sets + 1) if float(w[:, count].max()) >= 1e-9]
    floor = max(1, floor // len(kept))
    return [(c, w[:, c], 1 if c == 0 else max(floor, int(n_samples * float(w[:, c].max())))) for c in kept]


_FEW = 3
"""Up to this many chosen (or left-out) sets, :func:`_first_ranks` counts ranks instead of sorting: several times
faster for the few active sets of sparse data, slower for many (measured at 5 to 100 sets)."""


def _first_ranks(r: torch.Tensor, count: int) -> torch.Tensor:
    """``r.argsort(dim=-1) < count``: a bool mask of ``count`` positions per row, uniformly chosen when ``r`` is random.

    Position ``i`` is chosen when the ``i``-th smallest value of the row is one of its first ``count`` values, so the
    chosen positions are those values' ranks. For a few chosen (or a few left out), the ranks are counted directly
    (comparisons against the row) instead of sorting the row, ranking equal values by position as a stable sort
    does; torch's default sort may order them otherwise, so the two can differ only in a row that repeats a value
    (``torch.rand`` does that about once in 10^4 rows of 40).
    """
    n = r.shape[-1]
    if min(count, n - count) > _FEW:
        return r.argsort(dim=-1) < count
    left_out = count > n - count
    j = torch.arange(count, n) if left_out else torch.arange(count)
    rj = r[..., j].unsqueeze(-1)  # (..., k, 1)
    row = r.unsqueeze(-2)  # (..., 1, n)
    earlier = torch.arange(n) < j[:, None]  # (k, n): equal values earlier in the row rank first
    ranks = ((row < rj) | ((row == rj) & earlier)).sum(dim=-1)  # (..., k)
    chosen = torch.zeros(r.shape, dtype=torch.bool).scatter_(-1, ranks, True)
    return ~chosen if left_out else chosen


@torch.no_grad()
def _expectation(
    score: "Callable[[torch.Tensor], torch.Tensor]", data: nn.Module, data_index: torch.Tensor, n_samples: int, seed: int
) -> torch.Tensor:
    """``E[score(x)]`` ``(n,)`` float64, where column ``i`` of ``x`` is drawn from ``data``'s instance ``data_index[i]``.

    Stratified by the number ``c`` of active sets: ``sum_c P(c) E[score | c]``, with
    ``P(c)`` exact (binomial) and ``E[score | c]`` the mean over inputs with exactly
    ``c`` active sets, chosen uniformly, their values drawn as ``data`` draws them
    (``n_samples * P(c)`` inputs, and at least ``n_samples / 4`` shared among the
    counts). Rare counts (two sets active together in a sparse model, where
    configurations differ most) get samples of their own instead of a handful
    among ``n_samples`` ordinary draws. The inputs of one instance of ``data`` are
    the same for every column that reads it.
    """
    gen = torch.Generator().manual_seed(seed)
    set_size, full = _set_layout(data)
    n_features = int(getattr(data, "n_features"))
    n_sets = n_features // set_size
    q = _set_probability(data)  # (n_data,)
    dense = recombine(data, torch.arange(_n_instances(data)), torch.arange(_n_instances(data))).cpu()
    dense.feature_probability = torch.full_like(dense.feature_probability, full)
    idx = data_index.cpu()
    total = torch.zeros(idx.numel(), dtype=torch.float64)
    chunk_size = max(256, 2**21 // (max(_n_instances(data), idx.numel()) * n_features))
    for count, weights, samples in _strata(q, n_sets, n_samples, n_samples // 4):
        mean = torch.zeros(idx.numel(), dtype=torch.float64)
        done = 0
        while done < samples:
            size = min(chunk_size, samples - done)
            x = dense.generate_batch(size, generator=gen)  # (size, n_data, n_features): every set active
            chosen = _first_ranks(torch.rand(size, x.shape[1], n_sets, generator=gen), count)  # `count` sets, uniformly
            on = chosen.to(x.dtype).repeat_interleave(set_size, dim=-1)
            mean += score((x * on)[:, idx]).double().cpu() * size
            done += size
        total += weights[idx] * mean / samples
    return total


def _losses_on(
    model: nn.Module, data: nn.Module, data_index: torch.Tensor, n_samples: int, seed: int
) -> torch.Tensor:
    """Instance ``i`` of ``model`` scored on the data of ``data``'s instance ``data_index[i]``: ``(n,)`` float64."""

    def score(x: torch.Tensor) -> torch.Tensor:
        x = x.to(model.device)
        return model.per_instance_loss(x, model(x))

    return _expectation(score, data, data_index, n_samples, seed)


def baseline_losses(model: nn.Module, n_samples: int = EVAL_SAMPLES, seed: int = 0) -> torch.Tensor:
    """``(n,)`` float64: each instance's loss if it output 0 (the scale a loss is small against)."""
    plain = recombine(model, torch.arange(_n_instances(model)), torch.arange(_n_instances(model))).cpu()

    def score(x: torch.Tensor) -> torch.Tensor:
        return plain.per_instance_loss(x, torch.zeros_like(x))

    return _expectation(score, plain, torch.arange(_n_instances(model)), n_samples, seed)


@torch.no_grad()
def cross_losses(model: nn.Module, n_samples: int = EVAL_SAMPLES, seed: int = 0) -> torch.Tensor:
    """``(n, n)`` float64: entry ``[j, k]`` is instance ``j``'s weights scored on instance ``k``'s data.

    Every column uses one batch of ``n_samples`` inputs of density ``k`` (seeded
    by ``seed``), shared by all ``n`` models, so the comparison down a column is
    not blurred by sampling noise. The diagonal is each model on its own data.
    """
    n = _n_instances(model)
    n_samples = check_positive_int("n_samples", n_samples)
    j = torch.arange(n).repeat_interleave(n)  # weights: row-major over (j, k)
    k = torch.arange(n).repeat(n)  # data
    every = recombine(model, j, k)
    return _losses_on(every, model, k, n_samples, seed).reshape(n, n)


def optimality_gaps(losses: torch.Tensor, baseline: torch.Tensor | None = None) -> torch.Tensor:
    """``(n,)``: how much worse model ``k`` is on its own data than the best model there, as a fraction.

    ``(L[k, k] - min_j L[j, k]) / min_j L[j, k]`` of a :func:`cross_losses` matrix (0
    where model ``k`` is best). Where the best loss is below :data:`EXACT` times
    ``baseline[k]`` (the zero output's loss, :func:`baseline_losses`), the models are
    exact and the difference is divided by that floor instead: ``1e-12`` against
    ``1e-13`` is no gap.
    """
    if losses.dim() != 2 or losses.shape[0] != losses.shape[1]:
        raise ValueError(f"losses must be a square (n, n) matrix, got {tuple(losses.shape)}")
    best = losses.min(dim=0).values
    floor = torch.full_like(best, 1e-30) if baseline is None else EXACT * baseline.to(best).clamp_min(1e-30)
    return (losses.diagonal() - best) / torch.maximum(best, floor)


@dataclass
class Polished:
    """What :func:`polish` did.

    Attributes:
        model: one instance per density, each the best found at its density (a copy, on the CPU).
        cross: ``(n, n)`` :func:`cross_losses` of ``model`` on held-out inputs.
        baseline: ``(n,)`` the zero output's loss at each density (:func:`baseline_losses`).
        gaps: ``(n,)`` :func:`optimality_gaps` of ``cross``.
        sources: ``(n,)`` which density's configuration each kept model started from
            (``sources[k] == k``: its own).
        rounds: polishing rounds run.
        before: ``(n,)`` the gaps of the sweep as it was given, on the same held-out inputs.
    """

    model: nn.Module
    cross: torch.Tensor
    baseline: torch.Tensor
    gaps: torch.Tensor
    sources: torch.Tensor
    rounds: int
    before: torch.Tensor = field(default_factory=lambda: torch.zeros(0))

    def as_dict(self) -> dict:
        """Plain numbers for ``summary.json``."""
        return {
            "gap_tolerance": GAP_TOLERANCE,
            "gaps": self.gaps.tolist(),
            "gaps_before_polish": self.before.tolist(),
            "started_from": self.sources.tolist(),
            "rounds": self.rounds,
            "cross_losses": self.cross.tolist(),
            "baseline_losses": self.baseline.tolist(),
        }


def polish(
    model: nn.Module,
    steps: int,
    *,
    lr: float,
    batch_size: int,
    seed: int = 0,
    device: str | torch.device | None = "cpu",
    contenders: int | None = None,
    min_rounds: int = 0,
    max_rounds: int = 3,
    tolerance: float = GAP_TOLERANCE,
    n_samples: int = EVAL_SAMPLES,
) -> Polished:
    """Make each density's model the best found at its density (within ``tolerance``).

    Each round trains, for every density ``k``, its own model and the
    ``contenders`` other models that score best on its data (``None``: every
    other model), each on density ``k``'s data for ``steps`` steps with AdamW at
    ``lr`` decaying to 0 (cosine), side by side as instances of one model. Density
    ``k`` then keeps the lowest-loss of these and of its current model, measured
    on one selection batch. Rounds stop when every :func:`optimality_gaps` on
    held-out inputs is at most ``tolerance`` (after at least ``min_rounds``), or
    after ``max_rounds``. ``model`` (one instance per density) is not changed.
    """
    steps = check_positive_int("steps", steps)
    if contenders is not None:
        contenders = int(contenders)
        if contenders < 0:
            raise ValueError(f"contenders must be None or a non-negative int, got {contenders}")
    n = _n_instances(model)
    kept = copy.deepcopy(model).cpu()
    sources = torch.arange(n)
    held_out = seed + 7919  # the inputs of the check; choices are made on others
    baseline = baseline_losses(kept, n_samples, held_out)
    cross = cross_losses(kept, n_samples, held_out)
    before = optimality_gaps(cross, baseline)
    gaps = before
    rounds = 0
    while rounds < max_rounds and (rounds < min_rounds or bool((gaps > tolerance).any())):
        rounds += 1
        pairs = []  # (weights of j, data of k)
        for k in range(n):
            others = [j for j in cross[:, k].argsort().tolist() if j != k]
            pairs += [(k, k)] + [(j, k) for j in (others if contenders is None else others[:contenders])]
        j_idx = torch.tensor([j for j, _ in pairs])
        k_idx = torch.tensor([k for _, k in pairs])
        candidates = recombine(kept, j_idx, k_idx)
        train(candidates, steps=steps, batch_size=batch_size, lr=lr, lr_schedule="cosine", seed=seed + 100 * rounds,
              device=device, progress=False)
        candidates = candidates.cpu()
        select = seed + 104729 * rounds
        trained = _losses_on(candidates, kept, k_idx, n_samples, select)
        current = _losses_on(kept, kept, torch.arange(n), n_samples, select)
        with torch.no_grad():
            for k in range(n):
                mine = (k_idx == k).nonzero().flatten()
                best = int(mine[trained[mine].argmin()])
                if trained[best] < current[k]:
                    for name, p in kept.named_parameters(recurse=False):
                        p[k] = getattr(candidates, name).detach()[best]
                    sources[k] = sources[int(j_idx[best])]
        cross = cross_losses(kept, n_samples, held_out)
        gaps = optimality_gaps(cross, baseline)
    return Polished(model=kept, cross=cross, baseline=baseline, gaps=gaps, sources=sources, rounds=rounds,
                    before=before)


def report(densities: "list[float] | tuple[float, ...]", checked: Polished | None) -> str:
    """One line for a run's console: each density's gap to the best model found at it, and what polishing did."""
    if checked is None:
        return "optimality check: skipped"
    gaps = ", ".join(f"{p:g}: {100 * g:.2f}%" for p, g in zip(densities, checked.gaps.tolist()))
    moved = [f"{densities[k]:g} <- {densities[int(s)]:g}" for k, s in enumerate(checked.sources.tolist()) if s != k]
    where = f"; configurations taken over: {', '.join(moved)}" if moved else ""
    before = max(checked.before.tolist(), default=0.0)
    return (f"best found at its density (gap to the best kept model on held-out inputs, tolerance "
            f"{100 * GAP_TOLERANCE:g}%): {gaps}; largest gap before polishing {100 * before:.2f}%, "
            f"{checked.rounds} polishing round(s){where}")
