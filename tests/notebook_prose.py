"""The prose of a solution notebook, cell by cell, for tests that hold its numbers to a measured source.

A lesson's prose quotes numbers from its reproduce target (``summary.json``); the
experiment tests recompute them and check that each quoted string is in the cell
that quotes it: :func:`assert_quotes`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=None)
def cells(slug: str) -> dict[str, str]:
    """``{grade_id: source}`` of the markdown cells of ``solutions/<slug>/<slug>.ipynb``."""
    nb = json.loads((ROOT / "solutions" / slug / f"{slug}.ipynb").read_text(encoding="utf-8"))
    out = {}
    for cell in nb["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if cell["cell_type"] == "markdown" and grade_id:
            out[grade_id] = "".join(cell["source"])
    return out


def _flat(text: str) -> str:
    return " ".join(text.split())


def assert_quotes(slug: str, quotes: list[tuple[str, str]]) -> None:
    """Every ``(grade_id, text)``: ``text`` (whitespace-normalised) appears in that markdown cell; one failure lists all."""
    prose = cells(slug)
    missing = [(g, t) for g, t in quotes if g not in prose or _flat(t) not in _flat(prose[g])]
    assert not missing, "the lesson's prose does not quote the measured numbers:\n" + "\n".join(
        f"  {g}: {t!r}" for g, t in missing)
