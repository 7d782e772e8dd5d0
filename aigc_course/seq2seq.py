"""The encoder-decoder Transformer of "Attention Is All You Need" (book 3.1.1).

The article's Transformer has two stacks joined by cross-attention:

* the **encoder** reads the whole source at once -- self-attention without a causal mask,
  where padding tokens (``source_mask`` is ``False``) are never attended to -- and returns one
  vector per source position, the *memory* ``(B, S, C)``;
* the **decoder** is the course's GPT (:mod:`aigc_course.gpt`) with one more sub-layer per
  block: after causal self-attention, each target position asks the memory with
  :class:`~aigc_course.attention.CrossAttention` (queries from the target, keys and values from
  the encoder), so ``P(y_t | y_<t, x)`` is eq. 3.1.3 conditioned on the source ``x``.

The blocks are the GPT's pre-LayerNorm blocks (:class:`aigc_course.gpt.Block`): ``x + f(ln(x))``
for every sub-layer, a final LayerNorm on each stack. With the same weights,
:class:`TransformerEncoder` and :class:`TransformerDecoder` compute what
``torch.nn.Transformer(norm_first=True, activation=gelu_tanh, batch_first=True)`` computes
(:meth:`TransformerEncoder.load_torch` / :meth:`TransformerDecoder.load_torch` copy the weights),
and a decoder without memory is exactly a :class:`~aigc_course.gpt.GPT`
(:meth:`TransformerDecoder.from_gpt`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from aigc_course import decoding
from aigc_course.attention import CrossAttention, KVCache, record_attention
from aigc_course.gpt import GPT, Block, GPTConfig, check_token_ids, next_token_loss
from aigc_course.pretrained import capture_config

__all__ = [
    "DecoderBlock",
    "EncoderBlock",
    "EncoderDecoderState",
    "EncoderDecoderTransformer",
    "TransformerDecoder",
    "TransformerEncoder",
    "check_token_mask",
]


def _block_config(n_embd: int, n_head: int, dropout: float, bias: bool) -> GPTConfig:
    """The GPT block settings (vocabulary and context do not matter to a block)."""
    return GPTConfig(n_embd=n_embd, n_head=n_head, dropout=dropout, bias=bias)


def _check_embeddings(x: torch.Tensor, name: str, width: int) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != width:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must have shape (B, T, {width}), got {got}")


def check_token_mask(mask: torch.Tensor | None, tokens_shape: tuple[int, ...], name: str) -> torch.Tensor | None:
    """``mask`` must be ``None`` or a bool tensor of shape ``tokens_shape`` (``True`` = a real token)."""
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != tuple(tokens_shape):
        got = f"{mask.dtype} {tuple(mask.shape)}" if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"{name} must be a bool tensor of shape {tuple(tokens_shape)} (True = real token, "
                         f"False = padding), got {got}")
    return mask


class EncoderBlock(Block):
    """A GPT block without the causal mask: every source token sees every other real one.

    ``x (B, S, C)``, ``mask (B, S)`` (``True`` = real token) -> ``(B, S, C)``.
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        keep = None if mask is None else mask[:, None, None, :]  # (B, 1, 1, S): same keys for every head and query
        x = x + self.attn(self.ln_1(x), mask=keep)
        return x + self.mlp(self.ln_2(x))


class DecoderBlock(Block):
    """A GPT block with cross-attention between self-attention and the MLP (Vaswani et al. 2017)::

        x = x + self_attn(ln_1(x))                       causal
        x = x + cross_attn(ln_cross(x), memory)          skipped when memory is None
        x = x + mlp(ln_2(x))

    The GPT's parameter names are kept, so a GPT block's weights load into it unchanged.
    """

    def __init__(self, config: GPTConfig, context_dim: int | None = None):
        super().__init__(config)
        self.ln_cross = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.cross_attn = CrossAttention(config.n_embd, config.n_head, context_dim=context_dim,
                                         dropout=config.dropout, bias=config.bias)
        self.cross_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None, memory_mask: torch.Tensor | None = None,
                cache: KVCache | None = None) -> torch.Tensor:
        """``x (B, T, C)``, ``memory (B, S, C_mem)``, ``memory_mask (B, S)`` -> ``(B, T, C)``."""
        x = x + self.attn(self.ln_1(x), is_causal=True, cache=cache)
        if memory is not None:
            x = x + self.cross_dropout(self.cross_attn(self.ln_cross(x), memory, memory_mask))
        return x + self.mlp(self.ln_2(x))


