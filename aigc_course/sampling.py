"""Decoding: turn next-token logits into a token (book 3.1.3, "Top-K/Top-P sampling").

An autoregressive model gives ``P(y_t | y_<t, x)`` (book eq. 3.1.3); a decoder picks
``y_t`` from it. Greedy takes the arg-max; sampling draws from the distribution after
reshaping it: a *temperature* ``tau`` divides the logits (``tau < 1`` sharpens, ``> 1``
flattens), *top-k* keeps the ``k`` largest logits, *top-p* (nucleus) keeps the smallest
set of tokens whose probability reaches ``p``. Filters return logits with the removed
entries set to ``-inf``, so they compose and a softmax gives them probability 0.
"""

from __future__ import annotations

import torch


def _check_logits(logits: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise ValueError("logits must be a floating-point torch.Tensor of shape (..., V)")
    if logits.dim() < 1 or logits.shape[-1] < 1:
        raise ValueError(f"logits must have shape (..., V) with V >= 1, got {tuple(logits.shape)}")


def greedy(logits: torch.Tensor) -> torch.Tensor:
    """Arg-max token ids ``(...,)`` from logits ``(..., V)``."""
    _check_logits(logits)
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
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"top_k k must be an int >= 1, got {k!r}")
    k = min(k, logits.shape[-1])
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
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 < p <= 1.0:
        raise ValueError(f"top_p p must be in (0, 1], got {p!r}")
    if p == 1.0:
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
    ``torch.multinomial`` (seeded by ``generator`` for repeatable samples).
    """
    _check_logits(logits)
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return greedy(logits)
    logits = apply_temperature(logits, temperature)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    probs = torch.softmax(logits.float(), dim=-1)
    flat = probs.reshape(-1, probs.shape[-1])
    if generator is not None and generator.device != flat.device:
        flat = flat.to(generator.device)  # draw on the generator's device, then move back
    ids = torch.multinomial(flat, 1, generator=generator).to(logits.device)
    return ids.view(probs.shape[:-1])
