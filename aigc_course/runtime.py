"""Where code runs and how it is made repeatable.

``get_device`` picks the device every notebook and script uses; the ``AIGC_DEVICE``
environment variable overrides it. ``seed_everything`` seeds every source of randomness.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

DEVICE_ENV = "AIGC_DEVICE"


def get_device() -> torch.device:
    """Return the device to compute on.

    Order: ``$AIGC_DEVICE`` if set (``cpu``, ``cuda``, ``cuda:1``, ``mps``), else CUDA
    when available, else CPU. An explicit request for a device that is not present
    raises ``RuntimeError`` rather than silently falling back: a GPU CI job that runs
    on the CPU would report the wrong thing.
    """
    requested = os.environ.get(DEVICE_ENV, "").strip()
    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError as err:
            raise ValueError(
                f"{DEVICE_ENV}={requested!r} is not a device name; "
                "expected 'cpu', 'cuda', 'cuda:N' or 'mps'"
            ) from err
        if device.type == "cuda":
            if not torch.cuda.is_available():
                raise RuntimeError(
                    f"{DEVICE_ENV}={requested!r} asks for CUDA, but torch {torch.__version__} "
                    "sees no CUDA device on this machine. Unset it to use the CPU."
                )
            if device.index is not None and device.index >= torch.cuda.device_count():
                raise RuntimeError(
                    f"{DEVICE_ENV}={requested!r}: only {torch.cuda.device_count()} CUDA "
                    "device(s) are present."
                )
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError(f"{DEVICE_ENV}={requested!r} asks for MPS, which is not available.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def seed_everything(seed: int, deterministic: bool = True) -> torch.Generator:
    """Seed Python's ``random``, NumPy and torch (CPU and CUDA).

    With ``deterministic=True`` it also asks torch for deterministic kernels
    (``warn_only`` so that ops without one still run) and turns off cuDNN autotuning.
    Returns a ``torch.Generator`` seeded the same way, for code that wants its own stream.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return torch.Generator().manual_seed(seed)
