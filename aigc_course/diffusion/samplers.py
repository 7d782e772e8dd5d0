"""Generating by repeated denoising: ancestral DDPM, DDIM and classifier-free guidance (section 3.3.3).

Every sampler steps a *noise-prediction* model ``model(x (B, ...), t (B,), labels (B,) or None)``
that returns :math:`\\hat\\varepsilon` of the shape of ``x``. One step goes from timestep ``t``
to an earlier ``prev_t`` (``-1`` means clean data):

* :func:`ddpm_step` -- the ancestral step of DDPM (eq. 4.4.6): the posterior mean with
  :math:`\\hat x_0` plugged in, plus posterior noise;
* :func:`ddim_step` -- DDIM's step (eq. 4.4.9) with :math:`\\sigma_t = \\eta\\,\\tilde\\beta_t^{1/2}`;
  ``eta = 0`` is deterministic;
* :func:`classifier_free_guidance` -- :math:`\\varepsilon = \\varepsilon_u + s(\\varepsilon_c-\\varepsilon_u)`,
  diffusers' ``guidance_scale`` (``s = 1`` is the plain conditional model).

The steps equal diffusers' ``DDPMScheduler.step`` and ``DDIMScheduler.step`` (with and without
``clip_sample``) and :func:`inference_timesteps` its ``"leading"`` spacing; the tests check both.

Options are checked on every call (finite numbers in range; ``bool`` is not a number). The
step functions run once per denoising step, so they check shapes but do not scan tensor
values: NaN in ``x`` or ``eps`` propagates. :func:`sample` draws its own noise and checks
its options once per call.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from aigc_course._checks import check_choice, check_int, check_number, check_tensor
from aigc_course.diffusion.schedule import NoiseSchedule

SAMPLERS = ("ddpm", "ddim")


def inference_timesteps(num_train_timesteps: int, num_inference_steps: int) -> torch.Tensor:
    """Diffusers' ``"leading"`` spacing: ``[0, r, 2r, ...]`` reversed, ``r = T // n``. ``(n,)`` long."""
    num_train_timesteps = check_int(num_train_timesteps, "num_train_timesteps", low=1)
    num_inference_steps = check_int(num_inference_steps, "num_inference_steps", low=1, high=num_train_timesteps)
    ratio = num_train_timesteps // num_inference_steps
    return (torch.arange(num_inference_steps) * ratio).flip(0)


def _check_clip(clip_sample: float | None) -> float | None:
    return check_number(clip_sample, "clip_sample", low=0, low_open=True, none_ok=True)


def _check_step(eps: torch.Tensor, x: torch.Tensor, noise: torch.Tensor | None) -> None:
    """Shapes only (a step runs once per denoising step: no value scans)."""
    check_tensor(x, "x", floating=True)
    check_tensor(eps, "eps", floating=True)
    if eps.shape != x.shape:
        raise ValueError(f"eps must have the shape of x {tuple(x.shape)}, got {tuple(eps.shape)}")
    if noise is not None and (not isinstance(noise, torch.Tensor) or noise.shape != x.shape):
        got = tuple(noise.shape) if isinstance(noise, torch.Tensor) else type(noise).__name__
        raise ValueError(f"noise must be a tensor of the shape of x {tuple(x.shape)}, got {got}")


def _clip(x0_hat: torch.Tensor, clip_sample: float | None) -> torch.Tensor:
    clip_sample = _check_clip(clip_sample)
    return x0_hat if clip_sample is None else x0_hat.clamp(-clip_sample, clip_sample)


def ddpm_step(
    schedule: NoiseSchedule,
    eps: torch.Tensor,
    t: int,
    x: torch.Tensor,
    prev_t: int | None = None,
    noise: torch.Tensor | None = None,
    clip_sample: float | None = None,
) -> torch.Tensor:
    """One ancestral step :math:`x_{t'} = \\tilde\\mu(\\hat x_0, x_t) + \\tilde\\beta^{1/2} z` (eq. 4.4.6).

    ``x`` and ``eps`` are ``(B, ...)``. ``noise`` ``z`` is required unless ``prev_t == -1``
    (the last step adds no noise). ``clip_sample = c`` clamps :math:`\\hat x_0` to ``[-c, c]``
    first (diffusers' ``clip_sample``), for data known to lie in that range.
    """
    _check_step(eps, x, noise)
    t = int(schedule.check_timesteps(t))
    prev_t = t - 1 if prev_t is None else max(check_int(prev_t, "prev_t"), -1)  # below 0 means clean data
    x0_hat = _clip(schedule.predict_x0(x, t, eps), clip_sample)
    mean, variance = schedule.posterior(x0_hat, x, t, prev_t)
    if prev_t < 0:
        return mean
    if noise is None:
        raise ValueError("ddpm_step needs noise for every step except the last (prev_t = -1)")
    return mean + variance.sqrt().to(x.device, x.dtype) * noise


