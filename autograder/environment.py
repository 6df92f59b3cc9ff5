"""Is ``import supercourse`` the course's library? (The folder-above-the-clone trap.)

``git clone`` makes a folder named ``supercourse`` whose library lives in
``supercourse/supercourse/``. Python started in the folder *above* the clone
(a REPL, ``python -m``, a notebook saved there) finds the clone's folder first
on ``sys.path`` and imports it as an empty namespace package: then
``supercourse.ToyModel`` is an ``AttributeError`` and a check comparing a
learner's correct code with the reference would blame the learner. Importing
:mod:`autograder` calls :func:`require_library`, which stops with an
``ImportError`` that says what is wrong and what to do.
"""

from __future__ import annotations

import importlib.util
import sys

__all__ = ["library_problem", "require_library"]


def library_problem() -> str | None:
    """Why ``import supercourse`` would not give the library here, in words; ``None`` when it would.

    Looks without importing it (``importlib.util.find_spec``) unless it is already imported.
    """
    module = sys.modules.get("supercourse")
    if module is not None:
        if getattr(module, "__file__", None) is not None:
            return None
        places = [str(p) for p in getattr(module, "__path__", [])]
    else:
        spec = importlib.util.find_spec("supercourse")
        if spec is None:
            return "the supercourse library is not installed in this Python: run pip install -e . in the clone"
        if spec.origin is not None:
            return None
        places = [str(p) for p in spec.submodule_search_locations or []]
    where = places[0] if places else "a folder named supercourse"
    return (
        f"`import supercourse` finds the folder {where} (the course's clone, or another folder named "
        "supercourse), not the supercourse library, because Python was started in the folder above it. "
        "Start Python or Jupyter inside the clone, or in your workspace (supercourse start), "
        "then restart the kernel."
    )


def require_library() -> None:
    """Raise ``ImportError`` with :func:`library_problem`'s explanation when there is a problem."""
    problem = library_problem()
    if problem is not None:
        raise ImportError(problem)
