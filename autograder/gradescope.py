"""A Gradescope autograder for one lesson: ``supercourse course gradescope LESSON`` writes the zip to upload.

The zip follows Gradescope's autograder specification
(https://gradescope-autograders.readthedocs.io/en/latest/specs/): at its root ``setup.sh`` (run once,
as root, when Gradescope builds the image: it installs bubblewrap, Python, the pinned CPU torch and the
course) and ``run_autograder`` (run for every submission, in ``/autograder``), beside the course copy
(``course/``) and this lesson's settings (``supercourse-autograder.json``).

``run_autograder`` grades ``/autograder/submission/*.ipynb`` with the course's sandboxed grader
(:func:`autograder.containers.grade_in_container`) and writes ``/autograder/results/results.json``:
one test per exercise (``name``, ``number``, ``score``, ``max_score``, ``status`` passed/failed,
``output``: the learner's message and each check, ``visibility``), the top-level ``score``,
``execution_time`` and ``output`` (the secret the inputs came from, cells that raised). The file is
rewritten after every exercise, so a submission stopped by Gradescope's time-out still shows what was
graded; the notebook's own time limit is set to end grading before Gradescope's does.

A grader fault (no sandbox where one was required, a worker that cannot start) writes no results:
Gradescope then shows the submission as failed to autograde, with no score, and the reason is in the
autograder's output (``/autograder/results/stdout``, shown to instructors).
"""

from __future__ import annotations

import argparse
import json
import stat
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

from .containers import (TORCH_VERSION, NotANotebook, Platform, clip, course_files, find_notebook, grade_in_container,
                         refuse_unsandboxed, started_at, write_json_atomically)

__all__ = ["GRADESCOPE", "build_zip", "results_json", "run", "main", "SETTINGS"]

