"""The autoregressive route for images and points: one token at a time (book 2.1.1, eq. 3.1.3).

An autoregressive model factorises a joint distribution with the chain rule,
``p(s) = prod_t p(s_t | s_<t)``, and learns each conditional with a causal network -- here
the course's :class:`~aigc_course.gpt.GPT`. Because every conditional is a softmax, the
log-likelihood ``log p(s) = sum_t log p(s_t | s_<t)`` is *exact*, which no other route of
section 2.1.1 gives (the VAE gives a bound, the GAN none). Sampling pays for it: a sequence of
``L`` tokens needs ``L`` network evaluations, one after another.

* :class:`DiscreteAutoregressive` -- the core: a GPT over sequences ``(B, L)`` of ints in
  ``[0, V)``, with exact ``log_prob`` and KV-cached ``sample``.
* :class:`PixelGPT` -- 8x8 digits as 64 tokens in raster order, each one of the 17 grey levels
  ``0..16`` of sklearn's digits (PixelCNN's idea, van den Oord et al. 2016, with a Transformer).
* :class:`PointGPT` -- 2-D points as two tokens, the x bin then the y bin; a point inside a
  bin is uniform, so ``log p(x) = log P(bin_x) + log P(bin_y | bin_x) - log(w_x w_y)``.
* :class:`PixelGPTPipeline` -- the shipped ``digits-pixel-gpt`` checkpoint.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from aigc_course import decoding
from aigc_course.gpt import GPT, GPTConfig
from aigc_course.pretrained import capture_config, keyword_options
from aigc_course.runtime import make_generator
from aigc_course.sampling import InverseCDF

PIXEL_LEVELS = 17  # sklearn digits store integers 0..16; aigc_course.data divides by 16
NUM_PIXELS = 64


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValueError(f"n must be a positive int, got {n!r}")
    return n


# --------------------------------------------------------------------------- the core


class DiscreteAutoregressive(nn.Module):
    """``p(s) = prod_t p(s_t | s_<t)`` for ``s (B, L)`` with tokens in ``[0, V)`` (eq. 3.1.3).

    The GPT reads ``[BOS, s_0, ..., s_{L-2}]`` and its output at position ``t`` is the
    distribution of ``s_t``; causal attention guarantees it sees only ``s_<t``. The BOS id is
    ``V``, so the GPT's vocabulary is ``V + 1``; its logit for BOS is dropped before the softmax.
    """

    @capture_config
    def __init__(self, length: int, vocab: int, n_layer: int = 2, n_head: int = 4, n_embd: int = 64,
                 dropout: float = 0.0):
        super().__init__()
        for name, value in (("length", length), ("vocab", vocab)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.length, self.vocab = length, vocab
        self.gpt = GPT(GPTConfig(vocab_size=vocab + 1, block_size=length, n_layer=n_layer,
                                 n_head=n_head, n_embd=n_embd, dropout=dropout))

    @property
    def device(self) -> torch.device:
        return self.gpt.lm_head.weight.device

    def check_tokens(self, tokens: torch.Tensor, name: str = "tokens") -> torch.Tensor:
        """``tokens`` must be an integer tensor ``(B, L)`` with values in ``[0, V)``."""
        if not isinstance(tokens, torch.Tensor) or tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
            got = tokens.dtype if isinstance(tokens, torch.Tensor) else type(tokens).__name__
            raise ValueError(f"{name} must be an integer tensor (B, {self.length}), got {got}")
        if tokens.ndim != 2 or tokens.shape[1] != self.length or len(tokens) == 0:
            raise ValueError(f"{name} must have shape (B, {self.length}) with B >= 1, got {tuple(tokens.shape)}")
        if tokens.min() < 0 or tokens.max() >= self.vocab:
            raise ValueError(f"{name} must lie in [0, {self.vocab}), got min {int(tokens.min())} max {int(tokens.max())}")
        return tokens.long()

    def conditionals(self, tokens: torch.Tensor) -> torch.Tensor:
        """Log-probabilities ``log p(s_t = v | s_<t)`` of every position and value: ``(B, L, V)``."""
        tokens = self.check_tokens(tokens).to(self.device)
        bos = torch.full((len(tokens), 1), self.vocab, dtype=torch.long, device=self.device)
        logits, _ = self.gpt(torch.cat([bos, tokens[:, :-1]], dim=1))
        return F.log_softmax(logits[..., : self.vocab].float(), dim=-1)

    def log_prob(self, tokens: torch.Tensor) -> torch.Tensor:
        """Exact ``log p(s) = sum_t log p(s_t | s_<t)`` in nats: ``(B, L)`` -> ``(B,)``."""
        logp = self.conditionals(tokens)
        return logp.gather(-1, tokens.long().to(self.device).unsqueeze(-1)).squeeze(-1).sum(dim=1)

    def loss(self, tokens: torch.Tensor) -> torch.Tensor:
        """Training loss: mean negative log-likelihood per token, in nats (a scalar)."""
        return -self.log_prob(tokens).mean() / self.length

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """``n`` sequences ``(n, L)``, one token per network evaluation (``L`` in all).

        The course's decoding loop (:func:`aigc_course.decoding.generate`) starts from the BOS
        token; keys and values of earlier tokens stay in a KV cache, so step ``t`` processes
        one token. The BOS logit is dropped before sampling (the constraint
        :func:`~aigc_course.decoding.limit_vocabulary`). Tokens are drawn by inverse-CDF
        sampling (:class:`~aigc_course.sampling.InverseCDF`) with uniform numbers from
        ``generator`` on the CPU, so a seed gives the same samples on any device;
        ``temperature`` divides the logits. Returns the tokens on the CPU.
        """
        _check_n(n)
        sampler = InverseCDF(temperature)
        bos = torch.full((n, 1), self.vocab, dtype=torch.long, device=self.device)
        tokens = decoding.generate(self.gpt, bos, self.length, sampler, generator=generator,
                                   constraints=[decoding.limit_vocabulary(self.vocab)])
        return tokens[:, 1:].cpu()


# --------------------------------------------------------------------------- digits


def digits_to_tokens(images: torch.Tensor, name: str = "images") -> torch.Tensor:
    """``(N, 1, 8, 8)`` in ``[0, 1]`` on the 17-level grid ``k/16`` -> tokens ``(N, 64)`` in ``0..16``."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or tuple(images.shape[1:]) != (1, 8, 8) \
            or len(images) == 0:
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{name} must be a tensor of shape (N, 1, 8, 8) with N >= 1, got {got}")
    if not images.is_floating_point():
        raise ValueError(f"{name} must be floating point values k/16 in [0, 1], got dtype {images.dtype}")
    levels = images.detach().double() * (PIXEL_LEVELS - 1)
    rounded = levels.round()
    if not torch.isfinite(levels).all() or (levels - rounded).abs().max() > 1e-3 or rounded.min() < 0 \
            or rounded.max() > PIXEL_LEVELS - 1:
        raise ValueError(f"{name} must hold values on the 17-level grid k/16, k = 0..16 "
                         "(the sklearn digits' integers divided by 16)")
    return rounded.long().reshape(len(images), NUM_PIXELS)


