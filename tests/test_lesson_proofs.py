"""Every lesson proves its checks the same way, over every discovered lesson folder.

For each exercise:

* the solution keeps full marks, the released stub scores 0 and says it is not implemented;
* every mistake in the lesson's table (``mistakes.py``) loses points, with a message naming it;
* every correct alternative in the lesson's folder (``alternatives.py``) keeps full marks;
* the generic mistakes lose points wherever they apply: a NaN or an infinity in the answer, an argument
  changed in place, and, for a forward pass or a loss, an answer that carries no gradient;
* answers recorded under one secret and replayed under another earn nothing, and replayed under the
  same secret earn full marks (so the replay works, and the secret is what defeats it).

And for each lesson: the check cells' points match the registry, every reference exists, and the tables
are big enough. The solution's verdict is computed once per exercise and shared.
"""

from __future__ import annotations

import importlib
import re
import secrets
from functools import lru_cache

import nbformat
import pytest

from autograder.exercises import exercises, get_exercise, lessons
from autograder.grader import is_check_cell
from autograder.lessons import all_lessons, get_lesson
from autograder.toolkit.mistakes import Mistake
from autograder.toolkit.testing import generic_mutant, grade, messages
from lesson_tools import lesson_namespace, solution_namespace
from replay import record, replay

MIN_MISTAKES = 6
MIN_ALTERNATIVES = 3
SECRET = 0x5EC2E7_C0FFEE_2026  # the tests' own fixed secret: every run grades the same inputs
CHECK_CALL = re.compile(r'^check\("(?P<id>[\w.]+)", (?P<name>\w+)\)$', re.M)

EXERCISE_IDS = sorted(exercises())
SLUGS = [lesson.slug for lesson in all_lessons() if lesson.has("checks")]


def _table(slug: str, part: str, name: str) -> dict:
    lesson = get_lesson(slug)
    if not lesson.has(part):
        return {}
    return getattr(lesson.module(part), name)


def _mistakes() -> list[tuple[str, Mistake]]:
    out = []
    for ex_id in EXERCISE_IDS:
        ex = get_exercise(ex_id)
        out += [(ex_id, m) for m in _table(ex.lesson, "mistakes", "MISTAKES").get(ex.name, [])]
    return out


def _alternatives() -> list[tuple[str, int]]:
    out = []
    for ex_id in EXERCISE_IDS:
        ex = get_exercise(ex_id)
        out += [(ex_id, i) for i in range(len(_table(ex.lesson, "alternatives", "ALTERNATIVES").get(ex.name, [])))]
    return out


def _solution(ex_id: str):
    ex = get_exercise(ex_id)
    return solution_namespace(ex.lesson)[ex.function]


@lru_cache(maxsize=None)
def _solution_verdict(ex_id: str):
    return grade(ex_id, _solution(ex_id), secret=SECRET)


# --------------------------------------------------------------------------- each lesson


@pytest.mark.parametrize("slug", SLUGS)
def test_check_cells_match_the_registry(slug):
    nb = nbformat.read(get_lesson(slug).notebook, as_version=4)
    found = {}
    for cell in nb.cells:
        if not is_check_cell(cell):
            continue
        meta = cell.metadata.nbgrader
        calls = CHECK_CALL.findall(cell.source)
        assert len(calls) == 1, f"check cell {meta['grade_id']} must end with one check(...) call"
        ex_id, name = calls[0]
        assert cell.source.rstrip().endswith(f'check("{ex_id}", {name})'), "check(...) must be the last line"
        assert cell.source.startswith(f"# Check your work (autograded, {meta['points']:g} points)\n")
        assert meta["locked"] is True
        found[ex_id] = (name, float(meta["points"]), meta["grade_id"])
    expected = {ex.id: (ex.function, ex.points, f"check_{ex.name}") for ex in lessons()[slug]}
    assert found == expected
    assert list(found) == list(expected), "the registry lists a lesson's exercises in notebook order"


@pytest.mark.parametrize("slug", SLUGS)
def test_every_reference_exists(slug):
    for ex in lessons()[slug]:
        for dotted in ex.reference:
            parts = dotted.split(".")
            for split in range(len(parts), 0, -1):
                try:
                    obj = importlib.import_module(".".join(parts[:split]))
                except ImportError:
                    continue
                for attr in parts[split:]:
                    assert hasattr(obj, attr), f"{ex.id}: reference {dotted} does not exist"
                    obj = getattr(obj, attr)
                break
            else:
                pytest.fail(f"{ex.id}: reference {dotted} does not exist")


