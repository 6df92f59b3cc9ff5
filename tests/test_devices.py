"""supercourse.pick_device: cuda, then mps, then cpu; named devices are checked."""

from __future__ import annotations

import pytest
import torch

import supercourse
from supercourse import devices, pick_device


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)


def test_default_is_cpu_without_accelerators(no_gpu):
    assert pick_device() == torch.device("cpu")
    assert pick_device(None) == torch.device("cpu")


def test_default_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(devices, "_mps_available", lambda: True)
    assert pick_device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device() == torch.device("mps")


def test_default_matches_this_machine():
    expected = "cuda" if torch.cuda.is_available() else ("mps" if devices._mps_available() else "cpu")
    assert pick_device().type == expected


@pytest.mark.parametrize("name", ["cpu", torch.device("cpu"), "cpu:0"])
def test_cpu_by_name(name):
    dev = pick_device(name)
    assert isinstance(dev, torch.device) and dev.type == "cpu"


@pytest.mark.parametrize("name", ["cuda", "cuda:0", torch.device("cuda")])
def test_cuda_without_gpu_raises_naming_device(no_gpu, name):
    with pytest.raises(ValueError, match=r"device.*no CUDA GPU"):
        pick_device(name)


def test_cuda_index_out_of_range(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert pick_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ValueError, match=r"device='cuda:3'"):
        pick_device("cuda:3")


def test_mps_without_mps_raises(no_gpu):
    with pytest.raises(ValueError, match=r"device.*MPS"):
        pick_device("mps")


@pytest.mark.parametrize("bad", ["tpu", "gpu", "meta", "", 3.5, ["cpu"]])
def test_unknown_device_raises_naming_device(bad):
    with pytest.raises(ValueError, match="device"):
        pick_device(bad)


def test_train_asks_pick_device(no_gpu):
    with pytest.raises(ValueError, match="device"):
        supercourse.train(supercourse.ToyModel(3, 2), steps=1, device="cuda", progress=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_cuda_on_this_machine_raises():
    with pytest.raises(ValueError, match="device='cuda'"):
        pick_device("cuda")


@pytest.mark.cuda
def test_cuda_with_gpu():
    assert pick_device("cuda").type == "cuda"
    assert pick_device().type == "cuda"
