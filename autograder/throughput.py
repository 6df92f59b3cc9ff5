"""How fast a class is graded: ``supercourse course bench``.

Simulated classes of lesson-01 submissions are graded by ``supercourse course grade``
(:func:`autograder.classgrade.grade_class`) in a scratch course folder: nbgrader's pipeline and
gradebook in this process, each submission's code in a sandboxed worker of a pool of ``jobs`` grading
processes. Three kinds of submission:

* **honest**: the instructor's solution (full marks);
* **blank**: the release as handed out (every exercise raises ``NotImplementedError``; graded without a worker);
* **faulty**: the solution with one exercise that crashes the worker (``os._exit``) and one that loops
  while ignoring signals (killed from outside after the cell time-out), so each such submission pays one
  restart and one time-out.

It measures, in one run, on the same machine, with the load average before and after each:

* a class of honest submissions graded by 1 worker, then by ``jobs`` workers (all cores by default), in
  alternating rounds: the submissions per minute of each and the speed-up (of the medians), beside the
  machine's own ceiling
  (:func:`autograder.cpu.cpu_ceiling`: ``jobs`` CPU-only processes at once against one; a 2-vCPU virtual
  machine measured 1.7-2.1x);
* the mixed class (honest, blank, faulty in turn) graded by ``jobs`` workers;
* one honest submission three ways, in alternating rounds so that all three see the same load:
  **in-kernel** (before trusted grading: executed in a Jupyter kernel with the checks inside it, as the old
  ``supercourse check`` and nbgrader's ``Execute`` did), **out of process** (the trusted grader with an
  unsandboxed worker) and **sandboxed** (the trusted grader);
* the checks' own CPU cost per exercise, and how much of it is the runner itself.

Results are printed as tables and written as JSON.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence
from unittest import mock

import nbformat

from supercourse.course import GRADING_ENV

from .cpu import cpu_ceiling
from .limits import DEFAULT_LIMITS
from .nbgrader_settings import REPO_ROOT
from .notebook import check_notebook
from .sandbox import sandbox_available

__all__ = ["KINDS", "LESSON", "ClassRun", "ThroughputResult", "simulated_class", "run_benchmark", "main"]

LESSON = "01-sparse-features"
KINDS = ("honest", "blank", "faulty")
CELL_TIMEOUT = 10
"""Seconds a cell may run in the benchmark (the faulty kind's loop is killed after this)."""
LIMITS = DEFAULT_LIMITS.with_(cell_seconds=float(CELL_TIMEOUT))
HONEST_CLASS = 12
MIXED_CLASS = 9

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


def simulated_class(folder: Path, n_students: int, kinds: Sequence[str] = KINDS) -> list[tuple[str, Path]]:
    """Write ``n_students`` submissions (``kinds`` in turn) as ``folder/student-NNN-KIND/LESSON/LESSON.ipynb``."""
    if not isinstance(n_students, int) or isinstance(n_students, bool) or n_students < 1:
        raise ValueError(f"n_students must be a positive int, got {n_students!r}")
    if not kinds or set(kinds) - set(KINDS):
        raise ValueError(f"kinds must be among {KINDS}, got {tuple(kinds)!r}")
    out = []
    for i in range(n_students):
        kind = kinds[i % len(kinds)]
        path = folder / f"student-{i:03d}-{kind}" / LESSON / f"{LESSON}.ipynb"
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


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


@dataclass
class ClassRun:
    """One simulated class graded by ``supercourse course grade``."""

    name: str
    students: int
    jobs: int
    seconds: float
    scores: dict[str, list[float]]
    load_before: float
    load_after: float
    blank_without_worker: int = 0

    @property
    def per_minute(self) -> float:
        return 60.0 * self.students / self.seconds if self.seconds > 0 else 0.0


@dataclass
class ThroughputResult:
    """What one benchmark run measured (seconds unless named otherwise)."""

    sandboxed: bool
    classes: list[ClassRun] = field(default_factory=list)
    per_submission: dict[str, list[float]] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)

    def median(self, mode: str) -> float:
        return statistics.median(self.per_submission[mode])

    def run(self, name: str) -> ClassRun:
        return next(c for c in self.classes if c.name == name)

    @property
    def speedup(self) -> float | None:
        """Honest class: the median seconds with 1 worker / the median with the most workers, over the rounds
        (None without both)."""
        honest = [c for c in self.classes if c.name.startswith("honest")]
        one = [c.seconds for c in honest if c.jobs == 1]
        most = max((c.jobs for c in honest), default=1)
        many = [c.seconds for c in honest if c.jobs == most]
        if not one or most == 1:
            return None
        return statistics.median(one) / statistics.median(many)

    @property
    def speedup_of_ceiling(self) -> float | None:
        """:attr:`speedup` as a fraction of the machine's own ceiling (None without both)."""
        ceiling = self.machine.get("cpu_ceiling")
        return self.speedup / ceiling if self.speedup is not None and ceiling else None

    @property
    def ratios(self) -> dict[str, float]:
        out = {}
        if "sandboxed" in self.per_submission and "in-kernel" in self.per_submission:
            out["sandboxed / in-kernel"] = self.median("sandboxed") / self.median("in-kernel")
        if "sandboxed" in self.per_submission and "out of process" in self.per_submission:
            out["sandboxed / out of process"] = self.median("sandboxed") / self.median("out of process")
        return out

    @property
    def ok(self) -> bool:
        """Every honest submission of every class got full marks."""
        from .exercises import exercises_of

        full = float(sum(ex.points for ex in exercises_of(LESSON)))
        honest = [s for c in self.classes for s in c.scores.get("honest", [])]
        return bool(honest) and all(s == full for s in honest)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for run, row in zip(self.classes, data["classes"]):
            row["per_minute"] = run.per_minute
        data["medians"] = {m: self.median(m) for m in self.per_submission}
        data["ratios"] = self.ratios
        data["speedup"] = self.speedup
        data["speedup_of_ceiling"] = self.speedup_of_ceiling
        return data


