"""A tiny CLIP: images and texts embedded in one space by contrastive learning.

Book 2.3. Multimodal models relate modalities; CLIP (Radford et al. 2021) does it by training
an image encoder and a text encoder so that matching pairs have a high cosine similarity and
mismatched pairs a low one. For a batch of ``B`` pairs with unit embeddings ``u_i`` (images)
and ``v_j`` (texts) and a learned temperature ``tau``, the logits are
``s_ij = u_i . v_j / tau`` and the loss is the symmetric InfoNCE (van den Oord et al. 2018):

.. math::

    \\mathcal L = \\frac{1}{2B}\\sum_{i=1}^B\\Big[-\\log\\frac{e^{s_{ii}}}{\\sum_j e^{s_{ij}}}
                 -\\log\\frac{e^{s_{ii}}}{\\sum_j e^{s_{ji}}}\\Big]   \\qquad\\text{(eq. 2.3.1)}

i.e. cross-entropy over the rows (image -> text) and the columns (text -> image) of the
similarity matrix, with the matching pair on the diagonal. After training, a class is
predicted "zero-shot" by embedding a text prompt per class and picking the most similar one.

Here the images are the 8x8 digits and the texts are short captions such as "a handwritten
seven" or "the number 7", written from :data:`TRAIN_TEMPLATES`; :data:`HELD_OUT_TEMPLATES`
recombine the same words into phrasings never seen in training. The text encoder is a
word-level bag of embeddings with its own vocabulary (no downloads).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from aigc_course._checks import check_bool, check_finite, check_int, check_number
from aigc_course.data import DIGIT_NAMES
from aigc_course.pretrained import capture_config

# {name} is the number word ("seven"), {digit} the numeral ("7").
TRAIN_TEMPLATES = (
    "a handwritten {name}",
    "a photo of the digit {digit}",
    "the number {name}",
    "a scan of a handwritten {digit}",
    "an image of the digit {name}",
    "a small picture of a {digit}",
    "the numeral {digit} written by hand",
    "a blurry {name}",
)
# Every word of these also appears in training, in other combinations.
HELD_OUT_TEMPLATES = (
    "a photo of the number {name}",
    "a small handwritten {digit}",
    "an image of a blurry {digit}",
    "the digit {name} written by hand",
)

PAD = "<pad>"
_WORD = re.compile(r"[a-z0-9]+")


def caption(template: str, label: int) -> str:
    """The caption of class ``label`` (0-9) in ``template``: ``caption("the number {name}", 7)``."""
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(DIGIT_NAMES):
        raise ValueError(f"label must be an int in [0, {len(DIGIT_NAMES)}), got {label!r}")
    if not isinstance(template, str):
        raise ValueError(f"template must be a str with {{name}} or {{digit}}, got {type(template).__name__}")
    return template.format(name=DIGIT_NAMES[label], digit=label)


def words(text: str) -> list[str]:
    """Lower-case words and numerals of ``text`` (punctuation dropped)."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    return _WORD.findall(text.lower())


