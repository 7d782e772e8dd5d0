"""The exercise checker: it accepts the solutions, rejects every known mistake with its own
message, notices inputs changed in place and ignored parameters, reports every mistake of a
student's function or of the arguments to ``check`` as a message (never a traceback), and the
student notebooks and book pages generated from the solution notebooks are up to date.

The matrices are data-driven: they run over every registered exercise id, so a new exercise is
covered by adding it to the registry and its planted mistakes to ``PLANTED``.
"""

from __future__ import annotations

import ast
import copy
import functools
import json
import math
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from aigc_course.diffusion import NoiseSchedule
from aigc_course.exercises import (
    REGISTRY,
    CheckResult,
    check,
    exercise_ids,
    hint,
    judging,
    solution,
)
from aigc_course.exercises.__main__ import main as exercises_main
from aigc_course.exercises.core import Case, sandbox
from aigc_course.exercises.notebooks import (
    BEGIN,
    BEGIN_HIDDEN,
    exercise_cells,
    heading_id,
    strip_markers,
)

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "exercises" / "solutions"
STUDENT = ROOT / "exercises" / "student"
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "_ext"))
import build_exercises  # noqa: E402  (repository tooling lives in scripts/)
from course_map import load_chapters  # noqa: E402

CHAPTERS = [c for c in load_chapters(ROOT).chapters if c.exercises]


def solution_functions() -> dict[str, object]:
    """Each exercise's solution function, executed from the solution notebooks' solution cells."""
    namespace: dict = {}
    exec(
        "import math\nimport librosa\nimport numpy as np\nimport torch\nimport torch.nn.functional as F\n"
        "from aigc_course.classic.expert_system import Rule\nfrom aigc_course.diffusion import NoiseSchedule\n"
        "from aigc_course.applications.practice import check_item\nfrom aigc_course.retrieval import words\n"
        "from collections import Counter",
        namespace,
    )
    for path in sorted(SOLUTIONS.glob("*.ipynb")):
        for parts in exercise_cells(path).values():
            exec(strip_markers(parts["source"]), namespace)
    return {i: namespace[REGISTRY[i].function] for i in exercise_ids()}


SOLVED = solution_functions()


def first_cases(exercise_id: str, seed: int = 0) -> list[Case]:
    return REGISTRY[exercise_id].cases(torch.Generator().manual_seed(seed), torch.device("cpu"))


# ---------------------------------------------------------------------------- accepting


@pytest.mark.parametrize("exercise_id", exercise_ids())
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_checker_accepts_the_notebook_solution(exercise_id, seed, capsys):
    result = check(exercise_id, SOLVED[exercise_id], seed=seed)
    out = capsys.readouterr().out
    assert result and result.passed, out
    assert out.startswith("✓") and "cases passed" in out
    assert result.cases_passed == result.cases_total > 0 and result.seed == seed


@pytest.mark.parametrize("exercise_id", [i for i in exercise_ids() if REGISTRY[i].reference is not None])
def test_checker_accepts_the_package_reference(exercise_id):
    assert check(exercise_id, REGISTRY[exercise_id].reference, seed=3, quiet=True)


def test_the_check_draws_fresh_inputs_unless_seeded():
    names = [c.args[0].sum().item() for c in first_cases("3.1.2", 5)]
    again = [c.args[0].sum().item() for c in first_cases("3.1.2", 5)]
    other = [c.args[0].sum().item() for c in first_cases("3.1.2", 6)]
    assert names == again and names != other


# ---------------------------------------------------------------------------- planted mistakes
# Each is written the way a student might get it wrong; the message must name the mistake.


def add_k_str_count(text, context, char, k=1.0):
    return (text.count(context + char) + k) / (text.count(context) + k * (len(set(text)) + 1))


def add_k_no_unknown(text, context, char, k=1.0):
    starts = range(len(text) - len(context))
    c_hw = sum(text.startswith(context + char, i) for i in starts)
    c_h = sum(text.startswith(context, i) for i in starts)
    return (c_hw + k) / (c_h + k * len(set(text)))


def add_k_counts_tail(text, context, char, k=1.0):
    c_hw = sum(text.startswith(context + char, i) for i in range(len(text)))
    c_h = sum(text.startswith(context, i) for i in range(len(text)))
    return (c_hw + k) / (c_h + k * (len(set(text)) + 1))


def bpc_in_nats(ln_probs):
    return float(-np.mean(ln_probs))


def bpc_summed(ln_probs):
    return float(-np.sum(ln_probs) / math.log(2))


def chain_fires_immediately(rules, facts):
    known, derived, changed = set(facts), [], True
    while changed:
        changed = False
        for rule in rules:
            if rule.conclusion not in known and rule.conditions <= known:
                known.add(rule.conclusion)
                derived.append(rule.conclusion)
                changed = True
    return derived


def chain_single_pass(rules, facts):
    return [r.conclusion for r in rules if r.conditions <= set(facts) and r.conclusion not in facts]


def chain_with_given(rules, facts):
    return sorted(facts) + SOLVED["1.3"](rules, facts)


def attention_unscaled(q, k, v):
    t = q.shape[-2]
    scores = (q @ k.transpose(-2, -1)).masked_fill(~torch.ones(t, t, dtype=torch.bool).tril(), float("-inf"))
    w = scores.softmax(-1)
    return w @ v, w


def attention_peeks_ahead(q, k, v):
    t = q.shape[-2]
    keep = torch.ones(t, t, dtype=torch.bool).tril(diagonal=1)  # off by one: sees the next token
    w = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).masked_fill(~keep, float("-inf")).softmax(-1)
    return w @ v, w


def attention_masked_after_softmax(q, k, v):
    t = q.shape[-2]
    w = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-1) * torch.ones(t, t).tril()
    return w @ v, w


def top_k_zeroes(logits, k):
    kth = torch.topk(logits, min(k, logits.shape[-1]), dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, 0.0)


def top_k_by_index(logits, k):
    idx = torch.topk(logits, min(k, logits.shape[-1]), dim=-1).indices
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, idx, True)
    return logits.masked_fill(~keep, float("-inf"))


def top_k_smallest(logits, k):
    kth = torch.topk(logits, min(k, logits.shape[-1]), dim=-1, largest=False).values[..., -1:]
    return logits.masked_fill(logits > kth, float("-inf"))


def top_p_cumsum_le(logits, p):
    probs, order = torch.sort(logits.softmax(-1), dim=-1, descending=True)
    keep = torch.zeros_like(probs, dtype=torch.bool).scatter(-1, order, probs.cumsum(-1) <= p)
    return logits.masked_fill(~keep, float("-inf"))


def top_p_left_sorted(logits, p):
    sorted_logits = torch.sort(logits, dim=-1, descending=True).values
    probs = sorted_logits.softmax(-1)
    return sorted_logits.masked_fill((probs.cumsum(-1) - probs) >= p, float("-inf"))


def g_loss_naive_log(fake_logits):
    return -torch.log(torch.sigmoid(fake_logits)).mean()


def g_loss_minimax(fake_logits):
    return torch.log(1 - torch.sigmoid(fake_logits) + 1e-12).mean()


def g_loss_summed(fake_logits):
    return F.softplus(-fake_logits).sum()


def d_loss_swapped(real_logits, fake_logits):
    return F.softplus(real_logits).mean() + F.softplus(-fake_logits).mean()


def d_loss_pooled(real_logits, fake_logits):
    logits = torch.cat([real_logits, fake_logits])
    targets = torch.cat([torch.ones_like(real_logits), torch.zeros_like(fake_logits)])
    return F.binary_cross_entropy_with_logits(logits, targets)


def gp_without_create_graph(critic, real, fake, alpha):
    x = (alpha * real + (1 - alpha) * fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x)
    return ((grad.norm(dim=1) - 1) ** 2).mean()


