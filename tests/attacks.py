"""A catalogue of lesson-01 submissions, hostile and honest but messy, each with the score it deserves.

Lesson 01 has three exercises: ``generate_batch`` (8 points), ``ToyModel`` (6) and ``importance_loss`` (4).
Each student is the released notebook with some cells answered honestly (the solution), some left as
stubs, and attacks or ordinary mess added. The students come in groups, each graded in a scratch course
of its own (so the groups run in parallel): forged verdicts and delegation; faults; bounds on time,
memory, processes, disk and answers; attacks on other students and on the instructor's browser; and
honest learners who edit as people do. ``{course}``, ``{repo}``, ``{home}``, ``{marker}`` and ``{table}``
in the code are filled in with the scratch course's paths.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat

LESSON = "01-sparse-features"
POINTS = {"generate_batch": 8, "ToyModel": 6, "importance_loss": 4}
FULL = sum(POINTS.values())


@dataclass
class Student:
    """A submission: which exercises hold the solution, which hold other code, what else the notebook holds."""

    name: str
    deserved: float
    group: str
    answers: dict[str, str] = field(default_factory=dict)  # grade_id -> source; "solution" means the reference answer
    cells: list[tuple[str, str]] = field(default_factory=list)  # (after grade_id or "setup", source) extra code cells
    setup_extra: str = ""  # appended to the (unlocked) setup cell
    edits: tuple[Callable[[nbformat.NotebookNode], None], ...] = ()  # further changes to the notebook's JSON
    files: dict[str, str] = field(default_factory=dict)  # extra files next to the notebook
    category: str = ""
    faults: tuple[str, ...] = ()  # exercises the grading report must list for this student
    strikes_after: float = 0.0  # seconds after its grading that a process it detached would strike, had it survived


SOLVED = {name: "solution" for name in POINTS}


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


# --------------------------------------------------------------------------- forged verdicts, delegation

FORGE = r'''
import sys, torch, pytest
def check(*args, **kwargs):          # a check that always says "full marks"
    return 8
get_ipython().ast_node_interactivity = "none"
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
torch.Tensor.__eq__ = lambda self, other: torch.ones((), dtype=torch.bool)
pytest.main = lambda *a, **k: 0
import autograder
autograder.check = check
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


def _check_cells_say_8(nb) -> None:
    for cell in nb.cells:
        if (_grade_id(cell) or "").startswith("check_"):
            cell.source = "8"


def _every_metadata_edit(nb) -> None:
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


# --------------------------------------------------------------------------- the instructor's browser

XSS_MARKDOWN = r'''
## My notes

<script>window.__pwned = "script"</script>
<img src="x" onerror="window.__pwned = 'img onerror'">
<svg onload="window.__pwned = 'svg onload'"><circle r="4"/></svg>
<iframe srcdoc="<script>parent.__pwned = 'iframe'</script>"></iframe>
<object data="data:text/html,<script>parent.__pwned='object'</script>"></object>
<embed src="data:text/html,<script>parent.__pwned='embed'</script>">
<details open ontoggle="window.__pwned = 'details ontoggle'"><summary>s</summary>x</details>
<math><mtext><table><mglyph><style><img src=x onerror="window.__pwned='mxss'"></style></mglyph></table></mtext></math>
<form action="/formgrader/api/grade" method="post"><input name="manual_score" value="0"><button id="sc-form">send</button></form>
<a id="sc-js-link" href="javascript:window.__pwned='javascript link'">click me</a>
<a id="sc-data-link" href="data:text/html,<script>alert(1)</script>">data link</a>
<meta http-equiv="refresh" content="0;url=javascript:window.__pwned='meta refresh'">
<base href="javascript:window.__pwned='base'//">

[a markdown link](javascript:window.__pwned='markdown link') and ![an image](javascript:window.__pwned='image')

$\href{javascript:window.__pwned='mathjax'}{click}$

<div style="background:url(javascript:window.__pwned='css')">styled</div>
'''

# What a script in the instructor's browser would do: change the scores in the gradebook through formgrader's
# API (with the page's XSRF token), and start a kernel that runs code as the instructor.
XSS_ATTACK_JS = r'''
<script>
window.__pwned = "api";
fetch("/api/kernels", {method: "POST", headers: {"X-XSRFToken": document.cookie.replace(/.*_xsrf=([^;]*).*/, "$1")}});
</script>
'''


def _hostile_json(nb) -> None:
    """Hostile notebook JSON beyond markdown: raw cells, outputs, attachments and metadata."""
    md = nbformat.v4.new_markdown_cell(XSS_MARKDOWN + XSS_ATTACK_JS)
    md["attachments"] = {"evil.svg": {"image/svg+xml": "PHN2ZyBvbmxvYWQ9IndpbmRvdy5fX3B3bmVkPSdzdmcnIi8+"}}
    md.source += "\n![attached](attachment:evil.svg)\n"
    nb.cells.insert(2, md)
    raw = nbformat.v4.new_raw_cell("<script>window.__pwned = 'raw cell'</script>")
    raw.metadata["format"] = "text/html"
    nb.cells.insert(3, raw)
    code = nbformat.v4.new_code_cell("print('hello')")
    code.outputs = [
        nbformat.v4.new_output("display_data", data={"text/html": "<script>window.__pwned='output html'</script>",
                                                     "application/javascript": "window.__pwned='output js'"}),
        nbformat.v4.new_output("stream", name="stdout", text="<script>window.__pwned='stream'</script>"),
    ]
    nb.cells.insert(4, code)
    # An error whose text is HTML: it comes back into the graded notebook's outputs.
    nb.cells.insert(5, nbformat.v4.new_code_cell(
        "raise ValueError('<img src=x onerror=\"window.__pwned=\\'traceback\\'\">')"))
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2,
                                                                            "version_minor": 0}}


# --------------------------------------------------------------------------- honest learners who edit

def _duplicate_then_fix(nb) -> None:
    """A learner pastes a second copy of the generate_batch cell under the first, and fixes the copy."""
    i = next(k for k, c in enumerate(nb.cells) if _grade_id(c) == "generate_batch")
    copy_ = copy.deepcopy(nb.cells[i])
    nb.cells[i].source = nb.cells[i].source.replace("return", "return 0 *", 1) if "return" in nb.cells[i].source \
        else nb.cells[i].source
    nb.cells.insert(i + 1, copy_)


def _retype_below_check(nb) -> None:
    """A learner deletes the ToyModel cell and types the class again in a new cell under its check cell."""
    i = next(k for k, c in enumerate(nb.cells) if _grade_id(c) == "ToyModel")
    source = nb.cells[i].source
    del nb.cells[i]
    j = next(k for k, c in enumerate(nb.cells) if _grade_id(c) == "check_ToyModel")
    nb.cells.insert(j + 1, nbformat.v4.new_code_cell(source))


def _move_to_the_end(nb) -> None:
    """A learner moves the importance_loss cell to the end of the notebook."""
    i = next(k for k, c in enumerate(nb.cells) if _grade_id(c) == "importance_loss")
    nb.cells.append(nb.cells.pop(i))


ORDINARY_NAMES = {
    "generate_batch": "def generate_batch(batch_size, feature_probability, generator=None):\n"
                      "    sparse_uniform = torch.rand((batch_size, *feature_probability.shape), generator=generator,\n"
                      "                                dtype=feature_probability.dtype, device=feature_probability.device)\n"
                      "    correlation = torch.rand(sparse_uniform.shape, generator=generator, dtype=sparse_uniform.dtype,\n"
                      "                             device=sparse_uniform.device)\n"
                      "    return sparse_uniform * (correlation < feature_probability)\n",
    "importance_loss": "def importance_loss(x, x_hat, importance):\n"
                       "    per_instance_loss = (importance * (x - x_hat) ** 2).mean(dim=(0, 2))\n"
                       "    excitatory = per_instance_loss.sum()\n"
                       "    return excitatory\n",
}


# --------------------------------------------------------------------------- the catalogue

STUDENTS: list[Student] = [
    # Forged verdicts and delegation.
    Student("aa-honest", FULL, "forgery", dict(SOLVED), category="honest"),
    Student("untouched", 0, "forgery", category="honest"),
    Student("forge-verdicts", 0, "forgery", setup_extra=FORGE, edits=(_check_cells_say_8,),
            category="forged verdicts and IPython settings"),
    Student(
        "lying-tensors", 0, "forgery", category="lying tensor subclasses",
        cells=[("setup", LIAR)],
        answers={
            "generate_batch": "def generate_batch(batch_size, feature_probability, generator=None):\n"
                              "    return torch.zeros(1).as_subclass(Liar)\n",
            "importance_loss": "def importance_loss(x, x_hat, importance):\n    return torch.tensor(-1.0).as_subclass(Liar)\n",
        },
    ),
    Student(
        "delegate-aliases", 0, "forgery", category="delegation to the reference",
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
        faults=("01.generate_batch",),
    ),
    Student(
        "delegate-subclass-exec", 0, "forgery", category="delegation to the reference",
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
        faults=("01.ToyModel",),
    ),
    Student(
        "delegate-sys-modules", POINTS["ToyModel"], "forgery", category="delegation to the reference",
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
        # Another lesson's model computes the same loss: the learner builds one and asks it.
        "delegate-other-lesson", POINTS["ToyModel"], "forgery", category="delegation through another module",
        answers={
            "generate_batch": "import supercourse.neurons as nn_\n"
                              "def generate_batch(batch_size, feature_probability, generator=None):\n"
                              "    return nn_.signed_sparse_uniform(batch_size, feature_probability, generator=generator).abs()\n",
            "ToyModel": "solution",
            "importance_loss": "from supercourse.neurons import NeuronModel\n"
                               "def importance_loss(x, x_hat, importance):\n"
                               "    model = NeuronModel(x.shape[-1], 2, x.shape[1], importance=importance)\n"
                               "    return model.loss(x, x_hat)\n",
        },
    ),
    Student(
        "shadow-packages", 0, "forgery",
        files={
            "autograder/__init__.py": "def check(*a, **k):\n    return 8\ndef run_exercise(*a, **k):\n    return 8\n",
            "autograder/runner.py": "def run_exercise(*a, **k):\n    return 8\n",
            "supercourse/__init__.py": "raise SystemExit('shadowed')\n",
        },
        category="shadow packages in the submission",
    ),
    Student("metadata-edits", FULL, "forgery", dict(SOLVED), edits=(_every_metadata_edit,), category="metadata edits"),
    Student(
        # The stubs untouched; one cell takes over the worker's message handling and answers every question
        # from a table recorded at home with the reference solution (tests/replay.py).
        "replay-recorded-answers", 0, "forgery", category="record and replay",
        cells=[("setup", "{replay_cell}")],
    ),
    # Faults: crashes, loops, exits, stderr.
    Student(
        "faults-loop-and-segfault", POINTS["importance_loss"] + 2, "faults", category="crashes, loops and signal tricks",
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
        faults=("01.generate_batch", "01.ToyModel"),
    ),
    Student(
        "faults-exit-stderr", FULL - POINTS["importance_loss"], "faults", category="exits and stderr",
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
            ("setup", "import os\nos.write(2, b'x' * (64 * 2**20))  # 64 MiB straight to the worker's stderr\n"),
        ],
        faults=("01.importance_loss",),
    ),
    Student(
        # Looping cells before the later checks: each forces a restart that re-runs the cells before it, so
        # only the notebook's own time limit bounds them. generate_batch is graded before the first loop.
        "loops-before-checks", POINTS["generate_batch"], "time", category="time without a ceiling",
        answers=dict(SOLVED),
        cells=[("check_generate_batch", "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass\n")]
        * 6,
        faults=("01.ToyModel", "01.importance_loss"),
    ),
    # Bounds: memory, processes, disk, answers.
    Student(
        "memory-across-processes", FULL, "bounds", dict(SOLVED), category="memory counted per sandbox",
        cells=[("setup", "import subprocess, sys\n_hogs = [subprocess.Popen([sys.executable, '-c', "
                         "'x = bytearray(3 * 2**30); import time; time.sleep(60)', '{marker}-hog']) for _ in range(2)]\n"
                         "import time\ntime.sleep(8)\nprint('hogs alive:', [p.poll() is None for p in _hogs])\n"),
               ("setup", "try:\n    _big = bytearray(64 * 2**30)\nexcept MemoryError:\n    print('no memory for that')\n"),
               ("setup", "import os\ntry:\n    with open('/dev/shm/fill', 'wb') as f:\n        while True:\n"
                         "            f.write(b'z' * 2**20)\nexcept OSError as err:\n    print('shm full:', err)\n")],
    ),
    Student(
        "process-bomb", FULL, "bounds", dict(SOLVED), category="processes counted per sandbox",
        # Every process it starts names the marker (argv[0] of a real sleep; a daemon's own argument), so the test
        # finds survivors of this submission and never another test's processes.
        cells=[("setup", "import shutil, subprocess\n_kids = []\ntry:\n    for _ in range(2000):\n"
                         "        _kids.append(subprocess.Popen(['{marker}-sleep', '60'], executable=shutil.which('sleep')))\n"
                         "except OSError as err:\n    print('process limit reached after', len(_kids))\n"),
               ("setup", "import subprocess, sys\nsubprocess.Popen(['sh', '-c', 'setsid \"$0\" -c \"import time; "
                         "time.sleep(300)\" {marker}-daemon &', sys.executable])\n")],
    ),
    Student(
        "disk-filler", FULL, "bounds", dict(SOLVED), category="disk: writes until it is full",
        cells=[("setup", "import os\nfor where in ('/grading/fill', '/tmp/fill', os.path.expanduser('~/fill2')):\n"
                         "    try:\n        with open(where, 'wb') as f:\n            while True:\n"
                         "                f.write(b'x' * 2**20)\n    except OSError as err:\n"
                         "        print(where, 'full:', err.strerror)\n")],
    ),
    Student(
        "deep-tree-odd-permissions", FULL, "bounds", dict(SOLVED), category="clean-up: deep trees, permissions, links",
        cells=[("setup", "import os\nroot = os.getcwd()\nos.makedirs('t', exist_ok=True)\nos.chdir('t')\n"
                         "for _ in range(6000):\n    os.mkdir('d')\n    os.chdir('d')\n"
                         "os.chdir(root)\nos.makedirs('locked/inner', exist_ok=True)\nopen('locked/inner/f', 'w').write('x')\n"
                         "os.chmod('locked/inner', 0)\nos.chmod('locked', 0)\n"
                         "os.symlink('/', 'to-root')\nos.symlink('/etc/passwd', 'to-passwd')\nos.mkfifo('fifo')\n")],
    ),
    Student(
        "huge-answer", FULL - POINTS["importance_loss"], "bounds", category="answers the grader must decode",
        answers={
            "generate_batch": "solution",
            "ToyModel": "solution",
            # Tens of MB of nested lists: refused by size before the grader decodes any of it.
            "importance_loss": "def importance_loss(x, x_hat, importance):\n"
                               "    return [[[0.5] * 64] * 64] * 2000\n",
        },
        faults=("01.importance_loss",),
    ),
    # Other students, the gradebook, the machine, and the instructor's browser.
    Student(
        "cross-student", FULL, "others", dict(SOLVED), category="attacks on other students, the gradebook and the machine",
        strikes_after=4.0,
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
    Student(
        "xss-in-the-notebook", FULL, "others", dict(SOLVED), edits=(_hostile_json,),
        files={"evil.html": "<script>window.__pwned='served file'</script>",
               "evil.svg": "<svg xmlns='http://www.w3.org/2000/svg' onload=\"window.__pwned='served svg'\"/>"},
        category="scripts for the instructor's browser",
    ),
    # Honest learners who edit as people do: the same score everywhere.
    Student("duplicated-cell", FULL, "honest", dict(SOLVED), edits=(_duplicate_then_fix,),
            category="a pasted second copy of a solution cell"),
    Student("retyped-cell", FULL, "honest", dict(SOLVED), edits=(_retype_below_check,),
            category="a solution cell deleted and typed again below its check"),
    Student("moved-cell", FULL, "honest", dict(SOLVED), edits=(_move_to_the_end,),
            category="a solution cell moved to the end"),
    Student("ordinary-names", FULL, "honest", {**ORDINARY_NAMES, "ToyModel": "solution"},
            category="correct code that uses names like correlation, excitatory, sparse_uniform"),
    Student("zz-honest", FULL, "others", dict(SOLVED), category="honest"),
]

GROUPS = sorted({s.group for s in STUDENTS})


def _without_markers(source: str) -> str:
    return "\n".join(l for l in source.splitlines() if l.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))


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
    for edit in student.edits:
        edit(nb)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / release.name
    nbformat.write(nb, path)
    for rel, text in student.files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(fill(text, **paths))
    return path