def ddim_step(
    schedule: NoiseSchedule,
    eps: torch.Tensor,
    t: int,
    x: torch.Tensor,
    prev_t: int,
    eta: float = 0.0,
    noise: torch.Tensor | None = None,
    clip_sample: float | None = None,
) -> torch.Tensor:
    """One DDIM step (eq. 4.4.9), for ``x`` and ``eps`` ``(B, ...)``:

    :math:`x_{t'} = \\sqrt{\\bar\\alpha_{t'}}\\hat x_0 + \\sqrt{1-\\bar\\alpha_{t'}-\\sigma^2}\\,\\hat\\varepsilon + \\sigma z`,
    :math:`\\sigma = \\eta\\sqrt{(1-\\bar\\alpha_{t'})/(1-\\bar\\alpha_t)\\,(1-\\bar\\alpha_t/\\bar\\alpha_{t'})}`.
    ``clip_sample`` clamps :math:`\\hat x_0` only (the direction keeps :math:`\\hat\\varepsilon`), as diffusers does.
    """
    eta = check_number(eta, "eta", low=0.0)
    _check_step(eps, x, noise)
    t = int(schedule.check_timesteps(t))
    prev_t = max(check_int(prev_t, "prev_t"), -1)  # below 0 means clean data
    if prev_t >= t:
        raise ValueError(f"prev_t must be in [-1, t) = [-1, {t}), got {prev_t}")
    ab_t = schedule.alphas_cumprod[t]
    ab_prev = schedule.alpha_bar(prev_t)
    x0_hat = _clip(schedule.predict_x0(x, t, eps), clip_sample)
    variance = (1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev)
    sigma = eta * variance.sqrt()
    direction = (1 - ab_prev - sigma**2).sqrt().to(x.device, x.dtype) * eps
    out = ab_prev.sqrt().to(x.device, x.dtype) * x0_hat + direction
    if eta > 0:
        if noise is None:
            raise ValueError("ddim_step with eta > 0 needs noise")
        out = out + sigma.to(x.device, x.dtype) * noise
    return out


def classifier_free_guidance(
    eps_uncond: torch.Tensor, eps_cond: torch.Tensor, guidance_scale: float
) -> torch.Tensor:
    """:math:`\\varepsilon_u + s(\\varepsilon_c-\\varepsilon_u)` (eq. 4.4.12); ``s = 1`` gives ``eps_cond``.

    ``guidance_scale`` is a finite number >= 0; the two predictions have the same shape.
    """
    guidance_scale = check_number(guidance_scale, "guidance_scale", low=0.0)
    check_tensor(eps_uncond, "eps_uncond", floating=True)
    check_tensor(eps_cond, "eps_cond", floating=True)
    if eps_cond.shape != eps_uncond.shape:
        raise ValueError(f"eps_cond must have the shape of eps_uncond {tuple(eps_uncond.shape)}, "
                         f"got {tuple(eps_cond.shape)}")
    return eps_uncond + guidance_scale * (eps_cond - eps_uncond)


