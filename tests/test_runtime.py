import random

import numpy as np
import pytest
import torch

from aigc_course import get_device, seed_everything


def test_default_device_is_cuda_or_cpu(monkeypatch):
    monkeypatch.delenv("AIGC_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert get_device().type == expected


def test_env_var_overrides(monkeypatch):
    monkeypatch.setenv("AIGC_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_request_without_cuda_is_an_error(monkeypatch):
    monkeypatch.setenv("AIGC_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="AIGC_DEVICE='cuda'.*no CUDA"):
        get_device()


def test_bad_device_name(monkeypatch):
    monkeypatch.setenv("AIGC_DEVICE", "gpu-please")
    with pytest.raises(ValueError, match="AIGC_DEVICE='gpu-please' is not a device name"):
        get_device()


def test_seed_everything_repeats_every_source():
    def draw():
        return random.random(), np.random.rand(), torch.rand(3).tolist()

    seed_everything(123)
    first = draw()
    seed_everything(123)
    assert draw() == first
    seed_everything(124)
    assert draw() != first


def test_seed_everything_returns_seeded_generator():
    a = torch.rand(4, generator=seed_everything(5))
    b = torch.rand(4, generator=seed_everything(5))
    assert torch.equal(a, b)


@pytest.mark.parametrize("seed", [-1, 1.5, "3", True])
def test_seed_must_be_non_negative_int(seed):
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        seed_everything(seed)
