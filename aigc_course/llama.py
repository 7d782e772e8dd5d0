"""A LLaMA-style decoder: GPT's decoder-only Transformer with the changes LLaMA made (book 2.2).

LLaMA (Touvron et al. 2023) keeps the architecture of :mod:`aigc_course.gpt` -- token
embedding, ``L`` pre-norm blocks ``x + attn(norm(x))``, ``x + mlp(norm(x))``, a final norm
and an output head -- and changes four parts:

1. **RMSNorm** instead of LayerNorm (eq. 2.2.2): divide by the root mean square, with a gain
   and no mean, no shift (:func:`rms_norm`).
2. **Rotary position embeddings** instead of a learned position table (eq. 2.2.3): queries
   and keys are rotated by an angle proportional to their position, so ``q . k`` depends only
   on the *distance* between the two tokens (:func:`rope`).
3. **SwiGLU MLP** (eq. 2.2.4): ``down(silu(gate(x)) * up(x))`` with three matrices of width
   ``~8C/3``, as many weights as GPT's two of width ``4C`` (:class:`SwiGLU`).
4. **No biases** in any linear layer or norm.

LLaMA 2 (70B) and LLaMA 3 add **grouped-query attention** (eq. 2.2.5): ``n_kv_head`` key/value
heads, each shared by ``n_head / n_kv_head`` query heads, so the KV cache shrinks by that factor.

Everything else is the course's shared code: :class:`~aigc_course.attention.MultiHeadAttention`
(with its ``num_kv_heads`` and ``rotary`` options) and :class:`~aigc_course.attention.KVCache`,
the loss, decoding steps and :meth:`generate` of :class:`~aigc_course.gpt.CausalLM` and the one
loop of :mod:`aigc_course.decoding`. :meth:`Llama.to_huggingface` and
:meth:`Llama.from_huggingface` convert to and from ``transformers.LlamaForCausalLM`` exactly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from aigc_course._checks import check_bool, check_int, check_number, check_tensor
from aigc_course.attention import KVCache, MultiHeadAttention, attend, repeat_kv_heads
from aigc_course.gpt import CausalLM
from aigc_course.scaling import batches
from aigc_course.training import fit, make_adamw, warmup_cosine_scheduler

# ----------------------------------------------------------------------------- the building blocks


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """RMSNorm (Zhang & Sennrich 2019), book eq. 2.2.2, over the last dimension::

        y = g * x / sqrt(mean(x^2) + eps)

    ``x`` is ``(..., C)`` and the gain ``weight`` is ``(C,)``. Unlike LayerNorm nothing is
    subtracted and nothing added: the vector keeps its direction, only its scale is fixed.
    Computed in float32 and cast back, as LLaMA does.
    """
    check_tensor(x, "x", floating=True)
    check_tensor(weight, "weight")
    if x.dim() < 1 or weight.shape != x.shape[-1:]:
        raise ValueError(f"weight must have shape (C,) = {tuple(x.shape[-1:])} for x of shape {tuple(x.shape)}, "
                         f"got {tuple(weight.shape)}")
    return _rms_norm(x, weight, check_number(eps, "eps", low=0, low_open=True))


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """Eq. 2.2.2 without the argument checks (:class:`RMSNorm` checks once, when it is built)."""
    x32 = x.float()
    normed = x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + eps)
    return weight * normed.to(x.dtype)


def rope_frequencies(head_dim: int, base: float = 10000.0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The rotation speeds ``theta_i = base^(-2i / d)``, ``i = 0 .. d/2 - 1``: ``(d/2,)``, float32 as in LLaMA.

    The first pair of features turns by one radian per position, the last by about
    ``1 / base``: fast pairs resolve nearby tokens, slow ones distant tokens.
    """
    if isinstance(head_dim, bool) or not isinstance(head_dim, int) or head_dim < 2 or head_dim % 2:
        raise ValueError(f"head_dim must be a positive even int, got {head_dim!r}")
    if not (isinstance(base, (int, float)) and not isinstance(base, bool) and math.isfinite(base) and base > 1):
        raise ValueError(f"base must be a finite number > 1, got {base!r}")
    return 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.int64).to(dtype) / head_dim))


