"""The shipped text-to-video pipeline (checkpoint ``text-to-video``, Chapter 2.3.4).

:class:`TextToVideoPipeline`: ``pipe(prompt, num_frames=8, num_inference_steps=50,
guidance_scale=..., seed=None)`` -> clips ``(N, F, 3, S, S)`` in ``[0, 1]``. The diffusers
split: the model (:class:`~aigc_course.diffusion.video_unet.TextToVideoUNet`) predicts the
noise of a whole clip, the samplers of :mod:`aigc_course.diffusion.samplers` step it (DDIM or
DDPM over a :class:`~aigc_course.diffusion.schedule.NoiseSchedule`), and classifier-free
guidance mixes the prompt's prediction with the empty prompt's. ``temporal=False`` switches the
model's temporal attention off, so every frame is denoised on its own: the frame-by-frame
baseline of the chapter's comparison.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from aigc_course._checks import check_bool, check_choice, check_int, check_number
from aigc_course.diffusion.samplers import SAMPLERS, sample
from aigc_course.diffusion.schedule import NoiseSchedule
from aigc_course.diffusion.text_conditioning import PromptTokenizer, check_prompts
from aigc_course.diffusion.video_unet import TextToVideoUNet
from aigc_course.runtime import make_generator


class _FramesAlone(nn.Module):
    """The video U-Net with temporal attention off: ``model(x, t, ids)`` as the samplers call it."""

    def __init__(self, unet: TextToVideoUNet):
        super().__init__()
        self.unet = unet

    def forward(self, x, t, labels):
        return self.unet(x, t, labels, temporal=False)


class TextToVideoPipeline:
    """Text-conditioned pixel-space video diffusion with classifier-free guidance (checkpoint ``text-to-video``)."""

    # how aigc_course.pretrained builds it from a checkpoint
    checkpoint_parts = {"unet": TextToVideoUNet}
    checkpoint_settings = {"schedule": str, "timesteps": int, "tokenizer": dict, "guidance_scale": float}

    def __init__(self, unet: TextToVideoUNet, tokenizer: PromptTokenizer, schedule: NoiseSchedule,
                 config: dict | None = None):
        self.unet = unet.eval()
        self.tokenizer = tokenizer
        self.schedule = schedule
        self.config = dict(config or {})

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def image_size(self) -> int:
        return self.unet.config["image_size"]

    @property
    def max_frames(self) -> int:
        """The clip length the model was trained on; shorter clips are allowed, longer are not."""
        return self.unet.config["max_frames"]

    @property
    def default_guidance_scale(self) -> float:
        return float(self.config.get("guidance_scale", 1.0))

    @staticmethod
    def to_model_space(videos: torch.Tensor) -> torch.Tensor:
        """Clips in ``[0, 1]`` -> ``[-1, 1]``, the range the schedule assumes."""
        return videos * 2 - 1

    @staticmethod
    def to_video_space(x: torch.Tensor) -> torch.Tensor:
        """``[-1, 1]`` -> ``[0, 1]``, clipped."""
        return ((x + 1) / 2).clamp(0, 1)

    def prompts(self, prompt) -> list[str]:
        """``prompt`` as a checked list of non-empty strings (``ValueError`` naming it otherwise)."""
        return check_prompts(prompt, example="a clip, e.g. 'a small red circle moving left'")

    def encode_prompt(self, prompt) -> torch.Tensor:
        """Checked prompt(s) -> token ids ``(N, L)`` on the pipeline's device."""
        return self.tokenizer.encode_prompts(self.prompts(prompt)).to(self.device)

    def null_ids(self) -> torch.Tensor:
        """The empty prompt's ids ``(L,)``: the null condition of classifier-free guidance."""
        return self.tokenizer.null_ids().to(self.device)

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | Sequence[str],
        *,
        num_frames: int = 8,
        num_inference_steps: int = 50,
        guidance_scale: float | None = None,
        seed: int | None = None,
        sampler: str = "ddpm",
        eta: float = 0.0,
        temporal: bool = True,
        progress: bool = False,
    ) -> torch.Tensor:
        """Clips ``(N, num_frames, 3, S, S)`` in ``[0, 1]``, one per prompt.

        ``num_frames``: 1 to :attr:`max_frames` (the trained length; the frame embeddings
        go no further). ``guidance_scale`` ``s`` (None: the checkpoint's default):
        :math:`\\varepsilon_\\varnothing + s(\\varepsilon_y - \\varepsilon_\\varnothing)` with the empty
        prompt as :math:`\\varnothing`. ``sampler``: ``"ddpm"`` (the default: ancestral steps, whose
        fresh noise cleans up the background that this small model's deterministic DDIM steps
        leave faintly noisy) or ``"ddim"`` (``eta`` adds noise).
        An int ``seed`` repeats the clips exactly; ``None`` draws from torch's global RNG.
        ``temporal=False`` denoises every frame alone (the frame-by-frame baseline).
        """
        # every option first, so a bad option is named whatever the prompt
        num_frames = check_int(num_frames, "num_frames", low=1, high=self.max_frames)
        guidance_scale = self.default_guidance_scale if guidance_scale is None else guidance_scale
        check_choice(sampler, "sampler", SAMPLERS)
        check_int(num_inference_steps, "num_inference_steps", low=1, high=self.schedule.timesteps)
        check_number(eta, "eta", low=0.0)
        check_number(guidance_scale, "guidance_scale", low=0.0)
        check_bool(temporal, "temporal")
        check_bool(progress, "progress")
        generator = make_generator(seed)
        ids = self.encode_prompt(prompt)
        model = self.unet if temporal else _FramesAlone(self.unet)
        shape = (len(ids), num_frames, 3, self.image_size, self.image_size)
        x = sample(model, self.schedule, shape, labels=ids, null_label=self.null_ids(),
                   num_inference_steps=num_inference_steps, sampler=sampler, eta=eta,
                   guidance_scale=guidance_scale, generator=generator, progress=progress)
        return self.to_video_space(x)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Every tensor to ship, as ``unet.*``."""
        return {f"unet.{k}": v for k, v in self.unet.state_dict().items()}

    @classmethod
    def from_parts(cls, config: dict, unet: TextToVideoUNet) -> TextToVideoPipeline:
        tokenizer = PromptTokenizer.from_dict(config["tokenizer"])
        return cls(unet, tokenizer, NoiseSchedule(config["schedule"], config["timesteps"]), config)
