"""How big is a large language model? Parameter counts, training compute and a scaling law.

Book 2.2. A GPT (book 3.1.3) with vocabulary ``V``, context ``T``, width ``d``, ``L`` layers
and biases has

.. math::

    N = \\underbrace{Vd + Td}_{\\text{embeddings}}
        + L\\,(\\underbrace{4d^2 + 4d}_{\\text{attention}} + \\underbrace{8d^2 + 5d}_{\\text{MLP}}
        + \\underbrace{4d}_{\\text{2 LayerNorms}}) + \\underbrace{2d}_{\\text{final LN}}
    \\qquad\\text{(eq. 2.2.1)}

parameters; the output head is tied to the token embedding and adds none. For large ``d``
this is ``N ~ 12 L d^2``, and training on ``D`` tokens costs ``C ~ 6 N D`` FLOPs
(Kaplan et al. 2020). :func:`parameter_count` implements eq. 2.2.1 for the course's
:class:`~aigc_course.gpt.GPTConfig`, for ``transformers.GPT2Config`` and for plain mappings
(such as :data:`GPT3_CONFIGS`, GPT-3's published shapes). :func:`fit_power_law` fits
``L(N) = a N^{-alpha}`` in log-log space, and :func:`run_scaling_experiment` trains a few
tiny GPTs on the same number of tokens to measure such a law on a CPU.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from aigc_course._checks import check_int, check_number
from aigc_course.gpt import GPT, GPTConfig

# GPT-3's eight models as published (Brown et al. 2020, Table 2.1): every one has a context of
# 2048 tokens and GPT-2's byte-level BPE vocabulary of 50,257 tokens. "13B" is listed with
# d_model = 5140 in the paper (not a multiple of its 40 heads); we keep the published number.
GPT3_CONFIGS: dict[str, dict] = {
    name: {"vocab_size": 50257, "block_size": 2048, "n_layer": n_layer, "n_embd": n_embd,
           "n_head": n_head, "bias": True, "published": published}
    for name, n_layer, n_embd, n_head, published in [
        ("GPT-3 Small", 12, 768, 12, 125e6),
        ("GPT-3 Medium", 24, 1024, 16, 350e6),
        ("GPT-3 Large", 24, 1536, 16, 760e6),
        ("GPT-3 XL", 24, 2048, 24, 1.3e9),
        ("GPT-3 2.7B", 32, 2560, 32, 2.7e9),
        ("GPT-3 6.7B", 32, 4096, 32, 6.7e9),
        ("GPT-3 13B", 40, 5140, 40, 13.0e9),
        ("GPT-3 175B", 96, 12288, 96, 175.0e9),
    ]
}

_FIELDS = ("vocab_size", "block_size", "n_layer", "n_embd")


def _shape(config) -> dict:
    """``vocab_size, block_size, n_layer, n_embd, bias, n_inner`` from any supported config."""
    if isinstance(config, GPTConfig):
        return {**config.to_dict(), "n_inner": 4 * config.n_embd}
    if type(config).__name__ == "GPT2Config":  # transformers, without importing it here
        n_inner = config.n_inner if config.n_inner is not None else 4 * config.n_embd
        return {"vocab_size": config.vocab_size, "block_size": config.n_positions, "n_layer": config.n_layer,
                "n_embd": config.n_embd, "bias": True, "n_inner": n_inner,
                "tied": bool(getattr(config, "tie_word_embeddings", True))}
    if isinstance(config, Mapping):
        missing = [k for k in _FIELDS if k not in config]
        if missing:
            raise ValueError(f"config is missing {missing}; expected the keys {list(_FIELDS)}")
        out = {k: config[k] for k in _FIELDS}
        out["bias"] = bool(config.get("bias", True))
        out["n_inner"] = config.get("n_inner") or 4 * out["n_embd"]
        out["tied"] = bool(config.get("tied", True))
        for k in (*_FIELDS, "n_inner"):
            v = out[k]
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"config[{k!r}] must be a positive int, got {v!r}")
        return out
    raise ValueError(f"config must be a GPTConfig, a transformers GPT2Config or a mapping, got {type(config).__name__}")


def parameter_breakdown(config) -> dict[str, int]:
    """Eq. 2.2.1 term by term: ``{"token_embedding", "position_embedding", "attention",
    "mlp", "layernorm", "lm_head"}``; the per-layer terms are already multiplied by ``L``."""
    s = _shape(config)
    v, t, n_layer, d, h = s["vocab_size"], s["block_size"], s["n_layer"], s["n_embd"], s["n_inner"]
    b = 1 if s["bias"] else 0
    ln = 2 * d if b else d  # LayerNorm: a gain, plus a shift when biases are on
    return {
        "token_embedding": v * d,
        "position_embedding": t * d,
        # c_attn (d -> 3d) and c_proj (d -> d)
        "attention": n_layer * (4 * d * d + b * 4 * d),
        # c_fc (d -> h) and c_proj (h -> d)
        "mlp": n_layer * (2 * d * h + b * (h + d)),
        "layernorm": n_layer * 2 * ln + ln,
        "lm_head": 0 if s.get("tied", True) else v * d,
    }


def parameter_count(config, non_embedding: bool = False) -> int:
    """Number of parameters of a GPT with this shape (eq. 2.2.1), exactly.

    ``non_embedding=True`` leaves out the token and position embeddings (and an untied
    head), the count Kaplan et al. (2020) relate loss to.
    """
    parts = parameter_breakdown(config)
    if non_embedding:
        return parts["attention"] + parts["mlp"] + parts["layernorm"]
    return sum(parts.values())


def gpt_parameter_count(vocab_size: int, block_size: int, n_layer: int, n_embd: int) -> int:
    """Eq. 2.2.1 from the four numbers of a GPT-2-style shape (biases on, head tied)."""
    return parameter_count({"vocab_size": vocab_size, "block_size": block_size, "n_layer": n_layer,
                            "n_embd": n_embd})


def approx_parameter_count(n_layer: int, n_embd: int) -> int:
    """The large-model shorthand ``N ~ 12 L d^2`` (embeddings and small terms dropped)."""
    n_layer, n_embd = check_int(n_layer, "n_layer", low=1), check_int(n_embd, "n_embd", low=1)
    return 12 * n_layer * n_embd * n_embd


def training_flops(n_params: float, n_tokens: float) -> float:
    """Training compute ``C ~ 6 N D`` FLOPs: 2 per parameter per token forward, 4 backward."""
    n_params = check_number(n_params, "n_params", low=0, low_open=True)
    n_tokens = check_number(n_tokens, "n_tokens", low=0, low_open=True)
    return 6.0 * n_params * n_tokens


# --------------------------------------------------------------------------- power laws


@dataclass(frozen=True)
class PowerLaw:
    """``y = coefficient * x ** (-exponent)``, fitted in log-log space (``r2`` of that fit)."""

    coefficient: float
    exponent: float
    r2: float

    def __call__(self, x):
        if isinstance(x, torch.Tensor):
            return self.coefficient * x.double() ** (-self.exponent)
        return self.coefficient * float(x) ** (-self.exponent)


def fit_power_law(x: Sequence[float], y: Sequence[float]) -> PowerLaw:
    """Least squares of ``log y = log a - alpha log x``: returns ``PowerLaw(a, alpha, r2)``.

    ``x`` and ``y`` are 1-D sequences (or tensors) of the same length >= 2, all positive.
    """
    values = {}
    for name, v in (("x", x), ("y", y)):
        try:
            values[name] = torch.as_tensor(v, dtype=torch.float64).flatten()
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"{name} must be a 1-D sequence of positive numbers, got {v!r:.60}") from err
    xs, ys = values["x"], values["y"]
    if xs.numel() != ys.numel():
        raise ValueError(f"y must have the length of x, got {xs.numel()} and {ys.numel()}")
    if xs.numel() < 2:
        raise ValueError(f"x needs at least 2 points to fit a power law, got {xs.numel()}")
    for name, v in (("x", xs), ("y", ys)):
        if not (torch.isfinite(v).all() and (v > 0).all()):
            raise ValueError(f"{name} must be finite and positive (a power law is fitted to its logarithm), "
                             f"got {v.tolist()[:8]}")
    if torch.unique(xs).numel() < 2:
        raise ValueError("x must hold at least 2 distinct values")
    lx, ly = xs.log(), ys.log()
    design = torch.stack([torch.ones_like(lx), lx], dim=1)
    solution = torch.linalg.lstsq(design, ly.unsqueeze(1)).solution.squeeze(1)
    intercept, slope = float(solution[0]), float(solution[1])
    residual = ly - (intercept + slope * lx)
    total = ((ly - ly.mean()) ** 2).sum()
    r2 = 1.0 - float((residual**2).sum() / total) if total > 0 else 1.0
    return PowerLaw(math.exp(intercept), -slope, r2)


# --------------------------------------------------------------------------- the experiment


@dataclass
class ScalingRun:
    """One model of :func:`run_scaling_experiment`."""

    config: GPTConfig
    params: int  # all parameters
    non_embedding_params: int
    tokens: int  # training tokens seen
    flops: float  # 6 * N * D with the non-embedding N
    valid_loss: float  # nats per token on held-out text
    seconds: float
    losses: list[float]


def _check_ids(ids, name: str, block_size: int) -> None:
    """A 1-D integer tensor of more than ``block_size + 1`` token ids."""
    if not isinstance(ids, torch.Tensor) or ids.dim() != 1 or ids.is_floating_point() or ids.dtype == torch.bool:
        got = f"{ids.dtype} {tuple(ids.shape)}" if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise ValueError(f"{name} must be a 1-D tensor of integer token ids, got {got}")
    if len(ids) <= block_size + 1:
        raise ValueError(f"{name} must hold more than block_size+1={block_size + 1} token ids, got {len(ids)}")


def batches(ids: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator):
    """Random windows of ``ids``: inputs and next-token targets, each ``(B, block_size)``."""
    batch_size, block_size = check_int(batch_size, "batch_size", low=1), check_int(block_size, "block_size", low=1)
    _check_ids(ids, "ids", block_size)
    starts = torch.randint(len(ids) - block_size - 1, (batch_size,), generator=generator)
    offsets = torch.arange(block_size + 1)
    window = ids[starts[:, None] + offsets]
    return window[:, :-1], window[:, 1:]


@torch.no_grad()
def held_out_loss(model: GPT, ids: torch.Tensor, block_size: int, max_windows: int = 256) -> float:
    """Mean next-token cross-entropy (nats) over up to ``max_windows`` windows spread evenly over ``ids``.

    Evenly spaced, so that every held-out file is represented rather than only the first one.
    """
    block_size, max_windows = check_int(block_size, "block_size", low=1), check_int(max_windows, "max_windows", low=1)
    _check_ids(ids, "ids", block_size - 1)
    model.eval()
    room = len(ids) - block_size - 1
    n = max(1, min(max_windows, room // block_size + 1))
    starts = torch.linspace(0, room, n).long()
    window = ids[starts[:, None] + torch.arange(block_size + 1)]
    device = model.lm_head.weight.device
    return float(model(window[:, :-1].to(device), window[:, 1:].to(device))[1])


def run_scaling_experiment(
    widths: Sequence[int],
    train_ids: torch.Tensor,
    valid_ids: torch.Tensor,
    vocab_size: int,
    *,
    n_layer: int = 2,
    head_dim: int = 8,
    block_size: int = 64,
    batch_size: int = 32,
    num_steps: int = 300,
    lr: float = 3e-3,
    seed: int = 0,
    device=None,
    progress: bool = True,
) -> list[ScalingRun]:
    """Train one GPT per width on the **same number of tokens** and score each on held-out text.

    Every model sees ``num_steps * batch_size * block_size`` training tokens from the same
    seeded batches (AdamW, cosine learning-rate decay), so the runs differ only in size;
    compute then grows with ``N`` (``C ~ 6 N D``). ``train_ids``/``valid_ids`` are 1-D token
    id tensors. Returns one :class:`ScalingRun` per width, in the order given.
    """
    from aigc_course.training import fit

    for name, value in (("vocab_size", vocab_size), ("n_layer", n_layer), ("head_dim", head_dim),
                        ("block_size", block_size), ("batch_size", batch_size), ("num_steps", num_steps)):
        check_int(value, name, low=1)
    check_number(lr, "lr", low=0, low_open=True)
    check_int(seed, "seed", low=0)
    if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w < head_dim or w % head_dim
                         for w in widths):
        raise ValueError(f"widths must be a non-empty list of multiples of head_dim={head_dim}, got {widths!r}")
    for name, ids in (("train_ids", train_ids), ("valid_ids", valid_ids)):
        _check_ids(ids, name, block_size)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
            raise ValueError(f"{name} must hold token ids in [0, {vocab_size}), got values from "
                             f"{int(ids.min())} to {int(ids.max())}")
    device = torch.device(device or "cpu")
    runs = []
    for width in widths:
        torch.manual_seed(seed)
        config = GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer,
                           n_head=width // head_dim, n_embd=width)
        model = GPT(config).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0, betas=(0.9, 0.95))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, num_steps, eta_min=lr / 10)
        gen = torch.Generator().manual_seed(seed)  # the same batches for every width

        def loss_fn(m, step, gen=gen):
            x, y = batches(train_ids, batch_size, block_size, gen)
            return m(x.to(device), y.to(device))[1]

        start = time.perf_counter()
        history = fit(model, opt, loss_fn, num_steps, scheduler=sched, grad_clip=1.0,
                      desc=f"d={width}", progress=progress)
        seconds = time.perf_counter() - start
        n_non_emb = parameter_count(config, non_embedding=True)
        tokens = num_steps * batch_size * block_size
        runs.append(ScalingRun(config, parameter_count(config), n_non_emb, tokens,
                               training_flops(n_non_emb, tokens),
                               held_out_loss(model, valid_ids, block_size), seconds, history.loss))
    return runs