def gp_one_sided(critic, real, fake, alpha):
    x = (alpha * real + (1 - alpha) * fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return (torch.clamp(grad.norm(dim=1) - 1, min=0) ** 2).mean()


def gp_at_real(critic, real, fake, alpha):
    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return ((grad.norm(dim=1) - 1) ** 2).mean()


def gp_batch_norm(critic, real, fake, alpha):
    x = (alpha * real + (1 - alpha) * fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return (grad.norm() - 1) ** 2


def q_sample_alphas(schedule, x0, t, noise):
    a = schedule.alphas[t.cpu()].to(x0.device).reshape(-1, *[1] * (x0.ndim - 1))
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def q_sample_no_reshape(schedule, x0, t, noise):
    ab = schedule.alphas_cumprod[t.cpu()].to(x0.device)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def q_sample_one_based(schedule, x0, t, noise):
    ab = schedule.alphas_cumprod[(t.cpu() - 1).clamp(min=0)].to(x0.device).reshape(-1, *[1] * (x0.ndim - 1))
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def ddim_negative_index(schedule, eps, t, x, prev_t):
    ab_t, ab_prev = schedule.alphas_cumprod[t], schedule.alphas_cumprod[prev_t]
    x0 = (x - (1 - ab_t).sqrt() * eps) / ab_t.sqrt()
    return ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps


def ddim_returns_x0(schedule, eps, t, x, prev_t):
    ab_t = schedule.alphas_cumprod[t]
    return (x - (1 - ab_t).sqrt() * eps) / ab_t.sqrt()


def ddim_wrong_direction(schedule, eps, t, x, prev_t):
    ab_t, ab_prev = schedule.alphas_cumprod[t], schedule.alpha_bar(prev_t)
    x0 = (x - (1 - ab_t).sqrt() * eps) / ab_t.sqrt()
    return ab_prev.sqrt() * x0 + (1 - ab_t).sqrt() * eps


def cfg_swapped(eps_uncond, eps_cond, guidance_scale):
    return eps_cond + guidance_scale * (eps_uncond - eps_cond)


def cfg_one_plus_w(eps_uncond, eps_cond, guidance_scale):
    return eps_cond + guidance_scale * (eps_cond - eps_uncond)


PLANTED = [
    ("1.1", add_k_str_count, "overlapping"),
    ("1.1", add_k_no_unknown, "unknown-character symbol"),
    ("1.1", add_k_counts_tail, "nothing follows it"),
    ("1.2", bpc_in_nats, "natural-log probabilities (nats)"),
    ("1.2", bpc_summed, "you summed"),
    ("1.3", chain_fires_immediately, "same cycle"),
    ("1.3", chain_single_pass, "stopped"),
    ("1.3", chain_with_given, "was given"),
    ("3.1.1", attention_unscaled, "missing the 1/√d_k scaling"),
    ("3.1.1", attention_peeks_ahead, "the mask lets position "),
    ("3.1.1", attention_masked_after_softmax, "masked after the softmax"),
    ("3.1.2", top_k_zeroes, "set to 0"),
    ("3.1.2", top_k_by_index, "tied with the k-th largest"),
    ("3.1.2", top_k_smallest, "k smallest"),
    ("3.1.3", top_p_cumsum_le, "crosses p"),
    ("3.1.3", top_p_left_sorted, "sorted order"),
    ("3.2.1", g_loss_naive_log, "not finite"),
    ("3.2.1", g_loss_minimax, "saturating minimax"),
    ("3.2.1", g_loss_summed, "summed over the batch"),
    ("3.2.2", d_loss_swapped, "labels are swapped"),
    ("3.2.2", d_loss_pooled, "real and fake samples together"),
    ("3.2.3", gp_without_create_graph, "not differentiable"),
    ("3.2.3", gp_one_sided, "one-sided"),
    ("3.2.3", gp_at_real, "at the real samples"),
    ("3.2.3", gp_batch_norm, "per sample"),
    ("3.3.1", q_sample_alphas, "cumulative product"),
    ("3.3.1", q_sample_no_reshape, "broadcast along the last dimension"),
    ("3.3.1", q_sample_one_based, "0-based"),
    ("3.3.2", ddim_negative_index, "prev_t = -1 means clean data"),
    ("3.3.2", ddim_returns_x0, "you returned x̂₀"),
    ("3.3.2", ddim_wrong_direction, "previous* step"),
    ("3.3.3", cfg_swapped, "swapped"),
    ("3.3.3", cfg_one_plus_w, "(1 + w)"),
]


# ---- Part 4 planted mistakes (4.1, 4.2, 4.4)


def padded_zero_after_softmax(q, k, v, keep):
    w = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-1)
    return (w * keep[:, None, :]) @ v


def padded_inverted(q, k, v, keep):
    scores = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).masked_fill(keep[:, None, :], float("-inf"))
    return scores.softmax(-1) @ v


def padded_zero_scores(q, k, v, keep):
    scores = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).masked_fill(~keep[:, None, :], 0.0)
    return scores.softmax(-1) @ v


def _online(q, k, v, block_size, rescale_acc=True, rescale_l=True, stable=True):
    m = torch.full((*q.shape[:-1], 1), float("-inf"), dtype=q.dtype)
    l_sum = torch.zeros_like(m)
    acc = torch.zeros((*q.shape[:-1], v.shape[-1]), dtype=q.dtype)
    for start in range(0, k.shape[-2], block_size):
        s = q @ k[..., start:start + block_size, :].transpose(-2, -1) / math.sqrt(q.shape[-1])
        m_new = torch.maximum(m, s.amax(-1, keepdim=True)) if stable else torch.zeros_like(m)
        p, c = torch.exp(s - m_new), torch.exp(m - m_new) if stable else torch.ones_like(m)
        l_sum = (l_sum * c if rescale_l else l_sum) + p.sum(-1, keepdim=True)
        acc = (acc * c if rescale_acc else acc) + p @ v[..., start:start + block_size, :]
        m = m_new
    return acc / l_sum


def online_no_acc_rescale(q, k, v, block_size):
    return _online(q, k, v, block_size, rescale_acc=False)


def online_no_l_rescale(q, k, v, block_size):
    return _online(q, k, v, block_size, rescale_l=False)


def online_no_running_max(q, k, v, block_size):
    return _online(q, k, v, block_size, stable=False)


def flops_one_matmul(batch, heads, seq_len, head_dim):
    return 2 * batch * heads * seq_len * seq_len * head_dim


def flops_t_d_swapped(batch, heads, seq_len, head_dim):
    return 4 * batch * heads * seq_len * head_dim * head_dim


def flops_per_head(batch, heads, seq_len, head_dim):
    return 4 * seq_len**2 * head_dim


def d_star_swapped(p_data, p_g):
    total = p_data + p_g
    return torch.where(total > 0, p_g / total.clamp_min(1e-300), torch.full_like(total, 0.5))


def d_star_nan(p_data, p_g):
    return p_data / (p_data + p_g)


def d_star_ratio(p_data, p_g):
    return p_data / p_g


def value_no_dx(d, p_data, p_g, dx):
    return (torch.xlogy(p_data, d) + torch.xlogy(p_g, 1 - d)).sum()


def value_naive_log(d, p_data, p_g, dx):
    return (p_data * torch.log(d) + p_g * torch.log(1 - d)).sum() * dx


def value_swapped(d, p_data, p_g, dx):
    return (torch.xlogy(p_data, 1 - d) + torch.xlogy(p_g, d)).sum() * dx


def jsd_is_kl(p, q, dx):
    return (torch.xlogy(p, p) - torch.xlogy(p, q)).sum() * dx


def jsd_no_half(p, q, dx):
    m = 0.5 * (p + q)
    return ((torch.xlogy(p, p) - torch.xlogy(p, m)).sum() + (torch.xlogy(q, q) - torch.xlogy(q, m)).sum()) * dx


def jsd_bits(p, q, dx):
    m = 0.5 * (p + q)
    kl = (torch.xlogy(p, p) - torch.xlogy(p, m)).sum() * dx + (torch.xlogy(q, q) - torch.xlogy(q, m)).sum() * dx
    return 0.5 * kl / math.log(2)


def jsd_naive_log(p, q, dx):
    m = 0.5 * (p + q)
    return 0.5 * (p * torch.log(p / m)).sum() * dx + 0.5 * (q * torch.log(q / m)).sum() * dx


def _posterior(schedule, x0, xt, t, ab_prev=None, variance="posterior"):
    ab_t = schedule.alphas_cumprod[t]
    ab_prev = schedule.alpha_bar(t - 1) if ab_prev is None else ab_prev
    alpha = ab_t / ab_prev
    beta = 1 - alpha
    mean = ab_prev.sqrt() * beta / (1 - ab_t) * x0 + alpha.sqrt() * (1 - ab_prev) / (1 - ab_t) * xt
    return mean, beta if variance == "beta" else (1 - ab_prev) / (1 - ab_t) * beta


def posterior_negative_index(schedule, x0, xt, t):
    return _posterior(schedule, x0, xt, t, ab_prev=schedule.alphas_cumprod[t - 1])


def posterior_beta_variance(schedule, x0, xt, t):
    return _posterior(schedule, x0, xt, t, variance="beta")


def posterior_swapped(schedule, x0, xt, t):
    return _posterior(schedule, xt, x0, t)


def x0_no_divide(schedule, xt, t, eps):
    ab = schedule.alphas_cumprod[t.cpu()].to(xt.device, xt.dtype).reshape(-1, *[1] * (xt.ndim - 1))
    return xt - (1 - ab).sqrt() * eps


def x0_plus(schedule, xt, t, eps):
    ab = schedule.alphas_cumprod[t.cpu()].to(xt.device, xt.dtype).reshape(-1, *[1] * (xt.ndim - 1))
    return (xt + (1 - ab).sqrt() * eps) / ab.sqrt()


def x0_one_step_alpha(schedule, xt, t, eps):
    a = schedule.alphas[t.cpu()].to(xt.device, xt.dtype).reshape(-1, *[1] * (xt.ndim - 1))
    return (xt - (1 - a).sqrt() * eps) / a.sqrt()


