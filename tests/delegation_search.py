"""The half of the delegation search that runs inside a lesson's grading library (see :mod:`delegation`).

It imports only torch and ``supercourse``: run with the redacted library first on the import path, what it
can call is exactly what a learner's code could call while the lesson is graded.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import itertools
import pkgutil
import signal
import sys
import warnings
from contextlib import contextmanager
from typing import Any, Iterator

import torch

_SKIP_MODULES = ("supercourse.cli", "supercourse.doctor", "supercourse.bench", "supercourse.course",
                 "supercourse.devices", "supercourse._grading")
_SKIP_NAMES = {"run", "main", "make_model", "reproduce", "save_figure", "write_artifacts", "prepare_run"}
_SKIP_WORDS = ("train", "sweep", "restart", "fit", "run_")
"""Callables that train or sweep (seconds each, never an exercise's one-step answer) are not tried."""

_SIZES = {"n_features": -1, "n_inputs": -1, "d_in": -1, "n": -1, "n_instances": 1, "k": 1}


def _draws(fn: Any) -> bool:
    """A drawing function (annotated to return a matplotlib ``Figure``): it never returns an exercise's
    answer, and each try draws for up to seconds (27 s of lesson 12's search went to one scatter plot)."""
    annotation = getattr(fn, "__annotations__", {}).get("return")
    name = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return name.strip("\"'").rsplit(".", 1)[-1] == "Figure"


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    def alarm(signum, frame):
        raise TimeoutError()

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def library_callables() -> tuple[tuple[str, Any, Any], ...]:
    """``(dotted name, callable, owning class or None)`` for every public function and method of the library."""
    found: dict[str, tuple[str, Any, Any]] = {}
    import supercourse

    names = [m.name for m in pkgutil.walk_packages(supercourse.__path__, "supercourse.")]
    for module_name in ["supercourse", *names]:
        if module_name.startswith(_SKIP_MODULES):
            continue
        try:
            module = importlib.import_module(module_name)
        except Exception:  # noqa: BLE001 - an optional part that does not import here
            continue
        for name, obj in vars(module).items():
            if name in _SKIP_NAMES or name.startswith("__") or any(w in name.lower() for w in _SKIP_WORDS):
                continue
            if inspect.isfunction(obj) and obj.__module__ == module_name and not _draws(obj):
                found[f"{module_name}.{name}"] = (f"{module_name}.{name}", obj, None)
            elif inspect.isclass(obj) and obj.__module__ == module_name:
                for attr, member in vars(obj).items():
                    if attr.startswith("__") or attr in _SKIP_NAMES or any(w in attr.lower() for w in _SKIP_WORDS):
                        continue
                    fn = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
                    if inspect.isfunction(fn) and not _draws(fn):
                        found[f"{module_name}.{name}.{attr}"] = (f"{module_name}.{name}.{attr}", fn, obj)
    return tuple(found.values())


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value.detach()]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


def _views(value: Any) -> list[torch.Tensor]:
    """What a learner could make of a library answer in one step: itself, a sum or mean, an element."""
    out = []
    for t in _tensors(value)[:4]:
        out.append(t)
        if t.is_floating_point() and t.numel() > 1:
            out += [t.sum(), t.mean()]
    return out


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.shape != b.shape or a.numel() == 0:
        return False
    try:
        return bool(torch.allclose(a.double(), b.double(), rtol=1e-4, atol=1e-6))
    except RuntimeError:
        return False


def _attempts(fn: Any, owner: Any, args: tuple, kwargs: dict, names: list[str]) -> Iterator[tuple[tuple, dict]]:
    """The ways to call ``fn`` with the exercise's inputs: as they came, and for a method with a stand-in
    ``self`` that carries the named inputs (``fake.importance = importance``) and the rest as arguments."""
    named = dict(zip(names, args)) | kwargs
    if owner is None:
        yield args, kwargs
        yield (*args, *kwargs.values()), {}
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            return
        by_name = {k: v for k, v in named.items() if k in params}
        if by_name:
            yield (), by_name
        return
    values = list(named.values())
    for self_ in _selves(owner, named):
        for r in range(len(values), -1, -1):
            for chosen in itertools.combinations(range(len(values)), r):
                yield (self_, *(values[i] for i in chosen)), {}


def _selves(owner: type, named: dict[str, Any]) -> Iterator[Any]:
    """Objects a learner could pass as ``self``: a bare one carrying the inputs as attributes, and a real
    instance built with sizes read off the inputs (then given the inputs as attributes too)."""
    bare = object.__new__(owner)
    if issubclass(owner, torch.nn.Module):
        torch.nn.Module.__init__(bare)
    # A method of a base class runs on an instance of any of its subclasses (a loss inherited by every model).
    family, stack = [], [owner]
    while stack:
        cls = stack.pop()
        if cls.__module__.startswith("supercourse") and cls not in family:
            family.append(cls)
            stack.extend(cls.__subclasses__())
    for obj in (bare, *(_instance(cls, named) for cls in family)):
        if obj is None:
            continue
        for key, value in named.items():
            try:
                setattr(obj, key, value)
            except Exception:  # noqa: BLE001
                try:
                    object.__setattr__(obj, key, value)
                except Exception:  # noqa: BLE001
                    pass
        yield obj


def _instance(owner: type, named: dict[str, Any]) -> Any:
    """``owner(...)`` with its size arguments read off the first 3-D input ``(batch, n_instances, n_features)``."""
    shaped = next((v for v in named.values() if isinstance(v, torch.Tensor) and v.dim() == 3), None)
    try:
        params = inspect.signature(owner).parameters
    except Exception:  # noqa: BLE001 - a redacted class raises on any attribute read
        return None
    kwargs: dict[str, Any] = {}
    for name, p in params.items():
        if name in named:
            kwargs[name] = named[name]
        elif shaped is not None and name in _SIZES:
            kwargs[name] = int(shaped.shape[_SIZES[name]])
        elif name in ("n_hidden", "m", "d_hidden", "n_neurons", "d_sae", "d_hidden_neurons"):
            kwargs[name] = 2
        elif p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            return None
    try:
        with _time_limit(0.5):
            return owner(**kwargs)
    except BaseException:  # noqa: BLE001
        return None


def search(calls: list, names: list[str]) -> list[str]:
    """Every library callable that gives the recorded answer on all the recorded calls (dotted names)."""
    if not calls:
        return []
    hits = []
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for dotted, fn, owner in library_callables():
            if _answers_every_call(fn, owner, calls, names):
                hits.append(dotted)
    return hits


def _answers_every_call(fn: Any, owner: Any, calls: list, names: list[str]) -> bool:
    for args, kwargs, expected in calls:
        want = _tensors(expected)[0]
        matched = False
        for a, k in itertools.islice(_attempts(fn, owner, args, kwargs, names), 40):
            try:
                with _time_limit(0.5), torch.no_grad():
                    got = fn(*a, **k)
            except BaseException:  # noqa: BLE001 - most callables do not accept these inputs
                continue
            if any(_same(v, want) for v in _views(got)):
                matched = True
                break
        if not matched:
            return False
    return True




def main() -> None:
    """``python delegation_search.py CALLS_FILE``: the hits of every exercise in the file, one JSON line."""
    import json

    recorded = torch.load(sys.argv[1], weights_only=False)
    print(json.dumps({ex_id: search(calls, names) for ex_id, (calls, names) in recorded.items()}))


if __name__ == "__main__":
    main()
