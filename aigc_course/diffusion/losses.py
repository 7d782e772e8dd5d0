"""The training objective of a noise-prediction diffusion model (book eq. 4.4.8).

:math:`L_\\text{simple} = \\mathbb E_{t, x_0, \\varepsilon}\\lVert \\varepsilon -
\\varepsilon_\\theta(\\sqrt{\\bar\\alpha_t}x_0 + \\sqrt{1-\\bar\\alpha_t}\\varepsilon, t)\\rVert^2`,
with ``t`` uniform over the ``T`` steps. For classifier-free guidance the label is replaced
by the null label with probability ``p_uncond``, so one network learns both the conditional
and the unconditional noise.

``snr_gamma`` weights each example by :math:`\\min(\\mathrm{SNR}_t, \\gamma)/\\mathrm{SNR}_t`
(Min-SNR-:math:`\\gamma`, Hang et al. 2023): the nearly clean timesteps, whose noise is easy to
see and whose gradients pull against the noisy ones, count less, so the noisier timesteps get a
larger share of the training signal (near pure noise, though, the simple loss still scales the
error of the layout by the tiny SNR; see :func:`velocity_loss`).

:func:`velocity_loss` trains a network that outputs the velocity
:math:`v = \\sqrt{\\bar\\alpha_t}\\,\\varepsilon - \\sqrt{1-\\bar\\alpha_t}\\,x_0` (Salimans & Ho 2022):
:math:`\\lVert v - \\hat v\\rVert^2 = \\lVert\\varepsilon - \\hat\\varepsilon\\rVert^2/\\bar\\alpha_t`, so
near pure noise, where :math:`\\bar\\alpha_t \\to 0`, the error of the picture's layout still counts
(in the simple loss it is scaled by the SNR and vanishes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from aigc_course.diffusion.schedule import NoiseSchedule


def noise_prediction_loss(
    model: torch.nn.Module,
    schedule: NoiseSchedule,
    x0: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    p_uncond: float = 0.0,
    null_label: int | None = None,
    generator: torch.Generator | None = None,
    snr_gamma: float | None = None,
) -> torch.Tensor:
    """:math:`L_\\text{simple}` on a batch ``x0 (B, ...)`` with optional ``labels (B,)``; a scalar.

    ``labels`` may also be any per-example condition ``(B, ...)``, e.g. prompt token ids.
    ``snr_gamma`` (None: plain mean) applies the Min-SNR weight of the module docstring.

    The timesteps, noise and label dropout are drawn from ``generator`` on the CPU (so a
    run is repeatable on any device) and moved to ``x0``'s device.
    """
    if not 0.0 <= p_uncond <= 1.0:
        raise ValueError(f"p_uncond must be in [0, 1], got {p_uncond}")
    if snr_gamma is not None and not snr_gamma > 0:
        raise ValueError(f"snr_gamma must be positive or None, got {snr_gamma}")
    b = len(x0)
    t = torch.randint(schedule.timesteps, (b,), generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    if labels is not None and p_uncond > 0:
        if null_label is None:
            raise ValueError("p_uncond > 0 needs the model's null_label")
        drop = torch.rand(b, generator=generator) < p_uncond
        labels = torch.where(drop.to(labels.device), torch.full_like(labels, null_label), labels)
    noise, t = noise.to(x0.device), t.to(x0.device)
    xt = schedule.q_sample(x0, t, noise)
    prediction = model(xt, t, labels)
    if snr_gamma is None:
        return F.mse_loss(prediction, noise)
    snr = schedule.signal_to_noise(t.cpu()).to(x0.device, x0.dtype)
    weight = (snr_gamma / snr).clamp(max=1.0)  # min(SNR, gamma) / SNR, (B,); no 0/0 at SNR = 0
    per_example = (prediction - noise).pow(2).reshape(b, -1).mean(dim=1)
    return (weight * per_example).mean()


def velocity_loss(
    model: torch.nn.Module,
    schedule: NoiseSchedule,
    x0: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    generator: torch.Generator | None = None,
    **model_kwargs,
) -> torch.Tensor:
    """:math:`\\mathbb E\\lVert v - \\hat v\\rVert^2` on a batch ``x0 (B, ...)``; a scalar.

    ``model`` must output ``v`` (``model.prediction == "v"``); its ``network_output(x_t, t,
    labels, **model_kwargs)`` is :math:`\\hat v` (the video U-Net takes ``temporal=``). Timesteps
    and noise are drawn from ``generator`` as in :func:`noise_prediction_loss`, so the two losses
    see the same ``(t, noise)`` for one seed.
    """
    if getattr(model, "prediction", None) != "v":
        raise ValueError(f"model must predict v (model.prediction == 'v'), got {getattr(model, 'prediction', None)!r}")
    b = len(x0)
    t = torch.randint(schedule.timesteps, (b,), generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    noise, t = noise.to(x0.device), t.to(x0.device)
    return F.mse_loss(model.network_output(schedule.q_sample(x0, t, noise), t, labels, **model_kwargs),
                      schedule.velocity(x0, t, noise))


def diffusion_loss_fn(x_train: torch.Tensor, schedule: NoiseSchedule, batch_size: int = 128,
                      labels: torch.Tensor | None = None, *, p_uncond: float = 0.0,
                      generator: torch.Generator | None = None):
    """A ``loss_fn(model, step)`` for :func:`aigc_course.training.fit`: :func:`noise_prediction_loss`
    on a random minibatch of ``x_train (N, ...)`` (with its ``labels (N,)`` when given).

    The batch indices, then the timesteps, noise and label dropout are drawn from ``generator``;
    the model's ``null_label`` (if it has one) is the label dropped to.
    """
    if labels is not None and len(labels) != len(x_train):
        raise ValueError(f"labels must have one entry per training example ({len(x_train)}), got {len(labels)}")

    def loss_fn(model: torch.nn.Module, step: int) -> torch.Tensor:
        idx = torch.randint(len(x_train), (batch_size,), generator=generator).to(x_train.device)
        y = None if labels is None else labels[idx.to(labels.device)]
        return noise_prediction_loss(model, schedule, x_train[idx], y, p_uncond=p_uncond,
                                     null_label=getattr(model, "null_label", None), generator=generator)

    return loss_fn
