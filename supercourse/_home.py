"""Is the ``supercourse`` being imported the library, or the clone's folder? (The folder-above-the-clone trap.)

``git clone`` makes a folder named ``supercourse`` whose library lives in
``supercourse/supercourse/``. Python started in the folder *above* the clone
finds the clone's folder first on ``sys.path`` and imports it as an empty
*namespace package*: no ``__init__.py``, so no code of the library runs, and
``supercourse.ToyModel`` is an ``AttributeError``.

Nothing can run inside a namespace package. What does run is every real
module of the library imported *through* it: ``from supercourse import
metrics`` still loads ``supercourse/metrics.py`` (the editable install finds
it), and every such module imports :mod:`supercourse._validate` first. A call
to :func:`require_package` there turns the trap into an ``ImportError`` that
says what is wrong and what to do, the same words the notebooks print
(:mod:`autograder.environment`). A bare ``import supercourse`` followed by
``supercourse.ToyModel`` imports no module, so it still gets Python's own
``AttributeError``; the README's snippet imports ``metrics`` before it.
"""

from __future__ import annotations

import importlib.util
import sys

__all__ = ["PACKAGE", "library_problem", "require_package"]

PACKAGE = "supercourse"


def library_problem() -> str | None:
    """Why ``import supercourse`` does not give the library here, in words; ``None`` when it does.

    Looks at the imported package when there is one, and otherwise without
    importing it (``importlib.util.find_spec``).
    """
    module = sys.modules.get(PACKAGE)
    if module is not None:
        if getattr(module, "__file__", None) is not None:
            return None
        places = [str(p) for p in getattr(module, "__path__", [])]
    else:
        spec = importlib.util.find_spec(PACKAGE)
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


def require_package() -> None:
    """Raise ``ImportError`` with :func:`library_problem`'s words when ``supercourse`` is an empty namespace package.

    Called as the library's modules load; a no-op when the package is the library.
    """
    module = sys.modules.get(PACKAGE)
    if module is not None and getattr(module, "__file__", None) is None:
        raise ImportError(library_problem())
