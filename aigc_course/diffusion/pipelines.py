"""Ready-to-use samplers around the shipped checkpoints.

* :class:`DigitsDDPMPipeline` (checkpoint ``digits-ddpm``): ``pipe(labels, num_inference_steps=...,
  sampler=..., eta=..., guidance_scale=..., seed=...)`` -> digits ``(N, 1, 8, 8)`` in ``[0, 1]``;
  ``pipe.sample(n, ...)`` draws ``n`` unconditional digits.
* :class:`Diffusion2DPipeline` (checkpoint ``grid-ddpm``): ``pipe.sample(n, ...)`` -> ``(n, 2)``.

Each holds a model and a :class:`~aigc_course.diffusion.schedule.NoiseSchedule` side by side;
:func:`aigc_course.pretrained.load` builds the model from ``config["model"]`` and the schedule
from ``config["schedule"]`` and ``config["timesteps"]``.
"""

from __future__ import annotations

import torch

from aigc_course._checks import check_bool, check_choice, check_int, check_number
from aigc_course.diffusion.models import DigitUNet, MLPDenoiser
from aigc_course.diffusion.samplers import SAMPLERS, sample
from aigc_course.diffusion.schedule import NoiseSchedule
from aigc_course.pretrained import keyword_options
from aigc_course.runtime import make_generator


def _check_sampling_args(sampler: str, num_inference_steps: int, timesteps: int, eta: float, guidance_scale: float):
    """Every option once per call, before any work: finite numbers in range, bool is not a number."""
    check_choice(sampler, "sampler", SAMPLERS)
    check_int(num_inference_steps, "num_inference_steps", low=1, high=timesteps)  # at most the training steps
    check_number(eta, "eta", low=0.0)
    check_number(guidance_scale, "guidance_scale", low=0.0)


def _is_integer(t: torch.Tensor) -> bool:
    return not (t.is_floating_point() or t.is_complex() or t.dtype == torch.bool)