def snr_sqrt(schedule, t):
    ab = schedule.alphas_cumprod[t]
    return ab.sqrt() / (1 - ab).sqrt()


def snr_inverted(schedule, t):
    ab = schedule.alphas_cumprod[t]
    return (1 - ab) / ab


def snr_one_step(schedule, t):
    a = schedule.alphas[t]
    return a / (1 - a)


PLANTED_PART4 = [
    ("4.1.1", padded_zero_after_softmax, "after the softmax"),
    ("4.1.1", padded_inverted, "mask is inverted"),
    ("4.1.1", padded_zero_scores, "exp(0) = 1"),
    ("4.1.2", online_no_acc_rescale, "accumulator acc is not rescaled"),
    ("4.1.2", online_no_l_rescale, "normaliser l is not rescaled"),
    ("4.1.2", online_no_running_max, "overflows"),
    ("4.1.3", flops_one_matmul, "one of the two matrix products"),
    ("4.1.3", flops_t_d_swapped, "T and d are swapped"),
    ("4.1.3", flops_per_head, "batch size B and the number of heads H"),
    ("4.2.1", d_star_swapped, "swapped"),
    ("4.2.1", d_star_nan, "NaN where both densities are 0"),
    ("4.2.1", d_star_ratio, "likelihood ratio"),
    ("4.2.2", value_no_dx, "grid spacing dx"),
    ("4.2.2", value_naive_log, "0·log 0"),
    ("4.2.2", value_swapped, "log terms are swapped"),
    ("4.2.3", jsd_is_kl, "KL(p ‖ q)"),
    ("4.2.3", jsd_no_half, "factor 1/2"),
    ("4.2.3", jsd_bits, "bits"),
    ("4.2.3", jsd_naive_log, "the JSD is NaN"),
    ("4.4.1", posterior_negative_index, "alphas_cumprod[-1]"),
    ("4.4.1", posterior_beta_variance, "the variance is β_t"),
    ("4.4.1", posterior_swapped, "coefficients of x₀ and x_t are swapped"),
    ("4.4.2", x0_no_divide, "did not divide by √ᾱ_t"),
    ("4.4.2", x0_plus, "wrong sign"),
    ("4.4.2", x0_one_step_alpha, "cumulative"),
    ("4.4.3", snr_sqrt, "ratio of the *coefficients*"),
    ("4.4.3", snr_inverted, "upside down"),
    ("4.4.3", snr_one_step, "cumulative"),
]

PLANTED += PLANTED_PART4


# ---- Chapter 2 planted mistakes (2.1 Gaussian log-density, 2.2 parameter count, 2.3 InfoNCE)


def log_density_no_half(x, mean, cov):
    r = x - mean
    quad = ((r @ torch.linalg.inv(cov)) * r).sum(1)
    return -quad - 0.5 * torch.linalg.slogdet(cov)[1] - 0.5 * x.shape[1] * math.log(2 * math.pi)


def log_density_no_logdet(x, mean, cov):
    r = x - mean
    return -0.5 * ((r @ torch.linalg.inv(cov)) * r).sum(1) - 0.5 * x.shape[1] * math.log(2 * math.pi)


def log_density_cov_not_inverse(x, mean, cov):
    r = x - mean
    return -0.5 * ((r @ cov) * r).sum(1) - 0.5 * torch.linalg.slogdet(cov)[1] - 0.5 * x.shape[1] * math.log(2 * math.pi)


def count_untied_head(vocab_size, block_size, n_layer, n_embd):
    d = n_embd
    return 2 * vocab_size * d + block_size * d + n_layer * (12 * d * d + 13 * d) + 2 * d


def count_no_biases(vocab_size, block_size, n_layer, n_embd):
    d = n_embd
    return vocab_size * d + block_size * d + n_layer * (12 * d * d + 4 * d) + 2 * d


def count_no_positions(vocab_size, block_size, n_layer, n_embd):
    d = n_embd
    return vocab_size * d + n_layer * (12 * d * d + 13 * d) + 2 * d


def info_nce_rows_only(image_emb, text_emb, logit_scale):
    logits = logit_scale * F.normalize(image_emb, dim=-1) @ F.normalize(text_emb, dim=-1).T
    return F.cross_entropy(logits, torch.arange(len(logits)))


def info_nce_unnormalised(image_emb, text_emb, logit_scale):
    logits = logit_scale * image_emb @ text_emb.T
    t = torch.arange(len(logits))
    return 0.5 * (F.cross_entropy(logits, t) + F.cross_entropy(logits.T, t))


def info_nce_no_scale(image_emb, text_emb, logit_scale):
    logits = F.normalize(image_emb, dim=-1) @ F.normalize(text_emb, dim=-1).T
    t = torch.arange(len(logits))
    return 0.5 * (F.cross_entropy(logits, t) + F.cross_entropy(logits.T, t))


PLANTED += [
    ("2.1", log_density_no_half, "factor 1/2 in front of the quadratic form"),
    ("2.1", log_density_no_logdet, "log det Σ"),
    ("2.1", log_density_cov_not_inverse, "needs the inverse"),
    ("2.2", count_untied_head, "tied to the token embedding"),
    ("2.2", count_no_biases, "missing the biases"),
    ("2.2", count_no_positions, "position embedding"),
    ("2.3", info_nce_rows_only, "only one direction"),
    ("2.3", info_nce_unnormalised, "normalised to unit length"),
    ("2.3", info_nce_no_scale, "logit_scale"),
]


# ---- Chapter 3.1.4 planted mistakes (SFT loss, Bradley-Terry loss, DPO loss)


def sft_loss_all_positions(logits, targets):
    logp = torch.log_softmax(logits.float(), -1)
    return -logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1).mean()


def sft_loss_row_mean(logits, targets):
    rows = []
    for i in range(len(targets)):
        keep = targets[i] != -1
        rows.append(F.cross_entropy(logits[i][keep].float(), targets[i][keep]))
    return torch.stack(rows).mean()


def bt_loss_swapped(r_chosen, r_rejected):
    return -F.logsigmoid(r_rejected - r_chosen).mean()


def bt_loss_naive_log(r_chosen, r_rejected):
    return -torch.log(torch.sigmoid(r_chosen - r_rejected)).mean()


def dpo_no_reference(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    return -F.logsigmoid(beta * (policy_chosen - policy_rejected)).mean()


def dpo_no_beta(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    return -F.logsigmoid((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)).mean()


PLANTED += [
    ("3.1.4.1", sft_loss_all_positions, "prompt and padding included"),
    ("3.1.4.1", sft_loss_row_mean, "averaged per row"),
    ("3.1.4.2", bt_loss_swapped, "swapped"),
    ("3.1.4.2", bt_loss_naive_log, "not finite"),
    ("3.1.4.3", dpo_no_reference, "forgot the reference model"),
    ("3.1.4.3", dpo_no_beta, "beta is missing"),
]


# ---------------------------------------------------------------------------- 3.4 the VAE


def reparam_variance(mu, logvar, eps):
    return mu + logvar.exp() * eps


def reparam_logvar_as_std(mu, logvar, eps):
    return mu + logvar * eps


def reparam_no_mu(mu, logvar, eps):
    return torch.exp(0.5 * logvar) * eps


def kl_no_half(mu, logvar):
    return (mu ** 2 + logvar.exp() - logvar - 1).sum(-1)


def kl_mean_over_dims(mu, logvar):
    return 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).mean(-1)


def kl_sign_flipped(mu, logvar):
    return 0.5 * (mu ** 2 + logvar.exp() + logvar - 1).sum(-1)


def iw_mean_of_logs(log_weights):
    return log_weights.mean(0)


def iw_no_log_k(log_weights):
    return torch.logsumexp(log_weights, dim=0)


def iw_naive_exp(log_weights):
    return torch.log(log_weights.exp().mean(0))


PLANTED += [
    ("3.4.1", reparam_variance, "scaled the noise by the variance"),
    ("3.4.1", reparam_logvar_as_std, "logvar is the log of the variance"),
    ("3.4.1", reparam_no_mu, "forgot to add mu"),
    ("3.4.2", kl_no_half, "missing the factor 1/2"),
    ("3.4.2", kl_mean_over_dims, "averaged over the latent dimensions"),
    ("3.4.2", kl_sign_flipped, "sign of log sigma^2 is flipped"),
    ("3.4.3", iw_mean_of_logs, "K-sample ELBO"),
    ("3.4.3", iw_no_log_k, "missing the - log K"),
    ("3.4.3", iw_naive_exp, "underflows"),
]


# ---------------------------------------------------------------------------- 2.4-2.6 LLaMA's parts


def rotary_neighbours(x, positions, base):
    d = x.shape[-1]
    theta = base ** (-torch.arange(0, d, 2, dtype=x.dtype) / d)
    angles = positions.to(x.dtype)[:, None] * theta
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * angles.cos() - x2 * angles.sin(), x2 * angles.cos() + x1 * angles.sin()], -1).flatten(-2)


