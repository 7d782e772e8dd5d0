"""The captioner: image patches -> :class:`~aigc_course.seq2seq.TransformerEncoder` -> memory ->
:class:`~aigc_course.seq2seq.TransformerDecoder` -> words (book 2.3 and 3.1.1).

A Vision Transformer (Dosovitskiy et al. 2021) reads an image as a sequence: the image is cut
into ``p x p`` patches, each patch is flattened and projected to a vector (one strided
convolution does both), a learned position embedding says where the patch was, and the
Transformer encoder lets every patch look at every other. The decoder is the course's GPT with
cross-attention: each word it writes attends to the patches (the maps the chapter draws).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from aigc_course.data import scenes
from aigc_course.pretrained import capture_config
from aigc_course.seq2seq import TransformerDecoder, TransformerEncoder

SPECIALS = ("<bos>", "<eos>")


class CaptionVocabulary:
    """Words <-> ids: ``<bos>`` is 0, ``<eos>`` is 1, then the caption words in order.

    ``encode(text) -> [bos, w_1, ..., w_n, eos]`` after
    :func:`~aigc_course.data.scenes.normalize_caption`; ``decode(ids)`` stops at ``<eos>``.
    """

    bos_id, eos_id = 0, 1

    def __init__(self, words: Sequence[str] = scenes.CAPTION_WORDS):
        words = list(words)
        if not words or any(not isinstance(w, str) or not w or " " in w or w in SPECIALS for w in words):
            raise ValueError(f"words must be a non-empty list of single words, got {words!r}")
        if len(set(words)) != len(words):
            raise ValueError("words must not repeat")
        self.words = words
        self.itos = [*SPECIALS, *words]
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise ValueError(f"text must be a str, got {type(text).__name__}")
        unknown = [w for w in scenes.normalize_caption(text).split() if w not in self.stoi or w in SPECIALS]
        if unknown:
            raise ValueError(f"text has words outside the caption vocabulary: {unknown}")
        return [self.bos_id, *(self.stoi[w] for w in scenes.normalize_caption(text).split()), self.eos_id]

    def decode(self, ids: Sequence[int]) -> str:
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i != self.bos_id:
                out.append(self.itos[i])
        return " ".join(out)

    def batch(self, captions: Sequence[str], length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing: inputs ``(N, length)`` = ``[bos, words...]`` padded with ``<eos>`` and
        targets ``(N, length)`` = ``[words..., eos]`` padded with ``-1`` (ignored by the loss)."""
        idx = torch.full((len(captions), length), self.eos_id, dtype=torch.long)
        targets = torch.full((len(captions), length), -1, dtype=torch.long)
        for row, text in enumerate(captions):
            ids = self.encode(text)
            if len(ids) - 1 > length:
                raise ValueError(f"caption {text!r} needs {len(ids) - 1} positions, more than length={length}")
            idx[row, : len(ids) - 1] = torch.tensor(ids[:-1])
            targets[row, : len(ids) - 1] = torch.tensor(ids[1:])
        return idx, targets

    def to_dict(self) -> dict:
        return {"type": "caption_words", "words": list(self.words)}

    @classmethod
    def from_dict(cls, payload: dict) -> CaptionVocabulary:
        if not isinstance(payload, dict) or payload.get("type") != "caption_words":
            raise ValueError(f"tokenizer must be a caption_words vocabulary, got {payload!r}")
        return cls(payload["words"])


