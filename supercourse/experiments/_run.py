"""The one template every ``supercourse reproduce`` target runs on.

A target's ``run`` reads::

    run = Run(NAME, out_dir, steps, device, seed, console)  # arguments checked, out_dir made, clock started
    model, history = ...train...                            # run.device, run.steps, run.seed
    run.trained("8 densities x 3 restarts x 4000 steps", seconds)
    run.table(a_rich_table)                                 # printed (the CLI saves it in summary.txt)
    run.figure("collapse", fig)                             # out_dir/collapse.png, figure closed
    return run.finish(models={"relu": model}, table=rows, config={...})

:meth:`Run.finish` writes ``params.safetensors`` (every model's tensors, no pickle)
and ``summary.json`` with the same keys for every target: ``experiment``,
``steps``, ``seed``, ``device``, ``wall_time``, ``seconds`` (what each timed
part took), ``config`` (anything else that defines the run), ``table`` (the
numbers its tables print), ``models`` and ``main_model`` (when the run has
models), and the target's own extra keys. It returns the
:class:`~._common.ExperimentResult`.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

import torch

from .._validate import check_positive_int
from ..devices import pick_device
from ._artifacts import save_params, save_summary

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure
    from rich.console import Console

    from ._common import ExperimentResult

__all__ = ["Run", "FIGURE_DPI", "prepare_run", "get_console", "save_figure", "model_config", "model_tensors"]

FIGURE_DPI = 150


def get_console(console: "Console | None") -> "Console":
    """``console``, or a fresh rich console writing to ``sys.stdout``."""
    if console is not None:
        return console
    from rich.console import Console

    return Console()


def prepare_run(out_dir: str | Path, steps: int, device: str | torch.device | None, seed: int) -> tuple[Path, int, torch.device, int]:
    """Validate a ``run``'s arguments (raising ``ValueError``/``TypeError``) and create ``out_dir``."""
    steps = check_positive_int("steps", steps)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    dev = pick_device(device)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir {str(out)!r} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    return out, steps, dev, seed


def save_figure(fig: "Figure", path: Path) -> Path:
    """Write ``fig`` as a PNG and return ``path``."""
    fig.savefig(path, dpi=FIGURE_DPI, facecolor="white")
    return path


def _densities(model: torch.nn.Module) -> list[float]:
    p = model.feature_probability.detach().cpu().double()
    return torch.where((p == p[:, :1]).all(dim=1), p[:, 0], p.mean(dim=1)).tolist()


def model_config(model: torch.nn.Module) -> dict:
    """A trained model's configuration as plain data (for ``summary.json``).

    ``class``, ``n_features``, ``n_hidden``, ``n_instances``, ``activation`` (when
    the model has one), ``densities`` (each instance's ``1 - S``; the mean where
    an instance's features differ), ``feature_probability`` ``(n_instances,
    n_features)`` only where it varies inside an instance, and ``importance``
    (one row ``(n_features,)`` when every instance shares it).
    """
    p = model.feature_probability.detach().cpu()
    imp = model.importance.detach().cpu()
    config: dict = {
        "class": type(model).__name__,
        "n_features": model.n_features,
        "n_hidden": model.n_hidden,
        "n_instances": model.n_instances,
    }
    if hasattr(model, "activation"):
        config["activation"] = model.activation
    config["densities"] = _densities(model)
    if not (p == p[:, :1]).all():
        config["feature_probability"] = p.tolist()
    config["importance"] = imp[0].tolist() if (imp == imp[:1]).all() else imp.tolist()
    return config


def model_tensors(models: Mapping[str, torch.nn.Module], main: str) -> dict[str, torch.Tensor]:
    """Every model's parameters and buffers as ``"<model>.<name>"``; the ``main`` model's also under plain names."""
    tensors: dict[str, torch.Tensor] = {}
    for key, model in models.items():
        own = {**dict(model.named_parameters()), **dict(model.named_buffers())}
        tensors.update({f"{key}.{name}": t for name, t in own.items()})
        if key == main:
            tensors.update(own)
    return tensors


