"""Record-and-replay: the attack of answering the grader from a table recorded at home.

A learner can run the course's own checks at home with the reference solution
as the answers, store every question and its answer, and hand in a notebook
whose worker answers from that table (:data:`REPLAY_CELL` takes over the
worker's message handling to do exactly that). What must hold: with a fresh
secret the table earns nothing; with the secret it was recorded under it earns
full marks (so the attack itself works, and the test of the secret can fail).

:func:`record` and :func:`replay` do the same at the level of one exercise, in
this process: a channel that only answers from a table is exactly what a
replaying worker looks like to the grader.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from autograder.exercises import get_exercise
from autograder.limits import DEFAULT_LIMITS
from autograder.remote import Loopback, RemoteFunction, Session
from autograder.runner import Verdict, run_exercise
from autograder.worker import wire

__all__ = ["record", "replay", "request_key", "dump", "replay_cell", "REPLAY_CELL"]


def _normalise(value: Any, handles: dict[int, int], fresh: bool = False) -> Any:
    """The message without what changes between runs anyway: time budgets, and handle ids (object addresses).

    Handles are numbered in the order they are met; an answer's handles always get new numbers
    (``fresh``: an address may be reused by a new object once the old one is gone).
    """
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "__dict__" and isinstance(v, list):  # a dict on the wire: [[key, value], ...]
                v = [pair for pair in v if not (isinstance(pair, list) and pair[:1] == ["timeout"])]
            if k == "__handle__" and isinstance(v, int):
                if fresh or v not in handles:
                    handles[v] = _next(handles)
                v = handles[v]
            out[k] = _normalise(v, handles, fresh)
        return out
    if isinstance(value, list):
        return [_normalise(v, handles, fresh) for v in value]
    return value


def _next(handles: dict[int, int]) -> int:
    """The next handle number (the counter lives under key -1: no object has a negative address)."""
    handles[-1] = handles.get(-1, 0) + 1
    return handles[-1]


def request_key(frame: bytes, handles: dict[int, int], fresh: bool = False) -> str:
    """A key for one request frame: its JSON (normalised, sorted) and its tensors' bytes."""
    n_json, n_blob = wire.header(frame[: wire.HEADER_BYTES])
    body = json.loads(frame[wire.HEADER_BYTES : wire.HEADER_BYTES + n_json])
    blob = frame[wire.HEADER_BYTES + n_json : wire.HEADER_BYTES + n_json + n_blob]
    text = json.dumps(_normalise(body, handles, fresh), sort_keys=True)
    return hashlib.sha256(text.encode() + b"\0" + blob).hexdigest()


class _Recorder(Loopback):
    """The learner's implementation served in this process, every (request, answer) pair written down."""

    def __init__(self, namespace: dict[str, Any], lesson: str) -> None:
        super().__init__(namespace, lesson=lesson)
        self.table: dict[str, bytes] = {}
        self._handles: dict[int, int] = {}

    def request(self, message: dict[str, Any], timeout: float) -> Any:
        import io

        frame = wire.frame(message)
        server = self._server
        server.rfile, server.wfile = io.BytesIO(frame), io.BytesIO()
        server._constructed = []
        server._answer(wire.recv(server.rfile, resolve=server._resolve))
        answer = server.wfile.getvalue()
        key = request_key(frame, self._handles)
        # Handles in the answer get their numbers now, in the order the grader will meet them.
        request_key(answer, self._handles, fresh=True)
        self.table[key] = answer
        return wire.recv(io.BytesIO(answer))


class _Replayer:
    """A worker that runs no learner code at all: it answers every request from the table, or with an error."""

    def __init__(self, table: dict[str, bytes]) -> None:
        self.table = table
        self._handles: dict[int, int] = {}
        self.hits = 0

    def request(self, message: dict[str, Any], timeout: float) -> Any:
        import io

        key = request_key(wire.frame(message), self._handles)
        answer = self.table.get(key)
        if answer is None:
            return {"error": {"type": "NotImplementedError", "builtin": "NotImplementedError",
                              "message": "not in the table", "where": "", "reference": False}}
        self.hits += 1
        request_key(answer, self._handles, fresh=True)
        return wire.recv(io.BytesIO(answer))


