"""Preference optimisation: DPO, and RLHF with a KL penalty to the SFT model.

RLHF (Christiano et al. 2017; Ouyang et al. 2022) maximises the reward model's score while
a penalty keeps the policy $\\pi_\\theta$ close to the SFT model $\\pi_{ref}$:

$$\\max_\\theta\\; \\mathbb E_{y \\sim \\pi_\\theta(\\cdot|x)}\\big[r_\\phi(x, y)\\big]
  - \\beta\\, \\mathrm{KL}\\big(\\pi_\\theta(\\cdot|x)\\,\\|\\,\\pi_{ref}(\\cdot|x)\\big).$$

Here it is optimised with REINFORCE: sample a response, score it with
$r_\\phi - \\beta(\\log\\pi_\\theta(y|x) - \\log\\pi_{ref}(y|x))$, subtract the batch mean as a
baseline and push up the log-probability of above-average responses.

DPO (Rafailov et al. 2023) solves the same objective in closed form: the optimal policy
defines an implicit reward $\\beta\\log\\frac{\\pi_\\theta(y|x)}{\\pi_{ref}(y|x)}$, and the
Bradley-Terry likelihood of the preference pairs becomes a loss on the policy itself:

$$\\mathcal L_{DPO} = -\\mathbb E\\log\\sigma\\Big(\\beta\\log\\frac{\\pi_\\theta(y_w|x)}{\\pi_{ref}(y_w|x)}
  - \\beta\\log\\frac{\\pi_\\theta(y_l|x)}{\\pi_{ref}(y_l|x)}\\Big).$$
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F

from aigc_course.alignment.chat import encode_pairs, generate
from aigc_course.alignment.sft import GRAD_CLIP, LR_FLOOR, token_logprobs
from aigc_course.gpt import GPT
from aigc_course.training import (
    History,
    make_adamw,
    optimizer_step,
    restore_modes_on_error,
    run_steps,
    training_mode,
    warmup_cosine,
)


def sequence_logprobs(model: GPT, ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``log pi(response | prompt)`` per row: the sum of the response tokens' log-probabilities.

    ``ids``, ``targets`` ``(B, T)`` from :func:`~aigc_course.alignment.chat.encode_pairs`
    (``-1`` outside the response). Returns ``(B,)``.
    """
    logits, _ = model(ids)
    return (token_logprobs(logits, targets) * (targets != -1)).sum(-1)


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float = 0.1):
    """The DPO loss from sequence log-probabilities ``(B,)``.

    Returns ``(loss, chosen_rewards, rejected_rewards)``; the implicit rewards are
    ``beta * (log pi - log pi_ref)`` (detached), for logging.
    """
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    shapes = {tuple(t.shape) for t in (policy_chosen, policy_rejected, ref_chosen, ref_rejected)}
    if len(shapes) != 1:
        raise ValueError(f"all four log-probability tensors must have the same shape (B,), got {sorted(shapes)}")
    chosen = beta * (policy_chosen - ref_chosen)
    rejected = beta * (policy_rejected - ref_rejected)
    loss = -F.logsigmoid(chosen - rejected).mean()
    return loss, chosen.detach(), rejected.detach()


def kl_penalised_reward(reward: torch.Tensor, logp_policy: torch.Tensor, logp_ref: torch.Tensor,
                        beta: float) -> torch.Tensor:
    """``r - beta * (log pi(y|x) - log pi_ref(y|x))`` per sampled response ``(B,)``.

    ``log pi - log pi_ref`` of a sample from ``pi`` is an unbiased estimate of
    ``KL(pi || pi_ref)``, so on average this is the RLHF objective.
    """
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    if not reward.shape == logp_policy.shape == logp_ref.shape:
        raise ValueError("reward, logp_policy and logp_ref must have the same shape (B,)")
    return reward - beta * (logp_policy - logp_ref)


@torch.no_grad()
def kl_to_reference(policy: GPT, reference: GPT, prompts: list[str], tokenizer, samples: int = 1,
                    generator: torch.Generator | None = None, max_new_tokens: int = 48) -> float:
    """Mean ``KL(pi || pi_ref)`` per response, in nats, on responses sampled from ``policy``.

    Along each sampled response the full next-token distributions are compared, and the
    per-token KLs are summed: the exact KL of the sequence distributions, estimated over
    the sampled contexts.
    """
    device = policy.lm_head.weight.device
    prompts = [p for p in prompts for _ in range(samples)]
    responses = generate(policy, prompts, tokenizer, max_new_tokens, temperature=1.0, generator=generator)
    ids, targets, mask = encode_pairs(prompts, responses, tokenizer, policy.config.block_size)
    ids, mask = ids.to(device), mask.to(device)
    lp = torch.log_softmax(policy(ids)[0].float(), -1)
    lq = torch.log_softmax(reference(ids)[0].float(), -1)
    kl = (lp.exp() * (lp - lq)).sum(-1)  # (B, T)
    return float((kl * mask).sum(-1).mean())


