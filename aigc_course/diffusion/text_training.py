"""Training the text-to-image model: the autoencoder first, then the denoiser (Chapter 5).

:class:`TextToImageRecipe` holds every setting as data (the shipped checkpoint's recipe is
``TextToImageRecipe()``; ``scripts/train_text_to_image.py`` runs it). :func:`train_text_to_image`
follows latent diffusion's stages:

1. **Autoencoder** (``space="latent"`` only) -- :func:`train_autoencoder` on the training
   images; its encoder then turns every image into a standardised latent once.
2. **Denoiser** -- the velocity loss (:func:`~aigc_course.diffusion.losses.velocity_loss`; the U-Net
   outputs ``v``, ``prediction="v"``) or the simple loss (eq. 4.4.8, ``prediction="epsilon"``) on
   ``(latent, caption)`` pairs, with each caption
   replaced by the empty caption with probability ``p_uncond`` (:func:`drop_captions`) so that
   one network also learns the unconditional noise that classifier-free guidance needs. The
   text encoder inside the U-Net is trained jointly, from scratch. AdamW, warm-up + cosine
   learning rate, and an exponential moving average (EMA) of the weights, which is what ships.
3. **Decoder** (``decoder_steps > 0``) -- :func:`finetune_decoder` trains the decoder alone on the
   frozen encoder's latents, so the denoiser's latent space is unchanged; it runs last, on its own
   random stream, so stages 1-2 are the same with or without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

from aigc_course.data import captioned_scenes
from aigc_course.diffusion.autoencoder import SceneAutoencoder
from aigc_course.diffusion.losses import noise_prediction_loss, velocity_loss
from aigc_course.diffusion.pipelines import PixelTextToImagePipeline, TextToImagePipeline
from aigc_course.diffusion.schedule import NoiseSchedule
from aigc_course.diffusion.text_conditioning import PromptTokenizer, drop_captions
from aigc_course.diffusion.text_unet import TextConditionedUNet
from aigc_course.training import EMA, History, fit, warmup_cosine_scheduler


@dataclass
class TextToImageRecipe:
    """Every setting of a text-to-image training run (defaults: the shipped ``text-to-image``)."""

    space: str = "latent"  # "latent" (autoencoder + diffusion on 8x8 latents) or "pixel" (32x32)
    num_images: int = 20_000  # captioned_scenes(num_images, seed=data_seed, split="train")
    data_seed: int = 0
    seed: int = 0
    # the autoencoder
    latent_channels: int = 8
    ae_channels: tuple[int, int] = (16, 96)
    ae_steps: int = 2000
    ae_batch_size: int = 64
    ae_lr: float = 2e-3
    # the denoiser
    channels: tuple[int, ...] = (48, 96)
    emb_dim: int = 128
    text_width: int = 64
    text_layers: int = 2
    num_heads: int = 4
    context_length: int = 16
    attention_resolution: int = 4
    cross_attention_resolution: int = 8
    dropout: float = 0.0
    position_embedding: bool = True
    schedule: str = "cosine"
    timesteps: int = 1000
    steps: int = 3000
    batch_size: int = 128
    lr: float = 1.5e-3
    warmup: int = 100
    ema_decay: float = 0.995
    p_uncond: float = 0.15
    # stage 3: the decoder fine-tuned on the frozen encoder's latents (the denoiser's space is unchanged)
    decoder_steps: int = 1500
    decoder_batch_size: int = 64
    decoder_lr: float = 2e-3
    prediction: str = "v"  # what the U-Net outputs: "v" (the velocity loss) or "epsilon" (the simple loss)
    snr_gamma: float | None = None  # Min-SNR weight of the simple loss (prediction="epsilon" only; None: plain)
    guidance_scale: float = 3.0  # the pipeline's default
    notes: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.space not in ("latent", "pixel"):
            raise ValueError(f"space must be 'latent' or 'pixel', got {self.space!r}")
        if self.prediction not in TextConditionedUNet.PREDICTIONS:
            raise ValueError(f"prediction must be one of {TextConditionedUNet.PREDICTIONS}, got {self.prediction!r}")
        self.ae_channels = tuple(self.ae_channels)
        self.channels = tuple(self.channels)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ae_channels"], d["channels"] = list(self.ae_channels), list(self.channels)
        return d


#: The shipped recipes: ``"latent"`` is ``text-to-image``; ``"pixel"`` (``text-to-image-pixel``) is
#: the comparison, a U-Net one level deeper on the 32x32 pixels, with as many steps as the same
#: CPU budget buys (a pixel step costs about five latent ones per image on this machine).
RECIPES = {
    "latent": TextToImageRecipe(),
    "pixel": TextToImageRecipe(space="pixel", channels=(32, 64, 128), attention_resolution=8,
                               cross_attention_resolution=16, batch_size=64, steps=600),
}


def train_autoencoder(autoencoder: SceneAutoencoder, images: torch.Tensor, steps: int, *, batch_size: int = 64,
                      lr: float = 2e-3, generator: torch.Generator | None = None, progress: bool = True) -> History:
    """Minimise :meth:`SceneAutoencoder.loss` on random batches of ``images (N, 3, S, S)``, then
    fit the latent standardisation on (up to 4,096 of) the same images."""
    device = next(autoencoder.parameters()).device
    optimizer = torch.optim.AdamW(autoencoder.parameters(), lr=lr, weight_decay=0.0)
    scheduler = warmup_cosine_scheduler(optimizer, steps, min(100, steps // 10 + 1), floor=0.05)

    def loss_fn(model, step):
        idx = torch.randint(len(images), (batch_size,), generator=generator)
        return model.loss(images[idx].to(device))

    history = fit(autoencoder, optimizer, loss_fn, steps, scheduler=scheduler, desc="autoencoder", progress=progress)
    autoencoder.fit_latent_scale(images[:4096].to(device))
    return history


def finetune_decoder(autoencoder: SceneAutoencoder, images: torch.Tensor, steps: int, *, batch_size: int = 64,
                     lr: float = 2e-3, generator: torch.Generator | None = None, progress: bool = True) -> History:
    """Train only the decoder of ``autoencoder`` on ``images (N, 3, S, S)``; the encoder stays frozen.

    The latents -- and so everything a denoiser learned on them -- do not change; only the way
    back to pixels improves (Stable Diffusion's released decoder was fine-tuned the same way).
    The loss is L1 + squared error: the squared error weighs a wrong colour over a whole object
    more than L1, which a decoder can otherwise meet by drawing dim, colourless blobs.
    """
    device = next(autoencoder.parameters()).device
    autoencoder.eval()
    with torch.no_grad():
        latents = torch.cat([autoencoder.encode_raw(images[i : i + 1024].to(device)) for i in range(0, len(images), 1024)])
    decoder = autoencoder.decoder
    decoder.train()
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=lr, weight_decay=0.0)
    scheduler = warmup_cosine_scheduler(optimizer, steps, min(100, steps // 10 + 1), floor=0.05)

    def loss_fn(model, step):
        idx = torch.randint(len(images), (batch_size,), generator=generator)
        target = images[idx].to(device)
        out = (model(latents[idx.to(device)]) + 1) / 2
        return torch.nn.functional.l1_loss(out, target) + torch.nn.functional.mse_loss(out, target)

    history = fit(decoder, optimizer, loss_fn, steps, scheduler=scheduler, desc="decoder", progress=progress)
    decoder.eval()
    return history


def build_unet(recipe: TextToImageRecipe, tokenizer: PromptTokenizer) -> TextConditionedUNet:
    """The denoiser a recipe describes, for latents ``(latent_channels, 8, 8)`` or pixels ``(3, 32, 32)``."""
    latent = recipe.space == "latent"
    return TextConditionedUNet(
        vocab_size=tokenizer.vocab_size, pad_id=tokenizer.pad_id, context_length=recipe.context_length,
        in_channels=recipe.latent_channels if latent else 3, image_size=8 if latent else 32,
        channels=recipe.channels, emb_dim=recipe.emb_dim, text_width=recipe.text_width,
        text_layers=recipe.text_layers, num_heads=recipe.num_heads,
        attention_resolution=recipe.attention_resolution,
        cross_attention_resolution=recipe.cross_attention_resolution, dropout=recipe.dropout,
        position_embedding=recipe.position_embedding, prediction=recipe.prediction,
        schedule=recipe.schedule, timesteps=recipe.timesteps,
    )


def train_text_to_image(recipe: TextToImageRecipe | None = None, *, device: torch.device | str = "cpu",
                        progress: bool = True, data: tuple | None = None,
                        autoencoder: SceneAutoencoder | None = None,
                        callback: Callable[[int, TextToImagePipeline], None] | None = None,
                        finetune_decoder_stage: bool = True,
                        ) -> tuple[TextToImagePipeline, dict]:
    """Train a text-to-image pipeline from scratch; returns ``(pipeline, report)``.

    ``data`` overrides the training set with ``(images (N, 3, 32, 32), captions)``;
    ``autoencoder`` reuses a trained one (stage 1 is skipped; with ``finetune_decoder_stage=False``
    stage 3 too, for an autoencoder whose decoder is already fine-tuned). Each stage draws from
    its own random streams (seeds ``seed``, ``seed + 2``, ``seed + 1``), so the denoiser does not
    depend on whether stage 1 ran in the same process. The report holds the loss
    histories and the seconds each stage took. ``callback(step, pipeline)`` runs after every
    denoiser step with a pipeline around the current EMA weights.
    """
    recipe = TextToImageRecipe() if recipe is None else recipe
    device = torch.device(device)
    generator = torch.Generator().manual_seed(recipe.seed)
    torch.manual_seed(recipe.seed)  # weight initialisation
    report: dict = {"seconds": {}}
    start = time.perf_counter()
    if data is None:
        images, captions, _ = captioned_scenes(recipe.num_images, seed=recipe.data_seed, split="train")
    else:
        images, captions = data
    report["seconds"]["data"] = time.perf_counter() - start
    tokenizer = PromptTokenizer.train(sorted(set(captions)), recipe.context_length)

    start = time.perf_counter()
    if recipe.space == "pixel":
        autoencoder = None
    elif autoencoder is None:
        autoencoder = SceneAutoencoder(recipe.latent_channels, recipe.ae_channels).to(device)
        report["autoencoder_history"] = train_autoencoder(
            autoencoder, images, recipe.ae_steps, batch_size=recipe.ae_batch_size, lr=recipe.ae_lr,
            generator=generator, progress=progress)
    if autoencoder is not None:
        if autoencoder.config["latent_channels"] != recipe.latent_channels:
            raise ValueError(f"autoencoder has {autoencoder.config['latent_channels']} latent channels, "
                             f"the recipe {recipe.latent_channels}")
        autoencoder.eval()
        with torch.no_grad():
            x_train = torch.cat([autoencoder.encode(images[i : i + 1024].to(device)) for i in range(0, len(images), 1024)])
    else:
        x_train = (images * 2 - 1).to(device)
    report["seconds"]["autoencoder"] = time.perf_counter() - start

    start = time.perf_counter()
    schedule = NoiseSchedule(recipe.schedule, recipe.timesteps)
    # Stage 2 has its own random streams, so a reused autoencoder gives the denoiser of a full run.
    generator = torch.Generator().manual_seed(recipe.seed + 2)
    torch.manual_seed(recipe.seed + 2)
    unet = build_unet(recipe, tokenizer).to(device)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=recipe.lr, weight_decay=0.0)
    scheduler = warmup_cosine_scheduler(optimizer, recipe.steps, recipe.warmup, floor=0.05)
    ema = EMA(unet, recipe.ema_decay, warmup=True)

    def loss_fn(model, step):
        idx = torch.randint(len(x_train), (recipe.batch_size,), generator=generator)
        batch_captions = drop_captions([captions[i] for i in idx.tolist()], recipe.p_uncond, generator)
        ids, _ = tokenizer(batch_captions, name="captions")
        x0 = x_train[idx.to(device)]
        if recipe.prediction == "v":
            return velocity_loss(model, schedule, x0, ids.to(device), generator=generator)
        return noise_prediction_loss(model, schedule, x0, ids.to(device), generator=generator, snr_gamma=recipe.snr_gamma)

    config = {
        "space": recipe.space, "image_size": 32, "schedule": recipe.schedule, "timesteps": recipe.timesteps,
        "guidance_scale": float(recipe.guidance_scale), "unet": unet.config, "tokenizer": tokenizer.to_dict(),
        "autoencoder": None if autoencoder is None else autoencoder.config, "recipe": recipe.to_dict(),
    }
    pipe_class = TextToImagePipeline if autoencoder is not None else PixelTextToImagePipeline
    pipe = pipe_class(ema.model, tokenizer, schedule, autoencoder, config)

    def loss_and_callback(model, step):
        if callback is not None and step > 0:
            callback(step, pipe)  # the EMA after `step` updates
        return loss_fn(model, step)

    report["denoiser_history"] = fit(unet, optimizer, loss_and_callback, recipe.steps, grad_clip=1.0,
                                     scheduler=scheduler, ema=ema, desc="denoiser", progress=progress)
    if callback is not None:
        callback(recipe.steps, pipe)
    report["seconds"]["denoiser"] = time.perf_counter() - start

    if autoencoder is not None and recipe.decoder_steps > 0 and finetune_decoder_stage:
        start = time.perf_counter()
        decoder_generator = torch.Generator().manual_seed(recipe.seed + 1)  # the denoiser's stream is untouched
        report["decoder_history"] = finetune_decoder(
            autoencoder, images, recipe.decoder_steps, batch_size=recipe.decoder_batch_size, lr=recipe.decoder_lr,
            generator=decoder_generator, progress=progress)
        report["seconds"]["decoder"] = time.perf_counter() - start
    return pipe, report
