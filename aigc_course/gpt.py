"""A GPT: a decoder-only Transformer trained as an autoregressive language model.

Book 3.1.1-3.1.3: self-attention blocks stacked into a decoder, trained to maximise
``P(y) = prod_t P(y_t | y_<t)`` (eq. 3.1.3), i.e. to minimise the cross-entropy of each
next token. The architecture is GPT-2's (Radford et al. 2019), written in nanoGPT's style:
token + learned position embeddings, pre-LayerNorm blocks ``x + attn(ln(x))`` and
``x + mlp(ln(x))``, a GELU (tanh) MLP of width ``4C``, a final LayerNorm and an output
head tied to the token embedding. :meth:`GPT.to_huggingface` / :meth:`GPT.from_huggingface`
convert to and from ``transformers.GPT2LMHeadModel`` exactly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from aigc_course import decoding
from aigc_course.attention import BACKENDS, KVCache, MultiHeadAttention, record_attention
from aigc_course.pretrained import keyword_options
from aigc_course.runtime import make_generator
from aigc_course.sampling import make_sampler
from aigc_course.tokenizers import is_integer_dtype, tokenizer_from_dict


@dataclass
class GPTConfig:
    vocab_size: int = 256
    block_size: int = 128  # longest context, in tokens
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True  # biases in Linear and LayerNorm (GPT-2 has them)

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive int, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"GPTConfig.n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig.dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        return asdict(self)


def check_token_ids(idx: torch.Tensor, block_size: int, past: int = 0) -> torch.Tensor:
    """``idx`` must be a ``(B, T)`` integer tensor with ``past + T <= block_size``; returns it as long.

    No host sync: the id range is torch's embedding to check.
    """
    if not isinstance(idx, torch.Tensor) or idx.dim() != 2:
        got = tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__
        raise ValueError(f"idx must be a (B, T) tensor of token ids (torch.long), got {got}")
    if not is_integer_dtype(idx.dtype):
        raise ValueError(f"idx must hold integer token ids (torch.long), got dtype {idx.dtype}")
    if past + idx.shape[1] > block_size:
        raise ValueError(f"sequence of {past + idx.shape[1]} tokens is longer than the context block_size={block_size}")
    return idx.long()


def next_token_loss(logits: torch.Tensor, idx: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor | None:
    """Mean next-token cross-entropy (nats) of ``logits (B, T, V)`` against ``targets (B, T)``,
    which must have ``idx``'s shape; ``-1`` marks padding. ``None`` without targets."""
    if targets is None:
        return None
    if not isinstance(targets, torch.Tensor) or targets.shape != idx.shape:
        got = tuple(targets.shape) if isinstance(targets, torch.Tensor) else type(targets).__name__
        raise ValueError(f"targets must have the shape of idx {tuple(idx.shape)}, got {got}")
    if not is_integer_dtype(targets.dtype):
        raise ValueError(f"targets must hold integer token ids (torch.long), got dtype {targets.dtype}")
    return F.cross_entropy(logits.flatten(0, 1), targets.reshape(-1).long(), ignore_index=-1)


@dataclass
class DecodingState:
    """What :meth:`CausalLM.decode_step` remembers: a :class:`KVCache` per layer (``None``: no
    cache, every step recomputes) and every token so far ``(B, T)``, for the sliding window."""

    caches: list[KVCache] | None
    tokens: torch.Tensor


GPTDecodingState = DecodingState  # its earlier name


class MLP(nn.Module):
    """Position-wise feed-forward: ``(B, T, C) -> (B, T, 4C) -> GELU -> (B, T, C)``."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class Block(nn.Module):
    """Pre-LN Transformer decoder block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = MultiHeadAttention(config.n_embd, config.n_head, config.dropout, config.bias)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """``x (B, T, C) -> (B, T, C)``; with a ``cache``, ``x`` continues the tokens in it."""
        x = x + self.attn(self.ln_1(x), is_causal=True, cache=cache)
        return x + self.mlp(self.ln_2(x))


