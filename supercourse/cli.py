"""The ``supercourse`` command line.

Subcommands come from modules that each expose ``register(subparsers)``,
which adds a parser and ``set_defaults(func=...)`` with ``func(args) -> int``
(the exit status):

* ``supercourse reproduce NAME`` (this module): train one of the paper's
  experiments (:mod:`supercourse.experiments`) and write its figures;
* ``supercourse doctor`` (:mod:`supercourse.doctor`): what torch sees, and a
  training throughput probe;
* ``supercourse bench`` (:mod:`supercourse.bench`), the autograder's
  commands (:mod:`autograder.command`) and ``supercourse start``
  (:mod:`autograder.workspace`), found by name through the entry-point group
  ``supercourse.commands`` (the library never imports the grader).

Help texts are for people, not Sphinx: :func:`plain` strips reST roles and
double backticks from every description and option help the modules give.

``supercourse --threads N COMMAND`` caps torch's CPU threads first: on a
machine that other jobs keep busy, ``--threads 1`` trains these small models
many times faster than torch's default (threads spin waiting for each other).

Bad arguments never give a traceback: the command prints one line,
``supercourse: error: <message>``, on stderr and exits with status 2.
Normal output goes to stdout through rich. Set ``SUPERCOURSE_DEBUG=1`` to get
the traceback of a ``ValueError``/``TypeError`` instead.
"""

from __future__ import annotations

import argparse
from importlib import metadata
import os
import re
import sys
from pathlib import Path
from typing import Callable, NoReturn, Sequence

from ._startup import skip_slow_optional_imports

__all__ = ["main", "build_parser", "register_reproduce", "plain", "COMMAND_GROUP", "USAGE_ERROR"]

PROG = "supercourse"
USAGE_ERROR = 2
SUMMARY_FILE = "summary.txt"
"""What ``reproduce`` writes beside the figures: everything it printed (the tables with their legends)."""
RECORD_WIDTH = 120
"""Columns of ``reproduce``'s output when it does not go to a terminal (a file, a pipe): wide enough for every table."""
COMMAND_GROUP = "supercourse.commands"
"""The entry-point group of the modules whose ``register(subparsers)`` adds commands (see pyproject.toml)."""


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        _fail(message, hint=f"see '{self.prog} --help'")
        raise SystemExit(USAGE_ERROR)


def _fail(message: str, hint: str | None = None) -> None:
    line = " ".join(str(message).split())  # one line, whatever the message
    if hint:
        line = f"{line} ({hint})"
    sys.stderr.write(f"{PROG}: error: {line}\n")
    sys.stderr.flush()


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {value}")
    return value


# --------------------------------------------------------------------------- reproduce


