"""Pretraining and supervised fine-tuning: one next-token loss, two kinds of data.

Pretraining minimises the cross-entropy of every next token of plain text (book eq. 3.1.3).
Supervised fine-tuning (SFT, the first stage of InstructGPT, Ouyang et al. 2022) uses the
same loss on chat-formatted (instruction, response) pairs, but *masked to the response*:

$$\\mathcal L_{SFT} = -\\frac{1}{\\sum_t m_t} \\sum_t m_t \\log \\pi_\\theta(y_t \\mid y_{<t}),$$

with $m_t = 1$ only for the response tokens and its ``<|end|>``. The model is not asked
to predict the user's instruction, only how to answer it.
"""

from __future__ import annotations

import random
import warnings

import torch
import torch.nn.functional as F

from aigc_course import training
from aigc_course.alignment.chat import encode_examples
from aigc_course.gpt import GPT
from aigc_course.training import History, make_adamw, run_steps, training_mode, warmup_cosine


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``log p(target)`` at every position: ``logits (B, T, V)``, ``targets (B, T)`` -> ``(B, T)``.

    Targets of ``-1`` (masked positions) read token 0; callers mask them out.
    """
    logp = torch.log_softmax(logits.float(), dim=-1)
    return logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)


def response_only_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the positions whose target is not ``-1``.

    ``logits (B, T, V)``, ``targets (B, T)`` with ``-1`` at prompt and padding positions
    (from :func:`aigc_course.alignment.chat.encode_pairs`). Returns a scalar in nats.
    """
    if logits.dim() != 3 or targets.shape != logits.shape[:2]:
        raise ValueError(f"logits must be (B, T, V) and targets (B, T); got {tuple(logits.shape)} "
                         f"and {tuple(targets.shape)}")
    mask = targets != -1
    if not mask.any():
        raise ValueError("targets mask every position: there is no response token to learn from")
    return -(token_logprobs(logits, targets) * mask).sum() / mask.sum()


def lm_windows(ids: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator):
    """Random windows of a token stream for pretraining: ``x (B, T)``, next tokens ``y (B, T)``."""
    if ids.dim() != 1 or len(ids) <= block_size + 1:
        raise ValueError(f"ids must be a 1-D stream longer than block_size + 1 = {block_size + 1}")
    ix = torch.randint(len(ids) - block_size - 1, (batch_size,), generator=generator)
    x = torch.stack([ids[i : i + block_size] for i in ix])
    y = torch.stack([ids[i + 1 : i + 1 + block_size] for i in ix])
    return x, y


# The recipe every alignment trainer shares: AdamW with decay on the matrices only
# (:func:`~aigc_course.training.make_adamw`), gradients clipped to norm GRAD_CLIP, and a linear
# warm-up then a cosine down to LR_FLOOR times the peak (:func:`~aigc_course.training.warmup_cosine`).
GRAD_CLIP = 1.0
LR_FLOOR = 0.1
make_optimizer = make_adamw  # the old name, kept for existing imports


def optimizer_step(model: torch.nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor,
                   lr: float | None = None) -> None:
    """Deprecated: use :func:`aigc_course.training.optimizer_step` with ``grad_clip=1.0``."""
    warnings.warn("aigc_course.alignment.sft.optimizer_step is deprecated; use aigc_course.training."
                  "optimizer_step(opt, loss, parameters=model.parameters(), grad_clip=1.0, lr=lr)",
                  DeprecationWarning, stacklevel=2)
    training.optimizer_step(opt, loss, parameters=model.parameters(), grad_clip=GRAD_CLIP, lr=lr)


def pretrain(model: GPT, ids: torch.Tensor, steps: int, batch_size: int = 32, lr: float = 3e-3,
             warmup: int = 50, seed: int = 0, progress: bool = True) -> History:
    """Next-token pretraining on a token stream ``ids (N,)`` with warm-up + cosine decay."""
    device = model.lm_head.weight.device
    gen = torch.Generator().manual_seed(seed)
    opt = make_adamw(model, lr)

    def step_fn(step: int) -> float:
        x, y = lm_windows(ids, batch_size, model.config.block_size, gen)
        _, loss = model(x.to(device), y.to(device))
        return training.optimizer_step(opt, loss, parameters=model.parameters(), grad_clip=GRAD_CLIP,
                                       lr=warmup_cosine(step, steps, warmup, floor=LR_FLOOR, peak=lr))

    with training_mode(model):
        return run_steps(step_fn, steps, desc="pretrain", progress=progress)


def sft(model: GPT, examples: list, tokenizer, steps: int, batch_size: int = 32, lr: float = 1e-3,
        warmup: int = 20, seed: int = 0, progress: bool = True) -> History:
    """Supervised fine-tuning on ``examples`` with the response-only loss."""
    if not examples:
        raise ValueError("examples is empty: supervised fine-tuning needs at least one example")
    block = model.config.block_size
    encode_examples(examples, tokenizer, block)  # fail now on any example that does not fit
    device = model.lm_head.weight.device
    rng = random.Random(seed)
    opt = make_adamw(model, lr)
    # Uniformly random batches mix the task families. Batching by length would save padding,
    # but similar lengths mean similar tasks, and those one-task batches learned far slower
    # (12.8% against 44% exact match after 800 steps in one measured run).

    def step_fn(step: int) -> float:
        batch = rng.sample(examples, min(batch_size, len(examples)))
        x, y, _ = encode_examples(batch, tokenizer, block)
        logits, _ = model(x.to(device))
        loss = response_only_loss(logits, y.to(device))
        return training.optimizer_step(opt, loss, parameters=model.parameters(), grad_clip=GRAD_CLIP,
                                       lr=warmup_cosine(step, steps, warmup, floor=LR_FLOOR, peak=lr))

    with training_mode(model):
        return run_steps(step_fn, steps, desc="sft", progress=progress)


def masked_cross_entropy_reference(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The same loss via ``F.cross_entropy(ignore_index=-1)`` (used to cross-check)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=-1)
