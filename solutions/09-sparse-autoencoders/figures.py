"""Lesson 9's expected figures, drawn with the reference library.

* ``recovery_sweep.png`` MMCS, dead latents and unexplained variance against the L1
  coefficient, one line per dictionary size (0.5x to 4x the 64 known features), with
  the TopK SAEs' MMCS;
* ``cosines_l1.png``, ``cosines_no_l1.png``, ``cosines_topk.png`` every true feature's
  cosine with every latent of the 2x dictionary: L1 at lambda 0.01, no L1, TopK (k = 3);
* ``pentagon_sae.png`` the n=5, m=2 pentagon's columns and its 5-latent SAE's dictionary.

All from :func:`supercourse.experiments.sparse_autoencoders.run_study` at the lesson's
CPU defaults (seed 0), the same run as ``supercourse reproduce sae``.
"""

from __future__ import annotations

from pathlib import Path

from supercourse.experiments import sparse_autoencoders

__all__ = ["make", "SEED"]

SEED = 0


def make(out_dir: Path) -> list[Path]:
    """Train the study at its CPU defaults and write the five PNGs into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    study = sparse_autoencoders.run_study(seed=SEED, device="cpu")
    return list(sparse_autoencoders.write_figures(study, out_dir).values())