class DigitsDDPMPipeline:
    """Class-conditional DDPM on 8x8 digits; the model works on pixels scaled to ``[-1, 1]``."""

    # how aigc_course.pretrained builds it from a checkpoint
    checkpoint_parts = {"model": DigitUNet}
    checkpoint_settings = {"schedule": str, "timesteps": int}

    def __init__(self, model: DigitUNet, schedule: NoiseSchedule, config: dict | None = None):
        self.model = model.eval()
        self.schedule = schedule
        self.config = dict(config or {})

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def num_classes(self) -> int:
        return self.model.num_classes

    @staticmethod
    def to_model_space(images: torch.Tensor) -> torch.Tensor:
        """``[0, 1]`` ink -> ``[-1, 1]``, the range the schedule assumes."""
        return images * 2 - 1

    @staticmethod
    def to_image_space(x: torch.Tensor) -> torch.Tensor:
        """``[-1, 1]`` -> ``[0, 1]``, clipped."""
        return ((x + 1) / 2).clamp(0, 1)

    def _labels(self, labels, num_images: int | None) -> tuple[torch.Tensor | None, int]:
        if labels is None:
            return None, 16 if num_images is None else check_int(num_images, "num_images", low=1)
        if num_images is not None:
            raise ValueError(f"num_images must be None when labels are given (one image per label), got {num_images!r}")
        try:
            labels = torch.as_tensor(labels)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"labels must be an int or a 1-D sequence of ints, got {labels!r:.60}") from err
        if labels.ndim == 0:
            labels = labels.reshape(1)
        if labels.ndim != 1 or not _is_integer(labels) or len(labels) == 0:
            raise ValueError(f"labels must be a non-empty 1-D sequence of ints, got {labels.dtype} {tuple(labels.shape)}")
        labels = self.model.check_labels(labels, len(labels), allow_null=False)
        return labels, len(labels)

    @keyword_options("num_inference_steps", "sampler", "eta", "guidance_scale", "seed")
    @torch.no_grad()
    def __call__(
        self,
        labels=None,
        *,
        num_inference_steps: int = 1000,
        sampler: str = "ddpm",
        eta: float = 0.0,
        guidance_scale: float = 1.0,
        seed: int | None = None,
        num_images: int | None = None,
        clip_sample: bool = False,
        return_trajectory: bool = False,
        progress: bool = False,
    ):
        """Generate digits ``(N, 1, 8, 8)`` in ``[0, 1]``.

        ``labels``: ints in ``0..9`` (one image each), or None for ``num_images`` (default 16)
        unconditional images (null label; guidance then has nothing to amplify), which is what
        :meth:`sample` does. An int ``seed`` repeats the images exactly; ``None`` draws from
        torch's global RNG (:func:`~aigc_course.runtime.make_generator`).
        ``guidance_scale`` ``s``: :math:`\\varepsilon_u + s(\\varepsilon_c-\\varepsilon_u)`, 1 = plain conditional.
        ``clip_sample`` clamps each step's :math:`\\hat x_0` to the data range ``[-1, 1]`` (diffusers'
        default; off here, because for this model it raised DDIM-50's FDD from 43 to 56). With ``return_trajectory`` also returns the intermediate
        images ``(S+1, N, 1, 8, 8)``.
        """
        _check_sampling_args(sampler, num_inference_steps, self.schedule.timesteps, eta, guidance_scale)
        for name, flag in (("clip_sample", clip_sample), ("return_trajectory", return_trajectory),
                           ("progress", progress)):
            check_bool(flag, name)
        labels, n = self._labels(labels, num_images)
        out = sample(
            self.model, self.schedule, (n, 1, 8, 8),
            labels=labels, null_label=self.model.null_label,
            num_inference_steps=num_inference_steps, sampler=sampler, eta=eta,
            guidance_scale=guidance_scale, clip_sample=1.0 if clip_sample else None,
            generator=make_generator(seed), return_trajectory=return_trajectory, progress=progress,
        )
        if return_trajectory:
            x, trajectory = out
            return self.to_image_space(x), self.to_image_space(trajectory)
        return self.to_image_space(out)

    def sample(self, n: int, *, num_inference_steps: int = 1000, sampler: str = "ddpm", eta: float = 0.0,
               seed: int | None = None, clip_sample: bool = False, return_trajectory: bool = False,
               progress: bool = False):
        """``n`` unconditional digits ``(n, 1, 8, 8)`` in ``[0, 1]`` (the null label): ``pipe(None, num_images=n)``."""
        return self(None, num_inference_steps=num_inference_steps, sampler=sampler, eta=eta, seed=seed,
                    num_images=n, clip_sample=clip_sample, return_trajectory=return_trajectory, progress=progress)

    @classmethod
    def from_parts(cls, config: dict, model: DigitUNet) -> DigitsDDPMPipeline:
        return cls(model, NoiseSchedule(config["schedule"], config["timesteps"]), config)


class Diffusion2DPipeline:
    """Unconditional DDPM on 2-D points (an :class:`MLPDenoiser` plus its schedule)."""

    # how aigc_course.pretrained builds it from a checkpoint
    checkpoint_parts = {"model": MLPDenoiser}
    checkpoint_settings = {"schedule": str, "timesteps": int}

    def __init__(self, model: MLPDenoiser, schedule: NoiseSchedule, config: dict | None = None):
        self.model = model.eval()
        self.schedule = schedule
        self.config = dict(config or {})

    @keyword_options("num_inference_steps", "sampler", "eta", "seed", "return_trajectory")
    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        num_inference_steps: int | None = None,
        sampler: str = "ddpm",
        eta: float = 0.0,
        seed: int | None = None,
        return_trajectory: bool = False,
    ):
        """``n`` points ``(n, 2)``; with ``return_trajectory`` also ``(S+1, n, 2)``.

        An int ``seed`` repeats the points exactly; ``None`` draws from torch's global RNG.
        """
        n = check_int(n, "n", low=1)
        check_bool(return_trajectory, "return_trajectory")
        steps = self.schedule.timesteps if num_inference_steps is None else num_inference_steps
        _check_sampling_args(sampler, steps, self.schedule.timesteps, eta, 1.0)
        return sample(
            self.model, self.schedule, (n, self.model.config["dim"]),
            num_inference_steps=steps, sampler=sampler, eta=eta,
            generator=make_generator(seed), return_trajectory=return_trajectory,
        )

    @classmethod
    def from_parts(cls, config: dict, model: MLPDenoiser) -> Diffusion2DPipeline:
        return cls(model, NoiseSchedule(config["schedule"], config["timesteps"]), config)
