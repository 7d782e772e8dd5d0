"""Mode coverage of 2-D samples, the protocol of VEEGAN and PacGAN.

Draw 2,500 samples from the generator and give each one to its nearest mode centre.

* A sample is **high-quality** when it lies within ``3 std`` of that nearest centre.
* A mode is **captured** when at least one high-quality sample is nearest to it.
* The **reverse KL** is ``KL(q || u) = sum_k q_k log(K q_k)``, where ``q`` is the
  histogram of the high-quality samples over the ``K`` modes and ``u`` is uniform.
  It is 0 for a perfectly balanced generator and ``log K`` for one that has collapsed
  onto a single mode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from aigc_course._checks import check_finite, check_number
from aigc_course.data import grid_centers, ring_centers

NUM_EVAL_SAMPLES = 2500  # the sample count of the VEEGAN / PacGAN tables
RING_STD = 0.02
GRID_STD = 0.05


@dataclass(frozen=True)
class ModeCoverage:
    """What :func:`mode_coverage` measured on one set of samples."""

    modes_captured: int
    num_modes: int
    high_quality: float  # fraction of samples within ``threshold * std`` of their nearest mode
    reverse_kl: float  # KL(high-quality histogram || uniform); inf when no sample is high-quality
    counts: torch.Tensor  # (K,) high-quality samples nearest to each mode

    def as_dict(self) -> dict[str, float]:
        return {
            "modes_captured": self.modes_captured,
            "num_modes": self.num_modes,
            "high_quality": self.high_quality,
            "reverse_kl": self.reverse_kl,
        }


def _check_points(samples: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(samples, torch.Tensor):
        try:
            samples = torch.as_tensor(samples)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"{name} must be an (N, 2) tensor of points, got {type(samples).__name__}") from err
    if samples.ndim != 2 or samples.shape[1] != 2 or samples.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N, 2) with N >= 1, got {tuple(samples.shape)}")
    if samples.dtype == torch.bool or samples.is_complex():
        raise ValueError(f"{name} must hold real coordinates, got dtype {samples.dtype}")
    return check_finite(samples.detach().to("cpu", torch.float64), name)


def nearest_mode(samples: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of the nearest centre ``(N,)`` and the distance to it ``(N,)``."""
    x, c = _check_points(samples, "samples"), _check_points(centers, "centers")
    dist = torch.cdist(x, c)  # (N, K)
    d, idx = dist.min(dim=1)
    return idx, d


def reverse_kl_to_uniform(counts: torch.Tensor) -> float:
    """``KL(q || uniform)`` for the histogram ``counts`` ``(K,)``; empty bins contribute 0."""
    counts = torch.as_tensor(counts, dtype=torch.float64).cpu()
    if counts.ndim != 1 or len(counts) == 0 or not torch.isfinite(counts).all() or (counts < 0).any():
        raise ValueError(f"counts must be a finite, non-negative 1-D histogram, got {counts.tolist()[:10]} "
                         f"of shape {tuple(counts.shape)}")
    total = counts.sum()
    if total == 0:
        return math.inf
    q = counts / total
    q = q[q > 0]
    return float((q * torch.log(q * len(counts))).sum())


def mode_coverage(
    samples: torch.Tensor, centers: torch.Tensor, std: float, threshold: float = 3.0
) -> ModeCoverage:
    """Modes captured, high-quality fraction and reverse KL of ``samples`` ``(N, 2)``.

    ``centers`` ``(K, 2)`` are the mixture's modes and ``std`` its per-mode standard deviation.
    """
    std = check_number(std, "std", low=0, low_open=True)
    threshold = check_number(threshold, "threshold", low=0, low_open=True)
    idx, d = nearest_mode(samples, centers)
    good = d <= threshold * std
    counts = torch.bincount(idx[good], minlength=len(centers))
    return ModeCoverage(
        modes_captured=int((counts > 0).sum()),
        num_modes=len(centers),
        high_quality=float(good.double().mean()),
        reverse_kl=reverse_kl_to_uniform(counts),
        counts=counts,
    )


def ring_coverage(samples: torch.Tensor) -> ModeCoverage:
    """:func:`mode_coverage` against the 8-mode ring of :func:`aigc_course.data.ring_gaussians`."""
    return mode_coverage(samples, ring_centers(), RING_STD)


def grid_coverage(samples: torch.Tensor) -> ModeCoverage:
    """:func:`mode_coverage` against the 5x5 grid of :func:`aigc_course.data.grid_gaussians`."""
    return mode_coverage(samples, grid_centers(), GRID_STD)
