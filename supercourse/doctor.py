"""``supercourse doctor``: what torch sees on this machine, and how fast it trains.

Prints, as a rich table: Python and torch versions, CUDA and MPS availability,
the device :func:`supercourse.pick_device` chooses, CPU threads, and a short
throughput probe: the basic-results model (7 instances, n=20, m=5, batch 1024)
trained with :func:`supercourse.train` for about two seconds.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
from dataclasses import dataclass

import torch

__all__ = ["Probe", "environment", "probe_throughput", "register", "run"]

PROBE_SECONDS = 2.0
_WARMUP_STEPS = 20
_MIN_CHUNK = 10


@dataclass(frozen=True)
class Probe:
    """The result of :func:`probe_throughput`."""

    device: str
    n_instances: int
    steps: int
    seconds: float
    steps_per_second: float
    instance_steps_per_second: float


def environment() -> list[tuple[str, str]]:
    """``[(what, value)]``: versions, accelerators, the chosen device and CPU threads."""
    from . import __version__
    from .devices import _mps_available, pick_device

    rows = [
        ("python", platform.python_version()),
        ("supercourse", __version__),
        ("torch", torch.__version__),
    ]
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        rows.append(("CUDA", f"yes (CUDA {torch.version.cuda}): {names}"))
    else:
        built = "torch built without CUDA" if torch.version.cuda is None else f"torch built for CUDA {torch.version.cuda}"
        rows.append(("CUDA", f"no ({built})"))
    rows.append(("MPS (Apple GPU)", "yes" if _mps_available() else "no"))
    rows.append(("device chosen by pick_device()", str(pick_device())))
    rows.append(("CPU threads (torch / cores)", f"{torch.get_num_threads()} / {os.cpu_count()}"))
    if hasattr(os, "getloadavg"):
        load = os.getloadavg()[0]
        busy = " (busy: other jobs compete for the CPU, timings will be slow)" if load > (os.cpu_count() or 1) else ""
        rows.append(("load average (1 min)", f"{load:.2f}{busy}"))
    return rows


def probe_throughput(seconds: float = PROBE_SECONDS, device: str | torch.device | None = None) -> Probe:
    """Train the basic-results model for about ``seconds`` and measure its speed.

    Raises ``ValueError`` for ``seconds <= 0`` or an unavailable ``device``.
    """
    from .devices import pick_device
    from .experiments import basic_results
    from .training import train

    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0 or math.isinf(seconds):
        raise ValueError(f"seconds must be a positive number, got {seconds!r}")
    dev = pick_device(device)
    model = basic_results.make_model("relu", seed=0)
    rate = train(model, steps=_WARMUP_STEPS, seed=0, device=dev, progress=False).steps_per_second
    # Chunks of at most a quarter of the budget, sized by the running rate, so a
    # machine that slows down (other jobs, thermal limits) cannot stretch the probe.
    steps, elapsed = 0, 0.0
    while elapsed < seconds:
        chunk = max(_MIN_CHUNK, int(rate * min(seconds - elapsed, seconds / 4)))
        elapsed += train(model, steps=chunk, seed=steps + 1, device=dev, progress=False).wall_time
        steps += chunk
        rate = steps / elapsed
    return Probe(
        device=str(dev),
        n_instances=model.n_instances,
        steps=steps,
        seconds=elapsed,
        steps_per_second=rate,
        instance_steps_per_second=rate * model.n_instances,
    )


def _table(rows: list[tuple[str, str]], probe: Probe | None):
    from rich.table import Table

    from .experiments import basic_results

    table = Table(title="supercourse doctor", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for what, value in rows:
        table.add_row(what, value)
    if probe is not None:
        table.add_section()
        table.add_row(
            "throughput probe",
            f"{probe.n_instances} instances, n={basic_results.N_FEATURES}, m={basic_results.N_HIDDEN}, "
            f"batch 1024, on {probe.device}: {probe.steps} steps in {probe.seconds:.2f} s",
        )
        table.add_row("steps/s", f"{probe.steps_per_second:,.0f}")
        table.add_row("instance-steps/s", f"{probe.instance_steps_per_second:,.0f}")
        estimate = 2 * basic_results.DEFAULT_STEPS / probe.steps_per_second
        table.add_row("reproduce basic-results (est.)", f"~{estimate:.0f} s of training")
    return table


def run(args: argparse.Namespace) -> int:
    """The ``doctor`` command: print the table; exit status 0."""
    from rich.console import Console

    console = Console()
    rows = environment()
    probe = None if args.seconds == 0 else probe_throughput(args.seconds, args.device)
    console.print(_table(rows, probe))
    return 0


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not (value >= 0) or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be >= 0 seconds, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``doctor [--seconds S] [--device D]`` to the ``supercourse`` command line."""
    parser = subparsers.add_parser(
        "doctor",
        help="show what torch sees here and measure training throughput",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument(
        "--seconds", type=_seconds, default=PROBE_SECONDS, metavar="S",
        help=f"length of the throughput probe (default {PROBE_SECONDS:g}; 0 skips it)",
    )
    parser.add_argument("--device", default=None, metavar="D", help="device to probe (default: pick_device()'s choice)")
    parser.set_defaults(func=run)
    return parser