def tokens_to_digits(tokens: torch.Tensor) -> torch.Tensor:
    """Tokens ``(N, 64)`` in ``0..16`` -> images ``(N, 1, 8, 8)`` in ``[0, 1]``."""
    return tokens.float().reshape(len(tokens), 1, 8, 8) / (PIXEL_LEVELS - 1)


class PixelGPT(DiscreteAutoregressive):
    """A GPT over the 64 pixels of a digit (raster order), each pixel one of 17 levels.

    ``log_likelihood(images (N, 1, 8, 8)) -> (N,)`` is the exact discrete log-probability in
    nats of the integer image, comparable with a VAE whose decoder is a distribution over
    the same 17 levels. The uniform distribution scores ``64 log 17 = 181.3`` nats.
    """

    @capture_config
    def __init__(self, n_layer: int = 3, n_head: int = 4, n_embd: int = 96, dropout: float = 0.1):
        super().__init__(NUM_PIXELS, PIXEL_LEVELS, n_layer=n_layer, n_head=n_head, n_embd=n_embd, dropout=dropout)

    @torch.no_grad()
    def log_likelihood(self, images: torch.Tensor) -> torch.Tensor:
        """Exact ``log p(x)`` in nats of each image ``(N, 1, 8, 8)`` -> ``(N,)``."""
        return self.log_prob(digits_to_tokens(images))

    def sample_images(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0):
        """``n`` digits ``(n, 1, 8, 8)`` in ``[0, 1]`` (64 network evaluations)."""
        return tokens_to_digits(self.sample(n, generator, temperature))