def predict_noise(
    model: torch.nn.Module,
    x: torch.Tensor,
    t: int,
    labels: torch.Tensor | None = None,
    null_label: int | torch.Tensor | None = None,
    guidance_scale: float = 1.0,
) -> torch.Tensor:
    """The model's :math:`\\hat\\varepsilon` at timestep ``t`` for ``x (B, ...)``, guided when asked.

    With ``labels`` and ``guidance_scale != 1`` the conditional and the null-label
    (unconditional) passes run as one batch of ``2B``. ``labels`` is ``(B,)`` class ids with an
    int ``null_label``, or any ``(B, ...)`` condition (a prompt's token ids ``(B, L)``) with a
    ``null_label`` tensor that broadcasts to it (the empty prompt's ids ``(L,)``).
    """
    check_tensor(x, "x", floating=True)
    guidance_scale = check_number(guidance_scale, "guidance_scale", low=0.0)
    t_batch = torch.full((len(x),), int(t), device=x.device, dtype=torch.long)
    if labels is None or guidance_scale == 1.0:
        return model(x, t_batch, labels)
    if null_label is None:
        raise ValueError("guidance_scale != 1 needs the model's null_label")
    if isinstance(null_label, torch.Tensor):
        nulls = null_label.to(labels.device, labels.dtype).expand_as(labels)
    else:
        nulls = torch.full_like(labels, null_label)
    eps = model(torch.cat([x, x]), torch.cat([t_batch, t_batch]), torch.cat([labels, nulls]))
    eps_cond, eps_uncond = eps.chunk(2)
    return classifier_free_guidance(eps_uncond, eps_cond, guidance_scale)


@torch.no_grad()
def sample(
    model: torch.nn.Module,
    schedule: NoiseSchedule,
    shape: tuple[int, ...],
    *,
    labels: torch.Tensor | None = None,
    null_label: int | torch.Tensor | None = None,
    num_inference_steps: int | None = None,
    sampler: str = "ddpm",
    eta: float = 0.0,
    guidance_scale: float = 1.0,
    clip_sample: float | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    return_trajectory: bool = False,
    progress: bool = False,
):
    """Run the reverse process from :math:`x_T\\sim\\mathcal N(0, I)` of ``shape (B, ...)``.

    ``num_inference_steps`` (default: all ``T``) uses diffusers' leading spacing for both
    samplers; ``clip_sample`` clamps each step's :math:`\\hat x_0`. All noise is drawn on the
    CPU from ``generator``, so a seed gives the same samples on every device. Returns ``x_0`` ``(B, ...)``, or ``(x_0, trajectory)`` with
    ``trajectory`` ``(S+1, B, ...)`` on the CPU when ``return_trajectory`` is set.
    Every option is checked here, once; ``labels`` must be ``B`` integer class ids.
    """
    check_choice(sampler, "sampler", SAMPLERS)
    guidance_scale = check_number(guidance_scale, "guidance_scale", low=0.0)
    eta = check_number(eta, "eta", low=0.0)
    _check_clip(clip_sample)
    if not isinstance(shape, (tuple, list, torch.Size)) or not shape:
        raise ValueError(f"shape must be a non-empty tuple of positive ints (B, ...), got {shape!r}")
    shape = tuple(check_int(n, f"shape[{i}]", low=1) for i, n in enumerate(shape))
    steps = schedule.timesteps if num_inference_steps is None else num_inference_steps
    timesteps = inference_timesteps(schedule.timesteps, steps).tolist()
    device = torch.device(device) if device is not None else next(model.parameters()).device
    if labels is not None:
        labels = torch.as_tensor(labels)
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise ValueError(f"labels must be integer class ids or token ids, got dtype {labels.dtype}")
        if labels.ndim == 0 or len(labels) != shape[0]:
            raise ValueError(f"labels must have one row per sample, shape ({shape[0]},) or ({shape[0]}, ...), "
                             f"got {tuple(labels.shape)}")
        labels = labels.long().to(device)

    def randn() -> torch.Tensor:
        return torch.randn(shape, generator=generator).to(device)

    x = randn()
    trajectory = [x.cpu()] if return_trajectory else None
    ratio = schedule.timesteps // steps
    for t in tqdm(timesteps, desc=f"{sampler}-{steps}", disable=not progress, leave=False):
        prev_t = max(t - ratio, -1)
        eps = predict_noise(model, x, t, labels, null_label, guidance_scale)
        if sampler == "ddpm":
            x = ddpm_step(schedule, eps, t, x, prev_t, randn() if prev_t >= 0 else None, clip_sample)
        else:
            x = ddim_step(schedule, eps, t, x, prev_t, eta, randn() if eta > 0 else None, clip_sample)
        if trajectory is not None:
            trajectory.append(x.cpu())
    if trajectory is not None:
        return x, torch.stack(trajectory)
    return x
