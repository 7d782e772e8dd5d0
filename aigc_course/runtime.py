"""Where code runs and how it is made repeatable.

``get_device`` picks the device every notebook and script uses; the ``AIGC_DEVICE``
environment variable overrides it, and ``resolve_device`` checks a device someone asked for.
``seed_everything`` seeds every source of randomness; ``make_generator`` is the one way a
``seed`` argument becomes a ``torch.Generator``.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

DEVICE_ENV = "AIGC_DEVICE"
DEVICE_TYPES = ("cpu", "cuda", "mps")  # the devices the course documents and tests
_EXPECTED_DEVICES = "'cpu', 'cuda', 'cuda:N' or 'mps'"


def _checked_device(requested: torch.device | str, what: str) -> torch.device:
    """``requested`` as a ``torch.device`` if it is a documented device that is present here.

    ``what`` names where the request came from (``"device='cuda'"``, ``"AIGC_DEVICE='cuda'"``),
    so the message points at the argument or variable to change.
    """
    if isinstance(requested, str):
        try:
            device = torch.device(requested.strip())
        except RuntimeError as err:
            raise ValueError(f"{what} is not a device name; expected {_EXPECTED_DEVICES}") from err
    elif isinstance(requested, torch.device):
        device = requested
    else:
        raise ValueError(f"{what}: expected a device name ({_EXPECTED_DEVICES}) or a torch.device, "
                         f"got {type(requested).__name__}")
    if device.type not in DEVICE_TYPES:
        raise ValueError(f"{what}: the course runs on {_EXPECTED_DEVICES}, not {device.type!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"{what} asks for CUDA, but torch {torch.__version__} sees no CUDA device on this "
                "machine. Use 'cpu' (or unset AIGC_DEVICE)."
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(f"{what}: only {torch.cuda.device_count()} CUDA device(s) are present.")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"{what} asks for MPS, which is not available on this machine.")
    return device


def get_device() -> torch.device:
    """Return the device to compute on.

    Order: ``$AIGC_DEVICE`` if set (``cpu``, ``cuda``, ``cuda:1``, ``mps``; nothing else), else
    CUDA when available, else CPU. An explicit request for a device that is not present raises
    ``RuntimeError`` rather than silently falling back: a GPU CI job that runs on the CPU would
    report the wrong thing. A name that is not one of those devices raises ``ValueError``.
    """
    requested = os.environ.get(DEVICE_ENV, "").strip()
    if requested:
        return _checked_device(requested, f"{DEVICE_ENV}={requested!r}")
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def resolve_device(device: torch.device | str | None = None) -> torch.device:
    """The device for a ``device=`` argument: ``None`` means :func:`get_device`.

    Accepts only the documented devices and only when present, with the same errors as
    :func:`get_device` (``ValueError`` for a name that is not one, ``RuntimeError`` for a
    device this machine lacks).
    """
    if device is None:
        return get_device()
    return _checked_device(device, f"device={str(device)!r}")


def check_seed(seed, name: str = "seed") -> int:
    """``seed`` if it is a non-negative int (not a bool); otherwise ``ValueError`` naming it."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"{name} must be a non-negative int, got {seed!r}")
    return seed


def make_generator(seed: int | None) -> torch.Generator:
    """The ``torch.Generator`` (on the CPU) for a ``seed`` argument.

    An int gives its own stream: the same draws whatever ran before. ``None`` seeds the
    generator with one draw from torch's global CPU generator, so ``seed_everything(s)`` at the
    top of a notebook makes ``seed=None`` calls repeatable too. Noise is drawn on this CPU
    generator and then moved to the device, so CPU and CUDA draw the same noise for a seed.
    """
    if seed is None:
        seed = int(torch.randint(0, 2**31 - 1, ()).item())
    return torch.Generator().manual_seed(check_seed(seed))


def _use_deterministic_kernels() -> None:
    """``torch.use_deterministic_algorithms(True, warn_only=True)``, without its import cost.

    The public call also imports ``torch._inductor`` to set the compiler's matching option,
    which takes about 2 s of CPU in every fresh kernel. The course never compiles, so unless
    the compiler is already loaded, set torch's own flag, which is all the call does for
    eager code.
    """
    import sys

    set_flag = getattr(torch._C, "_set_deterministic_algorithms", None)
    if set_flag is None or "torch._inductor" in sys.modules:
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        set_flag(True, warn_only=True)


def seed_everything(seed: int, deterministic: bool = True) -> torch.Generator:
    """Seed Python's ``random``, NumPy and torch (CPU and CUDA).

    With ``deterministic=True`` it also asks torch for deterministic kernels
    (``warn_only`` so that ops without one still run) and turns off cuDNN autotuning.
    Returns a ``torch.Generator`` seeded the same way, for code that wants its own stream.
    """
    check_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        _use_deterministic_kernels()
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return torch.Generator().manual_seed(seed)


def timed_training(train, threads: int, device: torch.device):
    """Run ``train()`` and return ``(its result, record)`` for a checkpoint's config.

    The record holds the wall and CPU seconds (all threads together: what an idle machine
    needs) and the machine it ran on, with the 1-minute load before and after, so a time
    measured on a shared machine says so.
    """
    import platform
    import time

    load_before = os.getloadavg()
    start, cpu_start = time.perf_counter(), time.process_time()
    result = train()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    load_after = os.getloadavg()
    record = {
        "train_seconds": round(wall, 1),
        "train_cpu_seconds": round(cpu, 1),
        "train_machine": {"threads": threads, "device": str(device), "cpus": os.cpu_count(),
                          "torch": torch.__version__, "platform": platform.platform(),
                          "loadavg_1min_before": round(load_before[0], 2),
                          "loadavg_1min_after": round(load_after[0], 2)},
    }
    return result, record
