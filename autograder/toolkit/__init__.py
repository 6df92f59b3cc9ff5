"""The shared check toolkit: what every ``autograder/checks/lessonNN.py`` is built from.

One module per idea:

* :mod:`.randomness`: check inputs drawn from the grading run's secret (:func:`secret_gen`, :func:`secret_seed`);
* :mod:`.formatting`: numbers and tensors in messages, with digits enough to see a difference;
* :mod:`.weights`: random ``W`` with controllable norms and ranks, zero columns, tiny norms, Parameters;
* :mod:`.rotations`: random rotations;
* :mod:`.polytopes`: the polytopes of :mod:`supercourse.geometry` as weight columns, tegum products;
* :mod:`.contracts`: what a returned tensor must be (shape, kind, dtype/device, finite) and comparisons;
* :mod:`.stats`: statistical tests with stated error rates;
* :mod:`.mistakes`: mistake tables, used to diagnose and, in the tests, to prove the checks bite;
* :mod:`.properties`: a generator for the property families tensor exercises share;
* :mod:`.bars`: reading bar charts from :func:`autograder.worker.figures.figure_data`'s plain data.
"""

from .contracts import ATOL, RTOL, close, first_difference, show_difference, tensor_out
from .formatting import describe, fmt, fmt_pair, number
from .mistakes import Mistake, diagnose, outputs_match
from .properties import Case, tensor_properties
from .randomness import secret_gen, secret_seed
from .rotations import rotate, rotation
from .weights import TINY, USUAL, as_parameter, random_W, unit_columns, with_zero_columns

__all__ = [
    "ATOL", "RTOL", "close", "first_difference", "show_difference", "tensor_out",
    "describe", "fmt", "fmt_pair", "number",
    "Mistake", "diagnose", "outputs_match",
    "Case", "tensor_properties",
    "secret_gen", "secret_seed",
    "rotate", "rotation",
    "TINY", "USUAL", "as_parameter", "random_W", "unit_columns", "with_zero_columns",
]