def rotary_exponent_per_feature(x, positions, base):
    d = x.shape[-1]
    theta = base ** (-torch.arange(d // 2, dtype=x.dtype) / d)
    angles = positions.to(x.dtype)[:, None] * theta
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    return torch.cat([x1 * angles.cos() - x2 * angles.sin(), x2 * angles.cos() + x1 * angles.sin()], -1)


def rms_norm_as_layer_norm(x, weight, eps):
    return F.layer_norm(x, (x.shape[-1],), weight, None, eps)


def rms_norm_eps_outside(x, weight, eps):
    return weight * x / (x.pow(2).mean(-1, keepdim=True).sqrt() + eps)


def gqa_heads_cycled(q, k, v):
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat(1, group, 1, 1), v.repeat(1, group, 1, 1)
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -1) @ v


def gqa_unscaled(q, k, v):
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    return torch.softmax(q @ k.transpose(-2, -1), -1) @ v


PLANTED += [
    ("2.4", rotary_neighbours, "neighbouring features (2i, 2i + 1)"),
    ("2.4", rotary_exponent_per_feature, "steps by 2/d per pair"),
    ("2.5", rms_norm_as_layer_norm, "that is LayerNorm"),
    ("2.5", rms_norm_eps_outside, "eps goes inside the square root"),
    ("2.6", gqa_heads_cycled, "cycled through the K/V heads"),
    ("2.6", gqa_unscaled, "missing the 1/√d scaling"),
]


# ---------------------------------------------------------------------------- 2.3.3 text-to-speech


def mel_filters_hz_spaced(sample_rate, n_fft, n_mels, fmin, fmax):
    edges = np.linspace(fmin, fmax, n_mels + 2)  # evenly in Hz, not in mels
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    rising = (freqs[None] - edges[:-2, None]) / (edges[1:-1] - edges[:-2])[:, None]
    falling = (edges[2:, None] - freqs[None]) / (edges[2:] - edges[1:-1])[:, None]
    return np.maximum(0, np.minimum(rising, falling))


def mel_filters_area_normalised(sample_rate, n_fft, n_mels, fmin, fmax):
    import librosa

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=True,
                               norm="slaney", dtype=np.float64)


def griffin_lim_one_short(magnitude, n_iter, hop_length):
    import librosa

    n_fft = 2 * (magnitude.shape[0] - 1)
    spec = magnitude.astype(np.complex64)
    for _ in range(n_iter - 1):
        rebuilt = librosa.stft(librosa.istft(spec, hop_length=hop_length, n_fft=n_fft), n_fft=n_fft,
                               hop_length=hop_length)
        spec = magnitude * rebuilt / (np.abs(rebuilt) + np.finfo(np.float32).tiny)
    return librosa.istft(spec, hop_length=hop_length, n_fft=n_fft)


def griffin_lim_keeps_rebuilt(magnitude, n_iter, hop_length):
    import librosa

    n_fft = 2 * (magnitude.shape[0] - 1)
    spec = magnitude.astype(np.complex64)
    for _ in range(n_iter):
        spec = librosa.stft(librosa.istft(spec, hop_length=hop_length, n_fft=n_fft), n_fft=n_fft,
                            hop_length=hop_length)
    return librosa.istft(spec, hop_length=hop_length, n_fft=n_fft)


def ctc_drop_blanks_first(log_probs, blank):
    kept = [b for b in log_probs.argmax(-1).tolist() if b != blank]
    return [b for i, b in enumerate(kept) if i == 0 or b != kept[i - 1]], float(log_probs.max(-1).values.sum())


def ctc_no_merge(log_probs, blank):
    return [b for b in log_probs.argmax(-1).tolist() if b != blank], float(log_probs.max(-1).values.sum())


def ctc_mean_score(log_probs, blank):
    scores, best = log_probs.max(-1)
    best = best.tolist()
    return [b for i, b in enumerate(best) if (i == 0 or b != best[i - 1]) and b != blank], float(scores.mean())


PLANTED += [
    ("2.3.3.1", mel_filters_hz_spaced, "spaced evenly in Hz"),
    ("2.3.3.1", mel_filters_area_normalised, "equal area"),
    ("2.3.3.2", griffin_lim_one_short, "one iteration too few"),
    ("2.3.3.2", griffin_lim_keeps_rebuilt, "never put the target magnitudes back"),
    ("2.3.3.3", ctc_drop_blanks_first, "dropped the blanks before merging"),
    ("2.3.3.3", ctc_no_merge, "must be merged first"),
    ("2.3.3.3", ctc_mean_score, "not their mean"),
]


# ---------------------------------------------------------------------------- 5 text to image


def cross_no_mask(h, context, context_mask, w_q, w_k, w_v):
    b, c, height, width = h.shape
    pixels = h.reshape(b, c, height * width).transpose(1, 2)
    weights = torch.softmax((pixels @ w_q) @ (context @ w_k).transpose(-2, -1) / math.sqrt(c), dim=-1)
    return h + (weights @ (context @ w_v)).transpose(1, 2).reshape(b, c, height, width)


def cross_plain_reshape(h, context, context_mask, w_q, w_k, w_v):
    b, c, height, width = h.shape
    pixels = h.reshape(b, height * width, c)
    scores = (pixels @ w_q) @ (context @ w_k).transpose(-2, -1) / math.sqrt(c)
    weights = torch.softmax(scores.masked_fill(~context_mask[:, None, :], float("-inf")), dim=-1)
    return h + (weights @ (context @ w_v)).reshape(b, c, height, width)


def guided_swapped(model, x, t, ids, null_ids, guidance_scale):
    tb = torch.full((2 * len(x),), t, device=x.device)
    with torch.no_grad():
        cond, uncond = model(torch.cat([x, x]), tb, torch.cat([ids, null_ids.expand_as(ids)])).chunk(2)
    return cond + guidance_scale * (uncond - cond)


def guided_one_plus_w(model, x, t, ids, null_ids, guidance_scale):
    tb = torch.full((2 * len(x),), t, device=x.device)
    with torch.no_grad():
        cond, uncond = model(torch.cat([x, x]), tb, torch.cat([ids, null_ids.expand_as(ids)])).chunk(2)
    return cond + guidance_scale * (cond - uncond)


def dropout_inverted(captions, p_uncond, seed):
    keep = torch.rand(len(captions), generator=torch.Generator().manual_seed(seed)) < p_uncond
    return [c if k else "" for c, k in zip(captions, keep.tolist(), strict=True)]


def dropout_removed(captions, p_uncond, seed):
    drop = torch.rand(len(captions), generator=torch.Generator().manual_seed(seed)) < p_uncond
    return [c for c, d in zip(captions, drop.tolist(), strict=True) if not d]


PLANTED += [
    ("5.1", cross_no_mask, "padding tokens were attended to"),
    ("5.1", cross_plain_reshape, "scrambles channels and pixels"),
    ("5.2", guided_swapped, "swapped"),
    ("5.2", guided_one_plus_w, "(1 + w) form"),
    ("5.3", dropout_inverted, "inverted"),
    ("5.3", dropout_removed, "replaced, not removed"),
]


# ---------------------------------------------------------------------------- 6 applications


def search_dot_product(queries, keys, k):
    if k > keys.shape[0]:
        raise ValueError(f"k={k} is larger than the index, which holds {keys.shape[0]} entries")
    scores = queries @ keys.T
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
    return scores.gather(1, order), order


def search_topk_no_check(queries, keys, k):
    scores = F.normalize(queries, dim=1) @ F.normalize(keys, dim=1).T
    k = min(k, keys.shape[0])  # silently returns fewer entries
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
    return scores.gather(1, order), order


def search_vague_error(queries, keys, k):
    if k > keys.shape[0]:
        raise ValueError("bad input")
    return search_topk_no_check(queries, keys, k)


def search_ascending(queries, keys, k):
    if k > keys.shape[0]:
        raise ValueError(f"k={k} is larger than the index, which holds {keys.shape[0]} entries")
    scores = F.normalize(queries, dim=1) @ F.normalize(keys, dim=1).T
    order = torch.sort(scores, dim=1, stable=True).indices[:, :k]
    return scores.gather(1, order), order


def search_torch_topk(queries, keys, k):
    if k > keys.shape[0]:
        raise ValueError(f"k={k} is larger than the index, which holds {keys.shape[0]} entries")
    values, order = torch.topk(F.normalize(queries, dim=1) @ F.normalize(keys, dim=1).T, k, dim=1)
    return values, order


def _tfidf(documents, queries, df_of, idf_of):
    from collections import Counter

    from aigc_course.retrieval import words

    df = df_of(documents)
    vocabulary = sorted(df)
    out = torch.zeros(len(queries), len(vocabulary))
    for i, q in enumerate(queries):
        for w, c in Counter(words(q)).items():
            if w in df:
                out[i, vocabulary.index(w)] = c
    return out * torch.tensor([idf_of(len(documents), df[w]) for w in vocabulary])


