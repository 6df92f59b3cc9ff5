"""Many models in one set of weights (Cheung et al. 2019): how much an old task keeps as tasks are added.

**The toy task** (:mod:`supercourse.contexts`). Inputs ``x = U z`` fill a
``d``-dimensional subspace ``U`` of ``N = 784`` dimensions, ``z ~ N(0, I_d)``;
task ``k`` maps them to ``y = A_k z`` (``A_k`` random, ``10 x d``). One
``10 x 784`` linear layer learns the tasks one after another, 500 SGD steps
each (lr 0.5, batch 64, mean squared error), task ``k`` read through its
context ``C_k`` (``y_hat = W C_k x``). Every setting in :data:`SETTINGS`
(no contexts, binary, complex, rotation, and powers of one complex or
rotation context) trains :data:`N_SEEDS` seeds as instances of one batched
layer, for ``d`` in :data:`DIMS` and up to :data:`MAX_TASKS` tasks; one run
of ``K_max`` tasks gives task 1's error after every ``K <= K_max``.

**The realistic part**: scikit-learn's 8x8 digits with their pixels permuted
per task (:data:`DIGITS_TASKS` tasks, task 1 unpermuted), an MLP
``64-256-256-10`` whose every layer is superposed (:class:`~supercourse.permuted_digits.SuperposedMLP`),
plain SGD, :data:`DIGITS_EPOCHS` epochs per task; :data:`N_SEEDS` seeds as instances.

Measured (seed 0, mean of 3 seeds; ``tests/test_contexts.py`` asserts the robust
parts across two study seeds; the lesson's closing note quotes ``summary.json``):
task 1's relative error with binary contexts, d=10: 0.014, 0.069, 0.156, 0.323,
0.815 at K = 2, 5, 10, 20, 50 (the independent numpy study, one run each: 0.021,
0.053, 0.151, 0.330, 0.612); d=50: 0.071, 0.284, 0.680 at K = 2, 5, 10 (0.073,
0.275, 0.645); 1.02-1.36 times (K-1)d/N. Without contexts: 2.00 on average
(single runs 1.37-2.56). Complex contexts: half of binary (0.51); powers of one
context: 1.03 times independent ones. Permuted digits, task 1 after 10 tasks:
0.25 without contexts, 0.84-0.86 with binary, complex or rotation contexts.
Wall time on a shared 2-core machine (load 8-10): about 5 minutes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import torch

from .. import context_plots
from .. import contexts as cx
from .. import permuted_digits as pd
from ._run import Run

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console
    from rich.table import Table

    from ._common import ExperimentResult

NAME = "many-models"
DESCRIPTION = "many models in one set of weights (Cheung et al.): task 1's error vs tasks per context kind; permuted digits"

# The toy task
N_INPUT = 784
N_OUT = 10
DIMS: tuple[int, ...] = (10, 50)
MAX_TASKS = {10: 50, 50: 20}
"""Tasks trained per subspace dimension ``d`` (beyond ``(K - 1) d / N ~ 1`` nothing is left to measure)."""
TABLE_TASKS: tuple[int, ...] = (2, 5, 10, 20, 50)
STEPS_PER_TASK = 500
LR = 0.5
BATCH_SIZE = 64
N_SEEDS = 3
"""Seeds per setting, trained side by side as instances."""
INDEPENDENT = {
    10: {2: 0.021, 5: 0.053, 10: 0.151, 20: 0.330, 50: 0.612},
    50: {2: 0.073, 5: 0.275, 10: 0.645},
}
"""Task 1's relative error with binary contexts, measured independently (numpy, one run per cell)."""
INDEPENDENT_NO_CONTEXTS = (1.7, 2.4)
"""The independent range of task 1's relative error without contexts (about 2)."""


@dataclass(frozen=True)
class Setting:
    """One way of storing the tasks: a context ``kind`` (:data:`supercourse.contexts.KINDS`), drawn independently or as powers of one."""

    label: str
    kind: str
    powers: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting("no contexts", "none"),
    Setting("binary", "binary"),
    Setting("complex", "complex"),
    Setting("rotation", "rotation"),
    Setting("complex, powers of one", "complex", powers=True),
    Setting("rotation, powers of one", "rotation", powers=True),
)

