"""The grading library: a copy of ``supercourse`` in which the exercises' references are not there.

While an exercise is graded, the worker that runs the learner's code imports
``supercourse`` from this copy. Every object named in the exercises'
``reference`` (a function, a class, a method, or a whole module) is replaced
by a stand-in that raises ``ReferenceUnavailable`` when called, built or
subclassed, so code that calls, aliases, subclasses or re-executes the
reference (``getattr`` with built strings, ``importlib``, ``exec`` of its
source) gets nothing to use, however it is spelled. The original files are
not visible inside the sandbox.

The copy also holds a stand-in ``autograder`` (so a lesson's
``from autograder import check`` runs; the checks themselves never enter the
sandbox), the worker package as ``grading_worker`` and, when the lesson has
one, its worker-side helpers as ``grading_worker.lesson``.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import shutil
import stat
import tempfile
from multiprocessing.util import Finalize
from pathlib import Path

import supercourse

__all__ = ["build_library", "remove_stale_libraries", "STANDIN_AUTOGRADER"]

_PACKAGE = Path(supercourse.__file__).resolve().parent
_WORKER = Path(__file__).resolve().parent / "worker"
_CACHE: dict[tuple[str, ...], Path] = {}
_OWNER = re.compile(r"^supercourse-grading-[0-9a-f]{16}-p(\d+)\.(\d+)-")
"""A library's folder names the process that built it: ``p<pid>.<start time>`` (see :func:`remove_stale_libraries`)."""
_SWEPT = False

_HELPER = '''\
"""Stand-ins for the references an exercise under grading asks the learner to write."""

import sys


class ReferenceUnavailable(RuntimeError):
    """Raised by a reference implementation that is not available while the learner's code is graded."""


def unavailable(name):
    # While one of the library's own modules is being imported (its module-level code, however deep the
    # call), a stand-in returns None so the rest of the library still imports; anything else gets the error.
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name == "<module>" and str(frame.f_globals.get("__name__", "")).startswith("supercourse."):
            return None
        frame = frame.f_back
    raise ReferenceUnavailable(
        f"`{name}` is the reference implementation of an exercise being graded: it is not available while "
        "your code is graded. Implement it yourself."
    )


class Unavailable(type):
    """Metaclass of a redacted class: reading any attribute of the class itself raises."""

    def __getattr__(cls, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        unavailable(f"{cls.__module__}.{cls.__qualname__}.{name}")
'''

STANDIN_AUTOGRADER = '''\
"""Stand-in for the course's autograder inside the grading sandbox: the grader checks your code from outside."""


def check(exercise_id, submission=None, *args, **kwargs):
    print(f"{exercise_id}: graded by the course's grader, outside this process")


def run_exercise(*args, **kwargs):
    raise RuntimeError("the checks are not available inside the grading sandbox")
'''


def _stub_function(node: ast.FunctionDef | ast.AsyncFunctionDef, dotted: str) -> ast.stmt:
    new = ast.parse(f"def {node.name}(*args, **kwargs):\n    from supercourse._grading import unavailable\n    unavailable({dotted!r})\n").body[0]
    new.decorator_list = [d for d in node.decorator_list if isinstance(d, ast.Name) and d.id in ("staticmethod", "classmethod", "property")]
    return ast.copy_location(new, node)


def _stub_class(node: ast.ClassDef, dotted: str) -> ast.stmt:
    # Its metaclass answers every attribute read (``ToyModel.per_instance_loss``) with the same error.
    src = (
        f"class {node.name}(metaclass=__import__('supercourse._grading', fromlist=['Unavailable']).Unavailable):\n"
        f"    def __init_subclass__(cls, **kwargs):\n"
        f"        if not str(cls.__dict__.get('__module__', '')).startswith('supercourse.'):\n"
        f"            from supercourse._grading import unavailable\n"
        f"            unavailable({dotted!r})\n"
        f"    def __init__(self, *args, **kwargs):\n"
        f"        from supercourse._grading import unavailable\n"
        f"        unavailable({dotted!r})\n"
    )
    return ast.copy_location(ast.parse(src).body[0], node)


