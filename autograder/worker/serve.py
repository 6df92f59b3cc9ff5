"""The worker's loop: run a learner's cells, then answer the grader's requests.

Requests (each one message, answered by one message):

* ``{"op": "ping"}`` -> ``{"ok": {"ready": True, ...}}`` (the start-up check)
* ``{"op": "run_cell", "source": str}`` -> ``{"ok": {"error": str | None, "stdout": str}}``
* ``{"op": "call", "target": name | Handle, "args": [...], "kwargs": {...}}``
* ``{"op": "getattr", "target": Handle, "name": str}``
* ``{"op": "method", "target": Handle, "name": str, "args": [...], "kwargs": {...}}``
* ``{"op": "probe", "name": str, "args": [...]}`` (a function of :mod:`.probes`)
* ``{"op": "defined", "names": [str]}`` -> which names the learner's namespace defines
* ``{"op": "exit"}``

Answers are ``{"ok": value, "generators": [...], "constructed": [...]}`` or
``{"error": {"type", "message", "where", "reference"}}``. A learner's
exception never ends the loop; only the process dying does.

Nothing here is trusted by the grader: the learner's code shares this process
and may change any of it. The grader treats every answer as untrusted data.
"""

from __future__ import annotations

import importlib
import io
import signal
import sys
import threading
import traceback
from typing import Any, BinaryIO

import torch

from . import probes, wire

__all__ = ["Server", "REFERENCE_ERROR"]

TIMEOUT_ERROR = "GradingTimeout"
"""Type name of the error raised into the learner's code when a request runs past its soft time limit."""


class GradingTimeout(BaseException):
    """Raised (by SIGALRM) into the learner's code when a request runs past its time limit.

    This is the polite limit; the grader kills the whole worker a few seconds
    later if the learner's code ignores it.
    """


def _on_alarm(signum, frame):
    raise GradingTimeout("time limit reached")


REFERENCE_ERROR = "ReferenceUnavailable"
"""Type name of the error a redacted reference raises (see ``autograder.redact``)."""
_CONSTRUCTIBLE = ("supercourse.", "torch.", "lesson:")
_MAX_STDOUT = 20_000


def _where(tb) -> str:
    """The learner's line the error came from, as 'in a notebook cell, line N: `source`'."""
    here = str(__file__).rsplit("/", 1)[0]
    for frame in reversed(traceback.extract_tb(tb)):
        name = frame.filename
        if name.startswith(here) or "site-packages" in name or "/torch/" in name or "/lib/python3" in name:
            continue
        if name.startswith("<") or "ipython-input" in name or "ipykernel" in name:
            return f"in a notebook cell, line {frame.lineno}: `{(frame.line or '').strip()}`"
        return f"in {name.rsplit('/', 1)[-1]}, line {frame.lineno}: `{(frame.line or '').strip()}`"
    return ""


def describe_error(err: BaseException) -> dict[str, Any]:
    """An exception as plain data for the grader."""
    chain, seen = err, set()
    reference = False
    while chain is not None and id(chain) not in seen:
        seen.add(id(chain))
        reference = reference or type(chain).__name__ == REFERENCE_ERROR
        chain = chain.__cause__ or chain.__context__
    try:
        message = str(err)
    except Exception:  # a learner's exception whose __str__ raises
        message = "<unprintable>"
    builtin = next((c.__name__ for c in type(err).__mro__ if c.__module__ == "builtins"), "BaseException")
    return {
        "type": type(err).__name__,
        "builtin": builtin,
        "message": message[:2000],
        "where": _where(err.__traceback__),
        "reference": reference,
    }


def _seed_globals(seed: int) -> None:
    import random

    torch.manual_seed(seed)
    random.seed(seed)
    try:
        import numpy

        numpy.random.seed(seed % 2**32)
    except ImportError:
        pass


def _tensors_in(value: Any, path: str, out: list[tuple[str, torch.Tensor]], depth: int = 0) -> None:
    if isinstance(value, torch.Tensor):
        out.append((path, value))
    elif depth < 4 and isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _tensors_in(v, f"{path}[{i}]", out, depth + 1)
    elif depth < 4 and isinstance(value, dict):
        for k, v in value.items():
            _tensors_in(v, f"{path}[{k!r}]", out, depth + 1)