class TransformerEncoder(nn.Module):
    """A stack of :class:`EncoderBlock` and a final LayerNorm, on embeddings ``(B, S, C)``.

    ``forward(x (B, S, C), mask (B, S) | None) -> memory (B, S, C)``; positions where ``mask``
    is ``False`` are padding: no token attends to them (their own outputs are computed but
    should be ignored, as the decoder's cross-attention does with the same mask).
    """

    @capture_config
    def __init__(self, n_embd: int = 128, n_layer: int = 2, n_head: int = 4, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        block = _block_config(n_embd, n_head, dropout, bias)
        if isinstance(n_layer, bool) or not isinstance(n_layer, int) or n_layer < 1:
            raise ValueError(f"n_layer must be a positive int, got {n_layer!r}")
        self.n_embd = n_embd
        self.h = nn.ModuleList([EncoderBlock(block) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd, bias=bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        _check_embeddings(x, "x", self.n_embd)
        mask = check_token_mask(mask, x.shape[:2], "mask")
        for block in self.h:
            x = block(x, mask)
        return self.ln_f(x)

    @torch.no_grad()
    def load_torch(self, encoder: nn.TransformerEncoder) -> TransformerEncoder:
        """Copy the weights of a ``torch.nn.TransformerEncoder`` (``norm_first=True``, final norm)."""
        if len(encoder.layers) != len(self.h) or encoder.norm is None:
            raise ValueError(f"encoder must have {len(self.h)} layers and a final norm")
        for ours, theirs in zip(self.h, encoder.layers, strict=True):
            _copy_self_attention(ours, theirs)
            _copy_feed_forward(ours, theirs, theirs.norm2)
        _copy_norm(self.ln_f, encoder.norm)
        return self


@dataclass
class EncoderDecoderState:
    """What :meth:`TransformerDecoder.decode_step` remembers: the memory it attends to
    ``(B, S, C_mem)`` and its mask ``(B, S)`` (``None``: decoder only / no padding), a
    :class:`KVCache` per layer (``None``: every step recomputes) and the tokens so far ``(B, T)``."""

    memory: torch.Tensor | None
    memory_mask: torch.Tensor | None
    caches: list[KVCache] | None
    tokens: torch.Tensor


class TransformerDecoder(nn.Module):
    """The GPT with cross-attention in every block: ``(idx (B, T), memory) -> (logits (B, T, V), loss)``.

    Token and learned position embeddings, :class:`DecoderBlock` s, a final LayerNorm and an
    output head tied to the token embedding -- the GPT's layout and parameter names. It is a
    :class:`~aigc_course.decoding.Decoder` (with ``reorder_state`` for beam search).
    ``context_dim`` is the memory's width (``None``: ``n_embd``).
    """

    @capture_config
    def __init__(self, vocab_size: int = 256, block_size: int = 128, n_layer: int = 2, n_head: int = 4,
                 n_embd: int = 128, dropout: float = 0.0, bias: bool = True, context_dim: int | None = None):
        super().__init__()
        gpt = GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=n_head,
                        n_embd=n_embd, dropout=dropout, bias=bias)
        self.gpt_config = gpt
        self.context_dim = n_embd if context_dim is None else context_dim
        self.transformer = nn.ModuleDict({
            "wte": nn.Embedding(vocab_size, n_embd),
            "wpe": nn.Embedding(block_size, n_embd),
            "drop": nn.Dropout(dropout),
            "h": nn.ModuleList([DecoderBlock(gpt, context_dim) for _ in range(n_layer)]),
            "ln_f": nn.LayerNorm(n_embd, bias=bias),
        })
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # weight tying, as in the GPT
        self.apply(GPT._init_weights)
        for name, p in self.named_parameters():
            if name.endswith(("c_proj.weight", "out_proj.weight")):  # residual projections, scaled by depth
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

    @classmethod
    def from_gpt(cls, gpt: GPT) -> TransformerDecoder:
        """A decoder holding ``gpt``'s weights; without memory it computes ``gpt``'s logits."""
        c = gpt.config
        decoder = cls(c.vocab_size, c.block_size, c.n_layer, c.n_head, c.n_embd, c.dropout, c.bias)
        missing, unexpected = decoder.load_state_dict(gpt.state_dict(), strict=False)
        if unexpected or any(".ln_cross." not in k and ".cross_attn." not in k for k in missing):
            raise ValueError(f"GPT weights do not fit the decoder: missing {missing}, unexpected {unexpected}")
        return decoder.to(gpt.lm_head.weight.device)

    @property
    def device(self) -> torch.device:
        return self.transformer.wte.weight.device

    def _check_idx(self, idx: torch.Tensor, past: int = 0) -> torch.Tensor:
        return check_token_ids(idx, self.gpt_config.block_size, past)

    def _check_memory(self, memory: torch.Tensor | None, memory_mask: torch.Tensor | None, batch: int):
        if memory is None:
            if memory_mask is not None:
                raise ValueError("memory_mask was given without memory")
            return None, None
        _check_embeddings(memory, "memory", self.context_dim)
        if len(memory) != batch:
            raise ValueError(f"memory must have the batch size of idx ({batch}), got {len(memory)}")
        return memory, check_token_mask(memory_mask, memory.shape[:2], "memory_mask")

    def decode_embeddings(self, x: torch.Tensor, memory: torch.Tensor | None = None,
                          memory_mask: torch.Tensor | None = None, caches: list[KVCache] | None = None) -> torch.Tensor:
        """The blocks and the final LayerNorm on embeddings ``x (B, T, C)`` -> ``(B, T, C)``
        (what ``torch.nn.TransformerDecoder`` computes with a causal ``tgt_mask``)."""
        for i, block in enumerate(self.transformer.h):
            x = block(x, memory, memory_mask, caches[i] if caches else None)
        return self.transformer.ln_f(x)

    def _body(self, idx, memory, memory_mask, caches=None) -> torch.Tensor:
        past = caches[0].length if caches else 0
        idx = self._check_idx(idx, past)
        pos = torch.arange(past, past + idx.shape[1], device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        return self.decode_embeddings(x, memory, memory_mask, caches)

    def forward(self, idx: torch.Tensor, memory: torch.Tensor | None = None, memory_mask: torch.Tensor | None = None,
                targets: torch.Tensor | None = None):
        """``idx (B, T)``, ``memory (B, S, C_mem)``, ``memory_mask (B, S)`` -> ``(logits (B, T, V), loss)``.

        ``loss``: mean next-token cross-entropy (nats) against ``targets (B, T)``, where ``-1``
        marks padding; ``None`` without targets.
        """
        memory, memory_mask = self._check_memory(memory, memory_mask, len(idx))
        logits = self.lm_head(self._body(idx, memory, memory_mask))
        return logits, next_token_loss(logits, idx, targets)

    # ------------------------------------------------------------------ decoding

    def decoding_state(self, batch_size: int, use_cache: bool = True, *, memory: torch.Tensor | None = None,
                       memory_mask: torch.Tensor | None = None) -> EncoderDecoderState:
        """The state before any target token: the encoder's ``memory`` (``None``: decoder only), an
        empty :class:`KVCache` per layer (``use_cache``) and no tokens."""
        memory, memory_mask = self._check_memory(memory, memory_mask, batch_size)
        c = self.gpt_config
        caches = None
        if use_cache:
            w = self.transformer.wte.weight
            caches = [KVCache(batch_size, c.n_head, c.block_size, c.n_embd // c.n_head, w.device, w.dtype)
                      for _ in range(c.n_layer)]
        return EncoderDecoderState(memory, memory_mask, caches,
                                   torch.empty(batch_size, 0, dtype=torch.long, device=self.device))

    def decode_step(self, idx: torch.Tensor, state: EncoderDecoderState) -> tuple[torch.Tensor, EncoderDecoderState]:
        """Logits ``(B, V)`` of the token after ``idx (B, t)``, which continues ``state``'s tokens."""
        state.tokens = torch.cat([state.tokens, idx], dim=1)
        if state.caches is not None:
            h = self._body(idx, state.memory, state.memory_mask, state.caches)
        else:
            h = self._body(state.tokens, state.memory, state.memory_mask)
        return self.lm_head(h[:, -1]), state

    def reorder_state(self, state: EncoderDecoderState, index: torch.Tensor) -> EncoderDecoderState:
        """Keep the rows ``index (B',)`` of ``state``: memory, mask, caches and tokens."""
        index = index.to(self.device)
        for cache in state.caches or ():
            cache.reorder(index)
        if state.memory is not None:
            state.memory = state.memory.index_select(0, index)
        if state.memory_mask is not None:
            state.memory_mask = state.memory_mask.index_select(0, index)
        state.tokens = state.tokens.index_select(0, index)
        return state

    @torch.no_grad()
    def load_torch(self, decoder: nn.TransformerDecoder) -> TransformerDecoder:
        """Copy the block weights of a ``torch.nn.TransformerDecoder`` (``norm_first=True``, final norm)."""
        if len(decoder.layers) != len(self.transformer.h) or decoder.norm is None:
            raise ValueError(f"decoder must have {len(self.transformer.h)} layers and a final norm")
        for ours, theirs in zip(self.transformer.h, decoder.layers, strict=True):
            _copy_self_attention(ours, theirs)
            c = ours.cross_attn
            for proj, w, b in zip((c.q_proj, c.k_proj, c.v_proj),
                                  theirs.multihead_attn.in_proj_weight.chunk(3),
                                  theirs.multihead_attn.in_proj_bias.chunk(3), strict=True):
                _copy(proj.weight, w)
                _copy(proj.bias, b)
            _copy(c.out_proj.weight, theirs.multihead_attn.out_proj.weight)
            _copy(c.out_proj.bias, theirs.multihead_attn.out_proj.bias)
            _copy_norm(ours.ln_cross, theirs.norm2)
            _copy_feed_forward(ours, theirs, theirs.norm3)
        _copy_norm(self.transformer.ln_f, decoder.norm)
        return self


def _copy(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    if ours.shape != theirs.shape:
        raise ValueError(f"the torch module's weights have shape {tuple(theirs.shape)} where this model has "
                         f"{tuple(ours.shape)} (dim_feedforward must be 4 * d_model, the same d_model and heads)")
    ours.copy_(theirs)


def _copy_norm(ours: nn.LayerNorm, theirs: nn.LayerNorm) -> None:
    _copy(ours.weight, theirs.weight)
    _copy(ours.bias, theirs.bias)


def _copy_self_attention(ours: Block, theirs: nn.Module) -> None:
    # torch's in_proj_weight stacks W_Q, W_K, W_V along the output dim, as c_attn does
    _copy(ours.attn.c_attn.weight, theirs.self_attn.in_proj_weight)
    _copy(ours.attn.c_attn.bias, theirs.self_attn.in_proj_bias)
    _copy(ours.attn.c_proj.weight, theirs.self_attn.out_proj.weight)
    _copy(ours.attn.c_proj.bias, theirs.self_attn.out_proj.bias)
    _copy_norm(ours.ln_1, theirs.norm1)


def _copy_feed_forward(ours: Block, theirs: nn.Module, norm: nn.LayerNorm) -> None:
    _copy(ours.mlp.c_fc.weight, theirs.linear1.weight)
    _copy(ours.mlp.c_fc.bias, theirs.linear1.bias)
    _copy(ours.mlp.c_proj.weight, theirs.linear2.weight)
    _copy(ours.mlp.c_proj.bias, theirs.linear2.bias)
    _copy_norm(ours.ln_2, norm)


class EncoderDecoderTransformer(nn.Module):
    """Token sequence to token sequence: source embeddings -> :class:`TransformerEncoder` ->
    memory -> :class:`TransformerDecoder`.

    ``forward(source (B, S), idx (B, T), source_mask=None, targets=None) -> (logits (B, T, V), loss)``.
    ``source_mask (B, S)`` is ``True`` for real source tokens (``None``: no padding).
    """

    @capture_config
    def __init__(self, vocab_size: int = 256, block_size: int = 64, source_vocab_size: int | None = None,
                 source_block_size: int | None = None, n_layer: int = 2, n_encoder_layer: int | None = None,
                 n_head: int = 4, n_embd: int = 128, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        source_vocab_size = vocab_size if source_vocab_size is None else source_vocab_size
        source_block_size = block_size if source_block_size is None else source_block_size
        for name, value in (("source_vocab_size", source_vocab_size), ("source_block_size", source_block_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.source_block_size = source_block_size
        self.source_wte = nn.Embedding(source_vocab_size, n_embd)
        self.source_wpe = nn.Embedding(source_block_size, n_embd)
        self.source_drop = nn.Dropout(dropout)
        self.encoder = TransformerEncoder(n_embd, n_layer if n_encoder_layer is None else n_encoder_layer,
                                          n_head, dropout, bias)
        self.decoder = TransformerDecoder(vocab_size, block_size, n_layer, n_head, n_embd, dropout, bias)
        for emb in (self.source_wte, self.source_wpe):
            nn.init.normal_(emb.weight, mean=0.0, std=0.02)

    def encode(self, source: torch.Tensor, source_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``source (B, S)`` token ids -> memory ``(B, S, C)``."""
        source = decoding.check_prompt(source, "source")
        if source.shape[1] > self.source_block_size:
            raise ValueError(f"source of {source.shape[1]} tokens is longer than source_block_size="
                             f"{self.source_block_size}")
        pos = torch.arange(source.shape[1], device=source.device)
        x = self.source_drop(self.source_wte(source) + self.source_wpe(pos))
        return self.encoder(x, source_mask)

    def forward(self, source: torch.Tensor, idx: torch.Tensor, source_mask: torch.Tensor | None = None,
                targets: torch.Tensor | None = None):
        return self.decoder(idx, self.encode(source, source_mask), source_mask, targets)

    @torch.no_grad()
    def attention_maps(self, source: torch.Tensor, idx: torch.Tensor,
                       source_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The three kinds of attention of one forward pass, each ``(n_layer, B, n_head, T_q, T_k)``:
        ``"encoder"`` (source to source), ``"decoder"`` (target to earlier target, causal) and
        ``"cross"`` (target to source)."""
        with record_attention(self.encoder) as encoder_maps:
            memory = self.encode(source, source_mask)
        blocks = self.decoder.transformer.h
        with record_attention(nn.ModuleList([b.attn for b in blocks])) as self_maps, \
                record_attention(nn.ModuleList([b.cross_attn for b in blocks])) as cross_maps:
            self.decoder(idx, memory, source_mask)
        return {"encoder": torch.stack(encoder_maps), "decoder": torch.stack(self_maps),
                "cross": torch.stack(cross_maps)}

    @torch.no_grad()
    def generate(self, source: torch.Tensor, prompt: torch.Tensor, max_new_tokens: int, *,
                 source_mask: torch.Tensor | None = None, num_beams: int = 1,
                 stop_token: int | None = None, constraints=()) -> torch.Tensor:
        """``prompt (B, T)`` (e.g. the start token) followed by up to ``max_new_tokens`` tokens,
        greedy (``num_beams=1``) or by :func:`aigc_course.decoding.beam_search`."""
        memory = self.encode(source, source_mask)
        state = self.decoder.decoding_state(len(memory), memory=memory, memory_mask=source_mask)
        if num_beams == 1:
            return decoding.generate(self.decoder, prompt, max_new_tokens, state=state, stop_token=stop_token,
                                     constraints=constraints)
        return decoding.beam_search(self.decoder, prompt, max_new_tokens, num_beams, state=state,
                                    stop_token=stop_token, constraints=constraints).sequences
