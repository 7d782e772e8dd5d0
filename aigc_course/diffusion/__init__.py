"""Diffusion models: DDPM, DDIM and classifier-free guidance (book chapters 3.3 and 4.4).

* :mod:`~aigc_course.diffusion.schedule` -- beta schedules, the forward process, the posterior;
* :mod:`~aigc_course.diffusion.samplers` -- DDPM and DDIM steps, guidance, the sampling loop;
* :mod:`~aigc_course.diffusion.losses` -- the simple noise-prediction loss, the velocity loss (and a ``fit`` loss on batches);
* :mod:`~aigc_course.diffusion.models` -- the 2-D MLP and the 8x8 class-conditional U-Net;
* :mod:`~aigc_course.diffusion.pipelines` -- the ``digits-ddpm`` and ``grid-ddpm`` pipelines.
* :mod:`~aigc_course.diffusion.video_unet`, :mod:`~aigc_course.diffusion.video_pipelines` -- the
  text-to-video U-Net with factorised space-time attention and its ``text-to-video`` pipeline.
"""

from aigc_course.diffusion.losses import diffusion_loss_fn, noise_prediction_loss, velocity_loss
from aigc_course.diffusion.models import DigitUNet, MLPDenoiser, timestep_embedding
from aigc_course.diffusion.pipelines import Diffusion2DPipeline, DigitsDDPMPipeline
from aigc_course.diffusion.samplers import (
    SAMPLERS,
    classifier_free_guidance,
    ddim_step,
    ddpm_step,
    inference_timesteps,
    predict_noise,
    sample,
)
from aigc_course.diffusion.schedule import SCHEDULES, NoiseSchedule, beta_schedule

__all__ = [
    "SAMPLERS",
    "SCHEDULES",
    "DigitUNet",
    "Diffusion2DPipeline",
    "DigitsDDPMPipeline",
    "MLPDenoiser",
    "NoiseSchedule",
    "beta_schedule",
    "classifier_free_guidance",
    "ddim_step",
    "ddpm_step",
    "diffusion_loss_fn",
    "inference_timesteps",
    "noise_prediction_loss",
    "predict_noise",
    "sample",
    "timestep_embedding",
    "velocity_loss",
]
