"""A PrairieLearn external grader for one lesson: ``supercourse course prairielearn LESSON``.

PrairieLearn's external grading (https://prairielearn.readthedocs.io/en/latest/externalGrading/) runs a
container per submission with the question's ``tests/`` in ``/grade/tests`` and the student's files in
``/grade/student``; the entrypoint must write ``/grade/results/results.json`` (creating the folder):
``score`` in [0, 1], ``tests[]`` with ``name``, ``points``, ``max_points``, ``message`` (and ``output``),
``gradable: false`` with ``format_errors`` for input that cannot be graded, the whole file under 1 MB.
The grading job's ``timeout`` may be at most 600 s.

The command writes a folder with

* ``image/``: the grading image's build context (``Dockerfile``: bubblewrap, the pinned CPU torch, the
  course, and ``run_prairielearn`` as the entrypoint); build it and push it where PrairieLearn pulls images;
* ``question/``: ``info.json`` (``externalGradingOptions``: the image, the entrypoint, the ``timeout``),
  ``question.html`` (a file upload of ``LESSON.ipynb``) and ``tests/supercourse.json`` (the lesson and limits).

A grader fault (no sandbox where one was required, a worker that cannot start) is reported as
``gradable: false``: the submission is not graded and the student is not charged an attempt.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from .containers import (TORCH_VERSION, NotANotebook, Platform, clip, find_notebook, grade_in_container,
                         refuse_unsandboxed, started_at, write_course, write_json_atomically)

__all__ = ["build_grader", "results_json", "run", "main", "MAX_BYTES", "TIMEOUT_SECONDS", "PRAIRIELEARN"]

MAX_BYTES = 1_000_000
"""PrairieLearn's limit on results.json."""
TIMEOUT_SECONDS = 600
"""The job ``timeout`` the question sets: PrairieLearn's maximum (the default is 30 s, far too short)."""
PRAIRIELEARN = Platform("PrairieLearn", timeout_seconds=float(TIMEOUT_SECONDS), memory_bytes=768 * 2**20, cpus=0.5)
"""The limits the grader plans for (PrairieLearn's timeout; memory and CPU as Gradescope's defaults)."""
IMAGE = "supercourse/grader"

DOCKERFILE = """\
# The grading image for PrairieLearn's external grader (lesson {lesson}).
FROM python:3.11-slim
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap \\
    && rm -rf /var/lib/apt/lists/*
RUN python -m pip install -q "torch=={torch}" --index-url https://download.pytorch.org/whl/cpu
COPY course /opt/supercourse/course
RUN python -m pip install -q -e /opt/supercourse/course
COPY run_prairielearn /opt/supercourse/run_prairielearn
RUN chmod 755 /opt/supercourse/run_prairielearn
"""

RUN_SCRIPT = """\
#!/usr/bin/env bash
# PrairieLearn's entrypoint: grade /grade/student/*.ipynb, write /grade/results/results.json.
export SUPERCOURSE_STARTED="$(date +%s.%N)" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MPLBACKEND=Agg
exec "${SUPERCOURSE_PYTHON:-python}" -m autograder.prairielearn run --grade "${SUPERCOURSE_GRADE:-/grade}"
"""

QUESTION_HTML = """\
<pl-question-panel>
  <p>Upload your notebook <code>{lesson}.ipynb</code>. Every exercise is graded in a sandbox, on inputs you
  cannot predict, by the same grader as <code>supercourse check</code>.</p>
</pl-question-panel>
<pl-file-upload file-names="{lesson}.ipynb"></pl-file-upload>
<pl-submission-panel><pl-external-grader-results></pl-external-grader-results></pl-submission-panel>
"""