class Vocabulary:
    """Word <-> id, with id 0 for padding. ``encode(texts) -> (ids (B, T), mask (B, T))``."""

    def __init__(self, tokens: Sequence[str]):
        tokens = list(tokens)
        if not tokens or len(set(tokens)) != len(tokens) or PAD in tokens:
            raise ValueError("tokens must be a non-empty list of distinct words (without the pad token)")
        self.itos = [PAD, *tokens]
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def from_templates(cls, templates: Sequence[str] = TRAIN_TEMPLATES) -> Vocabulary:
        """Every word of every template filled in with every class, in sorted order."""
        found = {w for t in templates for label in range(len(DIGIT_NAMES)) for w in words(caption(t, label))}
        return cls(sorted(found))

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad a batch of texts: ``ids (B, T)`` (long) and ``mask (B, T)`` (bool, True = word)."""
        if isinstance(texts, str) or not isinstance(texts, Sequence) or len(texts) == 0:
            raise ValueError("texts must be a non-empty list of strings")
        rows = []
        for i, text in enumerate(texts):
            ws = words(text)
            if not ws:
                raise ValueError(f"texts[{i}] = {text!r} is empty: it holds no word to encode")
            unknown = [w for w in ws if w not in self.stoi]
            if unknown:
                raise ValueError(f"texts[{i}] = {text!r} has words outside the vocabulary: {unknown}")
            rows.append([self.stoi[w] for w in ws])
        width = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
        return ids, ids != 0


class TextEncoder(nn.Module):
    """Bag of words: mean of word embeddings, then an MLP. ``(ids (B, T), mask) -> (B, E)``.

    Order is ignored, which is enough for captions whose meaning is one class word; CLIP's
    text encoder is a Transformer.
    """

    def __init__(self, vocab_size: int, embed_dim: int = 32, hidden: int = 64):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, hidden, padding_idx=0)
        self.mlp = nn.Sequential(nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, embed_dim))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(self.embedding.weight.dtype)
        pooled = (self.embedding(ids) * m).sum(1) / m.sum(1).clamp_min(1.0)
        return self.mlp(pooled)


class ImageEncoder(nn.Module):
    """A small CNN for ``(B, 1, 8, 8)`` images in ``[0, 1]`` -> ``(B, E)``."""

    def __init__(self, embed_dim: int = 32, channels: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.GELU(),
            nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1), nn.GELU(),  # 8x8 -> 4x4
            nn.Flatten(), nn.Linear(2 * channels * 16, 128), nn.GELU(), nn.Linear(128, embed_dim),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


def _check_images(images) -> torch.Tensor:
    """Shape ``(B, 1, 8, 8)`` and float dtype: cheap, no value scan."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or tuple(images.shape[1:]) != (1, 8, 8) \
            or not images.is_floating_point():
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a (B, 1, 8, 8) float tensor, got {got}")
    return images


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor | float) -> torch.Tensor:
    """Symmetric InfoNCE (eq. 2.3.1) of ``B`` matching pairs; row ``i`` of each input is pair ``i``.

    ``image_emb (B, E)`` and ``text_emb (B, E)`` are normalised here; ``logit_scale`` is
    ``1 / tau``, a positive number or a 0-dim tensor (a tensor's value is not checked: it is
    the learned scale of every training step). Returns a scalar: the mean of the image->text
    and text->image cross-entropies.
    """
    if isinstance(logit_scale, torch.Tensor):
        if logit_scale.dim() != 0 or not logit_scale.is_floating_point():
            raise ValueError(f"logit_scale must be a positive number or a 0-dim float tensor, "
                             f"got {logit_scale.dtype} {tuple(logit_scale.shape)}")
    else:
        check_number(logit_scale, "logit_scale", low=0, low_open=True)
    if not isinstance(image_emb, torch.Tensor) or image_emb.dim() != 2:
        raise ValueError(f"image_emb must be a (B, E) tensor, got {getattr(image_emb, 'shape', type(image_emb))}")
    if not isinstance(text_emb, torch.Tensor) or text_emb.dim() != 2:
        raise ValueError(f"text_emb must be a (B, E) tensor, got {getattr(text_emb, 'shape', type(text_emb))}")
    if not image_emb.is_floating_point() or not text_emb.is_floating_point():
        raise ValueError(f"image_emb and text_emb must be float tensors, got {image_emb.dtype} and {text_emb.dtype}")
    if image_emb.shape[0] != text_emb.shape[0]:
        raise ValueError(
            f"image_emb and text_emb must hold the same number of pairs (batch size), got "
            f"{image_emb.shape[0]} images and {text_emb.shape[0]} texts"
        )
    if image_emb.shape[1] != text_emb.shape[1]:
        raise ValueError(f"image_emb and text_emb must have the same width E, got {image_emb.shape[1]} and {text_emb.shape[1]}")
    logits = logit_scale * F.normalize(image_emb, dim=-1) @ F.normalize(text_emb, dim=-1).T
    targets = torch.arange(len(logits), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets))


