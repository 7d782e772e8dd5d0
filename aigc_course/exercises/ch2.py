"""Chapter 2 exercises: a class-conditional Gaussian's log-density, a GPT's parameter count,
CLIP's symmetric InfoNCE loss, and three parts of LLaMA: RoPE, RMSNorm and a grouped-query
attention step.

References: :func:`aigc_course.generative_classifiers.gaussian_log_density` (eq. 2.1.1),
:func:`aigc_course.scaling.gpt_parameter_count` (eq. 2.2.1),
:func:`aigc_course.multimodal.clip_loss` (eq. 2.3.1), :func:`aigc_course.llama.rope` (eq. 2.2.3),
:func:`aigc_course.llama.rms_norm` (eq. 2.2.2) and
:func:`aigc_course.llama.grouped_query_attention` (eq. 2.2.5).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from aigc_course.attention import repeat_kv_heads
from aigc_course.exercises.core import Case, Exercise, Variant, register
from aigc_course.generative_classifiers import gaussian_log_density
from aigc_course.llama import grouped_query_attention, rms_norm, rope
from aigc_course.multimodal import clip_loss
from aigc_course.scaling import gpt_parameter_count

# ---------------------------------------------------------------------------- 2.1 log N(x; mu, Sigma)


def _spd(gen: torch.Generator, d: int) -> torch.Tensor:
    a = torch.randn(d, d, generator=gen, dtype=torch.float64)
    return a @ a.T / d + 0.3 * torch.eye(d, dtype=torch.float64)


def _gauss_cases(gen: torch.Generator, device) -> list[Case]:
    cases = []
    for name, n, d in (("5-D, a random covariance", 8, 5), ("3-D, a random covariance", 6, 3),
                       ("64-D like the digits", 4, 64)):
        x = torch.randn(n, d, generator=gen, dtype=torch.float64)
        mean = torch.randn(d, generator=gen, dtype=torch.float64)
        cases.append(Case(name, (x.to(device), mean.to(device), _spd(gen, d).to(device))))
    diag = torch.diag(0.5 + torch.rand(4, generator=gen, dtype=torch.float64))
    cases.append(Case("a diagonal covariance (independent pixels)",
                      (torch.randn(5, 4, generator=gen, dtype=torch.float64).to(device),
                       torch.zeros(4, dtype=torch.float64).to(device), diag.to(device))))
    cases.append(Case("1-D standard normal at x = 0, 1, 2",
                      (torch.tensor([[0.0], [1.0], [2.0]], dtype=torch.float64).to(device),
                       torch.zeros(1, dtype=torch.float64).to(device), torch.eye(1, dtype=torch.float64).to(device))))
    return cases


def _quad(x, mean, cov):
    r = x - mean
    return (r @ torch.linalg.inv(cov) * r).sum(1)


def _logdet(cov):
    return torch.linalg.slogdet(cov)[1]


register(Exercise(
    id="2.1",
    title="The class-conditional Gaussian log-density",
    function="class_log_density",
    reference=gaussian_log_density,
    cases=_gauss_cases,
    variants=[
        Variant("missing the factor 1/2 in front of the quadratic form (x − μ)ᵀ Σ⁻¹ (x − μ)",
                lambda c: gaussian_log_density(*c.args) - 0.5 * _quad(*c.args)),
        Variant("missing the normalising term −½ log det Σ: without it the density does not integrate to 1",
                lambda c: gaussian_log_density(*c.args) + 0.5 * _logdet(c.args[2])),
        Variant("missing the constant −(D/2) log 2π",
                lambda c: gaussian_log_density(*c.args) + 0.5 * c.args[0].shape[1] * math.log(2 * math.pi)),
        Variant("the quadratic form uses Σ itself; it needs the inverse, (x − μ)ᵀ Σ⁻¹ (x − μ)",
                lambda c: gaussian_log_density(*c.args) + 0.5 * _quad(*c.args)
                - 0.5 * (((c.args[0] - c.args[1]) @ c.args[2]) * (c.args[0] - c.args[1])).sum(1)),
        Variant("the log-determinant needs the factor 1/2: −½ log det Σ, not −log det Σ",
                lambda c: gaussian_log_density(*c.args) - 0.5 * _logdet(c.args[2])),
        Variant("wrong sign: return the log-density log N(x; μ, Σ) (mostly negative), not the negative "
                "log-likelihood", lambda c: -gaussian_log_density(*c.args)),
        Variant("you returned the density N(x; μ, Σ) itself; return its logarithm (exp underflows in 64 "
                "dimensions)", lambda c: gaussian_log_density(*c.args).exp()),
        Variant("the quadratic form is summed over the wrong axis: sum over dim 1 (the D features of a "
                "row), so each of the N rows gets its own number",
                lambda c: -0.5 * ((c.args[0] - c.args[1]) @ torch.linalg.inv(c.args[2]) * (c.args[0] - c.args[1]))
                .sum(0) - 0.5 * _logdet(c.args[2]) - 0.5 * c.args[0].shape[1] * math.log(2 * math.pi)),
    ],
    hints=[
        "log N(x; μ, Σ) = −½ (x − μ)ᵀ Σ⁻¹ (x − μ) − ½ log det Σ − (D/2) log 2π, for each row of x. "
        "Return one number per row: shape (N,).",
        "With r = x − mean of shape (N, D), the quadratic form of every row at once is "
        "((r @ torch.linalg.inv(cov)) * r).sum(1); torch.linalg.slogdet(cov)[1] is log det Σ. "
        "(A Cholesky factor, torch.linalg.cholesky, is the stabler route the package takes.)",
        "r = x - mean\n"
        "quad = ((r @ torch.linalg.inv(cov)) * r).sum(1)\n"
        "return -0.5 * quad - 0.5 * torch.linalg.slogdet(cov)[1] - 0.5 * x.shape[1] * math.log(2 * math.pi)",
    ],
    explanation=(
        "The Gaussian density $\\mathcal N(x; \\mu, \\Sigma) = (2\\pi)^{-D/2} (\\det\\Sigma)^{-1/2}"
        "\\exp(-\\tfrac12 (x-\\mu)^\\top\\Sigma^{-1}(x-\\mu))$ has the log of eq. 2.1.1. The first term "
        "measures how far $x$ is from the class mean in the class's own units (the Mahalanobis distance); "
        "the other two make the density integrate to 1, and the determinant term matters for "
        "classification whenever classes have different covariances. Adding $\\log p(y)$ gives the "
        "joint that Bayes' rule normalises into $p(y \\mid x)$."
    ),
    atol=1e-8,
    rtol=1e-8,
))


# ---------------------------------------------------------------------------- 2.2 parameter count


def _count_cases(gen: torch.Generator, device) -> list[Case]:
    def draw(low, high):
        return int(torch.randint(low, high, (1,), generator=gen))

    return [
        Case("a random small GPT", (draw(50, 300), draw(16, 129), draw(1, 7), 8 * draw(2, 17))),
        Case("another random small GPT", (draw(50, 300), draw(16, 129), draw(1, 7), 8 * draw(2, 17))),
        Case("the course's default GPTConfig", (256, 128, 4, 128)),
        Case("GPT-2 small (124M)", (50257, 1024, 12, 768)),
        Case("GPT-3 175B", (50257, 2048, 96, 12288)),
        Case("one layer of width 1 (every term shows)", (3, 2, 1, 1)),
    ]


def _variant(fn):
    return lambda c: fn(*c.args)


register(Exercise(
    id="2.2",
    title="The parameter count of a GPT",
    function="gpt_param_count",
    reference=gpt_parameter_count,
    cases=_count_cases,
    variants=[
        Variant("the output head is tied to the token embedding: it adds no parameters of its own",
                _variant(lambda v, t, n, d: gpt_parameter_count(v, t, n, d) + v * d)),
        Variant("missing the position embedding, T·d",
                _variant(lambda v, t, n, d: gpt_parameter_count(v, t, n, d) - t * d)),
        Variant("missing the biases: 4d per attention layer (3d + d) and 5d per MLP (4d + d)",
                _variant(lambda v, t, n, d: gpt_parameter_count(v, t, n, d) - n * 9 * d)),
        Variant("missing the LayerNorms: two per block and a final one, each with a gain and a shift (2d)",
                _variant(lambda v, t, n, d: gpt_parameter_count(v, t, n, d) - (2 * n + 1) * 2 * d)),
        Variant("missing the final LayerNorm (2d)",
                _variant(lambda v, t, n, d: gpt_parameter_count(v, t, n, d) - 2 * d)),
        Variant("the MLP has a hidden width of 4d, so its two matrices hold 8d², not 2d²",
                _variant(lambda v, t, n, d: gpt_parameter_count(v, t, n, d) - n * 6 * d * d - n * 3 * d)),
        Variant("attention has four d×d matrices (Q, K, V and the output projection): 4d², not 3d²",
                _variant(lambda v, t, n, d: gpt_parameter_count(v, t, n, d) - n * d * d - n * d)),
        Variant("each of the n_layer blocks has its own weights: multiply the per-block count by n_layer",
                _variant(lambda v, t, n, d: gpt_parameter_count(v, t, 1, d))),
        Variant("a LayerNorm has a gain *and* a shift: 2d parameters, not d",
                _variant(lambda v, t, n, d: gpt_parameter_count(v, t, n, d) - (2 * n + 1) * d)),
    ],
    hints=[
        "Go through the model's pieces: token embedding (V×d), position embedding (T×d), then per "
        "layer: attention (Q, K, V projection d→3d and output projection d→d, with biases), MLP "
        "(d→4d→d, with biases), two LayerNorms (gain and shift); then a final LayerNorm. The head "
        "is tied to the token embedding.",
        "Per layer: attention 4d² + 4d, MLP 8d² + 5d, LayerNorms 4d: 12d² + 13d in all. Return an int.",
        "return vocab_size * n_embd + block_size * n_embd + n_layer * (12 * n_embd**2 + 13 * n_embd) + 2 * n_embd",
    ],
    explanation=(
        "Eq. 2.2.1: $N = Vd + Td + L(12d^2 + 13d) + 2d$. For large models only $12Ld^2$ matters: "
        "GPT-3's $L = 96$, $d = 12288$ give $1.74 \\times 10^{11}$ of its $1.746 \\times 10^{11}$ "
        "parameters; two thirds sit in the MLPs. The head count does not appear, because splitting "
        "$d$ into heads does not change the size of the projections."
    ),
))


# ---------------------------------------------------------------------------- 2.3 InfoNCE


def _nce_cases(gen: torch.Generator, device) -> list[Case]:
    def emb(b, e, scale=1.0):
        return (scale * torch.randn(b, e, generator=gen)).to(device)

    u = emb(6, 4)
    return [
        Case("8 random pairs, width 16, scale 10", (emb(8, 16), emb(8, 16), 10.0)),
        Case("5 pairs of large unnormalised vectors, scale 3", (emb(5, 8, 40.0), emb(5, 8, 0.1), 3.0)),
        Case("nearly matching pairs, scale 14.3 (temperature 0.07)", (u, u + 0.1 * emb(6, 4), 1 / 0.07)),
        Case("a tensor scale (CLIP learns it)", (emb(4, 8), emb(4, 8), torch.tensor(5.0, device=device))),
        Case("one pair: nothing to contrast, the loss is 0", (emb(1, 8), emb(1, 8), 10.0)),
    ]


def _rows_only(c: Case):
    u, v, s = c.args
    logits = s * F.normalize(u, dim=-1) @ F.normalize(v, dim=-1).T
    return F.cross_entropy(logits, torch.arange(len(u), device=logits.device))


def _columns_only(c: Case):
    u, v, s = c.args
    logits = s * F.normalize(u, dim=-1) @ F.normalize(v, dim=-1).T
    return F.cross_entropy(logits.T, torch.arange(len(u), device=logits.device))


def _no_norm(c: Case):
    u, v, s = c.args
    logits = s * u @ v.T
    t = torch.arange(len(u), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, t) + F.cross_entropy(logits.T, t))


register(Exercise(
    id="2.3",
    title="The symmetric InfoNCE loss of CLIP",
    function="info_nce_loss",
    reference=clip_loss,
    cases=_nce_cases,
    variants=[
        Variant("only one direction: average the image→text (rows) and text→image (columns) cross-entropies",
                _rows_only),
        Variant("the embeddings must be normalised to unit length first (cosine similarity)", _no_norm),
        Variant("the logits must be multiplied by logit_scale (= 1/temperature)",
                lambda c: clip_loss(c.args[0], c.args[1], 1.0)),
        Variant("you summed over the batch; the loss is the mean over the B pairs",
                lambda c: clip_loss(*c.args) * len(c.args[0])),
        Variant("you added the two directions; the loss is their average (½ of the sum)",
                lambda c: clip_loss(*c.args) * 2),
        Variant("only one direction: average the image→text (rows) and text→image (columns) cross-entropies",
                _columns_only),
        Variant("logit_scale is 1/temperature: multiply the cosine similarities by it, do not divide",
                lambda c: clip_loss(c.args[0], c.args[1], 1 / c.args[2])),
    ],
    hints=[
        "Normalise both (B, E) inputs to unit rows, form the B×B matrix of logits "
        "logit_scale · u @ v.T, and note that pair i sits on the diagonal, at (i, i).",
        "Cross-entropy of each row against target i gives image→text; the same on the transposed "
        "matrix gives text→image. F.cross_entropy(logits, torch.arange(B)) averages over rows. "
        "Return the mean of the two, a 0-dim tensor.",
        "u, v = F.normalize(image_emb, dim=-1), F.normalize(text_emb, dim=-1)\n"
        "logits = logit_scale * u @ v.T\n"
        "targets = torch.arange(len(logits), device=logits.device)\n"
        "return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets))",
    ],
    explanation=(
        "Eq. 2.3.1: each row of the similarity matrix is a $B$-way classification \"which caption "
        "belongs to this image?\", each column \"which image belongs to this caption?\". Minimising "
        "both pulls matching pairs together and pushes the $B - 1$ mismatches apart. The loss is at "
        "most about $\\log B$ for an untrained model, and a lower bound on the mutual information "
        "between the modalities is $\\log B - \\mathcal L$ (van den Oord et al. 2018). The "
        "temperature sets how sharply the softmax separates near misses."
    ),
))


# ---------------------------------------------------------------------------- 2.4 RoPE


def _rope_cases(gen: torch.Generator, device) -> list[Case]:
    def randn(*shape):
        return torch.randn(shape, generator=gen, dtype=torch.float64).to(device)

    return [
        Case("queries (2, 4, 6, 8) at positions 0..5", (randn(2, 4, 6, 8), torch.arange(6).to(device), 10000.0)),
        Case("keys (3, 5, 16) at positions 100..104, base 500",
             (randn(3, 5, 16), torch.arange(100, 105).to(device), 500.0)),
        Case("positions that are not consecutive: 0, 3, 7, 50", (randn(1, 4, 4), torch.tensor([0, 3, 7, 50]).to(device),
                                                                  10000.0)),
        Case("head size 2: one pair, turned by p radians", (randn(5, 2), torch.arange(5).to(device), 10000.0)),
        Case("a token at position 0 is not rotated", (randn(1, 1, 12), torch.zeros(1, dtype=torch.long).to(device),
                                                      10000.0)),
    ]


def _rope_with(theta_fn, pairs="half", sign=1.0):
    """rope with another frequency rule, pairing or direction: the mistakes a student makes."""
    def fn(c: Case):
        x, positions, base = c.args
        d = x.shape[-1]
        theta = theta_fn(d, base).to(x.device, x.dtype)
        angles = positions.to(x.dtype)[:, None] * theta[None, :]
        cos, sin = angles.cos(), sign * angles.sin()
        if pairs == "half":
            x1, x2 = x[..., : d // 2], x[..., d // 2 :]
            return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)
        x1, x2 = x[..., 0::2], x[..., 1::2]  # neighbours (2i, 2i + 1)
        return torch.stack([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).flatten(-2)
    return fn


def _theta(d, base):
    return base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)


register(Exercise(
    id="2.4",
    title="Rotary position embedding (RoPE)",
    function="rotary",
    reference=rope,
    cases=_rope_cases,
    variants=[
        Variant("you paired neighbouring features (2i, 2i + 1), as Meta's code does; here feature i is paired "
                "with feature i + d/2 (the layout of Hugging Face's Llama and the course)",
                _rope_with(_theta, pairs="neighbours")),
        Variant("each pair is turned the wrong way: x'_i = x_i cos − x_{i+d/2} sin and "
                "x'_{i+d/2} = x_{i+d/2} cos + x_i sin", _rope_with(_theta, sign=-1.0)),
        Variant("θ_i = base^(−2i/d): the exponent steps by 2/d per pair, not 1/d",
                _rope_with(lambda d, base: base ** (-torch.arange(0, d // 2, dtype=torch.float64) / d))),
        Variant("θ_i = base^(−2i/d) with a minus sign: the rotation slows down for later pairs, it does not speed up",
                _rope_with(lambda d, base: base ** (torch.arange(0, d, 2, dtype=torch.float64) / d))),
        Variant("the angle is the position times θ_i, p·θ_i; you used the position alone for every pair",
                _rope_with(lambda d, base: torch.ones(d // 2, dtype=torch.float64))),
    ],
    hints=[
        "Split the last dimension in halves x1 = x[..., :d/2] and x2 = x[..., d/2:]: feature i pairs with "
        "feature i + d/2. The angle of pair i at position p is p·θ_i with θ_i = base^(−2i/d).",
        "theta = base ** (-torch.arange(0, d, 2, dtype=x.dtype, device=x.device) / d) has d/2 entries; "
        "angles = positions.to(x.dtype)[:, None] * theta[None, :] is (T, d/2) and broadcasts against x1. "
        "Rotate: (x1 cos − x2 sin, x2 cos + x1 sin), then torch.cat the halves.",
        "d = x.shape[-1]\n"
        "theta = base ** (-torch.arange(0, d, 2, dtype=x.dtype, device=x.device) / d)\n"
        "angles = positions.to(x.dtype)[:, None] * theta[None, :]\n"
        "cos, sin = angles.cos(), angles.sin()\n"
        "x1, x2 = x[..., : d // 2], x[..., d // 2 :]\n"
        "return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)",
    ],
    explanation=(
        "Eq. 2.2.3 treats each pair $(x_i, x_{i+d/2})$ as a complex number and multiplies it by "
        "$e^{\\mathrm{i}\\,p\\theta_i}$. A rotation keeps the length, and $\\langle R_m q, R_n k\\rangle = "
        "\\langle q, R_{n-m} k\\rangle$: the attention score of a query at $m$ and a key at $n$ depends on "
        "$n - m$ only. Fast pairs ($\\theta_0 = 1$ radian per position) tell neighbours apart; slow ones "
        "($\\theta \\approx 1/\\text{base}$) change little over thousands of positions."
    ),
    atol=1e-6,
    rtol=1e-6,
))


# ---------------------------------------------------------------------------- 2.5 RMSNorm


def _rms_cases(gen: torch.Generator, device) -> list[Case]:
    def randn(*shape, scale=1.0, shift=0.0):
        return (scale * torch.randn(shape, generator=gen) + shift).to(device)

    return [
        Case("activations (2, 5, 16) with a mean of 3, a random gain", (randn(2, 5, 16, scale=2.0, shift=3.0),
                                                                        randn(16), 1e-6)),
        Case("one vector (8,), gain 1", (randn(8), torch.ones(8, device=device), 1e-6)),
        Case("tiny activations, eps 0.01 matters", (randn(3, 4, scale=1e-2), randn(4), 1e-2)),
        Case("a row of zeros stays zero (eps avoids 0/0)", (torch.zeros(2, 6, device=device), randn(6), 1e-6)),
        Case("wide rows (4, 64), eps 1e-5", (randn(4, 64, shift=-1.0), randn(64), 1e-5)),
    ]


def _rms_variant(fn):
    return lambda c: fn(*c.args)


register(Exercise(
    id="2.5",
    title="RMSNorm",
    function="rms_norm",
    reference=rms_norm,
    cases=_rms_cases,
    variants=[
        Variant("you subtracted the mean: that is LayerNorm. RMSNorm only divides by the root mean square",
                _rms_variant(lambda x, w, eps: w * (x - x.mean(-1, keepdim=True))
                             / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + eps))),
        Variant("eps goes inside the square root: x / sqrt(mean(x²) + eps)",
                _rms_variant(lambda x, w, eps: w * x / (torch.sqrt(x.pow(2).mean(-1, keepdim=True)) + eps))),
        Variant("divide by the *root* of the mean square, sqrt(mean(x²) + eps), not by the mean square itself",
                _rms_variant(lambda x, w, eps: w * x / (x.pow(2).mean(-1, keepdim=True) + eps))),
        Variant("multiply by the gain `weight` at the end",
                _rms_variant(lambda x, w, eps: rms_norm(x, torch.ones_like(w), eps))),
        Variant("the mean of x² runs over the last dimension only (each vector on its own), not the whole tensor",
                _rms_variant(lambda x, w, eps: w * x / torch.sqrt(x.pow(2).mean() + eps))),
        Variant("the mean of squares divides by the number of features: you summed x² instead",
                _rms_variant(lambda x, w, eps: w * x / torch.sqrt(x.pow(2).sum(-1, keepdim=True) + eps))),
    ],
    hints=[
        "For each vector along the last dimension: the root mean square sqrt(mean(x²) + eps), then "
        "x divided by it, then times the gain. Nothing is subtracted.",
        "x.pow(2).mean(dim=-1, keepdim=True) has shape (..., 1) and broadcasts against x; "
        "torch.rsqrt(...) is 1 / sqrt(...).",
        "return weight * x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)",
    ],
    explanation=(
        "Eq. 2.2.2, $y = g \\odot x / \\sqrt{\\tfrac1C \\sum_i x_i^2 + \\epsilon}$, fixes each vector's scale "
        "and keeps its direction. LayerNorm also subtracts the mean and adds a shift; Zhang & Sennrich (2019) "
        "found the re-centring unnecessary, and dropping it saves a reduction per norm. $\\epsilon$ only "
        "matters for vectors near zero, where it keeps $0/0$ away."
    ),
))


# ---------------------------------------------------------------------------- 2.6 one GQA step


def _gqa_cases(gen: torch.Generator, device) -> list[Case]:
    def randn(*shape):
        return (1.5 * torch.randn(shape, generator=gen)).to(device)

    cases = []
    for name, (b, h, hkv, t, d) in (("8 query heads, 2 K/V heads, 6 cached tokens", (2, 8, 2, 6, 8)),
                                    ("6 query heads, 3 K/V heads, 9 cached tokens", (1, 6, 3, 9, 4)),
                                    ("multi-query: 4 query heads share 1 K/V head", (3, 4, 1, 5, 8)),
                                    ("multi-head: as many K/V heads as query heads", (2, 4, 4, 7, 8))):
        cases.append(Case(name, (randn(b, h, 1, d), randn(b, hkv, t, d), randn(b, hkv, t, d))))
    cases.append(Case("values of another width d_v = 3", (randn(1, 4, 1, 8), randn(1, 2, 5, 8), randn(1, 2, 5, 3))))
    return cases


def _gqa_tiled(c: Case):
    q, k, v = c.args
    group = q.shape[1] // k.shape[1]
    return grouped_query_attention(q, k.repeat(1, group, 1, 1), v.repeat(1, group, 1, 1))


register(Exercise(
    id="2.6",
    title="One decoding step of grouped-query attention",
    function="gqa_step",
    reference=grouped_query_attention,
    cases=_gqa_cases,
    variants=[
        Variant("query head h reads K/V head h // (H / H_kv): neighbouring query heads share a K/V head. You "
                "cycled through the K/V heads (h mod H_kv)", _gqa_tiled),
        Variant("missing the 1/√d scaling of the scores",
                lambda c: grouped_query_attention(c.args[0] * math.sqrt(c.args[0].shape[-1]), *c.args[1:])),
        Variant("every query head used the first K/V head; each group of H / H_kv query heads has its own",
                lambda c: grouped_query_attention(c.args[0], c.args[1][:, :1], c.args[2][:, :1])),
        Variant("the softmax runs over the cached tokens (the last dimension of the scores), not over the heads",
                lambda c: torch.softmax(c.args[0] @ repeat_kv_heads(c.args[1], c.args[0].shape[1]).transpose(-2, -1)
                                        / math.sqrt(c.args[0].shape[-1]), dim=1)
                @ repeat_kv_heads(c.args[2], c.args[0].shape[1])),
    ],
    hints=[
        "With H query heads and H_kv K/V heads, each K/V head serves a group of H / H_kv consecutive query "
        "heads. Give every query head its K/V head, then attend as usual: softmax(q kᵀ / √d) v.",
        "k.repeat_interleave(H // H_kv, dim=1) turns (B, H_kv, T, d) into (B, H, T, d) with head j repeated "
        "for query heads j·H/H_kv .. (j+1)·H/H_kv − 1. The new token may see every cached token: no mask.",
        "group = q.shape[1] // k.shape[1]\n"
        "k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)\n"
        "weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)\n"
        "return weights @ v",
    ],
    explanation=(
        "Eq. 2.2.5: $\\text{head}_h = \\text{softmax}(q_h K_g^\\top/\\sqrt d)\\,V_g$ with $g = \\lfloor h / "
        "(H/H_{kv}) \\rfloor$. The cache stores $H_{kv}$ heads instead of $H$, so a decoding step reads "
        "$H/H_{kv}$ times fewer bytes of keys and values -- the cost that dominates generation from large "
        "models (Ainslie et al. 2023). LLaMA 2 70B uses 8 K/V heads for 64 query heads."
    ),
))
