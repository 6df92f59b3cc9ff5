"""The grading library (:mod:`autograder.redact`): references gone however reached, the rest intact.

Each lesson's library is imported the way the worker imports it (``python -I -S``, the library
first on the path, site-packages after it, no editable-install finder), in a subprocess.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autograder.exercises import lessons
from autograder.redact import _start_time, build_library, remove_stale_libraries
from autograder.sandbox import import_dirs

REFERENCES = sorted({r for exs in lessons().values() for ex in exs for r in ex.reference})


def _run(lib, code: str) -> dict:
    prelude = f"import sys, json\nsys.path[:0] = [{str(lib)!r}] + {import_dirs()!r}\n"
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _exists(dotted: str) -> bool:
    try:
        importlib.import_module(dotted)
        return True
    except ImportError:
        pass
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


@pytest.mark.parametrize("reference", REFERENCES)
def test_every_reference_names_a_real_object(reference):
    # A misspelt reference would silently redact nothing.
    assert reference.startswith("supercourse.") and _exists(reference), reference


@pytest.mark.parametrize("slug", sorted(lessons()))
def test_each_lessons_library_imports_every_module_and_hides_its_references(slug):
    references = sorted({r for ex in lessons()[slug] for r in ex.reference})
    lib = build_library(tuple(references))
    got = _run(lib, f"""
        import importlib, pkgutil
        import supercourse
        assert supercourse.__file__.startswith({str(lib)!r}), supercourse.__file__
        from supercourse._grading import ReferenceUnavailable
        modules = [m.name for m in pkgutil.walk_packages(supercourse.__path__, "supercourse.")]
        for name in modules:
            importlib.import_module(name)
        hidden = {{}}
        for dotted in {references!r}:
            try:
                obj = importlib.import_module(dotted)
                continue  # a whole module: its functions and classes are stand-ins (checked below by name)
            except ImportError:
                module, attr = dotted.rsplit(".", 1)
            try:
                obj = getattr(importlib.import_module(module), attr)
            except ImportError:  # a method: module.Class.method
                module, cls = module.rsplit(".", 1)
                obj = getattr(getattr(importlib.import_module(module), cls), attr)
            try:
                obj() if not isinstance(obj, type) else obj(1, 2)
                hidden[dotted] = False
            except ReferenceUnavailable:
                hidden[dotted] = True
        print(json.dumps({{"modules": len(modules), "hidden": hidden}}))
    """)
    assert got["modules"] >= 20
    assert got["hidden"] and all(got["hidden"].values()), got["hidden"]


def test_every_spelling_of_a_reference_reaches_the_stand_in():
    lib = build_library(("supercourse.metrics.gram", "supercourse.model"))
    got = _run(lib, """
        import importlib, inspect
        import torch
        import supercourse
        from supercourse import metrics
        from supercourse._grading import ReferenceUnavailable
        W = torch.randn(2, 3, 4)

        def blocked(fn):
            try:
                fn()
            except ReferenceUnavailable:
                return True
            return False

        ns = {}
        out = {
            "call": blocked(lambda: metrics.gram(W)),
            "alias": blocked(lambda: getattr(importlib.import_module("supercourse." + "metrics"), "gr" + "am")(W)),
            "sys.modules": blocked(lambda: vars(sys.modules["supercourse.metrics"])["gram"](W)),
            "eval": blocked(lambda: eval("supercourse.metrics.gram")(W)),
            "exec source": blocked(lambda: (exec(inspect.getsource(metrics.gram), ns), ns["gram"](W))),
            "class": blocked(lambda: supercourse.ToyModel(5, 2)),
            "subclass": blocked(lambda: type("Mine", (supercourse.ToyModel,), {})),
            "method": blocked(lambda: supercourse.ToyModel.forward),
            # what no exercise references stays the library's own
            "intact": torch.allclose(metrics.feature_norms(W), W.norm(dim=1)),
        }
        print(json.dumps(out))
    """)
    assert got.pop("intact") is True
    assert all(got.values()), got


def _build_and_report(queue) -> None:
    queue.put(str(build_library(())))


def test_a_library_lasts_as_long_as_the_process_that_built_it(tmp_path):
    # Each grading process builds about 1 MB of library per lesson: a grading machine must not keep them.
    code = "from autograder.redact import build_library; print(build_library(()))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    built = Path(proc.stdout.strip().splitlines()[-1])
    assert built.name.startswith("supercourse-grading-") and not built.exists()

    import multiprocessing

    mine = build_library(())
    for method in ("fork", "spawn"):  # a child of each kind removes its own library, never its parent's
        ctx = multiprocessing.get_context(method)
        queue = ctx.Queue()
        child = ctx.Process(target=_build_and_report, args=(queue,))
        child.start()
        theirs = Path(queue.get(timeout=120))
        child.join(120)
        assert child.exitcode == 0
        assert mine.exists(), method
        assert (theirs == mine) if method == "fork" else not theirs.exists(), method


def _library_of(folder: Path, pid: int, start: int) -> Path:
    path = folder / f"supercourse-grading-{'0' * 16}-p{pid}.{start}-x1y2z3"
    (path / "supercourse").mkdir(parents=True)
    (path / "supercourse" / "__init__.py").write_text("")
    return path


def test_the_libraries_of_killed_graders_are_removed_and_no_others(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    me, my_start = os.getpid(), _start_time(os.getpid())
    stale = [_library_of(tmp_path, gone.pid, 12345),  # its process is gone
             _library_of(tmp_path, me, my_start + 1)]  # the pid was reused by a process started at another time
    kept = [_library_of(tmp_path, me, my_start),  # a live grader's
            tmp_path / "supercourse-grading-0123456789abcdef-oldname"]  # a name that records no process
    kept[1].mkdir()
    theirs = _library_of(tmp_path, gone.pid, 1)  # another user's
    link = tmp_path / f"supercourse-grading-{'0' * 16}-p{gone.pid}.7-link"
    link.symlink_to(kept[0])
    if os.getuid() == 0:
        os.chown(theirs, 65534, 65534)
        kept.append(theirs)
    else:
        stale.append(theirs)
    assert sorted(remove_stale_libraries(tmp_path)) == sorted(stale)
    assert not any(p.exists() for p in stale)
    assert all(p.is_dir() for p in kept) and link.is_symlink() and (kept[0] / "supercourse").is_dir()


def test_a_killed_graders_library_is_removed_by_the_next_one():
    code = "import sys, time; from autograder.redact import build_library; print(build_library(()), flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    built = Path(proc.stdout.readline().strip())
    assert built.is_dir()
    proc.send_signal(signal.SIGKILL)  # no exit handler runs
    proc.wait(30)
    assert built.is_dir()
    code = "from autograder.redact import build_library; build_library(('supercourse.metrics.gram',))"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert not built.exists()