@pytest.mark.parametrize("slug", SLUGS)
def test_every_exercise_has_its_tables(slug):
    short = {}
    for ex in lessons()[slug]:
        n_mistakes = len(_table(slug, "mistakes", "MISTAKES").get(ex.name, []))
        n_alternatives = len(_table(slug, "alternatives", "ALTERNATIVES").get(ex.name, []))
        if n_mistakes < MIN_MISTAKES or n_alternatives < MIN_ALTERNATIVES:
            short[ex.id] = (n_mistakes, n_alternatives)
    assert not short, f"(mistakes, alternatives) below ({MIN_MISTAKES}, {MIN_ALTERNATIVES}): {short}"


@pytest.mark.parametrize("slug", SLUGS)
def test_tables_name_only_known_exercises(slug):
    names = {ex.name for ex in lessons()[slug]}
    for part, name in (("mistakes", "MISTAKES"), ("alternatives", "ALTERNATIVES")):
        assert set(_table(slug, part, name)) <= names, f"{slug}/{part}.py lists unknown exercises"


# --------------------------------------------------------------------------- each exercise


@pytest.mark.parametrize("exercise_id", EXERCISE_IDS)
def test_solution_keeps_full_marks(exercise_id):
    verdict = _solution_verdict(exercise_id)
    assert verdict.passed, verdict.report()


@pytest.mark.parametrize("exercise_id", EXERCISE_IDS)
def test_released_stub_scores_zero_and_says_so(exercise_id):
    ex = get_exercise(exercise_id)
    verdict = grade(exercise_id, lesson_namespace(ex.lesson)[ex.function], secret=SECRET)
    assert verdict.points == 0, verdict.report()
    assert any("not implemented" in p.message for p in verdict.properties), verdict.report()


MISTAKES = _mistakes()


@pytest.mark.parametrize("exercise_id, mistake", MISTAKES, ids=[f"{e}-{m.name}" for e, m in MISTAKES])
def test_every_mistake_loses_points_and_is_named(exercise_id, mistake):
    verdict = grade(exercise_id, mistake.implementation, secret=SECRET)
    assert verdict.points < verdict.max_points, f"{exercise_id}: mistake {mistake.name} scored full marks"
    text = messages(verdict)
    assert mistake.keyword.lower() in text.lower(), f"expected {mistake.keyword!r} in the messages, got: {text}"


ALTERNATIVES = _alternatives()


@pytest.mark.parametrize("exercise_id, index", ALTERNATIVES, ids=[f"{e}-{i}" for e, i in ALTERNATIVES])
def test_every_alternative_keeps_full_marks(exercise_id, index):
    ex = get_exercise(exercise_id)
    implementation = _table(ex.lesson, "alternatives", "ALTERNATIVES")[ex.name][index]
    verdict = grade(exercise_id, implementation, secret=SECRET)
    assert verdict.passed, f"alternative {index} ({getattr(implementation, '__name__', '?')}):\n{verdict.report()}"


GENERIC = [(e, k) for e in EXERCISE_IDS for k in ("nan", "inf", "in_place", "detached")
           if k != "detached" or get_exercise(e).differentiable]


@pytest.mark.parametrize("exercise_id, kind", GENERIC, ids=[f"{e}-{k}" for e, k in GENERIC])
def test_generic_mistakes_lose_points(exercise_id, kind):
    ex = get_exercise(exercise_id)
    mutant, state = generic_mutant(_solution(exercise_id), kind, spare=ex.modifies)
    verdict = grade(exercise_id, mutant, secret=SECRET)
    if not state.applied:
        pytest.skip(f"{exercise_id} never returns a float tensor / never receives one: {kind} does not apply")
    assert verdict.points < verdict.max_points, f"{exercise_id}: the {kind} mutant kept full marks"


@pytest.mark.parametrize("exercise_id", EXERCISE_IDS)
def test_answers_replayed_under_another_secret_earn_nothing(exercise_id):
    table = record(exercise_id, _solution(exercise_id), SECRET)
    same, hits = replay(exercise_id, table, SECRET)
    assert same.passed and hits > 0, f"the replay itself should work under the recording's secret:\n{same.report()}"
    other, _ = replay(exercise_id, table, secrets.randbits(128))
    leaking = [p.test for p in other.properties if p.passed]
    assert other.points == 0, f"{exercise_id}: properties whose inputs can be predicted: {leaking}"
