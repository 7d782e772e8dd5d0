"""The noise schedule and the forward process of a diffusion model (book section 3.3.1).

A schedule is the list of per-step noise variances :math:`\\beta_1..\\beta_T`. From it,

* :math:`\\alpha_t = 1-\\beta_t` and :math:`\\bar\\alpha_t = \\prod_{s\\le t}\\alpha_s`;
* the forward process in closed form (eq. 4.4.2),
  :math:`q(x_t\\mid x_0) = \\mathcal N(\\sqrt{\\bar\\alpha_t}\\,x_0,\\,(1-\\bar\\alpha_t)I)`;
* the Gaussian posterior (eq. 4.4.5),
  :math:`q(x_{t'}\\mid x_t, x_0) = \\mathcal N(\\tilde\\mu, \\tilde\\beta I)`.

Timesteps are 0-based as in diffusers: ``t = 0`` is the first noising step and ``t = T-1``
the last. The values equal diffusers' ``DDPMScheduler`` (float32, same formulas), which the
tests check to 1e-6. The scheduler knows nothing about the model.
"""

from __future__ import annotations

import math

import torch

from aigc_course._checks import check_choice, check_int, check_tensor

SCHEDULES = ("linear", "cosine")
PREDICTIONS = ("epsilon", "v")  # what a denoising network outputs: the noise, or the velocity


def beta_schedule(name: str, timesteps: int) -> torch.Tensor:
    """The per-step variances ``(T,)`` (float32) of schedule ``name``, each in ``(0, 1)``.

    * ``"linear"``: DDPM's :math:`\\beta` from 1e-4 to 0.02 (diffusers' ``linear``), scaled by
      ``1000 / T`` so that other ``T`` keep the same total noise. The last beta is
      ``20 / T``, so this schedule needs ``T >= 21`` (or ``T = 1``); fewer steps raise
      ``ValueError`` instead of giving NaN samples.
    * ``"cosine"``: improved DDPM's :math:`\\bar\\alpha(t)=\\cos^2(\\frac{t/T+s}{1+s}\\frac\\pi2)`,
      ``s = 0.008``, with :math:`\\beta \\le 0.999` (diffusers' ``squaredcos_cap_v2``); any ``T >= 1``.
    """
    check_choice(name, "name", SCHEDULES)
    timesteps = check_int(timesteps, "timesteps", low=1)
    if name == "linear":
        scale = 1000 / timesteps
        betas = torch.linspace(1e-4 * scale, 0.02 * scale, timesteps, dtype=torch.float32)
    else:

        def alpha_bar(u: float) -> float:
            return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

        betas = torch.tensor(
            [min(1 - alpha_bar((i + 1) / timesteps) / alpha_bar(i / timesteps), 0.999) for i in range(timesteps)],
            dtype=torch.float32,
        )
    _check_betas(betas, name, timesteps)
    return betas


def _check_betas(betas: torch.Tensor, name: str, timesteps: int) -> None:
    """Every beta in (0, 1), so every alpha and alpha-bar is in (0, 1): no NaN from a square root."""
    low, high = float(betas.min()), float(betas.max())
    if not (0.0 < low and high < 1.0):
        hint = " (the linear schedule needs timesteps >= 21; or use 'cosine')" if name == "linear" else ""
        raise ValueError(
            f"the {name!r} schedule with timesteps={timesteps} in {betas.dtype} has betas from {low:.4g} to "
            f"{high:.4g}, outside (0, 1): the forward process would take the square root of a negative number{hint}"
        )


def _shape_of(value) -> object:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__


def _check_range(t: torch.Tensor, timesteps: int, name: str = "t") -> None:
    """``ValueError`` naming ``name`` unless every entry of ``t`` is in ``[0, timesteps)``."""
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= timesteps):
        raise ValueError(f"{name} must lie in [0, {timesteps - 1}] for this {timesteps}-step schedule, "
                         f"got values from {int(t.min())} to {int(t.max())}")


