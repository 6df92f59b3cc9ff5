"""supercourse: the reference library of the Toy Models of Superposition course.

The package reads like the course's table of contents:

* :mod:`supercourse.data` sparse features (lessons 1, 6)
* :mod:`supercourse.model` the toy model (lesson 1); :mod:`supercourse.instanced` what every model shares
  (many small models side by side)
* :mod:`supercourse.training` batched training on any device (lesson 2), with :mod:`supercourse.fast`,
  :mod:`supercourse.analytic` (hand-written gradients), :mod:`supercourse.threads`, :mod:`supercourse.schedules`
  and :mod:`supercourse.reference_loop` (the plain loop, written out)
* :mod:`supercourse.metrics` measuring superposition and geometry (lessons 3, 5)
* :mod:`supercourse.theory` the n=2, m=1 phase diagram, :mod:`supercourse.phase` empirical ones (lesson 4)
* :mod:`supercourse.geometry` tegum factors and polytopes (lesson 5)
* :mod:`supercourse.correlation` correlated and anticorrelated features (lesson 6)
* :mod:`supercourse.dynamics` and :mod:`supercourse.adversarial` learning dynamics, attacks (lesson 7)
* :mod:`supercourse.neurons` models with a privileged basis (lesson 8)
* :mod:`supercourse.sae` sparse autoencoders (lesson 9)
* :mod:`supercourse.memorization` memorization and double descent (lesson 10)
* :mod:`supercourse.contexts` and :mod:`supercourse.permuted_digits` many models in one set of weights (lesson 11)
* :mod:`supercourse.disentanglement` disentanglement metrics under superposition (lesson 12)
* :mod:`supercourse.plots` and the ``*_plots`` modules the figures
* :mod:`supercourse.experiments` the paper's experiments, behind ``supercourse reproduce``
* :mod:`supercourse.course`, :mod:`supercourse.devices`, :mod:`supercourse.bench`, :mod:`supercourse.doctor`
  notebook helpers, device choice, speed and set-up checks
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
