"""``supercourse doctor``: what torch sees on this machine, and how fast it trains.

Prints a table: the Python and torch versions, whether torch can use an NVIDIA
GPU (CUDA) or an Apple GPU (MPS), the device training will use, the CPU
threads, the machine's load (with a warning when other jobs hold every core),
what to do when torch and the machine do not match (a CUDA build with no GPU, a
CPU build with a GPU present), and a short speed test of every way the lessons
train: the basic-results model on the fast path (lessons 01-05, 07), lesson
06's correlated sets and lesson 08's neuron model (hand-written gradients on
their own data), lesson 08's model with the learner's own forward (autograd)
and lesson 09's SAE; and whether torch's CPU threads slow a small model down
here (they contend for cores on a busy machine).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["Probe", "PathProbe", "ThreadCheck", "environment", "advice", "nvidia_gpu_present", "probe_throughput",
           "probe_paths", "thread_check", "overloaded", "register", "run", "CPU_WHEELS", "CUDA_WHEELS", "LESSON_PATHS"]

CPU_WHEELS = "https://download.pytorch.org/whl/cpu"
"""PyTorch's index of CPU-only wheels (about 200 MB instead of several GB)."""
CUDA_WHEELS = "https://pytorch.org/get-started/locally/"
"""Where PyTorch says which CUDA build fits a machine's driver."""

PROBE_SECONDS = 4.0
"""The speed test's default length: half on the fast path, the rest shared by the lessons' other paths."""
_WARMUP_STEPS = 20
_MIN_CHUNK = 10

LESSON_PATHS: dict[str, str] = {
    "L06": "lesson 06, correlated sets (own data, hand-written gradient)",
    "L08": "lesson 08, neuron model (hand-written gradient)",
    "L08F": "lesson 08, your own forward (autograd)",
    "L09": "lesson 09, SAE (train_sae)",
}
"""The :mod:`supercourse.bench` workloads the speed test runs besides the fast path, and what each stands for."""

CONTENTION_RATIO = 1.5
"""Torch's threads "contend" when a small step runs this many times slower on them than on one thread."""


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
    rows.append(("training will use", str(pick_device())))
    rows.append(("CPU threads (torch / cores)", f"{torch.get_num_threads()} / {os.cpu_count()}"))
    for line in advice(torch.version.cuda, torch.cuda.is_available(), nvidia_gpu_present(), _mps_available()):
        rows.append(("what to do", line))
    clone = Path.cwd() / "supercourse"
    if (clone / "supercourse" / "__init__.py").is_file():
        rows.append((
            "what to do",
            f"You are in the folder above the clone ({clone}): Python or Jupyter started here imports that "
            "folder, not the library. Start them inside the clone or in your workspace (supercourse start).",
        ))
    rows.append(("grading sandbox", grading_sandbox()))
    if hasattr(os, "getloadavg"):
        load, cores = os.getloadavg()[0], os.cpu_count() or 1
        busy = " (busy: other jobs compete for the CPU, timings will be slow)" if load > cores else ""
        rows.append(("load average (1 min)", f"{load:.2f} on {cores} cores{busy}"))
        if overloaded(load, cores):
            rows.append(("warning", overload_warning(load, cores)))
    return rows


def overloaded(load: float, cores: int) -> bool:
    """Whether a load average means other jobs hold every core (more runnable jobs than cores)."""
    return load > cores


def overload_warning(load: float, cores: int) -> str:
    return (
        f"this machine is overloaded: load average {load:.1f} on {cores} cores, so other jobs hold every core. "
        "Training runs several times slower than the lesson times say; close other programs (or wait) for the "
        "long cells. supercourse's trainers run on one thread when torch's threads are slower, which suffers least."
    )


def grading_sandbox() -> str:
    """Whether grading here runs the learner's code under bubblewrap, and what to do if not.

    The answer comes from the grader (the entry point ``grading-sandbox`` of the group ``supercourse.doctor``):
    the library never imports it.
    """
    from importlib import metadata

    for entry in metadata.entry_points(group="supercourse.doctor"):
        if entry.name == "grading-sandbox":
            try:
                return str(entry.load()())
            except Exception as err:  # noqa: BLE001 - doctor reports; it never stops
                return f"unknown ({type(err).__name__}: {err})"
    return "unknown (the autograder package is not installed)"


def nvidia_gpu_present() -> bool:
    """Whether this machine has an NVIDIA GPU and driver, whatever torch was built for.

    Looks for the driver (``/proc/driver/nvidia/version``, ``/dev/nvidia0``) or
    ``nvidia-smi`` on the ``PATH``; does not need a CUDA build of torch.
    """
    import shutil

    return (
        Path("/proc/driver/nvidia/version").exists()
        or Path("/dev/nvidia0").exists()
        or shutil.which("nvidia-smi") is not None
    )


