"""Training the text-to-video model (Chapter 2.3.4).

:class:`TextToVideoRecipe` holds every setting as data (the shipped ``text-to-video`` is
``TextToVideoRecipe()``; ``scripts/train_text_to_video.py`` runs it, the chapter runs a few
steps of a smaller one). :func:`train_text_to_video` fits the simple loss (eq. 4.4.8) with the
Min-SNR weight on ``(clip, caption)`` pairs from :func:`aigc_course.data.moving_scenes`, split
``"train"`` only:

* each caption becomes the empty caption with probability ``p_uncond``, so one network also
  learns the unconditional noise that classifier-free guidance needs;
* each clip has its temporal attention switched off with probability ``p_frames_alone``: its
  frames are then denoised as independent images (VDM's joint image-video training), which
  keeps the frame-by-frame baseline of the benchmark the same network;
* AdamW, warm-up + cosine learning rate, and an exponential moving average (EMA) of the
  weights, which is what ships.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import torch

from aigc_course.data import moving_scenes
from aigc_course.diffusion.losses import velocity_loss
from aigc_course.diffusion.schedule import NoiseSchedule
from aigc_course.diffusion.text_conditioning import PromptTokenizer, drop_captions
from aigc_course.diffusion.video_pipelines import TextToVideoPipeline
from aigc_course.diffusion.video_unet import TextToVideoUNet
from aigc_course.training import EMA, History, fit, warmup_cosine_scheduler


@dataclass
class TextToVideoRecipe:
    """Every setting of a text-to-video training run (defaults: the shipped ``text-to-video``)."""

    num_clips: int = 6000  # moving_scenes(num_clips, seed=data_seed, num_frames, split="train")
    num_frames: int = 8
    image_size: int = 16
    data_seed: int = 0
    seed: int = 0
    channels: tuple[int, ...] = (32, 64)
    emb_dim: int = 128
    text_width: int = 64
    text_layers: int = 2
    num_heads: int = 4
    context_length: int = 12
    attention_resolution: int = 8
    temporal_resolution: int = 16
    cross_attention_resolution: int = 8
    schedule: str = "cosine"
    timesteps: int = 1000
    steps: int = 1200
    batch_size: int = 8
    lr: float = 2e-3
    warmup: int = 100
    ema_decay: float = 0.995
    p_uncond: float = 0.15
    p_frames_alone: float = 0.2
    prediction: str = "epsilon"  # what the U-Net outputs: "epsilon" (the simple loss) or "v" (the velocity loss)
    snr_gamma: float | None = 5.0  # Min-SNR weight of the simple loss (prediction="epsilon" only)
    guidance_scale: float = 3.0  # the pipeline's default
    notes: dict = field(default_factory=dict)

    def __post_init__(self):
        self.channels = tuple(self.channels)
        for name in ("num_clips", "num_frames", "steps", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d


def build_video_unet(recipe: TextToVideoRecipe, tokenizer: PromptTokenizer) -> TextToVideoUNet:
    """The denoiser a recipe describes, for clips ``(num_frames, 3, image_size, image_size)``."""
    return TextToVideoUNet(
        vocab_size=tokenizer.vocab_size, pad_id=tokenizer.pad_id, context_length=recipe.context_length,
        in_channels=3, image_size=recipe.image_size, max_frames=recipe.num_frames, channels=recipe.channels,
        emb_dim=recipe.emb_dim, text_width=recipe.text_width, text_layers=recipe.text_layers,
        num_heads=recipe.num_heads, attention_resolution=recipe.attention_resolution,
        temporal_resolution=recipe.temporal_resolution, cross_attention_resolution=recipe.cross_attention_resolution,
        prediction=recipe.prediction, schedule=recipe.schedule, timesteps=recipe.timesteps,
    )


def video_loss(model: TextToVideoUNet, schedule: NoiseSchedule, x0: torch.Tensor, ids: torch.Tensor,
               temporal: torch.Tensor, generator: torch.Generator | None = None,
               snr_gamma: float | None = None) -> torch.Tensor:
    """:math:`L_\\text{simple}` on clips ``x0 (B, F, C, S, S)`` with prompt ids ``(B, L)``; a scalar.

    One timestep and one noise draw per clip (every frame of a clip is at the same noise level);
    ``temporal (B,)`` bool says which clips attend across frames. ``snr_gamma``: the Min-SNR
    weight :math:`\\min(\\mathrm{SNR}_t, \\gamma)/\\mathrm{SNR}_t` per clip (None: plain mean).
    A model with ``prediction="v"`` is trained on the velocity instead,
    :math:`\\lVert v - \\hat v\\rVert^2` (:func:`aigc_course.diffusion.losses.velocity_loss`).
    """
    if model.prediction == "v":  # the same draws as below; no Min-SNR weight
        return velocity_loss(model, schedule, x0, ids, generator=generator, temporal=temporal)
    b = len(x0)
    t = torch.randint(schedule.timesteps, (b,), generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    noise, t = noise.to(x0.device), t.to(x0.device)
    xt = schedule.q_sample(x0, t, noise)
    prediction = model(xt, t, ids, temporal=temporal)
    per_clip = (prediction - noise).pow(2).reshape(b, -1).mean(dim=1)
    if snr_gamma is None:
        return per_clip.mean()
    snr = schedule.signal_to_noise(t.cpu()).to(x0.device, x0.dtype)
    return ((snr_gamma / snr).clamp(max=1.0) * per_clip).mean()


def train_text_to_video(recipe: TextToVideoRecipe | None = None, *, device: torch.device | str = "cpu",
                        progress: bool = True, data: tuple | None = None) -> tuple[TextToVideoPipeline, dict]:
    """Train a text-to-video pipeline from scratch; returns ``(pipeline, report)``.

    ``data`` overrides the training set with ``(videos (N, F, 3, S, S) in [0, 1], captions)``.
    The report holds the loss history and the seconds each stage took.
    """
    recipe = TextToVideoRecipe() if recipe is None else recipe
    device = torch.device(device)
    generator = torch.Generator().manual_seed(recipe.seed)
    torch.manual_seed(recipe.seed)  # weight initialisation
    report: dict = {"seconds": {}}
    start = time.perf_counter()
    if data is None:
        videos, captions, _ = moving_scenes(recipe.num_clips, seed=recipe.data_seed, num_frames=recipe.num_frames,
                                            split="train", image_size=recipe.image_size)
    else:
        videos, captions = data
    x_train = (videos * 2 - 1).to(device)  # the schedule assumes data in [-1, 1]
    report["seconds"]["data"] = time.perf_counter() - start
    # the tokenizer learns every caption of the grammar, so a held-out prompt has known words
    from aigc_course.data.moving import all_video_attributes, video_caption
    tokenizer = PromptTokenizer.train([video_caption(a) for a in all_video_attributes()], recipe.context_length)

    start = time.perf_counter()
    schedule = NoiseSchedule(recipe.schedule, recipe.timesteps)
    unet = build_video_unet(recipe, tokenizer).to(device)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=recipe.lr, weight_decay=0.0)
    scheduler = warmup_cosine_scheduler(optimizer, recipe.steps, min(recipe.warmup, recipe.steps // 10 + 1), floor=0.05)
    ema = EMA(unet, recipe.ema_decay, warmup=True)

    def loss_fn(model, step):
        idx = torch.randint(len(x_train), (recipe.batch_size,), generator=generator)
        batch_captions = drop_captions([captions[i] for i in idx.tolist()], recipe.p_uncond, generator)
        ids, _ = tokenizer(batch_captions, name="captions")
        temporal = torch.rand(recipe.batch_size, generator=generator) >= recipe.p_frames_alone
        return video_loss(model, schedule, x_train[idx.to(device)], ids.to(device), temporal.to(device),
                          generator=generator, snr_gamma=recipe.snr_gamma)

    history: History = fit(unet, optimizer, loss_fn, recipe.steps, grad_clip=1.0, scheduler=scheduler, ema=ema,
                           desc="video denoiser", progress=progress)
    report["history"] = history
    report["seconds"]["denoiser"] = time.perf_counter() - start
    config = {
        "image_size": recipe.image_size, "num_frames": recipe.num_frames, "schedule": recipe.schedule,
        "timesteps": recipe.timesteps, "guidance_scale": float(recipe.guidance_scale), "unet": ema.model.config,
        "tokenizer": tokenizer.to_dict(), "recipe": recipe.to_dict(),
    }
    return TextToVideoPipeline(ema.model, tokenizer, schedule, config), report
