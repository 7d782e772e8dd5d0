"""Chapter 4.2 exercises: the optimal discriminator, the value function, the JS divergence.

References: :func:`aigc_course.gan.optimal_discriminator`, :func:`aigc_course.gan.value_function`
and :func:`aigc_course.gan.js_divergence`. Densities are values on a uniform grid with
spacing ``dx``; integrals are Riemann sums.
"""

from __future__ import annotations

import math

import torch

from aigc_course.exercises.core import Case, Exercise, Variant, register
from aigc_course.gan import (
    gaussian_pdf,
    js_divergence,
    kl_divergence,
    optimal_discriminator,
    value_function,
)


def _grid(n: int = 401, half_width: float = 6.0):
    x = torch.linspace(-half_width, half_width, n, dtype=torch.float64)
    return x, float(x[1] - x[0])


def _draw(gen: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=gen, dtype=torch.float64))


def _gaussians(gen: torch.Generator, x: torch.Tensor):
    p = gaussian_pdf(x, _draw(gen, -2, 0), _draw(gen, 0.4, 1.2))
    q = gaussian_pdf(x, _draw(gen, 0, 2), _draw(gen, 0.4, 1.5))
    return p, q


def _boxes(x: torch.Tensor, a: tuple[float, float], b: tuple[float, float]):
    """Two uniform densities on [a0, a1] and [b0, b1]: zero outside their supports."""
    p = ((x >= a[0]) & (x <= a[1])).double()
    q = ((x >= b[0]) & (x <= b[1])).double()
    dx = float(x[1] - x[0])
    return p / (p.sum() * dx), q / (q.sum() * dx)


def _nan_diagnostic(message: str):
    def diagnose(case: Case, expected, actual) -> str | None:
        if isinstance(actual, torch.Tensor) and actual.is_floating_point() and torch.isnan(actual).any():
            if not torch.isnan(expected).any():
                return message
        return None

    return diagnose


# ---------------------------------------------------------------------------- 4.2.1 D*


def _d_cases(gen: torch.Generator, device) -> list[Case]:
    x, _ = _grid()
    p, q = _gaussians(gen, x)
    p2, q2 = _gaussians(gen, x[::4])
    a, b = _boxes(x, (-3, 1), (0, 4))
    return [
        Case("two random Gaussians on a grid", (p.to(device), q.to(device))),
        Case("two other Gaussians, coarser grid", (p2.to(device), q2.to(device))),
        Case("equal densities (a perfect generator)", (p.to(device), p.clone().to(device))),
        Case("boxes with partly disjoint supports (densities of 0, both 0 at the edges)",
             (a.to(device), b.to(device))),
    ]


register(Exercise(
    id="4.2.1",
    title="The optimal discriminator D*",
    function="best_discriminator",
    reference=optimal_discriminator,
    cases=_d_cases,
    diagnostics=[_nan_diagnostic(
        "NaN where both densities are 0 (0/0): no sample ever lands there, so any D is optimal; "
        "return 1/2 there (torch.where(total > 0, ..., 0.5))")],
    variants=[
        Variant("swapped: D* is the probability that x is *real*, p_data / (p_data + p_g)",
                lambda c: optimal_discriminator(c.args[1], c.args[0])),
        Variant("the likelihood ratio p_data / p_g is not a probability; normalise by the sum "
                "p_data + p_g", lambda c: c.args[0] / c.args[1]),
        Variant("where both densities are 0 the answer should be 1/2 (either class is equally likely), not 0",
                lambda c: torch.where(c.args[0] + c.args[1] > 0, optimal_discriminator(*c.args),
                                      torch.zeros_like(c.args[0]))),
    ],
    hints=[
        "For a fixed x, maximise a·log D + b·log(1 − D) over D in (0, 1), with a = p_data(x) and "
        "b = p_g(x). Set the derivative to zero.",
        "The maximum is at D = a / (a + b). Where a + b = 0 nothing is at stake; the package "
        "returns 1/2 there. torch.where(total > 0, p_data / total, 0.5) needs a safe denominator "
        "(total.clamp_min(tiny)) so that the unused branch holds no NaN.",
        "total = p_data + p_g\n"
        "return torch.where(total > 0, p_data / total.clamp_min(1e-300), torch.full_like(total, 0.5))",
    ],
    explanation=(
        "Pointwise, $a\\log D + b\\log(1-D)$ has derivative $a/D - b/(1-D)$, which is zero at "
        "$D^* = a/(a+b) = p_{data}/(p_{data}+p_g)$ (Goodfellow et al. 2014, Prop. 1). When the "
        "generator is perfect, $D^* = 1/2$ everywhere. Where neither density puts mass the value "
        "of $D$ does not matter; 1/2 is the natural choice and avoids a 0/0."
    ),
))


