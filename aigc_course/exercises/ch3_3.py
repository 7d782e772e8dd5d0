"""Chapter 3.3 exercises: the forward process, a DDIM step, classifier-free guidance.

References: :meth:`aigc_course.diffusion.NoiseSchedule.q_sample`,
:func:`aigc_course.diffusion.ddim_step` and :func:`aigc_course.diffusion.classifier_free_guidance`.
"""

from __future__ import annotations

import torch

from aigc_course.diffusion import NoiseSchedule, classifier_free_guidance, ddim_step, ddpm_step
from aigc_course.exercises.core import Case, Exercise, Variant, register


def _randn(gen: torch.Generator, device, *shape: int) -> torch.Tensor:
    return torch.randn(shape, generator=gen).to(device)


def _expand(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return values.to(x.device, x.dtype).reshape(-1, *([1] * (x.ndim - 1)))


# ---------------------------------------------------------------------------- 3.3.1 q_sample


_BROADCAST = ("ᾱ_t of shape (B,) broadcast along the last dimension; reshape it to (B, 1, ..., 1) "
              "so each sample gets its own timestep")


def _q_reference(schedule: NoiseSchedule, x0, t, noise):
    return schedule.q_sample(x0, t, noise)


def _q_cases(gen: torch.Generator, device) -> list[Case]:
    linear, cosine = NoiseSchedule("linear", 1000), NoiseSchedule("cosine", 100)
    cases = []
    for name, schedule, shape in (("2-D points, linear schedule", linear, (6, 2)),
                                  ("8x8 images, cosine schedule", cosine, (3, 1, 8, 8)),
                                  ("a square batch (4, 4)", linear, (4, 4))):
        t = torch.randint(schedule.timesteps, (shape[0],), generator=gen).to(device)
        cases.append(Case(name, (schedule, _randn(gen, device, *shape), t, _randn(gen, device, *shape))))
    edge = torch.tensor([0, 999], device=device)
    cases.append(Case("first and last timestep (t = 0 and t = T-1)",
                      (linear, _randn(gen, device, 2, 3), edge, _randn(gen, device, 2, 3))))
    return cases


def _q_variant(kind: str):
    def wrong(case: Case):
        schedule, x0, t, noise = case.args
        table = schedule.alphas if kind == "alphas" else schedule.alphas_cumprod
        idx = (t.cpu() - 1).clamp(min=0) if kind == "minus_one" else t.cpu()
        if kind == "plus_one":
            idx = (t.cpu() + 1).clamp(max=schedule.timesteps - 1)
        ab = table[idx].to(x0.device)
        if kind == "last_dim":
            return ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        ab = _expand(ab, x0)
        if kind == "no_sqrt":
            return ab * x0 + (1 - ab) * noise
        if kind == "swapped":
            return (1 - ab).sqrt() * x0 + ab.sqrt() * noise
        if kind == "x0_no_sqrt":
            return ab * x0 + (1 - ab).sqrt() * noise
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    return wrong


register(Exercise(
    id="3.3.1",
    title="The forward process q_sample",
    function="q_sample",
    reference=_q_reference,
    cases=_q_cases,
    error_hints=[("must match the size of tensor", _BROADCAST)],
    variants=[
        Variant("used α_t = 1 − β_t; the closed form needs the cumulative product ᾱ_t "
                "(schedule.alphas_cumprod)", _q_variant("alphas")),
        Variant("missing the square roots: x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε", _q_variant("no_sqrt")),
        Variant("timesteps are 0-based: ᾱ for step t is alphas_cumprod[t], not alphas_cumprod[t - 1]",
                _q_variant("minus_one")),
        Variant(_BROADCAST, _q_variant("last_dim")),
        Variant("timesteps are 0-based: ᾱ for step t is alphas_cumprod[t], not alphas_cumprod[t + 1]",
                _q_variant("plus_one")),
        Variant("the coefficients are swapped: the signal keeps √ᾱ_t·x₀ and the noise gets √(1−ᾱ_t)·ε",
                _q_variant("swapped")),
        Variant("the coefficient of x₀ is √ᾱ_t: a square root is missing", _q_variant("x0_no_sqrt")),
    ],
    hints=[
        "x_t = √ᾱ_t · x₀ + √(1 − ᾱ_t) · ε, with ᾱ_t = schedule.alphas_cumprod[t], one value per sample.",
        "alphas_cumprod lives on the CPU: index it with t.cpu(), move the result to x0's device, and "
        "reshape it to (B, 1, ..., 1) with .reshape(-1, *[1] * (x0.ndim - 1)) so it broadcasts.",
        "ab = schedule.alphas_cumprod[t.cpu()].to(x0.device, x0.dtype)\n"
        "ab = ab.reshape(-1, *[1] * (x0.ndim - 1))\nreturn ab.sqrt() * x0 + (1 - ab).sqrt() * noise",
    ],
    explanation=(
        "Composing $t+1$ Gaussian noising steps gives one Gaussian (eq. 4.4.2), so $x_t$ is drawn "
        "in one shot from $x_0$. Each sample in the batch has its own timestep, hence the reshape "
        "of $\\bar\\alpha_t$ to `(B, 1, ..., 1)`; with a `(B,)` tensor, broadcasting would line "
        "it up with the *last* dimension instead, silently when that dimension happens to equal B."
    ),
))


# ---------------------------------------------------------------------------- 3.3.2 DDIM step


def _ddim_reference(schedule, eps, t, x, prev_t):
    return ddim_step(schedule, eps, t, x, prev_t)


def _ddim_cases(gen: torch.Generator, device) -> list[Case]:
    schedule = NoiseSchedule("linear", 1000)
    cases = []
    for name, t, prev_t, shape in (("a 20-step jump: t=500 -> 480", 500, 480, (4, 2)),
                                   ("a single step: t=100 -> 99", 100, 99, (3, 1, 8, 8)),
                                   ("a long jump: t=999 -> 899", 999, 899, (2, 5))):
        cases.append(Case(name, (schedule, _randn(gen, device, *shape), t, _randn(gen, device, *shape), prev_t)))
    cases.append(Case("the last step: prev_t = -1 (clean data)",
                      (schedule, _randn(gen, device, 3, 2), 20, _randn(gen, device, 3, 2), -1)))
    return cases


def _ddim_variant(kind: str):
    def wrong(case: Case):
        schedule, eps, t, x, prev_t = case.args
        ab_t = schedule.alphas_cumprod[t]
        ab_prev = schedule.alphas_cumprod[prev_t]  # python's [-1] is the *last* entry
        if kind != "negative_index":
            ab_prev = schedule.alpha_bar(prev_t)
        x0 = schedule.predict_x0(x, t, eps)
        if kind == "plus":
            x0 = (x + (1 - ab_t).sqrt().to(x.device) * eps) / ab_t.sqrt().to(x.device)
        if kind == "one_step":
            a = schedule.alphas[t]
            x0 = (x - (1 - a).sqrt().to(x.device) * eps) / a.sqrt().to(x.device)
        if kind == "x0":
            return x0
        if kind == "no_sqrt":
            return ab_prev.to(x.device) * x0 + (1 - ab_prev).sqrt().to(x.device) * eps
        coef = (1 - ab_t) if kind == "wrong_direction" else (1 - ab_prev)
        return ab_prev.sqrt().to(x.device) * x0 + coef.sqrt().to(x.device) * eps

    return wrong


register(Exercise(
    id="3.3.2",
    title="A deterministic DDIM step",
    function="ddim_step_eta0",
    reference=_ddim_reference,
    cases=_ddim_cases,
    variants=[
        Variant("prev_t = -1 means clean data, ᾱ = 1; schedule.alphas_cumprod[-1] is the *last* "
                "step's ᾱ (use schedule.alpha_bar(prev_t), which maps -1 to 1)",
                _ddim_variant("negative_index")),
        Variant("the direction term needs √(1 − ᾱ_{t'}) of the *previous* step, not √(1 − ᾱ_t)",
                _ddim_variant("wrong_direction")),
        Variant("you returned x̂₀; the step must re-noise it to the level of t': "
                "√ᾱ_{t'}·x̂₀ + √(1−ᾱ_{t'})·ε̂", _ddim_variant("x0")),
        Variant("x̂₀ = (x_t − √(1−ᾱ_t)·ε̂)/√ᾱ_t: the predicted noise is *subtracted*", _ddim_variant("plus")),
        Variant("x_t was made from x₀ in one shot with the cumulative ᾱ_t (alphas_cumprod), not the one-step "
                "α_t", _ddim_variant("one_step")),
        Variant("the coefficient of x̂₀ is √ᾱ_{t'}: a square root is missing", _ddim_variant("no_sqrt")),
        Variant("this is the DDPM posterior mean, not DDIM's deterministic step",
                lambda c: ddpm_step(c.args[0], c.args[1], c.args[2], c.args[3], c.args[4],
                                    noise=torch.zeros_like(c.args[3]))),
    ],
    hints=[
        "First estimate the clean data from the predicted noise, x̂₀ = (x_t − √(1−ᾱ_t)·ε̂)/√ᾱ_t; "
        "then go to t' along the same noise: x_{t'} = √ᾱ_{t'}·x̂₀ + √(1−ᾱ_{t'})·ε̂.",
        "ᾱ_t = schedule.alphas_cumprod[t]; for t' use schedule.alpha_bar(prev_t), which gives 1.0 "
        "for prev_t = -1 (clean data). Move the scalars to x's device.",
        "ab_t = schedule.alphas_cumprod[t].to(x.device)\nab_prev = schedule.alpha_bar(prev_t).to(x.device)\n"
        "x0 = (x - (1 - ab_t).sqrt() * eps) / ab_t.sqrt()\n"
        "return ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps",
    ],
    explanation=(
        "With $\\eta = 0$ DDIM (eq. 4.4.9) adds no fresh noise: it predicts $\\hat x_0$ and moves "
        "it to noise level $t'$ along the *same* predicted noise $\\hat\\varepsilon$. The step is "
        "deterministic, so it can jump many timesteps at once. At the last step "
        "$\\bar\\alpha_{-1} = 1$ and the step returns $\\hat x_0$."
    ),
))


# ---------------------------------------------------------------------------- 3.3.3 CFG


def _cfg_cases(gen: torch.Generator, device) -> list[Case]:
    return [
        Case("random noise predictions (4, 1, 8, 8), s=3", (_randn(gen, device, 4, 1, 8, 8),
                                                           _randn(gen, device, 4, 1, 8, 8), 3.0)),
        Case("random (6, 2), s=1.5", (_randn(gen, device, 6, 2), _randn(gen, device, 6, 2), 1.5)),
        Case("s = 1 gives the conditional prediction", (_randn(gen, device, 3, 2), _randn(gen, device, 3, 2), 1.0)),
        Case("s = 0 gives the unconditional prediction", (_randn(gen, device, 3, 2), _randn(gen, device, 3, 2), 0.0)),
    ]


register(Exercise(
    id="3.3.3",
    title="Classifier-free guidance",
    function="guided_noise",
    reference=classifier_free_guidance,
    cases=_cfg_cases,
    variants=[
        Variant("swapped: start from ε_uncond and move towards ε_cond, ε_u + s(ε_c − ε_u)",
                lambda c: classifier_free_guidance(c.args[1], c.args[0], c.args[2])),
        Variant("that is the (1 + w) parameterisation ε_c + s(ε_c − ε_u); with diffusers' guidance "
                "scale, s = 1 must give ε_cond exactly",
                lambda c: c.args[1] + c.args[2] * (c.args[1] - c.args[0])),
        Variant("you scaled ε_cond alone; guidance extrapolates from ε_uncond towards ε_cond",
                lambda c: c.args[2] * c.args[1]),
        Variant("wrong sign: guidance moves *towards* the condition, ε_u + s(ε_c − ε_u)",
                lambda c: c.args[0] - c.args[2] * (c.args[1] - c.args[0])),
    ],
    hints=[
        "Start from the unconditional prediction and move s times the way the condition points.",
        "The direction the condition points is ε_cond − ε_uncond; s = 1 must give ε_cond and s = 0 "
        "must give ε_uncond.",
        "return eps_uncond + guidance_scale * (eps_cond - eps_uncond)",
    ],
    explanation=(
        "$\\tilde\\varepsilon = \\varepsilon_u + s(\\varepsilon_c - \\varepsilon_u)$ (eq. 4.4.12). "
        "With $s > 1$ the sampler extrapolates past the conditional prediction, trading variety "
        "for samples that match the label more clearly."
    ),
))
