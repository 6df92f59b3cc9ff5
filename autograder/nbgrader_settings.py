"""nbgrader settings shared by this repository's config and every instructor's course directory.

One place for: the kernel, the code stub, which files a lesson folder releases, and
the trusted grading steps (every limit lives in :mod:`autograder.limits`). Used by
``autograder/nbgrader_config.py`` (source = ``solutions/``, release =
``lessons/``) and by the ``nbgrader_config.py`` that ``supercourse course init``
writes into an instructor's course directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .limits import DEFAULT_LIMITS

__all__ = ["COURSE_ID", "KERNEL", "REPO_ROOT", "NOT_RELEASED", "configure", "configure_repository"]

COURSE_ID = "supercourse"
KERNEL = "python3"
REPO_ROOT = Path(__file__).resolve().parents[1]
NOT_RELEASED = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.py"]
"""What nbgrader never copies: caches, and a lesson folder's Python files (checks, mistakes, tests)."""


def _quiet_known_nbgrader_warnings() -> None:
    """nbgrader's autograde merges gradebook rows SQLAlchemy 2 warns about (harmless, one per notebook)."""
    import warnings

    try:
        from sqlalchemy.exc import SAWarning
    except ImportError:  # pragma: no cover - nbgrader always brings SQLAlchemy
        return
    warnings.filterwarnings("ignore", message=r"Object of type <Submitted\w+> not in session", category=SAWarning)


def configure(c: Any, root: str | Path) -> None:
    """Apply the course's nbgrader settings to traitlets config ``c`` for course directory ``root``."""
    _quiet_known_nbgrader_warnings()
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.course_id = COURSE_ID
    # Notebooks and their figures; never the caches a kernel leaves behind.
    c.CourseDirectory.ignore = list(NOT_RELEASED)
    c.Execute.timeout = int(DEFAULT_LIMITS.cell_seconds)
    c.Execute.interrupt_on_timeout = True
    c.Execute.kernel_name = KERNEL
    # A student who deletes a check cell gets it back (and graded), not a free pass.
    c.OverwriteCells.add_missing_cells = True
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
    _trusted_grading(c, root)


def _trusted_grading(c: Any, root: str | Path) -> None:
    """``nbgrader autograde`` through the trusted grader: rebuilt submissions, no student kernel, sandboxed code."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (
        AssignLatePenalties, CheckCellMetadata, ClearOutput, DeduplicateIds, IgnorePattern, LimitOutput,
        OverwriteCells, OverwriteKernelspec, SaveAutoGrades,
    )

    from .nbgrader_plugin import RebuildFromRelease, SandboxedGrade, preflight

    c.RebuildFromRelease.course_root = str(root)
    c.SandboxedGrade.course_root = str(root)
    c.Autograde.pre_convert_hook = preflight
    c.Autograde.sanitize_preprocessors = [
        RebuildFromRelease, ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata,
    ]
    c.Autograde.autograde_preprocessors = [
        SandboxedGrade, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades, AssignLatePenalties,
        CheckCellMetadata,
    ]


def configure_repository(c: Any) -> None:
    """This repository as an nbgrader course: ``solutions/`` is the source, ``lessons/`` the release."""
    configure(c, REPO_ROOT)
    c.CourseDirectory.source_directory = "solutions"
    c.CourseDirectory.release_directory = "lessons"
    # The repository keeps no gradebook: generating lessons needs none.
    c.GenerateAssignment.no_database = True
    c.SaveCells.enabled = False
