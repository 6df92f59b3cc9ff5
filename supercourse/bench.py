"""``supercourse bench``: the fast trainer against the straightforward one.

One run measures, on the same workloads and the same device, the plain
training loop a learner would write first (:func:`baseline_train`, the
reference loop of :mod:`supercourse.reference_loop`) and
:func:`supercourse.train`, and reports steps per second, instance-steps per
second, wall time, the speed-up and peak memory.

Workloads (batch 1024, AdamW lr 1e-3, weight decay 0.01, ReLU output model):

* **W1** basic results: n=20, m=5, 7 instances (densities 1 ... 0.001, importance ``0.7^i``).
* **W2** geometry sweep: n=400, m=30, 20 instances (densities 1 ... 0.001, uniform importance).
* **W3** phase-diagram grid: n=2, m=1, 4,000 instances (40 densities x 100 relative importances).
* **W4** scaling: n=20, m=5 from 1 to 10,000 instances: how instance-steps/s grows.

Each (workload, trainer) pair is warmed up, then timed over a time budget in
several rounds that alternate the two trainers, so that both see the same load
on a shared machine; the speed-up is the median of the per-round ratios. GPU
timings synchronise the device. Peak memory is
``torch.cuda.max_memory_allocated`` above what was allocated before the run on
a GPU; on the CPU it is the rise of the process's peak resident set size over
its resident size before the run (Linux resets the peak through
``/proc/self/clear_refs``; elsewhere the ``ru_maxrss`` rise is a lower bound).

Results go to a table on the terminal and a JSON file
(``bench-results/bench-<device>.json`` by default). ``--quick`` runs every
workload for a couple of steps (W4 up to 100 instances): a check of the
harness, not a measurement.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from .model import ToyModel
from .reference_loop import reference_train
from .training import train

__all__ = [
    "WORKLOADS",
    "TARGETS",
    "Workload",
    "baseline_train",
    "make_model",
    "measure",
    "run_benchmark",
    "register",
    "add_arguments",
    "run",
    "main",
]

BATCH_SIZE = 1024
LR = 1e-3
WEIGHT_DECAY = 0.01


# ------------------------------------------------------------------ workloads


def _log_densities(k: int, lowest: float = 1e-3) -> torch.Tensor:
    """``k`` densities log-spaced from 1 down to ``lowest`` (just 1 for ``k = 1``)."""
    return torch.logspace(0.0, math.log10(lowest), k) if k > 1 else torch.ones(1)


def _decaying_importance(n: int, decay: float = 0.7) -> torch.Tensor:
    return decay ** torch.arange(n, dtype=torch.float32)


def _phase_grid(k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """W3's grid: 40 densities (0.01 ... 1) x k/40 relative importances (0.1 ... 10) of feature 2."""
    n_dens = 40 if k % 40 == 0 else 1
    dens = torch.logspace(-2.0, 0.0, n_dens) if n_dens > 1 else torch.full((1,), 0.1)
    rel = torch.logspace(-1.0, 1.0, k // n_dens)
    p = dens.repeat_interleave(k // n_dens)
    r = rel.repeat(n_dens)
    importance = torch.stack([torch.ones(k), r], dim=1)
    return p, importance


@dataclasses.dataclass(frozen=True)
class Workload:
    """A training problem: the model's shape and data, at one or more instance counts."""

    name: str
    title: str
    n_features: int
    n_hidden: int
    instances: tuple[int, ...]
    quick_instances: tuple[int, ...]
    data: Callable[[int], tuple[torch.Tensor, torch.Tensor]]  # k -> (feature_probability, importance)

    def describe(self) -> str:
        k = "/".join(str(i) for i in self.instances)
        return f"{self.title}: n={self.n_features}, m={self.n_hidden}, {k} instance(s), batch {BATCH_SIZE}"


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("W1", "basic results", 20, 5, (7,), (7,), lambda k: (_log_densities(k), _decaying_importance(20))),
        Workload("W2", "geometry sweep", 400, 30, (20,), (20,), lambda k: (_log_densities(k), torch.ones(400))),
        Workload("W3", "phase-diagram grid", 2, 1, (4000,), (4000,), _phase_grid),
        Workload(
            "W4",
            "scaling",
            20,
            5,
            (1, 10, 100, 1000, 10_000),
            (1, 10, 100),
            lambda k: (_log_densities(k), _decaying_importance(20)),
        ),
    )
}

