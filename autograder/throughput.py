"""How fast the trusted grader grades a class: ``supercourse course bench``.

A simulated class of lesson-01 submissions, in three kinds, is graded in
parallel (``jobs`` grader processes at a time, all cores by default, each
with its sandboxed worker) the way ``nbgrader autograde`` and ``supercourse check``
grade: the notebook rebuilt from the release, its code run in the worker, the
checks run here.

* **honest**: the instructor's solution (full marks);
* **blank**: the release as handed out (every exercise raises ``NotImplementedError``);
* **faulty**: the solution with one exercise that crashes the worker
  (``os._exit``) and one that loops while ignoring signals (killed from outside
  after the cell time-out), so each such submission pays one restart and one time-out.

It reports submissions per minute for the class, and the cost of one honest
submission three ways, measured in alternating rounds so that all three see the
same machine load:

* **in-kernel** (before trusted grading): the notebook executed in a Jupyter
  kernel with the checks running inside it, as the old ``supercourse check``
  and nbgrader's ``Execute`` did (the student's code could patch the checks);
* **out of process**: the trusted grader with an unsandboxed worker;
* **sandboxed**: the trusted grader with the worker under bubblewrap.

The overhead of trusted grading is sandboxed / in-kernel, and of the sandbox
alone sandboxed / out of process (ratios from one run). Results are printed as
a table and written as JSON.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import nbformat

from supercourse.course import GRADING_ENV

from .limits import DEFAULT_LIMITS
from .nbgrader_settings import REPO_ROOT
from .notebook import check_notebook
from .sandbox import sandbox_available

__all__ = ["KINDS", "LESSON", "ThroughputResult", "simulated_class", "run_benchmark", "main"]

LESSON = "01-sparse-features"
KINDS = ("honest", "blank", "faulty")
CELL_TIMEOUT = 10
"""Seconds a cell may run in the benchmark (the faulty kind's loop is killed after this)."""
LIMITS = DEFAULT_LIMITS.with_(cell_seconds=float(CELL_TIMEOUT))

_CRASH = "import os\ndef importance_loss(x, x_hat, importance):\n    os._exit(3)\n"
_LOOP = (
    "import signal\n"
    "def generate_batch(batch_size, feature_probability, generator=None):\n"
    "    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
    "    while True:\n"
    "        pass\n"
)


def _notebook(kind: str) -> nbformat.NotebookNode:
    if kind == "blank":
        return nbformat.read(REPO_ROOT / "lessons" / LESSON / f"{LESSON}.ipynb", as_version=4)
    nb = nbformat.read(REPO_ROOT / "solutions" / LESSON / f"{LESSON}.ipynb", as_version=4)
    if kind == "faulty":
        for cell in nb.cells:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if grade_id == "importance_loss":
                cell.source = _CRASH
            elif grade_id == "generate_batch":
                cell.source = _LOOP
    return nb


def simulated_class(folder: Path, n_students: int) -> list[tuple[str, Path]]:
    """Write ``n_students`` submissions (kinds in turn: honest, blank, faulty) under ``folder``."""
    if not isinstance(n_students, int) or isinstance(n_students, bool) or n_students < 1:
        raise ValueError(f"n_students must be a positive int, got {n_students!r}")
    out = []
    for i in range(n_students):
        kind = KINDS[i % len(KINDS)]
        path = folder / f"student-{i:03d}-{kind}" / f"{LESSON}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(_notebook(kind), path)
        out.append((kind, path))
    return out


def _in_kernel(path: Path) -> float:
    """Seconds to grade ``path`` the old way: executed in a kernel, checks inside it (up to the last check)."""
    from nbclient import NotebookClient

    from .grader import is_check_cell

    nb = nbformat.read(path, as_version=4)
    last = max(i for i, c in enumerate(nb.cells) if is_check_cell(c))
    nb.cells = nb.cells[: last + 1]
    with mock.patch.dict(os.environ, {GRADING_ENV: "1"}):  # the kernel inherits it: lessons shrink to grading sizes
        start = time.perf_counter()
        NotebookClient(nb, timeout=CELL_TIMEOUT * 30, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        return time.perf_counter() - start


def _graded(path: Path, sandbox: bool) -> tuple[float, float]:
    start = time.perf_counter()
    report = check_notebook(path, limits=LIMITS, lesson=LESSON, sandbox=sandbox)
    return time.perf_counter() - start, report.score


@dataclass
class ThroughputResult:
    """What one benchmark run measured (seconds unless named otherwise)."""

    n_students: int
    jobs: int
    sandboxed: bool
    class_seconds: float
    submissions_per_minute: float
    scores: dict[str, list[float]]
    per_submission: dict[str, list[float]] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)

    def median(self, mode: str) -> float:
        return statistics.median(self.per_submission[mode])

    @property
    def ratios(self) -> dict[str, float]:
        out = {}
        if "sandboxed" in self.per_submission and "in-kernel" in self.per_submission:
            out["sandboxed / in-kernel"] = self.median("sandboxed") / self.median("in-kernel")
        if "sandboxed" in self.per_submission and "out of process" in self.per_submission:
            out["sandboxed / out of process"] = self.median("sandboxed") / self.median("out of process")
        return out

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["medians"] = {m: self.median(m) for m in self.per_submission}
        data["ratios"] = self.ratios
        return data


def _machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"cpus": os.cpu_count(), "load_average_1m_before": load[0], "platform": platform.platform(),
            "python": platform.python_version()}


