"""Every time and size limit of grading, in one place.

:class:`GradingLimits` is what :func:`autograder.grader.grade_notebook` enforces
for one submission, all from outside the learner's process:

* time: each notebook cell, each graded property, and the whole notebook
  (worker restarts included);
* the sandbox as a whole: memory (every process and every tmpfs inside it),
  processes, and disk (every writable place is a size-limited tmpfs);
* what comes back: the size of each answer, checked before it is decoded.

nbgrader's ``SandboxedGrade`` exposes each field as a typed trait of the same
name (``--SandboxedGrade.notebook_seconds=600``), and ``supercourse check``
uses the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

__all__ = ["GradingLimits", "DEFAULT_LIMITS", "describe_limits"]

MiB = 2**20
GiB = 2**30


@dataclass(frozen=True)
class GradingLimits:
    """The bounds on one submission's grading (seconds and bytes)."""

    cell_seconds: float = 60.0
    """Seconds one notebook cell may run before it is stopped (the cell then counts as failed)."""
    property_seconds: float = 20.0
    """Seconds one graded property gives the learner's code in all, before it fails as a probable endless loop."""
    notebook_seconds: float = 600.0
    """Seconds the whole notebook may take, restarts included; exercises not graded by then score 0."""
    startup_seconds: float = 120.0
    """Seconds the worker may take to start (import torch and IPython) before grading stops as a grader fault."""
    grace_seconds: float = 3.0
    """Seconds the learner's code gets, after a time limit interrupted it, before its whole sandbox is killed."""
    memory_bytes: int = 4 * GiB
    """Memory of the whole sandbox: every process and every tmpfs in it (cgroup), or each process (fallback)."""
    processes: int = 256
    """Processes and threads the sandbox may hold at once."""
    disk_bytes: int = 512 * MiB
    """Size of the sandbox's writable tmpfs (its home, working directory and /tmp); /dev/shm gets a tenth."""
    cpu_seconds: int = 1800
    """CPU seconds of one worker process."""
    answer_json_bytes: int = 4 * MiB
    """Largest JSON part of one answer from the worker, refused before it is decoded."""
    answer_blob_bytes: int = 512 * MiB
    """Largest tensor part of one answer from the worker, refused before it is decoded."""
    answer_tensors: int = 4096
    """Most tensors in one answer."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"GradingLimits.{f.name} must be a positive number, got {value!r}")

    def with_(self, **changes: Any) -> "GradingLimits":
        """A copy with some limits changed (``limits.with_(cell_seconds=10)``)."""
        return replace(self, **changes)

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


DEFAULT_LIMITS = GradingLimits()


def describe_limits(limits: GradingLimits = DEFAULT_LIMITS) -> str:
    """The limits in words, for the README and ``--help``."""
    return (
        f"{limits.cell_seconds:g} s per cell, {limits.property_seconds:g} s per graded property, "
        f"{limits.notebook_seconds:g} s per notebook (restarts included); {limits.memory_bytes / GiB:g} GiB of memory "
        f"and {limits.processes} processes for the whole sandbox; {limits.disk_bytes / MiB:g} MiB of disk; answers up "
        f"to {limits.answer_json_bytes / MiB:g} MiB of JSON and {limits.answer_blob_bytes / MiB:g} MiB of tensors"
    )