def advice(cuda_build: str | None, cuda_available: bool, gpu_present: bool, mps_available: bool = False) -> list[str]:
    """What to do about this machine's torch, in plain words (one string per piece of advice).

    Args:
        cuda_build: ``torch.version.cuda`` (``None`` for a CPU-only build).
        cuda_available: ``torch.cuda.is_available()``.
        gpu_present: :func:`nvidia_gpu_present` (an NVIDIA driver is installed).
        mps_available: torch can use an Apple GPU.
    """
    reinstall = "pip uninstall -y torch && pip install torch --index-url {}"
    if cuda_available:
        return ["torch uses the NVIDIA GPU: training picks it by itself, and SCALE = \"paper\" is practical."]
    if mps_available:
        return ["torch uses the Apple GPU (MPS): training picks it by itself."]
    if cuda_build is not None and not gpu_present:
        return [
            f"This torch is built for CUDA {cuda_build} (several GB of GPU libraries) but this machine has no "
            "NVIDIA GPU, so everything runs on the CPU. A CPU-only build trains just as fast here and is far "
            f"smaller: {reinstall.format(CPU_WHEELS)}"
        ]
    if cuda_build is not None and gpu_present:
        return [
            f"An NVIDIA GPU is here and torch is built for CUDA {cuda_build}, but torch cannot use the GPU: "
            "usually the driver is older than that CUDA version. Run nvidia-smi to see the driver's CUDA "
            f"version, then install the torch build for it (see {CUDA_WHEELS}), or update the driver."
        ]
    if gpu_present:
        return [
            "An NVIDIA GPU is here but this torch is the CPU-only build, so the GPU sits idle. Install a CUDA "
            f"build that fits your driver (nvidia-smi shows its CUDA version; commands at {CUDA_WHEELS}), e.g. "
            + reinstall.format("https://download.pytorch.org/whl/cu126")
        ]
    return ["CPU-only torch on a machine without a GPU: the right build. Lessons at SCALE = \"cpu\" take minutes."]


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


@dataclass(frozen=True)
class PathProbe:
    """The speed of one way the lessons train (a :mod:`supercourse.bench` workload), measured by :func:`probe_paths`."""

    workload: str
    what: str
    path: str
    n_instances: int
    steps: int
    seconds: float
    steps_per_second: float
    threads: int


def _train_for(model, workload, seconds: float, device) -> tuple[int, float, str, int]:
    """Train ``model`` in chunks for about ``seconds``; ``(steps, seconds, gradient path, threads)``."""
    from .sae import SparseAutoencoder, train_sae
    from .training import train

    if isinstance(model, SparseAutoencoder):
        from .bench import _sae_data

        data = _sae_data()

        def run_chunk(n: int, seed: int):
            return train_sae(model, data, steps=n, batch_size=workload.batch_size, lr=workload.lr, seed=seed,
                             progress=False, log_every=max(1, n))
    else:
        def run_chunk(n: int, seed: int):
            return train(model, steps=n, batch_size=workload.batch_size, lr=workload.lr, seed=seed, device=device,
                         progress=False, log_every=max(1, n))

    first = run_chunk(3, 0)  # warm-up: buffers, kernels
    rate = 3 / max(first.wall_time, 1e-6)
    steps, elapsed, history = 0, 0.0, first
    while elapsed < seconds:
        chunk = max(3, int(rate * min(seconds - elapsed, seconds / 2)))
        history = run_chunk(chunk, steps + 1)
        elapsed += history.wall_time
        steps += chunk
        rate = steps / elapsed
    return steps, elapsed, history.extra["path"], history.extra["threads"]


def probe_paths(seconds: float = PROBE_SECONDS / 2, device: str | torch.device | None = None) -> list[PathProbe]:
    """Train each of :data:`LESSON_PATHS` at its lesson size for about ``seconds / len(LESSON_PATHS)`` each.

    The SAE trains on the CPU (its trainer uses the SAE's own device).
    """
    from . import bench
    from .devices import pick_device

    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0 or math.isinf(seconds):
        raise ValueError(f"seconds must be a positive number, got {seconds!r}")
    dev = pick_device(device)
    out = []
    for name, what in LESSON_PATHS.items():
        workload = bench.WORKLOADS[name]
        model = bench.make_model(name, seed=0)
        model.to(dev if workload.kind != "sae" else "cpu")
        steps, elapsed, path, threads = _train_for(model, workload, seconds / len(LESSON_PATHS), dev)
        k = model.n_instances
        out.append(PathProbe(name, what, path, k, steps, elapsed, steps / elapsed, threads))
    return out


