"""Watermarking generated text with green lists (book 8.1; Kirchenbauer et al., 2023).

Before each token is drawn, the previous token seeds a random generator that splits the
vocabulary in two: a *green list* of ``G = int(gamma * V)`` tokens and a red list of the rest.
The *soft watermark* adds ``delta`` to the logits of the green tokens::

    logits[v] += delta   if v is in green(previous token)                  (eq. 8.1.1)

so generated text holds more green tokens than chance. Text written without the watermark
(by a person, or by the model without the bias) has each token green with probability
``gamma``, whatever the tokens are, because the green list is a pseudo-random function of
the previous token only. A detector that knows the key, but not the model, counts the green
tokens ``g`` among the ``n`` scored ones and runs a one-sided z-test::

    z = (g - gamma * n) / sqrt(n * gamma * (1 - gamma))                     (eq. 8.1.2)

Under "no watermark", ``g ~ Binomial(n, gamma)`` and ``z`` is close to standard normal, so
``z > 4`` happens by chance with probability about ``3e-5``.

The seeding follows ``transformers``' ``WatermarkLogitsProcessor`` with
``seeding_scheme="lefthash"`` (the original repository's Algorithm 2): the seed is
``hash_key * previous_token``, the generator is a CPU ``torch.Generator`` and the green list
is the first ``G`` entries of ``torch.randperm(V)``. The green lists are therefore the same
as ``transformers``' on CPU, and the z-scores are those of its ``WatermarkDetector`` (tests
check both). Green lists are always drawn on the CPU here, so they do not depend on the
device the model runs on.

The watermark plugs into the one decoding loop as a constraint
(:func:`aigc_course.decoding.generate`, ``constraints=[watermark]``): it sees the logits
``(B, V)`` and the tokens so far ``(B, T)``. The loop applies constraints before the
sampler's temperature, so with temperature ``tau`` the bias acts as ``delta / tau``
(``transformers`` adds it after the temperature); greedy decoding is identical.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch

from aigc_course import decoding
from aigc_course.sampling import make_sampler

DEFAULT_HASH_KEY = 15485863  # the millionth prime, transformers' and the paper's default key
MAX_CACHED_LISTS = 4096  # green-list masks kept per Watermark


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def green_z_score(num_green, num_scored, gamma: float):
    """Eq. 8.1.2: ``(g - gamma n) / sqrt(n gamma (1 - gamma))`` for counts (numbers or tensors)."""
    return (num_green - gamma * num_scored) / (num_scored * gamma * (1 - gamma)) ** 0.5


class WatermarkScore(NamedTuple):
    """What the detector measured, one entry per row: ``(B,)`` tensors."""

    num_scored: torch.Tensor  # tokens (or distinct bigrams) scored
    num_green: torch.Tensor  # of which green
    green_fraction: torch.Tensor
    z_score: torch.Tensor  # eq. 8.1.2
    p_value: torch.Tensor  # P(Z >= z) for a standard normal Z: the chance of a z this large without a watermark


class Watermark:
    """The soft green-list watermark for a vocabulary of ``vocab_size`` tokens.

    ``gamma``: the share of the vocabulary that is green (the list holds ``int(gamma * V)``
    tokens); ``delta``: the bias added to green logits; ``hash_key``: the secret key.
    Call it as a decoding constraint, ``watermark(logits (B, V), tokens (B, T)) -> logits``,
    and score text with :meth:`score` / :meth:`detect`.
    """

    def __init__(self, vocab_size: int, *, gamma: float = 0.25, delta: float = 2.0,
                 hash_key: int = DEFAULT_HASH_KEY):
        self.vocab_size = _check_positive_int(vocab_size, "vocab_size")
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not 0.0 < gamma < 1.0:
            raise ValueError(f"gamma must be a number strictly between 0 and 1, got {gamma!r}")
        if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not math.isfinite(delta):
            raise ValueError(f"delta must be a finite number, got {delta!r}")
        if isinstance(hash_key, bool) or not isinstance(hash_key, int) or hash_key < 0:
            raise ValueError(f"hash_key must be a non-negative int, got {hash_key!r}")
        self.gamma, self.delta, self.hash_key = float(gamma), float(delta), hash_key
        self.greenlist_size = int(vocab_size * gamma)
        if self.greenlist_size < 1:
            raise ValueError(f"gamma * vocab_size must be at least 1, got {gamma} * {vocab_size}")
        self._masks: dict[tuple[int, torch.device], torch.Tensor] = {}  # (previous token, device) -> (V,) bool

    def __repr__(self) -> str:
        return (f"Watermark(vocab_size={self.vocab_size}, gamma={self.gamma}, delta={self.delta}, "
                f"hash_key={self.hash_key})")

    # ------------------------------------------------------------------ green lists

    def green_list(self, previous_token: int) -> torch.Tensor:
        """The green token ids after ``previous_token``: ``(G,)`` long, in the generator's order."""
        if isinstance(previous_token, bool) or not isinstance(previous_token, int) or previous_token < 0:
            raise ValueError(f"previous_token must be a non-negative int, got {previous_token!r}")
        generator = torch.Generator(device="cpu")
        generator.manual_seed((self.hash_key * previous_token) % (2**64 - 1))  # lefthash seeding
        return torch.randperm(self.vocab_size, generator=generator)[: self.greenlist_size]

    def green_mask(self, previous_tokens: torch.Tensor) -> torch.Tensor:
        """``previous_tokens (...)`` -> ``(..., V)`` bool, True where a token is green after it.

        Each previous token's list is drawn once and kept (per device), up to
        ``MAX_CACHED_LISTS`` lists: a vocabulary of 50,000 tokens would otherwise keep 2.5 GB.
        """
        flat = previous_tokens.reshape(-1)
        device = flat.device
        rows = []
        for token in flat.tolist():
            key = (token, device)
            if key not in self._masks:
                if len(self._masks) >= MAX_CACHED_LISTS:
                    self._masks.clear()
                mask = torch.zeros(self.vocab_size, dtype=torch.bool)
                mask[self.green_list(token)] = True
                self._masks[key] = mask.to(device)
            rows.append(self._masks[key])
        if not rows:
            return torch.zeros(*previous_tokens.shape, self.vocab_size, dtype=torch.bool, device=device)
        return torch.stack(rows).reshape(*previous_tokens.shape, self.vocab_size)

    # ------------------------------------------------------------------ embedding (eq. 8.1.1)

    def __call__(self, logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Add ``delta`` to the green logits: ``logits (B, V)``, ``tokens (B, T)`` so far -> ``(B, V)``."""
        if logits.shape[-1] != self.vocab_size:
            raise ValueError(f"logits must have {self.vocab_size} entries in the last dimension, "
                             f"got shape {tuple(logits.shape)}")
        green = self.green_mask(tokens[:, -1])
        return logits + self.delta * green.to(logits.dtype)

    # ------------------------------------------------------------------ detection (eq. 8.1.2)

    def _check_ids(self, token_ids) -> torch.Tensor:
        if not isinstance(token_ids, torch.Tensor):
            if isinstance(token_ids, Sequence) and not isinstance(token_ids, str):
                try:
                    token_ids = torch.tensor(token_ids, dtype=torch.long)
                except (TypeError, ValueError) as err:
                    raise ValueError("token_ids must be a (T,) or (B, T) tensor or list of ints") from err
            else:
                raise ValueError(f"token_ids must be a (T,) or (B, T) tensor of token ids, "
                                 f"got {type(token_ids).__name__}")
        if token_ids.dtype.is_floating_point or token_ids.dtype.is_complex or token_ids.dtype == torch.bool:
            raise ValueError(f"token_ids must hold integer token ids, got dtype {token_ids.dtype}")
        ids = token_ids[None] if token_ids.dim() == 1 else token_ids
        if ids.dim() != 2 or ids.shape[1] < 2:
            raise ValueError("token_ids must have shape (T,) or (B, T) with T >= 2 (the first token only "
                             f"seeds the second's green list), got {tuple(token_ids.shape)}")
        if ids.min() < 0 or ids.max() >= self.vocab_size:
            raise ValueError(f"token_ids must lie in [0, {self.vocab_size}), "
                             f"got min {int(ids.min())} max {int(ids.max())}")
        return ids.long()

    def score(self, token_ids, *, ignore_repeated_bigrams: bool = False) -> WatermarkScore:
        """Count green tokens in ``token_ids (T,)`` or ``(B, T)`` and test them (eq. 8.1.2).

        Every token after the first is scored against the green list of the token before it
        (pass the generated text with one token of context before it). With
        ``ignore_repeated_bigrams`` each distinct (previous, token) pair counts once, which
        keeps repeated text from inflating ``z`` (transformers' ``ignore_repeated_ngrams``).
        Returns ``(B,)`` tensors on the CPU.
        """
        ids = self._check_ids(token_ids).cpu()
        green = self.green_mask(ids[:, :-1]).gather(-1, ids[:, 1:, None])[..., 0]  # (B, T - 1)
        if ignore_repeated_bigrams:
            counts, greens = [], []
            for row, hits in zip(ids.tolist(), green.tolist(), strict=True):
                distinct = dict(zip(zip(row[:-1], row[1:], strict=True), hits, strict=True))
                counts.append(len(distinct))
                greens.append(sum(distinct.values()))
            num_scored = torch.tensor(counts, dtype=torch.float64)
            num_green = torch.tensor(greens, dtype=torch.float64)
        else:
            num_scored = torch.full((len(ids),), ids.shape[1] - 1, dtype=torch.float64)
            num_green = green.sum(dim=1, dtype=torch.float64)
        z = green_z_score(num_green, num_scored, self.gamma)
        p_value = 0.5 * torch.special.erfc(z / math.sqrt(2))
        return WatermarkScore(num_scored, num_green, num_green / num_scored, z, p_value)

    def detect(self, token_ids, *, z_threshold: float = 4.0, ignore_repeated_bigrams: bool = False) -> torch.Tensor:
        """``(B,)`` bool: is ``z > z_threshold``? (``4`` flags unmarked text with probability ~3e-5.)"""
        if isinstance(z_threshold, bool) or not isinstance(z_threshold, (int, float)) or not math.isfinite(z_threshold):
            raise ValueError(f"z_threshold must be a finite number, got {z_threshold!r}")
        return self.score(token_ids, ignore_repeated_bigrams=ignore_repeated_bigrams).z_score > z_threshold


def generate_watermarked(model, prompt: torch.Tensor, max_new_tokens: int, watermark: Watermark | None, *,
                         temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """``prompt (B, T)`` continued by ``max_new_tokens`` tokens with the watermark: ``(B, T + n)``.

    The course's one decoding loop (:func:`aigc_course.decoding.generate`) with ``watermark``
    as its constraint and the sampler of :func:`aigc_course.sampling.make_sampler`;
    ``watermark=None`` decodes the same way without it (the unmarked baseline).
    """
    if watermark is not None and not isinstance(watermark, Watermark):
        raise ValueError(f"watermark must be a Watermark or None, got {type(watermark).__name__}")
    sampler = make_sampler(temperature, top_k, top_p)
    constraints = [watermark] if watermark is not None else []
    return decoding.generate(model, prompt, max_new_tokens, sampler, constraints=constraints, generator=generator)


def random_token_edits(token_ids: torch.Tensor, rate: float, vocab_size: int, *,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """A crude paraphrase: replace each token of ``token_ids (B, T)`` with probability ``rate``
    by a uniformly random token (never the first token, which only seeds). Same shape."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be a number in [0, 1], got {rate!r}")
    _check_positive_int(vocab_size, "vocab_size")
    if not isinstance(token_ids, torch.Tensor) or token_ids.dim() != 2:
        raise ValueError(f"token_ids must be a (B, T) tensor, got {getattr(token_ids, 'shape', type(token_ids))}")
    ids = token_ids.cpu()
    edit = torch.rand(ids.shape, generator=generator) < rate
    edit[:, 0] = False
    replacement = torch.randint(vocab_size, ids.shape, generator=generator)
    return torch.where(edit, replacement, ids).to(token_ids.device)
