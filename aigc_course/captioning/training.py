"""Training the captioner on the captioned scenes: the recipe (as data) and the loop.

Teacher forcing (eq. 3.1.3): the decoder reads ``<bos> w_1 .. w_n`` and is scored on
``w_1 .. w_n <eos>`` given the image. Captions are the canonical ones
(:func:`~aigc_course.data.scenes.canonical_attributes`): a two-object scene is always said with
"above" or "to the left of", so one image has one right answer. The training split never shows
a held-out (colour, shape) pair; the benchmark asks whether the captioner can say them anyway.
"""

from __future__ import annotations

import torch

from aigc_course.captioning.models import Captioner, CaptionVocabulary
from aigc_course.data import captioned_scenes, scenes
from aigc_course.training import EMA, fit, make_adamw, warmup_cosine_scheduler

#: The shipped captioner (scripts/train_captioner.py).
MODEL = {"block_size": 12, "image_size": 32, "patch_size": 8, "n_embd": 128, "n_head": 4,
         "encoder_layers": 2, "decoder_layers": 2, "dropout": 0.0}
RECIPE = {"images": 40000, "data_seed": 200, "steps": 1600, "batch_size": 64, "lr": 1e-3, "warmup_steps": 100,
          "weight_decay": 0.05, "grad_clip": 1.0, "ema_decay": 0.995, "seed": 0}


def canonical_captions(attributes) -> list[str]:
    """The one caption per scene the captioner is taught to write."""
    return [scenes.caption(scenes.canonical_attributes(a)) for a in attributes]


def train_captioner(recipe: dict = RECIPE, model_config: dict = MODEL, *, images: torch.Tensor | None = None,
                    captions: list[str] | None = None, progress: bool = True,
                    device: torch.device | str = "cpu") -> tuple[Captioner, CaptionVocabulary]:
    """Train a :class:`Captioner` by ``recipe`` on ``images``/``captions`` (default: the recipe's
    ``captioned_scenes(images, data_seed, split="train")``); returns the EMA weights in eval mode."""
    generator = torch.Generator().manual_seed(recipe["seed"])
    torch.manual_seed(recipe["seed"])
    if images is None:
        images, _, attributes = captioned_scenes(recipe["images"], seed=recipe["data_seed"], split="train")
        captions = canonical_captions(attributes)
    vocabulary = CaptionVocabulary()
    model = Captioner(vocab_size=vocabulary.vocab_size, **model_config).to(device)
    idx, targets = vocabulary.batch(captions, model_config["block_size"] - 1)
    optimizer = make_adamw(model, recipe["lr"], recipe["weight_decay"])
    scheduler = warmup_cosine_scheduler(optimizer, recipe["steps"], recipe["warmup_steps"])
    ema = EMA(model, recipe["ema_decay"], warmup=True)

    def loss_fn(m: Captioner, step: int) -> torch.Tensor:
        rows = torch.randint(len(images), (recipe["batch_size"],), generator=generator)
        return m(images[rows].to(device), idx[rows].to(device), targets[rows].to(device))[1]

    fit(model, optimizer, loss_fn, recipe["steps"], grad_clip=recipe["grad_clip"], scheduler=scheduler, ema=ema,
        desc="captioner", progress=progress)
    return ema.model.eval(), vocabulary
