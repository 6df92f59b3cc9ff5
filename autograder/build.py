"""Building the learner notebooks (``lessons/``) from the instructor notebooks (``solutions/``).

``lessons/`` is exactly what ``nbgrader generate_assignment`` makes of
``solutions/`` with this repository's config: solutions replaced by stubs,
outputs cleared, test cells locked, figures copied along. Nobody edits it by
hand; :func:`out_of_sync` is what the test suite uses to prove it.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from supercourse._startup import nbgrader_command

from .lessons import all_lessons, get_lesson, slugs
from .nbgrader_settings import REPO_ROOT

__all__ = ["CONFIG", "build_lessons", "out_of_sync", "make_figures", "lesson_slugs"]

CONFIG = Path(__file__).with_name("nbgrader_config.py")


def lesson_slugs() -> list[str]:
    """Every lesson folder (``solutions/NN-slug/NN-slug.ipynb``), in course order."""
    return slugs()


def _nbgrader(*args: str, cwd: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        nbgrader_command(*args),
        cwd=cwd, env=env, capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


def build_lessons(slugs: list[str] | None = None, release_dir: Path | None = None, force: bool = False) -> list[Path]:
    """Run ``nbgrader generate_assignment`` for each lesson; returns the lesson folders written.

    ``release_dir`` (default ``lessons/``) lets tests build into a scratch folder.
    Every lesson is generated into a scratch folder first; a notebook there that
    holds someone's work (cells run, answers written: see
    :func:`autograder.workspace.worked_reasons`) is not overwritten: a
    ``ValueError`` names it and nothing is written, unless ``force``.
    ``.ipynb_checkpoints`` folders are left alone.
    """
    slugs = slugs or lesson_slugs()
    release = Path(release_dir) if release_dir is not None else REPO_ROOT / "lessons"
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        fresh_root = Path(tmp)
        for slug in slugs:
            _nbgrader(
                "generate_assignment", slug, "--force",
                f"--CourseDirectory.release_directory={fresh_root}",
                cwd=CONFIG.parent,  # nbgrader reads nbgrader_config.py from its working directory
            )
        if not force:
            refused = _worked_notebooks(slugs, fresh_root, release)
            if refused:
                names = " ".join(slugs)
                raise ValueError(
                    "not overwriting notebooks that hold work: " + "; ".join(refused) + ". Learners work in a "
                    f"copy (supercourse start); to throw this work away: supercourse lessons build --force {names}"
                )
        for slug in slugs:
            target = release / slug
            if target.exists():
                for child in target.iterdir():
                    if child.name in _KEEP:
                        continue
                    shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
            shutil.copytree(fresh_root / slug, target, dirs_exist_ok=True)
            written.append(target)
    return written


_KEEP = {".ipynb_checkpoints"}
"""Left in place by a build, and ignored by :func:`out_of_sync` (JupyterLab's autosaves)."""


def _worked_notebooks(slugs: list[str], fresh_root: Path, release: Path) -> list[str]:
    from .workspace import worked_reasons

    refused = []
    for slug in slugs:
        for fresh in sorted((fresh_root / slug).rglob("*.ipynb")):
            existing = release / slug / fresh.relative_to(fresh_root / slug)
            if not existing.is_file() or filecmp.cmp(existing, fresh, shallow=False):
                continue
            try:
                reasons = worked_reasons(json.loads(existing.read_text(encoding="utf-8")),
                                         json.loads(fresh.read_text(encoding="utf-8")))
            except (ValueError, TypeError):
                reasons = ["it is not a readable notebook"]
            if reasons:
                refused.append(f"{existing} ({', '.join(reasons)})")
    return refused


def _normalised(path: Path) -> object:
    if path.suffix == ".ipynb":
        return json.loads(path.read_text(encoding="utf-8"))
    return path.read_bytes()


def out_of_sync(slugs: list[str] | None = None) -> list[str]:
    """Files that differ between ``lessons/`` and a fresh build (empty when in sync)."""
    slugs = slugs or lesson_slugs()
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        build_lessons(slugs, Path(tmp))
        for slug in slugs:
            fresh, committed = Path(tmp) / slug, REPO_ROOT / "lessons" / slug
            fresh_files = {p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file()}
            have_files = {
                p.relative_to(committed) for p in committed.rglob("*")
                if p.is_file() and not _KEEP & set(p.relative_to(committed).parts)
            } if committed.exists() else set()
            for rel in sorted(fresh_files ^ have_files):
                problems.append(f"lessons/{slug}/{rel}: {'missing' if rel in fresh_files else 'not made by the build'}")
            for rel in sorted(fresh_files & have_files):
                a, b = fresh / rel, committed / rel
                if not filecmp.cmp(a, b, shallow=False) and _normalised(a) != _normalised(b):
                    problems.append(f"lessons/{slug}/{rel}: differs from its solution's build")
    return problems


def make_figures(slugs: list[str] | None = None) -> list[Path]:
    """Redraw each lesson's expected figures into ``solutions/<lesson>/figures/`` with its ``figures.py``."""
    written: list[Path] = []
    chosen = [get_lesson(s) for s in slugs] if slugs else [lesson for lesson in all_lessons()]
    for lesson in chosen:
        if not lesson.has("figures"):
            continue
        out = lesson.folder / "figures"
        out.mkdir(parents=True, exist_ok=True)
        written += lesson.module("figures").make(out)
    return written
