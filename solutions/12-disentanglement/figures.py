"""Lesson 12's expected figures, and the measurements the prose quotes, drawn with the reference library.

* ``codes.png`` samples of the identity code, the same code rotated 45° and the pentagon ``h = W x``, with
  the factors' directions, MIG, DCI-D and mean feature dimensionality in the titles;
* ``metrics.png`` MIG and DCI-D of every code, with issue 19's independent figures as ticks;
* ``similarity.png`` CKA and mean max correlation of two networks' hidden layers and of their SAEs, and the
  unit-by-unit correlations between the networks, neurons then SAE latents;
* ``latents.png`` the 2-D latent spaces of the autoencoder and the VAEs at density 0.05: posterior means,
  factor directions, the kept SAE's dictionary;
* ``latent_grid.png`` factors represented, summed dimensionality and unexplained variance over beta x density;
* ``rotation.png`` the trained VAE's objective (KL term) under rotations of its latent space, with the
  isotropic Gaussian prior and a factorised Laplace prior, and the MIG of the rotated latents;
* ``summary.json`` the same run's numbers (:meth:`supercourse.experiments.disentanglement.Study.summary`,
  without its timings): the source the prose's numbers are tested against
  (``tests/test_experiment_disentanglement.py``).

All from :func:`supercourse.experiments.disentanglement.run_study` at the lesson's CPU defaults (seed 0), the
same run as ``supercourse reproduce disentanglement``.
"""

from __future__ import annotations

import json
from pathlib import Path

from supercourse.experiments import disentanglement
from supercourse.experiments._artifacts import jsonable

__all__ = ["make", "SEED", "SUMMARY"]

SEED = 0
SUMMARY = "summary.json"


def make(out_dir: Path) -> list[Path]:
    """Run the study at its CPU defaults; write the six PNGs and ``summary.json`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    study = disentanglement.run_study(seed=SEED, device="cpu")
    paths = list(disentanglement.write_figures(study, out_dir).values())
    summary = study.summary()  # the "table" of the reproduce target's summary.json
    path = out_dir / SUMMARY
    path.write_text(json.dumps(jsonable(summary), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return paths + [path]
