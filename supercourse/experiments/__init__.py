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
  -> ExperimentResult``: train, print a rich table, write PNG figures, on the one
  template of :mod:`._run` (:class:`Run`: arguments, console, clock, figures,
  ``params.safetensors`` and ``summary.json`` alike for every target).

A sweep (one model per density) is only worth reading when each density's model
is the best one found at its density: :func:`polish` checks that against every
other density's model (:func:`cross_losses`, :func:`optimality_gaps`) and
repairs it where it fails.

Adding an experiment: write ``supercourse/experiments/<name>.py`` with that
interface; it is discovered (every public module here that defines ``NAME``),
never listed.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from ._common import ExperimentResult, SummaryRow, best_of_restarts, summarize, summary_table
from ._optimum import GAP_TOLERANCE, Polished, cross_losses, optimality_gaps, polish
from ._run import Run

__all__ = ["EXPERIMENTS", "get", "ExperimentResult", "SummaryRow", "summarize", "summary_table", "best_of_restarts",
           "Run", "polish", "Polished", "cross_losses", "optimality_gaps", "GAP_TOLERANCE"]


def _discover() -> dict[str, ModuleType]:
    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_") or info.ispkg:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        name = getattr(module, "NAME", None)
        if name is None:
            continue
        if name in found:
            raise RuntimeError(f"experiments {found[name].__name__} and {module.__name__} both call themselves {name!r}")
        found[name] = module
    return found


EXPERIMENTS: dict[str, ModuleType] = _discover()
"""Registry key (as typed after ``supercourse reproduce``) -> experiment module."""


def get(name: str) -> ModuleType:
    """The experiment called ``name``; a ``ValueError`` listing the choices otherwise."""
    try:
        return EXPERIMENTS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown experiment {name!r}; choose from {', '.join(sorted(EXPERIMENTS))}") from None
