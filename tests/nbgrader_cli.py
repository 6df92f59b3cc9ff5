"""``nbgrader`` commands as an instructor runs them, for the tests: one helper for every test that needs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from supercourse._startup import nbgrader_command


def nbgrader(course: Path, *args: str, env_extra: dict[str, str] | None = None,
             check: bool = True) -> subprocess.CompletedProcess:
    """Run ``nbgrader *args`` in the course folder ``course``; with ``check``, fail the test on a non-zero exit."""
    # nbgrader runs `alembic` for its gradebook: the virtualenv's bin must be on PATH.
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
               **(env_extra or {}))
    proc = subprocess.run(nbgrader_command(*args), cwd=course, capture_output=True, text=True, env=env)
    if check:
        assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc
