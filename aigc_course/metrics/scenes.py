"""Scoring generated scenes with an attribute judge trained on real renders (Chapter 5).

The judge (checkpoint ``scene-judge``, trained by ``scripts/train_scene_judge.py`` on scenes
drawn by :func:`aigc_course.data.captioned_scenes` only, never on generated images) is a small
CNN with one classification head per attribute. It reads a scene in its *canonical* form
(:func:`aigc_course.data.canonical_attributes`): two-object scenes are described top (or left)
object first, so that one picture has one answer whichever way the caption phrased it.

Heads (:data:`HEADS`): ``count`` (one or two objects); for one object ``shape``, ``colour``,
``size`` and ``position``; for two objects ``shape_1``, ``colour_1``, ``relation`` ("above"
or "left of", i.e. a column or a row), ``shape_2``, ``colour_2``.

:func:`judge_scores` compares the judge's reading of each image with the attributes asked
for: per attribute, and **all right** when the count and every attribute of the caption are
right.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from aigc_course.data import scenes
from aigc_course.pretrained import capture_config
from aigc_course.runtime import resolve_device

HEADS: dict[str, tuple[str, ...]] = {
    "count": ("one", "two"),
    "shape": scenes.SHAPES,
    "colour": tuple(scenes.COLOURS),
    "size": tuple(scenes.SIZES),
    "position": tuple(scenes.POSITIONS),
    "shape_1": scenes.SHAPES,
    "colour_1": tuple(scenes.COLOURS),
    "relation": ("above", "left of"),  # canonical: a column or a row
    "shape_2": scenes.SHAPES,
    "colour_2": tuple(scenes.COLOURS),
}
IGNORE = -100  # the target of a head that does not apply (cross-entropy's ignore_index)


def judge_targets(attributes: Sequence[dict[str, str]]) -> dict[str, torch.Tensor]:
    """Class indices ``(N,)`` per head for ``N`` scenes; :data:`IGNORE` where a head does not apply."""
    if isinstance(attributes, dict) or not isinstance(attributes, Sequence):
        raise ValueError(f"attributes must be a list of attribute dicts, got {type(attributes).__name__}")
    targets = {head: torch.full((len(attributes),), IGNORE, dtype=torch.long) for head in HEADS}
    for i, attrs in enumerate(attributes):
        canonical = scenes.canonical_attributes(attrs)
        targets["count"][i] = 0 if len(canonical) == len(scenes.SINGLE_KEYS) else 1
        for key, value in canonical.items():
            targets[key][i] = HEADS[key].index(value)
    return targets


def _check_images(images: torch.Tensor, size: int = scenes.IMAGE_SIZE) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or tuple(images.shape[1:]) != (3, size, size):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor of shape (N, 3, {size}, {size}) in [0, 1], got {shape}")


class SceneJudge(nn.Module):
    """CNN ``(N, 3, 32, 32)`` in ``[0, 1]`` -> logits per head ``{name: (N, classes)}``.

    Three stride-2 stages (32 -> 16 -> 8 -> 4) keep where things are; the flattened 4x4 map
    feeds a shared layer and one linear head per attribute.
    """

    @capture_config
    def __init__(self, width: int = 32, hidden: int = 256, image_size: int = scenes.IMAGE_SIZE):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(3, w, 3, stride=2, padding=1), nn.ReLU(),  # 16x16
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(2 * w, 2 * w, 3, stride=2, padding=1), nn.ReLU(),  # 8x8
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.ReLU(),  # 4x4
            nn.Flatten(),
            nn.Linear(4 * w * (image_size // 8) ** 2, hidden), nn.ReLU(),
        )
        self.heads = nn.ModuleDict({name: nn.Linear(hidden, len(values)) for name, values in HEADS.items()})

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        _check_images(images, self.config["image_size"])
        features = self.body(images)
        return {name: head(features) for name, head in self.heads.items()}

    def loss(self, images: torch.Tensor, targets: dict[str, torch.Tensor]) -> torch.Tensor:
        """Sum over heads of the cross-entropy on the scenes each head applies to."""
        logits = self(images)
        total = images.new_zeros(())
        for name, t in targets.items():
            t = t.to(images.device)
            if (t != IGNORE).any():
                total = total + F.cross_entropy(logits[name], t, ignore_index=IGNORE)
        return total

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 512) -> list[dict[str, str]]:
        """The judge's reading of each image, as canonical attribute dicts (with ``count``)."""
        _check_images(images)
        device = next(self.parameters()).device
        indices = {name: [] for name in HEADS}
        for i in range(0, len(images), batch_size):
            logits = self(images[i : i + batch_size].to(device).float())
            for name in HEADS:
                indices[name].append(logits[name].argmax(1).cpu())
        idx = {name: torch.cat(v).tolist() for name, v in indices.items()}
        out = []
        for i in range(len(images)):
            count = HEADS["count"][idx["count"][i]]
            keys = scenes.SINGLE_KEYS if count == "one" else scenes.PAIR_KEYS
            out.append({"count": count, **{k: HEADS[k][idx[k][i]] for k in keys}})
        return out


@lru_cache(maxsize=4)
def _cached_judge(device_str: str) -> SceneJudge:
    from aigc_course import pretrained

    return pretrained.load("scene-judge", device=device_str)


def load_scene_judge(device: torch.device | str | None = None) -> SceneJudge:
    """The shipped ``scene-judge`` in eval mode (loaded once per device)."""
    return _cached_judge(str(resolve_device(device)))


def judge_scores(
    images: torch.Tensor, attributes: Sequence[dict[str, str]], judge: SceneJudge | None = None
) -> dict[str, float]:
    """How often the judge reads ``images (N, 3, 32, 32)`` as the scenes ``attributes`` asked for.

    Returns ``{"all": share with every attribute right, "count": ..., "<attribute>": ...}``;
    each attribute's share is over the scenes that have it (``shape`` over one-object scenes,
    ``relation`` over two-object ones, ...). A scene judged to have the wrong number of objects
    counts as wrong for every attribute it asked for.
    """
    _check_images(images)
    if isinstance(attributes, dict) or len(attributes) != len(images):
        raise ValueError(f"attributes must be a list with one dict per image ({len(images)}), "
                         f"got {type(attributes).__name__} of length {len(attributes)}")
    judge = load_scene_judge() if judge is None else judge
    readings = judge.predict(images)
    right: dict[str, list[bool]] = {"all": [], "count": []}
    for asked, read in zip(attributes, readings, strict=True):
        canonical = scenes.canonical_attributes(asked)
        count_ok = read["count"] == ("one" if len(canonical) == len(scenes.SINGLE_KEYS) else "two")
        oks = [count_ok]
        right["count"].append(count_ok)
        for key, value in canonical.items():
            ok = count_ok and read.get(key) == value
            right.setdefault(key, []).append(ok)
            oks.append(ok)
        right["all"].append(all(oks))
    return {key: sum(v) / len(v) for key, v in right.items()}


# --------------------------------------------------------------------------- a CLIP-style score


