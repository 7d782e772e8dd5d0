"""Decoding: turn next-token logits into a token (book 3.1.3, "Top-K/Top-P sampling").

An autoregressive model gives ``P(y_t | y_<t, x)`` (book eq. 3.1.3); a decoder picks
``y_t`` from it. Greedy takes the arg-max; sampling draws from the distribution after
reshaping it: a *temperature* ``tau`` divides the logits (``tau < 1`` sharpens, ``> 1``
flattens), *top-k* keeps the ``k`` largest logits, *top-p* (nucleus) keeps the smallest
set of tokens whose probability reaches ``p``. Filters return logits with the removed
entries set to ``-inf``, so they compose and a softmax gives them probability 0.

Two layers:

* functions for one call -- :func:`greedy`, :func:`sample` and the filters; they check
  their input, NaN included (one host sync per call);
* *samplers* for the decoding loop of :mod:`aigc_course.decoding` -- :class:`Greedy`,
  :class:`Multinomial` and :class:`InverseCDF`, callables ``sampler(logits (B, V),
  generator) -> ids (B,)`` whose settings are checked once, when they are built. They do
  not scan the logits: the loop checks for NaN once per generation, not once per token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def _check_logits(logits: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise ValueError("logits must be a floating-point torch.Tensor of shape (..., V)")
    if logits.dim() < 1 or logits.shape[-1] < 1:
        raise ValueError(f"logits must have shape (..., V) with V >= 1, got {tuple(logits.shape)}")


def _check_no_nan(logits: torch.Tensor) -> None:
    if torch.isnan(logits).any():  # one host sync, at the boundary of a single call
        raise ValueError("logits contain NaN: no token can be picked from them (is the model's output finite?)")


def _check_temperature(temperature, allow_zero: bool = True) -> float:
    low = ">= 0" if allow_zero else "> 0"
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not math.isfinite(temperature) \
            or temperature < 0 or (temperature == 0 and not allow_zero):
        raise ValueError(f"temperature must be a finite number {low}, got {temperature!r}")
    return float(temperature)


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"top_k k must be an int >= 1, got {k!r}")
    return k


def _check_p(p) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 < p <= 1.0:
        raise ValueError(f"top_p p must be in (0, 1], got {p!r}")
    return float(p)


def greedy(logits: torch.Tensor) -> torch.Tensor:
    """Arg-max token ids ``(...,)`` from logits ``(..., V)``; NaN logits are a ``ValueError``."""
    _check_logits(logits)
    _check_no_nan(logits)
    return logits.argmax(dim=-1)


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``logits / temperature`` for ``temperature > 0`` (softmax(z / tau))."""
    _check_logits(logits)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 here (use greedy for 0), got {temperature}")
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest logits of each row ``(..., V)``; the rest become ``-inf``.

    Entries tied with the ``k``-th largest are all kept (so a tie can keep more than
    ``k``), which makes the result independent of how the sort orders equal values.
    ``k >= V`` keeps everything.
    """
    _check_logits(logits)
    k = min(_check_k(k), logits.shape[-1])
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of tokens whose probability reaches ``p``.

    A token is kept when the probability of the tokens *strictly more likely* than it is
    below ``p``; this is the smallest prefix of the sorted distribution reaching ``p``,
    with tied tokens kept or dropped together. The most likely token is always kept;
    ``p = 1`` keeps every token. ``logits (..., V)`` -> same shape.
    """
    _check_logits(logits)
    if _check_p(p) == 1.0:
        return logits.clone()
    probs = torch.softmax(logits.float(), dim=-1)
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
    mass_before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
    # tied tokens share the mass before the first of them
    first_of_tie = torch.searchsorted((-sorted_probs).contiguous(), (-sorted_probs).contiguous(), right=False)
    mass_above = mass_before.gather(-1, first_of_tie)
    keep_sorted = mass_above < p
    keep_sorted[..., 0] = True
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return logits.masked_fill(~keep, float("-inf"))


# --------------------------------------------------------------------------- samplers


@dataclass(frozen=True)
class Greedy:
    """The arg-max: ``Greedy()(logits (..., V)) -> ids (...,)``; deterministic, no generator used."""

    def __call__(self, logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return logits.argmax(dim=-1)


@dataclass(frozen=True)
class Multinomial:
    """Draw from ``softmax(filter(z / temperature))``: ``(logits (..., V), generator) -> ids (...,)``.

    The logits are divided by ``temperature``, filtered by top-k then top-p, and one token
    is drawn per row with ``torch.multinomial`` on the generator's device (``None``: torch's
    global RNG on the logits' device), then moved back to the logits' device.
    """

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None

    def __post_init__(self):
        _check_temperature(self.temperature, allow_zero=False)
        if self.top_k is not None:
            _check_k(self.top_k)
        if self.top_p is not None:
            _check_p(self.top_p)

    def __call__(self, logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        logits = apply_temperature(logits, self.temperature)
        if self.top_k is not None:
            logits = top_k_filter(logits, self.top_k)
        if self.top_p is not None:
            logits = top_p_filter(logits, self.top_p)
        probs = torch.softmax(logits.float(), dim=-1)
        flat = probs.reshape(-1, probs.shape[-1])
        if generator is not None and generator.device != flat.device:
            flat = flat.to(generator.device)  # draw on the generator's device, then move back
        ids = torch.multinomial(flat, 1, generator=generator).to(logits.device)
        return ids.view(probs.shape[:-1])


@dataclass(frozen=True)
class InverseCDF:
    """Draw from ``softmax(z / temperature)`` by inverse-CDF sampling: ``(logits (B, V), generator) -> ids (B,)``.

    One uniform number per row comes from ``generator`` *on the CPU* and is located in the
    cumulative distribution, so a seed draws the same tokens on any device. ``generator``
    must be a CPU generator (or ``None``: torch's global CPU RNG). The ids are on the CPU.
    """

    temperature: float = 1.0

    def __post_init__(self):
        _check_temperature(self.temperature, allow_zero=False)

    def __call__(self, logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        cdf = torch.softmax(logits.float() / self.temperature, dim=-1).cumsum(dim=-1).cpu()
        u = torch.rand(len(cdf), 1, generator=generator) * cdf[:, -1:]
        return torch.searchsorted(cdf, u).squeeze(1).clamp_max(cdf.shape[-1] - 1)


def make_sampler(temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None) -> Greedy | Multinomial:
    """The sampler for the usual decoding settings: ``temperature == 0`` is :class:`Greedy`,
    anything else :class:`Multinomial`. Every argument is checked, even those greedy ignores."""
    temperature = _check_temperature(temperature)
    if top_k is not None:
        _check_k(top_k)
    if top_p is not None:
        _check_p(top_p)
    return Greedy() if temperature == 0 else Multinomial(temperature, top_k, top_p)


def sample(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pick next tokens ``(B,)`` from logits ``(B, V)``.

    ``temperature == 0`` is greedy decoding. Otherwise the logits are divided by the
    temperature, filtered by top-k then top-p, and one token is drawn per row with
    ``torch.multinomial`` (seeded by ``generator`` for repeatable samples). NaN logits
    are a ``ValueError``.
    """
    _check_logits(logits)
    sampler = make_sampler(temperature, top_k, top_p)
    _check_no_nan(logits)
    return sampler(logits, generator)
