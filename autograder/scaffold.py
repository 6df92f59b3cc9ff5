"""``supercourse lessons new NN-slug``: a new lesson folder that already passes the course's proofs.

It writes ``solutions/NN-slug/`` with a solution notebook (title, setup cell, one worked exercise with
its solution and check cell, a figure), ``checks.py``, ``mistakes.py``, ``alternatives.py``,
``figures.py`` and ``test_lessonNN.py``, then draws the figure and generates ``lessons/NN-slug/``.
The example exercise (column norms) is complete: the generic proofs (``tests/test_lesson_proofs.py``)
pass for it, so an author replaces it piece by piece and sees at once what breaks.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat

from .lessons import SLUG, SOLUTIONS, all_lessons

__all__ = ["new_lesson"]

_CHECKS = '''\
"""Lesson {number} checks: {title}."""

from __future__ import annotations

import torch

from autograder.exercises import Exercise
from autograder.framework import call, expect, prop
from autograder.toolkit import close, describe, diagnose, secret_gen

from .mistakes import MISTAKES

EXERCISES = {{
    "column_norms": Exercise("column_norms", "The length of every feature's column",
                             reference=("supercourse.metrics.feature_norms",)),
}}


def _W(k: int, m: int, n: int, salt: object) -> torch.Tensor:
    return torch.randn(k, m, n, generator=secret_gen(salt))


@prop("column_norms", points=1)
def test_shape_and_dtype(submission):
    for k, m, n in [(3, 2, 5), (1, 1, 1), (2, 7, 3)]:
        W = _W(k, m, n, (k, m, n))
        out = call(submission, W, what="column_norms")
        expect(isinstance(out, torch.Tensor) and tuple(out.shape) == (k, n),
               f"Shape: for W of shape {{(k, m, n)}} expected a tensor of shape (n_instances, n_features) = "
               f"{{(k, n)}}, got {{describe(out)}}.")
    out = call(submission, _W(2, 3, 4, "float64").double(), what="column_norms")
    expect(isinstance(out, torch.Tensor) and out.dtype == torch.float64,
           f"Dtype: a float64 W gives float64 norms, got {{describe(out)}}.")


@prop("column_norms", points=2)
def test_values(submission):
    W = _W(4, 3, 6, "values")
    want = W.norm(dim=1)
    got = call(submission, W.clone(), what="column_norms")
    if not close(got, want):
        expect(False, f"Values: the norms of the columns of W differ from the expected ones.{{diagnose(MISTAKES['column_norms'], got, [W])}}")


@prop("column_norms", points=1)
def test_zero_columns(submission):
    W = _W(2, 3, 5, "zeros")
    W[:, :, 1] = 0
    got = call(submission, W, what="column_norms")
    expect(close(got, W.norm(dim=1)), "Edge case: a column of zeros has length 0 (and every value is finite).")
'''

_MISTAKES = '''\
"""Lesson {number}: the mistakes learners make, used by the checks to diagnose and by the tests to prove them."""

from __future__ import annotations

import torch

from autograder.toolkit import Mistake


def _squared(W):
    return (W ** 2).sum(dim=1)


def _wrong_axis(W):
    return W.norm(dim=2)


def _rows_not_columns(W):
    return W.norm(dim=-1)[..., :1].expand(W.shape[0], W.shape[2]).contiguous()


def _float32(W):
    return W.float().norm(dim=1)


def _first_instance(W):
    return W[0].norm(dim=0).expand(W.shape[0], -1).contiguous()


def _absolute_sum(W):
    return W.abs().sum(dim=1)


MISTAKES = {{
    "column_norms": [
        Mistake("squared", _squared, "square root", "These are the squared lengths: take the square root."),
        Mistake("wrong_axis", _wrong_axis, "shape", compare=False),
        Mistake("rows_not_columns", _rows_not_columns, "column",
                "You measured rows of W: a feature is a column W[:, :, i], so reduce over the hidden dimension."),
        Mistake("float32", _float32, "float64", compare=False),
        Mistake("first_instance", _first_instance, "instance",
                "Every instance got instance 0's norms: keep the instance dimension."),
        Mistake("absolute_sum", _absolute_sum, "L1",
                "That is the L1 norm (a sum of absolute values): the length is the L2 norm."),
    ],
}}
'''

_ALTERNATIVES = '''\
"""Lesson {number}: correct implementations written differently; each keeps full marks."""

from __future__ import annotations

import torch


def norms_with_sqrt(W):
    return (W ** 2).sum(dim=1).sqrt()


def norms_with_linalg(W):
    return torch.linalg.vector_norm(W, dim=1)


def norms_by_instance(W):
    return torch.stack([torch.linalg.norm(w, dim=0) for w in W])


ALTERNATIVES = {{"column_norms": [norms_with_sqrt, norms_with_linalg, norms_by_instance]}}
'''

_FIGURES = '''\
"""Lesson {number}'s expected figures, drawn with the reference library."""

