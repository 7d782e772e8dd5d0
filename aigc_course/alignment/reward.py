"""Reward modelling: a GPT with a scalar head, trained on pairwise preferences.

Given an instruction $x$ and two responses where $y_w$ is preferred over $y_l$, the
Bradley-Terry model (Bradley & Terry 1952) says
$P(y_w \\succ y_l \\mid x) = \\sigma(r(x, y_w) - r(x, y_l))$. The reward model $r_\\phi$
maximises the likelihood of the observed preferences (Christiano et al. 2017; Ouyang et al.
2022, eq. 1):

$$\\mathcal L_{RM} = -\\mathbb E \\log \\sigma\\big(r_\\phi(x, y_w) - r_\\phi(x, y_l)\\big).$$

Where the score is read is the model's ``pool``: ``"last"`` reads one score at the last token
(``<|end|>``), where the causal model has seen the whole conversation; ``"mean"`` averages a
score read at every response token and the ``<|end|>``; ``"logprob"`` averages, for each
response token, a score read where that token was predicted plus the backbone's own
log-probability of it, times a learned weight. An SFT backbone that *generates* an answer
correctly gives a wrong digit a low log-probability, so this pool starts with the judgement
that one score at ``<|end|>`` must learn from the pairs alone.
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F
from torch import nn

from aigc_course.alignment.chat import END, format_prompt
from aigc_course.alignment.sft import GRAD_CLIP, LR_FLOOR, token_logprobs
from aigc_course.gpt import GPT, GPTConfig
from aigc_course.training import (
    History,
    make_adamw,
    optimizer_step,
    run_steps,
    training_mode,
    warmup_cosine,
)


def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """``-mean log sigmoid(r_chosen - r_rejected)`` for rewards of shape ``(B,)``."""
    if r_chosen.shape != r_rejected.shape:
        raise ValueError(f"r_chosen {tuple(r_chosen.shape)} and r_rejected {tuple(r_rejected.shape)} must match")
    if r_chosen.numel() == 0:
        raise ValueError("need at least one preference pair")
    return -F.logsigmoid(r_chosen - r_rejected).mean()


POOLS = ("last", "mean", "logprob")


class RewardModel(nn.Module):
    """A GPT backbone and a linear head: ``(ids (B, T), lengths (B,), starts (B,)) -> rewards (B,)``.

    ``pool`` is ``"last"`` (the score at token ``lengths - 1``), ``"mean"`` (the mean score
    over the response tokens ``starts .. lengths - 1``) or ``"logprob"`` (that mean, each
    token's score read at the position predicting it and plus ``logprob_weight`` times the
    token's log-probability under the backbone); see the module docstring.
    """

    def __init__(self, config: GPTConfig, pool: str = "last"):
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
        self.pool = pool
        self.backbone = GPT(config)
        self.head = nn.Linear(config.n_embd, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        if pool == "logprob":
            self.logprob_weight = nn.Parameter(torch.ones(()))

    @property
    def config(self) -> GPTConfig:
        """The backbone's :class:`GPTConfig`; with :attr:`pool` it rebuilds the model."""
        return self.backbone.config

    @classmethod
    def from_config(cls, config: dict) -> RewardModel:
        """A fresh model from :class:`GPTConfig` fields plus ``"pool"`` (a checkpoint's ``"model"``)."""
        config = dict(config)
        pool = config.pop("pool", "last")
        return cls(GPTConfig(**config), pool)

    @classmethod
    def from_gpt(cls, gpt: GPT, pool: str = "last") -> RewardModel:
        """Start from a (fine-tuned) language model: it already understands the tasks."""
        model = cls(gpt.config, pool)
        model.backbone.load_state_dict(gpt.state_dict())
        return model.to(gpt.lm_head.weight.device)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, starts: torch.Tensor | None = None) -> torch.Tensor:
        """Rewards ``(B,)`` of right-padded sequences ``ids (B, T)``: at the last real token
        ``lengths - 1`` (``pool="last"``), or averaged over the response tokens
        ``starts .. lengths - 1`` (``"mean"``, ``"logprob"``; then ``starts (B,)`` is required)."""
        if lengths.shape != ids.shape[:1]:
            raise ValueError(f"lengths must be (B,) = {tuple(ids.shape[:1])}, got {tuple(lengths.shape)}")
        h = self.backbone._body(ids)  # (B, T, C), after the final LayerNorm
        if self.pool == "last":
            last = h[torch.arange(len(ids), device=ids.device), lengths - 1]
            return self.head(last).squeeze(-1)
        if starts is None or starts.shape != lengths.shape or bool(((starts < 1) | (starts >= lengths)).any()):
            raise ValueError(f"pool={self.pool!r} needs starts (B,): where each response begins, before its length")
        if self.pool == "logprob":  # position t scores token t + 1, the one it predicts
            logp = token_logprobs(self.backbone.lm_head(h[:, :-1]), ids[:, 1:])  # (B, T - 1)
            per_token = self.head(h[:, :-1]).squeeze(-1) + self.logprob_weight * logp
            starts, lengths = starts - 1, lengths - 1
        else:
            per_token = self.head(h).squeeze(-1)  # (B, T)
        pos = torch.arange(per_token.shape[1], device=ids.device)[None]
        mask = ((pos >= starts[:, None]) & (pos < lengths[:, None])).to(per_token.dtype)
        return (per_token * mask).sum(1) / mask.sum(1)

    def score(self, prompts: list[str], responses: list[str], tokenizer) -> torch.Tensor:
        """Rewards ``(B,)`` of (instruction, response) pairs."""
        ids, lengths, starts = encode_full(prompts, responses, tokenizer, self.config.block_size)
        device = self.head.weight.device
        return self(ids.to(device), lengths.to(device), starts.to(device))


