"""The 2-D Gaussian mixtures of the GAN mode-collapse literature (VEEGAN, PacGAN).

:func:`ring_gaussians` draws from 8 Gaussians on a circle, :func:`grid_gaussians` from 25 on a
5x5 grid; :func:`ring_log_density` is the ring's exact density.
"""

from __future__ import annotations

import math

import torch

from aigc_course._checks import check_int, check_number


def ring_centers(num_modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    """Centres of the ring: ``radius * (cos 2πk/K, sin 2πk/K)`` for ``k = 0..K-1``. ``(K, 2)``."""
    num_modes = check_int(num_modes, "num_modes", low=1)
    radius = check_number(radius, "radius", low=0, low_open=True)
    k = torch.arange(num_modes, dtype=torch.float64)
    angles = 2 * math.pi * k / num_modes
    return torch.stack([radius * torch.cos(angles), radius * torch.sin(angles)], dim=1).float()


def grid_centers(values: tuple[float, ...] = (-4.0, -2.0, 0.0, 2.0, 4.0)) -> torch.Tensor:
    """Centres of the grid: every pair from ``values`` (default 5x5). ``(len(values)**2, 2)``."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) == 0:
        raise ValueError(f"values must be a non-empty sequence of numbers, got {values!r}")
    values = [check_number(v, "values[...]") for v in values]
    v = torch.tensor(values, dtype=torch.float32)
    xx, yy = torch.meshgrid(v, v, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)


def _mixture(n: int, centers: torch.Tensor, std: float, generator: torch.Generator | None):
    n = check_int(n, "n", low=1)
    std = check_number(std, "std", low=0)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    idx = torch.randint(len(centers), (n,), generator=generator)
    noise = torch.randn(n, 2, generator=generator) * std
    return centers[idx] + noise, idx


def ring_gaussians(n: int, std: float = 0.02, generator: torch.Generator | None = None, return_modes: bool = False):
    """``n`` points from 8 equal Gaussians on a circle of radius 2, std 0.02. ``(n, 2)``."""
    points, idx = _mixture(n, ring_centers(), std, generator)
    return (points, idx) if return_modes else points


def ring_log_density(x: torch.Tensor, std: float = 0.02) -> torch.Tensor:
    """Exact ``log p(x)`` of the ring mixture (8 equal isotropic Gaussians), ``(n, 2) -> (n,)``.

    The best test log-density any model of :func:`ring_gaussians` can reach (in nats).
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 2 or x.shape[1] != 2 or not x.is_floating_point():
        got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a float tensor of shape (n, 2), got {got}")
    std = check_number(std, "std", low=0, low_open=True)
    d2 = torch.cdist(x.double(), ring_centers().double().to(x.device)) ** 2
    log_component = -d2 / (2 * std**2) - math.log(2 * math.pi * std**2)
    return (torch.logsumexp(log_component, dim=1) - math.log(len(ring_centers()))).to(x.dtype)


def grid_gaussians(n: int, std: float = 0.05, generator: torch.Generator | None = None, return_modes: bool = False):
    """``n`` points from 25 equal Gaussians centred on {-4,-2,0,2,4}², std 0.05. ``(n, 2)``."""
    points, idx = _mixture(n, grid_centers(), std, generator)
    return (points, idx) if return_modes else points
