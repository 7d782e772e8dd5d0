"""Scaled dot-product attention, written from the book's formula, and multi-head attention.

The article's equation (3.1.2 / 4.1)::

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

Three implementations share one contract, so they can be swapped and compared:

* :func:`scaled_dot_product_attention` -- the formula line by line; it materialises the
  ``T x T`` weight matrix and returns it (for plots and for teaching).
* :func:`blockwise_attention` -- walks the keys in blocks with an *online softmax* (the
  FlashAttention idea): same output, but memory grows as ``T * block`` instead of ``T^2``.
* ``torch.nn.functional.scaled_dot_product_attention`` -- PyTorch's fused kernel, the fast
  path :class:`MultiHeadAttention` uses for training (``backend="sdpa"``).

The contract, checked once per call by every backend (:func:`attend` picks one):

* **Shapes.** ``q`` is ``(..., T_q, d_k)``, ``k`` is ``(..., T_k, d_k)``, ``v`` is
  ``(..., T_k, d_v)``, each of rank >= 2, with ``d_k >= 1``; their leading dimensions
  broadcast together to the batch shape ``(...)``. All three share one floating dtype.
* **Masks** follow PyTorch: a boolean mask is ``True`` where attention is *allowed*; a
  floating mask is *added* to the scores (``-inf`` blocks) and is cast to ``q``'s dtype. A
  mask has rank >= 2 and must broadcast to the scores ``(..., T_q, T_k)`` *without enlarging
  them* (so ``(T_q, T_k)``, ``(T_q, 1)``, ``(1, T_k)`` or ``(B, 1, 1, T_k)`` work; a mask
  with more leading entries than the batch is an error, not a bigger output).
* ``is_causal`` keeps key ``j <= i`` for query ``i`` (top-left aligned, as in PyTorch); with a
  mask as well, a key must pass both (torch 2.13's SDPA does the same where it accepts the two
  together, and raises in its other CPU kernels; :func:`attend` combines them itself).
* **A fully masked row** -- a query whose every key is hidden (by the mask, by ``is_causal``,
  or because ``T_k = 0``) -- gets an output row of zeros, attention weights of zeros and zero
  gradients. This is what ``torch.nn.functional.scaled_dot_product_attention`` returns on
  the CPU in torch 2.13 for boolean and ``-inf`` float masks, with or without ``is_causal``
  (the tests compare every backend with it); softmax over nothing would otherwise be
  ``0 / 0 = NaN``. A large *finite* negative bias (``-1e9``) is not a hidden key: such a row
  is an ordinary softmax.
* **Values are not scanned**: NaN or inf in ``q``, ``k``, ``v`` or a float mask propagate to
  the output. Checking them would wait for the device in every training step; the public
  pipelines check their own inputs once per call instead.
"""

from __future__ import annotations

import math
import warnings
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from aigc_course._checks import broadcast_shape, check_bool, check_int, check_number, check_tensor

BACKENDS = ("sdpa", "manual", "blockwise")


