"""The suite's own distribution (``conftest.py``): which tests share a worker under ``--dist loadgroup``."""

from __future__ import annotations

from pathlib import Path

from conftest import LONG_FIRST, SHARED_FIXTURES, fixture_group

TESTS = Path(__file__).resolve().parent


def test_every_named_module_exists():
    """A renamed module would silently lose its place (its fixtures made on both workers again)."""
    missing = [name for name in (*SHARED_FIXTURES, *LONG_FIRST) if not (TESTS / name).is_file()]
    assert missing == []


def test_a_shared_fixture_module_is_one_unit_and_any_other_test_its_own():
    shared = f"tests/{SHARED_FIXTURES[0]}"
    assert fixture_group(f"{shared}::test_a[seed0]") == fixture_group(f"{shared}::test_b") == shared
    other = "tests/test_model.py::test_forward[float64]"
    assert fixture_group(other) == other
    assert fixture_group("tests/test_model.py::test_forward") != fixture_group("tests/test_model.py::test_backward")