def tfidf_unsmoothed(documents, queries):
    from collections import Counter

    from aigc_course.retrieval import words

    return _tfidf(documents, queries, lambda docs: Counter(w for d in docs for w in set(words(d))),
                  lambda n, df: math.log(n / df))


def tfidf_counts_occurrences(documents, queries):
    from collections import Counter

    from aigc_course.retrieval import words

    return _tfidf(documents, queries, lambda docs: Counter(w for d in docs for w in words(d)),
                  lambda n, df: math.log((1 + n) / (1 + df)) + 1)


def verified_no_dedup(sentences):
    from aigc_course.applications.practice import check_item

    return [s for s in sentences if check_item(s).status == "correct"]


def verified_valid_only(sentences):
    from aigc_course.applications.practice import check_item

    return [s for s in sentences if check_item(s).status != "invalid"]


PLANTED += [
    ("6.1", search_dot_product, "dot product"),
    ("6.1", search_topk_no_check, "raise ValueError"),
    ("6.1", search_vague_error, "should name k"),
    ("6.1", search_ascending, "ascending"),
    ("6.1", search_torch_topk, "stable=True"),
    ("6.2", tfidf_unsmoothed, "unsmoothed"),
    ("6.2", tfidf_counts_occurrences, "each document once"),
    ("6.3", verified_no_dedup, "one item per distinct problem"),
    ("6.3", verified_valid_only, "can state a wrong answer"),
]


# ---------------------------------------------------------------------------- 7 data-parallel training


def ddp_summed(model, x, y, world_size):
    params, per = list(model.parameters()), len(x) // world_size
    grads = [torch.autograd.grad(F.mse_loss(model(x[r * per:(r + 1) * per]), y[r * per:(r + 1) * per]), params)
             for r in range(world_size)]
    return [sum(g[i] for g in grads) for i in range(len(params))]


def ddp_first_rank_only(model, x, y, world_size):
    per = len(x) // world_size
    return list(torch.autograd.grad(F.mse_loss(model(x[:per]), y[:per]), list(model.parameters())))


def ring_mean(tensors):
    total = torch.stack(tensors).sum(0)
    return [total / len(tensors) for _ in tensors]


def ring_reduce_scatter_only(tensors):
    n = len(tensors)
    chunks = [list(t.clone().tensor_split(n)) for t in tensors]
    for step in range(n - 1):
        sent = [chunks[r][(r - step) % n].clone() for r in range(n)]
        for r in range(n):
            chunks[r][(r - 1 - step) % n] = chunks[r][(r - 1 - step) % n] + sent[(r - 1) % n]
    return [torch.cat(c) for c in chunks]


def indices_contiguous(n, world_size, rank):
    per = math.ceil(n / world_size)
    padded = [i % n for i in range(per * world_size)]
    return padded[rank * per:(rank + 1) * per]


def indices_drop_last(n, world_size, rank):
    return list(range(rank, n - n % world_size, world_size))


PLANTED += [
    ("7.1", ddp_summed, "summed the ranks' gradients"),
    ("7.1", ddp_first_rank_only, "one rank's gradient alone"),
    ("7.2", ring_mean, "leaves the sum on every rank"),
    ("7.2", ring_reduce_scatter_only, "stopped after the reduce-scatter"),
    ("7.3", indices_contiguous, "deals the indices out in turn"),
    ("7.3", indices_drop_last, "drop_last=True"),
]


# ---------------------------------------------------------------------------- 8 trends and challenges


def green_list_unkeyed(previous_token, vocab_size, gamma, hash_key):
    g = torch.Generator()
    g.manual_seed(previous_token)
    return torch.randperm(vocab_size, generator=g)[: int(gamma * vocab_size)].sort().values


def green_list_last(previous_token, vocab_size, gamma, hash_key):
    g = torch.Generator()
    g.manual_seed(hash_key * previous_token % (2**64 - 1))
    return torch.randperm(vocab_size, generator=g)[-int(gamma * vocab_size):].sort().values


def z_score_counts_first_token(token_ids, green_mask, gamma):
    g = green_mask[token_ids[:, :-1], token_ids[:, 1:]].sum(dim=1, dtype=torch.float64)
    n = token_ids.shape[1]
    return (g - gamma * n) / math.sqrt(n * gamma * (1 - gamma))


def z_score_green_fraction(token_ids, green_mask, gamma):
    return green_mask[token_ids[:, :-1], token_ids[:, 1:]].double().mean(dim=1)


def overlap_distinct_windows(text_ids, corpus_ids, n):
    text, corpus = text_ids.tolist(), corpus_ids.tolist()
    seen = {tuple(corpus[i: i + n]) for i in range(len(corpus) - n + 1)}
    windows = {tuple(text[i: i + n]) for i in range(len(text) - n + 1)}
    return sum(w in seen for w in windows) / len(windows)


def overlap_reversed(text_ids, corpus_ids, n):
    text, corpus = text_ids.tolist(), corpus_ids.tolist()
    seen = {tuple(text[i: i + n]) for i in range(len(text) - n + 1)}
    windows = [tuple(corpus[i: i + n]) for i in range(len(corpus) - n + 1)]
    return sum(w in seen for w in windows) / len(windows)


PLANTED += [
    ("8.1", green_list_unkeyed, "must mix in the secret key"),
    ("8.1", green_list_last, "*first* G entries"),
    ("8.2", z_score_counts_first_token, "n = T - 1"),
    ("8.2", z_score_green_fraction, "green fraction"),
    ("8.3", overlap_distinct_windows, "repeats included"),
    ("8.3", overlap_reversed, "not the share of the corpus's windows"),
]


# ---------------------------------------------------------------------------- 3.1.4 / 3.1.5 planted answers


def cross_attention_ignores_mask(x, memory, memory_mask, num_heads):
    b, t, c = x.shape
    d = c // num_heads
    q = x.reshape(b, t, num_heads, d).transpose(1, 2)
    kv = memory.reshape(b, -1, num_heads, d).transpose(1, 2)
    weights = torch.softmax(q @ kv.transpose(-2, -1) / math.sqrt(d), dim=-1)
    return (weights @ kv).transpose(1, 2).reshape(b, t, c), weights


