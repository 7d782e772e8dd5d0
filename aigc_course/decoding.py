"""The autoregressive decoding loop, one for every model of the course (book 3.1.3, eq. 3.1.3).

A model gives ``P(y_t | y_<t, x)``; decoding turns it into a sequence, one token at a time::

    logits, state = model.decode_step(prompt, state)       # prefill: the whole prompt, once
    repeat max_new_tokens times:
        logits = constraint(logits, tokens)                 # per-step constraints (grammar, allowed tokens)
        token = sampler(logits, generator)                  # greedy, temperature, top-k, top-p, ...
        tokens = [tokens, token]; rows that emitted the stop token are finished
        logits, state = model.decode_step(token, state)     # one new token: the state remembers the rest

Like diffusers' "a model predicts, a scheduler steps", the two jobs are kept apart. The
**model** only answers "logits for these new tokens, given my state" (:class:`Decoder`): its
state is a KV cache per layer for :class:`~aigc_course.gpt.GPT` and the recurrent state for
:class:`~aigc_course.rnn.CharLSTM`. The **loop** owns sampling (the pluggable samplers of
:mod:`aigc_course.sampling`), constraints, stopping and the bookkeeping: evaluation mode,
no gradients, the tokens so far, and the check for broken logits.

Broken logits. A NaN logit cannot be sampled, and greedy decoding would silently pick its
position. Scanning every step's logits on the host would stall the device once per token, so
the loop keeps each step's largest logit per row *on the device* and looks at them once, when
the generation ends: if one is NaN, ``+inf`` or -- every token forbidden -- ``-inf``, it raises
:class:`NonFiniteLogitsError`. (``torch.multinomial`` refuses such rows itself, mid-way; that
error is turned into the same one.)

Other models plug in the same way: :class:`~aigc_course.llama.Llama` shares GPT's decoding
steps (:class:`~aigc_course.gpt.CausalLM`), its caches holding only the key/value heads of
grouped-query attention; an encoder-decoder builds its state from the encoder output and passes
it as ``state=`` (:class:`aigc_course.seq2seq.TransformerDecoder`); :func:`beam_search` keeps
``k`` rows per input and follows the surviving beams with the model's ``reorder_state``
(see :class:`Decoder`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
from torch import nn

from aigc_course.sampling import Greedy
from aigc_course.tokenizers import is_integer_dtype

Sampler = Callable[[torch.Tensor, "torch.Generator | None"], torch.Tensor]  # (logits (B, V), gen) -> ids (B,)
Constraint = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits (B, V), tokens (B, T)) -> logits


class NonFiniteLogitsError(FloatingPointError, ValueError):
    """The model produced NaN or infinite logits (or a row with every token forbidden) while decoding."""


@runtime_checkable
class Decoder(Protocol):
    """What the loop needs from a model: logits for new tokens, given a state it keeps.

    * ``decoding_state(batch_size, use_cache=True)`` -- the state before any token (for
      example an empty KV cache per layer);
    * ``decode_step(tokens (B, t), state) -> (logits (B, V), state)`` -- read ``t >= 1`` new
      tokens after those already in ``state``; return the logits of the token that follows
      them and the updated state (which may be the same object, updated in place).

    Optional, for beam search: ``reorder_state(state, index (B',)) -> state`` keeps the rows
    ``index`` of the state (in that order, repeats allowed).
    """

    def decoding_state(self, batch_size: int, use_cache: bool = True) -> Any: ...

    def decode_step(self, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]: ...


# --------------------------------------------------------------------------- constraints


def limit_vocabulary(size: int) -> Constraint:
    """Allow only ids ``< size``: drop the logits of special tokens placed after the
    vocabulary (the pixel GPT's begin-of-sequence token, which is never a pixel value)."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")

    def keep_first(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return logits[..., :size]

    return keep_first


def allow_only(token_ids: Sequence[int]) -> Constraint:
    """Allow only the tokens ``token_ids`` (every other logit becomes ``-inf``), e.g. digits."""
    ids = list(token_ids)
    if not ids or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in ids):
        raise ValueError(f"token_ids must be a non-empty sequence of non-negative ints, got {token_ids!r}")
    masks: dict[tuple[torch.device, int], torch.Tensor] = {}

    def mask_others(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        key = (logits.device, logits.shape[-1])
        if key not in masks:
            if max(ids) >= logits.shape[-1]:
                raise ValueError(f"token_ids go up to {max(ids)}, beyond the {logits.shape[-1]} logits")
            forbidden = torch.ones(logits.shape[-1], dtype=torch.bool, device=logits.device)
            forbidden[ids] = False
            masks[key] = forbidden
        return logits.masked_fill(masks[key], float("-inf"))

    return mask_others


# --------------------------------------------------------------------------- the loop


def _check_int(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


def check_prompt(prompt: torch.Tensor, name: str = "prompt") -> torch.Tensor:
    """``prompt`` must be a ``(B, T)`` tensor of integer token ids with ``B, T >= 1``; returns it as ``torch.long``."""
    if not isinstance(prompt, torch.Tensor):
        raise ValueError(f"{name} must be a (B, T) tensor of token ids, got {type(prompt).__name__}")
    if not is_integer_dtype(prompt.dtype):
        raise ValueError(f"{name} must hold integer token ids, got dtype {prompt.dtype}")
    if prompt.dim() != 2 or prompt.shape[0] < 1 or prompt.shape[1] < 1:
        raise ValueError(f"{name} must have shape (B, T) with B, T >= 1, got {tuple(prompt.shape)}")
    return prompt.long()


def _raise_if_broken(row_maxima: list[torch.Tensor], cause: Exception | None = None) -> None:
    """Raise if any step's largest logit ``(B,)`` was not finite: NaN (``amax`` propagates it),
    ``+inf``, or ``-inf`` (every token forbidden). One host sync for the whole generation."""
    broken = ~torch.isfinite(torch.stack(row_maxima))  # (steps, B)
    if broken.any():
        steps, rows = broken.nonzero().unbind(dim=1)
        raise NonFiniteLogitsError(
            f"decoding stopped: the model's logits for rows {sorted(set(rows.tolist()))[:8]} were NaN or "
            f"infinite from step {int(steps.min())} on, or a constraint forbade every token; no token can be "
            "picked from them (check the model's weights and inputs)"
        ) from cause



def _check_options(model, prompt, max_new_tokens, constraints, stop_token) -> tuple[torch.Tensor, tuple]:
    """The checks :func:`stream` and :func:`beam_search` share; returns the prompt as ``(B, T)``
    long ids and the constraints as a tuple."""
    if not isinstance(model, Decoder):
        raise ValueError(f"model must provide decoding_state and decode_step, got {type(model).__name__}")
    prompt = check_prompt(prompt)
    _check_int(max_new_tokens, "max_new_tokens", 0)
    constraints = tuple(constraints)
    if not all(callable(c) for c in constraints):
        raise ValueError("constraints must be callables (logits, tokens) -> logits")
    if stop_token is not None:
        _check_int(stop_token, "stop_token", 0)
    return prompt, constraints

def stream(
    model: Decoder,
    prompt: torch.Tensor,
    max_new_tokens: int,
    sampler: Sampler | None = None,
    *,
    state: Any = None,
    constraints: Sequence[Constraint] = (),
    stop_token: int | None = None,
    generator: torch.Generator | None = None,
) -> Iterator[torch.Tensor]:
    """Yield the next token of every row, ``(B,)`` on ``prompt``'s device, one step at a time.

    ``prompt (B, T)`` holds token ids; ``state`` defaults to ``model.decoding_state(B)``.
    Each step applies ``constraints`` in order, then ``sampler(logits, generator)``
    (``None``: :class:`~aigc_course.sampling.Greedy`). With a ``stop_token``, a row that has
    emitted it keeps emitting it, and the generation ends early once every row has (one host
    sync per step to know). The arguments are checked here; the broken-logits check runs
    when the last token has been taken from the iterator. The model is in evaluation mode,
    without gradients, while the iterator runs.
    """
    prompt, constraints = _check_options(model, prompt, max_new_tokens, constraints, stop_token)
    sampler = Greedy() if sampler is None else sampler
    if not callable(sampler):
        raise ValueError(f"sampler must be a callable (logits, generator) -> ids, got {sampler!r}")
    if state is None:
        state = model.decoding_state(len(prompt))
    return _steps(model, prompt, max_new_tokens, sampler, state, constraints, stop_token, generator)


@torch.no_grad()  # on a generator function torch applies it around each step, not between them
def _steps(model, prompt, max_new_tokens, sampler, state, constraints, stop_token, generator):
    if max_new_tokens == 0:
        return
    was_training = isinstance(model, nn.Module) and model.training
    if isinstance(model, nn.Module):
        model.eval()
    try:
        tokens = prompt  # every token so far, kept for the constraints
        finished = torch.zeros(len(prompt), dtype=torch.bool, device=prompt.device) if stop_token is not None else None
        logits, state = model.decode_step(prompt, state)
        row_maxima = []  # each step's largest logit per row, checked once at the end
        for step in range(max_new_tokens):
            for constrain in constraints:
                logits = constrain(logits, tokens)
            row_maxima.append(logits.amax(dim=-1))
            try:
                token = sampler(logits, generator).to(prompt.device)
            except RuntimeError as err:  # torch.multinomial refuses NaN / inf rows
                _raise_if_broken(row_maxima, err)
                raise
            if finished is not None:
                token = torch.where(finished, torch.full_like(token, stop_token), token)
                finished |= token == stop_token
            if constraints:
                tokens = torch.cat([tokens, token[:, None]], dim=1)
            yield token
            if step == max_new_tokens - 1 or (finished is not None and bool(finished.all())):
                break
            logits, state = model.decode_step(token[:, None], state)
        _raise_if_broken(row_maxima)
    finally:
        if was_training:
            model.train()


def generate(model: Decoder, prompt: torch.Tensor, max_new_tokens: int, sampler: Sampler | None = None,
             **options) -> torch.Tensor:
    """``prompt (B, T)`` followed by up to ``max_new_tokens`` decoded tokens: ``(B, T + n)``.

    Collects :func:`stream`, whose keyword ``options`` it takes (``state``, ``constraints``,
    ``stop_token``, ``generator``). ``n = max_new_tokens`` unless every row emitted
    ``stop_token`` earlier. Broken logits raise :class:`NonFiniteLogitsError`.
    """
    new_tokens = list(stream(model, prompt, max_new_tokens, sampler, **options))
    prompt = check_prompt(prompt)
    return torch.cat([prompt, torch.stack(new_tokens, dim=1)], dim=1) if new_tokens else prompt


# --------------------------------------------------------------------------- beam search


class BeamSearchOutput(NamedTuple):
    """The best hypothesis of each row: ``sequences (B, T + n)`` (prompt included; rows that
    stopped early are filled with the stop token) and ``scores (B,)``, the sum of the log-probabilities
    of the generated tokens up to and including the stop token."""

    sequences: torch.Tensor
    scores: torch.Tensor


def beam_step(scores: torch.Tensor, log_probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of beam search: the ``k`` best one-token extensions of ``k`` kept prefixes.

    ``scores (B, k)``: each kept prefix's total log-probability; ``log_probs (B, k, V)``: the
    next token's log-probabilities after each prefix. Every extension scores
    ``scores[b, i] + log_probs[b, i, v]``; the ``k`` best of the ``k * V`` per row are returned,
    best first, as ``(new_scores (B, k), beam (B, k), token (B, k))``: extension ``j`` appends
    ``token[b, j]`` to prefix ``beam[b, j]``.
    """
    batch, k, vocab = log_probs.shape
    new_scores, flat = (scores[..., None] + log_probs).reshape(batch, k * vocab).topk(k, dim=1)
    return new_scores, flat // vocab, flat % vocab


def beam_search(
    model: Decoder,
    prompt: torch.Tensor,
    max_new_tokens: int,
    num_beams: int,
    *,
    state: Any = None,
    constraints: Sequence[Constraint] = (),
    stop_token: int | None = None,
) -> BeamSearchOutput:
    """The ``num_beams`` most probable continuations of each row, kept step by step (beam search).

    Greedy decoding keeps one hypothesis; beam search keeps the ``k = num_beams`` prefixes with
    the highest total log-probability ``sum_t log P(y_t | y_<t, x)`` (eq. 3.1.3 in log form).
    Each step scores all ``k x V`` one-token extensions of the kept prefixes and keeps the
    best ``k`` of them, so a prefix that starts less likely can win later. A hypothesis that
    emitted ``stop_token`` is finished: its only extension is the stop token again, at no cost,
    so it competes with its final score. With ``k = 1`` this is greedy decoding; with
    ``k >= V ** (max_new_tokens - 1)`` every prefix is kept and the result is the exact most
    probable sequence of ``max_new_tokens`` tokens.

    ``state`` is the model's state for the ``B`` rows (default ``model.decoding_state(B)``); it is
    expanded to ``B * k`` rows and follows the surviving beams with ``model.reorder_state``.
    The loop runs in evaluation mode without gradients; ends early once every beam has stopped.
    """
    prompt, constraints = _check_options(model, prompt, max_new_tokens, constraints, stop_token)
    k = _check_int(num_beams, "num_beams", 1)
    if not callable(getattr(model, "reorder_state", None)):
        raise ValueError(f"beam search needs model.reorder_state(state, index); {type(model).__name__} has none")
    batch = len(prompt)
    if state is None:
        state = model.decoding_state(batch)
    if max_new_tokens == 0:
        return BeamSearchOutput(prompt, torch.zeros(batch, device=prompt.device))
    with torch.no_grad(), _eval_mode(model):
        return _beam_steps(model, prompt, max_new_tokens, k, state, constraints, stop_token)


def _beam_steps(model, prompt, max_new_tokens, k, state, constraints, stop_token) -> BeamSearchOutput:
    batch, device = len(prompt), prompt.device
    expand = torch.arange(batch, device=device).repeat_interleave(k)  # row b -> rows b*k .. b*k+k-1
    state = model.reorder_state(state, expand)
    tokens = prompt.index_select(0, expand)  # (B*k, T)
    scores = torch.full((batch, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # the k copies are one hypothesis until they differ
    finished = torch.zeros(batch * k, dtype=torch.bool, device=device)
    logits, state = model.decode_step(tokens, state)
    row_maxima = []
    offsets = (torch.arange(batch, device=device) * k)[:, None]  # (B, 1)
    for step in range(max_new_tokens):
        for constrain in constraints:
            logits = constrain(logits, tokens)
        row_maxima.append(logits.amax(dim=-1))
        logp = torch.log_softmax(logits.float(), dim=-1).to(device)  # (B*k, V)
        vocab = logp.shape[-1]
        if stop_token is not None:
            done = torch.full_like(logp, float("-inf"))
            done[:, stop_token] = 0.0  # a finished hypothesis only repeats the stop token, for free
            logp = torch.where(finished[:, None], done, logp)
        scores, beam, token = beam_step(scores, logp.view(batch, k, vocab))  # (B, k) each, best first
        source = (offsets + beam).reshape(-1)  # which kept row each new beam extends
        token = token.reshape(-1)
        tokens = torch.cat([tokens.index_select(0, source), token[:, None]], dim=1)
        finished = finished.index_select(0, source)
        if stop_token is not None:
            finished |= token == stop_token
        state = model.reorder_state(state, source)
        if step == max_new_tokens - 1 or (stop_token is not None and bool(finished.all())):
            break
        logits, state = model.decode_step(token[:, None], state)
    _raise_if_broken(row_maxima)
    return BeamSearchOutput(tokens.view(batch, k, -1)[:, 0], scores[:, 0])


@contextmanager
def _eval_mode(model):
    was_training = isinstance(model, nn.Module) and model.training
    if isinstance(model, nn.Module):
        model.eval()
    try:
        yield
    finally:
        if was_training:
            model.train()
