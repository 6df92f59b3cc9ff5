"""Lesson 6's expected figures, drawn with the reference library.

The four lesson 06 reproduce targets at their CPU defaults (seed 0), each
writing into a scratch folder; their PNGs are copied into ``out_dir``:

* ``directions_two_pairs.png`` / ``directions_three_pairs.png``
  (:mod:`supercourse.experiments.correlated`): correlated pairs orthogonal,
  the pairs antipodal to each other; three pairs side by side;
* ``directions_anticorrelated_pairs.png`` (:mod:`~supercourse.experiments.anticorrelated`);
* ``gram.png`` (:mod:`~supercourse.experiments.local_bases`): 2 sets of 10 in m=10;
* ``collapse.png`` and ``directions_collapse.png`` (:mod:`~supercourse.experiments.collapse`).

About six minutes on two busy cores.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path

__all__ = ["make", "SEED"]

SEED = 0


def make(out_dir: Path) -> list[Path]:
    """Run the four targets at their defaults and copy their figures into ``out_dir``."""
    from rich.console import Console

    from supercourse.experiments import anticorrelated, collapse, correlated, local_bases

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for exp in (correlated, anticorrelated, local_bases, collapse):
            result = exp.run(Path(tmp) / exp.NAME, seed=SEED, device="cpu", console=Console(file=io.StringIO()))
            for name, path in result.figures.items():
                target = out_dir / (("directions_collapse" if exp is collapse and name.startswith("directions")
                                     else name) + ".png")
                shutil.copyfile(path, target)
                written.append(target)
    return written
