"""supercourse: the reference library of the Toy Models of Superposition course.

The package reads like the course's table of contents:

* :mod:`supercourse.data` sparse features (lesson 1, 6)
* :mod:`supercourse.model` the toy model (lesson 1)
* :mod:`supercourse.training` batched training on any device (lesson 2)
* :mod:`supercourse.metrics` measuring superposition and geometry (lessons 3, 5)
* :mod:`supercourse.theory` the n=2, m=1 phase diagram (lesson 4)
* :mod:`supercourse.plots` the paper's figures
* :mod:`supercourse.experiments` the paper's experiments, behind ``supercourse reproduce``
"""

from . import data, metrics, theory
from .devices import pick_device
from .model import ToyModel
from .training import History, train

__all__ = ["ToyModel", "train", "History", "pick_device", "data", "metrics", "theory", "plots", "__version__"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # matplotlib is imported only when plots are asked for.
    if name == "plots":
        import importlib

        return importlib.import_module(".plots", __name__)
    raise AttributeError(f"module 'supercourse' has no attribute {name!r}")
