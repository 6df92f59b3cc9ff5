"""The prose of a solution notebook, cell by cell, for tests that hold its numbers to a measured source.

A lesson's prose quotes numbers from its reproduce target (``summary.json``); the
experiment tests recompute them and check that each quoted string is in the cell
that quotes it: :func:`assert_quotes`. A quoted number may differ by one unit in its
last shown digit: the same seeded run rounds differently on another CPU (an AMD EPYC
gave a correlation of 0.825... where the Intel machine the prose was written on gave
0.824..., and one count of 22 features where the prose has 23).
"""

from __future__ import annotations

import json
import re
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


_NUMBER = re.compile(r"(?<![\d.])\d+(?:\.(\d+))?")


def _pattern(text: str) -> tuple[re.Pattern[str], list[tuple[float, float]]]:
    """A pattern for ``text`` with each number free, and each number's ``(value, one unit of its last digit)``."""
    parts, numbers, pos = [], [], 0
    for m in _NUMBER.finditer(text):
        decimals = len(m.group(1) or "")
        fraction = rf"\.\d{{{decimals}}}" if decimals else ""
        parts += [re.escape(text[pos:m.start()]), rf"(?<![\d.])(\d+{fraction})(?!\d)"]
        numbers.append((float(m.group()), 10.0 ** -decimals))
        pos = m.end()
    parts.append(re.escape(text[pos:]))
    return re.compile("".join(parts)), numbers


def _near(got: float, value: float, unit: float) -> bool:
    """Within one unit of the last digit, and that unit a small part (5%) of the number: a label such as the 1 of
    "1x" never stands for a 2."""
    return abs(got - value) <= unit * 1.0001 and abs(got - value) <= 0.05 * abs(value)


def quoted(text: str, prose: str) -> bool:
    """Whether ``prose`` holds ``text`` (whitespace-normalised), each number within one unit of its last digit.

    The words and the number of decimals must match exactly: ``"correlation 0.83"`` is in ``"... correlation 0.82
    ..."`` but not in ``"correlation 0.81"``, ``"correlation 0.8"`` or ``"correlation 0.830"``; a difference is
    allowed only where it is at most 5% of the number (23 for 22, never 2 for 1).
    """
    pattern, numbers = _pattern(_flat(text))
    for m in pattern.finditer(_flat(prose)):
        if all(_near(float(got), value, unit) for got, (value, unit) in zip(m.groups(), numbers)):
            return True
    return False


def assert_quotes(slug: str, quotes: list[tuple[str, str]]) -> None:
    """Every ``(grade_id, text)``: ``text`` is :func:`quoted` in that markdown cell; one failure lists all."""
    prose = cells(slug)
    missing = [(g, t) for g, t in quotes if g not in prose or not quoted(t, prose[g])]
    assert not missing, "the lesson's prose does not quote the measured numbers:\n" + "\n".join(
        f"  {g}: {t!r}" for g, t in missing)