class CausalLM(nn.Module):
    """A decoder-only language model: what :class:`GPT` and :class:`aigc_course.llama.Llama` share.

    A subclass builds its layers and provides ``config`` (with ``vocab_size`` and
    ``block_size``), ``lm_head``, ``_body(idx, caches) -> (B, T, C)`` hidden states and
    ``new_caches(batch)``; this class turns them into the loss, the KV-cached decoding steps of
    :mod:`aigc_course.decoding` and :meth:`generate`.
    """

    def _body(self, idx: torch.Tensor, caches: list[KVCache] | None = None) -> torch.Tensor:
        """Hidden states ``(B, T, C)`` before the head; ``caches`` hold the earlier tokens."""
        raise NotImplementedError

    def new_caches(self, batch: int, device=None, dtype=None) -> list[KVCache]:
        """One empty :class:`KVCache` per layer, sized for the full context."""
        raise NotImplementedError

    def set_attention_backend(self, backend: str) -> CausalLM:
        """Switch every layer to ``"sdpa"``, ``"manual"`` or ``"blockwise"`` attention."""
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        for block in self.transformer.h:
            block.attn.backend = backend
        return self

    def _check_idx(self, idx: torch.Tensor, past: int = 0) -> torch.Tensor:
        return check_token_ids(idx, self.config.block_size, past)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """``idx (B, T)`` token ids -> ``(logits (B, T, V), loss)``.

        ``loss`` is the mean next-token cross-entropy in nats (``None`` without
        ``targets``); targets equal to ``-1`` are ignored (padding).
        """
        logits = self.lm_head(self._body(idx))
        return logits, next_token_loss(logits, idx, targets)

    @torch.no_grad()
    def attention_maps(self, idx: torch.Tensor) -> torch.Tensor:
        """Attention weights of every layer and head: ``(n_layer, B, n_head, T, T)``.

        Recorded with :func:`aigc_course.attention.record_attention` during one forward pass.
        """
        with record_attention(self) as maps:
            self._body(idx)
        return torch.stack(maps)

    @torch.no_grad()
    def forward_cached(self, idx: torch.Tensor, caches: list[KVCache]) -> torch.Tensor:
        """Logits ``(B, T, V)`` for ``idx (B, T)`` that continue the tokens already in ``caches``.

        Each layer appends the new keys/values to its cache, so only the new tokens are computed.
        """
        return self.lm_head(self._body(idx, caches))

    # ------------------------------------------------------------------ decoding

    def decoding_state(self, batch_size: int, use_cache: bool = True) -> DecodingState:
        """The state :mod:`aigc_course.decoding` starts from: an empty :class:`KVCache` per
        layer (``use_cache``) and no tokens yet."""
        device = self.lm_head.weight.device
        return DecodingState(self.new_caches(batch_size) if use_cache else None,
                             torch.empty(batch_size, 0, dtype=torch.long, device=device))

    def decode_step(self, idx: torch.Tensor, state: DecodingState) -> tuple[torch.Tensor, DecodingState]:
        """Logits ``(B, V)`` of the token after ``idx (B, t)``, which continues ``state``'s tokens.

        With caches, only the new tokens are computed. Once the text outgrows ``block_size``
        the model sees the last ``block_size`` tokens, whose positions all shift; the cache
        cannot be reused then, so those steps recompute the window -- the tokens are the same
        either way.
        """
        state.tokens = torch.cat([state.tokens, idx], dim=1)
        caches, block = state.caches, self.config.block_size
        if caches is not None and caches[0].length + idx.shape[1] <= block:
            return self.lm_head(self._body(idx, caches))[:, -1], state
        return self.lm_head(self._body(state.tokens[:, -block:])[:, -1]), state

    def reorder_state(self, state: DecodingState, index: torch.Tensor) -> DecodingState:
        """Keep the rows ``index (B',)`` of ``state`` (beam search follows the surviving beams)."""
        for cache in state.caches or ():
            cache.reorder(index)
        state.tokens = state.tokens.index_select(0, index.to(state.tokens.device))
        return state

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Extend ``idx (B, T)`` by ``max_new_tokens`` tokens, one at a time (eq. 3.1.3).

        Each step samples from ``P(y_t | y_<t)`` with the sampler of
        :func:`aigc_course.sampling.make_sampler` (``temperature=0`` is greedy), in the loop
        of :func:`aigc_course.decoding.generate`. With ``use_cache`` the keys and values of
        earlier tokens are kept, so a step processes one token instead of the whole prefix
        (see :meth:`decode_step` for texts longer than ``block_size``). Returns
        ``(B, T + max_new_tokens)``. NaN logits raise
        :class:`~aigc_course.decoding.NonFiniteLogitsError` (checked once, at the end).
        """
        idx = self._check_idx(idx)
        if idx.shape[1] == 0:
            raise ValueError("idx must hold at least one token to condition on")
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be a non-negative int, got {max_new_tokens!r}")
        sampler = make_sampler(temperature, top_k, top_p)
        if idx.numel() and (idx.min() < 0 or idx.max() >= self.config.vocab_size):  # one check, at the boundary
            raise ValueError(f"idx must hold token ids in [0, {self.config.vocab_size}), "
                             f"got min {int(idx.min())} max {int(idx.max())}")
        return decoding.generate(self, idx, max_new_tokens, sampler, generator=generator,
                                 state=self.decoding_state(len(idx), use_cache))


class GPT(CausalLM):
    """GPT-2-style language model. ``forward(idx (B, T)) -> (logits (B, T, V), loss)``."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise ValueError(f"config must be a GPTConfig, got {type(config).__name__}")
        self.config = config
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(config.vocab_size, config.n_embd),
                "wpe": nn.Embedding(config.block_size, config.n_embd),
                "drop": nn.Dropout(config.dropout),
                "h": nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                "ln_f": nn.LayerNorm(config.n_embd, bias=config.bias),
            }
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # weight tying (Press & Wolf 2017)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):  # GPT-2: scale residual projections by depth
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @classmethod
    def from_config(cls, config: dict) -> GPT:
        """A fresh GPT from a dict of :class:`GPTConfig` fields (a checkpoint's ``"model"``)."""
        return cls(GPTConfig(**config))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count; position embeddings excluded by default, as in GPT-2's paper."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.transformer.wpe.weight.numel() if non_embedding else n

    def _body(self, idx: torch.Tensor, caches: list[KVCache] | None = None) -> torch.Tensor:
        """Hidden states ``(B, T, C)`` after the final LayerNorm; ``caches`` hold earlier tokens."""
        past = caches[0].length if caches else 0
        idx = self._check_idx(idx, past)
        pos = torch.arange(past, past + idx.shape[1], device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for i, block in enumerate(self.transformer.h):
            x = block(x, cache=caches[i] if caches else None)
        return self.transformer.ln_f(x)

    def new_caches(self, batch: int, device=None, dtype=None) -> list[KVCache]:
        """One empty :class:`KVCache` per layer, sized for the full context."""
        c = self.config
        device = device or self.transformer.wte.weight.device
        dtype = dtype or self.transformer.wte.weight.dtype
        return [KVCache(batch, c.n_head, c.block_size, c.n_embd // c.n_head, device, dtype) for _ in range(c.n_layer)]

    # ------------------------------------------------------------------ Hugging Face

    def to_huggingface(self):
        """An equivalent ``transformers.GPT2LMHeadModel`` (weights copied; GPT-2's ``Conv1D``
        stores ``(in, out)``, the transpose of ``nn.Linear``)."""
        from transformers import GPT2Config, GPT2LMHeadModel

        c = self.config
        if not c.bias:
            raise ValueError("to_huggingface needs bias=True: GPT-2 has biases in every layer")
        hf_config = GPT2Config(
            vocab_size=c.vocab_size, n_positions=c.block_size, n_embd=c.n_embd, n_layer=c.n_layer,
            n_head=c.n_head, activation_function="gelu_new", resid_pdrop=c.dropout,
            embd_pdrop=c.dropout, attn_pdrop=c.dropout, layer_norm_epsilon=1e-5,
            tie_word_embeddings=True, bos_token_id=None, eos_token_id=None,
        )
        hf = GPT2LMHeadModel(hf_config)
        hf_sd = hf.state_dict()
        with torch.no_grad():
            for key, value in self._hf_state().items():
                hf_sd[key].copy_(value)
        hf.tie_weights()
        return hf.eval()

    def _hf_state(self) -> dict[str, torch.Tensor]:
        out = {}
        for key, value in self.state_dict().items():
            if key == "lm_head.weight":
                continue  # tied to transformer.wte.weight
            if key.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")):
                value = value.t()
            out[key] = value
        return out

    @classmethod
    def from_huggingface(cls, model) -> GPT:
        """Build a :class:`GPT` from a ``transformers.GPT2LMHeadModel`` (the inverse map)."""
        if not (hasattr(model, "state_dict") and hasattr(getattr(model, "config", None), "n_embd")):
            # a model name ("gpt2") would need a download; the course converts a loaded model only
            raise TypeError(f"model must be a loaded transformers GPT2LMHeadModel, got {type(model).__name__}")
        hc = model.config
        if hc.activation_function not in ("gelu_new", "gelu_pytorch_tanh"):
            raise ValueError(f"only GELU-tanh GPT-2 models convert, got activation {hc.activation_function!r}")
        if getattr(hc, "n_inner", None) not in (None, 4 * hc.n_embd):
            raise ValueError(f"only n_inner = 4 * n_embd converts, got {hc.n_inner}")
        config = GPTConfig(
            vocab_size=hc.vocab_size, block_size=hc.n_positions, n_layer=hc.n_layer,
            n_head=hc.n_head, n_embd=hc.n_embd, dropout=hc.resid_pdrop, bias=True,
        )
        gpt = cls(config)
        hf_sd = model.state_dict()
        sd = {}
        for key in gpt._hf_state():
            value = hf_sd[key]
            if key.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")):
                value = value.t()
            sd[key] = value
        gpt.load_state_dict(sd, strict=False)
        return gpt.eval()


@torch.no_grad()
def sequence_bits(model: CausalLM, ids: torch.Tensor, stride: int | None = None, batch_size: int = 16) -> float:
    """Total bits ``-sum log2 P(token | up to block_size previous tokens)`` over ``ids``.

    Windows of ``block_size`` tokens move by ``stride``; each token is scored once, with at
    least ``block_size - stride`` tokens of context (except at the very start).
    """
    if not isinstance(ids, torch.Tensor) or ids.dim() != 1 or len(ids) < 2:
        raise ValueError("ids must be a 1-D tensor of at least 2 token ids")
    if not is_integer_dtype(ids.dtype):
        raise ValueError(f"ids must hold integer token ids, got dtype {ids.dtype}")
    model.eval()
    block = model.config.block_size
    stride = stride or block // 2
    n = len(ids)
    # windows such that every position 1..n-1 is scored exactly once
    total = 0.0
    spans = []
    covered = 1  # position 0 has no context; it is scored with the unigram below
    while covered < n:
        end = min(covered + stride, n) if covered > block else min(block + 1, n)
        start = max(0, end - block - 1)
        spans.append((start, covered, end))  # tokens covered..end-1 scored, context from start
        covered = end
    for i in range(0, len(spans), batch_size):
        group = spans[i : i + batch_size]
        width = max(e - s - 1 for s, _, e in group)
        x = torch.zeros(len(group), width, dtype=torch.long)
        for j, (s, _, e) in enumerate(group):
            x[j, : e - s - 1] = ids[s : e - 1]
        logp = torch.log_softmax(model(x.to(model.lm_head.weight.device))[0].float(), dim=-1).cpu()
        for j, (s, c, e) in enumerate(group):
            targets = ids[c:e]
            rows = logp[j, c - s - 1 : e - s - 1]
            total -= rows.gather(1, targets.unsqueeze(1)).sum().item()
    # the first token: uniform over the vocabulary (no context at all)
    total += math.log(model.config.vocab_size)
    return total / math.log(2)


def bits_per_char(model: CausalLM, tokenizer, text: str, stride: int | None = None) -> float:
    """Held-out score comparable across tokenizers: total bits of ``text`` / its characters."""
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    return sequence_bits(model, ids, stride) / len(text)


class GPTPipeline:
    """A trained GPT with its tokenizer: ``pipe(prompt, ...) -> str`` (the ``code-gpt`` checkpoint)."""

    # how aigc_course.pretrained builds it: the GPT from config["model"], the tokenizer from config["tokenizer"]
    checkpoint_parts = {"model": GPT}
    checkpoint_settings = {"tokenizer": dict}

    def __init__(self, model: GPT, tokenizer, config: dict | None = None):
        self.model, self.tokenizer = model, tokenizer
        self.config = dict(config or {})

    @property
    def device(self) -> torch.device:
        return self.model.transformer.wte.weight.device

    @keyword_options("max_new_tokens", "temperature", "top_k", "top_p", "seed")
    def __call__(
        self,
        prompt: str,
        *,
        max_new_tokens: int = 200,
        temperature: float = 0.8,
        top_k: int | None = None,
        top_p: float | None = 0.95,
        seed: int | None = None,
    ) -> str:
        """Continue ``prompt``; returns prompt + generated text.

        ``seed``: an int repeats the text exactly; ``None`` draws from torch's global RNG (see
        :func:`aigc_course.runtime.make_generator`). ``temperature=0`` is greedy and draws nothing.
        """
        if not isinstance(prompt, str) or not prompt:
            raise ValueError("prompt must be a non-empty str")
        ids = self.tokenizer.encode(prompt)
        if len(ids) > self.model.config.block_size:
            ids = ids[-self.model.config.block_size :]  # keep the most recent context
        idx = torch.tensor([ids], dtype=torch.long, device=self.device)
        # greedy decoding with seed=None draws nothing, so it leaves the global RNG as it was
        generator = make_generator(seed) if temperature != 0 or seed is not None else None
        out = self.model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k,
                                  top_p=top_p, generator=generator)
        return prompt + self.tokenizer.decode(out[0, len(ids):].tolist())

    @classmethod
    def from_parts(cls, config: dict, model: GPT) -> GPTPipeline:
        return cls(model, tokenizer_from_dict(config["tokenizer"]), config)
