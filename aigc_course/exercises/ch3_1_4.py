"""Chapter 3.1.4 exercises: the response-only SFT loss, the Bradley-Terry loss, the DPO loss.

References: :func:`aigc_course.alignment.response_only_loss`,
:func:`aigc_course.alignment.bradley_terry_loss` and :func:`aigc_course.alignment.dpo_loss`
(its first output, the loss).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from aigc_course.alignment import bradley_terry_loss, dpo_loss, response_only_loss
from aigc_course.exercises.core import Case, Exercise, Variant, register


def _randn(gen: torch.Generator, device, *shape: int) -> torch.Tensor:
    return torch.randn(shape, generator=gen).to(device)


def _finite_diagnostic(case: Case, expected, actual) -> str | None:
    if isinstance(actual, torch.Tensor) and actual.numel() == 1 and not torch.isfinite(actual).all():
        return ("the loss is not finite: log(sigmoid(t)) underflows for large |t|. Use F.logsigmoid(t), "
                "or -F.softplus(-t)")
    return None


# ---------------------------------------------------------------------------- 3.1.4.1 SFT loss


def _mask_targets(gen: torch.Generator, b: int, t: int, v: int, start: list[int], end: list[int]):
    targets = torch.randint(v, (b, t), generator=gen)
    for row in range(b):
        targets[row, : start[row]] = -1
        targets[row, end[row] :] = -1
    return targets


def _sft_cases(gen: torch.Generator, device) -> list[Case]:
    t1 = _mask_targets(gen, 3, 10, 7, [4, 2, 6], [8, 10, 7])
    t2 = _mask_targets(gen, 2, 12, 5, [10, 3], [12, 4])  # rows with 2 and 1 response tokens
    return [
        Case("3 rows of 10 positions, 7 tokens, prompts and padding masked",
             (_randn(gen, device, 3, 10, 7) * 2, t1.to(device))),
        Case("rows with different response lengths (2 and 1 tokens): average over tokens, not rows",
             (_randn(gen, device, 2, 12, 5), t2.to(device))),
        Case("large logits (±60)", (_randn(gen, device, 3, 10, 7) * 60, t1.to(device))),
    ]


def _sft_variant(kind: str):
    def wrong(case: Case):
        logits, targets = case.args
        if kind == "shifted":  # shifted once more, as for raw token ids
            logits, targets = logits[:, :-1], targets[:, 1:]
        dim = 1 if kind == "wrong_axis" else -1
        logp = torch.log_softmax(logits.float(), dim)
        if kind == "probabilities":
            logp = logp.exp()
        mask = targets != -1
        picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        return -(picked * mask).sum() / mask.sum()

    return wrong


def _row_mean(case: Case):
    logits, targets = case.args
    rows = [response_only_loss(logits[i : i + 1], targets[i : i + 1]) for i in range(len(targets))]
    return torch.stack(rows).mean()


register(Exercise(
    id="3.1.4.1",
    title="The response-only SFT loss",
    function="sft_loss",
    reference=response_only_loss,
    cases=_sft_cases,
    diagnostics=[_finite_diagnostic],
    variants=[
        Variant("you averaged over every position, prompt and padding included; the mean is over the "
                "response positions only (targets != -1)",
                lambda c: -(torch.log_softmax(c.args[0].float(), -1)
                            .gather(-1, c.args[1].clamp(min=0).unsqueeze(-1)).squeeze(-1)).mean()),
        Variant("you averaged per row and then over rows; average over all response tokens at once",
                _row_mean),
        Variant("wrong sign: the loss is the *negative* log-likelihood",
                lambda c: -response_only_loss(*c.args)),
        Variant("you summed over the response tokens; divide by their number",
                lambda c: response_only_loss(*c.args) * (c.args[1] != -1).sum()),
        Variant("off by one: the targets are already shifted (targets[:, t] is the token after position t); "
                "do not shift logits and targets again", _sft_variant("shifted")),
        Variant("take the log-softmax over the vocabulary (the last dimension, dim=-1), not over the "
                "positions", _sft_variant("wrong_axis")),
        Variant("the loss uses log-probabilities (log_softmax), not probabilities", _sft_variant("probabilities")),
    ],
    hints=[
        "Take log_softmax of the logits over the vocabulary, pick the log-probability of each "
        "target token with gather, and average -log p over the positions where targets != -1.",
        "targets holds -1 where there is nothing to learn; gather needs a valid index there, so "
        "gather with targets.clamp(min=0) and then multiply by the mask (targets != -1).",
        "logp = torch.log_softmax(logits.float(), dim=-1)\n"
        "mask = targets != -1\n"
        "picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)\n"
        "return -(picked * mask).sum() / mask.sum()",
    ],
    explanation=(
        "SFT trains $\\pi_\\theta(y_t \\mid y_{<t})$ only where $y_t$ belongs to the response: "
        "$\\mathcal L = -\\sum_t m_t \\log\\pi_\\theta(y_t|y_{<t}) / \\sum_t m_t$. The instruction is "
        "context, not text to imitate. Averaging over tokens (not rows) is what "
        "`F.cross_entropy(..., ignore_index=-1)` does too."
    ),
    atol=1e-5,
    rtol=1e-5,
))


# ---------------------------------------------------------------------------- 3.1.4.2 Bradley-Terry


def _bt_cases(gen: torch.Generator, device) -> list[Case]:
    return [
        Case("16 random reward pairs", (_randn(gen, device, 16) * 2, _randn(gen, device, 16) * 2)),
        Case("equal rewards: the loss is log 2", (torch.zeros(5, device=device), torch.zeros(5, device=device))),
        Case("a very wrong reward model: chosen -100, rejected +100",
             (torch.full((3,), -100.0, device=device), torch.full((3,), 100.0, device=device))),
    ]


register(Exercise(
    id="3.1.4.2",
    title="The Bradley–Terry reward-model loss",
    function="reward_model_loss",
    reference=bradley_terry_loss,
    cases=_bt_cases,
    diagnostics=[_finite_diagnostic],
    variants=[
        Variant("chosen and rejected are swapped: the loss is -log sigmoid(r_chosen - r_rejected)",
                lambda c: bradley_terry_loss(c.args[1], c.args[0])),
        Variant("you summed over the pairs; take the mean", lambda c: bradley_terry_loss(*c.args) * len(c.args[0])),
        Variant("the probability sigma(r_w - r_l) is not the loss; take -log of it",
                lambda c: torch.sigmoid(c.args[0] - c.args[1]).mean()),
        Variant("wrong sign: the loss is the *negative* log-likelihood, -log sigmoid(r_chosen - r_rejected)",
                lambda c: -bradley_terry_loss(*c.args)),
    ],
    hints=[
        "P(chosen preferred) = sigmoid(r_chosen - r_rejected); the loss is the mean negative log of it.",
        "F.logsigmoid(t) computes log(sigmoid(t)) without underflow for t = -200.",
        "return -F.logsigmoid(r_chosen - r_rejected).mean()",
    ],
    explanation=(
        "The Bradley–Terry model says $P(y_w \\succ y_l) = \\sigma(r_w - r_l)$; maximising the "
        "likelihood of the observed preferences is minimising $-\\log\\sigma(r_w - r_l)$. Only the "
        "difference of rewards matters, and equal rewards give $\\log 2$."
    ),
))


# ---------------------------------------------------------------------------- 3.1.4.3 DPO


def _dpo_reference(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    return dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)[0]


def _dpo_cases(gen: torch.Generator, device) -> list[Case]:
    def lp(n):
        return -torch.rand(n, generator=gen).to(device) * 20

    a, b = lp(8), lp(8)
    return [
        Case("8 random pairs, beta = 0.1", (lp(8), lp(8), lp(8), lp(8), 0.1)),
        Case("policy equals the reference: the loss is log 2", (a, b, a.clone(), b.clone(), 0.5)),
        Case("6 random pairs, beta = 2", (lp(6), lp(6), lp(6), lp(6), 2.0)),
    ]


register(Exercise(
    id="3.1.4.3",
    title="The DPO loss",
    function="dpo",
    reference=_dpo_reference,
    cases=_dpo_cases,
    diagnostics=[_finite_diagnostic],
    variants=[
        Variant("you forgot the reference model: the implicit reward is beta * (log pi - log pi_ref)",
                lambda c: -F.logsigmoid(c.args[4] * (c.args[0] - c.args[1])).mean()),
        Variant("beta is missing: scale the log-ratios by beta",
                lambda c: _dpo_reference(*c.args[:4], 1.0)),
        Variant("chosen and rejected are swapped (or, the same thing, the log-ratios are log pi_ref - log pi): "
                "the margin is beta * ((log pi - log pi_ref) of the chosen - (log pi - log pi_ref) of the rejected)",
                lambda c: _dpo_reference(c.args[1], c.args[0], c.args[3], c.args[2], c.args[4])),
        Variant("beta multiplies the log-ratios; you divided by it", lambda c: _dpo_reference(*c.args[:4], 1 / c.args[4])),
        Variant("you summed over the pairs; take the mean", lambda c: _dpo_reference(*c.args) * len(c.args[0])),
    ],
    hints=[
        "Each response has an implicit reward beta * (log pi(y|x) - log pi_ref(y|x)). Put the two "
        "rewards into the Bradley-Terry loss.",
        "chosen = beta * (policy_chosen - ref_chosen); rejected = beta * (policy_rejected - "
        "ref_rejected); the loss is -mean log sigmoid(chosen - rejected).",
        "chosen = beta * (policy_chosen - ref_chosen)\n"
        "rejected = beta * (policy_rejected - ref_rejected)\n"
        "return -F.logsigmoid(chosen - rejected).mean()",
    ],
    explanation=(
        "The KL-regularised RLHF objective has the optimum $\\pi^* \\propto \\pi_{ref} e^{r/\\beta}$, "
        "so $r = \\beta\\log(\\pi^*/\\pi_{ref}) + $ const. The Bradley–Terry loss on this implicit "
        "reward is the DPO loss (Rafailov et al. 2023): the constant cancels in the difference, and "
        "no reward model or sampling is needed."
    ),
))
