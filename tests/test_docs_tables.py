"""The README's and the syllabus's lesson tables list exactly the lesson folders there are."""

from __future__ import annotations

import re

from autograder.lessons import REPO_ROOT, all_lessons

ROW = re.compile(r"^\| (\d\d) \| ([^|]+) \|", re.M)


def _rows(path, header: str) -> dict[str, list[str]]:
    text = (REPO_ROOT / path).read_text(encoding="utf-8")
    start = text.index(header)
    table = text[start:text.index("\n\n", start)]
    return {m.group(1): [cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in table.splitlines() if (m := ROW.match(line))}


def test_readme_lists_every_lesson_with_its_cpu_run_time():
    rows = _rows("README.md", "| # | lesson | you implement | you see | CPU run time |")
    assert list(rows) == [lesson.number for lesson in all_lessons()]
    for number, cells in rows.items():
        assert re.fullmatch(r"[\d.]+ (min|s)", cells[-1]), f"lesson {number}: CPU run time {cells[-1]!r}"


def test_syllabus_marks_every_lesson_folder_available():
    rows = _rows("docs/SYLLABUS.md", "| # | lesson | you write | what you should see | status |")
    available = [n for n, cells in rows.items() if cells[-1] == "available"]
    assert available == [lesson.number for lesson in all_lessons()]


def test_readme_lists_a_reproduce_target_for_every_lesson_that_has_one():
    from supercourse.experiments import EXPERIMENTS

    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for name in EXPERIMENTS:
        assert f"`{name}`" in text, f"the README's table of targets misses {name}"