def _argument_names(fn: Any, args: list, kwargs: dict) -> list[str]:
    """The parameter name of each positional argument (``"argument 0"`` where the signature does not say)."""
    import inspect

    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs)
        names = list(bound.arguments)
    except (TypeError, ValueError):
        names = []
    return [names[i] if i < len(names) else f"argument {i}" for i in range(len(args))]


def _watching_arguments(fn: Any, args: list, kwargs: dict) -> tuple[Any, list[str]]:
    """Call ``fn`` and name every tensor argument it changed in place (compared with a copy kept here).

    Arguments crossed from the grader as copies, so only this side can see an in-place edit.
    """
    watched: list[tuple[str, torch.Tensor]] = []
    for name, arg in zip(_argument_names(fn, args, kwargs), args):
        _tensors_in(arg, name, watched)
    for name, arg in kwargs.items():
        _tensors_in(arg, name, watched)
    with torch.no_grad():
        copies = [(name, t, t.detach().clone()) for name, t in watched if t.layout == torch.strided]
    value = fn(*args, **kwargs)
    modified = []
    with torch.no_grad():
        for name, t, before in copies:
            if t.shape != before.shape or t.dtype != before.dtype or not torch.equal(
                    torch.nan_to_num(t.detach(), 0.0, 1.0, -1.0), torch.nan_to_num(before, 0.0, 1.0, -1.0)) or \
                    not torch.equal(t.detach().isnan(), before.isnan()):
                modified.append(name)
    return value, modified