@dataclass(frozen=True)
class ThreadCheck:
    """A small autograd step timed on torch's threads and on one (:func:`thread_check`)."""

    threads: int
    many_steps_per_second: float
    one_steps_per_second: float

    @property
    def slowdown(self) -> float:
        """How many times slower the step runs on torch's threads than on one."""
        return self.one_steps_per_second / self.many_steps_per_second

    @property
    def contends(self) -> bool:
        return self.threads > 1 and self.slowdown >= CONTENTION_RATIO


def thread_check(seconds: float = 0.5) -> ThreadCheck:
    """Time the plain loop on a small model (the bench's G1) for ``seconds`` on torch's threads, then on one.

    On a quiet machine the two are close; where other jobs hold the cores, torch's
    threads wait for each other on every operation and the small step runs many
    times slower (the reason :func:`supercourse.train` trains small models on one thread).
    """
    from . import bench
    from .reference_loop import reference_train
    from .threads import torch_threads

    threads = torch.get_num_threads()
    rates = []
    for n in (threads, 1):
        model = bench.make_model("G1", seed=0)
        with torch_threads(n):
            reference_train(model, 2, batch_size=bench.BATCH_SIZE)
            steps, elapsed = 0, 0.0
            chunk = 2
            while elapsed < seconds / 2:
                start = time.perf_counter()
                reference_train(model, chunk, batch_size=bench.BATCH_SIZE, log_every=chunk)
                elapsed += time.perf_counter() - start
                steps += chunk
                chunk = min(2 * chunk, 200)
        rates.append(steps / elapsed)
    return ThreadCheck(threads, rates[0], rates[1])


def _table(rows: list[tuple[str, str]], probe: Probe | None, paths: list[PathProbe] | None = None,
           threads: ThreadCheck | None = None):
    from rich.table import Table

    from .experiments import basic_results

    table = Table(title="supercourse doctor", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for what, value in rows:
        table.add_row(what, value, style="yellow" if what == "warning" else None)
    if probe is not None:
        table.add_section()
        table.add_row(
            "throughput probe",
            f"fast path (lessons 01-05, 07): {probe.n_instances} instances, n={basic_results.N_FEATURES}, "
            f"m={basic_results.N_HIDDEN}, batch 1024, on {probe.device}: {probe.steps} steps in {probe.seconds:.2f} s",
        )
        table.add_row("steps/s", f"{probe.steps_per_second:,.0f}")
        table.add_row("instance-steps/s", f"{probe.instance_steps_per_second:,.0f}")
        estimate = 2 * basic_results.DEFAULT_STEPS / probe.steps_per_second
        table.add_row("reproduce basic-results (est.)", f"~{estimate:.0f} s of training")
    for p in paths or []:
        table.add_row(
            p.what,
            f"{p.steps_per_second:,.0f} steps/s ({p.n_instances} instances, {p.path}, {p.threads} thread"
            f"{'s' if p.threads != 1 else ''})",
        )
    if threads is not None and threads.threads > 1:
        table.add_section()
        line = (f"a small model's plain loop: {threads.many_steps_per_second:,.0f} steps/s on torch's "
                f"{threads.threads} threads, {threads.one_steps_per_second:,.0f} on one")
        if threads.contends:
            table.add_row("torch threads", line)
            table.add_row(
                "warning",
                f"torch's threads contend for the cores here: small models run {threads.slowdown:.0f}x slower on "
                f"{threads.threads} threads. supercourse.train and train_sae switch to one thread when it is faster; "
                "in a loop of your own, call torch.set_num_threads(1) first (or run supercourse --threads 1 ...).",
                style="yellow",
            )
        else:
            table.add_row("torch threads", line + " (no contention)")
    return table


def run(args: argparse.Namespace) -> int:
    """The ``doctor`` command: print the table; exit status 0."""
    from rich.console import Console

    console = Console()
    rows = environment()
    probe = paths = threads = None
    if args.seconds != 0:
        probe = probe_throughput(args.seconds / 2, args.device)
        paths = probe_paths(args.seconds / 2, args.device)
        threads = thread_check(min(1.0, args.seconds / 4)) if torch.get_num_threads() > 1 else None
    console.print(_table(rows, probe, paths, threads))
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
        help="check this machine: torch version, GPU, what to do, training speed",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument(
        "--seconds", type=_seconds, default=PROBE_SECONDS, metavar="S",
        help=f"how long the speed tests train, in seconds (default {PROBE_SECONDS:g}; 0 skips them)",
    )
    parser.add_argument(
        "--device", default=None, metavar="D",
        help="cpu, cuda, cuda:N or mps: where to run the speed test (default: the GPU if torch can use one, "
        "else the CPU)",
    )
    parser.set_defaults(func=run)
    return parser