TARGETS: dict[str, list[dict]] = {
    "cpu": [
        {"workload": "W1", "what": "speed-up over the baseline", "min": 5.0},
        {"workload": "W2", "what": "speed-up over the baseline", "min": 4.0},
        {"workload": "W3", "what": "speed-up over the baseline", "min": 5.0},
    ],
    "cuda": [
        {"workload": "W1", "what": "speed-up over the baseline", "min": 20.0},
        {"workload": "W4", "n_instances": 10_000, "what": "instance-steps/s", "min": 5e6},
        {"workload": "W3", "what": "seconds for 10,000 steps", "max": 5.0},
    ],
}
"""The issue's targets, checked at the end of a full (non-quick) run."""

BASELINE_MAX_ENTRIES = {"cpu": 25_000_000, "cuda": 400_000_000}
"""The baseline is skipped above this many batch entries (instances x features x batch):
it would need several GB and minutes per step (W4 at 10,000 instances on a CPU)."""


def make_model(workload: Workload | str, n_instances: int | None = None, seed: int = 0) -> ToyModel:
    """An untrained ReLU-output :class:`ToyModel` for ``workload`` (its first instance count by default)."""
    w = WORKLOADS[workload] if isinstance(workload, str) else workload
    k = w.instances[0] if n_instances is None else n_instances
    p, importance = w.data(k)
    return ToyModel(w.n_features, w.n_hidden, n_instances=k, feature_probability=p, importance=importance, seed=seed)


# ------------------------------------------------------------------ the baseline


def baseline_train(
    model: ToyModel,
    steps: int,
    batch_size: int = BATCH_SIZE,
    lr: float = LR,
    weight_decay: float = WEIGHT_DECAY,
    seed: int = 0,
) -> torch.Tensor:
    """The straightforward training loop: the benchmark's reference.

    :func:`supercourse.reference_loop.reference_train`, the plain loop the fast
    trainer is tested against: each step draws a fresh batch with the model's
    ``generate_batch`` (``(batch, instances, features)``), runs its ``einsum``
    forward, lets autograd compute the gradient, and steps a default
    ``torch.optim.AdamW``. It trains ``model`` in place on its device and
    returns the last step's per-instance loss ``(n_instances,)`` (CPU).
    """
    # Only the first and last steps' losses are kept, so memory does not grow with the steps timed.
    return reference_train(
        model, steps, batch_size=batch_size, lr=lr, weight_decay=weight_decay, seed=seed, log_every=steps
    )[-1]


LOG_EVERY = 100
"""The fast trainer logs its per-instance loss every 100 steps, as it does by
default on a 10,000-step run (short timed runs would otherwise log every step)."""


def fast_train(model: ToyModel, steps: int, seed: int = 0) -> torch.Tensor:
    """:func:`supercourse.train` with the benchmark's recipe; returns the last logged per-instance loss."""
    history = train(
        model,
        steps=steps,
        batch_size=BATCH_SIZE,
        lr=LR,
        weight_decay=WEIGHT_DECAY,
        seed=seed,
        device=model.W.device,
        progress=False,
        log_every=LOG_EVERY,
    )
    return history.final_loss


TRAINERS: dict[str, Callable[[ToyModel, int], object]] = {"baseline": baseline_train, "fast": fast_train}


# ------------------------------------------------------------------ measuring


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


_LIBC = _libc()


def _return_freed_memory() -> None:
    """Make glibc give freed memory back, so that RSS tracks what a run holds.

    glibc raises its mmap threshold as large blocks are freed and keeps freed
    heap memory, so a second run reuses pages the first one touched and shows
    no rise in RSS. A fixed 1 MiB threshold (mallopt M_MMAP_THRESHOLD) maps
    every large tensor afresh and unmaps it when freed; malloc_trim returns the
    rest.
    """
    if _LIBC is not None:
        try:
            _LIBC.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD
            _LIBC.malloc_trim(0)
        except (AttributeError, OSError):  # pragma: no cover - not glibc
            pass