def cross_attention_mask_inverted(x, memory, memory_mask, num_heads):
    b, t, c = x.shape
    d = c // num_heads
    q = x.reshape(b, t, num_heads, d).transpose(1, 2)
    kv = memory.reshape(b, -1, num_heads, d).transpose(1, 2)
    blocked = memory_mask if not memory_mask.all() else torch.zeros_like(memory_mask)
    keep = ~blocked
    keep = keep | ~keep.any(-1, keepdim=True)  # a row with nothing to attend to keeps everything
    scores = (q @ kv.transpose(-2, -1) / math.sqrt(d)).masked_fill(~keep[:, None, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return (weights @ kv).transpose(1, 2).reshape(b, t, c), weights


def cross_attention_single_head(x, memory, memory_mask, num_heads):
    scores = (x @ memory.transpose(-2, -1) / math.sqrt(x.shape[-1])).masked_fill(~memory_mask[:, None, :],
                                                                                   float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ memory, weights[:, None].expand(-1, num_heads, -1, -1)


def beam_best_token_per_beam(scores, log_probs):
    best, token = log_probs.max(-1)
    new_scores, order = (scores + best).sort(dim=1, descending=True)
    return new_scores, order, token.gather(1, order)


def beam_ignores_prefix_scores(scores, log_probs):
    b, k, v = log_probs.shape
    _, flat = log_probs.reshape(b, k * v).topk(k, dim=1)
    beam, token = flat // v, flat % v
    return scores.gather(1, beam) + log_probs.reshape(b, k * v).gather(1, flat), beam, token


def beam_index_modulo(scores, log_probs):
    b, k, v = log_probs.shape
    new_scores, flat = (scores[..., None] + log_probs).reshape(b, k * v).topk(k, dim=1)
    return new_scores, flat % k, flat % v


PLANTED += [
    ("3.1.4", cross_attention_ignores_mask, "padding tokens were attended to"),
    ("3.1.4", cross_attention_mask_inverted, "the mask is inverted"),
    ("3.1.4", cross_attention_single_head, "the heads were not split"),
    ("3.1.5", beam_best_token_per_beam, "best token of each beam"),
    ("3.1.5", beam_ignores_prefix_scores, "log-probability alone"),
    ("3.1.5", beam_index_modulo, "i // V"),
]


@pytest.mark.parametrize(("exercise_id", "wrong", "message"), PLANTED, ids=[f"{i}-{f.__name__}" for i, f, _ in PLANTED])
def test_checker_rejects_planted_mistake_with_its_message(exercise_id, wrong, message, capsys):
    # on the CPU: some planted answers also forget the device, which is not the mistake tested here
    result = check(exercise_id, wrong, seed=7, device="cpu")
    out = capsys.readouterr().out
    assert not result and result.attempted and result.status == "failed"
    assert message in out and message in result.likely_cause, out
    assert "Traceback" not in out
    if wrong is attention_peeks_ahead:  # names a query and the *next* key it wrongly sees
        i, j = map(int, re.search(r"position (\d+) attend to position (\d+)", out).groups())
        assert j == i + 1
    assert result.case and result.case in out  # names the failing case


def test_every_exercise_has_at_least_two_planted_mistakes():
    counts = {i: sum(1 for j, _, _ in PLANTED if j == i) for i in exercise_ids()}
    assert all(n >= 2 for n in counts.values()), counts


# ---------------------------------------------------------------------------- every known mistake


KNOWN = [(i, n) for i in exercise_ids() for n in range(len(REGISTRY[i].variants))]


@pytest.mark.parametrize(("exercise_id", "number"), KNOWN, ids=[f"{i}-variant{n}" for i, n in KNOWN])
def test_every_registered_mistake_is_recognised_by_its_own_message(exercise_id, number):
    """Each Variant, answered as a student would (a function of the inputs), gets its message."""
    variant = REGISTRY[exercise_id].variants[number]

    def answer(*args, **kwargs):
        return variant.fn(Case("student", args, kwargs))

    result = check(exercise_id, answer, seed=11, device="cpu", quiet=True)
    assert result.status == "failed", f"the mistake {variant.message!r} passes the check"
    assert result.likely_cause == variant.message, result.message


def test_every_exercise_knows_at_least_three_mistakes():
    counts = {i: len(REGISTRY[i].variants) + len(REGISTRY[i].diagnostics) for i in exercise_ids()}
    assert all(n >= 3 for n in counts.values()), counts


# ---------------------------------------------------------------------------- inputs stay unchanged


def _mutate(value) -> bool:
    """Change ``value`` in place the way a careless answer might; False if it cannot be changed."""
    if isinstance(value, torch.Tensor):
        if value.dtype == torch.bool:
            value.logical_not_()
        else:
            value.add_(1)
        return True
    if isinstance(value, np.ndarray):
        value += 1
        return True
    if isinstance(value, set):
        value.add("a fact added by the answer")
        return True
    if isinstance(value, list):
        value.append(value[0])
        return True
    if isinstance(value, torch.nn.Module):
        next(value.parameters()).grad = torch.ones_like(next(value.parameters()))  # what .backward() leaves
        return True
    if isinstance(value, NoiseSchedule):
        value.alphas_cumprod.mul_(0.5)
        return True
    return False


MUTABLE = [(i, n) for i in exercise_ids() for n, arg in enumerate(first_cases(i)[0].args)
           if _mutate(copy.deepcopy(arg) if not isinstance(arg, torch.nn.Module) else copy.deepcopy(arg))]


@pytest.mark.parametrize(("exercise_id", "position"), MUTABLE, ids=[f"{i}-arg{n}" for i, n in MUTABLE])
def test_an_answer_that_changes_an_input_in_place_is_rejected(exercise_id, position):
    solved = SOLVED[exercise_id]

    @functools.wraps(solved)  # the student's own parameter names
    def careless(*args, **kwargs):
        out = solved(*args, **kwargs)  # the right values...
        _mutate(args[position])  # ...but the caller's input is changed
        return out

    result = check(exercise_id, careless, seed=0, device="cpu", quiet=True)
    name = sandbox.parameter_names(solved, position + 1)[position]
    assert result.status == "failed" and result.problem == "changed input", result.message
    assert f"`{name}" in result.message and "must stay unchanged" in result.message


def test_every_exercise_with_a_mutable_input_is_covered():
    covered = {i for i, _ in MUTABLE}
    immutable = {"1.1", "2.2", "2.3.3.1", "4.1.3", "7.3", "8.1"}  # strings and ints only
    assert covered | immutable == set(exercise_ids())


def test_in_place_edits_are_named_with_their_fix(capsys):
    def in_place(logits, k):
        kth = torch.topk(logits, min(k, logits.shape[-1]), dim=-1).values[..., -1:]
        return logits.masked_fill_(logits < kth, float("-inf"))

    def facts_added(rules, facts):
        known = facts  # not a copy
        out = SOLVED["1.3"](rules, facts)
        known.update(out)
        return out

    assert not check("3.1.2", in_place, seed=0)
    assert "the tensor `logits`" in capsys.readouterr().out
    assert not check("1.3", facts_added, seed=0)
    assert "known = set(facts)" in capsys.readouterr().out


# ---------------------------------------------------------------------------- ignored parameters


def _perturbed(value):
    """A different but valid value of the same kind; ``None`` if there is none."""
    if isinstance(value, torch.Tensor):
        if value.dtype == torch.bool:
            return ~value
        if value.is_floating_point():
            return value * 1.5 + 0.25
        if value.numel() > 1 and not bool((value == value.reshape(-1)[0]).all()):
            return value.flip(0)
        return None
    if isinstance(value, np.ndarray):
        return value * 1.5
    if type(value) is bool:
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 1.5 + 0.1
    if isinstance(value, str):
        return value + "a"
    if isinstance(value, (set, list)) and len(value) > 1:
        return type(value)(list(value)[:-1])
    if isinstance(value, torch.nn.Module):
        other = copy.deepcopy(value)
        with torch.no_grad():
            for p in other.parameters():
                p.mul_(1.5)
        return other
    if isinstance(value, NoiseSchedule):
        kind = "cosine" if torch.allclose(value.betas, NoiseSchedule("linear", len(value.betas)).betas.to(
            value.betas.dtype)) else "linear"
        return NoiseSchedule(kind, len(value.betas), dtype=value.betas.dtype)
    return None


def _output_changes(fn, args: tuple, kwargs: dict, position, new) -> bool:
    args2, kwargs2 = list(args), dict(kwargs)
    if isinstance(position, int):
        args2[position] = new
    else:
        kwargs2[position] = new
    try:
        changed = sandbox.clone(tuple(args2)), sandbox.clone(kwargs2)
        return not judging.matches(fn(*sandbox.clone(args), **sandbox.clone(kwargs)), fn(*changed[0], **changed[1]))
    except Exception:  # noqa: BLE001  (an input the answer reads can make it fail)
        return True


@pytest.mark.parametrize("exercise_id", exercise_ids())
def test_every_parameter_shows_in_the_output_or_is_probed(exercise_id):
    """An answer that ignores a parameter fails some case, unless a probe watches that parameter."""
    solved = SOLVED[exercise_id]
    cases = first_cases(exercise_id, 0) + first_cases(exercise_id, 1)
    positions = list(range(len(cases[0].args))) + sorted(cases[0].kwargs)
    names = sandbox.parameter_names(solved, len(cases[0].args)) + sorted(cases[0].kwargs)
    unseen = set()
    for position, name in zip(positions, names, strict=True):
        if not any(_output_changes(solved, c.args, c.kwargs, position, new) for c in cases
                   if (new := _perturbed(c.args[position] if isinstance(position, int) else c.kwargs[position]))
                   is not None):
            unseen.add(name)
    assert unseen == {p.parameter for p in REGISTRY[exercise_id].probes}


def online_softmax_plain(q, k, v, block_size):
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1) @ v


def online_softmax_one_block(q, k, v, block_size):
    return _online(q, k, v, k.shape[-2])


def online_softmax_fused(q, k, v, block_size):
    return F.scaled_dot_product_attention(q, k, v)


@pytest.mark.parametrize("answer", [online_softmax_plain, online_softmax_one_block, online_softmax_fused])
def test_online_softmax_that_ignores_block_size_is_rejected(answer, capsys):
    result = check("4.1.2", answer, seed=0, device="cpu")
    out = capsys.readouterr().out
    assert result.status == "failed" and result.problem == "ignored parameter", out
    assert "block_size=8 was ignored" in out and "the values are right" in out


def test_a_fused_attention_kernel_counts_as_ignoring_the_blocks():
    probe = REGISTRY["4.1.2"].probes[0]
    case = probe.case(torch.Generator().manual_seed(0), torch.device("cpu"))
    recorder = sandbox.OpRecorder()
    t = case.args[1].shape[-2]
    recorder.calls.append(("_scaled_dot_product_flash_attention", [(1, 1, t, 8), (1, 1, t, 8), (1, 1, t, 8)]))
    assert "attends to all" in probe.verdict(case, recorder)
    assert probe.verdict(case, sandbox.OpRecorder()) is None


# ---------------------------------------------------------------------------- nothing makes check() raise


class Hostile:
    """A returned object every dunder of which raises."""

    def __eq__(self, other):
        raise SystemExit("eq")

    def __ne__(self, other):
        raise RuntimeError("ne")

    def __bool__(self):
        raise RuntimeError("bool")

    def __repr__(self):
        raise RuntimeError("repr")

    def __str__(self):
        raise RuntimeError("str")

    def __len__(self):
        raise RuntimeError("len")

    def __iter__(self):
        raise RuntimeError("iter")

    def __float__(self):
        raise RuntimeError("float")

    def __index__(self):
        raise RuntimeError("index")

    __hash__ = None


class HostileError(Exception):
    def __str__(self):
        raise RuntimeError("str of the error")


class RaisingTensor(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        raise RuntimeError("no operation allowed")


def _exit(*args, **kwargs):
    sys.exit(3)


def _hostile_object(*args, **kwargs):
    return Hostile()


def _hostile_in_tuple(*args, **kwargs):
    return (Hostile(), Hostile())


def _raises_unprintable(*args, **kwargs):
    raise HostileError


def _returns_numpy(exercise_id):
    def answer(*args, **kwargs):
        out = SOLVED[exercise_id](*args, **kwargs)
        return out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out)
    return answer


def _returns_huge_list(*args, **kwargs):
    return list(range(10**6))


def _returns_huge_int(*args, **kwargs):
    return 10**10000


def _returns_text(*args, **kwargs):
    return "tensor([1., 2.])"


def _returns_raising_tensor(*args, **kwargs):
    return torch.zeros(3).as_subclass(RaisingTensor)


def _recursion(*args, **kwargs):
    return _recursion(*args, **kwargs)


def _breaks_stdout(*args, **kwargs):
    sys.stdout = None
    return None


def _generator(*args, **kwargs):
    yield None


async def _coroutine(*args, **kwargs):
    return None


HOSTILE = [_exit, _hostile_object, _hostile_in_tuple, _raises_unprintable, _returns_huge_list, _returns_huge_int,
           _returns_text, _returns_raising_tensor, _recursion, _breaks_stdout, _generator, _coroutine]


@pytest.mark.parametrize("exercise_id", exercise_ids())
def test_no_answer_makes_check_raise(exercise_id, capsys):
    answers = [*HOSTILE, lambda *a, **k: [SOLVED[exercise_id](*a, **k)]]
    if isinstance(SOLVED[exercise_id](*first_cases(exercise_id)[0].args), (torch.Tensor, tuple)):
        answers.append(_returns_numpy(exercise_id))  # a number as a 0-dim array is fine where a float is asked
    for answer in answers:
        result = check(exercise_id, answer, seed=0, device="cpu")
        out = capsys.readouterr().out
        assert isinstance(result, CheckResult) and result.status == "failed", (answer, result.message)
        assert isinstance(result.message, str) and result.message.strip() in out
        assert "Traceback" not in out and "please report" not in out, out
        assert len(out) < 3000, f"{answer.__name__} made a {len(out)}-character verdict"
        json.dumps(result.to_dict())


def test_sys_exit_is_the_students_mistake(capsys):
    result = check("3.3.3", _exit, seed=0)
    assert result.problem == "raised" and "SystemExit" in result.message and "sys.exit()" in result.likely_cause


def test_a_generator_or_async_function_is_named(capsys):
    assert "contains `yield`" in check("3.3.3", _generator, quiet=True).message
    assert "is `async`" in check("3.3.3", _coroutine, quiet=True).message


def test_printing_answers_pass_and_keep_the_verdict_short(capsys):
    def chatty(*args, **kwargs):
        for i in range(10_000):
            print("debug line", i)
        return SOLVED["3.3.3"](*args, **kwargs)

    def chatty_and_wrong(*args, **kwargs):
        print("my scale is", args[2])
        return -SOLVED["3.3.3"](*args, **kwargs)

    assert check("3.3.3", chatty, seed=0)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "debug line" not in out
    assert not check("3.3.3", chatty_and_wrong, seed=0)
    out = capsys.readouterr().out
    assert "Your function printed:\n    my scale is" in out


def test_a_check_leaves_global_state_and_randomness_as_it_found_them():
    def careless(*args, **kwargs):
        torch.set_default_dtype(torch.float64)
        torch.set_grad_enabled(False)
        torch.randn(100)
        np.random.rand(5)
        return SOLVED["3.3.3"](*args, **kwargs)

    torch.manual_seed(0)
    np.random.seed(0)
    expected = torch.rand(3), np.random.rand(3)
    torch.manual_seed(0)
    np.random.seed(0)
    result = check("3.3.3", careless, seed=0, quiet=True)
    assert torch.get_default_dtype() == torch.float32 and torch.is_grad_enabled()
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])
    assert result.passed  # its global changes were undone, and harmless to the values