def _check_inputs(q, k, v, mask, is_causal) -> None:
    """The shape rule of the module docstring, for every backend. Shapes and dtypes only: no sync."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor of shape (..., T, d), got {type(t).__name__}")
        if t.dim() < 2:
            raise ValueError(f"{name} must have shape (..., T, d) with rank >= 2, got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
    for name, t in (("k", k), ("v", v)):
        if t.dtype != q.dtype:
            raise ValueError(f"{name} must have q's dtype {q.dtype}, got {t.dtype}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must share the last dim d_k, got {q.shape[-1]} and {k.shape[-1]}")
    if q.shape[-1] == 0:
        raise ValueError(f"q and k must have d_k >= 1 features, got shape {tuple(q.shape)}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same number of keys, got {k.shape[-2]} and {v.shape[-2]}")
    batch = broadcast_shape(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    if batch is None:
        raise ValueError(
            f"the leading (batch) dims of q {tuple(q.shape)}, k {tuple(k.shape)} and v {tuple(v.shape)} "
            "must broadcast together"
        )
    check_bool(is_causal, "is_causal")
    if mask is None:
        return
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"mask must be a bool or float torch.Tensor or None, got {type(mask).__name__}")
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise ValueError(f"mask must be bool (True = keep) or float (additive), got dtype {mask.dtype}")
    scores = (*batch, q.shape[-2], k.shape[-2])
    if mask.dim() < 2 or broadcast_shape(mask.shape, scores) != scores:
        raise ValueError(
            f"mask must have rank >= 2 and broadcast to the scores (..., T_q, T_k) = {scores} "
            f"without enlarging them, got shape {tuple(mask.shape)}"
        )


def causal_mask(t_q: int, t_k: int | None = None, device=None) -> torch.Tensor:
    """Boolean ``(t_q, t_k)`` mask, ``True`` where key ``j <= i`` (top-left aligned)."""
    t_q = check_int(t_q, "t_q", low=0)
    t_k = t_q if t_k is None else check_int(t_k, "t_k", low=0)
    return torch.ones(t_q, t_k, dtype=torch.bool, device=device).tril()


def _as_additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Boolean keep-mask -> additive mask of 0 / -inf; float masks are cast to ``dtype``."""
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, float("-inf"))
    return mask.to(dtype)


def _hidden_rows(mask: torch.Tensor) -> torch.Tensor:
    """``True`` for the query rows ``(..., T_q, 1)`` in which ``mask`` hides every key."""
    if mask.dtype == torch.bool:
        return ~mask.any(dim=-1, keepdim=True)
    return torch.isneginf(mask).all(dim=-1, keepdim=True)