from __future__ import annotations

from pathlib import Path

import torch


def make(out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    W = torch.randn(1, 2, 6, generator=torch.Generator().manual_seed(0))
    fig, ax = plt.subplots(figsize=(4, 2.5))
    ax.bar(range(6), W[0].norm(dim=0).tolist())
    ax.set_xlabel("feature")
    ax.set_ylabel("column length")
    path = Path(out_dir) / "column_norms.png"
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]
'''

_TEST = '''\
"""Lesson {number}'s own tests (the generic proofs of its checks are in tests/test_lesson_proofs.py)."""

from __future__ import annotations

from lesson_tools import solution_namespace


def test_the_solution_defines_every_exercise():
    assert callable(solution_namespace("{slug}")["column_norms"])
'''

_SOLUTION = '''\
def column_norms(W: torch.Tensor) -> torch.Tensor:
    """The length ||W_i|| of every feature's column.

    Args:
        W: ``(n_instances, n_hidden, n_features)``.

    Returns:
        ``(n_instances, n_features)``, in W's dtype.
    """
    ### BEGIN SOLUTION
    return torch.linalg.vector_norm(W, dim=1)
    ### END SOLUTION
'''


def _cell(kind: str, source: str, **nbgrader: object) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source)
    if nbgrader:
        cell.metadata["nbgrader"] = {"schema_version": 3, **nbgrader}
    return cell


def _notebook(slug: str, number: str, title: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.cells = [
        _cell("markdown", f"# Lesson {int(number)} · {title}\n\nWhat you will build, and what you will see.",
              grade=False, solution=False, locked=True, grade_id="title"),
        _cell("code", 'SCALE = "cpu"   # "paper": the paper\'s sizes (use a GPU)\nimport torch\n\nimport supercourse\n'
                      "from supercourse.course import sized\nfrom autograder import check"),
        _cell("markdown", "## 1. Column norms\n\nEach feature $i$ is a column $W_i$ of $W$; its length "
                          "$\\|W_i\\|$ says how strongly the model represents it.",
              grade=False, solution=False, locked=True, grade_id="norms_intro"),
        _cell("code", _SOLUTION, grade=False, solution=True, locked=False, grade_id="column_norms"),
        _cell("code", '# Check your work (autograded, 4 points)\ncheck("' + number + '.column_norms", column_norms)',
              grade=True, solution=False, locked=True, points=4, grade_id="check_column_norms"),
        _cell("markdown", "You should see one bar per feature:\n\n![Column lengths](figures/column_norms.png)",
              grade=False, solution=False, locked=True, grade_id="norms_expected"),
    ]
    return nb


def new_lesson(slug: str, title: str | None = None, root: Path | None = None, build: bool = True) -> Path:
    """Make ``solutions/<slug>/`` (``slug`` like ``"13-feature-splitting"``); returns the folder.

    Raises ``ValueError`` for a malformed slug, a number already taken, or an existing folder.
    """
    if not isinstance(slug, str) or not SLUG.fullmatch(slug):
        raise ValueError(f"slug must look like NN-words-with-dashes (e.g. 13-feature-splitting), got {slug!r}")
    number = slug.split("-", 1)[0]
    base = Path(root) if root is not None else SOLUTIONS
    taken = {lesson.number: lesson.slug for lesson in all_lessons()} if root is None else {}
    if number in taken:
        raise ValueError(f"lesson number {number} is taken by {taken[number]}")
    folder = base / slug
    if folder.exists():
        raise ValueError(f"{folder} already exists")
    title = title or slug.split("-", 1)[1].replace("-", " ").capitalize()
    (folder / "figures").mkdir(parents=True)
    fields = {"number": number, "title": title, "slug": slug}
    for name, template in (("checks.py", _CHECKS), ("mistakes.py", _MISTAKES), ("alternatives.py", _ALTERNATIVES),
                           ("figures.py", _FIGURES), (f"test_lesson{number}.py", _TEST)):
        (folder / name).write_text(textwrap.dedent(template.format(**fields)), encoding="utf-8")
    nbformat.write(_notebook(slug, number, title), folder / f"{slug}.ipynb")
    if build and root is None:
        from . import lessons
        from .build import build_lessons, make_figures

        lessons._discover.cache_clear()
        make_figures([slug])
        build_lessons([slug])
    return folder
