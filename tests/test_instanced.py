"""supercourse.instanced: one base for every model of the course, so train() has one contract.

ToyModel, NeuronModel, AbsValueModel (through SparseFeatureModel) and the SAE
check batches the same way, define their loss as per_instance_loss summed, and
declare which of their methods a hand-written gradient reproduces.
"""

from __future__ import annotations

import pytest
import torch

from supercourse import ToyModel
from supercourse.correlation import SetModel
from supercourse.instanced import InstancedModel
from supercourse.model import SparseFeatureModel
from supercourse.neurons import AbsValueModel, NeuronModel
from supercourse.sae import SparseAutoencoder

FEATURE_MODELS = [ToyModel, NeuronModel, AbsValueModel]


def _all_models():
    return [ToyModel(5, 2, 3, seed=0), NeuronModel(5, 2, 3, seed=0), AbsValueModel(5, 2, 3, seed=0),
            SetModel(1, 5, 2, n_instances=3, seed=0), SparseAutoencoder(5, 8, 3, seed=0)]


def test_every_course_model_is_an_instanced_model():
    for model in _all_models():
        assert isinstance(model, InstancedModel), type(model).__name__
        assert model.n_instances == 3 and model.n_inputs == 5
        assert model.device == torch.device("cpu") and model.dtype == torch.float32
    for cls in FEATURE_MODELS:
        assert issubclass(cls, SparseFeatureModel)


@pytest.mark.parametrize("model", _all_models(), ids=lambda m: type(m).__name__)
def test_one_batch_check_names_the_argument_and_the_models_sizes(model):
    dim = "d_in" if isinstance(model, SparseAutoencoder) else "n_features"
    with pytest.raises(ValueError, match=rf"x must have shape \(batch, n_instances=3, {dim}=5\), got \(4, 3, 6\)"):
        model._check_batch("x", torch.zeros(4, 3, 6))
    with pytest.raises(TypeError, match="x has dtype torch.float64 but the model's weights are torch.float32"):
        model._check_batch("x", torch.zeros(4, 3, 5, dtype=torch.float64))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        model._check_batch("x", [[0.0]])


@pytest.mark.parametrize("model", _all_models(), ids=lambda m: type(m).__name__)
def test_the_loss_is_the_per_instance_loss_summed(model):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 5, generator=gen)
    out = model(x)
    per = model.per_instance_loss(x, out)
    assert per.shape == (3,) and (per >= 0).all()
    torch.testing.assert_close(model.loss(x, out), per.sum())


def test_the_feature_models_share_the_importance_weighted_loss_against_their_target():
    imp = torch.tensor([1.0, 0.5, 0.25, 0.0, 2.0])
    x = torch.rand(6, 2, 5, generator=torch.Generator().manual_seed(1)) * 2 - 1
    out = torch.zeros_like(x)
    for cls in FEATURE_MODELS:
        model = cls(5, 2, 2, importance=imp, seed=0)
        expected = (imp * (model.target(x) - out) ** 2).mean(dim=(0, 2))
        torch.testing.assert_close(model.per_instance_loss(x, out), expected)
    assert torch.equal(AbsValueModel(5, 2, 2).target(x), x.abs()) and torch.equal(ToyModel(5, 2, 2).target(x), x)


def test_the_base_has_no_data_and_no_loss_of_its_own():
    class Bare(InstancedModel):
        def __init__(self):
            super().__init__(2)
            self.w = torch.nn.Parameter(torch.zeros(2, 3))
            self.n_features = 3

    bare = Bare()
    with pytest.raises(TypeError, match="Bare has no data of its own.*dataset="):
        bare.generate_batch(4)
    with pytest.raises(NotImplementedError, match="per_instance_loss"):
        bare.loss(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3))
    assert bare._analytic_step(4, None, lambda: None) is None and bare.GRADIENT_OF == ()
    with pytest.raises(ValueError, match="n_instances must be a positive int, got 0"):
        SparseAutoencoder(5, 8, 0)


def test_gradient_owners_name_methods_they_define():
    for cls in (ToyModel, NeuronModel, AbsValueModel, SparseAutoencoder):
        assert cls.GRADIENT_OF and all(callable(getattr(cls, name)) for name in cls.GRADIENT_OF), cls.__name__


def test_train_checks_a_dataset_against_the_models_inputs():
    from supercourse import train

    sae = SparseAutoencoder(5, 8, 2, seed=0)
    with pytest.raises(ValueError, match=r"dataset must have shape \(n_examples >= 1, n_instances=2, d_in=5\)"):
        train(sae, steps=2, dataset=torch.zeros(4, 2, 6), progress=False, device="cpu")
    h = train(sae, steps=3, batch_size=4, dataset=torch.rand(6, 2, 5), progress=False, device="cpu", seed=0)
    assert h.extra["path"] == "analytic" and h.batch_size == 4
