"""The text-to-image pipeline: prompt -> tokens -> denoised latent -> picture (Chapter 5).

:class:`TextToImagePipeline` (checkpoint ``text-to-image``) holds the parts side by side, as
diffusers' ``StableDiffusionPipeline`` does:

* ``tokenizer`` -- :class:`~aigc_course.diffusion.text_conditioning.PromptTokenizer`;
* ``unet`` -- :class:`~aigc_course.diffusion.text_unet.TextConditionedUNet` (with its text encoder);
* ``schedule`` -- the :class:`~aigc_course.diffusion.schedule.NoiseSchedule`; the samplers of
  :mod:`aigc_course.diffusion.samplers` step it (a model predicts, a scheduler steps);
* ``autoencoder`` -- :class:`~aigc_course.diffusion.autoencoder.SceneAutoencoder` for latent
  diffusion, or ``None`` when the model works on pixels (scaled to ``[-1, 1]``).

``pipe(prompt, num_inference_steps=50, guidance_scale=None, eta=0.0, seed=None)`` returns
images ``(N, 3, 32, 32)`` in ``[0, 1]``. ``scheduler=`` also takes a diffusers scheduler
(``DDIMScheduler``), which then steps instead of the course's DDIM, with the same noise.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch

from aigc_course.diffusion.autoencoder import SceneAutoencoder
from aigc_course.diffusion.pipeline import _check_sampling_args, _generator
from aigc_course.diffusion.samplers import predict_noise, sample
from aigc_course.diffusion.schedule import NoiseSchedule
from aigc_course.diffusion.text_conditioning import PromptTokenizer
from aigc_course.diffusion.text_unet import TextConditionedUNet


class TextToImagePipeline:
    """Text-conditioned diffusion with classifier-free guidance, in a latent or on pixels."""

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
        """The shape the denoiser works on: ``(4, 8, 8)`` latents or ``(3, 32, 32)`` pixels."""
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
        if isinstance(prompt, str):
            prompt = [prompt]
        elif not isinstance(prompt, Sequence) or isinstance(prompt, bytes):
            raise ValueError(f"prompt must be a str or a list of str, got {type(prompt).__name__}")
        if len(prompt) == 0:
            raise ValueError("prompt must hold at least one string, got an empty list")
        for i, p in enumerate(prompt):
            name = "prompt" if len(prompt) == 1 else f"prompt[{i}]"
            if not isinstance(p, str):
                raise ValueError(f"{name} must be a str, got {type(p).__name__}")
            if not p.strip():
                raise ValueError(f"{name} is empty; describe a scene, e.g. 'a small red circle at the top left'")
        return list(prompt)

    def encode_prompt(self, prompt) -> torch.Tensor:
        """Checked prompt(s) -> token ids ``(N, L)`` on the pipeline's device."""
        prompts = self.prompts(prompt)
        names = ["prompt"] if len(prompts) == 1 else [f"prompt[{i}]" for i in range(len(prompts))]
        ids, _ = self.tokenizer.pad([self.tokenizer.tokens(p, n) for p, n in zip(prompts, names, strict=True)])
        return ids.to(self.device)

    def null_ids(self) -> torch.Tensor:
        """The empty prompt's ids ``(L,)``: the null condition of classifier-free guidance."""
        ids, _ = self.tokenizer([""])
        return ids[0].to(self.device)

    # ------------------------------------------------------------------ sampling

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | Sequence[str],
        num_inference_steps: int = 50,
        guidance_scale: float | None = None,
        eta: float = 0.0,
        seed: int | None = None,
        *,
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
        generator = _generator(seed)
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
        layers = [m for _, m in self.unet.cross_attention_layers()]
        side = self.config.get("image_size", 32)
        total = torch.zeros(len(tokens), side, side)
        count = 0

        def hook(module, args, output):
            nonlocal total, count
            w = module.attention[:1, :, :, : len(tokens)].mean(1)[0]  # (HW, T), the conditional row
            res = int(w.shape[0] ** 0.5)
            grid = w.T.reshape(len(tokens), 1, res, res).float().cpu()
            total += torch.nn.functional.interpolate(grid, size=(side, side), mode="bilinear", align_corners=False)[:, 0]
            count += 1

        handles = []
        for m in layers:
            m.store_attention = True
            handles.append(m.register_forward_hook(hook))
        try:
            image = self(prompts, num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, seed=seed)
        finally:
            for m, h in zip(layers, handles, strict=True):
                m.store_attention = False
                m.attention = None
                h.remove()
        return image[0].cpu(), tokens, total / max(count, 1)

    # ------------------------------------------------------------------ checkpoint

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Every tensor to ship: ``unet.*`` and, for latent diffusion, ``autoencoder.*``."""
        tensors = {f"unet.{k}": v for k, v in self.unet.state_dict().items()}
        if self.autoencoder is not None:
            tensors.update({f"autoencoder.{k}": v for k, v in self.autoencoder.state_dict().items()})
        return tensors

    @classmethod
    def from_checkpoint(cls, tensors, config, device):
        from aigc_course.pretrained import load_module_state

        def part(prefix: str) -> dict[str, torch.Tensor]:
            return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}

        unet = TextConditionedUNet(**config["unet"])
        load_module_state(unet, part("unet."))
        autoencoder = None
        if config.get("autoencoder") is not None:
            autoencoder = SceneAutoencoder(**config["autoencoder"])
            load_module_state(autoencoder, part("autoencoder."))
            autoencoder = autoencoder.to(device).eval()
        tokenizer = PromptTokenizer.from_dict(config["tokenizer"])
        schedule = NoiseSchedule(config["schedule"], config["timesteps"])
        return cls(unet.to(device).eval(), tokenizer, schedule, autoencoder, config)