def _start_policy_training(policy: GPT, reference: GPT, lr: float, seed: int):
    """Freeze ``reference``, make ``policy`` trainable; return the batch RNG and the optimiser."""
    reference.eval().requires_grad_(False)
    policy.requires_grad_(True)  # a deep copy of a frozen reference would be frozen too
    return random.Random(seed), make_adamw(policy, lr, weight_decay=0.0)


def train_dpo(policy: GPT, reference: GPT, pairs, tokenizer, steps: int, beta: float = 0.1,
              batch_size: int = 32, lr: float = 2e-4, warmup: int = 10, seed: int = 0,
              progress: bool = True) -> History:
    """DPO on ``(example, chosen, rejected)`` pairs; ``reference`` stays frozen."""
    if not pairs:
        raise ValueError("pairs is empty: DPO needs at least one preference pair")
    device = policy.lm_head.weight.device
    block = policy.config.block_size
    rng, opt = _start_policy_training(policy, reference, lr, seed)

    def step_fn(step: int):
        batch = rng.sample(pairs, min(batch_size, len(pairs)))
        prompts = [e.prompt for e, _, _ in batch]
        ids, targets, _ = encode_pairs(prompts + prompts, [c for _, c, _ in batch] + [r for _, _, r in batch],
                                       tokenizer, block)
        ids, targets = ids.to(device), targets.to(device)
        logp = sequence_logprobs(policy, ids, targets)
        with torch.no_grad():
            ref = sequence_logprobs(reference, ids, targets)
        n = len(batch)
        loss, rc, rr = dpo_loss(logp[:n], logp[n:], ref[:n], ref[n:], beta)
        value = optimizer_step(opt, loss, parameters=policy.parameters(), grad_clip=GRAD_CLIP,
                               lr=warmup_cosine(step, steps, warmup, floor=LR_FLOOR, peak=lr))
        return {"loss": value, "margin": (rc - rr).mean(), "accuracy": (rc > rr).float().mean()}

    with training_mode(policy):
        return run_steps(step_fn, steps, desc="dpo", progress=progress)


def rlhf(policy: GPT, reference: GPT, reward_model, examples, tokenizer, steps: int, beta: float = 0.05,
         batch_size: int = 32, lr: float = 1e-4, seed: int = 0, max_new_tokens: int = 48,
         progress: bool = True) -> History:
    """REINFORCE on the reward model's score with a KL penalty to ``reference``.

    Each batch holds prompts of one length (drawn in proportion to how many there are).
    Records per step the mean reward-model score (``reward``), the KL estimate
    ``log pi - log pi_ref`` (``kl``), the penalised objective and the share of responses
    that are concise and correct by the exact-match evaluator (``preferred``).
    """
    from aigc_course.alignment.tasks import is_preferred

    if not examples:
        raise ValueError("examples is empty: RLHF needs prompts to sample responses for")
    device = policy.lm_head.weight.device
    block = policy.config.block_size
    reward_model.eval().requires_grad_(False)
    rng, opt = _start_policy_training(policy, reference, lr, seed)
    gen = torch.Generator().manual_seed(seed)
    # a batch shares one prompt length, so it decodes as a single cached batch (much faster)
    by_length: dict[int, list] = {}
    for e in examples:
        by_length.setdefault(len(e.prompt), []).append(e)
    lengths = sorted(by_length)
    weights = [len(by_length[n]) for n in lengths]

    def step_fn(step: int):
        group = by_length[rng.choices(lengths, weights)[0]]
        batch = rng.sample(group, min(batch_size, len(group)))
        prompts = [e.prompt for e in batch]
        responses = generate(policy, prompts, tokenizer, max_new_tokens, temperature=1.0, generator=gen)
        ids, targets, _ = encode_pairs(prompts, responses, tokenizer, block)
        ids, targets = ids.to(device), targets.to(device)
        with torch.no_grad():
            reward = reward_model.score(prompts, responses, tokenizer).float()
            logp_ref = sequence_logprobs(reference, ids, targets)
        policy.train()
        logp = sequence_logprobs(policy, ids, targets)
        total = kl_penalised_reward(reward, logp.detach(), logp_ref, beta)
        advantage = total - total.mean()  # the batch mean is the baseline
        loss = -(advantage * logp).mean()
        value = optimizer_step(opt, loss, parameters=policy.parameters(), grad_clip=GRAD_CLIP)
        policy.eval()
        preferred = sum(is_preferred(e, r) for e, r in zip(batch, responses, strict=True)) / len(batch)
        return {"loss": value, "reward": reward.mean(), "kl": (logp.detach() - logp_ref).mean(),
                "objective": total.mean(), "preferred": preferred}

    with restore_modes_on_error(policy):  # each step samples in eval mode and updates in train mode
        return run_steps(step_fn, steps, desc=f"rlhf beta={beta}", progress=progress)