def record(exercise_id: str, implementation: Any, secret: int) -> dict[str, bytes]:
    """Grade ``implementation`` under ``secret`` and return every answer it gave, keyed by its question."""
    ex = get_exercise(exercise_id)
    channel = _Recorder({ex.function: implementation}, ex.lesson)
    run_exercise(exercise_id, RemoteFunction(Session(channel, DEFAULT_LIMITS), ex.function, ex.modifies),
                 DEFAULT_LIMITS, secret)
    return channel.table


def replay(exercise_id: str, table: dict[str, bytes], secret: int) -> tuple[Verdict, int]:
    """Grade a worker that only answers from ``table``, under ``secret``: the verdict, and how many answers it replayed."""
    ex = get_exercise(exercise_id)
    channel = _Replayer(table)
    verdict = run_exercise(exercise_id, RemoteFunction(Session(channel, DEFAULT_LIMITS), ex.function, ex.modifies),
                           DEFAULT_LIMITS, secret)
    return verdict, channel.hits


# The same attack inside a submission: REPLAY_CELL, added to an untouched notebook, takes over the worker's
# message handling so that it answers every question it finds in the table (recorded at home with
# :func:`record` and :func:`dump`) and passes the rest (the notebook's own cells) to the real server.
# ``__TABLE__`` is replaced by the table file's path.
REPLAY_CELL = r'''
import hashlib as _h, json as _j, sys as _s, gc as _gc
_wire = _s.modules["grading_worker.wire"]
_serve = _s.modules["grading_worker.serve"]
_server = next(o for o in _gc.get_objects() if isinstance(o, _serve.Server))
def _num(x, hs, fresh):
    if fresh or x not in hs:
        hs[-1] = hs.get(-1, 0) + 1
        hs[x] = hs[-1]
    return hs[x]
def _norm(v, hs, fresh=False):
    if isinstance(v, dict):
        return {k: _norm(_num(x, hs, fresh) if k == "__handle__" and isinstance(x, int)
                         else [p for p in x if p[:1] != ["timeout"]] if k == "__dict__" else x, hs, fresh)
                for k, x in v.items()}
    if isinstance(v, list):
        return [_norm(x, hs, fresh) for x in v]
    return v
def _key(frame, hs, fresh=False):
    nj, nb = _wire.header(frame[:_wire.HEADER_BYTES])
    body = _j.loads(frame[_wire.HEADER_BYTES:_wire.HEADER_BYTES + nj])
    blob = frame[_wire.HEADER_BYTES + nj:_wire.HEADER_BYTES + nj + nb]
    return _h.sha256(_j.dumps(_norm(body, hs, fresh), sort_keys=True).encode() + b"\0" + blob).hexdigest()
_table = {k: bytes.fromhex(v) for k, v in _j.load(open("__TABLE__")).items()}
_hs = {}
def _replaying_recv(rfile, resolve=None):
    while True:
        head = rfile.read(_wire.HEADER_BYTES)
        if len(head) < _wire.HEADER_BYTES:
            raise EOFError()
        nj, nb = _wire.header(head)
        frame = head + rfile.read(nj) + rfile.read(nb)
        known = _table.get(_key(frame, _hs))
        if known is None:
            return _wire.parse(frame[_wire.HEADER_BYTES:_wire.HEADER_BYTES + nj], frame[_wire.HEADER_BYTES + nj:], resolve)
        _key(known, _hs, True)
        _server.wfile.write(known)
        _server.wfile.flush()
_wire.recv = _replaying_recv
print("replaying", len(_table), "recorded answers")
'''


def dump(tables: list[dict[str, bytes]], path: Any) -> None:
    """Write recorded tables (from :func:`record`) as one JSON file of hex answers, for :data:`REPLAY_CELL`."""
    merged: dict[str, str] = {}
    for table in tables:
        merged.update({k: v.hex() for k, v in table.items()})
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(merged, fh)


def replay_cell(table_path: Any) -> str:
    """:data:`REPLAY_CELL` reading the table at ``table_path``."""
    return REPLAY_CELL.replace("__TABLE__", str(table_path))
