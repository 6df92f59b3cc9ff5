"""The live progress line of a class being graded: graded/total, rate, ETA, the slowest submission so far.

:class:`ClassProgress` only counts and formats; :func:`live_progress` shows it, as one line redrawn in
place on a terminal (rich's ``Live``) or as one printed line per graded submission in a log or a pipe.
Blank (untouched) submissions cost nothing: they are counted as graded but left out of the ETA, which is
the wall-clock time per costly submission so far times the costly submissions still to grade.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

__all__ = ["ClassProgress", "live_progress", "format_seconds"]


def format_seconds(seconds: float) -> str:
    """``"42 s"``, ``"3 min 05 s"``, ``"1 h 02 min"``."""
    if seconds != seconds or seconds < 0:  # NaN or negative: unknown
        return "?"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@dataclass
class ClassProgress:
    """Counts of a class being graded (``total`` submissions, ``blank`` of them untouched)."""

    total: int
    blank: int = 0
    skipped: int = 0
    clock: Callable[[], float] = time.monotonic
    graded: int = 0
    costly_graded: int = 0
    slowest: tuple[str, float] | None = None
    started: float = field(default=0.0)

    def __post_init__(self) -> None:
        for name in ("total", "blank", "skipped"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative int, got {value!r}")
        if self.blank > self.total:
            raise ValueError(f"blank must be at most total ({self.total}), got {self.blank}")
        self.started = self.clock()

    def done(self, student: str, seconds: float, blank: bool = False) -> None:
        """One submission graded in ``seconds`` (its own grading time)."""
        self.graded += 1
        if not blank:
            self.costly_graded += 1
        if self.slowest is None or seconds > self.slowest[1]:
            self.slowest = (student, seconds)

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started

    @property
    def eta(self) -> float | None:
        """Seconds still to go (None until a costly submission is graded)."""
        costly_left = (self.total - self.blank) - self.costly_graded
        if costly_left <= 0:
            return 0.0
        if self.costly_graded == 0:
            return None
        return self.elapsed / self.costly_graded * costly_left

    @property
    def per_minute(self) -> float:
        return 60.0 * self.graded / self.elapsed if self.elapsed > 0 else 0.0

    def line(self) -> str:
        """``graded 12/40 · 5.1 per min · ETA 5 min 30 s · slowest so far: bob 41 s``."""
        eta = self.eta
        parts = [f"graded {self.graded}/{self.total}"]
        if self.skipped:
            parts[0] += f" ({self.skipped} unchanged, not regraded)"
        parts.append(f"{format_seconds(self.elapsed)} elapsed")
        if self.graded:
            parts.append(f"{self.per_minute:.1f} per min")
        parts.append("ETA " + ("?" if eta is None else format_seconds(eta)))
        if self.slowest is not None:
            parts.append(f"slowest so far: {self.slowest[0]} {self.slowest[1]:.1f} s")
        return " · ".join(parts)


@contextmanager
def live_progress(progress: ClassProgress, console=None) -> Iterator[Callable[[str], None]]:
    """Show ``progress``; yields ``refresh(note)``, to call after each change (``note``: what just happened).

    On a terminal the line is redrawn in place (and anything printed on ``console`` goes above it); elsewhere
    each call prints the note and the line.
    """
    from rich.console import Console
    from rich.live import Live
    from rich.markup import escape
    from rich.text import Text

    console = console or Console(stderr=True)
    if console.is_terminal:
        with Live(Text(progress.line()), console=console, refresh_per_second=4, transient=False) as live:
            def refresh(note: str = "") -> None:
                if note:
                    console.print(note, highlight=False)
                live.update(Text(progress.line()))
            yield refresh
    else:
        def refresh(note: str = "") -> None:
            line = escape(progress.line())
            console.print(f"{note}  ({line})" if note else line, highlight=False, soft_wrap=True)
        yield refresh
