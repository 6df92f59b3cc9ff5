"""The learner's code as the checks see it: proxies that call into the worker with plain data.

A check calls ``submission(*args, **kwargs)`` as if it were the learner's
function. The arguments cross to the worker as plain data, the learner's code
runs there, and what comes back is plain data again (tensors, numbers,
strings, containers) or a :class:`RemoteObject` for anything else (a model, a
figure) that stays in the worker. A ``torch.Generator`` passed in crosses as
its state and its advanced state is set back on the caller's generator; a
:class:`~autograder.worker.wire.Construct` is built in the worker and its
final ``state_dict`` comes back in ``final_state``.

Errors the learner's code raises come back as :class:`LearnerError` (its type
name, message and the learner's line), never as the learner's exception
object. A worker that crashes or runs past its time limit raises
:class:`~autograder.sandbox.WorkerDied`.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import torch

from .limits import DEFAULT_LIMITS, GradingLimits
from .worker import wire
from .worker.wire import Construct, Handle

__all__ = ["Channel", "LearnerError", "RemoteFunction", "RemoteObject", "Construct", "Session", "SoftTimeout"]


class SoftTimeout(Exception):
    """The learner's code ran past its time limit and was interrupted; the worker is still alive."""


class Channel(Protocol):
    def request(self, message: dict[str, Any], timeout: float) -> Any: ...


class LearnerError(Exception):
    """The learner's code raised ``type_name`` with ``message`` (at ``where``).

    Raised as a subclass of the nearest built-in exception class of the
    learner's error too (``LearnerError[ValueError]`` is a ``ValueError``), so a
    check can write ``except ValueError`` as it would around a local call.
    """

    def __init__(self, type_name: str, message: str, where: str = "", reference: bool = False) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name, self.message, self.where, self.reference = type_name, message, where, reference


_ERROR_CLASSES: dict[str, type[LearnerError]] = {}


def learner_error(type_name: str, builtin: str, message: str, where: str = "", reference: bool = False) -> LearnerError:
    """A :class:`LearnerError` that is also an instance of the built-in exception ``builtin`` (when it is an Exception)."""
    import builtins

    base = getattr(builtins, builtin, None)
    if not (isinstance(base, type) and issubclass(base, Exception)) or base is Exception:
        return LearnerError(type_name, message, where, reference)
    cls = _ERROR_CLASSES.get(builtin)
    if cls is None:
        try:
            cls = type(f"Learner{builtin}", (LearnerError, base), {})
        except TypeError:  # a built-in whose layout cannot be combined
            return LearnerError(type_name, message, where, reference)
        _ERROR_CLASSES[builtin] = cls
    err = cls.__new__(cls)
    LearnerError.__init__(err, type_name, message, where, reference)
    return err


def _modified_message(names: list[str]) -> str:
    which = ", ".join(f"`{n}`" for n in names[:4])
    return (f"changed its argument{'s' if len(names) > 1 else ''} {which} in place. A function must leave what "
            "it is given as it was (its caller may use it again): compute into a new tensor (e.g. x / norm "
            "rather than x /= norm, or clone() first) and return that.")


