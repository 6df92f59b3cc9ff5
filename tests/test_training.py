"""supercourse.train: History, determinism, the AdamW recipe, the autograd path and argument checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import supercourse
from supercourse import History, ToyModel, train


def quick(model, **kw):
    kw.setdefault("steps", 20)
    kw.setdefault("batch_size", 32)
    kw.setdefault("progress", False)
    kw.setdefault("device", "cpu")
    return train(model, **kw)


# ---------------------------------------------------------------- History


def test_history_shapes_and_log_steps():
    m = ToyModel(5, 2, n_instances=3, seed=0)
    h = quick(m, steps=25, log_every=10, seed=0)
    assert isinstance(h, History)
    assert h.steps.tolist() == [0, 10, 20, 24]
    assert h.losses.shape == (4, 3) and h.losses.device.type == "cpu"
    assert torch.isfinite(h.losses).all() and (h.losses >= 0).all()
    assert torch.equal(h.final_loss, h.losses[-1])
    assert h.device == "cpu" and h.batch_size == 32 and h.n_instances == 3
    assert h.extra["seed"] == 0
    assert h.wall_time > 0 and h.steps_per_second > 0
    assert h.instance_steps_per_second == pytest.approx(3 * h.steps_per_second)


def test_default_log_every_gives_about_100_points():
    h = quick(ToyModel(3, 2, seed=0), steps=1000, batch_size=4, seed=0)
    # every 1000 // 100 = 10 steps from 0, plus the last step
    assert h.steps.tolist() == list(range(0, 1000, 10)) + [999]
    h = quick(ToyModel(3, 2, seed=0), steps=7, batch_size=4, seed=0)
    assert h.steps.tolist() == list(range(7))


def test_logged_loss_is_the_loss_of_the_batch_before_the_update():
    # At step 0 the bias is 0 and W is the init: the logged loss is the init's loss on step 0's batch,
    # whose expectation we can bound: with lr tiny the first losses are all close to the init's loss.
    m = ToyModel(6, 3, n_instances=2, seed=1)
    x = m.generate_batch(200_000, generator=torch.Generator().manual_seed(0))
    init_loss = m.per_instance_loss(x, m(x)).detach()
    h = quick(m, steps=3, batch_size=50_000, lr=1e-9, seed=0)
    assert torch.allclose(h.losses[0], init_loss, rtol=0.02)


def test_seeded_cpu_training_is_deterministic():
    runs = []
    for seed in (0, 0, 1):
        m = ToyModel(6, 2, n_instances=2, feature_probability=0.3, seed=5)
        h = quick(m, steps=40, seed=seed)
        runs.append((m.W.detach().clone(), m.b_final.detach().clone(), h.losses))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert torch.equal(runs[0][2], runs[1][2])
    assert not torch.equal(runs[0][0], runs[2][0])


def test_unseeded_training_records_its_seed():
    m = ToyModel(3, 2, seed=0)
    h = quick(m, steps=2)
    seed = h.extra["seed"]
    assert isinstance(seed, int)
    m2 = ToyModel(3, 2, seed=0)
    quick(m2, steps=2, seed=seed)
    assert torch.equal(m.W, m2.W), "rerunning with the recorded seed reproduces the run"


def test_training_reduces_the_loss():
    m = ToyModel(5, 2, n_instances=2, feature_probability=torch.tensor([1.0, 0.1]), seed=0)
    h = quick(m, steps=300, batch_size=256, lr=1e-2, seed=0, log_every=30)
    first, last = h.losses[:2].mean(0), h.losses[-3:].mean(0)
    assert (last < 0.5 * first).all(), (first, last)


def test_grads_are_cleared_after_training():
    m = ToyModel(3, 2, seed=0)
    quick(m, steps=3)
    assert m.W.grad is None and m.b_final.grad is None


def test_weight_decay_is_decoupled_adamw():
    # density 0: every x is 0, so the loss gradient is exactly 0 and only AdamW's decay moves W:
    # W_t = W_0 * (1 - lr * wd)^t.
    m = ToyModel(4, 3, n_instances=2, feature_probability=0.0, seed=2)
    w0 = m.W.detach().clone()
    lr, wd, steps = 0.01, 0.5, 30
    quick(m, steps=steps, lr=lr, weight_decay=wd, seed=0)
    assert torch.allclose(m.W.detach(), w0 * (1 - lr * wd) ** steps, rtol=1e-5)
    assert torch.equal(m.b_final.detach(), torch.zeros(2, 4))
    m0 = ToyModel(4, 3, n_instances=2, feature_probability=0.0, seed=2)
    quick(m0, steps=steps, lr=lr, weight_decay=0.0, seed=0)
    assert torch.equal(m0.W.detach(), w0)


def test_model_is_moved_to_the_device():
    m = ToyModel(3, 2, seed=0).double()
    quick(m, steps=3, device=torch.device("cpu"))
    assert m.W.device.type == "cpu" and m.W.dtype == torch.float64


# ---------------------------------------------------------------- the autograd path


class Wrapped(nn.Module):
    """A ToyModel behind a module that is not a ToyModel: train() must use autograd."""

    def __init__(self, inner: ToyModel, per_instance: bool = True) -> None:
        super().__init__()
        self.inner = inner
        self.n_instances = inner.n_instances
        if per_instance:
            self.per_instance_loss = inner.per_instance_loss

    def forward(self, x):
        return self.inner(x)

    def generate_batch(self, batch_size, generator=None):
        return self.inner.generate_batch(batch_size, generator=generator)

    def loss(self, x, x_hat):
        return self.inner.loss(x, x_hat)


def test_autograd_path_trains_any_module():
    m = ToyModel(5, 2, n_instances=2, seed=0)
    w0 = m.W.detach().clone()
    h = quick(Wrapped(m), steps=100, batch_size=128, lr=2e-2, seed=0, log_every=25)
    assert not torch.equal(m.W.detach(), w0)
    assert h.losses.shape == (5, 2) and h.n_instances == 2
    assert (h.losses[-1] < 0.7 * h.losses[0]).all()


def test_autograd_path_without_per_instance_loss_logs_the_total_once():
    m = ToyModel(5, 2, n_instances=3, seed=0)
    h = quick(Wrapped(m, per_instance=False), steps=100, batch_size=128, lr=2e-2, seed=0, log_every=25)
    assert h.n_instances == 3, "throughput still counts every instance"
    assert h.losses.shape == (5, 1), "the total is not repeated under each instance"
    assert h.losses[-1, 0] < 0.7 * h.losses[0, 0]


def test_autograd_path_without_per_instance_loss_or_instances_logs_the_total():
    m = ToyModel(5, 2, n_instances=2, seed=0)
    plain = Wrapped(m, per_instance=False)
    del plain.n_instances  # a module that says nothing about instances
    h = quick(plain, steps=100, batch_size=128, lr=2e-2, seed=0, log_every=25)
    assert h.losses.shape == (5, 1) and h.n_instances == 1
    assert h.losses[-1, 0] < 0.7 * h.losses[0, 0]


def test_autograd_path_is_deterministic():
    out = []
    for _ in range(2):
        m = ToyModel(4, 2, seed=3)
        quick(Wrapped(m), steps=10, seed=4)
        out.append(m.W.detach().clone())
    assert torch.equal(out[0], out[1])


# ---------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "kw, err, name",
    [
        (dict(steps=0), ValueError, "steps"),
        (dict(steps=-5), ValueError, "steps"),
        (dict(steps=2.5), TypeError, "steps"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(batch_size="64"), TypeError, "batch_size"),
        (dict(lr=0.0), ValueError, "lr"),
        (dict(lr=-1e-3), ValueError, "lr"),
        (dict(lr=float("nan")), ValueError, "lr"),
        (dict(lr="1e-3"), TypeError, "lr"),
        (dict(weight_decay=-0.1), ValueError, "weight_decay"),
        (dict(weight_decay=None), TypeError, "weight_decay"),
        (dict(lr_schedule="warmup"), ValueError, "lr_schedule"),
        (dict(log_every=0), ValueError, "log_every"),
        (dict(device="tpu"), ValueError, "device"),
    ],
)
def test_bad_arguments_name_themselves(kw, err, name):
    m = ToyModel(3, 2, seed=0)
    w0 = m.W.detach().clone()
    with pytest.raises(err, match=name):
        train(m, progress=False, **{"steps": 2, "batch_size": 4, **kw})
    assert torch.equal(m.W.detach(), w0), "a rejected call must not train"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_gpu():
    with pytest.raises(ValueError, match="device='cuda'"):
        train(ToyModel(3, 2), steps=2, device="cuda", progress=False)


def test_model_must_be_a_module():
    with pytest.raises(TypeError, match="model"):
        train(object(), steps=2, progress=False)


def test_module_without_generate_batch():
    with pytest.raises(TypeError, match="generate_batch"):
        train(nn.Linear(2, 2), steps=2, progress=False, device="cpu")


def test_module_without_parameters():
    class Empty(nn.Module):
        def generate_batch(self, batch_size, generator=None):
            return torch.zeros(batch_size, 1)

        def loss(self, x, x_hat):
            return x.sum()

    with pytest.raises(ValueError, match="parameters"):
        train(Empty(), steps=2, progress=False, device="cpu")


def test_progress_bar_runs(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("SUPERCOURSE_GRADING", raising=False)
    h = train(ToyModel(3, 2, seed=0), steps=5, batch_size=4, progress=True, device="cpu", seed=0)
    assert h.losses.shape == (5, 1)


def test_package_exports():
    assert supercourse.train is train and supercourse.ToyModel is ToyModel


@pytest.mark.cuda
def test_train_on_cuda():
    m = ToyModel(5, 2, n_instances=3, feature_probability=0.1, seed=0)
    h = train(m, steps=50, batch_size=64, device="cuda", progress=False, seed=0)
    assert m.W.device.type == "cuda" and m.b_final.device.type == "cuda"
    assert m.feature_probability.device.type == "cuda" and m.importance.device.type == "cuda"
    assert h.device.startswith("cuda") and h.losses.device.type == "cpu"
    assert torch.isfinite(h.losses).all()
    # and the autograd path
    m2 = ToyModel(5, 2, seed=0)
    train(Wrapped(m2), steps=5, batch_size=16, device="cuda", progress=False, seed=0)
    assert m2.W.device.type == "cuda"
