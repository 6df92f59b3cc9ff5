"""The folder-above-the-clone trap, from the library's side (issue 22).

Python started in the folder above the clone imports the clone's folder as an
empty namespace package. No code of the library can run in it, but every real
module imported through it does: :func:`supercourse._home.require_package`
turns the trap into the notebooks' friendly ``ImportError``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from supercourse import _home

ROOT = Path(__file__).resolve().parents[1]
README_SNIPPET = """
import torch
import supercourse as sc
from supercourse import metrics
print(sc.ToyModel)
"""
def test_the_library_is_not_a_problem():
    assert _home.library_problem() is None
    _home.require_package()  # the real package is imported: nothing to say


def test_a_namespace_package_gets_the_notebooks_words(monkeypatch):
    fake = types.ModuleType("supercourse")
    fake.__file__ = None
    fake.__path__ = ["/somewhere/supercourse"]
    monkeypatch.setitem(sys.modules, "supercourse", fake)
    with pytest.raises(ImportError) as err:
        _home.require_package()
    text = str(err.value)
    assert "finds the folder /somewhere/supercourse" in text and "folder above it" in text
    assert "Start Python or Jupyter inside the clone" in text


def test_the_grader_and_the_library_say_the_same():
    from autograder import environment

    assert environment.library_problem() == _home.library_problem() is None


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_readme_snippet_from_the_folder_above_the_clone_says_what_to_do(tmp_path):
    above = tmp_path / "above"
    above.mkdir()
    (above / "supercourse").symlink_to(ROOT, target_is_directory=True)  # the clone, named as the README clones it
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", README_SNIPPET], cwd=above, capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr and "folder above it" in proc.stderr, proc.stderr[-2000:]
    assert "AttributeError" not in proc.stderr
