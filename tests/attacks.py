"""A catalogue of hostile lesson-01 submissions, each with the score it deserves.

Lesson 01 has three exercises: ``generate_batch`` (8 points), ``ToyModel`` (6)
and ``importance_loss`` (4). Each student below is the released notebook with
some cells answered honestly (the solution), some left as stubs, and attacks
added: forged verdicts, patched grader/pytest/torch, lying tensor subclasses,
the reference called under every disguise, a shadow package, edited metadata,
crashes, loops that ignore signals, stderr, memory and process bombs, and
attacks on other students, the gradebook, the installed course and the
instructor's configuration. ``{course}``, ``{repo}``, ``{home}`` and
``{marker}`` in the code are filled in with the scratch course's paths.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

LESSON = "01-sparse-features"
POINTS = {"generate_batch": 8, "ToyModel": 6, "importance_loss": 4}
FULL = sum(POINTS.values())


@dataclass
class Student:
    """A submission: which exercises hold the solution, which hold attack code, what else is in the notebook."""

    name: str
    deserved: float
    answers: dict[str, str] = field(default_factory=dict)  # grade_id -> source; "solution" means the reference answer
    cells: list[tuple[str, str]] = field(default_factory=list)  # (after grade_id or "setup", source) extra code cells
    setup_extra: str = ""  # appended to the (unlocked) setup cell
    edit: str = ""  # name of a metadata edit (see _EDITS)
    files: dict[str, str] = field(default_factory=dict)  # extra files next to the notebook
    category: str = ""


SOLVED = {name: "solution" for name in POINTS}

FORGE = r'''
import sys, torch, pytest
def check(*args, **kwargs):          # a check that always says "full marks"
    return 8
def _quiet_check(*args, **kwargs):   # nbgrader gives full credit to a cell that shows no value
    return None
get_ipython().ast_node_interactivity = "none"
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
torch.Tensor.__eq__ = lambda self, other: torch.ones((), dtype=torch.bool)
pytest.main = lambda *a, **k: 0
for name in ("autograder.runner", "autograder.framework"):
    try:
        module = __import__(name, fromlist=["x"])
        module.run_exercise = lambda *a, **k: None
        module.expect = lambda *a, **k: None
        module.Verdict.__repr__ = lambda self: "8"
    except Exception:
        pass
import autograder
autograder.check = check
def _peek():                         # look for the reference's answer on the grader's stack
    frame = sys._getframe()
    while frame is not None:
        for value in list(frame.f_locals.values()):
            if isinstance(value, torch.Tensor):
                return value
        frame = frame.f_back
'''

LIAR = r'''
import torch
class Liar(torch.Tensor):
    """Says yes to every comparison and pretends to have any shape asked for."""
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.equal, torch.Tensor.__eq__, torch.isclose):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})
'''

STUDENTS: list[Student] = [
    Student("aa-honest", FULL, dict(SOLVED), category="honest"),
    Student("untouched", 0, category="honest"),
    Student("forge-verdicts", 0, setup_extra=FORGE, edit="check_cells_say_8", category="forged verdicts and IPython settings"),
    Student(
        "lying-tensors", 0, category="lying tensor subclasses",
        cells=[("setup", LIAR)],
        answers={
            "generate_batch": "def generate_batch(batch_size, feature_probability, generator=None):\n"
                              "    return torch.zeros(1).as_subclass(Liar)\n",
            "importance_loss": "def importance_loss(x, x_hat, importance):\n    return torch.tensor(-1.0).as_subclass(Liar)\n",
        },
    ),
    Student(
        "delegate-aliases", 0, category="delegation to the reference",
        answers={
            "generate_batch": "import supercourse\n"
                              "def generate_batch(batch_size, feature_probability, generator=None):\n"
                              "    fn = getattr(supercourse.data, 'sparse' + '_uniform')\n"
                              "    return fn(batch_size, feature_probability, generator=generator)\n",
            "ToyModel": "import supercourse\nToyModel = supercourse.ToyModel\n",
            "importance_loss": "import importlib\n"
                               "def importance_loss(x, x_hat, importance):\n"
                               "    cls = getattr(importlib.import_module('supercourse.' + 'model'), 'Toy' + 'Model')\n"
                               "    fake = object.__new__(cls)\n"
                               "    fake.importance = importance\n"
                               "    return cls.per_instance_loss(fake, x, x_hat).sum()\n",
        },
    ),
    Student(
        "delegate-subclass-exec", 0, category="delegation to the reference",
        answers={
            "generate_batch": "import supercourse\n"
                              "def generate_batch(batch_size, feature_probability, generator=None):\n"
                              "    p = feature_probability\n"
                              "    return supercourse.data.correlated_sparse(batch_size, p, 1, generator=generator)\n",
            "ToyModel": "import supercourse\nclass ToyModel(supercourse.ToyModel):\n    pass\n",
            "importance_loss": "import inspect, supercourse.model as m\n"
                               "_ns = {}\n"
                               "exec(inspect.getsource(m), _ns)\n"
                               "def importance_loss(x, x_hat, importance):\n"
                               "    fake = object.__new__(_ns['ToyModel'])\n"
                               "    fake.importance = importance\n"
                               "    return _ns['ToyModel'].per_instance_loss(fake, x, x_hat).sum()\n",
        },
    ),
    Student(
        "delegate-sys-modules", POINTS["ToyModel"], category="delegation to the reference",
        answers={
            "generate_batch": "import sys, supercourse\n"
                              "def generate_batch(batch_size, feature_probability, generator=None):\n"
                              "    data = sys.modules['supercourse.' + 'data']\n"
                              "    return vars(data)['sparse_' + 'uniform'](batch_size, feature_probability, generator=generator)\n",
            "ToyModel": "solution",
            "importance_loss": "import supercourse\n"
                               "def importance_loss(x, x_hat, importance):\n"
                               "    return eval('supercourse.model.ToyModel.per_instance_loss')(None, x, x_hat).sum()\n",
        },
    ),
    Student(
        "shadow-packages", 0, category="shadow packages in the submission",
        files={
            "autograder/__init__.py": "def check(*a, **k):\n    return 8\ndef run_exercise(*a, **k):\n    return 8\n",
            "autograder/runner.py": "def run_exercise(*a, **k):\n    return 8\n",
            "supercourse/__init__.py": "raise SystemExit('shadowed')\n",
        },
    ),
    Student("metadata-edits", FULL, dict(SOLVED), edit="every_metadata_edit", category="metadata edits"),
    Student(
        "faults-loop-and-segfault", POINTS["importance_loss"] + 2, category="crashes, loops and signal tricks",
        answers={
            "generate_batch": "import signal\n"
                              "def generate_batch(batch_size, feature_probability, generator=None):\n"
                              "    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
                              "    signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                              "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                              "    while True:\n"
                              "        pass\n",
            "ToyModel": "solution",
            "importance_loss": "solution",
        },
        # The forward pass dies in native code: the two properties that never call it keep their points.
        cells=[("ToyModel", "import ctypes\n_forward = ToyModel.forward\ndef _crash(self, x):\n"
                            "    ctypes.string_at(0)\nToyModel.forward = _crash\n")],
    ),
    Student(
        "faults-exit-stderr-memory", FULL - POINTS["importance_loss"], category="exits, stderr, memory and process bombs",
        answers={
            "generate_batch": "solution",
            "ToyModel": "solution",
            "importance_loss": "import os\ndef importance_loss(x, x_hat, importance):\n    os._exit(0)\n",
        },
        cells=[
            ("generate_batch", "import logging, sys\nlogging.warning('a warning on stderr')\nprint('to stderr', file=sys.stderr)\n"
                               "_inner = generate_batch\n"
                               "def generate_batch(*a, **k):\n"
                               "    print('debug output', file=sys.stderr)\n"
                               "    return _inner(*a, **k)\n"),
            ("setup", "try:\n    _big = bytearray(64 * 2**30)\nexcept MemoryError:\n    print('no memory for that')\n"),
            ("setup", "import subprocess\n_kids = []\ntry:\n    for _ in range(2000):\n"
                      "        _kids.append(subprocess.Popen(['sleep', '30']))\nexcept OSError as err:\n"
                      "    print('process limit reached after', len(_kids))\n"),
        ],
    ),
    Student(
        "cross-student", FULL, dict(SOLVED), category="attacks on other students, the gradebook and the machine",
        cells=[("setup", r'''
import os, sqlite3, glob, subprocess, pathlib
def _try(what, fn):
    try:
        fn()
        print("DID", what)
    except Exception as err:
        print("blocked", what, type(err).__name__)
def _gradebook(path):
    db = sqlite3.connect(path)
    db.execute("UPDATE grade SET manual_score = 0")
    db.commit()
_try("gradebook relative", lambda: _gradebook("../../../gradebook.db"))
_try("gradebook absolute", lambda: _gradebook("{course}/gradebook.db"))
def _rewrite():
    for path in glob.glob("{course}/submitted/*/*/*.ipynb"):
        open(path, "w").write("{}")
_try("other submissions", _rewrite)
_try("installed package", lambda: open("{repo}/autograder/runner.py", "a").write("\nGRADE = 0\n"))
_try("stand-in package", lambda: open(__import__("autograder").__file__, "a").write("\n"))
_try("nbgrader config", lambda: open("{course}/nbgrader_config.py", "a").write("\nc.X = 1\n"))
def _startup():
    path = pathlib.Path("{home}/.ipython/profile_default/startup")
    path.mkdir(parents=True, exist_ok=True)
    (path / "00-evil.py").write_text("print('evil')")
_try("ipython startup in HOME", _startup)
_try("host tmp", lambda: open("/tmp/{marker}-tmp", "w").write("x"))
# A detached process that outlives the kernel and rewrites the gradebook after the grades are saved.
subprocess.Popen(["sh", "-c", "sleep 4; echo {marker} > /tmp/{marker}-late; "
                  "python3 -c \"import sqlite3; db=sqlite3.connect('{course}/gradebook.db'); "
                  "db.execute('UPDATE grade SET manual_score = 0'); db.commit()\""],
                 start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
''')],
    ),
    Student("zz-honest", FULL, dict(SOLVED), category="honest"),
]


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _without_markers(source: str) -> str:
    return "\n".join(l for l in source.splitlines() if l.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))


def _edit(nb, kind: str) -> None:
    if kind == "check_cells_say_8":
        for cell in nb.cells:
            if (_grade_id(cell) or "").startswith("check_"):
                cell.source = "8"
    elif kind == "every_metadata_edit":
        first_solution = next(c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("solution"))
        first_solution.metadata.nbgrader["schema_version"] = 4
        first_solution.metadata.nbgrader["points"] = 100
        checks = [c for c in nb.cells if (_grade_id(c) or "").startswith("check_")]
        checks[0].metadata.nbgrader["grade"] = False
        checks[1].metadata.nbgrader["points"] = 100
        bogus = nbformat.v4.new_code_cell("pass")
        bogus.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 100, "schema_version": 3}
        nb.cells.append(bogus)
        named = nbformat.v4.new_code_cell("pass")
        named.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 50,
                                      "grade_id": "extra_points", "schema_version": 3}
        nb.cells.append(named)
        duplicate = copy.deepcopy(first_solution)
        duplicate.source = "raise RuntimeError('a second copy')"
        nb.cells.append(duplicate)


def fill(text: str, **paths: str) -> str:
    for key, value in paths.items():
        text = text.replace("{" + key + "}", value)
    return text


def write(student: Student, release: Path, solution: Path, folder: Path, **paths: str) -> Path:
    """Write ``student``'s submission into ``folder``; returns the notebook's path."""
    nb = nbformat.read(release, as_version=4)
    reference = {_grade_id(c): _without_markers(c.source) for c in nbformat.read(solution, as_version=4).cells if _grade_id(c)}
    out = []
    for index, cell in enumerate(nb.cells):
        gid = _grade_id(cell)
        if gid in student.answers:
            answer = student.answers[gid]
            cell.source = reference[gid] if answer == "solution" else fill(answer, **paths)
        if index == 1 and student.setup_extra:  # the setup cell is the first code cell after the title
            cell.source += "\n" + fill(student.setup_extra, **paths)
        out.append(cell)
        anchor = "setup" if index == 1 else gid
        for after, source in student.cells:
            if after == anchor:
                out.append(nbformat.v4.new_code_cell(fill(source, **paths)))
    nb.cells = out
    if student.edit:
        _edit(nb, student.edit)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / release.name
    nbformat.write(nb, path)
    for rel, text in student.files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(fill(text, **paths))
    return path