def run_benchmark(n_students: int = 9, jobs: int | None = None, rounds: int = 2,
                  modes: tuple[str, ...] = ("in-kernel", "out of process", "sandboxed"),
                  folder: Path | None = None) -> ThroughputResult:
    """Grade a simulated class in parallel, then time one honest submission in each mode, ``rounds`` times."""
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive int, got {rounds!r}")
    jobs = jobs or os.cpu_count() or 1
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive int, got {jobs!r}")
    unknown = set(modes) - {"in-kernel", "out of process", "sandboxed"}
    if unknown:
        raise ValueError(f"modes must be among 'in-kernel', 'out of process', 'sandboxed', got {sorted(unknown)}")
    sandboxed = sandbox_available()
    machine = _machine()
    with tempfile.TemporaryDirectory(prefix="supercourse-throughput-") as tmp:
        root = Path(folder or tmp)
        students = simulated_class(root / "class", n_students)
        check_notebook(students[0][1], limits=LIMITS, lesson=LESSON, sandbox=sandboxed)  # warm caches
        start = time.perf_counter()
        # One grader process per submission in flight, as one `nbgrader autograde` per core would be
        # (a grader runs its checks through pytest, which is not thread-safe).
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            graded = list(pool.map(_graded, [s[1] for s in students], [sandboxed] * len(students)))
        class_seconds = time.perf_counter() - start
        scores: dict[str, list[float]] = {k: [] for k in KINDS}
        for (kind, _), (_, score) in zip(students, graded):
            scores[kind].append(score)
        honest = students[0][1]
        per: dict[str, list[float]] = {m: [] for m in modes if m != "sandboxed" or sandboxed}
        for _ in range(rounds):  # alternate the modes so that each sees the same load
            for mode in per:
                if mode == "in-kernel":
                    per[mode].append(_in_kernel(honest))
                else:
                    per[mode].append(_graded(honest, mode == "sandboxed")[0])
    return ThroughputResult(n_students, jobs, sandboxed, class_seconds, 60.0 * n_students / class_seconds,
                            scores, per, machine)