class NoiseSchedule:
    """Every quantity the forward process and the samplers need, for one beta schedule.

    ``NoiseSchedule("linear", 1000)`` holds ``betas``, ``alphas`` and ``alphas_cumprod``
    (all ``(T,)``, on the CPU; methods move them to the data's device). The default float32
    reproduces diffusers bit for bit; ``dtype=torch.float64`` avoids the cancellation in
    :math:`1-\bar\alpha_t/\bar\alpha_{t-1}` when checking the math to many digits.
    Raises ``ValueError`` for a schedule whose betas leave ``(0, 1)`` or whose
    :math:`\bar\alpha_t` underflows to 0 in ``dtype``.
    """

    def __init__(self, name: str = "linear", timesteps: int = 1000, dtype: torch.dtype = torch.float32):
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        self.name = name
        self.betas = beta_schedule(name, timesteps).to(dtype)
        _check_betas(self.betas, name, timesteps)  # again: a narrow dtype can round a beta to 0 or 1
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)
        if not float(self.alphas_cumprod[-1]) > 0:
            raise ValueError(f"timesteps={timesteps} is too many for the {name!r} schedule in {dtype}: "
                             "alpha-bar underflows to 0 and x0 could not be recovered")

    @property
    def timesteps(self) -> int:
        """The number of training timesteps ``T``."""
        return len(self.betas)

    def __repr__(self) -> str:
        return f"NoiseSchedule({self.name!r}, timesteps={self.timesteps})"

    # ------------------------------------------------------------------ helpers

    def check_timesteps(self, t, name: str = "t") -> torch.Tensor:
        """Return ``t`` as a long tensor, raising ``ValueError`` unless every entry is in ``[0, T)``."""
        t = torch.as_tensor(t)
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise ValueError(f"{name} must hold integer timesteps, got dtype {t.dtype}")
        t = t.long()
        _check_range(t, self.timesteps, name)
        return t

    def alpha_bar(self, t, like: torch.Tensor | None = None) -> torch.Tensor:
        """:math:`\\bar\\alpha_t` for timesteps ``t``; ``t = -1`` means "before step 0" (1.0)."""
        t = torch.as_tensor(t)
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise ValueError(f"t must hold integer timesteps, got dtype {t.dtype}")
        t = t.long()
        if t.numel() and (int(t.min()) < -1 or int(t.max()) >= self.timesteps):
            raise ValueError(f"t must lie in [-1, {self.timesteps - 1}], got {t.tolist()}")
        padded = torch.cat([torch.ones(1, dtype=self.alphas_cumprod.dtype), self.alphas_cumprod])
        out = padded[t.cpu() + 1]
        if like is not None:
            out = out.to(like.device, like.dtype)
        return out

    def signal_to_noise(self, t=None) -> torch.Tensor:
        """SNR :math:`\\bar\\alpha_t / (1-\\bar\\alpha_t)`, for all ``t`` when ``t`` is None."""
        ab = self.alphas_cumprod if t is None else self.alphas_cumprod[self.check_timesteps(t)]
        return ab / (1 - ab)

    @staticmethod
    def _expand(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``(B,)`` or ``()`` -> broadcastable against ``x (B, ...)``."""
        values = values.to(x.device, x.dtype)
        if values.ndim == 0:
            return values
        return values.reshape(-1, *([1] * (x.ndim - 1)))

    # ------------------------------------------------------------------ forward process

    def q_sample(self, x0: torch.Tensor, t, noise: torch.Tensor) -> torch.Tensor:
        """Draw :math:`x_t = \\sqrt{\\bar\\alpha_t}x_0 + \\sqrt{1-\\bar\\alpha_t}\\,\\varepsilon` (eq. 4.4.2).

        ``x0`` and ``noise`` are ``(B, ...)``; ``t`` is an int or ``(B,)`` long tensor.
        Equals diffusers' ``DDPMScheduler.add_noise``.
        """
        check_tensor(x0, "x0", floating=True)
        if not isinstance(noise, torch.Tensor) or noise.shape != x0.shape:
            raise ValueError(f"noise must have the shape of x0 {tuple(x0.shape)}, got {_shape_of(noise)}")
        t = self.check_timesteps(t)
        if t.ndim == 1 and len(t) != len(x0):
            raise ValueError(f"t must be a scalar or have one entry per item ({len(x0)}), got {len(t)}")
        ab = self._expand(self.alphas_cumprod[t.cpu()], x0)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def q_step(self, x_prev: torch.Tensor, t: int, noise: torch.Tensor) -> torch.Tensor:
        """One forward step :math:`x_t = \\sqrt{1-\\beta_t}x_{t-1} + \\sqrt{\\beta_t}\\varepsilon` (eq. 4.4.1)."""
        t = int(self.check_timesteps(t))
        check_tensor(x_prev, "x_prev", floating=True)
        if not isinstance(noise, torch.Tensor) or noise.shape != x_prev.shape:
            raise ValueError(f"noise must be a tensor of the shape of x_prev {tuple(x_prev.shape)}, "
                             f"got {_shape_of(noise)}")
        beta = self.betas[t].to(x_prev.device, x_prev.dtype)
        return (1 - beta).sqrt() * x_prev + beta.sqrt() * noise

    # ------------------------------------------------------------------ posterior

    def posterior(self, x0: torch.Tensor, xt: torch.Tensor, t: int, prev_t: int | None = None):
        """Mean ``(B, ...)`` and variance (scalar tensor) of :math:`q(x_{t'}\\mid x_t, x_0)` (eq. 4.4.5).

        ``prev_t`` defaults to ``t - 1``; a larger jump (``prev_t < t - 1``, used by strided
        sampling) treats :math:`\\bar\\alpha_t/\\bar\\alpha_{t'}` as one step, as diffusers does.
        ``prev_t = -1`` means the clean data (:math:`\\bar\\alpha = 1`).
        """
        t = int(self.check_timesteps(t))
        check_tensor(x0, "x0", floating=True)
        check_tensor(xt, "xt", floating=True)
        if x0.shape != xt.shape:
            raise ValueError(f"xt must have the shape of x0 {tuple(x0.shape)}, got {tuple(xt.shape)}")
        prev_t = t - 1 if prev_t is None else check_int(prev_t, "prev_t")
        if not -1 <= prev_t < t:
            raise ValueError(f"prev_t must be in [-1, t) = [-1, {t}), got {prev_t}")
        ab_t = self.alphas_cumprod[t]
        ab_prev = self.alpha_bar(prev_t)
        alpha_step = ab_t / ab_prev
        beta_step = 1 - alpha_step
        coef_x0 = ab_prev.sqrt() * beta_step / (1 - ab_t)
        coef_xt = alpha_step.sqrt() * (1 - ab_prev) / (1 - ab_t)
        mean = coef_x0.to(x0.device, x0.dtype) * x0 + coef_xt.to(xt.device, xt.dtype) * xt
        variance = ((1 - ab_prev) / (1 - ab_t) * beta_step).clamp(min=1e-20)
        return mean, variance

    def velocity(self, x0: torch.Tensor, t, noise: torch.Tensor) -> torch.Tensor:
        """The velocity :math:`v = \\sqrt{\\bar\\alpha_t}\\,\\varepsilon - \\sqrt{1-\\bar\\alpha_t}\\,x_0` (Salimans & Ho 2022).

        Shapes as :meth:`q_sample`; equals diffusers' ``DDPMScheduler.get_velocity``.
        """
        check_tensor(x0, "x0", floating=True)
        if not isinstance(noise, torch.Tensor) or noise.shape != x0.shape:
            raise ValueError(f"noise must have the shape of x0 {tuple(x0.shape)}, got {_shape_of(noise)}")
        ab = self._expand(self.alphas_cumprod[self.check_timesteps(t).cpu()], x0)
        return ab.sqrt() * noise - (1 - ab).sqrt() * x0

    def predict_x0(self, xt: torch.Tensor, t, eps: torch.Tensor) -> torch.Tensor:
        """Invert eq. 4.4.2: :math:`\\hat x_0 = (x_t - \\sqrt{1-\\bar\\alpha_t}\\hat\\varepsilon)/\\sqrt{\\bar\\alpha_t}`."""
        check_tensor(xt, "xt", floating=True)
        if not isinstance(eps, torch.Tensor) or eps.shape != xt.shape:
            raise ValueError(f"eps must be a tensor of the shape of xt {tuple(xt.shape)}, got {_shape_of(eps)}")
        ab = self._expand(self.alphas_cumprod[self.check_timesteps(t).cpu()], xt)
        return (xt - (1 - ab).sqrt() * eps) / ab.sqrt()


def noise_from_velocity(alphas_cumprod: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The noise estimate :math:`\\sqrt{1-\\bar\\alpha_t}\\,x_t + \\sqrt{\\bar\\alpha_t}\\,\\hat v` of a v-predicting model.

    ``alphas_cumprod (T,)``, ``xt`` and ``v`` ``(B, ...)``, ``t (B,)`` long in ``[0, T)``; exact
    for the true ``v`` (:meth:`NoiseSchedule.velocity`). A model that outputs ``v`` calls this in
    its ``forward``, so samplers and schedulers that step a noise estimate step it unchanged.
    """
    _check_range(t, len(alphas_cumprod))
    ab = alphas_cumprod.to(xt.device)[t.to(xt.device)].to(xt.dtype).reshape(-1, *([1] * (xt.ndim - 1)))
    return (1 - ab).sqrt() * xt + ab.sqrt() * v