# ---------------------------------------------------------------------------- the arguments of check()


BAD_ARGUMENTS = [
    ({"exercise_id": "9.9"}, "exercise_id"),
    ({"exercise_id": 3.1}, "exercise_id"),
    ({"exercise_id": None}, "exercise_id"),
    ({"fn": "guided_noise"}, "not its name"),
    ({"fn": None}, "fn must be"),
    ({"fn": 42}, "fn must be"),
    ({"fn": torch.zeros(3)}, "not its result"),
    ({"seed": "3"}, "seed must be"),
    ({"seed": -1}, "seed must be"),
    ({"seed": True}, "seed must be"),
    ({"seed": 1.5}, "seed must be"),
    ({"device": "gpu"}, "device must be"),
    ({"device": f"cuda:{torch.cuda.device_count()}"}, "not available on this machine"),
    ({"device": 3}, "device must be"),
    ({"device": "meta"}, "device must be"),
    ({"quiet": "yes"}, "quiet must be"),
]


@pytest.mark.parametrize(("change", "message"), BAD_ARGUMENTS, ids=[repr(c) for c, _ in BAD_ARGUMENTS])
def test_a_bad_argument_to_check_is_the_students_mistake(change, message, capsys):
    arguments = {"exercise_id": "3.3.3", "fn": SOLVED["3.3.3"], "seed": 0, "device": None, "quiet": False} | change
    result = check(arguments.pop("exercise_id"), arguments.pop("fn"), **arguments)
    out = capsys.readouterr().out
    assert result.status == "failed" and result.problem == "bad argument" and not result
    assert message in result.message and "please report" not in result.message and "Traceback" not in out


def test_an_unavailable_aigc_device_is_reported(monkeypatch):
    monkeypatch.setenv("AIGC_DEVICE", "cuda:99")
    result = check("3.3.3", SOLVED["3.3.3"], seed=0, quiet=True)
    assert result.problem == "bad argument" and "AIGC_DEVICE" in result.message


# ---------------------------------------------------------------------------- mistakes seen in the numbers


def _t(*values):
    return torch.tensor(values, dtype=torch.float64)


GENERIC = [
    (_t(1.0, -2.0, 3.0), _t(-1.0, 2.0, -3.0), "sign is flipped"),
    (_t(1.0, -2.0, 3.0), _t(2.0, -4.0, 6.0), "2 times the expected one"),
    (_t(1.0, 2.0, 3.0), _t(1.0, 2.0, 3.0) / math.log(2), "log base 2"),
    (_t(1.0, 2.0, 3.0), _t(8.0, 16.0, 24.0), "summed where the mean is needed, over 8 items"),
    (_t(1.0, 4.0, 9.0), _t(1.0, 16.0, 81.0), "missing square root"),
    (_t(1.0, 4.0, 9.0), _t(1.0, 2.0, 3.0), "extra square root"),
    (_t(1.0, 4.0, 9.0), _t(3.0, 6.0, 11.0), "plus a constant 2"),
    (torch.arange(4.0).reshape(2, 2), torch.arange(4.0).reshape(2, 2).T, "transposed"),
    (torch.arange(5.0) ** 2, torch.cat([torch.zeros(1), torch.arange(4.0) ** 2]), "shifted by one position"),
    (torch.arange(6.0) ** 2, (torch.arange(6.0) ** 2).flip(0), "wrong places"),
    (_t(1.0, 2.0), _t(1.0, float("nan")), "NaN"),
    (_t(1.0, 2.0), _t(1.0, float("inf")), "inf"),
    (torch.tensor(1.0), _t(1.0, 2.0), "one number"),
    (_t(1.0, 2.0), torch.tensor(1.0), "reduced everything"),
    (torch.tensor(1.0), torch.tensor([1.0]), "single number"),
    (torch.zeros(2, 3), torch.zeros(3, 2), "transposed"),
]


@pytest.mark.parametrize(("expected", "actual", "message"), GENERIC, ids=[m for _, _, m in GENERIC])
def test_generic_causes(expected, actual, message):
    assert message in judging.generic_cause(expected, actual)


def test_a_factor_in_one_number_is_claimed_only_when_every_case_shows_it():
    assert judging.generic_cause(2.0, 4.0) is None
    assert judging.generic_cause(2.0, 4.0, [(1.0, 2.0), (3.0, 6.0)]).startswith("your result is 2 times")
    assert judging.generic_cause(2.0, 4.0, [(1.0, 2.0), (3.0, 5.0)]) is None


def test_generic_causes_reach_the_verdict(capsys):
    result = check("3.3.3", lambda u, c, s: 2 * SOLVED["3.3.3"](u, c, s), seed=0)
    assert "2 times the expected one" in result.likely_cause


# ---------------------------------------------------------------------------- verdicts


