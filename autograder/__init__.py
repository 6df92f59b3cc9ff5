"""The course's autograder: checks that compare a learner's code with ``supercourse``, run from outside.

Used three ways, all through :func:`check`/:func:`run_exercise`:

* the check cell under each exercise in a lesson notebook (the self-check);
* ``supercourse check NOTEBOOK`` (headless, a table of every exercise);
* ``nbgrader autograde`` (the instructor's workflow; config in ``nbgrader_config.py``).

Importing this package is cheap (no torch): :func:`check`, :func:`run_exercise`
and :class:`Verdict` load the checking machinery when first used.
"""

from .environment import require_library as _require_library

_require_library()  # a namespace package named supercourse would make correct code fail its checks

from .exercises import Exercise, get_exercise  # noqa: E402

__all__ = ["check", "run_exercise", "Verdict", "Exercise", "get_exercise"]


def __getattr__(name: str):
    if name in ("check", "run_exercise", "Verdict"):
        from . import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'autograder' has no attribute {name!r}")
