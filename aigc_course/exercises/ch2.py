"""Chapter 2 exercises: a class-conditional Gaussian's log-density, a GPT's parameter count and
CLIP's symmetric InfoNCE loss.

References: :func:`aigc_course.generative_classifiers.gaussian_log_density` (eq. 2.1.1),
:func:`aigc_course.scaling.gpt_parameter_count` (eq. 2.2.1) and
:func:`aigc_course.multimodal.clip_loss` (eq. 2.3.1).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from aigc_course.exercises.core import Case, Exercise, Variant, register
from aigc_course.generative_classifiers import gaussian_log_density
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
