"""Lesson 11's expected figures, drawn with the reference library, and the numbers its closing note quotes.

* ``crosstalk.png`` the cross map ``C_1^T C_2`` of two contexts of each kind (n = 24);
* ``your_layer.png`` the notebook's own run (N = 784, d = 10, 10 tasks, no contexts and binary
  contexts, 500 SGD steps per task) done with the reference functions: each task's error at the end,
  and the interference measure's prediction;
* ``error_vs_tasks.png``, ``interference_fit.png``, ``forgetting.png``, ``digits.png``: the study of
  ``supercourse reproduce many-models`` at its defaults (seed 0);
* ``numbers.json``: the measured numbers (task 1's error per setting, d and K for every seed; the
  digits accuracies), which ``test_lesson11.py`` compares with the notebook's prose.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from supercourse import context_plots
from supercourse import contexts as cx
from supercourse.experiments import many_models as mm

__all__ = ["make", "SEED", "YOUR_TASKS", "YOUR_D", "your_layer", "NUMBERS"]

SEED = 0
YOUR_TASKS = 10
YOUR_D = 10
NUMBERS = "numbers.json"


def your_layer(binary_contexts=cx.binary_contexts, train_sequential=cx.train_sequential,
               interference=cx.interference, n_tasks: int = YOUR_TASKS, steps: int = mm.STEPS_PER_TASK):
    """The notebook's own run, with any implementations of the three functions: ``(errors, predicted)``.

    ``errors`` is ``{"no contexts": (n_tasks,), "binary": (n_tasks,)}``, each task's relative error once all
    are trained; ``predicted`` ``(n_tasks,)`` is, for each task, the interference of the tasks after it.
    """
    N = mm.N_INPUT
    gen = torch.Generator().manual_seed(SEED)
    U, A = cx.subspace_task(N, YOUR_D, mm.N_OUT, n_tasks, gen)
    settings = {"no contexts": torch.eye(N).expand(n_tasks, N, N),
                "binary": cx.context_matrices(binary_contexts(n_tasks, N, gen), "binary")}
    errors = {}
    for label, C in settings.items():
        W = train_sequential(torch.zeros(mm.N_OUT, N), C, U, A, steps=steps, lr=mm.LR, batch_size=mm.BATCH_SIZE,
                             generator=torch.Generator().manual_seed(SEED + 1))
        errors[label] = cx.relative_error(W, C, U, A)
    I = interference(settings["binary"], U)
    predicted = torch.stack([cx.predicted_error(I, task=j)[-1] for j in range(n_tasks)])
    return errors, predicted


def crosstalk_maps(n: int = 24) -> dict[str, torch.Tensor]:
    """``C_1^T C_2`` for two contexts of each kind (seeded)."""
    gen = torch.Generator().manual_seed(SEED)
    maps = {"no contexts: I": torch.eye(n)}
    for kind, label in (("binary", "binary: diag(s1 s2)"), ("complex", "complex: diag(cos(phi2 - phi1))"),
                        ("rotation", "rotation: Q1^T Q2")):
        C = cx.context_matrices(cx.draw_contexts(kind, 2, n, gen), kind)
        maps[label] = C[0].T @ C[1]
    return maps


def make(out_dir: Path) -> list[Path]:
    """Run the notebook's experiments at their CPU defaults and write the PNGs and ``numbers.json`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []

    def save(name, fig):
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=150, facecolor="white")
        plt.close(fig)
        paths.append(path)

    save("crosstalk", context_plots.crosstalk(crosstalk_maps(), "what task 2's context makes of task 1's update"))
    errors, predicted = your_layer()
    save("your_layer", context_plots.task_errors(errors, predicted))

    toy = mm.toy_study(seed=SEED)
    digits = mm.digits_study(seed=SEED)

    class _Run:  # the figure writer's interface, writing into out_dir
        def figure(self, name, fig):
            save(name, fig)

    mm.write_figures(toy, digits, _Run())
    numbers = {
        "your_layer": {label: e.tolist() for label, e in errors.items()} | {"predicted": predicted.tolist()},
        "toy": toy.summary()["rows"],
        "digits": digits.summary()["kinds"],
    }
    path = out_dir / NUMBERS
    path.write_text(json.dumps(numbers, indent=1) + "\n")
    paths.append(path)
    return paths


if __name__ == "__main__":  # python solutions/11-many-models/figures.py
    import time

    start = time.perf_counter()
    torch.set_num_threads(1)
    for p in make(Path(__file__).with_name("figures")):
        print(p)
    print(f"{time.perf_counter() - start:.0f} s")