class Session:
    """A channel to one worker plus the time budget of the property being checked.

    ``deadline`` (a ``time.monotonic()`` value) is the property's; ``hard_deadline``, when set, is the
    whole notebook's, and no request may wait past it.
    """

    def __init__(self, channel: Channel, limits: GradingLimits = DEFAULT_LIMITS) -> None:
        self.channel = channel
        self.limits = limits
        self.deadline: float | None = None
        self.hard_deadline: float | None = None

    def timeout(self) -> float:
        now = time.monotonic()
        left = self.limits.property_seconds if self.deadline is None else self.deadline - now
        if self.hard_deadline is not None:
            left = min(left, self.hard_deadline - now)
        return max(0.05, left)

    def ask(self, message: dict[str, Any]) -> Any:
        """Send ``message``; return the plain value of its answer or raise :class:`LearnerError`."""
        generators = [a for a in [*message.get("args", []), *message.get("kwargs", {}).values()] if isinstance(a, torch.Generator)]
        constructs = _constructs([*message.get("args", []), *message.get("kwargs", {}).values()])
        soft = self.timeout()
        answer = self.channel.request({**message, "timeout": soft}, soft + self.limits.grace_seconds)
        if not isinstance(answer, dict) or not ("ok" in answer or "error" in answer):
            raise wire.WireError("malformed answer from the worker")
        if "error" in answer:
            err = answer["error"] if isinstance(answer["error"], dict) else {}
            if err.get("type") == "GradingTimeout":
                raise SoftTimeout(f"took longer than {soft:.3g} s")
            raise learner_error(str(err.get("type", "Error"))[:100], str(err.get("builtin", ""))[:100],
                                str(err.get("message", ""))[:2000], str(err.get("where", ""))[:300],
                                bool(err.get("reference", False)))
        modified = answer.get("modified") or []
        allowed = message.get("allow_modified") or ()
        changed = [str(m)[:80] for m in modified if isinstance(m, str) and m.split("[", 1)[0] not in allowed]
        if changed:
            raise learner_error("ModifiedArgument", "", _modified_message(changed))
        states = answer.get("generators") or []
        for gen, state in zip(generators, states):
            if isinstance(state, torch.Tensor) and state.dtype == torch.uint8:
                try:
                    gen.set_state(state)
                except (RuntimeError, TypeError):
                    pass
        finals = answer.get("constructed") or []
        for spec, report in zip(constructs, finals):
            report = report if isinstance(report, dict) else {}
            spec.final_state = report.get("state") if isinstance(report.get("state"), dict) else None
            spec.records = report.get("records")
        return self._wrap(answer["ok"])

    def _wrap(self, value: Any) -> Any:
        if isinstance(value, Handle):
            return RemoteObject(self, value)
        if isinstance(value, list):
            return [self._wrap(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self._wrap(v) for v in value)
        if isinstance(value, dict):
            return {k: self._wrap(v) for k, v in value.items()}
        return value

    def probe(self, name: str, *args: Any) -> Any:
        """Run the worker-side helper ``autograder.worker.probes.<name>(*args)``."""
        return self.ask({"op": "probe", "name": name, "args": [_unwrap(a) for a in args]})


def _unwrap(value: Any) -> Any:
    if isinstance(value, RemoteObject):
        return value._handle
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_unwrap(v) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return value


def _constructs(values: list[Any]) -> list[Construct]:
    # The worker builds constructs in the order it decodes them: arguments first, then keywords.
    out: list[Construct] = []
    for v in values:
        if isinstance(v, Construct):
            out.append(v)
        elif isinstance(v, (list, tuple)):
            out += _constructs(list(v))
        elif isinstance(v, dict):
            out += _constructs(list(v.values()))
    return out


class RemoteFunction:
    """The learner's top-level name ``name`` (a function or a class) in the worker."""

    def __init__(self, session: Session, name: str, modifies: tuple[str, ...] = ()) -> None:
        self._session, self.__name__ = session, name
        self.__qualname__ = name
        self.modifies = tuple(modifies)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._session.ask({"op": "call", "target": self.__name__, "args": [_unwrap(a) for a in args],
                                  "kwargs": {k: _unwrap(v) for k, v in kwargs.items()},
                                  "allow_modified": list(self.modifies)})

    def with_grad(self, *args: Any, wrt: tuple[int | str, ...], weights: torch.Tensor | None = None,
                  output: int | None = None, **kwargs: Any) -> dict[str, Any]:
        """Call with the arguments ``wrt`` (positions or keyword names) requiring grad, then backpropagate.

        Returns ``{"out", "requires_grad", "grads"}``: ``grads`` (one per ``wrt``,
        None where no gradient reached) of ``(out * weights).sum()``, or of
        ``out.sum()`` without weights; ``grads`` is None when ``out`` carries no gradient.
        ``output`` picks one element when the function returns a tuple or list (then ``out`` is that element).
        """
        return self._session.ask({"op": "call_grad", "target": self.__name__, "args": [_unwrap(a) for a in args],
                                  "kwargs": {k: _unwrap(v) for k, v in kwargs.items()}, "wrt": list(wrt), "weights": weights,
                                  "output": output})

    @property
    def session(self) -> Session:
        return self._session

    def __repr__(self) -> str:
        return f"<learner's {self.__name__}>"


class RemoteObject:
    """An object that lives in the worker (e.g. the learner's model). Attribute reads and calls cross as plain data."""

    def __init__(self, session: Session, handle: Handle) -> None:
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_handle", handle)

    @property
    def remote_type(self) -> str:
        """The dotted type name the worker reported (untrusted: for messages only)."""
        return self._handle.type

    @property
    def is_module(self) -> bool:
        """Whether the worker reported an ``nn.Module`` (untrusted: a check must still verify behaviour)."""
        return self._handle.is_module

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._session.ask({"op": "getattr", "target": self._handle, "name": name})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._session.ask({"op": "call", "target": self._handle, "args": [_unwrap(a) for a in args],
                                  "kwargs": {k: _unwrap(v) for k, v in kwargs.items()}})

    def method(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``obj.<name>(*args, **kwargs)`` in the worker."""
        return self._session.ask({"op": "method", "target": self._handle, "name": name,
                                  "args": [_unwrap(a) for a in args], "kwargs": {k: _unwrap(v) for k, v in kwargs.items()}})

    def probe(self, name: str, *args: Any) -> Any:
        """``autograder.worker.probes.<name>(this object, *args)`` in the worker."""
        return self._session.probe(name, self, *args)

    def __repr__(self) -> str:
        return f"<learner's {self._handle.type.rsplit('.', 1)[-1]} object>"


class Loopback:
    """A channel to a :class:`~autograder.worker.serve.Server` in this same process (the learner's self-check).

    Messages are still encoded to bytes and decoded, so the checks see exactly
    what they would see from a separate worker; only the isolation is missing
    (the self-check is feedback, never the grade).
    """

    def __init__(self, namespace: dict[str, Any], lesson: str | None = None) -> None:
        import io

        from .worker.serve import Server

        helpers = None
        if lesson is not None:
            from .lessons import get_lesson

            found = get_lesson(lesson)
            helpers = found.module("worker") if found.has("worker") else None
        self._io = io
        self._server = Server(io.BytesIO(), io.BytesIO(), ns=namespace, helpers=helpers)

    def request(self, message: dict[str, Any], timeout: float) -> Any:
        io = self._io
        out = io.BytesIO()
        wire.send(out, message)
        self._server.rfile = io.BytesIO(out.getvalue())
        self._server.wfile = io.BytesIO()
        self._server._constructed = []
        request = wire.recv(self._server.rfile, resolve=self._server._resolve)
        self._server._answer(request)
        return wire.recv(io.BytesIO(self._server.wfile.getvalue()))
