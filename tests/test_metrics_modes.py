"""Mode-coverage metrics (VEEGAN / PacGAN protocol) on samples with known exact counts."""

import math

import pytest
import torch

from aigc_course.data import grid_centers, grid_gaussians, ring_centers, ring_gaussians
from aigc_course.metrics.modes import (
    grid_coverage,
    mode_coverage,
    nearest_mode,
    reverse_kl_to_uniform,
    ring_coverage,
)


def test_ring_centers_are_eight_distinct_points_on_the_circle():
    c = ring_centers()
    assert c.shape == (8, 2)
    assert torch.allclose(c.norm(dim=1), torch.full((8,), 2.0), atol=1e-6)
    gaps = torch.cdist(c, c) + torch.eye(8) * 100
    assert gaps.min() > 1.5  # neighbours are 2*2*sin(pi/8) = 1.53 apart


def test_exact_counts_on_hand_built_samples():
    c = ring_centers()
    std = 0.02
    radial = c / c.norm(dim=1, keepdim=True)
    samples = torch.stack([
        c[0], c[0], c[0] + 0.01 * radial[0],  # 3 at mode 0
        c[1],  # 1 at mode 1
        c[2] + 2.5 * std * radial[2],  # within 3 std: high quality, mode 2
        c[3] + 3.5 * std * radial[3],  # beyond 3 std: low quality
        torch.zeros(2),  # the centre of the ring: low quality
    ])
    cov = mode_coverage(samples, c, std)
    assert cov.counts.tolist() == [3, 1, 1, 0, 0, 0, 0, 0]
    assert cov.modes_captured == 3
    assert cov.num_modes == 8
    assert cov.high_quality == pytest.approx(5 / 7)
    q = torch.tensor([3, 1, 1], dtype=torch.float64) / 5
    assert cov.reverse_kl == pytest.approx(float((q * torch.log(8 * q)).sum()))


def test_reverse_kl_extremes():
    assert reverse_kl_to_uniform(torch.tensor([5, 5, 5, 5])) == pytest.approx(0.0)
    assert reverse_kl_to_uniform(torch.tensor([7, 0, 0, 0])) == pytest.approx(math.log(4))
    assert reverse_kl_to_uniform(torch.tensor([0, 0])) == math.inf


def test_real_data_scores_all_modes_and_near_full_quality():
    g = torch.Generator().manual_seed(0)
    ring = ring_coverage(ring_gaussians(2500, generator=g))
    grid = grid_coverage(grid_gaussians(2500, generator=g))
    assert ring.modes_captured == 8 and grid.modes_captured == 25
    # a 2-D Gaussian keeps 1 - exp(-9/2) = 98.9 % of its mass within 3 std
    assert ring.high_quality == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    assert grid.high_quality == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    assert ring.reverse_kl < 0.01 and grid.reverse_kl < 0.02


def test_collapsed_samples_score_one_mode():
    samples = grid_centers()[12].expand(2500, 2).clone()
    cov = grid_coverage(samples)
    assert cov.modes_captured == 1
    assert cov.high_quality == 1.0
    assert cov.reverse_kl == pytest.approx(math.log(25))


def test_nearest_mode_indices():
    c = grid_centers()
    idx, d = nearest_mode(c + 0.1, c)
    assert idx.tolist() == list(range(25))
    assert torch.allclose(d, torch.full((25,), math.sqrt(0.02), dtype=d.dtype))


@pytest.mark.parametrize("bad", [torch.zeros(5), torch.zeros(5, 3), torch.zeros(0, 2)])
def test_bad_sample_shapes_raise(bad):
    with pytest.raises(ValueError, match="samples must have shape"):
        mode_coverage(bad, ring_centers(), 0.02)


def test_bad_std_raises():
    with pytest.raises(ValueError, match="std must be a finite number > 0"):
        mode_coverage(torch.zeros(4, 2), ring_centers(), 0.0)
