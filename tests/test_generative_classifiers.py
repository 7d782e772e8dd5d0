"""Generative (class-conditional Gaussian) vs discriminative (logistic regression) classifiers."""

from __future__ import annotations

import math

import pytest
import torch

from aigc_course.generative_classifiers import (
    GaussianClassifier,
    LogisticRegression,
    accuracy,
    gaussian_log_density,
    learning_curve,
)


def blobs(n=200, seed=0):
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(3).repeat(n // 3 + 1)[:n]
    centers = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]], dtype=torch.float64)
    return centers[y] + torch.randn(n, 2, generator=gen, dtype=torch.float64), y


def test_log_density_matches_torch_distributions():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(4, 4, generator=gen, dtype=torch.float64)
    cov = a @ a.T + 0.5 * torch.eye(4, dtype=torch.float64)
    mean = torch.randn(4, generator=gen, dtype=torch.float64)
    x = torch.randn(7, 4, generator=gen, dtype=torch.float64)
    ref = torch.distributions.MultivariateNormal(mean, cov).log_prob(x)
    assert torch.allclose(gaussian_log_density(x, mean, cov), ref)
    # standard normal in 1-D at 0: -log sqrt(2 pi)
    one = gaussian_log_density(torch.zeros(1, 1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64),
                               torch.eye(1, dtype=torch.float64))
    assert float(one) == pytest.approx(-0.5 * math.log(2 * math.pi))
    with pytest.raises(ValueError, match="positive definite"):
        gaussian_log_density(x, mean, -cov)
    with pytest.raises(ValueError, match="expected x"):
        gaussian_log_density(x, mean[:3], cov)


@pytest.mark.parametrize("covariance", ["shared", "diagonal", "full"])
def test_gaussian_classifier_fits_and_generates(covariance):
    x, y = blobs(300)
    g = GaussianClassifier(covariance, reg=1e-3).fit(x, y)
    assert torch.allclose(g.log_prior.exp(), torch.full((3,), 1 / 3, dtype=torch.float64))
    assert torch.allclose(g.means, torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]], dtype=torch.float64), atol=0.25)
    p = g.predict_proba(x)
    assert p.shape == (300, 3) and torch.allclose(p.sum(1), torch.ones(300, dtype=torch.float64))
    assert accuracy(g.predict(x), y) > 0.95
    # Bayes' rule: p(y|x) from the joint
    lj = g.log_joint(x[:5])
    assert torch.allclose(p[:5], (lj - lj.logsumexp(1, keepdim=True)).exp())
    samples = g.sample(torch.full((2000,), 2), torch.Generator().manual_seed(0))
    assert samples.shape == (2000, 2)
    assert torch.allclose(samples.mean(0), g.means[2], atol=0.1)
    assert (g.predict(samples) == 2).double().mean() > 0.95  # samples look like their class


def test_shared_covariance_is_shared_and_images_are_flattened():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(60, 1, 2, 2, generator=gen)
    y = torch.arange(3).repeat(20)
    g = GaussianClassifier("shared").fit(x, y)
    assert g.dim == 4 and torch.equal(g.covs[0], g.covs[2])
    assert g.predict(x).shape == (60,)


def test_logistic_regression_learns_blobs():
    x, y = blobs(300)
    torch.manual_seed(0)
    m = LogisticRegression(2, 3).fit(x, y)
    assert accuracy(m.predict(x), y) > 0.95
    assert torch.allclose(m.predict_proba(x).sum(1), torch.ones(300, dtype=torch.float64))


def test_learning_curve_shapes():
    x, y = blobs(300)
    out = learning_curve(x, y, x, y, sizes=[30, 90], repeats=2)
    assert out["generative"].shape == out["discriminative"].shape == (2, 2)
    assert (out["generative"] > 0.9).all() and (out["discriminative"] > 0.9).all()
    with pytest.raises(ValueError, match="sizes must lie"):
        learning_curve(x, y, x, y, sizes=[2])


def test_bad_input():
    x, y = blobs(30)
    with pytest.raises(ValueError, match="covariance must be one of"):
        GaussianClassifier("spherical")
    with pytest.raises(ValueError, match="reg must be"):
        GaussianClassifier(reg=0)
    with pytest.raises(ValueError, match="one label per row"):
        GaussianClassifier().fit(x, y[:10])
    with pytest.raises(ValueError, match="integer class labels"):
        GaussianClassifier().fit(x, y.float())
    with pytest.raises(ValueError, match="not fitted"):
        GaussianClassifier().predict(x)
    with pytest.raises(ValueError, match="D=2"):
        GaussianClassifier().fit(x, y).predict(torch.rand(3, 5))
    with pytest.raises(ValueError, match="at least 2 examples"):
        GaussianClassifier().fit(x[:4], torch.tensor([0, 1, 1, 1]))
