"""Chapter 3.4 exercises: reparameterised sampling, the Gaussian KL, the importance-weighted bound.

References: :func:`aigc_course.vae.reparameterize` (with given noise ``eps``),
:func:`aigc_course.vae.gaussian_kl` (against the prior N(0, I)) and
:func:`aigc_course.vae.iw_bound`.
"""

from __future__ import annotations

import math

import torch

from aigc_course.exercises.core import Case, Exercise, Variant, register
from aigc_course.vae import gaussian_kl, iw_bound, reparameterize


def _randn(gen: torch.Generator, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(*shape, generator=gen)


# ---------------------------------------------------------------------------- 3.4.1 reparameterise


def reparameterize_with_noise(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """The reference: z = mu + exp(logvar / 2) * eps."""
    return reparameterize(mu, logvar, eps=eps)


def _reparam_cases(gen: torch.Generator, device) -> list[Case]:
    def case(name, *shape, lv_scale=1.0):
        mu, logvar, eps = _randn(gen, *shape), _randn(gen, *shape, scale=lv_scale), _randn(gen, *shape)
        return Case(name, (mu.to(device), logvar.to(device), eps.to(device)))

    return [
        case("a batch of 8 codes in 4 dimensions", 8, 4),
        case("K = 5 samples for each of 3 codes, (K, B, D)", 5, 3, 2),
        case("wide and narrow posteriors (log-variances up to about ±6)", 6, 3, lv_scale=3.0),
        Case("logvar = 0: z = mu + eps", (torch.zeros(2, 3).to(device), torch.zeros(2, 3).to(device),
                                          _randn(gen, 2, 3).to(device))),
    ]


register(Exercise(
    id="3.4.1",
    title="Reparameterised sampling",
    function="reparameterize",
    reference=reparameterize_with_noise,
    cases=_reparam_cases,
    variants=[
        Variant("you scaled the noise by the variance exp(logvar); the standard deviation is "
                "exp(logvar / 2)", lambda c: c.args[0] + c.args[1].exp() * c.args[2]),
        Variant("logvar is the log of the variance, not the standard deviation: use exp(logvar / 2)",
                lambda c: c.args[0] + c.args[1] * c.args[2]),
        Variant("you returned the noise scaled by the standard deviation but forgot to add mu",
                lambda c: (0.5 * c.args[1]).exp() * c.args[2]),
        Variant("the standard deviation is exp(+logvar / 2); exp(-logvar / 2) is its inverse",
                lambda c: c.args[0] + (-0.5 * c.args[1]).exp() * c.args[2]),
        Variant("wrong sign: z = mu + sigma * eps", lambda c: c.args[0] - (0.5 * c.args[1]).exp() * c.args[2]),
    ],
    hints=[
        "A draw from N(mu, sigma^2) is mu + sigma * eps with eps ~ N(0, 1); the encoder gives "
        "logvar = log sigma^2, so sigma = exp(logvar / 2).",
        "Everything is elementwise, so the same line works for (B, D) and (K, B, D) tensors.",
        "return mu + torch.exp(0.5 * logvar) * eps",
    ],
    explanation=(
        "Writing $z = \\mu + \\sigma\\odot\\varepsilon$ moves the randomness into $\\varepsilon$, "
        "which does not depend on the encoder, so $z$ is a differentiable function of $\\mu$ and "
        "$\\log\\sigma^2$ and the ELBO can be trained by backpropagation (eq. 4.3.4). Predicting "
        "$\\log\\sigma^2$ rather than $\\sigma$ keeps the variance positive without a constraint."
    ),
))


# ---------------------------------------------------------------------------- 3.4.2 KL to the prior


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """The reference: KL(N(mu, diag e^logvar) || N(0, I)), summed over the last dimension."""
    return gaussian_kl(mu, logvar)


def _kl_cases(gen: torch.Generator, device) -> list[Case]:
    return [
        Case("8 posteriors in 16 dimensions", (_randn(gen, 8, 16).to(device), _randn(gen, 8, 16).to(device))),
        Case("(K, B, D) = (2, 3, 5)", (_randn(gen, 2, 3, 5).to(device), _randn(gen, 2, 3, 5).to(device))),
        Case("q equal to the prior: KL = 0", (torch.zeros(4, 3).to(device), torch.zeros(4, 3).to(device))),
        Case("a collapsed posterior: logvar = -10, so -log sigma^2 dominates",
             (_randn(gen, 3, 2).to(device), torch.full((3, 2), -10.0).to(device))),
    ]


register(Exercise(
    id="3.4.2",
    title="The Gaussian KL to the prior",
    function="kl_to_prior",
    reference=kl_to_standard_normal,
    cases=_kl_cases,
    variants=[
        Variant("missing the factor 1/2", lambda c: 2 * gaussian_kl(*c.args)),
        Variant("you averaged over the latent dimensions; the KL of independent dimensions is their sum",
                lambda c: gaussian_kl(*c.args) / c.args[0].shape[-1]),
        Variant("the result should be one number per code: sum over the last (latent) dimension",
                lambda c: 0.5 * (c.args[0] ** 2 + c.args[1].exp() - c.args[1] - 1)),
        Variant("the variance is exp(logvar), not logvar: the term is sigma^2 - log sigma^2",
                lambda c: 0.5 * (c.args[0] ** 2 + c.args[1] - c.args[1] - 1).sum(-1)),
        Variant("the sign of log sigma^2 is flipped: KL = 1/2 sum(mu^2 + sigma^2 - log sigma^2 - 1)",
                lambda c: 0.5 * (c.args[0] ** 2 + c.args[1].exp() + c.args[1] - 1).sum(-1)),
        Variant("sum over the last dimension (the latent dimensions of each code), not over the batch",
                lambda c: 0.5 * (c.args[0] ** 2 + c.args[1].exp() - c.args[1] - 1).sum(0)),
        Variant("the mean enters squared: mu^2, not mu",
                lambda c: 0.5 * (c.args[0] + c.args[1].exp() - c.args[1] - 1).sum(-1)),
    ],
    hints=[
        "For one dimension, KL(N(m, s^2) || N(0, 1)) = 1/2 (m^2 + s^2 - log s^2 - 1); "
        "with logvar = log s^2 you never need a square root or a log.",
        "Independent dimensions add: compute the per-dimension terms and .sum(-1).",
        "return 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).sum(-1)",
    ],
    explanation=(
        "The KL between two Gaussians is an integral that has a closed form (eq. 4.3.3), so the VAE "
        "does not need to estimate it by sampling: only the reconstruction term is sampled. It is "
        "zero exactly when $q$ is the prior, and each dimension pays $\\tfrac12\\mu^2$ for moving "
        "its mean and $\\tfrac12(\\sigma^2 - \\log\\sigma^2 - 1) \\ge 0$ for changing its width."
    ),
))


# ---------------------------------------------------------------------------- 3.4.3 IW bound


def _iw_cases(gen: torch.Generator, device) -> list[Case]:
    return [
        Case("K = 10 samples for 4 images, log weights around -90 nats",
             ((_randn(gen, 10, 4, scale=3.0) - 90).to(device),)),
        Case("K = 1000, 3 images, log weights around -800 (exp underflows to 0)",
             ((_randn(gen, 1000, 3, scale=5.0) - 800).to(device),)),
        Case("K = 1: the bound is the log weight itself", ((_randn(gen, 1, 5) - 20).to(device),)),
        Case("K = 50, equal weights: the bound is that log weight",
             (torch.full((50, 2), -3.5).to(device),)),
    ]


def _not_finite(case: Case, expected, actual) -> str | None:
    if isinstance(actual, torch.Tensor) and actual.is_floating_point() and not torch.isfinite(actual).all():
        if torch.isfinite(expected).all():
            return ("the result is not finite: exp(-800) underflows to 0 in floating point, and "
                    "log 0 = -inf. Use torch.logsumexp, which subtracts the maximum first")
    return None


register(Exercise(
    id="3.4.3",
    title="The importance-weighted bound from log weights",
    function="iw_bound_from_log_weights",
    reference=iw_bound,
    cases=_iw_cases,
    diagnostics=[_not_finite],
    variants=[
        Variant("you averaged the log weights: that is the K-sample ELBO, not the IW bound. Average the "
                "weights inside the log: log((1/K) sum_k w_k)", lambda c: c.args[0].mean(0)),
        Variant("missing the - log K: the bound averages the K weights, log((1/K) sum_k w_k)",
                lambda c: torch.logsumexp(c.args[0], 0)),
        Variant("you took the maximum log weight; logsumexp is smooth and counts every sample",
                lambda c: c.args[0].amax(0) - math.log(c.args[0].shape[0])),
        Variant("wrong sign of log K: averaging the weights *subtracts* log K, log((1/K) sum_k w_k)",
                lambda c: torch.logsumexp(c.args[0], 0) + math.log(c.args[0].shape[0])),
        Variant("the K samples are along dim 0 (shape (K, B)); you reduced over dim 1, the images",
                lambda c: torch.logsumexp(c.args[0], 1) - math.log(c.args[0].shape[1])),
    ],
    hints=[
        "L_K = log((1/K) sum_k w_k) = log(sum_k exp(log w_k)) - log K, with the K samples along dim 0.",
        "Weights like exp(-800) are 0 in float32 and float64; torch.logsumexp(log_w, dim=0) computes "
        "log sum exp stably by factoring out the maximum.",
        "return torch.logsumexp(log_weights, dim=0) - math.log(log_weights.shape[0])",
    ],
    explanation=(
        "$\\mathcal L_K = \\mathbb E[\\log \\frac1K\\sum_k w_k]$ with $w_k = p(x, z_k)/q(z_k\\mid x)$ "
        "(eq. 4.3.6). Jensen's inequality puts it below $\\log p(x)$, but because the average is "
        "*inside* the log it is above the ELBO (the average of the logs) and tightens as $K$ grows. "
        "Log weights of images are hundreds of nats below zero, so the sum must be computed in log "
        "space: $\\log\\sum_k e^{a_k} = m + \\log\\sum_k e^{a_k - m}$ with $m = \\max_k a_k$."
    ),
    atol=1e-4,
    rtol=1e-6,
))