def _machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "load_average_1m_before": _load(), "platform": platform.platform(),
            "python": platform.python_version()}


def _grade_class(course: Path, name: str, n: int, jobs: int, kinds: Sequence[str]) -> ClassRun:
    """Write a class of ``n`` submissions into ``course`` (replacing the last one) and grade it."""
    import shutil

    from .classgrade import grade_class

    for folder in ("submitted", "autograded"):
        shutil.rmtree(course / folder, ignore_errors=True)
    students = simulated_class(course / "submitted", n, kinds)
    load_before = _load()
    graded = grade_class(course, LESSON, jobs=jobs, force=True, show_progress=False,
                         argv=[f"--SandboxedGrade.cell_seconds={CELL_TIMEOUT}"])
    scores: dict[str, list[float]] = {}
    for kind, path in students:
        scores.setdefault(kind, []).append(graded.scores[path.parent.parent.name])
    return ClassRun(name, n, jobs, graded.seconds, scores, load_before, _load(), len(graded.blank))


def run_benchmark(n_honest: int = HONEST_CLASS, n_mixed: int = MIXED_CLASS, jobs: int | None = None, rounds: int = 2,
                  modes: tuple[str, ...] = ("in-kernel", "out of process", "sandboxed"),
                  folder: Path | None = None) -> ThroughputResult:
    """Grade the honest class with 1 and ``jobs`` workers in turn, ``rounds`` times each, and the mixed class
    with ``jobs``, then time one honest submission in each mode, ``rounds`` times."""
    from .classgrade import default_jobs, release_lesson
    from .classgrade import warm as warm_pool
    from .command import init_course

    if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 1:
        raise ValueError(f"rounds must be a positive int, got {rounds!r}")
    jobs = default_jobs() if jobs is None else jobs
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs must be a positive int, got {jobs!r}")
    unknown = set(modes) - {"in-kernel", "out of process", "sandboxed"}
    if unknown:
        raise ValueError(f"modes must be among 'in-kernel', 'out of process', 'sandboxed', got {sorted(unknown)}")
    for name, n in (("n_honest", n_honest), ("n_mixed", n_mixed)):
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"{name} must be a non-negative int, got {n!r}")
    sandboxed = sandbox_available()
    result = ThroughputResult(sandboxed, machine=_machine())
    with tempfile.TemporaryDirectory(prefix="supercourse-throughput-") as tmp:
        root = Path(folder or tmp)
        course = init_course(root / "course")
        release_lesson(course, LESSON)
        warm = simulated_class(root / "warm", 1, ("honest",))[0][1]
        check_notebook(warm, limits=LIMITS, lesson=LESSON, sandbox=sandboxed)  # warm the disk caches
        result.machine["pool_start_seconds"] = warm_pool()  # once per run of `course grade`: not in the classes
        if n_honest and jobs > 1:
            result.machine["cpu_ceiling"] = cpu_ceiling(jobs)
        for _ in range(rounds if n_honest else 0):  # alternate 1 and `jobs` workers: both see the same load
            result.classes.append(_grade_class(course, "honest, 1 worker", n_honest, 1, ("honest",)))
            if jobs > 1:
                result.classes.append(_grade_class(course, f"honest, {jobs} workers", n_honest, jobs, ("honest",)))
        if n_mixed:
            result.classes.append(_grade_class(course, f"mixed, {jobs} worker{'s' if jobs > 1 else ''}", n_mixed,
                                               jobs, KINDS))
        per: dict[str, list[float]] = {m: [] for m in modes if m != "sandboxed" or sandboxed}
        for _ in range(rounds):  # alternate the modes so that each sees the same load
            for mode in per:
                if mode == "in-kernel":
                    per[mode].append(_in_kernel(warm))
                else:
                    per[mode].append(_graded(warm, mode == "sandboxed")[0])
    result.per_submission = per
    result.machine["load_average_1m_after"] = _load()
    return result