def encode_full(prompts: list[str], responses: list[str], tokenizer, block_size: int):
    """Whole conversations (with ``<|end|>``) as right-padded ``ids (B, T)``, their ``lengths (B,)``
    and ``starts (B,)``, the position of each response's first token."""
    if len(prompts) != len(responses):
        raise ValueError(f"got {len(prompts)} prompts but {len(responses)} responses")
    if not prompts:
        raise ValueError("the data set is empty: pass at least one (prompt, response) pair")
    heads = [tokenizer.encode(format_prompt(p)) for p in prompts]  # the response starts after its prompt
    seqs = [h + tokenizer.encode(r + END) for h, r in zip(heads, responses, strict=True)]
    longest = max(len(s) for s in seqs)
    if longest > block_size:
        raise ValueError(f"a conversation of {longest} tokens is longer than the context block_size={block_size}")
    ids = torch.zeros(len(seqs), longest, dtype=torch.long)
    for b, s in enumerate(seqs):
        ids[b, : len(s)] = torch.tensor(s)
    return ids, torch.tensor([len(s) for s in seqs]), torch.tensor([len(h) for h in heads])


def pairwise_accuracy(model: RewardModel, pairs, tokenizer, batch_size: int = 128) -> tuple[float, torch.Tensor,
                                                                                           torch.Tensor]:
    """Share of ``(example, chosen, rejected)`` pairs scored the right way round (ties count
    half), and the scores ``(N,)`` of the chosen and rejected responses."""
    if not pairs:
        raise ValueError("pairs must not be empty")
    chosen, rejected = [], []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(pairs), batch_size):
            group = pairs[i : i + batch_size]
            prompts = [e.prompt for e, _, _ in group]
            chosen.append(model.score(prompts, [c for _, c, _ in group], tokenizer).cpu())
            rejected.append(model.score(prompts, [r for _, _, r in group], tokenizer).cpu())
    rc, rr = torch.cat(chosen), torch.cat(rejected)
    return float(((rc > rr).float() + 0.5 * (rc == rr).float()).mean()), rc, rr  # a tie is a coin flip


def train_reward_model(model: RewardModel, pairs, tokenizer, steps: int, batch_size: int = 32, lr: float = 5e-4,
                       warmup: int = 20, seed: int = 0, progress: bool = True) -> History:
    """Fit ``model`` to ``(example, chosen, rejected)`` pairs with the Bradley-Terry loss."""
    if not pairs:
        raise ValueError("pairs is empty: a reward model needs at least one preference pair")
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)  # a shuffled walk: every pair once before any repeats
    size = min(batch_size, len(pairs))
    opt = make_adamw(model, lr)

    def step_fn(step: int):
        batch = [pairs[order[(step * size + i) % len(pairs)]] for i in range(size)]
        prompts = [e.prompt for e, _, _ in batch]
        r = model.score(prompts + prompts, [c for _, c, _ in batch] + [r for _, _, r in batch], tokenizer)
        rc, rr = r[: len(batch)], r[len(batch) :]
        loss = bradley_terry_loss(rc, rr)
        value = optimizer_step(opt, loss, parameters=model.parameters(), grad_clip=GRAD_CLIP,
                               lr=warmup_cosine(step, steps, warmup, floor=LR_FLOOR, peak=lr))
        return {"loss": value, "accuracy": (rc > rr).float().mean()}

    with training_mode(model):
        return run_steps(step_fn, steps, desc="reward model", progress=progress)