class _PeakMemory:
    """Peak memory a run adds: CUDA allocator peak, or CPU peak RSS over the RSS before."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.method = ""

    def __enter__(self) -> "_PeakMemory":
        if self.device.type != "cuda":
            _return_freed_memory()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.before = torch.cuda.memory_allocated(self.device)
            self.method = "torch.cuda.max_memory_allocated"
            return self
        self.before = _rss_bytes("VmRSS")
        reset = False
        if self.before is not None:
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")  # resets VmHWM, the peak RSS, to the current RSS
                reset = True
            except OSError:
                reset = False
        if reset:
            self.method = "peak RSS (VmHWM, reset before the run) - RSS before"
        else:
            self.before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
            self.method = "rise of ru_maxrss (a lower bound)"
        self._reset = reset
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = max(0, torch.cuda.max_memory_allocated(self.device) - self.before)
        elif self._reset:
            self.peak = max(0, (_rss_bytes("VmHWM") or 0) - self.before)
        else:
            now = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
            self.peak = max(0, now - self.before)


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def measure(
    workload: Workload,
    n_instances: int,
    device: torch.device,
    *,
    budget_s: float = 2.0,
    rounds: int = 3,
    warmup_steps: int = 2,
    min_steps: int = 2,
    max_steps: int = 100_000,
    fixed_steps: dict[str, int] | None = None,
    trainers: tuple[str, ...] = ("baseline", "fast"),
    log: Callable[[str], None] = lambda s: None,
) -> dict:
    """Time each trainer on one workload point; rounds alternate the trainers.

    Each trainer gets its own copy of the same initial model. After
    ``warmup_steps`` untimed steps, the step count of a round is chosen so the
    round takes about ``budget_s`` (``fixed_steps[trainer]`` overrides it).
    Returns a JSON-ready dict with, per trainer, the median steps/s,
    instance-steps/s, wall time of a round and peak memory, and the speed-up
    (median of per-round ratios of fast to baseline steps/s).
    """
    models = {t: make_model(workload, n_instances, seed=0).to(device) for t in trainers}
    fns = {t: TRAINERS[t] for t in trainers}
    steps: dict[str, int] = {}
    for t in trainers:
        warm = max(1, warmup_steps)
        elapsed = _timed(lambda t=t, warm=warm: fns[t](models[t], warm), device)
        if fixed_steps and t in fixed_steps:
            steps[t] = fixed_steps[t]
            continue
        # The warm-up pays one-off costs: calibrate on runs that double until
        # one takes a tenth of the budget.
        n_cal, per_step = warm, elapsed / warm
        for _ in range(8):
            elapsed = _timed(lambda t=t, n=n_cal: fns[t](models[t], n), device)
            per_step = elapsed / n_cal
            if elapsed >= 0.1 * budget_s or n_cal >= max_steps:
                break
            n_cal = min(max_steps, max(2 * n_cal, int(0.1 * budget_s / max(per_step, 1e-7))))
        steps[t] = int(min(max_steps, max(min_steps, budget_s / max(per_step, 1e-7))))
    per_round: dict[str, list[float]] = {t: [] for t in trainers}
    walls: dict[str, list[float]] = {t: [] for t in trainers}
    peaks: dict[str, int] = {}
    methods: dict[str, str] = {}
    for r in range(rounds):
        for t in trainers:
            with _PeakMemory(device) as mem:
                wall = _timed(lambda t=t: fns[t](models[t], steps[t]), device)
            peaks[t] = max(peaks.get(t, 0), mem.peak)
            methods[t] = mem.method
            walls[t].append(wall)
            per_round[t].append(steps[t] / wall)
            log(f"  {workload.name} k={n_instances} {t:8s} round {r + 1}: {steps[t]} steps in {wall:.2f} s")
    out: dict = {"workload": workload.name, "n_instances": n_instances, "device": str(device)}
    for t in trainers:
        sps = statistics.median(per_round[t])
        out[t] = {
            "steps": steps[t],
            "rounds": rounds,
            "steps_per_s": sps,
            "instance_steps_per_s": sps * n_instances,
            "wall_s": statistics.median(walls[t]),
            "steps_per_s_rounds": per_round[t],
            "peak_mem_bytes": peaks[t],
            "peak_mem_method": methods[t],
        }
    if "baseline" in trainers and "fast" in trainers:
        ratios = [f / b for f, b in zip(per_round["fast"], per_round["baseline"])]
        out["speedup"] = statistics.median(ratios)
        out["speedup_rounds"] = ratios
    else:
        out["speedup"] = None
    return out


def _time_w3_10k(device: torch.device, log: Callable[[str], None]) -> float:
    """Seconds for :func:`supercourse.train` to run W3 for 10,000 steps (the GPU target)."""
    model = make_model("W3").to(device)
    fast_train(model, 20)
    wall = _timed(lambda: fast_train(model, 10_000), device)
    log(f"  W3 10,000 steps: {wall:.2f} s")
    return wall


# ------------------------------------------------------------------ the run


def run_benchmark(
    device: str | torch.device = "cpu",
    workloads: list[str] | None = None,
    quick: bool = False,
    budget_s: float | None = None,
    rounds: int | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> dict:
    """Run the benchmark on one device and return the JSON-ready results."""
    dev = torch.device(device)
    names = workloads or list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise ValueError(f"unknown workload(s) {unknown}; choose from {sorted(WORKLOADS)}")
    budget = budget_s if budget_s is not None else (0.0 if quick else 2.0)
    n_rounds = rounds if rounds is not None else (1 if quick else 3)
    results = []
    load_before = _loadavg()
    started = time.perf_counter()
    for name in names:
        w = WORKLOADS[name]
        for k in w.quick_instances if quick else w.instances:
            entries = k * w.n_features * BATCH_SIZE
            trainers = ("baseline", "fast")
            if entries > BASELINE_MAX_ENTRIES.get(dev.type, BASELINE_MAX_ENTRIES["cpu"]):
                trainers = ("fast",)
            log(f"{name} ({w.title}), {k} instance(s) on {dev}")
            kw = dict(budget_s=budget, rounds=n_rounds, trainers=trainers, log=log)
            if quick:
                kw.update(warmup_steps=1, fixed_steps={"baseline": 2, "fast": 2})
            elif entries >= 50_000_000:  # a step takes seconds on a CPU: one round of a few steps
                kw.update(warmup_steps=1, rounds=1, fixed_steps={"baseline": 2, "fast": 6 if dev.type == "cpu" else 50})
            res = measure(w, k, dev, **kw)
            res["title"] = w.title
            res["config"] = {
                "n_features": w.n_features,
                "n_hidden": w.n_hidden,
                "n_instances": k,
                "batch_size": BATCH_SIZE,
                "lr": LR,
                "weight_decay": WEIGHT_DECAY,
                "activation": "relu",
            }
            if "baseline" not in trainers:
                res["baseline"] = None
                res["baseline_skipped"] = f"{entries:,} batch entries > {BASELINE_MAX_ENTRIES[dev.type]:,}"
            results.append(res)
    extra = {}
    if dev.type == "cuda" and not quick and "W3" in names:
        extra["w3_10k_steps_s"] = _time_w3_10k(dev, log)
    out = {
        "device": str(dev),
        "device_name": _device_name(dev),
        "quick": quick,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "budget_s": budget,
        "rounds": n_rounds,
        "results": results,
        **extra,
        "total_s": time.perf_counter() - started,
        "loadavg_before": load_before,
        "loadavg_after": _loadavg(),
    }
    out["targets"] = [] if quick else check_targets(out)
    return out


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # pragma: no cover - Windows
        return None


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return platform.processor() or platform.machine()


def check_targets(out: dict) -> list[dict]:
    """The issue's targets for this device, each with its measured value and whether it is met."""
    dev_type = torch.device(out["device"]).type
    checked = []
    for target in TARGETS.get(dev_type, []):
        value = None
        if target["what"] == "seconds for 10,000 steps":
            value = out.get("w3_10k_steps_s")
        else:
            for r in out["results"]:
                if r["workload"] != target["workload"]:
                    continue
                if "n_instances" in target and r["n_instances"] != target["n_instances"]:
                    continue
                if target["what"] == "instance-steps/s":
                    value = r["fast"]["instance_steps_per_s"]
                else:
                    value = r["speedup"]
        met = None
        if value is not None:
            met = value >= target["min"] if "min" in target else value <= target["max"]
        checked.append({**target, "value": value, "met": met})
    return checked


