"""The autograder's ``supercourse`` subcommands: ``check``, ``lessons`` and ``course``."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

__all__ = ["register", "init_course"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``check``, ``lessons`` and ``course`` to the ``supercourse`` command."""
    p = subparsers.add_parser(
        "check",
        help="grade a lesson notebook, or every lesson in your workspace, the way the instructor will",
        description="Run a lesson notebook from top to bottom in a fresh sandboxed process (its experiments shrunk to "
        "seconds) and check every exercise: a table of exercises, points and what is wrong. Given a folder "
        "(your workspace), grade every lesson in it: a progress table per lesson and the total. "
        "Exit status 0 only when every exercise passes.",
    )
    p.add_argument(
        "notebook", type=Path, metavar="NOTEBOOK_OR_FOLDER",
        help="a lesson notebook (.ipynb), or a folder of lessons such as your workspace: then every lesson "
        "in it is graded and a progress table printed",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    p.add_argument("--timeout", type=int, default=None, help="seconds each cell may run (default 60)")
    p.add_argument("--seed", default=None, metavar="HEX",
                   help="a notebook: draw the check inputs from this secret (the `seed` a grading report shows), "
                   "to reproduce a grade exactly; default: a fresh secret each time")
    p.set_defaults(func=_check)

    p = subparsers.add_parser(
        "lessons",
        help="for course authors: make lessons/ from solutions/, check they agree, redraw figures",
        description="For course authors, not learners (learners work in a copy: supercourse start). "
        "build: make the learner notebooks in lessons/ from the instructor notebooks in solutions/ "
        "(answers replaced by stubs, outputs cleared); it refuses to overwrite a notebook that holds "
        "someone's work (cells run, answers written) unless you add --force. "
        "verify: exit 1 if lessons/ differs from what build would write. "
        "figures: redraw each lesson's expected figures in solutions/<lesson>/figures/. "
        "new NN-slug: start a lesson: one folder solutions/NN-slug/ with a notebook, checks, mistakes, "
        "alternatives, a figure maker and tests, whose example exercise already passes the course's proofs.",
    )
    p.add_argument("action", choices=["build", "verify", "figures", "new"])
    p.add_argument("lesson", nargs="*", help="lesson names such as 01-sparse-features (default: all)")
    p.add_argument("--force", action="store_true", help="build: overwrite notebooks even if they hold work")
    p.add_argument("--title", default=None, help="new: the lesson's title (default: from its slug)")
    p.set_defaults(func=_lessons)

    p = subparsers.add_parser(
        "course",
        help="for instructors: set up a course folder, grade a class in parallel, build Gradescope and PrairieLearn graders",
        description="For instructors (needs the instructor extra: pip install -e \".[instructor]\"). "
        "init DIR: make DIR an nbgrader course folder (its nbgrader_config.py, and every lesson's "
        "instructor notebook in DIR/source/); then use nbgrader's own commands in DIR "
        "(generate_assignment, autograde, generate_feedback, export). "
        "grade LESSON: grade the lesson's submissions in the course folder (--course, default: here) in parallel, "
        "--jobs sandboxed workers at once (default: every core), with a live progress line, into nbgrader's "
        "gradebook (generate_feedback and export then work unchanged); a rerun grades only new or changed "
        "submissions. "
        "gradescope LESSON: write the lesson's Gradescope autograder (a zip to upload). "
        "prairielearn LESSON: write the lesson's PrairieLearn external grader (an image folder and a question). "
        "bench: time the grading of simulated lesson-01 classes (1 and N workers, honest and mixed) and what the "
        "sandbox costs per submission.",
    )
    p.add_argument("action", choices=["init", "grade", "gradescope", "prairielearn", "bench"])
    p.add_argument("target", nargs="?", metavar="DIR_OR_LESSON",
                   help="init: the course folder (keep it outside the repository); grade, gradescope, prairielearn: "
                   "the lesson, e.g. 01-sparse-features")
    p.add_argument("--course", type=Path, default=Path("."), help="grade: the course folder (default: here)")
    p.add_argument("--jobs", type=int, default=None, help="grade, bench: submissions graded at once (default: all cores)")
    p.add_argument("--force", action="store_true", help="grade: regrade unchanged submissions too")
    p.add_argument("--student", default="*", metavar="GLOB", help="grade: only these students (default: all)")
    p.add_argument("-o", "--option", action="append", default=[], metavar="CLASS.TRAIT=VALUE",
                   help="grade: an nbgrader option, as `nbgrader autograde --CLASS.TRAIT=VALUE` takes it, e.g. "
                   "-o SandboxedGrade.cell_seconds=30 or -o CourseDirectory.db_url=postgresql+psycopg://...")
    p.add_argument("--out", type=Path, default=None,
                   help="gradescope: the zip (default LESSON-gradescope.zip); prairielearn: the folder (default "
                   "LESSON-prairielearn/); bench: JSON results (default bench-results/grading-throughput.json)")
    p.add_argument("--allow-unsandboxed", action="store_true",
                   help="gradescope, prairielearn: grade even where the container cannot run bubblewrap (the "
                   "container is then the only boundary: the student's code could forge its own grade)")
    p.add_argument("--students", type=int, default=None,
                   help="bench: submissions in each simulated class (default 12 honest, 9 mixed)")
    p.add_argument("--rounds", type=int, default=2,
                   help="bench: alternating rounds of the honest class (1 and N workers) and of one honest "
                   "submission per mode")
    p.set_defaults(func=_course)


def _check(args: argparse.Namespace) -> int:
    from .limits import DEFAULT_LIMITS
    from .toolkit.randomness import parse_secret

    if args.timeout is not None and args.timeout <= 0:
        raise ValueError(f"--timeout must be a positive number of seconds, got {args.timeout}")
    if args.notebook.is_dir():
        from .workspace import check_folder_command

        return check_folder_command(args)
    if not args.notebook.exists():  # before importing the notebook machinery (seconds)
        raise ValueError(f"no such file or folder: {args.notebook}")
    if args.notebook.suffix != ".ipynb":
        raise ValueError(f"expected a .ipynb notebook, got {args.notebook}")
    from .notebook import check_notebook  # nbformat, nbclient: seconds to import, so after the checks above

    from .sandbox import GraderFault

    limits = DEFAULT_LIMITS if args.timeout is None else DEFAULT_LIMITS.with_(cell_seconds=float(args.timeout))
    secret = parse_secret(args.seed) if args.seed else None
    try:
        report = check_notebook(args.notebook, limits=limits, secret=secret)
    except (FileNotFoundError, KeyError) as err:
        raise ValueError(str(err).strip("'\"")) from err
    except GraderFault as err:
        Console(stderr=True).print(f"[red]could not grade (not your code's fault):[/] {err}")
        return 2
    # Logs and pipes get a wide table, so messages are not folded mid-phrase.
    console = Console(soft_wrap=False, width=None if sys.stdout.isatty() else 160)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        table = Table(title=f"{report.lesson}: {args.notebook}")
        table.add_column("exercise", style="bold")
        table.add_column("points", justify="right")
        table.add_column("verdict")
        table.add_column("message", overflow="fold")
        for e in report.exercises:
            verdict = "[green]pass[/]" if e["passed"] else ("[yellow]partial[/]" if e["points"] else "[red]fail[/]")
            table.add_row(e["name"], f"{e['points']:g}/{e['max_points']:g}", verdict, e["message"])
        table.add_section()
        table.add_row("total", f"{report.score:g}/{report.max_score:g}", "", "")
        console.print(table)
        console.print(f"[dim]check inputs drawn from seed {report.seed} (reproduce with --seed {report.seed})[/]")
        if report.cell_errors:
            console.print(f"[dim]{len(report.cell_errors)} cell(s) raised errors; first: {report.cell_errors[0]}[/]")
        if not report.sandboxed:
            console.print(
                "[yellow]Not sandboxed:[/] bubblewrap is not available here, so your code ran in a separate process "
                "but with your own permissions. The score is the same; an instructor's grading runs it sandboxed."
            )
    return 0 if report.passed else 1


def _lessons(args: argparse.Namespace) -> int:
    from . import build

    console = Console()
    if args.action == "new":
        from .scaffold import new_lesson

        if len(args.lesson) != 1:
            raise ValueError("lessons new needs one lesson folder name, e.g. supercourse lessons new 13-feature-splitting")
        folder = new_lesson(args.lesson[0], args.title)
        console.print(f"made {folder} (and its release in lessons/): edit its notebook, checks.py, mistakes.py, "
                      "alternatives.py and figures.py; python -m pytest tests/test_lesson_proofs.py -k "
                      f"{args.lesson[0].split('-', 1)[0]} proves its checks")
        return 0
    slugs = args.lesson or None
    known = build.lesson_slugs()
    for slug in args.lesson:
        if slug not in known:
            raise ValueError(f"unknown lesson {slug!r}; lessons are {', '.join(known)}")
    if args.action == "build":
        for path in build.build_lessons(slugs, force=args.force):
            console.print(f"built {path}")
        return 0
    if args.action == "figures":
        for path in build.make_figures(slugs):
            console.print(f"drew {path}")
        return 0
    problems = build.out_of_sync(slugs)
    for line in problems:
        console.print(f"[red]{line}[/]")
    if not problems:
        console.print("lessons/ is in sync with solutions/")
    return 1 if problems else 0


_COURSE_CONFIG = """\
# nbgrader configuration for a supercourse course directory (made by `supercourse course init`).
# Submissions go in submitted/<student>/<lesson>/, the gradebook is gradebook.db here.
from autograder.nbgrader_settings import configure

configure(get_config(), root={root!r})  # noqa: F821
"""


def init_course(directory: Path) -> Path:
    """Make ``directory`` an nbgrader course: its config, and the lessons' sources in ``source/``."""
    from .lessons import all_lessons
    from .nbgrader_settings import NOT_RELEASED

    directory = directory.resolve()
    if (directory / "nbgrader_config.py").exists():
        raise ValueError(f"{directory} already has an nbgrader_config.py; choose an empty directory")
    (directory / "source").mkdir(parents=True, exist_ok=True)
    for lesson in all_lessons():
        shutil.copytree(lesson.folder, directory / "source" / lesson.slug, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(*NOT_RELEASED))
    (directory / "nbgrader_config.py").write_text(_COURSE_CONFIG.format(root=str(directory)), encoding="utf-8")
    return directory


def _course(args: argparse.Namespace) -> int:
    if args.action == "bench":
        from .throughput import main

        result = main(args.students, args.jobs, args.rounds, args.out)
        return 0 if result.ok else 1
    if args.target is None:
        example = "DIR" if args.action == "init" else "LESSON"
        raise ValueError(f"course {args.action} needs {example}: supercourse course {args.action} {example}")
    if args.action == "init":
        path = init_course(Path(args.target))
        Console().print(
            f"course directory ready: {path}\n"
            f"next: cd {path} && nbgrader generate_assignment 01-sparse-features"
        )
        return 0
    from .lessons import slugs

    if args.target not in slugs():
        raise ValueError(f"unknown lesson {args.target!r}; lessons are {', '.join(slugs())}")
    if args.action == "grade":
        return _grade(args)
    if args.action == "gradescope":
        from .gradescope import build_zip

        out = build_zip(args.target, args.out or Path(f"{args.target}-gradescope.zip"),
                        allow_unsandboxed=args.allow_unsandboxed)
        Console().print(f"wrote {out}: upload it as the assignment's autograder (Configure Autograder, zip file)")
        return 0
    from .prairielearn import build_grader

    out = build_grader(args.target, args.out or Path(f"{args.target}-prairielearn"),
                       allow_unsandboxed=args.allow_unsandboxed)
    Console().print(f"wrote {out}: build and push its image/, copy its question/ into your course (see its README.md)")
    return 0


def _grade(args: argparse.Namespace) -> int:
    from .classgrade import grade_class

    argv = []
    for option in args.option:
        if "=" not in option or "." not in option.split("=", 1)[0]:
            raise ValueError(f"--option must be CLASS.TRAIT=VALUE (e.g. SandboxedGrade.cell_seconds=30), got {option!r}")
        argv.append("--" + option.lstrip("-"))
    console = Console(stderr=True)
    try:
        result = grade_class(args.course, args.target, jobs=args.jobs, force=args.force, students=args.student,
                             argv=argv, console=console)
    except SystemExit as stop:
        console.print(f"[red]{stop.code}[/]")
        return 2
    console.print(
        f"{args.target}: graded {len(result.graded)} submission(s) in {result.seconds:.0f} s "
        f"({result.per_minute:.1f} per minute, {result.jobs} at a time; {len(result.blank)} blank, graded without "
        f"a worker); {len(result.skipped)} unchanged since their last grading, not regraded (--force regrades them)"
    )
    if result.faults:
        console.print(f"[yellow]{result.faults} exercise(s) could not be graded normally[/]: their students lost only "
                      "those points; see grading-report.jsonl (kind \"fault\") for student, exercise and reason")
    if result.failed:
        console.print(f"[red]could not grade {', '.join(result.failed)}[/] (see the errors above)")
        return 1
    return 0