class PixelGPTPipeline:
    """The ``digits-pixel-gpt`` checkpoint: ``.sample(n, seed)`` and ``.log_likelihood(x)``."""

    network_evaluations = NUM_PIXELS  # per sample (batched across samples)
    checkpoint_parts = {"model": PixelGPT}  # how aigc_course.pretrained builds it

    def __init__(self, model: PixelGPT, config: dict | None = None):
        self.model = model.eval()
        self.config = dict(config or {})

    @property
    def device(self) -> torch.device:
        return self.model.device

    @keyword_options("seed", "temperature")
    def sample(self, n: int, *, seed: int | None = None, temperature: float = 1.0) -> torch.Tensor:
        """``n`` digits ``(n, 1, 8, 8)`` in ``[0, 1]`` on the CPU; an int ``seed`` repeats them exactly,
        ``None`` draws from torch's global RNG (:func:`~aigc_course.runtime.make_generator`)."""
        return self.model.sample_images(_check_n(n), make_generator(seed), temperature)

    @torch.no_grad()
    def log_likelihood(self, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Exact log-likelihood in nats ``(N,)`` of digits ``(N, 1, 8, 8)`` on the 17-level grid."""
        tokens = digits_to_tokens(images)
        return torch.cat([self.model.log_prob(tokens[i : i + batch_size]).cpu()
                          for i in range(0, len(tokens), batch_size)])


# --------------------------------------------------------------------------- 2-D points


class PointGPT(DiscreteAutoregressive):
    """A 2-D density as two tokens: ``p(x, y) = P(bin_x) P(bin_y | bin_x) / (w * w)``.

    Each coordinate is cut into ``bins`` equal bins of width ``w = 2 lim / bins`` over
    ``[-lim, lim)``; inside a bin the density is uniform (dequantisation), which turns the
    exact discrete probability into an exact continuous density. Outside the square it is 0.
    """

    @capture_config
    def __init__(self, bins: int = 200, lim: float = 2.5, n_layer: int = 2, n_head: int = 4, n_embd: int = 64,
                 dropout: float = 0.0):
        if not lim > 0:
            raise ValueError(f"lim must be positive, got {lim}")
        super().__init__(2, bins, n_layer=n_layer, n_head=n_head, n_embd=n_embd, dropout=dropout)
        self.bins, self.lim = bins, float(lim)
        self.width = 2 * self.lim / bins

    def _check_points(self, points: torch.Tensor) -> torch.Tensor:
        if not isinstance(points, torch.Tensor) or points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
            got = tuple(points.shape) if isinstance(points, torch.Tensor) else type(points).__name__
            raise ValueError(f"points must be a tensor of shape (N, 2) with N >= 1, got {got}")
        return points.detach().float().cpu()

    def inside(self, points: torch.Tensor) -> torch.Tensor:
        """Whether each point ``(N, 2)`` lies in the modelled square ``[-lim, lim)^2``: ``(N,)`` bool."""
        p = self._check_points(points)
        return ((p >= -self.lim) & (p < self.lim)).all(dim=1)

    def quantise(self, points: torch.Tensor) -> torch.Tensor:
        """Points ``(N, 2)`` inside ``[-lim, lim)^2`` -> bin tokens ``(N, 2)``."""
        p = self._check_points(points)
        if not self.inside(p).all():
            raise ValueError(f"points must lie in [-{self.lim}, {self.lim})^2 to be quantised")
        return ((p + self.lim) / self.width).floor().long().clamp(0, self.bins - 1)

    @torch.no_grad()
    def log_density(self, points: torch.Tensor) -> torch.Tensor:
        """Exact ``log p(x)`` in nats of points ``(N, 2)`` -> ``(N,)``; ``-inf`` outside the square."""
        p = self._check_points(points)
        inside = self.inside(p)
        out = torch.full((len(p),), -math.inf)
        if inside.any():
            logp = self.log_prob(self.quantise(p[inside])).cpu()
            out[inside] = logp - 2 * math.log(self.width)
        return out

    def loss_points(self, points: torch.Tensor) -> torch.Tensor:
        """Mean negative log-density of a batch of points in nats (a scalar, for training)."""
        return -self.log_prob(self.quantise(points)).mean() + 2 * math.log(self.width)

    def sample_points(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0):
        """``n`` points ``(n, 2)``: bins from the model (2 evaluations), uniform inside each bin."""
        bins = self.sample(n, generator, temperature)
        jitter = torch.rand(n, 2, generator=generator)
        return -self.lim + (bins.float() + jitter) * self.width