def _check_dropout(dropout_p) -> float:
    return check_number(dropout_p, "dropout_p", low=0.0, high=1.0, high_open=True)


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    is_causal: bool = False,
    dropout_p: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``softmax(Q K^T / sqrt(d_k)) V`` (book eq. 3.1.2), returning ``(output, weights)``.

    Shapes: ``q`` is ``(..., T_q, d_k)``, ``k`` is ``(..., T_k, d_k)``, ``v`` is
    ``(..., T_k, d_v)``; ``mask`` broadcasts to ``(..., T_q, T_k)`` (module docstring). Returns
    the output ``(..., T_q, d_v)`` and the attention weights ``(..., T_q, T_k)``, taken before
    dropout: each row sums to 1, except a fully masked row, which is all zeros (and so is its
    output row), as in torch's SDPA. ``dropout_p`` in ``[0, 1)`` drops weights at random, as
    in training.
    """
    _check_inputs(q, k, v, mask, is_causal)
    return _manual(q, k, v, mask, is_causal, _check_dropout(dropout_p))


def _manual(q, k, v, mask, is_causal: bool, dropout_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    t_q, t_k = q.shape[-2], k.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., T_q, T_k)
    if is_causal:
        scores = scores.masked_fill(~causal_mask(t_q, t_k, device=q.device), float("-inf"))
    if mask is not None:
        scores = scores + _as_additive(mask, scores.dtype)
    if mask is None:  # is_causal alone always leaves key 0 visible: a plain softmax
        weights = torch.softmax(scores, dim=-1)
    else:  # a row with no visible key would be 0/0; torch's SDPA gives zeros (a "safe" softmax)
        hidden = torch.isneginf(scores.amax(dim=-1, keepdim=True))  # (..., T_q, 1)
        weights = torch.softmax(scores.masked_fill(hidden, 0.0), dim=-1).masked_fill(hidden, 0.0)
    dropped = F.dropout(weights, p=dropout_p, training=True) if dropout_p > 0 else weights
    return dropped @ v, weights


def blockwise_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    is_causal: bool = False,
    block_size: int = 128,
) -> torch.Tensor:
    """Exact attention without the ``T_q x T_k`` matrix: keys in blocks, online softmax.

    For each key block the running row maximum ``m``, normaliser ``l`` and weighted sum
    ``acc`` are rescaled by ``exp(m_old - m_new)`` -- the identity that lets softmax be
    computed in one streaming pass (Milakov & Gimelshein 2018; FlashAttention). Peak extra
    memory is ``O(T_q * block_size)`` instead of ``O(T_q * T_k)``.
    Shapes and masks as in :func:`scaled_dot_product_attention`; returns ``(..., T_q, d_v)``,
    with zeros for a fully masked row (its normaliser ``l`` stays 0).
    """
    _check_inputs(q, k, v, mask, is_causal)
    return _blockwise(q, k, v, mask, is_causal, check_int(block_size, "block_size", low=1))


def _blockwise(q, k, v, mask, is_causal: bool, block_size: int) -> torch.Tensor:
    t_q, t_k = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1])
    lead = broadcast_shape(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    m = torch.full((*lead, t_q, 1), float("-inf"), dtype=q.dtype, device=q.device)
    l_sum = torch.zeros((*lead, t_q, 1), dtype=q.dtype, device=q.device)
    acc = torch.zeros((*lead, t_q, v.shape[-1]), dtype=q.dtype, device=q.device)
    rows = torch.arange(t_q, device=q.device).unsqueeze(-1)  # (T_q, 1)
    for start in range(0, t_k, block_size):
        if is_causal and start > t_q - 1:
            break  # every later key is in the future of every query
        stop = min(start + block_size, t_k)
        s = (q @ k[..., start:stop, :].transpose(-2, -1)) * scale  # (..., T_q, blk)
        if is_causal and stop - 1 > 0:
            cols = torch.arange(start, stop, device=q.device)
            s = s.masked_fill(cols > rows, float("-inf"))
        if mask is not None:
            s = s + _as_additive(mask[..., start:stop] if mask.shape[-1] != 1 else mask, s.dtype)
        m_new = torch.maximum(m, s.amax(dim=-1, keepdim=True))
        m_safe = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)  # rows masked so far
        p = torch.exp(s - m_safe)
        correction = torch.exp(m - m_safe)
        l_sum = l_sum * correction + p.sum(dim=-1, keepdim=True)
        acc = acc * correction + p @ v[..., start:stop, :]
        m = m_new
    # a fully masked row has acc = 0 and l = 0: dividing by 1 there gives torch SDPA's zeros
    # (and zero, not NaN, gradients)
    return acc / l_sum.masked_fill(l_sum == 0, 1.0)


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    is_causal: bool = False,
    dropout_p: float = 0.0,
    backend: str = "sdpa",
) -> torch.Tensor:
    """Attention output ``(..., T_q, d_v)`` by the chosen ``backend`` -- one interface, three kernels.

    ``"sdpa"`` is PyTorch's fused kernel (the fast path), ``"manual"`` the formula above,
    ``"blockwise"`` the online-softmax walk (no dropout). All three follow the module's
    contract, fully masked rows (zeros) included.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    _check_inputs(q, k, v, mask, is_causal)
    dropout_p = _check_dropout(dropout_p)
    if backend == "manual":
        return _manual(q, k, v, mask, is_causal, dropout_p)[0]
    if backend == "blockwise":
        if dropout_p > 0:
            raise ValueError("dropout_p must be 0 for the blockwise backend (it has no attention dropout); "
                             f"got {dropout_p}")
        return _blockwise(q, k, v, mask, is_causal, 128)
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v, is_causal=is_causal, dropout_p=dropout_p)
    if mask.is_floating_point():
        mask = mask.to(q.dtype)  # torch takes a float mask only in q's dtype (or float32)
    if is_causal:  # one mask holding both (older torch takes one or the other)
        mask = _combine(mask, causal_mask(q.shape[-2], k.shape[-2], device=q.device))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
    # torch 2.13's CPU kernels already give zeros for fully masked rows; setting them here (no
    # sync: an element-wise fill) keeps every torch version and GPU kernel to the same contract
    return out.masked_fill(_hidden_rows(mask), 0.0)


