"""The VAE: Gaussian KL and reparameterisation, the ELBO vs the IW bound, input checks, checkpoint."""

from __future__ import annotations

import math

import pytest
import torch

from aigc_course import pretrained
from aigc_course.data import load_digits
from aigc_course.vae import (
    VAE,
    binomial_log_prob,
    bits_per_dim,
    evaluate_bounds,
    gaussian_kl,
    gaussian_log_prob,
    make_vae,
    reparameterize,
)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def test_gaussian_kl_matches_monte_carlo():
    gen = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(3, 4, generator=gen, dtype=torch.float64), torch.randn(3, 4, generator=gen,
                                                                                   dtype=torch.float64)
    mu_p, logvar_p = torch.randn(3, 4, generator=gen, dtype=torch.float64), 0.5 * torch.randn(
        3, 4, generator=gen, dtype=torch.float64)
    for prior in [(None, None), (mu_p, logvar_p)]:
        exact = gaussian_kl(mu, logvar, *prior)
        z = reparameterize(mu.expand(200_000, 3, 4), logvar.expand(200_000, 3, 4), gen)
        pm = torch.zeros_like(mu) if prior[0] is None else prior[0]
        plv = torch.zeros_like(logvar) if prior[1] is None else prior[1]
        mc = (gaussian_log_prob(z, mu, logvar) - gaussian_log_prob(z, pm, plv)).mean(0)
        assert exact.shape == (3,)
        torch.testing.assert_close(mc, exact, atol=0.05, rtol=0.02)
    assert torch.allclose(gaussian_kl(torch.zeros(2, 5), torch.zeros(2, 5)), torch.zeros(2))


def test_reparameterised_samples_have_the_right_moments_and_gradients():
    mu = torch.tensor([1.5, -2.0, 0.0], requires_grad=True)
    logvar = torch.tensor([0.0, math.log(0.25), math.log(4.0)], requires_grad=True)
    z = reparameterize(mu.expand(100_000, 3), logvar.expand(100_000, 3), torch.Generator().manual_seed(1))
    torch.testing.assert_close(z.mean(0), mu.detach(), atol=0.03, rtol=0)
    torch.testing.assert_close(z.var(0), logvar.detach().exp(), atol=0.0, rtol=0.03)
    z.mean().backward()  # d mean(z) / d mu = 1/3 per coordinate: the noise is outside the path
    torch.testing.assert_close(mu.grad, torch.full((3,), 1 / 3))
    assert logvar.grad is not None and torch.isfinite(logvar.grad).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cpu_generator_gives_the_same_noise_for_cuda_tensors():
    mu, logvar = torch.zeros(4, 3), torch.zeros(4, 3)
    on_cpu = reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    on_cuda = reparameterize(mu.cuda(), logvar.cuda(), torch.Generator().manual_seed(0))
    assert on_cuda.device.type == "cuda"
    torch.testing.assert_close(on_cuda.cpu(), on_cpu)


def test_binomial_log_prob_is_a_distribution_over_17_levels():
    k = torch.arange(17.0)
    for logit in (-2.0, 0.0, 1.3):
        total = binomial_log_prob(k, torch.full((17,), logit)).exp().sum()
        torch.testing.assert_close(total, torch.tensor(1.0))


@pytest.mark.parametrize("likelihood", ["binomial", "categorical"])
def test_digit_shapes_decode_range_and_discrete_normalisation(likelihood, digits):
    torch.manual_seed(0)
    model = make_vae("digits", latent_dim=3, hidden=32, likelihood=likelihood)
    x = digits.x_test[:5]
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (5, 3)
    assert model.decode(torch.randn(7, 3)).shape == (7, 1, 8, 8)
    assert model.decode(torch.randn(4, 7, 3)).shape == (4, 7, 1, 8, 8)
    out = model.decode(torch.randn(50, 3) * 5)
    assert out.min() >= 0 and out.max() <= 1
    assert model.elbo(x).shape == (5,)
    assert model.importance_weighted_log_likelihood(x, 3).shape == (5,)
    drawn = model.sample(6, seed=0, mean=False)
    assert drawn.shape == (6, 1, 8, 8) and torch.equal(drawn * 16, (drawn * 16).round())


def test_pixel_marginal_sums_to_one():
    """Summing p(x|z) over the 17 levels of one pixel leaves the other 63 pixels' probability."""
    torch.manual_seed(0)
    for likelihood in ("binomial", "categorical"):
        model = make_vae("digits", latent_dim=2, hidden=16, likelihood=likelihood)
        z = torch.randn(1, 2)
        x = torch.zeros(17, 1, 8, 8)
        x[:, 0, 3, 4] = torch.arange(17) / 16
        x[:, 0, 5, 5] = 0.5
        with torch.no_grad():
            joint = model.log_likelihood(x, z.expand(17, 2))
            out = model._decoder_params(z)
        # the pixel's own distribution: difference to the k = 0 row, then normalise
        own = joint - joint[0]
        if likelihood == "binomial":
            p0 = binomial_log_prob(torch.zeros(1), out[0, 3 * 8 + 4])
        else:
            p0 = out.unflatten(-1, (64, 17)).log_softmax(-1)[0, 3 * 8 + 4, 0]
        assert abs(float(torch.logsumexp(own + p0.reshape(()), 0))) < 5e-4  # float32 sums of 64 terms


