"""Process start-up: skip one optional import that costs every notebook-reading process 1.7 s.

jsonschema, which nbformat (and so nbgrader and the grader) imports, imports ``rfc3987_syntax`` whenever it is
installed (``jupyter-events`` pulls it in through ``jsonschema[format-nongpl]``). That module builds 38 lark
grammars at import time: 1.7 s of CPU for every ``supercourse`` or ``nbgrader`` command, half of what
``nbgrader export`` costs in all. Only jsonschema's optional IRI format checks use it, and nothing a course
runs asks for them. Marking it absent in ``sys.modules`` makes that import fail, which jsonschema expects.
"""

from __future__ import annotations

import sys

SLOW_OPTIONAL_IMPORTS = ("rfc3987_syntax",)

NBGRADER_MAIN = ("import sys\n"
                 f"for name in {SLOW_OPTIONAL_IMPORTS!r}:\n"
                 "    sys.modules.setdefault(name, None)\n"
                 "from nbgrader.apps.nbgraderapp import main\n"
                 "sys.argv[0] = 'nbgrader'\n"
                 "sys.exit(main())\n")
"""``python -c NBGRADER_MAIN ARGS`` is the ``nbgrader ARGS`` command (the same entry point), without the slow import.

It repeats :func:`skip_slow_optional_imports` as text rather than importing it: ``import supercourse`` imports torch."""


def skip_slow_optional_imports() -> None:
    """Make ``import rfc3987_syntax`` fail in this process (a no-op where it was imported already)."""
    for name in SLOW_OPTIONAL_IMPORTS:
        sys.modules.setdefault(name, None)


def nbgrader_command(*args: str) -> list[str]:
    """The argv that runs ``nbgrader *args`` with this interpreter, without the slow import."""
    return [sys.executable, "-c", NBGRADER_MAIN, *args]
