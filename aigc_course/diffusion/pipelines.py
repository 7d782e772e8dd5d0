"""Ready-to-use samplers around the shipped checkpoints.

* :class:`DigitsDDPMPipeline` (checkpoint ``digits-ddpm``): ``pipe(labels, num_inference_steps=...,
  sampler=..., eta=..., guidance_scale=..., seed=...)`` -> digits ``(N, 1, 8, 8)`` in ``[0, 1]``;
  ``pipe.sample(n, ...)`` draws ``n`` unconditional digits.
* :class:`Diffusion2DPipeline` (checkpoint ``grid-ddpm``): ``pipe.sample(n, ...)`` -> ``(n, 2)``.
* :class:`TextToImagePipeline` (checkpoint ``text-to-image``, Chapter 5): ``pipe(prompt,
  num_inference_steps=50, guidance_scale=..., eta=0.0, seed=None)`` -> ``(N, 3, 32, 32)`` in
  ``[0, 1]``: prompt -> tokens -> denoised latent -> picture, as diffusers'
  ``StableDiffusionPipeline``; ``scheduler=`` also takes diffusers' ``DDIMScheduler``.
  :class:`PixelTextToImagePipeline` (``text-to-image-pixel``) is the same on pixels.

Each holds a model and a :class:`~aigc_course.diffusion.schedule.NoiseSchedule` side by side;
:func:`aigc_course.pretrained.load` builds the model from ``config["model"]`` and the schedule
from ``config["schedule"]`` and ``config["timesteps"]``.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Sequence

import torch

from aigc_course._checks import check_bool, check_choice, check_int, check_number
from aigc_course.attention import record_attention
from aigc_course.diffusion.autoencoder import SceneAutoencoder
from aigc_course.diffusion.models import DigitUNet, MLPDenoiser
from aigc_course.diffusion.samplers import SAMPLERS, predict_noise, sample
from aigc_course.diffusion.schedule import NoiseSchedule
from aigc_course.diffusion.text_conditioning import PromptTokenizer, check_prompts
from aigc_course.diffusion.text_unet import TextConditionedUNet
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


class TextToImagePipeline:
    """Text-conditioned latent diffusion with classifier-free guidance (checkpoint ``text-to-image``).

    ``tokenizer`` -> ``unet`` (with its text encoder) stepped by the samplers over ``schedule`` ->
    ``autoencoder.decode``. With ``autoencoder=None`` the U-Net works on pixels scaled to
    ``[-1, 1]`` (:class:`PixelTextToImagePipeline`, checkpoint ``text-to-image-pixel``).
    """

    # how aigc_course.pretrained builds it from a checkpoint
    checkpoint_parts = {"unet": TextConditionedUNet, "autoencoder": SceneAutoencoder}
    checkpoint_settings = {"schedule": str, "timesteps": int, "tokenizer": dict, "guidance_scale": float}

    def __init__(self, unet: TextConditionedUNet, tokenizer: PromptTokenizer, schedule: NoiseSchedule,
                 autoencoder: SceneAutoencoder | None = None, config: dict | None = None):
        self.unet = unet.eval()
        self.tokenizer = tokenizer
        self.schedule = schedule
        self.autoencoder = autoencoder.eval() if autoencoder is not None else None
        self.config = dict(config or {})

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def space(self) -> str:
        """``"latent"`` or ``"pixel"``: where the diffusion runs."""
        return "pixel" if self.autoencoder is None else "latent"

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """The shape the denoiser works on: ``(latent_channels, 8, 8)`` latents or ``(3, 32, 32)`` pixels."""
        c, s = self.unet.config["in_channels"], self.unet.config["image_size"]
        return (c, s, s)

    @property
    def default_guidance_scale(self) -> float:
        return float(self.config.get("guidance_scale", 1.0))

    # ------------------------------------------------------------------ spaces

    def to_model_space(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 3, 32, 32)`` in ``[0, 1]`` -> what the denoiser works on."""
        if self.autoencoder is None:
            return images * 2 - 1
        return self.autoencoder.encode(images)

    def to_image_space(self, x: torch.Tensor) -> torch.Tensor:
        """The denoiser's output space -> images in ``[0, 1]`` (decoded, or rescaled and clipped)."""
        if self.autoencoder is None:
            return ((x + 1) / 2).clamp(0, 1)
        return self.autoencoder.decode(x)

    # ------------------------------------------------------------------ prompts

    def prompts(self, prompt) -> list[str]:
        """``prompt`` as a checked list of non-empty strings (``ValueError`` naming it otherwise)."""
        return check_prompts(prompt, example="a scene, e.g. 'a small red circle at the top left'")

    def encode_prompt(self, prompt) -> torch.Tensor:
        """Checked prompt(s) -> token ids ``(N, L)`` on the pipeline's device."""
        return self.tokenizer.encode_prompts(self.prompts(prompt)).to(self.device)

    def null_ids(self) -> torch.Tensor:
        """The empty prompt's ids ``(L,)``: the null condition of classifier-free guidance."""
        return self.tokenizer.null_ids().to(self.device)

    # ------------------------------------------------------------------ sampling

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | Sequence[str],
        *,
        num_inference_steps: int = 50,
        guidance_scale: float | None = None,
        eta: float = 0.0,
        seed: int | None = None,
        sampler: str = "ddim",
        scheduler=None,
        progress: bool = False,
        return_latents: bool = False,
    ):
        """Images ``(N, 3, 32, 32)`` in ``[0, 1]``, one per prompt.

        ``guidance_scale`` ``s`` (None: the checkpoint's ``config["guidance_scale"]``):
        :math:`\\varepsilon_\\varnothing + s(\\varepsilon_y - \\varepsilon_\\varnothing)` (eq. 4.4.12) with
        the empty prompt as :math:`\\varnothing`; ``s = 1`` is the plain conditional model.
        ``sampler``: ``"ddim"`` (eq. 4.4.9, ``eta`` adds noise) or ``"ddpm"`` (eq. 4.4.6).
        ``scheduler``: a diffusers scheduler (e.g. ``DDIMScheduler``) to step instead; it must
        have this model's noise schedule and predict epsilon without clipping.
        With ``return_latents`` also returns what the denoiser produced ``(N, *sample_shape)``.
        """
        ids = self.encode_prompt(prompt)
        guidance_scale = self.default_guidance_scale if guidance_scale is None else guidance_scale
        if isinstance(guidance_scale, bool) or not isinstance(guidance_scale, int | float):
            raise ValueError(f"guidance_scale must be a number, got {guidance_scale!r}")
        _check_sampling_args(sampler, num_inference_steps, self.schedule.timesteps, eta, guidance_scale)
        generator = make_generator(seed)
        shape = (len(ids), *self.sample_shape)
        if scheduler is None:
            x = sample(self.unet, self.schedule, shape, labels=ids, null_label=self.null_ids(),
                       num_inference_steps=num_inference_steps, sampler=sampler, eta=eta,
                       guidance_scale=guidance_scale, generator=generator, progress=progress)
        else:
            x = self._sample_with(scheduler, shape, ids, num_inference_steps, eta, guidance_scale, generator)
        images = self.to_image_space(x)
        return (images, x) if return_latents else images

    def check_scheduler(self, scheduler) -> None:
        """Raise ``ValueError`` naming ``scheduler`` unless it steps this model's noise schedule."""
        for attr in ("set_timesteps", "step", "config", "alphas_cumprod"):
            if not hasattr(scheduler, attr):
                raise ValueError(f"scheduler must be a diffusers scheduler (with .{attr}), got {type(scheduler).__name__}")
        cfg = scheduler.config
        expected = self.schedule.alphas_cumprod
        theirs = torch.as_tensor(scheduler.alphas_cumprod, dtype=torch.float32)
        if theirs.shape != expected.shape or not torch.allclose(theirs, expected, atol=1e-6):
            raise ValueError(
                f"scheduler must use this model's noise schedule ({self.schedule.timesteps} steps, "
                f"{self.schedule.name!r}); got num_train_timesteps={cfg.get('num_train_timesteps')}, "
                f"beta_schedule={cfg.get('beta_schedule')!r}"
            )
        for key, want in (("prediction_type", "epsilon"), ("clip_sample", False), ("thresholding", False)):
            if key in cfg and cfg[key] != want:
                raise ValueError(f"scheduler.config.{key} must be {want!r} for this model, got {cfg[key]!r}")

    def _sample_with(self, scheduler, shape, ids, steps, eta, guidance_scale, generator) -> torch.Tensor:
        """The sampling loop with a diffusers scheduler: the same noise as the course's loop."""
        self.check_scheduler(scheduler)
        params = inspect.signature(scheduler.step).parameters
        if eta > 0 and "eta" not in params:
            raise ValueError(f"eta > 0 needs a DDIM-type scheduler; {type(scheduler).__name__}.step takes no eta")
        device = self.device
        scheduler.set_timesteps(steps)
        x = torch.randn(shape, generator=generator).to(device)
        null = self.null_ids()
        for t in scheduler.timesteps:
            eps = predict_noise(self.unet, x, int(t), ids, null, guidance_scale)
            kwargs = {}
            if "eta" in params:
                kwargs["eta"] = eta
                if eta > 0:
                    kwargs["variance_noise"] = torch.randn(shape, generator=generator).to(device)
            elif "generator" in params:
                kwargs["generator"] = generator
            x = scheduler.step(eps, t, x, **kwargs).prev_sample
        return x

    @torch.no_grad()
    def cross_attention_maps(self, prompt: str, num_inference_steps: int = 50, guidance_scale: float | None = None,
                             seed: int | None = 0) -> tuple[torch.Tensor, list[str], torch.Tensor]:
        """Where each token of ``prompt`` is read: ``(image, tokens, maps)``.

        ``maps (T, S, S)`` is the cross-attention weight each pixel gives token ``t`` (the
        conditional pass only), averaged over heads, layers (upsampled to the image size) and
        sampling steps; ``tokens`` are the ``T`` tokens as text, start token first.
        """
        prompts = self.prompts(prompt)
        if len(prompts) != 1:
            raise ValueError(f"prompt must be one string for attention maps, got {len(prompts)}")
        tokens = self.tokenizer.token_strings(prompts[0])
        side = self.config.get("image_size", 32)
        with contextlib.ExitStack() as stack:
            recorded = [stack.enter_context(record_attention(m)) for _, m in self.unet.cross_attention_layers()]
            image = self(prompts, num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, seed=seed)
        total, count = torch.zeros(len(tokens), side, side), 0
        for weights in (w for layer in recorded for w in layer):  # one (B', heads, HW, L) per layer and step
            w = weights[0, :, :, : len(tokens)].mean(0).float().cpu()  # the prompt's row (guided batches put it first)
            res = int(w.shape[0] ** 0.5)
            grid = w.T.reshape(len(tokens), 1, res, res)
            total += torch.nn.functional.interpolate(grid, size=(side, side), mode="bilinear", align_corners=False)[:, 0]
            count += 1
        return image[0].cpu(), tokens, total / max(count, 1)

    # ------------------------------------------------------------------ checkpoint

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Every tensor to ship: ``unet.*`` and, for latent diffusion, ``autoencoder.*``."""
        tensors = {f"unet.{k}": v for k, v in self.unet.state_dict().items()}
        if self.autoencoder is not None:
            tensors.update({f"autoencoder.{k}": v for k, v in self.autoencoder.state_dict().items()})
        return tensors

    @classmethod
    def from_parts(cls, config: dict, unet: TextConditionedUNet, autoencoder: SceneAutoencoder | None = None):
        tokenizer = PromptTokenizer.from_dict(config["tokenizer"])
        return cls(unet, tokenizer, NoiseSchedule(config["schedule"], config["timesteps"]), autoencoder, config)


class PixelTextToImagePipeline(TextToImagePipeline):
    """The same pipeline with diffusion on the 32x32x3 pixels, no autoencoder (``text-to-image-pixel``)."""

    checkpoint_parts = {"unet": TextConditionedUNet}

    def __init__(self, unet: TextConditionedUNet, tokenizer: PromptTokenizer, schedule: NoiseSchedule,
                 autoencoder: None = None, config: dict | None = None):
        if autoencoder is not None:
            raise ValueError("autoencoder must be None for pixel-space diffusion")
        super().__init__(unet, tokenizer, schedule, None, config)