class Run:
    """One run of a ``reproduce`` target: checked arguments, a console, a clock and the files it leaves.

    Attributes:
        name: the target's registry key.
        out: the output folder (created). steps, seed: as given (checked).
        device: the ``torch.device`` to train on. console: where tables and messages go.
        figures: ``{name: path}`` of every figure written. seconds: ``{part: seconds}`` of timed parts.
    """

    def __init__(
        self,
        name: str,
        out_dir: str | Path,
        steps: int,
        device: str | torch.device | None,
        seed: int,
        console: "Console | None" = None,
    ) -> None:
        self._start = time.perf_counter()
        self.name = name
        self.out, self.steps, self.device, self.seed = prepare_run(out_dir, steps, device, seed)
        self.console = get_console(console)
        self.figures: dict[str, Path] = {}
        self.seconds: dict[str, float] = {}

    @property
    def progress(self) -> bool:
        """Whether training may show a progress bar (only on a terminal)."""
        return bool(self.console.is_terminal)

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self._start

    @contextmanager
    def timed(self, part: str) -> Iterator[None]:
        """Time the block as ``seconds[part]`` (written to ``summary.json``)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[part] = self.seconds.get(part, 0.0) + time.perf_counter() - start

    def trained(self, what: str, seconds: float, part: str | None = None) -> None:
        """Print ``trained <what> on <device> in <seconds> s`` (and keep it as ``seconds[part]``)."""
        if part is not None:
            self.seconds[part] = seconds
        self.console.print(f"trained {what} on {self.device.type} in {seconds:.1f} s")

    def print(self, *objects: Any, **kwargs: Any) -> None:
        """Print through the run's console."""
        self.console.print(*objects, **kwargs)

    def table(self, table: Any) -> None:
        """Print a rich table (its caption explains the columns)."""
        self.console.print(table)

    def figure(self, name: str, fig: "Figure") -> Path:
        """Write ``fig`` as ``out/<name>.png``, close it, and return the path."""
        import matplotlib.pyplot as plt

        path = save_figure(fig, self.out / f"{name}.png")
        plt.close(fig)
        self.figures[name] = path
        return path

    def figures_written(self, paths: Mapping[str, Path]) -> None:
        """Record figures a target's ``write_figures`` already wrote."""
        self.figures.update(paths)

    def finish(
        self,
        *,
        table: object,
        models: Mapping[str, torch.nn.Module] | None = None,
        main: str | None = None,
        tensors: Mapping[str, torch.Tensor] | None = None,
        config: Mapping[str, object] | None = None,
        histories: Mapping[str, object] | None = None,
        summaries: Mapping[str, object] | None = None,
        **extra: object,
    ) -> "ExperimentResult":
        """Write ``params.safetensors`` and ``summary.json``; return the :class:`~._common.ExperimentResult`.

        ``tensors`` (with ``W`` and ``b_final``) are written as given; without
        them, :func:`model_tensors` of ``models`` (``main``: the model under the
        plain names, default the last). ``extra`` keys go into ``summary.json``
        beside the common ones.
        """
        from ._common import ExperimentResult

        models = dict(models or {})
        if main is None and models:
            main = list(models)[-1]
        if models and main not in models:
            raise ValueError(f"main must be one of {sorted(models)}, got {main!r}")
        if tensors is None:
            if not models:
                raise ValueError("finish needs models or tensors to write params.safetensors")
            tensors = model_tensors(models, main)
        summary: dict[str, object] = {
            "experiment": self.name,
            "steps": self.steps,
            "seed": self.seed,
            "device": str(self.device),
            "wall_time": self.elapsed(),
            "seconds": dict(self.seconds),
            "config": dict(config or {}),
            "table": table,
        }
        if models:
            summary["main_model"] = main
            summary["models"] = {key: model_config(m) for key, m in models.items()}
        clash = set(extra) & set(summary)
        if clash:
            raise ValueError(f"extra summary keys clash with the common ones: {sorted(clash)}")
        summary.update(extra)
        artifacts = {"params": save_params(self.out, tensors), "summary": save_summary(self.out, summary)}
        return ExperimentResult(
            name=self.name,
            models=models,
            histories=dict(histories or {}),
            summaries=dict(summaries or {}),
            figures=dict(self.figures),
            steps=self.steps,
            seed=self.seed,
            device=str(self.device),
            wall_time=self.elapsed(),
            artifacts=artifacts,
        )