# Permuted digits
DIGITS_TASKS = 10
DIGITS_SIZES: tuple[int, ...] = (64, 256, 256, 10)
DIGITS_EPOCHS = 5
DIGITS_LR = 0.05
DIGITS_BATCH = 32
DIGITS_KINDS: tuple[str, ...] = ("none", "binary", "complex", "rotation")
DIGITS_LABELS = {"none": "no contexts", "binary": "binary", "complex": "complex", "rotation": "rotation"}

DEFAULT_STEPS = STEPS_PER_TASK
"""SGD steps per toy task; the digits train ``DIGITS_EPOCHS * steps / STEPS_PER_TASK`` epochs per task."""
DEFAULT_SEED = 0


def setting(label: str) -> Setting:
    """The setting called ``label``; a ``ValueError`` listing the choices otherwise."""
    for s in SETTINGS:
        if s.label == label:
            return s
    raise ValueError(f"unknown setting {label!r}; choose from {[s.label for s in SETTINGS]}")


def _seed(*parts: int) -> int:
    """A seed for one stream of one instance (different parts give unrelated streams)."""
    out = 0
    for p in parts:
        out = (out * 1_000_003 + int(p)) % (2**62)
    return out


# --------------------------------------------------------------------------- the toy task


def toy_problems(
    s: Setting, tasks: dict[int, int], seed: int = DEFAULT_SEED, n_seeds: int = N_SEEDS, n: int | None = None,
    n_out: int | None = None,
) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """One setting's tasks for every ``d``: ``{d: (V (n_seeds, n_tasks, n_read, d), A (n_seeds, n_tasks, n_out, d))}``.

    ``tasks`` is ``{d: n_tasks}``. Instance ``i`` draws its subspace and maps
    from stream ``(seed, i, d)``, the same for every setting (the settings are
    compared on the same tasks), and its contexts from stream ``(seed, i,
    kind, powers)``, the same for every ``d``. Rotations are drawn one task at
    a time (``n x n`` each, float64) and only ``C_k U`` is kept. ``n`` and
    ``n_out`` default to :data:`N_INPUT` and :data:`N_OUT`.
    """
    n = N_INPUT if n is None else n
    n_out = N_OUT if n_out is None else n_out
    K_max = max(tasks.values())
    out: dict[int, tuple[list, list]] = {d: ([], []) for d in tasks}
    for i in range(n_seeds):
        UA = {d: cx.subspace_task(n, d, n_out, K, torch.Generator().manual_seed(_seed(seed, i, d)), dtype=torch.float64)
              for d, K in tasks.items()}
        gen = torch.Generator().manual_seed(_seed(seed, i, cx.KINDS.index(s.kind), int(s.powers)))
        if s.kind == "rotation" and not s.powers:
            Vs: dict[int, list] = {d: [] for d in tasks}
            for k in range(K_max):
                Q = cx.rotation_contexts(1, n, gen, dtype=torch.float64)[0]
                for d, K in tasks.items():
                    if k < K:
                        Vs[d].append(Q @ UA[d][0])
            V = {d: torch.stack(v) for d, v in Vs.items()}
        else:
            C = cx.draw_contexts(s.kind, K_max, n, gen, powers=s.powers, dtype=torch.float64)
            V = {d: cx.contexted_subspaces(C[:K], s.kind, UA[d][0]) for d, K in tasks.items()}
        for d in tasks:
            out[d][0].append(V[d])
            out[d][1].append(UA[d][1])
    return {d: (torch.stack(v).float(), torch.stack(a).float()) for d, (v, a) in out.items()}


@dataclass
class ToyResult:
    """One setting at one ``d``: ``errors (n_seeds, K, K)`` (``[i, t, j]``: task ``j`` after tasks ``0 .. t``),
    ``interference (n_seeds, K, K)`` of its contexts, trained ``W (n_seeds, n_out, n_read)``."""

    errors: torch.Tensor
    interference: torch.Tensor
    W: torch.Tensor

    def task1(self) -> torch.Tensor:
        """``(n_seeds, K)``: task 1's relative error once ``K = 1 .. K_max`` tasks are trained."""
        return self.errors[:, :, 0]

    def predicted(self) -> torch.Tensor:
        """``(n_seeds, K)``: the interference measure's prediction of :meth:`task1`."""
        return torch.stack([cx.predicted_error(I) for I in self.interference])


