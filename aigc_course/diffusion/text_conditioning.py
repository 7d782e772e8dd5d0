"""Text conditioning for a diffusion model: prompt -> tokens -> features -> cross-attention (Chapter 5).

The Stable Diffusion / Imagen recipe in three parts:

* :class:`PromptTokenizer` -- the course's byte-level BPE (:class:`aigc_course.tokenizers.ByteBPETokenizer`)
  trained on the captions, plus a start token that begins every sequence, padding to a fixed
  context length, and the checks a prompt must pass (a string, not empty, known words, short
  enough). The empty caption ``""`` is the start token alone: the *null* condition of
  classifier-free guidance.
* :class:`TextEncoder` -- a small bidirectional Transformer (pre-LN blocks built on
  :class:`aigc_course.attention.MultiHeadAttention`) that turns ids ``(B, L)`` into one feature
  vector per token ``(B, L, D)``; the start token's output summarises the prompt.
* :class:`SpatialCrossAttention` -- image features ``(B, C, H, W)`` read as ``H*W`` queries
  that attend to the token features (:class:`aigc_course.attention.CrossAttention`), added back
  residually: each pixel picks the words it needs,
  :math:`h \\leftarrow h + \\mathrm{softmax}(Q K^\\top/\\sqrt{d})V` with :math:`Q` from pixels and
  :math:`K, V` from words (book eq. 3.1.2).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from aigc_course.attention import CrossAttention, MultiHeadAttention
from aigc_course.data.scenes import CAPTION_WORDS, normalize_caption
from aigc_course.pretrained import capture_config
from aigc_course.tokenizers import ByteBPETokenizer


class PromptTokenizer:
    """Prompts -> ids ``(B, L)`` and mask ``(B, L)`` (``True`` = a real token), ``L = context_length``.

    Ids ``0 .. V-1`` are the BPE's; ``start_id = V`` begins every sequence, ``pad_id = V + 1``
    fills the rest. ``vocabulary`` is the set of words the model was trained on: a prompt with
    any other word is refused (the BPE could spell it from bytes, but the model never saw
    those ids, so its output would mean nothing).
    """

    def __init__(self, bpe: ByteBPETokenizer, context_length: int = 16, vocabulary: Sequence[str] = CAPTION_WORDS):
        if not isinstance(bpe, ByteBPETokenizer):
            raise ValueError(f"bpe must be a ByteBPETokenizer, got {type(bpe).__name__}")
        if isinstance(context_length, bool) or not isinstance(context_length, int) or context_length < 2:
            raise ValueError(f"context_length must be an int >= 2, got {context_length!r}")
        self.bpe = bpe
        self.context_length = context_length
        self.vocabulary = tuple(sorted(vocabulary))
        self.start_id = bpe.vocab_size
        self.pad_id = bpe.vocab_size + 1

    @classmethod
    def train(cls, captions: Sequence[str], context_length: int = 16) -> PromptTokenizer:
        """Learn BPE merges on ``captions`` until no pair repeats: each caption word ends as one token."""
        words = sorted({w for c in captions for w in normalize_caption(c).split()})
        bpe = ByteBPETokenizer.train("\n".join(normalize_caption(c) for c in captions), vocab_size=256 + 1000)
        return cls(bpe, context_length, words)

    @property
    def vocab_size(self) -> int:
        """Embedding rows the text encoder needs: the BPE ids plus start and pad."""
        return self.bpe.vocab_size + 2

    def to_dict(self) -> dict:
        return {"bpe": self.bpe.to_dict(), "context_length": self.context_length, "vocabulary": list(self.vocabulary)}

    @classmethod
    def from_dict(cls, payload: dict) -> PromptTokenizer:
        return cls(ByteBPETokenizer.from_dict(payload["bpe"]), payload["context_length"], payload["vocabulary"])

    def tokens(self, prompt: str, name: str = "prompt") -> list[int]:
        """One prompt's ids, start token first, after :func:`~aigc_course.data.scenes.normalize_caption`.

        The empty prompt gives ``[start_id]`` (the null condition). Raises ``ValueError``
        naming ``name`` for a non-string, unknown words, or more tokens than the context holds.
        """
        if not isinstance(prompt, str):
            raise ValueError(f"{name} must be a str, got {type(prompt).__name__}")
        text = normalize_caption(prompt)
        unknown = sorted({w for w in text.split() if w not in self.vocabulary})
        if unknown:
            raise ValueError(
                f"{name} = {prompt!r} has words the model was never trained on: {unknown}. "
                f"Known words: {', '.join(self.vocabulary)}"
            )
        ids = [self.start_id, *self.bpe.encode(text)]
        if len(ids) > self.context_length:
            raise ValueError(
                f"{name} = {prompt!r} is {len(ids) - 1} tokens long; the text encoder's context holds "
                f"{self.context_length - 1} (plus the start token)"
            )
        return ids

    def __call__(self, prompts: Sequence[str], name: str = "prompt") -> tuple[torch.Tensor, torch.Tensor]:
        """A batch of prompts -> ``ids (B, L)`` long and ``mask (B, L)`` bool."""
        if isinstance(prompts, str) or not isinstance(prompts, Sequence):
            raise ValueError(f"{name} must be a list of strings, got {type(prompts).__name__}")
        return self.pad([self.tokens(prompt, f"{name}[{i}]") for i, prompt in enumerate(prompts)])

    def pad(self, rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token rows (from :meth:`tokens`) -> ``ids (B, L)`` padded with ``pad_id``, and the mask."""
        ids = torch.full((len(rows), self.context_length), self.pad_id, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return ids, ids != self.pad_id

    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        """Checked prompts (from :func:`check_prompts`) -> ids ``(N, L)``; errors name ``prompt`` or ``prompt[i]``."""
        names = ["prompt"] if len(prompts) == 1 else [f"prompt[{i}]" for i in range(len(prompts))]
        ids, _ = self.pad([self.tokens(p, n) for p, n in zip(prompts, names, strict=True)])
        return ids

    def null_ids(self) -> torch.Tensor:
        """The empty prompt's ids ``(L,)``: the null condition of classifier-free guidance."""
        ids, _ = self([""])
        return ids[0]

    def mask_of(self, ids: torch.Tensor) -> torch.Tensor:
        """``(B, L)`` ids -> ``(B, L)`` mask, ``True`` where a token is not padding."""
        return ids != self.pad_id

    def token_strings(self, prompt: str) -> list[str]:
        """The tokens of ``prompt`` as text, ``"<start>"`` first (for plots of attention)."""
        ids = self.tokens(prompt)
        return ["<start>", *self.bpe.token_strings(ids[1:])]


class EncoderBlock(nn.Module):
    """Pre-LN Transformer encoder block on ``(B, L, D)``: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(self, width: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = MultiHeadAttention(width, num_heads, dropout)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), mask=mask[:, None, None, :])  # every token sees every real token
        return x + self.mlp(self.ln_2(x))


class TextEncoder(nn.Module):
    """Token ids ``(B, L)`` and mask ``(B, L)`` -> token features ``(B, L, width)``.

    Token + learned position embeddings, ``num_layers`` bidirectional encoder blocks and a
    final LayerNorm (CLIP's text tower without the causal mask; BERT-style). Position 0 is
    the start token, whose output :meth:`pooled` returns as the prompt's summary ``(B, width)``.
    """

    @capture_config
    def __init__(self, vocab_size: int, context_length: int = 16, width: int = 64, num_layers: int = 2,
                 num_heads: int = 4, dropout: float = 0.0):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.position_embedding = nn.Parameter(torch.zeros(context_length, width))
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.position_embedding, std=0.01)
        self.blocks = nn.ModuleList(EncoderBlock(width, num_heads, dropout) for _ in range(num_layers))
        self.ln_final = nn.LayerNorm(width)

    @property
    def width(self) -> int:
        return self.config["width"]

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if ids.dim() != 2 or ids.dtype != torch.long or ids.shape[1] > self.config["context_length"]:
            raise ValueError(f"ids must be (B, L<={self.config['context_length']}) torch.long, got {ids.dtype} {tuple(ids.shape)}")
        x = self.token_embedding(ids) + self.position_embedding[: ids.shape[1]]
        for block in self.blocks:
            x = block(x, mask)
        return self.ln_final(x)

    @staticmethod
    def pooled(features: torch.Tensor) -> torch.Tensor:
        """The start token's features ``(B, width)``: a summary of the whole prompt."""
        return features[:, 0]


class SpatialCrossAttention(nn.Module):
    """``h (B, C, H, W)`` attends to ``context (B, L, D)``: ``h + CrossAttention(norm(h), context)``.

    The ``H*W`` pixels are the queries (one row of attention weights each); inside
    :func:`aigc_course.attention.record_attention` the weights ``(B, heads, H*W, L)`` are recorded,
    which is how maps of "which words each pixel reads" are made.
    """

    def __init__(self, channels: int, context_dim: int, num_heads: int = 4, groups: int = 8):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.attn = CrossAttention(channels, num_heads, context_dim)

    def forward(self, h: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor) -> torch.Tensor:
        b, c, height, width = h.shape
        queries = self.norm(h).reshape(b, c, height * width).transpose(1, 2)  # (B, HW, C)
        out = self.attn(queries, context, context_mask)
        return h + out.transpose(1, 2).reshape(b, c, height, width)


def check_prompts(prompt, example: str) -> list[str]:
    """``prompt`` (a str or a non-empty list of non-empty str) as a list; ``ValueError`` naming it otherwise.

    ``example`` is a prompt the model knows, quoted in the error for an empty one.
    """
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
            raise ValueError(f"{name} is empty; describe {example}")
    return list(prompt)


def drop_captions(captions: Sequence[str], p_uncond: float, generator: torch.Generator | None = None) -> list[str]:
    """Replace each caption by the empty caption ``""`` with probability ``p_uncond``.

    Training on such a batch teaches one network both :math:`\\varepsilon(x_t, c)` and
    :math:`\\varepsilon(x_t, \\varnothing)`, which classifier-free guidance (eq. 4.4.12) combines.
    One uniform draw per caption from ``generator``.
    """
    if isinstance(captions, str) or not isinstance(captions, Sequence):
        raise ValueError(f"captions must be a list of strings, got {type(captions).__name__}")
    if not 0.0 <= p_uncond <= 1.0:
        raise ValueError(f"p_uncond must be in [0, 1], got {p_uncond}")
    drop = torch.rand(len(captions), generator=generator) < p_uncond
    return ["" if d else c for c, d in zip(captions, drop.tolist(), strict=True)]