def rope(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding (Su et al. 2021), book eq. 2.2.3.

    ``x`` is ``(..., T, d)`` (queries or keys of one head; ``d`` even) and ``positions`` the
    ``T`` positions ``p``. Feature ``i`` is paired with feature ``i + d/2`` and the pair is
    rotated by the angle ``p * theta_i`` (:func:`rope_frequencies`)::

        x'_i       = x_i cos(p theta_i) - x_{i+d/2} sin(p theta_i)
        x'_{i+d/2} = x_{i+d/2} cos(p theta_i) + x_i sin(p theta_i)

    A rotation keeps lengths, and rotating ``q`` by ``m theta`` and ``k`` by ``n theta`` leaves
    ``q' . k'`` a function of ``m - n`` only: attention sees relative positions. (This is the
    pairing of GPT-NeoX and Hugging Face's Llama; Meta's code pairs ``2i`` with ``2i + 1``, the
    same rotation up to a fixed permutation of the query and key weights.)
    """
    if not isinstance(positions, torch.Tensor) or positions.dim() != 1 or positions.is_floating_point():
        got = tuple(positions.shape) if isinstance(positions, torch.Tensor) else type(positions).__name__
        raise ValueError(f"positions must be a 1-D tensor of integer positions (T,), got {got}")
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.shape[-2] != len(positions):
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must have shape (..., T, d) with T = len(positions) = {len(positions)}, got {got}")
    check_tensor(x, "x", floating=True)
    # angles in float32, as LLaMA computes them (float64 for float64 inputs: exact enough to test with)
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    freqs = rope_frequencies(x.shape[-1], base, dtype).to(positions.device)
    angles = positions.to(dtype)[:, None] * freqs[None, :]  # (T, d/2)
    return _rotate(x, angles.cos(), angles.sin())


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Eq. 2.2.3 for ``x (..., T, d)`` given ``cos, sin (T, d/2)`` of the angles."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class RotaryEmbedding(nn.Module):
    """:func:`rope` for the heads of :class:`MultiHeadAttention`: ``forward(x (B, H, T, d), start)``
    rotates ``x`` to the positions ``start .. start+T-1``.

    The cosines and sines of the first ``max_positions`` positions are computed once (buffers
    that are not saved: they depend on nothing learned); later positions are computed when
    asked, so a model can run past the context it was trained on.
    """

    def __init__(self, head_dim: int, base: float = 10000.0, max_positions: int = 2048):
        super().__init__()
        check_int(max_positions, "max_positions", low=1)
        self.head_dim, self.base = head_dim, float(base)
        angles = torch.arange(max_positions).float()[:, None] * rope_frequencies(head_dim, base)[None, :]
        self.register_buffer("cos", angles.cos(), persistent=False)  # (max_positions, d/2)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        t = x.shape[-2]
        if start + t <= len(self.cos):
            return _rotate(x, self.cos[start : start + t], self.sin[start : start + t])
        return rope(x, torch.arange(start, start + t, device=x.device), self.base)


class RMSNorm(nn.Module):
    """:func:`rms_norm` with a learned gain ``weight (C,)``, initialised to ones."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = check_number(eps, "eps", low=0, low_open=True)
        self.weight = nn.Parameter(torch.ones(check_int(dim, "dim", low=1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _rms_norm(x, self.weight, self.eps)


class SwiGLU(nn.Module):
    """The gated MLP of PaLM and LLaMA (Shazeer 2020), book eq. 2.2.4, without biases::

        SwiGLU(x) = W_down (silu(W_gate x) * W_up x),    silu(z) = z * sigmoid(z)

    ``(B, T, C) -> (B, T, hidden) -> (B, T, C)``. The gate decides, feature by feature, how
    much of ``W_up x`` passes.
    """

    def __init__(self, n_embd: int, hidden: int):
        super().__init__()
        check_int(n_embd, "n_embd", low=1)
        check_int(hidden, "hidden", low=1)
        self.gate_proj = nn.Linear(n_embd, hidden, bias=False)
        self.up_proj = nn.Linear(n_embd, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def swiglu_hidden(n_embd: int, multiple_of: int = 8) -> int:
    """LLaMA's SwiGLU width: ``2/3 * 4C`` rounded up to a multiple of ``multiple_of``, so the three
    matrices hold about GPT's ``8C^2`` MLP weights (Meta uses ``multiple_of=256``)."""
    check_int(n_embd, "n_embd", low=1)
    check_int(multiple_of, "multiple_of", low=1)
    return multiple_of * math.ceil(8 * n_embd / 3 / multiple_of)


def grouped_query_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, is_causal: bool = False) -> torch.Tensor:
    """Attention with fewer key/value heads than query heads (Ainslie et al. 2023), book eq. 2.2.5::

        head_h = softmax(Q_h K_g^T / sqrt(d)) V_g,    g = h // (H / H_kv)

    ``q`` is ``(B, H, T_q, d)``; ``k`` and ``v`` are ``(B, H_kv, T_k, d)`` with ``H_kv`` dividing
    ``H`` (``H_kv = H`` is multi-head attention, ``H_kv = 1`` multi-query attention). Returns
    ``(B, H, T_q, d_v)``. In a decoding step ``T_q = 1`` and ``k, v`` are the cache: only
    ``H_kv`` heads of it are kept, ``H / H_kv`` times less memory.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor) or t.dim() != 4:
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{name} must have shape (B, heads, T, d), got {got}")
    if k.shape[1] != v.shape[1] or q.shape[1] % k.shape[1]:
        raise ValueError(f"k and v must have the same number of heads H_kv dividing q's H={q.shape[1]}, "
                         f"got {k.shape[1]} and {v.shape[1]}")
    heads = q.shape[1]
    return attend(q, repeat_kv_heads(k, heads), repeat_kv_heads(v, heads), is_causal=is_causal, backend="manual")


# ----------------------------------------------------------------------------- the model


@dataclass
class LlamaConfig:
    vocab_size: int = 256
    block_size: int = 128  # the context it is trained on, in tokens; the KV cache holds this many
    n_layer: int = 4
    n_head: int = 4
    n_kv_head: int | None = None  # key/value heads; None = n_head (multi-head), 1 = multi-query
    n_embd: int = 128
    mlp_hidden: int | None = None  # SwiGLU width; None = swiglu_hidden(n_embd)
    rope_base: float = 10000.0
    norm_eps: float = 1e-6
    tie_embeddings: bool = False  # LLaMA 1-3 (large) keep a separate output head

    def __post_init__(self):
        if self.n_kv_head is None:
            self.n_kv_head = self.n_head
        if self.mlp_hidden is None and isinstance(self.n_embd, int) and not isinstance(self.n_embd, bool):
            self.mlp_hidden = swiglu_hidden(self.n_embd) if self.n_embd > 0 else self.n_embd
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_kv_head", "n_embd", "mlp_hidden"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"LlamaConfig.{name} must be a positive int, got {value!r}")
        if self.n_embd % self.n_head or (self.n_embd // self.n_head) % 2:
            raise ValueError(f"LlamaConfig.n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}) "
                             "into heads of even size (RoPE rotates pairs of features)")
        if self.n_head % self.n_kv_head:
            raise ValueError(f"LlamaConfig.n_kv_head ({self.n_kv_head}) must divide n_head ({self.n_head})")
        for name in ("rope_base", "norm_eps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value <= (1 if name == "rope_base" else 0):
                bound = "> 1" if name == "rope_base" else "> 0"
                raise ValueError(f"LlamaConfig.{name} must be a finite number {bound}, got {value!r}")
        if not isinstance(self.tie_embeddings, bool):
            raise ValueError(f"LlamaConfig.tie_embeddings must be True or False, got {self.tie_embeddings!r}")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def to_dict(self) -> dict:
        return asdict(self)


class LlamaBlock(nn.Module):
    """GPT's pre-norm block with LLaMA's parts: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``,
    with RMSNorm, rotary grouped-query attention without biases, and a SwiGLU MLP."""

    def __init__(self, config: LlamaConfig, rotary: RotaryEmbedding):
        super().__init__()
        self.ln_1 = RMSNorm(config.n_embd, config.norm_eps)
        self.attn = MultiHeadAttention(config.n_embd, config.n_head, bias=False,
                                       num_kv_heads=config.n_kv_head, rotary=rotary)
        self.ln_2 = RMSNorm(config.n_embd, config.norm_eps)
        self.mlp = SwiGLU(config.n_embd, config.mlp_hidden)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """``x (B, T, C) -> (B, T, C)``; with a ``cache``, ``x`` continues the tokens in it."""
        x = x + self.attn(self.ln_1(x), is_causal=True, cache=cache)
        return x + self.mlp(self.ln_2(x))


class Llama(CausalLM):
    """LLaMA-style language model. ``forward(idx (B, T)) -> (logits (B, T, V), loss)``.

    Decoding (:meth:`generate`, :meth:`decode_step`) is :class:`~aigc_course.gpt.CausalLM`'s;
    each layer's :class:`KVCache` holds ``n_kv_head`` heads. No weight depends on
    ``block_size``, so the same weights load into a model with a longer context
    (:meth:`with_block_size`) -- whether they work there is another matter (book 2.2.1).
    """

    def __init__(self, config: LlamaConfig):
        super().__init__()
        if not isinstance(config, LlamaConfig):
            raise ValueError(f"config must be a LlamaConfig, got {type(config).__name__}")
        self.config = config
        self.rotary = RotaryEmbedding(config.head_dim, config.rope_base, config.block_size)  # shared by the layers
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(config.vocab_size, config.n_embd),
                "h": nn.ModuleList([LlamaBlock(config, self.rotary) for _ in range(config.n_layer)]),
                "ln_f": RMSNorm(config.n_embd, config.norm_eps),
            }
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.transformer.wte.weight
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
        for name, p in self.named_parameters():
            if name.endswith(("attn.c_proj.weight", "mlp.down_proj.weight")):  # as GPT-2: residual outputs / depth
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @classmethod
    def from_config(cls, config: dict) -> Llama:
        """A fresh Llama from a dict of :class:`LlamaConfig` fields."""
        return cls(LlamaConfig(**config))

    def with_block_size(self, block_size: int) -> Llama:
        """A copy of this model whose context is ``block_size`` tokens: the same weights, since
        none of them depends on the context length (a GPT's position table does)."""
        other = Llama(LlamaConfig(**{**self.config.to_dict(), "block_size": block_size}))
        other.load_state_dict(self.state_dict())
        return other.to(self.lm_head.weight.device).train(self.training)

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count; with ``non_embedding`` the token-lookup table is left out unless it is
        also the (tied) output head -- the convention of :meth:`GPT.num_params`."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and not self.config.tie_embeddings:
            n -= self.transformer.wte.weight.numel()
        return n

    def _body(self, idx: torch.Tensor, caches: list[KVCache] | None = None) -> torch.Tensor:
        past = caches[0].length if caches else 0
        x = self.transformer.wte(self._check_idx(idx, past))  # no position embedding: RoPE is in attention
        for i, block in enumerate(self.transformer.h):
            x = block(x, cache=caches[i] if caches else None)
        return self.transformer.ln_f(x)

    def new_caches(self, batch: int, device=None, dtype=None) -> list[KVCache]:
        """One empty :class:`KVCache` of ``n_kv_head`` heads per layer, sized for the full context."""
        c = self.config
        device = device or self.lm_head.weight.device
        dtype = dtype or self.lm_head.weight.dtype
        return [KVCache(batch, c.n_kv_head, c.block_size, c.head_dim, device, dtype) for _ in range(c.n_layer)]

    # ------------------------------------------------------------------ Hugging Face

    def _hf_names(self) -> dict[str, str]:
        """Our parameter name -> ``LlamaForCausalLM``'s (``c_attn`` is split into q, k, v)."""
        names = {"transformer.wte.weight": "model.embed_tokens.weight", "transformer.ln_f.weight": "model.norm.weight"}
        if not self.config.tie_embeddings:
            names["lm_head.weight"] = "lm_head.weight"
        for i in range(self.config.n_layer):
            ours, theirs = f"transformer.h.{i}.", f"model.layers.{i}."
            names[ours + "ln_1.weight"] = theirs + "input_layernorm.weight"
            names[ours + "attn.c_proj.weight"] = theirs + "self_attn.o_proj.weight"
            names[ours + "ln_2.weight"] = theirs + "post_attention_layernorm.weight"
            for proj in ("gate_proj", "up_proj", "down_proj"):
                names[ours + f"mlp.{proj}.weight"] = theirs + f"mlp.{proj}.weight"
        return names

    def to_huggingface(self):
        """An equivalent ``transformers.LlamaForCausalLM`` (weights copied; ``c_attn`` becomes
        ``q_proj``, ``k_proj``, ``v_proj``)."""
        from transformers import LlamaConfig as HFLlamaConfig
        from transformers import LlamaForCausalLM

        c = self.config
        hf_config = HFLlamaConfig(
            vocab_size=c.vocab_size, hidden_size=c.n_embd, intermediate_size=c.mlp_hidden,
            num_hidden_layers=c.n_layer, num_attention_heads=c.n_head, num_key_value_heads=c.n_kv_head,
            head_dim=c.head_dim, max_position_embeddings=c.block_size, rms_norm_eps=c.norm_eps,
            rope_parameters={"rope_type": "default", "rope_theta": c.rope_base}, hidden_act="silu",
            attention_bias=False, mlp_bias=False, tie_word_embeddings=c.tie_embeddings,
            bos_token_id=None, eos_token_id=None, pad_token_id=None,
        )
        hf = LlamaForCausalLM(hf_config)
        hf_sd, sd = hf.state_dict(), self.state_dict()
        d, kv = c.n_embd, c.n_kv_head * c.head_dim
        with torch.no_grad():
            for ours, theirs in self._hf_names().items():
                hf_sd[theirs].copy_(sd[ours])
            for i in range(c.n_layer):
                q, k, v = sd[f"transformer.h.{i}.attn.c_attn.weight"].split([d, kv, kv])
                for name, w in (("q_proj", q), ("k_proj", k), ("v_proj", v)):
                    hf_sd[f"model.layers.{i}.self_attn.{name}.weight"].copy_(w)
        if c.tie_embeddings:
            hf.tie_weights()
        return hf.eval()

    @classmethod
    def from_huggingface(cls, model) -> Llama:
        """Build a :class:`Llama` from a ``transformers.LlamaForCausalLM`` (the inverse map)."""
        hc = getattr(model, "config", None)
        if not isinstance(model, nn.Module) or hc is None:
            # a model name would need a download; the course converts a loaded model only (as GPT)
            raise TypeError(f"model must be a loaded transformers LlamaForCausalLM, got {type(model).__name__}")
        if getattr(hc, "model_type", None) != "llama":
            raise ValueError(f"model must be a transformers LlamaForCausalLM, got {type(model).__name__} "
                             f"of model_type {getattr(hc, 'model_type', None)!r}")
        rope_parameters = getattr(hc, "rope_parameters", None) or {"rope_type": "default",
                                                                     "rope_theta": getattr(hc, "rope_theta", 1e4)}
        checks = {
            "hidden_act": (hc.hidden_act, "silu"),
            "attention_bias": (hc.attention_bias, False),
            "mlp_bias": (getattr(hc, "mlp_bias", False), False),
            "rope_parameters['rope_type']": (rope_parameters.get("rope_type", "default"), "default"),
            "head_dim": (getattr(hc, "head_dim", None) or hc.hidden_size // hc.num_attention_heads,
                         hc.hidden_size // hc.num_attention_heads),
        }
        for name, (got, expected) in checks.items():
            if got != expected:
                raise ValueError(f"only LLaMA models with {name}={expected!r} convert, got {got!r}")
        config = LlamaConfig(
            vocab_size=hc.vocab_size, block_size=hc.max_position_embeddings, n_layer=hc.num_hidden_layers,
            n_head=hc.num_attention_heads, n_kv_head=hc.num_key_value_heads or hc.num_attention_heads,
            n_embd=hc.hidden_size, mlp_hidden=hc.intermediate_size, rope_base=float(rope_parameters["rope_theta"]),
            norm_eps=float(hc.rms_norm_eps), tie_embeddings=bool(hc.tie_word_embeddings),
        )
        llama = cls(config)
        hf_sd = model.state_dict()
        sd = {ours: hf_sd[theirs] for ours, theirs in llama._hf_names().items()}
        for i in range(config.n_layer):
            attn = f"model.layers.{i}.self_attn."
            sd[f"transformer.h.{i}.attn.c_attn.weight"] = torch.cat(
                [hf_sd[attn + "q_proj.weight"], hf_sd[attn + "k_proj.weight"], hf_sd[attn + "v_proj.weight"]])
        if config.tie_embeddings:
            sd["lm_head.weight"] = sd["transformer.wte.weight"]
        llama.load_state_dict(sd)
        return llama.eval()


def kv_cache_bytes(model: CausalLM, batch_size: int = 1) -> int:
    """Bytes of the key and value tensors ``model`` keeps for ``batch_size`` sequences of its full
    context: ``2 * n_layer * batch * kv_heads * block_size * head_dim * itemsize``, measured on the
    caches :meth:`~aigc_course.gpt.CausalLM.new_caches` allocates."""
    _check_model(model)
    return sum(cache.nbytes for cache in model.new_caches(check_int(batch_size, "batch_size", low=1)))


def _check_model(model) -> None:
    if not isinstance(model, CausalLM):
        raise ValueError(f"model must be a CausalLM (a GPT or a Llama), got {type(model).__name__}")


def _check_ids(ids, name: str, vocab_size: int) -> torch.Tensor:
    """A 1-D integer tensor of token ids below ``vocab_size`` (one scan: a boundary check)."""
    check_tensor(ids, name)
    if ids.dim() != 1 or ids.is_floating_point() or ids.dtype == torch.bool or ids.is_complex():
        raise ValueError(f"{name} must be a 1-D tensor of integer token ids, got {ids.dtype} {tuple(ids.shape)}")
    if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(f"{name} must hold token ids in [0, vocab_size={vocab_size}), "
                         f"got ids from {int(ids.min())} to {int(ids.max())}")
    return ids



# ----------------------------------------------------------------------------- side by side with GPT


def train_language_model(model: CausalLM, train_ids: torch.Tensor, *, steps: int, batch_size: int,
                         lr: float = 3e-3, warmup: int = 20, weight_decay: float = 0.1, seed: int = 0,
                         desc: str = "training", progress: bool = True):
    """Train ``model`` on random windows of ``train_ids`` (1-D token ids): the one recipe that
    book 2.2.1 and ``benchmarks/bench_llama.py`` give GPT and LLaMA alike.

    AdamW with weight decay on the matrices only (:func:`~aigc_course.training.make_adamw`,
    betas 0.9/0.95), a linear warm-up for ``warmup`` steps, then a cosine down to ``lr / 10``
    (:func:`~aigc_course.training.warmup_cosine_scheduler`), and the guarded step of
    :func:`~aigc_course.training.fit` with gradients clipped to norm 1. The batches come from a
    generator seeded with ``seed``, so two models trained with the same arguments see the same
    ``steps * batch_size * block_size`` tokens in the same order. Returns the
    :class:`~aigc_course.training.History` (losses in nats per token, seconds).
    """
    _check_model(model)
    for name, value, low in (("steps", steps, 1), ("batch_size", batch_size, 1), ("warmup", warmup, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    check_number(lr, "lr", low=0, low_open=True)
    check_number(weight_decay, "weight_decay", low=0)
    check_int(seed, "seed", low=0)
    check_bool(progress, "progress")
    block = model.config.block_size
    _check_ids(train_ids, "train_ids", model.config.vocab_size)
    if len(train_ids) <= block + 1:
        raise ValueError(f"train_ids must hold more than block_size+1={block + 1} token ids, got {len(train_ids)}")
    device = model.lm_head.weight.device
    optimizer = make_adamw(model, lr, weight_decay, betas=(0.9, 0.95))
    scheduler = warmup_cosine_scheduler(optimizer, steps, warmup, floor=0.1)
    generator = torch.Generator().manual_seed(seed)

    def loss_fn(m: CausalLM, step: int) -> torch.Tensor:
        x, y = batches(train_ids, batch_size, block, generator)
        return m(x.to(device), y.to(device))[1]

    return fit(model, optimizer, loss_fn, steps, grad_clip=1.0, scheduler=scheduler, desc=desc, progress=progress)


@torch.no_grad()
def loss_by_position(model: CausalLM, ids: torch.Tensor, length: int, max_windows: int = 64) -> torch.Tensor:
    """Mean next-token loss (nats) at each position ``0 .. length-1`` of windows of ``length + 1``
    tokens spread evenly over ``ids``: ``(length,)``. ``length`` may not exceed the model's
    ``block_size``; use :meth:`Llama.with_block_size` to look past the trained context."""
    _check_model(model)
    if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= model.config.block_size:
        raise ValueError(f"length must be an int in [1, block_size={model.config.block_size}], got {length!r}")
    check_int(max_windows, "max_windows", low=1)
    _check_ids(ids, "ids", model.config.vocab_size)
    room = len(ids) - length - 1
    if room < 0:
        raise ValueError(f"ids must hold more than length+1={length + 1} tokens, got {len(ids)}")
    starts = torch.linspace(0, room, max(1, min(max_windows, room // length + 1))).long()
    window = ids[starts[:, None] + torch.arange(length + 1)].to(model.lm_head.weight.device)
    model.eval()
    logits = model(window[:, :-1])[0]
    losses = F.cross_entropy(logits.transpose(1, 2), window[:, 1:], reduction="none")  # (N, length)
    return losses.mean(0).cpu()
