"""The GAN objective in closed form (book Section 4.2), for numerical checks on 1-D densities.

For a fixed generator the discriminator that maximises

    V(D, G) = E_{x~p_data}[log D(x)] + E_{x~p_g}[log(1 - D(x))]

is ``D*(x) = p_data(x) / (p_data(x) + p_g(x))``, and plugging it back gives

    V(D*, G) = -log 4 + 2 * JSD(p_data || p_g),

so the generator of the minimax game minimises the Jensen-Shannon divergence.
Densities here are values on a uniform grid with spacing ``dx``; integrals are Riemann sums.
"""

from __future__ import annotations

import math

import torch

from aigc_course._checks import check_finite, check_number, check_tensor


def gaussian_pdf(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """Density of ``N(mean, std^2)`` at ``x`` (any shape)."""
    check_tensor(x, "x", floating=True)
    mean = check_number(mean, "mean")
    std = check_number(std, "std", low=0.0, low_open=True)
    return torch.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


def _check_density(p, name: str) -> None:
    check_finite(check_tensor(p, name, floating=True), name)
    if bool((p < 0).any()):
        raise ValueError(f"{name} must be a density (values >= 0), got a minimum of {float(p.min()):.3g}")


def _check_pair(p: torch.Tensor, q: torch.Tensor, names: tuple[str, str] = ("p", "q")) -> None:
    _check_density(p, names[0])
    _check_density(q, names[1])
    if p.shape != q.shape:
        raise ValueError(f"{names[1]} must have the shape of {names[0]} {tuple(p.shape)}, got {tuple(q.shape)}")


def _check_dx(dx) -> float:
    return check_number(dx, "dx (the grid spacing)", low=0.0, low_open=True)


def optimal_discriminator(p_data: torch.Tensor, p_g: torch.Tensor) -> torch.Tensor:
    """``D*(x) = p_data / (p_data + p_g)`` elementwise; 1/2 where both densities are 0."""
    _check_pair(p_data, p_g, ("p_data", "p_g"))
    total = p_data + p_g
    return torch.where(total > 0, p_data / total.clamp_min(1e-300), torch.full_like(total, 0.5))


def _xlogy(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.where(x > 0, x * torch.log(y.clamp_min(1e-300)), torch.zeros_like(x))


def value_function(d: torch.Tensor, p_data: torch.Tensor, p_g: torch.Tensor, dx: float) -> torch.Tensor:
    """``V(D, G) = int p_data log D + p_g log(1 - D) dx`` for ``D`` given on the same grid (``D`` in [0, 1])."""
    _check_pair(p_data, p_g, ("p_data", "p_g"))
    dx = _check_dx(dx)
    check_finite(check_tensor(d, "d", floating=True), "d")
    if d.shape != p_data.shape:
        raise ValueError(f"d must have the densities' shape {tuple(p_data.shape)}, got {tuple(d.shape)}")
    if bool((d < 0).any() | (d > 1).any()):
        raise ValueError(f"d must hold probabilities in [0, 1], got values from {float(d.min()):.3g} "
                         f"to {float(d.max()):.3g}")
    return (_xlogy(p_data, d) + _xlogy(p_g, 1 - d)).sum() * dx


def kl_divergence(p: torch.Tensor, q: torch.Tensor, dx: float) -> torch.Tensor:
    """``KL(p || q) = int p log(p / q) dx``."""
    _check_pair(p, q)
    dx = _check_dx(dx)
    return (_xlogy(p, p) - _xlogy(p, q)).sum() * dx


def js_divergence(p: torch.Tensor, q: torch.Tensor, dx: float) -> torch.Tensor:
    """``JSD(p || q) = KL(p || m) / 2 + KL(q || m) / 2`` with ``m = (p + q) / 2``; at most ``log 2``."""
    _check_pair(p, q)
    m = 0.5 * (p + q)
    return 0.5 * kl_divergence(p, m, dx) + 0.5 * kl_divergence(q, m, dx)