class _LiveTensorBytes(TorchDispatchMode):
    """Counts the bytes of tensor storages created inside the mode that are still alive."""

    def __init__(self):
        super().__init__()
        self.live: dict[int, list[int]] = {}  # storage address -> [bytes, live tensors]
        self.current = self.peak = 0

    def _release(self, key: int) -> None:
        entry = self.live[key]
        entry[1] -= 1
        if entry[1] == 0:
            self.current -= entry[0]
            del self.live[key]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                key = t.untyped_storage().data_ptr()
                if key not in self.live:
                    self.live[key] = [t.untyped_storage().nbytes(), 0]
                    self.current += self.live[key][0]
                    self.peak = max(self.peak, self.current)
                self.live[key][1] += 1
                weakref.finalize(t, self._release, key)
        return out


def peak_memory(fn: Callable[[], object], *, grad: bool = False) -> int:
    """Peak bytes of the tensors ``fn()`` creates and holds at once (inputs made outside excluded).

    Every tensor an operator returns is tracked until it is freed, so the peak counts the
    ``T x T`` score matrix of plain attention and only ``T x block`` for the blockwise one.
    ``fn`` runs under ``torch.no_grad()`` unless ``grad=True``; with gradients on, the peak
    includes the activations autograd keeps for the backward pass (and, if ``fn`` calls
    ``backward()``, the gradients and the backward pass's temporaries).
    On CUDA, ``torch.cuda.max_memory_allocated`` gives the allocator's view of the same thing.
    """
    if not isinstance(grad, bool):
        raise ValueError(f"grad must be True or False, got {grad!r}")
    with torch.set_grad_enabled(grad), _LiveTensorBytes() as tracker:
        result = fn()
        del result
    return tracker.peak