class TinyCLIP(nn.Module):
    """Image encoder + text encoder + learned temperature (CLIP's recipe, sized for 8x8 digits)."""

    @capture_config
    def __init__(self, vocab: Vocabulary, embed_dim: int = 32, channels: int = 32, hidden: int = 64):
        super().__init__()
        if not isinstance(vocab, Vocabulary):
            raise ValueError(f"vocab must be a Vocabulary, got {type(vocab).__name__}")
        self.vocab = vocab
        self.image_encoder = ImageEncoder(embed_dim, channels)
        self.text_encoder = TextEncoder(len(vocab), embed_dim, hidden)
        # log(1 / tau), starting at tau = 0.07 as in CLIP; clamped at 100 like CLIP
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    @property
    def device(self) -> torch.device:
        return self.logit_scale.device

    @property
    def temperature(self) -> float:
        return float(1.0 / self.scale().detach())

    def scale(self) -> torch.Tensor:
        return self.logit_scale.exp().clamp(max=100.0)

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 1, 8, 8)`` -> unit vectors ``(B, E)`` (shape checked; values are not: training runs this)."""
        _check_images(images)
        return F.normalize(self.image_encoder(images.to(self.device)), dim=-1)

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """A list of ``B`` strings -> unit vectors ``(B, E)``."""
        ids, mask = self.vocab.encode(texts)
        return F.normalize(self.text_encoder(ids.to(self.device), mask.to(self.device)), dim=-1)

    def forward(self, images: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        """The contrastive loss (eq. 2.3.1) of ``B`` (image, text) pairs."""
        if isinstance(texts, str) or len(texts) != len(images):
            raise ValueError(f"texts must be a list with one string per image: {len(images)} images, "
                             f"got {1 if isinstance(texts, str) else len(texts)} texts")
        return clip_loss(self.encode_images(images), self.encode_texts(texts), self.scale())

    def similarity(self, images: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        """Cosine similarities ``(N_images, N_texts)``."""
        return self.encode_images(images) @ self.encode_texts(texts).T

    @torch.no_grad()
    def class_embeddings(self, templates: Sequence[str] = TRAIN_TEMPLATES) -> torch.Tensor:
        """One unit vector per class ``(10, E)``: the renormalised mean over the templates' captions
        (CLIP's prompt ensemble; a single template gives its own embedding)."""
        if isinstance(templates, str) or not templates:
            raise ValueError("templates must be a non-empty list of strings with {name} or {digit}")
        per = torch.stack([self.encode_texts([caption(t, c) for c in range(len(DIGIT_NAMES))]) for t in templates])
        return F.normalize(per.mean(0), dim=-1)

    @torch.no_grad()
    def zero_shot_predict(self, images: torch.Tensor, templates: Sequence[str] = TRAIN_TEMPLATES) -> torch.Tensor:
        """Class of each image ``(B,)``: the prompt whose embedding is most similar."""
        check_finite(_check_images(images), "images")
        self.eval()
        return (self.encode_images(images) @ self.class_embeddings(templates).T).argmax(1).cpu()

    @torch.no_grad()
    def retrieve(self, query: str, images: torch.Tensor, k: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
        """Text -> image search: indices ``(k,)`` of the ``k`` images most similar to ``query``, and scores."""
        check_finite(_check_images(images), "images")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(images):
            raise ValueError(f"k must be an int in [1, {len(images)}], got {k!r}")
        if not isinstance(query, str):
            raise ValueError(f"query must be a str, got {type(query).__name__}")
        self.eval()
        scores = (self.encode_images(images) @ self.encode_texts([query]).T).squeeze(1).cpu()
        top = scores.topk(k)
        return top.indices, top.values


def zero_shot_accuracy(model: TinyCLIP, images: torch.Tensor, labels: torch.Tensor,
                       templates: Sequence[str] = TRAIN_TEMPLATES) -> float:
    """Share of ``images (N, 1, 8, 8)`` whose zero-shot class equals ``labels (N,)``."""
    if not isinstance(model, TinyCLIP):
        raise ValueError(f"model must be a TinyCLIP, got {type(model).__name__}")
    _check_images(images)
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.is_floating_point() \
            or labels.dtype == torch.bool:
        got = f"{labels.dtype} {tuple(labels.shape)}" if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be a 1-D tensor of integer class ids, got {got}")
    if len(images) == 0:
        raise ValueError("images must hold at least one image")
    if len(images) != len(labels):
        raise ValueError(f"images and labels must have the same length, got {len(images)} and {len(labels)}")
    return float((model.zero_shot_predict(images, templates) == labels.cpu()).float().mean())


def sample_pairs(images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator,
                 templates: Sequence[str] = TRAIN_TEMPLATES, num_classes: int = len(DIGIT_NAMES)):
    """A batch of ``num_classes`` (image, caption) pairs, one per class in random order.

    Distinct classes keep every off-diagonal pair of the similarity matrix a true negative
    (two images of a "seven" with "a handwritten seven" would otherwise be both right and wrong).
    Returns ``(images (B, 1, 8, 8), captions: list[str], labels (B,))``.
    """
    num_classes = check_int(num_classes, "num_classes", low=1, high=len(DIGIT_NAMES))
    _check_images(images)
    if not isinstance(labels, torch.Tensor) or labels.shape != (len(images),):
        got = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be a tensor of shape ({len(images)},), one per image, got {got}")
    if isinstance(templates, str) or not templates:
        raise ValueError("templates must be a non-empty list of strings with {name} or {digit}")
    classes = torch.randperm(len(DIGIT_NAMES), generator=generator)[:num_classes]
    picks = []
    for c in classes.tolist():
        where = (labels == c).nonzero().squeeze(1)
        if len(where) == 0:
            raise ValueError(f"labels hold no example of class {c}; every class 0-9 needs at least one image")
        picks.append(int(where[torch.randint(len(where), (1,), generator=generator)]))
    idx = torch.tensor(picks)
    which = torch.randint(len(templates), (len(picks),), generator=generator).tolist()
    texts = [caption(templates[t], c) for t, c in zip(which, classes.tolist(), strict=True)]
    return images[idx], texts, labels[idx]


def train_clip(model: TinyCLIP, images: torch.Tensor, labels: torch.Tensor, num_steps: int = 600,
               groups: int = 8, lr: float = 2e-3, seed: int = 0, augment: bool = True, progress: bool = True):
    """Train on ``groups`` independent 10-pair batches per step (the loss is their mean).

    ``augment`` shifts each image by up to one pixel, a cheap guard against memorising the
    1,437 training digits. Returns the :class:`~aigc_course.training.History`.
    """
    from aigc_course.training import fit

    num_steps = check_int(num_steps, "num_steps", low=0)
    groups = check_int(groups, "groups", low=1)
    check_number(lr, "lr", low=0, low_open=True)
    seed = check_int(seed, "seed", low=0)
    check_bool(augment, "augment")
    check_finite(_check_images(images), "images")
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)

    def loss_fn(m: TinyCLIP, step: int) -> torch.Tensor:
        xs, texts = [], []
        for _ in range(groups):
            x, t, _ = sample_pairs(images, labels, gen)
            if augment:
                dx, dy = torch.randint(-1, 2, (2,), generator=gen).tolist()
                x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
            xs.append(x)
            texts += t
        # one forward pass for all groups; the loss only compares pairs within a group
        u = m.encode_images(torch.cat(xs)).view(groups, -1, m.config["embed_dim"])
        v = m.encode_texts(texts).view(groups, -1, m.config["embed_dim"])
        return torch.stack([clip_loss(u[g], v[g], m.scale()) for g in range(groups)]).mean()

    return fit(model, opt, loss_fn, num_steps, desc="tiny CLIP", progress=progress)