# ------------------------------------------------------------------ output


def _fmt(x: float | None, unit: str = "") -> str:
    if x is None:
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.2f}M{unit}"
    if x >= 1e4:
        return f"{x / 1e3:.1f}k{unit}"
    if x >= 100:
        return f"{x:.0f}{unit}"
    return f"{x:.3g}{unit}"


def _mib(b: int | None) -> str:
    return "-" if b is None else f"{b / 2**20:.0f}"


def print_table(out: dict, console=None) -> None:
    """The results as a rich table (and the targets, after a full run)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    title = f"supercourse bench: {out['device']} ({out['device_name']}, {out['cpu_threads']} threads)"
    if out["quick"]:
        title += "\n--quick: checks the harness, not a measurement"
    table = Table(title=title)
    for col in ["", "inst", "base st/s", "fast st/s", "speed-up", "fast inst-st/s", "wall s b/f", "MiB b/f"]:
        table.add_column(col, justify="left" if not col else "right")
    for r in out["results"]:
        b, f = r.get("baseline"), r["fast"]
        table.add_row(
            r["workload"],
            f"{r['n_instances']:,}",
            _fmt(b["steps_per_s"]) if b else "skipped",
            _fmt(f["steps_per_s"]),
            f"{r['speedup']:.1f}x" if r.get("speedup") else "-",
            _fmt(f["instance_steps_per_s"]),
            f"{b['wall_s']:.1f}/{f['wall_s']:.1f}" if b else f"-/{f['wall_s']:.1f}",
            f"{_mib(b['peak_mem_bytes']) if b else '-'}/{_mib(f['peak_mem_bytes'])}",
        )
    console.print(table)
    cores = out.get("cpu_count") or 1
    loads = [x[0] for x in (out.get("loadavg_before"), out.get("loadavg_after")) if x]
    if loads and max(loads) > cores:
        console.print(
            f"[yellow]warning: the machine was busy (load average up to {max(loads):.1f} on {cores} cores): "
            "timings, and the speed-ups most of all, are unreliable[/]"
        )
    names = sorted({r["workload"] for r in out["results"]})
    console.print("  ".join(f"{n}: {WORKLOADS[n].describe()}" for n in names), style="dim")
    if "w3_10k_steps_s" in out:
        console.print(f"W3, 10,000 steps: {out['w3_10k_steps_s']:.2f} s")
    for t in out.get("targets", []):
        where = t["workload"] + (f" at {t['n_instances']:,} instances" if "n_instances" in t else "")
        bound = f">= {t['min']:g}" if "min" in t else f"<= {t['max']:g}"
        status = "n/a" if t["met"] is None else ("[green]met[/]" if t["met"] else "[red]NOT met[/]")
        console.print(f"target {where}: {t['what']} {bound}: measured {_fmt(t['value'])} -> {status}")


def default_out(device: str) -> Path:
    return Path("bench-results") / f"bench-{torch.device(device).type}.json"


def write_json(out: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    return path


# ------------------------------------------------------------------ command line


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--device",
        default="auto",
        help="cpu, cuda, cuda:N or auto (default: cpu, and cuda too when a GPU is present)",
    )
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"comma-separated subset of {','.join(WORKLOADS)} (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="a couple of steps per workload: checks the harness")
    parser.add_argument(
        "--out",
        default=None,
        help="JSON file (default: bench-results/bench-<device>.json; with several devices, "
        "'{device}' in the name is replaced, else the device is appended)",
    )
    parser.add_argument("--budget", type=float, default=None, help="seconds per timed round (default 2; quick: 0)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per trainer (default 3; quick: 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``bench`` subcommand to the ``supercourse`` command line."""
    parser = subparsers.add_parser(
        "bench",
        help="benchmark supercourse.train against the straightforward trainer",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def _devices(arg: str) -> list[str]:
    if arg == "auto":
        return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    devices = [d.strip() for d in arg.split(",") if d.strip()]
    for d in devices:
        dev = torch.device(d)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise SystemExit(f"--device {d}: torch finds no CUDA GPU here")
        if dev.type not in ("cpu", "cuda"):
            raise SystemExit(f"--device {d}: only cpu and cuda are benchmarked")
    return devices


def _out_path(arg: str | None, device: str, several: bool) -> Path:
    if arg is None:
        return default_out(device)
    tag = device.replace(":", "")
    if "{device}" in arg:
        return Path(arg.replace("{device}", tag))
    if several:
        p = Path(arg)
        return p.with_name(f"{p.stem}-{tag}{p.suffix}")
    return Path(arg)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark for the parsed ``args``; returns the exit status."""
    from rich.console import Console

    console = Console()
    names = [n.strip().upper() for n in args.workloads.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        console.print(f"[red]unknown workload(s) {unknown}; choose from {', '.join(WORKLOADS)}[/]")
        return 2
    devices = _devices(args.device)
    log = (lambda s: None) if args.quiet else (lambda s: console.print(s, style="dim", highlight=False))
    for device in devices:
        out = run_benchmark(device, names, quick=args.quick, budget_s=args.budget, rounds=args.rounds, log=log)
        print_table(out, console)
        path = write_json(out, _out_path(args.out, device, len(devices) > 1))
        console.print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m supercourse.bench", description=__doc__.split("\n\n")[1])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