def _combine(mask: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Intersect a user mask (bool or additive) with a boolean keep-mask."""
    if mask.dtype == torch.bool:
        return mask & keep
    if not mask.is_floating_point():
        raise ValueError(f"mask must be bool (True = keep) or float (additive), got dtype {mask.dtype}")
    return mask + _as_additive(keep, mask.dtype)


def repeat_kv_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Grouped-query attention's key/value heads, one per query head: ``(B, H_kv, T, d) -> (B, H, T, d)``.

    K/V head ``j`` serves the ``H / H_kv`` consecutive query heads ``j * H/H_kv ..
    (j+1) * H/H_kv - 1`` (the layout of LLaMA and Hugging Face), so query head ``h`` reads
    K/V head ``h // (H / H_kv)``. The cache keeps only the ``H_kv`` heads; this copy is
    made for the attention call and dropped after it.
    """
    check_tensor(x, "x")
    check_int(num_heads, "num_heads", low=1)
    if x.dim() != 4 or x.shape[1] == 0 or num_heads % x.shape[1]:
        raise ValueError(f"x must have shape (B, H_kv, T, d) with H_kv dividing num_heads={num_heads}, "
                         f"got {tuple(x.shape)}")
    return _repeat_kv(x, num_heads)


def _repeat_kv(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """:func:`repeat_kv_heads` without the checks (the layer's shapes are right by construction)."""
    return x if x.shape[1] == num_heads else x.repeat_interleave(num_heads // x.shape[1], dim=1)


class KVCache:
    """Keys and values of the tokens seen so far, for one attention layer.

    Tensors ``(B, H, max_len, head_dim)`` are allocated once and filled in place, so a
    decoding step costs one token's work instead of re-running the whole prefix.
    """

    def __init__(self, batch: int, num_heads: int, max_len: int, head_dim: int, device=None, dtype=None):
        self.k = torch.zeros(batch, num_heads, max_len, head_dim, device=device, dtype=dtype)
        self.v = torch.zeros_like(self.k)
        self.length = 0

    @property
    def max_len(self) -> int:
        return self.k.shape[2]

    @property
    def nbytes(self) -> int:
        """Bytes held by the key and value tensors: ``2 * B * H * max_len * head_dim * itemsize``."""
        return self.k.nbytes + self.v.nbytes

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store ``k, v`` of shape ``(B, H, T, hd)``; return all keys/values so far."""
        t = k.shape[2]
        if self.length + t > self.max_len:
            raise ValueError(f"KV cache overflow: {self.length} + {t} tokens > max_len {self.max_len}")
        self.k[:, :, self.length : self.length + t] = k
        self.v[:, :, self.length : self.length + t] = v
        self.length += t
        return self.k[:, :, : self.length], self.v[:, :, : self.length]

    def reorder(self, index: torch.Tensor) -> KVCache:
        """Keep the batch rows ``index (B',)``, in that order (beam search follows its beams)."""
        index = index.to(self.k.device)
        self.k, self.v = self.k.index_select(0, index), self.v.index_select(0, index)
        return self


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention over ``x`` of shape ``(B, T, C)`` with ``C = d_model``.

    One linear layer ``c_attn`` makes Q, K, V for all heads (GPT-2's layout); each head
    attends in ``d_model / num_heads`` dimensions; ``c_proj`` mixes the heads back.
    ``backend`` picks the kernel: ``"sdpa"`` (PyTorch fused, the fast path), ``"manual"``
    (:func:`scaled_dot_product_attention`) or ``"blockwise"`` (:func:`blockwise_attention`).
    ``forward`` always returns the output; :func:`record_attention` collects the weights.

    Two options make it LLaMA's attention (the defaults leave GPT-2's unchanged):

    * ``num_kv_heads`` -- *grouped-query attention* (Ainslie et al. 2023): only
      ``num_kv_heads`` key/value heads, each shared by ``num_heads / num_kv_heads`` query
      heads, so ``c_attn`` makes ``C + 2 * num_kv_heads * head_dim`` features and a
      :class:`KVCache` stores ``num_kv_heads`` heads instead of ``num_heads``. ``1`` is
      multi-query attention; ``None`` (= ``num_heads``) is ordinary multi-head attention.
    * ``rotary`` -- a module ``rotary(x (B, H, T, hd), start) -> (B, H, T, hd)`` that encodes
      the positions ``start .. start+T-1`` into queries and keys after the heads are split
      (:class:`aigc_course.llama.RotaryEmbedding`); keys enter the cache already rotated.
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0, bias: bool = True, backend: str = "sdpa",
                 num_kv_heads: int | None = None, rotary: nn.Module | None = None):
        super().__init__()
        if not isinstance(num_heads, int) or num_heads < 1:
            raise ValueError(f"num_heads must be a positive int, got {num_heads!r}")
        if not isinstance(d_model, int) or d_model < 1 or d_model % num_heads:
            raise ValueError(f"d_model must be a positive int divisible by num_heads={num_heads}, got {d_model!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        if isinstance(num_kv_heads, bool) or not isinstance(num_kv_heads, int) or num_kv_heads < 1 \
                or num_heads % num_kv_heads:
            raise ValueError(f"num_kv_heads must be a positive int dividing num_heads={num_heads}, "
                             f"got {num_kv_heads!r}")
        if rotary is not None and not callable(rotary):
            raise ValueError(f"rotary must be a module rotary(x, start) or None, got {type(rotary).__name__}")
        self.d_model, self.num_heads, self.head_dim = d_model, num_heads, d_model // num_heads
        self.num_kv_heads, self.kv_dim = num_kv_heads, num_kv_heads * (d_model // num_heads)
        self.dropout, self.backend = dropout, backend
        self.c_attn = nn.Linear(d_model, d_model + 2 * self.kv_dim, bias=bias)  # Q, K, V side by side
        self.c_proj = nn.Linear(d_model, d_model, bias=bias)
        self.resid_dropout = nn.Dropout(dropout)
        self.rotary = rotary
        self._weights_sink: list[torch.Tensor] | None = None  # set by record_attention

    def _split(self, t: torch.Tensor, heads: int | None = None) -> torch.Tensor:  # (B, T, heads*hd) -> (B, heads, T, hd)
        b, n, _ = t.shape
        return t.view(b, n, heads or self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        is_causal: bool = False,
        cache: KVCache | None = None,
        need_weights: bool = False,
    ):
        """``x (B, T, C) -> (B, T, C)``.

        With a ``cache`` the new keys/values are appended and the queries attend to every
        cached token; causal masking then lines queries up with the *last* ``T`` keys.
        Inside :func:`record_attention` the weights ``(B, H, T, T_k)`` are computed with the
        plain formula and appended to the recorder's list. ``need_weights=True`` (deprecated)
        returns ``(output, weights)`` instead.
        """
        if need_weights:
            warnings.warn("MultiHeadAttention(..., need_weights=True) is deprecated and will be removed: forward "
                          "returns the output only; collect the weights with "
                          "aigc_course.attention.record_attention(module)", DeprecationWarning, stacklevel=2)
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must have shape (B, T, {self.d_model}), got {tuple(x.shape)}")
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split([self.d_model, self.kv_dim, self.kv_dim], dim=2)
        q, k, v = self._split(q), self._split(k, self.num_kv_heads), self._split(v, self.num_kv_heads)
        past = 0 if cache is None else cache.length
        if self.rotary is not None:  # positions past .. past+t-1 rotate q and k (RoPE)
            q, k = self.rotary(q, past), self.rotary(k, past)
        if cache is not None:
            if cache.k.shape[1] != self.num_kv_heads:
                raise ValueError(f"cache must hold num_kv_heads={self.num_kv_heads} heads, got a KVCache "
                                 f"of {cache.k.shape[1]}")
            k, v = cache.append(k, v)
        if self.num_kv_heads != self.num_heads:  # each K/V head serves a group of query heads
            k, v = _repeat_kv(k, self.num_heads), _repeat_kv(v, self.num_heads)
        if is_causal and past > 0 and t == 1:
            is_causal = False  # one new query may see every cached key: nothing to mask
        elif is_causal and past > 0:
            # queries sit at positions past..past+t-1: keep key j <= past + i (bottom-right)
            keep = torch.ones(t, past + t, dtype=torch.bool, device=x.device).tril(diagonal=past)
            mask = keep if mask is None else _combine(mask, keep)
            is_causal = False
        p = self.dropout if self.training else 0.0
        if self._weights_sink is not None or need_weights:
            y, weights = scaled_dot_product_attention(q, k, v, mask=mask, is_causal=is_causal, dropout_p=p)
            if self._weights_sink is not None:
                self._weights_sink.append(weights)
        else:
            y = attend(q, k, v, mask=mask, is_causal=is_causal, dropout_p=p, backend=self.backend)
        y = y.transpose(1, 2).contiguous().view(b, t, c)  # re-assemble the heads
        y = self.resid_dropout(self.c_proj(y))
        return (y, weights) if need_weights else y  # the tuple only for the deprecated flag


@contextmanager
def record_attention(module: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Collect the attention weights of every :class:`MultiHeadAttention` and :class:`CrossAttention` inside ``module``.

    Yields a list; while the ``with`` block runs, each attention call appends its weights
    ``(B, H, T_q, T_k)`` (rows sum to 1, before dropout), in call order -- for a GPT, one per
    layer per forward pass. Recorded layers use the plain formula
    (:func:`scaled_dot_product_attention`), whatever their backend::

        with record_attention(model) as weights:
            model(idx)
        maps = torch.stack(weights)  # (n_layer, B, H, T, T)
    """
    layers = [m for m in module.modules() if isinstance(m, MultiHeadAttention | CrossAttention)]
    if not layers:
        raise ValueError(f"module has no attention layer to record, got {type(module).__name__}")
    weights: list[torch.Tensor] = []
    previous = [layer._weights_sink for layer in layers]
    for layer in layers:
        layer._weights_sink = weights
    try:
        yield weights
    finally:
        for layer, sink in zip(layers, previous, strict=True):
            layer._weights_sink = sink


class CrossAttention(nn.Module):
    """Multi-head attention from queries ``x (B, T_q, C)`` to a separate ``context (B, T_k, C_ctx)``.

    The keys and values come from the context, the queries from ``x``
    (Vaswani et al. 2017, the decoder's "encoder-decoder attention"; Stable Diffusion's text
    conditioning): :math:`\\mathrm{softmax}(xW_Q (cW_K)^\\top/\\sqrt{d_k})\\,cW_V` per head
    (book eq. 3.1.2), heads concatenated and mixed by ``out_proj``. ``context_mask (B, T_k)``
    is ``True`` for real context tokens and ``False`` for padding, which no query attends to.
    Same parameters as ``torch.nn.MultiheadAttention(C, H, kdim=C_ctx, vdim=C_ctx)``.
    """

    def __init__(self, d_model: int, num_heads: int, context_dim: int | None = None, dropout: float = 0.0,
                 bias: bool = True, backend: str = "sdpa"):
        super().__init__()
        if not isinstance(num_heads, int) or num_heads < 1:
            raise ValueError(f"num_heads must be a positive int, got {num_heads!r}")
        if not isinstance(d_model, int) or d_model < 1 or d_model % num_heads:
            raise ValueError(f"d_model must be a positive int divisible by num_heads={num_heads}, got {d_model!r}")
        context_dim = d_model if context_dim is None else context_dim
        if not isinstance(context_dim, int) or context_dim < 1:
            raise ValueError(f"context_dim must be a positive int, got {context_dim!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.d_model, self.num_heads, self.head_dim = d_model, num_heads, d_model // num_heads
        self.context_dim, self.dropout, self.backend = context_dim, dropout, backend
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(context_dim, d_model, bias=bias)
        self.v_proj = nn.Linear(context_dim, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        self._weights_sink: list[torch.Tensor] | None = None  # set by record_attention

    def _split(self, t: torch.Tensor) -> torch.Tensor:  # (B, T, C) -> (B, H, T, hd)
        b, n, _ = t.shape
        return t.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B, T_q, C)``, ``context (B, T_k, C_ctx)`` -> ``(B, T_q, C)``.

        Inside :func:`record_attention` the weights ``(B, H, T_q, T_k)`` (each row sums to 1 over
        the unmasked tokens) are computed with the plain formula and appended to its list."""
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must have shape (B, T_q, {self.d_model}), got {tuple(x.shape)}")
        if context.dim() != 3 or context.shape[-1] != self.context_dim or len(context) != len(x):
            raise ValueError(f"context must have shape ({len(x)}, T_k, {self.context_dim}), got {tuple(context.shape)}")
        mask = None
        if context_mask is not None:
            if context_mask.dtype != torch.bool or context_mask.shape != context.shape[:2]:
                raise ValueError(f"context_mask must be a bool tensor of shape {tuple(context.shape[:2])} "
                                 f"(True = attend), got {context_mask.dtype} {tuple(context_mask.shape)}")
            mask = context_mask[:, None, None, :]  # (B, 1, 1, T_k): the same keys for every head and query
        b, t, c = x.shape
        q, k, v = self._split(self.q_proj(x)), self._split(self.k_proj(context)), self._split(self.v_proj(context))
        p = self.dropout if self.training else 0.0
        if self._weights_sink is not None:
            y, weights = scaled_dot_product_attention(q, k, v, mask=mask, dropout_p=p)
            self._weights_sink.append(weights)
        else:
            y = attend(q, k, v, mask=mask, dropout_p=p, backend=self.backend)
        return self.out_proj(y.transpose(1, 2).contiguous().view(b, t, c))