GRADESCOPE = Platform("Gradescope", timeout_seconds=600.0, memory_bytes=768 * 2**20, cpus=0.5)
"""Gradescope's default container: 10 minutes, 768 MB, half a CPU."""
SETTINGS = "supercourse-autograder.json"
_OUTPUT_CHARS = 20_000

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (Ubuntu).
# It installs bubblewrap (the grading sandbox), Python, the CPU build of torch {torch} and the course.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q python3 python3-venv python3-pip bubblewrap
python3 -m venv /autograder/venv
/autograder/venv/bin/python -m pip install -q --upgrade pip
/autograder/venv/bin/python -m pip install -q "torch=={torch}" --index-url https://download.pytorch.org/whl/cpu
/autograder/venv/bin/python -m pip install -q -e /autograder/source/course
# Prove the lesson's grader imports; say whether bubblewrap can make a sandbox in this image.
/autograder/venv/bin/python -m autograder.gradescope check --settings /autograder/source/{settings}
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission, in /autograder: it grades /autograder/submission/*.ipynb
# and writes /autograder/results/results.json.
export SUPERCOURSE_STARTED="$(date +%s.%N)" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MPLBACKEND=Agg
cd /autograder
exec "${{SUPERCOURSE_PYTHON:-/autograder/venv/bin/python}}" -m autograder.gradescope run \\
    --settings /autograder/source/{settings} --submission /autograder/submission \\
    --results /autograder/results/results.json
"""


def build_zip(lesson: str, out: Path, allow_unsandboxed: bool = False, platform: Platform = GRADESCOPE) -> Path:
    """Write the lesson's Gradescope autograder zip to ``out``."""
    from .exercises import exercises_of

    exercises = exercises_of(lesson)  # a KeyError naming the lessons for an unknown one
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = {"lesson": lesson, "allow_unsandboxed": bool(allow_unsandboxed),
                "timeout_seconds": platform.timeout_seconds, "memory_bytes": platform.memory_bytes,
                "cpus": platform.cpus, "max_score": float(sum(ex.points for ex in exercises))}

    def add(zf: zipfile.ZipFile, name: str, text: str | bytes, executable: bool = False) -> None:
        info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
        zf.writestr(info, text)

    with zipfile.ZipFile(out, "w") as zf:
        add(zf, "setup.sh", SETUP_SH.format(torch=TORCH_VERSION, settings=SETTINGS), executable=True)
        add(zf, "run_autograder", RUN_AUTOGRADER.format(settings=SETTINGS), executable=True)
        add(zf, SETTINGS, json.dumps(settings, indent=1) + "\n")
        for path, rel in course_files(lesson):
            add(zf, f"course/{rel}", path.read_bytes())
    return out


def _test(verdict: Any, number: int) -> dict[str, Any]:
    return {"name": f"{verdict.id} {verdict.title}", "number": str(number), "score": float(verdict.points),
            "max_score": float(verdict.max_points), "status": "passed" if verdict.passed else "failed",
            "output": clip(verdict.report(), _OUTPUT_CHARS), "visibility": "visible"}


def results_json(lesson: str, verdicts: dict[str, Any], seconds: float, output: str, final: bool) -> dict[str, Any]:
    """Gradescope's results for the exercises graded so far (``verdicts`` by exercise id); the others say they
    were not graded (when ``final`` is False: the autograder was stopped before it reached them)."""
    from .exercises import exercises_of

    tests = []
    for number, ex in enumerate(exercises_of(lesson), start=1):
        if ex.id in verdicts:
            tests.append(_test(verdicts[ex.id], number))
            continue
        why = ("not graded: the autograder was stopped (Gradescope's time limit) before it reached this exercise"
               if not final else "not graded")
        tests.append({"name": f"{ex.id} {ex.title}", "number": str(number), "score": 0.0, "max_score": float(ex.points),
                      "status": "failed", "output": why, "visibility": "visible"})
    return {"score": float(sum(t["score"] for t in tests)), "execution_time": int(round(seconds)),
            "output": clip(output, _OUTPUT_CHARS), "visibility": "visible", "stdout_visibility": "hidden",
            "tests": tests}


def run(settings_path: Path, submission: Path, results: Path) -> int:
    """Grade the submission and write Gradescope's results; 0 when results were written, 1 on a grader fault."""
    from .sandbox import GraderFault

    started = started_at()
    settings = json.loads(Path(settings_path).read_text(encoding="utf-8"))
    lesson = settings["lesson"]
    platform = Platform("Gradescope", float(settings["timeout_seconds"]), int(settings["memory_bytes"]),
                        float(settings["cpus"]))
    allow = bool(settings.get("allow_unsandboxed", False))
    try:
        refuse_unsandboxed(allow)
    except GraderFault as err:
        print(f"supercourse: not graded (not the student's fault): {err}")
        return 1
    graded: dict[str, Any] = {}
    results = Path(results)

    def partial(verdict: Any) -> None:
        graded[verdict.id] = verdict
        write_json_atomically(results, results_json(lesson, graded, time.time() - started,
                                                    "Grading in progress: these results are partial.", final=False))

    try:
        path = find_notebook(Path(submission), lesson)
        write_json_atomically(results, results_json(lesson, {}, time.time() - started,
                                                    "Grading started: nothing graded yet.", final=False))
        result = grade_in_container(path, lesson, platform, started, allow, on_verdict=partial)
    except NotANotebook as err:
        write_json_atomically(results, results_json(lesson, {}, time.time() - started, str(err), final=True))
        print(f"supercourse: {err}")
        return 0
    except GraderFault as err:
        results.unlink(missing_ok=True)  # a grader fault is never a student's zero
        print(f"supercourse: not graded (not the student's fault): {err}")
        return 1
    lines = [f"{lesson}: {result.score:g}/{result.max_score:g}. Graded "
             f"{'in a sandbox' if result.sandboxed else 'WITHOUT a sandbox'}, on inputs drawn from the secret "
             f"{result.seed}."]
    if result.cell_errors:
        lines.append(f"{len(result.cell_errors)} cell(s) of your notebook raised errors:")
        lines += [f"  {e}" for e in result.cell_errors[:10]]
    final = results_json(lesson, {v.id: v for v in result.verdicts}, time.time() - started, "\n".join(lines), final=True)
    final["extra_data"] = {"seed": result.seed, "sandboxed": result.sandboxed, "restarts": result.restarts,
                           "workers": result.workers, "confinement": result.confinement,
                           "grading_seconds": round(result.seconds, 2)}
    write_json_atomically(results, final)
    print(f"supercourse: {submission}: {result.score:g}/{result.max_score:g} in {result.seconds:.1f} s "
          f"(seed {result.seed}, {result.restarts} restart(s), faults: {result.faults or 'none'})")
    return 0


def check(settings_path: Path) -> int:
    """``setup.sh``'s last step: the lesson's grader imports; says whether a sandbox works in this image."""
    from .exercises import exercises_of
    from .sandbox import doctor_row

    settings = json.loads(Path(settings_path).read_text(encoding="utf-8"))
    exercises = exercises_of(settings["lesson"])
    print(f"supercourse: {settings['lesson']}: {len(exercises)} exercises; grading sandbox: {doctor_row()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.gradescope",
                                     description="The Gradescope autograder's entry point (see run_autograder).")
    parser.add_argument("action", choices=["run", "check"])
    parser.add_argument("--settings", type=Path, required=True)
    parser.add_argument("--submission", type=Path, default=Path("/autograder/submission"))
    parser.add_argument("--results", type=Path, default=Path("/autograder/results/results.json"))
    args = parser.parse_args(argv)
    if args.action == "check":
        return check(args.settings)
    return run(args.settings, args.submission, args.results)


if __name__ == "__main__":
    sys.exit(main())