def train_together(
    problems: dict[str, tuple[torch.Tensor, torch.Tensor]], seed: int = DEFAULT_SEED, steps: int = STEPS_PER_TASK,
    device: str | torch.device = "cpu", progress: object | None = None,
) -> dict[str, ToyResult]:
    """Train several settings' instances (same ``d`` and number of tasks) as one batch of layers.

    ``problems`` is ``{label: (V, A)}`` from :func:`toy_problems`; a smaller
    ``n_read`` is padded with zeros (rows no input reaches: nothing changes).
    """
    labels = list(problems)
    n_read = max(V.shape[2] for V, _ in problems.values())
    V = torch.cat([torch.nn.functional.pad(v, (0, 0, 0, n_read - v.shape[2])) for v, _ in problems.values()])
    A = torch.cat([a for _, a in problems.values()])
    d = V.shape[-1]
    gen = torch.Generator(device=device).manual_seed(_seed(seed, d, 7))
    W, errors = cx.train_sequential_instances(V.to(device), A.to(device), steps=steps, lr=LR, batch_size=BATCH_SIZE,
                                              generator=gen, progress=progress)
    W, interference = W.cpu(), cx.subspace_interference(V.double()).float()
    out, i = {}, 0
    for label in labels:
        v, _ = problems[label]
        j = i + v.shape[0]
        out[label] = ToyResult(errors=errors[i:j], interference=interference[i:j], W=W[i:j, :, : v.shape[2]])
        i = j
    return out


@dataclass
class ToyStudy:
    """Every setting at every ``d``: ``results[(label, d)]``."""

    seed: int
    steps: int
    results: dict[tuple[str, int], ToyResult] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def curves(self) -> dict[str, dict[int, torch.Tensor]]:
        """``{label: {d: task 1's error (n_seeds, K)}}`` (for :func:`~supercourse.context_plots.error_vs_tasks`)."""
        out: dict[str, dict[int, torch.Tensor]] = {}
        for (label, d), r in self.results.items():
            out.setdefault(label, {})[d] = r.task1()
        return out

    def at(self, label: str, d: int, K: int) -> torch.Tensor:
        """``(n_seeds,)`` task 1's relative error after ``K`` tasks."""
        return self.results[(label, d)].task1()[:, K - 1]

    def ratio(self, label: str, d: int, K: int, n: int = N_INPUT) -> torch.Tensor:
        """``(n_seeds,)`` measured error over ``(K - 1) d / n``."""
        return self.at(label, d, K) / ((K - 1) * d / n)

    def summary(self) -> dict:
        """Plain numbers: per setting and ``d``, task 1's error after each ``K`` of :data:`TABLE_TASKS` (every seed), the ratio to ``(K-1)d/N`` and to the interference measure."""
        rows = []
        for (label, d), r in self.results.items():
            K_max = r.errors.shape[1]
            for K in [k for k in TABLE_TASKS if k <= K_max]:
                e = r.task1()[:, K - 1]
                p = r.predicted()[:, K - 1]
                rows.append({
                    "setting": label, "d": d, "K": K, "errors": e.tolist(), "mean": float(e.mean()),
                    "min": float(e.min()), "max": float(e.max()), "prediction": (K - 1) * d / N_INPUT,
                    "ratio_to_prediction": (e / ((K - 1) * d / N_INPUT)).tolist(),
                    "interference_prediction": p.tolist(),
                    "independent": INDEPENDENT.get(d, {}).get(K) if label == "binary" else None,
                })
        return {"rows": rows, "seconds": dict(self.seconds)}


