"""Rebuilding a submitted notebook from the instructor's release before anything else reads it.

A submission is untrusted JSON. What gets graded is decided here, from the
release notebook (what ``nbgrader generate_assignment`` made of the
instructor's source):

* every locked or graded cell (markdown, setup, check cells) is the
  release's, source and metadata, whatever the submission holds;
* a solution cell keeps the learner's source (matched by ``grade_id``; a
  cell of another type is ignored) with the release's metadata (flags,
  points, schema, checksum). A second copy of it (a pasted duplicate) is kept
  too, as a cell of the learner's own, where it stands: the notebook runs
  every copy in order and the last definition wins, as in the learner's
  kernel. A deleted solution cell becomes an empty one (a comment), never the
  release's stub, so a definition the learner retyped elsewhere still counts;
* cells without nbgrader metadata are the learner's (nbgrader never restores
  them): the submission's are kept in place (their helpers and imports, an
  edited setup cell), with their metadata cleared;
* a cell that claims nbgrader metadata the release does not have (an unknown
  ``grade_id``, a flipped flag on a copy) is dropped;
* every markdown cell of the learner's is sanitised (:mod:`autograder.sanitize`):
  it reaches the instructor's browser in formgrader and the feedback; raw
  cells, attachments and the submission's outputs are dropped;
* notebook metadata (kernel, nbformat, widget state) is the release's.

The result is a valid nbformat 4 notebook with exactly the release's graded
cells, in the release's order.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import nbformat
from nbformat import NotebookNode

from .sanitize import safe_markdown

__all__ = ["rebuild", "release_given", "Rebuilt", "MISSING_ANSWER"]

_MAX_SOURCE = 200_000
MISSING_ANSWER = "# (this answer cell is not in the submission)"


@dataclass
class Rebuilt:
    """The notebook to grade, what was changed to get it, and the release's own code (``given``)."""

    notebook: NotebookNode
    changes: list[str] = field(default_factory=list)
    given: frozenset[str] = frozenset()


def release_given(release: NotebookNode) -> frozenset[str]:
    """The sources of the release's own code cells: running them unchanged is not the learner's work."""
    return frozenset(c.source for c in release.cells if c.cell_type == "code")


def _meta(cell: Any) -> dict[str, Any] | None:
    try:
        meta = cell.get("metadata", {}).get("nbgrader")
    except AttributeError:
        return None
    return meta if isinstance(meta, dict) else None


def _source(cell: Any) -> str:
    src = cell.get("source", "") if isinstance(cell, dict) else ""
    if isinstance(src, list):
        src = "".join(s for s in src if isinstance(s, str))
    return src[:_MAX_SOURCE] if isinstance(src, str) else ""


def _cells(nb: Any) -> list[dict[str, Any]]:
    cells = nb.get("cells", []) if isinstance(nb, dict) else []
    return [c for c in cells if isinstance(c, dict)] if isinstance(cells, list) else []


def rebuild(submission: Any, release: NotebookNode) -> Rebuilt:
    """The notebook to grade: ``release``'s graded cells and structure, the learner's solutions and own cells."""
    changes: list[str] = []
    release_cells = list(release.cells)
    by_id = {}
    for cell in release_cells:
        meta = _meta(cell)
        if meta and meta.get("grade_id"):
            by_id[meta["grade_id"]] = cell
    answers: dict[str, str] = {}
    own: dict[int, list[dict[str, Any]]] = {}  # learner's own cells, after the n-th release cell seen
    seen_release = -1
    release_index = {id(c): i for i, c in enumerate(release_cells)}
    for cell in _cells(submission):
        meta = _meta(cell)
        ctype = cell.get("cell_type")
        if meta is None:
            if ctype in ("code", "markdown") and "nbgrader" not in cell.get("metadata", {}):
                own.setdefault(seen_release, []).append(cell)
            else:
                changes.append("dropped a cell with malformed nbgrader metadata")
            continue
        gid = meta.get("grade_id")
        if not isinstance(gid, str) or gid not in by_id:
            changes.append(f"dropped a cell with unknown grade_id {str(gid)[:40]!r}")
            continue
        target = by_id[gid]
        seen_release = max(seen_release, release_index[id(target)])
        tmeta = _meta(target)
        if not tmeta.get("solution"):
            if _source(cell) != target.source or _without_checksum(meta) != _without_checksum(tmeta):
                changes.append(f"restored locked cell {gid!r} from the release")
            continue
        if gid in answers:
            if ctype == target.cell_type:
                changes.append(f"kept a second copy of solution cell {gid!r} as a cell of the learner's own")
                own.setdefault(seen_release, []).append(cell)
            continue
        if ctype != target.cell_type:
            changes.append(f"ignored solution cell {gid!r} of the wrong type {str(ctype)[:20]!r}")
            continue
        answers[gid] = _source(cell)
        if _without_checksum(meta) != _without_checksum(tmeta):
            changes.append(f"reset the metadata of solution cell {gid!r}")
    out = nbformat.v4.new_notebook()
    out.metadata = copy.deepcopy(release.metadata)
    cells = []
    for cell in own.get(-1, []):
        cells.append(_own_cell(cell))
    for i, cell in enumerate(release_cells):
        meta = _meta(cell)
        if meta is None:  # an unmarked cell is the learner's to edit or delete: their copy is among `own`
            continue
        new = copy.deepcopy(cell)
        if meta and meta.get("solution"):
            gid = meta.get("grade_id")
            if gid in answers:
                new.source = answers[gid] if new.cell_type == "code" else safe_markdown(answers[gid])
            else:
                changes.append(f"solution cell {gid!r} was missing: kept empty (a definition elsewhere still counts)")
                new.source = MISSING_ANSWER if new.cell_type == "code" else ""
        if new.cell_type == "code":
            new.outputs, new.execution_count = [], None
        cells.append(new)
        for extra in own.get(i, []):
            cells.append(_own_cell(extra))
    out.cells = cells
    return Rebuilt(out, changes, release_given(release))


def _without_checksum(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if k != "checksum"}


def _own_cell(cell: dict[str, Any]) -> NotebookNode:
    if cell.get("cell_type") == "markdown":
        return nbformat.v4.new_markdown_cell(safe_markdown(_source(cell)))
    return nbformat.v4.new_code_cell(_source(cell))