@pytest.mark.parametrize("exercise_id", exercise_ids())
def test_not_implemented_is_not_attempted_yet(exercise_id, capsys):
    def unfinished(*args, **kwargs):
        raise NotImplementedError(f"Exercise {exercise_id}")

    result = check(exercise_id, unfinished)
    out = capsys.readouterr().out
    assert result.status == "not attempted" and not result and not result.attempted
    assert "not attempted yet" in out and "Traceback" not in out


def test_a_library_not_implemented_error_is_not_mistaken_for_not_attempted():
    def uses_a_missing_kernel(logits, k):
        return torch.zeros(2).to_sparse().matrix_power(2)  # raises NotImplementedError inside torch

    result = check("3.1.2", uses_a_missing_kernel, seed=0, quiet=True)
    assert result.status == "failed" and result.problem == "raised"


def test_an_error_in_student_code_is_reported_briefly(capsys):
    def broken(logits, k):
        scale = 1 / 0
        return logits * scale

    result = check("3.1.2", broken, seed=0)
    out = capsys.readouterr().out
    assert result.status == "failed" and result.problem == "raised"
    assert "ZeroDivisionError" in out and "line 2 of broken" in out and "scale = 1 / 0" in out
    assert "Traceback" not in out


def test_shape_type_and_dtype_mistakes_show_expected_and_actual(capsys):
    assert not check("3.2.1", lambda t: F.softplus(-t).mean().reshape(1), seed=0)
    assert "wrong shape: expected (), got (1,)" in capsys.readouterr().out
    assert not check("3.3.3", lambda u, c, s: (u + s * (c - u)).double(), seed=0)
    assert "wrong dtype: expected torch.float32, got torch.float64" in capsys.readouterr().out
    assert not check("3.1.1", lambda q, k, v: q, seed=0)
    assert "should be a tuple of 2 items" in capsys.readouterr().out
    assert not check("1.2", lambda x: None, seed=0)
    assert "forget to `return`" in capsys.readouterr().out
    assert not check("4.1.3", lambda b, h, t, d: 4.0 * b * h * t * t * d, seed=0)
    assert "should be an int, got float" in capsys.readouterr().out


def test_check_result_fields_for_a_grader():
    result = check("3.2.1", lambda t: -F.softplus(-t).mean(), seed=4, quiet=True)
    data = result.to_dict()
    assert data["exercise_id"] == "3.2.1" and data["status"] == "failed" and data["passed"] is False
    assert data["problem"] == "wrong value" and data["seed"] == 4 and data["case"]
    assert "wrong sign" in data["likely_cause"] and data["message"] == result.message
    assert 0 <= data["cases_passed"] < data["cases_total"]
    assert json.loads(json.dumps(data)) == data


# ---------------------------------------------------------------------------- ids, hints, solutions


@pytest.mark.parametrize("call", [lambda: hint("3.1"), lambda: solution("x")])
def test_bad_ids_list_the_valid_ones(call):
    with pytest.raises(ValueError) as err:
        call()
    assert all(i in str(err.value) for i in exercise_ids())


def test_hint_levels_grow_and_end_with_a_pointer_to_the_solution(capsys):
    for exercise_id in exercise_ids():
        levels = REGISTRY[exercise_id].hints
        assert len(levels) >= 2
        hint(exercise_id)
        first = capsys.readouterr().out
        hint(exercise_id, len(levels) + 5)
        last = capsys.readouterr().out
        assert levels[0] in first and f'hint("{exercise_id}", 2)' in first
        assert levels[-1] in last and f'solution("{exercise_id}")' in last
    with pytest.raises(ValueError, match="level"):
        hint("3.1.1", 0)


@pytest.mark.parametrize("exercise_id", exercise_ids())
def test_solution_prints_the_notebook_code(exercise_id, capsys):
    solution(exercise_id)
    out = capsys.readouterr().out
    assert f"def {REGISTRY[exercise_id].function}(" in out and BEGIN not in out


def test_the_package_lists_exercises_and_points_tooling_to_scripts(capsys):
    assert exercises_main(["list"]) == 0
    assert "3.1.1  Causal (masked) self-attention" in capsys.readouterr().out
    assert exercises_main(["build"]) == 2
    assert "scripts/build_chapters.py" in capsys.readouterr().err


def test_the_package_does_not_import_repository_tooling():
    imported = set()
    for path in (ROOT / "aigc_course" / "exercises").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
    assert imported <= {"__future__", "aigc_course", "torch", "numpy", "math", "random", "copy", "inspect", "io",
                        "re", "json", "reprlib", "traceback", "warnings", "contextlib", "collections",
                        "dataclasses", "pathlib", "typing", "argparse", "sys", "importlib", "pkgutil", "functools",
                        "librosa"}, imported  # librosa: the references of exercises 2.3.3 (a runtime dependency)


# ---------------------------------------------------------------------------- generated files


def test_each_chapter_notebook_has_three_to_six_exercises_and_covers_the_registry():
    seen = []
    for chapter in CHAPTERS:
        ids = list(exercise_cells(SOLUTIONS / chapter.exercises))
        assert 3 <= len(ids) <= 6, (chapter.exercises, ids)
        seen += ids
    assert sorted(seen) == sorted(exercise_ids())


def test_exercise_titles_are_written_once_in_the_registry():
    with pytest.raises(ValueError, match="without a title"):
        heading_id("## Exercise 3.1.1: Causal attention\n\ntext", "nb.ipynb")
    for chapter in CHAPTERS:
        text = (STUDENT / chapter.exercises).read_text(encoding="utf-8")
        for exercise_id in exercise_cells(SOLUTIONS / chapter.exercises):
            assert f"## Exercise {exercise_id}: {REGISTRY[exercise_id].title}" in text


def test_generator_is_idempotent(tmp_path):
    shutil.copytree(SOLUTIONS, tmp_path / "exercises" / "solutions")
    pages = {c.exercises: c.exercises_page for c in CHAPTERS}
    files = build_exercises.outputs(tmp_path, pages)
    assert len(files) == 2 * len(CHAPTERS)
    assert build_exercises.outputs(tmp_path, pages) == files
    for path, text in files.items():  # the same bytes as the committed copies
        assert text == (ROOT / path.relative_to(tmp_path)).read_text(encoding="utf-8")


@pytest.mark.parametrize(("title", "in_sentence"), [
    ("The mel filterbank", "the mel filterbank"),
    ("Causal (masked) self-attention", "causal (masked) self-attention"),
    ("RMSNorm", "RMSNorm"),
    ("TF-IDF vectors", "TF-IDF vectors"),
    ("Griffin–Lim: phases for a magnitude spectrogram", "Griffin–Lim: phases for a magnitude spectrogram"),
])
def test_exercise_titles_keep_names_and_acronyms_inside_a_sentence(title, in_sentence):
    assert build_exercises.mid_sentence(title) == in_sentence


def test_a_solution_notebook_no_chapter_lists_is_an_error(tmp_path):
    shutil.copytree(SOLUTIONS, tmp_path / "exercises" / "solutions")
    pages = {c.exercises: c.exercises_page for c in CHAPTERS[1:]}
    with pytest.raises(ValueError, match=CHAPTERS[0].exercises):
        build_exercises.outputs(tmp_path, pages)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.exercises)
def test_student_notebooks_hide_every_solution(chapter):
    text = (STUDENT / chapter.exercises).read_text(encoding="utf-8")
    assert BEGIN not in text and BEGIN_HIDDEN not in text
    for exercise_id, parts in exercise_cells(SOLUTIONS / chapter.exercises).items():
        assert f'raise NotImplementedError(\\"Exercise {exercise_id}: ' in text
        body = [line.strip() for line in strip_markers(parts["source"]).splitlines()[2:] if line.strip()]
        assert not any(line in text for line in body if line.startswith("return "))


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.exercises)
def test_book_pages_use_sphinx_exercise_with_folded_solutions(chapter):
    text = (ROOT / f"{chapter.exercises_page}.md").read_text(encoding="utf-8")
    ids = list(exercise_cells(SOLUTIONS / chapter.exercises))
    title = text.splitlines()[0]
    assert title.startswith(f"# {chapter.section} Exercises: ") and re.search(r"[\u4e00-\u9fff]", title)
    assert text.count("::::{exercise}") == len(ids) == text.count(":class: dropdown")
    for exercise_id in ids:
        assert f":label: ex-{exercise_id.replace('.', '-')}" in text
        assert f"::::{{exercise}} {exercise_id} {REGISTRY[exercise_id].title}" in text


def test_exercise_pages_end_their_chapters_in_the_toc():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    chapters = {c["file"]: c for part in toc["parts"] for c in part.get("chapters", [])}
    for chapter in CHAPTERS:
        assert chapters[chapter.index]["sections"][-1]["file"] == chapter.exercises_page


def test_student_book_config_hides_solutions(tmp_path):
    out = tmp_path / "student.yml"
    build_exercises.student_book_config(out)
    config = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert config["sphinx"]["config"]["hide_solutions"] is True
    assert "sphinx_exercise" in config["sphinx"]["extra_extensions"]

