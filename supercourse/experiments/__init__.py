"""The paper's experiments as named, reproducible recipes.

Each experiment is one module and the single source of truth for its
constants: lessons, tests and ``supercourse reproduce NAME`` all read them from
here. An experiment module provides:

* ``NAME`` (its registry key), ``DESCRIPTION`` (one line), ``DEFAULT_STEPS``,
  ``DEFAULT_SEED`` and its constants (``N_FEATURES``, ``N_HIDDEN``, ``DENSITIES`` ...);
* ``make_model(activation="relu", seed=DEFAULT_SEED) -> ToyModel``: untrained,
  one instance per density;
* ``summary(model, history=None) -> list[SummaryRow]``: one row per instance;
* ``run(out_dir, steps=DEFAULT_STEPS, device=None, seed=DEFAULT_SEED, console=None)
  -> ExperimentResult``: train, print a rich table, write PNG figures.

Adding an experiment: write ``supercourse/experiments/<name>.py`` with that
interface and add one line to :data:`EXPERIMENTS`.
"""

from __future__ import annotations

from types import ModuleType

from . import adversarial, basic_results, dynamics, geometry, intro, large_sweep, pentagon, phase_change
from . import absolute_value, privileged_basis
from . import sparse_autoencoders
from . import anticorrelated, collapse, correlated, local_bases
from ._common import ExperimentResult, SummaryRow, best_of_restarts, summarize, summary_table

__all__ = ["EXPERIMENTS", "get", "ExperimentResult", "SummaryRow", "summarize", "summary_table", "best_of_restarts"]

EXPERIMENTS: dict[str, ModuleType] = {
    intro.NAME: intro,
    basic_results.NAME: basic_results,
    large_sweep.NAME: large_sweep,
    phase_change.NAME: phase_change,
    geometry.NAME: geometry,
    pentagon.NAME: pentagon,
    correlated.NAME: correlated,
    anticorrelated.NAME: anticorrelated,
    local_bases.NAME: local_bases,
    collapse.NAME: collapse,
    privileged_basis.NAME: privileged_basis,
    absolute_value.NAME: absolute_value,
    dynamics.NAME: dynamics,
    adversarial.NAME: adversarial,
    sparse_autoencoders.NAME: sparse_autoencoders,
}
"""Registry key (as typed after ``supercourse reproduce``) -> experiment module."""


def get(name: str) -> ModuleType:
    """The experiment called ``name``; a ``ValueError`` listing the choices otherwise."""
    try:
        return EXPERIMENTS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown experiment {name!r}; choose from {', '.join(sorted(EXPERIMENTS))}") from None
