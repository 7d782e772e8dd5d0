"""The exercise checker: accepts the solutions, rejects planted mistakes with specific messages,
and the student notebooks and book pages generated from the solution notebooks are up to date."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from aigc_course.exercises import REGISTRY, check, exercise_ids, hint, solution
from aigc_course.exercises.__main__ import main, student_book_config
from aigc_course.exercises.build import BEGIN, BEGIN_HIDDEN, PAGES, build, exercise_cells, stale

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "exercises" / "solutions"
STUDENT = ROOT / "exercises" / "student"


def solution_functions() -> dict[str, object]:
    """Each exercise's solution function, executed from the solution notebooks' solution cells."""
    namespace: dict = {}
    exec(
        "import math\nimport numpy as np\nimport torch\nimport torch.nn.functional as F\n"
        "from aigc_course.classic.expert_system import Rule\nfrom aigc_course.diffusion import NoiseSchedule",
        namespace,
    )
    for page in PAGES:
        for parts in exercise_cells(SOLUTIONS / page.notebook).values():
            exec(parts["solution"], namespace)
    return {i: namespace[REGISTRY[i].function] for i in exercise_ids()}


SOLVED = solution_functions()


# ---------------------------------------------------------------------------- accepting


@pytest.mark.parametrize("exercise_id", exercise_ids())
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_checker_accepts_the_notebook_solution(exercise_id, seed, capsys):
    result = check(exercise_id, SOLVED[exercise_id], seed=seed)
    out = capsys.readouterr().out
    assert result and result.passed, out
    assert out.startswith("✓") and "cases passed" in out


@pytest.mark.parametrize("exercise_id", [i for i in exercise_ids() if REGISTRY[i].reference is not None])
def test_checker_accepts_the_package_reference(exercise_id):
    assert check(exercise_id, REGISTRY[exercise_id].reference, seed=3, quiet=True)


def test_the_check_draws_fresh_inputs_unless_seeded():
    names = [c.args[0].sum().item() for c in REGISTRY["3.1.2"].cases(torch.Generator().manual_seed(5), "cpu")]
    again = [c.args[0].sum().item() for c in REGISTRY["3.1.2"].cases(torch.Generator().manual_seed(5), "cpu")]
    other = [c.args[0].sum().item() for c in REGISTRY["3.1.2"].cases(torch.Generator().manual_seed(6), "cpu")]
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
    ("3.1.1", attention_masked_after_softmax, "rows do not sum to 1"),
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


@pytest.mark.parametrize(("exercise_id", "wrong", "message"), PLANTED, ids=[f"{i}-{f.__name__}" for i, f, _ in PLANTED])
def test_checker_rejects_planted_mistake_with_its_message(exercise_id, wrong, message, capsys):
    # on the CPU: some planted answers also forget the device, which is not the mistake tested here
    result = check(exercise_id, wrong, seed=7, device="cpu")
    out = capsys.readouterr().out
    assert not result and result.attempted and result.status == "failed"
    assert message in out, out
    assert "Traceback" not in out
    if wrong is attention_peeks_ahead:  # names a query and the *next* key it wrongly sees
        i, j = map(int, re.search(r"position (\d+) attend to position (\d+)", out).groups())
        assert j == i + 1
    assert result.case and result.case in out  # names the failing case


def test_every_exercise_has_at_least_two_planted_mistakes():
    counts = {i: sum(1 for j, _, _ in PLANTED if j == i) for i in exercise_ids()}
    assert all(n >= 2 for n in counts.values()), counts


# ---------------------------------------------------------------------------- verdicts


@pytest.mark.parametrize("exercise_id", exercise_ids())
def test_not_implemented_is_not_attempted_yet(exercise_id, capsys):
    def unfinished(*args, **kwargs):
        raise NotImplementedError(f"Exercise {exercise_id}")

    result = check(exercise_id, unfinished)
    out = capsys.readouterr().out
    assert result.status == "not attempted" and not result and not result.attempted
    assert "not attempted yet" in out and "Traceback" not in out


def test_an_error_in_student_code_is_reported_briefly(capsys):
    def broken(logits, k):
        scale = 1 / 0
        return logits * scale

    result = check("3.1.2", broken, seed=0)
    out = capsys.readouterr().out
    assert result.status == "failed"
    assert "ZeroDivisionError" in out and "line 2 of broken" in out and "scale = 1 / 0" in out
    assert "Traceback" not in out


def test_shape_and_dtype_mistakes_show_expected_and_actual(capsys):
    assert not check("3.2.1", lambda t: F.softplus(-t).mean().reshape(1), seed=0)
    assert "wrong shape: expected (), got (1,)" in capsys.readouterr().out
    assert not check("3.3.3", lambda u, c, s: (u + s * (c - u)).double(), seed=0)
    assert "wrong dtype: expected torch.float32, got torch.float64" in capsys.readouterr().out
    assert not check("3.1.1", lambda q, k, v: q, seed=0)
    assert "should be a tuple of 2 items" in capsys.readouterr().out
    assert not check("1.2", lambda x: None, seed=0)
    assert "should be a number" in capsys.readouterr().out


def test_a_non_function_is_rejected_kindly(capsys):
    assert not check("3.3.3", 42)
    assert "check expects your function guided_noise" in capsys.readouterr().out


def test_student_edits_to_inputs_do_not_change_the_reference():
    def in_place(logits, k):
        kth = torch.topk(logits, min(k, logits.shape[-1]), dim=-1).values[..., -1:]
        return logits.masked_fill_(logits < kth, float("-inf"))

    assert check("3.1.2", in_place, seed=0, quiet=True)


# ---------------------------------------------------------------------------- ids, hints, solutions


@pytest.mark.parametrize("call", [lambda: check("9.9", print), lambda: hint("3.1"), lambda: solution("x")])
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


# ---------------------------------------------------------------------------- generated files


def test_each_chapter_notebook_has_three_to_six_exercises_and_covers_the_registry():
    seen = []
    for page in PAGES:
        ids = list(exercise_cells(SOLUTIONS / page.notebook))
        assert 3 <= len(ids) <= 6, (page.notebook, ids)
        seen += ids
    assert sorted(seen) == sorted(exercise_ids())


def test_student_notebooks_are_up_to_date():
    assert stale(ROOT) == [], "run: make exercises"
    assert main(["check-built"]) == 0


def test_generator_is_idempotent(tmp_path):
    shutil.copytree(SOLUTIONS, tmp_path / "exercises" / "solutions")
    first = build(tmp_path)
    snapshot = {p: p.read_text(encoding="utf-8") for p in first}
    assert len(first) == 2 * len(PAGES)
    assert build(tmp_path) == [] and stale(tmp_path) == []
    assert {p: p.read_text(encoding="utf-8") for p in first} == snapshot
    for path in first:  # the same bytes as the committed copies
        assert snapshot[path] == (ROOT / path.relative_to(tmp_path)).read_text(encoding="utf-8")


def test_stale_detects_an_edited_solution(tmp_path):
    shutil.copytree(SOLUTIONS, tmp_path / "exercises" / "solutions")
    build(tmp_path)
    nb = tmp_path / "exercises" / "solutions" / PAGES[0].notebook
    nb.write_text(nb.read_text(encoding="utf-8").replace("Three exercises", "3 exercises"), encoding="utf-8")
    assert tmp_path / "exercises" / "student" / PAGES[0].notebook in stale(tmp_path)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.notebook)
def test_student_notebooks_hide_every_solution(page):
    text = (STUDENT / page.notebook).read_text(encoding="utf-8")
    assert BEGIN not in text and BEGIN_HIDDEN not in text
    for exercise_id, parts in exercise_cells(SOLUTIONS / page.notebook).items():
        assert f'raise NotImplementedError(\\"Exercise {exercise_id}: ' in text
        body = [line.strip() for line in parts["solution"].splitlines()[2:] if line.strip()]
        assert not any(line in text for line in body if line.startswith("return "))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.notebook)
def test_book_pages_use_sphinx_exercise_with_folded_solutions(page):
    text = (ROOT / page.page).read_text(encoding="utf-8")
    ids = list(exercise_cells(SOLUTIONS / page.notebook))
    assert text.startswith("# ") and "练习" in text.splitlines()[0]
    assert text.count("::::{exercise}") == len(ids) == text.count(":class: dropdown")
    for exercise_id in ids:
        assert f":label: ex-{exercise_id.replace('.', '-')}" in text


def test_exercise_pages_end_their_chapters_in_the_toc():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    chapters = {c["file"]: c for part in toc["parts"] for c in part.get("chapters", [])}
    for page in PAGES:
        folder = str(Path(page.page).parent)
        chapter = chapters.get(f"{folder}/index")
        if chapter is None:
            continue  # the chapter is not in the book yet
        assert chapter["sections"][-1]["file"] == f"{folder}/exercises", f"{folder}: exercises must come last"


def test_student_book_config_hides_solutions(tmp_path):
    out = tmp_path / "student.yml"
    student_book_config(out)
    config = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert config["sphinx"]["config"]["hide_solutions"] is True
    assert "sphinx_exercise" in config["sphinx"]["extra_extensions"]