def check_images(images, image_size: int, name: str = "images") -> torch.Tensor:
    """``images`` must be a float tensor ``(N, 3, image_size, image_size)``, ``N >= 1``, values in ``[0, 1]``.

    The range check reads the tensor once (a host sync): it belongs at the public boundary only.
    """
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"{name} must be a tensor of shape (N, 3, {image_size}, {image_size}) in [0, 1], "
                         f"got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1:] != (3, image_size, image_size) or len(images) == 0:
        raise ValueError(f"{name} must have shape (N, 3, {image_size}, {image_size}) with N >= 1, "
                         f"got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"{name} must be floating point in [0, 1], got dtype {images.dtype}")
    low, high = images.aminmax()
    if not (low >= 0 and high <= 1):  # NaN fails both
        raise ValueError(f"{name} must hold values in [0, 1], got min {low.item():.4g} max {high.item():.4g}")
    return images


class PatchEncoder(nn.Module):
    """A small ViT: ``images (B, 3, S, S)`` -> patch vectors ``(B, (S/p)^2, C)``.

    ``patchify`` is a ``p x p`` convolution with stride ``p`` (a linear map of each flattened
    patch), row-major over the patch grid; then a learned position embedding per patch and a
    :class:`~aigc_course.seq2seq.TransformerEncoder` (no mask: every patch is real).
    """

    @capture_config
    def __init__(self, image_size: int = 32, patch_size: int = 4, n_embd: int = 128, n_layer: int = 2,
                 n_head: int = 4, dropout: float = 0.0):
        super().__init__()
        for name, value in (("image_size", image_size), ("patch_size", patch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if image_size % patch_size:
            raise ValueError(f"image_size ({image_size}) must be a multiple of patch_size ({patch_size})")
        self.image_size, self.patch_size = image_size, patch_size
        self.grid = image_size // patch_size
        self.patchify = nn.Conv2d(3, n_embd, patch_size, stride=patch_size)
        self.position = nn.Parameter(0.02 * torch.randn(1, self.grid * self.grid, n_embd))
        self.drop = nn.Dropout(dropout)
        self.encoder = TransformerEncoder(n_embd, n_layer, n_head, dropout)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patchify(images * 2 - 1).flatten(2).transpose(1, 2)  # (B, P, C), centred pixels
        return self.encoder(self.drop(x + self.position))


class Captioner(nn.Module):
    """``(images (B, 3, S, S), idx (B, T)) -> (logits (B, T, V), loss)``: a
    :class:`PatchEncoder` whose patch vectors are the memory of a
    :class:`~aigc_course.seq2seq.TransformerDecoder`."""

    @capture_config
    def __init__(self, vocab_size: int = 26, block_size: int = 12, image_size: int = 32, patch_size: int = 4,
                 n_embd: int = 128, n_head: int = 4, encoder_layers: int = 2, decoder_layers: int = 2,
                 dropout: float = 0.0):
        super().__init__()
        self.encoder = PatchEncoder(image_size, patch_size, n_embd, encoder_layers, n_head, dropout)
        self.decoder = TransformerDecoder(vocab_size, block_size, decoder_layers, n_head, n_embd, dropout)

    def forward(self, images: torch.Tensor, idx: torch.Tensor, targets: torch.Tensor | None = None):
        return self.decoder(idx, self.encoder(images), targets=targets)


def caption_scores(captions: Sequence[str], attributes: Sequence[dict[str, str]]) -> dict[str, float]:
    """How often ``captions`` describe the scenes ``attributes``: ``"exact"`` (the whole caption equals the
    canonical one) and, per attribute, the fraction of scenes with that attribute read right.

    Two-object scenes are compared in canonical form (:func:`~aigc_course.data.scenes.canonical_attributes`),
    so "a red circle below a blue square" and "a blue square above a red circle" are the same answer.
    A caption that does not parse gets every attribute wrong.
    """
    if len(captions) != len(attributes) or not captions:
        raise ValueError(f"captions and attributes must be non-empty and of one length, got {len(captions)} "
                         f"and {len(attributes)}")
    exact, right, seen = 0, {}, {}
    for text, attrs in zip(captions, attributes, strict=True):
        truth = scenes.canonical_attributes(attrs)
        try:
            read = scenes.canonical_attributes(scenes.parse_caption(text))
        except ValueError:
            read = {}
        exact += read == truth
        for key, value in truth.items():
            seen[key] = seen.get(key, 0) + 1
            right[key] = right.get(key, 0) + (read.get(key) == value)
    return {"exact": exact / len(captions), **{k: right[k] / seen[k] for k in seen}}