def print_result(result: ThroughputResult) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]Grading throughput[/] of lesson 01 by `supercourse course grade`, "
        f"{'sandboxed' if result.sandboxed else 'NOT sandboxed (no bubblewrap)'}; {result.machine['cpus']} CPUs"
    )
    table = Table(title="Simulated classes")
    for column in ("class", "submissions", "workers", "seconds", "per minute", "load before / after", "scores"):
        table.add_column(column, justify="left" if column in ("class", "scores") else "right")
    for run in result.classes:
        scores = "; ".join(f"{k} {sorted(set(v))}" for k, v in run.scores.items())
        table.add_row(run.name, str(run.students), str(run.jobs), f"{run.seconds:.1f}", f"{run.per_minute:.1f}",
                      f"{run.load_before:.1f} / {run.load_after:.1f}", scores)
    console.print(table)
    if result.speedup is not None:
        rounds = sum(1 for c in result.classes if c.name.startswith("honest") and c.jobs == 1)
        console.print(f"  speed-up of the honest class from 1 worker to "
                      f"{max(c.jobs for c in result.classes)}: [bold]{result.speedup:.2f}x[/] (of the medians of "
                      f"{rounds} alternating round{'s' if rounds > 1 else ''})")
    if "cpu_ceiling" in result.machine:
        ceiling = result.machine["cpu_ceiling"]
        line = (f"  this machine's own ceiling: {max(c.jobs for c in result.classes)} CPU-only processes at once run "
                f"{ceiling:.2f}x as fast as one")
        if result.speedup_of_ceiling is not None:
            line += f"; grading reached {result.speedup_of_ceiling:.0%} of it"
        console.print(line)
    console.print("  blank submissions are graded without a worker; each faulty one pays a "
                  f"{CELL_TIMEOUT} s time-out and two worker restarts")
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
    if "pool_start_seconds" in result.machine:
        console.print(f"  the grading processes' server started in {result.machine['pool_start_seconds']:.1f} s "
                      "(once per `course grade`, not counted in the classes)")
    console.print(f"  load average {result.machine['load_average_1m_before']:.1f} before the run, "
                  f"{result.machine.get('load_average_1m_after', float('nan')):.1f} after")


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


def main(n_students: int | None = None, jobs: int | None = None, rounds: int = 2,
         out: Path | None = None) -> ThroughputResult:
    """``supercourse course bench``: ``n_students`` in each class (default 12 honest, 9 mixed)."""
    overhead = runner_overhead()
    result = run_benchmark(n_students or HONEST_CLASS, n_students or MIXED_CLASS, jobs, rounds)
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