def toy_study(
    seed: int = DEFAULT_SEED, steps: int = STEPS_PER_TASK, device: str | torch.device = "cpu",
    settings: Sequence[Setting] | None = None, dims: Sequence[int] | None = None, max_tasks: dict[int, int] | None = None,
    n_seeds: int = N_SEEDS, report: object | None = None, progress: object | None = None,
) -> ToyStudy:
    """Draw every setting's tasks, then train all settings of each ``d`` together; ``report(what, seconds)`` after each part.

    ``progress.advance(n)`` (optional) is told after each setting drawn (1) and each task trained (1).

    ``settings``, ``dims`` and ``max_tasks`` default to :data:`SETTINGS`, :data:`DIMS` and :data:`MAX_TASKS`.
    """
    settings = SETTINGS if settings is None else tuple(settings)
    dims = DIMS if dims is None else tuple(dims)
    max_tasks = dict(MAX_TASKS if max_tasks is None else max_tasks)
    tasks = {d: max_tasks[d] for d in dims}
    study = ToyStudy(seed=seed, steps=steps)
    problems: dict[int, dict[str, tuple[torch.Tensor, torch.Tensor]]] = {d: {} for d in dims}
    start = time.perf_counter()
    for s in settings:
        for d, va in toy_problems(s, tasks, seed, n_seeds).items():
            problems[d][s.label] = va
        if progress is not None:
            progress.advance(1)
    study.seconds["contexts"] = time.perf_counter() - start
    if report is not None:
        report(f"contexts and tasks for {len(settings)} settings x {n_seeds} seeds, d in {list(dims)}", study.seconds["contexts"])
    for d in dims:
        start = time.perf_counter()
        for label, r in train_together(problems[d], seed, steps, device, progress).items():
            study.results[(label, d)] = r
        study.seconds[f"d={d}"] = time.perf_counter() - start
        if report is not None:
            report(f"{len(settings)} settings x {n_seeds} seeds, d={d}: {tasks[d]} tasks x {steps} steps each",
                   study.seconds[f"d={d}"])
    return study


def _short(x: float | torch.Tensor) -> str:
    """``0.0123 -> ".012"``, ``1.5 -> "1.50"``: three significant places in four characters."""
    x = float(x)
    return f"{x:.3f}".removeprefix("0") if abs(x) < 1 else f"{x:.2f}"


def toy_table(study: ToyStudy, title: str = "") -> "Table":
    """A :class:`rich.table.Table`: task 1's error after ``K`` tasks (mean over seeds, range), per setting and ``d``."""
    from rich.table import Table

    Ks = [K for K in TABLE_TASKS if any(K <= r.errors.shape[1] for r in study.results.values())]
    caption = (
        "each cell: task 1's relative error ||W C_1 U - A_1||^2 / ||A_1||^2 once K tasks are trained: mean over "
        "seeds, and their range\n(K-1)d/N: the interference prediction for random contexts; independent: the numpy study "
        "(binary contexts, one run)"
    )
    table = Table(title=title, title_justify="left", header_style="bold", caption=caption, caption_justify="left")
    table.add_column("setting")
    table.add_column("d", justify="right")
    for K in Ks:
        table.add_column(f"K={K}", justify="right")
    for d in sorted({d for _, d in study.results}):
        for (label, dd), r in study.results.items():
            if dd != d:
                continue
            cells = []
            for K in Ks:
                if K > r.errors.shape[1]:
                    cells.append("")
                    continue
                e = r.task1()[:, K - 1]
                cells.append(f"{e.mean():.3f}\n{_short(e.min())}-{_short(e.max())}")
            table.add_row(label, str(d), *cells)
        K_max = max(r.errors.shape[1] for (_, dd), r in study.results.items() if dd == d)
        table.add_row("(K-1)d/N", str(d), *[f"{(K - 1) * d / N_INPUT:.3f}" if K <= K_max else "" for K in Ks],
                      style="dim")
        if d in INDEPENDENT:
            table.add_row("independent (binary)", str(d),
                          *[f"{INDEPENDENT[d][K]:.3f}" if K in INDEPENDENT[d] else "" for K in Ks], style="dim")
    return table


# --------------------------------------------------------------------------- permuted digits


@dataclass
class DigitsStudy:
    """Accuracies ``acc[kind] (n_seeds, n_tasks, n_tasks)`` (``[i, t, j]``: task ``j`` after tasks ``0 .. t``) and the trained MLPs."""

    seed: int
    epochs: int
    acc: dict[str, torch.Tensor] = field(default_factory=dict)
    models: dict[str, pd.SuperposedMLP] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict:
        """Plain numbers: per kind, task 1's accuracy after each task and every task's final accuracy (every seed)."""
        out = {}
        for kind, a in self.acc.items():
            out[kind] = {
                "task1_after_each": a[:, :, 0].tolist(),
                "final_per_task": a[:, -1, :].tolist(),
                "task1_final": a[:, -1, 0].tolist(),
                "mean_final": a[:, -1, :].mean(dim=1).tolist(),
                "just_trained": torch.diagonal(a, dim1=1, dim2=2).tolist(),
            }
        return {"kinds": out, "seconds": dict(self.seconds)}