def test_two_d_variant_shapes_and_sampling():
    torch.manual_seed(0)
    model = make_vae("2d")
    assert model.latent_dim == 2 and model.likelihood == "gaussian"
    x = torch.randn(8, 2)
    assert model.elbo(x).shape == (8,)
    assert model.sample(5, seed=3).shape == (5, 2)
    assert model.sample(5, seed=3, mean=False).shape == (5, 2)
    assert torch.equal(model.sample(5, seed=3), model.sample(5, seed=3))


def test_elbo_never_exceeds_the_importance_weighted_bound(digits):
    torch.manual_seed(0)
    model = make_vae("digits", latent_dim=4, hidden=32)
    x = digits.x_test[:16]
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        elbo = model.elbo(x, generator=gen, num_samples=2000)  # a precise estimate of the ELBO
        iw = [model.importance_weighted_log_likelihood(x, k, gen) for k in (1, 10, 100)]
        l1 = torch.stack([model.importance_weighted_log_likelihood(x, 1, gen) for _ in range(400)]).mean(0)
    assert (iw[2] >= elbo).all(), (iw[2] - elbo)
    assert iw[2].mean() > iw[1].mean() > elbo.mean()
    # L_1 is an unbiased estimate of the ELBO (the ELBO with the KL estimated by sampling)
    torch.testing.assert_close(l1, elbo, atol=1.0, rtol=0)


def test_beta_weights_the_kl(digits):
    torch.manual_seed(0)
    model = make_vae("digits", latent_dim=4, hidden=32)
    x = digits.x_test[:4]
    recon, kl = model.elbo_terms(x, torch.Generator().manual_seed(0))
    for beta in (0.0, 1.0, 4.0):
        torch.testing.assert_close(model.elbo(x, beta=beta, generator=torch.Generator().manual_seed(0)),
                                   recon - beta * kl)
    assert (kl >= 0).all()


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m, x: m.elbo(x[:, :, :4]), "x must have shape"),
        (lambda m, x: m.elbo(x.flatten(1)), "x must have shape"),
        (lambda m, x: m.elbo(x * 2), r"x must hold pixel values in \[0, 1\]"),
        (lambda m, x: m.elbo(x - 0.5), r"x must hold pixel values in \[0, 1\]"),
        (lambda m, x: m.elbo(x * 0.99 + 0.001), "17-level grid"),
        (lambda m, x: m.elbo(x, beta=-1.0), "beta"),
        (lambda m, x: m.importance_weighted_log_likelihood(x, 0), "num_samples"),
        (lambda m, x: m.importance_weighted_log_likelihood(x, -3), "num_samples"),
        (lambda m, x: m.sample(0), "n must be a positive int"),
        (lambda m, x: m.sample(-2), "n must be a positive int"),
        (lambda m, x: m.decode(torch.randn(3, 5)), "z must have shape"),
        (lambda m, x: make_vae("images"), "data must be one of"),
        (lambda m, x: make_vae("2d", likelihood="binomial"), "likelihood"),
        (lambda m, x: make_vae("digits", latent_dim=-1), "latent_dim"),
    ],
)
def test_bad_input_raises_a_clear_value_error(call, match, digits):
    model = make_vae("digits", latent_dim=2, hidden=8)
    with pytest.raises(ValueError, match=match):
        call(model, digits.x_test[:3])


def test_two_d_rejects_wrong_shapes():
    model = make_vae("2d")
    with pytest.raises(ValueError, match=r"x must have shape \(B, 2\)"):
        model.elbo(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="finite"):
        model.elbo(torch.full((4, 2), float("nan")))


def test_bits_per_dim():
    assert bits_per_dim(-64 * math.log(2)) == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["digits-vae", "digits-vae-2d"])
def test_checkpoint_loads_and_samples_deterministically(name, digits):
    model = pretrained.load(name, device="cpu")
    assert isinstance(model, VAE) and not model.training
    a, b = model.sample(6, seed=7), model.sample(6, seed=7)
    assert a.shape == (6, 1, 8, 8) and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1
    assert not torch.equal(a, model.sample(6, seed=8))
    mu, logvar = model.encode(digits.x_test[:4])
    assert mu.shape == (4, model.latent_dim) and model.decode(mu).shape == (4, 1, 8, 8)
    _, config = pretrained.load_files(name)
    assert config["metrics"]["test"]["iw_1000"] > config["metrics"]["test"]["elbo"]


def test_shipped_model_beats_the_uniform_baseline(digits):
    """A trained model must be far better than 64 independent uniform 17-level pixels."""
    model = pretrained.load("digits-vae", device="cpu")
    bounds = evaluate_bounds(model, digits.x_test[:60], ks=(1, 50), seed=0)
    uniform = -64 * math.log(17)
    assert bounds["elbo"] > uniform + 50
    assert bounds["iw_50"] > bounds["elbo"]