def register_reproduce(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``reproduce NAME [--out DIR] [--steps N] [--device D] [--seed S]``."""
    from .experiments import EXPERIMENTS

    listing = "\n".join(f"  {name:<16} {exp.DESCRIPTION}" for name, exp in EXPERIMENTS.items())
    parser = subparsers.add_parser(
        "reproduce",
        help="train one of the paper's experiments; print its tables, save its figures",
        description="Train one of the paper's experiments with the paper's recipe, print a table per model "
        f"(each column explained under it) and save in --out: the figures (PNG), everything printed "
        f"({SUMMARY_FILE}), the run's settings and tables as data (summary.json) and the trained weights "
        "(params.safetensors).",
        epilog=f"experiments:\n{listing}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", choices=list(EXPERIMENTS), metavar="NAME", help="one of: " + ", ".join(EXPERIMENTS))
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help=f"where the figures, {SUMMARY_FILE}, summary.json and params.safetensors go (default ./out/NAME)")
    parser.add_argument(
        "--steps", type=_positive_int, default=None, metavar="N",
        help="training steps (default: the experiment's, 10000 = the paper's recipe)",
    )
    parser.add_argument(
        "--device", default=None, metavar="D",
        help="cpu, cuda, cuda:N or mps (default: the GPU if torch can use one, else the CPU)",
    )
    parser.add_argument(
        "--seed", type=_nonnegative_int, default=None, metavar="S",
        help="random seed for the initial weights and the data (default 0)",
    )
    parser.set_defaults(func=_reproduce)
    return parser


def _reproduce(args: argparse.Namespace) -> int:
    from rich.console import Console

    from . import experiments
    from .devices import pick_device

    exp = experiments.get(args.name)
    device = pick_device(args.device)  # a ValueError names an unavailable device before any work
    out = args.out if args.out is not None else Path("out") / args.name
    steps = args.steps if args.steps is not None else exp.DEFAULT_STEPS
    seed = args.seed if args.seed is not None else exp.DEFAULT_SEED
    # What is printed (tables and their legends) is saved as summary.txt; off a terminal the tables get
    # room for all their columns rather than rich's default of 80.
    console = Console(record=True, width=None if sys.stdout.isatty() else RECORD_WIDTH)
    console.print(f"[bold]{args.name}[/]: {exp.DESCRIPTION}")
    from .training import show_progress

    with show_progress():  # experiments train quietly when called from code; here the learner waits, so show it
        result = exp.run(out_dir=out, steps=steps, device=device, seed=seed, console=console)
    summary = Path(out) / SUMMARY_FILE
    console.print("figures:")
    for path in result.figures.values():
        console.print(f"  {path}", soft_wrap=True)
    console.print(f"tables: {summary}", soft_wrap=True)
    console.print(f"done in {result.wall_time:.1f} s")
    summary.parent.mkdir(parents=True, exist_ok=True)
    console.save_text(str(summary))
    return 0


# --------------------------------------------------------------------------- parser


def _registrars() -> list[Callable[[argparse._SubParsersAction], object]]:
    """This module's commands, then every ``register(subparsers)`` installed under the entry-point group
    ``supercourse.commands`` (the grader's ``check``, ``lessons``, ``course`` and ``start``; ``bench``)."""
    from . import doctor

    found: list[Callable] = [register_reproduce, doctor.register]
    for entry in sorted(metadata.entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        register = _load_entry(entry)
        if callable(register):
            found.append(register)
    return found


def _load_entry(entry: "metadata.EntryPoint"):
    """An entry point's object; ``None`` (with a one-line warning when it is broken) if it cannot be loaded."""
    try:
        return entry.load()
    except ModuleNotFoundError as err:
        if err.name is not None and entry.value.split(":")[0].startswith(err.name):
            return None
        sys.stderr.write(f"{PROG}: warning: {entry.value} could not be imported ({err}); its commands are unavailable\n")
    except Exception as err:  # a broken optional module must not take the whole CLI down
        sys.stderr.write(
            f"{PROG}: warning: {entry.value} could not be imported ({type(err).__name__}: {err}); "
            "its commands are unavailable\n"
        )
    return None


_ROLE = re.compile(r":(?:py:)?(?:func|meth|mod|class|attr|data|obj|exc|const):`~?([^`<]+?)(?:\s*<[^>]*>)?`")
_LITERAL = re.compile(r"``([^`]+)``")


def plain(text: str | None) -> str | None:
    """``text`` without Sphinx markup: ``:func:`supercourse.train` `` -> ``supercourse.train``, double backticks dropped."""
    if text is None:
        return None
    return _LITERAL.sub(r"\1", _ROLE.sub(r"\1", text))


def _plain_help(subparsers: argparse._SubParsersAction) -> None:
    for action in subparsers._choices_actions:
        action.help = plain(action.help)
    for parser in subparsers.choices.values():
        parser.description, parser.epilog = plain(parser.description), plain(parser.epilog)
        for action in parser._actions:
            if isinstance(action.help, str):
                action.help = plain(action.help)


def build_parser() -> argparse.ArgumentParser:
    """The ``supercourse`` parser with every available subcommand registered."""
    from . import __version__

    parser = _Parser(
        prog=PROG,
        description="Toy Models of Superposition, the course. Learners: 'supercourse start' copies the lessons "
        "into a folder of your own, 'supercourse check' grades them, 'supercourse doctor' checks this "
        "machine, 'supercourse reproduce' trains the paper's experiments. Add --help after a command for "
        "its options.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "--threads", type=_positive_int, default=None, metavar="N",
        help="CPU threads torch may use (default: torch's choice); 1 is much faster on a busy machine",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for register in _registrars():
        register(subparsers)
    _plain_help(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``supercourse`` command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    skip_slow_optional_imports()
    try:
        parser = build_parser()
        args = parser.parse_args(list(argv) if argv is not None else None)
        if args.threads is not None:
            import torch

            torch.set_num_threads(args.threads)
        return int(args.func(args) or 0)
    except SystemExit as exit_:
        if isinstance(exit_.code, str):  # SystemExit("message") from a command
            _fail(exit_.code)
            return USAGE_ERROR
        return int(exit_.code or 0)
    except (ValueError, TypeError) as err:
        if os.environ.get("SUPERCOURSE_DEBUG"):
            raise
        _fail(str(err))
        return USAGE_ERROR
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
