"""Process start-up: the slow optional import is skipped, and notebooks and nbgrader work without it."""

from __future__ import annotations

import json
import subprocess
import sys

from supercourse._startup import SLOW_OPTIONAL_IMPORTS, nbgrader_command

PROBE = """
import json, sys
{setup}
import nbformat
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
nbformat.validate(nb)
bad = nbformat.from_dict({{"nbformat": 4, "nbformat_minor": 5, "metadata": {{}},
                          "cells": [{{"cell_type": "bogus", "metadata": {{}}, "source": ""}}]}})
try:
    nbformat.validate(bad)
except nbformat.ValidationError:
    pass
else:
    raise SystemExit("a broken notebook validated")
print(json.dumps(sorted(n for n in {names!r} if sys.modules.get(n) is not None)))
"""


def _probe(setup: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", PROBE.format(setup=setup, names=SLOW_OPTIONAL_IMPORTS)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_notebooks_are_read_and_validated_without_the_slow_import():
    assert _probe("from supercourse._startup import skip_slow_optional_imports; skip_slow_optional_imports()") == []


def test_the_nbgrader_command_is_nbgrader_without_the_slow_import(tmp_path):
    proc = subprocess.run(nbgrader_command("--version"), cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import nbgrader

    assert proc.stdout.strip().endswith(nbgrader.__version__)
    proc = subprocess.run(nbgrader_command("--no-such-option=1"), cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2, "a bad option is nbgrader's usage error, as from the nbgrader command"
