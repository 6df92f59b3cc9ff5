"""The static site of the lessons (issue 12): one command, no warnings, every figure there.

Also what keeps the course's tables of contents true (item 6): the syllabus lists every
lesson, the README's lesson table has a row per lesson, and a lesson's "lesson N" points
at a lesson of the syllabus.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "docs" / "site"
SYLLABUS = (ROOT / "docs" / "SYLLABUS.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _lessons(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if (p / f"{p.name}.ipynb").is_file())


def _build(tmp: Path, lessons: Path) -> subprocess.CompletedProcess:
    """The README's site command, on a copy of docs/site (so the working tree is not written to)."""
    src = tmp / "site"
    shutil.copytree(SITE, src, ignore=shutil.ignore_patterns("_generated", "_build"))
    env = {"SUPERCOURSE_REPO": str(ROOT), "SUPERCOURSE_SITE_LESSONS": str(lessons), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(src), str(tmp / "html")],
        capture_output=True, text=True, timeout=600, env=env,
    )


@pytest.mark.slow
def test_site_builds_without_warnings_and_shows_every_lesson_and_figure(tmp_path):
    pytest.importorskip("myst_nb", reason="pip install -e '.[dev]' (Sphinx and MyST-NB)")
    proc = _build(tmp_path, ROOT / "lessons")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stderr.strip() == "", proc.stderr[-4000:]  # -W: any warning would have failed it
    html = tmp_path / "html"
    index = (html / "index.html").read_text(encoding="utf-8")
    for slug in _lessons(ROOT / "lessons"):
        assert f"_generated/lessons/{slug}/{slug}.html" in index
        page = (html / "_generated" / "lessons" / slug / f"{slug}.html").read_text(encoding="utf-8")
        assert "YOUR CODE HERE" in page  # the code, as handed out
        assert 'class="math' in page  # the maths, rendered by MathJax
        sources = "".join("".join(c["source"]) for c in json.loads(
            (ROOT / "lessons" / slug / f"{slug}.ipynb").read_text(encoding="utf-8"))["cells"])
        for figure in re.findall(r"\]\(figures/([^)]+)\)", sources):
            assert (html / "_images" / figure).is_file(), f"{slug}: figure {figure} missing from the site"
            assert f"_images/{figure}" in page
    assert "Syllabus" in (html / "_generated" / "syllabus.html").read_text(encoding="utf-8")
    assert "_static/course.css" in index and (html / "_static" / "course.css").is_file()


@pytest.mark.slow
def test_site_build_fails_on_a_missing_figure_or_a_broken_link(tmp_path):
    pytest.importorskip("myst_nb", reason="pip install -e '.[dev]' (Sphinx and MyST-NB)")
    lessons = tmp_path / "lessons"
    slug = "01-sparse-features"
    shutil.copytree(ROOT / "lessons" / slug, lessons / slug)
    (lessons / slug / "figures" / "sparse_batch.png").unlink()
    nb_path = lessons / slug / f"{slug}.ipynb"
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    nb["cells"][0]["source"] = "".join(nb["cells"][0]["source"]) + "\n\nNext: [lesson 2](../02-nowhere/02-nowhere.ipynb)"
    nb_path.write_text(json.dumps(nb), encoding="utf-8")
    proc = _build(tmp_path, lessons)
    assert proc.returncode != 0
    assert "sparse_batch.png" in proc.stderr and "02-nowhere" in proc.stderr


# --------------------------------------------------------------------------- the front page


INDEX = (SITE / "index.md").read_text(encoding="utf-8")


def test_site_install_gives_the_readmes_torch_advice():
    """The site's install snippet installs the CPU build of torch first, as the README advises."""
    for url in re.findall(r"https://download\.pytorch\.org/whl/\w+", README):
        assert url in INDEX, f"the site's install snippet lacks {url}"
    snippet = INDEX[INDEX.index("```bash"):]
    snippet = snippet[: snippet.index("```", 7)]
    assert snippet.index("download.pytorch.org/whl/cpu") < snippet.index("pip install -e .")
    assert "supercourse doctor" in INDEX


def test_site_wraps_long_code_lines_instead_of_cutting_them_off():
    """Lesson code lines run to about 120 characters, wider than alabaster's column."""
    conf = (SITE / "conf.py").read_text(encoding="utf-8")
    assert 'html_css_files = ["course.css"]' in conf and 'html_static_path = ["_static"]' in conf
    css = (SITE / "_static" / "course.css").read_text(encoding="utf-8")
    rule = css[css.index("div.cell_input pre"):]
    assert "white-space: pre-wrap" in rule[: rule.index("}")]


# --------------------------------------------------------------------------- tables of contents


def _syllabus_rows() -> dict[str, str]:
    return {m.group(1): m.group(2) for m in re.finditer(r"^\| (\d\d) \| (.+?) \|", SYLLABUS, re.M)}


def test_syllabus_and_readme_list_every_lesson():
    rows = _syllabus_rows()
    readme_rows = set(re.findall(r"^\| (\d\d) \|", README, re.M))
    for slug in _lessons(ROOT / "solutions"):
        number = slug[:2]
        assert number in rows, f"docs/SYLLABUS.md has no row for {slug}"
        assert number in readme_rows, f"README's lesson table has no row for {slug}"


def test_references_to_other_lessons_name_lessons_of_the_syllabus():
    known = {int(n) for n in _syllabus_rows()}
    for slug in _lessons(ROOT / "solutions"):
        text = (ROOT / "solutions" / slug / f"{slug}.ipynb").read_text(encoding="utf-8")
        for number in re.findall(r"[Ll]essons? (\d+)", text):
            assert int(number) in known, f"{slug} mentions lesson {number}, which the syllabus does not have"


def test_readme_promises_what_reproduce_writes():
    quick = README[README.index("## Quick start"):README.index("## For learners")]
    assert "summary.txt" in quick and "out/basic-results/" in quick


# --------------------------------------------------------------------------- item 10: lesson text


def _markdown(slug: str) -> list[tuple[str, str]]:
    nb = json.loads((ROOT / "solutions" / slug / f"{slug}.ipynb").read_text(encoding="utf-8"))
    return [(c["metadata"].get("nbgrader", {}).get("grade_id", ""), "".join(c["source"]))
            for c in nb["cells"] if c["cell_type"] == "markdown"]


def test_section_headings_are_numbered_alike():
    for slug in _lessons(ROOT / "solutions"):
        for _, text in _markdown(slug):
            bad = re.findall(r"^#+ \d+ ·.*$", text, re.M)
            assert not bad, f"{slug}: headings are numbered '1. Title', got {bad}"


def test_lesson03_keeps_answers_folded_until_opened():
    """Lesson 03 asks for predictions; the answers are in <details> blocks, not in plain sight."""
    cells = dict(_markdown("03-measuring-superposition"))
    for grade_id in ("norms_answer", "superposition_answer", "pairs_answer", "bias_answer", "large_expected"):
        text = cells[grade_id]
        assert text.startswith("<details>\n<summary>") and "</details>" in text, grade_id
    assert "### Q5" in cells["pairs_answer"].split("</details>")[1]  # the next question stays visible