def print_result(result: ThroughputResult) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]Grading throughput[/]: {result.n_students} lesson-01 submissions ({', '.join(KINDS)} in turn), "
        f"{result.jobs} at a time, {'sandboxed' if result.sandboxed else 'NOT sandboxed (no bubblewrap)'}; "
        f"{result.machine['cpus']} CPUs, load {result.machine['load_average_1m_before']:.1f} before the run"
    )
    console.print(f"  class graded in {result.class_seconds:.0f} s: "
                  f"[bold]{result.submissions_per_minute:.1f} submissions per minute[/]")
    for kind, got in result.scores.items():
        console.print(f"  {kind:>7}: scores {sorted(set(got))}")
    table = Table(title="One honest submission (median of the rounds)")
    table.add_column("how it is graded")
    table.add_column("seconds", justify="right")
    for mode, times in result.per_submission.items():
        table.add_row(mode, f"{statistics.median(times):.1f}")
    console.print(table)
    for name, ratio in result.ratios.items():
        console.print(f"  {name}: {ratio:.2f}x")
    console.print("  in-kernel: the notebook run in a Jupyter kernel with the checks inside it (forgeable); "
                  "out of process: the trusted grader without bubblewrap; sandboxed: the trusted grader.")


def _solution_namespace(slug: str) -> dict[str, Any]:
    """The names a lesson's solution notebook defines (its setup cell and its solution cells)."""
    from .lessons import get_lesson

    nb = nbformat.read(get_lesson(slug).notebook, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    ns: dict[str, Any] = {"__name__": f"solution_{slug.replace('-', '_')}"}
    for cell in [code[0]] + [c for c in code[1:] if c.get("metadata", {}).get("nbgrader", {}).get("solution")]:
        exec(compile(cell.source, f"<{slug} solution>", "exec"), ns)  # noqa: S102 - the course's own notebook
    return ns


def runner_overhead(slug: str = "06-correlated-features", rounds: int = 3) -> dict[str, float]:
    """CPU seconds per exercise to grade ``slug``'s solution with the self-check, and how much of it is the
    runner itself (everything but the bodies of the properties, which include the calls into the learner's code)."""
    import importlib

    import torch

    from .exercises import exercises_of
    from .runner import self_check

    exercises = exercises_of(slug)
    ns = _solution_namespace(slug)
    inside = [0.0]
    originals = {}
    for ex in exercises:
        for prop in ex.properties:
            module = importlib.import_module(prop.module)
            fn = getattr(module, prop.test)
            originals[(prop.module, prop.test)] = fn

            def timed(submission, _fn=fn):
                start = time.process_time()
                try:
                    return _fn(submission)
                finally:
                    inside[0] += time.process_time() - start

            setattr(module, prop.test, timed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for ex in exercises:  # warm up: imports and first calls
            self_check(ex.id, ns[ex.function])
        inside[0] = 0.0
        start = time.process_time()
        for _ in range(rounds):
            for ex in exercises:
                self_check(ex.id, ns[ex.function])
        total = time.process_time() - start
    finally:
        torch.set_num_threads(threads)
        for (module_name, test), fn in originals.items():
            setattr(importlib.import_module(module_name), test, fn)
    n = rounds * len(exercises)
    return {"lesson": slug, "exercises": len(exercises), "cpu_per_exercise": total / n,
            "cpu_in_properties_per_exercise": inside[0] / n, "runner_overhead_per_exercise": (total - inside[0]) / n}


def main(n_students: int = 9, jobs: int | None = None, rounds: int = 2, out: Path | None = None) -> ThroughputResult:
    overhead = runner_overhead()
    result = run_benchmark(n_students, jobs, rounds)
    result.machine["runner"] = overhead
    print_result(result)
    from rich.console import Console

    Console().print(f"  checks of {overhead['lesson']}: {overhead['cpu_per_exercise']:.3f} CPU s per exercise, of which "
                    f"the runner itself {overhead['runner_overhead_per_exercise']:.4f} s (the rest is the properties, "
                    "the learner's code and the channel to it)")
    out = out or Path("bench-results") / "grading-throughput.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    print(f"results written to {out}")
    return result