def _redact_body(body: list[ast.stmt], prefix: str, names: set[str], whole: bool) -> list[ast.stmt]:
    out = []
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            dotted = f"{prefix}.{node.name}"
            if whole or dotted in names:
                out.append(_stub_class(node, dotted) if isinstance(node, ast.ClassDef) else _stub_function(node, dotted))
                continue
            if isinstance(node, ast.ClassDef) and any(n.startswith(dotted + ".") for n in names):
                node.body = _redact_body(node.body, dotted, names, False) or [ast.Pass()]
        out.append(node)
    return out


def _module_name(path: Path) -> str:
    rel = path.relative_to(_PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _start_time(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks after boot: field 22 of ``/proc/PID/stat``); None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return int(fields[19])


def remove_stale_libraries(folder: str | Path | None = None) -> list[Path]:
    """Remove the grading libraries in ``folder`` (default: the temporary folder) whose process is gone.

    A grading process removes its own library as it exits, but no exit handler runs when it is killed
    (``SIGKILL``, an out-of-memory kill, a job scheduler's time limit): each kill would leave about 1 MB
    for the rest of the term. A library is stale when the process its name records no longer runs: no
    process has that pid, or one does that started at another time (the pid was reused). Only folders of
    this user are touched, never a link, never a folder whose name records no process. Where there is no
    ``/proc`` (not Linux) nothing is removed. Processes of another pid namespace that share this temporary
    folder would look gone: give each container its own ``/tmp``, as containers do by default.
    """
    if _start_time(os.getpid()) is None:
        return []
    folder = Path(tempfile.gettempdir() if folder is None else folder)
    removed = []
    for path in folder.glob("supercourse-grading-*"):
        owner = _OWNER.match(path.name)
        try:
            info = path.lstat()
        except OSError:
            continue
        if owner is None or info.st_uid != os.getuid() or not stat.S_ISDIR(info.st_mode):
            continue
        if _start_time(int(owner[1])) == int(owner[2]):
            continue  # its process still runs
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def build_library(references: tuple[str, ...] | list[str], helpers: Path | None = None) -> Path:
    """A folder to put first on the worker's import path, with ``references`` redacted (cached per set).

    ``helpers`` is the lesson's ``worker.py``, copied in as ``grading_worker.lesson``. The folder lasts as
    long as this process: it is removed when the process exits, or, if it is killed, by the next grading
    process that builds a library (:func:`remove_stale_libraries`).
    """
    key = (*sorted(set(references)), f"helpers={helpers}")
    digest = hashlib.sha256("\n".join(key).encode()).hexdigest()[:16]
    cached = _CACHE.get(key)
    if cached is not None and cached.exists():
        return cached
    global _SWEPT
    if not _SWEPT:  # once per process: the libraries of graders that were killed
        _SWEPT = True
        remove_stale_libraries()
    pid = os.getpid()
    root = Path(tempfile.mkdtemp(prefix=f"supercourse-grading-{digest}-p{pid}.{_start_time(pid) or 0}-"))
    # Removed when this process exits (at exit, or as a multiprocessing child ends; never by a forked child that
    # inherited it): each is about 1 MB, and a grading machine grades for a whole term.
    Finalize(None, shutil.rmtree, args=(str(root),), kwargs={"ignore_errors": True}, exitpriority=0)
    names = set(references)
    for path in sorted(_PACKAGE.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        module = _module_name(path)
        target = root / path.relative_to(_PACKAGE.parent)
        target.parent.mkdir(parents=True, exist_ok=True)
        whole = any(module == n or module.startswith(n + ".") for n in names)
        if whole or any(n.startswith(module + ".") for n in names):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            tree.body = _redact_body(tree.body, module, names, whole)
            target.write_text(ast.unparse(ast.fix_missing_locations(tree)) + "\n", encoding="utf-8")
        else:
            shutil.copyfile(path, target)
    (root / "supercourse" / "_grading.py").write_text(_HELPER, encoding="utf-8")
    (root / "autograder").mkdir()
    (root / "autograder" / "__init__.py").write_text(STANDIN_AUTOGRADER, encoding="utf-8")
    worker = root / "grading_worker"
    worker.mkdir()
    for path in _WORKER.glob("*.py"):
        shutil.copyfile(path, worker / path.name)
    if helpers is not None:
        shutil.copyfile(helpers, worker / "lesson.py")
    for p in [root, *root.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    _CACHE[key] = root
    return root
