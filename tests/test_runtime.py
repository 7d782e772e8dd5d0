import random

import numpy as np
import pytest
import torch

from aigc_course import get_device, make_generator, seed_everything
from aigc_course.runtime import resolve_device


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


@pytest.mark.parametrize("name", ["meta", "xla", "ipu", "hpu", "xpu", "vulkan"])
def test_undocumented_devices_are_refused(monkeypatch, name):
    """torch knows more device types than the course runs on; only cpu, cuda and mps are accepted."""
    monkeypatch.setenv("AIGC_DEVICE", name)
    with pytest.raises(ValueError, match=f"AIGC_DEVICE='{name}': the course runs on 'cpu', 'cuda', 'cuda:N' or 'mps'"):
        get_device()
    with pytest.raises(ValueError, match=f"device='{name}': the course runs on"):
        resolve_device(name)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device(None) == get_device()
    with pytest.raises(ValueError, match="expected a device name"):
        resolve_device(0.5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_resolve_device_without_cuda():
    with pytest.raises(RuntimeError, match="device='cuda:1' asks for CUDA"):
        resolve_device("cuda:1")


def test_make_generator_from_an_int_is_its_own_stream():
    a = torch.rand(4, generator=make_generator(7))
    torch.rand(100)  # whatever ran before
    assert torch.equal(torch.rand(4, generator=make_generator(7)), a)
    assert make_generator(7).device == torch.device("cpu")


def test_make_generator_none_follows_the_global_rng():
    torch.manual_seed(3)
    a = torch.rand(4, generator=make_generator(None))
    b = torch.rand(4, generator=make_generator(None))
    torch.manual_seed(3)
    assert torch.equal(torch.rand(4, generator=make_generator(None)), a)  # seed_everything makes None repeatable
    assert not torch.equal(a, b)  # and each call draws a fresh stream


@pytest.mark.parametrize("seed", [-1, 1.5, "3", True, np.int64(2), [1]])
def test_make_generator_refuses_bad_seeds(seed):
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        make_generator(seed)


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


def test_seed_everything_turns_on_deterministic_kernels_without_loading_the_compiler():
    # torch.use_deterministic_algorithms imports torch._inductor (~2 s per fresh kernel);
    # seed_everything sets the same flag without it. A fresh interpreter sees the import cost.
    import subprocess
    import sys

    code = (
        "import sys, torch; from aigc_course import seed_everything; seed_everything(0); "
        "print(torch.are_deterministic_algorithms_enabled(), "
        "torch.is_deterministic_algorithms_warn_only_enabled(), 'torch._inductor' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "False"]
