"""Chapter 4.4 exercises: the posterior q(x_{t-1} | x_t, x_0), x̂₀ from ε̂, the signal-to-noise ratio.

References: :meth:`aigc_course.diffusion.NoiseSchedule.posterior`,
:meth:`~aigc_course.diffusion.NoiseSchedule.predict_x0` and
:meth:`~aigc_course.diffusion.NoiseSchedule.signal_to_noise`.
"""

from __future__ import annotations

import torch

from aigc_course.diffusion import NoiseSchedule
from aigc_course.exercises.core import Case, Exercise, Variant, register

# float64 schedules: 1 - abar_t / abar_{t-1} loses digits in float32, and the checks should
# judge the formula, not the rounding of an equivalent way of writing it.
_LINEAR = NoiseSchedule("linear", 1000, dtype=torch.float64)
_COSINE = NoiseSchedule("cosine", 200, dtype=torch.float64)


def _randn(gen: torch.Generator, device, *shape: int, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(shape, generator=gen, dtype=dtype).to(device)


def _t(gen: torch.Generator, low: int, high: int) -> int:
    return int(torch.randint(low, high, (1,), generator=gen))


# ---------------------------------------------------------------------------- 4.4.1 posterior


def _posterior_reference(schedule, x0, xt, t):
    return schedule.posterior(x0, xt, t)


def _posterior_cases(gen: torch.Generator, device) -> list[Case]:
    def case(name, schedule, t, *shape):
        return Case(name, (schedule, _randn(gen, device, *shape), _randn(gen, device, *shape), t))

    return [
        case("linear schedule, random t in the middle", _LINEAR, _t(gen, 50, 950), 5, 2),
        case("cosine schedule, random t", _COSINE, _t(gen, 1, 199), 3, 1, 4, 4),
        case("the last step t = T-1", _LINEAR, 999, 4, 3),
        case("t = 1: the previous step is t-1 = 0", _LINEAR, 1, 2, 2),
        case("t = 0: the previous 'step' is the clean data (ᾱ_{-1} = 1)", _COSINE, 0, 3, 2),
    ]


def _posterior_variant(kind: str):
    def wrong(case: Case):
        schedule, x0, xt, t = case.args
        ab_t = schedule.alphas_cumprod[t]
        ab_prev = schedule.alphas_cumprod[t - 1] if kind == "negative_index" else schedule.alpha_bar(t - 1)
        beta = 1 - ab_t / ab_prev
        c_x0 = (ab_prev if kind == "no_sqrt_x0" else ab_prev.sqrt()) * beta / (1 - ab_t)
        alpha = ab_t / ab_prev
        c_xt = (alpha if kind == "no_sqrt_xt" else alpha.sqrt()) * (1 - ab_prev) / (1 - ab_t)
        var = (1 - ab_prev) / (1 - ab_t) * beta
        if kind == "beta_variance":
            var = beta
        if kind == "swapped":
            c_x0, c_xt = c_xt, c_x0
        if kind == "std":
            var = var.sqrt()
        return c_x0 * x0 + c_xt * xt, var

    return wrong


register(Exercise(
    id="4.4.1",
    title="The posterior q(xₜ₋₁ | xₜ, x₀)",
    function="posterior_mean_var",
    reference=_posterior_reference,
    cases=_posterior_cases,
    variants=[
        Variant("at t = 0 the previous step is the clean data with ᾱ = 1; alphas_cumprod[t - 1] = "
                "alphas_cumprod[-1] is the *last* step's ᾱ (use schedule.alpha_bar(t - 1))",
                _posterior_variant("negative_index")),
        Variant("the variance is β_t, the reverse process's upper choice; the posterior's variance is "
                "β̃_t = (1 − ᾱ_{t−1})/(1 − ᾱ_t)·β_t", _posterior_variant("beta_variance")),
        Variant("the coefficients of x₀ and x_t are swapped: x₀ gets √ᾱ_{t−1}·β_t/(1 − ᾱ_t), "
                "x_t gets √α_t·(1 − ᾱ_{t−1})/(1 − ᾱ_t)", _posterior_variant("swapped")),
        Variant("you returned the standard deviation; return the variance β̃_t", _posterior_variant("std")),
        Variant("the coefficient of x₀ is √ᾱ_{t−1}·β_t/(1 − ᾱ_t): the square root of ᾱ_{t−1} is missing",
                _posterior_variant("no_sqrt_x0")),
        Variant("the coefficient of x_t is √α_t·(1 − ᾱ_{t−1})/(1 − ᾱ_t): the square root of α_t is missing",
                _posterior_variant("no_sqrt_xt")),
    ],
    hints=[
        "Both q(x_t | x_{t−1}) and q(x_{t−1} | x_0) are Gaussian, so by Bayes' rule the posterior is "
        "Gaussian too (eq. 4.4.5): μ̃ = c₀·x₀ + c_t·x_t and variance β̃_t.",
        "With ᾱ_t = schedule.alphas_cumprod[t], ᾱ_{t−1} = schedule.alpha_bar(t − 1) (1.0 for t = 0), "
        "α_t = ᾱ_t/ᾱ_{t−1} and β_t = 1 − α_t: c₀ = √ᾱ_{t−1}·β_t/(1 − ᾱ_t), "
        "c_t = √α_t·(1 − ᾱ_{t−1})/(1 − ᾱ_t), β̃_t = (1 − ᾱ_{t−1})/(1 − ᾱ_t)·β_t.",
        "ab_t, ab_prev = schedule.alphas_cumprod[t], schedule.alpha_bar(t - 1)\n"
        "alpha = ab_t / ab_prev; beta = 1 - alpha\n"
        "mean = ab_prev.sqrt() * beta / (1 - ab_t) * x0 + alpha.sqrt() * (1 - ab_prev) / (1 - ab_t) * xt\n"
        "return mean, (1 - ab_prev) / (1 - ab_t) * beta",
    ],
    explanation=(
        "Multiplying the Gaussians $q(x_t\\mid x_{t-1})$ and $q(x_{t-1}\\mid x_0)$ and completing "
        "the square in $x_{t-1}$ gives a Gaussian whose mean interpolates between $x_0$ and $x_t$ "
        "and whose variance $\\tilde\\beta_t = \\frac{1-\\bar\\alpha_{t-1}}{1-\\bar\\alpha_t}\\beta_t$ "
        "is a little below $\\beta_t$ (eq. 4.4.5). At $t = 0$ it is 0 and the mean is $x_0$: knowing "
        "$x_0$ leaves nothing to guess. The training loss matches the model's reverse step to this "
        "posterior, term by term in the ELBO."
    ),
    atol=1e-9,
    rtol=1e-7,
))


# ---------------------------------------------------------------------------- 4.4.2 x0 from eps


_BROADCAST = ("ᾱ_t of shape (B,) broadcast along the last dimension; reshape it to (B, 1, ..., 1) "
              "so each sample gets its own timestep")


def _x0_reference(schedule, xt, t, eps):
    return schedule.predict_x0(xt, t, eps)


def _x0_cases(gen: torch.Generator, device) -> list[Case]:
    def steps(schedule: NoiseSchedule, b: int) -> torch.Tensor:
        return torch.randint(schedule.timesteps, (b,), generator=gen).to(device)

    return [
        Case("2-D points, one timestep per sample", (_LINEAR, _randn(gen, device, 6, 2), steps(_LINEAR, 6),
                                                     _randn(gen, device, 6, 2))),
        Case("8x8 images, cosine schedule", (_COSINE, _randn(gen, device, 3, 1, 8, 8), steps(_COSINE, 3),
                                             _randn(gen, device, 3, 1, 8, 8))),
        Case("a square batch (4, 4)", (_LINEAR, _randn(gen, device, 4, 4), steps(_LINEAR, 4),
                                       _randn(gen, device, 4, 4))),
        Case("first and last timestep (t = 0 and t = T-1)", (_LINEAR, _randn(gen, device, 2, 3),
                                                             torch.tensor([0, 999], device=device),
                                                             _randn(gen, device, 2, 3))),
    ]


def _x0_variant(kind: str):
    def wrong(case: Case):
        schedule, xt, t, eps = case.args
        ab = schedule.alphas_cumprod[t.cpu()].to(xt.device, xt.dtype)
        if kind != "last_dim":
            ab = ab.reshape(-1, *[1] * (xt.ndim - 1))
        if kind == "no_divide":
            return xt - (1 - ab).sqrt() * eps
        if kind == "divide_no_sqrt":
            return (xt - (1 - ab).sqrt() * eps) / ab
        if kind == "noise_no_sqrt":
            return (xt - (1 - ab) * eps) / ab.sqrt()
        if kind == "plus":
            return (xt + (1 - ab).sqrt() * eps) / ab.sqrt()
        if kind == "beta":
            a = schedule.alphas[t.cpu()].to(xt.device, xt.dtype).reshape(-1, *[1] * (xt.ndim - 1))
            return (xt - (1 - a).sqrt() * eps) / a.sqrt()
        return (xt - (1 - ab).sqrt() * eps) / ab.sqrt()

    return wrong


register(Exercise(
    id="4.4.2",
    title="Predict x̂₀ from the predicted noise",
    function="x0_from_eps",
    reference=_x0_reference,
    cases=_x0_cases,
    error_hints=[("must match the size of tensor", _BROADCAST)],
    variants=[
        Variant("you did not divide by √ᾱ_t: x̂₀ = (x_t − √(1−ᾱ_t)·ε̂)/√ᾱ_t", _x0_variant("no_divide")),
        Variant("wrong sign: x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε, so the noise is *subtracted* to recover x₀",
                _x0_variant("plus")),
        Variant("used α_t = 1 − β_t of one step; x_t was made from x₀ in one shot with the cumulative "
                "product ᾱ_t (schedule.alphas_cumprod)", _x0_variant("beta")),
        Variant(_BROADCAST, _x0_variant("last_dim")),
        Variant("divide by √ᾱ_t, not by ᾱ_t: a square root is missing", _x0_variant("divide_no_sqrt")),
        Variant("the noise is scaled by √(1 − ᾱ_t), not (1 − ᾱ_t): a square root is missing",
                _x0_variant("noise_no_sqrt")),
    ],
    hints=[
        "Solve the forward process x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε for x₀, with the model's ε̂ in place of ε.",
        "ᾱ_t = schedule.alphas_cumprod[t.cpu()], moved to x_t's device and dtype and reshaped to "
        "(B, 1, ..., 1) so that each sample uses its own timestep.",
        "ab = schedule.alphas_cumprod[t.cpu()].to(xt.device, xt.dtype).reshape(-1, *[1] * (xt.ndim - 1))\n"
        "return (xt - (1 - ab).sqrt() * eps) / ab.sqrt()",
    ],
    explanation=(
        "The forward process is linear in $x_0$ and $\\varepsilon$ (eq. 4.4.2), so a noise prediction "
        "is also a prediction of the clean data: $\\hat x_0 = (x_t - \\sqrt{1-\\bar\\alpha_t}\\,"
        "\\hat\\varepsilon)/\\sqrt{\\bar\\alpha_t}$. At large $t$ the division by a small "
        "$\\sqrt{\\bar\\alpha_t}$ magnifies any error in $\\hat\\varepsilon$, which is why early "
        "DDPM/DDIM steps give blurry $\\hat x_0$ and samplers often clip it."
    ),
    atol=1e-8,
    rtol=1e-7,
))


# ---------------------------------------------------------------------------- 4.4.3 SNR


def _snr_reference(schedule, t):
    return schedule.signal_to_noise(t)


def _snr_cases(gen: torch.Generator, device) -> list[Case]:
    return [
        Case("linear schedule, random timesteps", (_LINEAR, torch.randint(1000, (8,), generator=gen))),
        Case("cosine schedule, random timesteps", (_COSINE, torch.randint(200, (5,), generator=gen))),
        Case("first and last timestep: SNR from ~10⁴ down to ~10⁻⁵", (_LINEAR, torch.tensor([0, 999]))),
        Case("every timestep of a 200-step cosine schedule", (_COSINE, torch.arange(200))),
    ]


register(Exercise(
    id="4.4.3",
    title="The signal-to-noise ratio",
    function="snr",
    reference=_snr_reference,
    cases=_snr_cases,
    variants=[
        Variant("that is √ᾱ_t/√(1−ᾱ_t), the ratio of the *coefficients*; the SNR is the ratio of the "
                "variances, ᾱ_t/(1−ᾱ_t)", lambda c: _snr_reference(*c.args).sqrt()),
        Variant("upside down: that is the noise-to-signal ratio (1−ᾱ_t)/ᾱ_t",
                lambda c: 1 / _snr_reference(*c.args)),
        Variant("used α_t = 1 − β_t of one step; the signal left after t steps is the cumulative "
                "product ᾱ_t", lambda c: c.args[0].alphas[c.args[1]] / (1 - c.args[0].alphas[c.args[1]])),
        Variant("the noise variance is 1 − ᾱ_t, not 1: SNR = ᾱ_t/(1−ᾱ_t)",
                lambda c: c.args[0].alphas_cumprod[c.args[1]]),
        Variant("timesteps are 0-based: ᾱ for step t is alphas_cumprod[t], not the one of step t − 1",
                lambda c: _snr_reference(c.args[0], (c.args[1] - 1).clamp(min=0))),
    ],
    hints=[
        "x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε: the signal has variance ᾱ_t·Var(x₀) and the noise 1 − ᾱ_t. "
        "The SNR (for unit-variance data) is the ratio of the two.",
        "Index schedule.alphas_cumprod with the (B,) tensor t; the result has t's shape and the "
        "schedule's dtype.",
        "ab = schedule.alphas_cumprod[t]\nreturn ab / (1 - ab)",
    ],
    explanation=(
        "$\\mathrm{SNR}(t) = \\bar\\alpha_t/(1-\\bar\\alpha_t)$ falls monotonically from large to "
        "almost 0 over the schedule (Kingma et al. 2021). The ELBO's weight on step $t$ is "
        "proportional to $\\mathrm{SNR}(t-1) - \\mathrm{SNR}(t)$, and schedules differ mainly in how "
        "fast $\\log\\mathrm{SNR}$ falls; the cosine schedule spends more steps at medium SNR than "
        "the linear one."
    ),
    atol=1e-12,
    rtol=1e-7,
))
