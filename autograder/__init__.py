"""The course's autograder: pytest checks that compare a learner's code with ``supercourse``.

Used three ways, all through :func:`check`/:func:`run_exercise`:

* the check cell under each exercise in a lesson notebook (self-check, and the
  nbgrader test cell: its output is the partial credit);
* ``supercourse check NOTEBOOK`` (headless, a table of every exercise);
* ``nbgrader autograde`` (the instructor's workflow; config in ``nbgrader_config.py``).
"""

from .environment import require_library as _require_library

_require_library()  # a namespace package named supercourse would make correct code fail its checks

from .exercises import Exercise, get_exercise, lessons
from .runner import Verdict, check, run_exercise

__all__ = ["check", "run_exercise", "Verdict", "Exercise", "get_exercise", "lessons"]