class SceneCLIP(nn.Module):
    """A contrastive caption-image model for scenes (chapter 2.3's recipe at 32x32 in colour).

    ``tokenizer`` is a :class:`~aigc_course.diffusion.text_conditioning.PromptTokenizer`'s
    ``to_dict()`` (so the config is plain JSON). Image tower: a CNN ``(B, 3, 32, 32) -> (B, E)``. Text tower: the
    :class:`~aigc_course.diffusion.text_conditioning.TextEncoder` over the
    :class:`~aigc_course.diffusion.text_conditioning.PromptTokenizer`, its start-token feature
    projected to ``E``. Trained with the symmetric InfoNCE loss (eq. 2.3.1,
    :func:`aigc_course.multimodal.clip_loss`). Unlike chapter 2.3's bag of words, the text
    tower reads word order, which "a red circle above a blue square" needs.
    """

    @capture_config
    def __init__(self, tokenizer: dict, embed_dim: int = 64, width: int = 32, text_width: int = 64, text_layers: int = 2,
                 num_heads: int = 4):
        from aigc_course.diffusion.text_conditioning import PromptTokenizer, TextEncoder

        super().__init__()
        if not isinstance(tokenizer, dict):
            raise ValueError(f"tokenizer must be a PromptTokenizer's to_dict(), got {type(tokenizer).__name__}")
        self.tokenizer = PromptTokenizer.from_dict(tokenizer)
        tokenizer = self.tokenizer
        w = width
        self.image_encoder = nn.Sequential(
            nn.Conv2d(3, w, 3, stride=2, padding=1), nn.ReLU(),  # 16x16
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(2 * w, 2 * w, 3, stride=2, padding=1), nn.ReLU(),  # 8x8
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.ReLU(),  # 4x4
            nn.Flatten(), nn.Linear(4 * w * 16, 256), nn.ReLU(), nn.Linear(256, embed_dim),
        )
        self.text_encoder = TextEncoder(tokenizer.vocab_size, tokenizer.context_length, text_width, text_layers, num_heads)
        self.text_projection = nn.Linear(text_width, embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(2.659))  # log(1 / 0.07), as in CLIP

    @property
    def device(self) -> torch.device:
        return self.logit_scale.device

    def scale(self) -> torch.Tensor:
        return self.logit_scale.exp().clamp(max=100.0)

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, 32, 32)`` in ``[0, 1]`` -> unit vectors ``(B, E)``."""
        _check_images(images)
        return F.normalize(self.image_encoder(images.to(self.device)), dim=-1)

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """``B`` captions -> unit vectors ``(B, E)``."""
        ids, mask = self.tokenizer(texts, name="texts")
        features = self.text_encoder(ids.to(self.device), mask.to(self.device))
        return F.normalize(self.text_projection(features[:, 0]), dim=-1)

    def forward(self, images: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        """The contrastive loss of ``B`` matching (image, caption) pairs (captions distinct)."""
        from aigc_course.multimodal import clip_loss

        return clip_loss(self.encode_images(images), self.encode_texts(texts), self.scale())


@lru_cache(maxsize=4)
def _cached_clip(device_str: str) -> SceneCLIP:
    from aigc_course import pretrained

    return pretrained.load("scene-clip", device=device_str)


def load_scene_clip(device: torch.device | str | None = None) -> SceneCLIP:
    """The shipped ``scene-clip`` in eval mode (loaded once per device)."""
    return _cached_clip(str(resolve_device(device)))


@torch.no_grad()
def clip_scores(images: torch.Tensor, captions: Sequence[str], model: SceneCLIP | None = None,
                batch_size: int = 512) -> dict[str, float]:
    """CLIP-style agreement of ``images (N, 3, 32, 32)`` with their ``captions``.

    * ``clip_score`` -- the mean cosine similarity of image and caption embeddings, times 100
      (CLIPScore's scale; Hessel et al. 2021);
    * ``r_precision`` -- the share of images whose own caption is the most similar of all 1,312
      captions of the grammar (CLIP-R-precision): the caption must win against every near miss,
      such as the same objects with the relation reversed.
    """
    from aigc_course.data.scenes import all_scene_attributes, caption, normalize_caption

    _check_images(images)
    if isinstance(captions, str) or len(captions) != len(images):
        raise ValueError(f"captions must be a list with one string per image ({len(images)})")
    model = load_scene_clip() if model is None else model
    grammar = [caption(a) for a in all_scene_attributes()]
    index = {c: i for i, c in enumerate(grammar)}
    text_emb = torch.cat([model.encode_texts(grammar[i : i + batch_size]) for i in range(0, len(grammar), batch_size)])
    cos, hits = [], []
    own_all = []
    for i, c in enumerate(captions):
        if not isinstance(c, str) or normalize_caption(c) not in index:
            raise ValueError(f"captions[{i}] = {c!r} is not a caption of the scene grammar")
        own_all.append(index[normalize_caption(c)])
    for i in range(0, len(images), batch_size):
        emb = model.encode_images(images[i : i + batch_size].float())
        own = torch.tensor(own_all[i : i + batch_size], device=emb.device)
        sims = emb @ text_emb.T  # (b, 1312)
        cos.append(sims.gather(1, own[:, None])[:, 0].cpu())
        hits.append((sims.argmax(1) == own).cpu())
    return {"clip_score": 100 * float(torch.cat(cos).mean()), "r_precision": float(torch.cat(hits).float().mean())}