# ---------------------------------------------------------------------------- 4.2.2 V(D, G)


def _v_cases(gen: torch.Generator, device) -> list[Case]:
    x, dx = _grid()
    p, q = _gaussians(gen, x)
    d_random = torch.sigmoid(torch.randn(x.shape, generator=gen, dtype=torch.float64))
    a, b = _boxes(x, (-3, 1), (0, 4))
    x2, dx2 = _grid(201, 4.0)
    p2, q2 = _gaussians(gen, x2)
    return [
        Case("a random D on a grid of 401 points", (d_random.to(device), p.to(device), q.to(device), dx)),
        # D* itself rounds to exactly 1 in the far tails, where p_g is tiny but not 0
        Case("D = 0.9·D* + 0.05 for two Gaussians, grid of 201 points",
             ((0.9 * optimal_discriminator(p2, q2) + 0.05).to(device), p2.to(device), q2.to(device), dx2)),
        Case("D = 1/2 everywhere: V = -log 4", (torch.full_like(p, 0.5).to(device), p.to(device), q.to(device), dx)),
        Case("D* for boxes: D = 1 where p_g = 0 and D = 0 where p_data = 0 (0 log 0 = 0)",
             (optimal_discriminator(a, b).to(device), a.to(device), b.to(device), dx)),
    ]


def _xlogy_naive(x, y):
    return x * torch.log(y)


register(Exercise(
    id="4.2.2",
    title="The value function V(D, G)",
    function="value_of",
    reference=value_function,
    cases=_v_cases,
    diagnostics=[_nan_diagnostic(
        "the value is NaN: 0·log 0 evaluates to 0·(−inf) = NaN. Where a density is 0 its term "
        "contributes 0 (use torch.xlogy, or torch.where(p > 0, ..., 0))")],
    variants=[
        Variant("missing the grid spacing dx: the integral is the Riemann sum Σ f(x)·dx",
                lambda c: value_function(*c.args[:3], 1.0)),
        Variant("the log terms are swapped: real data should score log D, fakes log(1 − D)",
                lambda c: value_function(1 - c.args[0], *c.args[1:])),
        Variant("you averaged over the grid points instead of integrating: Σ f(x)·dx, not mean f(x)",
                lambda c: value_function(*c.args[:3], 1.0 / len(c.args[0]))),
        Variant("wrong sign: V = ∫ p_data log D + ∫ p_g log(1 − D), which is ≤ 0",
                lambda c: -value_function(*c.args)),
        Variant("the fake term is log(1 − D), not −log D",
                lambda c: (torch.xlogy(c.args[1], c.args[0]) - torch.xlogy(c.args[2], c.args[0])).sum()
                * c.args[3]),
    ],
    hints=[
        "V(D, G) = ∫ p_data(x) log D(x) dx + ∫ p_g(x) log(1 − D(x)) dx; on a grid each integral "
        "is a sum of values times dx.",
        "Where p_data = 0 and D = 0, p_data·log D is 0·(−inf), which torch evaluates to NaN; "
        "torch.xlogy(p, d) computes p·log d and returns 0 where p = 0.",
        "return (torch.xlogy(p_data, d) + torch.xlogy(p_g, 1 - d)).sum() * dx",
    ],
    explanation=(
        "$V(D, G) = \\mathbb E_{p_{data}}[\\log D] + \\mathbb E_{p_g}[\\log(1-D)]$ is the "
        "discriminator's log-likelihood of labelling real samples 1 and fakes 0 (eq. 4.2.1). At "
        "$D = 1/2$ it is $-\\log 4$, and no $D$ does better than $D^*$. The convention "
        "$0\\log 0 = 0$ (a term with no mass contributes nothing) is what `torch.xlogy` implements."
    ),
    atol=1e-8,
    rtol=1e-6,
))