def digits_study(
    seed: int = DEFAULT_SEED, epochs: int = DIGITS_EPOCHS, device: str | torch.device = "cpu",
    kinds: Sequence[str] | None = None, n_tasks: int | None = None, n_seeds: int = N_SEEDS,
    sizes: Sequence[int] | None = None, report: object | None = None, progress: object | None = None,
) -> DigitsStudy:
    """Permuted digits, one batched MLP (``n_seeds`` instances) per context kind; ``report(kind, acc, seconds)`` after each.

    ``kinds``, ``n_tasks`` and ``sizes`` default to :data:`DIGITS_KINDS`, :data:`DIGITS_TASKS` and :data:`DIGITS_SIZES`.
    """
    kinds = DIGITS_KINDS if kinds is None else tuple(kinds)
    n_tasks = DIGITS_TASKS if n_tasks is None else n_tasks
    sizes = DIGITS_SIZES if sizes is None else tuple(sizes)
    tasks = pd.permuted_digits(n_tasks, seed=seed)
    study = DigitsStudy(seed=seed, epochs=epochs)
    for kind in kinds:
        start = time.perf_counter()
        model = pd.SuperposedMLP(sizes, n_tasks, n_instances=n_seeds, kind=kind, seed=_seed(seed, 11)).to(device)
        acc = pd.train_permuted_tasks(model, tasks, epochs=epochs, lr=DIGITS_LR, batch_size=DIGITS_BATCH,
                                      seed=_seed(seed, 12), progress=progress)
        study.acc[kind], study.models[kind] = acc, model.cpu()
        study.seconds[kind] = time.perf_counter() - start
        if report is not None:
            report(kind, acc, study.seconds[kind])
    return study


def digits_table(study: DigitsStudy, title: str = "") -> "Table":
    """A :class:`rich.table.Table`: per kind, task 1's test accuracy after 1, 2, 5 and all tasks, and the final mean."""
    from rich.table import Table

    T = next(iter(study.acc.values())).shape[1]
    marks = sorted({t for t in (1, 2, 5, T) if t <= T})
    caption = "test accuracy: mean over seeds, and their range; mean final: every task's accuracy once all are trained"
    table = Table(title=title, title_justify="left", header_style="bold", caption=caption, caption_justify="left")
    table.add_column("MLP")
    for t in marks:
        table.add_column(f"task 1 after {t}", justify="right")
    table.add_column("mean final", justify="right")
    for kind, a in study.acc.items():
        cells = [f"{a[:, t - 1, 0].mean():.3f}\n{_short(a[:, t - 1, 0].min())}-{_short(a[:, t - 1, 0].max())}" for t in marks]
        final = a[:, -1, :].mean(dim=1)
        table.add_row(DIGITS_LABELS.get(kind, kind), *cells, f"{final.mean():.3f}\n{_short(final.min())}-{_short(final.max())}")
    return table


# --------------------------------------------------------------------------- figures and the run