def build_grader(lesson: str, out: Path, allow_unsandboxed: bool = False, image: str = IMAGE) -> Path:
    """Write the lesson's grading image context and question folder under ``out``."""
    from .exercises import exercises_of

    exercises = exercises_of(lesson)
    out = Path(out)
    (out / "image").mkdir(parents=True, exist_ok=True)
    write_course(lesson, out / "image" / "course")
    (out / "image" / "Dockerfile").write_text(DOCKERFILE.format(lesson=lesson, torch=TORCH_VERSION), encoding="utf-8")
    script = out / "image" / "run_prairielearn"
    script.write_text(RUN_SCRIPT, encoding="utf-8")
    script.chmod(0o755)
    question = out / "question"
    (question / "tests").mkdir(parents=True, exist_ok=True)
    tag = f"{image}:{lesson}"
    info = {"uuid": "REPLACE-WITH-A-UUID", "title": f"supercourse {lesson}", "topic": "Toy Models of Superposition",
            "type": "v3", "singleVariant": True, "gradingMethod": "External",
            "externalGradingOptions": {"enabled": True, "image": tag, "entrypoint": "/opt/supercourse/run_prairielearn",
                                       "timeout": TIMEOUT_SECONDS}}
    (question / "info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    (question / "question.html").write_text(QUESTION_HTML.format(lesson=lesson), encoding="utf-8")
    settings = {"lesson": lesson, "allow_unsandboxed": bool(allow_unsandboxed), "timeout_seconds": TIMEOUT_SECONDS,
                "memory_bytes": PRAIRIELEARN.memory_bytes, "cpus": PRAIRIELEARN.cpus,
                "max_points": float(sum(ex.points for ex in exercises))}
    (question / "tests" / "supercourse.json").write_text(json.dumps(settings, indent=1) + "\n", encoding="utf-8")
    (out / "README.md").write_text(
        f"# PrairieLearn grader for {lesson}\n\n"
        f"1. `docker build -t {tag} image/` and push the image where your PrairieLearn pulls from.\n"
        f"2. Copy `question/` into your course's `questions/` (give `info.json` a fresh `uuid`).\n"
        f"3. `externalGradingOptions.timeout` is {TIMEOUT_SECONDS} s, PrairieLearn's maximum.\n", encoding="utf-8")
    return out


def _bounded(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with its texts cut until its JSON is under :data:`MAX_BYTES`."""
    limit = 20_000
    while len(json.dumps(data).encode()) >= MAX_BYTES and limit > 100:
        limit //= 2
        data["message"] = clip(data.get("message", ""), limit)
        for test in data.get("tests", []):
            for key in ("message", "output", "description"):
                if key in test:
                    test[key] = clip(test[key], limit)
    return data


def results_json(lesson: str, verdicts: dict[str, Any], message: str, final: bool) -> dict[str, Any]:
    """PrairieLearn's results for the exercises graded so far (``verdicts`` by exercise id)."""
    from .exercises import exercises_of

    tests = []
    for ex in exercises_of(lesson):
        v = verdicts.get(ex.id)
        if v is None:
            why = "not graded" if final else "not graded: grading was stopped before it reached this exercise"
            tests.append({"name": ex.id, "description": ex.title, "points": 0.0, "max_points": float(ex.points),
                          "message": why})
        else:
            tests.append({"name": v.id, "description": v.title, "points": float(v.points),
                          "max_points": float(v.max_points), "message": clip(v.message, 20_000),
                          "output": clip(v.report(), 20_000)})
    total = sum(t["max_points"] for t in tests)
    score = sum(t["points"] for t in tests) / total if total else 0.0
    return _bounded({"gradable": True, "score": min(1.0, max(0.0, score)), "message": clip(message, 20_000),
                     "tests": tests})


def not_gradable(errors: list[str]) -> dict[str, Any]:
    return _bounded({"gradable": False, "format_errors": [clip(e, 20_000) for e in errors]})


def run(grade: Path = Path("/grade")) -> int:
    """Grade ``grade/student``'s notebook for the lesson in ``grade/tests/supercourse.json``; write the results."""
    from .sandbox import GraderFault

    started = started_at()
    grade = Path(grade)
    results = grade / "results" / "results.json"
    settings = json.loads((grade / "tests" / "supercourse.json").read_text(encoding="utf-8"))
    lesson = settings["lesson"]
    platform = Platform("PrairieLearn", float(settings["timeout_seconds"]), int(settings["memory_bytes"]),
                        float(settings["cpus"]))
    allow = bool(settings.get("allow_unsandboxed", False))
    graded: dict[str, Any] = {}

    def partial(verdict: Any) -> None:
        graded[verdict.id] = verdict
        write_json_atomically(results, results_json(lesson, graded, "Grading in progress: these results are partial.",
                                                    final=False))

    try:
        refuse_unsandboxed(allow)
        path = find_notebook(grade / "student", lesson)
        result = grade_in_container(path, lesson, platform, started, allow, on_verdict=partial)
    except NotANotebook as err:
        write_json_atomically(results, not_gradable([str(err)]))
        print(f"supercourse: {err}")
        return 0
    except GraderFault as err:
        write_json_atomically(results, not_gradable([
            f"Your submission could not be graded, through no fault of yours (the grader could not run): {err} "
            "Submit again later, or tell your instructor."]))
        print(f"supercourse: not graded (not the student's fault): {err}")
        return 0
    lines = [f"{lesson}: {result.score:g}/{result.max_score:g} points, graded "
             f"{'in a sandbox' if result.sandboxed else 'WITHOUT a sandbox'} on inputs drawn from the secret {result.seed}."]
    if result.cell_errors:
        lines.append(f"{len(result.cell_errors)} cell(s) of your notebook raised errors:")
        lines += [f"  {e}" for e in result.cell_errors[:10]]
    write_json_atomically(results, results_json(lesson, {v.id: v for v in result.verdicts}, "\n".join(lines), final=True))
    print(f"supercourse: {result.score:g}/{result.max_score:g} in {result.seconds:.1f} s (seed {result.seed}, "
          f"{time.time() - started:.1f} s in all)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.prairielearn",
                                     description="PrairieLearn's entrypoint for the course's grader.")
    parser.add_argument("action", choices=["run"])
    parser.add_argument("--grade", type=Path, default=Path("/grade"))
    args = parser.parse_args(argv)
    return run(args.grade)


if __name__ == "__main__":
    sys.exit(main())
