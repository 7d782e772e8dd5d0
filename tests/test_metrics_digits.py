import numpy as np
import pytest
import torch

from aigc_course import pretrained
from aigc_course.data import load_digits
from aigc_course.metrics import (
    classifier_accuracy,
    frechet_digit_distance,
    frechet_distance,
    load_digit_classifier,
    nearest_neighbour_distances,
)


def test_frechet_distance_of_gaussians_matches_closed_form():
    # For isotropic Gaussians N(m1, s1^2 I) and N(m2, s2^2 I) in d dims:
    # |m1 - m2|^2 + d (s1 - s2)^2.
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 1.0, size=(200_000, 3))
    b = rng.normal(1.0, 2.0, size=(200_000, 3))
    assert frechet_distance(a, b) == pytest.approx(3 * 1.0 + 3 * 1.0, rel=0.02)


def test_frechet_distance_is_zero_for_identical_sets_and_symmetric():
    x = torch.randn(500, 4)
    y = torch.randn(400, 4) * 1.5 + 0.3
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(x, y) == pytest.approx(frechet_distance(y, x), rel=1e-6)


def test_nearest_neighbour_distances():
    ref = torch.zeros(3, 1, 2, 2)
    ref[1] += 1.0
    samples = torch.stack([torch.zeros(1, 2, 2), torch.full((1, 2, 2), 0.75)])
    assert torch.allclose(nearest_neighbour_distances(samples, ref), torch.tensor([0.0, 0.5]))


def test_nearest_neighbour_indices_point_at_the_nearest_reference():
    ref = torch.arange(5.0).reshape(5, 1, 1, 1) * torch.ones(5, 1, 2, 2)  # constant images 0..4
    samples = torch.tensor([3.9, 0.2, 2.4]).reshape(3, 1, 1, 1) * torch.ones(3, 1, 2, 2)
    distances, indices = nearest_neighbour_distances(samples, ref, return_indices=True)
    assert indices.tolist() == [4, 0, 2]
    assert torch.allclose(distances, torch.tensor([0.2, 0.4, 0.8]))  # 2x2 pixels: 2 x |difference|
    assert torch.equal(distances, nearest_neighbour_distances(samples, ref))


def test_bad_shapes():
    with pytest.raises(ValueError, match=r"features_b must have the width D = 2 of features_a"):
        frechet_distance(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="reference must share the per-item shape of samples"):
        nearest_neighbour_distances(torch.zeros(2, 4), torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"images must be a tensor of shape \(N, 1, 8, 8\)"):
        classifier_accuracy(torch.zeros(2, 8, 8), torch.zeros(2, dtype=torch.long))



def test_shipped_classifier_scores_at_least_97_percent_on_test_split():
    data = load_digits()
    assert classifier_accuracy(data.x_test, data.y_test) >= 0.97
    assert pretrained.info("digits-classifier")["builder"].endswith("DigitClassifier")


def test_fdd_orders_real_versus_noise():
    data = load_digits()
    real = frechet_digit_distance(data.x_train[:360], data.x_test)
    noise = frechet_digit_distance(torch.rand(360, 1, 8, 8), data.x_test)
    assert real < noise / 10


def test_classifier_is_cached_per_device():
    assert load_digit_classifier("cpu") is load_digit_classifier("cpu")


def test_accuracy_label_count_must_match():
    with pytest.raises(ValueError, match="one entry per image"):
        classifier_accuracy(torch.zeros(3, 1, 8, 8), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="labels must be integer class ids"):
        classifier_accuracy(torch.zeros(3, 1, 8, 8), torch.tensor([1.0, 2.5, 3.0]))