# ---------------------------------------------------------------------------- 4.2.3 JSD


def _jsd_cases(gen: torch.Generator, device) -> list[Case]:
    x, dx = _grid()
    p, q = _gaussians(gen, x)
    a, b = _boxes(x, (-4, -1), (1, 4))
    c, d = _boxes(x, (-3, 1), (0, 4))
    return [
        Case("two random Gaussians", (p.to(device), q.to(device), dx)),
        Case("identical densities: JSD = 0", (p.to(device), p.clone().to(device), dx)),
        Case("disjoint supports: JSD = log 2", (a.to(device), b.to(device), dx)),
        Case("overlapping boxes (zeros in each density)", (c.to(device), d.to(device), dx)),
    ]


def _jsd_reversed(case: Case):
    p, q, dx = case.args
    m = 0.5 * (p + q)
    return 0.5 * kl_divergence(m, p, dx) + 0.5 * kl_divergence(m, q, dx)


def _kl_pq(case: Case):
    p, q, dx = case.args
    return kl_divergence(p, q, dx)


register(Exercise(
    id="4.2.3",
    title="The Jensen–Shannon divergence",
    function="jensen_shannon",
    reference=js_divergence,
    cases=_jsd_cases,
    diagnostics=[_nan_diagnostic(
        "the JSD is NaN: p·log(p/m) is 0·log 0 where p = 0; that term contributes 0 "
        "(use torch.xlogy(p, p) − torch.xlogy(p, m), or torch.where(p > 0, ..., 0))")],
    variants=[
        Variant("this is KL(p ‖ q); the JSD compares each density with the mixture m = (p + q)/2",
                _kl_pq),
        Variant("missing the factor 1/2: JSD = ½KL(p ‖ m) + ½KL(q ‖ m)",
                lambda c: 2 * js_divergence(*c.args)),
        Variant("the mixture is m = (p + q)/2; you used p + q",
                lambda c: 0.5 * kl_divergence(c.args[0], c.args[0] + c.args[1], c.args[2])
                + 0.5 * kl_divergence(c.args[1], c.args[0] + c.args[1], c.args[2])),
        Variant("you measured in bits (log base 2); use the natural log, so that the maximum is log 2",
                lambda c: js_divergence(*c.args) / math.log(2)),
        Variant("missing the grid spacing dx in the integrals", lambda c: js_divergence(c.args[0], c.args[1], 1.0)),
        Variant("the KL terms are the wrong way round: the JSD uses KL(p ‖ m) and KL(q ‖ m), each density "
                "against the mixture", _jsd_reversed),
        Variant("that is the Jensen–Shannon *distance* √JSD; return the divergence itself",
                lambda c: js_divergence(*c.args).sqrt()),
    ],
    hints=[
        "JSD(p ‖ q) = ½ KL(p ‖ m) + ½ KL(q ‖ m) with the mixture m = (p + q)/2, and "
        "KL(p ‖ m) = ∫ p log(p/m) dx.",
        "Where p = 0 the term p·log(p/m) is 0 by convention; torch.xlogy(p, p) − torch.xlogy(p, m) "
        "gives that without NaN. m > 0 wherever p > 0, so KL(p ‖ m) is always finite.",
        "m = 0.5 * (p + q)\n"
        "kl_pm = (torch.xlogy(p, p) - torch.xlogy(p, m)).sum() * dx\n"
        "kl_qm = (torch.xlogy(q, q) - torch.xlogy(q, m)).sum() * dx\n"
        "return 0.5 * kl_pm + 0.5 * kl_qm",
    ],
    explanation=(
        "Plugging $D^*$ into $V$ gives $V(D^*, G) = -\\log 4 + 2\\,\\mathrm{JSD}(p_{data}\\,\\|\\,p_g)$ "
        "(eq. 4.2.3), so the minimax generator minimises the JSD. Unlike $\\mathrm{KL}(p\\|q)$ it is "
        "symmetric and finite: comparing each density with the mixture $m$ keeps every log ratio "
        "finite. It is 0 for equal densities and reaches its maximum $\\log 2$ for disjoint "
        "supports, where it stops changing as the generator moves: the vanishing-gradient problem."
    ),
    atol=1e-8,
    rtol=1e-6,
))