class Server:
    """Answers requests over ``rfile``/``wfile`` against the namespace ``ns``."""

    def __init__(self, rfile: BinaryIO, wfile: BinaryIO, ns: dict[str, Any] | None = None, shell: Any = None,
                 helpers: Any = None) -> None:
        self.rfile, self.wfile = rfile, wfile
        self.shell = shell
        self.helpers = helpers  # the lesson's worker-side helpers (its worker.py), for Construct("lesson:Name")
        self.ns = ns if ns is not None else (shell.user_ns if shell is not None else {})
        self.objects: dict[int, Any] = {}

    # ------------------------------------------------------------------ handles
    def handle_of(self, obj: Any) -> wire.Handle:
        key = id(obj)
        self.objects[key] = obj
        return wire.Handle(key, f"{type(obj).__module__}.{type(obj).__qualname__}", isinstance(obj, torch.nn.Module))

    def _resolve(self, spec: Any) -> Any:
        if isinstance(spec, wire.Handle):
            if spec.id not in self.objects:
                raise wire.WireError("unknown handle")
            return self.objects[spec.id]
        if isinstance(spec, wire.Construct):
            if not spec.cls.startswith(_CONSTRUCTIBLE):
                raise wire.WireError(f"will not build {spec.cls!r}")
            if spec.cls.startswith("lesson:"):  # a helper of the lesson's worker.py (e.g. lesson:ScriptedModel)
                if self.helpers is None:
                    raise wire.WireError(f"this lesson has no worker helpers for {spec.cls!r}")
                cls = getattr(self.helpers, spec.cls.removeprefix("lesson:"))
            else:
                module_name, _, name = spec.cls.rpartition(".")
                cls = getattr(importlib.import_module(module_name), name)
            obj = cls(**spec.kwargs)
            if spec.state is not None:
                obj.load_state_dict(spec.state)
            self._constructed.append(obj)
            return obj
        raise wire.WireError("bad reference")

    # ------------------------------------------------------------------ loop
    def serve(self) -> None:
        while True:
            self._constructed: list[Any] = []
            try:
                request = wire.recv(self.rfile, resolve=self._resolve)
            except EOFError:
                return
            except Exception as err:
                self._reply({"error": describe_error(err)})
                continue
            if not isinstance(request, dict) or request.get("op") == "exit":
                return
            self._answer(request)

    def _reply(self, message: dict[str, Any]) -> None:
        try:
            wire.send(self.wfile, message, handle_of=self.handle_of)
        except wire.WireError as err:
            wire.send(self.wfile, {"error": {"type": "WireError", "message": str(err), "where": "", "reference": False}})

    def _answer(self, request: dict[str, Any]) -> None:
        timeout = request.get("timeout")
        alarm = (isinstance(timeout, (int, float)) and timeout > 0 and hasattr(signal, "setitimer")
                 and threading.current_thread() is threading.main_thread())
        if alarm:
            previous = signal.signal(signal.SIGALRM, _on_alarm)
            signal.setitimer(signal.ITIMER_REAL, float(timeout))
        try:
            self._answer_now(request)
        except GradingTimeout as err:  # the alarm fired after the answer was computed
            self._reply({"error": describe_error(err)})
        finally:
            if alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)

    def _answer_now(self, request: dict[str, Any]) -> None:
        op = request.get("op")
        modified: list[str] = []
        generators = [a for a in [*request.get("args", []), *request.get("kwargs", {}).values()] if isinstance(a, torch.Generator)]
        try:
            if op == "ping":
                if isinstance(request.get("seed"), int):  # the learner's global streams start where no one can predict
                    _seed_globals(request["seed"])
                value = {"ready": True, "torch": torch.__version__}
            elif op == "run_cell":
                value = self.run_cell(str(request["source"]))
            elif op == "defined":
                value = {name: name in self.ns for name in request["names"]}
            elif op == "call":
                target = request["target"]
                fn = self.ns.get(target) if isinstance(target, str) else target
                if fn is None:
                    raise NameError(f"name {target!r} is not defined")
                value, modified = _watching_arguments(fn, request.get("args", []), request.get("kwargs", {}))
            elif op == "call_grad":
                value = self._call_grad(request)
            elif op == "getattr":
                value = getattr(request["target"], str(request["name"]))
            elif op == "method":
                method = getattr(request["target"], str(request["name"]))
                value, modified = _watching_arguments(method, request.get("args", []), request.get("kwargs", {}))
            elif op == "probe":
                value = getattr(probes, str(request["name"]))(*request.get("args", []))
            else:
                raise wire.WireError(f"unknown request {op!r}")
        except BaseException as err:  # the learner's code may raise anything, SystemExit included
            self._reply({"error": describe_error(err)})
            return
        self._reply({
            "ok": value,
            "modified": modified,
            "generators": [g.get_state() for g in generators],
            "constructed": [probes.report_of(obj) for obj in self._constructed],
        })

    def _call_grad(self, request: dict[str, Any]) -> dict[str, Any]:
        """Call with the ``wrt`` arguments requiring grad; backpropagate ``(out * weights).sum()`` (or ``out``)."""
        target = request["target"]
        fn = self.ns.get(target) if isinstance(target, str) else target
        if fn is None:
            raise NameError(f"name {target!r} is not defined")
        args, kwargs = list(request.get("args", [])), dict(request.get("kwargs", {}))
        leaves = []
        for key in request.get("wrt", []):
            holder = args if isinstance(key, int) else kwargs
            t = holder[key].detach().clone().requires_grad_(True)
            holder[key] = t
            leaves.append(t)
        out = fn(*args, **kwargs)
        pick = request.get("output")
        if isinstance(pick, int) and not isinstance(pick, bool) and isinstance(out, (tuple, list)) and -len(out) <= pick < len(out):
            out = out[pick]
        result: dict[str, Any] = {"out": out, "requires_grad": bool(getattr(out, "requires_grad", False)), "grads": None}
        if isinstance(out, torch.Tensor) and out.requires_grad:
            weights = request.get("weights")
            total = (out * weights).sum() if weights is not None else out.sum()
            grads = torch.autograd.grad(total, leaves, allow_unused=True)
            result["grads"] = [None if g is None else g.detach() for g in grads]
        return result

    def run_cell(self, source: str) -> dict[str, Any]:
        """Run one cell's source; returns its error (or None) and what it printed."""
        out = io.StringIO()
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = out
        error = None
        try:
            if self.shell is not None:
                result = self.shell.run_cell(source, store_history=False, silent=True)
                err = result.error_before_exec or result.error_in_exec
                if err is not None:
                    error = f"{type(err).__name__}: {describe_error(err)['message']}"
                    if type(err).__name__ == REFERENCE_ERROR or describe_error(err)["reference"]:
                        error = f"{REFERENCE_ERROR}: {describe_error(err)['message']}"
            else:
                exec(compile(source, "<cell>", "exec"), self.ns)  # noqa: S102 (the learner's own code, sandboxed)
        except BaseException as err:
            error = f"{type(err).__name__}: {describe_error(err)['message']}"
        finally:
            sys.stdout, sys.stderr = saved
        return {"error": error, "stdout": out.getvalue()[-_MAX_STDOUT:]}
