"""nbgrader's per-student gradebook work, shared across a class: the same validation and the same database."""

from __future__ import annotations

import copy

import jsonschema
import nbgrader.api
import pytest
from nbformat.v4 import new_code_cell
from nbgrader.api import Gradebook
from nbgrader.nbgraderformat import MetadataValidator, common

from autograder.nbgrader_speed import shared_gradebook_work


def _cell(**metadata):
    meta = {"grade": True, "solution": True, "locked": False, "points": 2, "grade_id": "ex1",
            "schema_version": MetadataValidator.schema_version}
    meta.update(metadata)
    return new_code_cell("x = 1", metadata={"nbgrader": meta})


def _error(cell):
    try:
        MetadataValidator().validate_cell(cell)
    except jsonschema.ValidationError as err:
        return err.message
    return None


BAD = [dict(points="two"), dict(grade_id=3), dict(grade="yes"), dict(locked=None), dict(points=-1)]


@pytest.mark.parametrize("change", BAD, ids=[next(iter(b)) for b in BAD])
def test_bad_metadata_is_refused_as_nbgrader_refuses_it(change):
    cell = _cell(**change)
    plain = _error(copy.deepcopy(cell))
    with shared_gradebook_work():
        shared = _error(copy.deepcopy(cell))
    assert shared == plain
    if change != dict(points=-1):  # nbgrader's schema has no minimum: whatever it accepts is accepted here too
        assert plain is not None, f"nbgrader's own schema accepts {change}"


def test_each_schema_is_checked_once_and_good_metadata_passes(monkeypatch):
    checked = []
    original = jsonschema.validators.validator_for

    def counting(schema, *args, **kwargs):
        checked.append(schema)
        return original(schema, *args, **kwargs)

    monkeypatch.setattr(jsonschema.validators, "validator_for", counting)
    validator = MetadataValidator()
    with shared_gradebook_work():
        for i in range(20):
            assert _error(_cell(grade_id=f"ex{i}")) is None
            validator.validate_cell(_cell(grade_id=f"ex{i}"))
    assert sum(1 for schema in checked if schema == validator.schema) == 1


def test_every_opening_of_one_gradebook_shares_one_engine_and_nothing_is_lost(tmp_path):
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    other = f"sqlite:///{tmp_path / 'other.db'}"
    original = nbgrader.api.create_engine
    with shared_gradebook_work():
        with Gradebook(url) as a:
            a.add_student("s1")
        with Gradebook(url) as b, Gradebook(other) as c:
            assert b.engine is a.engine and c.engine is not a.engine
            assert [s.id for s in b.students] == ["s1"]
            b.add_student("s2")
    assert nbgrader.api.create_engine is original
    with Gradebook(url) as d, Gradebook(url) as e:
        assert d.engine is not e.engine  # as nbgrader has it, outside the block
        assert sorted(s.id for s in d.students) == ["s1", "s2"]


def test_what_was_replaced_is_restored_after_an_error():
    engine, schemas = nbgrader.api.create_engine, common.jsonschema
    with pytest.raises(RuntimeError), shared_gradebook_work():
        assert nbgrader.api.create_engine is not engine and common.jsonschema is not schemas
        raise RuntimeError("grading stopped")
    assert nbgrader.api.create_engine is engine and common.jsonschema is schemas
