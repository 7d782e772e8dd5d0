"""A character-level LSTM language model: AI 2.0's first answer to the n-gram (Chapter 1.1.2).

Where an n-gram model sees only the last ``n - 1`` characters and keeps a table of counts,
the LSTM (Hochreiter & Schmidhuber, 1997) carries a learned state along the whole text,
and similar contexts share parameters through learned embeddings. Both are scored the
same way: bits per character on held-out text.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from aigc_course import decoding
from aigc_course.data import CORPUS_ALPHABET, decode_chars, encode_chars
from aigc_course.sampling import make_sampler
from aigc_course.tokenizers import is_integer_dtype


@dataclass
class CharLSTMConfig:
    vocab_size: int = len(CORPUS_ALPHABET)
    embed_dim: int = 64
    hidden_size: int = 256
    num_layers: int = 1
    dropout: float = 0.0


class CharLSTM(nn.Module):
    """Embedding -> LSTM -> linear head over the alphabet."""

    def __init__(self, config: CharLSTMConfig):
        super().__init__()
        if config.hidden_size <= 0 or config.num_layers <= 0 or config.embed_dim <= 0:
            raise ValueError(f"sizes must be positive, got {config}")
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim)
        self.lstm = nn.LSTM(
            config.embed_dim, config.hidden_size, config.num_layers, batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        self.head = nn.Linear(config.hidden_size, config.vocab_size)

    @classmethod
    def from_config(cls, config: dict) -> CharLSTM:
        """A fresh model from a dict of :class:`CharLSTMConfig` fields (a checkpoint's ``"model"``)."""
        return cls(CharLSTMConfig(**config))

    def forward(self, idx: torch.Tensor, state=None):
        """``idx (B, T)`` -> logits ``(B, T, V)`` and the final LSTM state."""
        if not isinstance(idx, torch.Tensor) or idx.ndim != 2:
            got = tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__
            raise ValueError(f"idx must have shape (B, T), got {got}")
        if not is_integer_dtype(idx.dtype):
            raise ValueError(f"idx must hold integer character ids (torch.long), got dtype {idx.dtype}")
        out, state = self.lstm(self.embed(idx.long()), state)
        return self.head(out), state

    def loss(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean next-character cross-entropy in nats."""
        logits, _ = self(idx)
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))

    @torch.no_grad()
    def log2_probs(self, text: str, chunk: int = 512, streams: int = 16) -> torch.Tensor:
        """log2 P(x_t | x_<t) for every character of ``text`` but the first. ``(len(text) - 1,)``.

        The text is cut into ``streams`` contiguous pieces read in parallel, and the state
        flows along each piece, so every character except the first of each piece is
        predicted with its full left context (those few are predicted from an empty state).
        """
        device = next(self.parameters()).device
        ids = encode_chars(text)
        if len(ids) < 2:
            raise ValueError("text must have at least 2 characters")
        n = len(ids) - 1
        streams = max(1, min(streams, n // chunk))
        length = -(-n // streams)  # ceil: pad the last stream, then drop the padding
        pad = streams * length - n
        inputs = torch.cat([ids[:-1], ids.new_zeros(pad)]).view(streams, length).to(device)
        targets = torch.cat([ids[1:], ids.new_zeros(pad)]).view(streams, length).to(device)
        was_training = self.training
        self.eval()
        out, state = [], None
        for start in range(0, length, chunk):
            logits, state = self(inputs[:, start : start + chunk], state)
            logp = torch.log_softmax(logits.float(), dim=-1)
            out.append(logp.gather(-1, targets[:, start : start + chunk, None])[..., 0])
        self.train(was_training)
        return (torch.cat(out, dim=1).reshape(-1)[:n] / math.log(2)).cpu()

    def bits_per_char(self, text: str) -> float:
        """Held-out bits per character (lower is better); see :meth:`log2_probs`."""
        return float(-self.log2_probs(text).mean())

    # ------------------------------------------------------------------ decoding

    def decoding_state(self, batch_size: int, use_cache: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """The LSTM's state ``(h, c)`` before any character, each ``(num_layers, B, hidden)``.

        It is all the memory a recurrent model has, so there is nothing to cache or not
        (``use_cache`` is accepted for the :class:`aigc_course.decoding.Decoder` interface)."""
        weight = self.head.weight
        h = torch.zeros(self.config.num_layers, batch_size, self.config.hidden_size,
                        device=weight.device, dtype=weight.dtype)
        return h, torch.zeros_like(h)

    def decode_step(self, idx: torch.Tensor, state):
        """Logits ``(B, V)`` of the character after ``idx (B, t)``, and the updated state.

        The logits come back on the CPU: this model's characters are drawn there (a batch
        of one row costs nothing to move)."""
        logits, state = self(idx, state)
        return logits[:, -1].float().cpu(), state

    def reorder_state(self, state, index: torch.Tensor):
        """Keep the rows ``index (B',)`` of the state (beam search follows its beams)."""
        h, c = state
        index = index.to(h.device)
        return h.index_select(1, index), c.index_select(1, index)

    @torch.no_grad()
    def generate(self, prompt: str, num_chars: int, temperature: float = 1.0,
                 generator: torch.Generator | None = None) -> str:
        """Sample ``num_chars`` characters after ``prompt`` (``temperature=0``: greedy).

        Runs the course's decoding loop, :func:`aigc_course.decoding.generate`."""
        if not isinstance(prompt, str) or not prompt:
            raise ValueError("prompt must be a non-empty string")
        if isinstance(num_chars, bool) or not isinstance(num_chars, int) or num_chars < 0:
            raise ValueError(f"num_chars must be a non-negative int, got {num_chars!r}")
        sampler = make_sampler(temperature)
        idx = encode_chars(prompt)[None].to(self.head.weight.device)
        out = decoding.generate(self, idx, num_chars, sampler, generator=generator)
        return prompt + decode_chars(out[0, idx.shape[1]:].tolist())

    def config_dict(self) -> dict:
        return asdict(self.config)


def random_windows(ids: torch.Tensor, batch_size: int, seq_len: int, generator: torch.Generator | None = None):
    """A batch of random windows from a 1-D id tensor: inputs and next-char targets ``(B, T)``."""
    if len(ids) <= seq_len + 1:
        raise ValueError(f"text of {len(ids)} ids is too short for windows of {seq_len}")
    starts = torch.randint(0, len(ids) - seq_len - 1, (batch_size,), generator=generator)
    offsets = torch.arange(seq_len + 1)
    windows = ids[starts[:, None] + offsets]
    return windows[:, :-1], windows[:, 1:]