class _Bar:
    """A rich progress bar on a terminal (``advance(n)``), nothing elsewhere (notebooks, tests, files)."""

    def __init__(self, run: Run, description: str, total: int) -> None:
        self.bar = None
        if run.progress:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=run.console, transient=True)
            self.task = self.bar.add_task(description, total=total)

    def __enter__(self) -> "_Bar":
        if self.bar is not None:
            self.bar.start()
        return self

    def advance(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.advance(self.task, n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def write_figures(toy: ToyStudy, digits: DigitsStudy | None, run: Run) -> None:
    """``error_vs_tasks.png``, ``interference_fit.png``, ``forgetting.png`` and (with digits) ``digits.png``."""
    run.figure("error_vs_tasks", context_plots.error_vs_tasks(
        toy.curves(), N_INPUT, f"task 1's relative error after K tasks ({toy.steps} SGD steps per task)"))
    merged: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for (label, d), r in toy.results.items():
        if label == "no contexts":
            continue
        p, m = r.predicted()[:, 1:].flatten(), r.task1()[:, 1:].flatten()
        if label in merged:
            p, m = torch.cat([merged[label][0], p]), torch.cat([merged[label][1], m])
        merged[label] = (p, m)
    run.figure("interference_fit", context_plots.interference_fit(merged))
    d0 = min(d for _, d in toy.results)
    mats = {label: r.errors[0, :10, :10] for (label, d), r in toy.results.items() if d == d0 and label in ("no contexts", "binary")}
    if mats:
        run.figure("forgetting", context_plots.forgetting_matrices(
            mats, f"every task's error during sequential training (d = {d0}, first 10 tasks, seed 0)"))
    if digits is not None:
        run.figure("digits", context_plots.digits_accuracy(
            {DIGITS_LABELS.get(k, k): a for k, a in digits.acc.items()},
            f"permuted digits, MLP {'-'.join(map(str, DIGITS_SIZES))}, {digits.epochs} epochs per task"))


def run(
    out_dir: str | Path = "out/many-models",
    steps: int = DEFAULT_STEPS,
    device: str | torch.device | None = None,
    seed: int = DEFAULT_SEED,
    console: "Console | None" = None,
) -> "ExperimentResult":
    """Train the toy study and the digits study; print their tables; write the figures, ``params.safetensors`` and ``summary.json``.

    ``steps`` is the SGD steps per toy task (default 500); the digits train
    ``round(DIGITS_EPOCHS * steps / STEPS_PER_TASK)`` epochs per task (at least 1).
    """
    r = Run(NAME, out_dir, steps, device, seed, console)

    def toy_line(what: str, seconds: float) -> None:
        if what.startswith("contexts"):
            r.print(f"drew {what} in {seconds:.1f} s")
        else:
            r.trained(what, seconds)

    total = len(SETTINGS) + sum(MAX_TASKS[d] for d in DIMS)
    with r.timed("toy"), _Bar(r, "toy task: contexts drawn, tasks trained", total) as bar:
        toy = toy_study(r.seed, r.steps, r.device, report=toy_line, progress=bar)
    r.table(toy_table(toy, f"{NAME}: one {N_OUT}x{N_INPUT} layer, tasks learned in sequence ({r.steps} steps each, seed {r.seed})"))

    epochs = max(1, round(DIGITS_EPOCHS * r.steps / STEPS_PER_TASK))

    def digits_line(kind: str, acc: torch.Tensor, seconds: float) -> None:
        r.trained(f"digits MLP, {DIGITS_LABELS[kind]}: {acc.shape[0]} seeds x {acc.shape[1]} tasks x {epochs} epochs "
                  f"(task 1 at the end: {acc[:, -1, 0].mean():.3f})", seconds)

    with r.timed("digits"), _Bar(r, "permuted digits: tasks trained", len(DIGITS_KINDS) * DIGITS_TASKS) as bar:
        digits = digits_study(r.seed, epochs, r.device, report=digits_line, progress=bar)
    r.table(digits_table(digits, f"{NAME}: permuted digits, {DIGITS_TASKS} tasks, every layer superposed"))
    write_figures(toy, digits, r)

    tensors: dict[str, torch.Tensor] = {}
    for (label, d), res in toy.results.items():
        tensors[f"toy.{label.replace(', ', '_').replace(' ', '_')}.d{d}.W"] = res.W
    for kind, model in digits.models.items():
        for name, t in model.state_dict().items():
            tensors[f"digits.{kind}.{name}"] = t
    W = toy.results[("binary", min(d for _, d in toy.results))].W
    tensors["W"] = W  # the binary-context layer at d = 10: (n_seeds, n_out, n_input)
    tensors["b_final"] = torch.zeros(W.shape[0], W.shape[1])  # the layer has no bias
    return r.finish(
        table={"toy": toy.summary()["rows"], "digits": digits.summary()["kinds"]},
        tensors=tensors,
        config={
            "toy": {"n_input": N_INPUT, "n_out": N_OUT, "dims": list(DIMS), "max_tasks": MAX_TASKS,
                    "steps_per_task": r.steps, "lr": LR, "batch_size": BATCH_SIZE, "n_seeds": N_SEEDS,
                    "settings": [s.__dict__ for s in SETTINGS]},
            "digits": {"n_tasks": DIGITS_TASKS, "sizes": list(DIGITS_SIZES), "epochs_per_task": epochs,
                       "lr": DIGITS_LR, "batch_size": DIGITS_BATCH, "kinds": list(DIGITS_KINDS), "n_seeds": N_SEEDS},
            "independent": {"binary": INDEPENDENT, "no_contexts_range": list(INDEPENDENT_NO_CONTEXTS)},
        },
    )
