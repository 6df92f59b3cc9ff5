"""Sphinx configuration of the course's static site: every lesson, readable without installing anything.

Build it with one command from the repository root (pip install -e ".[dev]" first):

    python -m sphinx -W --keep-going -b html docs/site build/site

The lessons are the learner notebooks in ``lessons/`` (prose, maths, code with
its stubs, and the expected figures the markdown shows); they are not
executed (``nb_execution_mode = "off"``). Sphinx reads documents only from
this folder, so this file copies them, with their figures, into
``docs/site/_generated/`` at every build (a generated folder, ignored by git).
``-W`` makes a missing figure or a broken internal link fail the build.
``_static/course.css`` widens alabaster's column and wraps code lines that are
still too long for it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("SUPERCOURSE_REPO", HERE.parents[1]))
"""The repository (tests build a copy of this folder elsewhere and point here)."""
LESSONS_DIR = Path(os.environ.get("SUPERCOURSE_SITE_LESSONS", ROOT / "lessons"))
"""Where the learner notebooks come from (default: the repository's lessons/)."""
GENERATED = HERE / "_generated"


def _stage() -> list[str]:
    """Copy ``lessons/<slug>/`` (notebook and figures) and the syllabus into ``_generated/``."""
    if GENERATED.exists():
        shutil.rmtree(GENERATED)
    (GENERATED / "lessons").mkdir(parents=True)
    slugs = sorted(p.name for p in LESSONS_DIR.iterdir() if (p / f"{p.name}.ipynb").is_file())
    for slug in slugs:
        shutil.copytree(
            LESSONS_DIR / slug, GENERATED / "lessons" / slug,
            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
        )
    shutil.copy2(ROOT / "docs" / "SYLLABUS.md", GENERATED / "syllabus.md")
    return slugs


LESSONS = _stage()

project = "Toy Models of Superposition: the course"
author = "the supercourse authors"
copyright = "the supercourse authors (MIT licence)"
extensions = ["myst_nb"]
nb_execution_mode = "off"  # the site shows the lessons as handed out; nothing runs at build time
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]
html_theme = "alabaster"
html_title = project
html_theme_options = {"description": "build the toy model, train it, measure superposition", "nosidebar": False}
html_show_sourcelink = False
html_static_path = ["_static"]
html_css_files = ["course.css"]  # a wider page, and long code lines wrapped instead of cut off
